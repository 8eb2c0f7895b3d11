/*
 * fetch.h - read a bundle back from a registry (pull, install oci://).
 *
 * ap_oci_fetch_open() reads what the reference names (index or bundle
 * manifest), the bundle manifest, the lock and the signature entries (each
 * checked against its digest); with keys, one of the signatures must be
 * good BEFORE the lock is parsed (the bundle verifier then applies the
 * full rule again); then the lock is parsed and every manifest must match
 * it exactly (ap_oci_bundle_check, ap_oci_model_check): an extra layer, a
 * missing or foreign entry, another digest or size is refused.
 * ap_oci_fetch_stream() then rebuilds the exact bundle bytes, streaming
 * every artifact blob by its lock digest; a blob longer or shorter than
 * the lock says fails, and with hash set each blob's SHA-256 is checked
 * at its end (pull; install leaves that to the bundle verifier).
 */
#ifndef AIRPACK_REGISTRY_FETCH_H
#define AIRPACK_REGISTRY_FETCH_H

#include "registry/client.h"
#include "registry/oci.h"
#include "sign.h"

typedef struct ap_oci_fetch {
    ap_reg *reg;
    ap_oci_ref ref;
    char digest[AP_OCI_DIGEST_LEN + 1];  /* digest of what the reference names */
    char *lock_buf;
    size_t lock_len;
    ap_oci_sig sigs[AP_OCI_MAX_SIGS];    /* signature entries (buf owned here) */
    size_t n_sigs;
    ap_lock *lock;
    int signature_checked;
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
} ap_oci_fetch;

int ap_oci_fetch_open(const char *reference, const ap_reg_opts *o, const ap_keyring *keys,
                      ap_oci_fetch *f, ap_error *err) AP_WUR;
int ap_oci_fetch_stream(ap_oci_fetch *f, int hash, ap_tar_out_fn out, void *out_ctx,
                        ap_error *err) AP_WUR;
void ap_oci_fetch_close(ap_oci_fetch *f);

/* pull: the exact bundle bytes into output (temporary file beside it,
 * fsync, rename; nothing under the output name on failure). */
int ap_oci_pull(ap_oci_fetch *f, const char *output, ap_error *err) AP_WUR;

/* A descriptor from which the bundle bytes can be read (install): a
 * socket fed by a thread; ap_oci_stream_finish() joins it and returns the
 * thread's status (its error in err). */
typedef struct ap_oci_stream ap_oci_stream;
int ap_oci_stream_start(ap_oci_fetch *f, int *fd, ap_oci_stream **out, ap_error *err) AP_WUR;
int ap_oci_stream_finish(ap_oci_stream *s, ap_error *err);

#endif
