/*
 * cosign.h - the signature entries at the head of a bundle
 * (docs/bundle-format.md, section 5).
 *
 * A bundle starts with its lock, then one or more signature entries, all
 * before the first artifact:
 *   airpack.lock.json                    the lock
 *   airpack.lock.json.minisig            the build's signature (always)
 *   airpack.lock.json.<KEYID>.minisig    co-signatures, KEYID = 16 uppercase
 *                                        hex digits of the signer's key id,
 *                                        in ascending KEYID order
 * Every signature entry is a stock minisign signature over the same lock
 * bytes. The entries are not artifacts of the lock (they sign it); their
 * number (AP_BUNDLE_MAX_SIGS) and sizes (AP_KEYFILE_MAX) are capped.
 *
 * This module reads a bundle's head without trusting it (inspect, sign)
 * and rewrites the head of a bundle file with a new set of signature
 * entries, copying the payload once (copy_file_range: a clone where the
 * filesystem can).
 */
#ifndef AIRPACK_TRUST_COSIGN_H
#define AIRPACK_TRUST_COSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sign.h"

#define AP_BUNDLE_MAX_SIGS 16          /* signature entries in one bundle */
#define AP_SIG_ENTRY_PREFIX "airpack.lock.json."
#define AP_SIG_ENTRY_SUFFIX ".minisig"
#define AP_SIG_ENTRY_NAME_MAX 48       /* "airpack.lock.json.<16 hex>.minisig" + NUL */

/* "airpack.lock.json.<KEYID>.minisig" for a co-signature. */
void ap_sig_entry_name(const uint8_t keyid[AP_KEYID_LEN], char out[AP_SIG_ENTRY_NAME_MAX]);
/* 1 when name looks like a signature entry ("airpack.lock.json.*.minisig"
 * or "airpack.lock.json.minisig"): the head of the bundle goes on. */
int ap_sig_entry_like(const char *name);
/* 1 when name is a well-formed co-signature name; *keyid set. */
int ap_sig_entry_keyid(const char *name, uint8_t keyid[AP_KEYID_LEN]);

typedef struct ap_head_sig {
    char name[AP_SIG_ENTRY_NAME_MAX];  /* entry name */
    char *text;                        /* the signature file's bytes (owned, NUL-terminated) */
    size_t len;                        /* bytes */
} ap_head_sig;

typedef struct ap_bundle_head {
    char *lock;                        /* the lock's bytes (owned, NUL-terminated) */
    size_t lock_len;
    ap_head_sig sigs[AP_BUNDLE_MAX_SIGS + 1]; /* one spare: the test generator writes an over-limit head */
    size_t n_sigs;
    int compressed;                    /* zstd as a whole */
    uint64_t payload_off;              /* bytes of the (decompressed) tar before the first artifact */
    uint64_t mtime;                    /* the lock entry's mtime (seconds) */
} ap_bundle_head;

/* Read the lock and every signature entry of the bundle file at path,
 * without checking anything but the head's shape: entry 1 is the lock (at
 * most AP_LOCK_MAX_BYTES), then signature entries (at most
 * AP_BUNDLE_MAX_SIGS, each at most AP_KEYFILE_MAX bytes), then an
 * artifact. AP_ERR_CHECK when it is not such a bundle, AP_ERR_INPUT when it
 * cannot be opened. h is always initialised; release it. */
int ap_bundle_head_read(const char *path, ap_bundle_head *h, ap_error *err) AP_WUR;
void ap_bundle_head_release(ap_bundle_head *h);

/* Sort h's co-signatures into bundle order (the entry named
 * airpack.lock.json.minisig first, then by name). */
void ap_bundle_head_sort(ap_bundle_head *h);

/* The bytes of h's head as ap_bundle_head_write writes it (the lock and
 * signature entries with their tar headers, no end marker): the new
 * payload_off. */
int ap_bundle_head_len(const ap_bundle_head *h, uint64_t *len, ap_error *err) AP_WUR;

/* Write a bundle to out: h's lock and signature entries (in h's order,
 * with h's names), then the bytes of the bundle in from h->payload_off on
 * (its artifacts and end marker). out may equal in: the new file is
 * written beside it and renamed over it. A plain tar's payload is copied
 * once with copy_file_range (a clone on filesystems that share extents);
 * a zstd bundle is decompressed and compressed again (zstd level 3). On
 * failure out is untouched. */
int ap_bundle_head_write(const char *in, const char *out, const ap_bundle_head *h,
                         ap_error *err) AP_WUR;

#endif
