/*
 * test_install.c - install, list, rollback, cleanup (src/install.h) and
 * the drift audit (src/audit.h) through the library, on the bundles of
 * tests/gen/mkhostile.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "install.h"
#include "util.h"

static char dir[256];
static char prefix[300];
static ap_keyring ring;

static char *gpath(const char *name)
{
    static char buf[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static char *ppath(const char *name)
{
    static char buf[8][700];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", prefix, name);
    return buf[k];
}

static int setup(void **state)
{
    char cmd[1024];
    ap_error err;
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/airpack-test-install-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(cmd, sizeof cmd, "'%s/mkhostile' '%s/g' >/dev/null", AIRPACK_GEN_DIR, dir);
    if (system(cmd) != 0)
        return -1;
    memset(&ring, 0, sizeof ring);
    return ap_keyring_add(&ring, gpath("g/trusted.pub"), &err) == AP_OK ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[600];
    (void)state;
    ap_keyring_release(&ring);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int fresh_prefix(void **state)
{
    char cmd[700];
    static int n;
    (void)state;
    snprintf(prefix, sizeof prefix, "%s/p%d", dir, n++);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", prefix);
    return system(cmd) == 0 ? 0 : -1;
}

static int install(const char *bundle, int downgrade, ap_install_result *res, ap_error *err)
{
    ap_install_opts o;
    memset(&o, 0, sizeof o);
    o.prefix = prefix;
    o.keys = &ring;
    o.allow_downgrade = downgrade;
    return ap_install(gpath(bundle), &o, res, err);
}

static void must_install(const char *bundle, int downgrade, const char *release)
{
    ap_install_result res;
    ap_error err;
    if (install(bundle, downgrade, &res, &err) != AP_OK)
        fail_msg("%s: %s", bundle, err.msg);
    assert_string_equal(res.name, "chat-assistant");
    assert_string_equal(res.release, release);
    ap_install_result_release(&res);
}

static const char *current(void)
{
    static char t[512];
    ssize_t n = readlink(ppath("current/chat-assistant"), t, sizeof t - 1);
    t[n > 0 ? n : 0] = '\0';
    return t;
}

static void test_install_upgrade_downgrade(void **state)
{
    ap_install_result res;
    ap_error err;
    struct stat st;
    (void)state;
    must_install("g/good.tar", 0, "1.0.0+5");
    assert_string_equal(current(), "../releases/chat-assistant/1.0.0+5");
    assert_int_equal(stat(ppath("releases/chat-assistant/1.0.0+5/payload/models/tiny/model.gguf"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(stat(ppath(".airpack/receipts/chat-assistant/1.0.0+5/install.json"), &st), 0);
    must_install("g/good-v6.tar", 0, "1.1.0+6");
    assert_int_equal(install("g/good-v4.tar", 0, &res, &err), AP_ERR_CHECK);
    assert_non_null(strstr(err.msg, "not above the installed sequence 6"));
    ap_install_result_release(&res);
    assert_string_equal(current(), "../releases/chat-assistant/1.1.0+6");
    must_install("g/good-v4.tar", 1, "0.9.0+4");
    assert_string_equal(current(), "../releases/chat-assistant/0.9.0+4");
    /* still protected: highest is 6 */
    assert_int_equal(install("g/good.tar", 0, &res, &err), AP_ERR_CHECK);
    ap_install_result_release(&res);
}

static void test_list_rollback(void **state)
{
    json_t *doc, *rels;
    ap_error err;
    char from[AP_RELEASE_MAX], to[AP_RELEASE_MAX];
    (void)state;
    must_install("g/good.tar", 0, "1.0.0+5");
    must_install("g/good-v6.tar", 0, "1.1.0+6");
    assert_int_equal(ap_install_list(prefix, &doc, &err), AP_OK);
    rels = json_object_get(json_array_get(json_object_get(doc, "deployments"), 0), "releases");
    assert_int_equal(json_array_size(rels), 2);
    assert_true(json_is_true(json_object_get(json_array_get(rels, 1), "active")));
    json_decref(doc);
    assert_int_equal(ap_rollback(prefix, NULL, from, to, &err), AP_OK);
    assert_string_equal(from, "1.1.0+6");
    assert_string_equal(to, "1.0.0+5");
    assert_int_equal(ap_rollback(prefix, "chat-assistant", from, to, &err), AP_ERR_CHECK);
    assert_int_equal(ap_rollback(prefix, "../x", from, to, &err), AP_ERR_INPUT);
}

static void test_hostile_leaves_nothing(void **state)
{
    ap_install_result res;
    ap_error err;
    char **names = NULL;
    (void)state;
    assert_int_equal(install("g/hostile/tampered-last.tar", 0, &res, &err), AP_ERR_CHECK);
    assert_int_equal(res.verify.fault, AP_FAULT_SHA256);
    ap_install_result_release(&res);
    assert_int_equal(ap_install_names(prefix, &names, &err), AP_OK);
    assert_null(names[0]); /* no releases/<name> left, not even empty */
    ap_strv_free(names);
    assert_int_equal(access(ppath("current/chat-assistant"), F_OK), -1);
}

static void test_cleanup(void **state)
{
    ap_error err;
    FILE *f;
    (void)state;
    must_install("g/good.tar", 0, "1.0.0+5");
    /* what a killed install leaves */
    assert_int_equal(mkdir(ppath("releases/chat-assistant/.staging-abc123"), 0700), 0);
    assert_int_equal(mkdir(ppath(".airpack/receipts/chat-assistant/.staging-xyz"), 0700), 0);
    assert_int_equal(mkdir(ppath(".airpack/receipts/chat-assistant/9.9.9+99"), 0755), 0);
    assert_int_equal(symlink("../releases/chat-assistant/x", ppath("current/.tmp-chat-assistant-1")), 0);
    f = fopen(ppath("releases/chat-assistant/.staging-abc123/partial"), "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(ap_install_cleanup(prefix, &err), AP_OK);
    assert_int_equal(access(ppath("releases/chat-assistant/.staging-abc123"), F_OK), -1);
    assert_int_equal(access(ppath(".airpack/receipts/chat-assistant/.staging-xyz"), F_OK), -1);
    assert_int_equal(access(ppath(".airpack/receipts/chat-assistant/9.9.9+99"), F_OK), -1);
    assert_int_equal(access(ppath("current/.tmp-chat-assistant-1"), F_OK), -1);
    assert_int_equal(access(ppath("releases/chat-assistant/1.0.0+5/SHA256SUMS"), F_OK), 0);
}

static void test_audit(void **state)
{
    json_t *rep;
    ap_error err;
    FILE *f;
    (void)state;
    must_install("g/good.tar", 0, "1.0.0+5");
    ap_audit_opts ao = {.keys = &ring};
    assert_int_equal(ap_audit_installed(prefix, NULL, &ao, &rep, &err), AP_OK);
    assert_true(json_is_true(json_object_get(json_object_get(rep, "summary"), "passed")));
    json_decref(rep);
    f = fopen(ppath("releases/chat-assistant/1.0.0+5/report.sarif.json"), "a");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
    assert_int_equal(ap_audit_installed(prefix, NULL, NULL, &rep, &err), AP_OK);
    assert_false(json_is_true(json_object_get(json_object_get(rep, "summary"), "passed")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rep, "summary"), "modified")), 1);
    json_decref(rep);
    assert_int_equal(ap_audit_installed(gpath("nope"), NULL, NULL, &rep, &err), AP_ERR_INPUT);
    assert_int_equal(ap_audit_bundle(gpath("g/good.tar"), &ao, &rep, &err), AP_OK);
    assert_true(json_is_true(json_object_get(json_object_get(rep, "summary"), "passed")));
    json_decref(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_install_upgrade_downgrade, fresh_prefix),
        cmocka_unit_test_setup(test_list_rollback, fresh_prefix),
        cmocka_unit_test_setup(test_hostile_leaves_nothing, fresh_prefix),
        cmocka_unit_test_setup(test_cleanup, fresh_prefix),
        cmocka_unit_test_setup(test_audit, fresh_prefix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
