/*
 * digest.h - streaming SHA-256 (OpenSSL EVP, hardware accelerated).
 *
 * Files are hashed in fixed 1 MiB blocks: memory use does not depend on the
 * file size. ap_sha256 is an incremental context for hashing while
 * writing or reading a stream (a tar entry being archived or extracted).
 */
#ifndef AIRPACK_DIGEST_H
#define AIRPACK_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define AP_SHA256_LEN 32
#define AP_SHA256_HEX_LEN 64
#define AP_DIGEST_BLOCK (1u << 20) /* bytes read per block */

typedef struct ap_sha256 ap_sha256;

/* New incremental context, or NULL when out of memory. */
ap_sha256 *ap_sha256_new(void);
int ap_sha256_update(ap_sha256 *h, const void *data, size_t len) AP_WUR;
/* Finish into out[32]; the context may then be reset with ap_sha256_reset. */
int ap_sha256_final(ap_sha256 *h, uint8_t out[AP_SHA256_LEN]) AP_WUR;
int ap_sha256_reset(ap_sha256 *h) AP_WUR;
/* Make dst continue where src is (src unchanged). */
int ap_sha256_copy(ap_sha256 *dst, const ap_sha256 *src) AP_WUR;
void ap_sha256_free(ap_sha256 *h);

/* One-shot hash of a memory buffer. */
int ap_sha256_buffer(const void *data, size_t len, uint8_t out[AP_SHA256_LEN]) AP_WUR;

/* Hash a regular file by streaming it; *size (if not NULL) gets its
 * length in bytes. Symlinks are followed only when follow is set.
 * Errors name the file (AP_ERR_INPUT when missing, AP_ERR_IO otherwise). */
int ap_sha256_file(const char *path, int follow, uint8_t out[AP_SHA256_LEN], uint64_t *size,
                   ap_error *err) AP_WUR;

/* Hash a file to lowercase hex (65 bytes with the NUL). */
int ap_sha256_file_hex(const char *path, int follow, char out[AP_SHA256_HEX_LEN + 1],
                       uint64_t *size, ap_error *err) AP_WUR;

#endif
