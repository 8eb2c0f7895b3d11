/*
 * fetch.c - read a bundle back from a registry (fetch.h): the checks of
 * the manifests against the signed lock, the byte-exact stream, pull into
 * a file, and the socket install reads from.
 */
#include "registry/fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle_write.h"
#include "util.h"

void ap_oci_fetch_close(ap_oci_fetch *f)
{
    if (!f)
        return;
    ap_reg_close(f->reg);
    free(f->lock_buf);
    for (size_t i = 0; i < f->n_sigs; i++)
        free((char *)f->sigs[i].buf);
    ap_lock_free(f->lock);
    memset(f, 0, sizeof *f);
}

static size_t distinct_models(const ap_lock *lock)
{
    size_t n = 0;
    const char *prev = NULL;
    size_t prev_len = 0;
    int partial = 0;
    /* models with a file a delta bundle leaves out have no ModelPack artifact */
    for (size_t i = 0; i < lock->n_artifacts; i++) {
        const char *p = lock->artifacts[i].path, *s, *e;
        if (lock->artifacts[i].role != AP_ROLE_MODEL)
            continue;
        s = p + strlen("payload/models/");
        e = strchr(s, '/');
        if (!e)
            continue;
        if (!prev || prev_len != (size_t)(e - s) || memcmp(prev, s, prev_len) != 0) {
            n += prev && !partial;
            partial = 0;
            prev = s;
            prev_len = (size_t)(e - s);
        }
        partial |= lock->artifacts[i].in_base;
    }
    return n + (prev && !partial);
}

int ap_oci_fetch_open(const char *reference, const ap_reg_opts *o, const ap_keyring *keys,
                      ap_oci_fetch *f, ap_error *err)
{
    char *top = NULL, *bm_buf = NULL;
    size_t top_len = 0, bm_len = 0;
    ap_oci_top t;
    ap_oci_bundle_manifest bm;
    char bdig[AP_OCI_DIGEST_LEN + 1], name[600];
    int rc;

    memset(f, 0, sizeof *f);
    memset(&t, 0, sizeof t);
    memset(&bm, 0, sizeof bm);
    if ((rc = ap_oci_ref_parse(reference, &f->ref, err)) ||
        (rc = ap_reg_open(&f->ref, o, &f->reg, err)))
        return rc;
    snprintf(name, sizeof name, "%s", reference);
    if ((rc = ap_reg_manifest_get(f->reg, f->ref.digest[0] ? f->ref.digest : f->ref.tag, &top,
                                  &top_len, f->digest, err)) ||
        (rc = ap_oci_top_parse(name, top, top_len, &t, err)))
        goto out;
    if (t.is_index) {
        if ((rc = ap_reg_manifest_get(f->reg, t.bundle.digest, &bm_buf, &bm_len, bdig, err)))
            goto out;
        if (bm_len != t.bundle.size) {
            rc = ap_error_set(err, AP_ERR_CHECK, "registry '%s': bundle manifest %s has %zu bytes, "
                                                 "the index says %llu",
                              f->ref.host, bdig, bm_len, (unsigned long long)t.bundle.size);
            goto out;
        }
    } else {
        bm_buf = top;
        bm_len = top_len;
        top = NULL;
    }
    if ((rc = ap_oci_bundle_manifest_parse(name, bm_buf, bm_len, &bm, err)) ||
        (rc = ap_reg_blob_get_mem(f->reg, bm.lock.digest, bm.lock.size, &f->lock_buf,
                                  &f->lock_len, err)) ||
        0)
        goto out;
    for (size_t i = 0; i < bm.n_sigs; i++) {
        char *b = NULL;
        size_t l = 0;
        if ((rc = ap_reg_blob_get_mem(f->reg, bm.sigs[i].digest, bm.sigs[i].size, &b, &l, err)))
            goto out;
        snprintf(f->sigs[i].name, sizeof f->sigs[i].name, "%s", bm.sigs[i].path);
        memcpy(f->sigs[i].digest, bm.sigs[i].digest, sizeof f->sigs[i].digest);
        f->sigs[i].buf = b;
        f->sigs[i].len = l;
        f->n_sigs++;
    }
    if (keys && keys->n) {
        /* the signature first: an attacker without a trusted key never
         * reaches the lock parser */
        ap_signature sig;
        const ap_pubkey *signer = NULL;
        ap_error first;
        ap_error_clear(&first);
        rc = AP_ERR_CHECK;
        for (size_t i = 0; i < f->n_sigs && rc != AP_OK; i++) {
            ap_error e;
            ap_error_clear(&e);
            if ((rc = ap_signature_parse(f->sigs[i].name, f->sigs[i].buf, f->sigs[i].len, &sig,
                                         &e)) == AP_OK)
                rc = ap_signature_verify(&sig, keys, f->lock_buf, f->lock_len, &signer, &e);
            if (rc != AP_OK && i == 0)
                first = e;
        }
        if (rc != AP_OK) {
            rc = AP_ERR_CHECK;
            if (err) {
                *err = first;
                err->status = AP_ERR_CHECK;
                ap_error_prefix(err, "'%s': no trusted signature", name);
            }
            goto out;
        }
        f->signature_checked = 1;
    }
    if ((rc = ap_lock_parse(AP_LOCK_NAME, f->lock_buf, f->lock_len, &f->lock, err))) {
        if (rc == AP_ERR_INPUT)
            rc = AP_ERR_CHECK;
        ap_error_prefix(err, "'%s'", name);
        goto out;
    }
    if ((rc = ap_oci_bundle_check(name, &bm, f->lock, err)))
        goto out;
    if (t.is_index) {
        if (t.n_models != distinct_models(f->lock)) {
            rc = ap_error_set(err, AP_ERR_CHECK,
                              "registry index '%s' does not match the lock: %zu model artifacts "
                              "for %zu models",
                              name, t.n_models, distinct_models(f->lock));
            goto out;
        }
        for (size_t i = 0; i < t.n_models; i++) {
            char *mb = NULL;
            size_t ml = 0;
            char md[AP_OCI_DIGEST_LEN + 1];
            if ((rc = ap_reg_manifest_get(f->reg, t.models[i].digest, &mb, &ml, md, err)))
                goto out;
            rc = ml == t.models[i].size
                     ? ap_oci_model_check(name, mb, ml, t.model_names[i], f->lock, err)
                     : ap_error_set(err, AP_ERR_CHECK, "registry index '%s': model manifest %s "
                                                       "has another size", name, md);
            free(mb);
            if (rc)
                goto out;
        }
    }
out:
    free(top);
    free(bm_buf);
    ap_oci_top_release(&t);
    ap_oci_bundle_manifest_release(&bm);
    if (rc != AP_OK) {
        ap_oci_fetch_close(f);
        memset(f, 0, sizeof *f);
    }
    return rc;
}

struct streamer {
    ap_oci_fetch *f;
    ap_sha256 *h;
    ap_tar_put_fn put;
    void *put_ctx;
    uint64_t done;
};

static int blob_sink(void *ctx, const void *buf, size_t len, ap_error *err)
{
    struct streamer *s = ctx;
    int rc;
    if (s->h && ap_sha256_update(s->h, buf, len) != AP_OK)
        return ap_error_set(err, AP_ERR_INTERNAL, "sha256 failed");
    if ((rc = s->put(s->put_ctx, buf, len, err)))
        return rc;
    s->done += len;
    if (s->f->progress)
        s->f->progress(s->f->progress_ctx, s->done, s->f->lock->total_bytes);
    return AP_OK;
}

static int fill(void *ctx, size_t i, const ap_artifact *a, ap_tar_put_fn put, void *put_ctx,
                ap_error *err)
{
    struct streamer *s = ctx;
    char dg[AP_OCI_DIGEST_LEN + 1];
    int rc;
    (void)i;
    memcpy(dg, "sha256:", 7);
    ap_hex_encode(a->sha256, AP_SHA256_LEN, dg + 7);
    s->put = put;
    s->put_ctx = put_ctx;
    if (s->h && ap_sha256_reset(s->h) != AP_OK)
        return ap_error_set(err, AP_ERR_INTERNAL, "sha256 failed");
    if ((rc = ap_reg_blob_get(s->f->reg, dg, a->size, blob_sink, s, err)))
        return rc;
    if (s->h) {
        uint8_t h[AP_SHA256_LEN];
        char hex[AP_SHA256_HEX_LEN + 1];
        if (ap_sha256_final(s->h, h) != AP_OK)
            return ap_error_set(err, AP_ERR_INTERNAL, "sha256 failed");
        if (memcmp(h, a->sha256, AP_SHA256_LEN) != 0) {
            ap_hex_encode(h, AP_SHA256_LEN, hex);
            return ap_error_set(err, AP_ERR_CHECK,
                                "registry '%s' served other bytes for artifact '%s' (blob %s "
                                "hashes to sha256:%s): sha256 mismatch",
                                s->f->ref.host, a->path, dg, hex);
        }
    }
    return AP_OK;
}

int ap_oci_fetch_stream(ap_oci_fetch *f, int hash, ap_tar_out_fn out, void *out_ctx,
                        ap_error *err)
{
    struct streamer s;
    int rc;
    memset(&s, 0, sizeof s);
    s.f = f;
    if (hash && !(s.h = ap_sha256_new()))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    rc = ap_tar_rebuild(f->lock_buf, f->lock_len, f->sigs, f->n_sigs, f->lock, fill, &s, out,
                        out_ctx, err);
    ap_sha256_free(s.h);
    return rc;
}

/* ---- pull into a file ---- */

struct fileout {
    int fd;
    const char *tmp;
};

static int write_all(int fd, const void *buf, size_t len, int sock)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = sock ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int file_out(void *ctx, const void *buf, size_t len, int is_data, ap_error *err)
{
    struct fileout *o = ctx;
    int e;
    (void)is_data;
    if ((e = write_all(o->fd, buf, len, 0)))
        return ap_error_errno(err, AP_ERR_IO, e, "cannot write", o->tmp);
    return AP_OK;
}

int ap_oci_pull(ap_oci_fetch *f, const char *output, ap_error *err)
{
    char *dir = ap_path_dirname(output), *tmp = NULL;
    const char *base = strrchr(output, '/');
    struct fileout o = {-1, NULL};
    int rc;

    base = base ? base + 1 : output;
    if (!dir)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (!*base) {
        free(dir);
        return ap_error_set(err, AP_ERR_INPUT, "'%s' is not a file name", output);
    }
    if (asprintf(&tmp, "%s/.%s.XXXXXX.tmp", dir, base) < 0) {
        free(dir);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    {
        /* no signal between creating the file and registering it for cleanup */
        sigset_t block, saved;
        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGHUP);
        sigaddset(&block, SIGQUIT);
        pthread_sigmask(SIG_BLOCK, &block, &saved);
        o.fd = mkostemps(tmp, 4, O_CLOEXEC);
        if (o.fd >= 0)
            ap_bundle_tmp_register(tmp);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
    }
    o.tmp = tmp;
    if (o.fd < 0) {
        rc = ap_error_errno(err, errno == ENOENT ? AP_ERR_INPUT : AP_ERR_IO, errno,
                            "cannot create a temporary file in", dir);
        free(tmp);
        free(dir);
        return rc;
    }
    rc = fchmod(o.fd, 0644) == 0 ? AP_OK : ap_error_errno(err, AP_ERR_IO, errno, "chmod", tmp);
    if (rc == AP_OK)
        rc = ap_oci_fetch_stream(f, 1, file_out, &o, err);
    if (rc == AP_OK && fsync(o.fd) != 0)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
    if (close(o.fd) != 0 && rc == AP_OK)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
    if (rc == AP_OK && rename(tmp, output) != 0)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename the bundle to", output);
    if (rc != AP_OK)
        unlink(tmp);
    ap_bundle_tmp_unregister();
    if (rc == AP_OK)
        rc = ap_fsync_dir_of(output, err);
    free(tmp);
    free(dir);
    return rc;
}

/* ---- a socket for install ---- */

struct ap_oci_stream {
    ap_oci_fetch *f;
    int fd;                         /* the writing end (the thread's) */
    pthread_t tid;
    int rc;
    ap_error err;
};

static int sock_out(void *ctx, const void *buf, size_t len, int is_data, ap_error *err)
{
    struct ap_oci_stream *s = ctx;
    int e;
    (void)is_data;
    if ((e = write_all(s->fd, buf, len, 1)))
        return ap_error_set(err, AP_ERR_IO,
                            "the bundle reader stopped (%s)", strerror(e));
    return AP_OK;
}

static void *stream_main(void *arg)
{
    struct ap_oci_stream *s = arg;
    s->rc = ap_oci_fetch_stream(s->f, 0, sock_out, s, &s->err);
    shutdown(s->fd, SHUT_WR);
    close(s->fd);
    s->fd = -1;
    return NULL;
}

int ap_oci_stream_start(ap_oci_fetch *f, int *fd, ap_oci_stream **out, ap_error *err)
{
    int sv[2];
    struct ap_oci_stream *s = calloc(1, sizeof *s);
    if (!s)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        free(s);
        return ap_error_errno(err, AP_ERR_IO, errno, "socketpair", "bundle stream");
    }
    s->f = f;
    s->fd = sv[1];
    ap_error_clear(&s->err);
    if (pthread_create(&s->tid, NULL, stream_main, s) != 0) {
        close(sv[0]);
        close(sv[1]);
        free(s);
        return ap_error_set(err, AP_ERR_INTERNAL, "cannot start the download thread");
    }
    *fd = sv[0];
    *out = s;
    return AP_OK;
}

int ap_oci_stream_finish(ap_oci_stream *s, ap_error *err)
{
    int rc;
    pthread_join(s->tid, NULL);
    rc = s->rc;
    if (rc != AP_OK && err)
        *err = s->err;
    free(s);
    return rc;
}
