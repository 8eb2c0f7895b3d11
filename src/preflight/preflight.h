/*
 * preflight.h - does the plan signed into a release fit the GPUs of this
 * host? (docs/preflight.md)
 *
 * The lock of a bundle carries the manifest (with its serve settings and
 * the target it was planned for), the facts read from the model files and
 * the memory plan. ap_preflight_check() re-runs that plan with the
 * planner's public API (plan.h) against the GPUs NVML found (gpuinfo.h):
 * the host's GPU count, and per GPU a budget of
 *     min(total memory x target.memory_utilization, free memory + credit)
 * where the credit is what the release being replaced is planned to use
 * on that GPU (its memory comes free when it stops). It also compares the
 * manifest's target.requires (driver, cuda, compute_capability).
 *
 * Verdicts, per model and overall:
 *   fits           the planned context and concurrency fit every GPU used;
 *   fits-reduced   they do not, but a smaller context (at the planned
 *                  concurrency) or a smaller concurrency (at the planned
 *                  context) would: the report says which;
 *   does-not-fit   too few GPUs, the weights do not fit, or a requirement
 *                  is not met;
 *   unknown        NVML is not available (no driver, no GPU library), or
 *                  a model could not be planned at build time.
 * Per GPU: budget, planned use, headroom and fits.
 *
 * The lock is hostile until verified; callers pass only a verified lock.
 * Even so every value read from it is type-checked and bounded.
 */
#ifndef AIRPACK_PREFLIGHT_H
#define AIRPACK_PREFLIGHT_H

#include <jansson.h>

#include "error.h"
#include "lock.h"
#include "preflight/gpuinfo.h"
#include "sign.h"

#define AP_PREFLIGHT_FORMAT "airpack-preflight/1"
#define AP_PREFLIGHT_MIN_CONTEXT 256   /* a smaller context is not offered as "fits-reduced" */

typedef enum ap_pf_verdict {
    AP_PF_FITS = 0,
    AP_PF_REDUCED = 1,
    AP_PF_NOFIT = 2,
    AP_PF_UNKNOWN = 3
} ap_pf_verdict;

typedef struct ap_preflight_opts {
    int ignore_free;                  /* budget from total memory only (GPUs in use by this release) */
    const json_t *credit_plan;        /* the plan (lock analysis.plan) of the release being
                                       * replaced: its gpus[].used_bytes count as free; or NULL */
} ap_preflight_opts;

/* Check the lock document (the whole verified airpack.lock.json) against
 * the host. On AP_OK *report is a new document (docs/preflight.md) whose
 * "verdict" is one of the names above. Errors: AP_ERR_CHECK for a lock
 * whose analysis cannot be read back (no manifest, malformed facts),
 * AP_ERR_INPUT from the planner, AP_ERR_NOMEM. */
int ap_preflight_check(const json_t *lock_doc, const ap_hostgpus *host, const ap_preflight_opts *o,
                       json_t **report, ap_error *err) AP_WUR;

/* The verdict of a report, AP_PF_UNKNOWN when absent. */
ap_pf_verdict ap_preflight_verdict(const json_t *report);
const char *ap_pf_verdict_name(ap_pf_verdict v);

/* Compare two dotted versions number by number ("550.100" > "550.54").
 * Returns <0, 0, >0; a version that is not dotted numbers sorts lowest. */
int ap_version_cmp(const char *a, const char *b);

/* The verified lock of an installed release (installed.c): release NULL
 * means the active one of name (name NULL: the prefix's only deployment).
 * The receipt's signature is checked against keys, or, when keys is NULL
 * or empty, against the public key the install record holds (which proves
 * less: *key_source says "trusted keys" or "install record"). *release_out
 * (AP_RELEASE_MAX bytes, may be NULL) gets the release. Errors:
 * AP_ERR_CHECK for a bad signature or lock, AP_ERR_INPUT when nothing is
 * installed. *out is the caller's (ap_lock_free). */
int ap_installed_lock(const char *prefix, const char *name, const char *release,
                      const ap_keyring *keys, ap_lock **out, const char **key_source,
                      char *release_out, ap_error *err) AP_WUR;

/* Credit for ap_preflight_opts.credit_plan from a lock: its plan, where
 * each GPU the release uses counts with its whole budget (a runtime such
 * as vLLM takes memory_utilization of the GPU whatever the model needs).
 * New reference, or NULL when the lock has no plan. */
json_t *ap_preflight_credit(const ap_lock *lock);

/* What `airpack preflight` and `airpack install` run: read this host's
 * GPUs (gpuinfo.h), take as credit the active release of the lock's
 * deployment under prefix (prefix may be NULL: no credit; its receipt is
 * checked against the key its install record holds, and a receipt that
 * does not verify gives no credit), and check the lock document. */
int ap_preflight_run(const json_t *lock_doc, const char *prefix, int ignore_free, json_t **report,
                     ap_error *err) AP_WUR;

/* Read a bundle's lock and check its signature against keys, without
 * reading the rest of the bundle (the artifacts are verified by install).
 * *lock_doc is a new reference to the verified lock document. Errors as
 * ap_bundle_verify's for the first two entries. */
int ap_bundle_signed_lock(const char *path, const ap_keyring *keys, json_t **lock_doc,
                          ap_error *err) AP_WUR;

#endif
