/*
 * bundle_write.c - the deterministic bundle writer (see bundle_write.h and
 * docs/bundle-format.md): the plan of artifacts, pass one (parallel
 * hashing, SHA256SUMS), the lock document, pass two (pax tar through
 * libarchive into a temporary file, re-hashing on a second thread, rename
 * into place), signal-safe cleanup, and reading a bundle's head for
 * `airpack inspect`.
 */
#include "bundle_write.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "parts.h"
#include "sign.h"
#include "util.h"
#include "walk.h"
#include "source/source.h"

#define BLOCK AP_DIGEST_BLOCK           /* bytes read per block in pass one */
#define MAX_THREADS 8
#define PAX_ALLOWANCE 2048u             /* tar header bytes per entry, pax records included */

/* ---- the plan ---------------------------------------------------------- */

void ap_bundle_plan_init(ap_bundle_plan *p)
{
    memset(p, 0, sizeof *p);
}

void ap_bundle_plan_release(ap_bundle_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].path);
        free(p->items[i].src);
        free(p->items[i].data);
    }
    free(p->items);
    free(p->sums);
    memset(p, 0, sizeof *p);
}

static int entry_name_ok(const char *entry, ap_error *err)
{
    size_t n = strlen(entry);
    if (n == 0 || n > AP_LOCK_MAX_PATH || !ap_path_is_safe_relative(entry) || entry[n - 1] == '/')
        return ap_error_set(err, AP_ERR_INPUT, "'%s' cannot be a bundle entry name: not a safe "
                                               "relative path of at most %u bytes",
                            entry, (unsigned)AP_LOCK_MAX_PATH);
    return AP_OK;
}

static ap_bundle_item *plan_push(ap_bundle_plan *p, ap_error *err)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 64;
        ap_bundle_item *ni;
        if (nc > AP_LOCK_MAX_ARTIFACTS + 1)
            nc = AP_LOCK_MAX_ARTIFACTS + 1;
        if (p->n >= nc) {
            ap_error_set(err, AP_ERR_INPUT, "more than %u artifacts in one bundle",
                         (unsigned)AP_LOCK_MAX_ARTIFACTS - 1);
            return NULL;
        }
        ni = realloc(p->items, nc * sizeof *ni);
        if (!ni) {
            ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            return NULL;
        }
        p->items = ni;
        p->cap = nc;
    }
    memset(&p->items[p->n], 0, sizeof p->items[p->n]);
    return &p->items[p->n++];
}

int ap_bundle_plan_add_file(ap_bundle_plan *p, const char *entry, const char *src, int follow,
                            ap_role role, ap_error *err)
{
    struct stat st;
    ap_bundle_item *it;
    int rc;

    if ((rc = entry_name_ok(entry, err)))
        return rc;
    if ((follow ? stat(src, &st) : lstat(src, &st)) != 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot read", src);
    if (!S_ISREG(st.st_mode))
        return ap_error_set_at(err, AP_ERR_INPUT, src, 0, 0, "not a regular file");
    if (!(it = plan_push(p, err)))
        return err ? err->status : AP_ERR_NOMEM;
    it->path = strdup(entry);
    it->src = strdup(src);
    if (!it->path || !it->src) {
        free(it->path);
        free(it->src);
        p->n--;
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    it->follow = follow;
    it->role = role;
    it->mode = (st.st_mode & 0111) ? 0755 : 0644;
    it->size = (uint64_t)st.st_size;
    it->dev = (uint64_t)st.st_dev;
    it->ino = (uint64_t)st.st_ino;
    it->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    it->ctime_ns = (uint64_t)st.st_ctim.tv_sec * 1000000000u + (uint64_t)st.st_ctim.tv_nsec;
    return AP_OK;
}

int ap_bundle_plan_add_memory(ap_bundle_plan *p, const char *entry, const void *data, size_t len,
                              ap_role role, ap_error *err)
{
    ap_bundle_item *it;
    int rc;
    if ((rc = entry_name_ok(entry, err)))
        return rc;
    if (len > AP_BUNDLE_MAX_EXTRA_BYTES)
        return ap_error_set(err, AP_ERR_INPUT, "artifact '%s' is too large (%zu bytes)", entry, len);
    if (!(it = plan_push(p, err)))
        return err ? err->status : AP_ERR_NOMEM;
    it->path = strdup(entry);
    it->data = malloc(len ? len : 1);
    if (!it->path || !it->data) {
        free(it->path);
        free(it->data);
        p->n--;
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if (len)
        memcpy(it->data, data, len);
    it->role = role;
    it->mode = 0644;
    it->size = len;
    return AP_OK;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int ap_bundle_plan_add_path(ap_bundle_plan *p, const char *prefix, const char *src, ap_role role,
                            ap_error *err)
{
    struct stat st;
    ap_filelist fl = {0};
    int rc = AP_OK;
    char *entry = NULL, *abs = NULL;

    if (stat(src, &st) != 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot read", src);
    if (!S_ISDIR(st.st_mode)) {
        /* A single file: PREFIX/<its name>; the manifest's own path may be a link. */
        char tmp[PATH_MAX];
        size_t l = strlen(src);
        snprintf(tmp, sizeof tmp, "%s", src);
        while (l > 1 && tmp[l - 1] == '/')
            tmp[--l] = '\0';
        if (!(entry = ap_path_join(prefix, base_name(tmp))))
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        rc = ap_bundle_plan_add_file(p, entry, src, 1, role, err);
        free(entry);
        return rc;
    }
    if ((rc = ap_walk_files(src, &fl, err)))
        return rc;
    for (size_t i = 0; i < fl.n && rc == AP_OK; i++) {
        entry = ap_path_join(prefix, fl.paths[i]);
        abs = ap_path_join(src, fl.paths[i]);
        if (!entry || !abs)
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        else
            rc = ap_bundle_plan_add_file(p, entry, abs, 0, role, err);
        free(entry);
        free(abs);
        entry = abs = NULL;
    }
    ap_filelist_release(&fl);
    return rc;
}

/* "payload/files/" + target (or the path as written), without trailing
 * slashes; for a single file whose target ends in '/', the file's name
 * is appended. */
static char *file_entry_prefix(const ap_mfile *f, int *is_full_name)
{
    const char *t = f->target ? f->target : f->src.path;
    char buf[PATH_MAX];
    size_t l;
    int dir_target;
    while (t[0] == '.' && t[1] == '/') /* "./config/" is "config/" */
        for (t += 2; *t == '/'; t++)
            ;
    snprintf(buf, sizeof buf, "payload/files/%s", t);
    l = strlen(buf);
    dir_target = l > 0 && buf[l - 1] == '/';
    while (l > 14 && buf[l - 1] == '/')
        buf[--l] = '\0';
    /* A single file with an explicit file target: that is the entry name. */
    *is_full_name = !f->src.is_dir && !(dir_target && f->target);
    return strdup(buf);
}

/* A manifest path's files, from the input walk that check uses too
 * (source/source.h), as PREFIX/<name>. */
static int add_input(ap_bundle_plan *p, const char *prefix, const ap_mpath *mp, int for_runtime,
                     ap_role role, ap_error *err)
{
    ap_input in;
    /* the analysis verified container images already: list their files only */
    int rc = ap_input_walk(mp, (for_runtime ? AP_WALK_RUNTIME : 0) | AP_WALK_LIST_ONLY, &in, err);
    for (size_t i = 0; rc == AP_OK && i < in.n; i++) {
        char *entry = ap_path_join(prefix, in.files[i].rel);
        rc = entry ? ap_bundle_plan_add_file(p, entry, in.files[i].src, in.files[i].follow, role,
                                             err)
                   : ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        free(entry);
    }
    ap_input_release(&in);
    return rc;
}

int ap_bundle_plan_add_manifest(ap_bundle_plan *p, const ap_manifest *m, ap_error *err)
{
    char prefix[PATH_MAX];
    int rc = AP_OK;
    for (size_t i = 0; i < m->n_models && rc == AP_OK; i++) {
        snprintf(prefix, sizeof prefix, "payload/models/%s", m->models[i].name);
        rc = add_input(p, prefix, &m->models[i].src, 0, AP_ROLE_MODEL, err);
        if (rc)
            ap_error_prefix(err, "model '%s'", m->models[i].name);
    }
    for (size_t i = 0; i < m->n_runtimes && rc == AP_OK; i++) {
        if (!m->runtimes[i].src.path)
            continue;
        snprintf(prefix, sizeof prefix, "payload/runtimes/%s", m->runtimes[i].name);
        rc = add_input(p, prefix, &m->runtimes[i].src, 1, AP_ROLE_RUNTIME, err);
        if (rc)
            ap_error_prefix(err, "runtime '%s'", m->runtimes[i].name);
    }
    for (size_t i = 0; i < m->n_files && rc == AP_OK; i++) {
        const ap_mfile *f = &m->files[i];
        int full = 0;
        char *pre = file_entry_prefix(f, &full);
        if (!pre)
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        if (full) {
            /* one file under its target name, from the same walk */
            ap_input in;
            rc = ap_input_walk(&f->src, 0, &in, err);
            if (rc == AP_OK && in.n == 1)
                rc = ap_bundle_plan_add_file(p, pre, in.files[0].src, in.files[0].follow,
                                             AP_ROLE_FILE, err);
            ap_input_release(&in);
        } else
            rc = add_input(p, pre, &f->src, 0, AP_ROLE_FILE, err);
        free(pre);
        if (rc)
            ap_error_prefix(err, "files[%zu] '%s'", i, f->src.path);
    }
    return rc;
}

static uint64_t round512(uint64_t n)
{
    return (n + 511) & ~(uint64_t)511;
}

uint64_t ap_bundle_plan_estimate(const ap_bundle_plan *p, size_t lock_len, size_t sig_len)
{
    uint64_t t = 1024 + 3 * PAX_ALLOWANCE + round512(lock_len) + round512(sig_len);
    size_t sums = 0;
    for (size_t i = 0; i < p->n; i++) {
        t += PAX_ALLOWANCE + (p->items[i].in_base ? 0 : round512(p->items[i].size));
        sums += AP_SHA256_HEX_LEN + 3 + strlen(p->items[i].path);
    }
    return t + round512(sums);
}

int ap_bundle_check_space(const char *output, uint64_t need, ap_error *err)
{
    struct statvfs sv;
    char *dir = ap_path_dirname(output);
    uint64_t avail;
    int rc = AP_OK;
    if (!dir)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (statvfs(dir, &sv) != 0) {
        rc = ap_error_errno(err, errno == ENOENT ? AP_ERR_INPUT : AP_ERR_IO, errno,
                            "cannot check free space in", dir);
    } else {
        if (!ap_mul_u64((uint64_t)sv.f_bavail, (uint64_t)sv.f_frsize, &avail))
            avail = UINT64_MAX;
        if (avail < need)
            rc = ap_error_set(err, AP_ERR_IO,
                              "not enough free space in '%s': the bundle needs up to %llu bytes, "
                              "%llu are free", dir, (unsigned long long)need,
                              (unsigned long long)avail);
    }
    free(dir);
    return rc;
}

/* qsort_r comparator: plan item indexes by source path (ctx: the plan). */
static int cmp_src_idx(const void *a, const void *b, void *ctx)
{
    const ap_bundle_plan *p = ctx;
    const ap_bundle_item *x = &p->items[*(const size_t *)a];
    const ap_bundle_item *y = &p->items[*(const size_t *)b];
    if (!x->src || !y->src)
        return x->src ? 1 : (y->src ? -1 : 0);
    return strcmp(x->src, y->src);
}

struct src_key {
    const ap_bundle_plan *p;
    const char *src;
};

static int cmp_key_idx(const void *k, const void *b)
{
    const struct src_key *key = k;
    const ap_bundle_item *y = &key->p->items[*(const size_t *)b];
    if (!y->src)
        return 1;
    return strcmp(key->src, y->src);
}

ssize_t ap_bundle_plan_use_hashes(ap_bundle_plan *p, char *const *srcs,
                                  const char (*hex)[AP_SHA256_HEX_LEN + 1], size_t n)
{
    size_t *idx = malloc((p->n ? p->n : 1) * sizeof *idx);
    ssize_t marked = 0;
    if (!idx)
        return -1;
    for (size_t i = 0; i < p->n; i++)
        idx[i] = i;
    qsort_r(idx, p->n, sizeof *idx, cmp_src_idx, p);
    for (size_t i = 0; i < n; i++) {
        struct src_key key = {p, srcs[i]};
        const size_t *hit = bsearch(&key, idx, p->n, sizeof *idx, cmp_key_idx);
        ap_bundle_item *it;
        if (!hit)
            continue;
        it = &p->items[*hit];
        if (ap_hex_decode(hex[i], it->sha256, AP_SHA256_LEN)) {
            if (!it->known)
                marked++;
            it->known = 1;
        }
    }
    free(idx);
    return marked;
}

/* ---- pass one: hashing ------------------------------------------------- */

static int cmp_item(const void *a, const void *b)
{
    const ap_bundle_item *x = a, *y = b;
    if (x->role != y->role)
        return x->role < y->role ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* Open a source for reading and check it is the file of pass one. */
static int open_source(const ap_bundle_item *it, int check_id, int *fdp, ap_error *err)
{
    struct stat st;
    int fd = open(it->src, O_RDONLY | O_CLOEXEC | (it->follow ? 0 : O_NOFOLLOW));
    *fdp = -1;
    if (fd < 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open", it->src);
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ap_error_errno(err, AP_ERR_IO, e, "cannot stat", it->src);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ap_error_set_at(err, AP_ERR_INPUT, it->src, 0, 0, "not a regular file");
    }
    if (check_id && ((uint64_t)st.st_dev != it->dev || (uint64_t)st.st_ino != it->ino ||
                     (uint64_t)st.st_size != it->size)) {
        close(fd);
        return ap_error_set_at(err, AP_ERR_INPUT, it->src, 0, 0,
                               "file changed while building the bundle (replaced or resized)");
    }
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    *fdp = fd;
    return AP_OK;
}

/* Read up to len bytes (short only at end of file). */
static ssize_t read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

struct hash_job {
    ap_bundle_plan *p;
    size_t next;                    /* next position in order (atomic) */
    size_t *order;                  /* item indices, largest first (balances the threads) */
    uint64_t done;                  /* bytes hashed (atomic) */
    int failed;                     /* set once (atomic) */
    pthread_mutex_t mu;
    ap_error err;                   /* first error */
    ap_bundle_progress_fn progress;
    void *progress_ctx;
    uint64_t total;
};

static void job_fail(struct hash_job *j, const ap_error *e)
{
    pthread_mutex_lock(&j->mu);
    if (!j->failed) {
        j->err = *e;
        __atomic_store_n(&j->failed, 1, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_unlock(&j->mu);
}

/* Hash one file item; its size must not change while it is read. */
static int hash_item(struct hash_job *j, ap_bundle_item *it, uint8_t *buf, int main_thread,
                     ap_error *err)
{
    ap_sha256 *h = NULL;
    uint64_t left = it->size;
    int fd = -1, rc;
    ssize_t r;

    if ((rc = open_source(it, 1, &fd, err)))
        return rc;
    if (!(h = ap_sha256_new())) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        if (__atomic_load_n(&j->failed, __ATOMIC_SEQ_CST)) {
            rc = AP_ERR_INTERNAL; /* another thread failed: its error wins */
            goto out;
        }
        r = read_full(fd, buf, BLOCK);
        if (r < 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot read", it->src);
            goto out;
        }
        if ((uint64_t)r > left) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, it->src, 0, 0,
                                 "file changed while building the bundle (it grew)");
            goto out;
        }
        if (r == 0)
            break;
        if ((rc = ap_sha256_update(h, buf, (size_t)r))) {
            ap_error_set(err, rc, "cannot hash '%s'", it->src);
            goto out;
        }
        left -= (uint64_t)r;
        uint64_t d = __atomic_add_fetch(&j->done, (uint64_t)r, __ATOMIC_SEQ_CST);
        if (main_thread && j->progress)
            j->progress(j->progress_ctx, 1, d, j->total);
    }
    if (left != 0) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, it->src, 0, 0,
                             "file changed while building the bundle (it shrank)");
        goto out;
    }
    if ((rc = ap_sha256_final(h, it->sha256)))
        ap_error_set(err, rc, "cannot hash '%s'", it->src);
out:
    ap_sha256_free(h);
    if (fd >= 0)
        close(fd);
    return rc;
}

static void hash_loop(struct hash_job *j, int main_thread)
{
    uint8_t *buf = malloc(BLOCK);
    ap_error e;
    ap_error_clear(&e);
    if (!buf) {
        ap_error_set(&e, AP_ERR_NOMEM, "out of memory");
        job_fail(j, &e);
        return;
    }
    for (;;) {
        size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_SEQ_CST);
        if (i >= j->p->n || __atomic_load_n(&j->failed, __ATOMIC_SEQ_CST))
            break;
        ap_bundle_item *it = &j->p->items[j->order[i]];
        if (!it->src || it->known)
            continue;
        if (hash_item(j, it, buf, main_thread, &e) != AP_OK) {
            if (e.status != AP_OK)
                job_fail(j, &e);
            break;
        }
    }
    free(buf);
}

static void *hash_thread(void *arg)
{
    hash_loop(arg, 0);
    return NULL;
}

/* qsort_r comparator: plan item indexes, largest first (ctx: the plan). */
static int cmp_size_desc(const void *a, const void *b, void *ctx)
{
    const ap_bundle_plan *p = ctx;
    uint64_t x = p->items[*(const size_t *)a].size;
    uint64_t y = p->items[*(const size_t *)b].size;
    if (x != y)
        return x > y ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

/* SHA256SUMS from the items' hashes as they are now. */
static int plan_sums(ap_bundle_plan *p, ap_error *err)
{
    size_t cap = 1, pos = 0;
    char *s;
    for (size_t i = 0; i < p->n; i++)
        cap += AP_SHA256_HEX_LEN + 3 + strlen(p->items[i].path);
    if (!(s = malloc(cap)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n; i++) {
        char hex[AP_SHA256_HEX_LEN + 1];
        ap_hex_encode(p->items[i].sha256, AP_SHA256_LEN, hex);
        pos += (size_t)snprintf(s + pos, cap - pos, "%s  %s\n", hex, p->items[i].path);
    }
    free(p->sums);
    p->sums = s;
    p->sums_len = pos;
    if (ap_sha256_buffer(p->sums, p->sums_len, p->sums_sha256) != AP_OK)
        return ap_error_set(err, AP_ERR_INTERNAL, "cannot hash SHA256SUMS");
    return AP_OK;
}

int ap_bundle_plan_prepare(ap_bundle_plan *p, ap_error *err)
{
    int rc;
    qsort(p->items, p->n, sizeof *p->items, cmp_item);
    p->bytes = 0;
    for (size_t i = 0; i < p->n; i++) {
        ap_bundle_item *it = &p->items[i];
        if (i > 0 && strcmp(p->items[i - 1].path, it->path) == 0)
            return ap_error_set(err, AP_ERR_INPUT, "two inputs would both be bundle entry '%s'",
                                it->path);
        if (!ap_add_u64(p->bytes, it->size, &p->bytes))
            return ap_error_set(err, AP_ERR_INPUT, "input sizes overflow");
        if (!it->src) {
            if (ap_sha256_buffer(it->data, (size_t)it->size, it->sha256) != AP_OK)
                return ap_error_set(err, AP_ERR_INTERNAL, "cannot hash '%s'", it->path);
        } else if (!it->known) {
            memset(it->sha256, 0, AP_SHA256_LEN); /* filled while the tar is written */
        }
    }
    if ((rc = plan_sums(p, err)) != AP_OK)
        return rc;
    p->hashed = 1;
    p->one_pass = 1;
    return AP_OK;
}

int ap_bundle_plan_hash(ap_bundle_plan *p, unsigned threads, ap_bundle_progress_fn progress,
                        void *progress_ctx, ap_error *err)
{
    struct hash_job j;
    pthread_t tid[MAX_THREADS];
    unsigned nt = 0;
    size_t sums_cap = 1, pos = 0;
    int rc = AP_OK;

    qsort(p->items, p->n, sizeof *p->items, cmp_item);
    p->bytes = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (i > 0 && strcmp(p->items[i - 1].path, p->items[i].path) == 0)
            return ap_error_set(err, AP_ERR_INPUT, "two inputs would both be bundle entry '%s'",
                                p->items[i].path);
        if (!ap_add_u64(p->bytes, p->items[i].size, &p->bytes))
            return ap_error_set(err, AP_ERR_INPUT, "input sizes overflow");
        sums_cap += AP_SHA256_HEX_LEN + 3 + strlen(p->items[i].path);
    }
    memset(&j, 0, sizeof j);
    j.p = p;
    if (!(j.order = malloc((p->n ? p->n : 1) * sizeof *j.order)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n; i++)
        j.order[i] = i;
    qsort_r(j.order, p->n, sizeof *j.order, cmp_size_desc, p);
    j.progress = progress;
    j.progress_ctx = progress_ctx;
    j.total = 0;
    for (size_t i = 0; i < p->n; i++)
        if (!p->items[i].known)
            j.total += p->items[i].size;
    ap_error_clear(&j.err);
    pthread_mutex_init(&j.mu, NULL);
    for (size_t i = 0; i < p->n; i++) {
        ap_bundle_item *it = &p->items[i];
        if (!it->src) {
            if ((rc = ap_sha256_buffer(it->data, (size_t)it->size, it->sha256))) {
                ap_error_set(err, rc, "cannot hash '%s'", it->path);
                goto out;
            }
            j.done += it->size;
        }
    }
    if (threads == 0)
        threads = default_threads();
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    for (unsigned t = 1; t < threads && t < p->n; t++) {
        if (pthread_create(&tid[nt], NULL, hash_thread, &j) != 0)
            break; /* fewer threads: still correct */
        nt++;
    }
    hash_loop(&j, 1);
    for (unsigned t = 0; t < nt; t++)
        pthread_join(tid[t], NULL);
    if (j.failed) {
        rc = j.err.status ? j.err.status : AP_ERR_INTERNAL;
        if (err)
            *err = j.err;
        goto out;
    }
    if (progress)
        progress(progress_ctx, 1, j.total, j.total);

    free(p->sums);
    if (!(p->sums = malloc(sums_cap))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < p->n; i++) {
        char hex[AP_SHA256_HEX_LEN + 1];
        ap_hex_encode(p->items[i].sha256, AP_SHA256_LEN, hex);
        pos += (size_t)snprintf(p->sums + pos, sums_cap - pos, "%s  %s\n", hex, p->items[i].path);
    }
    p->sums_len = pos;
    if ((rc = ap_sha256_buffer(p->sums, p->sums_len, p->sums_sha256))) {
        ap_error_set(err, rc, "cannot hash SHA256SUMS");
        goto out;
    }
    p->hashed = 1;
out:
    pthread_mutex_destroy(&j.mu);
    free(j.order);
    return rc;
}

/* ---- the lock ---------------------------------------------------------- */

int ap_source_date_epoch(uint64_t *out, ap_error *err)
{
    const char *s = getenv("SOURCE_DATE_EPOCH");
    char *end = NULL;
    unsigned long long v;
    *out = AP_DEFAULT_EPOCH;
    if (!s || !*s)
        return AP_OK;
    errno = 0;
    v = strtoull(s, &end, 10);
    /* At most 9999-12-31T23:59:59Z. */
    if (errno || *end || s[0] < '0' || s[0] > '9' || v > 253402300799ull)
        return ap_error_set(err, AP_ERR_INPUT,
                            "SOURCE_DATE_EPOCH '%s' is not a number of seconds since 1970", s);
    *out = v;
    return AP_OK;
}

static void utc_string(uint64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A manifest date or RFC 3339 time as "YYYY-MM-DDTHH:MM:SSZ". */
static int expires_utc(const char *s, char out[32])
{
    struct tm tm;
    const char *e;
    long off = 0;
    memset(&tm, 0, sizeof tm);
    if (!(e = strptime(s, "%Y-%m-%d", &tm)))
        return -1;
    if (*e == 'T') {
        if (!(e = strptime(e + 1, "%H:%M:%S", &tm)))
            return -1;
        if (*e == '.')
            for (e++; *e >= '0' && *e <= '9'; e++)
                ;
        if (*e == 'Z') {
            e++;
        } else if ((*e == '+' || *e == '-') && strlen(e) == 6 && e[3] == ':') {
            long hh = (e[1] - '0') * 10 + (e[2] - '0'), mm = (e[4] - '0') * 10 + (e[5] - '0');
            off = (hh * 3600 + mm * 60) * (*e == '+' ? 1 : -1);
            e += 6;
        } else {
            return -1;
        }
    }
    if (*e)
        return -1;
    time_t t = timegm(&tm) - off;
    if (t < 0)
        return -1;
    utc_string((uint64_t)t, out);
    return 0;
}

static json_t *artifact_json(const char *path, uint64_t size, const uint8_t sha[AP_SHA256_LEN],
                             unsigned mode, ap_role role)
{
    char hex[AP_SHA256_HEX_LEN + 1];
    ap_hex_encode(sha, AP_SHA256_LEN, hex);
    return json_pack("{s:s, s:I, s:s, s:s, s:s}", "path", path, "size", (json_int_t)size, "sha256",
                     hex, "mode", mode == 0755 ? "0755" : "0644", "role", ap_role_name(role));
}

static int cmp_sha(const void *a, const void *b)
{
    return memcmp(a, b, AP_SHA256_LEN);
}

size_t ap_bundle_plan_mark_base(ap_bundle_plan *p, const ap_lock *base, uint64_t *bytes)
{
    uint8_t(*have)[AP_SHA256_LEN] = NULL;
    size_t n = 0, marked = 0;
    *bytes = 0;
    if (!base || base->n_artifacts == 0 ||
        !(have = malloc(base->n_artifacts * sizeof *have)))
        return 0;
    /* every artifact of the base is at the site (its own in_base ones too) */
    for (size_t i = 0; i < base->n_artifacts; i++)
        memcpy(have[n++], base->artifacts[i].sha256, AP_SHA256_LEN);
    qsort(have, n, sizeof *have, cmp_sha);
    for (size_t i = 0; i < p->n; i++) {
        ap_bundle_item *it = &p->items[i];
        it->in_base = 0;
        if (it->role < AP_ROLE_REPORT || it->role > AP_ROLE_FILE ||
            !bsearch(it->sha256, have, n, sizeof *have, cmp_sha))
            continue;
        it->in_base = 1;
        marked++;
        *bytes += it->size;
    }
    free(have);
    return marked;
}

uint64_t ap_bundle_plan_travel_bytes(const ap_bundle_plan *p)
{
    uint64_t t = 0;
    for (size_t i = 0; i < p->n; i++)
        if (!p->items[i].in_base)
            t += p->items[i].size;
    return t;
}

int ap_lock_build(const ap_manifest *m, json_t *analysis, const ap_bundle_plan *p, uint64_t epoch,
                  json_t **out, ap_error *err)
{
    json_t *lock = NULL, *md = NULL, *arts = NULL, *target;
    char created[32], expires[32];
    uint64_t total;
    int rc = AP_OK;

    *out = NULL;
    if (!p->hashed)
        return ap_error_set(err, AP_ERR_INTERNAL, "the bundle plan is not hashed");
    lock = json_object();
    md = json_object();
    arts = json_array();
    if (!lock || !md || !arts)
        goto nomem;
    utc_string(epoch, created);
    json_object_set_new(lock, "format", json_string(AP_LOCK_FORMAT));
    json_object_set_new(md, "name", json_string(m->name));
    json_object_set_new(md, "version", json_string(m->version));
    json_object_set_new(md, "sequence", json_integer((json_int_t)m->sequence));
    json_object_set_new(md, "created", json_string(created));
    if (m->expires) {
        if (expires_utc(m->expires, expires) != 0) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, m->file, 0, 0,
                                 "metadata.expires: cannot read '%s' as a date or RFC 3339 time",
                                 m->expires);
            goto fail;
        }
        json_object_set_new(md, "expires", json_string(expires));
    }
    if (m->description)
        json_object_set_new(md, "description", json_string(m->description));
    if (m->owner)
        json_object_set_new(md, "owner", json_string(m->owner));
    json_object_set(lock, "metadata", md);
    target = json_object_get(json_object_get(analysis, "manifest"), "target");
    if (json_is_object(target))
        json_object_set_new(lock, "target", json_deep_copy(target));
    else
        json_object_set_new(lock, "target", json_object());
    json_object_set(lock, "analysis", analysis ? analysis : json_object());
    {
        /* the launch specs, signed with the rest (docs/runtimes.md) */
        json_t *launch = json_object_get(analysis, "launch");
        json_object_set_new(lock, "launch", json_is_array(launch) ? json_deep_copy(launch)
                                                                  : json_array());
    }
    if (json_array_append_new(arts, artifact_json(AP_SUMS_NAME, p->sums_len, p->sums_sha256, 0644,
                                                  AP_ROLE_CHECKSUMS)))
        goto nomem;
    total = p->sums_len;
    for (size_t i = 0; i < p->n; i++) {
        const ap_bundle_item *it = &p->items[i];
        json_t *a = artifact_json(it->path, it->size, it->sha256, it->mode, it->role);
        if (a && it->in_base)
            json_object_set_new(a, "in_base", json_true());
        if (json_array_append_new(arts, a))
            goto nomem;
        total += it->size;
    }
    json_object_set(lock, "artifacts", arts);
    json_object_set_new(lock, "totals", json_pack("{s:I, s:I}", "artifacts",
                                                  (json_int_t)json_array_size(arts), "bytes",
                                                  (json_int_t)total));
    if (!json_object_get(lock, "totals"))
        goto nomem;
    *out = lock;
    lock = NULL;
    goto fail; /* release the working references */
nomem:
    rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory building the lock");
fail:
    json_decref(lock);
    json_decref(md);
    json_decref(arts);
    return rc;
}

int ap_lock_dump(const json_t *lock, char **buf, size_t *len, ap_error *err)
{
    char *s = json_dumps(lock, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(15));
    size_t n;
    char *b;
    *buf = NULL;
    *len = 0;
    if (!s)
        return ap_error_set(err, AP_ERR_NOMEM, "cannot serialise the lock");
    n = strlen(s);
    if (!(b = realloc(s, n + 2))) {
        free(s);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    b[n] = '\n';
    b[n + 1] = '\0';
    if (n + 1 > AP_LOCK_MAX_BYTES) {
        free(b);
        return ap_error_set(err, AP_ERR_INPUT, "the lock would be %zu bytes, more than the limit "
                                               "of %u", n + 1, (unsigned)AP_LOCK_MAX_BYTES);
    }
    *buf = b;
    *len = n + 1;
    return AP_OK;
}

int ap_lock_trusted_comment(const char *name, const char *version, uint64_t sequence, char *out,
                            size_t outlen)
{
    int n = snprintf(out, outlen, "file:%s\tname:%s\tversion:%s\tsequence:%llu", AP_LOCK_NAME, name,
                     version, (unsigned long long)sequence);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* ---- signal-safe cleanup ----------------------------------------------- */

static char g_tmp_path[PATH_MAX];
static volatile sig_atomic_t g_tmp_set;

static void on_fatal_signal(int sig)
{
    if (g_tmp_set)
        unlink(g_tmp_path);
    ap_partw_unlink_tmp_on_signal();
    signal(sig, SIG_DFL);
    raise(sig);
}

void ap_bundle_cleanup_on_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < AP_ARRAY_LEN(sigs); i++)
        sigaddset(&sa.sa_mask, sigs[i]);
    for (size_t i = 0; i < AP_ARRAY_LEN(sigs); i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
}

static void tmp_register(const char *path)
{
    g_tmp_set = 0;
    snprintf(g_tmp_path, sizeof g_tmp_path, "%s", path);
    g_tmp_set = 1;
}

static void tmp_unregister(void)
{
    g_tmp_set = 0;
}

void ap_bundle_tmp_register(const char *path)
{
    tmp_register(path);
}

void ap_bundle_tmp_unregister(void)
{
    tmp_unregister();
}

/* ---- pass two: writing ------------------------------------------------- */

/* The re-hashing helper: the main thread reads a block into a free slot of
 * a ring, hands it over, and writes it to the archive while the helper
 * hashes it. The helper finishes each file's hash at its last block and
 * compares it with pass one; the main thread only waits when the ring is
 * full, so the two threads do not run in lockstep (which costs a wake-up
 * per block on a busy machine). Each side wakes the other in batches: an
 * idle helper when WAKE_BATCH blocks wait (or at a drain), a main thread
 * waiting on a full ring when half of it is free; a 2 GiB build went from
 * 13,000-17,000 context switches to 1,500. */
#define RING 16
#define WAKE_BATCH 4                    /* an idle helper is woken when this many blocks wait */
#define WBLOCK (64u << 10)              /* bytes per block in pass two: the ring (1 MiB)
                                           stays in the CPU caches; with 256 KiB blocks
                                           (4 MiB) both copies went through memory and a
                                           2 GiB build took 2.4-3.4 s instead of 1.7 s */
#define OUT_BLOCK 10240u                /* bytes per write(2) of a bundle streamed to a
                                           pipe or device: tar's record size, which tape
                                           drives expect. A regular file is written
                                           unblocked: libarchive hands each block of the
                                           ring straight to write(2), with no copy into its
                                           own buffer (fewer copies and system calls: the
                                           best of 8 builds of 2 GiB went from 1.59-1.67 s
                                           to 1.58-1.61 s, system time from 1.32-1.44 s to
                                           1.16-1.24 s; docs/bundle-format.md §7). The
                                           bytes written are the same either way */

struct slot {
    uint8_t *buf;                   /* WBLOCK + 1 bytes */
    size_t len;                     /* bytes in buf */
    size_t item;                    /* plan index */
    int last;                       /* the item's last block */
    const ap_sha256 *start;         /* not NULL: the item's first bytes were hashed
                                       ahead (struct ahead); continue from this */
};

struct hasher {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t more, room;      /* slots to hash / free slots */
    struct slot slot[RING];
    size_t head, count;             /* next slot to fill; filled slots not yet hashed */
    int idle;                       /* the helper waits for blocks */
    int room_wait;                  /* the main thread waits until count <= room_at */
    size_t room_at;
    int stop;
    int failed;                     /* 1: a hash differs or hashing failed */
    size_t failed_item;             /* plan index of the first failure */
    int failed_internal;            /* hashing itself failed */
    ap_sha256 *h;
    ap_bundle_plan *p;              /* written to only in one pass (the hashes) */
    int one_pass;                   /* store each file's hash (or compare a pin's) */
};

static void *hasher_main(void *arg)
{
    struct hasher *hs = arg;
    size_t tail = 0;
    pthread_mutex_lock(&hs->mu);
    for (;;) {
        while (hs->count == 0 && !hs->stop) {
            hs->idle = 1;
            pthread_cond_wait(&hs->more, &hs->mu);
        }
        hs->idle = 0;
        if (hs->count == 0)
            break;
        struct slot *sl = &hs->slot[tail];
        int skip = hs->failed;
        pthread_mutex_unlock(&hs->mu);
        int bad = 0, internal = 0;
        if (!skip) {
            if (sl->start && ap_sha256_copy(hs->h, sl->start) != AP_OK)
                bad = internal = 1;
            if (!bad && sl->len && ap_sha256_update(hs->h, sl->buf, sl->len) != AP_OK)
                bad = internal = 1;
            if (sl->last && !bad) {
                uint8_t got[AP_SHA256_LEN];
                ap_bundle_item *it = &hs->p->items[sl->item];
                if (ap_sha256_final(hs->h, got) != AP_OK || ap_sha256_reset(hs->h) != AP_OK)
                    bad = internal = 1;
                else if (hs->one_pass && !it->known)
                    memcpy(it->sha256, got, AP_SHA256_LEN); /* the one hash of this file */
                else if (memcmp(got, it->sha256, AP_SHA256_LEN) != 0)
                    bad = 1;
            }
        }
        pthread_mutex_lock(&hs->mu);
        if (bad && !hs->failed) {
            hs->failed = 1;
            hs->failed_item = sl->item;
            hs->failed_internal = internal;
        }
        tail = (tail + 1) % RING;
        hs->count--;
        if (hs->room_wait && hs->count <= hs->room_at)
            pthread_cond_signal(&hs->room);
    }
    pthread_mutex_unlock(&hs->mu);
    return NULL;
}

/* A free slot to read into (waits while the ring is full). */
static struct slot *hasher_slot(struct hasher *hs)
{
    struct slot *sl;
    pthread_mutex_lock(&hs->mu);
    if (hs->count == RING) {
        /* full: wait until half of it is free, not for each block */
        hs->room_wait = 1;
        hs->room_at = RING / 2;
        while (hs->count > hs->room_at)
            pthread_cond_wait(&hs->room, &hs->mu);
        hs->room_wait = 0;
    }
    sl = &hs->slot[hs->head];
    pthread_mutex_unlock(&hs->mu);
    return sl;
}

/* Hand the slot just filled to the helper. */
static void hasher_post(struct hasher *hs)
{
    pthread_mutex_lock(&hs->mu);
    hs->head = (hs->head + 1) % RING;
    hs->count++;
    if (hs->idle && hs->count >= WAKE_BATCH)
        pthread_cond_signal(&hs->more);
    pthread_mutex_unlock(&hs->mu);
}

/* Wait until every posted block is hashed; returns hs->failed. */
static int hasher_drain(struct hasher *hs)
{
    int f;
    pthread_mutex_lock(&hs->mu);
    if (hs->count > 0 && hs->idle)
        pthread_cond_signal(&hs->more);
    hs->room_wait = 1;
    hs->room_at = 0;
    while (hs->count > 0)
        pthread_cond_wait(&hs->room, &hs->mu);
    hs->room_wait = 0;
    f = hs->failed;
    pthread_mutex_unlock(&hs->mu);
    return f;
}

static int hasher_full(struct hasher *hs)
{
    int f;
    pthread_mutex_lock(&hs->mu);
    f = hs->count == RING;
    pthread_mutex_unlock(&hs->mu);
    return f;
}

static int hasher_failed(struct hasher *hs)
{
    int f;
    pthread_mutex_lock(&hs->mu);
    f = hs->failed;
    pthread_mutex_unlock(&hs->mu);
    return f;
}

static int hash_failure(const struct hasher *hs, ap_error *err)
{
    const ap_bundle_item *it = &hs->p->items[hs->failed_item];
    if (hs->failed_internal)
        return ap_error_set(err, AP_ERR_INTERNAL, "cannot hash '%s'", it->src);
    if (hs->one_pass)
        return ap_error_set_at(err, AP_ERR_INPUT, it->src, 0, 0,
                               "file changed while building the bundle (its sha-256 differs "
                               "from its pin)");
    return ap_error_set_at(err, AP_ERR_INPUT, it->src, 0, 0,
                           "file changed while building the bundle (its sha-256 differs "
                           "between the two passes)");
}

/* Where libarchive's output goes. A failed write(2) is recorded here and
 * reported to libarchive as success (later bytes are dropped): libarchive
 * 3.6 leaks its output buffer when it enters its fatal state, so the
 * writer never lets it; the caller checks `err` after every call. */
struct sink {
    int fd;
    int err;                        /* errno of the first failed write, 0 if none */
    int discard;                    /* drop everything (the build failed) */
    uint64_t written;               /* bytes written */
    uint64_t flushed;               /* bytes handed to writeback */
    int sync;                       /* opts->sync: start writeback as it goes */
    ap_partw *pw;                   /* split volumes: parts instead of fd */
    ap_error pw_err;                /* the part writer's error (err = EIO) */
};

#define WRITEBACK_STEP (32u << 20)  /* --sync: start writeback every 32 MiB (the final fsync is short) */

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct sink *s = ctx;
    size_t off = 0;
    (void)a;
    if (s->pw) {
        if (!s->discard && !s->err && ap_partw_write(s->pw, buf, len, &s->pw_err) != AP_OK)
            s->err = EIO;
        return (la_ssize_t)len;
    }
    while (!s->discard && !s->err && off < len) {
        ssize_t n = write(s->fd, (const char *)buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            s->err = n < 0 ? errno : EIO;
        else
            off += (size_t)n;
    }
    s->written += off;
    if (s->sync && !s->err && s->written - s->flushed >= WRITEBACK_STEP) {
        /* Start writing back what is done without waiting for it. */
        sync_file_range(s->fd, (off_t)s->flushed, (off_t)(s->written - s->flushed),
                        SYNC_FILE_RANGE_WRITE);
        s->flushed = s->written;
    }
    return (la_ssize_t)len;
}

/* Hashing ahead (one pass). The helper's one SHA-256 stream is the
 * build's bottleneck (1.4 GB/s here, slower than tar's copy), so the main
 * thread, instead of waiting on a full ring, hashes the beginning of a
 * later file from its own reads: the last large file first, then the one
 * before it, never one it has reached. When it gets to such a file, the
 * helper continues from the hash so far (or, for a file hashed whole,
 * does nothing). Those bytes are read twice, once to hash and once to
 * write; the file must keep the size, mtime, ctime and inode it had when
 * planned from before the first read to after the last (same_times), as
 * for every file in one pass. Any surprise while hashing ahead (a read
 * error, another size, another stamp, a pin that does not match) just
 * drops the work: the normal path then meets and reports it. */
#define AHEAD_MIN ((uint64_t)4 << 20) /* smaller files are not worth it */
#define AHEAD_NONE SIZE_MAX

struct ahead {
    int on;                         /* one pass on 2+ CPUs, and candidates left */
    size_t idx;                     /* the file being hashed ahead, or AHEAD_NONE */
    size_t next;                    /* the next candidate: this index and below */
    int fd;
    uint64_t off;                   /* bytes of idx hashed so far */
    ap_sha256 *h;
    uint8_t *buf;                   /* WBLOCK bytes */
    uint8_t *done;                  /* per item: 1 = hashed whole (sha256 set) */
};

struct writer {
    struct archive *a;
    struct sink sink;
    const char *tmp;                /* for messages */
    const char *output;
    uint64_t mtime;
    struct hasher hs;
    int hasher_running;
    struct ahead ah;
    uint64_t done, total;
    const ap_bundle_write_opts *opts;
};

static int archive_fail(struct writer *w, const char *what, const char *entry, ap_error *err)
{
    int e = archive_errno(w->a);
    if (w->sink.err && w->sink.pw_err.status != AP_OK)
        return ap_error_set(err, w->sink.pw_err.status, "cannot write bundle '%s': %s '%s': %s",
                            w->output, what, entry, w->sink.pw_err.msg);
    if (w->sink.err)
        return ap_error_set(err, AP_ERR_IO, "cannot write bundle '%s': %s '%s': %s", w->output,
                            what, entry, strerror(w->sink.err));
    const char *s = archive_error_string(w->a);
    return ap_error_set(err, AP_ERR_IO, "cannot write bundle '%s': %s '%s': %s", w->output, what,
                        entry, s ? s : (e ? strerror(e) : "unknown error"));
}

static int write_header(struct writer *w, const char *path, uint64_t size, unsigned mode,
                        ap_error *err)
{
    struct archive_entry *e = archive_entry_new();
    int r;
    if (!e)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    archive_entry_set_pathname_utf8(e, path);
    if (!archive_entry_pathname(e)) {
        /* libarchive could not encode the name (no UTF-8 locale): refuse, do not crash. */
        archive_entry_free(e);
        return ap_error_set(err, AP_ERR_INPUT, "cannot write bundle '%s': cannot encode the "
                                               "entry name '%s' (no UTF-8 locale available)",
                            w->output, path);
    }
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, (mode_t)mode);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_mtime(e, (time_t)w->mtime, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    r = archive_write_header(w->a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK || w->sink.err)
        return archive_fail(w, "header of", path, err);
    return AP_OK;
}

static int write_data(struct writer *w, const void *buf, size_t len, const char *path, ap_error *err)
{
    while (len > 0) {
        la_ssize_t n = archive_write_data(w->a, buf, len);
        if (n <= 0 || w->sink.err)
            return archive_fail(w, "data of", path, err);
        buf = (const char *)buf + n;
        len -= (size_t)n;
    }
    return AP_OK;
}

static int write_memory(struct writer *w, const char *path, const void *data, size_t len,
                        ap_error *err)
{
    int rc = write_header(w, path, len, 0644, err);
    if (rc == AP_OK)
        rc = write_data(w, data, len, path, err);
    return rc;
}

static void progress2(struct writer *w)
{
    if (w->opts->progress)
        w->opts->progress(w->opts->progress_ctx, 2, w->done, w->total);
}

/* One pass: the open file must still have the size, mtime and ctime it
 * had when planned (the inode is checked by open_source). */
static int same_times(int fd, const ap_bundle_item *it, const char *what, ap_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot stat", it->src);
    if ((uint64_t)st.st_size != it->size ||
        (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec != it->mtime_ns ||
        (uint64_t)st.st_ctim.tv_sec * 1000000000u + (uint64_t)st.st_ctim.tv_nsec != it->ctime_ns)
        return ap_error_set_at(err, AP_ERR_INPUT, it->src, 0, 0,
                               "file changed while building the bundle (%s: size, mtime or "
                               "ctime differ)",
                               what);
    return AP_OK;
}

static void ahead_drop(struct ahead *ah)
{
    if (ah->fd >= 0)
        close(ah->fd);
    ah->fd = -1;
    ah->idx = AHEAD_NONE;
}

/* Open the next candidate above cur (largest index first); 0 if none. */
static int ahead_pick(struct writer *w, size_t cur)
{
    struct ahead *ah = &w->ah;
    const ap_bundle_plan *p = w->hs.p;
    while (ah->next != AHEAD_NONE && ah->next > cur) {
        size_t j = ah->next--;
        const ap_bundle_item *it = &p->items[j];
        ap_error e;
        int fd = -1;
        if (!it->src || it->in_base || it->size < AHEAD_MIN)
            continue;
        if (open_source(it, 1, &fd, &e) != AP_OK)
            continue;
        if (same_times(fd, it, "", &e) != AP_OK || ap_sha256_reset(ah->h) != AP_OK) {
            close(fd);
            continue;
        }
        ah->idx = j;
        ah->fd = fd;
        ah->off = 0;
        return 1;
    }
    ah->on = 0;
    return 0;
}

/* Hash one block of a later file; 0 when there is nothing to hash ahead. */
static int ahead_step(struct writer *w, size_t cur)
{
    struct ahead *ah = &w->ah;
    ap_bundle_item *it;
    ssize_t r;
    if (ah->idx == AHEAD_NONE && !ahead_pick(w, cur))
        return 0;
    it = &w->hs.p->items[ah->idx];
    r = read_full(ah->fd, ah->buf, WBLOCK);
    if (r < 0 || ah->off + (uint64_t)r > it->size ||
        ((size_t)r < WBLOCK && ah->off + (uint64_t)r != it->size) ||
        ap_sha256_update(ah->h, ah->buf, (size_t)r) != AP_OK) {
        ahead_drop(ah);
        return 1;
    }
    ah->off += (uint64_t)r;
    if (ah->off == it->size) {
        uint8_t got[AP_SHA256_LEN];
        if (ap_sha256_final(ah->h, got) != AP_OK ||
            (it->known && memcmp(got, it->sha256, AP_SHA256_LEN) != 0)) {
            ahead_drop(ah); /* the helper will hash it and report it */
            return 1;
        }
        if (!it->known)
            memcpy(it->sha256, got, AP_SHA256_LEN);
        ah->done[ah->idx] = 1;
        ahead_drop(ah);
    }
    return 1;
}

/* A free slot of the ring; while the ring is full, hash ahead instead of
 * waiting. */
static struct slot *next_slot(struct writer *w, size_t cur)
{
    while (w->ah.on && hasher_full(&w->hs) && ahead_step(w, cur))
        ;
    return hasher_slot(&w->hs);
}

/* Copy one source file (plan index idx) into the archive; the helper
 * hashes it again and compares with pass one (two passes), or hashes it
 * once (one pass), unless it was hashed ahead. */
static int write_file(struct writer *w, size_t idx, ap_error *err)
{
    const ap_bundle_item *it = &w->hs.p->items[idx];
    uint64_t left = it->size, skip = 0; /* the first skip bytes were hashed ahead */
    const ap_sha256 *start = NULL;
    int fd = -1, rc, whole = w->ah.done && w->ah.done[idx];
    ssize_t r;

    if (w->ah.idx == idx) {
        /* reached the file being hashed ahead: the helper goes on from there;
         * every candidate after it is done, so hashing ahead ends here */
        skip = w->ah.off;
        start = skip ? w->ah.h : NULL;
        ahead_drop(&w->ah);
        w->ah.on = 0;
    }
    if ((rc = open_source(it, 1, &fd, err)))
        return rc;
    if (w->hs.one_pass && (rc = same_times(fd, it, "changed since it was planned", err)))
        goto out;
    if ((rc = write_header(w, it->path, it->size, it->mode, err)))
        goto out;
    for (;;) {
        struct slot *sl;
        size_t want = left < WBLOCK ? (size_t)left + 1 : WBLOCK; /* +1: notice growth */
        uint64_t at = it->size - left;
        if (hasher_failed(&w->hs)) {
            rc = hash_failure(&w->hs, err);
            goto out;
        }
        sl = next_slot(w, idx);
        r = read_full(fd, sl->buf, want);
        if (r < 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot read", it->src);
            goto out;
        }
        if ((uint64_t)r > left) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, it->src, 0, 0,
                                 "file changed while building the bundle (it grew)");
            goto out;
        }
        if (r == 0 && left > 0) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, it->src, 0, 0,
                                 "file changed while building the bundle (it shrank)");
            goto out;
        }
        left -= (uint64_t)r;
        if (!whole && at >= skip) {
            /* to the helper (a slot not posted stays free for the next block) */
            sl->len = (size_t)r;
            sl->item = idx;
            sl->last = left == 0;
            sl->start = at == skip ? start : NULL;
            hasher_post(&w->hs);
        }
        if (r > 0 && (rc = write_data(w, sl->buf, (size_t)r, it->path, err)))
            goto out;
        w->done += (uint64_t)r;
        progress2(w);
        if (left == 0)
            break;
    }
    /* one pass: a write while the file was read moves its mtime/ctime */
    rc = w->hs.one_pass ? same_times(fd, it, "modified while it was read", err) : AP_OK;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

struct one_pass {
    ap_bundle_head_fn head;
    void *ctx;
};

static uint64_t round512(uint64_t n);

/* One pass, once the payload is written and its hashes known: SHA256SUMS,
 * the lock and its signature again, now final, into the places reserved
 * for them (the same lengths: hashes have a fixed width). The reserved
 * bytes are read back first: they must be exactly what was written there. */
static int fill_head(struct writer *w, int fd, ap_bundle_plan *p, const struct one_pass *op,
                     const void *lock0, size_t lock_len, const void *sig0, size_t sig_len,
                     const void *sums0, ap_error *err)
{
    char *lock = NULL, *sig = NULL, *back = NULL;
    size_t ll = 0, sl = 0;
    uint64_t off_lock = 512, off_sig = off_lock + round512(lock_len) + 512,
             off_sums = off_sig + round512(sig_len) + 512;
    const void *old[3] = {lock0, sig0, sums0};
    uint64_t offs[3] = {off_lock, off_sig, off_sums};
    size_t lens[3] = {lock_len, sig_len, p->sums_len};
    int rc;

    if ((rc = plan_sums(p, err)) != AP_OK)
        return rc;
    if (p->sums_len != lens[2])
        return ap_error_set(err, AP_ERR_INTERNAL, "SHA256SUMS changed length");
    if ((rc = op->head(op->ctx, p, &lock, &ll, &sig, &sl, err)) != AP_OK)
        return rc;
    if (ll != lock_len || sl != sig_len) {
        rc = ap_error_set(err, AP_ERR_INTERNAL,
                          "the final lock or signature is not as long as the reserved one");
        goto out;
    }
    {
        const void *neu[3] = {lock, sig, p->sums};
        size_t max = lens[0] > lens[1] ? lens[0] : lens[1];
        if (lens[2] > max)
            max = lens[2];
        if (!(back = malloc(max ? max : 1))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (int i = 0; i < 3; i++) {
            ap_error rerr;
            if ((w->sink.pw ? ap_partw_pread(w->sink.pw, offs[i], back, lens[i], &rerr) != AP_OK
                            : pread(fd, back, lens[i], (off_t)offs[i]) != (ssize_t)lens[i]) ||
                memcmp(back, old[i], lens[i]) != 0) {
                rc = ap_error_set(err, AP_ERR_INTERNAL,
                                  "cannot find the reserved head entries in '%s'", w->tmp);
                goto out;
            }
        }
        for (int i = 0; w->sink.pw && i < 3; i++)
            if ((rc = ap_partw_pwrite(w->sink.pw, offs[i], neu[i], lens[i], err)) != AP_OK)
                goto out;
        for (int i = 0; !w->sink.pw && i < 3; i++) {
            size_t done = 0;
            while (done < lens[i]) {
                ssize_t n = pwrite(fd, (const char *)neu[i] + done, lens[i] - done,
                                   (off_t)(offs[i] + done));
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0) {
                    rc = ap_error_errno(err, AP_ERR_IO, n < 0 ? errno : EIO, "cannot write",
                                        w->tmp);
                    goto out;
                }
                done += (size_t)n;
            }
        }
    }
    rc = AP_OK;
out:
    free(lock);
    free(sig);
    free(back);
    return rc;
}

static int write_impl(ap_bundle_plan *p, const char *output, const void *lock, size_t lock_len,
                      const void *sig, size_t sig_len, const ap_bundle_write_opts *opts,
                      const struct one_pass *op, ap_error *err);

int ap_bundle_write(const ap_bundle_plan *p, const char *output, const void *lock, size_t lock_len,
                    const void *sig, size_t sig_len, const ap_bundle_write_opts *opts,
                    ap_error *err)
{
    if (p->one_pass)
        return ap_error_set(err, AP_ERR_INTERNAL, "a one-pass plan needs ap_bundle_write_one_pass");
    /* the two-pass path only reads the plan */
    return write_impl((ap_bundle_plan *)p, output, lock, lock_len, sig, sig_len, opts, NULL, err);
}

int ap_bundle_write_one_pass(ap_bundle_plan *p, const char *output, ap_bundle_head_fn head,
                             void *head_ctx, const ap_bundle_write_opts *opts, ap_error *err)
{
    struct one_pass op = {head, head_ctx};
    char *lock = NULL, *sig = NULL;
    size_t ll = 0, sl = 0;
    int rc;
    if (!p->one_pass || !head)
        return ap_error_set(err, AP_ERR_INTERNAL, "the plan is not prepared for one pass");
    if (opts && opts->zstd_level > 0)
        return ap_error_set(err, AP_ERR_INTERNAL, "one pass needs an uncompressed output");
    /* the head as it will be, with placeholder hashes: its final length */
    if ((rc = head(head_ctx, p, &lock, &ll, &sig, &sl, err)) != AP_OK)
        return rc;
    /* test hook (tests/cli/test_onepass.sh): change inputs between plan and write */
    ap_test_stall("AIRPACK_TEST_BUILD_STALL");
    rc = write_impl(p, output, lock, ll, sig, sl, opts, &op, err);
    free(lock);
    free(sig);
    return rc;
}

int ap_bundle_output_is_stream(const char *output)
{
    struct stat st;
    if (strcmp(output, "-") == 0)
        return 1;
    return stat(output, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode));
}

static int write_impl(ap_bundle_plan *p, const char *output, const void *lock, size_t lock_len,
                      const void *sig, size_t sig_len, const ap_bundle_write_opts *opts,
                      const struct one_pass *op, ap_error *err)
{
    char *sums0 = NULL;
    int stream_out = 0;
    static const ap_bundle_write_opts defaults = {.mtime = AP_DEFAULT_EPOCH};
    struct writer w;
    char *dir = NULL, *tmp = NULL;
    const char *base;
    int fd = -1, rc, renamed = 0;

    locale_t utf8 = (locale_t)0, old_locale = (locale_t)0;

    if (!opts)
        opts = &defaults;
    /* libarchive encodes names through the thread's locale: pin it to UTF-8
     * so that non-ASCII names become standard pax path records whatever the
     * user's environment (the output must not depend on it). */
    utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (!utf8)
        utf8 = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", (locale_t)0);
    if (utf8)
        old_locale = uselocale(utf8);
    memset(&w, 0, sizeof w);
    w.ah.fd = -1;
    w.ah.idx = AHEAD_NONE;
    w.opts = opts;
    w.output = output;
    w.mtime = opts->mtime;
    w.total = p->bytes;
    if (!p->hashed) {
        rc = ap_error_set(err, AP_ERR_INTERNAL, "the bundle plan is not hashed");
        goto out;
    }
    if (opts->zstd_level < 0 || opts->zstd_level > 19) {
        rc = ap_error_set(err, AP_ERR_INPUT, "zstd level %d is out of range (1 to 19)",
                          opts->zstd_level);
        goto out;
    }
    if (!(dir = ap_path_dirname(output))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (ap_bundle_output_is_stream(output)) {
        /* a pipe (two passes only): written as it goes, nothing to rename */
        if (op || opts->volume_size > 0) {
            rc = ap_error_set(err, AP_ERR_INPUT,
                              "'%s' is a pipe: one pass and volumes need a file", output);
            goto out;
        }
        fd = strcmp(output, "-") == 0 ? dup(STDOUT_FILENO)
                                      : open(output, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot open", output);
            goto out;
        }
        w.tmp = output;
        stream_out = 1;
        goto start;
    }
    if ((rc = ap_bundle_check_space(output, ap_bundle_plan_estimate(p, lock_len, sig_len), err)))
        goto out;
    base = base_name(output);
    if (opts->volume_size > 0) {
        /* split volumes: the sink writes output.001, ... (parts.h) */
        if (!opts->parts) {
            rc = ap_error_set(err, AP_ERR_INTERNAL, "no place for the parts written");
            goto out;
        }
        if ((rc = ap_partw_open(output, opts->volume_size,
                                ap_bundle_plan_estimate(p, lock_len, sig_len), &w.sink.pw,
                                err)) != AP_OK)
            goto out;
        w.tmp = output;
        goto start;
    }
    if (!*base || asprintf(&tmp, "%s/.%s.XXXXXX.tmp", dir, base) < 0) {
        tmp = NULL;
        rc = *base ? ap_error_set(err, AP_ERR_NOMEM, "out of memory")
                   : ap_error_set(err, AP_ERR_INPUT, "'%s' is not a file name", output);
        goto out;
    }
    /* what a killed build of this output left behind (not with signals
     * blocked: the folder may be large) */
    (void)ap_tmp_sweep(dir, base);
    {
        /* No signal between creating the file and registering it for cleanup. */
        sigset_t block, saved;
        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGHUP);
        sigaddset(&block, SIGQUIT);
        pthread_sigmask(SIG_BLOCK, &block, &saved);
        fd = mkostemps(tmp, 4, O_CLOEXEC);
        if (fd >= 0) {
            tmp_register(tmp);
            (void)flock(fd, LOCK_EX); /* ours while we live: not swept */
        }
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
    }
    if (fd < 0) {
        rc = ap_error_errno(err, errno == ENOENT ? AP_ERR_INPUT : AP_ERR_IO, errno,
                            "cannot create a temporary file in", dir);
        free(tmp);
        tmp = NULL;
        goto out;
    }
    w.tmp = tmp;
    if (fchmod(fd, 0644) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot set the mode of", tmp);
        goto out;
    }

start:
    /* The re-hashing helper and its ring of blocks. */
    w.hs.p = p;
    w.hs.one_pass = op != NULL;
    if (op && !(sums0 = malloc(p->sums_len ? p->sums_len : 1))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (op)
        memcpy(sums0, p->sums, p->sums_len); /* what is reserved, to check it before filling */
    w.hs.h = ap_sha256_new();
    if (!w.hs.h) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < RING; i++) {
        if (!(w.hs.slot[i].buf = malloc(WBLOCK + 1))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    pthread_mutex_init(&w.hs.mu, NULL);
    pthread_cond_init(&w.hs.more, NULL);
    pthread_cond_init(&w.hs.room, NULL);
    if (pthread_create(&w.hs.tid, NULL, hasher_main, &w.hs) != 0) {
        pthread_mutex_destroy(&w.hs.mu);
        pthread_cond_destroy(&w.hs.more);
        pthread_cond_destroy(&w.hs.room);
        rc = ap_error_set(err, AP_ERR_INTERNAL, "cannot start a hashing thread");
        goto out;
    }
    w.hasher_running = 1;
    /* one pass on more than one CPU: the main thread hashes ahead while it
     * would wait (struct ahead) */
    if (op && p->n > 1 && sysconf(_SC_NPROCESSORS_ONLN) > 1) {
        if (!(w.ah.h = ap_sha256_new()) || !(w.ah.buf = malloc(WBLOCK)) ||
            !(w.ah.done = calloc(p->n, 1))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        w.ah.next = p->n - 1;
        w.ah.on = 1;
    }

    if (!(w.a = archive_write_new())) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (archive_write_set_format_pax_restricted(w.a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w.a, stream_out ? (int)OUT_BLOCK : 0) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w.a, 1) != ARCHIVE_OK) {
        rc = archive_fail(&w, "format of", output, err);
        goto out;
    }
    if (opts->zstd_level > 0) {
        char lvl[16];
        snprintf(lvl, sizeof lvl, "%d", opts->zstd_level);
        if (archive_write_add_filter_zstd(w.a) != ARCHIVE_OK ||
            archive_write_set_filter_option(w.a, "zstd", "compression-level", lvl) != ARCHIVE_OK) {
            rc = archive_fail(&w, "zstd filter for", output, err);
            goto out;
        }
    }
    w.sink.fd = fd;
    w.sink.sync = opts->sync;
    if (archive_write_open2(w.a, &w.sink, NULL, sink_write, NULL, NULL) != ARCHIVE_OK) {
        rc = archive_fail(&w, "open", tmp, err);
        goto out;
    }
    if ((rc = write_memory(&w, AP_LOCK_NAME, lock, lock_len, err)) ||
        (rc = write_memory(&w, AP_LOCK_SIG_NAME, sig, sig_len, err)) ||
        (rc = write_memory(&w, AP_SUMS_NAME, p->sums, p->sums_len, err)))
        goto out;
    if (w.ah.on && getenv("AIRPACK_TEST_HASH_AHEAD")) {
        /* test hook (tests/cli/test_onepass.sh): hash N blocks ahead before
         * the first file, then wait on AIRPACK_TEST_AHEAD_STALL */
        long n = strtol(getenv("AIRPACK_TEST_HASH_AHEAD"), NULL, 10);
        while (n-- > 0 && ahead_step(&w, 0))
            ;
        ap_test_stall("AIRPACK_TEST_AHEAD_STALL");
    }
    for (size_t i = 0; i < p->n; i++) {
        const ap_bundle_item *it = &p->items[i];
        if (it->in_base) {
            w.done += it->size; /* delta: the site has it; not in the tar */
            continue;
        }
        if (it->src) {
            rc = write_file(&w, i, err);
        } else {
            rc = write_memory(&w, it->path, it->data, (size_t)it->size, err);
            w.done += it->size;
        }
        if (rc)
            goto out;
    }
    if (hasher_drain(&w.hs)) {
        rc = hash_failure(&w.hs, err);
        goto out;
    }
    if (archive_write_close(w.a) != ARCHIVE_OK || w.sink.err) {
        rc = archive_fail(&w, "end of", output, err);
        goto out;
    }
    progress2(&w);
    if (op && (rc = fill_head(&w, fd, p, op, lock, lock_len, sig, sig_len, sums0, err)) != AP_OK)
        goto out;
    if (w.sink.pw) {
        ap_partw *pw = w.sink.pw;
        w.sink.pw = NULL;
        rc = ap_partw_commit(pw, opts->parts, err);
        goto out;
    }
    if (stream_out) {
        if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", output);
            goto out;
        }
        rc = close(fd) != 0 ? ap_error_errno(err, AP_ERR_IO, errno, "cannot write", output)
                            : AP_OK;
        fd = -1;
        goto out;
    }
    /* Without --sync the bundle is left to the kernel's writeback, as tar
     * and cp leave their output: a crash of the machine before it reaches
     * the disk can leave a damaged file under the name, which verify
     * refuses (docs/bundle-format.md, section 7). */
    if (opts->sync && fsync(fd) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, output) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename the bundle to", output);
        goto out;
    }
    renamed = 1;
    tmp_unregister();
    rc = opts->sync ? ap_fsync_dir_of(output, err) : AP_OK;
out:
    if (w.a) {
        if (rc != AP_OK)
            w.sink.discard = 1; /* close normally (frees libarchive's buffers), write nothing */
        archive_write_close(w.a);
        archive_write_free(w.a);
    }
    if (w.hasher_running) {
        pthread_mutex_lock(&w.hs.mu);
        w.hs.stop = 1;
        w.hs.failed = 1; /* skip what is left */
        pthread_cond_broadcast(&w.hs.more);
        pthread_mutex_unlock(&w.hs.mu);
        pthread_join(w.hs.tid, NULL);
        pthread_mutex_destroy(&w.hs.mu);
        pthread_cond_destroy(&w.hs.more);
        pthread_cond_destroy(&w.hs.room);
    }
    ap_sha256_free(w.hs.h);
    for (size_t i = 0; i < RING; i++)
        free(w.hs.slot[i].buf);
    ahead_drop(&w.ah);
    ap_sha256_free(w.ah.h);   /* after the helper stopped: it may have read it */
    free(w.ah.buf);
    free(w.ah.done);
    ap_partw_abort(w.sink.pw);
    if (fd >= 0)
        close(fd);
    if (tmp && !renamed) {
        unlink(tmp);
        tmp_unregister();
    }
    free(tmp);
    free(dir);
    free(sums0);
    if (utf8) {
        uselocale(old_locale);
        freelocale(utf8);
    }
    return rc;
}

/* ---- reading a bundle's head (inspect) --------------------------------- */

static int read_entry(struct archive *a, size_t max, char **out, size_t *len, const char *path,
                      const char *what, ap_error *err)
{
    size_t cap = 0, n = 0;
    char *b = NULL;
    *out = NULL;
    *len = 0;
    for (;;) {
        char tmp[65536];
        la_ssize_t r = archive_read_data(a, tmp, sizeof tmp);
        if (r < 0) {
            free(b);
            return ap_error_set_at(err, AP_ERR_CHECK, path, 0, 0, "cannot read %s: %s", what,
                                   archive_error_string(a) ? archive_error_string(a) : "error");
        }
        if (r == 0)
            break;
        if (n + (size_t)r > max) {
            free(b);
            return ap_error_set_at(err, AP_ERR_CHECK, path, 0, 0, "%s is larger than %zu bytes",
                                   what, max);
        }
        if (n + (size_t)r + 1 > cap) {
            size_t nc = cap ? cap * 2 : 65536;
            while (nc < n + (size_t)r + 1)
                nc *= 2;
            char *nb = realloc(b, nc);
            if (!nb) {
                free(b);
                return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            }
            b = nb;
            cap = nc;
        }
        memcpy(b + n, tmp, (size_t)r);
        n += (size_t)r;
    }
    if (!b && !(b = malloc(1)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    b[n] = '\0';
    *out = b;
    *len = n;
    return AP_OK;
}

int ap_bundle_read_head(const char *path, char **lock, size_t *lock_len, char **sig,
                        size_t *sig_len, ap_error *err)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    int fd = -1, rc, r;

    *lock = *sig = NULL;
    *lock_len = *sig_len = 0;
    if (!a)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    archive_read_support_format_tar(a);
    archive_read_support_filter_zstd(a);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open bundle", path);
        goto out;
    }
    if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
        rc = ap_error_set_at(err, AP_ERR_CHECK, path, 0, 0, "not a bundle: %s",
                             archive_error_string(a) ? archive_error_string(a) : "unreadable");
        goto out;
    }
    r = archive_read_next_header(a, &e);
    if (r != ARCHIVE_OK || !archive_entry_pathname(e) ||
        strcmp(archive_entry_pathname(e), AP_LOCK_NAME) != 0 ||
        archive_entry_filetype(e) != AE_IFREG) {
        rc = ap_error_set_at(err, AP_ERR_CHECK, path, 0, 0,
                             "not a bundle: the first entry is not a regular file '%s'",
                             AP_LOCK_NAME);
        goto out;
    }
    if (archive_entry_size(e) > (la_int64_t)AP_LOCK_MAX_BYTES) {
        rc = ap_error_set_at(err, AP_ERR_CHECK, path, 0, 0, "the lock is larger than %u bytes",
                             (unsigned)AP_LOCK_MAX_BYTES);
        goto out;
    }
    if ((rc = read_entry(a, AP_LOCK_MAX_BYTES, lock, lock_len, path, "the lock", err)))
        goto out;
    r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_OK && archive_entry_pathname(e) &&
        strcmp(archive_entry_pathname(e), AP_LOCK_SIG_NAME) == 0 &&
        archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) <= AP_KEYFILE_MAX) {
        if ((rc = read_entry(a, AP_KEYFILE_MAX, sig, sig_len, path, "the signature", err)))
            goto out;
    }
    rc = AP_OK;
out:
    if (rc != AP_OK) {
        free(*lock);
        *lock = NULL;
        *lock_len = 0;
    }
    archive_read_free(a);
    if (fd >= 0)
        close(fd);
    return rc;
}
