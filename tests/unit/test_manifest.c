/*
 * test_manifest.c - the manifest v1 parser: a valid manifest parses into
 * the right typed values; each malformed manifest fails with AP_ERR_INPUT
 * and an error at the right line and column that says what is wrong.
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

#include "manifest.h"
#include "util.h"

static char tmpdir[256];

static const char base[] =
    "apiVersion: airpack/v1\n"                        /* 1 */
    "kind: Deployment\n"                              /* 2 */
    "metadata:\n"                                     /* 3 */
    "  name: chat-assistant\n"                        /* 4 */
    "  version: 1.2.0\n"                              /* 5 */
    "  sequence: 12\n"                                /* 6 */
    "target:\n"                                       /* 7 */
    "  region: eu-central\n"                          /* 8 */
    "  gpu:\n"                                        /* 9 */
    "    model: nvidia-l40s\n"                        /* 10 */
    "    count: 2\n"                                  /* 11 */
    "  memory_utilization: 0.9\n"                     /* 12 */
    "models:\n"                                       /* 13 */
    "  - name: m1\n"                                  /* 14 */
    "    path: models/m.gguf\n"                       /* 15 */
    "    license: Apache-2.0\n"                       /* 16 */
    "    origin: { publisher: Acme, jurisdiction: DE }\n" /* 17 */
    "    serve:\n"                                    /* 18 */
    "      runtime: vllm\n"                           /* 19 */
    "      context: 8192\n"                           /* 20 */
    "      concurrency: 16\n"                         /* 21 */
    "      tensor_parallel: 2\n"                      /* 22 */
    "runtimes:\n"                                     /* 23 */
    "  - name: vllm\n"                                /* 24 */
    "    kind: vllm\n"                                /* 25 */
    "    path: runtimes/r/\n"                         /* 26 */
    "    env: { VLLM_NO_USAGE_STATS: \"1\" }\n"       /* 27 */
    "    listen: 127.0.0.1:8000\n"                    /* 28 */
    "files:\n"                                        /* 29 */
    "  - { path: config/, target: etc/x/ }\n";        /* 30 */

static void write_file(const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    char p[512];
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/airpack-test-manifest-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(p, sizeof p, "%s/models", tmpdir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/runtimes", tmpdir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/runtimes/r", tmpdir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/config", tmpdir);
    mkdir(p, 0755);
    write_file("models/m.gguf", "GGUF");
    write_file("runtimes/r/bin", "x");
    write_file("config/a.conf", "a=1\n");
    write_file("m.sha256", "0000000000000000000000000000000000000000000000000000000000000000  m.gguf\n");
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* base with the first occurrence of from replaced by to (new string). */
static char *subst(const char *from, const char *to)
{
    const char *at = strstr(base, from);
    size_t lf = strlen(from), lt = strlen(to), lb = strlen(base);
    char *out;
    assert_non_null(at);
    out = malloc(lb - lf + lt + 1);
    assert_non_null(out);
    memcpy(out, base, (size_t)(at - base));
    memcpy(out + (at - base), to, lt);
    memcpy(out + (at - base) + lt, at + lf, lb - (size_t)(at - base) - lf + 1);
    return out;
}

static int parse(const char *text, ap_manifest **m, ap_error *err, int allow_outside)
{
    ap_manifest_opts o = {allow_outside, 0};
    ap_error_clear(err);
    return ap_manifest_parse("t.yaml", tmpdir, text, strlen(text), &o, m, err);
}

static void test_valid(void **state)
{
    ap_manifest *m = NULL;
    ap_error err;
    (void)state;
    assert_int_equal(parse(base, &m, &err, 0), AP_OK);
    assert_string_equal(m->name, "chat-assistant");
    assert_string_equal(m->version, "1.2.0");
    assert_int_equal(m->sequence, 12);
    assert_string_equal(m->region, "eu-central");
    assert_string_equal(m->gpu_model, "nvidia-l40s");
    assert_int_equal(m->gpu_count, 2);
    assert_true(m->memory_utilization > 0.899 && m->memory_utilization < 0.901);
    assert_int_equal(m->n_models, 1);
    assert_string_equal(m->models[0].name, "m1");
    assert_false(m->models[0].src.is_dir);
    assert_int_equal(m->models[0].serve.context, 8192);
    assert_int_equal(m->models[0].serve.concurrency, 16);
    assert_int_equal(m->models[0].serve.tensor_parallel, 2);
    assert_int_equal(m->models[0].serve.kv_cache_dtype, AP_KV_AUTO);
    assert_string_equal(m->models[0].origin_jurisdiction, "DE");
    assert_int_equal(m->n_runtimes, 1);
    assert_int_equal(m->runtimes[0].kind, AP_RT_VLLM);
    assert_true(m->runtimes[0].src.is_dir);
    assert_int_equal(m->runtimes[0].n_env, 1);
    assert_string_equal(m->runtimes[0].env[0].key, "VLLM_NO_USAGE_STATS");
    assert_string_equal(m->runtimes[0].env[0].value, "1");
    assert_ptr_equal(ap_manifest_model_runtime(m, &m->models[0]), &m->runtimes[0]);
    assert_int_equal(m->n_files, 1);
    assert_string_equal(m->files[0].target, "etc/x/");

    ap_loc loc;
    assert_true(ap_manifest_locate(m, "models[0].origin.jurisdiction", &loc));
    assert_int_equal(loc.line, 17);
    assert_int_equal(loc.column, 46);
    assert_true(ap_manifest_locate(m, "runtimes[0].env.VLLM_NO_USAGE_STATS", &loc));
    assert_int_equal(loc.line, 27);
    assert_false(ap_manifest_locate(m, "models[3].name", &loc));

    json_t *j = ap_manifest_to_json(m);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                            json_array_get(json_object_get(j, "runtimes"), 0), "env"),
                                                          "VLLM_NO_USAGE_STATS")),
                        "1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "metadata"), "sequence")),
                     12);
    json_decref(j);
    ap_manifest_free(m);
}

static void test_defaults(void **state)
{
    ap_manifest *m = NULL;
    ap_error err;
    char *t = subst("      concurrency: 16\n      tensor_parallel: 2\n", "");
    char *t2;
    (void)state;
    t2 = strstr(t, "  memory_utilization: 0.9\n");
    memmove(t2, t2 + strlen("  memory_utilization: 0.9\n"),
            strlen(t2 + strlen("  memory_utilization: 0.9\n")) + 1);
    assert_int_equal(parse(t, &m, &err, 0), AP_OK);
    assert_int_equal(m->models[0].serve.concurrency, 1);
    assert_int_equal(m->models[0].serve.tensor_parallel, 1);
    assert_true(m->memory_utilization > 0.899 && m->memory_utilization < 0.901);
    assert_true(m->models[0].serve.overhead_gib < 0);
    ap_manifest_free(m);
    free(t);
}

static void test_outside_allowed(void **state)
{
    ap_manifest *m = NULL;
    ap_error err;
    char path[600], *t, from[] = "path: models/m.gguf";
    (void)state;
    snprintf(path, sizeof path, "path: %s/models/m.gguf", tmpdir);
    t = subst(from, path);
    assert_int_equal(parse(t, &m, &err, 0), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "absolute path"));
    assert_int_equal(parse(t, &m, &err, 1), AP_OK);
    ap_manifest_free(m);
    free(t);
}

static void test_pins_parse(void **state)
{
    ap_manifest *m = NULL;
    ap_error err;
    char *t = subst("    license: Apache-2.0\n",
                    "    license: Apache-2.0\n    sha256sums: m.sha256\n");
    (void)state;
    assert_int_equal(parse(t, &m, &err, 0), AP_OK);
    assert_string_equal(m->models[0].src.sha256sums, "m.sha256");
    assert_non_null(strstr(m->models[0].src.sha256sums_abs, "/m.sha256"));
    ap_manifest_free(m);
    free(t);
    t = subst("    license: Apache-2.0\n",
              "    license: Apache-2.0\n    sha256: "
              "ABCDEF0000000000000000000000000000000000000000000000000000000000\n");
    assert_int_equal(parse(t, &m, &err, 0), AP_OK);
    assert_string_equal(m->models[0].src.sha256,
                        "abcdef0000000000000000000000000000000000000000000000000000000000");
    ap_manifest_free(m);
    free(t);
}

struct bad {
    const char *from, *to;   /* substitution in base; from NULL: to is the whole text */
    unsigned line, column;
    const char *needle;      /* substring the message must contain */
};

static const struct bad bad_cases[] = {
    {"      tensor_parallel: 2\n", "      tensor_parallel: 2\n      rope_scaling: { type: ntk, factor: 4 }\n", 23, 29,
     "unknown type 'ntk'"},
    {"      tensor_parallel: 2\n", "      tensor_parallel: 2\n      rope_scaling: { type: yarn, factor: 1 }\n", 23, 43,
     "'factor' must be above 1"},
    {"      tensor_parallel: 2\n", "      tensor_parallel: 2\n      rope_scaling: { type: yarn }\n", 23, 21,
     "missing required key 'factor'"},
    {"      tensor_parallel: 2\n", "      tensor_parallel: 2\n      max_batch_tokens: 8192\n", 23, 7,
     "did you mean 'max_batched_tokens'"},
    {"      tensor_parallel: 2\n", "      tensor_parallel: 2\n      enforce_eager: maybe\n", 23, 22, "enforce_eager"},
    {"    license: Apache-2.0", "    licence: Apache-2.0", 16, 5, "did you mean 'license'"},
    {"apiVersion: airpack/v1\n", "", 1, 1, "missing required key 'apiVersion'"},
    {"apiVersion: airpack/v1", "apiVersion: airpack/v2", 1, 13, "unsupported apiVersion"},
    {"kind: Deployment", "kind: Deploy", 2, 7, "unsupported kind"},
    {"metadata:\n  name: chat-assistant\n  version: 1.2.0\n  sequence: 12\n",
     "metadata: [1, 2]\n", 3, 11, "'metadata' must be a mapping"},
    {"  name: chat-assistant", "  name: Chat_Bad", 4, 9, "invalid name 'Chat_Bad'"},
    {"  version: 1.2.0", "  version: 1.2 beta", 5, 12, "invalid version"},
    {"  sequence: 12", "  sequence: -1", 6, 13, "whole number"},
    {"  sequence: 12", "  sequence: twelve", 6, 13, "whole number"},
    {"    count: 2", "    count: 0", 11, 12, "'count' must be between 1"},
    {"  memory_utilization: 0.9", "  memory_utilization: 1.5", 12, 23, "above 0 and at most 1"},
    {"  memory_utilization: 0.9", "  memory_utilization: 0", 12, 23, "above 0 and at most 1"},
    {"      context: 8192", "      context: 0", 20, 16, "'context' must be between 1"},
    {"      concurrency: 16", "      concurrency: 0", 21, 20, "'concurrency' must be between 1"},
    {"      tensor_parallel: 2", "      tensor_parallel: 0", 22, 24,
     "'tensor_parallel' must be between 1"},
    {"    kind: vllm", "    kind: vlm", 25, 11, "did you mean 'vllm'"},
    {"  sequence: 12\n", "  sequence: 12\n  name: again\n", 7, 3, "duplicate key 'name'"},
    {"models:", "model:", 13, 1, "did you mean 'models'"},
    {"path: models/m.gguf", "path: /etc/passwd", 15, 11, "absolute path '/etc/passwd'"},
    {"path: models/m.gguf", "path: ../../etc/passwd", 15, 11, "outside the manifest's folder"},
    {"path: models/m.gguf", "path: models/none.gguf", 15, 11, "does not exist"},
    {"    license: Apache-2.0\n", "    license: Apache-2.0\n    sha256: abc123\n", 17, 13,
     "64 hexadecimal digits"},
    {"    license: Apache-2.0\n",
     "    license: Apache-2.0\n    sha256sums: m.sha256\n    sha256: "
     "0000000000000000000000000000000000000000000000000000000000000000\n",
     17, 17, "either 'sha256' or 'sha256sums'"},
    {"  name: chat-assistant", "  name: &a chat-assistant", 4, 9, "anchors and aliases"},
    {"      runtime: vllm", "      runtime: vlm", 19, 16, "did you mean 'vllm'"},
    {"      context: 8192", "      context: 8192\n      kv_cache_dtype: fp4", 21, 23,
     "unknown kv_cache_dtype 'fp4'"},
    {"    env: { VLLM_NO_USAGE_STATS: \"1\" }", "    env: { VLLM_NO_USAGE_STATS: [1] }", 27, 33,
     "must be a string"},
    {"target: etc/x/", "target: ../x", 30, 30, "safe relative path"},
    {"kind: Deployment\n", "kind: Deployment\n\tbad: tab\n", 3, 1, "invalid YAML"},
    {"runtimes:\n", "  - name: m1\n    path: models/m.gguf\nruntimes:\n", 23, 11,
     "duplicate model name 'm1'"},
    {"    model: nvidia-l40s\n", "", 10, 5, "needs 'model'"},
    {"    path: runtimes/r/", "    path: runtimes/r/bin/", 26, 11, "is a file, not a folder"},
    {"    path: models/m.gguf", "    path: config/", 15, 11, ""},
    {NULL, "", 1, 1, "the manifest is empty"},
    {NULL, "apiVersion: airpack/v1\n---\nkind: x\n", 2, 1, "more than one YAML document"},
    {NULL, "- a\n- b\n", 1, 1, "must be a mapping"},
    {NULL,
     "apiVersion: airpack/v1\nkind: Deployment\nmetadata: {name: a, version: '1', sequence: 1}\n"
     "target: {gpu: {model: nvidia-l4, count: 1}}\nmodels: []\n",
     5, 9, "at least one model"},
};

/* serve.max_batched_tokens, enforce_eager, pipeline_parallel, rope_scaling */
static void test_memory_keys(void **state)
{
    (void)state;
    ap_manifest *m = NULL;
    ap_error err;
    char *t = subst("      tensor_parallel: 2\n",
                    "      tensor_parallel: 2\n      max_batched_tokens: 4096\n      enforce_eager: true\n"
                    "      pipeline_parallel: 2\n      rope_scaling: { type: yarn, factor: 4, original_context: 32768 }\n");
    assert_int_equal(parse(t, &m, &err, 0), AP_OK);
    assert_int_equal(m->models[0].serve.max_batched_tokens, 4096);
    assert_int_equal(m->models[0].serve.enforce_eager, 1);
    assert_int_equal(m->models[0].serve.pipeline_parallel, 2);
    assert_string_equal(m->models[0].serve.rope_type, "yarn");
    assert_true(m->models[0].serve.rope_factor == 4.0);
    assert_int_equal(m->models[0].serve.rope_original_context, 32768);
    ap_manifest_free(m);
    free(t);
    assert_int_equal(parse(base, &m, &err, 0), AP_OK);
    assert_int_equal(m->models[0].serve.pipeline_parallel, 1);
    assert_int_equal(m->models[0].serve.max_batched_tokens, 0);
    assert_null(m->models[0].serve.rope_type);
    ap_manifest_free(m);
}

static void test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad *b = &bad_cases[i];
        ap_manifest *m = NULL;
        ap_error err;
        char *t = b->from ? subst(b->from, b->to) : strdup(b->to);
        int rc = parse(t, &m, &err, 0);
        if (b->needle[0] == '\0') {
            /* a folder where a file was: still valid (a model may be a folder) */
            assert_int_equal(rc, AP_OK);
            ap_manifest_free(m);
            free(t);
            continue;
        }
        if (rc != AP_ERR_INPUT || err.line != b->line || err.column != b->column ||
            !strstr(err.msg, b->needle) || strncmp(err.msg, "'t.yaml'", 8) != 0) {
            print_error("case %zu: rc=%d line=%u column=%u msg=%s\n  expected line %u column %u "
                        "and '%s'\n",
                        i, rc, err.line, err.column, err.msg, b->line, b->column, b->needle);
            fail();
        }
        assert_null(m);
        free(t);
    }
}

static void test_yaml_bombs(void **state)
{
    ap_manifest *m = NULL;
    ap_error err;
    char *deep;
    size_t n = 200;
    (void)state;
    /* deep nesting: [[[[...]]]] */
    deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    assert_int_equal(parse(deep, &m, &err, 0), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "nesting deeper"));
    free(deep);
    /* billion laughs */
    const char *lol = "a: &a [x, x, x, x, x, x, x, x, x]\n"
                      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                      "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
    assert_int_equal(parse(lol, &m, &err, 0), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "anchors and aliases"));
    /* huge document */
    size_t big = (1u << 20) + 10;
    char *huge = malloc(big + 1);
    memset(huge, '#', big);
    huge[big] = '\0';
    assert_int_equal(parse(huge, &m, &err, 0), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "limit"));
    free(huge);
    /* custom tags */
    assert_int_equal(parse("a: !!python/object:os.system x\n", &m, &err, 0), AP_ERR_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),           cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_outside_allowed), cmocka_unit_test(test_pins_parse),
        cmocka_unit_test(test_bad),             cmocka_unit_test(test_yaml_bombs),
        cmocka_unit_test(test_memory_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
