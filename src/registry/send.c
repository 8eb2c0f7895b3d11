/*
 * send.c - read a bundle file once and hand its OCI content to a target
 * (an OCI image layout folder, a registry): ap_oci_send_bundle and
 * ap_oci_export_layout (oci.h).
 *
 * The bundle is read as one byte stream (libarchive's raw format, zstd
 * undone) in step with ap_tar_rebuild: every byte that is not artifact
 * data (headers, padding, the lock and signature entries, the end marker)
 * must equal the rebuilt byte, so a bundle that pull could not give back
 * byte-identical is refused before anything is tagged.
 *
 * A blob the target has already is not read at all from a plain bundle
 * (the file offset jumps over it; the rebuild is fed zeros, which it
 * passes through uncompared), so a second push of a release that shares
 * its models reads little more than the headers.
 */
#include "registry/oci.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle_write.h"
#include "trust/cosign.h"
#include "util.h"

#define RAW_BLOCK (1u << 20)

struct sender {
    const char *bundle;
    struct archive *raw;            /* zstd bundles: the decompressed stream */
    int fd;                         /* plain bundles: the file (raw is NULL) */
    char *zero;                     /* RAW_BLOCK zero bytes */
    const ap_oci_target *t;
    const ap_lock *lock;
    unsigned char *first;           /* first[i]: artifact i is its digest's first occurrence */
    char *buf;                      /* RAW_BLOCK */
    char *cmp;                      /* RAW_BLOCK */
    uint64_t pos;                   /* bytes of the stream consumed */
    uint64_t done;                  /* artifact bytes through */
    ap_oci_send_stats *st;
};

static int raw_read(struct sender *s, void *buf, size_t len, ap_error *err)
{
    size_t got = 0;
    while (got < len) {
        la_ssize_t n;
        if (s->fd >= 0) {
            ssize_t k = read(s->fd, (char *)buf + got, len - got);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return ap_error_errno(err, AP_ERR_IO, errno, "cannot read bundle", s->bundle);
            if (k == 0)
                return ap_error_set(err, AP_ERR_CHECK, "bundle '%s': truncated at byte %llu",
                                    s->bundle, (unsigned long long)(s->pos + got));
            got += (size_t)k;
            continue;
        }
        n = archive_read_data(s->raw, (char *)buf + got, len - got);
        if (n < 0)
            return ap_error_set(err, AP_ERR_CHECK, "bundle '%s': %s", s->bundle,
                                archive_error_string(s->raw) ? archive_error_string(s->raw)
                                                             : "read error");
        if (n == 0)
            return ap_error_set(err, AP_ERR_CHECK, "bundle '%s': truncated at byte %llu",
                                s->bundle, (unsigned long long)(s->pos + got));
        got += (size_t)n;
    }
    s->pos += len;
    return AP_OK;
}

/* Non-data bytes of the rebuilt stream must equal the file's. */
static int out_cmp(void *ctx, const void *buf, size_t len, int is_data, ap_error *err)
{
    struct sender *s = ctx;
    int rc;
    if (is_data)
        return AP_OK; /* these came from the file itself (fill) */
    while (len > 0) {
        size_t n = len < RAW_BLOCK ? len : RAW_BLOCK;
        if ((rc = raw_read(s, s->cmp, n, err)))
            return rc;
        if (memcmp(s->cmp, buf, n) != 0)
            return ap_error_set(err, AP_ERR_CHECK,
                                "bundle '%s' is not laid out as airpack writes bundles (near byte "
                                "%llu): it could not be pulled back byte-identical",
                                s->bundle, (unsigned long long)(s->pos - n));
        buf = (const char *)buf + n;
        len -= n;
    }
    return AP_OK;
}

/* Pass over n bytes of artifact data without using them. */
static int raw_skip(struct sender *s, uint64_t n, ap_error *err)
{
    if (s->fd >= 0) {
        if (lseek(s->fd, (off_t)n, SEEK_CUR) < 0)
            return ap_error_errno(err, AP_ERR_IO, errno, "cannot seek in bundle", s->bundle);
        s->pos += n;
        return AP_OK;
    }
    while (n > 0) {
        size_t k = n < RAW_BLOCK ? (size_t)n : RAW_BLOCK;
        int rc = raw_read(s, s->buf, k, err);
        if (rc)
            return rc;
        n -= k;
    }
    return AP_OK;
}

static void hexdigest(const ap_artifact *a, char out[AP_OCI_DIGEST_LEN + 1])
{
    memcpy(out, "sha256:", 7);
    ap_hex_encode(a->sha256, AP_SHA256_LEN, out + 7);
}

static int fill(void *ctx, size_t i, const ap_artifact *a, ap_tar_put_fn put, void *put_ctx,
                ap_error *err)
{
    struct sender *s = ctx;
    uint64_t left = a->size;
    int send = 0, rc, yes = 0;
    char dg[AP_OCI_DIGEST_LEN + 1];

    hexdigest(a, dg);
    if (s->first[i]) {
        s->st->blobs++;
        if ((rc = s->t->has(s->t->ctx, dg, a->size, &yes, err)))
            return rc;
        send = !yes;
        if (send && (rc = s->t->blob_begin(s->t->ctx, dg, a->size, err)))
            return rc;
        if (send) {
            s->st->blobs_sent++;
            s->st->bytes_sent += a->size;
        } else {
            s->st->blobs_skipped++;
            s->st->bytes_skipped += a->size;
        }
    }
    if (!send) {
        /* not needed: skip it in the file, feed the rebuild zeros */
        if ((rc = raw_skip(s, left, err)))
            return rc;
        while (left > 0) {
            size_t n = left < RAW_BLOCK ? (size_t)left : RAW_BLOCK;
            if ((rc = put(put_ctx, s->zero, n, err)))
                return rc;
            left -= n;
        }
        s->done += a->size;
        if (s->t->progress)
            s->t->progress(s->t->ctx, s->done, s->lock->total_bytes);
        return AP_OK;
    }
    while (left > 0) {
        size_t n = left < RAW_BLOCK ? (size_t)left : RAW_BLOCK;
        if ((rc = raw_read(s, s->buf, n, err)) || (rc = put(put_ctx, s->buf, n, err)) ||
            (send && (rc = s->t->blob_data(s->t->ctx, s->buf, n, err)))) {
            if (send)
                s->t->blob_end(s->t->ctx, 0, NULL);
            return rc;
        }
        left -= n;
        s->done += n;
        if (s->t->progress)
            s->t->progress(s->t->ctx, s->done, s->lock->total_bytes);
    }
    if (send)
        return s->t->blob_end(s->t->ctx, 1, err);
    return AP_OK;
}

static int send_memory(const ap_oci_target *t, const char *digest, const void *buf, size_t len,
                       ap_oci_send_stats *st, ap_error *err)
{
    int yes = 0, rc;
    st->blobs++;
    if ((rc = t->has(t->ctx, digest, len, &yes, err)))
        return rc;
    if (yes) {
        st->blobs_skipped++;
        st->bytes_skipped += len;
        return AP_OK;
    }
    st->blobs_sent++;
    st->bytes_sent += len;
    if ((rc = t->blob_begin(t->ctx, digest, len, err)))
        return rc;
    if ((rc = t->blob_data(t->ctx, buf, len, err))) {
        t->blob_end(t->ctx, 0, NULL);
        return rc;
    }
    return t->blob_end(t->ctx, 1, err);
}

static int cmp_idx(const void *a, const void *b, void *ctx)
{
    const ap_lock *l = ctx;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = memcmp(l->artifacts[x].sha256, l->artifacts[y].sha256, AP_SHA256_LEN);
    return c ? c : (x < y ? -1 : x > y);
}

int ap_oci_send_bundle(const char *bundle, const ap_oci_target *t, const char *tag,
                       char index_digest[AP_OCI_DIGEST_LEN + 1], ap_oci_send_stats *stats,
                       ap_error *err)
{
    struct sender s;
    ap_bundle_head head;
    ap_oci_sig sigs[AP_OCI_MAX_SIGS];
    size_t n_sigs = 0, *order = NULL;
    const char *lock_buf;
    size_t lock_len;
    ap_lock *lock = NULL;
    ap_oci_content c;
    ap_oci_send_stats dummy;
    int rc;

    memset(&s, 0, sizeof s);
    s.fd = -1;
    memset(&c, 0, sizeof c);
    if (!stats)
        stats = &dummy;
    memset(stats, 0, sizeof *stats);
    memset(sigs, 0, sizeof sigs);
    memset(&head, 0, sizeof head);
    if ((rc = ap_bundle_head_read(bundle, &head, err)))
        goto out;
    lock_buf = head.lock;
    lock_len = head.lock_len;
    if (head.n_sigs == 0 || head.n_sigs > AP_OCI_MAX_SIGS ||
        strcmp(head.sigs[0].name, AP_LOCK_SIG_NAME) != 0) {
        rc = ap_error_set(err, AP_ERR_CHECK, "bundle '%s' is not signed (no %s entry after the "
                                             "lock)", bundle, AP_LOCK_SIG_NAME);
        goto out;
    }
    for (n_sigs = 0; n_sigs < head.n_sigs; n_sigs++) {
        snprintf(sigs[n_sigs].name, sizeof sigs[n_sigs].name, "%s", head.sigs[n_sigs].name);
        sigs[n_sigs].buf = head.sigs[n_sigs].text;
        sigs[n_sigs].len = head.sigs[n_sigs].len;
    }
    if ((rc = ap_lock_parse(AP_LOCK_NAME, lock_buf, lock_len, &lock, err))) {
        ap_error_prefix(err, "bundle '%s'", bundle);
        goto out;
    }
    if ((rc = ap_oci_content_build(lock_buf, lock_len, sigs, n_sigs, lock, &c, err)))
        goto out;
    s.bundle = bundle;
    s.t = t;
    s.lock = lock;
    s.st = stats;
    s.buf = malloc(RAW_BLOCK);
    s.cmp = malloc(RAW_BLOCK);
    s.zero = calloc(1, RAW_BLOCK);
    s.first = calloc(lock->n_artifacts + 1, 1);
    order = malloc((lock->n_artifacts + 1) * sizeof *order);
    if (!s.buf || !s.cmp || !s.zero || !s.first || !order) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < lock->n_artifacts; i++)
        order[i] = i;
    qsort_r(order, lock->n_artifacts, sizeof *order, cmp_idx, lock);
    for (size_t i = 0; i < lock->n_artifacts; i++)
        if (i == 0 || memcmp(lock->artifacts[order[i]].sha256,
                             lock->artifacts[order[i - 1]].sha256, AP_SHA256_LEN) != 0)
            s.first[order[i]] = 1;

    /* the small blobs first: lock, signature, model configs */
    if ((rc = send_memory(t, c.lock_digest, lock_buf, lock_len, stats, err)) ||
        0)
        goto out;
    for (size_t i = 0; i < c.n_sigs; i++)
        if ((rc = send_memory(t, c.sigs[i].digest, c.sigs[i].buf, c.sigs[i].len, stats, err)))
            goto out;
    for (size_t i = 0; i < c.n_models; i++)
        if ((rc = send_memory(t, c.models[i].config.digest, c.models[i].config.buf,
                              c.models[i].config.len, stats, err)))
            goto out;

    /* the artifacts, in one pass over the bundle */
    if (!head.compressed) {
        s.fd = open(bundle, O_RDONLY | O_CLOEXEC);
        if (s.fd < 0) {
            rc = ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open bundle", bundle);
            goto out;
        }
        (void)posix_fadvise(s.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    } else if (!(s.raw = archive_read_new())) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (s.raw) {
        struct archive_entry *e;
        archive_read_support_format_raw(s.raw);
        archive_read_support_filter_zstd(s.raw);
        if (archive_read_open_filename(s.raw, bundle, RAW_BLOCK) != ARCHIVE_OK ||
            archive_read_next_header(s.raw, &e) != ARCHIVE_OK) {
            rc = ap_error_set(err, AP_ERR_INPUT, "cannot read bundle '%s': %s", bundle,
                              archive_error_string(s.raw) ? archive_error_string(s.raw) : "");
            goto out;
        }
    }
    if ((rc = ap_tar_rebuild(lock_buf, lock_len, sigs, n_sigs, lock, fill, &s, out_cmp, &s,
                             err)))
        goto out;
    {
        ssize_t n;
        do
            n = s.raw ? (ssize_t)archive_read_data(s.raw, s.buf, 1) : read(s.fd, s.buf, 1);
        while (n < 0 && s.fd >= 0 && errno == EINTR);
        if (n != 0) {
            rc = ap_error_set(err, AP_ERR_CHECK,
                              "bundle '%s' has bytes after the end of the archive: it could not "
                              "be pulled back byte-identical",
                              bundle);
            goto out;
        }
    }

    /* manifests last: models, the bundle manifest, then the tagged index */
    for (size_t i = 0; i < c.n_models; i++)
        if ((rc = t->manifest(t->ctx, &c.models[i].manifest, NULL, err)))
            goto out;
    if ((rc = t->manifest(t->ctx, &c.bundle, NULL, err)) ||
        (rc = t->manifest(t->ctx, &c.index, tag, err)))
        goto out;
    if (index_digest)
        memcpy(index_digest, c.index.digest, AP_OCI_DIGEST_LEN + 1);
out:
    if (s.raw)
        archive_read_free(s.raw);
    if (s.fd >= 0)
        close(s.fd);
    free(s.zero);
    free(s.buf);
    free(s.cmp);
    free(s.first);
    free(order);
    ap_oci_content_release(&c);
    ap_lock_free(lock);
    ap_bundle_head_release(&head);
    return rc;
}

/* ---- the OCI image layout target ---- */

struct layout {
    const char *dir;
    char blobs[4096];
    int fd;
    char tmp[4200], final[4200];
    char digest[AP_OCI_DIGEST_LEN + 1];
    ap_sha256 *h;
    void (*progress)(void *, uint64_t, uint64_t);
    void *progress_ctx;
};

static int l_has(void *ctx, const char *digest, uint64_t size, int *yes, ap_error *err)
{
    struct layout *l = ctx;
    char p[4200];
    struct stat st;
    (void)err;
    snprintf(p, sizeof p, "%s/%s", l->blobs, digest + 7);
    *yes = stat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
    return AP_OK;
}

static int l_begin(void *ctx, const char *digest, uint64_t size, ap_error *err)
{
    struct layout *l = ctx;
    (void)size;
    snprintf(l->final, sizeof l->final, "%s/%s", l->blobs, digest + 7);
    snprintf(l->tmp, sizeof l->tmp, "%s/.%s.tmp", l->blobs, digest + 7);
    snprintf(l->digest, sizeof l->digest, "%s", digest);
    l->fd = open(l->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (l->fd < 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot create", l->tmp);
    if (ap_sha256_reset(l->h) != AP_OK) {
        close(l->fd);
        l->fd = -1;
        return ap_error_set(err, AP_ERR_INTERNAL, "sha256 reset failed");
    }
    return AP_OK;
}

static int l_data(void *ctx, const void *buf, size_t len, ap_error *err)
{
    struct layout *l = ctx;
    const char *p = buf;
    if (ap_sha256_update(l->h, buf, len) != AP_OK)
        return ap_error_set(err, AP_ERR_INTERNAL, "sha256 failed");
    while (len > 0) {
        ssize_t n = write(l->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return ap_error_errno(err, AP_ERR_IO, n < 0 ? errno : EIO, "cannot write", l->tmp);
        p += n;
        len -= (size_t)n;
    }
    return AP_OK;
}

static int l_end(void *ctx, int ok, ap_error *err)
{
    struct layout *l = ctx;
    uint8_t h[AP_SHA256_LEN];
    char hex[AP_SHA256_HEX_LEN + 1];
    int rc = AP_OK;
    if (close(l->fd) != 0 && ok)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", l->tmp);
    l->fd = -1;
    if (ok && rc == AP_OK) {
        if (ap_sha256_final(l->h, h) != AP_OK)
            rc = ap_error_set(err, AP_ERR_INTERNAL, "sha256 failed");
        ap_hex_encode(h, AP_SHA256_LEN, hex);
        if (rc == AP_OK && strcmp(hex, l->digest + 7) != 0)
            rc = ap_error_set(err, AP_ERR_CHECK,
                              "blob %s: its bytes hash to sha256:%s (the bundle is damaged)",
                              l->digest, hex);
        if (rc == AP_OK && rename(l->tmp, l->final) != 0)
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename", l->tmp);
    }
    if (!ok || rc != AP_OK)
        unlink(l->tmp);
    return rc;
}

static int write_atomic(const char *path, const char *buf, size_t len, ap_error *err)
{
    char tmp[4200];
    int fd;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot create", tmp);
    if (write(fd, buf, len) != (ssize_t)len || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return ap_error_errno(err, AP_ERR_IO, e, "cannot write", tmp);
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot rename", tmp);
    }
    return AP_OK;
}

static int l_manifest(void *ctx, const ap_reg_doc *d, const char *tag, ap_error *err)
{
    struct layout *l = ctx;
    int yes = 0, rc;
    char p[4200];
    json_t *idx, *ms, *e, *keep;
    size_t i;
    char *s;

    if ((rc = l_has(ctx, d->digest, d->len, &yes, err)))
        return rc;
    if (!yes && ((rc = l_begin(ctx, d->digest, d->len, err)) ||
                 (rc = l_data(ctx, d->buf, d->len, err)) || (rc = l_end(ctx, 1, err))))
        return rc;
    if (!tag)
        return AP_OK;
    /* index.json: this tag names the index; other tags are kept */
    snprintf(p, sizeof p, "%s/index.json", l->dir);
    idx = json_load_file(p, JSON_REJECT_DUPLICATES, NULL);
    keep = json_array();
    if (json_is_object(idx) && json_is_array(ms = json_object_get(idx, "manifests"))) {
        json_array_foreach(ms, i, e)
        {
            json_t *r = json_object_get(json_object_get(e, "annotations"), AP_OCI_ANN_REF);
            if (!json_is_string(r) || strcmp(json_string_value(r), tag) != 0)
                json_array_append(keep, e);
        }
    }
    json_decref(idx);
    e = json_pack("{s:s,s:s,s:I,s:s,s:{s:s}}", "mediaType", d->media_type, "digest", d->digest,
                  "size", (json_int_t)d->len, "artifactType", AP_OCI_AT_BUNDLE, "annotations",
                  AP_OCI_ANN_REF, tag);
    json_array_append_new(keep, e);
    idx = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", AP_OCI_MT_INDEX,
                    "manifests", keep);
    s = idx ? json_dumps(idx, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(idx);
    if (!s)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    rc = write_atomic(p, s, strlen(s), err);
    free(s);
    return rc;
}

static void l_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct layout *l = ctx;
    if (l->progress)
        l->progress(l->progress_ctx, done, total);
}

static int mkdir_one(const char *p, ap_error *err)
{
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return ap_error_errno(err, errno == ENOENT ? AP_ERR_INPUT : AP_ERR_IO, errno,
                              "cannot create folder", p);
    return AP_OK;
}

int ap_oci_export_layout(const char *bundle, const char *dir, const char *tag,
                         char index_digest[AP_OCI_DIGEST_LEN + 1], ap_oci_send_stats *stats,
                         void (*progress)(void *, uint64_t, uint64_t), void *progress_ctx,
                         ap_error *err)
{
    struct layout l;
    ap_oci_target t;
    char p[4200];
    static const char layout_file[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    int rc;

    memset(&l, 0, sizeof l);
    l.dir = dir;
    l.fd = -1;
    l.progress = progress;
    l.progress_ctx = progress_ctx;
    if (strlen(dir) > 2048)
        return ap_error_set(err, AP_ERR_INPUT, "folder name '%s' is too long", dir);
    snprintf(l.blobs, sizeof l.blobs, "%s/blobs/sha256", dir);
    snprintf(p, sizeof p, "%s/blobs", dir);
    if ((rc = mkdir_one(dir, err)) || (rc = mkdir_one(p, err)) || (rc = mkdir_one(l.blobs, err)))
        return rc;
    snprintf(p, sizeof p, "%s/oci-layout", dir);
    if ((rc = write_atomic(p, layout_file, sizeof layout_file - 1, err)))
        return rc;
    if (!(l.h = ap_sha256_new()))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    memset(&t, 0, sizeof t);
    t.ctx = &l;
    t.has = l_has;
    t.blob_begin = l_begin;
    t.blob_data = l_data;
    t.blob_end = l_end;
    t.manifest = l_manifest;
    t.progress = l_progress;
    rc = ap_oci_send_bundle(bundle, &t, tag, index_digest, stats, err);
    ap_sha256_free(l.h);
    return rc;
}
