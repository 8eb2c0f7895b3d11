/*
 * oci.h - container images as runtimes (see source.h): an OCI image
 * layout folder (index.json, oci-layout, blobs/sha256/<hex>), an
 * oci-archive tar (the same layout in a tar, as `skopeo copy oci-archive:`
 * writes it) or a docker-archive tar (`podman save`, `docker save`:
 * manifest.json, the config <hex>.json, the layers).
 *
 * At check time every blob a manifest or index names is verified: present,
 * of the declared size and, for a tar, hashing to its digest (a layout
 * folder's blobs are pinned by their names like a hub cache's). Docker
 * archives name no sizes: their config must hash to its name and each
 * layer to the config's rootfs.diff_ids. Layers are never unpacked.
 */
#ifndef AIRPACK_SOURCE_OCI_H
#define AIRPACK_SOURCE_OCI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../digest.h"
#include "../error.h"

#define AP_OCI_MT_INDEX        "application/vnd.oci.image.index.v1+json"
#define AP_OCI_MT_MANIFEST     "application/vnd.oci.image.manifest.v1+json"
#define AP_OCI_MT_CONFIG       "application/vnd.oci.image.config.v1+json"
#define AP_DOCKER_MT_LIST      "application/vnd.docker.distribution.manifest.list.v2+json"
#define AP_DOCKER_MT_MANIFEST  "application/vnd.docker.distribution.manifest.v2+json"

#define AP_OCI_MAX_JSON        (4u << 20)    /* an index, manifest or config, bytes */
#define AP_OCI_MAX_DESCS       4096          /* descriptors in one document */
#define AP_OCI_MAX_DEPTH       4             /* nested indexes */
#define AP_OCI_MAX_ENTRIES     100000        /* entries of an image tar */
#define AP_OCI_MAX_KEPT        (64u << 20)   /* JSON bytes kept from a tar */

typedef struct ap_oci_desc {
    char media_type[128];
    char hex[AP_SHA256_HEX_LEN + 1];   /* sha256 digest */
    uint64_t size;
    json_t *annotations;               /* or NULL (borrowed from the document) */
    json_t *platform;                  /* or NULL (borrowed) */
} ap_oci_desc;

typedef struct ap_oci_doc {
    int is_index;                      /* manifests[] (an index) or layers[] (a manifest) */
    ap_oci_desc config;                /* a manifest's config */
    ap_oci_desc *d;                    /* an index's manifests or a manifest's layers */
    size_t n;
    json_t *annotations;               /* the document's, or NULL (borrowed) */
    json_t *root;                      /* owned */
} ap_oci_doc;

/* Parse an image index or an image manifest (OCI or Docker schema 2).
 * Only sha256 digests are accepted. */
int ap_oci_parse(const char *name, const void *buf, size_t len, ap_oci_doc *out,
                 ap_error *err) AP_WUR;
void ap_oci_doc_release(ap_oci_doc *d);

typedef struct ap_docker_image {
    char *config;                      /* entry name of the config */
    char **layers;                     /* entry names */
    size_t n_layers;
    char **tags;                       /* RepoTags */
    size_t n_tags;
} ap_docker_image;

/* Parse a docker-archive's manifest.json (safe relative entry names). */
int ap_docker_manifest_parse(const char *name, const void *buf, size_t len,
                             ap_docker_image **out, size_t *n, ap_error *err) AP_WUR;
void ap_docker_images_free(ap_docker_image *v, size_t n);

#endif
