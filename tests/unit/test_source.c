/*
 * test_source.c - include/exclude globs and hub cache paths (src/source/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "source/oci.h"
#include "source/ollama.h"
#include "source/source.h"

static void test_glob(void **state)
{
    (void)state;
    /* no '/': the file's name at any depth */
    assert_true(ap_glob_match("*.pth", "original/consolidated.00.pth"));
    assert_true(ap_glob_match("*.pth", "a.pth"));
    assert_false(ap_glob_match("*.pth", "a.pth.txt"));
    /* with '/': the whole path */
    assert_true(ap_glob_match("original/*.pth", "original/x.pth"));
    assert_false(ap_glob_match("original/*.pth", "sub/original/x.pth"));
    assert_false(ap_glob_match("original/*.pth", "original/deeper/x.pth"));
    /* '**' */
    assert_true(ap_glob_match("**/x.json", "x.json"));
    assert_true(ap_glob_match("**/x.json", "a/b/x.json"));
    assert_true(ap_glob_match("a/**/b", "a/b"));
    assert_true(ap_glob_match("a/**/b", "a/1/2/b"));
    assert_false(ap_glob_match("a/**/b", "a/1/2/c"));
    assert_true(ap_glob_match("original/**", "original/x/y.pth"));
    assert_false(ap_glob_match("original/**", "original"));
    assert_true(ap_glob_match("**", "anything/at/all"));
    /* trailing '/': everything below the folder */
    assert_true(ap_glob_match("original/", "original/consolidated.00.pth"));
    assert_true(ap_glob_match("./original/", "original/a/b"));
    assert_false(ap_glob_match("original/", "originals/a"));
    assert_false(ap_glob_match("", "a"));
    /* '*' does not cross '/' */
    assert_false(ap_glob_match("o*/x", "o/y/x"));
    assert_true(ap_glob_match("model-*-of-*.safetensors", "model-00001-of-00004.safetensors"));
}

static void test_filter(void **state)
{
    char *inc[] = {"*.json", "model-*"}, *exc[] = {"original/", "consolidated.safetensors"};
    ap_mpath p = {0};
    const char *why;
    (void)state;
    assert_true(ap_input_filter(&p, "anything", &why));
    p.exclude = exc;
    p.n_exclude = 2;
    assert_false(ap_input_filter(&p, "original/params.json", &why));
    assert_string_equal(why, "original/");
    assert_false(ap_input_filter(&p, "consolidated.safetensors", &why));
    assert_string_equal(why, "consolidated.safetensors");
    assert_true(ap_input_filter(&p, "model-1.safetensors", &why));
    p.include = inc;
    p.n_include = 2;
    assert_false(ap_input_filter(&p, "tokenizer.model", &why));
    assert_string_equal(why, "(not included)");
    assert_true(ap_input_filter(&p, "config.json", &why));
    assert_false(ap_input_filter(&p, "original/params.json", &why));
}

static void test_hf_locate(void **state)
{
    char *repo, *rev;
    (void)state;
    assert_int_equal(ap_hf_locate("/h/models--a--b/snapshots/abc/sub/f", &repo, &rev), 1);
    assert_string_equal(repo, "/h/models--a--b");
    assert_string_equal(rev, "abc");
    free(repo);
    free(rev);
    assert_int_equal(ap_hf_locate("hub/models--a--b/snapshots/abc", &repo, &rev), 1);
    assert_string_equal(rev, "abc");
    free(repo);
    free(rev);
    assert_int_equal(ap_hf_locate("/h/other/snapshots/abc", &repo, &rev), 0);
    assert_int_equal(ap_hf_locate("/h/models--a--b/snapshots/", &repo, &rev), 0);
    assert_int_equal(ap_hf_locate("/h/models--a--b", &repo, &rev), 0);
}

static void test_hf_resolve_refuses(void **state)
{
    char *snap = NULL;
    ap_error err;
    (void)state;
    setenv("HF_HUB_CACHE", "/nonexistent-hub", 1);
    assert_int_equal(ap_hf_resolve("hf://a", &snap, &err), AP_ERR_INPUT);
    assert_int_equal(ap_hf_resolve("hf://../x", &snap, &err), AP_ERR_INPUT);
    assert_int_equal(ap_hf_resolve("hf://a/../../etc", &snap, &err), AP_ERR_INPUT);
    assert_int_equal(ap_hf_resolve("hf://a/b@../../x", &snap, &err), AP_ERR_INPUT);
    assert_int_equal(ap_hf_resolve("hf://a/b", &snap, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "not in the Hugging Face cache"));
    assert_null(snap);
}

#define H0 "0000000000000000000000000000000000000000000000000000000000000000"
#define H1 "1111111111111111111111111111111111111111111111111111111111111111"

static int ollama(const char *json, ap_ollama_manifest *m)
{
    ap_error err;
    return ap_ollama_manifest_parse("t", json, strlen(json), m, &err);
}

static void test_ollama_manifest(void **state)
{
    ap_ollama_manifest m;
    char name[128];
    (void)state;
    assert_int_equal(ollama("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" AP_OLLAMA_MT_CONFIG
                            "\",\"digest\":\"sha256:" H0 "\",\"size\":3},\"layers\":["
                            "{\"mediaType\":\"" AP_OLLAMA_MT_MODEL "\",\"digest\":\"sha256:" H1
                            "\",\"size\":10},{\"mediaType\":\"" AP_OLLAMA_MT_LICENSE
                            "\",\"digest\":\"sha256:" H0 "\",\"size\":0}]}",
                            &m),
                     AP_OK);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.model, 1);
    assert_string_equal(ap_ollama_layer_name(&m.layers[0], name, sizeof name), "config.json");
    assert_string_equal(ap_ollama_layer_name(&m.layers[1], name, sizeof name), "model.gguf");
    assert_string_equal(ap_ollama_layer_name(&m.layers[2], name, sizeof name), "license");
    assert_int_equal(m.layers[1].size, 10);
    ap_ollama_manifest_release(&m);
    /* hostile: digests that are paths, upper case, negative sizes, two models */
    assert_int_equal(ollama("{\"layers\":[{\"mediaType\":\"x\",\"digest\":\"sha256:../../etc/passwd\",\"size\":1}]}", &m), AP_ERR_INPUT);
    assert_int_equal(ollama("{\"layers\":[{\"mediaType\":\"x\",\"digest\":\"sha256:" "AB00000000000000000000000000000000000000000000000000000000000000" "\",\"size\":1}]}", &m), AP_ERR_INPUT);
    assert_int_equal(ollama("{\"layers\":[{\"mediaType\":\"x\",\"digest\":\"sha256:" H0 "\",\"size\":-1}]}", &m), AP_ERR_INPUT);
    assert_int_equal(ollama("{\"layers\":[{\"mediaType\":\"" AP_OLLAMA_MT_MODEL "\",\"digest\":\"sha256:" H0 "\",\"size\":1},"
                            "{\"mediaType\":\"" AP_OLLAMA_MT_MODEL "\",\"digest\":\"sha256:" H1 "\",\"size\":1}]}", &m),
                     AP_ERR_INPUT);
    assert_int_equal(ollama("[]", &m), AP_ERR_INPUT);
    assert_int_equal(ollama("{\"layers\": 1}", &m), AP_ERR_INPUT);
}

static void test_license_text(void **state)
{
    const char *llama = "  LLAMA 3.1 COMMUNITY LICENSE AGREEMENT\nLlama 3.1 Version Release Date";
    const char *apache = "\n                                 Apache License\n                           Version 2.0, January 2004\n";
    (void)state;
    assert_string_equal(ap_license_from_text(llama, strlen(llama)), "LicenseRef-llama3.1-community");
    assert_string_equal(ap_license_from_text(apache, strlen(apache)), "Apache-2.0");
    assert_null(ap_license_from_text("Apache License\nVersion 1.1", 26));
    assert_string_equal(ap_license_from_text("Gemma Terms of Use", 18), "LicenseRef-gemma");
    assert_null(ap_license_from_text("some text", 9));
    /* not NUL-terminated: only len bytes are read */
    assert_null(ap_license_from_text("MIT Licensexxxx", 5));
}

static void test_oci_parse(void **state)
{
    ap_oci_doc d;
    ap_error err;
    const char *idx = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" AP_OCI_MT_MANIFEST
                      "\",\"digest\":\"sha256:" H0 "\",\"size\":7,\"platform\":{\"os\":\"linux\","
                      "\"architecture\":\"arm64\"},\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}";
    const char *man = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" AP_OCI_MT_CONFIG
                      "\",\"digest\":\"sha256:" H1 "\",\"size\":2},\"layers\":[]}";
    (void)state;
    assert_int_equal(ap_oci_parse("index.json", idx, strlen(idx), &d, &err), AP_OK);
    assert_true(d.is_index);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.d[0].size, 7);
    assert_non_null(d.d[0].platform);
    ap_oci_doc_release(&d);
    assert_int_equal(ap_oci_parse("m", man, strlen(man), &d, &err), AP_OK);
    assert_false(d.is_index);
    assert_string_equal(d.config.hex, H1);
    ap_oci_doc_release(&d);
    /* sha512 and missing sizes are refused; a manifest needs its config */
    assert_int_equal(ap_oci_parse("x", "{\"manifests\":[{\"digest\":\"sha512:00\",\"size\":1}]}", 47, &d, &err), AP_ERR_INPUT);
    assert_int_equal(ap_oci_parse("x", "{\"layers\":[]}", 13, &d, &err), AP_ERR_INPUT);
    assert_int_equal(ap_oci_parse("x", "{}", 2, &d, &err), AP_ERR_INPUT);
}

static void test_docker_manifest(void **state)
{
    ap_docker_image *im = NULL;
    size_t n = 0;
    ap_error err;
    const char *ok = "[{\"Config\":\"" H0 ".json\",\"RepoTags\":[\"localhost/x:1\"],\"Layers\":[\"a/layer.tar\"]}]";
    const char *climb = "[{\"Config\":\"../c.json\",\"Layers\":[]}]";
    const char *abs = "[{\"Config\":\"c.json\",\"Layers\":[\"/etc/passwd\"]}]";
    (void)state;
    assert_int_equal(ap_docker_manifest_parse("m", ok, strlen(ok), &im, &n, &err), AP_OK);
    assert_int_equal(n, 1);
    assert_string_equal(im[0].layers[0], "a/layer.tar");
    assert_string_equal(im[0].tags[0], "localhost/x:1");
    ap_docker_images_free(im, n);
    assert_int_equal(ap_docker_manifest_parse("m", climb, strlen(climb), &im, &n, &err), AP_ERR_INPUT);
    assert_int_equal(ap_docker_manifest_parse("m", abs, strlen(abs), &im, &n, &err), AP_ERR_INPUT);
    assert_int_equal(ap_docker_manifest_parse("m", "[]", 2, &im, &n, &err), AP_ERR_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_hf_locate),
        cmocka_unit_test(test_hf_resolve_refuses),
        cmocka_unit_test(test_ollama_manifest),
        cmocka_unit_test(test_license_text),
        cmocka_unit_test(test_oci_parse),
        cmocka_unit_test(test_docker_manifest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
