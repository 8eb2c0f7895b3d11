/*
 * waiver.h - waivers: an auditor-approved, time-limited exception to one
 * rule for one subject (docs/policies.md).
 *
 *   apiVersion: airpack/v1
 *   kind: Waivers
 *   waivers:
 *     - rule: EU-MODEL-JURISDICTION
 *       subject: models[0]            # key path, or the item's name
 *       justification: reviewed by legal, ticket LEG-42
 *       approver: dpo@example.eu
 *       expires: 2027-03-31           # YYYY-MM-DD, valid through that day
 *
 * A waived finding stays in the findings, marked "waived": true with the
 * waiver attached; it no longer counts towards the exit code. An expired
 * waiver does not apply; the finding then carries "waiver_expired" so the
 * report can say so.
 */
#ifndef AIRPACK_WAIVER_H
#define AIRPACK_WAIVER_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

#define AP_WAIVERS_MAX 10000          /* waivers per file */
#define AP_WAIVERS_MAX_BYTES (1u << 20)

typedef struct ap_waivers ap_waivers;

/* Load and check a waivers file: unknown keys, missing fields, malformed
 * or impossible dates are AP_ERR_INPUT at file:line:column. *out is the
 * caller's (ap_waivers_free). */
int ap_waivers_load(const char *path, ap_waivers **out, ap_error *err) AP_WUR;
int ap_waivers_parse(const char *name, const void *buf, size_t len, ap_waivers **out,
                     ap_error *err) AP_WUR;
void ap_waivers_free(ap_waivers *w);
size_t ap_waivers_count(const ap_waivers *w);

/* Mark the findings each waiver covers (same rule; subject equal to the
 * finding's "subject" or "subject_name") and still valid on today
 * ("YYYY-MM-DD"): "waived": true, "waiver": {rule, subject, justification,
 * approver, expires, file, line}. A matching expired waiver sets
 * "waiver_expired" instead. w may be NULL (nothing to apply).
 * Errors: AP_ERR_INPUT for a malformed today, AP_ERR_NOMEM. */
int ap_waivers_apply(const ap_waivers *w, json_t *findings, const char *today,
                     ap_error *err) AP_WUR;

/* Today's date in UTC as "YYYY-MM-DD" from the system clock (never from
 * SOURCE_DATE_EPOCH: a stale epoch must not revive an expired waiver).
 * out has 11 bytes. */
void ap_today_utc(char out[11]);

#endif
