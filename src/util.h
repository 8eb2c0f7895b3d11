/*
 * util.h - small helpers shared by the modules: bounded file reading,
 * path checks, string suggestions. Nothing here prints or exits.
 */
#ifndef AIRPACK_UTIL_H
#define AIRPACK_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define AP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Read a whole small file (a manifest, a key, a policy) into a new
 * NUL-terminated buffer. Files larger than max bytes are refused with
 * AP_ERR_INPUT. On success *buf is the caller's to free(). */
int ap_read_file(const char *path, size_t max, char **buf, size_t *len, ap_error *err) AP_WUR;

/* Join two path parts with one '/'. Returns a new string or NULL. */
char *ap_path_join(const char *a, const char *b);

/* The folder part of path ("." when there is none). New string or NULL. */
char *ap_path_dirname(const char *path);

/* True when p is a safe relative path: not empty, not absolute, no "."
 * or ".." component, no empty component (except one trailing '/'), no
 * backslash, no control characters, valid UTF-8, at most 4096 bytes. */
int ap_path_is_safe_relative(const char *p);

/* True when the string is valid UTF-8 (no overlongs, no surrogates). */
int ap_utf8_valid(const char *s, size_t len);

/* Levenshtein edit distance between a and b (bounded to 255 chars each). */
unsigned ap_edit_distance(const char *a, const char *b);

/* The candidate closest to word by edit distance when close enough to be a
 * plausible typo, else NULL. candidates is a NULL-terminated array. */
const char *ap_suggest(const char *word, const char *const *candidates);

/* Checked arithmetic: return 0 on overflow, 1 on success. */
static inline int ap_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
static inline int ap_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void ap_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly 2n hex chars into n bytes. Returns 1 on success. */
int ap_hex_decode(const char *hex, uint8_t *out, size_t n);

/* fsync the folder that holds path (after a rename or create in it). */
int ap_fsync_dir_of(const char *path, ap_error *err) AP_WUR;

/* rm -rf PATH without following links: a symbolic link is removed, never
 * its target. 0 when PATH is gone (also when it never existed), -1 with
 * errno on the first entry that could not be removed (the rest stays). */
int ap_remove_tree(const char *path);

/* Remove what a killed writer (SIGKILL, a crash) left in dir: the hidden
 * temporary files of output `base`, ".BASE.XXXXXX.tmp" (a bundle) and
 * ".BASE.NNN.XXXXXX.tmp" (split volumes). A writer holds an exclusive
 * flock on its bundle temporary, and on the temporary of part 1 for as long
 * as it writes parts, so a file that is locked, or, for parts, any part
 * while a part 1 is locked, belongs to a live writer and stays. Returns the
 * number of files removed; errors only mean fewer removed. */
size_t ap_tmp_sweep(const char *dir, const char *base);

/* Test hook: when the environment variable `var` names a file, create it
 * and wait (at most 20 s) until it is removed, so that a test can act at
 * that moment (change an input, kill the process). Nothing otherwise. */
void ap_test_stall(const char *var);

/* Bytes in the regular files under PATH (PATH itself when a file) that
 * have a single link, i.e. what removing PATH frees; links not followed.
 * 0 when PATH does not exist. */
uint64_t ap_tree_unshared_bytes(const char *path);

#endif
