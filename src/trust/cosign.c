/*
 * cosign.c - reading and rewriting the signature entries at the head of a
 * bundle (see cosign.h).
 */

#include "trust/cosign.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lock.h"
#include "util.h"

#define COPY_BLOCK (1u << 20)

static int read_all(struct archive *a, size_t size, char **out, ap_error *err, const char *path,
                    const char *what)
{
    char *b = malloc(size + 1);
    size_t n = 0;
    if (!b)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    while (n < size) {
        la_ssize_t got = archive_read_data(a, b + n, size - n);
        if (got < 0) {
            free(b);
            return ap_error_set_at(err, AP_ERR_CHECK, path, 0, 0, "cannot read %s: %s", what,
                                   archive_error_string(a) ? archive_error_string(a) : "error");
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n != size) {
        free(b);
        return ap_error_set_at(err, AP_ERR_CHECK, path, 0, 0, "%s is truncated", what);
    }
    b[n] = '\0';
    *out = b;
    return AP_OK;
}

int ap_bundle_head_read(const char *path, ap_bundle_head *h, ap_error *err)
{
    struct archive *a = NULL;
    struct archive_entry *e;
    int fd = -1, rc, r;
    uint8_t magic[4];
    uint64_t data_off = 0, last_size = 0;

    memset(h, 0, sizeof *h);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open bundle", path);
    if (pread(fd, magic, 4, 0) == 4 && magic[0] == 0x28 && magic[1] == 0xB5 && magic[2] == 0x2F &&
        magic[3] == 0xFD)
        h->compressed = 1;
    if (!(a = archive_read_new())) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    archive_read_support_format_tar(a);
    archive_read_support_filter_zstd(a);
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
                             "not a bundle: the first entry is not a regular file '%s'", AP_LOCK_NAME);
        goto out;
    }
    if (archive_entry_size(e) < 0 || archive_entry_size(e) > (la_int64_t)AP_LOCK_MAX_BYTES) {
        rc = ap_error_set_at(err, AP_ERR_CHECK, path, 0, 0, "the lock is larger than %u bytes",
                             (unsigned)AP_LOCK_MAX_BYTES);
        goto out;
    }
    h->mtime = archive_entry_mtime(e) > 0 ? (uint64_t)archive_entry_mtime(e) : 0;
    data_off = (uint64_t)archive_filter_bytes(a, 0);
    last_size = (uint64_t)archive_entry_size(e);
    h->lock_len = (size_t)archive_entry_size(e);
    if ((rc = read_all(a, h->lock_len, &h->lock, err, path, "the lock")))
        goto out;
    for (;;) {
        const char *p;
        ap_head_sig *s;
        r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break; /* no artifacts (inspect shows it; verify refuses it) */
        if (r != ARCHIVE_OK || !(p = archive_entry_pathname(e))) {
            rc = ap_error_set_at(err, AP_ERR_CHECK, path, 0, 0, "cannot read the bundle's head: %s",
                                 archive_error_string(a) ? archive_error_string(a) : "bad header");
            goto out;
        }
        if (!ap_sig_entry_like(p))
            break;
        if (h->n_sigs >= AP_BUNDLE_MAX_SIGS) {
            rc = ap_error_set_at(err, AP_ERR_CHECK, path, 0, 0,
                                 "more than %d signature entries", AP_BUNDLE_MAX_SIGS);
            goto out;
        }
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_size(e) < 0 ||
            archive_entry_size(e) > AP_KEYFILE_MAX || strlen(p) >= AP_SIG_ENTRY_NAME_MAX) {
            rc = ap_error_set_at(err, AP_ERR_CHECK, path, 0, 0,
                                 "signature entry '%.64s' is not a regular file of at most %d bytes "
                                 "with a well-formed name", p, AP_KEYFILE_MAX);
            goto out;
        }
        s = &h->sigs[h->n_sigs];
        snprintf(s->name, sizeof s->name, "%s", p);
        data_off = (uint64_t)archive_filter_bytes(a, 0);
        last_size = (uint64_t)archive_entry_size(e);
        s->len = (size_t)last_size;
        if ((rc = read_all(a, s->len, &s->text, err, path, "a signature entry")))
            goto out;
        h->n_sigs++;
    }
    h->payload_off = data_off + ((last_size + 511) & ~(uint64_t)511);
    rc = AP_OK;
out:
    if (a)
        archive_read_free(a);
    if (fd >= 0)
        close(fd);
    if (rc != AP_OK)
        ap_bundle_head_release(h);
    return rc;
}

void ap_bundle_head_release(ap_bundle_head *h)
{
    if (!h)
        return;
    free(h->lock);
    for (size_t i = 0; i < h->n_sigs; i++)
        free(h->sigs[i].text);
    memset(h, 0, sizeof *h);
}

static int cmp_sig(const void *a, const void *b)
{
    const ap_head_sig *x = a, *y = b;
    int px = strcmp(x->name, AP_LOCK_SIG_NAME) == 0, py = strcmp(y->name, AP_LOCK_SIG_NAME) == 0;
    if (px != py)
        return py - px;
    return strcmp(x->name, y->name);
}

void ap_bundle_head_sort(ap_bundle_head *h)
{
    qsort(h->sigs, h->n_sigs, sizeof h->sigs[0], cmp_sig);
}

/* The head's tar bytes (lock and signature entries, no end marker), in the
 * writer's deterministic form (bundle_write.c). */
static int head_bytes(const ap_bundle_head *h, uint8_t **out, size_t *len, ap_error *err)
{
    struct archive *w = archive_write_new();
    size_t cap = 4096, used = 0;
    uint8_t *buf;
    int rc = AP_OK;

    cap += ((h->lock_len + 511) & ~(size_t)511) + 2048;
    for (size_t i = 0; i < h->n_sigs; i++)
        cap += ((h->sigs[i].len + 511) & ~(size_t)511) + 2048;
    buf = malloc(cap);
    if (!w || !buf) {
        if (w)
            archive_write_free(w);
        free(buf);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if (archive_write_set_format_pax_restricted(w) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w, 512) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w, 1) != ARCHIVE_OK ||
        archive_write_open_memory(w, buf, cap, &used) != ARCHIVE_OK) {
        rc = ap_error_set(err, AP_ERR_INTERNAL, "cannot start the bundle's head: %s",
                          archive_error_string(w) ? archive_error_string(w) : "libarchive");
        goto out;
    }
    for (size_t i = 0; i <= h->n_sigs && rc == AP_OK; i++) {
        const char *name = i == 0 ? AP_LOCK_NAME : h->sigs[i - 1].name;
        const char *data = i == 0 ? h->lock : h->sigs[i - 1].text;
        size_t n = i == 0 ? h->lock_len : h->sigs[i - 1].len;
        struct archive_entry *e = archive_entry_new();
        if (!e) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            break;
        }
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)n);
        archive_entry_set_mtime(e, (time_t)h->mtime, 0);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        if (archive_write_header(w, e) != ARCHIVE_OK ||
            (n > 0 && archive_write_data(w, data, n) != (la_ssize_t)n))
            rc = ap_error_set(err, AP_ERR_INTERNAL, "cannot write the entry '%s': %s", name,
                              archive_error_string(w) ? archive_error_string(w) : "libarchive");
        archive_entry_free(e);
    }
    if (rc == AP_OK && archive_write_close(w) != ARCHIVE_OK)
        rc = ap_error_set(err, AP_ERR_INTERNAL, "cannot finish the bundle's head");
    if (rc == AP_OK) {
        /* drop the end-of-archive marker: the old bundle's follows the payload */
        if (used < 1024 || used % 512 != 0) {
            rc = ap_error_set(err, AP_ERR_INTERNAL, "unexpected head size %zu", used);
        } else {
            for (size_t i = used - 1024; i < used; i++)
                if (buf[i]) {
                    rc = ap_error_set(err, AP_ERR_INTERNAL, "no end marker after the head");
                    break;
                }
        }
    }
out:
    archive_write_free(w);
    if (rc != AP_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = used - 1024;
    return AP_OK;
}

int ap_bundle_head_len(const ap_bundle_head *h, uint64_t *len, ap_error *err)
{
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = head_bytes(h, &b, &n, err);
    free(b);
    if (rc == AP_OK)
        *len = n;
    return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Plain tar: the payload from in at off to its end, appended to out. */
static int copy_tail(int in, int out, uint64_t off, const char *inpath, const char *tmp,
                     ap_error *err)
{
    struct stat st;
    loff_t ioff = (loff_t)off;
    uint64_t left;
    char *buf = NULL;
    int rc = AP_OK;

    if (fstat(in, &st) != 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot read", inpath);
    if ((uint64_t)st.st_size < off)
        return ap_error_set_at(err, AP_ERR_CHECK, inpath, 0, 0, "truncated bundle");
    left = (uint64_t)st.st_size - off;
    while (left > 0) {
        ssize_t n = copy_file_range(in, &ioff, out, NULL, left > (1u << 30) ? (1u << 30) : left, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* not supported here: plain reads and writes */
        left -= (uint64_t)n;
    }
    if (left == 0)
        return AP_OK;
    if (!(buf = malloc(COPY_BLOCK)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    while (left > 0) {
        size_t want = left < COPY_BLOCK ? (size_t)left : COPY_BLOCK;
        ssize_t n = pread(in, buf, want, ioff);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = ap_error_errno(err, AP_ERR_IO, n < 0 ? errno : EIO, "cannot read", inpath);
            break;
        }
        if (write_all(out, buf, (size_t)n) != 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
            break;
        }
        ioff += n;
        left -= (uint64_t)n;
    }
    free(buf);
    return rc;
}

static la_ssize_t fd_writer(struct archive *a, void *ctx, const void *buf, size_t n)
{
    (void)a;
    return write_all(*(int *)ctx, buf, n) == 0 ? (la_ssize_t)n : -1;
}

/* zstd bundle: decompress in, drop its head, compress head + rest into out. */
static int recompress(const char *inpath, int out, const uint8_t *head, size_t head_len,
                      uint64_t off, const char *tmp, ap_error *err)
{
    struct archive *r = archive_read_new(), *w = archive_write_new();
    struct archive_entry *e = NULL, *we = NULL;
    int rc = AP_OK, outfd = out;
    uint64_t pos = 0;

    if (!r || !w) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    archive_read_support_filter_zstd(r);
    archive_read_support_format_raw(r);
    if (archive_read_open_filename(r, inpath, COPY_BLOCK) != ARCHIVE_OK ||
        archive_read_next_header(r, &e) != ARCHIVE_OK) {
        rc = ap_error_set_at(err, AP_ERR_CHECK, inpath, 0, 0, "cannot read the bundle: %s",
                             archive_error_string(r) ? archive_error_string(r) : "error");
        goto out;
    }
    if (archive_write_set_format_raw(w) != ARCHIVE_OK || archive_write_add_filter_zstd(w) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w, 1) != ARCHIVE_OK ||
        archive_write_open2(w, &outfd, NULL, fd_writer, NULL, NULL) != ARCHIVE_OK ||
        !(we = archive_entry_new())) {
        rc = ap_error_set(err, AP_ERR_INTERNAL, "cannot start the zstd writer");
        goto out;
    }
    archive_entry_set_filetype(we, AE_IFREG);
    archive_entry_set_pathname(we, "bundle");
    if (archive_write_header(w, we) != ARCHIVE_OK ||
        archive_write_data(w, head, head_len) != (la_ssize_t)head_len) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
        goto out;
    }
    for (;;) {
        const void *b;
        size_t n;
        la_int64_t o;
        int x = archive_read_data_block(r, &b, &n, &o);
        if (x == ARCHIVE_EOF)
            break;
        if (x < ARCHIVE_WARN) {
            rc = ap_error_set_at(err, AP_ERR_CHECK, inpath, 0, 0, "cannot read the bundle: %s",
                                 archive_error_string(r) ? archive_error_string(r) : "error");
            goto out;
        }
        if (pos + n > off) {
            size_t skip = pos >= off ? 0 : (size_t)(off - pos);
            if (archive_write_data(w, (const uint8_t *)b + skip, n - skip) != (la_ssize_t)(n - skip)) {
                rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
                goto out;
            }
        }
        pos += n;
    }
    if (pos < off) {
        rc = ap_error_set_at(err, AP_ERR_CHECK, inpath, 0, 0, "truncated bundle");
        goto out;
    }
    if (archive_write_close(w) != ARCHIVE_OK) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
        goto out;
    }
out:
    if (we)
        archive_entry_free(we);
    if (r)
        archive_read_free(r);
    if (w)
        archive_write_free(w);
    return rc;
}

int ap_bundle_head_write(const char *in, const char *out, const ap_bundle_head *h, ap_error *err)
{
    uint8_t *head = NULL;
    size_t head_len = 0;
    char *dir = NULL, *tmp = NULL;
    const char *base;
    int ifd = -1, ofd = -1, rc;

    if ((rc = head_bytes(h, &head, &head_len, err)))
        return rc;
    ifd = open(in, O_RDONLY | O_CLOEXEC);
    if (ifd < 0) {
        rc = ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open bundle", in);
        goto out;
    }
    base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
    if (!(dir = ap_path_dirname(out)) || !*base || asprintf(&tmp, "%s/.%s.XXXXXX.tmp", dir, base) < 0) {
        tmp = NULL;
        rc = ap_error_set(err, AP_ERR_INPUT, "'%s' is not a file name", out);
        goto out;
    }
    ofd = mkostemps(tmp, 4, O_CLOEXEC);
    if (ofd < 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot create a temporary file in", dir);
        free(tmp);
        tmp = NULL;
        goto out;
    }
    if (fchmod(ofd, 0644) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot set the mode of", tmp);
        goto out;
    }
    if (h->compressed) {
        rc = recompress(in, ofd, head, head_len, h->payload_off, tmp, err);
    } else {
        if (write_all(ofd, head, head_len) != 0)
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
        else
            rc = copy_tail(ifd, ofd, h->payload_off, in, tmp, err);
    }
    if (rc)
        goto out;
    if (fsync(ofd) != 0 || close(ofd) != 0) {
        ofd = -1;
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
        goto out;
    }
    ofd = -1;
    if (rename(tmp, out) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename the bundle to", out);
        goto out;
    }
    free(tmp);
    tmp = NULL;
    rc = ap_fsync_dir_of(out, err);
out:
    if (ofd >= 0)
        close(ofd);
    if (ifd >= 0)
        close(ifd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    free(head);
    return rc;
}
