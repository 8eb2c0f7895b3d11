/*
 * walk.h - list the regular files under a folder, sorted, refusing links.
 *
 * Used to pin folders and to check folder pins. Paths come back relative
 * to the root, '/'-separated, sorted bytewise (strcmp), and only regular
 * files are listed. A symlink, device, FIFO or socket anywhere below the
 * root is an error (AP_ERR_INPUT) naming it: airpack never follows links
 * inside inputs. Caps: 1,000,000 files, depth 64.
 */
#ifndef AIRPACK_WALK_H
#define AIRPACK_WALK_H

#include <stddef.h>

#include "error.h"

#define AP_WALK_MAX_FILES 1000000u
#define AP_WALK_MAX_DEPTH 64

typedef struct ap_filelist {
    char **paths;     /* relative paths, sorted */
    size_t n;
    char **targets;   /* ap_walk_files_in: for each path, the real file a link
                       * resolved to (realpath), or NULL for a regular file;
                       * NULL when no link was followed */
} ap_filelist;

int ap_walk_files(const char *root, ap_filelist *out, ap_error *err) AP_WUR;

/* As ap_walk_files, but a symbolic link is followed when it resolves
 * (realpath) to a regular file directly inside link_dir (itself a
 * realpath): a Hugging Face snapshot, whose files link into the
 * repository's blobs/ folder. Any other link is refused, naming it and
 * where it points. */
int ap_walk_files_in(const char *root, const char *link_dir, ap_filelist *out,
                     ap_error *err) AP_WUR;

/* Where a link inside an input may point: 1 when real (a realpath) is a
 * regular file directly inside link_dir, else 0. */
int ap_walk_link_ok(const char *real, const char *link_dir);
void ap_filelist_release(ap_filelist *l);

#endif
