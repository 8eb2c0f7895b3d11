/*
 * test_bundle_read.c - the streaming verifier (src/bundle_read.h) on the
 * bundles of tests/gen/mkhostile.c: good bundles on one and two threads,
 * from a pipe, the sink contract (nothing accepted before the hash
 * matched), the signature checked before the lock is parsed, every hostile
 * case on both paths, keep-going reports, the JSON result.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bundle_read.h"
#include "util.h"

static char dir[256];
static ap_keyring ring;

static char *gpath(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int setup(void **state)
{
    char cmd[1024];
    ap_error err;
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* the pipe tests stop reading refused streams */
    snprintf(dir, sizeof dir, "/tmp/airpack-test-bundle-read-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(cmd, sizeof cmd, "'%s/mkhostile' '%s' >/dev/null", AIRPACK_GEN_DIR, dir);
    if (system(cmd) != 0)
        return -1;
    /* two 6 MiB shards (large entries go to the hashing threads), signed by
     * their own key; and a copy with one byte changed inside shard 1 */
    snprintf(cmd, sizeof cmd,
             "'%s/mkhostile' --big '%s/big' 12 2 >/dev/null && cp '%s/big/big-2.tar' '%s/big/bad.tar' && "
             "printf Z | dd of='%s/big/bad.tar' bs=1 seek=3000000 conv=notrunc 2>/dev/null",
             AIRPACK_GEN_DIR, dir, dir, dir, dir);
    if (system(cmd) != 0)
        return -1;
    memset(&ring, 0, sizeof ring);
    if (ap_keyring_add(&ring, gpath("keys"), &err) != AP_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    (void)state;
    ap_keyring_release(&ring);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int verify(const char *name, int threads, ap_bundle_result *res, ap_error *err)
{
    ap_bundle_opts o;
    memset(&o, 0, sizeof o);
    o.keys = &ring;
    o.threads = threads;
    return ap_bundle_verify(gpath(name), &o, res, err);
}

static void test_good(void **state)
{
    static const char *const names[] = {"good.tar", "good.tar.zst", "good-legacy.tar",
                                        "good-other.tar"};
    (void)state;
    for (size_t i = 0; i < AP_ARRAY_LEN(names); i++) {
        for (int threads = 0; threads <= 1; threads++) {
            ap_bundle_result res;
            ap_error err;
            int rc = verify(names[i], threads, &res, &err);
            if (rc != AP_OK)
                fail_msg("%s: %s", names[i], err.msg);
            assert_non_null(res.lock);
            assert_int_equal(res.lock->n_artifacts, 7);
            assert_int_equal(res.n_checked, 7);
            assert_true(res.bytes == res.lock->total_bytes);
            assert_int_equal(res.fault, AP_FAULT_NONE);
            assert_true(res.signature_checked);
            /* two threads on a plain file, one on zstd or when asked */
            assert_int_equal(res.parallel, threads == 0 && i != 1);
            assert_string_equal(res.sig.alg, i == 2 ? "Ed" : "ED");
            ap_bundle_result_release(&res);
        }
    }
}

struct writer {
    const char *path;
    int fd;
};

static void *write_all(void *arg)
{
    struct writer *w = arg;
    char *buf = NULL;
    size_t len = 0, off = 0;
    ap_error err;
    if (ap_read_file(w->path, 64u << 20, &buf, &len, &err) == AP_OK) {
        while (off < len) {
            ssize_t n = write(w->fd, buf + off, len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
    }
    free(buf);
    close(w->fd);
    return NULL;
}

static int verify_pipe(const char *name, ap_bundle_result *res, ap_error *err)
{
    int p[2], rc;
    pthread_t th;
    struct writer w;
    ap_bundle_opts o;
    memset(&o, 0, sizeof o);
    o.keys = &ring;
    assert_int_equal(pipe(p), 0);
    w.path = gpath(name);
    w.fd = p[1];
    assert_int_equal(pthread_create(&th, NULL, write_all, &w), 0);
    rc = ap_bundle_verify_fd(p[0], "-", &o, res, err);
    close(p[0]); /* a refused stream need not be read to its end */
    pthread_join(th, NULL);
    return rc;
}

static void test_pipe(void **state)
{
    ap_bundle_result res;
    ap_error err;
    (void)state;
    if (verify_pipe("good.tar", &res, &err) != AP_OK)
        fail_msg("%s", err.msg);
    assert_false(res.parallel);
    assert_int_equal(res.n_checked, 7);
    ap_bundle_result_release(&res);
    if (verify_pipe("good.tar.zst", &res, &err) != AP_OK)
        fail_msg("%s", err.msg);
    ap_bundle_result_release(&res);
    assert_int_equal(verify_pipe("hostile/trailing.tar", &res, &err), AP_ERR_CHECK);
    assert_int_equal(res.fault, AP_FAULT_TRAILING);
    ap_bundle_result_release(&res);
    assert_int_equal(verify_pipe("hostile/zstd-bomb.tar.zst", &res, &err), AP_ERR_CHECK);
    assert_true(res.fault == AP_FAULT_TRAILING || res.fault == AP_FAULT_EXPANSION);
    ap_bundle_result_release(&res);
}

/* A sink that counts, and remembers which entries were accepted. */
struct counter {
    int begins, opens, closes_ok, closes_bad;
    uint64_t bytes;
    int accepted[16];
    pthread_mutex_t mu;
};

struct centry {
    size_t index;
};

static int c_begin(void *ctx, const ap_lock *lock, const void *lb, size_t ll, const void *sb,
                   size_t sl, const ap_pubkey *signer, ap_error *err)
{
    struct counter *c = ctx;
    (void)lock, (void)lb, (void)sb, (void)err;
    assert_true(ll > 0 && sl > 0);
    assert_non_null(signer);
    c->begins++;
    return AP_OK;
}

static int c_open(void *ctx, size_t index, const ap_artifact *a, void **entry, ap_error *err)
{
    struct counter *c = ctx;
    struct centry *e = calloc(1, sizeof *e);
    (void)a, (void)err;
    e->index = index;
    pthread_mutex_lock(&c->mu);
    c->opens++;
    pthread_mutex_unlock(&c->mu);
    *entry = e;
    return AP_OK;
}

static int c_write(void *ctx, void *entry, const void *buf, size_t len, ap_error *err)
{
    struct counter *c = ctx;
    (void)entry, (void)buf, (void)err;
    pthread_mutex_lock(&c->mu);
    c->bytes += len;
    pthread_mutex_unlock(&c->mu);
    return AP_OK;
}

static int c_close(void *ctx, void *entry, int ok, ap_error *err)
{
    struct counter *c = ctx;
    struct centry *e = entry;
    (void)err;
    pthread_mutex_lock(&c->mu);
    if (ok) {
        c->closes_ok++;
        c->accepted[e->index] = 1;
    } else {
        c->closes_bad++;
    }
    pthread_mutex_unlock(&c->mu);
    free(e);
    return AP_OK;
}

static void run_sink(const char *name, int threads, struct counter *c, ap_bundle_result *res,
                     int *rc)
{
    ap_bundle_sink s = {c, c_begin, c_open, c_write, c_close};
    ap_bundle_opts o;
    ap_error err;
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    memset(&o, 0, sizeof o);
    o.keys = &ring;
    o.threads = threads;
    o.sink = &s;
    *rc = ap_bundle_verify(gpath(name), &o, res, &err);
    pthread_mutex_destroy(&c->mu);
}

static void test_sink(void **state)
{
    (void)state;
    for (int threads = 0; threads <= 1; threads++) {
        struct counter c;
        ap_bundle_result res;
        int rc;
        run_sink("good.tar", threads, &c, &res, &rc);
        assert_int_equal(rc, AP_OK);
        assert_int_equal(c.begins, 1);
        assert_int_equal(c.opens, 7);
        assert_int_equal(c.closes_ok, 7);
        assert_int_equal(c.closes_bad, 0);
        assert_true(c.bytes == res.lock->total_bytes);
        ap_bundle_result_release(&res);

        /* the tampered model (index 3) is never accepted; every open is closed */
        run_sink("hostile/tampered.tar", threads, &c, &res, &rc);
        assert_int_equal(rc, AP_ERR_CHECK);
        assert_int_equal(res.fault, AP_FAULT_SHA256);
        assert_string_equal(res.fault_path, "payload/models/tiny/model.gguf");
        assert_false(c.accepted[3]);
        assert_int_equal(c.opens, c.closes_ok + c.closes_bad);
        assert_true(c.closes_bad >= 1);
        ap_bundle_result_release(&res);

        /* an untrusted signature: the sink never starts */
        run_sink("hostile/untrusted-key.tar", threads, &c, &res, &rc);
        assert_int_equal(rc, AP_ERR_CHECK);
        assert_int_equal(c.begins, 0);
        assert_int_equal(c.opens, 0);
        assert_null(res.lock);
        ap_bundle_result_release(&res);
    }
}

/* Large entries: hashed by the pool (file), the stream helper (pipe) or
 * inline (threads=1); the sink sees every byte once, a changed byte is
 * found on every path. */
static void test_large_entries(void **state)
{
    ap_keyring big = {0};
    ap_error err;
    (void)state;
    assert_int_equal(ap_keyring_add(&big, gpath("big/trusted.pub"), &err), AP_OK);
    for (int threads = 0; threads <= 1; threads++) {
        for (int bad = 0; bad <= 1; bad++) {
            struct counter c;
            ap_bundle_sink s = {&c, c_begin, c_open, c_write, c_close};
            ap_bundle_opts o;
            ap_bundle_result res;
            int rc;
            memset(&c, 0, sizeof c);
            pthread_mutex_init(&c.mu, NULL);
            memset(&o, 0, sizeof o);
            o.keys = &big;
            o.threads = threads;
            o.sink = &s;
            rc = ap_bundle_verify(gpath(bad ? "big/bad.tar" : "big/big-2.tar"), &o, &res, &err);
            pthread_mutex_destroy(&c.mu);
            if (bad) {
                assert_int_equal(rc, AP_ERR_CHECK);
                assert_int_equal(res.fault, AP_FAULT_SHA256);
                assert_false(c.accepted[3]);
            } else {
                if (rc != AP_OK)
                    fail_msg("threads %d: %s", threads, err.msg);
                assert_true(c.bytes == res.lock->total_bytes);
                assert_int_equal(c.closes_ok, (int)res.lock->n_artifacts);
            }
            assert_int_equal(c.opens, c.closes_ok + c.closes_bad);
            ap_bundle_result_release(&res);
        }
    }
    /* through a pipe: the stream helper thread */
    {
        ap_keyring saved = ring;
        ap_bundle_result res;
        ring = big;
        if (verify_pipe("big/big-2.tar", &res, &err) != AP_OK)
            fail_msg("pipe: %s", err.msg);
        ap_bundle_result_release(&res);
        assert_int_equal(verify_pipe("big/bad.tar", &res, &err), AP_ERR_CHECK);
        assert_int_equal(res.fault, AP_FAULT_SHA256);
        ap_bundle_result_release(&res);
        ring = saved;
    }
    ap_keyring_release(&big);
}

static void test_signature_before_lock(void **state)
{
    ap_keyring only_untrusted = {0};
    ap_bundle_opts o;
    ap_bundle_result res;
    ap_error err;
    (void)state;
    /* lock-not-json is signed by the trusted key; with only the untrusted
     * key, the refusal must come from the signature, not from the parser */
    assert_int_equal(ap_keyring_add(&only_untrusted, gpath("untrusted.pub"), &err), AP_OK);
    memset(&o, 0, sizeof o);
    o.keys = &only_untrusted;
    assert_int_equal(ap_bundle_verify(gpath("hostile/lock-not-json.tar"), &o, &res, &err),
                     AP_ERR_CHECK);
    assert_int_equal(res.fault, AP_FAULT_UNTRUSTED);
    assert_null(res.lock);
    ap_bundle_result_release(&res);
    /* with the trusted key the parser refuses it */
    assert_int_equal(verify("hostile/lock-not-json.tar", 0, &res, &err), AP_ERR_CHECK);
    assert_int_equal(res.fault, AP_FAULT_LOCK);
    ap_bundle_result_release(&res);
    ap_keyring_release(&only_untrusted);
}

static void test_hostile_corpus(void **state)
{
    FILE *f = fopen(gpath("hostile/cases.tsv"), "r");
    char line[512];
    size_t n = 0;
    (void)state;
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t'), name[300], want[200];
        if (!tab)
            continue;
        *tab = '\0';
        snprintf(name, sizeof name, "hostile/%s", line);
        snprintf(want, sizeof want, "|%s", tab + 1);
        want[strcspn(want, "\n")] = '|';
        for (int threads = 0; threads <= 1; threads++) {
            ap_bundle_result res;
            ap_error err;
            char got[64];
            int rc = verify(name, threads, &res, &err);
            if (rc != AP_ERR_CHECK)
                fail_msg("%s (threads %d): status %d, want %d: %s", name, threads, rc,
                         AP_ERR_CHECK, err.msg);
            snprintf(got, sizeof got, "|%s|", ap_bundle_fault_name(res.fault));
            if (!strstr(want, got))
                fail_msg("%s (threads %d): fault %s, want %s: %s", name, threads, got, want,
                         err.msg);
            assert_true(strncmp(err.msg, "bundle '", 8) == 0);
            ap_bundle_result_release(&res);
        }
        n++;
    }
    fclose(f);
    assert_true(n >= 40);
}

struct seen {
    int n, bad;
};

static void on_done(void *ctx, size_t index, const ap_artifact *a, ap_bundle_fault f,
                    const char *msg)
{
    struct seen *s = ctx;
    (void)a, (void)msg;
    assert_int_equal(index, (size_t)s->n);
    s->n++;
    if (f != AP_FAULT_NONE)
        s->bad++;
}

static void test_keep_going(void **state)
{
    ap_bundle_opts o;
    ap_bundle_result res;
    ap_error err;
    struct seen s = {0, 0};
    json_t *j;
    (void)state;
    memset(&o, 0, sizeof o);
    o.keys = &ring;
    o.keep_going = 1;
    o.artifact_done = on_done;
    o.artifact_ctx = &s;
    assert_int_equal(ap_bundle_verify(gpath("hostile/tampered.tar"), &o, &res, &err), AP_ERR_CHECK);
    assert_int_equal(s.n, 7);
    assert_int_equal(s.bad, 1);
    assert_int_equal(res.n_checked, 6);
    j = ap_bundle_result_json("tampered.tar", &res, &err);
    assert_non_null(j);
    assert_false(json_is_true(json_object_get(j, "verified")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "fault")),
                        "sha256-mismatch");
    json_decref(j);
    ap_bundle_result_release(&res);

    /* without keys: allowed only when asked, and then not "verified" */
    memset(&o, 0, sizeof o);
    assert_int_equal(ap_bundle_verify(gpath("good.tar"), &o, &res, &err), AP_ERR_INPUT);
    ap_bundle_result_release(&res);
    o.allow_unsigned = 1;
    assert_int_equal(ap_bundle_verify(gpath("good.tar"), &o, &res, &err), AP_OK);
    assert_false(res.signature_checked);
    j = ap_bundle_result_json("good.tar", &res, NULL);
    assert_false(json_is_true(json_object_get(j, "verified")));
    json_decref(j);
    ap_bundle_result_release(&res);
}

static void test_missing_file(void **state)
{
    ap_bundle_result res;
    ap_error err;
    (void)state;
    assert_int_equal(verify("no-such-bundle.tar", 0, &res, &err), AP_ERR_INPUT);
    assert_int_equal(verify("keys", 0, &res, &err), AP_ERR_INPUT); /* a folder */
}

static void test_rfc3339(void **state)
{
    (void)state;
    assert_int_equal(ap_rfc3339_past("2000-01-01T00:00:00Z"), 1);
    assert_int_equal(ap_rfc3339_past("2999-01-01T00:00:00Z"), 0);
    assert_int_equal(ap_rfc3339_past("2000-01-01T00:00:00+01:00"), -1);
    assert_int_equal(ap_rfc3339_past("yesterday"), -1);
    assert_string_equal(ap_bundle_fault_name(AP_FAULT_SHA256), "sha256-mismatch");
    assert_string_equal(ap_bundle_fault_name((ap_bundle_fault)999), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_pipe),
        cmocka_unit_test(test_sink),
        cmocka_unit_test(test_large_entries),
        cmocka_unit_test(test_signature_before_lock),
        cmocka_unit_test(test_hostile_corpus),
        cmocka_unit_test(test_keep_going),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
