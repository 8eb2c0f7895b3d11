/*
 * test_parts.c - unit tests for src/parts.c: volume sizes and presets, the
 * parts index (a good index parses and dumps back to the same bytes; each
 * malformed variant is refused naming the problem), the part writer (parts
 * of exactly the volume size whose concatenation is the input) and the
 * one-by-one check (missing, truncated, damaged, misplaced parts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parts.h"
#include "util.h"

static void test_volume_size(void **state)
{
    uint64_t v = 0;
    (void)state;
    assert_int_equal(ap_volume_size_parse("fat32", &v), 0);
    assert_true(v == 4294967295ull);
    assert_int_equal(ap_volume_size_parse("DVD", &v), 0);
    assert_true(v == 4700000000ull);
    assert_int_equal(ap_volume_size_parse("bd25", &v), 0);
    assert_true(v == 25000000000ull);
    assert_int_equal(ap_volume_size_parse("bd50", &v), 0);
    assert_true(v == 50000000000ull);
    assert_int_equal(ap_volume_size_parse("4.7GB", &v), 0);
    assert_true(v == 4700000000ull);
    assert_int_equal(ap_volume_size_parse("4GiB", &v), 0);
    assert_true(v == 4294967296ull);
    assert_int_equal(ap_volume_size_parse("700M", &v), 0);
    assert_true(v == 700000000ull);
    assert_int_equal(ap_volume_size_parse("1 MiB", &v), 0);
    assert_true(v == 1048576ull);
    assert_int_equal(ap_volume_size_parse("512", &v), 0);
    assert_true(v == 512);
    assert_int_equal(ap_volume_size_parse("511", &v), -1);      /* below the minimum */
    assert_int_equal(ap_volume_size_parse("", &v), -1);
    assert_int_equal(ap_volume_size_parse("-1G", &v), -1);
    assert_int_equal(ap_volume_size_parse("1X", &v), -1);
    assert_int_equal(ap_volume_size_parse("1.", &v), -1);
    assert_int_equal(ap_volume_size_parse("99999999999999999999", &v), -1);
    assert_int_equal(ap_volume_size_parse("20000000TiB", &v), -1); /* overflows */
}

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char *index_text(const char *p2size, const char *total, const char *f3, const char *extra)
{
    char *s;
    if (asprintf(&s,
                 "{\"format\":\"airpack-parts/1\",\"bundle\":\"b.airpack\",\"name\":\"demo\","
                 "\"version\":\"1.0.0\",\"sequence\":3,\"lock_sha256\":\"" H64 "\","
                 "\"volume_size\":1024,\"size\":%s,%s\"parts\":["
                 "{\"file\":\"b.airpack.001\",\"size\":1024,\"sha256\":\"" H64 "\"},"
                 "{\"file\":\"b.airpack.002\",\"size\":%s,\"sha256\":\"" H64 "\"},"
                 "{\"file\":\"%s\",\"size\":10,\"sha256\":\"" H64 "\"}]}",
                 total, extra, p2size, f3) < 0)
        return NULL;
    return s;
}

static int parse(const char *text, ap_error *err)
{
    ap_parts *p = NULL;
    int rc = ap_parts_parse("t.parts", text, strlen(text), &p, err);
    ap_parts_free(p);
    return rc;
}

static void test_index(void **state)
{
    ap_parts *p = NULL, *q = NULL;
    ap_error err;
    char *t = index_text("1024", "2058", "b.airpack.003", ""), *d = NULL, *d2 = NULL;
    size_t dl = 0, dl2 = 0;
    (void)state;
    assert_non_null(t);
    assert_int_equal(ap_parts_parse("t.parts", t, strlen(t), &p, &err), AP_OK);
    assert_int_equal(p->n, 3);
    assert_true(p->size == 2058 && p->volume_size == 1024 && p->sequence == 3);
    assert_string_equal(p->parts[2].file, "b.airpack.003");
    assert_int_equal(ap_parts_dump(p, &d, &dl, &err), AP_OK);
    assert_int_equal(ap_parts_parse("t.parts", d, dl, &q, &err), AP_OK);
    assert_int_equal(ap_parts_dump(q, &d2, &dl2, &err), AP_OK);
    assert_int_equal(dl, dl2);
    assert_memory_equal(d, d2, dl);
    ap_parts_free(p);
    ap_parts_free(q);
    free(t);
    free(d);
    free(d2);

    static const struct {
        const char *p2, *total, *f3, *extra, *want;
    } bad[] = {
        {"1000", "2034", "b.airpack.003", "", "exactly volume_size"},
        {"1024", "9999", "b.airpack.003", "", "sum of the parts"},
        {"1024", "2058", "../b.airpack.003", "", "in order"},
        {"1024", "2058", "b.airpack.004", "", "in order"},
        {"1024", "2058", "b.airpack.003", "\"extra\":1,", "unknown key 'extra'"},
        {"0", "1034", "b.airpack.003", "", "exactly volume_size"},
        {"-5", "2058", "b.airpack.003", "", "bad size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = index_text(bad[i].p2, bad[i].total, bad[i].f3, bad[i].extra);
        assert_int_equal(parse(t, &err), AP_ERR_CHECK);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].want);
        free(t);
    }
    assert_int_equal(parse("{", &err), AP_ERR_INPUT);
    assert_int_equal(parse("[]", &err), AP_ERR_CHECK);
    assert_int_equal(parse("{\"format\":\"airpack-parts/2\"}", &err), AP_ERR_CHECK);
}

static void on_part(void *ctx, size_t i, const ap_part *part, ap_part_state st, const char *msg)
{
    int *states = ctx;
    (void)part;
    (void)msg;
    states[i] = (int)st;
}

static void test_writer_and_check(void **state)
{
    char dir[] = "/tmp/airpack-parts-XXXXXX", out[300], path[400], *all = NULL;
    uint8_t buf[3000];
    ap_partw *w = NULL;
    ap_parts p;
    ap_error err;
    int states[8];
    size_t len = 0;
    (void)state;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)((i * 7 + 1) ^ (i >> 8) * 31); /* parts differ */
    assert_non_null(mkdtemp(dir));
    snprintf(out, sizeof out, "%s/b.airpack", dir);
    assert_int_equal(ap_partw_open(out, 1024, sizeof buf, &w, &err), AP_OK);
    assert_int_equal(ap_partw_write(w, buf, 100, &err), AP_OK);
    assert_int_equal(ap_partw_write(w, buf + 100, sizeof buf - 100, &err), AP_OK);
    assert_int_equal(ap_partw_commit(w, &p, &err), AP_OK);
    assert_int_equal(p.n, 3);
    assert_true(p.parts[0].size == 1024 && p.parts[1].size == 1024 && p.parts[2].size == 952);
    assert_string_equal(p.parts[1].file, "b.airpack.002");
    for (size_t i = 0; i < 3; i++) {
        char *b = NULL;
        size_t l = 0;
        snprintf(path, sizeof path, "%s/%s", dir, p.parts[i].file);
        assert_int_equal(ap_read_file(path, 1 << 20, &b, &l, &err), AP_OK);
        all = realloc(all, len + l);
        memcpy(all + len, b, l);
        len += l;
        free(b);
    }
    assert_int_equal(len, sizeof buf);
    assert_memory_equal(all, buf, len);
    free(all);
    p.name = strdup("demo");
    p.version = strdup("1");
    assert_int_equal(ap_parts_check(dir, &p, on_part, states, &err), 0);
    /* damage part 2, swap nothing, drop part 3 */
    snprintf(path, sizeof path, "%s/b.airpack.002", dir);
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    fputc('X', f);
    fclose(f);
    snprintf(path, sizeof path, "%s/b.airpack.003", dir);
    unlink(path);
    assert_int_equal(ap_parts_check(dir, &p, on_part, states, &err), 2);
    assert_int_equal(states[0], AP_PART_OK);
    assert_int_equal(states[1], AP_PART_SHA256);
    assert_int_equal(states[2], AP_PART_MISSING);
    /* part 1's bytes under part 2's name: misplaced */
    {
        char p1[400];
        snprintf(p1, sizeof p1, "%s/b.airpack.001", dir);
        snprintf(path, sizeof path, "%s/b.airpack.002", dir);
        char *b = NULL;
        size_t l = 0;
        assert_int_equal(ap_read_file(p1, 1 << 20, &b, &l, &err), AP_OK);
        f = fopen(path, "w");
        fwrite(b, 1, l, f);
        fclose(f);
        free(b);
    }
    assert_int_equal(ap_parts_check(dir, &p, on_part, states, &err), 2);
    assert_int_equal(states[1], AP_PART_MISPLACED);
    /* a stale part after a split into fewer parts is removed */
    snprintf(path, sizeof path, "%s/b.airpack.003", dir);
    f = fopen(path, "w");
    fputs("stale", f);
    fclose(f);
    ap_parts_release(&p);
    assert_int_equal(ap_partw_open(out, 4096, sizeof buf, &w, &err), AP_OK);
    assert_int_equal(ap_partw_write(w, buf, sizeof buf, &err), AP_OK);
    assert_int_equal(ap_partw_commit(w, &p, &err), AP_OK);
    assert_int_equal(p.n, 1);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/b.airpack.002", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    ap_parts_release(&p);
    snprintf(path, sizeof path, "%s/b.airpack.001", dir);
    unlink(path);
    rmdir(dir);
    /* an abandoned writer leaves nothing */
    assert_non_null(mkdtemp(strcpy(dir, "/tmp/airpack-parts-XXXXXX")));
    snprintf(out, sizeof out, "%s/b.airpack", dir);
    assert_int_equal(ap_partw_open(out, 1024, sizeof buf, &w, &err), AP_OK);
    assert_int_equal(ap_partw_write(w, buf, sizeof buf, &err), AP_OK);
    ap_partw_abort(w);
    assert_int_equal(rmdir(dir), 0); /* empty */
    assert_int_equal(ap_partw_open("/tmp/.hidden", 1024, 1, &w, &err), AP_ERR_INPUT);
    assert_int_equal(ap_partw_open("/tmp/x", 100, 1, &w, &err), AP_ERR_INPUT);
}

/* The signature reserve: part 1 shorter, offsets mapped across it, and
 * the index's rule for part 1. */
static void test_reserve(void **state)
{
    char dir[] = "/tmp/airpack-parts-XXXXXX", out[300], path[400], *all = NULL, *t = NULL;
    uint8_t buf[3000], patch[40];
    ap_partw *w = NULL;
    ap_parts p, *q = NULL;
    ap_error err;
    size_t len = 0;
    (void)state;
    assert_true(AP_PARTS_SIG_RESERVE == 81920);
    assert_true(ap_parts_default_reserve(4294967295u) == 81920);   /* fat32 */
    assert_true(ap_parts_default_reserve(4u * 81920) == 81920);
    assert_true(ap_parts_default_reserve(200u * 1024) == 51200);   /* a quarter */
    assert_true(ap_parts_default_reserve(1024) == 0);
    assert_true(ap_parts_first_min(4294967295u) == 4294967295u - 81920);
    assert_true(ap_parts_first_min(1024) == 1);

    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)((i * 13 + 5) ^ (i >> 7));
    memset(patch, 'P', sizeof patch);
    assert_non_null(mkdtemp(dir));
    snprintf(out, sizeof out, "%s/r.airpack", dir);
    assert_int_equal(ap_partw_open(out, 1024, sizeof buf, &w, &err), AP_OK);
    ap_partw_set_reserve(w, 512);
    assert_int_equal(ap_partw_write(w, buf, sizeof buf, &err), AP_OK);
    /* a write back across the end of part 1 and one across parts 2 and 3 */
    assert_int_equal(ap_partw_pwrite(w, 500, patch, sizeof patch, &err), AP_OK);
    assert_int_equal(ap_partw_pwrite(w, 1520, patch, sizeof patch, &err), AP_OK);
    {
        uint8_t back[sizeof patch];
        assert_int_equal(ap_partw_pread(w, 1520, back, sizeof back, &err), AP_OK);
        assert_memory_equal(back, patch, sizeof patch);
    }
    memcpy(buf + 500, patch, sizeof patch);
    memcpy(buf + 1520, patch, sizeof patch);
    assert_int_equal(ap_partw_commit(w, &p, &err), AP_OK);
    assert_int_equal(p.n, 4);
    assert_true(p.parts[0].size == 512 && p.parts[1].size == 1024 && p.parts[2].size == 1024 &&
                p.parts[3].size == 440);
    for (size_t i = 0; i < p.n; i++) {
        char *b = NULL;
        size_t l = 0;
        uint8_t h[AP_SHA256_LEN];
        snprintf(path, sizeof path, "%s/%s", dir, p.parts[i].file);
        assert_int_equal(ap_read_file(path, 1 << 20, &b, &l, &err), AP_OK);
        assert_int_equal(ap_sha256_buffer(b, l, h), AP_OK);
        assert_memory_equal(h, p.parts[i].sha256, AP_SHA256_LEN); /* rehashed after pwrite */
        all = realloc(all, len + l);
        memcpy(all + len, b, l);
        len += l;
        free(b);
        unlink(path);
    }
    assert_int_equal(len, sizeof buf);
    assert_memory_equal(all, buf, len);
    free(all);
    ap_parts_release(&p);
    rmdir(dir);

    /* the index: part 1 may be short by the reserve, not more */
    for (int k = 0; k < 2; k++) {
        unsigned long long vol = 200000, p1 = vol - 81920 - (unsigned long long)k;
        assert_true(asprintf(&t,
                             "{\"format\":\"airpack-parts/1\",\"bundle\":\"b.airpack\","
                             "\"name\":\"demo\",\"version\":\"1.0.0\",\"sequence\":3,"
                             "\"lock_sha256\":\"" H64 "\",\"volume_size\":%llu,\"size\":%llu,"
                             "\"parts\":[{\"file\":\"b.airpack.001\",\"size\":%llu,"
                             "\"sha256\":\"" H64 "\"},{\"file\":\"b.airpack.002\","
                             "\"size\":10,\"sha256\":\"" H64 "\"}]}",
                             vol, p1 + 10, p1) > 0);
        if (k == 0) {
            assert_int_equal(ap_parts_parse("t.parts", t, strlen(t), &q, &err), AP_OK);
            ap_parts_free(q);
            q = NULL;
        } else {
            assert_int_equal(parse(t, &err), AP_ERR_CHECK);
            assert_non_null(strstr(err.msg, "signature reserve"));
        }
        free(t);
    }
}

static void test_paths(void **state)
{
    char *s;
    (void)state;
    assert_true(ap_parts_is_split_path("a/b.airpack.parts"));
    assert_true(ap_parts_is_split_path("b.airpack.001"));
    assert_false(ap_parts_is_split_path("b.airpack.002"));
    assert_false(ap_parts_is_split_path("b.airpack"));
    assert_false(ap_parts_is_split_path(".parts"));
    s = ap_parts_index_path("d/b.airpack.001");
    assert_string_equal(s, "d/b.airpack.parts");
    free(s);
    s = ap_parts_index_path("d/b.airpack.parts");
    assert_string_equal(s, "d/b.airpack.parts");
    free(s);
    s = ap_part_name("b", 12, 3);
    assert_string_equal(s, "b.012");
    free(s);
    s = ap_part_name("b", 120, 4);
    assert_string_equal(s, "b.0120");
    free(s);
    assert_null(ap_part_name("b", 100, 3));
    assert_null(ap_part_name("b", 1000, 4));
    assert_null(ap_part_name("b", 0, 3));
    assert_int_equal(ap_parts_width(99), 3);
    assert_int_equal(ap_parts_width(100), 4);
    assert_int_equal(ap_parts_first_width("x/b.0001"), 4);
    assert_int_equal(ap_parts_first_width("x/b.001"), 3);
    assert_true(ap_parts_is_split_path("b.airpack.0001"));
    s = ap_parts_index_path("d/b.airpack.0001");
    assert_string_equal(s, "d/b.airpack.parts");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_volume_size),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_writer_and_check),
        cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
