/*
 * digest.c - streaming SHA-256 with OpenSSL EVP (see digest.h).
 */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

struct ap_sha256 {
    EVP_MD_CTX *ctx;
};

ap_sha256 *ap_sha256_new(void)
{
    ap_sha256 *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        ap_sha256_free(h);
        return NULL;
    }
    return h;
}

int ap_sha256_update(ap_sha256 *h, const void *data, size_t len)
{
    return EVP_DigestUpdate(h->ctx, data, len) == 1 ? AP_OK : AP_ERR_INTERNAL;
}

int ap_sha256_final(ap_sha256 *h, uint8_t out[AP_SHA256_LEN])
{
    unsigned n = 0;
    return EVP_DigestFinal_ex(h->ctx, out, &n) == 1 && n == AP_SHA256_LEN ? AP_OK : AP_ERR_INTERNAL;
}

int ap_sha256_reset(ap_sha256 *h)
{
    return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? AP_OK : AP_ERR_INTERNAL;
}

int ap_sha256_copy(ap_sha256 *dst, const ap_sha256 *src)
{
    return EVP_MD_CTX_copy_ex(dst->ctx, src->ctx) == 1 ? AP_OK : AP_ERR_INTERNAL;
}

void ap_sha256_free(ap_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int ap_sha256_buffer(const void *data, size_t len, uint8_t out[AP_SHA256_LEN])
{
    unsigned n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 ? AP_OK : AP_ERR_INTERNAL;
}

int ap_sha256_file(const char *path, int follow, uint8_t out[AP_SHA256_LEN], uint64_t *size,
                   ap_error *err)
{
    int fd, rc = AP_OK;
    uint8_t *buf = NULL;
    uint64_t total = 0;
    struct stat st;
    EVP_MD_CTX *ctx = NULL;
    unsigned n = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    if (fd < 0)
        return ap_error_errno(err, errno == ENOENT ? AP_ERR_INPUT : AP_ERR_IO, errno,
                              "cannot open", path);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "not a regular file");
        goto out;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    buf = malloc(AP_DIGEST_BLOCK);
    ctx = EVP_MD_CTX_new();
    if (!buf || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory hashing '%s'", path);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf, AP_DIGEST_BLOCK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot read", path);
            goto out;
        }
        if (r == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)r) != 1) {
            rc = ap_error_set(err, AP_ERR_INTERNAL, "sha-256 failed on '%s'", path);
            goto out;
        }
        total += (uint64_t)r;
    }
    if (EVP_DigestFinal_ex(ctx, out, &n) != 1) {
        rc = ap_error_set(err, AP_ERR_INTERNAL, "sha-256 failed on '%s'", path);
        goto out;
    }
    if (size)
        *size = total;
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return rc;
}

int ap_sha256_file_hex(const char *path, int follow, char out[AP_SHA256_HEX_LEN + 1],
                       uint64_t *size, ap_error *err)
{
    uint8_t d[AP_SHA256_LEN];
    int rc = ap_sha256_file(path, follow, d, size, err);
    if (rc == AP_OK)
        ap_hex_encode(d, sizeof d, out);
    return rc;
}
