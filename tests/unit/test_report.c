/*
 * test_report.c - the report renderers over an analysis document with
 * hostile strings: text groups by severity with locations; SARIF 2.1.0
 * carries rules, levels, lines and suppressions and validates against
 * tests/schemas/sarif-schema-2.1.0.json (python3-jsonschema); Markdown
 * and HTML escape everything; the HTML loads nothing from elsewhere and
 * renders in headless Chromium (a screenshot is taken and checked).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"

#define SCHEMAS AIRPACK_SRC "/tests/schemas"

static const char *doc_text =
    "{\"tool\": {\"name\": \"airpack\", \"version\": \"0.1.0\"},"
    " \"manifest_file\": \"m.yaml\","
    " \"manifest\": {\"metadata\": {\"name\": \"evil<script>alert(1)</script>\", \"version\": \"1|2\","
    "   \"sequence\": 4, \"owner\": \"o@example.eu\"},"
    "   \"target\": {\"site\": \"fra\", \"region\": \"eu-central\", \"gpu\": {\"model\": \"nvidia-l4\", \"count\": 1}},"
    "   \"models\": [{\"name\": \"m\", \"path\": \"m.gguf\", \"sha256\": \"" 
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"license\": \"MIT\","
    "     \"origin\": {\"publisher\": \"P\", \"jurisdiction\": \"DE\", \"source\": \"\\\"><img src=x>\"}}],"
    "   \"runtimes\": [{\"name\": \"r\", \"kind\": \"vllm\", \"listen\": \"0.0.0.0:8000\"}]},"
    " \"pins\": [{\"subject\": \"models[0]\", \"path\": \"m.gguf\", \"pin\": \"sha256\", \"status\": \"ok\","
    "   \"sha256\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}],"
    " \"plan\": {\"fits\": true, \"models\": [{\"name\": \"m\", \"fits\": true, \"total_per_gpu_bytes\": 1073741824}]},"
    " \"bundle\": {\"file\": \"b.tar\", \"created\": \"2026-01-02T03:04:05Z\", \"signer\": {\"keyid\": \"E9BA0713AC60865A\"},"
    "   \"verified\": true},"
    " \"artifacts\": [{\"path\": \"payload/models/m/m.gguf\", \"role\": \"model\", \"size\": 12,"
    "   \"sha256\": \"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"}],"
    " \"policies\": [{\"name\": \"offline-runtime\", \"file\": \"policies/offline-runtime.yaml\", \"rules\": 2,"
    "   \"checks\": [{\"id\": \"OFF-LISTEN-INTERNAL\", \"title\": \"Listen internal\", \"severity\": \"error\","
    "                \"controls\": [\"NIST SP 800-53 SC-7\"], \"rationale\": \"because\"},"
    "               {\"id\": \"OFF-HF-OFFLINE\", \"title\": \"HF offline\", \"severity\": \"error\","
    "                \"controls\": [\"NIST SP 800-53 CM-7\"], \"rationale\": \"r\"}]}],"
    " \"findings\": ["
    "   {\"rule\": \"OFF-LISTEN-INTERNAL\", \"level\": \"error\", \"message\": \"runtime 'r': listen is "
    "'0.0.0.0:8000' <b>bad</b> | pipe\", \"subject\": \"runtimes[0]\", \"path\": \"runtimes[0].listen\","
    "    \"location\": {\"file\": \"m.yaml\", \"line\": 12, \"column\": 13}, \"controls\": [\"NIST SP 800-53 SC-7\"],"
    "    \"pack\": \"offline-runtime\", \"title\": \"Listen internal\", \"waived\": false},"
    "   {\"rule\": \"AP-PIN-UNLISTED\", \"level\": \"warning\", \"message\": \"extra file\", \"subject\": \"models[0]\","
    "    \"location\": {\"file\": \"m.yaml\", \"line\": 7, \"column\": 5}, \"controls\": [], \"waived\": true,"
    "    \"waiver\": {\"rule\": \"AP-PIN-UNLISTED\", \"subject\": \"models[0]\", \"justification\": \"ok <i>\","
    "     \"approver\": \"dpo\", \"expires\": \"2030-01-01\", \"file\": \"w.yaml\", \"line\": 4}}],"
    " \"summary\": {\"errors\": 1, \"warnings\": 0, \"notes\": 0, \"waived\": 1, \"passed\": false}}";

static char tmpdir[128];

static char *render(const json_t *a, const char *fmt)
{
    char *buf = NULL;
    size_t len = 0;
    ap_error err;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    if (ap_report_write(f, a, fmt, &err) != AP_OK)
        fail_msg("%s", err.msg);
    fclose(f);
    return buf;
}

static void save(const char *name, const char *text, char *path, size_t cap)
{
    FILE *f;
    snprintf(path, cap, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_text(void **state)
{
    json_t *a = json_loads(doc_text, 0, NULL);
    char *t = render(a, "text");
    (void)state;
    assert_non_null(strstr(t, "errors (1):\n  m.yaml:12:13: error: [OFF-LISTEN-INTERNAL]"));
    assert_non_null(strstr(t, "waived (1):"));
    assert_non_null(strstr(t, "waived by dpo until 2030-01-01"));
    assert_non_null(strstr(t, "FAILED: 1 errors"));
    free(t);
    json_decref(a);
}

static void test_sarif(void **state)
{
    json_t *a = json_loads(doc_text, 0, NULL), *s, *res, *rules;
    char *t, path[512], cmd[1024];
    (void)state;
    s = ap_report_sarif(a);
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "version")), "2.1.0");
    res = json_object_get(json_array_get(json_object_get(s, "runs"), 0), "results");
    rules = json_object_get(json_object_get(json_object_get(json_array_get(json_object_get(s, "runs"), 0),
                                                            "tool"), "driver"), "rules");
    assert_int_equal(json_array_size(rules), 3);   /* two checked, one from a finding */
    assert_int_equal(json_array_size(res), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "level")), "error");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(
        json_array_get(json_object_get(json_array_get(res, 0), "locations"), 0),
        "physicalLocation"), "region"), "startLine")), 12);
    assert_non_null(json_object_get(json_array_get(res, 1), "suppressions"));
    json_decref(s);
    /* file names become URI references */
    json_object_set_new(json_object_get(json_array_get(json_object_get(a, "findings"), 0), "location"),
                        "file", json_string("my dir/m#1.yaml"));
    s = ap_report_sarif(a);
    res = json_object_get(json_array_get(json_object_get(s, "runs"), 0), "results");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(
                            json_array_get(json_object_get(json_array_get(res, 0), "locations"), 0),
                            "physicalLocation"), "artifactLocation"), "uri")),
                        "my%20dir/m%231.yaml");
    json_decref(s);
    t = render(a, "sarif");
    save("r.sarif", t, path, sizeof(path));
    free(t);
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c 'import json,sys,jsonschema; s=json.load(open(sys.argv[1]));"
             " jsonschema.Draft7Validator(s).validate(json.load(open(sys.argv[2])))' '%s/sarif-schema-2.1.0.json' '%s'",
             SCHEMAS, path);
    assert_int_equal(system(cmd), 0);
    /* the validator does fail on a broken log */
    save("bad.sarif", "{\"version\": \"2.1.0\", \"runs\": [{\"results\": []}]}", path, sizeof(path));
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c 'import json,sys,jsonschema; s=json.load(open(sys.argv[1]));"
             " jsonschema.Draft7Validator(s).validate(json.load(open(sys.argv[2])))' '%s/sarif-schema-2.1.0.json' '%s'"
             " 2>/dev/null",
             SCHEMAS, path);
    assert_int_not_equal(system(cmd), 0);
    json_decref(a);
}

static void test_markdown(void **state)
{
    json_t *a = json_loads(doc_text, 0, NULL);
    char *t = render(a, "markdown");
    (void)state;
    assert_null(strstr(t, "<script>"));
    assert_null(strstr(t, "<b>"));
    assert_non_null(strstr(t, "\\| pipe"));
    assert_non_null(strstr(t, "| OFF-HF-OFFLINE | offline-runtime | error | HF offline | NIST SP 800-53 CM-7 | pass |"));
    assert_non_null(strstr(t, "fail (1)"));
    free(t);
    json_decref(a);
}

static void test_html(void **state)
{
    json_t *a = json_loads(doc_text, 0, NULL);
    char *t = render(a, "html"), path[512], png[512], cmd[2048];
    struct stat st;
    (void)state;
    assert_null(strstr(t, "<script"));
    assert_null(strstr(t, "<img"));
    assert_null(strstr(t, "<b>bad"));
    assert_non_null(strstr(t, "evil&lt;script&gt;"));
    assert_non_null(strstr(t, "&quot;&gt;&lt;img src=x&gt;"));
    assert_null(strstr(t, "src=\""));
    assert_null(strstr(t, "href="));
    assert_null(strstr(t, "http://"));
    assert_non_null(strstr(t, "NIST SP 800-53 SC-7"));
    assert_non_null(strstr(t, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_non_null(strstr(t, "FAILED"));
    assert_non_null(strstr(t, "waived by dpo until 2030-01-01: ok &lt;i&gt;"));
    /* evidence: signer, dates, artifact hashes, the plan */
    assert_non_null(strstr(t, "E9BA0713AC60865A"));
    assert_non_null(strstr(t, "2026-01-02T03:04:05Z"));
    assert_non_null(strstr(t, "verified against a trusted key"));
    assert_non_null(strstr(t, "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"));
    assert_non_null(strstr(t, "<td>1.00 GiB</td>"));
    save("report.html", t, path, sizeof(path));
    free(t);
    json_decref(a);
    if (access("/usr/bin/chromium", X_OK) != 0) {
        fail_msg("/usr/bin/chromium is needed for the HTML rendering test");
    }
    snprintf(png, sizeof(png), "%s/report.png", tmpdir);
    snprintf(cmd, sizeof(cmd),
             "HOME='%s' timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu "
             "--disable-quic --no-first-run --disable-background-networking "
             "--disable-component-update --disable-sync --disable-dev-shm-usage "
             "--user-data-dir='%s/chrome' --window-size=1200,1600 --screenshot='%s' 'file://%s' "
             ">/dev/null 2>&1",
             tmpdir, tmpdir, png, path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(stat(png, &st), 0);
    assert_true(st.st_size > 20000);   /* a rendered page, not a blank one */
    if (getenv("AIRPACK_KEEP_SCREENSHOT")) {
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", png, getenv("AIRPACK_KEEP_SCREENSHOT"));
        assert_int_equal(system(cmd), 0);
    }
}

static void test_errors(void **state)
{
    json_t *a = json_loads(doc_text, 0, NULL);
    ap_error err;
    (void)state;
    assert_int_equal(ap_report_write(stdout, a, "pdf", &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "unknown report format 'pdf'"));
    json_decref(a);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ap-test-report-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[256];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_sarif),
        cmocka_unit_test(test_markdown),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
