/*
 * store.h - the content-addressed store of an install prefix
 * (docs/install.md, "The object store").
 *
 *   PREFIX/.airpack/objects/sha256/<hex>     a file of mode 0644
 *   PREFIX/.airpack/objects/sha256/<hex>.x   the same content, mode 0755
 *
 * Install puts each verified artifact once into the store and hard-links
 * it into the release (releases/<name>/<release>/<path>), so identical
 * files across releases take their space once. An object is shared by
 * every release that links it: the link count of an object file is the
 * number of release files using it plus one, so an object with a link
 * count of 1 is used by no release and prune removes it. Objects are never
 * trusted when reused: install re-hashes an object before it links it into
 * a new release (a damaged object is replaced by the fresh bytes).
 *
 * Prune: remove old releases (never the active one nor the previous one,
 * which rollback returns to), then every object no release uses. Each
 * release is first renamed to a dot-name (.old-*), then its receipt, then
 * both are deleted, so a kill at any moment leaves every remaining release
 * whole; the next install, rollback or prune removes what is left over.
 *
 * Test hook: AIRPACK_TEST_CRASH_AT=N kills prune (SIGKILL) at its Nth
 * checkpoint (tests/cli/test_store.sh).
 */
#ifndef AIRPACK_SITE_STORE_H
#define AIRPACK_SITE_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "error.h"
#include "lock.h"

#define AP_STORE_DIR ".airpack/objects/sha256"

/* The object's path for content sha256 with mode (0644 or 0755) into out
 * (PATH_MAX bytes). */
int ap_store_object_path(const char *prefix, const uint8_t sha256[AP_SHA256_LEN], unsigned mode,
                         char *out, size_t n, ap_error *err) AP_WUR;

/* Create PREFIX/.airpack/objects/sha256 when missing. */
int ap_store_init(const char *prefix, ap_error *err) AP_WUR;

typedef enum ap_store_state {
    AP_STORE_ABSENT = 0,             /* no object */
    AP_STORE_GOOD,                   /* present, size (and hash when checked) match */
    AP_STORE_DAMAGED                 /* present, but size or hash differ */
} ap_store_state;

/* Look the object up; rehash: read it and compare its SHA-256 (else only
 * type and size are checked). */
ap_store_state ap_store_lookup(const char *prefix, const uint8_t sha256[AP_SHA256_LEN],
                               unsigned mode, uint64_t size, int rehash);

/* Link the (good) object into the folder dirfd as base. */
int ap_store_link(const char *prefix, const uint8_t sha256[AP_SHA256_LEN], unsigned mode,
                  int dirfd, const char *base, ap_error *err) AP_WUR;

/* Adopt the complete, fsynced file dirfd/base as the object (hard link
 * into the store). An existing object of the same content is replaced
 * only when replace (it was found damaged). A filesystem without hard
 * links leaves the file unshared (not an error). */
int ap_store_adopt(const char *prefix, const uint8_t sha256[AP_SHA256_LEN], unsigned mode,
                   int dirfd, const char *base, int replace, ap_error *err) AP_WUR;

/* Bytes of lock's artifacts already in the store (a cheap check: present
 * with the right size), for install's free-space check. */
uint64_t ap_store_bytes_present(const char *prefix, const ap_lock *lock);

typedef struct ap_prune_opts {
    const char *prefix;
    const char *name;                /* one deployment, or NULL for all */
    unsigned keep;                   /* newest releases kept per deployment (>= 1); the
                                        active and the previous one are always kept */
    int dry_run;                     /* say what would go, remove nothing */
} ap_prune_opts;

/* Prune. *report (new) is {"prefix", "dry_run", "releases_removed":
 * [{"name", "release", "bytes_freed"}], "releases_kept": [{"name",
 * "release", "why"}], "objects_removed", "object_bytes_freed",
 * "bytes_freed"}. Takes the prefix lock. */
int ap_prune(const ap_prune_opts *o, json_t **report, ap_error *err) AP_WUR;

#endif
