/*
 * activate_glue.h - shared by the activate and install commands (defined
 * in src/cmd/activate.c; not in airpack-verify).
 */
#ifndef AIRPACK_CMD_ACTIVATE_GLUE_H
#define AIRPACK_CMD_ACTIVATE_GLUE_H

#include "site/activate.h"

/* Run ap_activate, print the outcome (text or the JSON record); returns
 * the exit code. */
int cli_activate_run(const ap_activate_opts *o, int json_out);
/* Seconds for --timeout: 0 or -1 when not a number in (0, 86400]. */
int cli_activate_parse_timeout(const char *s, double *out);

#endif
