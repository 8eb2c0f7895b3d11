/*
 * sign.h - Ed25519 keys and signatures in minisign's exact file formats.
 *
 * Implemented with libsodium; compatible with stock minisign both ways:
 *   public key file:  "untrusted comment: ...\n" base64("Ed" keyid[8] pk[32]) "\n"
 *   secret key file:  "untrusted comment: ...\n" base64("Ed" kdf[2] "B2" salt[32]
 *                     opslimit[8 LE] memlimit[8 LE] (keyid[8] sk[64] chk[32]) XOR
 *                     scrypt-stream) "\n"   (kdf "Sc" = scrypt, "\0\0" = none)
 *   signature file:   "untrusted comment: ...\n" base64(alg[2] keyid[8] sig[64]) "\n"
 *                     "trusted comment: TEXT\n" base64(global_sig[64]) "\n"
 *   alg "ED": sig = Ed25519(BLAKE2b-512(message)) (prehashed, minisign's default)
 *   alg "Ed": sig = Ed25519(message) (legacy)
 *   global_sig = Ed25519(sig[64] || TEXT)
 * Secret keys live in libsodium guarded memory and are wiped when freed.
 */
#ifndef AIRPACK_SIGN_H
#define AIRPACK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define AP_KEYID_LEN 8
#define AP_PK_LEN 32
#define AP_SIG_LEN 64
#define AP_TRUSTED_COMMENT_MAX 1024  /* bytes, without the NUL */
#define AP_KEYFILE_MAX 4096          /* key and signature files are small: cap */

typedef struct ap_pubkey {
    uint8_t keyid[AP_KEYID_LEN];
    uint8_t pk[AP_PK_LEN];
    char source[256];               /* file it came from, for messages */
} ap_pubkey;

typedef struct ap_keyring {
    ap_pubkey *keys;                /* trusted keys, n of them */
    size_t n;
} ap_keyring;

typedef struct ap_seckey ap_seckey;  /* opaque; guarded memory */

typedef struct ap_signature {
    char alg[3];                    /* "ED" (prehashed) or "Ed" (legacy), NUL-terminated */
    uint8_t keyid[AP_KEYID_LEN];
    uint8_t sig[AP_SIG_LEN];
    char trusted_comment[AP_TRUSTED_COMMENT_MAX + 1];
    uint8_t global_sig[AP_SIG_LEN];
} ap_signature;

/* Key id as minisign prints it: 16 uppercase hex digits of the
 * little-endian 64-bit number. out has 17 bytes. */
void ap_keyid_hex(const uint8_t keyid[AP_KEYID_LEN], char out[17]);

/* Parse a public key from a file's contents (or a bare base64 line). */
int ap_pubkey_parse(const char *name, const char *buf, size_t len, ap_pubkey *out,
                    ap_error *err) AP_WUR;
int ap_pubkey_load(const char *path, ap_pubkey *out, ap_error *err) AP_WUR;

/* Add a key file, or every *.pub file of a folder, to the ring. */
int ap_keyring_add(ap_keyring *kr, const char *path_or_dir, ap_error *err) AP_WUR;
void ap_keyring_release(ap_keyring *kr);

/* Load a secret key. password is NULL for an unencrypted key; an encrypted
 * key without a password, or a wrong password, is AP_ERR_INPUT. */
int ap_seckey_load(const char *path, const char *password, ap_seckey **out, ap_error *err) AP_WUR;
/* 1 when the key file at path is encrypted, 0 when not, <0 on error. */
int ap_seckey_file_encrypted(const char *path, ap_error *err);
void ap_seckey_free(ap_seckey *sk);
void ap_seckey_keyid(const ap_seckey *sk, uint8_t keyid[AP_KEYID_LEN]);

/* Write a new key pair. password NULL: unencrypted secret key. The secret
 * file is created with O_EXCL and mode 0600; existing files are refused
 * unless force. */
int ap_keygen(const char *pub_path, const char *sec_path, const char *password, int force,
              ap_error *err) AP_WUR;

/* Sign msg with the prehashed ED algorithm. *out is a new NUL-terminated
 * minisign signature file text (caller frees). */
int ap_sign(const ap_seckey *sk, const void *msg, size_t len, const char *trusted_comment,
            char **out, size_t *out_len, ap_error *err) AP_WUR;

/* Parse signature file text; unknown algorithms are refused. */
int ap_signature_parse(const char *name, const char *buf, size_t len, ap_signature *out,
                       ap_error *err) AP_WUR;

/* Check sig over msg against the trusted keys: AP_OK and *signer set, or
 * AP_ERR_CHECK (unknown key, bad signature, bad trusted comment signature). */
int ap_signature_verify(const ap_signature *sig, const ap_keyring *kr, const void *msg, size_t len,
                        const ap_pubkey **signer, ap_error *err) AP_WUR;

#endif
