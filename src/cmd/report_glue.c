/*
 * report_glue.c - format dispatch and atomic output for reports.
 */
#include "report_glue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "util.h"

static int render(FILE *f, const json_t *a, enum cli_format fmt, int color, ap_error *err)
{
    switch (fmt) {
    case CLI_FMT_JSON:
        if (json_dumpf(a, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) != 0 || fputc('\n', f) == EOF)
            return ap_error_set(err, AP_ERR_IO, "cannot write JSON output");
        return AP_OK;
    case CLI_FMT_TEXT:
        (void)color;
        return ap_report_write(f, a, "text", err);
    case CLI_FMT_SARIF:
        return ap_report_write(f, a, "sarif", err);
    case CLI_FMT_MARKDOWN:
        return ap_report_write(f, a, "markdown", err);
    case CLI_FMT_HTML:
        return ap_report_write(f, a, "html", err);
    default:
        return ap_error_set(err, AP_ERR_INTERNAL, "unknown output format");
    }
}

int cli_write_output(const char *output, cli_writer_fn write, void *ctx, ap_error *err)
{
    char *tmp = NULL;
    FILE *f;
    int fd, rc;

    if (!output || !strcmp(output, "-"))
        return write(stdout, ctx, err);
    if (asprintf(&tmp, "%s.tmp.XXXXXX", output) < 0)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot create", output);
        free(tmp);
        return rc;
    }
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot write", output);
    }
    rc = write(f, ctx, err);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = rc ? rc : ap_error_errno(err, AP_ERR_IO, errno, "cannot write", output);
    if (fclose(f) != 0)
        rc = rc ? rc : ap_error_errno(err, AP_ERR_IO, errno, "cannot write", output);
    if (rc == AP_OK && rename(tmp, output) != 0)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename into", output);
    if (rc != AP_OK)
        unlink(tmp);
    free(tmp);
    return rc;
}

struct report_ctx {
    const json_t *analysis;
    enum cli_format fmt;
    int to_file;
};

static int write_report(FILE *f, void *ctx, ap_error *err)
{
    const struct report_ctx *r = ctx;
    return render(f, r->analysis, r->fmt, !r->to_file && cli_use_color(f), err);
}

int cli_write_report(const json_t *analysis, enum cli_format fmt, const char *output,
                     ap_error *err)
{
    struct report_ctx r = {analysis, fmt, output && strcmp(output, "-") != 0};
    return cli_write_output(output, write_report, &r, err);
}
