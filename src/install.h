/*
 * install.h - atomic installation of verified bundles, releases, rollback
 * (docs/install.md; the layout is the brief's §5):
 *
 *   PREFIX/releases/<name>/<version>+<sequence>/  one tree per release, the
 *                                                 bundle's artifact paths
 *   PREFIX/current/<name> -> ../releases/<name>/<version>+<sequence>
 *   PREFIX/.airpack/state.json                    highest sequence per deployment
 *   PREFIX/.airpack/receipts/<name>/<version>+<sequence>/
 *       airpack.lock.json, airpack.lock.json.minisig (the signed lock, as
 *       shipped) and install.json (the install record)
 *   PREFIX/.airpack/lock                          flock: one writer at a time
 *
 * Install streams the bundle once: verify (bundle_read.h) while writing
 * into a fresh staging folder (mode 0700) beside the final one, so on the
 * same filesystem; every file and folder is fsynced; then the receipt and
 * the release are renamed into place and current/<name> is switched with
 * a temporary symlink renamed over it, and state.json is replaced the same
 * way. Killed at any moment, the previous release stays active; leftovers
 * (.staging-*, .old-*, temporary links) are removed by the next install or
 * rollback. Nothing is ever written outside PREFIX, and nothing outside
 * the staging folder before the whole bundle verified.
 *
 * Test hooks: with AIRPACK_TEST_CRASH_AT=N in the environment, the process
 * kills itself (SIGKILL) at the Nth checkpoint of an install (see
 * tests/cli/test_crash.sh; checkpoints sit between every durable step);
 * AIRPACK_TEST_AVAILABLE_BYTES=N makes the free-space check see N bytes.
 */
#ifndef AIRPACK_INSTALL_H
#define AIRPACK_INSTALL_H

#include <jansson.h>
#include <stdint.h>

#include "bundle_read.h"
#include "error.h"
#include "sign.h"

struct ap_trust;

#define AP_INSTALL_RECORD "install.json"
#define AP_INSTALL_STATE_FORMAT "airpack-state/1"
#define AP_INSTALL_RECORD_FORMAT "airpack-install/1"
#define AP_RELEASE_MAX 300 /* bytes in "<version>+<sequence>" */

typedef struct ap_install_opts {
    const char *prefix;               /* install root; created when missing */
    const ap_keyring *keys;           /* trusted keys (at least one, unless trust) */
    const struct ap_trust *trust;     /* the prefix's trust file (docs/trust.md), or NULL */
    int record_trust;                 /* record trust as PREFIX/.airpack/trust.json */
    int allow_downgrade;              /* accept a sequence not above the installed one */
    int threads;                      /* as ap_bundle_opts.threads */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    int input_fd;                     /* > 0: read the bundle from this descriptor (path names it) */
    const char *source_digest;        /* OCI manifest digest to record ("oci_digest"), or NULL */
    /* Called once the signature and the lock checked out and the
     * downgrade check passed, before anything is written under the
     * prefix (the GPU preflight): an error refuses the bundle and leaves
     * the prefix as it was. NULL: none. */
    int (*admit)(void *ctx, const ap_lock *lock, ap_error *err);
    void *admit_ctx;
    /* Keys added to the install record (install.json), read when the
     * record is written (after admit ran); NULL: none. */
    const json_t *record_extra;
} ap_install_opts;

typedef struct ap_install_result {
    ap_bundle_result verify;          /* the verify's outcome (fault, lock) */
    char name[256];                   /* deployment name */
    char release[AP_RELEASE_MAX];     /* "<version>+<sequence>" now active */
    char previous[AP_RELEASE_MAX];    /* the release active before, "" if none */
} ap_install_result;

/* Verify and install the bundle at path ("-": standard input). Errors:
 * AP_ERR_CHECK for a refused bundle (hostile, bad signature) or a refused
 * downgrade, AP_ERR_IO for disk problems (including too little free
 * space), AP_ERR_INPUT for a missing bundle or bad prefix. res is always
 * initialised; release it with ap_install_result_release. */
int ap_install(const char *path, const ap_install_opts *opts, ap_install_result *res,
               ap_error *err) AP_WUR;
void ap_install_result_release(ap_install_result *res);

/* The installed releases as a JSON document (docs/install.md):
 * {"prefix", "deployments": [{"name", "current", "highest_sequence",
 *   "releases": [{"release", "version", "sequence", "active",
 *   "installed_at", "key_id", "artifacts", "bytes"}]}]}. Read-only. */
int ap_install_list(const char *prefix, json_t **out, ap_error *err) AP_WUR;

/* Switch current/<name> to the installed release with the highest
 * sequence below the active one. name may be NULL when the prefix holds
 * one deployment. from/to get the releases (AP_RELEASE_MAX bytes).
 * AP_ERR_CHECK when there is nothing to roll back to. */
int ap_rollback(const char *prefix, const char *name, char *from, char *to,
                ap_error *err) AP_WUR;

/* Remove what a killed install left behind (staging folders, temporary
 * links, receipts without a release). Takes the prefix lock. */
int ap_install_cleanup(const char *prefix, ap_error *err) AP_WUR;

/* Paths of a deployment's current release, for audit: the release folder
 * and its receipt folder (new strings), and the release name. */
int ap_install_current(const char *prefix, const char *name, char **release_dir,
                       char **receipt_dir, char release[AP_RELEASE_MAX], ap_error *err) AP_WUR;

/* The deployment names installed under prefix (sorted, NULL-terminated,
 * new array of new strings; free with ap_strv_free). */
int ap_install_names(const char *prefix, char ***names, ap_error *err) AP_WUR;
void ap_strv_free(char **v);

/* The sequence of a release folder name "<version>+<sequence>"; 0 when it
 * has none or it does not parse. */
uint64_t ap_release_seq(const char *rel);

#endif
