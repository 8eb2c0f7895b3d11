/*
 * report_glue.h - writing an analysis document in a chosen format to
 * standard output or, atomically, to a file (used by check and audit).
 */
#ifndef AIRPACK_CMD_REPORT_GLUE_H
#define AIRPACK_CMD_REPORT_GLUE_H

#include <jansson.h>
#include <stdio.h>

#include "common.h"
#include "error.h"

/* Writes to f; returns an ap_status, filling err on failure. */
typedef int (*cli_writer_fn)(FILE *f, void *ctx, ap_error *err);

/* Run write on standard output (output NULL or "-"), or on a temporary
 * file beside output that is fsynced and renamed into place only when
 * write succeeded: a failed report never leaves a half-written file. */
int cli_write_output(const char *output, cli_writer_fn write, void *ctx, ap_error *err);

/* Write analysis as fmt to output (NULL or "-" = stdout). A file is written
 * to a temporary name beside it and renamed into place when complete. */
int cli_write_report(const json_t *analysis, enum cli_format fmt, const char *output,
                     ap_error *err);

#endif
