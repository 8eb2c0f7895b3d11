/*
 * cosign_parts.c - co-signing a split bundle in place (see cosign_parts.h).
 */

#include "trust/cosign_parts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "util.h"

int ap_parts_cosign_open(const char *path, ap_parts **idx, char **ipath, char **part1,
                         ap_error *err)
{
    char *ip = ap_parts_index_path(path), *dir = NULL, *p1 = NULL;
    ap_parts *x = NULL;
    uint8_t sha[AP_SHA256_LEN];
    uint64_t size = 0;
    int rc;

    *idx = NULL;
    *ipath = *part1 = NULL;
    if (!ip || !(dir = ap_path_dirname(ip))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (access(ip, F_OK) != 0) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, ip, 0, 0,
                             "no parts index beside the split bundle: a split bundle is signed "
                             "through its index (written by build --volume-size and split)");
        goto fail;
    }
    /* not verified here: the signer vouches for the bundle it signs */
    if ((rc = ap_parts_load(ip, NULL, 1, &x, err)) != AP_OK)
        goto fail;
    {
        const char *base = strrchr(ip, '/') ? strrchr(ip, '/') + 1 : ip;
        size_t bl = strlen(x->bundle);
        if (strncmp(base, x->bundle, bl) != 0 || strcmp(base + bl, AP_PARTS_SUFFIX) != 0) {
            rc = ap_error_set_at(err, AP_ERR_CHECK, ip, 0, 0,
                                 "the parts index names the bundle '%s', not this file's: "
                                 "rename it back to '%s%s' before signing",
                                 x->bundle, x->bundle, AP_PARTS_SUFFIX);
            goto fail;
        }
    }
    if (!(p1 = ap_path_join(dir, x->parts[0].file))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = ap_sha256_file(p1, 0, sha, &size, err)) != AP_OK)
        goto fail;
    if (size != x->parts[0].size || memcmp(sha, x->parts[0].sha256, AP_SHA256_LEN) != 0) {
        rc = ap_error_set_at(err, AP_ERR_CHECK, p1, 0, 0,
                             "part 1 does not match the parts index '%s' (%s): check the parts "
                             "with 'airpack verify --parts' before signing",
                             ip, size != x->parts[0].size ? "size differs" : "sha256 differs");
        goto fail;
    }
    free(dir);
    *idx = x;
    *ipath = ip;
    *part1 = p1;
    return AP_OK;
fail:
    ap_parts_free(x);
    free(ip);
    free(dir);
    free(p1);
    return rc;
}

int ap_parts_cosign_write(const char *ipath, ap_parts *idx, const char *part1,
                          const ap_bundle_head *h, const ap_seckey *sk, uint64_t *grown,
                          ap_error *err)
{
    uint8_t sha[AP_SHA256_LEN];
    uint64_t head_len = 0, old = idx->parts[0].size, size = 0, limit = idx->volume_size;
    char *dir = NULL;
    int rc;

    *grown = 0;
    if (ap_sha256_buffer(h->lock, h->lock_len, sha) != AP_OK)
        return ap_error_set(err, AP_ERR_INTERNAL, "sha-256 failed");
    if (memcmp(sha, idx->lock_sha256, AP_SHA256_LEN) != 0)
        return ap_error_set_at(err, AP_ERR_CHECK, part1, 0, 0,
                               "the lock in part 1 is not the one the parts index '%s' names",
                               ipath);
    if (h->compressed)
        return ap_error_set_at(err, AP_ERR_CHECK, part1, 0, 0,
                               "a split zstd bundle cannot be co-signed in place: join the parts "
                               "(cat NAME.0* > NAME), sign, and split again");
    if (h->payload_off > old)
        return ap_error_set_at(err, AP_ERR_CHECK, part1, 0, 0,
                               "the bundle's head (%llu bytes) does not lie inside part 1 (%llu "
                               "bytes): join the parts, sign, and split again with a larger "
                               "--volume-size",
                               (unsigned long long)h->payload_off, (unsigned long long)old);
    if ((rc = ap_bundle_head_len(h, &head_len, err)) != AP_OK)
        return rc;
    if (head_len < h->payload_off)
        return ap_error_set(err, AP_ERR_INTERNAL, "the new head is shorter than the old one");
    size = old - h->payload_off + head_len;
    if (size > limit) {
        /* part 1 full with no co-signature yet: there never was a reserve */
        if (idx->n > 1 && old >= limit && h->n_sigs <= 2)
            return ap_error_set_at(
                err, AP_ERR_CHECK, ipath, 0, 0,
                "the parts were written without a signature reserve (part 1 already holds "
                "the volume size, %llu bytes: an older airpack, or split --reserve 0), so a "
                "signature would move every part: join the parts (cat NAME.0* > NAME), sign, "
                "and split again",
                (unsigned long long)limit);
        return ap_error_set_at(err, AP_ERR_CHECK, ipath, 0, 0,
                               "the signature reserve of part 1 is full: the new signature "
                               "needs %llu bytes, %llu are left (part 1 holds %llu of the "
                               "volume size %llu bytes); join the parts, sign, and split again "
                               "with a larger --volume-size",
                               (unsigned long long)(head_len - h->payload_off),
                               (unsigned long long)(limit - old), (unsigned long long)old,
                               (unsigned long long)limit);
    }
    /* part 1: a new file beside it, renamed over it (ap_bundle_head_write) */
    if ((rc = ap_bundle_head_write(part1, part1, h, err)) != AP_OK)
        return rc;
    if ((rc = ap_sha256_file(part1, 0, idx->parts[0].sha256, &size, err)) != AP_OK)
        return rc;
    if (size != old - h->payload_off + head_len)
        return ap_error_set_at(err, AP_ERR_IO, part1, 0, 0,
                               "part 1 has %llu bytes after rewriting, not %llu",
                               (unsigned long long)size,
                               (unsigned long long)(old - h->payload_off + head_len));
    idx->parts[0].size = size;
    idx->size = idx->size - old + size;
    if (!(dir = ap_path_dirname(ipath)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    rc = ap_parts_sign_write(dir, idx, sk, err);
    free(dir);
    if (rc != AP_OK) {
        ap_error_prefix(err, "part 1 was signed but the parts index was not rewritten (verify "
                             "--parts will name part 1)");
        return rc;
    }
    *grown = size - old;
    return AP_OK;
}
