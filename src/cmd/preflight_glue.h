/*
 * preflight_glue.h - the preflight report as text, shared by the
 * preflight and install commands (defined in src/cmd/preflight.c).
 */
#ifndef AIRPACK_CMD_PREFLIGHT_GLUE_H
#define AIRPACK_CMD_PREFLIGHT_GLUE_H

#include <jansson.h>
#include <stdio.h>

void cli_preflight_print(FILE *f, const json_t *report);

#endif
