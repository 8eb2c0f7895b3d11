/*
 * analyze.c - the check pipeline behind `airpack check` (see analyze.h).
 */
#include "analyze.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pins.h"

static void locate_findings(const ap_manifest *m, json_t *findings)
{
    size_t i;
    json_t *f;
    json_array_foreach(findings, i, f) {
        const char *path = json_string_value(json_object_get(f, "path"));
        const char *subject = json_string_value(json_object_get(f, "subject"));
        ap_loc loc = {0, 0};
        if (json_object_get(f, "location"))
            continue;
        if (path)
            ap_manifest_locate(m, path, &loc);
        else if (subject)
            ap_manifest_locate(m, subject, &loc);
        else
            continue;
        json_object_set_new(f, "location", json_pack("{s:s, s:i, s:i}", "file", m->file, "line",
                                                     (json_int_t)loc.line, "column",
                                                     (json_int_t)loc.column));
    }
}

void ap_analysis_summarize(json_t *analysis)
{
    json_t *findings = json_object_get(analysis, "findings"), *f;
    json_int_t errors = 0, warnings = 0, notes = 0, waived = 0;
    size_t i;
    json_array_foreach(findings, i, f) {
        const char *level = json_string_value(json_object_get(f, "level"));
        if (json_is_true(json_object_get(f, "waived"))) {
            waived++;
            continue;
        }
        if (!level)
            continue;
        if (!strcmp(level, "error"))
            errors++;
        else if (!strcmp(level, "warning"))
            warnings++;
        else
            notes++;
    }
    json_object_set_new(analysis, "summary",
                        json_pack("{s:I, s:I, s:I, s:I, s:b}", "errors", errors, "warnings",
                                  warnings, "notes", notes, "waived", waived, "passed",
                                  errors == 0));
}

int ap_analysis_passed(const json_t *analysis)
{
    return json_is_true(json_object_get(json_object_get(analysis, "summary"), "passed"));
}

int ap_analyze(const ap_manifest *m, const ap_analyze_opts *opts, json_t **out, ap_error *err)
{
    static const ap_analyze_opts defaults = {0};
    json_t *a = NULL, *manifest = NULL, *pins = NULL, *findings = NULL, *policies = NULL;
    int rc = AP_OK;

    *out = NULL;
    if (!opts)
        opts = &defaults;
    a = json_object();
    manifest = ap_manifest_to_json(m);
    pins = json_array();
    findings = json_array();
    policies = json_array();
    if (!a || !manifest || !pins || !findings || !policies) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    json_object_set_new(a, "tool", json_pack("{s:s, s:s}", "name", "airpack", "version",
                                             AIRPACK_VERSION));
    json_object_set_new(a, "manifest_file", json_string(m->file));

    if (!opts->skip_pins && (rc = ap_pins_check(m, pins, findings, err)))
        goto fail;

    json_object_set(a, "manifest", manifest);
    json_object_set(a, "pins", pins);
    json_object_set_new(a, "plan", json_null());
    json_object_set(a, "policies", policies);
    json_object_set(a, "findings", findings);
    locate_findings(m, findings);
    ap_analysis_summarize(a);
    *out = a;
    a = NULL;
fail:
    json_decref(a);
    json_decref(manifest);
    json_decref(pins);
    json_decref(findings);
    json_decref(policies);
    return rc;
}
