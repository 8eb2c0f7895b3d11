/*
 * report.h - the analysis document (docs/check-json.md) rendered for
 * people and tools: text, JSON, SARIF 2.1.0, Markdown and a self-contained
 * HTML audit report (docs/reports.md).
 *
 * Every renderer reads only the analysis document, so `check`, `audit` and
 * `build` (which embeds the report in the bundle) produce the same report
 * from the same analysis. The HTML has no external resources (no scripts,
 * fonts, images or links it loads) and escapes every string it prints;
 * Markdown escapes table and markup characters.
 *
 * Optional members the renderers use when present: analysis.policies[*]
 * .checks (ap_policy_to_json) for the rules that were checked,
 * analysis.bundle {file, sha256, lock_sha256, created, expires, signer:
 * {keyid, file}, verified} and analysis.artifacts (the lock's artifacts)
 * for audit evidence, pins[*].hashes [{path, sha256}] for per-file
 * hashes of folder pins, and analysis.generated (a time).
 */
#ifndef AIRPACK_REPORT_H
#define AIRPACK_REPORT_H

#include <jansson.h>
#include <stdio.h>

#include "error.h"

/* Write analysis to f as format ("text", "json", "sarif", "markdown" or
 * "md", "html"). Errors: AP_ERR_INPUT for an unknown format, AP_ERR_IO
 * when writing fails, AP_ERR_NOMEM. Colour is never used (the CLI adds
 * its own). */
int ap_report_write(FILE *f, const json_t *analysis, const char *format, ap_error *err) AP_WUR;

/* The SARIF 2.1.0 log for an analysis (new reference, or NULL when out of
 * memory): one run, the rules with their controls and levels, one result
 * per finding with its manifest location (line, column) and logical path;
 * waived findings carry an accepted external suppression. */
json_t *ap_report_sarif(const json_t *analysis);

#endif
