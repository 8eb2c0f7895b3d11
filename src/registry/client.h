/*
 * client.h - a small OCI Distribution API client on libcurl (push, pull,
 * install from oci://). Everything a registry answers is hostile: bodies
 * are capped, digests are checked, blob sizes are enforced while they
 * stream. Auth: basic and bearer-token challenges, credentials from
 * REGISTRY_AUTH_FILE or ~/.docker/config.json ("auths" entries). TLS with
 * the system CA store (or ca_file); plain HTTP only when insecure is set.
 */
#ifndef AIRPACK_REGISTRY_CLIENT_H
#define AIRPACK_REGISTRY_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "registry/oci.h"

#define AP_REG_CHUNK (16u << 20)     /* bytes per upload PATCH */

typedef struct ap_reg_opts {
    const char *ca_file;             /* extra CA bundle (PEM), or NULL */
    int insecure;                    /* plain HTTP (--insecure-registry) */
    int push;                        /* ask for push scope */
    const char *mount_from;          /* repository to mount missing blobs from, or NULL */
} ap_reg_opts;

typedef struct ap_reg ap_reg;

int ap_reg_open(const ap_oci_ref *ref, const ap_reg_opts *o, ap_reg **out, ap_error *err) AP_WUR;
void ap_reg_close(ap_reg *r);

/* A target (oci.h) that uploads into the registry: HEAD (then a mount
 * when mount_from is set), chunked upload, manifests by digest, the index
 * by tag. */
void ap_reg_target(ap_reg *r, ap_oci_target *t);

/* GET a manifest or index (ref: a tag or a digest) with its digest; a
 * digest reference must match the bytes. *buf is the caller's. */
int ap_reg_manifest_get(ap_reg *r, const char *ref, char **buf, size_t *len,
                        char digest[AP_OCI_DIGEST_LEN + 1], ap_error *err) AP_WUR;

/* GET a small blob into memory: at most max bytes, exactly size when
 * size is not UINT64_MAX, and its SHA-256 must be the digest. */
int ap_reg_blob_get_mem(ap_reg *r, const char *digest, uint64_t size, char **buf, size_t *len,
                        ap_error *err) AP_WUR;

/* Stream a blob of exactly size bytes to sink; more or fewer bytes fail
 * (AP_ERR_CHECK); the hash is the caller's to check. */
int ap_reg_blob_get(ap_reg *r, const char *digest, uint64_t size,
                    int (*sink)(void *ctx, const void *buf, size_t len, ap_error *err),
                    void *ctx, ap_error *err) AP_WUR;

/* "host[:port]" for messages. */
const char *ap_reg_host(const ap_reg *r);

#endif
