/*
 * test_units.c - service units from launch specs (src/site/units.c): the
 * words of ExecStart= and the values of the env file are quoted so that
 * nothing in a (signed but still checked) lock can add a unit setting,
 * expand a specifier or a variable, or split a word; a relative or
 * unquotable prefix is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "runtime/launch.h"
#include "site/units.h"

static json_t *lock_with(const char *arg, const char *envval)
{
    return json_pack("{s:[{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:[s,s,s],s:{s:s}}]}", "launch",
                     "runtime", "rt", "kind", "other", "start", "site", "listen", "127.0.0.1:9000",
                     "host", "127.0.0.1", "port", (json_int_t)9000, "health", "/health",
                     "working_directory", "{release}", "argv", "/usr/bin/srv", "--x", arg, "env",
                     "V", envval);
}

static const char *line_of(const char *text, const char *key)
{
    static char buf[4096];
    const char *p = strstr(text, key);
    size_t n;
    if (!p)
        return "";
    n = strcspn(p, "\n");
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

static void test_quoting(void **state)
{
    (void)state;
    json_t *lock = lock_with("a b\"c\\d %n $HOME {release}/m", "x\"y$z`w\\");
    ap_unit_files uf;
    ap_error err;
    ap_error_clear(&err);
    assert_int_equal(ap_units_render("/opt/llm", "dep", "1.0.0+1", lock, &uf, &err), AP_OK);
    assert_int_equal(uf.n, 2);
    assert_string_equal(uf.v[0].path, "systemd/airpack-dep-rt.service");
    assert_string_equal(uf.v[1].path, "systemd/airpack-dep-rt.env");
    assert_string_equal(line_of(uf.v[0].content, "ExecStart="),
                        "ExecStart=/usr/bin/srv --x \"a b\\\"c\\\\d %%n $$HOME "
                        "/opt/llm/current/dep/m\"");
    assert_string_equal(line_of(uf.v[1].content, "V="), "V=\"x\\\"y\\$z\\`w\\\\\"");
    assert_non_null(strstr(uf.v[0].content, "\nWorkingDirectory=/opt/llm/current/dep\n"));
    assert_non_null(strstr(uf.v[0].content, "\nIPAddressAllow=localhost\n"));
    assert_non_null(strstr(uf.v[0].content, "\nDynamicUser=yes\n"));
    ap_unit_files_release(&uf);
    json_decref(lock);
}

static void test_bad_prefix(void **state)
{
    (void)state;
    json_t *lock = lock_with("a", "b");
    ap_unit_files uf;
    ap_error err;
    ap_error_clear(&err);
    assert_int_equal(ap_units_render("opt/llm", "dep", "1", lock, &uf, &err), AP_ERR_INPUT);
    assert_int_equal(ap_units_render("/opt/my llm", "dep", "1", lock, &uf, &err), AP_ERR_INPUT);
    assert_int_equal(ap_units_render("/opt/$x", "dep", "1", lock, &uf, &err), AP_ERR_INPUT);
    json_decref(lock);
}

static void test_specs_json(void **state)
{
    (void)state;
    json_t *lock = lock_with("{release}/x", "{release}/y");
    json_t *s = ap_units_specs("/srv", "dep", lock), *u;
    assert_non_null(s);
    u = json_array_get(s, 0);
    assert_string_equal(json_string_value(json_object_get(u, "unit")), "airpack-dep-rt.service");
    assert_string_equal(json_string_value(json_array_get(json_object_get(u, "argv"), 2)),
                        "/srv/current/dep/x");
    assert_string_equal(json_string_value(json_object_get(json_object_get(u, "env"), "V")),
                        "/srv/current/dep/y");
    assert_string_equal(json_string_value(json_object_get(u, "env_file")),
                        "/srv/current/dep/systemd/airpack-dep-rt.env");
    json_decref(s);
    json_decref(lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_bad_prefix),
        cmocka_unit_test(test_specs_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
