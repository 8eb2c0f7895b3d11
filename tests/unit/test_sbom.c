/*
 * test_sbom.c - the CycloneDX 1.6 SBOM: machine-learning-model components
 * with hashes, licences (SPDX id, expression or name), model card
 * parameters from the facts and origin properties; runtimes and files;
 * nested file components from a lock's artifacts; a deterministic serial
 * number; and the output validates against tests/schemas/bom-1.6
 * (with spdx and jsf beside it) using python3-jsonschema.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"
#include "sbom.h"

#define SCHEMAS AIRPACK_SRC "/tests/schemas"
#define H64A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define H64B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const char *analysis_text =
    "{\"tool\": {\"name\": \"airpack\", \"version\": \"0.1.0\"}, \"manifest_file\": \"/nonexistent/m.yaml\","
    " \"manifest\": {\"metadata\": {\"name\": \"chat\", \"version\": \"1.2.0\", \"sequence\": 12},"
    "   \"target\": {\"site\": \"fra\", \"region\": \"eu-central\"},"
    "   \"models\": [{\"name\": \"llama\", \"path\": \"models/llama\", \"path_kind\": \"folder\","
    "      \"sha256sums\": \"models/llama.sha256\", \"license\": \"LicenseRef-llama-3.1\","
    "      \"origin\": {\"publisher\": \"Meta\", \"jurisdiction\": \"US\","
    "                  \"source\": \"https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct\"},"
    "      \"serve\": {\"runtime\": \"vllm\"},"
    "      \"facts\": {\"format\": \"safetensors\", \"architecture\": \"LlamaForCausalLM\","
    "                 \"parameters\": 8030261248, \"layers\": 32, \"context_length\": 131072, \"dtype\": \"bfloat16\"}},"
    "     {\"name\": \"tiny\", \"path\": \"tiny.gguf\", \"path_kind\": \"file\", \"sha256\": \"" H64A "\","
    "      \"license\": \"Apache-2.0\"},"
    "     {\"name\": \"odd\", \"path\": \"odd.gguf\", \"license\": \"Some Custom Licence\"}],"
    "   \"runtimes\": [{\"name\": \"vllm\", \"kind\": \"vllm\", \"version\": \"0.6.6\", \"license\": \"Apache-2.0\","
    "      \"path\": \"runtimes/vllm\", \"listen\": \"127.0.0.1:8000\"}],"
    "   \"files\": [{\"path\": \"config/\", \"target\": \"etc/chat/\"}]}}";

static void validate(const json_t *bom, int want_ok)
{
    char path[] = "/tmp/ap-test-sbom-XXXXXX", cmd[2048];
    int fd = mkstemp(path), rc;
    FILE *f;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(json_dumpf(bom, f, JSON_INDENT(1)), 0);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 - '%s' '%s' %s <<'PY'\n"
             "import json, sys\n"
             "from jsonschema import Draft7Validator, RefResolver\n"
             "d = sys.argv[1]\n"
             "store = {}\n"
             "for n in ['bom-1.6.schema.json', 'spdx.schema.json', 'jsf-0.82.schema.json']:\n"
             "    s = json.load(open(d + '/' + n)); store[s.get('$id', n)] = s; store[n] = s\n"
             "bom = store['bom-1.6.schema.json']\n"
             "v = Draft7Validator(bom, resolver=RefResolver(base_uri=bom.get('$id', ''), referrer=bom, store=store))\n"
             "errs = list(v.iter_errors(json.load(open(sys.argv[2]))))\n"
             "for e in errs[:5]: print(list(e.path), e.message[:300], file=sys.stderr)\n"
             "sys.exit(1 if errs else 0)\n"
             "PY",
             SCHEMAS, path, want_ok ? "" : "2>/dev/null");
    rc = system(cmd);
    unlink(path);
    if (want_ok)
        assert_int_equal(rc, 0);
    else
        assert_int_not_equal(rc, 0);
}

static const json_t *component(const json_t *bom, const char *ref)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(bom, "components"), i, c)
        if (!strcmp(json_string_value(json_object_get(c, "bom-ref")), ref))
            return c;
    fail_msg("no component '%s'", ref);
    return NULL;
}

static const char *prop(const json_t *props, const char *name)
{
    size_t i;
    const json_t *p;
    json_array_foreach(props, i, p)
        if (!strcmp(json_string_value(json_object_get(p, "name")), name))
            return json_string_value(json_object_get(p, "value"));
    return NULL;
}

static void test_from_analysis(void **state)
{
    json_t *a = json_loads(analysis_text, 0, NULL), *bom = NULL, *bom2 = NULL;
    const json_t *c;
    ap_error err;
    (void)state;
    assert_non_null(a);
    unsetenv("SOURCE_DATE_EPOCH");
    assert_int_equal(ap_sbom_build(a, NULL, &bom, &err), AP_OK);
    assert_string_equal(json_string_value(json_object_get(bom, "specVersion")), "1.6");
    assert_null(json_object_get(json_object_get(bom, "metadata"), "timestamp"));
    c = component(bom, "model:llama");
    assert_string_equal(json_string_value(json_object_get(c, "type")), "machine-learning-model");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(c, "licenses"), 0),
                                                          "expression")), "LicenseRef-llama-3.1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(c, "modelCard"),
                                                          "modelParameters"), "modelArchitecture")),
                        "LlamaForCausalLM");
    assert_string_equal(prop(json_object_get(json_object_get(c, "modelCard"), "properties"),
                             "airpack:parameters"), "8030261248");
    assert_string_equal(prop(json_object_get(c, "properties"), "airpack:origin:jurisdiction"), "US");
    assert_string_equal(json_string_value(json_object_get(c, "publisher")), "Meta");
    c = component(bom, "model:tiny");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(c, "hashes"), 0),
                                                          "content")), H64A);
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(
                            json_object_get(c, "licenses"), 0), "license"), "id")), "Apache-2.0");
    c = component(bom, "model:odd");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(
                            json_object_get(c, "licenses"), 0), "license"), "name")),
                        "Some Custom Licence");
    c = component(bom, "runtime:vllm");
    assert_string_equal(json_string_value(json_object_get(c, "version")), "0.6.6");
    assert_string_equal(prop(json_object_get(c, "properties"), "airpack:runtime:kind"), "vllm");
    validate(bom, 1);
    /* deterministic */
    assert_int_equal(ap_sbom_build(a, NULL, &bom2, &err), AP_OK);
    assert_true(json_equal(bom, bom2));
    json_decref(bom2);
    /* a timestamp from SOURCE_DATE_EPOCH */
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    assert_int_equal(ap_sbom_build(a, NULL, &bom2, &err), AP_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(bom2, "metadata"), "timestamp")),
                        "2023-11-14T22:13:20Z");
    unsetenv("SOURCE_DATE_EPOCH");
    json_decref(bom2);
    /* the validator does refuse a broken SBOM */
    json_object_set_new(json_array_get(json_object_get(bom, "components"), 0), "type",
                        json_string("model"));
    validate(bom, 0);
    json_decref(bom);
    json_decref(a);
}

static void test_from_lock(void **state)
{
    json_t *a = json_loads(analysis_text, 0, NULL), *lock, *bom = NULL;
    const json_t *c, *sub;
    ap_error err;
    (void)state;
    lock = json_pack("{s:s,s:{s:s},s:o,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "format",
                     "airpack-bundle/1", "metadata", "created", "2026-01-02T03:04:05Z", "analysis", a,
                     "artifacts", "path", "payload/models/llama/config.json", "sha256", H64A, "path",
                     "payload/models/llama/model.safetensors", "sha256", H64B, "path",
                     "payload/runtimes/vllm/vllm.whl", "sha256", H64B, "path",
                     "payload/files/etc/chat/app.conf", "sha256", H64A);
    assert_non_null(lock);
    assert_int_equal(ap_sbom_build(NULL, lock, &bom, &err), AP_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(bom, "metadata"), "timestamp")),
                        "2026-01-02T03:04:05Z");
    c = component(bom, "model:llama");
    sub = json_object_get(c, "components");
    assert_int_equal(json_array_size(sub), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(sub, 1), "name")),
                        "model.safetensors");
    c = component(bom, "runtime:vllm");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(c, "hashes"), 0),
                                                          "content")), H64B);
    validate(bom, 1);
    json_decref(bom);
    json_decref(lock);
}

static void test_errors(void **state)
{
    json_t *bom = NULL, *a = json_object();
    ap_error err;
    (void)state;
    assert_int_equal(ap_sbom_build(a, NULL, &bom, &err), AP_ERR_INPUT);
    assert_null(bom);
    json_decref(a);
}

/* Every SPDX id airpack emits as license.id is in the schema's enum. */
static void test_spdx_ids_in_schema(void **state)
{
    json_error_t je;
    json_t *s = json_load_file(SCHEMAS "/spdx.schema.json", 0, &je), *e;
    const char *const *ids = ap_spdx_ids();
    (void)state;
    assert_non_null(s);
    for (size_t i = 0; ids[i]; i++) {
        size_t k;
        int found = 0;
        json_array_foreach(json_object_get(s, "enum"), k, e)
            if (!strcmp(json_string_value(e), ids[i]))
                found = 1;
        if (!found)
            fail_msg("'%s' is not in spdx.schema.json", ids[i]);
    }
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_analysis),
        cmocka_unit_test(test_from_lock),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_spdx_ids_in_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
