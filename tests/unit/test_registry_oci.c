/*
 * test_registry_oci.c - unit tests for src/registry/oci.c and tarstream.c: oci://
 * references, the manifests built from a lock parse back and match it, a
 * changed manifest (extra layer, other digest or size, missing signature,
 * foreign index entry) is refused, and the tar rebuild writes the lock,
 * signature and artifact data with deterministic headers.
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
#include "registry/oci.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H64B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static const char LOCK[] =
    "{\"format\":\"airpack-bundle/1\","
    "\"metadata\":{\"name\":\"demo\",\"version\":\"1.0.0\",\"sequence\":3,"
    "\"created\":\"2000-01-01T00:00:00Z\"},"
    "\"target\":{},"
    "\"analysis\":{\"manifest\":{\"models\":[{\"name\":\"m\",\"license\":\"MIT\","
    "\"facts\":{\"format\":\"gguf\",\"architecture\":\"llama\",\"parameters\":8030261248,"
    "\"dtype\":\"BF16\"}}]}},"
    "\"artifacts\":["
    "{\"path\":\"SHA256SUMS\",\"size\":3,\"sha256\":\"" H64 "\",\"mode\":\"0644\",\"role\":\"checksums\"},"
    "{\"path\":\"payload/models/m/a.gguf\",\"size\":5,\"sha256\":\"" H64B "\",\"mode\":\"0644\",\"role\":\"model\"},"
    "{\"path\":\"payload/models/m/README.md\",\"size\":2,\"sha256\":\"" H64 "\",\"mode\":\"0644\",\"role\":\"model\"},"
    "{\"path\":\"payload/files/x\",\"size\":0,\"sha256\":\"" H64 "\",\"mode\":\"0755\",\"role\":\"file\"}],"
    "\"totals\":{\"artifacts\":4,\"bytes\":10}}";

static const char SIG[] = "untrusted comment: x\nRUQ=\ntrusted comment: t\nAAAA\n";

static ap_lock *lock_of(void)
{
    ap_lock *l = NULL;
    ap_error err;
    ap_error_clear(&err);
    assert_int_equal(ap_lock_parse("lock", LOCK, strlen(LOCK), &l, &err), AP_OK);
    return l;
}

static void content(ap_lock *l, ap_oci_content *c)
{
    ap_oci_sig s;
    ap_error err;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "%s", AP_LOCK_SIG_NAME);
    s.buf = SIG;
    s.len = strlen(SIG);
    assert_int_equal(ap_oci_content_build(LOCK, strlen(LOCK), &s, 1, l, c, &err), AP_OK);
}

static void test_refs(void **state)
{
    ap_oci_ref r;
    ap_error err;
    (void)state;
    assert_int_equal(ap_oci_ref_parse("oci://127.0.0.1:5000/site/chat:1.0.0", &r, &err), AP_OK);
    assert_string_equal(r.host, "127.0.0.1:5000");
    assert_string_equal(r.repo, "site/chat");
    assert_string_equal(r.tag, "1.0.0");
    assert_int_equal(ap_oci_ref_parse("oci://reg.example/a/b/c", &r, &err), AP_OK);
    assert_string_equal(r.tag, "latest");
    assert_int_equal(ap_oci_ref_parse("oci://h:1/x@sha256:" H64, &r, &err), AP_OK);
    assert_string_equal(r.digest, "sha256:" H64);
    assert_string_equal(r.tag, "");
    assert_int_equal(ap_oci_ref_parse("oci://h/Upper:1", &r, &err), AP_ERR_INPUT);
    assert_int_equal(ap_oci_ref_parse("oci://h/a..b", &r, &err), AP_ERR_INPUT);
    assert_int_equal(ap_oci_ref_parse("oci://h/a:t@sha256:" H64, &r, &err), AP_ERR_INPUT);
    assert_int_equal(ap_oci_ref_parse("oci://h/a@sha256:abc", &r, &err), AP_ERR_INPUT);
    assert_int_equal(ap_oci_ref_parse("oci:///a", &r, &err), AP_ERR_INPUT);
    assert_int_equal(ap_oci_ref_parse("docker://h/a", &r, &err), AP_ERR_INPUT);
    assert_int_equal(ap_oci_ref_parse("oci://h/a:-bad", &r, &err), AP_ERR_INPUT);
}

static void test_roundtrip(void **state)
{
    ap_lock *l = lock_of();
    ap_oci_content c;
    ap_oci_top t;
    ap_oci_bundle_manifest bm;
    ap_error err;
    json_t *cfg;
    (void)state;
    content(l, &c);
    assert_int_equal(c.n_models, 1);
    assert_int_equal(ap_oci_top_parse("idx", c.index.buf, c.index.len, &t, &err), AP_OK);
    assert_true(t.is_index);
    assert_string_equal(t.bundle.digest, c.bundle.digest);
    assert_int_equal(t.n_models, 1);
    assert_string_equal(t.model_names[0], "m");
    ap_oci_top_release(&t);
    assert_int_equal(ap_oci_bundle_manifest_parse("bm", c.bundle.buf, c.bundle.len, &bm, &err),
                     AP_OK);
    assert_int_equal(bm.n_sigs, 1);
    assert_int_equal(bm.n_layers, 4);
    assert_int_equal(ap_oci_bundle_check("bm", &bm, l, &err), AP_OK);
    ap_oci_bundle_manifest_release(&bm);
    assert_int_equal(ap_oci_model_check("mm", c.models[0].manifest.buf, c.models[0].manifest.len,
                                        "m", l, &err),
                     AP_OK);
    assert_non_null(strstr(c.models[0].manifest.buf, "\"" AP_MP_MT_WEIGHT "\""));
    assert_non_null(strstr(c.models[0].manifest.buf, "\"" AP_MP_MT_DOC "\""));
    assert_non_null(strstr(c.models[0].manifest.buf, "\"org.cncf.model.filepath\":\"a.gguf\""));
    cfg = json_loadb(c.models[0].config.buf, c.models[0].config.len, 0, NULL);
    assert_non_null(cfg);
    assert_string_equal(json_string_value(json_object_get(json_object_get(cfg, "config"),
                                                          "paramSize")),
                        "8.0B");
    assert_string_equal(json_string_value(json_object_get(json_object_get(cfg, "config"),
                                                          "precision")),
                        "bf16");
    assert_int_equal(json_array_size(json_object_get(json_object_get(cfg, "modelfs"),
                                                     "diff_ids")),
                     2);
    json_decref(cfg);
    ap_oci_content_release(&c);
    ap_lock_free(l);
}

/* Parse the bundle manifest after edit() changed its JSON. */
static int edited(void (*edit)(json_t *), ap_lock *l, ap_error *err)
{
    ap_oci_content c;
    ap_oci_bundle_manifest bm;
    json_t *j;
    char *s;
    int rc;
    content(l, &c);
    j = json_loadb(c.bundle.buf, c.bundle.len, 0, NULL);
    edit(j);
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    rc = ap_oci_bundle_manifest_parse("bm", s, strlen(s), &bm, err);
    if (rc == AP_OK) {
        rc = ap_oci_bundle_check("bm", &bm, l, err);
        ap_oci_bundle_manifest_release(&bm);
    }
    free(s);
    ap_oci_content_release(&c);
    return rc;
}

static void extra_layer(json_t *j)
{
    json_t *ls = json_object_get(j, "layers");
    json_array_append(ls, json_array_get(ls, 1));
}
static void other_digest(json_t *j)
{
    json_t *l = json_array_get(json_object_get(j, "layers"), 2);
    json_object_set_new(l, "digest", json_string("sha256:" H64));
}
static void other_size(json_t *j)
{
    json_t *l = json_array_get(json_object_get(j, "layers"), 2);
    json_object_set_new(l, "size", json_integer(6));
}
static void no_sig(json_t *j)
{
    json_array_remove(json_object_get(j, "layers"), 0);
}
static void other_config(json_t *j)
{
    json_object_set_new(json_object_get(j, "config"), "mediaType",
                        json_string("application/vnd.oci.image.config.v1+json"));
}
static void negative_size(json_t *j)
{
    json_object_set_new(json_array_get(json_object_get(j, "layers"), 1), "size",
                        json_integer(-1));
}

static void test_refusals(void **state)
{
    ap_lock *l = lock_of();
    ap_error err;
    ap_oci_top t;
    static const char foreign[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"digest\":\"sha256:" H64 "\",\"size\":10,\"annotations\":{\"org.airpack.kind\":\"bundle\"}},"
        "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"digest\":\"sha256:" H64 "\",\"size\":10}]}";
    (void)state;
    assert_int_equal(edited(extra_layer, l, &err), AP_ERR_CHECK);
    assert_non_null(strstr(err.msg, "extra layer"));
    assert_int_equal(edited(other_digest, l, &err), AP_ERR_CHECK);
    assert_non_null(strstr(err.msg, "does not match the lock"));
    assert_int_equal(edited(other_size, l, &err), AP_ERR_CHECK);
    assert_int_equal(edited(no_sig, l, &err), AP_ERR_CHECK);
    assert_int_equal(edited(other_config, l, &err), AP_ERR_CHECK);
    assert_int_equal(edited(negative_size, l, &err), AP_ERR_CHECK);
    assert_int_equal(ap_oci_top_parse("idx", foreign, strlen(foreign), &t, &err), AP_ERR_CHECK);
    assert_non_null(strstr(err.msg, "extra content"));
    assert_int_equal(ap_oci_top_parse("idx", "[1]", 3, &t, &err), AP_ERR_CHECK);
    assert_int_equal(ap_oci_top_parse("idx", "{", 1, &t, &err), AP_ERR_CHECK);
    ap_lock_free(l);
}

struct buf {
    char *p;
    size_t n;
    size_t data_bytes;
};

static int out(void *ctx, const void *b, size_t len, int is_data, ap_error *err)
{
    struct buf *o = ctx;
    (void)err;
    o->p = realloc(o->p, o->n + len);
    memcpy(o->p + o->n, b, len);
    o->n += len;
    if (is_data)
        o->data_bytes += len;
    return AP_OK;
}

static int fill(void *ctx, size_t i, const ap_artifact *a, ap_tar_put_fn put, void *put_ctx,
                ap_error *err)
{
    char data[8];
    (void)ctx;
    (void)i;
    memset(data, 'x', sizeof data);
    return put(put_ctx, data, (size_t)a->size, err);
}

static void test_rebuild(void **state)
{
    ap_lock *l = lock_of();
    ap_oci_sig s;
    struct buf b = {NULL, 0, 0};
    ap_error err;
    (void)state;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "%s", AP_LOCK_SIG_NAME);
    s.buf = SIG;
    s.len = strlen(SIG);
    assert_int_equal(ap_tar_rebuild(LOCK, strlen(LOCK), &s, 1, l, fill, NULL, out, &b, &err),
                     AP_OK);
    assert_int_equal(b.data_bytes, 10);
    assert_int_equal(b.n % 512, 0);
    assert_memory_equal(b.p, AP_LOCK_NAME, strlen(AP_LOCK_NAME));
    assert_memory_equal(b.p + 257, "ustar", 5);
    /* mtime = created (2000-01-01 = 946684800 = 07033241600 octal) */
    assert_memory_equal(b.p + 136, "07033241600", 11);
    assert_memory_equal(b.p + 512, LOCK, strlen(LOCK));
    free(b.p);
    ap_lock_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_rebuild),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
