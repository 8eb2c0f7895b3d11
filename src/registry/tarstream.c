/*
 * tarstream.c - rebuild a bundle's exact bytes from its lock, signature
 * and artifact data (oci.h: ap_tar_rebuild). libarchive writes the pax tar
 * exactly as the bundle writer does (pax restricted, mtime = the lock's
 * created time, uid/gid 0, the lock's modes, no padding of the last
 * record); it writes unblocked, so every header, data and padding write
 * reaches the output callback as it happens and artifact data passes
 * through unchanged.
 */
#include "registry/oci.h"

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rebuild {
    struct archive *a;
    ap_tar_out_fn out;
    void *out_ctx;
    int in_data;                    /* inside archive_write_data of an artifact */
    int failed;                     /* the output callback failed: err is set */
    ap_error *err;
    uint64_t left;                  /* artifact bytes still expected */
    const char *path;
};

static la_ssize_t out_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct rebuild *r = ctx;
    (void)a;
    if (r->failed)
        return (la_ssize_t)len; /* swallow: libarchive must not enter its fatal state */
    if (r->out(r->out_ctx, buf, len, r->in_data, r->err) != AP_OK)
        r->failed = 1;
    return (la_ssize_t)len;
}

static int arch_fail(struct rebuild *r, const char *what)
{
    if (r->failed)
        return r->err->status ? r->err->status : AP_ERR_IO;
    return ap_error_set(r->err, AP_ERR_IO, "cannot rebuild the bundle: %s '%s': %s", what,
                        r->path ? r->path : "", archive_error_string(r->a) ?
                        archive_error_string(r->a) : "unknown error");
}

static int header(struct rebuild *r, const char *path, uint64_t size, unsigned mode,
                  time_t mtime)
{
    struct archive_entry *e = archive_entry_new();
    int rc;
    if (!e)
        return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory");
    r->path = path;
    archive_entry_set_pathname_utf8(e, path);
    if (!archive_entry_pathname(e)) {
        archive_entry_free(e);
        return ap_error_set(r->err, AP_ERR_INPUT, "cannot encode the entry name '%s' (no UTF-8 "
                                                  "locale available)", path);
    }
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, (mode_t)mode);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_mtime(e, mtime, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    rc = archive_write_header(r->a, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK || r->failed)
        return arch_fail(r, "header of");
    return AP_OK;
}

static int data(struct rebuild *r, const void *buf, size_t len)
{
    while (len > 0) {
        la_ssize_t n = archive_write_data(r->a, buf, len);
        if (n <= 0 || r->failed)
            return arch_fail(r, "data of");
        buf = (const char *)buf + n;
        len -= (size_t)n;
    }
    return AP_OK;
}

static int put(void *ctx, const void *buf, size_t len, ap_error *err)
{
    struct rebuild *r = ctx;
    int rc;
    (void)err;
    if ((uint64_t)len > r->left)
        return ap_error_set(r->err, AP_ERR_CHECK, "artifact '%s': more bytes than the lock's size",
                            r->path);
    r->left -= len;
    r->in_data = 1;
    rc = data(r, buf, len);
    r->in_data = 0;
    return rc;
}

static int parse_created(const char *s, time_t *out)
{
    struct tm tm;
    const char *e;
    memset(&tm, 0, sizeof tm);
    if (!s || !(e = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) || *e)
        return -1;
    *out = timegm(&tm);
    return 0;
}

int ap_tar_rebuild(const char *lock_buf, size_t lock_len, const ap_oci_sig *sigs, size_t n_sigs,
                   const ap_lock *lock, ap_tar_fill_fn fill, void *fill_ctx, ap_tar_out_fn out,
                   void *out_ctx, ap_error *err)
{
    struct rebuild r;
    time_t mtime;
    int rc;
    locale_t utf8, old = (locale_t)0;

    if (parse_created(lock->created, &mtime) != 0)
        return ap_error_set(err, AP_ERR_CHECK, "lock: created '%s' is not a UTC time",
                            lock->created ? lock->created : "");
    memset(&r, 0, sizeof r);
    r.out = out;
    r.out_ctx = out_ctx;
    r.err = err;
    /* names are encoded through the thread's locale: UTF-8, as the writer */
    utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (!utf8)
        utf8 = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", (locale_t)0);
    if (utf8)
        old = uselocale(utf8);
    if (!(r.a = archive_write_new())) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (archive_write_set_format_pax_restricted(r.a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(r.a, 0) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(r.a, 1) != ARCHIVE_OK ||
        archive_write_open2(r.a, &r, NULL, out_cb, NULL, NULL) != ARCHIVE_OK) {
        rc = arch_fail(&r, "open");
        goto out;
    }
    if ((rc = header(&r, AP_LOCK_NAME, lock_len, 0644, mtime)) ||
        (rc = data(&r, lock_buf, lock_len)))
        goto out;
    for (size_t i = 0; i < n_sigs; i++)
        if ((rc = header(&r, sigs[i].name, sigs[i].len, 0644, mtime)) ||
            (rc = data(&r, sigs[i].buf, sigs[i].len)))
            goto out;
    for (size_t i = 0; i < lock->n_artifacts; i++) {
        const ap_artifact *a = &lock->artifacts[i];
        if (a->in_base)
            continue; /* a delta bundle leaves it out of the tar */
        if ((rc = header(&r, a->path, a->size, a->mode, mtime)))
            goto out;
        r.left = a->size;
        if ((rc = fill(fill_ctx, i, a, put, &r, err)))
            goto out;
        if (r.left) {
            rc = ap_error_set(err, AP_ERR_CHECK, "artifact '%s': %llu bytes short of the lock's "
                                                 "size (truncated)",
                              a->path, (unsigned long long)r.left);
            goto out;
        }
    }
    r.path = "end of archive";
    if (archive_write_close(r.a) != ARCHIVE_OK || r.failed) {
        rc = arch_fail(&r, "end of");
        goto out;
    }
    rc = AP_OK;
out:
    if (r.a) {
        if (rc != AP_OK)
            r.failed = 1;
        archive_write_close(r.a);
        archive_write_free(r.a);
    }
    if (utf8) {
        uselocale(old);
        freelocale(utf8);
    }
    return rc;
}
