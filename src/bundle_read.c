/*
 * bundle_read.c - the streaming bundle verifier (see bundle_read.h).
 *
 * Two ways in, one set of checks:
 *   - stream mode (a pipe, a tape, a zstd bundle, any fd): an outer
 *     libarchive handle (zstd filter, "raw" format) yields the decompressed
 *     byte stream; an inner handle (tar format only, no filters) reads the
 *     tar from it through feed(). feed() counts every byte, so the stream
 *     can be stopped at the lock's total size (a decompression bomb never
 *     gets far), and it keeps the last bytes it handed out, so the bytes
 *     after the end-of-archive marker can be checked for trailing data.
 *   - direct mode (a regular, uncompressed file read from offset 0): the
 *     inner handle reads the fd itself; entry data is hashed by worker
 *     threads with pread() at each entry's offset while the main thread
 *     skips over it and checks the next header. The file size bounds
 *     everything; trailing bytes are read with pread().
 */
#include "bundle_read.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "parts.h"
#include "trust/trust.h"
#include "util.h"

#define FEED_BLOCK (1u << 20)   /* bytes per read from the input */
#define TAIL_KEEP 8192u         /* bytes of the stream kept before the current block */
#define QUEUE_LEN 4             /* entries queued for the workers */

const char *ap_bundle_fault_name(ap_bundle_fault f)
{
    static const char *const names[] = {
        "none", "archive", "truncated", "trailing-data", "expansion", "lock", "signature",
        "untrusted-key", "expired", "not-regular", "mode", "unsafe-path", "duplicate", "order",
        "unexpected", "missing", "size-mismatch", "sha256-mismatch", "write", "io", "part",
        "in-base",
    };
    return (unsigned)f < AP_ARRAY_LEN(names) ? names[f] : "unknown";
}

/* ---- the worker pool (direct mode) ---- */

struct job {
    size_t index;               /* artifact index */
    uint64_t off;               /* bytes: offset of the data in the file */
    void *entry;                /* sink handle */
    int opened;                 /* sink open() succeeded */
};

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv_job;      /* a job was queued, or stop */
    pthread_cond_t cv_space;    /* a job finished */
    struct job q[QUEUE_LEN];
    size_t head, count;         /* ring of queued jobs */
    size_t busy;                /* jobs being processed */
    int stop;                   /* no more jobs will come */
    int abort;                  /* a fault happened: drop queued jobs (atomic) */
    pthread_t th[AP_BUNDLE_JOBS];
    size_t nth;
    struct reader *r;
    /* the workers' first fault (lowest artifact index), merged at the end */
    int have_fault;
    size_t findex;
    ap_bundle_fault ffault;
    ap_error ferr;
};

struct reader {
    const char *name;
    int fd;
    const ap_bundle_opts *opts;
    ap_bundle_result *res;
    ap_error *err;
    struct archive *outer;      /* stream mode: decompression */
    struct archive *inner;      /* the tar reader */
    int direct;                 /* inner reads fd itself */
    uint64_t file_size;         /* bytes (direct mode) */
    /* stream mode feed state */
    const uint8_t *last;        /* the block handed out last, still valid */
    size_t last_len;
    uint8_t tail[TAIL_KEEP];    /* the stream's bytes just before `last` */
    size_t tail_len;
    uint64_t fed;               /* bytes handed to the tar reader */
    uint64_t limit;             /* bytes the tar reader may get in all */
    int over_limit, outer_eof, outer_failed;
    /* result bookkeeping (guarded by pool.mu when workers run) */
    ap_lock *lock;
    ap_sha256 *h;
    uint8_t *buf;               /* FEED_BLOCK bytes, sequential path */
    int have_fault;
    uint64_t done_bytes;        /* artifact bytes hashed (pool.mu with workers) */
    struct pool *pool;
    struct hq *hq;              /* stream mode hashing helper, or NULL */
    struct parts_src *src;      /* a split bundle: its parts, read as one stream */
};

/* ---- a split bundle as one stream (parts.h) ----
 *
 * The outer handle reads the parts one after another through parts_read():
 * NAME.001, NAME.002, ... from the parts index (whose sizes are then
 * checked as each part ends) or, without an index, by number until the
 * next one does not exist. Nothing is joined on disk; one 1 MiB buffer. */
struct parts_src {
    const ap_parts *index;      /* verified index, or NULL */
    char *dir;                  /* folder of the parts */
    char *stem;                 /* path without ".NNN" (no index) */
    int width;                  /* digits of the part numbers (no index) */
    size_t cur;                 /* part being read, 0-based */
    int fd;                     /* -1 between parts */
    uint64_t in_part;           /* bytes read from the current part */
    char *path;                 /* the current part's path */
    uint8_t *buf;               /* FEED_BLOCK bytes */
    int failed;                 /* msg holds why */
    char msg[AP_ERROR_MSG_MAX / 2];
    size_t n_read;              /* parts read to their end */
};

static const char *src_file(const struct parts_src *ps, size_t i, char *tmp, size_t n)
{
    if (ps->index)
        snprintf(tmp, n, "%s/%s", ps->dir, ps->index->parts[i].file);
    else
        snprintf(tmp, n, "%s.%0*zu", ps->stem, ps->width, i + 1);
    return tmp;
}

static la_ssize_t src_fail(struct archive *a, struct parts_src *ps, const char *fmt, ...)
    AP_PRINTF(3, 4);
static la_ssize_t src_fail(struct archive *a, struct parts_src *ps, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->msg, sizeof ps->msg, fmt, ap);
    va_end(ap);
    ps->failed = 1;
    archive_set_error(a, EIO, "%s", ps->msg);
    return -1;
}

static la_ssize_t parts_read(struct archive *a, void *cd, const void **out)
{
    struct parts_src *ps = cd;
    char path[PATH_MAX], next[PATH_MAX];
    for (;;) {
        ssize_t n;
        if (ps->fd < 0) {
            if (ps->index ? ps->cur >= ps->index->n
                          : ps->cur >= (ps->width == 3 ? 99u : (size_t)AP_PARTS_MAX))
                return 0;
            src_file(ps, ps->cur, path, sizeof path);
            ps->fd = open(path, O_RDONLY | O_CLOEXEC);
            if (ps->fd < 0) {
                int e = errno;
                if (e == ENOENT && !ps->index && ps->cur > 0 &&
                    access(src_file(ps, ps->cur + 1, next, sizeof next), F_OK) != 0)
                    return 0; /* no index: the parts end here */
                if (e == ENOENT)
                    return src_fail(a, ps, "part '%s' is missing (part %zu%s)", path, ps->cur + 1,
                                    ps->index ? " of the parts index" : "");
                return src_fail(a, ps, "cannot open part '%s': %s", path, strerror(e));
            }
            (void)posix_fadvise(ps->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
            ps->in_part = 0;
        }
        n = read(ps->fd, ps->buf, FEED_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return src_fail(a, ps, "cannot read part '%s': %s",
                            src_file(ps, ps->cur, path, sizeof path), strerror(errno));
        if (n == 0) {
            if (ps->index && ps->in_part != ps->index->parts[ps->cur].size)
                return src_fail(a, ps,
                                "part '%s' is truncated: %llu bytes, the parts index says %llu",
                                src_file(ps, ps->cur, path, sizeof path),
                                (unsigned long long)ps->in_part,
                                (unsigned long long)ps->index->parts[ps->cur].size);
            close(ps->fd);
            ps->fd = -1;
            ps->cur++;
            ps->n_read++;
            continue;
        }
        ps->in_part += (uint64_t)n;
        if (ps->index && ps->in_part > ps->index->parts[ps->cur].size)
            return src_fail(a, ps, "part '%s' is longer than the parts index says (%llu bytes)",
                            src_file(ps, ps->cur, path, sizeof path),
                            (unsigned long long)ps->index->parts[ps->cur].size);
        *out = ps->buf;
        return (la_ssize_t)n;
    }
}

/* A name from the archive made printable: control bytes (and every
 * non-ASCII byte when the name is not UTF-8) become \xHH. */
static void show_path(const char *in, char *out, size_t n)
{
    size_t k = 0;
    int utf8 = ap_utf8_valid(in, strlen(in));
    for (const unsigned char *c = (const unsigned char *)in; *c && k + 5 < n; c++) {
        if (*c < 0x20 || *c == 0x7f || (!utf8 && *c >= 0x80))
            k += (size_t)snprintf(out + k, n - k, "\\x%02x", *c);
        else
            out[k++] = (char)*c;
    }
    out[k < n ? k : n - 1] = '\0';
}

static int vfault(struct reader *r, ap_bundle_fault f, int status, const char *path,
                  const char *fmt, va_list ap) AP_PRINTF(5, 0);
static int vfault(struct reader *r, ap_bundle_fault f, int status, const char *path,
                  const char *fmt, va_list ap)
{
    char body[AP_ERROR_MSG_MAX];
    vsnprintf(body, sizeof body, fmt, ap);
    r->res->fault = f;
    show_path(path ? path : "", r->res->fault_path, sizeof r->res->fault_path);
    r->have_fault = 1;
    if (path && *path)
        ap_error_set(r->err, status, "bundle '%s': entry '%s': %s", r->name, r->res->fault_path,
                     body);
    else
        ap_error_set(r->err, status, "bundle '%s': %s", r->name, body);
    snprintf(r->err->file, sizeof r->err->file, "%s", r->name);
    return status;
}

static int fault(struct reader *r, ap_bundle_fault f, const char *path, const char *fmt, ...)
    AP_PRINTF(4, 5);
static int fault(struct reader *r, ap_bundle_fault f, const char *path, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = vfault(r, f, AP_ERR_CHECK, path, fmt, ap);
    va_end(ap);
    return rc;
}

/* A libarchive failure: classify it. */
static int archive_fault(struct reader *r, struct archive *a, const char *path, const char *what)
{
    const char *msg = archive_error_string(a);
    if (!msg)
        msg = "unknown error";
    if (r->over_limit)
        return fault(r, AP_FAULT_EXPANSION, path,
                     "the stream expands beyond the size the lock allows (%llu bytes)",
                     (unsigned long long)r->limit);
    if (r->src && r->src->failed)
        return fault(r, AP_FAULT_PART, path, "%s", r->src->msg);
    if (r->outer_failed && r->outer) {
        const char *om = archive_error_string(r->outer);
        return fault(r, strstr(om ? om : "", "runcat") ? AP_FAULT_TRUNCATED : AP_FAULT_ARCHIVE,
                     path, "%s: %s", what, om ? om : msg);
    }
    if (strstr(msg, "runcated") || strstr(msg, "premature end"))
        return fault(r, AP_FAULT_TRUNCATED, path, "%s: truncated bundle (%s)", what, msg);
    return fault(r, AP_FAULT_ARCHIVE, path, "%s: %s", what, msg);
}

/* Inner read callback in stream mode: the next decompressed block. */
static la_ssize_t feed(struct archive *a, void *cd, const void **out)
{
    struct reader *r = cd;
    const void *b;
    size_t len;
    la_int64_t off;
    int rc;

    if (r->outer_eof)
        return 0;
    /* Keep the end of the block handed out last: after the tar reader
     * stops, its unconsumed bytes are checked for trailing data. */
    if (r->last_len >= TAIL_KEEP) {
        memcpy(r->tail, r->last + r->last_len - TAIL_KEEP, TAIL_KEEP);
        r->tail_len = TAIL_KEEP;
    } else if (r->last_len > 0) {
        size_t keep = TAIL_KEEP - r->last_len;
        if (keep > r->tail_len)
            keep = r->tail_len;
        memmove(r->tail, r->tail + r->tail_len - keep, keep);
        memcpy(r->tail + keep, r->last, r->last_len);
        r->tail_len = keep + r->last_len;
    }
    r->last = NULL;
    r->last_len = 0;
    if (r->fed > r->limit) {
        r->over_limit = 1;
        archive_set_error(a, EFBIG, "stream larger than the lock allows");
        return -1;
    }
    rc = archive_read_data_block(r->outer, &b, &len, &off);
    if (rc == ARCHIVE_EOF) {
        r->outer_eof = 1;
        return 0;
    }
    if (rc < ARCHIVE_WARN) {
        r->outer_failed = 1;
        archive_set_error(a, archive_errno(r->outer) ? archive_errno(r->outer) : EIO, "%s",
                          archive_error_string(r->outer) ? archive_error_string(r->outer)
                                                         : "read error");
        return -1;
    }
    r->fed += len;
    r->last = b;
    r->last_len = len;
    *out = b;
    return (la_ssize_t)len;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static int open_archives(struct reader *r)
{
    struct stat st;
    struct archive_entry *e;
    uint8_t magic[4];
    int rc;

    if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode) && lseek(r->fd, 0, SEEK_CUR) == 0 &&
        pread(r->fd, magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
        !(magic[0] == 0x28 && magic[1] == 0xB5 && magic[2] == 0x2F && magic[3] == 0xFD)) {
        r->direct = 1;
        r->file_size = (uint64_t)st.st_size;
    }
    r->inner = archive_read_new();
    if (!r->inner)
        return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory");
    if (archive_read_support_format_tar(r->inner) != ARCHIVE_OK)
        return ap_error_set(r->err, AP_ERR_INTERNAL, "libarchive lacks tar support");
    if (r->direct) {
        rc = archive_read_open_fd(r->inner, r->fd, FEED_BLOCK);
        if (rc != ARCHIVE_OK)
            return archive_fault(r, r->inner, NULL, "cannot read the bundle");
        return AP_OK;
    }
    r->outer = archive_read_new();
    if (!r->outer)
        return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory");
    if (archive_read_support_filter_zstd(r->outer) != ARCHIVE_OK ||
        archive_read_support_format_raw(r->outer) != ARCHIVE_OK)
        return ap_error_set(r->err, AP_ERR_INTERNAL, "libarchive lacks zstd or raw support");
    if ((r->src ? archive_read_open2(r->outer, r->src, NULL, parts_read, NULL, NULL)
                : archive_read_open_fd(r->outer, r->fd, FEED_BLOCK)) != ARCHIVE_OK)
        return archive_fault(r, r->outer, NULL, "cannot read the bundle");
    rc = archive_read_next_header(r->outer, &e);
    if (rc == ARCHIVE_EOF)
        return fault(r, AP_FAULT_LOCK, NULL, "the bundle is empty");
    if (rc < ARCHIVE_WARN)
        return archive_fault(r, r->outer, NULL, "cannot read the bundle");
    /* Until the lock is known: the lock, the signature entries and headers. */
    r->limit = (uint64_t)AP_LOCK_MAX_BYTES +
               (uint64_t)AP_BUNDLE_MAX_SIGS * (AP_KEYFILE_MAX + AP_BUNDLE_HEADER_ALLOWANCE) +
               4u * AP_BUNDLE_HEADER_ALLOWANCE;
    rc = archive_read_open2(r->inner, r, NULL, feed, NULL, NULL);
    if (rc != ARCHIVE_OK)
        return archive_fault(r, r->inner, NULL, "cannot read the bundle");
    return AP_OK;
}

/* Position in the (decompressed) tar stream, bytes consumed so far. */
static uint64_t stream_pos(struct reader *r)
{
    la_int64_t p = archive_filter_bytes(r->inner, 0);
    return p < 0 ? 0 : (uint64_t)p;
}

static int next_header(struct reader *r, struct archive_entry **e, const char *after)
{
    int rc = archive_read_next_header(r->inner, e);
    if (rc == ARCHIVE_EOF)
        return 1;
    if (rc < ARCHIVE_WARN) {
        char what[AP_LOCK_MAX_PATH + 64];
        snprintf(what, sizeof what, "cannot read the entry after '%s'", after);
        archive_fault(r, r->inner, NULL, what);
        return -1;
    }
    return 0;
}

/* Check the entry's name for safety; returns its name or NULL (fault set). */
static const char *entry_name(struct reader *r, struct archive_entry *e)
{
    const char *p = archive_entry_pathname_utf8(e);
    if (!p)
        p = archive_entry_pathname(e);
    if (!p) {
        fault(r, AP_FAULT_PATH, NULL, "an entry has no readable name");
        return NULL;
    }
    if (strlen(p) > AP_LOCK_MAX_PATH) {
        fault(r, AP_FAULT_PATH, NULL, "an entry's path is %zu bytes, more than %u", strlen(p),
              (unsigned)AP_LOCK_MAX_PATH);
        return NULL;
    }
    if (!ap_path_is_safe_relative(p)) {
        fault(r, AP_FAULT_PATH, p,
              "unsafe path (absolute, '..', empty component, control character or not UTF-8)");
        return NULL;
    }
    return p;
}

/* Only plain regular files, never links, devices, FIFOs or sparse files. */
static int check_type(struct reader *r, struct archive_entry *e, const char *p)
{
    mode_t t = archive_entry_filetype(e);
    if (archive_entry_hardlink(e))
        return fault(r, AP_FAULT_TYPE, p, "hardlink to '%s' refused", archive_entry_hardlink(e));
    if (t == AE_IFLNK)
        return fault(r, AP_FAULT_TYPE, p, "symlink to '%s' refused",
                     archive_entry_symlink(e) ? archive_entry_symlink(e) : "?");
    if (t == AE_IFCHR || t == AE_IFBLK)
        return fault(r, AP_FAULT_TYPE, p, "device node refused");
    if (t == AE_IFIFO)
        return fault(r, AP_FAULT_TYPE, p, "FIFO refused");
    if (t == AE_IFDIR)
        return fault(r, AP_FAULT_TYPE, p, "folder entry refused");
    if (t != AE_IFREG)
        return fault(r, AP_FAULT_TYPE, p, "not a regular file (type %o)", (unsigned)t);
    if (archive_entry_sparse_count(e) > 0)
        return fault(r, AP_FAULT_TYPE, p, "sparse file refused");
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
        return fault(r, AP_FAULT_SIZE, p, "entry has no size");
    if (archive_entry_perm(e) & 07000)
        return fault(r, AP_FAULT_MODE, p, "mode %04o has setuid, setgid or sticky bits",
                     (unsigned)archive_entry_perm(e));
    return AP_OK;
}

/* Read a small entry (lock, signature) whole; at most max bytes. */
static int read_small(struct reader *r, struct archive_entry *e, const char *p, size_t max,
                      char **out, size_t *len)
{
    int64_t size = archive_entry_size(e);
    size_t n = 0;
    char *b;
    if (size < 0 || (uint64_t)size > max)
        return fault(r, p && strcmp(p, AP_LOCK_NAME) == 0 ? AP_FAULT_LOCK : AP_FAULT_SIGNATURE, p,
                     "%lld bytes, more than the limit of %zu", (long long)size, max);
    b = malloc((size_t)size + 1);
    if (!b)
        return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory");
    while (n < (size_t)size) {
        la_ssize_t got = archive_read_data(r->inner, b + n, (size_t)size - n);
        if (got < 0) {
            free(b);
            return archive_fault(r, r->inner, p, "cannot read");
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n != (size_t)size) {
        free(b);
        return fault(r, AP_FAULT_TRUNCATED, p, "truncated: %zu of %lld bytes", n, (long long)size);
    }
    b[n] = '\0';
    *out = b;
    *len = n;
    return AP_OK;
}

static int name_is(struct reader *r, const char *p, const char *want, ap_bundle_fault f,
                   const char *what)
{
    if (strcmp(p, want) == 0)
        return AP_OK;
    return fault(r, f, p, "expected %s '%s' here", what, want);
}

/* The entry p is not the expected artifact idx: say why. */
static int misplaced(struct reader *r, const char *p, size_t idx)
{
    const ap_lock *l = r->lock;
    if (!strcmp(p, AP_LOCK_NAME) || !strcmp(p, AP_LOCK_SIG_NAME))
        return fault(r, AP_FAULT_DUPLICATE, p, "duplicate entry");
    if (ap_sig_entry_like(p))
        return fault(r, AP_FAULT_SIGNATURE, p,
                     "a signature entry after the artifacts began (signatures belong to the head)");
    for (size_t j = 0; j < l->n_artifacts; j++) {
        if (strcmp(l->artifacts[j].path, p) != 0)
            continue;
        if (l->artifacts[j].in_base)
            return fault(r, AP_FAULT_UNEXPECTED, p,
                         "the lock marks it in_base: its bytes must not be in the bundle");
        if (j < idx)
            return fault(r, AP_FAULT_DUPLICATE, p, "duplicate entry");
        return fault(r, AP_FAULT_ORDER, p, "out of order: the lock expects '%s' here",
                     l->artifacts[idx].path);
    }
    if (idx >= l->n_artifacts)
        return fault(r, AP_FAULT_UNEXPECTED, p, "extra entry not in the lock");
    return fault(r, AP_FAULT_UNEXPECTED, p, "entry not in the lock (expected '%s')",
                 l->artifacts[idx].path);
}

static void report(struct reader *r, size_t idx, ap_bundle_fault f, const char *msg)
{
    if (r->opts->artifact_done)
        r->opts->artifact_done(r->opts->artifact_ctx, idx, &r->lock->artifacts[idx], f, msg);
}

static void progress(struct reader *r, uint64_t done)
{
    if (r->opts->progress)
        r->opts->progress(r->opts->progress_ctx, done, r->lock ? r->lock->total_bytes : 0);
}

/* ---- the hashing helper (stream mode) ----
 *
 * From a pipe or a zstd stream the main thread reads (and decompresses)
 * while a helper thread hashes and feeds the sink: each block of a large
 * entry is copied into one of HQ_SLOTS buffers and queued. One entry at a
 * time: the main thread waits for the entry's hash before the next one. */

#define HQ_SLOTS 4
#define HQ_MIN_ENTRY (4u << 20)  /* bytes: smaller entries are hashed inline */

struct hq {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* any change of the fields below */
    uint8_t *slot[HQ_SLOTS];     /* FEED_BLOCK bytes each */
    size_t len[HQ_SLOTS];
    size_t head, count;          /* queued slots */
    int finish;                  /* main: the entry's data is all queued */
    int done;                    /* helper: the entry's digest is ready */
    int stop;                    /* main: shut down */
    int failed;                  /* helper: the sink failed (ferr) */
    ap_error ferr;
    const ap_bundle_sink *s;     /* the entry's sink and handle */
    void *entry;
    ap_sha256 *h;
    uint8_t digest[AP_SHA256_LEN];
    int hash_failed;
};

static void *hq_main(void *arg)
{
    struct hq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->stop && q->count == 0 && !(q->finish && !q->done))
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->count > 0) {
            size_t i = q->head;
            int skip = q->failed || q->hash_failed;
            pthread_mutex_unlock(&q->mu);
            if (!skip) {
                ap_error e;
                int hf = ap_sha256_update(q->h, q->slot[i], q->len[i]) != AP_OK;
                int sf = !hf && q->s && q->s->write &&
                         q->s->write(q->s->ctx, q->entry, q->slot[i], q->len[i], &e) != AP_OK;
                pthread_mutex_lock(&q->mu);
                if (hf)
                    q->hash_failed = 1;
                if (sf) {
                    q->failed = 1;
                    q->ferr = e;
                }
            } else {
                pthread_mutex_lock(&q->mu);
            }
            q->head = (q->head + 1) % HQ_SLOTS;
            q->count--;
            pthread_cond_broadcast(&q->cv);
            continue;
        }
        if (q->finish && !q->done) {
            pthread_mutex_unlock(&q->mu);
            int hf = ap_sha256_final(q->h, q->digest) != AP_OK;
            pthread_mutex_lock(&q->mu);
            if (hf)
                q->hash_failed = 1;
            q->done = 1;
            pthread_cond_broadcast(&q->cv);
            continue;
        }
        if (q->stop)
            break;
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static struct hq *hq_start(void)
{
    struct hq *q = calloc(1, sizeof *q);
    size_t i;
    if (!q)
        return NULL;
    for (i = 0; i < HQ_SLOTS; i++)
        if (!(q->slot[i] = malloc(FEED_BLOCK)))
            goto fail;
    if (!(q->h = ap_sha256_new()))
        goto fail;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->done = 1; /* idle */
    q->finish = 1;
    if (pthread_create(&q->th, NULL, hq_main, q) != 0) {
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
        goto fail;
    }
    return q;
fail:
    for (i = 0; i < HQ_SLOTS; i++)
        free(q->slot[i]);
    ap_sha256_free(q->h);
    free(q);
    return NULL;
}

static void hq_stop(struct hq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->th, NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    for (size_t i = 0; i < HQ_SLOTS; i++)
        free(q->slot[i]);
    ap_sha256_free(q->h);
    free(q);
}

/* Begin an entry on the helper (which is idle). */
static int hq_begin(struct hq *q, const ap_bundle_sink *s, void *entry)
{
    pthread_mutex_lock(&q->mu);
    q->s = s;
    q->entry = entry;
    q->failed = q->hash_failed = 0;
    q->head = q->count = 0;
    q->done = q->finish = 0;
    pthread_mutex_unlock(&q->mu);
    return ap_sha256_reset(q->h) == AP_OK ? 0 : -1; /* the helper does not touch h now */
}

/* Queue a copy of data; -1 when the helper's sink failed. */
static int hq_push(struct hq *q, const uint8_t *data, size_t len)
{
    while (len > 0) {
        size_t n = len < FEED_BLOCK ? len : FEED_BLOCK, i;
        pthread_mutex_lock(&q->mu);
        while (q->count == HQ_SLOTS && !q->failed)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->failed) {
            pthread_mutex_unlock(&q->mu);
            return -1;
        }
        i = (q->head + q->count) % HQ_SLOTS;
        pthread_mutex_unlock(&q->mu);
        memcpy(q->slot[i], data, n); /* slot i is outside the queue: ours */
        pthread_mutex_lock(&q->mu);
        q->len[i] = n;
        q->count++;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
        data += n;
        len -= n;
    }
    return 0;
}

/* End the entry: wait for its digest. Returns 0, or -1 when the sink
 * (ferr) or the hash failed. */
static int hq_end(struct hq *q, uint8_t out[AP_SHA256_LEN])
{
    int rc;
    pthread_mutex_lock(&q->mu);
    q->finish = 1;
    pthread_cond_broadcast(&q->cv);
    while (!q->done)
        pthread_cond_wait(&q->cv, &q->mu);
    rc = q->failed || q->hash_failed ? -1 : 0;
    memcpy(out, q->digest, AP_SHA256_LEN);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/* Sequential path: stream the entry's data through the hash and the sink. */
static int stream_entry(struct reader *r, size_t idx, int *mismatch)
{
    const ap_artifact *a = &r->lock->artifacts[idx];
    const ap_bundle_sink *s = r->opts->sink;
    void *entry = NULL;
    int opened = 0, rc = AP_OK, ok = 0, helper = 0, used_helper = 0;
    uint64_t got = 0;
    uint8_t d[AP_SHA256_LEN];

    *mismatch = 0;
    if (ap_sha256_reset(r->h) != AP_OK)
        return ap_error_set(r->err, AP_ERR_INTERNAL, "sha-256 failed");
    if (s && s->open) {
        if ((rc = s->open(s->ctx, idx, a, &entry, r->err)) != AP_OK) {
            r->res->fault = AP_FAULT_SINK;
            snprintf(r->res->fault_path, sizeof r->res->fault_path, "%s", a->path);
            return rc;
        }
        opened = 1;
    }
    if (a->size >= HQ_MIN_ENTRY && r->opts->threads != 1 && !r->hq)
        r->hq = hq_start(); /* NULL (out of memory): hash inline */
    if (a->size >= HQ_MIN_ENTRY && r->hq) {
        if (hq_begin(r->hq, opened ? s : NULL, entry) != 0) {
            rc = ap_error_set(r->err, AP_ERR_INTERNAL, "sha-256 failed");
            goto out;
        }
        helper = used_helper = 1;
    }
    for (;;) {
        const void *b;
        size_t len;
        la_int64_t off;
        int arc = archive_read_data_block(r->inner, &b, &len, &off);
        if (arc == ARCHIVE_EOF)
            break;
        if (arc < ARCHIVE_WARN) {
            rc = archive_fault(r, r->inner, a->path, "cannot read");
            goto out;
        }
        if (off < 0 || (uint64_t)off != got) {
            rc = fault(r, AP_FAULT_TYPE, a->path, "entry data has holes (sparse) refused");
            goto out;
        }
        if (len > a->size - got) {
            rc = fault(r, AP_FAULT_SIZE, a->path, "more data than the lock's %llu bytes",
                       (unsigned long long)a->size);
            goto out;
        }
        if (helper) {
            if (hq_push(r->hq, b, len) != 0)
                break; /* the sink failed: hq_end reports it */
            got += len;
            progress(r, r->done_bytes + got);
            continue;
        }
        if (ap_sha256_update(r->h, b, len) != AP_OK) {
            rc = ap_error_set(r->err, AP_ERR_INTERNAL, "sha-256 failed");
            goto out;
        }
        if (opened && s->write && (rc = s->write(s->ctx, entry, b, len, r->err)) != AP_OK) {
            r->res->fault = AP_FAULT_SINK;
            snprintf(r->res->fault_path, sizeof r->res->fault_path, "%s", a->path);
            goto out;
        }
        got += len;
        progress(r, r->done_bytes + got);
    }
    if (helper) {
        helper = 0;
        if (hq_end(r->hq, d) != 0) {
            if (r->hq->failed) {
                *r->err = r->hq->ferr;
                r->res->fault = AP_FAULT_SINK;
                snprintf(r->res->fault_path, sizeof r->res->fault_path, "%s", a->path);
                rc = r->err->status ? r->err->status : AP_ERR_IO;
            } else {
                rc = ap_error_set(r->err, AP_ERR_INTERNAL, "sha-256 failed");
            }
            goto out;
        }
    }
    if (got != a->size) {
        rc = fault(r, AP_FAULT_TRUNCATED, a->path, "truncated: %llu of %llu bytes",
                   (unsigned long long)got, (unsigned long long)a->size);
        goto out;
    }
    if (!used_helper && ap_sha256_final(r->h, d) != AP_OK) {
        rc = ap_error_set(r->err, AP_ERR_INTERNAL, "sha-256 failed");
        goto out;
    }
    r->done_bytes += got;
    r->res->bytes += got;
    if (memcmp(d, a->sha256, AP_SHA256_LEN) != 0) {
        char want[AP_SHA256_HEX_LEN + 1], have[AP_SHA256_HEX_LEN + 1];
        ap_hex_encode(a->sha256, AP_SHA256_LEN, want);
        ap_hex_encode(d, AP_SHA256_LEN, have);
        rc = fault(r, AP_FAULT_SHA256, a->path, "sha256 mismatch (lock %s, bundle %s)", want, have);
        *mismatch = 1;
        goto out;
    }
    ok = 1;
out:
    if (helper) {
        uint8_t dummy[AP_SHA256_LEN];
        (void)hq_end(r->hq, dummy); /* the helper must be done with the entry */
    }
    if (opened && s->close) {
        ap_error cerr;
        ap_error_clear(&cerr);
        int crc = s->close(s->ctx, entry, ok, ok ? r->err : &cerr);
        if (ok && crc != AP_OK) {
            r->res->fault = AP_FAULT_SINK;
            snprintf(r->res->fault_path, sizeof r->res->fault_path, "%s", a->path);
            rc = crc;
        }
    }
    return rc;
}

/* ---- worker threads (direct mode) ---- */

static void pool_fault(struct reader *r, size_t idx, ap_bundle_fault f, int status, const char *fmt,
                       ...) AP_PRINTF(5, 6);
/* Record a worker's fault (pool.mu held): the lowest artifact index wins. */
static void pool_fault(struct reader *r, size_t idx, ap_bundle_fault f, int status, const char *fmt,
                       ...)
{
    va_list ap;
    struct pool *p = r->pool;
    char body[AP_ERROR_MSG_MAX];
    if (p->have_fault && p->findex <= idx)
        return;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    ap_error_set(&p->ferr, status, "bundle '%s': entry '%s': %s", r->name,
                 r->lock->artifacts[idx].path, body);
    p->ffault = f;
    p->findex = idx;
    p->have_fault = 1;
    __atomic_store_n(&p->abort, 1, __ATOMIC_RELAXED);
}

/* Record a sink or internal failure of a worker (pool.mu held). */
static void pool_error(struct reader *r, size_t idx, const ap_error *e)
{
    struct pool *p = r->pool;
    if (p->have_fault && p->findex <= idx)
        return;
    p->ferr = *e;
    p->ffault = AP_FAULT_SINK;
    p->findex = idx;
    p->have_fault = 1;
    __atomic_store_n(&p->abort, 1, __ATOMIC_RELAXED);
}

static void run_job(struct reader *r, struct job *j, ap_sha256 *h, uint8_t *buf)
{
    const ap_artifact *a = &r->lock->artifacts[j->index];
    const ap_bundle_sink *s = r->opts->sink;
    uint64_t got = 0;
    uint8_t d[AP_SHA256_LEN];
    ap_error werr;
    int ok = 0, failed = 0;

    ap_error_clear(&werr);
    if (ap_sha256_reset(h) != AP_OK) {
        ap_error_set(&werr, AP_ERR_INTERNAL, "sha-256 failed");
        failed = 1;
    }
    while (!failed && got < a->size) {
        size_t want = a->size - got < FEED_BLOCK ? (size_t)(a->size - got) : FEED_BLOCK;
        ssize_t n = pread(r->fd, buf, want, (off_t)(j->off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            pthread_mutex_lock(&r->pool->mu);
            if (n < 0)
                pool_fault(r, j->index, AP_FAULT_IO, AP_ERR_IO, "cannot read: %s", strerror(errno));
            else
                pool_fault(r, j->index, AP_FAULT_TRUNCATED, AP_ERR_CHECK,
                           "truncated: %llu of %llu bytes", (unsigned long long)got,
                           (unsigned long long)a->size);
            pthread_mutex_unlock(&r->pool->mu);
            failed = 2;
            break;
        }
        if (ap_sha256_update(h, buf, (size_t)n) != AP_OK) {
            ap_error_set(&werr, AP_ERR_INTERNAL, "sha-256 failed");
            failed = 1;
            break;
        }
        if (j->opened && s->write && s->write(s->ctx, j->entry, buf, (size_t)n, &werr) != AP_OK) {
            failed = 1;
            break;
        }
        got += (uint64_t)n;
        pthread_mutex_lock(&r->pool->mu);
        r->done_bytes += (uint64_t)n;
        r->res->bytes += (uint64_t)n;
        pthread_mutex_unlock(&r->pool->mu);
        if (__atomic_load_n(&r->pool->abort, __ATOMIC_RELAXED))
            break; /* another entry failed: stop early */
    }
    if (!failed && got == a->size) {
        if (ap_sha256_final(h, d) != AP_OK) {
            ap_error_set(&werr, AP_ERR_INTERNAL, "sha-256 failed");
            failed = 1;
        } else if (memcmp(d, a->sha256, AP_SHA256_LEN) != 0) {
            char want[AP_SHA256_HEX_LEN + 1], have[AP_SHA256_HEX_LEN + 1];
            ap_hex_encode(a->sha256, AP_SHA256_LEN, want);
            ap_hex_encode(d, AP_SHA256_LEN, have);
            pthread_mutex_lock(&r->pool->mu);
            pool_fault(r, j->index, AP_FAULT_SHA256, AP_ERR_CHECK,
                       "sha256 mismatch (lock %s, bundle %s)", want, have);
            pthread_mutex_unlock(&r->pool->mu);
            failed = 2;
        } else {
            ok = 1;
        }
    }
    if (j->opened && s->close) {
        ap_error cerr;
        ap_error_clear(&cerr);
        if (s->close(s->ctx, j->entry, ok, ok ? &werr : &cerr) != AP_OK && ok) {
            ok = 0;
            failed = 1;
        }
    }
    pthread_mutex_lock(&r->pool->mu);
    if (failed == 1)
        pool_error(r, j->index, &werr); /* keeps its own message and status */
    else if (ok) {
        r->res->n_checked++;
    }
    pthread_mutex_unlock(&r->pool->mu);
}

static void *worker(void *arg)
{
    struct pool *p = arg;
    struct reader *r = p->r;
    ap_sha256 *h = ap_sha256_new();
    uint8_t *buf = malloc(FEED_BLOCK);

    pthread_mutex_lock(&p->mu);
    if (!h || !buf) {
        ap_error oom;
        ap_error_set(&oom, AP_ERR_NOMEM, "out of memory");
        pool_error(r, 0, &oom);
    }
    for (;;) {
        struct job j;
        while (p->count == 0 && !p->stop)
            pthread_cond_wait(&p->cv_job, &p->mu);
        if (p->count == 0)
            break;
        j = p->q[p->head];
        p->head = (p->head + 1) % QUEUE_LEN;
        p->count--;
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        if (__atomic_load_n(&p->abort, __ATOMIC_RELAXED) || !h || !buf) {
            if (j.opened && r->opts->sink->close) {
                ap_error cerr;
                r->opts->sink->close(r->opts->sink->ctx, j.entry, 0, &cerr);
            }
        } else {
            run_job(r, &j, h, buf);
        }
        pthread_mutex_lock(&p->mu);
        p->busy--;
        pthread_cond_broadcast(&p->cv_space);
    }
    pthread_mutex_unlock(&p->mu);
    ap_sha256_free(h);
    free(buf);
    return NULL;
}

static int pool_start(struct reader *r, struct pool *p)
{
    memset(p, 0, sizeof *p);
    p->r = r;
    r->pool = p;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_job, NULL);
    pthread_cond_init(&p->cv_space, NULL);
    for (size_t i = 0; i < AP_BUNDLE_JOBS; i++) {
        if (pthread_create(&p->th[i], NULL, worker, p) != 0)
            break;
        p->nth++;
    }
    return p->nth > 0;
}

/* Stop the pool and wait for every queued job. */
static void pool_finish(struct pool *p, int abort)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    if (abort)
        __atomic_store_n(&p->abort, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&p->cv_job);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->nth; i++)
        pthread_join(p->th[i], NULL);
    p->nth = 0;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_job);
    pthread_cond_destroy(&p->cv_space);
}

/* Wait (pool.mu held) for a job to finish, at most 250 ms, then report
 * progress: a long entry hashed on a worker still moves the meter. */
static void pool_timedwait(struct reader *r)
{
    struct pool *p = r->pool;
    struct timespec ts;
    uint64_t done;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 250000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->cv_space, &p->mu, &ts);
    done = r->done_bytes;
    pthread_mutex_unlock(&p->mu);
    progress(r, done);
    pthread_mutex_lock(&p->mu);
}

/* Queue artifact idx at file offset off; blocks while the queue is full.
 * Returns 0, or -1 when the pool has aborted (a fault is recorded). */
static int pool_submit(struct reader *r, size_t idx, uint64_t off)
{
    struct pool *p = r->pool;
    const ap_bundle_sink *s = r->opts->sink;
    struct job j = {.index = idx, .off = off};

    pthread_mutex_lock(&p->mu);
    while (p->count == QUEUE_LEN && !__atomic_load_n(&p->abort, __ATOMIC_RELAXED))
        pool_timedwait(r);
    if (__atomic_load_n(&p->abort, __ATOMIC_RELAXED)) {
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    pthread_mutex_unlock(&p->mu);
    if (s && s->open) {
        ap_error oerr;
        ap_error_clear(&oerr);
        if (s->open(s->ctx, idx, &r->lock->artifacts[idx], &j.entry, &oerr) != AP_OK) {
            pthread_mutex_lock(&p->mu);
            pool_error(r, idx, &oerr);
            pthread_mutex_unlock(&p->mu);
            return -1;
        }
        j.opened = 1;
    }
    pthread_mutex_lock(&p->mu);
    p->q[(p->head + p->count) % QUEUE_LEN] = j;
    p->count++;
    pthread_cond_signal(&p->cv_job);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static int pool_faulted(struct reader *r)
{
    int f;
    pthread_mutex_lock(&r->pool->mu);
    f = r->pool->have_fault;
    pthread_mutex_unlock(&r->pool->mu);
    return f;
}

/* ---- the end of the archive ---- */

/* After the tar reader saw its end: the end marker must be complete and
 * only zero padding may follow. end is where the last entry ended. */
static int check_end(struct reader *r, uint64_t end)
{
    uint64_t pos = stream_pos(r), extra = 0;

    if (r->over_limit)
        return fault(r, AP_FAULT_EXPANSION, NULL,
                     "the stream expands beyond the size the lock allows");
    if (r->direct) {
        uint8_t *b = r->buf;
        uint64_t at = pos;
        if (pos > r->file_size)
            return fault(r, AP_FAULT_TRUNCATED, NULL, "truncated bundle");
        if (r->file_size - pos > AP_BUNDLE_MAX_PADDING)
            return fault(r, AP_FAULT_TRAILING, NULL, "%llu bytes of trailing data after the archive",
                         (unsigned long long)(r->file_size - pos));
        while (at < r->file_size) {
            size_t want = r->file_size - at < FEED_BLOCK ? (size_t)(r->file_size - at) : FEED_BLOCK;
            ssize_t n = pread(r->fd, b, want, (off_t)at);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return fault(r, AP_FAULT_IO, NULL, "cannot read the end of the bundle");
            if (!all_zero(b, (size_t)n))
                return fault(r, AP_FAULT_TRAILING, NULL, "trailing data after the archive");
            at += (uint64_t)n;
        }
        extra = r->file_size - pos;
    } else {
        uint64_t unconsumed = r->fed - pos;
        if (r->fed < pos || unconsumed > r->last_len + r->tail_len)
            return fault(r, AP_FAULT_TRAILING, NULL, "cannot account for the bytes after the archive");
        if (unconsumed > r->last_len) {
            size_t from_tail = (size_t)(unconsumed - r->last_len);
            if (!all_zero(r->tail + r->tail_len - from_tail, from_tail) ||
                !all_zero(r->last, r->last_len))
                return fault(r, AP_FAULT_TRAILING, NULL, "trailing data after the archive");
        } else if (!all_zero(r->last + r->last_len - unconsumed, (size_t)unconsumed)) {
            return fault(r, AP_FAULT_TRAILING, NULL, "trailing data after the archive");
        }
        extra = unconsumed;
        while (!r->outer_eof) {
            const void *b;
            size_t len;
            la_int64_t off;
            int rc = archive_read_data_block(r->outer, &b, &len, &off);
            if (rc == ARCHIVE_EOF)
                break;
            if (rc < ARCHIVE_WARN) {
                r->outer_failed = 1;
                return archive_fault(r, r->outer, NULL, "cannot read the end of the bundle");
            }
            if (!all_zero(b, len))
                return fault(r, AP_FAULT_TRAILING, NULL, "trailing data after the archive");
            extra += len;
            if (extra > AP_BUNDLE_MAX_PADDING)
                return fault(r, AP_FAULT_TRAILING, NULL,
                             "more than %u bytes of padding after the archive",
                             (unsigned)AP_BUNDLE_MAX_PADDING);
        }
    }
    if (extra > AP_BUNDLE_MAX_PADDING)
        return fault(r, AP_FAULT_TRAILING, NULL, "more than %u bytes of padding after the archive",
                     (unsigned)AP_BUNDLE_MAX_PADDING);
    if (pos < end + 1024)
        return fault(r, AP_FAULT_TRUNCATED, NULL,
                     "truncated bundle: no complete end-of-archive marker");
    return AP_OK;
}

/* ---- the pass ---- */

static int keyring_has(const ap_keyring *kr, const uint8_t keyid[AP_KEYID_LEN])
{
    for (size_t i = 0; kr && i < kr->n; i++)
        if (memcmp(kr->keys[i].keyid, keyid, AP_KEYID_LEN) == 0)
            return 1;
    return 0;
}

/* Keyring mode: a key file's name for messages. */
static void note_key(ap_bundle_sig *bs, const char *name)
{
    snprintf(bs->key_name, sizeof bs->key_name, "%s", name);
}

/* Check every signature entry against the known keys, then decide: any
 * one trusted key (keyring), or k distinct unrevoked keys of the trust
 * file's "bundles" role. Runs before the lock is parsed. */
static int check_signatures(struct reader *r, const char *lock_buf, size_t lock_len)
{
    const ap_trust *t = r->opts->trust;
    ap_bundle_result *res = r->res;
    ap_keyring tkr = {0};
    const ap_keyring *kr = r->opts->keys;
    size_t counted = 0, needed = t ? t->threshold_bundles : 1;
    int rc = AP_OK;

    if (t) {
        if (ap_trust_expired(t) != 0) {
            rc = fault(r, AP_FAULT_EXPIRED, NULL,
                       "the trust file '%s' (version %llu) expired at %s: refusing every bundle "
                       "until a newer trust file is installed", t->source,
                       (unsigned long long)t->version, t->expires);
            goto out;
        }
        if ((rc = ap_trust_keyring(t, &tkr, r->err)) != AP_OK)
            goto out;
        kr = &tkr;
    }
    for (size_t i = 0; i < res->n_sigs; i++) {
        ap_bundle_sig *bs = &res->sigs[i];
        const ap_pubkey *signer = NULL;
        char kid[17];
        ap_keyid_hex(bs->sig.keyid, kid);
        if (!keyring_has(kr, bs->sig.keyid)) {
            snprintf(bs->why, sizeof bs->why, "unknown key");
            continue;
        }
        bs->known = 1;
        if (ap_signature_verify(&bs->sig, kr, lock_buf, lock_len, &signer, r->err) != AP_OK) {
            char m[AP_ERROR_MSG_MAX];
            snprintf(m, sizeof m, "%s", r->err->msg);
            rc = fault(r, AP_FAULT_SIGNATURE, bs->entry,
                       "signature does not verify over this lock (a signature of another lock?): %s",
                       m);
            goto out;
        }
        bs->valid = 1;
        if (t) {
            const ap_trust_key *k = ap_trust_find(t, bs->sig.keyid);
            note_key(bs, k->name);
        } else {
            note_key(bs, signer->source);
        }
    }
    for (size_t i = 0; i < res->n_sigs; i++) {
        ap_bundle_sig *bs = &res->sigs[i];
        int dup = 0;
        if (!bs->valid)
            continue;
        for (size_t j = 0; j < i; j++)
            if (res->sigs[j].counted && !memcmp(res->sigs[j].sig.keyid, bs->sig.keyid, AP_KEYID_LEN))
                dup = 1;
        if (dup) {
            snprintf(bs->why, sizeof bs->why, "duplicate");
            continue;
        }
        if (t) {
            const ap_trust_key *k = ap_trust_find(t, bs->sig.keyid);
            if (k->revoked) {
                snprintf(bs->why, sizeof bs->why, "revoked");
                continue;
            }
            if (!ap_trust_counts(k, AP_TRUST_ROLE_BUNDLES)) {
                snprintf(bs->why, sizeof bs->why, "not in role 'bundles'");
                continue;
            }
        }
        bs->counted = 1;
        if (counted++ == 0) {
            res->sig = bs->sig;
            res->signature_checked = 1;
            if (t) {
                const ap_trust_key *k = ap_trust_find(t, bs->sig.keyid);
                res->signer = k->pk;
                snprintf(res->signer.source, sizeof res->signer.source, "%s (trust file '%s')",
                         k->name, t->source);
            } else {
                for (size_t j = 0; j < kr->n; j++)
                    if (!memcmp(kr->keys[j].keyid, bs->sig.keyid, AP_KEYID_LEN)) {
                        res->signer = kr->keys[j];
                        break;
                    }
            }
        }
    }
    res->sigs_counted = counted;
    res->sigs_needed = needed;
    if (counted < needed) {
        char who[1024];
        size_t w = 0;
        who[0] = '\0';
        for (size_t i = 0; i < res->n_sigs && w < sizeof who; i++) {
            const ap_bundle_sig *bs = &res->sigs[i];
            char kid[17];
            int n;
            ap_keyid_hex(bs->sig.keyid, kid);
            if (bs->valid)
                n = snprintf(who + w, sizeof who - w, "%s%s %s (%s)", w ? ", " : "", kid,
                             bs->key_name, bs->counted ? "counted" : bs->why);
            else
                n = snprintf(who + w, sizeof who - w, "%s%s (%s)", w ? ", " : "", kid, bs->why);
            if (n < 0)
                break;
            w += (size_t)n;
        }
        if (w >= sizeof who)
            snprintf(who + sizeof who - 5, 5, "...");
        if (!t && res->n_sigs == 1) {
            char kid[17];
            ap_keyid_hex(res->sigs[0].sig.keyid, kid);
            rc = fault(r, AP_FAULT_UNTRUSTED, res->sigs[0].entry,
                       "signed by key %s, which is not a trusted key", kid);
        } else if (!t) {
            rc = fault(r, AP_FAULT_UNTRUSTED, AP_LOCK_SIG_NAME,
                       "none of the %zu signatures is by a trusted key (signed by: %s)",
                       res->n_sigs, who);
        } else {
            rc = fault(r, AP_FAULT_UNTRUSTED, AP_LOCK_SIG_NAME,
                       "%zu valid signature%s of role 'bundles' found, %zu needed (trust file '%s' "
                       "version %llu); signed by: %s", counted, counted == 1 ? "" : "s", needed,
                       t->source, (unsigned long long)t->version, who);
        }
    }
out:
    ap_keyring_release(&tkr);
    return rc;
}

/* Read one signature entry (header e, name p) into res->sigs[i]. */
static int read_sig_entry(struct reader *r, struct archive_entry *e, const char *p)
{
    ap_bundle_result *res = r->res;
    ap_bundle_sig *bs;
    uint8_t kid[AP_KEYID_LEN];
    int rc;
    size_t i = res->n_sigs;

    if (i >= AP_BUNDLE_MAX_SIGS)
        return fault(r, AP_FAULT_SIGNATURE, p, "more than %d signature entries",
                     AP_BUNDLE_MAX_SIGS);
    if (i == 0) {
        if ((rc = name_is(r, p, AP_LOCK_SIG_NAME, AP_FAULT_SIGNATURE, "the signature")) != AP_OK)
            return rc;
    } else {
        if (!ap_sig_entry_keyid(p, kid))
            return fault(r, AP_FAULT_SIGNATURE, p,
                         "malformed signature entry name (expected '%sKEYID%s')",
                         AP_SIG_ENTRY_PREFIX, AP_SIG_ENTRY_SUFFIX);
        if (i > 1 && strcmp(p, res->sigs[i - 1].entry) <= 0)
            return fault(r, AP_FAULT_SIGNATURE, p,
                         "signature entries out of order or repeated (ascending key ids expected)");
    }
    if ((rc = check_type(r, e, p)) != AP_OK)
        return rc;
    bs = &res->sigs[i];
    memset(bs, 0, sizeof *bs);
    snprintf(bs->entry, sizeof bs->entry, "%s", p);
    if ((rc = read_small(r, e, p, AP_KEYFILE_MAX, &bs->text, &bs->len)) != AP_OK)
        return rc;
    res->n_sigs++;
    if (ap_signature_parse(p, bs->text, bs->len, &bs->sig, r->err) != AP_OK) {
        char m[AP_ERROR_MSG_MAX];
        snprintf(m, sizeof m, "%s", r->err->msg);
        return fault(r, AP_FAULT_SIGNATURE, p, "invalid signature: %s", m);
    }
    if (i > 0 && memcmp(kid, bs->sig.keyid, AP_KEYID_LEN) != 0)
        return fault(r, AP_FAULT_SIGNATURE, p,
                     "the entry's name does not match the key id of its signature");
    return AP_OK;
}

/* The head: the lock, then the signature entries, each checked before the
 * lock is parsed. *pending gets the header after the last signature (the
 * first artifact), or *pending_eof is set when the archive ended there. */
static int read_lock_and_signature(struct reader *r, char **lock_buf, size_t *lock_len,
                                   char **sig_buf, size_t *sig_len, struct archive_entry **pending,
                                   int *pending_eof)
{
    struct archive_entry *e;
    const char *p;
    int rc;

    if ((rc = next_header(r, &e, "the start")) != 0)
        return rc > 0 ? fault(r, AP_FAULT_LOCK, NULL, "the bundle is empty: no '%s'", AP_LOCK_NAME)
                      : r->err->status;
    if (!(p = entry_name(r, e)))
        return AP_ERR_CHECK;
    if ((rc = name_is(r, p, AP_LOCK_NAME, AP_FAULT_LOCK, "the lock")) != AP_OK ||
        (rc = check_type(r, e, p)) != AP_OK ||
        (rc = read_small(r, e, p, AP_LOCK_MAX_BYTES, lock_buf, lock_len)) != AP_OK)
        return rc;
    if ((rc = next_header(r, &e, AP_LOCK_NAME)) != 0)
        return rc > 0 ? fault(r, AP_FAULT_SIGNATURE, AP_LOCK_SIG_NAME, "missing signature")
                      : r->err->status;
    for (;;) {
        if (!(p = entry_name(r, e)))
            return AP_ERR_CHECK;
        if (r->res->n_sigs > 0 && !ap_sig_entry_like(p)) {
            *pending = e;
            break;
        }
        if ((rc = read_sig_entry(r, e, p)) != AP_OK)
            return rc;
        rc = next_header(r, &e, r->res->sigs[r->res->n_sigs - 1].entry);
        if (rc < 0)
            return r->err->status;
        if (rc > 0) {
            *pending_eof = 1;
            break;
        }
    }
    r->res->has_sig = 1;
    r->res->sig = r->res->sigs[0].sig;
    *sig_buf = r->res->sigs[0].text;
    *sig_len = r->res->sigs[0].len;
    if (ap_sha256_buffer(*lock_buf, *lock_len, r->res->lock_sha256) != AP_OK)
        return ap_error_set(r->err, AP_ERR_INTERNAL, "sha-256 failed");

    /* The signatures first: nothing of the lock is parsed before they hold. */
    if (r->opts->trust || (r->opts->keys && r->opts->keys->n > 0)) {
        if ((rc = check_signatures(r, *lock_buf, *lock_len)) != AP_OK)
            return rc;
    } else if (!r->opts->allow_unsigned) {
        return ap_error_set(r->err, AP_ERR_INPUT, "no trusted public key given");
    }

    rc = ap_lock_parse(AP_LOCK_NAME, *lock_buf, *lock_len, &r->lock, r->err);
    if (rc != AP_OK) {
        char m[AP_ERROR_MSG_MAX];
        snprintf(m, sizeof m, "%s", r->err->msg);
        r->lock = NULL;
        return fault(r, AP_FAULT_LOCK, AP_LOCK_NAME, "invalid lock: %s", m);
    }
    r->res->lock = r->lock;
    if (r->lock->expires) {
        int past = ap_rfc3339_past(r->lock->expires);
        if (past != 0)
            return fault(r, past < 0 ? AP_FAULT_LOCK : AP_FAULT_EXPIRED, AP_LOCK_NAME,
                         past < 0 ? "cannot read the expiry date '%s'" : "the bundle expired at %s",
                         r->lock->expires);
    }
    return AP_OK;
}

static int check_artifact_header(struct reader *r, struct archive_entry *e, size_t idx,
                                 const char **pathp)
{
    const char *p;
    const ap_artifact *a;
    int rc;

    if (!(p = entry_name(r, e)))
        return AP_ERR_CHECK;
    *pathp = p;
    if (idx >= r->lock->n_artifacts || strcmp(p, r->lock->artifacts[idx].path) != 0) {
        /* a link or device is named as such even when misplaced */
        if ((rc = check_type(r, e, p)) != AP_OK)
            return rc;
        return misplaced(r, p, idx);
    }
    a = &r->lock->artifacts[idx];
    if ((rc = check_type(r, e, p)) != AP_OK)
        return rc;
    if ((unsigned)(archive_entry_perm(e) & 07777) != a->mode)
        return fault(r, AP_FAULT_MODE, p, "mode %04o, the lock says %04o",
                     (unsigned)archive_entry_perm(e), a->mode);
    if ((uint64_t)archive_entry_size(e) != a->size)
        return fault(r, AP_FAULT_SIZE, p, "size mismatch: %lld bytes, the lock says %llu",
                     (long long)archive_entry_size(e), (unsigned long long)a->size);
    return AP_OK;
}

/* A delta bundle: the lock's in_base artifacts have no entry in the tar;
 * step idx over them (they are reported, and counted as needed from the
 * base). */
static size_t skip_base(struct reader *r, size_t idx)
{
    while (idx < r->lock->n_artifacts && r->lock->artifacts[idx].in_base) {
        r->res->n_in_base++;
        r->res->bytes_in_base += r->lock->artifacts[idx].size;
        report(r, idx, AP_FAULT_IN_BASE, "in the base: not in this bundle");
        idx++;
    }
    return idx;
}

static int verify_pass(struct reader *r)
{
    char *lock_buf = NULL, *sig_buf = NULL;
    size_t lock_len = 0, sig_len = 0, idx = 0;
    struct archive_entry *e;
    struct pool pool;
    int rc, use_pool = 0, hit_eof = 0;
    uint64_t end = 0;
    const ap_bundle_sink *s = r->opts->sink;
    struct archive_entry *pending = NULL;
    int pending_eof = 0;

    if ((rc = open_archives(r)) != AP_OK)
        goto out;
    if ((rc = read_lock_and_signature(r, &lock_buf, &lock_len, &sig_buf, &sig_len, &pending,
                                      &pending_eof)) != AP_OK)
        goto out;
    if (!r->direct) {
        /* From here on: the lock's artifacts plus bounded headers and padding. */
        uint64_t lim = r->fed, hdr;
        if (!ap_mul_u64((uint64_t)r->lock->n_artifacts + 2, AP_BUNDLE_HEADER_ALLOWANCE + 1024u,
                        &hdr) ||
            !ap_add_u64(lim, r->lock->total_bytes, &lim) || !ap_add_u64(lim, hdr, &lim) ||
            !ap_add_u64(lim, AP_BUNDLE_MAX_PADDING, &lim)) {
            rc = fault(r, AP_FAULT_LOCK, AP_LOCK_NAME, "sizes overflow");
            goto out;
        }
        r->limit = lim;
    }
    if (s && s->begin &&
        (rc = s->begin(s->ctx, r->lock, lock_buf, lock_len, sig_buf, sig_len,
                       r->res->signature_checked ? &r->res->signer : NULL, r->err)) != AP_OK) {
        r->res->fault = AP_FAULT_SINK;
        goto out;
    }
    progress(r, 0);
    use_pool = r->direct && r->opts->threads != 1 && !r->opts->keep_going &&
               !r->opts->artifact_done && r->lock->n_artifacts > 1 && pool_start(r, &pool);
    if (r->direct && !use_pool && r->opts->threads != 1 && !r->opts->keep_going &&
        !r->opts->artifact_done && r->lock->n_artifacts > 1) {
        rc = ap_error_set(r->err, AP_ERR_INTERNAL, "cannot start hashing threads");
        goto out;
    }
    r->res->parallel = use_pool;
    for (;;) {
        const char *p = NULL;
        uint64_t off;
        const char *after;
        idx = skip_base(r, idx);
        after = idx == 0 ? AP_LOCK_SIG_NAME : r->lock->artifacts[idx - 1].path;
        if (use_pool && pool_faulted(r))
            break;
        if (pending || pending_eof) {
            /* the header after the signature entries, read with them */
            rc = pending_eof ? 1 : 0;
            e = pending;
            pending = NULL;
            pending_eof = 0;
        } else {
            rc = next_header(r, &e, after);
        }
        if (rc < 0) {
            rc = r->err->status;
            break;
        }
        if (rc > 0) {
            hit_eof = 1;
            rc = AP_OK;
            break;
        }
        if ((rc = check_artifact_header(r, e, idx, &p)) != AP_OK) {
            if (r->opts->keep_going && idx < r->lock->n_artifacts &&
                (r->res->fault == AP_FAULT_SIZE || r->res->fault == AP_FAULT_MODE) &&
                strcmp(p ? p : "", r->lock->artifacts[idx].path) == 0) {
                report(r, idx, r->res->fault, r->err->msg);
                r->res->n_failed++;
                if (archive_read_data_skip(r->inner) < ARCHIVE_WARN) {
                    rc = archive_fault(r, r->inner, p, "cannot read");
                    break;
                }
                end = stream_pos(r);
                idx++;
                continue;
            }
            break;
        }
        off = stream_pos(r);
        if (!ap_add_u64(off, r->lock->artifacts[idx].size, &end) || !ap_add_u64(end, 511, &end)) {
            rc = fault(r, AP_FAULT_SIZE, p, "size overflows");
            break;
        }
        end &= ~(uint64_t)511;
        if (use_pool) {
            if (end > r->file_size) {
                rc = fault(r, AP_FAULT_TRUNCATED, p, "truncated bundle: the entry ends past the end of the file");
                break;
            }
            if (pool_submit(r, idx, off) != 0) {
                /* The pool was aborted: the fault is in pool.ferr (taken
                 * over below), not in r->err, which may be unset. */
                rc = AP_ERR_CHECK;
                break;
            }
            if (archive_read_data_skip(r->inner) < ARCHIVE_WARN) {
                rc = archive_fault(r, r->inner, p, "cannot read");
                break;
            }
            pthread_mutex_lock(&pool.mu);
            uint64_t done = r->done_bytes;
            pthread_mutex_unlock(&pool.mu);
            progress(r, done);
        } else {
            int mismatch = 0;
            rc = stream_entry(r, idx, &mismatch);
            if (rc != AP_OK) {
                report(r, idx, r->res->fault, r->err->msg);
                if (!(mismatch && r->opts->keep_going))
                    break;
                r->res->n_failed++;
                rc = AP_OK;
            } else {
                r->res->n_checked++;
                report(r, idx, AP_FAULT_NONE, NULL);
            }
        }
        idx++;
    }
    if (use_pool) {
        if (rc == AP_OK) {
            pthread_mutex_lock(&pool.mu);
            while ((pool.count > 0 || pool.busy > 0) &&
                   !__atomic_load_n(&pool.abort, __ATOMIC_RELAXED))
                pool_timedwait(r);
            pthread_mutex_unlock(&pool.mu);
        }
        pool_finish(&pool, rc != AP_OK);
        if (pool.have_fault) {
            /* a worker's fault concerns an earlier artifact than anything
             * the main thread saw since: it is the first failure */
            *r->err = pool.ferr;
            r->res->fault = pool.ffault;
            snprintf(r->res->fault_path, sizeof r->res->fault_path, "%s",
                     r->lock->artifacts[pool.findex].path);
            r->have_fault = 1;
            rc = pool.ferr.status;
        }
    }
    if (rc == AP_OK && hit_eof)
        idx = skip_base(r, idx);
    if (rc == AP_OK && hit_eof && idx < r->lock->n_artifacts) {
        for (size_t j = idx; j < r->lock->n_artifacts; j++)
            report(r, j, AP_FAULT_MISSING, "missing");
        rc = fault(r, AP_FAULT_MISSING, r->lock->artifacts[idx].path,
                   "missing: the bundle ends before this artifact (%zu of %zu present)", idx,
                   r->lock->n_artifacts);
    }
    if (rc == AP_OK && hit_eof) {
        if (idx == 0)
            end = stream_pos(r); /* no artifacts: the end marker follows the signature */
        rc = check_end(r, idx == 0 ? 0 : end);
    }
    if (rc == AP_OK && r->res->n_failed > 0)
        rc = AP_ERR_CHECK; /* keep_going: the first failure's message is kept */
    if (rc == AP_OK)
        progress(r, r->lock->total_bytes);
out:
    free(lock_buf);
    (void)sig_buf; /* the first signature entry's text, owned by r->res->sigs[0] */
    return rc;
}

static int verify_impl(int fd, struct parts_src *src, const char *name,
                       const ap_bundle_opts *opts, ap_bundle_result *res, ap_error *err)
{
    struct reader r;
    ap_bundle_opts none;
    int rc;

    memset(res, 0, sizeof *res);
    if (!opts) {
        memset(&none, 0, sizeof none);
        opts = &none;
    }
    memset(&r, 0, sizeof r);
    r.name = name;
    r.fd = fd;
    r.src = src;
    r.opts = opts;
    r.res = res;
    r.err = err;
    if ((!opts->keys || opts->keys->n == 0) && !opts->allow_unsigned && !opts->trust)
        return ap_error_set(err, AP_ERR_INPUT, "no trusted public key given");
    r.h = ap_sha256_new();
    r.buf = malloc(FEED_BLOCK);
    if (!r.h || !r.buf) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = verify_pass(&r);
    if (rc != AP_OK && res->fault == AP_FAULT_NONE && rc == AP_ERR_CHECK)
        res->fault = AP_FAULT_ARCHIVE;
out:
    hq_stop(r.hq);
    if (r.inner)
        archive_read_free(r.inner);
    if (r.outer)
        archive_read_free(r.outer);
    ap_sha256_free(r.h);
    free(r.buf);
    return rc;
}

int ap_bundle_verify_fd(int fd, const char *name, const ap_bundle_opts *opts,
                        ap_bundle_result *res, ap_error *err)
{
    return verify_impl(fd, NULL, name, opts, res, err);
}

struct diag {
    char list[AP_ERROR_MSG_MAX / 2];
    size_t len;
};

static void diag_part(void *ctx, size_t i, const ap_part *part, ap_part_state st, const char *msg)
{
    struct diag *d = ctx;
    int n;
    (void)i;
    if (st == AP_PART_OK || d->len >= sizeof d->list)
        return;
    n = snprintf(d->list + d->len, sizeof d->list - d->len, "%s'%s' (%s)", d->len ? ", " : "",
                 part->file, msg ? msg : ap_part_state_name(st));
    if (n > 0)
        d->len += (size_t)n;
}

/* A split bundle (NAME.parts or NAME.001): the parts as one stream. */
static int verify_split(const char *path, const ap_bundle_opts *opts, ap_bundle_result *res,
                        ap_error *err)
{
    struct parts_src ps;
    ap_parts *idx = NULL;
    char *ipath = ap_parts_index_path(path);
    size_t plen = strlen(path);
    int rc, is_index = plen >= strlen(AP_PARTS_SUFFIX) &&
                       strcmp(path + plen - strlen(AP_PARTS_SUFFIX), AP_PARTS_SUFFIX) == 0;

    memset(&ps, 0, sizeof ps);
    ps.fd = -1;
    if (!ipath)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (is_index || access(ipath, F_OK) == 0) {
        /* the index is checked like the lock: signature first */
        ap_keyring tkr = {0};
        const ap_keyring *ikeys = opts->keys;
        if ((!opts->keys || opts->keys->n == 0) && !opts->allow_unsigned && !opts->trust) {
            rc = ap_error_set(err, AP_ERR_INPUT, "no trusted public key given");
            goto out;
        }
        if (opts->trust && (!ikeys || ikeys->n == 0)) {
            /* with a trust file: any unrevoked key of its 'bundles' role may
             * have signed the index (the lock still needs the threshold) */
            const ap_trust *t = opts->trust;
            tkr.keys = calloc(t->n_keys + 1, sizeof *tkr.keys);
            if (!tkr.keys) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            for (size_t i = 0; i < t->n_keys; i++)
                if (ap_trust_counts(&t->keys[i], AP_TRUST_ROLE_BUNDLES))
                    tkr.keys[tkr.n++] = t->keys[i].pk;
            ikeys = &tkr;
        }
        rc = ap_parts_load(ipath, ikeys, opts->allow_unsigned, &idx, err);
        ap_keyring_release(&tkr);
        if (rc != AP_OK) {
            if (rc == AP_ERR_CHECK) {
                res->fault = AP_FAULT_PART;
                snprintf(res->fault_path, sizeof res->fault_path, "%s", ipath);
            }
            goto out;
        }
    }
    ps.index = idx;
    ps.dir = ap_path_dirname(ipath);
    ps.width = ap_parts_first_width(path) ? ap_parts_first_width(path) : 3;
    ps.stem = strndup(path, is_index ? plen : plen - (size_t)ps.width - 1);
    ps.buf = malloc(FEED_BLOCK);
    if (!ps.dir || !ps.stem || !ps.buf) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = verify_impl(-1, &ps, path, opts, res, err);
    res->parts = ps.n_read;
    if (rc == AP_OK && idx && memcmp(idx->lock_sha256, res->lock_sha256, AP_SHA256_LEN) != 0) {
        res->fault = AP_FAULT_PART;
        snprintf(res->fault_path, sizeof res->fault_path, "%s", ipath);
        rc = ap_error_set(err, AP_ERR_CHECK,
                          "bundle '%s': the parts index '%s' belongs to another bundle (its "
                          "lock_sha256 differs from the lock's)",
                          path, ipath);
    } else if (rc == AP_ERR_CHECK && idx &&
               (res->fault != AP_FAULT_PART || strstr(err->msg, "is longer than"))) {
        /* name the parts that are to blame, so only those are copied again
         * (a part too long may be another part in the wrong place: part 1
         * is shorter than the others by the signature reserve) */
        struct diag d;
        ap_error derr;
        memset(&d, 0, sizeof d);
        if (ap_parts_check(ps.dir, idx, diag_part, &d, &derr) > 0) {
            size_t ml = strlen(err->msg);
            snprintf(err->msg + ml, sizeof err->msg - ml, "; bad parts: %s", d.list);
        }
    }
out:
    if (ps.fd >= 0)
        close(ps.fd);
    free(ps.buf);
    free(ps.dir);
    free(ps.stem);
    ap_parts_free(idx);
    free(ipath);
    return rc;
}

int ap_bundle_verify(const char *path, const ap_bundle_opts *opts, ap_bundle_result *res,
                     ap_error *err)
{
    int fd, rc;
    struct stat st;
    ap_bundle_opts none;

    memset(res, 0, sizeof *res);
    if (!opts) {
        memset(&none, 0, sizeof none);
        opts = &none;
    }
    if (strcmp(path, "-") != 0 && ap_parts_is_split_path(path))
        return verify_split(path, opts, res, err);
    if (strcmp(path, "-") == 0)
        return ap_bundle_verify_fd(STDIN_FILENO, "-", opts, res, err);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open bundle", path);
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "is a folder, not a bundle");
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    rc = ap_bundle_verify_fd(fd, path, opts, res, err);
    close(fd);
    return rc;
}

void ap_bundle_result_release(ap_bundle_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n_sigs && i < AP_BUNDLE_MAX_SIGS; i++) {
        free(res->sigs[i].text);
        res->sigs[i].text = NULL;
    }
    res->n_sigs = 0;
    ap_lock_free(res->lock);
    res->lock = NULL;
}

int ap_rfc3339_past(const char *t)
{
    struct tm tm;
    const char *end;
    time_t when;

    memset(&tm, 0, sizeof tm);
    end = strptime(t, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return -1;
    if (*end == '.') {
        end++;
        while (*end >= '0' && *end <= '9')
            end++;
    }
    if (strcmp(end, "Z") != 0)
        return -1;
    when = timegm(&tm);
    if (when == (time_t)-1)
        return -1;
    return when < time(NULL) ? 1 : 0;
}

/* A JSON string even from bytes that are not UTF-8 (escaped). */
static json_t *jstr(const char *s)
{
    char buf[AP_ERROR_MSG_MAX * 4];
    if (ap_utf8_valid(s, strlen(s)))
        return json_string(s);
    show_path(s, buf, sizeof buf);
    return json_string(buf);
}

json_t *ap_bundle_result_json(const char *bundle, const ap_bundle_result *res, const ap_error *err)
{
    json_t *o = json_object(), *sig = json_null(), *e = json_null();
    int ok = !err || err->status == AP_OK;
    char hex[AP_SHA256_HEX_LEN + 1];

    if (!o)
        return NULL;
    json_object_set_new(o, "bundle", jstr(bundle));
    json_object_set_new(o, "verified", json_boolean(ok && res->signature_checked));
    if (res->lock) {
        const ap_lock *l = res->lock;
        json_object_set_new(o, "name", json_string(l->name));
        json_object_set_new(o, "version", json_string(l->version));
        json_object_set_new(o, "sequence", json_integer((json_int_t)l->sequence));
        json_object_set_new(o, "created", json_string(l->created));
        json_object_set_new(o, "expires", l->expires ? json_string(l->expires) : json_null());
        json_object_set_new(o, "artifacts", json_integer((json_int_t)l->n_artifacts));
        json_object_set_new(o, "bytes", json_integer((json_int_t)l->total_bytes));
    }
    if (res->has_sig) {
        char kid[17];
        ap_keyid_hex(res->sig.keyid, kid);
        sig = json_pack("{s:s,s:s,s:s,s:b}", "algorithm", res->sig.alg, "key_id", kid,
                        "trusted_comment", res->sig.trusted_comment, "checked",
                        res->signature_checked);
        if (sig && res->signature_checked)
            json_object_set_new(sig, "key_file", json_string(res->signer.source));
    }
    json_object_set_new(o, "signature", sig ? sig : json_null());
    {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < res->n_sigs; i++) {
            const ap_bundle_sig *bs = &res->sigs[i];
            char kid[17];
            ap_keyid_hex(bs->sig.keyid, kid);
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:b,s:b,s:b,s:s?,s:s?}", "entry",
                                                 bs->entry, "key_id", kid, "trusted_comment",
                                                 bs->sig.trusted_comment, "known", bs->known,
                                                 "valid", bs->valid, "counted", bs->counted,
                                                 "key", bs->key_name[0] ? bs->key_name : NULL,
                                                 "not_counted", bs->counted || !bs->why[0]
                                                                    ? NULL : bs->why));
        }
        json_object_set_new(o, "signatures", arr ? arr : json_array());
        if (res->sigs_needed)
            json_object_set_new(o, "threshold",
                                json_pack("{s:I,s:I}", "found", (json_int_t)res->sigs_counted,
                                          "needed", (json_int_t)res->sigs_needed));
    }
    if (res->has_sig) {
        ap_hex_encode(res->lock_sha256, AP_SHA256_LEN, hex);
        json_object_set_new(o, "lock_sha256", json_string(hex));
    }
    json_object_set_new(o, "checked_artifacts", json_integer((json_int_t)res->n_checked));
    json_object_set_new(o, "checked_bytes", json_integer((json_int_t)res->bytes));
    if (res->lock) {
        /* a delta bundle: what install takes from the site's object store */
        json_t *need = json_array();
        for (size_t i = 0; need && i < res->lock->n_artifacts; i++)
            if (res->lock->artifacts[i].in_base)
                json_array_append_new(need, json_string(res->lock->artifacts[i].path));
        json_object_set_new(o, "in_base",
                            json_pack("{s:I,s:I,s:o}", "artifacts", (json_int_t)res->n_in_base,
                                      "bytes", (json_int_t)res->bytes_in_base, "paths",
                                      need ? need : json_array()));
    }
    if (res->parts > 0)
        json_object_set_new(o, "parts", json_integer((json_int_t)res->parts));
    if (!ok) {
        e = json_pack("{s:s,s:s,s:s}", "fault",
                      ap_bundle_fault_name(res->fault != AP_FAULT_NONE ? res->fault
                                           : err->status == AP_ERR_CHECK ? AP_FAULT_ARCHIVE
                                                                         : AP_FAULT_IO),
                      "artifact", res->fault_path, "message", "");
        if (e)
            json_object_set_new(e, "message", jstr(err->msg));
        if (e && !res->fault_path[0])
            json_object_set_new(e, "artifact", json_null());
    }
    json_object_set_new(o, "error", e ? e : json_null());
    return o;
}
