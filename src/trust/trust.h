/*
 * trust.h - the site trust file, trust.json (docs/trust.md).
 *
 * A versioned, expiring list of named minisign public keys with two roles
 * and their thresholds: "bundles" (k distinct keys must sign a bundle's
 * lock) and "root" (m distinct keys must sign the next version of the trust
 * file, TUF-style), plus revoked key ids (a revoked key counts for no
 * role). The document:
 *   {"format": "airpack-trust/1",
 *    "signed": {"version": N, "expires": "YYYY-MM-DDTHH:MM:SSZ",
 *               "keys": [{"id": KEYID, "name": NAME, "public_key": BASE64}],
 *               "roles": {"bundles": {"threshold": K, "keys": [KEYID...]},
 *                         "root": {"threshold": M, "keys": [KEYID...]}},
 *               "revoked": [KEYID...]},
 *    "signatures": [MINISIGN SIGNATURE TEXT...]}
 * Each signature is a stock minisign signature (prehashed "ED") of the
 * canonical bytes of "signed": jansson's compact form with sorted keys,
 * ASCII only (ap_trust_signed_bytes), which `jq -jcS .signed` also prints.
 * The parser treats its input as hostile: size, counts and strings are
 * capped, duplicate keys refused, unknown keys refused.
 */
#ifndef AIRPACK_TRUST_TRUST_H
#define AIRPACK_TRUST_TRUST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sign.h"

#define AP_TRUST_FORMAT "airpack-trust/1"
#define AP_TRUST_MAX_BYTES (1u << 20)   /* the trust file */
#define AP_TRUST_MAX_KEYS 256
#define AP_TRUST_MAX_SIGS 64
#define AP_TRUST_MAX_REVOKED 4096
#define AP_TRUST_NAME_MAX 64            /* bytes of a key's name */
#define AP_TRUST_ENTRY "trust.json"     /* its name in a bundle and in PREFIX/.airpack/ */

enum { AP_TRUST_ROLE_BUNDLES = 1, AP_TRUST_ROLE_ROOT = 2 };

typedef struct ap_trust_key {
    char id[17];                        /* 16 uppercase hex digits */
    char name[AP_TRUST_NAME_MAX + 1];
    ap_pubkey pk;
    unsigned roles;                     /* AP_TRUST_ROLE_* bits */
    int revoked;
} ap_trust_key;

typedef struct ap_trust {
    char source[256];                   /* file, for messages */
    uint64_t version;                   /* >= 1 */
    char expires[32];                   /* RFC 3339 UTC */
    ap_trust_key *keys;
    size_t n_keys;
    size_t threshold_bundles, threshold_root; /* >= 1 */
    char (*revoked)[17];                /* revoked key ids (may name keys not in keys) */
    size_t n_revoked;
    ap_signature *sigs;                 /* the file's signatures, parsed */
    size_t n_sigs;
    char **sig_texts;                   /* and their text */
    json_t *doc;                        /* the whole document */
    char *signed_bytes;                 /* canonical bytes of "signed" */
    size_t signed_len;
    uint8_t sha256[32];                 /* of the file's bytes as read */
    char *raw;                          /* the file's bytes as read (parse), or NULL */
    size_t raw_len;
} ap_trust;

/* Parse a trust file's bytes (name for messages). AP_ERR_INPUT with line
 * and column for malformed JSON or a broken rule. Signatures are parsed,
 * not checked. */
int ap_trust_parse(const char *name, const char *buf, size_t len, ap_trust **out,
                   ap_error *err) AP_WUR;
int ap_trust_load(const char *path, ap_trust **out, ap_error *err) AP_WUR;
void ap_trust_free(ap_trust *t);

/* A new unsigned document: version, expires, empty roles with thresholds. */
int ap_trust_new(uint64_t version, const char *expires, size_t k, size_t m, ap_trust **out,
                 ap_error *err) AP_WUR;
/* Edits (of "signed"); each drops the signatures, which no longer hold. */
int ap_trust_add_key(ap_trust *t, const ap_pubkey *pk, const char *name, unsigned roles,
                     ap_error *err) AP_WUR;
int ap_trust_revoke(ap_trust *t, const char *keyid, ap_error *err) AP_WUR;
int ap_trust_set(ap_trust *t, uint64_t version, const char *expires, size_t k, size_t m,
                 ap_error *err) AP_WUR; /* 0 / NULL: keep */
/* Add (or replace) the signature of sk over the canonical bytes. */
int ap_trust_sign(ap_trust *t, const ap_seckey *sk, ap_error *err) AP_WUR;
/* The file's text (2-space indented, a trailing newline); caller frees. */
int ap_trust_dump(const ap_trust *t, char **buf, size_t *len, ap_error *err) AP_WUR;
/* Write it atomically (temporary file, fsync, rename, fsync folder). */
int ap_trust_save(const ap_trust *t, const char *path, ap_error *err) AP_WUR;
int ap_trust_write_bytes(const char *path, const void *buf, size_t len, ap_error *err) AP_WUR;

const ap_trust_key *ap_trust_find(const ap_trust *t, const uint8_t keyid[AP_KEYID_LEN]);
/* Every key of the file (revoked ones too) as a ring, to check signatures. */
int ap_trust_keyring(const ap_trust *t, ap_keyring *kr, ap_error *err) AP_WUR;
/* 1 when the key may sign for role (in the role and not revoked). */
int ap_trust_counts(const ap_trust_key *k, unsigned role);
/* 1 when the file expired (0 not, -1 unreadable date). */
int ap_trust_expired(const ap_trust *t);

/* How the signatures over msg count for role under t: each signature whose
 * key t knows must verify (else AP_ERR_CHECK: a forged or misplaced
 * signature); distinct unrevoked keys of the role are counted. *found gets
 * the count; desc (if given) a list "name (KEYID), ..." of the signers with
 * why each did or did not count. */
int ap_trust_count_sigs(const ap_trust *t, unsigned role, const ap_signature *sigs, size_t n,
                        const void *msg, size_t len, size_t *found, char *desc, size_t desc_len,
                        ap_error *err) AP_WUR;

/* The file is signed by a threshold of its own root keys and not expired. */
int ap_trust_check_self(const ap_trust *t, ap_error *err) AP_WUR;
/* next may replace cur: higher version, not expired, signed by cur's root
 * threshold and by its own. AP_ERR_CHECK with the reason otherwise. */
int ap_trust_check_rotation(const ap_trust *cur, const ap_trust *next, ap_error *err) AP_WUR;

/* JSON description for `trust show` and reports. New reference. */
json_t *ap_trust_describe(const ap_trust *t);

#endif

/* ---- the trust file of an install prefix (site.c) ---- */

#define AP_TRUST_PREFIX_FILE ".airpack/trust.json"   /* under PREFIX */
#define AP_TRUST_HISTORY_DIR ".airpack/trust-history" /* PREFIX/...: <version>.json */

/* The trust file that governs prefix, given the operator's --trust file
 * (NULL: none). *installed is PREFIX/.airpack/trust.json or NULL. *eff is
 * what install/verify use: the given file when there is no installed one
 * (it must hold its own root threshold and not be expired) or when it is a
 * valid rotation of it (ap_trust_check_rotation); the installed one when
 * nothing or the same file was given; *record is 1 when *eff must be
 * recorded as the prefix's file. A given file that is older than, or as
 * old as but different from, the installed one is AP_ERR_CHECK (a
 * rollback). *eff and *installed may be the same object: free with
 * ap_trust_prefix_release. */
int ap_trust_for_prefix(const char *prefix, const char *given, ap_trust **installed,
                        ap_trust **eff, int *record, ap_error *err) AP_WUR;
void ap_trust_prefix_release(ap_trust *installed, ap_trust *eff);

/* A trust file carried in a bundle (its bytes, verified by the bundle's
 * hash) against the prefix's current file cur. sigs/n are the bundle's
 * signatures over lock. *apply is set when it must be recorded (a newer,
 * valid rotation that this bundle's signatures also satisfy); equal to cur:
 * nothing to do; anything else: AP_ERR_CHECK, the whole install refused. */
int ap_trust_carried(const ap_trust *cur, const char *name, const char *buf, size_t len,
                     const ap_signature *sigs, size_t n, const void *lock, size_t lock_len,
                     ap_trust **apply, ap_error *err) AP_WUR;

/* Record buf (a trust file of version v) as PREFIX/.airpack/trust.json,
 * atomically, with a copy in PREFIX/.airpack/trust-history/<v>.json. */
int ap_trust_record(const char *prefix, const char *buf, size_t len, uint64_t v,
                    ap_error *err) AP_WUR;
