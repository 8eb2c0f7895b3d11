/*
 * audit.h - the auditor's view: drift detection of installed releases
 * (like debsums or rpm -V) and a report on a bundle without installing it.
 *
 * Both produce a JSON report document (docs/install.md, "audit"); the CLI
 * renders it as text or JSON, and further renderers (SARIF, Markdown,
 * HTML) take the same document. Nothing here prints.
 *
 * Installed: for each deployment (or the one named), the active release's
 * receipt is re-verified (the minisign signature over the stored lock,
 * against the given trusted keys, or else against the public key recorded
 * at install time, which the report says), the lock is parsed, and every
 * file of the release is re-hashed: "modified" (content, size, mode or
 * type differ), "missing" and "unexpected" (in the release folder but not
 * in the lock; symlinks always count) files are listed. Symlinks are never
 * followed. Bundle: a keep-going verify of every artifact.
 *
 * Policy packs given in the options are evaluated (policy.h) over the
 * analysis document the verified lock carries (the build-time facts, plan
 * and pins), so an auditor can check an installed release or a bundle
 * against today's packs; results go under "policy" in the report.
 */
#ifndef AIRPACK_AUDIT_H
#define AIRPACK_AUDIT_H

struct ap_trust;

#include <jansson.h>

#include "error.h"
#include "sign.h"

#define AP_AUDIT_MAX_DEPTH 64        /* folder depth walked in a release */
#define AP_AUDIT_MAX_LISTED 10000    /* entries listed per category */

typedef struct ap_audit_opts {
    const ap_keyring *keys;           /* trusted keys, or NULL/empty (see below) */
    const struct ap_trust *trust;     /* a site trust file (docs/trust.md): k distinct
                                       * unrevoked 'bundles' keys must have signed,
                                       * counted again now (revocations apply to
                                       * releases installed earlier); or NULL */
    const char *const *policies;      /* policy packs to evaluate over each lock's
                                       * analysis: shipped names or paths,
                                       * NULL-terminated; NULL for none */
    const char *policy_params;        /* site parameters for the packs (YAML) or NULL */
    int all_releases;                 /* every installed release, not only the active one
                                       * (a file of the object store changed in place shows
                                       * in every release that links it) */
} ap_audit_opts;

/* Audit the active release of name (NULL: every deployment) under prefix.
 * With no keys the recorded key is used. On AP_OK *report is a new
 * document whose "summary.passed" says whether the installation is intact
 * (and, with policies, meets them: no error-level finding); errors are for
 * an unreadable prefix or a policy pack that does not load (AP_ERR_INPUT). */
int ap_audit_installed(const char *prefix, const char *name, const ap_audit_opts *o,
                       json_t **report, ap_error *err) AP_WUR;

/* Report on a bundle (verify every artifact, going on past mismatches).
 * With no keys the signature is reported as not checked and the report
 * does not pass. On AP_OK *report is new; an unreadable bundle or a pack
 * that does not load is an error. */
int ap_audit_bundle(const char *path, const ap_audit_opts *o, json_t **report,
                    ap_error *err) AP_WUR;

#endif
