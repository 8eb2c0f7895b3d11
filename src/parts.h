/*
 * parts.h - split volumes: a bundle cut into NAME.001, NAME.002, ... and
 * its signed parts index NAME.parts (docs/bundle-format.md, section 9).
 *
 * The parts are plain byte ranges of the single-file bundle: `cat
 * NAME.0*` gives it back exactly. Every part but the first and the last
 * holds exactly volume_size bytes; the first holds volume_size minus a
 * signature reserve (AP_PARTS_SIG_RESERVE), plus what co-signatures added
 * since (at most volume_size). The parts index is a small JSON document (format
 * "airpack-parts/1") listing each part's file name, size and SHA-256 and
 * the SHA-256 of the bundle's lock; it is signed like the lock, in
 * minisign's format (NAME.parts.minisig), so stock `minisign -Vm
 * NAME.parts -p key.pub` checks it.
 *
 *   - ap_partw_*: the part writer behind `build --volume-size` and
 *     `split`: bytes in, parts out (temporary files renamed into place
 *     only when all are complete; removed on failure or a fatal signal);
 *   - ap_parts_parse/ap_parts_dump: the index (parsed as hostile input:
 *     sizes, counts and names capped and cross-checked);
 *   - ap_parts_check: every part on its own against a verified index
 *     (`verify --parts`).
 */
#ifndef AIRPACK_PARTS_H
#define AIRPACK_PARTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "error.h"
#include "sign.h"
#include "trust/cosign.h"

#define AP_PARTS_FORMAT "airpack-parts/1"
#define AP_PARTS_SUFFIX ".parts"
#define AP_PARTS_SIG_SUFFIX ".parts.minisig"
#define AP_PARTS_MAX 999                   /* parts per bundle (three digits) */
#define AP_PARTS_INDEX_MAX (1u << 20)      /* bytes in an index file */
#define AP_PARTS_NAME_MAX 255              /* bytes in a part's file name */
#define AP_VOLUME_MIN 512u                 /* smallest volume size, bytes */

/* The signature reserve: part 1 of a split bundle is written this many
 * bytes shorter than volume_size, so that `airpack sign` can add
 * co-signatures to the head (part 1 grows, no other part moves) and part 1
 * still fits the volume with the most signatures a bundle may hold. Sized
 * from the caps: AP_BUNDLE_MAX_SIGS entries of at most AP_KEYFILE_MAX bytes
 * each, plus 1024 bytes of tar header each (a ustar header and room for a
 * pax extended header): 16 * (4096 + 1024) = 81920 bytes (80 KiB). For a
 * volume smaller than 4 reserves (320 KiB, tests only) the reserve is a
 * quarter of the volume, rounded down to 512 bytes. */
#define AP_PARTS_SIG_RESERVE ((uint64_t)AP_BUNDLE_MAX_SIGS * (AP_KEYFILE_MAX + 1024u))
/* The reserve build and split leave for a volume size (see above). */
uint64_t ap_parts_default_reserve(uint64_t volume_size);
/* The fewest bytes part 1 of a bundle of more than one part may hold:
 * volume_size - AP_PARTS_SIG_RESERVE (at least 1). */
uint64_t ap_parts_first_min(uint64_t volume_size);

/* Parse a volume size: a number with an optional unit (B; K, M, G, T or
 * KB, MB, GB, TB: powers of 1000; KiB, MiB, GiB, TiB: powers of 1024;
 * case-insensitive) or a preset: fat32 (4 GiB - 1), dvd (4.7 GB = 4700000000),
 * dvd-dl (8.5 GB), bd25 (25 GB), bd50 (50 GB). Returns 0, or -1 when the
 * text is not a size or the size is below AP_VOLUME_MIN. */
int ap_volume_size_parse(const char *s, uint64_t *out);

typedef struct ap_part {
    char *file;                      /* file name, "<bundle>.NNN" (no folder) */
    uint64_t size;                   /* bytes */
    uint8_t sha256[AP_SHA256_LEN];
} ap_part;

typedef struct ap_parts {
    char *bundle;                    /* the single-file bundle's name (no folder) */
    char *name;                      /* the lock's metadata.name */
    char *version;                   /* metadata.version */
    uint64_t sequence;               /* metadata.sequence */
    uint8_t lock_sha256[AP_SHA256_LEN]; /* SHA-256 of airpack.lock.json's bytes */
    uint64_t volume_size;            /* bytes per part (see above: first, last) */
    uint64_t size;                   /* bytes of the whole bundle (sum of parts) */
    ap_part *parts;
    size_t n;
    int width;                       /* digits in the part names: 3 or 4 */
} ap_parts;

/* Part names keep a leading 0 so that `cat NAME.0*` takes every part in
 * order: three digits (.001 ... .099) for up to 99 parts, four (.0001 ...
 * .0999) for 100 to 999. The width for a number of parts: */
int ap_parts_width(uint64_t nparts);
/* "<bundle>.NNN" (width digits) for part i (1-based), a new string, or NULL. */
char *ap_part_name(const char *bundle, size_t i, int width);

/* Parse an index; *out is the caller's (ap_parts_free). AP_ERR_INPUT for
 * text that is not JSON, AP_ERR_CHECK for an index that breaks the
 * format. Errors name the file (and line/column for JSON). */
int ap_parts_parse(const char *name, const void *buf, size_t len, ap_parts **out,
                   ap_error *err) AP_WUR;
void ap_parts_free(ap_parts *p);
/* Free the members of p (not p itself) and zero it. */
void ap_parts_release(ap_parts *p);

/* The index's exact bytes (2-space indented JSON, one trailing newline). */
int ap_parts_dump(const ap_parts *p, char **buf, size_t *len, ap_error *err) AP_WUR;

/* The index's trusted comment:
 * "file:<bundle>.parts\tname:NAME\tversion:VERSION\tsequence:N". */
int ap_parts_trusted_comment(const ap_parts *p, char *out, size_t outlen);

/* Write the index and its signature beside the parts: <dir>/<bundle>.parts
 * and .parts.minisig, each through a temporary file renamed into place. */
int ap_parts_write_index(const char *dir, const ap_parts *p, const char *sig, size_t sig_len,
                         ap_error *err) AP_WUR;

/* Sign the index with sk (prehashed ED, trusted comment as above) and
 * write it with ap_parts_write_index. */
int ap_parts_sign_write(const char *dir, const ap_parts *p, const ap_seckey *sk,
                        ap_error *err) AP_WUR;

/* Fill the lock fields of p (lock_sha256, name, version, sequence) from
 * the bundle's lock bytes (parsed with the strict lock parser). */
int ap_parts_set_lock(ap_parts *p, const void *lock, size_t lock_len, ap_error *err) AP_WUR;

/* Load <path> (an index) and <path>.minisig, check the signature against
 * keys (unless keys is NULL or empty and allow_unsigned), parse. */
int ap_parts_load(const char *path, const ap_keyring *keys, int allow_unsigned, ap_parts **out,
                  ap_error *err) AP_WUR;

/* The index path for a bundle path given as "X.parts" (itself), "X.001"
 * (X.parts) or "X" (X.parts): a new string. */
char *ap_parts_index_path(const char *path);

/* 1 when path names a split bundle: ends in ".parts", ".001" or ".0001". */
int ap_parts_is_split_path(const char *path);
/* The digits of a first part's number (3 for "X.001", 4 for "X.0001"), or 0. */
int ap_parts_first_width(const char *path);

/* The part files of a split bundle path (an index or a first part), in
 * order, for readers that do not verify (inspect): from the index beside
 * them when there is one (not checked), else by number until one is
 * missing. A new NULL-terminated array of new strings (free each and the
 * array), or NULL (out of memory, or not a split path). */
char **ap_parts_files(const char *path);

/* ---- the part writer ---- */

typedef struct ap_partw ap_partw;

/* Start writing parts of `output` (a path; parts are output.001, ...) of
 * volume_size bytes each; size_hint is at least the bytes that will be
 * written (it fixes the width of the part names; more parts than it
 * allows fail). Nothing is created before the first write. */
int ap_partw_open(const char *output, uint64_t volume_size, uint64_t size_hint, ap_partw **out,
                  ap_error *err) AP_WUR;
/* Set the signature reserve of part 1 (default: ap_parts_default_reserve;
 * capped at AP_PARTS_SIG_RESERVE and below volume_size; 0: none, part 1
 * holds volume_size bytes like the others). Call before the first write. */
void ap_partw_set_reserve(ap_partw *w, uint64_t reserve);
/* Append bytes; opens the next part's temporary file as needed. */
int ap_partw_write(ap_partw *w, const void *buf, size_t len, ap_error *err) AP_WUR;
/* Read or overwrite bytes already written, at offset off of the whole
 * stream (one pass: the bundle's head is filled in at the end). Parts
 * written to are hashed again from disk at commit. */
int ap_partw_pread(ap_partw *w, uint64_t off, void *buf, size_t len, ap_error *err) AP_WUR;
int ap_partw_pwrite(ap_partw *w, uint64_t off, const void *buf, size_t len, ap_error *err) AP_WUR;
/* fsync every part, rename them into place, remove stale parts numbered
 * after the last one (left by an earlier, larger split), fsync the folder.
 * Fills out (bundle, volume_size, size, parts; the caller fills the lock
 * fields). The writer is freed whatever the outcome. */
int ap_partw_commit(ap_partw *w, ap_parts *out, ap_error *err) AP_WUR;
/* Remove the temporary parts and free the writer (NULL is fine). */
void ap_partw_abort(ap_partw *w);
/* Async-signal-safe: unlink every temporary part of the writer in flight. */
void ap_partw_unlink_tmp_on_signal(void);

/* Split the single-file bundle at path into output.001, ... (output: a
 * path such as "dir/NAME.airpack") of volume_size bytes; fills out as
 * ap_partw_commit does. The bundle itself is left as it is. */
int ap_parts_split(const char *path, const char *output, uint64_t volume_size, ap_parts *out,
                   ap_error *err) AP_WUR;
/* The same with a given signature reserve (ap_partw_set_reserve). */
int ap_parts_split_reserve(const char *path, const char *output, uint64_t volume_size,
                           uint64_t reserve, ap_parts *out, ap_error *err) AP_WUR;

/* ---- checking parts one by one ---- */

typedef enum ap_part_state {
    AP_PART_OK = 0,
    AP_PART_MISSING,                 /* no such file */
    AP_PART_SIZE,                    /* wrong size (truncated or too long) */
    AP_PART_SHA256,                  /* wrong content */
    AP_PART_MISPLACED,               /* the content of another part (wrong order) */
    AP_PART_UNREADABLE               /* cannot be read */
} ap_part_state;

const char *ap_part_state_name(ap_part_state s);

/* Check every part of a (verified) index on its own: present, the index's
 * size and SHA-256. dir is the folder of the parts. cb is called once per
 * part in order with its state and a message (NULL when ok). Returns the
 * number of parts that are not ok, or -1 (err) on an internal error. */
long ap_parts_check(const char *dir, const ap_parts *p,
                    void (*cb)(void *ctx, size_t i, const ap_part *part, ap_part_state st,
                               const char *msg),
                    void *ctx, ap_error *err);

#endif
