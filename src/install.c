/*
 * install.c - atomic install, list, rollback and cleanup (see install.h).
 *
 * The order of the durable steps is what makes a kill -9 harmless:
 *   1. stream + verify into releases/<name>/.staging-XXXXXX (0700), each
 *      file fsynced when its hash matched;
 *   2. fsync every staged folder; write the receipt into
 *      .airpack/receipts/<name>/.staging-XXXXXX and fsync it;
 *   3. rename the receipt, then the release, into place (fsync parents);
 *   4. point current/<name> at the release: symlink a temporary name,
 *      rename it over current/<name>, fsync current/;
 *   5. replace state.json (temporary file, fsync, rename, fsync).
 * Before 4 the old release is active; after 4 the new one is, and its
 * receipt's sequence counts for rollback protection even when 5 never
 * happened. Leftovers of 1-3 are dot-names the next run removes.
 */
#include "install.h"
#include "site/layout.h"
#include "site/units.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"
#include "site/store.h"
#include "trust/trust.h"
#include "util.h"

#define STATE_MAX (4u << 20)      /* bytes of state.json / install.json read back */
#define NAME_MAX_BYTES 200

/* ---- small helpers ---- */

static int pathf(char *out, size_t n, ap_error *err, const char *fmt, ...) AP_PRINTF(4, 5);
static int pathf(char *out, size_t n, ap_error *err, const char *fmt, ...)
{
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= n)
        return ap_error_set(err, AP_ERR_INPUT, "path too long: '%.200s...'", out);
    return AP_OK;
}

static int mkdir_p(const char *path, mode_t mode, ap_error *err)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return ap_error_set(err, AP_ERR_INPUT, "invalid path '%.200s'", path);
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return ap_error_errno(err, AP_ERR_IO, errno, "cannot create folder", buf);
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot create folder", buf);
    return AP_OK;
}

static int fsync_path(const char *path, int dir, ap_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (dir ? O_DIRECTORY : 0));
    if (fd < 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot open", path);
    if (fsync(fd) != 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return ap_error_errno(err, AP_ERR_IO, e, "cannot fsync", path);
    }
    close(fd);
    return AP_OK;
}

static int fsync_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag != FTW_D && flag != FTW_DP)
        return 0;
    return fsync_path(p, 1, NULL) == AP_OK ? 0 : -1;
}

static int write_file_sync(const char *path, const void *data, size_t len, mode_t mode,
                           ap_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    const char *p = data;
    if (fd < 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot create", path);
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            return ap_error_errno(err, AP_ERR_IO, e, "cannot write", path);
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return ap_error_errno(err, AP_ERR_IO, e, "cannot fsync", path);
    }
    if (close(fd) != 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot close", path);
    return AP_OK;
}

static void now_rfc3339(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Crash-test hook (install.h). */
static long crash_at = -1;
static long crash_count;

static void checkpoint_init(void)
{
    const char *s = getenv("AIRPACK_TEST_CRASH_AT");
    crash_count = 0;
    crash_at = s && *s ? strtol(s, NULL, 10) : -1;
}

static void checkpoint(void)
{
    if (crash_at > 0 && __atomic_add_fetch(&crash_count, 1, __ATOMIC_SEQ_CST) == crash_at)
        raise(SIGKILL);
}

/* Read a small JSON file; *out NULL when it does not exist. */
static int read_json(const char *path, json_t **out, ap_error *err)
{
    char *buf = NULL;
    size_t len;
    json_error_t je;
    int rc;
    *out = NULL;
    rc = ap_read_file(path, STATE_MAX, &buf, &len, err);
    if (rc != AP_OK) {
        if (access(path, F_OK) != 0 && errno == ENOENT) {
            ap_error_clear(err);
            return AP_OK;
        }
        return rc;
    }
    *out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return ap_error_set_at(err, AP_ERR_INPUT, path, (unsigned)(je.line > 0 ? je.line : 0),
                               (unsigned)(je.column > 0 ? je.column : 0), "invalid JSON: %s",
                               je.text);
    }
    return AP_OK;
}

/* Write JSON to path atomically (temporary file, fsync, rename, fsync). */
static int write_json_atomic(const char *path, const json_t *j, ap_error *err)
{
    char tmp[PATH_MAX];
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    int rc;
    if (!s)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if ((rc = pathf(tmp, sizeof tmp, err, "%s.tmp-%ld", path, (long)getpid())) != AP_OK)
        goto out;
    unlink(tmp);
    size_t n = strlen(s);
    s[n] = '\n';
    rc = write_file_sync(tmp, s, n + 1, 0644, err);
    s[n] = '\0';
    if (rc != AP_OK)
        goto out;
    if (rename(tmp, path) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename", tmp);
        unlink(tmp);
        goto out;
    }
    rc = ap_fsync_dir_of(path, err);
out:
    free(s);
    return rc;
}

/* "<version>+<sequence>" of current/<name>, "" when none. */
static int current_release(const char *prefix, const char *name, char out[AP_RELEASE_MAX],
                           ap_error *err)
{
    char link[PATH_MAX], target[PATH_MAX];
    ssize_t n;
    const char *base;
    int rc;
    out[0] = '\0';
    if ((rc = pathf(link, sizeof link, err, "%s/current/%s", prefix, name)) != AP_OK)
        return rc;
    n = readlink(link, target, sizeof target - 1);
    if (n < 0)
        return errno == ENOENT ? AP_OK
                               : ap_error_errno(err, AP_ERR_IO, errno, "cannot read link", link);
    target[n] = '\0';
    base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (strlen(base) >= AP_RELEASE_MAX || !ap_path_is_safe_relative(base))
        return ap_error_set_at(err, AP_ERR_INPUT, link, 0, 0, "unexpected link target '%.200s'",
                               target);
    snprintf(out, AP_RELEASE_MAX, "%s", base);
    return AP_OK;
}

uint64_t ap_release_seq(const char *rel)
{
    const char *plus = strrchr(rel, '+');
    char *end;
    unsigned long long v;
    if (!plus || !plus[1])
        return 0;
    errno = 0;
    v = strtoull(plus + 1, &end, 10);
    return errno || *end ? 0 : (uint64_t)v;
}

static int is_dot(const char *n)
{
    return n[0] == '.';
}

/* Take the prefix's writer lock; *fd is closed by the caller. */
static int lock_prefix(const char *prefix, int *fd, ap_error *err)
{
    char p[PATH_MAX];
    int rc;
    *fd = -1;
    if ((rc = pathf(p, sizeof p, err, "%s/.airpack", prefix)) != AP_OK ||
        (rc = mkdir_p(p, 0755, err)) != AP_OK ||
        (rc = pathf(p, sizeof p, err, "%s/.airpack/lock", prefix)) != AP_OK)
        return rc;
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (*fd < 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot open", p);
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        if (e == EWOULDBLOCK)
            return ap_error_set(err, AP_ERR_IO, "prefix '%s' is in use by another airpack", prefix);
        return ap_error_errno(err, AP_ERR_IO, e, "cannot lock", p);
    }
    return AP_OK;
}

/* Remove dot-named leftovers in dir whose names start with one of pfx. */
static void sweep(const char *dir, const char *const *pfx)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[PATH_MAX];
    if (!d)
        return;
    while ((e = readdir(d))) {
        for (size_t i = 0; pfx[i]; i++) {
            if (strncmp(e->d_name, pfx[i], strlen(pfx[i])) == 0 &&
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p) {
                ap_remove_tree(p);
                break;
            }
        }
    }
    closedir(d);
}

static int update_state(const char *prefix, const char *name, uint64_t seq, const char *rel,
                        const char *prev, int raise_highest, ap_error *err);
static int read_highest(const char *prefix, const char *name, uint64_t *out, ap_error *err);

/* With the lock held: leftovers of killed installs, and a state.json that
 * a kill between the switch of current/ and its update left behind. */
static int cleanup_locked(const char *prefix, ap_error *err)
{
    static const char *const staged[] = {".staging-", ".old-", NULL};
    static const char *const links[] = {".tmp-", NULL};
    char p[PATH_MAX], q[PATH_MAX];
    DIR *d;
    struct dirent *e;
    int rc;

    for (int pass = 0; pass < 2; pass++) {
        if ((rc = pathf(p, sizeof p, err, pass ? "%s/.airpack/receipts" : "%s/releases", prefix)))
            return rc;
        if (!(d = opendir(p)))
            continue;
        while ((e = readdir(d))) {
            if (is_dot(e->d_name))
                continue;
            if (snprintf(q, sizeof q, "%s/%s", p, e->d_name) >= (int)sizeof q)
                continue;
            sweep(q, staged);
        }
        closedir(d);
    }
    if ((rc = pathf(p, sizeof p, err, "%s/current", prefix)))
        return rc;
    sweep(p, links);
    if ((rc = pathf(p, sizeof p, err, "%s/.airpack", prefix)))
        return rc;
    {
        static const char *const st[] = {"state.json.tmp-", NULL};
        sweep(p, st);
    }
    /* receipts whose release never made it into place */
    if ((rc = pathf(p, sizeof p, err, "%s/.airpack/receipts", prefix)))
        return rc;
    if ((d = opendir(p))) {
        while ((e = readdir(d))) {
            DIR *d2;
            struct dirent *e2;
            if (is_dot(e->d_name) || snprintf(q, sizeof q, "%s/%s", p, e->d_name) >= (int)sizeof q)
                continue;
            if (!(d2 = opendir(q)))
                continue;
            while ((e2 = readdir(d2))) {
                char rel[PATH_MAX], rec[PATH_MAX];
                struct stat st;
                if (is_dot(e2->d_name))
                    continue;
                if (snprintf(rel, sizeof rel, "%s/releases/%s/%s", prefix, e->d_name, e2->d_name) >=
                        (int)sizeof rel ||
                    snprintf(rec, sizeof rec, "%s/%s", q, e2->d_name) >= (int)sizeof rec)
                    continue;
                if (lstat(rel, &st) != 0 && errno == ENOENT)
                    ap_remove_tree(rec);
            }
            closedir(d2);
        }
        closedir(d);
    }
    /* the active release's sequence must be in state.json */
    if ((rc = pathf(p, sizeof p, err, "%s/current", prefix)))
        return rc;
    if ((d = opendir(p))) {
        while ((e = readdir(d))) {
            char cur[AP_RELEASE_MAX];
            uint64_t highest = 0;
            ap_error e2;
            if (is_dot(e->d_name) || strlen(e->d_name) > NAME_MAX_BYTES)
                continue;
            if (current_release(prefix, e->d_name, cur, &e2) != AP_OK || !cur[0] ||
                read_highest(prefix, e->d_name, &highest, &e2) != AP_OK)
                continue;
            if (ap_release_seq(cur) > highest &&
                (rc = update_state(prefix, e->d_name, ap_release_seq(cur), cur, NULL, 1, err))) {
                closedir(d);
                return rc;
            }
        }
        closedir(d);
    }
    return AP_OK;
}

int ap_install_cleanup(const char *prefix, ap_error *err)
{
    int fd, rc = lock_prefix(prefix, &fd, err);
    if (rc != AP_OK)
        return rc;
    rc = cleanup_locked(prefix, err);
    close(fd);
    return rc;
}

/* The highest sequence state.json records for name (0 when none). */
static int read_highest(const char *prefix, const char *name, uint64_t *out, ap_error *err)
{
    char statep[PATH_MAX];
    json_t *state = NULL;
    int rc;
    *out = 0;
    if ((rc = pathf(statep, sizeof statep, err, "%s/.airpack/state.json", prefix)) ||
        (rc = read_json(statep, &state, err)))
        return rc;
    if (state) {
        json_t *d = json_object_get(json_object_get(state, "deployments"), name);
        json_t *h = json_object_get(d, "highest_sequence");
        if (json_is_integer(h) && json_integer_value(h) > 0)
            *out = (uint64_t)json_integer_value(h);
        json_decref(state);
    }
    return AP_OK;
}

/* ---- the staging sink ---- */

struct ent {
    int fd;
    unsigned mode;
    uint64_t written;             /* bytes written so far (writer thread) */
    uint64_t kicked;              /* bytes handed to writeback so far (writer thread) */
    size_t pending;               /* blocks queued, not yet written (writer.mu) */
    int werr;                     /* errno of a failed write, 0 if none (writer.mu) */
    char path[AP_LOCK_MAX_PATH + 1];
    /* the object store (site/store.h) */
    int dirfd;                    /* the staged file's folder */
    char base[AP_LOCK_MAX_PATH + 1]; /* its name there */
    uint8_t sha256[AP_SHA256_LEN];
    int dedup;                    /* the store has it: hash the stream, write nothing, link */
    int replace;                  /* the store's copy is damaged: replace it with this one */
};

/* Start writeback every WRITEBACK_STEP bytes, so that the data reaches the
 * disk while the rest is still being hashed and the final fsync() has
 * little left to do (it still makes the file durable). */
#define WRITEBACK_STEP (8u << 20)

/* The writer thread: the hashing threads hand each verified-so-far block to
 * it (copied into one of WQ_SLOTS buffers of WQ_BLOCK bytes), so hashing
 * and the write() system calls overlap. Blocks of one entry are written in
 * order (one thread, FIFO). Memory: WQ_SLOTS * WQ_BLOCK bytes. */
#define WQ_SLOTS 8
#define WQ_BLOCK (1u << 20)

struct wblock {
    struct ent *e;
    uint8_t *buf;
    size_t len;
};

struct writer {
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;       /* a block was queued, or stop */
    pthread_cond_t cv_free;       /* a buffer came back, an entry's block was written */
    struct wblock q[WQ_SLOTS];
    size_t head, count;           /* ring of queued blocks */
    uint8_t *free_bufs[WQ_SLOTS];
    size_t nfree;
    int stop;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct wblock b;
        size_t off = 0;
        int werr;
        while (w->count == 0 && !w->stop)
            pthread_cond_wait(&w->cv_work, &w->mu);
        if (w->count == 0)
            break;
        b = w->q[w->head];
        w->head = (w->head + 1) % WQ_SLOTS;
        w->count--;
        werr = b.e->werr;
        pthread_mutex_unlock(&w->mu);
        while (!werr && off < b.len) {
            ssize_t n = write(b.e->fd, b.buf + off, b.len - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                werr = n < 0 ? errno : EIO;
                break;
            }
            off += (size_t)n;
            b.e->written += (uint64_t)n;
        }
        if (!werr && b.e->written - b.e->kicked >= WRITEBACK_STEP) {
            (void)sync_file_range(b.e->fd, (off64_t)b.e->kicked,
                                  (off64_t)(b.e->written - b.e->kicked), SYNC_FILE_RANGE_WRITE);
            b.e->kicked = b.e->written;
        }
        pthread_mutex_lock(&w->mu);
        if (werr && !b.e->werr)
            b.e->werr = werr;
        b.e->pending--;
        w->free_bufs[w->nfree++] = b.buf;
        pthread_cond_broadcast(&w->cv_free);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int writer_start(struct writer *w, ap_error *err)
{
    memset(w, 0, sizeof *w);
    for (size_t i = 0; i < WQ_SLOTS; i++) {
        if (!(w->free_bufs[i] = malloc(WQ_BLOCK))) {
            for (size_t k = 0; k < i; k++)
                free(w->free_bufs[k]);
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        }
    }
    w->nfree = WQ_SLOTS;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv_work, NULL);
    pthread_cond_init(&w->cv_free, NULL);
    if (pthread_create(&w->th, NULL, writer_main, w) != 0) {
        for (size_t i = 0; i < WQ_SLOTS; i++)
            free(w->free_bufs[i]);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv_work);
        pthread_cond_destroy(&w->cv_free);
        return ap_error_set(err, AP_ERR_INTERNAL, "cannot start the writer thread");
    }
    w->started = 1;
    return AP_OK;
}

/* Write every queued block, then stop the thread. Safe when not started. */
static void writer_stop(struct writer *w)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    for (size_t i = 0; i < w->nfree; i++)
        free(w->free_bufs[i]);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_free);
    w->started = 0;
}

struct inst {
    const ap_install_opts *o;
    const char *bundle;
    char name[NAME_MAX_BYTES + 1];
    char rel[AP_RELEASE_MAX];
    char prev[AP_RELEASE_MAX];
    char rel_parent[PATH_MAX];    /* PREFIX/releases/<name> */
    char staging[PATH_MAX];       /* its .staging-XXXXXX, "" until made */
    int created_parent;           /* rel_parent was made by us */
    int stage_fd;                 /* staging folder fd */
    struct writer w;              /* the writer thread */
    /* kept for the receipt */
    char *lock_buf, *sig_buf;
    size_t lock_len, sig_len;
    ap_pubkey signer;
    int have_signer;
    struct ap_trust *trust_apply;     /* a newer trust file the bundle carries, to record */
    uint64_t sequence;
};

static int open_parent(struct inst *in, const char *rel, int *dirfd, const char **base,
                       ap_error *err);

/* A delta bundle: every in_base artifact comes from the object store,
 * re-hashed first; refuse, naming them, when any is missing or damaged. */
static int link_base(struct inst *in, const ap_lock *lock, ap_error *err)
{
    char bad[AP_ERROR_MSG_MAX / 2];
    size_t nbad = 0, blen = 0;
    int rc;
    bad[0] = '\0';
    for (size_t i = 0; i < lock->n_artifacts; i++) {
        const ap_artifact *a = &lock->artifacts[i];
        ap_store_state st;
        if (!a->in_base)
            continue;
        st = ap_store_lookup(in->o->prefix, a->sha256, a->mode, a->size, 1);
        if (st == AP_STORE_GOOD)
            continue;
        nbad++;
        if (blen < sizeof bad) {
            int k = snprintf(bad + blen, sizeof bad - blen, "%s'%s' (%s)", blen ? ", " : "",
                             a->path, st == AP_STORE_ABSENT ? "not in the store" : "store copy damaged");
            if (k > 0)
                blen += (size_t)k;
        }
    }
    if (nbad)
        return ap_error_set(err, AP_ERR_CHECK,
                            "bundle '%s' is a delta: %zu artifact%s it needs from the base %s "
                            "missing or damaged in '%s': %s",
                            in->bundle, nbad, nbad == 1 ? "" : "s", nbad == 1 ? "is" : "are",
                            in->o->prefix, bad);
    for (size_t i = 0; i < lock->n_artifacts; i++) {
        const ap_artifact *a = &lock->artifacts[i];
        const char *base;
        int dfd;
        if (!a->in_base)
            continue;
        if (!ap_path_is_safe_relative(a->path))
            return ap_error_set(err, AP_ERR_CHECK, "unsafe path '%s'", a->path);
        if ((rc = open_parent(in, a->path, &dfd, &base, err)) != AP_OK)
            return rc;
        rc = ap_store_link(in->o->prefix, a->sha256, a->mode, dfd, base, err);
        close(dfd);
        if (rc != AP_OK)
            return rc;
    }
    return AP_OK;
}

static int inst_begin(void *ctx, const ap_lock *lock, const void *lock_buf, size_t lock_len,
                      const void *sig_buf, size_t sig_len, const ap_pubkey *signer, ap_error *err)
{
    struct inst *in = ctx;
    const char *prefix = in->o->prefix;
    uint64_t highest = 0, need;
    struct statvfs vfs;
    int rc;

    checkpoint();
    if (strlen(lock->name) > NAME_MAX_BYTES)
        return ap_error_set(err, AP_ERR_CHECK, "deployment name too long");
    snprintf(in->name, sizeof in->name, "%s", lock->name);
    if (snprintf(in->rel, sizeof in->rel, "%s+%llu", lock->version,
                 (unsigned long long)lock->sequence) >= (int)sizeof in->rel)
        return ap_error_set(err, AP_ERR_CHECK, "release name too long");
    in->sequence = lock->sequence;

    /* rollback protection: the highest sequence ever seen, and the active one */
    if ((rc = read_highest(prefix, in->name, &highest, err)) != AP_OK)
        return rc;
    if ((rc = current_release(prefix, in->name, in->prev, err)) != AP_OK)
        return rc;
    if (in->prev[0] && ap_release_seq(in->prev) > highest)
        highest = ap_release_seq(in->prev);
    if (in->prev[0] && strcmp(in->prev, in->rel) == 0)
        return ap_error_set(err, AP_ERR_CHECK, "release '%s' of '%s' is already installed and active",
                            in->rel, in->name);
    if ((in->prev[0] || highest) && lock->sequence <= highest && !in->o->allow_downgrade)
        return ap_error_set(err, AP_ERR_CHECK,
                            "bundle '%s': sequence %llu of '%s' is not above the installed "
                            "sequence %llu (rollback protection; --allow-downgrade overrides)",
                            in->bundle, (unsigned long long)lock->sequence, in->name,
                            (unsigned long long)highest);
    if (in->o->admit && (rc = in->o->admit(in->o->admit_ctx, lock, err)) != AP_OK)
        return rc;

    if ((rc = pathf(in->rel_parent, sizeof in->rel_parent, err, "%s/releases/%s", prefix,
                    in->name)))
        return rc;
    if (access(in->rel_parent, F_OK) != 0) {
        if ((rc = mkdir_p(in->rel_parent, 0755, err)) != AP_OK)
            return rc;
        in->created_parent = 1;
    }
    /* free space: the artifacts, plus a block per file, plus the receipt */
    if (statvfs(in->rel_parent, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
        const char *fake = getenv("AIRPACK_TEST_AVAILABLE_BYTES"); /* test hook (install.h) */
        if (fake && *fake)
            avail = strtoull(fake, NULL, 10);
        /* bytes already in the object store are linked, not written again */
        uint64_t have = ap_store_bytes_present(prefix, lock);
        if (!ap_mul_u64((uint64_t)lock->n_artifacts + 8, 4096, &need) ||
            !ap_add_u64(need, lock->total_bytes - (have < lock->total_bytes ? have : lock->total_bytes),
                        &need) ||
            !ap_add_u64(need, (uint64_t)lock_len * 2 + sig_len, &need))
            need = UINT64_MAX;
        if (need > avail)
            return ap_error_set(err, AP_ERR_IO,
                                "not enough free space in '%s': %llu bytes needed, %llu available",
                                in->rel_parent, (unsigned long long)need,
                                (unsigned long long)avail);
    }
    if ((rc = ap_store_init(prefix, err)) != AP_OK)
        return rc;
    if ((rc = pathf(in->staging, sizeof in->staging, err, "%s/.staging-XXXXXX", in->rel_parent)))
        return rc;
    if (!mkdtemp(in->staging)) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot create staging folder", in->staging);
        in->staging[0] = '\0';
        return rc;
    }
    in->stage_fd = open(in->staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (in->stage_fd < 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot open", in->staging);
    if ((rc = link_base(in, lock, err)) != AP_OK)
        return rc;
    in->lock_buf = malloc(lock_len + 1);
    in->sig_buf = malloc(sig_len + 1);
    if (!in->lock_buf || !in->sig_buf)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    memcpy(in->lock_buf, lock_buf, lock_len);
    memcpy(in->sig_buf, sig_buf, sig_len);
    in->lock_len = lock_len;
    in->sig_len = sig_len;
    if (signer) {
        in->signer = *signer;
        in->have_signer = 1;
    }
    checkpoint();
    return AP_OK;
}

/* Open the parent folders of rel under the staging fd, creating them. */
static int open_parent(struct inst *in, const char *rel, int *dirfd, const char **base,
                       ap_error *err)
{
    char comp[AP_LOCK_MAX_PATH + 1];
    const char *p = rel, *slash;
    int fd = dup(in->stage_fd);
    if (fd < 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot open", in->staging);
    while ((slash = strchr(p, '/'))) {
        size_t n = (size_t)(slash - p);
        int nfd;
        memcpy(comp, p, n);
        comp[n] = '\0';
        if (mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            close(fd);
            return ap_error_errno(err, AP_ERR_IO, e, "cannot create folder", rel);
        }
        nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        if (nfd < 0)
            return ap_error_errno(err, AP_ERR_IO, errno, "cannot open folder", rel);
        fd = nfd;
        p = slash + 1;
    }
    *dirfd = fd;
    *base = p;
    return AP_OK;
}

static int inst_open(void *ctx, size_t index, const ap_artifact *a, void **entry, ap_error *err)
{
    struct inst *in = ctx;
    struct ent *e;
    const char *base;
    int dfd, rc;
    (void)index;
    if (!ap_path_is_safe_relative(a->path))
        return ap_error_set(err, AP_ERR_CHECK, "unsafe path '%s'", a->path);
    if (!(e = calloc(1, sizeof *e)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    snprintf(e->path, sizeof e->path, "%s", a->path);
    e->mode = a->mode;
    e->fd = -1;
    memcpy(e->sha256, a->sha256, AP_SHA256_LEN);
    if ((rc = open_parent(in, a->path, &dfd, &base, err)) != AP_OK) {
        free(e);
        return rc;
    }
    e->dirfd = dfd;
    snprintf(e->base, sizeof e->base, "%s", base);
    /* already in the store (re-hashed: a stored object is never trusted
     * blindly): verify the stream, write nothing, link the object */
    switch (ap_store_lookup(in->o->prefix, a->sha256, a->mode, a->size, 1)) {
    case AP_STORE_GOOD:
        e->dedup = 1;
        *entry = e;
        return AP_OK;
    case AP_STORE_DAMAGED:
        e->replace = 1;
        break;
    default:
        break;
    }
    e->fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (e->fd < 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot create", a->path);
        close(dfd);
        free(e);
        return rc;
    }
    *entry = e;
    return AP_OK;
}

/* Queue a copy of the block for the writer thread (blocks while all
 * buffers are in use). */
static int inst_write(void *ctx, void *entry, const void *buf, size_t len, ap_error *err)
{
    struct inst *in = ctx;
    struct writer *w = &in->w;
    struct ent *e = entry;
    const uint8_t *p = buf;
    if (e->dedup)
        return AP_OK; /* hashed by the verifier; the store has the bytes */
    while (len > 0) {
        size_t n = len < WQ_BLOCK ? len : WQ_BLOCK;
        uint8_t *b;
        pthread_mutex_lock(&w->mu);
        while (w->nfree == 0 && !e->werr)
            pthread_cond_wait(&w->cv_free, &w->mu);
        if (e->werr) {
            int werr = e->werr;
            pthread_mutex_unlock(&w->mu);
            return ap_error_errno(err, AP_ERR_IO, werr, "cannot write", e->path);
        }
        b = w->free_bufs[--w->nfree];
        pthread_mutex_unlock(&w->mu);
        memcpy(b, p, n);
        pthread_mutex_lock(&w->mu);
        w->q[(w->head + w->count) % WQ_SLOTS] = (struct wblock){e, b, n};
        w->count++;
        e->pending++;
        pthread_cond_signal(&w->cv_work);
        pthread_mutex_unlock(&w->mu);
        p += n;
        len -= n;
    }
    return AP_OK;
}

static int inst_close(void *ctx, void *entry, int ok, ap_error *err)
{
    struct inst *in = ctx;
    struct ent *e = entry;
    int rc = AP_OK, werr;
    /* the writer must be done with this entry before its fd goes */
    pthread_mutex_lock(&in->w.mu);
    while (e->pending > 0)
        pthread_cond_wait(&in->w.cv_free, &in->w.mu);
    werr = e->werr;
    pthread_mutex_unlock(&in->w.mu);
    if (e->dedup) {
        if (ok)
            rc = ap_store_link(in->o->prefix, e->sha256, e->mode, e->dirfd, e->base, err);
        close(e->dirfd);
        free(e);
        if (ok)
            checkpoint();
        return rc;
    }
    if (ok && werr)
        rc = ap_error_errno(err, AP_ERR_IO, werr, "cannot write", e->path);
    else if (ok) {
        if (fchmod(e->fd, e->mode) != 0)
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot set mode of", e->path);
        else if (fsync(e->fd) != 0)
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot fsync", e->path);
    }
    if (close(e->fd) != 0 && ok && rc == AP_OK)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot close", e->path);
    /* one copy per content: the verified file becomes the store's object */
    if (ok && rc == AP_OK)
        rc = ap_store_adopt(in->o->prefix, e->sha256, e->mode, e->dirfd, e->base, e->replace, err);
    close(e->dirfd);
    free(e);
    if (ok)
        checkpoint();
    return rc;
}

/* ---- commit ---- */

static int write_receipt(struct inst *in, const ap_bundle_result *vr, const char *dir,
                         ap_error *err)
{
    char p[PATH_MAX], when[32], hex[AP_SHA256_HEX_LEN + 1];
    json_t *rec, *sig;
    char *s;
    int rc;

    if ((rc = pathf(p, sizeof p, err, "%s/%s", dir, AP_LOCK_NAME)) ||
        (rc = write_file_sync(p, in->lock_buf, in->lock_len, 0644, err)) ||
        (rc = pathf(p, sizeof p, err, "%s/%s", dir, AP_LOCK_SIG_NAME)) ||
        (rc = write_file_sync(p, in->sig_buf, in->sig_len, 0644, err)))
        return rc;
    /* co-signatures too: audit counts them again under the trust file in force */
    for (size_t i = 1; i < vr->n_sigs; i++)
        if ((rc = pathf(p, sizeof p, err, "%s/%s", dir, vr->sigs[i].entry)) ||
            (rc = write_file_sync(p, vr->sigs[i].text, vr->sigs[i].len, 0644, err)))
            return rc;
    checkpoint();
    now_rfc3339(when);
    ap_hex_encode(vr->lock_sha256, AP_SHA256_LEN, hex);
    {
        char kid[17], b64[128];
        uint8_t raw[2 + AP_KEYID_LEN + AP_PK_LEN];
        ap_keyid_hex(vr->sig.keyid, kid);
        memcpy(raw, "Ed", 2);
        memcpy(raw + 2, in->signer.keyid, AP_KEYID_LEN);
        memcpy(raw + 2 + AP_KEYID_LEN, in->signer.pk, AP_PK_LEN);
        sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
        sig = json_pack("{s:s,s:s,s:s,s:s,s:s}", "algorithm", vr->sig.alg, "key_id", kid,
                        "key_file", in->signer.source, "public_key", b64, "trusted_comment",
                        vr->sig.trusted_comment);
    }
    rec = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:o,s:I,s:I,s:{s:s,s:s}}", "format",
                    AP_INSTALL_RECORD_FORMAT, "name", in->name, "version", vr->lock->version,
                    "sequence", (json_int_t)vr->lock->sequence, "release", in->rel,
                    "installed_at", when, "bundle", in->bundle, "lock_sha256", hex, "signature",
                    sig ? sig : json_null(), "artifacts", (json_int_t)vr->lock->n_artifacts,
                    "bytes", (json_int_t)vr->lock->total_bytes, "tool", "name", "airpack",
                    "version", AIRPACK_VERSION);
    if (!rec)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    json_object_set_new(rec, "previous_release", in->prev[0] ? json_string(in->prev) : json_null());
    if (in->o->source_digest)
        json_object_set_new(rec, "oci_digest", json_string(in->o->source_digest));
    if (in->o->record_extra && json_object_update(rec, (json_t *)in->o->record_extra) != 0) {
        json_decref(rec);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if (in->o->trust) {
        const ap_trust *t = in->trust_apply ? in->trust_apply : in->o->trust;
        char th[AP_SHA256_HEX_LEN + 1];
        ap_hex_encode(t->sha256, AP_SHA256_LEN, th);
        json_object_set_new(rec, "trust",
                            json_pack("{s:I,s:s,s:I,s:I,s:I,s:b}", "version", (json_int_t)t->version,
                                      "sha256", th, "signatures_counted",
                                      (json_int_t)vr->sigs_counted, "signatures_needed",
                                      (json_int_t)vr->sigs_needed, "verified_with_version",
                                      (json_int_t)in->o->trust->version, "updated",
                                      in->trust_apply || in->o->record_trust));
    }
    s = json_dumps(rec, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(rec);
    if (!s)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if ((rc = pathf(p, sizeof p, err, "%s/%s", dir, AP_INSTALL_RECORD)) == AP_OK)
        rc = write_file_sync(p, s, strlen(s), 0644, err);
    free(s);
    if (rc == AP_OK)
        rc = fsync_path(dir, 1, err);
    return rc;
}

/* Point current/<name> at releases/<name>/<rel>, atomically. */
static int switch_current(const char *prefix, const char *name, const char *rel, ap_error *err)
{
    char dir[PATH_MAX], tmp[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
    int rc;
    if ((rc = pathf(dir, sizeof dir, err, "%s/current", prefix)) ||
        (rc = mkdir_p(dir, 0755, err)) ||
        (rc = pathf(tmp, sizeof tmp, err, "%s/.tmp-%s-%ld", dir, name, (long)getpid())) ||
        (rc = pathf(link, sizeof link, err, "%s/%s", dir, name)) ||
        (rc = pathf(target, sizeof target, err, "../releases/%s/%s", name, rel)))
        return rc;
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot create link", tmp);
    checkpoint();
    if (rename(tmp, link) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename", tmp);
        unlink(tmp);
        return rc;
    }
    return fsync_path(dir, 1, err);
}

static int update_state(const char *prefix, const char *name, uint64_t seq, const char *rel,
                        const char *prev, int raise_highest, ap_error *err)
{
    char p[PATH_MAX], when[32];
    json_t *state = NULL, *deps, *d;
    int rc;
    if ((rc = pathf(p, sizeof p, err, "%s/.airpack/state.json", prefix)) ||
        (rc = read_json(p, &state, err)))
        return rc;
    if (!state)
        state = json_pack("{s:s,s:{}}", "format", AP_INSTALL_STATE_FORMAT, "deployments");
    if (!state)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    deps = json_object_get(state, "deployments");
    if (!json_is_object(deps)) {
        deps = json_object();
        json_object_set_new(state, "deployments", deps);
    }
    d = json_object_get(deps, name);
    if (!json_is_object(d)) {
        d = json_object();
        json_object_set_new(deps, name, d);
    }
    {
        json_t *h = json_object_get(d, "highest_sequence");
        uint64_t cur = json_is_integer(h) && json_integer_value(h) > 0
                           ? (uint64_t)json_integer_value(h) : 0;
        if (raise_highest && seq > cur)
            cur = seq;
        json_object_set_new(d, "highest_sequence", json_integer((json_int_t)cur));
    }
    now_rfc3339(when);
    json_object_set_new(d, "current", json_string(rel));
    if (prev) /* NULL: keep what is there */
        json_object_set_new(d, "previous", *prev ? json_string(prev) : json_null());
    json_object_set_new(d, "updated", json_string(when));
    rc = write_json_atomic(p, state, err);
    json_decref(state);
    return rc;
}

static int commit(struct inst *in, const ap_bundle_result *vr, ap_error *err)
{
    const char *prefix = in->o->prefix;
    char rec_parent[PATH_MAX], rec_stage[PATH_MAX], rec_final[PATH_MAX], rel_final[PATH_MAX],
        old[PATH_MAX];
    int rc;

    checkpoint();
    /* every staged folder durable, then readable by others */
    if (nftw(in->staging, fsync_cb, 16, FTW_PHYS) != 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot fsync", in->staging);
    if (chmod(in->staging, 0755) != 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot set mode of", in->staging);
    checkpoint();

    if ((rc = pathf(rec_parent, sizeof rec_parent, err, "%s/.airpack/receipts/%s", prefix,
                    in->name)) ||
        (rc = mkdir_p(rec_parent, 0755, err)) ||
        (rc = pathf(rec_stage, sizeof rec_stage, err, "%s/.staging-XXXXXX", rec_parent)))
        return rc;
    if (!mkdtemp(rec_stage))
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot create staging folder", rec_stage);
    if ((rc = write_receipt(in, vr, rec_stage, err)) != AP_OK)
        goto fail_receipt;
    if (chmod(rec_stage, 0755) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot set mode of", rec_stage);
        goto fail_receipt;
    }
    checkpoint();

    /* an inactive copy of the same release (a killed or older install) goes */
    if ((rc = pathf(rel_final, sizeof rel_final, err, "%s/%s", in->rel_parent, in->rel)) ||
        (rc = pathf(rec_final, sizeof rec_final, err, "%s/%s", rec_parent, in->rel)))
        goto fail_receipt;
    if (access(rel_final, F_OK) == 0) {
        if ((rc = pathf(old, sizeof old, err, "%s/.old-%s", in->rel_parent, in->rel)))
            goto fail_receipt;
        ap_remove_tree(old);
        if (rename(rel_final, old) != 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot move aside", rel_final);
            goto fail_receipt;
        }
        ap_remove_tree(old);
    }
    if (access(rec_final, F_OK) == 0) {
        if ((rc = pathf(old, sizeof old, err, "%s/.old-%s", rec_parent, in->rel)))
            goto fail_receipt;
        ap_remove_tree(old);
        if (rename(rec_final, old) != 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot move aside", rec_final);
            goto fail_receipt;
        }
        ap_remove_tree(old);
    }
    if (rename(rec_stage, rec_final) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename", rec_stage);
        goto fail_receipt;
    }
    if ((rc = fsync_path(rec_parent, 1, err)) != AP_OK)
        return rc;
    checkpoint();
    if (rename(in->staging, rel_final) != 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot rename", in->staging);
    in->staging[0] = '\0';
    if ((rc = fsync_path(in->rel_parent, 1, err)) != AP_OK)
        return rc;
    checkpoint();
    /* the trust file, recorded before the switch: a crash after it leaves the
     * newer file in force (it was fully checked) and the old release active */
    if (in->trust_apply) {
        if ((rc = ap_trust_record(prefix, in->trust_apply->raw, in->trust_apply->raw_len,
                                  in->trust_apply->version, err)) != AP_OK)
            return rc;
    } else if (in->o->trust && in->o->record_trust) {
        if ((rc = ap_trust_record(prefix, in->o->trust->raw, in->o->trust->raw_len,
                                  in->o->trust->version, err)) != AP_OK)
            return rc;
    }
    if ((rc = switch_current(prefix, in->name, in->rel, err)) != AP_OK)
        return rc;
    checkpoint();
    if ((rc = update_state(prefix, in->name, in->sequence, in->rel, in->prev, 1, err)) != AP_OK)
        return rc;
    checkpoint();
    return AP_OK;
fail_receipt:
    ap_remove_tree(rec_stage);
    return rc;
}

/* The release's service units and env files (site/units.h), written into
 * the staging folder from the verified lock's launch specs. */
static int write_units(struct inst *in, const ap_bundle_result *vr, ap_error *err)
{
    char abs_prefix[PATH_MAX];
    ap_unit_files uf;
    int rc;
    if (!vr->lock)
        return AP_OK;
    if (!realpath(in->o->prefix, abs_prefix))
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot resolve", in->o->prefix);
    if ((rc = ap_units_render(abs_prefix, in->name, in->rel, vr->lock->json, &uf, err)) != AP_OK)
        return rc;
    rc = ap_units_write(in->staging, &uf, err);
    ap_unit_files_release(&uf);
    if (rc == AP_OK) {
        /* the layouts the runtimes load: Ollama's store, the hub cache */
        ap_layout lay;
        if ((rc = ap_layout_render(vr->lock->json, &lay, err)) == AP_OK)
            rc = ap_layout_write(in->staging, &lay, err);
        ap_layout_release(&lay);
    }
    return rc;
}

/* A trust file the bundle carries (role trust, docs/trust.md): on a prefix
 * governed by a trust file it must be a valid rotation (else the whole
 * install is refused); on a prefix without one it is not applied. */
static int carried_trust(struct inst *in, const ap_bundle_result *vr, ap_error *err)
{
    char p[PATH_MAX], *buf = NULL;
    size_t len = 0;
    ap_signature *sigs;
    int rc;
    const ap_artifact *a = NULL;

    for (size_t i = 0; i < vr->lock->n_artifacts; i++)
        if (vr->lock->artifacts[i].role == AP_ROLE_TRUST)
            a = &vr->lock->artifacts[i];
    if (!a || !in->o->trust)
        return AP_OK;
    if ((rc = pathf(p, sizeof p, err, "%s/%s", in->staging, a->path)) ||
        (rc = ap_read_file(p, AP_TRUST_MAX_BYTES, &buf, &len, err)))
        return rc;
    if (!(sigs = calloc(vr->n_sigs + 1, sizeof *sigs))) {
        free(buf);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < vr->n_sigs; i++)
        sigs[i] = vr->sigs[i].sig;
    rc = ap_trust_carried(in->o->trust, AP_TRUST_ENTRY, buf, len, sigs, vr->n_sigs, in->lock_buf,
                          in->lock_len, &in->trust_apply, err);
    if (rc != AP_OK)
        ap_error_prefix(err, "bundle '%s'", in->bundle);
    free(sigs);
    free(buf);
    return rc;
}

int ap_install(const char *path, const ap_install_opts *o, ap_install_result *res, ap_error *err)
{
    struct inst in;
    ap_bundle_sink sink = {0};
    ap_bundle_opts bo;
    int lockfd = -1, rc;
    char p[PATH_MAX];

    memset(res, 0, sizeof *res);
    memset(&in, 0, sizeof in);
    in.stage_fd = -1;
    in.o = o;
    in.bundle = path;
    checkpoint_init();
    if (!o->prefix || !*o->prefix)
        return ap_error_set(err, AP_ERR_INPUT, "no prefix given");
    if (o->input_fd <= 0 && strcmp(path, "-") != 0 && access(path, R_OK) != 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open bundle", path);
    if ((rc = mkdir_p(o->prefix, 0755, err)) != AP_OK)
        return rc;
    if ((rc = lock_prefix(o->prefix, &lockfd, err)) != AP_OK)
        return rc;
    if ((rc = cleanup_locked(o->prefix, err)) != AP_OK)
        goto out;
    if ((rc = pathf(p, sizeof p, err, "%s/releases", o->prefix)) || (rc = mkdir_p(p, 0755, err)))
        goto out;
    sink.ctx = &in;
    sink.begin = inst_begin;
    sink.open = inst_open;
    sink.write = inst_write;
    sink.close = inst_close;
    memset(&bo, 0, sizeof bo);
    bo.keys = o->keys;
    bo.trust = o->trust;
    bo.threads = o->threads;
    bo.sink = &sink;
    bo.progress = o->progress;
    bo.progress_ctx = o->progress_ctx;
    if ((rc = writer_start(&in.w, err)) != AP_OK)
        goto out;
    rc = o->input_fd > 0 ? ap_bundle_verify_fd(o->input_fd, path, &bo, &res->verify, err)
                         : ap_bundle_verify(path, &bo, &res->verify, err);
    writer_stop(&in.w); /* every entry was closed: nothing is queued */
    if (rc == AP_OK)
        rc = write_units(&in, &res->verify, err);
    if (rc == AP_OK)
        rc = carried_trust(&in, &res->verify, err);
    if (rc == AP_OK)
        rc = commit(&in, &res->verify, err);
    if (rc == AP_OK) {
        snprintf(res->name, sizeof res->name, "%s", in.name);
        snprintf(res->release, sizeof res->release, "%s", in.rel);
        snprintf(res->previous, sizeof res->previous, "%s", in.prev);
    }
out:
    if (in.stage_fd >= 0)
        close(in.stage_fd);
    if (in.staging[0])
        ap_remove_tree(in.staging);
    if (rc != AP_OK && in.created_parent)
        rmdir(in.rel_parent);
    free(in.lock_buf);
    free(in.sig_buf);
    ap_trust_free(in.trust_apply);
    if (lockfd >= 0)
        close(lockfd);
    return rc;
}

void ap_install_result_release(ap_install_result *res)
{
    if (res)
        ap_bundle_result_release(&res->verify);
}

/* ---- list, rollback ---- */

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void ap_strv_free(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

/* The non-dot entries of a folder (sorted); an absent folder is empty. */
static int list_dir(const char *dir, char ***out, ap_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **v = NULL;
    size_t n = 0, cap = 0;
    *out = NULL;
    if (!d) {
        if (errno != ENOENT)
            return ap_error_errno(err, AP_ERR_IO, errno, "cannot read folder", dir);
        if (!(v = calloc(1, sizeof *v)))
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        *out = v;
        return AP_OK;
    }
    while ((e = readdir(d))) {
        if (is_dot(e->d_name))
            continue;
        if (n + 2 > cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nv = realloc(v, nc * sizeof *nv);
            if (!nv)
                goto oom;
            v = nv;
            cap = nc;
        }
        if (!(v[n] = strdup(e->d_name)))
            goto oom;
        v[++n] = NULL;
    }
    closedir(d);
    if (!v && !(v = calloc(1, sizeof *v)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    qsort(v, n, sizeof *v, cmp_strp);
    *out = v;
    return AP_OK;
oom:
    closedir(d);
    ap_strv_free(v);
    return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
}

int ap_install_names(const char *prefix, char ***names, ap_error *err)
{
    char p[PATH_MAX];
    int rc = pathf(p, sizeof p, err, "%s/releases", prefix);
    if (rc != AP_OK)
        return rc;
    return list_dir(p, names, err);
}

/* The release's install record, or NULL. */
static json_t *load_record(const char *prefix, const char *name, const char *rel)
{
    char p[PATH_MAX];
    json_t *j = NULL;
    ap_error e;
    if (snprintf(p, sizeof p, "%s/.airpack/receipts/%s/%s/%s", prefix, name, rel,
                 AP_INSTALL_RECORD) >= (int)sizeof p)
        return NULL;
    if (read_json(p, &j, &e) != AP_OK)
        return NULL;
    return j;
}

static int cmp_rel(const void *a, const void *b)
{
    uint64_t x = ap_release_seq(*(char *const *)a), y = ap_release_seq(*(char *const *)b);
    return x < y ? -1 : x > y ? 1 : strcmp(*(char *const *)a, *(char *const *)b);
}

int ap_install_list(const char *prefix, json_t **out, ap_error *err)
{
    char **names = NULL, p[PATH_MAX], statep[PATH_MAX];
    json_t *doc, *deps, *state = NULL;
    int rc;
    struct stat st;

    *out = NULL;
    if (stat(prefix, &st) != 0 || !S_ISDIR(st.st_mode))
        return ap_error_errno(err, AP_ERR_INPUT, errno ? errno : ENOTDIR, "cannot open prefix", prefix);
    if ((rc = ap_install_names(prefix, &names, err)) != AP_OK)
        return rc;
    if ((rc = pathf(statep, sizeof statep, err, "%s/.airpack/state.json", prefix)) ||
        (rc = read_json(statep, &state, err))) {
        ap_strv_free(names);
        return rc;
    }
    doc = json_pack("{s:s,s:[]}", "prefix", prefix, "deployments");
    deps = json_object_get(doc, "deployments");
    for (size_t i = 0; doc && names[i]; i++) {
        char cur[AP_RELEASE_MAX], **rels = NULL;
        json_t *d, *arr, *h;
        ap_error e2;
        if (current_release(prefix, names[i], cur, &e2) != AP_OK)
            cur[0] = '\0';
        h = json_object_get(json_object_get(json_object_get(state, "deployments"), names[i]),
                            "highest_sequence");
        d = json_pack("{s:s,s:o,s:I,s:[]}", "name", names[i], "current",
                      cur[0] ? json_string(cur) : json_null(), "highest_sequence",
                      (json_int_t)(json_is_integer(h) ? json_integer_value(h) : 0), "releases");
        if (!d)
            break;
        json_array_append_new(deps, d);
        arr = json_object_get(d, "releases");
        if (snprintf(p, sizeof p, "%s/releases/%s", prefix, names[i]) >= (int)sizeof p ||
            list_dir(p, &rels, &e2) != AP_OK)
            continue;
        size_t n = 0;
        while (rels[n])
            n++;
        qsort(rels, n, sizeof *rels, cmp_rel);
        for (size_t k = 0; k < n; k++) {
            json_t *rec = load_record(prefix, names[i], rels[k]);
            json_t *r = json_pack("{s:s,s:I,s:b}", "release", rels[k], "sequence",
                                  (json_int_t)ap_release_seq(rels[k]), "active",
                                  strcmp(rels[k], cur) == 0);
            if (!r) {
                json_decref(rec);
                continue;
            }
            if (rec) {
                json_object_set(r, "version", json_object_get(rec, "version"));
                json_object_set(r, "installed_at", json_object_get(rec, "installed_at"));
                json_object_set(r, "key_id",
                                json_object_get(json_object_get(rec, "signature"), "key_id"));
                json_object_set(r, "artifacts", json_object_get(rec, "artifacts"));
                json_object_set(r, "bytes", json_object_get(rec, "bytes"));
            } else {
                json_object_set_new(r, "receipt", json_false());
            }
            json_array_append_new(arr, r);
            json_decref(rec);
        }
        ap_strv_free(rels);
    }
    json_decref(state);
    ap_strv_free(names);
    if (!doc)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    *out = doc;
    return AP_OK;
}

static int pick_name(const char *prefix, const char *name, char out[NAME_MAX_BYTES + 1],
                     ap_error *err)
{
    char **names = NULL;
    size_t n = 0;
    int rc;
    if (name) {
        if (strlen(name) > NAME_MAX_BYTES || !ap_path_is_safe_relative(name) || strchr(name, '/'))
            return ap_error_set(err, AP_ERR_INPUT, "invalid deployment name '%.200s'", name);
        snprintf(out, NAME_MAX_BYTES + 1, "%s", name);
        return AP_OK;
    }
    if ((rc = ap_install_names(prefix, &names, err)) != AP_OK)
        return rc;
    while (names[n])
        n++;
    if (n == 1)
        snprintf(out, NAME_MAX_BYTES + 1, "%s", names[0]);
    else
        rc = ap_error_set(err, AP_ERR_INPUT,
                          n ? "prefix '%s' holds several deployments: name one"
                            : "prefix '%s' holds no installed deployment", prefix);
    ap_strv_free(names);
    return rc;
}

int ap_install_current(const char *prefix, const char *name, char **release_dir,
                       char **receipt_dir, char release[AP_RELEASE_MAX], ap_error *err)
{
    char nm[NAME_MAX_BYTES + 1], p[PATH_MAX];
    int rc;
    *release_dir = *receipt_dir = NULL;
    if ((rc = pick_name(prefix, name, nm, err)) ||
        (rc = current_release(prefix, nm, release, err)))
        return rc;
    if (!release[0])
        return ap_error_set(err, AP_ERR_INPUT, "deployment '%s' has no active release in '%s'", nm,
                            prefix);
    if ((rc = pathf(p, sizeof p, err, "%s/releases/%s/%s", prefix, nm, release)))
        return rc;
    *release_dir = strdup(p);
    if ((rc = pathf(p, sizeof p, err, "%s/.airpack/receipts/%s/%s", prefix, nm, release)))
        return rc;
    *receipt_dir = strdup(p);
    if (!*release_dir || !*receipt_dir) {
        free(*release_dir);
        free(*receipt_dir);
        *release_dir = *receipt_dir = NULL;
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    return AP_OK;
}

int ap_rollback(const char *prefix, const char *name, char *from, char *to, ap_error *err)
{
    char nm[NAME_MAX_BYTES + 1], cur[AP_RELEASE_MAX], p[PATH_MAX], **rels = NULL;
    const char *best = NULL;
    uint64_t cs, bs = 0;
    int lockfd = -1, rc;

    from[0] = to[0] = '\0';
    if ((rc = lock_prefix(prefix, &lockfd, err)) != AP_OK)
        return rc;
    if ((rc = cleanup_locked(prefix, err)) || (rc = pick_name(prefix, name, nm, err)) ||
        (rc = current_release(prefix, nm, cur, err)))
        goto out;
    if (!cur[0]) {
        rc = ap_error_set(err, AP_ERR_CHECK, "deployment '%s' has no active release", nm);
        goto out;
    }
    cs = ap_release_seq(cur);
    if ((rc = pathf(p, sizeof p, err, "%s/releases/%s", prefix, nm)) ||
        (rc = list_dir(p, &rels, err)))
        goto out;
    for (size_t i = 0; rels[i]; i++) {
        uint64_t s = ap_release_seq(rels[i]);
        char rec[PATH_MAX];
        if (s >= cs || (best && s <= bs))
            continue;
        if (snprintf(rec, sizeof rec, "%s/.airpack/receipts/%s/%s/%s", prefix, nm, rels[i],
                     AP_INSTALL_RECORD) >= (int)sizeof rec || access(rec, F_OK) != 0)
            continue; /* not a complete install */
        best = rels[i];
        bs = s;
    }
    if (!best) {
        rc = ap_error_set(err, AP_ERR_CHECK,
                          "deployment '%s': no installed release older than '%s' to roll back to",
                          nm, cur);
        goto out;
    }
    snprintf(from, AP_RELEASE_MAX, "%s", cur);
    snprintf(to, AP_RELEASE_MAX, "%s", best);
    if ((rc = switch_current(prefix, nm, best, err)) != AP_OK)
        goto out;
    rc = update_state(prefix, nm, bs, best, cur, 0, err);
out:
    ap_strv_free(rels);
    if (lockfd >= 0)
        close(lockfd);
    return rc;
}
