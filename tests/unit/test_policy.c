/*
 * test_policy.c - policy packs: strict loading (errors with line and
 * column), parameters and their site overrides, the evaluation semantics
 * (each/when bindings, required, allow/deny/equals/match/min/max/contains,
 * any_of/all_of), the built-ins, and every rule of every shipped pack
 * against the compliant manifest tests/policy/compliant.yaml (no findings)
 * and its failing variant from tests/policy/cases.json (a finding).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze.h"
#include "manifest.h"
#include "policy.h"
#include "util.h"

static const char *const packs[] = {"baseline", "offline-runtime", "eu-sovereignty",
                                    "nist-800-53"};

static char tmpdir[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static ap_policy *parse_pack(const char *text, ap_error *err)
{
    ap_policy *p = NULL;
    int rc = ap_policy_parse("t.yaml", text, strlen(text), &p, err);
    if (rc != AP_OK)
        return NULL;
    return p;
}

#define PACK_HEAD "apiVersion: airpack/v1\nkind: PolicyPack\nmetadata: {name: t}\n"

static void expect_load_error(const char *text, const char *needle, unsigned line)
{
    ap_error err;
    ap_error_clear(&err);
    assert_null(parse_pack(text, &err));
    if (!strstr(err.msg, needle))
        fail_msg("error '%s' lacks '%s'", err.msg, needle);
    assert_int_equal(err.status, AP_ERR_INPUT);
    if (line)
        assert_int_equal(err.line, line);
}

static void test_load_errors(void **state)
{
    (void)state;
    expect_load_error(PACK_HEAD "rules:\n  - id: A\n    titel: x\n", "unknown key 'titel'", 6);
    expect_load_error(PACK_HEAD "rules:\n  - id: A\n    title: x\n    severity: fatal\n"
                      "    controls: []\n    rationale: r\n    check: {path: a, required: true}\n",
                      "severity must be error, warning or note", 7);
    expect_load_error(PACK_HEAD "rules:\n  - id: A\n    title: x\n    severity: error\n"
                      "    controls: []\n    rationale: r\n    check: {path: a, match: '('}\n",
                      "not a valid POSIX extended regex", 10);
    expect_load_error(PACK_HEAD "rules:\n  - id: A\n    title: x\n    severity: error\n"
                      "    controls: []\n    rationale: r\n    check: {path: a, allow: $nope}\n",
                      "undeclared parameter 'nope'", 10);
    expect_load_error(PACK_HEAD "rules:\n  - id: A\n    title: x\n    severity: error\n"
                      "    controls: []\n    rationale: r\n    check: {path: 'a[x]', required: true}\n",
                      "malformed path", 10);
    expect_load_error(PACK_HEAD "rules:\n  - id: A\n    title: x\n    severity: error\n"
                      "    controls: []\n    rationale: r\n    check: {path: a}\n",
                      "has no test", 10);
    expect_load_error(PACK_HEAD "rules:\n  - {id: A, title: x, severity: error, controls: [], "
                      "rationale: r, builtin: pined}\n", "unknown builtin 'pined' (did you mean 'pinned'?)", 5);
    expect_load_error(PACK_HEAD "rules:\n  - {id: A, title: x, severity: note, controls: [], "
                      "rationale: r, builtin: pinned}\n  - {id: A, title: y, severity: note, "
                      "controls: [], rationale: r, builtin: pinned}\n", "duplicate rule id 'A'", 6);
    expect_load_error("apiVersion: airpack/v2\nkind: PolicyPack\n", "apiVersion must be", 1);
    expect_load_error(PACK_HEAD "params: {l: [a]}\nrules:\n  - {id: A, title: x, severity: note, "
                      "controls: [], rationale: r, check: {path: a, equals: $l}}\n",
                      "must be a single value", 6);
}

/* Evaluate a pack text over an analysis text; return the findings. */
static json_t *eval_text(const char *pack, const char *analysis)
{
    ap_error err;
    ap_policy *p;
    json_t *a = json_loads(analysis, 0, NULL), *f = json_array();
    ap_error_clear(&err);
    p = parse_pack(pack, &err);
    if (!p)
        fail_msg("%s", err.msg);
    assert_non_null(a);
    assert_int_equal(ap_policy_eval(p, a, f, &err), AP_OK);
    ap_policy_free(p);
    json_decref(a);
    return f;
}

static const char *finding_msg(const json_t *f, size_t i)
{
    return json_string_value(json_object_get(json_array_get(f, i), "message"));
}

static void test_semantics(void **state)
{
    const char *doc =
        "{\"manifest\": {\"target\": {\"region\": \"us-east-1\"},"
        " \"runtimes\": [{\"name\": \"a\", \"kind\": \"vllm\", \"env\": {\"X\": \"0\"},"
        "                 \"args\": [\"--ok\", \"--bad=https://x\"]},"
        "                {\"name\": \"b\", \"kind\": \"ollama\", \"env\": {}},"
        "                {\"name\": \"c\", \"kind\": \"vllm\", \"env\": {\"X\": \"1\"}, \"n\": 7}]}}";
    json_t *f;
    (void)state;
    /* when binds the same runtime; missing fails only required */
    f = eval_text(PACK_HEAD "rules:\n  - {id: R, title: t, severity: error, controls: [C-1], "
                  "rationale: r, when: {path: 'runtimes[*].kind', equals: vllm}, "
                  "check: {path: 'runtimes[*].env.X', required: true, equals: '1'}}\n", doc);
    if (json_array_size(f) != 1)
        fail_msg("%s", json_dumps(f, 0));
    assert_string_equal(finding_msg(f, 0), "runtime 'a': env.X is '0', must be exactly '1'");
    assert_string_equal(json_string_value(json_object_get(json_array_get(f, 0), "subject")),
                        "runtimes[0]");
    assert_string_equal(json_string_value(json_object_get(json_array_get(f, 0), "path")),
                        "runtimes[0].env.X");
    assert_string_equal(json_string_value(json_object_get(json_array_get(f, 0), "subject_name")),
                        "a");
    assert_string_equal(json_string_value(json_object_get(json_array_get(f, 0), "pack")), "t");
    json_decref(f);
    /* without when: runtime b misses X */
    f = eval_text(PACK_HEAD "rules:\n  - {id: R, title: t, severity: error, controls: [], "
                  "rationale: r, check: {path: 'runtimes[*].env.X', required: true}}\n", doc);
    assert_int_equal(json_array_size(f), 1);
    assert_string_equal(finding_msg(f, 0), "runtime 'b': env.X is not set");
    json_decref(f);
    /* allow with patterns, and a parameter */
    f = eval_text(PACK_HEAD "params: {regions: ['eu-*', DE]}\nrules:\n  - {id: R, title: t, "
                  "severity: warning, controls: [], rationale: r, "
                  "check: {path: target.region, allow: $regions}}\n", doc);
    assert_int_equal(json_array_size(f), 1);
    assert_string_equal(finding_msg(f, 0),
                        "target.region is 'us-east-1', not in the allowed list (eu-*, DE)");
    assert_string_equal(json_string_value(json_object_get(json_array_get(f, 0), "subject")),
                        "target");
    json_decref(f);
    /* arrays are tested item by item */
    f = eval_text(PACK_HEAD "rules:\n  - {id: R, title: t, severity: error, controls: [], "
                  "rationale: r, check: {path: 'runtimes[*].args', not_match: 'https?://'}}\n", doc);
    assert_int_equal(json_array_size(f), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(f, 0), "path")),
                        "runtimes[0].args[1]");
    json_decref(f);
    /* any_of with each; contains; min/max */
    f = eval_text(PACK_HEAD "rules:\n  - id: R\n    title: t\n    severity: note\n"
                  "    controls: []\n    rationale: r\n    each: 'runtimes[*]'\n    check:\n"
                  "      any_of:\n        - {path: 'runtimes[*].args', required: true, contains: --ok}\n"
                  "        - {path: 'runtimes[*].n', required: true, min: 5, max: 9}\n", doc);
    assert_int_equal(json_array_size(f), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(f, 0), "subject")),
                        "runtimes[1]");
    assert_non_null(strstr(finding_msg(f, 0), "none of the alternatives holds"));
    json_decref(f);
    f = eval_text(PACK_HEAD "rules:\n  - {id: R, title: t, severity: note, controls: [], "
                  "rationale: r, check: {path: 'runtimes[*].n', max: 6}}\n", doc);
    assert_int_equal(json_array_size(f), 1);
    assert_string_equal(finding_msg(f, 0), "runtime 'c': n is 7, above the maximum 6");
    json_decref(f);
    /* deny is reported before allow */
    f = eval_text(PACK_HEAD "rules:\n  - {id: R, title: t, severity: error, controls: [], "
                  "rationale: r, check: {path: 'target.region', deny: ['us-*'], allow: [x]}}\n",
                  doc);
    assert_string_equal(finding_msg(f, 0), "target.region is 'us-east-1', which is denied ('us-*')");
    json_decref(f);
}

static void test_params_override(void **state)
{
    char path[512];
    ap_error err;
    ap_policy *p;
    json_t *a, *f;
    (void)state;
    ap_error_clear(&err);
    p = parse_pack(PACK_HEAD "params: {regions: ['eu-*']}\nrules:\n  - {id: R, title: t, "
                   "severity: error, controls: [], rationale: r, "
                   "check: {path: target.region, allow: $regions}}\n", &err);
    assert_non_null(p);
    snprintf(path, sizeof(path), "%s/params.yaml", tmpdir);
    write_file(path, "apiVersion: airpack/v1\nkind: PolicyParams\npacks:\n  other: {x: [1]}\n"
                     "  t:\n    regionz: [us-*]\n");
    assert_int_equal(ap_policy_set_params(p, path, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "pack 't' has no parameter 'regionz' (did you mean 'regions'?)"));
    assert_int_equal(err.line, 6);
    write_file(path, "apiVersion: airpack/v1\nkind: PolicyParams\npacks:\n  t:\n    regions: us-*\n");
    assert_int_equal(ap_policy_set_params(p, path, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "must be a list"));
    write_file(path, "apiVersion: airpack/v1\nkind: PolicyParams\npacks:\n  t:\n    regions: [us-*]\n");
    assert_int_equal(ap_policy_set_params(p, path, &err), AP_OK);
    {
        ap_policy *q = parse_pack(PACK_HEAD "params: {re: 'x', lim: '3'}\nrules:\n  - {id: R, title: t, "
                                  "severity: error, controls: [], rationale: r, "
                                  "check: {path: a, match: $re, max: $lim}}\n", &err);
        assert_non_null(q);
        write_file(path, "apiVersion: airpack/v1\nkind: PolicyParams\npacks:\n  t:\n    re: '('\n");
        assert_int_equal(ap_policy_set_params(q, path, &err), AP_ERR_INPUT);
        assert_non_null(strstr(err.msg, "line 5, column 9: parameter 're' is not a valid POSIX extended regex"));
        write_file(path, "apiVersion: airpack/v1\nkind: PolicyParams\npacks:\n  t:\n    lim: lots\n");
        assert_int_equal(ap_policy_set_params(q, path, &err), AP_ERR_INPUT);
        assert_non_null(strstr(err.msg, "parameter 'lim' must be a number, not 'lots'"));
        ap_policy_free(q);
    }
    a = json_loads("{\"manifest\": {\"target\": {\"region\": \"us-east-1\"}}}", 0, NULL);
    f = json_array();
    assert_int_equal(ap_policy_eval(p, a, f, &err), AP_OK);
    assert_int_equal(json_array_size(f), 0);
    json_decref(f);
    json_decref(a);
    ap_policy_free(p);
}

static void test_builtins(void **state)
{
    const char *doc =
        "{\"manifest\": {\"models\": [{\"name\": \"m\", \"path\": \"m.gguf\", \"license\": \"Apache-2.0 OR MIT\"},"
        "                             {\"name\": \"n\", \"path\": \"n\", \"sha256sums\": \"n.sha256\", \"license\": \"Foo-1\"}],"
        "               \"runtimes\": [{\"name\": \"r\"}]},"
        " \"pins\": [{\"subject\": \"models[1]\", \"path\": \"n\", \"status\": \"mismatch\"}],"
        " \"plan\": {\"models\": [{\"name\": \"m\", \"per_gpu\": {\"total_gib\": 20.0, \"usable_gib\": 21.0}},"
        "                         {\"name\": \"n\", \"fits\": false}]}}";
    json_t *f;
    (void)state;
    f = eval_text(PACK_HEAD "rules:\n  - {id: P, title: t, severity: error, controls: [], "
                  "rationale: r, builtin: pinned}\n  - {id: V, title: t, severity: error, "
                  "controls: [], rationale: r, builtin: pins-verified}\n  - {id: L, title: t, "
                  "severity: error, controls: [], rationale: r, builtin: license-known}\n"
                  "  - {id: F, title: t, severity: error, controls: [], rationale: r, "
                  "builtin: vram-fits, headroom: '0.10'}\n", doc);
    assert_int_equal(json_array_size(f), 5);
    assert_string_equal(finding_msg(f, 0), "model 'm' is not pinned (give 'sha256' or "
                        "'sha256sums'; 'airpack pin' writes them)");
    assert_string_equal(finding_msg(f, 1), "'n' of models[1]: pin status is 'mismatch'");
    assert_string_equal(finding_msg(f, 2), "model 'n': license 'Foo-1' is not a known SPDX "
                        "licence id or a LicenseRef-");
    assert_non_null(strstr(finding_msg(f, 3), "less than the 10% headroom"));
    assert_string_equal(finding_msg(f, 4), "model 'n' does not fit the target GPUs");
    json_decref(f);
}

static void test_license_expr(void **state)
{
    (void)state;
    assert_true(ap_license_expr_known("Apache-2.0"));
    assert_true(ap_license_expr_known("LicenseRef-llama-3.1"));
    assert_true(ap_license_expr_known("(MIT OR Apache-2.0) AND GPL-2.0-only WITH Classpath-exception-2.0"));
    assert_true(ap_license_expr_known("EUPL-1.2+"));
    assert_false(ap_license_expr_known(""));
    assert_false(ap_license_expr_known("Apache"));
    assert_false(ap_license_expr_known("MIT OR"));
    assert_false(ap_license_expr_known("(MIT"));
    assert_false(ap_license_expr_known("LicenseRef-"));
    assert_false(ap_license_expr_known("LicenseRef-a b"));
}

/* ---- shipped packs against the compliant manifest and the cases ---- */

static int set_path(json_t *root, const char *path, json_t *val)
{
    char buf[256], *s = buf, *tok;
    json_t *cur = root;
    snprintf(buf, sizeof(buf), "%s", path);
    for (;;) {
        char key[128];
        size_t n = strcspn(s, ".[");
        long idx = -1;
        snprintf(key, sizeof(key), "%.*s", (int)n, s);
        s += n;
        tok = key;
        json_t *next = json_object_get(cur, tok);
        while (*s == '[') {
            idx = strtol(s + 1, &s, 10);
            s++;   /* ] */
            if (*s == '\0' && val == NULL) {
                json_array_remove(next, (size_t)idx);
                return 0;
            }
            if (*s == '\0')
                return json_array_set_new(next, (size_t)idx, val);
            next = json_array_get(next, (size_t)idx);
        }
        if (*s == '\0') {
            if (!val)
                return json_object_del(cur, tok) == 0 ? 0 : -1;
            return json_object_set_new(cur, tok, val);
        }
        s++;   /* . */
        cur = next;
        if (!cur)
            return -1;
    }
}

static json_t *compliant;

static int setup(void **state)
{
    char cmd[1024], src[512], dst[512], *text = NULL;
    size_t len;
    ap_error err;
    ap_manifest *m = NULL;
    ap_analyze_opts o = {0};
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ap-test-policy-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(cmd, sizeof(cmd), "'%s/mkdemo' '%s/demo' >/dev/null", AIRPACK_GEN_DIR, tmpdir);
    if (system(cmd) != 0)
        return -1;
    snprintf(src, sizeof(src), "%s/tests/policy/compliant.yaml", AIRPACK_SRC);
    snprintf(dst, sizeof(dst), "%s/compliant.yaml", tmpdir);
    if (ap_read_file(src, 1 << 20, &text, &len, &err) != AP_OK)
        return -1;
    write_file(dst, text);
    free(text);
    if (ap_manifest_load(dst, NULL, &m, &err) != AP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    o.skip_policies = 1;
    if (ap_analyze(m, &o, &compliant, &err) != AP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        ap_manifest_free(m);
        return -1;
    }
    ap_manifest_free(m);
    /* a plan that fits, when the analysis has none */
    if (!json_is_object(json_object_get(compliant, "plan")))
        json_object_set_new(compliant, "plan",
                            json_pack("{s:b,s:[{s:s,s:s,s:b,s:{s:f,s:f}}]}", "fits", 1, "models",
                                      "name", "tiny-chat", "subject", "models[0]", "fits", 1,
                                      "per_gpu", "total_gib", 2.0, "usable_gib", 20.0));
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];
    (void)state;
    json_decref(compliant);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static ap_policy *load_shipped(const char *name)
{
    char path[512];
    ap_error err;
    ap_policy *p = NULL;
    snprintf(path, sizeof(path), "%s/policies/%s.yaml", AIRPACK_SRC, name);
    if (ap_policy_load(path, &p, &err) != AP_OK)
        fail_msg("%s", err.msg);
    return p;
}

static void test_shipped_compliant(void **state)
{
    ap_error err;
    (void)state;
    for (size_t i = 0; i < AP_ARRAY_LEN(packs); i++) {
        ap_policy *p = load_shipped(packs[i]);
        json_t *f = json_array();
        assert_int_equal(ap_policy_eval(p, compliant, f, &err), AP_OK);
        if (json_array_size(f) != 0)
            fail_msg("pack '%s' on the compliant manifest: %s", packs[i], finding_msg(f, 0));
        json_decref(f);
        ap_policy_free(p);
    }
}

static void test_shipped_cases(void **state)
{
    char path[512];
    json_error_t je;
    json_t *cases, *c, *seen = json_object();
    size_t i;
    ap_error err;
    (void)state;
    snprintf(path, sizeof(path), "%s/tests/policy/cases.json", AIRPACK_SRC);
    cases = json_load_file(path, 0, &je);
    assert_non_null(cases);
    json_array_foreach(cases, i, c) {
        const char *rule = json_string_value(json_object_get(c, "rule"));
        const char *pack = json_string_value(json_object_get(c, "pack"));
        json_t *a = json_deep_copy(compliant), *f = json_array(), *v;
        const char *k;
        ap_policy *p = load_shipped(pack);
        int hit = 0;
        size_t j;
        json_t *fd;
        json_object_foreach(json_object_get(c, "set"), k, v)
            assert_int_equal(set_path(json_object_get(a, "manifest"), k,
                                      json_is_null(v) ? NULL : json_deep_copy(v)), 0);
        json_object_foreach(json_object_get(c, "analysis_set"), k, v)
            assert_int_equal(set_path(a, k, json_deep_copy(v)), 0);
        assert_int_equal(ap_policy_eval(p, a, f, &err), AP_OK);
        json_array_foreach(f, j, fd)
            if (!strcmp(json_string_value(json_object_get(fd, "rule")), rule))
                hit = 1;
        if (!hit)
            fail_msg("case for rule '%s' of pack '%s' found nothing", rule, pack);
        json_object_set_new(seen, rule, json_true());
        json_decref(f);
        json_decref(a);
        ap_policy_free(p);
    }
    /* every shipped rule has a failing case */
    for (i = 0; i < AP_ARRAY_LEN(packs); i++) {
        ap_policy *p = load_shipped(packs[i]);
        json_t *d = ap_policy_to_json(p), *chk;
        size_t j;
        json_array_foreach(json_object_get(d, "checks"), j, chk) {
            const char *id = json_string_value(json_object_get(chk, "id"));
            if (!json_object_get(seen, id))
                fail_msg("rule '%s' of pack '%s' has no failing case in cases.json", id, packs[i]);
        }
        json_decref(d);
        ap_policy_free(p);
    }
    json_decref(seen);
    json_decref(cases);
}

static void test_summary(void **state)
{
    json_t *f = json_loads("[{\"level\": \"error\", \"waived\": true}, {\"level\": \"warning\"},"
                           " {\"level\": \"note\"}]", 0, NULL);
    json_t *s = ap_findings_summary(f);
    (void)state;
    assert_int_equal(json_integer_value(json_object_get(s, "errors")), 0);
    assert_int_equal(json_integer_value(json_object_get(s, "waived")), 1);
    assert_true(json_is_true(json_object_get(s, "passed")));
    json_decref(s);
    json_decref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_semantics),
        cmocka_unit_test(test_params_override),
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_license_expr),
        cmocka_unit_test(test_shipped_compliant),
        cmocka_unit_test(test_shipped_cases),
        cmocka_unit_test(test_summary),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
