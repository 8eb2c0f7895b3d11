/*
 * policy.h - compliance policy packs (docs/policies.md): load a pack from
 * YAML with a strict schema, let a site override its parameters, and
 * evaluate its rules over the analysis document, appending Findings.
 *
 * A pack is a list of rules; each rule has an id, a title, a severity
 * (error, warning, note), the controls it maps to, a rationale, and either
 * a declarative check (required / allow / deny / equals / match /
 * not_match / min / max / contains, combined with any_of / all_of, over a
 * path such as `models[*].origin.jurisdiction`, with an optional `when`
 * condition and `each` scope) or a built-in (pinned, pins-verified,
 * vram-fits, license-known). Allow-lists are pack parameters (`$name`),
 * which a site overrides with ap_policy_set_params() without editing the
 * pack.
 *
 * Paths resolve against analysis.manifest (the typed manifest JSON, each
 * model with "facts"), except paths whose first key is one of plan, pins,
 * policies, tool, manifest_file, bundle or manifest, which resolve against
 * the analysis document itself.
 *
 * The module never prints; errors carry 'FILE': line L, column C.
 */
#ifndef AIRPACK_POLICY_H
#define AIRPACK_POLICY_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

#define AP_POLICY_MAX_BYTES (1u << 20)   /* pack and params file size cap */
#define AP_POLICY_MAX_RULES 1000          /* rules per pack */
#define AP_POLICY_MAX_PATH_SEGS 32        /* segments in one path */
#define AP_POLICY_MAX_FINDINGS 100000     /* findings one pack may add */

typedef struct ap_policy ap_policy;

/* Load and check a pack. Unknown keys, bad types, unknown severities,
 * malformed paths, invalid regular expressions and references to
 * undeclared parameters are AP_ERR_INPUT with file:line:column.
 * On success *out is the caller's (ap_policy_free). */
int ap_policy_load(const char *path, ap_policy **out, ap_error *err) AP_WUR;
/* As ap_policy_load, from memory; name is used in messages and as "file". */
int ap_policy_parse(const char *name, const void *buf, size_t len, ap_policy **out,
                    ap_error *err) AP_WUR;
void ap_policy_free(ap_policy *p);

/* Load a pack by reference: a shipped pack name ([a-z0-9-]+: baseline,
 * offline-runtime, eu-sovereignty, nist-800-53; embedded in the binary and
 * named "policies/NAME.yaml" in messages) or a path to a pack file. */
int ap_policy_load_ref(const char *ref, ap_policy **out, ap_error *err) AP_WUR;
/* True when ref names a shipped pack ([a-z0-9-]+, under 100 characters)
 * rather than a path. */
int ap_policy_ref_is_name(const char *ref);

/* Pack name (metadata.name) and the file it was loaded from. */
const char *ap_policy_name(const ap_policy *p);
const char *ap_policy_file(const ap_policy *p);
size_t ap_policy_rule_count(const ap_policy *p);

/* Site overrides of pack parameters from a YAML file:
 *   apiVersion: airpack/v1
 *   kind: PolicyParams
 *   packs:
 *     eu-sovereignty:
 *       allowed_regions: [eu-*, DE]
 * Only the section named like the pack applies (other sections are
 * ignored, so one file serves several packs). A parameter the pack does
 * not declare, or a value of the wrong shape (list vs scalar), is
 * AP_ERR_INPUT at its line and column. */
int ap_policy_set_params(ap_policy *p, const char *params_yaml_path, ap_error *err) AP_WUR;

/* Evaluate every rule of p over the analysis document and append one
 * Finding object per violation to the findings array (rule, level,
 * message, subject, subject_name when the subject has a name, path,
 * value when scalar, controls, pack, title, rationale, waived: false).
 * "location" is left to the caller (ap_manifest_locate on "path").
 * Errors: AP_ERR_INPUT when analysis is not an object, AP_ERR_NOMEM. */
int ap_policy_eval(const ap_policy *p, const json_t *analysis, json_t *findings,
                   ap_error *err) AP_WUR;

/* The pack as an analysis "policies" entry (new reference, or NULL when
 * out of memory): {"name","file","version","description","rules": N,
 * "params": {...}, "checks": [{"id","title","severity","controls",
 * "rationale"}]}. Reports use "checks" to say what was checked. */
json_t *ap_policy_to_json(const ap_policy *p);

/* The analysis "summary" for a findings array (new reference):
 * {"errors","warnings","notes","waived","passed"}; counts exclude waived
 * findings; passed is true when no unwaived error remains. */
json_t *ap_findings_summary(const json_t *findings);

/* True when id is an SPDX licence id airpack knows (a common subset of the
 * SPDX list, all valid in CycloneDX's spdx.schema.json). */
int ap_spdx_id_known(const char *id);
/* That list, NULL-terminated. */
const char *const *ap_spdx_ids(void);

/* True when expr is a declared and known licence: an SPDX expression
 * (AND, OR, WITH, parentheses) whose ids are known SPDX ids or
 * LicenseRef-[A-Za-z0-9.-]+. */
int ap_license_expr_known(const char *expr);

#endif
