/*
 * report_int.h - helpers shared by the report renderers (report.c,
 * report_html.c); not part of the public API.
 */
#ifndef AIRPACK_REPORT_INT_H
#define AIRPACK_REPORT_INT_H

#include <jansson.h>
#include <stdio.h>

#define AP_ARRAY_LEN_RP(a) (sizeof(a) / sizeof((a)[0]))

/* A string member, or "" when absent. */
const char *rp_str(const json_t *o, const char *key);
long long rp_int(const json_t *o, const char *key);
int rp_waived(const json_t *finding);
/* Every rule that was checked (from analysis.policies[*].checks) and every
 * rule that has findings: [{id, title, level, controls, rationale, pack}]
 * (new reference, NULL when out of memory). */
json_t *rp_rules(const json_t *analysis);
/* Unwaived and waived findings of rule id. */
void rp_rule_counts(const json_t *analysis, const char *id, size_t *open, size_t *waived);
/* Markdown-escaped text (tables stay intact; no raw HTML). */
void rp_md(FILE *f, const char *s);
/* The self-contained HTML audit report; 0 or -1 on a write error. */
int rp_write_html(FILE *f, const json_t *analysis);

#endif
