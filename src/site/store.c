/*
 * store.c - the content-addressed store and prune (see store.h).
 */
#include "site/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "install.h"
#include "util.h"

#define IO_BLOCK (1u << 20)

int ap_store_object_path(const char *prefix, const uint8_t sha256[AP_SHA256_LEN], unsigned mode,
                         char *out, size_t n, ap_error *err)
{
    char hex[AP_SHA256_HEX_LEN + 1];
    int k;
    ap_hex_encode(sha256, AP_SHA256_LEN, hex);
    k = snprintf(out, n, "%s/" AP_STORE_DIR "/%s%s", prefix, hex, mode & 0111 ? ".x" : "");
    if (k < 0 || (size_t)k >= n)
        return ap_error_set(err, AP_ERR_INPUT, "path too long: '%.200s...'", prefix);
    return AP_OK;
}

static void object_name(const uint8_t sha256[AP_SHA256_LEN], unsigned mode,
                        char out[AP_SHA256_HEX_LEN + 3])
{
    ap_hex_encode(sha256, AP_SHA256_LEN, out);
    if (mode & 0111)
        strcat(out, ".x");
}

int ap_store_init(const char *prefix, ap_error *err)
{
    static const char *const parts[] = {".airpack", ".airpack/objects", AP_STORE_DIR};
    char p[PATH_MAX];
    for (size_t i = 0; i < AP_ARRAY_LEN(parts); i++) {
        if (snprintf(p, sizeof p, "%s/%s", prefix, parts[i]) >= (int)sizeof p)
            return ap_error_set(err, AP_ERR_INPUT, "path too long: '%.200s...'", prefix);
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return ap_error_errno(err, AP_ERR_IO, errno, "cannot create folder", p);
    }
    return AP_OK;
}

static int open_objdir(const char *prefix)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/" AP_STORE_DIR, prefix) >= (int)sizeof p)
        return -1;
    return open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

ap_store_state ap_store_lookup(const char *prefix, const uint8_t sha256[AP_SHA256_LEN],
                               unsigned mode, uint64_t size, int rehash)
{
    char p[PATH_MAX];
    struct stat st;
    ap_store_state s = AP_STORE_DAMAGED;
    ap_sha256 *h = NULL;
    uint8_t *buf = NULL, d[AP_SHA256_LEN];
    uint64_t got = 0;
    int fd;

    if (ap_store_object_path(prefix, sha256, mode, p, sizeof p, NULL) != AP_OK)
        return AP_STORE_ABSENT;
    fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? AP_STORE_ABSENT : AP_STORE_DAMAGED;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size ||
        (st.st_mode & 07777) != mode)
        goto out;
    if (!rehash) {
        s = AP_STORE_GOOD;
        goto out;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (!(h = ap_sha256_new()) || !(buf = malloc(IO_BLOCK)))
        goto out;
    for (;;) {
        ssize_t n = read(fd, buf, IO_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        if (ap_sha256_update(h, buf, (size_t)n) != AP_OK)
            goto out;
        got += (uint64_t)n;
    }
    if (got == size && ap_sha256_final(h, d) == AP_OK && memcmp(d, sha256, AP_SHA256_LEN) == 0)
        s = AP_STORE_GOOD;
out:
    ap_sha256_free(h);
    free(buf);
    close(fd);
    return s;
}

/* Copy the object into dirfd/base (a filesystem or link count that does
 * not allow another hard link). */
static int copy_object(int objdir, const char *name, int dirfd, const char *base, ap_error *err)
{
    int in = openat(objdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = -1, rc = AP_OK;
    struct stat st;
    uint8_t *buf = malloc(IO_BLOCK);
    if (in < 0 || !buf || fstat(in, &st) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, buf ? errno : ENOMEM, "cannot read store object",
                            name);
        goto out;
    }
    out = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot create", base);
        goto out;
    }
    for (;;) {
        ssize_t n = read(in, buf, IO_BLOCK), off = 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot read store object", name);
            goto out;
        }
        if (n == 0)
            break;
        while (off < n) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = ap_error_errno(err, AP_ERR_IO, w < 0 ? errno : EIO, "cannot write", base);
                goto out;
            }
            off += w;
        }
    }
    if (fchmod(out, st.st_mode & 0777) != 0 || fsync(out) != 0)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", base);
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    free(buf);
    return rc;
}

int ap_store_link(const char *prefix, const uint8_t sha256[AP_SHA256_LEN], unsigned mode,
                  int dirfd, const char *base, ap_error *err)
{
    char name[AP_SHA256_HEX_LEN + 3];
    int objdir = open_objdir(prefix), rc = AP_OK;
    if (objdir < 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot open the object store of", prefix);
    object_name(sha256, mode, name);
    if (linkat(objdir, name, dirfd, base, 0) != 0) {
        if (errno == EMLINK || errno == EXDEV || errno == EPERM || errno == ENOTSUP)
            rc = copy_object(objdir, name, dirfd, base, err);
        else
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot link store object", name);
    }
    close(objdir);
    return rc;
}

int ap_store_adopt(const char *prefix, const uint8_t sha256[AP_SHA256_LEN], unsigned mode,
                   int dirfd, const char *base, int replace, ap_error *err)
{
    char name[AP_SHA256_HEX_LEN + 3], tmp[AP_SHA256_HEX_LEN + 64];
    int objdir = open_objdir(prefix), rc = AP_OK;
    if (objdir < 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot open the object store of", prefix);
    object_name(sha256, mode, name);
    if (!replace) {
        if (linkat(dirfd, base, objdir, name, 0) != 0 && errno != EEXIST && errno != EMLINK &&
            errno != EXDEV && errno != EPERM && errno != ENOTSUP)
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot add to the object store", name);
        close(objdir);
        return rc;
    }
    snprintf(tmp, sizeof tmp, ".tmp-%ld-%s", (long)getpid(), name);
    unlinkat(objdir, tmp, 0);
    if (linkat(dirfd, base, objdir, tmp, 0) == 0) {
        if (renameat(objdir, tmp, objdir, name) != 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot replace store object", name);
            unlinkat(objdir, tmp, 0);
        }
    }
    close(objdir);
    return rc;
}

uint64_t ap_store_bytes_present(const char *prefix, const ap_lock *lock)
{
    uint64_t n = 0;
    for (size_t i = 0; i < lock->n_artifacts; i++) {
        const ap_artifact *a = &lock->artifacts[i];
        char p[PATH_MAX];
        struct stat st;
        if (ap_store_object_path(prefix, a->sha256, a->mode, p, sizeof p, NULL) == AP_OK &&
            lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == a->size)
            n += a->size;
    }
    return n;
}

/* ---- prune ---- */

static long crash_at = -1, crash_count;

static void checkpoint(void)
{
    if (crash_at > 0 && ++crash_count == crash_at)
        raise(SIGKILL);
}

struct rel {
    char *name;
    uint64_t seq;
    const char *why;                 /* kept: why; NULL: to remove */
};

static int cmp_rel_desc(const void *a, const void *b)
{
    const struct rel *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq > y->seq ? -1 : 1;
    return strcmp(y->name, x->name);
}

static int fsync_dir(const char *p)
{
    int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    (void)fsync(fd);
    close(fd);
    return 0;
}

/* Rename the release, then its receipt, to dot-names; then delete both. */
static int remove_release(const char *prefix, const char *name, const char *rel, uint64_t *freed,
                          ap_error *err)
{
    char r[PATH_MAX], ro[PATH_MAX], c[PATH_MAX], co[PATH_MAX], rp[PATH_MAX], cp[PATH_MAX];
    if (snprintf(rp, sizeof rp, "%s/releases/%s", prefix, name) >= (int)sizeof rp ||
        snprintf(cp, sizeof cp, "%s/.airpack/receipts/%s", prefix, name) >= (int)sizeof cp ||
        snprintf(r, sizeof r, "%s/%s", rp, rel) >= (int)sizeof r ||
        snprintf(ro, sizeof ro, "%s/.old-%s", rp, rel) >= (int)sizeof ro ||
        snprintf(c, sizeof c, "%s/%s", cp, rel) >= (int)sizeof c ||
        snprintf(co, sizeof co, "%s/.old-%s", cp, rel) >= (int)sizeof co)
        return ap_error_set(err, AP_ERR_INPUT, "path too long: '%.200s...'", prefix);
    *freed = ap_tree_unshared_bytes(r);
    ap_remove_tree(ro);
    checkpoint();
    if (rename(r, ro) != 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot move aside", r);
    fsync_dir(rp);
    checkpoint();
    ap_remove_tree(co);
    if (rename(c, co) == 0)
        fsync_dir(cp);
    checkpoint();
    if (ap_remove_tree(ro) != 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot remove", ro);
    checkpoint();
    ap_remove_tree(co);
    return AP_OK;
}

/* The releases of one deployment, marked kept or not. */
static int plan_deployment(const char *prefix, const char *name, unsigned keep, struct rel **out,
                           size_t *nout, ap_error *err)
{
    char p[PATH_MAX], link[PATH_MAX], target[PATH_MAX], cur[PATH_MAX] = "";
    struct rel *v = NULL;
    size_t n = 0, cap = 0;
    DIR *d;
    struct dirent *e;
    ssize_t k;
    uint64_t cur_seq = 0;
    long prev = -1;

    *out = NULL;
    *nout = 0;
    if (snprintf(p, sizeof p, "%s/releases/%s", prefix, name) >= (int)sizeof p ||
        snprintf(link, sizeof link, "%s/current/%s", prefix, name) >= (int)sizeof link)
        return ap_error_set(err, AP_ERR_INPUT, "path too long: '%.200s...'", prefix);
    k = readlink(link, target, sizeof target - 1);
    if (k > 0) {
        const char *b;
        target[k] = '\0';
        b = strrchr(target, '/');
        snprintf(cur, sizeof cur, "%s", b ? b + 1 : target);
        cur_seq = ap_release_seq(cur);
    }
    if (!(d = opendir(p)))
        return errno == ENOENT ? ap_error_set(err, AP_ERR_INPUT,
                                              "deployment '%s' is not installed under '%s'", name,
                                              prefix)
                               : ap_error_errno(err, AP_ERR_IO, errno, "cannot read", p);
    while ((e = readdir(d))) {
        struct stat st;
        char q[PATH_MAX];
        if (e->d_name[0] == '.' || snprintf(q, sizeof q, "%s/%s", p, e->d_name) >= (int)sizeof q ||
            lstat(q, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct rel *nv = realloc(v, nc * sizeof *nv);
            if (!nv)
                goto nomem;
            v = nv;
            cap = nc;
        }
        if (!(v[n].name = strdup(e->d_name)))
            goto nomem;
        v[n].seq = ap_release_seq(e->d_name);
        v[n].why = NULL;
        n++;
    }
    closedir(d);
    d = NULL;
    if (n)
        qsort(v, n, sizeof *v, cmp_rel_desc);
    for (size_t i = 0; i < n; i++) {
        if (cur[0] && strcmp(v[i].name, cur) == 0)
            v[i].why = "active";
        else if (cur[0] && prev < 0 && v[i].seq < cur_seq)
            prev = (long)i;
    }
    if (prev >= 0)
        v[prev].why = "previous";
    for (size_t i = 0, kept = 0; i < n && kept < keep; i++, kept++)
        if (!v[i].why)
            v[i].why = "newest";
    *out = v;
    *nout = n;
    return AP_OK;
nomem:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
}

int ap_prune(const ap_prune_opts *o, json_t **report, ap_error *err)
{
    char p[PATH_MAX];
    char **names = NULL, *one[2] = {NULL, NULL}, **list;
    json_t *doc = NULL, *removed, *kept;
    uint64_t rel_freed = 0, obj_freed = 0;
    size_t n_obj = 0;
    int lockfd = -1, rc, objdir = -1;
    const char *s = getenv("AIRPACK_TEST_CRASH_AT");
    DIR *d = NULL;
    struct dirent *e;

    *report = NULL;
    crash_count = 0;
    crash_at = s && *s ? strtol(s, NULL, 10) : -1;
    if (o->keep < 1)
        return ap_error_set(err, AP_ERR_INPUT, "--keep must be at least 1");
    if ((rc = ap_install_cleanup(o->prefix, err)) != AP_OK) /* leftovers of killed runs */
        return rc;
    if (snprintf(p, sizeof p, "%s/.airpack/lock", o->prefix) >= (int)sizeof p)
        return ap_error_set(err, AP_ERR_INPUT, "path too long: '%.200s...'", o->prefix);
    lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (lockfd < 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot open", p);
    if (flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
        close(lockfd);
        return ap_error_set(err, AP_ERR_IO, "prefix '%s' is in use by another airpack",
                            o->prefix);
    }
    if (o->name) {
        one[0] = (char *)o->name;
        list = one;
    } else {
        if ((rc = ap_install_names(o->prefix, &names, err)) != AP_OK)
            goto out;
        list = names;
    }
    doc = json_pack("{s:s,s:[],s:[]}", "prefix", o->prefix, "releases_removed", "releases_kept");
    if (!doc) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    removed = json_object_get(doc, "releases_removed");
    kept = json_object_get(doc, "releases_kept");
    for (size_t i = 0; list[i]; i++) {
        struct rel *v = NULL;
        size_t n = 0;
        if ((rc = plan_deployment(o->prefix, list[i], o->keep, &v, &n, err)) != AP_OK)
            goto out;
        for (size_t j = 0; j < n && rc == AP_OK; j++) {
            uint64_t freed = 0;
            if (v[j].why) {
                json_array_append_new(kept, json_pack("{s:s,s:s,s:s}", "name", list[i], "release",
                                                      v[j].name, "why", v[j].why));
                continue;
            }
            rc = remove_release(o->prefix, list[i], v[j].name, &freed, err);
            if (rc == AP_OK) {
                rel_freed += freed;
                json_array_append_new(removed,
                                      json_pack("{s:s,s:s,s:I}", "name", list[i], "release",
                                                v[j].name, "bytes_freed", (json_int_t)freed));
            }
        }
        for (size_t j = 0; j < n; j++)
            free(v[j].name);
        free(v);
        if (rc != AP_OK)
            goto out;
    }
    /* objects no release links any more (link count 1), and temporary links */
    if ((objdir = open_objdir(o->prefix)) >= 0 && (d = fdopendir(objdir))) {
        objdir = -1;
        while ((e = readdir(d))) {
            struct stat st;
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            if (e->d_name[0] == '.' || !S_ISREG(st.st_mode) || st.st_nlink == 1) {
                checkpoint();
                if (unlinkat(dirfd(d), e->d_name, 0) == 0 && e->d_name[0] != '.') {
                    n_obj++;
                    obj_freed += (uint64_t)st.st_size;
                }
            }
        }
        (void)fsync(dirfd(d));
    }
    json_object_set_new(doc, "objects_removed", json_integer((json_int_t)n_obj));
    json_object_set_new(doc, "object_bytes_freed", json_integer((json_int_t)obj_freed));
    json_object_set_new(doc, "bytes_freed", json_integer((json_int_t)(obj_freed + rel_freed)));
    *report = doc;
    doc = NULL;
    rc = AP_OK;
out:
    if (d)
        closedir(d);
    if (objdir >= 0)
        close(objdir);
    json_decref(doc);
    ap_strv_free(names);
    close(lockfd);
    return rc;
}
