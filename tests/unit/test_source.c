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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_hf_locate),
        cmocka_unit_test(test_hf_resolve_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
