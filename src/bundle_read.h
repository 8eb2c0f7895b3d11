/*
 * bundle_read.h - the streaming bundle verifier (docs/threat-model.md).
 *
 * One pass over a bundle (a file, a pipe, a tape; plain pax/ustar tar or
 * zstd-compressed as a whole), in constant memory:
 *   1. entry 1 must be airpack.lock.json (at most AP_LOCK_MAX_BYTES) and
 *      entry 2 airpack.lock.json.minisig (at most AP_KEYFILE_MAX); both are
 *      held in memory, nothing else is;
 *   2. the signature is checked against the trusted keys BEFORE the lock is
 *      parsed, so an attacker without a trusted key never reaches the JSON
 *      parser;
 *   3. every following entry must be the lock's next artifact: same path,
 *      a regular file (no link, device, FIFO, folder, sparse file), the
 *      lock's mode (no setuid/setgid/sticky), the lock's size; its bytes are
 *      hashed (SHA-256) as they stream past and compared at the entry's end;
 *   4. after the last artifact the archive must end: a proper end-of-archive
 *      marker, then at most AP_BUNDLE_MAX_PADDING bytes of zero padding;
 *      anything else (more entries, trailing data, a decompressed stream
 *      longer than the lock allows) is refused.
 * Only libarchive's tar reader and zstd filter are enabled. Any failure is
 * AP_ERR_CHECK (a hostile or damaged bundle) with a fault code and the
 * artifact it concerns, except an unreadable input file (AP_ERR_INPUT) and
 * a failing sink (its own status).
 *
 * Entry data can be handed to a sink (install's staging writer). The sink
 * sees a file's bytes before its hash is known: it must write them only
 * inside its own staging area and throw everything away when the verify
 * fails. close() is called with ok=1 only after size and hash matched.
 *
 * Hashing uses a second thread on a seekable, uncompressed bundle file
 * (entries are read with pread at their offsets while the main thread
 * walks the tar headers; at most AP_BUNDLE_JOBS entries in flight, one
 * 1 MiB buffer each). Sinks are then called from those threads, one entry
 * per thread at a time: open() on the main thread, write() and close()
 * on a worker. In stream mode a helper thread hashes entries of at least
 * 4 MiB (and calls the sink's write() for them) while the main thread
 * reads on; open() and close() stay on the main thread.
 */
#ifndef AIRPACK_BUNDLE_READ_H
#define AIRPACK_BUNDLE_READ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "lock.h"
#include "sign.h"
#include "trust/cosign.h"

struct ap_trust;

#define AP_BUNDLE_MAX_PADDING (1u << 20)    /* zero bytes allowed after the end marker */
#define AP_BUNDLE_HEADER_ALLOWANCE (64u << 10) /* tar header bytes allowed per entry */
#define AP_BUNDLE_JOBS 2                     /* hashing threads on a seekable file */

/* Why a bundle was refused; stable names (ap_bundle_fault_name) for JSON. */
typedef enum ap_bundle_fault {
    AP_FAULT_NONE = 0,
    AP_FAULT_ARCHIVE,     /* "archive": not a tar (or zstd tar), or corrupt headers */
    AP_FAULT_TRUNCATED,   /* "truncated": the stream ends inside an entry or without end marker */
    AP_FAULT_TRAILING,    /* "trailing-data": bytes after the end of the archive */
    AP_FAULT_EXPANSION,   /* "expansion": more bytes than the lock allows (zip bomb) */
    AP_FAULT_LOCK,        /* "lock": lock missing, misplaced, too large or malformed */
    AP_FAULT_SIGNATURE,   /* "signature": missing, malformed, unknown algorithm, bad */
    AP_FAULT_UNTRUSTED,   /* "untrusted-key": signed by a key that is not trusted */
    AP_FAULT_EXPIRED,     /* "expired": the lock's expiry date has passed */
    AP_FAULT_TYPE,        /* "not-regular": link, hardlink, device, FIFO, folder, sparse */
    AP_FAULT_MODE,        /* "mode": setuid/setgid/sticky or not the lock's mode */
    AP_FAULT_PATH,        /* "unsafe-path": traversal, absolute, control chars, not UTF-8, too long */
    AP_FAULT_DUPLICATE,   /* "duplicate": an entry repeated */
    AP_FAULT_ORDER,       /* "order": a lock artifact at the wrong place */
    AP_FAULT_UNEXPECTED,  /* "unexpected": an entry the lock does not list */
    AP_FAULT_MISSING,     /* "missing": the archive ends before the lock's artifacts do */
    AP_FAULT_SIZE,        /* "size-mismatch" */
    AP_FAULT_SHA256,      /* "sha256-mismatch" */
    AP_FAULT_SINK,        /* "write": the sink (install) failed */
    AP_FAULT_IO,          /* "io": the bundle could not be read */
    AP_FAULT_PART,        /* "part": a part of a split bundle is missing, truncated, too
                             long, or the parts index does not match the bundle */
    AP_FAULT_IN_BASE      /* "in-base": not a fault: a delta bundle's artifact whose bytes
                             are not in the tar (artifact_done status only) */
} ap_bundle_fault;

const char *ap_bundle_fault_name(ap_bundle_fault f);

/* Where data goes while it is verified (install's staging writer). Any
 * callback may be NULL. Callbacks return AP_OK or fill err. */
typedef struct ap_bundle_sink {
    void *ctx;
    /* After the signature and lock checked out, before any artifact.
     * lock_buf/sig_buf are the exact bytes of entries 1 and 2. */
    int (*begin)(void *ctx, const ap_lock *lock, const void *lock_buf, size_t lock_len,
                 const void *sig_buf, size_t sig_len, const ap_pubkey *signer, ap_error *err);
    /* A new artifact (index into lock->artifacts) whose header checked out;
     * *entry is the sink's per-entry handle. */
    int (*open)(void *ctx, size_t index, const ap_artifact *a, void **entry, ap_error *err);
    int (*write)(void *ctx, void *entry, const void *buf, size_t len, ap_error *err);
    /* ok=1: size and hash matched; ok=0: abandoned (the verify failed or
     * another entry failed). Always called once per successful open. */
    int (*close)(void *ctx, void *entry, int ok, ap_error *err);
} ap_bundle_sink;

/* One signature entry of the bundle's head (trust/cosign.h). */
typedef struct ap_bundle_sig {
    char entry[AP_SIG_ENTRY_NAME_MAX]; /* its entry name */
    ap_signature sig;                 /* parsed */
    int known;                        /* the key is trusted (keyring) or in the trust file */
    int valid;                        /* known, and it verifies over this lock */
    int counted;                      /* counted towards acceptance (distinct, in role, unrevoked) */
    char why[32];                     /* why it did not count: "unknown key", "revoked", ... */
    char key_name[72];                /* the trust file's name for the key, or the key file */
    char *text;                       /* the entry's bytes (owned by the result) */
    size_t len;
} ap_bundle_sig;

typedef struct ap_bundle_opts {
    const ap_keyring *keys;           /* trusted keys (any one suffices); required unless
                                       * allow_unsigned or trust */
    const struct ap_trust *trust;     /* a site trust file: k of its "bundles" keys must sign */
    int allow_unsigned;               /* audit of a bundle without keys: record, do not check */
    int keep_going;                   /* on size/hash mismatch record and continue (audit) */
    int threads;                      /* 0: default (parallel where possible), 1: one thread */
    const ap_bundle_sink *sink;       /* NULL: verify only */
    /* Progress: bytes of artifact data checked so far, of total. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    /* Per-artifact outcome (called in lock order once the pass ends, or as
     * the pass goes with threads=1): fault NONE when it matched. */
    void (*artifact_done)(void *ctx, size_t index, const ap_artifact *a, ap_bundle_fault fault,
                          const char *msg);
    void *artifact_ctx;
} ap_bundle_opts;

typedef struct ap_bundle_result {
    ap_lock *lock;                    /* parsed lock (owned; ap_bundle_result_release), or NULL */
    int signature_checked;            /* 1 when verified against opts->keys */
    ap_signature sig;                 /* parsed signature (valid when has_sig) */
    int has_sig;
    ap_pubkey signer;                 /* the trusted key that signed (when signature_checked) */
    uint8_t lock_sha256[AP_SHA256_LEN]; /* hash of the lock bytes */
    ap_bundle_sig sigs[AP_BUNDLE_MAX_SIGS]; /* every signature entry, in bundle order */
    size_t n_sigs;
    size_t sigs_counted, sigs_needed; /* distinct accepted signers, and the threshold */
    ap_bundle_fault fault;            /* first fault, AP_FAULT_NONE on success */
    char fault_path[AP_LOCK_MAX_PATH + 1]; /* entry or artifact the fault is about, "" if none */
    size_t n_checked;                 /* artifacts whose size and hash matched */
    size_t n_failed;                  /* artifacts that failed (keep_going) */
    uint64_t bytes;                   /* artifact bytes hashed */
    int parallel;                     /* 1 when hashed on worker threads */
    size_t parts;                     /* a split bundle: parts read, else 0 */
    size_t n_in_base;                 /* a delta bundle: artifacts the base must supply */
    uint64_t bytes_in_base;           /* their bytes */
} ap_bundle_result;

/* Verify the bundle at path ("-" for standard input) in one pass.
 * A path ending in ".parts" (a parts index) or ".001" (the first part)
 * names a split bundle (parts.h): its parts are read one after another as
 * one stream, never joined on disk; the index (when given, or present
 * beside the first part) must be signed by a trusted key, fixes the
 * parts' number and sizes (a missing, truncated or too long part is
 * fault "part") and must name the bundle's lock; when the bundle is
 * refused, the parts whose SHA-256 differs from the index are named. On
 * success (AP_OK) res->lock is the verified lock. On failure err says
 * what and where ("bundle 'b.tar': artifact 'payload/x': sha256 mismatch")
 * and res->fault/res->fault_path say it for machines; res->lock may still
 * be set (when the lock was read). res is always initialised; release it
 * with ap_bundle_result_release. */
int ap_bundle_verify(const char *path, const ap_bundle_opts *opts, ap_bundle_result *res,
                     ap_error *err) AP_WUR;

/* As ap_bundle_verify, from an open file descriptor (not closed). name is
 * used in messages. */
int ap_bundle_verify_fd(int fd, const char *name, const ap_bundle_opts *opts,
                        ap_bundle_result *res, ap_error *err) AP_WUR;

void ap_bundle_result_release(ap_bundle_result *res);

/* The outcome as a JSON object (the stable `airpack verify --format json`
 * document, docs/install.md): bundle, verified, metadata, signature,
 * artifacts, bytes, lock_sha256 and error {fault, artifact, message} or
 * null. err is the verify's error (NULL or AP_OK when it passed). New
 * reference, or NULL when out of memory. */
json_t *ap_bundle_result_json(const char *bundle, const ap_bundle_result *res,
                              const ap_error *err);

/* Compare an RFC 3339 UTC time ("YYYY-MM-DDTHH:MM:SSZ") with now: 1 when
 * it lies in the past, 0 when not, -1 when it cannot be parsed. */
int ap_rfc3339_past(const char *t);

#endif
