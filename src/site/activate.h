/*
 * activate.h - health-gated activation of an installed release, with
 * automatic rollback (docs/install.md, "Activation").
 *
 * ap_activate() starts the active release of a deployment (current/<name>)
 * and proves that it serves before it is kept:
 *   1. link: each service unit of the release (site/units.h) is linked
 *      into the systemd unit folder (the link goes through
 *      PREFIX/current/<name>, so it follows a rollback);
 *   2. reload, restart: `SM daemon-reload`, then `SM restart UNIT` for
 *      each unit, SM being the service manager command (systemctl by
 *      default; the tests use a small supervisor with the same verbs);
 *   3. health: each runtime's health endpoint (the launch spec's, /health
 *      or /api/version for Ollama) answers 200 within the timeout, over
 *      HTTP with libcurl;
 *   4. models: GET /v1/models names the installed model (the manifest's
 *      model name, or its file name, or that name without extension).
 * If a step fails and the deployment has a previous release: current is
 * switched back (ap_rollback), the previous release's units are linked
 * and restarted, and its health and models are checked the same way; units
 * only the failed release had are stopped and unlinked. Without a previous
 * release the failed units are stopped. Either way the result is AP_ERR_CHECK
 * with what failed, and the record goes into the failed release's install
 * record ("activation") and the deployment's activation log
 * (PREFIX/.airpack/activations/<name>.json, the last 50).
 *
 * Crash safety: a marker PREFIX/.airpack/activating-<name>.json (written
 * atomically before step 1, removed when the activation or its rollback
 * is complete) tells the next run that an activation was interrupted; it
 * then activates what is current again, with the marker's previous release
 * as the rollback target. One activation at a time per prefix (flock on
 * PREFIX/.airpack/activate.lock).
 *
 * Test hook: AIRPACK_TEST_ACTIVATE_KILL=STEP (link, reload, restart,
 * health, models, rollback) makes the process SIGKILL itself when it
 * reaches that step.
 */
#ifndef AIRPACK_SITE_ACTIVATE_H
#define AIRPACK_SITE_ACTIVATE_H

#include <jansson.h>

#include "error.h"
#include "install.h"

#define AP_ACTIVATE_DEFAULT_SM "systemctl"
#define AP_ACTIVATE_DEFAULT_DIR "/etc/systemd/system"
#define AP_ACTIVATE_DEFAULT_TIMEOUT 120.0   /* seconds per health wait */
#define AP_ACTIVATE_LOG_MAX 50              /* entries kept in the activation log */

typedef struct ap_activate_opts {
    const char *prefix;
    const char *name;                 /* deployment; NULL: the prefix's only one */
    const char *systemd_dir;          /* NULL: AP_ACTIVATE_DEFAULT_DIR */
    const char *service_manager;      /* command, split on blanks (no shell); NULL: systemctl */
    double timeout_s;                 /* health wait per unit; <= 0: the default */
    const char *previous;             /* rollback target; NULL: state.json's "previous" */
    /* progress lines ("restarting airpack-x.service"), or NULL */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} ap_activate_opts;

typedef struct ap_activate_result {
    char name[256];
    char release[AP_RELEASE_MAX];     /* the release activated */
    char previous[AP_RELEASE_MAX];    /* the rollback target, "" if none */
    int ok;                           /* the release serves */
    int resumed;                      /* an interrupted activation was taken up */
    int rolled_back;                  /* current was switched back to previous */
    int previous_ok;                  /* ... and it serves again */
    json_t *record;                   /* the activation record (owned) */
} ap_activate_result;

/* Activate (see above). AP_OK: the release serves. AP_ERR_CHECK: a step
 * failed (err says which and what happened next; res says it for
 * machines). AP_ERR_INPUT: nothing installed, no units, bad options.
 * res is always initialised; release with ap_activate_result_release. */
int ap_activate(const ap_activate_opts *o, ap_activate_result *res, ap_error *err) AP_WUR;
void ap_activate_result_release(ap_activate_result *res);

#endif
