/*
 * lock.h - the bundle's index, airpack.lock.json (docs/bundle-format.md).
 *
 * The lock is the first entry of a bundle and is signed (entry two,
 * airpack.lock.json.minisig). It lists every other entry, in order, with
 * path, size, sha256, mode and role. ap_lock_parse() treats its input as
 * hostile even after the signature checked out: sizes and counts are
 * capped, paths must be safe relative UTF-8 without control characters,
 * duplicates are refused, every field is type-checked. Errors name the
 * file with line and column (jansson's positions), AP_ERR_CHECK for a
 * lock that parses as JSON but breaks the format (a hostile bundle),
 * AP_ERR_INPUT for text that is not JSON at all.
 */
#ifndef AIRPACK_LOCK_H
#define AIRPACK_LOCK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "error.h"

#define AP_LOCK_NAME "airpack.lock.json"
#define AP_LOCK_SIG_NAME "airpack.lock.json.minisig"
#define AP_SUMS_NAME "SHA256SUMS"
#define AP_SBOM_NAME "sbom.cdx.json"
#define AP_REPORT_NAME "report.sarif.json"
#define AP_LOCK_FORMAT "airpack-bundle/1"
#define AP_LOCK_MAX_BYTES (16u << 20)      /* lock size cap */
#define AP_LOCK_MAX_ARTIFACTS 100000       /* artifact count cap */
#define AP_LOCK_MAX_PATH 1024              /* bytes in one artifact path */

typedef enum ap_role {
    AP_ROLE_CHECKSUMS, /* SHA256SUMS */
    AP_ROLE_SBOM,      /* sbom.cdx.json */
    AP_ROLE_REPORT,    /* the compliance report */
    AP_ROLE_MODEL,     /* payload/models/NAME/... */
    AP_ROLE_RUNTIME,   /* payload/runtimes/NAME/... */
    AP_ROLE_FILE,      /* payload/files/TARGET... */
    AP_ROLE_TRUST      /* trust.json: a newer site trust file (docs/trust.md), last */
} ap_role;

typedef struct ap_artifact {
    char *path;                      /* entry name in the tar, safe relative path */
    uint64_t size;                   /* bytes */
    uint8_t sha256[AP_SHA256_LEN];
    unsigned mode;                   /* 0644 or 0755 */
    ap_role role;
    int in_base;                     /* "in_base": true: a delta bundle leaves its bytes
                                        out of the tar; install takes it from the site's
                                        object store (payload roles only) */
} ap_artifact;

typedef struct ap_lock {
    char *name;                      /* metadata.name */
    char *version;                   /* metadata.version */
    uint64_t sequence;               /* metadata.sequence */
    char *created;                   /* RFC 3339 UTC */
    char *expires;                   /* RFC 3339 UTC or NULL */
    ap_artifact *artifacts;          /* in bundle order */
    size_t n_artifacts;
    uint64_t total_bytes;            /* sum of artifact sizes (checked) */
    json_t *json;                    /* the whole document (owned) */
} ap_lock;

/* Parse and check a lock; *out is the caller's (ap_lock_free). */
int ap_lock_parse(const char *name, const void *buf, size_t len, ap_lock **out,
                  ap_error *err) AP_WUR;
void ap_lock_free(ap_lock *lock);

const char *ap_role_name(ap_role r);
/* Role from its name; returns 0 on success, -1 when unknown. */
int ap_role_from_name(const char *s, ap_role *out);

#endif
