/*
 * cosign_parts.h - co-signing a split bundle in place
 * (docs/bundle-format.md, section 9, "Co-signing split parts").
 *
 * Build and split leave a signature reserve at the end of part 1
 * (AP_PARTS_SIG_RESERVE): part 1 is written shorter than volume_size, so a
 * co-signature entry added to the head makes part 1 grow while every other
 * part keeps its bytes, and `cat NAME.0*` stays the single-file bundle
 * signed the same way. Only part 1 (a new file written beside it, then
 * renamed over it) and the parts index with its signature (now by the
 * signer's key) are rewritten.
 */
#ifndef AIRPACK_TRUST_COSIGN_PARTS_H
#define AIRPACK_TRUST_COSIGN_PARTS_H

#include "error.h"
#include "parts.h"
#include "sign.h"
#include "trust/cosign.h"

/* For a split bundle path (NAME.parts, NAME.001 or NAME.0001): load the
 * parts index beside it (not verified: sign trusts the bundle it is given,
 * like `airpack sign` on a file), check that part 1 is present and has the
 * index's size and SHA-256. *idx, *ipath (the index's path) and *part1
 * (part 1's path) are the caller's. AP_ERR_INPUT when there is no index,
 * AP_ERR_CHECK when part 1 does not match it. */
int ap_parts_cosign_open(const char *path, ap_parts **idx, char **ipath, char **part1,
                         ap_error *err) AP_WUR;

/* Rewrite part 1 with h's head (h read from part 1 with
 * ap_bundle_head_read, a signature added) and sign the updated index with
 * sk. Refused (AP_ERR_CHECK, nothing written) when h's lock is not the one
 * the index names, when the bundle is compressed, when the head does not
 * lie inside part 1, when the parts were written without a reserve (part 1
 * already holds volume_size bytes) or when the new part 1 would exceed
 * volume_size (the reserve is full). *grown: bytes part 1 grew by. */
int ap_parts_cosign_write(const char *ipath, ap_parts *idx, const char *part1,
                          const ap_bundle_head *h, const ap_seckey *sk, uint64_t *grown,
                          ap_error *err) AP_WUR;

#endif
