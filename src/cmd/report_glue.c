/*
 * report_glue.c - format dispatch and atomic output for reports.
 */
#include "report_glue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static const char *level_label(const char *level, int color)
{
    if (!color)
        return level;
    if (!strcmp(level, "error"))
        return "\033[1;31merror\033[0m";
    if (!strcmp(level, "warning"))
        return "\033[1;33mwarning\033[0m";
    return "\033[1;36mnote\033[0m";
}

/* Plain text: findings grouped by level, then the summary. */
static int write_text(FILE *f, const json_t *a, int color)
{
    static const char *levels[] = {"error", "warning", "note"};
    const json_t *md = json_object_get(json_object_get(a, "manifest"), "metadata");
    const json_t *findings = json_object_get(a, "findings"), *s = json_object_get(a, "summary");
    const json_t *pins = json_object_get(a, "pins"), *p;
    size_t i, ok = 0, unpinned = 0;

    fprintf(f, "manifest '%s': deployment '%s' version %s sequence %lld\n",
            json_string_value(json_object_get(a, "manifest_file")),
            json_string_value(json_object_get(md, "name")),
            json_string_value(json_object_get(md, "version")),
            (long long)json_integer_value(json_object_get(md, "sequence")));
    json_array_foreach(pins, i, p) {
        const char *st = json_string_value(json_object_get(p, "status"));
        ok += st && !strcmp(st, "ok");
        unpinned += st && !strcmp(st, "unpinned");
    }
    fprintf(f, "pins: %zu checked, %zu ok, %zu unpinned\n", json_array_size(pins), ok, unpinned);
    for (size_t l = 0; l < 3; l++) {
        const json_t *fd;
        json_array_foreach(findings, i, fd) {
            const char *lv = json_string_value(json_object_get(fd, "level"));
            const json_t *loc = json_object_get(fd, "location");
            if (!lv || strcmp(lv, levels[l]) != 0)
                continue;
            fprintf(f, "%s%s: ", level_label(lv, color),
                    json_is_true(json_object_get(fd, "waived")) ? " (waived)" : "");
            if (loc)
                fprintf(f, "%s:%lld:%lld: ", json_string_value(json_object_get(loc, "file")),
                        (long long)json_integer_value(json_object_get(loc, "line")),
                        (long long)json_integer_value(json_object_get(loc, "column")));
            fprintf(f, "[%s] %s\n", json_string_value(json_object_get(fd, "rule")),
                    json_string_value(json_object_get(fd, "message")));
        }
    }
    fprintf(f, "%s: %lld errors, %lld warnings, %lld notes, %lld waived\n",
            json_is_true(json_object_get(s, "passed")) ? "passed" : "FAILED",
            (long long)json_integer_value(json_object_get(s, "errors")),
            (long long)json_integer_value(json_object_get(s, "warnings")),
            (long long)json_integer_value(json_object_get(s, "notes")),
            (long long)json_integer_value(json_object_get(s, "waived")));
    return ferror(f) ? -1 : 0;
}

static int render(FILE *f, const json_t *a, enum cli_format fmt, int color, ap_error *err)
{
    switch (fmt) {
    case CLI_FMT_JSON:
        if (json_dumpf(a, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) != 0 || fputc('\n', f) == EOF)
            return ap_error_set(err, AP_ERR_IO, "cannot write JSON output");
        return AP_OK;
    case CLI_FMT_TEXT:
        if (write_text(f, a, color) != 0)
            return ap_error_set(err, AP_ERR_IO, "cannot write output");
        return AP_OK;
    default:
        return ap_error_set(err, AP_ERR_INPUT, "this output format is not available yet");
    }
}

int cli_write_report(const json_t *analysis, enum cli_format fmt, const char *output,
                     ap_error *err)
{
    char *tmp = NULL;
    FILE *f;
    int fd, rc;

    if (!output || !strcmp(output, "-"))
        return render(stdout, analysis, fmt, cli_use_color(stdout), err);
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
    rc = render(f, analysis, fmt, 0, err);
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
