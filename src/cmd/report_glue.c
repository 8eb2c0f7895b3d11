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

/* Text: the pins and plan in one line each, then the findings grouped by
 * severity (the report module's text renderer). */
static int write_text(FILE *f, const json_t *a, ap_error *err)
{
    const json_t *pins = json_object_get(a, "pins"), *p, *plan = json_object_get(a, "plan");
    size_t i, ok = 0, unpinned = 0, blen = 0;
    char *body = NULL, *nl;
    FILE *mem = open_memstream(&body, &blen);
    int rc;

    if (!mem)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    rc = ap_report_write(mem, a, "text", err);
    if (fclose(mem) != 0 && rc == AP_OK)
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (rc != AP_OK) {
        free(body);
        return rc;
    }
    /* The renderer's first line names the manifest: keep it first. */
    nl = strchr(body, '\n');
    if (nl)
        fwrite(body, 1, (size_t)(nl - body) + 1, f);

    json_array_foreach(pins, i, p) {
        const char *st = json_string_value(json_object_get(p, "status"));
        ok += st && !strcmp(st, "ok");
        unpinned += st && !strcmp(st, "unpinned");
    }
    fprintf(f, "pins: %zu checked, %zu ok, %zu unpinned\n", json_array_size(pins), ok, unpinned);
    if (json_is_object(plan)) {
        const json_t *gpu = json_object_get(plan, "gpu"), *mm;
        fprintf(f, "plan: %s on %lld x %s (%.2f GiB each, utilization %.2f)\n",
                json_is_true(json_object_get(plan, "fits")) ? "fits" : "DOES NOT FIT",
                (long long)json_integer_value(json_object_get(gpu, "count")),
                json_string_value(json_object_get(gpu, "label"))
                    ? json_string_value(json_object_get(gpu, "label"))
                    : "GPU",
                json_number_value(json_object_get(gpu, "memory_gib")),
                json_number_value(json_object_get(gpu, "memory_utilization")));
        json_array_foreach(json_object_get(plan, "models"), i, mm) {
            if (!json_is_true(json_object_get(mm, "planned")))
                continue;
            fprintf(f, "  model '%s': %.2f GiB per GPU, headroom %.2f GiB, largest context %lld, "
                       "largest concurrency %lld\n",
                    json_string_value(json_object_get(mm, "name")),
                    (double)json_integer_value(json_object_get(mm, "total_per_gpu_bytes")) /
                        (1024.0 * 1024 * 1024),
                    (double)json_integer_value(json_object_get(mm, "headroom_bytes")) /
                        (1024.0 * 1024 * 1024),
                    (long long)json_integer_value(json_object_get(mm, "max_context")),
                    (long long)json_integer_value(json_object_get(mm, "max_concurrency")));
        }
    }
    fputs(nl ? nl + 1 : body, f);
    free(body);
    return ferror(f) ? ap_error_set(err, AP_ERR_IO, "cannot write output") : AP_OK;
}

static int render(FILE *f, const json_t *a, enum cli_format fmt, int color, ap_error *err)
{
    switch (fmt) {
    case CLI_FMT_JSON:
        if (json_dumpf(a, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) != 0 || fputc('\n', f) == EOF)
            return ap_error_set(err, AP_ERR_IO, "cannot write JSON output");
        return AP_OK;
    case CLI_FMT_TEXT:
        (void)color;
        return write_text(f, a, err);
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
