/*
 * units.h - systemd service units of an installed release (docs/install.md,
 * "Service units").
 *
 * For each launch spec of a release's signed lock (docs/runtimes.md),
 * install writes into the release:
 *
 *   systemd/airpack-<name>-<runtime>.service   the unit: ExecStart = the spec's argv
 *   systemd/airpack-<name>-<runtime>.env       its environment (EnvironmentFile=)
 *
 * Both refer to the release through PREFIX/current/<name>, never through
 * the release folder itself, so `airpack rollback` plus a restart runs the
 * previous release with the previous release's unit. The content is a pure
 * function of (absolute prefix, deployment name, lock), so audit
 * regenerates it and reports any difference as drift.
 */
#ifndef AIRPACK_SITE_UNITS_H
#define AIRPACK_SITE_UNITS_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

#define AP_UNITS_DIR "systemd"          /* folder of a release holding the units */

typedef struct ap_unit_file {
    char *path;                         /* relative to the release: systemd/<file> */
    char *content;                      /* NUL-terminated */
    size_t len;                         /* bytes, without the NUL */
} ap_unit_file;

typedef struct ap_unit_files {
    ap_unit_file *v;
    size_t n;
} ap_unit_files;

/* Render the unit and env file of every launch spec of lock (the parsed
 * lock document; no "launch" means no units). prefix must be absolute.
 * release names the release in the units' comment ("1.0.0+1"). Errors:
 * AP_ERR_INPUT for a relative prefix or a prefix systemd cannot quote,
 * AP_ERR_NOMEM. */
int ap_units_render(const char *prefix, const char *name, const char *release,
                    const json_t *lock, ap_unit_files *out, ap_error *err) AP_WUR;
void ap_unit_files_release(ap_unit_files *f);

/* Write files into release_dir (mode 0644, the folder 0755), fsynced. */
int ap_units_write(const char *release_dir, const ap_unit_files *f, ap_error *err) AP_WUR;

/* The launch specs of lock resolved for the site (argv, env, working
 * directory with {release} = PREFIX/current/<name>), each with "unit"
 * (file name), "unit_file" and "env_file" (absolute paths through
 * current/), for `airpack units --format json`. New reference or NULL. */
json_t *ap_units_specs(const char *prefix, const char *name, const json_t *lock);

/* Unit file name of a runtime: airpack-<name>-<runtime>.service */
int ap_units_name(const char *name, const char *runtime, char *out, size_t len);

#endif
