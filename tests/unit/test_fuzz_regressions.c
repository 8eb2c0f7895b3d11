/*
 * test_fuzz_regressions.c - replays the fuzz corpora in the normal test
 * suite: every file in tests/fuzz/regressions/<target>/ (inputs that once
 * crashed or hung a parser) and tests/fuzz/seeds/<target>/ goes through the
 * same entry point as the libFuzzer target fuzz_<target> (tests/fuzz/
 * targets.c, included here so this single-file test links without the
 * fuzz build). Under the asan preset and valgrind this is the regression
 * test for every fuzz finding; seeds named ok-* must also be accepted
 * (AP_OK), so the seeds keep exercising the parsers' success paths.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../fuzz/targets.c"
#include "util.h"

/* Replay every file of DIR/<target>/ for every target; returns the count. */
static size_t replay_tree(const char *sub, int check_ok)
{
    char dir[4096], path[4096 + 256];
    size_t count = 0;
    DIR *top, *d;
    struct dirent *e, *f;

    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s", AIRPACK_SRC, sub);
    top = opendir(dir);
    if (!top)
        return 0;
    while ((e = readdir(top)) != NULL) {
        char tdir[4096 + 256];
        ap_fuzz_fn fn;
        if (e->d_name[0] == '.')
            continue;
        fn = ap_fuzz_find(e->d_name);
        if (!fn)
            fail_msg("tests/fuzz/%s/%s: no fuzz target named '%s'", sub, e->d_name, e->d_name);
        snprintf(tdir, sizeof tdir, "%s/%s", dir, e->d_name);
        d = opendir(tdir);
        assert_non_null(d);
        while ((f = readdir(d)) != NULL) {
            char *buf = NULL;
            size_t len = 0;
            ap_error err;
            int rc;
            if (f->d_name[0] == '.' || strcmp(f->d_name, "README") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", tdir, f->d_name);
            if (ap_read_file(path, AP_FUZZ_MAX_INPUT, &buf, &len, &err) != AP_OK)
                fail_msg("%s", err.msg);
            rc = fn((const uint8_t *)buf, len);
            if (check_ok && strncmp(f->d_name, "ok-", 3) == 0 && rc != AP_OK)
                fail_msg("seed '%s' for fuzz_%s: expected AP_OK, got %d", path, e->d_name, rc);
            free(buf);
            count++;
        }
        closedir(d);
    }
    closedir(top);
    return count;
}

static void test_seeds(void **state)
{
    (void)state;
    /* Seeds exist for every target. */
    for (const ap_fuzz_target *t = ap_fuzz_targets; t->name; t++) {
        char dir[4096];
        DIR *d;
        snprintf(dir, sizeof dir, "%s/tests/fuzz/seeds/%s", AIRPACK_SRC, t->name);
        d = opendir(dir);
        if (!d)
            fail_msg("no seed folder '%s'", dir);
        closedir(d);
    }
    assert_true(replay_tree("seeds", 1) >= 9);
}

static void test_regressions(void **state)
{
    (void)state;
    (void)replay_tree("regressions", 0);
}

/* The harness itself: empty and tiny inputs go through every target. */
static void test_trivial_inputs(void **state)
{
    static const uint8_t one[] = {0};
    (void)state;
    for (const ap_fuzz_target *t = ap_fuzz_targets; t->name; t++) {
        /* An empty sums file is a valid, empty list. */
        if (strcmp(t->name, "sums") != 0 && t->fn(one, 0) == AP_OK)
            fail_msg("fuzz_%s accepts an empty input", t->name);
        if (t->fn(one, 1) == AP_OK)
            fail_msg("fuzz_%s accepts a NUL byte", t->name);
    }
    assert_null(ap_fuzz_find("no-such-target"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trivial_inputs),
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_regressions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
