/*
 * test_waiver.c - waivers: strict loading (line and column in errors,
 * real dates only), matching by rule and subject (key path or name),
 * expiry (valid through the expiry day; expired waivers do not apply but
 * are reported), and waived findings kept in the list.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "waiver.h"

#define HEAD "apiVersion: airpack/v1\nkind: Waivers\nwaivers:\n"

static void expect_error(const char *text, const char *needle, unsigned line)
{
    ap_waivers *w = NULL;
    ap_error err;
    ap_error_clear(&err);
    assert_int_equal(ap_waivers_parse("w.yaml", text, strlen(text), &w, &err), AP_ERR_INPUT);
    assert_null(w);
    if (!strstr(err.msg, needle))
        fail_msg("'%s' lacks '%s'", err.msg, needle);
    assert_int_equal(err.line, line);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error(HEAD "  - {rule: R, subject: s, justification: j, approver: a, expires: 2027-02-30}\n",
                 "'expires' must be a date YYYY-MM-DD, not '2027-02-30'", 4);
    expect_error(HEAD "  - {rule: R, subject: s, justification: j, approver: a, expires: 2027-01-01,"
                 " reason: x}\n", "unknown key 'reason'", 4);
    expect_error(HEAD "  - {rule: R, subject: s, justification: j, expires: 2027-01-01}\n",
                 "missing required key 'approver'", 4);
    expect_error(HEAD "  - {rule: R, subject: '', justification: j, approver: a, expires: 2027-01-01}\n",
                 "'subject' must not be empty", 4);
    expect_error("apiVersion: airpack/v1\nkind: Waiver\nwaivers: []\n", "kind must be 'Waivers'", 2);
}

static void test_apply(void **state)
{
    const char *text = HEAD
        "  - {rule: EU-ORIGIN-ALLOWED, subject: 'models[0]', justification: 'legal review LEG-42',"
        " approver: dpo@example.eu, expires: 2027-03-31}\n"
        "  - {rule: OFF-LISTEN-INTERNAL, subject: vllm, justification: j, approver: a,"
        " expires: 2026-01-01}\n"
        "  - {rule: BASE-PIN-FILE, subject: 'files[0]', justification: j, approver: a,"
        " expires: 2027-01-01}\n";
    json_t *f = json_loads(
        "[{\"rule\": \"EU-ORIGIN-ALLOWED\", \"level\": \"error\", \"subject\": \"models[0]\"},"
        " {\"rule\": \"EU-ORIGIN-ALLOWED\", \"level\": \"error\", \"subject\": \"models[1]\"},"
        " {\"rule\": \"OFF-LISTEN-INTERNAL\", \"level\": \"error\", \"subject\": \"runtimes[1]\","
        "  \"subject_name\": \"vllm\"},"
        " {\"rule\": \"BASE-PIN-FILE\", \"level\": \"warning\", \"subject\": \"files[0]\"}]",
        0, NULL);
    ap_waivers *w = NULL;
    ap_error err;
    const json_t *wv;
    (void)state;
    if (ap_waivers_parse("w.yaml", text, strlen(text), &w, &err) != AP_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(ap_waivers_count(w), 3);
    assert_int_equal(ap_waivers_apply(w, f, "2026-13-01", &err), AP_ERR_INPUT);
    /* the expiry day itself is still valid */
    assert_int_equal(ap_waivers_apply(w, f, "2027-01-01", &err), AP_OK);
    assert_int_equal(json_array_size(f), 4);
    assert_true(json_is_true(json_object_get(json_array_get(f, 0), "waived")));
    wv = json_object_get(json_array_get(f, 0), "waiver");
    assert_string_equal(json_string_value(json_object_get(wv, "approver")), "dpo@example.eu");
    assert_string_equal(json_string_value(json_object_get(wv, "justification")), "legal review LEG-42");
    assert_int_equal(json_integer_value(json_object_get(wv, "line")), 4);
    /* another subject is not covered */
    assert_null(json_object_get(json_array_get(f, 1), "waiver"));
    /* expired, matched by name: not applied, but reported */
    assert_false(json_is_true(json_object_get(json_array_get(f, 2), "waived")));
    assert_non_null(json_object_get(json_array_get(f, 2), "waiver_expired"));
    assert_true(json_is_true(json_object_get(json_array_get(f, 3), "waived")));
    json_decref(f);
    /* the day after expiry */
    f = json_loads("[{\"rule\": \"BASE-PIN-FILE\", \"level\": \"warning\", \"subject\": \"files[0]\"}]",
                   0, NULL);
    assert_int_equal(ap_waivers_apply(w, f, "2027-01-02", &err), AP_OK);
    assert_null(json_object_get(json_array_get(f, 0), "waived"));
    assert_non_null(json_object_get(json_array_get(f, 0), "waiver_expired"));
    json_decref(f);
    ap_waivers_free(w);
    ap_waivers_free(NULL);
}

static void test_today(void **state)
{
    char d[11];
    (void)state;
    ap_today_utc(d);
    assert_int_equal(strlen(d), 10);
    assert_true(d[4] == '-' && d[7] == '-');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_today),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
