/*
 * analyze.h - everything `airpack check` does, as one JSON document.
 *
 * ap_analyze() takes a loaded manifest and: checks the content pins
 * (pins.h), reads the facts of each model from its files, plans GPU memory,
 * evaluates the policy packs (the manifest's `policies:` plus opts), applies
 * waivers, locates each finding in the manifest (file, line, column) and
 * sums up. The result is the analysis document of docs/check-json.md; it is
 * printed by `check --format json`, rendered by the report writers, and
 * embedded in the bundle's lock by `build`.
 */
#ifndef AIRPACK_ANALYZE_H
#define AIRPACK_ANALYZE_H

#include <jansson.h>

#include "error.h"
#include "manifest.h"

typedef struct ap_analyze_opts {
    const char *const *policies;   /* extra policy packs (paths or shipped names) */
    size_t n_policies;
    const char *waivers;           /* waivers file or NULL */
    const char *policy_params;     /* site parameters for the packs (YAML) or NULL */
    const char *today;             /* YYYY-MM-DD for waiver expiry; NULL = today (UTC) */
    const char *manifest_name;     /* how the document names the manifest ("manifest_file",
                                      findings' location.file); NULL = the path as given.
                                      build passes the file name alone, so the lock does not
                                      depend on how the manifest's path was typed */
    int skip_pins;                 /* do not hash the inputs (plan, sbom) */
    int skip_policies;             /* do not evaluate policies (plan) */
    int skip_facts;                /* do not read model files (sbom of a manifest without models) */
} ap_analyze_opts;

/* On success *out is a new analysis document (the caller's). Errors are
 * for inputs that cannot be read at all (AP_ERR_INPUT/AP_ERR_IO): failed
 * checks are findings in the document, and summary.passed is false. */
int ap_analyze(const ap_manifest *m, const ap_analyze_opts *opts, json_t **out,
               ap_error *err) AP_WUR;

/* summary.passed of an analysis document. */
int ap_analysis_passed(const json_t *analysis);

/* Recount summary from the findings (after waivers changed them). */
void ap_analysis_summarize(json_t *analysis);

#endif
