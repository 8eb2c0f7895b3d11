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
    const char *link_dir;   /* links may resolve into this folder (or NULL) */
};

static int add(struct walker *w, char *rel, char *target)
{
    if (w->out->n >= AP_WALK_MAX_FILES) {
        free(rel);
        free(target);
        return ap_error_set_at(w->err, AP_ERR_INPUT, w->root, 0, 0,
                               "more than %u files in folder", AP_WALK_MAX_FILES);
    }
    if (w->out->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 64;
        char **p = realloc(w->out->paths, nc * sizeof *p);
        if (p)
            w->out->paths = p;
        char **t = p && w->link_dir ? realloc(w->out->targets, nc * sizeof *t) : NULL;
        if (t)
            w->out->targets = t;
        if (!p || (w->link_dir && !t)) {
            free(rel);
            free(target);
            return ap_error_set(w->err, AP_ERR_NOMEM, "out of memory");
        }
        w->cap = nc;
    }
    if (w->link_dir)
        w->out->targets[w->out->n] = target;
    else
        free(target);
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
            if ((rc = add(w, rel, NULL)))
                break;
        } else if (S_ISLNK(st.st_mode) && w->link_dir) {
            /* Followed only into the one allowed folder (a repository's blobs). */
            char *full = ap_path_join(w->root, rel), *real = full ? realpath(full, NULL) : NULL;
            char shown[1024];
            ssize_t ln = readlinkat(dirfd(d), e->d_name, shown, sizeof shown - 1);
            shown[ln > 0 ? ln : 0] = '\0';
            free(full);
            if (!real || !ap_walk_link_ok(real, w->link_dir)) {
                rc = ap_error_set_at(w->err, AP_ERR_INPUT, w->root, 0, 0,
                                     "'%s' is a symbolic link to '%s', which is %s the "
                                     "repository's blobs folder '%s'; only links into it are "
                                     "followed",
                                     rel, shown, real ? "outside" : "missing from", w->link_dir);
                free(real);
                free(rel);
                break;
            }
            if ((rc = add(w, rel, real)))
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

struct pair {
    char *path, *target;
};

static int cmp_pair(const void *a, const void *b)
{
    return strcmp(((const struct pair *)a)->path, ((const struct pair *)b)->path);
}

int ap_walk_link_ok(const char *real, const char *link_dir)
{
    struct stat st;
    size_t dl = strlen(link_dir);
    return strncmp(real, link_dir, dl) == 0 && real[dl] == '/' && real[dl + 1] &&
           !strchr(real + dl + 1, '/') && stat(real, &st) == 0 && S_ISREG(st.st_mode);
}

int ap_walk_files(const char *root, ap_filelist *out, ap_error *err)
{
    return ap_walk_files_in(root, NULL, out, err);
}

int ap_walk_files_in(const char *root, const char *link_dir, ap_filelist *out, ap_error *err)
{
    struct walker w = {out, 0, err, root, link_dir};
    int fd, rc;
    out->paths = NULL;
    out->targets = NULL;
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
    if (out->n && !out->targets) {
        qsort(out->paths, out->n, sizeof *out->paths, cmp);
    } else if (out->n) {
        struct pair *pr = malloc(out->n * sizeof *pr);
        if (!pr) {
            ap_filelist_release(out);
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < out->n; i++)
            pr[i] = (struct pair){out->paths[i], out->targets[i]};
        qsort(pr, out->n, sizeof *pr, cmp_pair);
        for (size_t i = 0; i < out->n; i++) {
            out->paths[i] = pr[i].path;
            out->targets[i] = pr[i].target;
        }
        free(pr);
    }
    return AP_OK;
}

void ap_filelist_release(ap_filelist *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->paths[i]);
        if (l->targets)
            free(l->targets[i]);
    }
    free(l->paths);
    free(l->targets);
    l->paths = NULL;
    l->targets = NULL;
    l->n = 0;
}
