/*
 * pins.h - content pins of a manifest: `sha256` for a file, `sha256sums`
 * (a coreutils-format file) for a file or a folder.
 *
 * A sums file lists "<64 hex>  <path>" lines (or "<hex> *<path>"), with
 * paths relative to the pinned folder (for a pinned file: relative to the
 * file's folder, i.e. its name). Checking a folder pin hashes every listed
 * file and also walks the folder: a file that is listed but missing, or
 * present but not listed, is a finding as much as a changed file.
 * Hashing streams each file (constant memory) on up to two threads.
 */
#ifndef AIRPACK_PINS_H
#define AIRPACK_PINS_H

#include <jansson.h>
#include <stdint.h>

#include "digest.h"
#include "error.h"
#include "manifest.h"

#define AP_SUMS_MAX_BYTES (64u << 20)   /* sums file size cap */
#define AP_SUMS_MAX_LINES 1000000u

typedef struct ap_sums_entry {
    char *path;                         /* relative, safe */
    char hex[AP_SHA256_HEX_LEN + 1];    /* lowercase */
    unsigned line;                      /* in the sums file */
} ap_sums_entry;

typedef struct ap_sums {
    ap_sums_entry *e;                   /* in file order */
    size_t n;
    size_t *by_path;                    /* indexes into e, sorted by path (strcmp) */
} ap_sums;

/* Parse a coreutils sha256sum file. Errors carry file and line; a path
 * listed twice is an error. */
int ap_sums_load(const char *path, ap_sums *out, ap_error *err) AP_WUR;
/* The entry for path, or NULL (binary search: O(log n)). */
const ap_sums_entry *ap_sums_find(const ap_sums *s, const char *path);
void ap_sums_release(ap_sums *s);

/* Check every pin of the manifest. Appends to pins (array) one object per
 * model, runtime and file entry: {"subject", "path", "pin", "status",
 * "files", "problems"} (status "ok", "unpinned", "mismatch", "missing",
 * "unlisted"), and to findings (array) one Finding per problem
 * (AP-PIN-MISMATCH, AP-PIN-MISSING, AP-PIN-UNLISTED; level error).
 * Returns AP_OK when the pins could be checked (whatever they found), or
 * an error for unreadable or malformed pin files (AP_ERR_INPUT). */
int ap_pins_check(const ap_manifest *m, json_t *pins, json_t *findings, ap_error *err) AP_WUR;

/* Hash files on up to nthreads threads: hex[i] gets the hash of paths[i]
 * and sizes[i] (if not NULL) its size. The first error wins. */
int ap_hash_files(char *const *paths, size_t n, unsigned nthreads,
                  char (*hex)[AP_SHA256_HEX_LEN + 1], uint64_t *sizes, ap_error *err) AP_WUR;

#endif
