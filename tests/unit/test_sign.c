/*
 * test_sign.c - unit tests for src/sign.c: minisign key and signature
 * formats, encrypted keys (with cheap scrypt limits built here, so the
 * test stays fast), hostile key and signature files, key rings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sign.h"
#include "util.h"

static char tmpdir[256];

static char *tpath(const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
    return buf[i];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_sign.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    return sodium_init() < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[600];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Sign and verify a message with a fresh unencrypted key pair. */
static void test_roundtrip(void **state)
{
    ap_error err;
    ap_seckey *sk = NULL;
    ap_keyring kr = {0};
    ap_signature sig;
    const ap_pubkey *signer = NULL;
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    uint8_t id1[AP_KEYID_LEN];
    const char msg[] = "the lock document";
    (void)state;

    assert_int_equal(ap_keygen(tpath("a.pub"), tpath("a.key"), NULL, 0, &err), AP_OK);
    assert_int_equal(stat(tpath("a.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ap_seckey_file_encrypted(tpath("a.key"), &err), 0);
    assert_int_equal(ap_seckey_load(tpath("a.key"), NULL, &sk, &err), AP_OK);
    assert_int_equal(ap_keyring_add(&kr, tpath("a.pub"), &err), AP_OK);
    assert_int_equal(kr.n, 1);
    ap_seckey_keyid(sk, id1);
    assert_memory_equal(id1, kr.keys[0].keyid, AP_KEYID_LEN);

    assert_int_equal(ap_sign(sk, msg, strlen(msg), "file:airpack.lock.json\tname:x", &text, &len,
                             &err), AP_OK);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "\ntrusted comment: file:airpack.lock.json\tname:x\n"));
    assert_int_equal(ap_signature_parse("s", text, len, &sig, &err), AP_OK);
    assert_string_equal(sig.alg, "ED");
    assert_string_equal(sig.trusted_comment, "file:airpack.lock.json\tname:x");
    assert_int_equal(ap_signature_verify(&sig, &kr, msg, strlen(msg), &signer, &err), AP_OK);
    assert_ptr_equal(signer, &kr.keys[0]);

    /* A changed message, a changed trusted comment: both refused. */
    assert_int_equal(ap_signature_verify(&sig, &kr, "the lock documenT", strlen(msg), &signer, &err),
                     AP_ERR_CHECK);
    assert_non_null(strstr(err.msg, "signature verification failed"));
    sig.trusted_comment[0] = 'F';
    assert_int_equal(ap_signature_verify(&sig, &kr, msg, strlen(msg), &signer, &err), AP_ERR_CHECK);
    assert_non_null(strstr(err.msg, "trusted comment signature"));

    /* Existing files are refused without force, replaced with it. */
    assert_int_equal(ap_keygen(tpath("a.pub"), tpath("a.key"), NULL, 0, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "--force"));
    assert_int_equal(ap_keygen(tpath("a.pub"), tpath("a.key"), NULL, 1, &err), AP_OK);
    {
        ap_keyring kr2 = {0};
        assert_int_equal(ap_keyring_add(&kr2, tpath("a.pub"), &err), AP_OK);
        assert_int_equal(ap_signature_parse("s", text, len, &sig, &err), AP_OK);
        /* The old signature names a key that is no longer trusted. */
        assert_int_equal(ap_signature_verify(&sig, &kr2, msg, strlen(msg), NULL, &err),
                         AP_ERR_CHECK);
        assert_non_null(strstr(err.msg, "not a trusted key"));
        ap_keyring_release(&kr2);
    }
    free(text);
    ap_seckey_free(sk);
    ap_keyring_release(&kr);
}

/* Build an encrypted key in minisign's layout with cheap scrypt limits. */
static void make_encrypted_key(const char *path, const char *pw, uint64_t ops, uint64_t mem,
                               uint8_t pk_out[32], uint8_t keyid_out[8])
{
    uint8_t raw[158] = {0}, stream[104];
    char b64[400];
    FILE *f;
    crypto_generichash_state hs;
    memcpy(raw, "EdScB2", 6);
    randombytes_buf(raw + 6, 32);
    for (int i = 0; i < 8; i++) {
        raw[38 + i] = (uint8_t)(ops >> (8 * i));
        raw[46 + i] = (uint8_t)(mem >> (8 * i));
    }
    randombytes_buf(raw + 54, 8);
    memcpy(keyid_out, raw + 54, 8);
    crypto_sign_keypair(pk_out, raw + 62);
    crypto_generichash_init(&hs, NULL, 0, 32);
    crypto_generichash_update(&hs, raw, 2);
    crypto_generichash_update(&hs, raw + 54, 8);
    crypto_generichash_update(&hs, raw + 62, 64);
    crypto_generichash_final(&hs, raw + 126, 32);
    if (ops <= 33554432 && mem <= 1073741824)
        assert_int_equal(crypto_pwhash_scryptsalsa208sha256(stream, sizeof stream, pw, strlen(pw),
                                                            raw + 6, ops, (size_t)mem), 0);
    else
        memset(stream, 0, sizeof stream);
    for (size_t i = 0; i < sizeof stream; i++)
        raw[54 + i] ^= stream[i];
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "untrusted comment: minisign encrypted secret key\n%s\n", b64);
    fclose(f);
}

static void test_encrypted(void **state)
{
    ap_error err;
    ap_seckey *sk = NULL;
    uint8_t pk[32], id[8], id2[8];
    (void)state;

    make_encrypted_key(tpath("e.key"), "hunter2", 524288, 16777216, pk, id);
    assert_int_equal(ap_seckey_file_encrypted(tpath("e.key"), &err), 1);
    assert_int_equal(ap_seckey_load(tpath("e.key"), NULL, &sk, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "password is needed"));
    assert_int_equal(ap_seckey_load(tpath("e.key"), "hunter3", &sk, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "wrong password"));
    assert_null(sk);
    assert_int_equal(ap_seckey_load(tpath("e.key"), "hunter2", &sk, &err), AP_OK);
    ap_seckey_keyid(sk, id2);
    assert_memory_equal(id, id2, 8);
    {
        /* The decrypted key signs for its public key. */
        char *text = NULL, pubtext[200], b64[100];
        uint8_t praw[42];
        size_t len;
        ap_keyring kr = {0};
        ap_signature sig;
        memcpy(praw, "Ed", 2);
        memcpy(praw + 2, id, 8);
        memcpy(praw + 10, pk, 32);
        sodium_bin2base64(b64, sizeof b64, praw, sizeof praw, sodium_base64_VARIANT_ORIGINAL);
        snprintf(pubtext, sizeof pubtext, "untrusted comment: k\n%s\n", b64);
        write_text(tpath("e.pub"), pubtext);
        assert_int_equal(ap_keyring_add(&kr, tpath("e.pub"), &err), AP_OK);
        assert_int_equal(ap_sign(sk, "m", 1, "tc", &text, &len, &err), AP_OK);
        assert_int_equal(ap_signature_parse("s", text, len, &sig, &err), AP_OK);
        assert_int_equal(ap_signature_verify(&sig, &kr, "m", 1, NULL, &err), AP_OK);
        free(text);
        ap_keyring_release(&kr);
    }
    ap_seckey_free(sk);
    sk = NULL;

    /* A hostile key asking for 64 GiB of scrypt memory is refused before use. */
    make_encrypted_key(tpath("h.key"), "x", 524288, 1ull << 36, pk, id);
    assert_int_equal(ap_seckey_load(tpath("h.key"), "x", &sk, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "beyond the caps"));
    make_encrypted_key(tpath("h2.key"), "x", 1ull << 40, 16777216, pk, id);
    assert_int_equal(ap_seckey_load(tpath("h2.key"), "x", &sk, &err), AP_ERR_INPUT);
    assert_null(sk);
}

static void test_hostile_files(void **state)
{
    ap_error err;
    ap_pubkey pk;
    ap_signature sig;
    ap_seckey *sk = NULL;
    char *text = NULL, *bad;
    size_t len;
    (void)state;

    /* Public keys. */
    assert_int_equal(ap_pubkey_parse("p", "", 0, &pk, &err), AP_ERR_INPUT);
    assert_int_equal(ap_pubkey_parse("p", "untrusted comment: x\n", 21, &pk, &err), AP_ERR_INPUT);
    {
        const char *k = "untrusted comment: x\nRWQLSVq3yVVVGGoEzSlYBdJrLa7QPSH6psB8GFpJPJOyxj3EKznlJdvX\n";
        assert_int_equal(ap_pubkey_parse("p", k, strlen(k), &pk, &err), AP_OK);
        /* A bare base64 line works too (minisign -P). */
        assert_int_equal(ap_pubkey_parse("p", k + 21, strlen(k + 21), &pk, &err), AP_OK);
        char hex[17];
        ap_keyid_hex(pk.keyid, hex);
        assert_string_equal(hex, "185555C9B75A490B");
        const char *tr = "untrusted comment: x\nRWQLSVq3yVVVGGoEzSlYBdJrLa7QPSH6psB8GFpJPJOyxj3EKznlJdvX\nmore\n";
        assert_int_equal(ap_pubkey_parse("p", tr, strlen(tr), &pk, &err), AP_ERR_INPUT);
        const char *sh = "untrusted comment: x\nRWQLSVq3yVVVGGoEzSlYBdJrLa7QPSH6psB8GFpJPJOyxj3EKznlJd\n";
        assert_int_equal(ap_pubkey_parse("p", sh, strlen(sh), &pk, &err), AP_ERR_INPUT);
        /* Wrong algorithm ("Ex"). */
        const char *al = "untrusted comment: x\nRXgLSVq3yVVVGGoEzSlYBdJrLa7QPSH6psB8GFpJPJOyxj3EKznlJdvX\n";
        assert_int_equal(ap_pubkey_parse("p", al, strlen(al), &pk, &err), AP_ERR_INPUT);
        assert_non_null(strstr(err.msg, "algorithm"));
    }
    /* Secret keys. */
    write_text(tpath("bad.key"), "untrusted comment: x\nnot base64!!\n");
    assert_int_equal(ap_seckey_load(tpath("bad.key"), NULL, &sk, &err), AP_ERR_INPUT);
    assert_int_equal(ap_seckey_file_encrypted(tpath("bad.key"), &err), -AP_ERR_INPUT);
    write_text(tpath("bad2.key"), "no comment\n");
    assert_int_equal(ap_seckey_load(tpath("bad2.key"), NULL, &sk, &err), AP_ERR_INPUT);
    assert_int_equal(ap_seckey_load(tpath("missing.key"), NULL, &sk, &err), AP_ERR_INPUT);
    assert_null(sk);

    /* Signatures. */
    assert_int_equal(ap_keygen(tpath("s.pub"), tpath("s.key"), NULL, 0, &err), AP_OK);
    assert_int_equal(ap_seckey_load(tpath("s.key"), NULL, &sk, &err), AP_OK);
    assert_int_equal(ap_sign(sk, "m", 1, "bad\ncomment", &text, &len, &err), AP_ERR_INPUT);
    assert_int_equal(ap_sign(sk, "m", 1, "ok", &text, &len, &err), AP_OK);
    assert_int_equal(ap_signature_parse("s", text, len, &sig, &err), AP_OK);
    assert_int_equal(ap_signature_parse("s", text, len - 10, &sig, &err), AP_ERR_CHECK);
    bad = malloc(len + 16);
    memcpy(bad, text, len);
    memcpy(bad + len, "extra\n", 7);
    assert_int_equal(ap_signature_parse("s", bad, len + 6, &sig, &err), AP_ERR_CHECK);
    assert_non_null(strstr(err.msg, "unexpected text"));
    /* Unknown algorithm: "ED" -> "ET" (the base64 "RU" -> "RV"). */
    memcpy(bad, text, len + 1);
    {
        char *l2 = strchr(bad, '\n') + 1;
        assert_memory_equal(l2, "RU", 2);
        l2[1] = 'V';
    }
    assert_int_equal(ap_signature_parse("s", bad, len, &sig, &err), AP_ERR_CHECK);
    assert_non_null(strstr(err.msg, "algorithm"));
    /* An over-long trusted comment. */
    {
        char *tc = malloc(AP_TRUSTED_COMMENT_MAX + 2);
        char *t2 = NULL;
        memset(tc, 'a', AP_TRUSTED_COMMENT_MAX + 1);
        tc[AP_TRUSTED_COMMENT_MAX + 1] = '\0';
        assert_int_equal(ap_sign(sk, "m", 1, tc, &t2, &len, &err), AP_ERR_INPUT);
        tc[AP_TRUSTED_COMMENT_MAX] = '\0';
        assert_int_equal(ap_sign(sk, "m", 1, tc, &t2, &len, &err), AP_OK);
        assert_int_equal(ap_signature_parse("s", t2, len, &sig, &err), AP_OK);
        free(t2);
        free(tc);
    }
    free(bad);
    free(text);
    ap_seckey_free(sk);
}

/* A folder of keys, read in name order; a folder without keys is refused. */
static void test_keyring_dir(void **state)
{
    ap_error err;
    ap_keyring kr = {0};
    (void)state;
    assert_int_equal(mkdir(tpath("ring"), 0755), 0);
    assert_int_equal(ap_keyring_add(&kr, tpath("ring"), &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "no '*.pub'"));
    assert_int_equal(ap_keygen(tpath("ring/b.pub"), tpath("b.key"), NULL, 0, &err), AP_OK);
    assert_int_equal(ap_keygen(tpath("ring/c.pub"), tpath("c.key"), NULL, 0, &err), AP_OK);
    write_text(tpath("ring/notes.txt"), "not a key");
    assert_int_equal(ap_keyring_add(&kr, tpath("ring"), &err), AP_OK);
    assert_int_equal(kr.n, 2);
    assert_non_null(strstr(kr.keys[0].source, "b.pub"));
    /* Adding the same key again does not duplicate it. */
    assert_int_equal(ap_keyring_add(&kr, tpath("ring/b.pub"), &err), AP_OK);
    assert_int_equal(kr.n, 2);
    assert_int_equal(ap_keyring_add(&kr, tpath("ring/none.pub"), &err), AP_ERR_INPUT);
    ap_keyring_release(&kr);
    ap_keyring_release(NULL);
    ap_seckey_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_encrypted),
        cmocka_unit_test(test_hostile_files),
        cmocka_unit_test(test_keyring_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
