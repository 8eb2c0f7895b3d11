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
} ap_filelist;

int ap_walk_files(const char *root, ap_filelist *out, ap_error *err) AP_WUR;
void ap_filelist_release(ap_filelist *l);

#endif
