/*
 * test_trust.c - unit tests for src/trust/trust.c and site.c: the trust
 * file's parser on hostile input, the canonical bytes, thresholds (distinct,
 * in role, unrevoked), self-validity, expiry and rotation. Keys are made
 * here (ap_keygen, unencrypted, in a temporary folder).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sign.h"
#include "trust/trust.h"
#include "util.h"

static char tmpdir[256];
static ap_seckey *sk[4];
static ap_pubkey pk[4];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/airpack-test-trust-XXXXXX");
    if (!mkdtemp(tmpdir) || sodium_init() < 0)
        return -1;
    for (int i = 0; i < 4; i++) {
        char p[512], s[512];
        ap_error e;
        snprintf(p, sizeof p, "%s/k%d.pub", tmpdir, i);
        snprintf(s, sizeof s, "%s/k%d.key", tmpdir, i);
        if (ap_keygen(p, s, NULL, 0, &e) != AP_OK || ap_seckey_load(s, NULL, &sk[i], &e) != AP_OK ||
            ap_pubkey_load(p, &pk[i], &e) != AP_OK)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    for (int i = 0; i < 4; i++)
        ap_seckey_free(sk[i]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* k0, k1 bundles (threshold 2); k2, k3 root (threshold 2); signed by both roots. */
static ap_trust *make(uint64_t version, const char *expires)
{
    ap_trust *t = NULL;
    ap_error e;
    assert_int_equal(ap_trust_new(version, expires, 2, 2, &t, &e), AP_OK);
    assert_int_equal(ap_trust_add_key(t, &pk[0], "build", AP_TRUST_ROLE_BUNDLES, &e), AP_OK);
    assert_int_equal(ap_trust_add_key(t, &pk[1], "compliance", AP_TRUST_ROLE_BUNDLES, &e), AP_OK);
    assert_int_equal(ap_trust_add_key(t, &pk[2], "root-a", AP_TRUST_ROLE_ROOT, &e), AP_OK);
    assert_int_equal(ap_trust_add_key(t, &pk[3], "root-b", AP_TRUST_ROLE_ROOT, &e), AP_OK);
    assert_int_equal(ap_trust_sign(t, sk[2], &e), AP_OK);
    assert_int_equal(ap_trust_sign(t, sk[3], &e), AP_OK);
    return t;
}

static ap_trust *reload(const ap_trust *t)
{
    char *buf = NULL;
    size_t len = 0;
    ap_trust *u = NULL;
    ap_error e;
    assert_int_equal(ap_trust_dump(t, &buf, &len, &e), AP_OK);
    assert_int_equal(ap_trust_parse("t.json", buf, len, &u, &e), AP_OK);
    free(buf);
    return u;
}

static void test_roundtrip_and_self(void **state)
{
    ap_trust *t = make(1, "2099-01-01T00:00:00Z"), *u = reload(t);
    ap_error e;
    (void)state;
    assert_int_equal(u->version, 1);
    assert_int_equal(u->n_keys, 4);
    assert_int_equal(u->threshold_bundles, 2);
    assert_int_equal(u->n_sigs, 2);
    assert_int_equal(ap_trust_check_self(u, &e), AP_OK);
    /* canonical bytes: compact, sorted, the same after a reload */
    assert_int_equal(u->signed_len, t->signed_len);
    assert_memory_equal(u->signed_bytes, t->signed_bytes, t->signed_len);
    assert_non_null(strstr(u->signed_bytes, "{\"expires\":\"2099-01-01T00:00:00Z\",\"keys\":["));
    ap_trust_free(t);
    ap_trust_free(u);
}

static void test_threshold_counting(void **state)
{
    ap_trust *t = make(1, "2099-01-01T00:00:00Z");
    static const char lock[] = "lock bytes", other[] = "another lock";
    ap_signature s[4];
    char *txt;
    size_t n, found;
    char desc[512];
    ap_error e;
    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ap_sign(sk[i == 2 ? 0 : i], lock, sizeof lock - 1, "c", &txt, &n, &e), AP_OK);
        assert_int_equal(ap_signature_parse("s", txt, n, &s[i], &e), AP_OK);
        free(txt);
    }
    /* one signer of two */
    assert_int_equal(ap_trust_count_sigs(t, AP_TRUST_ROLE_BUNDLES, s, 1, lock, sizeof lock - 1,
                                         &found, desc, sizeof desc, &e), AP_OK);
    assert_int_equal(found, 1);
    /* k0 twice counts once */
    s[1] = s[2];
    assert_int_equal(ap_trust_count_sigs(t, AP_TRUST_ROLE_BUNDLES, s, 2, lock, sizeof lock - 1,
                                         &found, desc, sizeof desc, &e), AP_OK);
    assert_int_equal(found, 1);
    assert_non_null(strstr(desc, "duplicate"));
    /* a root key does not count for bundles */
    assert_int_equal(ap_sign(sk[2], lock, sizeof lock - 1, "c", &txt, &n, &e), AP_OK);
    assert_int_equal(ap_signature_parse("s", txt, n, &s[1], &e), AP_OK);
    free(txt);
    assert_int_equal(ap_trust_count_sigs(t, AP_TRUST_ROLE_BUNDLES, s, 2, lock, sizeof lock - 1,
                                         &found, desc, sizeof desc, &e), AP_OK);
    assert_int_equal(found, 1);
    assert_non_null(strstr(desc, "not in role 'bundles'"));
    /* a known key's signature over another message: an error, not ignored */
    assert_int_equal(ap_sign(sk[1], other, sizeof other - 1, "c", &txt, &n, &e), AP_OK);
    assert_int_equal(ap_signature_parse("s", txt, n, &s[3], &e), AP_OK);
    free(txt);
    assert_int_equal(ap_trust_count_sigs(t, AP_TRUST_ROLE_BUNDLES, &s[3], 1, lock, sizeof lock - 1,
                                         &found, desc, sizeof desc, &e), AP_ERR_CHECK);
    /* revoked: k0 stops counting */
    assert_int_equal(ap_sign(sk[1], lock, sizeof lock - 1, "c", &txt, &n, &e), AP_OK);
    assert_int_equal(ap_signature_parse("s", txt, n, &s[1], &e), AP_OK);
    free(txt);
    assert_int_equal(ap_trust_count_sigs(t, AP_TRUST_ROLE_BUNDLES, s, 2, lock, sizeof lock - 1,
                                         &found, desc, sizeof desc, &e), AP_OK);
    assert_int_equal(found, 2);
    {
        char id[17];
        ap_keyid_hex(pk[0].keyid, id);
        assert_int_equal(ap_trust_revoke(t, id, &e), AP_OK);
    }
    assert_int_equal(t->n_sigs, 0); /* an edit drops the signatures */
    assert_int_equal(ap_trust_count_sigs(t, AP_TRUST_ROLE_BUNDLES, s, 2, lock, sizeof lock - 1,
                                         &found, desc, sizeof desc, &e), AP_OK);
    assert_int_equal(found, 1);
    assert_non_null(strstr(desc, "revoked"));
    ap_trust_free(t);
}

static void test_rotation(void **state)
{
    ap_trust *v1 = make(1, "2099-01-01T00:00:00Z"), *v2 = make(2, "2099-01-01T00:00:00Z");
    ap_trust *v2half = NULL, *old = make(3, "2001-01-01T00:00:00Z");
    ap_error e;
    (void)state;
    assert_int_equal(ap_trust_check_rotation(v1, v2, &e), AP_OK);
    assert_int_equal(ap_trust_check_rotation(v2, v1, &e), AP_ERR_CHECK);
    assert_non_null(strstr(e.msg, "rollback"));
    assert_int_equal(ap_trust_check_rotation(v1, v1, &e), AP_ERR_CHECK);
    /* one root signature of two */
    assert_int_equal(ap_trust_new(2, "2099-01-01T00:00:00Z", 2, 2, &v2half, &e), AP_OK);
    assert_int_equal(ap_trust_add_key(v2half, &pk[2], "root-a", AP_TRUST_ROLE_ROOT, &e), AP_OK);
    assert_int_equal(ap_trust_add_key(v2half, &pk[3], "root-b", AP_TRUST_ROLE_ROOT, &e), AP_OK);
    assert_int_equal(ap_trust_sign(v2half, sk[2], &e), AP_OK);
    assert_int_equal(ap_trust_check_rotation(v1, v2half, &e), AP_ERR_CHECK);
    assert_non_null(strstr(e.msg, "1 valid signature by root keys of the installed version 1, 2 needed"));
    /* expired */
    assert_int_equal(ap_trust_check_rotation(v1, old, &e), AP_ERR_CHECK);
    assert_non_null(strstr(e.msg, "expired at 2001-01-01T00:00:00Z"));
    assert_int_equal(ap_trust_check_self(old, &e), AP_ERR_CHECK);
    ap_trust_free(v1);
    ap_trust_free(v2);
    ap_trust_free(v2half);
    ap_trust_free(old);
}

/* Each hostile document is refused with AP_ERR_INPUT and a message. */
static void test_hostile(void **state)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"format\":\"airpack-trust/2\"}",
        "{\"format\":\"airpack-trust/1\",\"format\":\"airpack-trust/1\"}",
        "{\"format\":\"airpack-trust/1\",\"signed\":{},\"signatures\":[],\"extra\":1}",
        "{\"format\":\"airpack-trust/1\",\"signed\":{\"version\":0,\"expires\":\"2099-01-01T00:00:00Z\","
        "\"keys\":[],\"roles\":{\"bundles\":{\"threshold\":1,\"keys\":[]},\"root\":{\"threshold\":1,"
        "\"keys\":[]}},\"revoked\":[]},\"signatures\":[]}",
        "{\"format\":\"airpack-trust/1\",\"signed\":{\"version\":1,\"expires\":\"2099-13-01\","
        "\"keys\":[],\"roles\":{\"bundles\":{\"threshold\":1,\"keys\":[]},\"root\":{\"threshold\":1,"
        "\"keys\":[]}},\"revoked\":[]},\"signatures\":[]}",
        "{\"format\":\"airpack-trust/1\",\"signed\":{\"version\":1,\"expires\":\"2099-01-01T00:00:00Z\","
        "\"keys\":[],\"roles\":{\"bundles\":{\"threshold\":0,\"keys\":[]},\"root\":{\"threshold\":1,"
        "\"keys\":[]}},\"revoked\":[]},\"signatures\":[]}",
        "{\"format\":\"airpack-trust/1\",\"signed\":{\"version\":1,\"expires\":\"2099-01-01T00:00:00Z\","
        "\"keys\":[],\"roles\":{\"bundles\":{\"threshold\":1,\"keys\":[\"0123456789ABCDEF\"]},"
        "\"root\":{\"threshold\":1,\"keys\":[]}},\"revoked\":[]},\"signatures\":[]}",
        "{\"format\":\"airpack-trust/1\",\"signed\":{\"version\":1,\"expires\":\"2099-01-01T00:00:00Z\","
        "\"keys\":[],\"roles\":{\"bundles\":{\"threshold\":1,\"keys\":[]},\"root\":{\"threshold\":1,"
        "\"keys\":[]}},\"revoked\":[\"abc\"]},\"signatures\":[]}",
        "{\"format\":\"airpack-trust/1\",\"signed\":{\"version\":1,\"expires\":\"2099-01-01T00:00:00Z\","
        "\"keys\":[],\"roles\":{\"bundles\":{\"threshold\":1,\"keys\":[]},\"root\":{\"threshold\":1,"
        "\"keys\":[]}},\"revoked\":[]},\"signatures\":[\"not a signature\"]}",
        NULL,
    };
    ap_trust *t = NULL;
    ap_error e;
    (void)state;
    for (size_t i = 0; bad[i]; i++) {
        ap_error_clear(&e);
        assert_int_equal(ap_trust_parse("t.json", bad[i], strlen(bad[i]), &t, &e), AP_ERR_INPUT);
        assert_null(t);
        assert_true(e.msg[0] != '\0');
    }
    /* a key whose id does not match its public key, a bad name */
    {
        ap_trust *g = make(1, "2099-01-01T00:00:00Z");
        char *buf = NULL, *p;
        size_t len;
        char id[17];
        assert_int_equal(ap_trust_dump(g, &buf, &len, &e), AP_OK);
        ap_keyid_hex(pk[0].keyid, id);
        p = strstr(buf, id);
        assert_non_null(p);
        p[0] = p[0] == 'A' ? 'B' : 'A'; /* the first mention: keys[0].id */
        assert_int_equal(ap_trust_parse("t.json", buf, len, &t, &e), AP_ERR_INPUT);
        free(buf);
        assert_int_equal(ap_trust_dump(g, &buf, &len, &e), AP_OK);
        p = strstr(buf, "\"build\"");
        assert_non_null(p);
        p[1] = '\n';
        assert_int_equal(ap_trust_parse("t.json", buf, len, &t, &e), AP_ERR_INPUT);
        free(buf);
        ap_trust_free(g);
    }
    /* too large */
    {
        size_t n = AP_TRUST_MAX_BYTES + 1;
        char *big = malloc(n);
        assert_non_null(big);
        memset(big, ' ', n);
        assert_int_equal(ap_trust_parse("t.json", big, n, &t, &e), AP_ERR_INPUT);
        free(big);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_self),
        cmocka_unit_test(test_threshold_counting),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
