/*
 * report_glue.h - writing an analysis document in a chosen format to
 * standard output or, atomically, to a file (used by check and audit).
 */
#ifndef AIRPACK_CMD_REPORT_GLUE_H
#define AIRPACK_CMD_REPORT_GLUE_H

#include <jansson.h>

#include "common.h"
#include "error.h"

/* Write analysis as fmt to output (NULL or "-" = stdout). A file is written
 * to a temporary name beside it and renamed into place when complete. */
int cli_write_report(const json_t *analysis, enum cli_format fmt, const char *output,
                     ap_error *err);

#endif
