/*
 * test_lock.c - unit tests for src/lock.c: a well-formed lock parses; each
 * hostile or malformed variant (one mutation of a good lock) is refused
 * with AP_ERR_CHECK (AP_ERR_INPUT for text that is not JSON) and a message
 * naming the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lock.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static json_t *good_lock(void)
{
    json_t *l = json_pack(
        "{s:s, s:{s:s, s:s, s:I, s:s, s:s}, s:{s:s}, s:{s:{s:b}},"
        " s:[{s:s, s:I, s:s, s:s, s:s}, {s:s, s:I, s:s, s:s, s:s}, {s:s, s:I, s:s, s:s, s:s},"
        "    {s:s, s:I, s:s, s:s, s:s}],"
        " s:{s:I, s:I}}",
        "format", "airpack-bundle/1",
        "metadata", "name", "demo", "version", "1.0.0", "sequence", (json_int_t)3, "created",
        "2000-01-01T00:00:00Z", "expires", "2030-01-01T00:00:00Z",
        "target", "site", "x",
        "analysis", "summary", "passed", 1,
        "artifacts",
        "path", "SHA256SUMS", "size", (json_int_t)100, "sha256", H64, "mode", "0644", "role",
        "checksums",
        "path", "sbom.cdx.json", "size", (json_int_t)10, "sha256", H64, "mode", "0644", "role",
        "sbom",
        "path", "payload/models/m/a.gguf", "size", (json_int_t)5000000000LL, "sha256", H64, "mode",
        "0644", "role", "model",
        "path", "payload/runtimes/r/bin/x", "size", (json_int_t)0, "sha256", H64, "mode", "0755",
        "role", "runtime",
        "totals", "artifacts", (json_int_t)4, "bytes", (json_int_t)5000000110LL);
    assert_non_null(l);
    return l;
}

static int parse_json(json_t *l, ap_lock **out, ap_error *err)
{
    char *s = json_dumps(l, JSON_PRESERVE_ORDER);
    int rc;
    assert_non_null(s);
    rc = ap_lock_parse("airpack.lock.json", s, strlen(s), out, err);
    free(s);
    json_decref(l);
    return rc;
}

static void test_good(void **state)
{
    ap_lock *l = NULL;
    ap_error err;
    (void)state;
    assert_int_equal(parse_json(good_lock(), &l, &err), AP_OK);
    assert_string_equal(l->name, "demo");
    assert_string_equal(l->version, "1.0.0");
    assert_int_equal(l->sequence, 3);
    assert_string_equal(l->created, "2000-01-01T00:00:00Z");
    assert_string_equal(l->expires, "2030-01-01T00:00:00Z");
    assert_int_equal(l->n_artifacts, 4);
    assert_int_equal(l->artifacts[2].size, 5000000000ULL);
    assert_int_equal(l->artifacts[3].mode, 0755);
    assert_int_equal(l->artifacts[3].role, AP_ROLE_RUNTIME);
    assert_int_equal(l->artifacts[0].sha256[0], 0x01);
    assert_int_equal(l->total_bytes, 5000000110ULL);
    assert_non_null(l->json);
    ap_lock_free(l);
    ap_lock_free(NULL);
    /* A delta: payload may be in_base (the report too, see test_delta.sh). */
    {
        json_t *g = good_lock();
        json_object_set_new(json_array_get(json_object_get(g, "artifacts"), 2), "in_base",
                            json_true());
        assert_int_equal(parse_json(g, &l, &err), AP_OK);
        assert_true(l->artifacts[2].in_base);
        assert_false(l->artifacts[3].in_base);
        ap_lock_free(l);
    }
    /* A multi-line description is fine. */
    {
        json_t *g = good_lock();
        json_object_set_new(json_object_get(g, "metadata"), "description",
                            json_string("line one\n\tline two"));
        assert_int_equal(parse_json(g, &l, &err), AP_OK);
        ap_lock_free(l);
    }
}

static void test_roles(void **state)
{
    ap_role r;
    (void)state;
    assert_string_equal(ap_role_name(AP_ROLE_FILE), "file");
    assert_int_equal(ap_role_from_name("model", &r), 0);
    assert_int_equal(r, AP_ROLE_MODEL);
    assert_int_equal(ap_role_from_name("Model", &r), -1);
}

/* One mutation of the good lock; expect status and a message fragment. */
typedef void (*mutate_fn)(json_t *l);

static json_t *art(json_t *l, size_t i)
{
    return json_array_get(json_object_get(l, "artifacts"), i);
}

static void m_format(json_t *l) { json_object_set_new(l, "format", json_string("airpack-bundle/2")); }
static void m_unknown_top(json_t *l) { json_object_set_new(l, "extra", json_true()); }
static void m_unknown_md(json_t *l) { json_object_set_new(json_object_get(l, "metadata"), "nmae", json_string("x")); }
static void m_name(json_t *l) { json_object_set_new(json_object_get(l, "metadata"), "name", json_string("../evil")); }
static void m_version(json_t *l) { json_object_set_new(json_object_get(l, "metadata"), "version", json_string("1/2")); }
static void m_seq(json_t *l) { json_object_set_new(json_object_get(l, "metadata"), "sequence", json_integer(-1)); }
static void m_seq_str(json_t *l) { json_object_set_new(json_object_get(l, "metadata"), "sequence", json_string("3")); }
static void m_created(json_t *l) { json_object_set_new(json_object_get(l, "metadata"), "created", json_string("2000-13-01T00:00:00Z")); }
static void m_expires(json_t *l) { json_object_set_new(json_object_get(l, "metadata"), "expires", json_string("tomorrow")); }
static void m_no_target(json_t *l) { json_object_del(l, "target"); }
static void m_no_analysis(json_t *l) { json_object_set_new(l, "analysis", json_array()); }
static void m_empty_arts(json_t *l) { json_object_set_new(l, "artifacts", json_array()); }
static void m_traversal(json_t *l) { json_object_set_new(art(l, 2), "path", json_string("payload/models/m/../../../etc/passwd")); }
static void m_absolute(json_t *l) { json_object_set_new(art(l, 2), "path", json_string("/etc/passwd")); }
static void m_ctrl(json_t *l) { json_object_set_new(art(l, 2), "path", json_string("payload/models/m/a\nb")); }
static void m_backslash(json_t *l) { json_object_set_new(art(l, 2), "path", json_string("payload/models/m\\a")); }
static void m_trailing_slash(json_t *l) { json_object_set_new(art(l, 2), "path", json_string("payload/models/m/a/")); }
static void m_role_path(json_t *l) { json_object_set_new(art(l, 2), "path", json_string("payload/files/a.gguf")); }
static void m_dup(json_t *l) { json_object_set_new(art(l, 3), "path", json_string("payload/models/m/a.gguf")); json_object_set_new(art(l, 3), "role", json_string("model")); }
static void m_dir_conflict(json_t *l) { json_object_set_new(art(l, 3), "path", json_string("payload/models/m/a.gguf/x")); json_object_set_new(art(l, 3), "role", json_string("model")); }
static void m_size_neg(json_t *l) { json_object_set_new(art(l, 2), "size", json_integer(-5)); }
static void m_size_real(json_t *l) { json_object_set_new(art(l, 2), "size", json_real(1.5)); }
static void m_sha_upper(json_t *l) { json_object_set_new(art(l, 2), "sha256", json_string("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef")); }
static void m_sha_short(json_t *l) { json_object_set_new(art(l, 2), "sha256", json_string("0123")); }
static void m_mode(json_t *l) { json_object_set_new(art(l, 2), "mode", json_string("4755")); }
static void m_role(json_t *l) { json_object_set_new(art(l, 2), "role", json_string("kernel")); }
static void m_art_extra(json_t *l) { json_object_set_new(art(l, 2), "link", json_string("/etc")); }
static void m_first(json_t *l) { json_array_remove(json_object_get(l, "artifacts"), 0); }
static void m_order(json_t *l) { json_t *a = json_incref(art(l, 1)); json_array_remove(json_object_get(l, "artifacts"), 1); json_array_append_new(json_object_get(l, "artifacts"), a); }
static void m_totals(json_t *l) { json_object_set_new(json_object_get(l, "totals"), "bytes", json_integer(1)); }
static void m_totals_count(json_t *l) { json_object_set_new(json_object_get(l, "totals"), "artifacts", json_integer(5)); }
static void m_sig_name(json_t *l) { json_object_set_new(art(l, 1), "path", json_string("airpack.lock.json")); json_object_set_new(art(l, 1), "role", json_string("report")); }
static void m_overflow(json_t *l) { json_object_set_new(art(l, 2), "size", json_integer(INT64_MAX)); json_object_set_new(art(l, 3), "size", json_integer(INT64_MAX)); }
static void m_esc_text(json_t *l) { json_object_set_new(json_object_get(l, "metadata"), "owner", json_string("x\x1b[2Jy")); }
static void m_nul_name(json_t *l) { json_object_set_new(json_object_get(l, "metadata"), "description", json_stringn("a\0b", 3)); }

static void m_in_base_sbom(json_t *l) { json_object_set_new(art(l, 1), "in_base", json_true()); }
static void m_in_base_false(json_t *l) { json_object_set_new(art(l, 2), "in_base", json_false()); }

static const struct {
    const char *what;
    mutate_fn fn;
    const char *msg;
} cases[] = {
    {"format", m_format, "format"},
    {"unknown top key", m_unknown_top, "unknown key 'extra'"},
    {"unknown metadata key", m_unknown_md, "unknown key 'nmae'"},
    {"bad name", m_name, "metadata.name"},
    {"bad version", m_version, "metadata.version"},
    {"negative sequence", m_seq, "metadata.sequence"},
    {"string sequence", m_seq_str, "metadata.sequence"},
    {"bad created", m_created, "metadata.created"},
    {"bad expires", m_expires, "metadata.expires"},
    {"no target", m_no_target, "target"},
    {"analysis not an object", m_no_analysis, "analysis"},
    {"no artifacts", m_empty_arts, "artifacts"},
    {"traversal", m_traversal, "unsafe path"},
    {"absolute", m_absolute, "unsafe path"},
    {"control char", m_ctrl, "unsafe path"},
    {"backslash", m_backslash, "unsafe path"},
    {"trailing slash", m_trailing_slash, "unsafe path"},
    {"role/path mismatch", m_role_path, "does not fit role"},
    {"duplicate", m_dup, "listed twice"},
    {"file is a folder too", m_dir_conflict, "also the folder"},
    {"negative size", m_size_neg, "size"},
    {"real size", m_size_real, "size"},
    {"uppercase sha", m_sha_upper, "sha256"},
    {"short sha", m_sha_short, "sha256"},
    {"setuid mode", m_mode, "mode"},
    {"unknown role", m_role, "role"},
    {"extra artifact key", m_art_extra, "unknown key 'link'"},
    {"SHA256SUMS not first", m_first, "first artifact"},
    {"roles out of order", m_order, "out of order"},
    {"totals bytes", m_totals, "totals"},
    {"totals count", m_totals_count, "totals"},
    {"reserved name", m_sig_name, "does not fit role"},
    {"size overflow", m_overflow, "overflow"},
    {"NUL in text", m_nul_name, "u0000"},
    {"escape sequence in text", m_esc_text, "metadata.owner"},
    {"in_base on the SBOM", m_in_base_sbom, "in_base"},
    {"in_base false", m_in_base_false, "in_base"},
};

static void test_hostile(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *l = good_lock();
        ap_lock *out = (ap_lock *)1;
        ap_error err;
        int rc;
        cases[i].fn(l);
        rc = parse_json(l, &out, &err);
        if (rc != AP_ERR_CHECK || out != NULL || !strstr(err.msg, cases[i].msg)) {
            fprintf(stderr, "case '%s': rc %d, message '%s'\n", cases[i].what, rc, err.msg);
            fail();
        }
        assert_non_null(strstr(err.msg, "airpack.lock.json"));
    }
}

static void test_not_json(void **state)
{
    ap_lock *l = NULL;
    ap_error err;
    const char *dup = "{\"format\": \"airpack-bundle/1\", \"format\": \"x\"}";
    (void)state;
    assert_int_equal(ap_lock_parse(NULL, "{\n  \"a\": [1,\n  ", 15, &l, &err), AP_ERR_INPUT);
    assert_int_not_equal(err.line, 0);
    assert_non_null(strstr(err.msg, "airpack.lock.json"));
    assert_int_equal(ap_lock_parse("x", "[]", 2, &l, &err), AP_ERR_CHECK);
    assert_int_equal(ap_lock_parse("x", dup, strlen(dup), &l, &err), AP_ERR_CHECK);
    assert_non_null(strstr(err.msg, "duplicate"));
    /* Over the size cap: refused before parsing. */
    assert_int_equal(ap_lock_parse("x", "{}", (size_t)AP_LOCK_MAX_BYTES + 1, &l, &err),
                     AP_ERR_CHECK);
    assert_null(l);
}

/* The artifact count cap. */
static void test_count_cap(void **state)
{
    json_t *l = good_lock(), *arts = json_object_get(l, "artifacts");
    ap_lock *out = NULL;
    ap_error err;
    char p[64];
    (void)state;
    for (size_t i = 0; i < AP_LOCK_MAX_ARTIFACTS; i++) {
        snprintf(p, sizeof p, "payload/files/f%zu", i);
        json_array_append_new(arts, json_pack("{s:s, s:i, s:s, s:s, s:s}", "path", p, "size", 0,
                                              "sha256", H64, "mode", "0644", "role", "file"));
    }
    assert_int_equal(parse_json(l, &out, &err), AP_ERR_CHECK);
    assert_non_null(strstr(err.msg, "more than the limit"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_count_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
