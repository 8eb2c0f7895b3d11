/*
 * oci.h - the OCI mapping of a bundle (docs/oci.md) and its hostile-input
 * parsers, the byte-exact tar reassembly, the OCI image layout writer and
 * the OCI Distribution client behind push, pull and install from oci://.
 *
 * A bundle maps to (everything reachable from one tag, no referrers API):
 *   tag -> OCI image index (the "bundle index")
 *     manifests[0]: the bundle manifest, annotation org.airpack.kind=bundle
 *       config:    airpack.lock.json       (AP_OCI_MT_LOCK)
 *       layers[0..]: the signature entries (AP_OCI_MT_SIG): airpack.lock.json.minisig,
 *                    then co-signatures airpack.lock.json.<KEYID>.minisig
 *       layers[1..]: every artifact of the lock, in lock order, uncompressed,
 *                    digest = the lock's sha256, annotation org.airpack.path
 *     manifests[1..]: one ModelPack artifact per model (org.airpack.kind=model)
 *       config: application/vnd.cncf.model.config.v1+json from the model facts
 *       layers: the model's files (weight / weight.config / doc .raw),
 *               annotation org.cncf.model.filepath
 * Entries are found by annotation, never by artifactType alone.
 * The bundle bytes are rebuilt from the lock (tar headers are deterministic:
 * docs/bundle-format.md) and the blobs, in lock order.
 */
#ifndef AIRPACK_REGISTRY_OCI_H
#define AIRPACK_REGISTRY_OCI_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "error.h"
#include "lock.h"
#include "sign.h"

#ifndef AP_OCI_MT_INDEX /* also in source/oci.h */
#define AP_OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
#endif
#ifndef AP_OCI_MT_MANIFEST
#define AP_OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#endif
#define AP_OCI_AT_BUNDLE "application/vnd.airpack.bundle.v1"
#define AP_OCI_MT_LOCK "application/vnd.airpack.lock.v1+json"
#define AP_OCI_MT_SIG "application/vnd.airpack.lock.signature.v1.minisign"
#define AP_OCI_MT_FILE "application/vnd.airpack.file.v1.raw"
#define AP_MP_AT_MANIFEST "application/vnd.cncf.model.manifest.v1+json"
#define AP_MP_MT_CONFIG "application/vnd.cncf.model.config.v1+json"
#define AP_MP_MT_WEIGHT "application/vnd.cncf.model.weight.v1.raw"
#define AP_MP_MT_WCONFIG "application/vnd.cncf.model.weight.config.v1.raw"
#define AP_MP_MT_DOC "application/vnd.cncf.model.doc.v1.raw"
#define AP_MP_ANN_FILEPATH "org.cncf.model.filepath"
#define AP_OCI_ANN_KIND "org.airpack.kind"
#define AP_OCI_ANN_PATH "org.airpack.path"
#define AP_OCI_ANN_MODEL "org.airpack.model"
#define AP_OCI_ANN_TITLE "org.opencontainers.image.title"
#define AP_OCI_ANN_REF "org.opencontainers.image.ref.name"

#define AP_OCI_MANIFEST_MAX (32u << 20)   /* bytes of one index or manifest read */
#define AP_OCI_DIGEST_LEN 71              /* "sha256:" + 64 hex */
#define AP_OCI_MAX_SIGS 16                /* signature entries (trust/cosign.h) */
#define AP_OCI_MAX_INDEX 1024             /* entries of a bundle index (the bundle + models) */
#define AP_OCI_SIG_NAME_MAX 48

/* One signature entry of the bundle's head. */
typedef struct ap_oci_sig {
    char name[AP_OCI_SIG_NAME_MAX];      /* entry name */
    const char *buf;                     /* bytes (borrowed) */
    size_t len;
    char digest[AP_OCI_DIGEST_LEN + 1];
} ap_oci_sig;

/* ---- references: oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX] ---- */

typedef struct ap_oci_ref {
    char host[256];                 /* host[:port] */
    char repo[256];                 /* path components, lowercase */
    char tag[129];                  /* "" when a digest is given */
    char digest[AP_OCI_DIGEST_LEN + 1]; /* "" when a tag is given */
} ap_oci_ref;

/* 1 when s starts with "oci://". */
int ap_oci_is_ref(const char *s);
/* Parse a reference (AP_ERR_INPUT when malformed). No tag: "latest". */
int ap_oci_ref_parse(const char *s, ap_oci_ref *out, ap_error *err) AP_WUR;
/* "sha256:<64 lowercase hex>" */
int ap_oci_digest_valid(const char *s);
void ap_oci_digest_of(const void *buf, size_t len, char out[AP_OCI_DIGEST_LEN + 1]);

/* ---- the content a bundle maps to ---- */

typedef struct ap_reg_doc {
    char *buf;                      /* exact bytes (owned) */
    size_t len;
    char digest[AP_OCI_DIGEST_LEN + 1];
    const char *media_type;
} ap_reg_doc;

typedef struct ap_oci_model {
    char *name;                     /* model name (payload/models/<name>/) */
    ap_reg_doc config;              /* the ModelPack config */
    ap_reg_doc manifest;            /* the ModelPack manifest */
} ap_oci_model;

typedef struct ap_oci_content {
    const char *lock_buf;           /* borrowed */
    size_t lock_len;
    char lock_digest[AP_OCI_DIGEST_LEN + 1];
    ap_oci_sig sigs[AP_OCI_MAX_SIGS];  /* signature entries, bundle order (digests filled) */
    size_t n_sigs;
    ap_oci_model *models;
    size_t n_models;
    ap_reg_doc bundle;              /* the bundle manifest */
    ap_reg_doc index;               /* the bundle index (what the tag names) */
} ap_oci_content;

/* The media type of one lock artifact's layer. */
const char *ap_oci_layer_media_type(const ap_artifact *a);

/* Build the manifests of a bundle from its lock (parsed: lock; exact
 * bytes: lock_buf) and signature bytes. tag, when not NULL, is written
 * nowhere but the index's annotations stay tag-free (the tag is the
 * registry's or index.json's business). Deterministic. */
int ap_oci_content_build(const char *lock_buf, size_t lock_len, const ap_oci_sig *sigs,
                         size_t n_sigs, const ap_lock *lock, ap_oci_content *out,
                         ap_error *err) AP_WUR;
void ap_oci_content_release(ap_oci_content *c);

/* ---- parsing what a registry serves (hostile) ---- */

typedef struct ap_reg_desc {
    char digest[AP_OCI_DIGEST_LEN + 1];
    uint64_t size;
} ap_reg_desc;

/* An index or a manifest's top level: which one, and for an index the
 * bundle manifest's descriptor and the model manifests' descriptors
 * (new array *models, n_models). name is used in messages. */
typedef struct ap_oci_top {
    int is_index;                   /* 1: an index; 0: a bundle manifest itself */
    ap_reg_desc bundle;             /* index: the entry annotated kind=bundle */
    ap_reg_desc *models;            /* index: entries annotated kind=model */
    char **model_names;
    size_t n_models;
} ap_oci_top;

int ap_oci_top_parse(const char *name, const void *buf, size_t len, ap_oci_top *out,
                     ap_error *err) AP_WUR;
void ap_oci_top_release(ap_oci_top *t);

/* A bundle manifest: the lock's and the signature's descriptors; the
 * artifact layers (n_layers, path/digest/size each) are kept for
 * ap_oci_bundle_check. */
typedef struct ap_oci_layer {
    char *path;
    char digest[AP_OCI_DIGEST_LEN + 1];
    uint64_t size;
} ap_oci_layer;

typedef struct ap_oci_bundle_manifest {
    ap_reg_desc lock;
    ap_oci_layer sigs[AP_OCI_MAX_SIGS]; /* signature layers: path = entry name */
    size_t n_sigs;
    ap_oci_layer *layers;           /* artifact layers (after the signatures) */
    size_t n_layers;
} ap_oci_bundle_manifest;

int ap_oci_bundle_manifest_parse(const char *name, const void *buf, size_t len,
                                 ap_oci_bundle_manifest *out, ap_error *err) AP_WUR;
void ap_oci_bundle_manifest_release(ap_oci_bundle_manifest *m);

/* The bundle manifest's layers must be exactly the lock's artifacts, in
 * order (path, digest, size): AP_ERR_CHECK otherwise. */
int ap_oci_bundle_check(const char *name, const ap_oci_bundle_manifest *m, const ap_lock *lock,
                        ap_error *err) AP_WUR;

/* A ModelPack manifest of model `model`: every layer must be one of the
 * lock's files of that model (payload/models/<model>/<filepath>) with the
 * lock's digest and size, each exactly once, all of them. */
int ap_oci_model_check(const char *name, const void *buf, size_t len, const char *model,
                       const ap_lock *lock, ap_error *err) AP_WUR;

/* ---- the tar stream: rebuilding the bundle bytes ---- */

/* Where artifact data comes from: fill(ctx, index, a, put, put_ctx) must
 * call put(put_ctx, buf, len) with exactly a->size bytes in total, in
 * order, and return AP_OK; put returns AP_OK or an error status. */
typedef int (*ap_tar_put_fn)(void *put_ctx, const void *buf, size_t len, ap_error *err);
typedef int (*ap_tar_fill_fn)(void *ctx, size_t index, const ap_artifact *a, ap_tar_put_fn put,
                              void *put_ctx, ap_error *err);
/* Where the bundle bytes go; is_data: the bytes are artifact data as
 * given to put (else tar headers, padding, the end marker, or the lock
 * and signature entries' data). */
typedef int (*ap_tar_out_fn)(void *ctx, const void *buf, size_t len, int is_data, ap_error *err);

/* Write the bundle's exact bytes: lock, signature, then every artifact
 * (lock order) through fill, as `airpack build` wrote them (pax, mtime =
 * the lock's created time, uid/gid 0, the lock's modes). */
int ap_tar_rebuild(const char *lock_buf, size_t lock_len, const ap_oci_sig *sigs, size_t n_sigs,
                   const ap_lock *lock, ap_tar_fill_fn fill, void *fill_ctx, ap_tar_out_fn out,
                   void *out_ctx, ap_error *err) AP_WUR;

/* ---- reading a bundle file for export and push ---- */

/* Where the content goes (an OCI layout folder, a registry): has() says a
 * blob is there already (then it is not sent); put_begin/put_data/put_end
 * send one blob; put_doc sends an in-memory blob or manifest. */
typedef struct ap_oci_target {
    void *ctx;
    int (*has)(void *ctx, const char *digest, uint64_t size, int *yes, ap_error *err);
    int (*blob_begin)(void *ctx, const char *digest, uint64_t size, ap_error *err);
    int (*blob_data)(void *ctx, const void *buf, size_t len, ap_error *err);
    int (*blob_end)(void *ctx, int ok, ap_error *err);
    int (*manifest)(void *ctx, const ap_reg_doc *doc, const char *tag, ap_error *err);
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
} ap_oci_target;

typedef struct ap_oci_send_stats {
    size_t blobs, blobs_sent, blobs_skipped;
    uint64_t bytes_sent, bytes_skipped;
} ap_oci_send_stats;

/* Read the bundle file once (plain or zstd), check that its bytes are
 * exactly what ap_tar_rebuild gives from its lock (else AP_ERR_CHECK: it
 * could not be pulled back byte-identical), and send every blob the
 * target lacks, then the model manifests, the bundle manifest and the
 * index (tagged `tag`). *index_digest gets the index's digest. */
int ap_oci_send_bundle(const char *bundle, const ap_oci_target *t, const char *tag,
                       char index_digest[AP_OCI_DIGEST_LEN + 1], ap_oci_send_stats *stats,
                       ap_error *err) AP_WUR;

/* Export to an OCI image layout folder (created; blobs/sha256/, index.json
 * naming the index with org.opencontainers.image.ref.name = tag). */
int ap_oci_export_layout(const char *bundle, const char *dir, const char *tag,
                         char index_digest[AP_OCI_DIGEST_LEN + 1], ap_oci_send_stats *stats,
                         void (*progress)(void *, uint64_t, uint64_t), void *progress_ctx,
                         ap_error *err) AP_WUR;

#endif
