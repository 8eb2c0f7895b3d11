/*
 * bundle_write.h - the deterministic bundle writer (docs/bundle-format.md).
 *
 * Building a bundle takes four steps:
 *   1. a plan: every artifact that goes into the bundle, from the manifest
 *      (models, runtimes, files: folders walked, sorted, links refused)
 *      and from memory (the SBOM, a report);
 *   2. pass one: ap_bundle_plan_hash() hashes every input (streaming
 *      SHA-256, one file per thread on up to opts.threads threads), sorts
 *      the plan into bundle order and writes SHA256SUMS;
 *   3. the lock: ap_lock_build() and ap_lock_dump() give airpack.lock.json,
 *      which the caller signs (sign.h);
 *   4. pass two: ap_bundle_write() writes the pax tar into a temporary file
 *      in the output's folder, hashing each input again as it is archived
 *      (on a second thread): an input that changed since pass one fails the
 *      build. Only a complete bundle is renamed onto the output name; on
 *      any error the temporary file is removed and the output is untouched.
 * Output is byte-for-byte reproducible: entries in plan order, mtime from
 * SOURCE_DATE_EPOCH (or AP_DEFAULT_EPOCH), uid/gid 0, no user or group
 * names, modes 0644/0755, no atime/ctime, pax records only where ustar
 * cannot hold a value (long names, sizes of 8 GiB and more).
 * Memory use does not depend on input sizes (a few 1 MiB buffers).
 */
#ifndef AIRPACK_BUNDLE_WRITE_H
#define AIRPACK_BUNDLE_WRITE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "digest.h"
#include "error.h"
#include "lock.h"
#include "manifest.h"

#define AP_DEFAULT_EPOCH 946684800ull        /* 2000-01-01T00:00:00Z, when SOURCE_DATE_EPOCH is unset */
#define AP_BUNDLE_MAX_EXTRA_BYTES (256u << 20) /* cap on one in-memory artifact */

typedef struct ap_bundle_item {
    char *path;                     /* entry name in the bundle (safe, relative) */
    char *src;                      /* source file, or NULL for in-memory data */
    int follow;                     /* the source may be a symlink (a manifest path itself) */
    void *data;                     /* in-memory bytes (owned), when src is NULL */
    ap_role role;
    unsigned mode;                  /* 0644 or 0755 */
    uint64_t size;                  /* bytes (pass one) */
    uint8_t sha256[AP_SHA256_LEN];  /* pass one's hash */
    uint64_t dev, ino;              /* the source file's identity in pass one */
    int known;                      /* sha256 comes from a checked pin: pass one skips it */
    uint64_t mtime_ns, ctime_ns;    /* the source's mtime and ctime when planned (one pass) */
    int in_base;                    /* delta: the base has this content; listed in the lock
                                       ("in_base": true), not written into the tar */
} ap_bundle_item;

typedef struct ap_bundle_plan {
    ap_bundle_item *items;          /* artifacts after SHA256SUMS, bundle order once hashed */
    size_t n, cap;
    char *sums;                     /* SHA256SUMS text (after ap_bundle_plan_hash) */
    size_t sums_len;                /* bytes */
    uint8_t sums_sha256[AP_SHA256_LEN];
    uint64_t bytes;                 /* sum of the items' sizes */
    int hashed;                     /* ap_bundle_plan_hash() succeeded */
    int one_pass;                   /* ap_bundle_plan_prepare(): file hashes are filled by
                                       ap_bundle_write_one_pass() */
} ap_bundle_plan;

/* Progress: phase 1 = hashing, 2 = writing; bytes done of total. Called
 * from the calling thread only. */
typedef void (*ap_bundle_progress_fn)(void *ctx, int phase, uint64_t done, uint64_t total);

void ap_bundle_plan_init(ap_bundle_plan *p);
void ap_bundle_plan_release(ap_bundle_plan *p);

/* Add one regular file as entry `entry`. follow: accept a symlink as the
 * source (else it is refused). The mode is 0755 when any execute bit is
 * set, else 0644. Errors: AP_ERR_INPUT (missing, not a regular file,
 * unsafe entry name). */
int ap_bundle_plan_add_file(ap_bundle_plan *p, const char *entry, const char *src, int follow,
                            ap_role role, ap_error *err) AP_WUR;

/* Add a manifest path: a folder's regular files as PREFIX/<relative path>
 * (symlinks, devices and the like inside are refused), or a single file as
 * PREFIX/<its name>. */
int ap_bundle_plan_add_path(ap_bundle_plan *p, const char *prefix, const char *src, ap_role role,
                            ap_error *err) AP_WUR;

/* Add in-memory bytes (copied; at most AP_BUNDLE_MAX_EXTRA_BYTES) as entry
 * `entry` with mode 0644: the SBOM (AP_ROLE_SBOM, AP_SBOM_NAME) or a
 * report (AP_ROLE_REPORT, a top-level name). */
int ap_bundle_plan_add_memory(ap_bundle_plan *p, const char *entry, const void *data, size_t len,
                              ap_role role, ap_error *err) AP_WUR;

/* Add every model, runtime (with a path) and file of the manifest:
 *   payload/models/<name>/...  payload/runtimes/<name>/...
 *   payload/files/<target, or the path as written>[/...] */
int ap_bundle_plan_add_manifest(ap_bundle_plan *p, const ap_manifest *m, ap_error *err) AP_WUR;

/* Delta bundles: mark every payload item (model, runtime, file) and the
 * report whose SHA-256 some artifact of base has as in_base (after
 * ap_bundle_plan_hash); SHA256SUMS and the SBOM always travel. Returns the
 * number marked; *bytes gets their size. */
size_t ap_bundle_plan_mark_base(ap_bundle_plan *p, const ap_lock *base, uint64_t *bytes);

/* Bytes of the items that go into the tar (all but the in_base ones); the
 * lock and its signature are not items. */
uint64_t ap_bundle_plan_travel_bytes(const ap_bundle_plan *p);

/* One pass (a seekable, uncompressed output): sort into bundle order and
 * refuse duplicate entries like ap_bundle_plan_hash, but hash only the
 * in-memory items; file items keep a pin's hash (known) or zeros, and
 * SHA256SUMS is written with those. Every size and path is known, and
 * hashes have a fixed width, so the lock and signature built from this
 * plan have their final length (ap_bundle_write_one_pass). */
int ap_bundle_plan_prepare(ap_bundle_plan *p, ap_error *err) AP_WUR;

/* Bytes the bundle will take at most (uncompressed tar with headers), for
 * the free-space check; lock_len/sig_len may be estimates. */
uint64_t ap_bundle_plan_estimate(const ap_bundle_plan *p, size_t lock_len, size_t sig_len);

/* Refuse when the folder of output has less than need bytes free
 * (AP_ERR_IO, "not enough free space"). */
int ap_bundle_check_space(const char *output, uint64_t need, ap_error *err) AP_WUR;

/* Use hashes that were already checked against the files (content pins
 * that `airpack check` found "ok") as pass one's hashes: hex[i] is the
 * lowercase SHA-256 of the source file srcs[i] (a path exactly as the plan
 * holds it). Such items are not hashed in pass one; pass two still hashes
 * them and fails the build if they changed since. Sources not in the plan
 * are ignored. Returns the number of items marked, or -1 when out of
 * memory. */
ssize_t ap_bundle_plan_use_hashes(ap_bundle_plan *p, char *const *srcs,
                                  const char (*hex)[AP_SHA256_HEX_LEN + 1], size_t n);

/* Pass one: sort into bundle order (role, then path bytewise), refuse two
 * inputs with the same entry name, hash everything on up to threads
 * threads (0: the number of CPUs, at most 8) and write SHA256SUMS. */
int ap_bundle_plan_hash(ap_bundle_plan *p, unsigned threads, ap_bundle_progress_fn progress,
                        void *progress_ctx, ap_error *err) AP_WUR;

/* The entry mtime (seconds since the epoch): SOURCE_DATE_EPOCH when set
 * (a decimal number; anything else is AP_ERR_INPUT), else AP_DEFAULT_EPOCH. */
int ap_source_date_epoch(uint64_t *out, ap_error *err) AP_WUR;

/* The lock document (new reference in *out): format, metadata from the
 * manifest (created = epoch as RFC 3339 UTC; expires made UTC), target
 * (analysis.manifest.target), the analysis (a reference is taken),
 * artifacts (SHA256SUMS first, then the plan) and totals. */
int ap_lock_build(const ap_manifest *m, json_t *analysis, const ap_bundle_plan *p, uint64_t epoch,
                  json_t **out, ap_error *err) AP_WUR;

/* The lock's exact bytes: 2-space indented JSON, keys in insertion order,
 * ASCII only, one trailing newline. *buf is the caller's (free). */
int ap_lock_dump(const json_t *lock, char **buf, size_t *len, ap_error *err) AP_WUR;

/* The signature's trusted comment:
 * "file:airpack.lock.json\tname:NAME\tversion:VERSION\tsequence:N". */
int ap_lock_trusted_comment(const char *name, const char *version, uint64_t sequence, char *out,
                            size_t outlen);

typedef struct ap_bundle_write_opts {
    int zstd_level;                 /* 0: no compression; 1..19: zstd level */
    uint64_t mtime;                 /* entry mtime, seconds (ap_source_date_epoch) */
    ap_bundle_progress_fn progress; /* phase 2 */
    void *progress_ctx;
    uint64_t volume_size;           /* > 0: write parts output.001, ... of this many bytes
                                       (parts.h) instead of one file */
    struct ap_parts *parts;         /* volume_size > 0: filled with the parts written
                                       (bundle, volume_size, size, parts; caller releases) */
    int sync;                       /* 1: the bundle file is on disk before it gets its name
                                       (writeback started every 32 MiB, fsync, rename, fsync
                                       of the folder); 0: rename only, the kernel writes it
                                       back later (as tar does). Volumes are always synced. */
} ap_bundle_write_opts;

/* 1 when output is "-" (standard output) or an existing FIFO or character
 * device: the bundle is written as it goes (two passes; no temporary file,
 * no rename), since nothing can be filled in afterwards. */
int ap_bundle_output_is_stream(const char *output);

/* Builds the lock from the plan as it is now and signs it: *lock and *sig
 * are new buffers (free). */
typedef int (*ap_bundle_head_fn)(void *ctx, const ap_bundle_plan *p, char **lock,
                                 size_t *lock_len, char **sig, size_t *sig_len, ap_error *err);

/* One pass (docs/bundle-format.md, "How airpack build writes it"): for a
 * plan from ap_bundle_plan_prepare and a plain (uncompressed, unsplit)
 * output file. head() is called before anything is written, with the
 * placeholder hashes (its lock and signature reserve their places at the
 * front), then again once the payload is written and every file hashed
 * (once, on a helper thread, while it is archived); SHA256SUMS, lock and
 * signature are then written over the reserved bytes (same lengths). The
 * bundle is the same bytes as the two-pass path writes. A file whose size,
 * mtime, ctime or inode changed since it was planned, or that changes while
 * it is read, or whose hash differs from its checked pin, fails the build. */
int ap_bundle_write_one_pass(ap_bundle_plan *p, const char *output, ap_bundle_head_fn head,
                             void *head_ctx, const ap_bundle_write_opts *opts,
                             ap_error *err) AP_WUR;

/* Pass two: write the bundle (lock, signature, SHA256SUMS, the plan's
 * items) to a temporary file beside output, then rename it onto output.
 * Each source file must still be the same file with the same size and
 * hash as in pass one (else AP_ERR_INPUT, "changed while building"). On
 * any failure output is untouched and the temporary file is gone. */
int ap_bundle_write(const ap_bundle_plan *p, const char *output, const void *lock, size_t lock_len,
                    const void *sig, size_t sig_len, const ap_bundle_write_opts *opts,
                    ap_error *err) AP_WUR;

/* Install handlers so SIGINT, SIGTERM, SIGHUP and SIGQUIT remove the
 * temporary file of the bundle being written before the process dies
 * with that signal; SIGXFSZ is ignored so an over-size write fails with
 * an error. Called once by the CLI. One bundle write at a time per process. */
void ap_bundle_cleanup_on_signals(void);
/* The same for a bundle file another module writes (airpack pull): the
 * temporary file to remove on those signals, and its end. */
void ap_bundle_tmp_register(const char *path);
void ap_bundle_tmp_unregister(void);

/* Read a bundle's first two entries without trusting them (inspect):
 * the lock (at most AP_LOCK_MAX_BYTES) and the signature (at most
 * AP_KEYFILE_MAX, or *sig NULL when entry two is not the signature).
 * New buffers, NUL-terminated, the caller's. AP_ERR_CHECK when the file is
 * not a bundle, AP_ERR_INPUT when it cannot be opened. */
int ap_bundle_read_head(const char *path, char **lock, size_t *lock_len, char **sig,
                        size_t *sig_len, ap_error *err) AP_WUR;

#endif
