/*
 * walk.c - sorted listing of regular files under a folder (see walk.h).
 */
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

struct walker {
    ap_filelist *out;
    size_t cap;
    ap_error *err;
    const char *root;
};

static int add(struct walker *w, char *rel)
{
    if (w->out->n >= AP_WALK_MAX_FILES) {
        free(rel);
        return ap_error_set_at(w->err, AP_ERR_INPUT, w->root, 0, 0,
                               "more than %u files in folder", AP_WALK_MAX_FILES);
    }
    if (w->out->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 64;
        char **p = realloc(w->out->paths, nc * sizeof *p);
        if (!p) {
            free(rel);
            return ap_error_set(w->err, AP_ERR_NOMEM, "out of memory");
        }
        w->out->paths = p;
        w->cap = nc;
    }
    w->out->paths[w->out->n++] = rel;
    return AP_OK;
}

static int walk(struct walker *w, int dfd, const char *prefix, unsigned depth)
{
    DIR *d;
    struct dirent *e;
    int rc = AP_OK;

    if (depth > AP_WALK_MAX_DEPTH)
        return ap_error_set_at(w->err, AP_ERR_INPUT, w->root, 0, 0,
                               "folders nested deeper than %d levels", AP_WALK_MAX_DEPTH);
    d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return ap_error_errno(w->err, AP_ERR_IO, errno, "cannot read folder", w->root);
    }
    while ((e = readdir(d))) {
        struct stat st;
        char *rel;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        rel = *prefix ? ap_path_join(prefix, e->d_name) : strdup(e->d_name);
        if (!rel) {
            rc = ap_error_set(w->err, AP_ERR_NOMEM, "out of memory");
            break;
        }
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = ap_error_errno(w->err, AP_ERR_IO, errno, "cannot stat", rel);
            free(rel);
            break;
        }
        if (S_ISREG(st.st_mode)) {
            if ((rc = add(w, rel)))
                break;
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = ap_error_errno(w->err, AP_ERR_IO, errno, "cannot open folder", rel);
                free(rel);
                break;
            }
            rc = walk(w, sub, rel, depth + 1);
            free(rel);
            if (rc)
                break;
        } else {
            rc = ap_error_set_at(w->err, AP_ERR_INPUT, w->root, 0, 0,
                                 "'%s' is a %s; only regular files and folders are allowed "
                                 "(airpack does not follow links in inputs)",
                                 rel, S_ISLNK(st.st_mode) ? "symbolic link" : "special file");
            free(rel);
            break;
        }
    }
    closedir(d);
    return rc;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ap_walk_files(const char *root, ap_filelist *out, ap_error *err)
{
    struct walker w = {out, 0, err, root};
    int fd, rc;
    out->paths = NULL;
    out->n = 0;
    fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ap_error_errno(err, errno == ENOENT ? AP_ERR_INPUT : AP_ERR_IO, errno,
                              "cannot open folder", root);
    rc = walk(&w, fd, "", 0);
    if (rc) {
        ap_filelist_release(out);
        return rc;
    }
    if (out->n)
        qsort(out->paths, out->n, sizeof *out->paths, cmp);
    return AP_OK;
}

void ap_filelist_release(ap_filelist *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->paths[i]);
    free(l->paths);
    l->paths = NULL;
    l->n = 0;
}
