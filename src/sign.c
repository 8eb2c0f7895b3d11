/*
 * sign.c - Ed25519 keys and signatures in minisign's file formats (see
 * sign.h), on libsodium.
 *
 * The binary layouts are minisign's, byte for byte:
 *   public key  (42 bytes):  "Ed" keyid[8] pk[32]
 *   secret key (158 bytes):  "Ed" kdf[2] "B2" salt[32] opslimit[8 LE] memlimit[8 LE]
 *                            keyid[8] sk[64] chk[32]
 *                            (the last 104 bytes XORed with scrypt(password) when
 *                            kdf is "Sc"; chk = BLAKE2b-256("Ed" keyid sk))
 *   signature   (74 bytes):  alg[2] keyid[8] sig[64]
 * Every file is "untrusted comment: ...\n" then one base64 line (plus the
 * trusted comment and global signature lines for a signature). Secret
 * material lives in sodium_malloc()ed memory and is wiped before release.
 * Untrusted inputs (key and signature files) are capped at AP_KEYFILE_MAX
 * bytes, and a hostile key's scrypt limits are capped before use.
 */
#include "sign.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define COMMENT_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX "trusted comment: "
#define SIG_UNTRUSTED_COMMENT "signature from airpack secret key"
#define SK_COMMENT "minisign encrypted secret key"

#define PK_BYTES 42
#define SIG_BYTES 74
#define SK_BYTES 158
/* Offsets in the secret key structure. */
#define SK_OFF_KDF 2
#define SK_OFF_CHKALG 4
#define SK_OFF_SALT 6
#define SK_OFF_OPS 38
#define SK_OFF_MEM 46
#define SK_OFF_KEYNUM 54            /* start of the encrypted part */
#define SK_OFF_SK 62
#define SK_OFF_CHK 126
#define SK_ENC_BYTES (SK_BYTES - SK_OFF_KEYNUM) /* 104 */
#define SK_SALT_BYTES 32
#define SK_CHK_BYTES 32

/* Caps on a key file's scrypt parameters: minisign's own ("sensitive")
 * values; a key asking for more is refused rather than run. */
#define SCRYPT_OPS_MAX ((uint64_t)crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE)
#define SCRYPT_MEM_MAX ((uint64_t)crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE)

#define KEYRING_MAX 1024            /* trusted keys in one ring */

struct ap_seckey {
    uint8_t keyid[AP_KEYID_LEN];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
};

static uint64_t le64_load(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void le64_store(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

void ap_keyid_hex(const uint8_t keyid[AP_KEYID_LEN], char out[17])
{
    snprintf(out, 17, "%016llX", (unsigned long long)le64_load(keyid));
}

/* Next line of [*p, end): sets *line and *n (without the line break) and
 * advances *p. Returns 0 when no input is left. */
static int next_line(const char **p, const char *end, const char **line, size_t *n)
{
    const char *s = *p, *e;
    if (s >= end)
        return 0;
    e = memchr(s, '\n', (size_t)(end - s));
    *line = s;
    if (!e) {
        *n = (size_t)(end - s);
        *p = end;
    } else {
        *n = (size_t)(e - s);
        *p = e + 1;
    }
    if (*n > 0 && s[*n - 1] == '\r')
        (*n)--;
    return 1;
}

static int starts_with(const char *s, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    return n >= pl && memcmp(s, prefix, pl) == 0;
}

/* Only blank lines may follow the last expected line. */
static int only_blank(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t')
            return 0;
    return 1;
}

/* Decode one base64 line of exactly want bytes into out. */
static int b64_exact(const char *s, size_t n, uint8_t *out, size_t want)
{
    size_t got = 0;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n > 4 * ((want + 2) / 3))
        return 0;
    if (sodium_base642bin(out, want, s, n, NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
        return 0;
    return got == want;
}

/* Base64 of in, "\n"-terminated, appended to buf at *pos (buf has room). */
static void b64_line(char *buf, size_t cap, size_t *pos, const uint8_t *in, size_t n)
{
    sodium_bin2base64(buf + *pos, cap - *pos, in, n, sodium_base64_VARIANT_ORIGINAL);
    *pos += strlen(buf + *pos);
    buf[(*pos)++] = '\n';
    buf[*pos] = '\0';
}

/* ---- public keys ------------------------------------------------------- */

int ap_pubkey_parse(const char *name, const char *buf, size_t len, ap_pubkey *out, ap_error *err)
{
    const char *p = buf, *end = buf + len, *line;
    size_t n;
    uint8_t raw[PK_BYTES];

    memset(out, 0, sizeof *out);
    snprintf(out->source, sizeof out->source, "%s", name ? name : "public key");
    if (len > AP_KEYFILE_MAX)
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "public key file is too large");
    if (memchr(buf, '\0', len))
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "not a minisign public key: NUL byte");
    if (!next_line(&p, end, &line, &n))
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "not a minisign public key: empty");
    if (starts_with(line, n, COMMENT_PREFIX)) {
        if (!next_line(&p, end, &line, &n))
            return ap_error_set_at(err, AP_ERR_INPUT, name, 2, 0,
                                   "not a minisign public key: missing key line");
    }
    if (!only_blank(p, end))
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                               "not a minisign public key: unexpected text after the key");
    if (!b64_exact(line, n, raw, sizeof raw))
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                               "not a minisign public key: bad base64 key line");
    if (memcmp(raw, "Ed", 2) != 0)
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                               "unsupported public key algorithm (expected 'Ed')");
    memcpy(out->keyid, raw + 2, AP_KEYID_LEN);
    memcpy(out->pk, raw + 2 + AP_KEYID_LEN, AP_PK_LEN);
    return AP_OK;
}

int ap_pubkey_load(const char *path, ap_pubkey *out, ap_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = ap_read_file(path, AP_KEYFILE_MAX, &buf, &len, err);
    if (rc != AP_OK)
        return rc;
    rc = ap_pubkey_parse(path, buf, len, out, err);
    free(buf);
    return rc;
}

static int keyring_push(ap_keyring *kr, const char *path, ap_error *err)
{
    ap_pubkey k, *nk;
    int rc = ap_pubkey_load(path, &k, err);
    if (rc != AP_OK)
        return rc;
    for (size_t i = 0; i < kr->n; i++)
        if (memcmp(kr->keys[i].keyid, k.keyid, AP_KEYID_LEN) == 0 &&
            memcmp(kr->keys[i].pk, k.pk, AP_PK_LEN) == 0)
            return AP_OK; /* the same key twice */
    if (kr->n >= KEYRING_MAX)
        return ap_error_set(err, AP_ERR_INPUT, "too many trusted keys (limit %d)", KEYRING_MAX);
    nk = realloc(kr->keys, (kr->n + 1) * sizeof *nk);
    if (!nk)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    kr->keys = nk;
    kr->keys[kr->n++] = k;
    return AP_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ap_keyring_add(ap_keyring *kr, const char *path_or_dir, ap_error *err)
{
    struct stat st;
    DIR *d = NULL;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = AP_OK;

    if (stat(path_or_dir, &st) != 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open public key", path_or_dir);
    if (!S_ISDIR(st.st_mode))
        return keyring_push(kr, path_or_dir, err);
    if (!(d = opendir(path_or_dir)))
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open folder", path_or_dir);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".pub") != 0 || de->d_name[0] == '.')
            continue;
        if (n >= KEYRING_MAX) {
            rc = ap_error_set(err, AP_ERR_INPUT, "folder '%s': too many public keys (limit %d)",
                              path_or_dir, KEYRING_MAX);
            goto out;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[n] = ap_path_join(path_or_dir, de->d_name))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    if (n == 0) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path_or_dir, 0, 0, "no '*.pub' key files in folder");
        goto out;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && rc == AP_OK; i++)
        rc = keyring_push(kr, names[i], err);
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (d)
        closedir(d);
    return rc;
}

void ap_keyring_release(ap_keyring *kr)
{
    if (!kr)
        return;
    free(kr->keys);
    kr->keys = NULL;
    kr->n = 0;
}

/* ---- secret keys ------------------------------------------------------- */

static void seckey_chk(const uint8_t *skbuf, uint8_t chk[SK_CHK_BYTES])
{
    crypto_generichash_state hs;
    crypto_generichash_init(&hs, NULL, 0U, SK_CHK_BYTES);
    crypto_generichash_update(&hs, skbuf, 2);
    crypto_generichash_update(&hs, skbuf + SK_OFF_KEYNUM, AP_KEYID_LEN);
    crypto_generichash_update(&hs, skbuf + SK_OFF_SK, crypto_sign_SECRETKEYBYTES);
    crypto_generichash_final(&hs, chk, SK_CHK_BYTES);
    sodium_memzero(&hs, sizeof hs);
}

/* Read and base64-decode a secret key file into raw (SK_BYTES of guarded
 * memory). Checks the algorithm ids; does not decrypt. */
static int seckey_read_raw(const char *path, uint8_t *raw, ap_error *err)
{
    char *buf = NULL;
    size_t len = 0, n;
    const char *p, *end, *line;
    int rc = ap_read_file(path, AP_KEYFILE_MAX, &buf, &len, err);
    if (rc != AP_OK)
        return rc;
    p = buf;
    end = buf + len;
    if (memchr(buf, '\0', len) || !next_line(&p, end, &line, &n) ||
        !starts_with(line, n, COMMENT_PREFIX)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 1, 0,
                             "not a minisign secret key: missing 'untrusted comment:' line");
        goto out;
    }
    if (!next_line(&p, end, &line, &n) || !b64_exact(line, n, raw, SK_BYTES) || !only_blank(p, end)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 2, 0,
                             "not a minisign secret key: bad base64 key line");
        goto out;
    }
    if (memcmp(raw, "Ed", 2) != 0) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "unsupported secret key algorithm (expected 'Ed')");
        goto out;
    }
    if (memcmp(raw + SK_OFF_CHKALG, "B2", 2) != 0) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "unsupported secret key checksum (expected 'B2')");
        goto out;
    }
    if (memcmp(raw + SK_OFF_KDF, "Sc", 2) != 0 && memcmp(raw + SK_OFF_KDF, "\0\0", 2) != 0) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "unsupported secret key derivation function");
        goto out;
    }
    rc = AP_OK;
out:
    if (buf) {
        sodium_memzero(buf, len);
        free(buf);
    }
    return rc;
}

int ap_seckey_file_encrypted(const char *path, ap_error *err)
{
    uint8_t *raw = sodium_malloc(SK_BYTES);
    int rc;
    if (!raw)
        return -ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    rc = seckey_read_raw(path, raw, err);
    if (rc == AP_OK)
        rc = memcmp(raw + SK_OFF_KDF, "Sc", 2) == 0 ? 1 : 0;
    else
        rc = -rc;
    sodium_free(raw);
    return rc;
}

int ap_seckey_load(const char *path, const char *password, ap_seckey **out, ap_error *err)
{
    uint8_t *raw = sodium_malloc(SK_BYTES), *stream = NULL;
    uint8_t chk[SK_CHK_BYTES];
    ap_seckey *sk = NULL;
    int rc;

    *out = NULL;
    if (!raw)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if ((rc = seckey_read_raw(path, raw, err)) != AP_OK)
        goto out;
    if (memcmp(raw + SK_OFF_KDF, "Sc", 2) == 0) {
        uint64_t ops = le64_load(raw + SK_OFF_OPS), mem = le64_load(raw + SK_OFF_MEM);
        if (!password) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "secret key is encrypted: a password is needed");
            goto out;
        }
        if (ops > SCRYPT_OPS_MAX || mem > SCRYPT_MEM_MAX || ops == 0 || mem == 0) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "secret key asks for scrypt limits beyond the caps "
                                 "(opslimit %llu, memlimit %llu bytes)",
                                 (unsigned long long)ops, (unsigned long long)mem);
            goto out;
        }
        if (!(stream = sodium_malloc(SK_ENC_BYTES))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (crypto_pwhash_scryptsalsa208sha256(stream, SK_ENC_BYTES, password, strlen(password),
                                               raw + SK_OFF_SALT, (unsigned long long)ops,
                                               (size_t)mem) != 0) {
            rc = ap_error_set_at(err, AP_ERR_NOMEM, path, 0, 0,
                                 "cannot derive the key from the password (out of memory?)");
            goto out;
        }
        for (size_t i = 0; i < SK_ENC_BYTES; i++)
            raw[SK_OFF_KEYNUM + i] ^= stream[i];
        seckey_chk(raw, chk);
        if (sodium_memcmp(chk, raw + SK_OFF_CHK, SK_CHK_BYTES) != 0) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "wrong password for the secret key");
            goto out;
        }
    } else if (!sodium_is_zero(raw + SK_OFF_CHK, SK_CHK_BYTES)) {
        /* Unencrypted: minisign leaves chk zero; airpack fills it. Check it when set. */
        seckey_chk(raw, chk);
        if (sodium_memcmp(chk, raw + SK_OFF_CHK, SK_CHK_BYTES) != 0) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "secret key checksum mismatch");
            goto out;
        }
    }
    if (!(sk = sodium_malloc(sizeof *sk))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(sk->keyid, raw + SK_OFF_KEYNUM, AP_KEYID_LEN);
    memcpy(sk->sk, raw + SK_OFF_SK, sizeof sk->sk);
    *out = sk;
    sk = NULL;
    rc = AP_OK;
out:
    sodium_memzero(chk, sizeof chk);
    if (stream)
        sodium_free(stream);
    sodium_free(raw);
    if (sk)
        sodium_free(sk);
    return rc;
}

void ap_seckey_free(ap_seckey *sk)
{
    if (sk)
        sodium_free(sk); /* sodium_free wipes the memory */
}

void ap_seckey_keyid(const ap_seckey *sk, uint8_t keyid[AP_KEYID_LEN])
{
    memcpy(keyid, sk->keyid, AP_KEYID_LEN);
}

/* Write the whole buffer to a newly created file; removes it on failure. */
static int write_new_file(const char *path, const char *data, size_t len, mode_t mode, int force,
                          ap_error *err)
{
    int fd, e;
    size_t off = 0;
    if (force && unlink(path) != 0 && errno != ENOENT)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot replace", path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            return ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                   "file exists; use --force to overwrite it");
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot create", path);
    }
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            goto fail;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        e = errno;
        goto fail;
    }
    if (close(fd) != 0) {
        e = errno;
        fd = -1;
        goto fail;
    }
    return AP_OK;
fail:
    if (fd >= 0)
        close(fd);
    unlink(path);
    return ap_error_errno(err, AP_ERR_IO, e, "cannot write", path);
}

int ap_keygen(const char *pub_path, const char *sec_path, const char *password, int force,
              ap_error *err)
{
    uint8_t *raw = sodium_malloc(SK_BYTES), *stream = NULL;
    char *sectext = NULL;
    size_t seccap = sizeof COMMENT_PREFIX + sizeof SK_COMMENT + 4 * ((SK_BYTES + 2) / 3) + 8;
    char pubtext[256], hexid[17];
    uint8_t pkraw[PK_BYTES];
    size_t pos = 0;
    int rc;

    if (!raw || !(sectext = sodium_malloc(seccap))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!force) {
        struct stat st;
        if (lstat(sec_path, &st) == 0) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, sec_path, 0, 0,
                                 "file exists; use --force to overwrite it");
            goto out;
        }
        if (lstat(pub_path, &st) == 0) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, pub_path, 0, 0,
                                 "file exists; use --force to overwrite it");
            goto out;
        }
    }
    memset(raw, 0, SK_BYTES);
    memcpy(raw, "Ed", 2);
    memcpy(raw + SK_OFF_KDF, password ? "Sc" : "\0\0", 2);
    memcpy(raw + SK_OFF_CHKALG, "B2", 2);
    randombytes_buf(raw + SK_OFF_KEYNUM, AP_KEYID_LEN);
    memcpy(pkraw, "Ed", 2);
    memcpy(pkraw + 2, raw + SK_OFF_KEYNUM, AP_KEYID_LEN);
    if (crypto_sign_keypair(pkraw + 2 + AP_KEYID_LEN, raw + SK_OFF_SK) != 0) {
        rc = ap_error_set(err, AP_ERR_INTERNAL, "cannot create a key pair");
        goto out;
    }
    seckey_chk(raw, raw + SK_OFF_CHK);
    if (password) {
        /* minisign's "sensitive" scrypt limits, halved while memory is short. */
        unsigned long long ops = crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE;
        size_t mem = crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE;
        if (!(stream = sodium_malloc(SK_ENC_BYTES))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        randombytes_buf(raw + SK_OFF_SALT, SK_SALT_BYTES);
        while (crypto_pwhash_scryptsalsa208sha256(stream, SK_ENC_BYTES, password, strlen(password),
                                                  raw + SK_OFF_SALT, ops, mem) != 0) {
            ops /= 2;
            mem /= 2;
            if (ops < crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_MIN ||
                mem < crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_MIN) {
                rc = ap_error_set(err, AP_ERR_NOMEM,
                                  "cannot derive a key from the password: out of memory");
                goto out;
            }
        }
        le64_store(raw + SK_OFF_OPS, ops);
        le64_store(raw + SK_OFF_MEM, mem);
        for (size_t i = 0; i < SK_ENC_BYTES; i++)
            raw[SK_OFF_KEYNUM + i] ^= stream[i];
    }
    pos = (size_t)snprintf(sectext, seccap, "%s%s\n", COMMENT_PREFIX, SK_COMMENT);
    b64_line(sectext, seccap, &pos, raw, SK_BYTES);

    ap_keyid_hex(pkraw + 2, hexid);
    {
        size_t ppos = (size_t)snprintf(pubtext, sizeof pubtext, "%sminisign public key %s\n",
                                       COMMENT_PREFIX, hexid);
        b64_line(pubtext, sizeof pubtext, &ppos, pkraw, PK_BYTES);
        if ((rc = write_new_file(sec_path, sectext, pos, 0600, force, err)) != AP_OK)
            goto out;
        if ((rc = write_new_file(pub_path, pubtext, ppos, 0644, force, err)) != AP_OK) {
            unlink(sec_path);
            goto out;
        }
    }
    rc = AP_OK;
out:
    if (stream)
        sodium_free(stream);
    if (raw)
        sodium_free(raw);
    if (sectext)
        sodium_free(sectext);
    return rc;
}

/* ---- signatures -------------------------------------------------------- */

static int comment_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\n' || s[i] == '\r' || s[i] == '\0')
            return 0;
    return 1;
}

int ap_sign(const ap_seckey *sk, const void *msg, size_t len, const char *trusted_comment,
            char **out, size_t *out_len, ap_error *err)
{
    uint8_t hash[crypto_generichash_BYTES_MAX];
    uint8_t sigraw[SIG_BYTES], global[AP_SIG_LEN];
    uint8_t *sig_tc = NULL;
    size_t tcl = strlen(trusted_comment), cap, pos = 0;
    char *text = NULL;
    int rc;

    *out = NULL;
    if (out_len)
        *out_len = 0;
    if (tcl > AP_TRUSTED_COMMENT_MAX || !comment_ok(trusted_comment, tcl))
        return ap_error_set(err, AP_ERR_INPUT,
                            "trusted comment is too long or holds a line break");
    if (crypto_generichash(hash, sizeof hash, msg, len, NULL, 0) != 0)
        return ap_error_set(err, AP_ERR_INTERNAL, "cannot hash the message");
    memcpy(sigraw, "ED", 2);
    memcpy(sigraw + 2, sk->keyid, AP_KEYID_LEN);
    crypto_sign_detached(sigraw + 2 + AP_KEYID_LEN, NULL, hash, sizeof hash, sk->sk);
    if (!(sig_tc = malloc(AP_SIG_LEN + tcl + 1))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(sig_tc, sigraw + 2 + AP_KEYID_LEN, AP_SIG_LEN);
    memcpy(sig_tc + AP_SIG_LEN, trusted_comment, tcl);
    crypto_sign_detached(global, NULL, sig_tc, AP_SIG_LEN + tcl, sk->sk);

    cap = sizeof COMMENT_PREFIX + sizeof SIG_UNTRUSTED_COMMENT + sizeof TRUSTED_PREFIX + tcl +
          4 * ((SIG_BYTES + 2) / 3) + 4 * ((AP_SIG_LEN + 2) / 3) + 16;
    if (!(text = malloc(cap))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    pos = (size_t)snprintf(text, cap, "%s%s\n", COMMENT_PREFIX, SIG_UNTRUSTED_COMMENT);
    b64_line(text, cap, &pos, sigraw, SIG_BYTES);
    memcpy(text + pos, TRUSTED_PREFIX, sizeof TRUSTED_PREFIX - 1);
    pos += sizeof TRUSTED_PREFIX - 1;
    memcpy(text + pos, trusted_comment, tcl);
    pos += tcl;
    text[pos++] = '\n';
    text[pos] = '\0';
    b64_line(text, cap, &pos, global, AP_SIG_LEN);
    *out = text;
    text = NULL;
    if (out_len)
        *out_len = pos;
    rc = AP_OK;
out:
    free(text);
    free(sig_tc);
    return rc;
}

int ap_signature_parse(const char *name, const char *buf, size_t len, ap_signature *out,
                       ap_error *err)
{
    const char *p = buf, *end = buf + len, *line;
    size_t n;
    uint8_t raw[SIG_BYTES];

    memset(out, 0, sizeof *out);
    if (len > AP_KEYFILE_MAX)
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "signature file is too large");
    if (memchr(buf, '\0', len))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "not a minisign signature: NUL byte");
    if (!next_line(&p, end, &line, &n) || !starts_with(line, n, COMMENT_PREFIX))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 1, 0,
                               "not a minisign signature: missing 'untrusted comment:' line");
    if (!next_line(&p, end, &line, &n) || !b64_exact(line, n, raw, sizeof raw))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 2, 0,
                               "not a minisign signature: bad base64 signature line");
    if (memcmp(raw, "ED", 2) != 0 && memcmp(raw, "Ed", 2) != 0)
        return ap_error_set_at(err, AP_ERR_CHECK, name, 2, 0, "unsupported signature algorithm");
    if (!next_line(&p, end, &line, &n) || !starts_with(line, n, TRUSTED_PREFIX))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 3, 0,
                               "not a minisign signature: missing 'trusted comment:' line");
    line += sizeof TRUSTED_PREFIX - 1;
    n -= sizeof TRUSTED_PREFIX - 1;
    if (n > AP_TRUSTED_COMMENT_MAX || !comment_ok(line, n))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 3, 0, "trusted comment is too long");
    memcpy(out->trusted_comment, line, n);
    out->trusted_comment[n] = '\0';
    if (!next_line(&p, end, &line, &n) || !b64_exact(line, n, out->global_sig, AP_SIG_LEN))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 4, 0,
                               "not a minisign signature: bad base64 global signature line");
    if (!only_blank(p, end))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 5, 0,
                               "not a minisign signature: unexpected text after the signature");
    memcpy(out->alg, raw, 2);
    out->alg[2] = '\0';
    memcpy(out->keyid, raw + 2, AP_KEYID_LEN);
    memcpy(out->sig, raw + 2 + AP_KEYID_LEN, AP_SIG_LEN);
    return AP_OK;
}

int ap_signature_verify(const ap_signature *sig, const ap_keyring *kr, const void *msg, size_t len,
                        const ap_pubkey **signer, ap_error *err)
{
    const ap_pubkey *k = NULL;
    uint8_t hash[crypto_generichash_BYTES_MAX];
    uint8_t *sig_tc = NULL;
    size_t tcl = strnlen(sig->trusted_comment, sizeof sig->trusted_comment);
    char hexid[17];
    int rc, ok;

    if (signer)
        *signer = NULL;
    ap_keyid_hex(sig->keyid, hexid);
    for (size_t i = 0; kr && i < kr->n; i++) {
        if (memcmp(kr->keys[i].keyid, sig->keyid, AP_KEYID_LEN) == 0) {
            k = &kr->keys[i];
            break;
        }
    }
    if (!k)
        return ap_error_set(err, AP_ERR_CHECK, "signed by key %s, which is not a trusted key", hexid);
    if (tcl > AP_TRUSTED_COMMENT_MAX)
        return ap_error_set(err, AP_ERR_CHECK, "trusted comment is too long");
    if (strcmp(sig->alg, "ED") == 0) {
        crypto_generichash(hash, sizeof hash, msg, len, NULL, 0);
        ok = crypto_sign_verify_detached(sig->sig, hash, sizeof hash, k->pk) == 0;
    } else if (strcmp(sig->alg, "Ed") == 0) {
        ok = crypto_sign_verify_detached(sig->sig, msg, len, k->pk) == 0;
    } else {
        return ap_error_set(err, AP_ERR_CHECK, "unsupported signature algorithm");
    }
    if (!ok)
        return ap_error_set(err, AP_ERR_CHECK, "signature verification failed (key %s from '%s')",
                            hexid, k->source);
    if (!(sig_tc = malloc(AP_SIG_LEN + tcl + 1)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    memcpy(sig_tc, sig->sig, AP_SIG_LEN);
    memcpy(sig_tc + AP_SIG_LEN, sig->trusted_comment, tcl);
    if (crypto_sign_verify_detached(sig->global_sig, sig_tc, AP_SIG_LEN + tcl, k->pk) != 0) {
        rc = ap_error_set(err, AP_ERR_CHECK, "trusted comment signature verification failed "
                                             "(key %s from '%s')", hexid, k->source);
        goto out;
    }
    if (signer)
        *signer = k;
    rc = AP_OK;
out:
    free(sig_tc);
    return rc;
}
