/*
 * launch.h - the launch spec: how each serving runtime of a deployment is
 * started (docs/runtimes.md).
 *
 * For every runtime that serves at least one model, ap_launch_build()
 * derives the exact command line and environment from the manifest and
 * the memory plan (the analysis document's "plan"): the model path in the
 * release, the planned context, concurrency, tensor parallelism, KV cache
 * dtype and memory utilization, the listen address, and the offline
 * environment of the kind. Flags are never typed twice: the manifest's
 * serve block and target are the only source; the manifest's own `args`
 * are appended as given (the baseline rule AP-LAUNCH-ARGS reports those
 * that contradict the plan). Paths inside the installed release are
 * written "{release}/..." and resolved at install time
 * (ap_launch_resolve) to PREFIX/current/<name>/...
 *
 * The specs go into the analysis ("launch") and the signed lock
 * ("launch"); ap_launch_check() validates them when read back from a lock
 * (hostile input: every string capped, types checked).
 */
#ifndef AIRPACK_RUNTIME_LAUNCH_H
#define AIRPACK_RUNTIME_LAUNCH_H

#include <jansson.h>

#include "error.h"
#include "manifest.h"

#define AP_LAUNCH_RELEASE "{release}"   /* placeholder for the release folder */
#define AP_LAUNCH_MAX_SPECS 1024
#define AP_LAUNCH_MAX_ARGS 4096         /* argv entries in one spec */
#define AP_LAUNCH_MAX_ENV 1024
#define AP_LAUNCH_MAX_STR 16384         /* bytes in one argument or value */

/* The launch specs of m (JSON array, docs/runtimes.md "Launch spec"), one
 * per runtime that serves a model. plan is the analysis' "plan" object (may
 * be NULL: the manifest's serve values are used then). Problems that stop
 * a runtime from being launched as planned (a kind that cannot express the
 * KV dtype, a manifest env value the offline environment overrides, more
 * than one model on a one-model runtime, no program for kind other) are
 * listed in each spec's "problems" and become findings (ap_launch_findings).
 * Errors: AP_ERR_NOMEM. */
int ap_launch_build(const ap_manifest *m, const json_t *plan, json_t **out, ap_error *err) AP_WUR;

/* A copy of spec (new reference) with every "{release}" prefix of argv,
 * env values and working_directory replaced by release_dir. NULL on OOM. */
json_t *ap_launch_resolve(const json_t *spec, const char *release_dir);

/* Check a launch array read from a lock (hostile). name is the file named
 * in messages. AP_ERR_CHECK when malformed. */
int ap_launch_check(const char *name, const json_t *launch, ap_error *err) AP_WUR;

/* Append a finding (AP-LAUNCH, error) per problem of the specs. Returns 0
 * or -1 on allocation failure. */
int ap_launch_findings(const json_t *launch, json_t *findings);

/* The manifest's own args and env that contradict the launch spec of
 * their runtime (docs/runtimes.md, "Contradictions"): a context,
 * concurrency, utilization, tensor parallel size, KV dtype, host or port
 * other than the planned one, or a model other than the installed one
 * (a path or a remote model id). manifest is the analysis' "manifest",
 * launch its "launch". Returns a new array of {runtime, index, path,
 * argument, setting, value, expected, message}, where path is the manifest
 * path of the offending item ("runtimes[0].args[3]", "runtimes[0].env.X");
 * NULL on OOM. */
json_t *ap_launch_contradictions(const json_t *manifest, const json_t *launch);

/* The offline environment of a kind: NULL-terminated NAME, VALUE pairs. */
const char *const *ap_launch_offline_env(ap_runtime_kind kind);

/* Split "host:port" / "[v6]:port" into host and port. 0 on success. */
int ap_launch_split_listen(const char *listen, char *host, size_t host_len, unsigned *port);

/* One word quoted for a systemd ExecStart= line (docs/runtimes.md):
 * bare when it only has safe characters, else in double quotes with \ and
 * " escaped; % doubled (specifiers) and $ doubled (no expansion) always.
 * Returns a malloc'd string or NULL. */
char *ap_launch_quote(const char *word);

/* The argv of a spec as one ExecStart= line (malloc'd, or NULL). */
char *ap_launch_command_line(const json_t *spec);

/* Format a utilization the way the specs do ("0.90", "0.925"). */
void ap_launch_fmt_ratio(double v, char *out, size_t len);

#endif
