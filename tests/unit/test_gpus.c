/*
 * test_gpus.c - the GPU catalogue: the built-in data/gpus.yaml loads and
 * holds every GPU the issue names with plausible memory figures; names and
 * aliases match case-insensitively; AIRPACK_GPU_CATALOG replaces it; a
 * malformed catalogue fails with file, line and column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpus.h"

static void test_builtin(void **state)
{
    static const char *const need[] = {
        "nvidia-h100-sxm", "nvidia-h100-pcie", "nvidia-h100-nvl", "nvidia-h200", "nvidia-b200",
        "nvidia-a100-40gb", "nvidia-a100-80gb", "nvidia-l40s", "nvidia-l4", "nvidia-a10",
        "nvidia-rtx-4090", "nvidia-rtx-6000-ada", "amd-mi300x", "amd-mi325x", "intel-gaudi3",
    };
    ap_gpu_catalog *c = NULL;
    ap_error err;
    (void)state;
    unsetenv("AIRPACK_GPU_CATALOG");
    ap_error_clear(&err);
    assert_int_equal(ap_gpu_catalog_load(&c, &err), AP_OK);
    assert_true(c->n >= sizeof need / sizeof need[0]);
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        const ap_gpu *g = ap_gpu_find(c, need[i]);
        if (!g)
            fail_msg("GPU '%s' missing from the catalogue", need[i]);
        /* a runtime sees a little less than the nominal memory (GB as sold ~ GiB) */
        assert_true(g->usable_gib <= g->memory_gb);
        assert_true(g->usable_gib >= 0.85 * g->memory_gb);
        assert_non_null(g->label);
        assert_non_null(g->source);
    }
    assert_true(ap_gpu_find(c, "nvidia-h100-sxm")->usable_gib > 79.0);
    assert_ptr_equal(ap_gpu_find(c, "H100"), ap_gpu_find(c, "nvidia-h100-sxm"));
    assert_ptr_equal(ap_gpu_find(c, "MI300X"), ap_gpu_find(c, "amd-mi300x"));
    assert_null(ap_gpu_find(c, "nvidia-l40"));
    assert_string_equal(ap_gpu_suggest(c, "nvidia-l40"), "nvidia-l40s");
    assert_null(ap_gpu_suggest(c, "completely-different"));
    ap_gpu_catalog_free(c);
}

static void test_override(void **state)
{
    char path[] = "/tmp/airpack-gpus-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    ap_gpu_catalog *c = NULL;
    ap_error err;
    (void)state;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs("gpus:\n  - name: lab-gpu\n    memory_gb: 16\n    usable_gib: 15.5\n", f);
    fclose(f);
    setenv("AIRPACK_GPU_CATALOG", path, 1);
    ap_error_clear(&err);
    assert_int_equal(ap_gpu_catalog_load(&c, &err), AP_OK);
    assert_int_equal(c->n, 1);
    assert_non_null(ap_gpu_find(c, "LAB-GPU"));
    assert_null(ap_gpu_find(c, "nvidia-h100-sxm"));
    ap_gpu_catalog_free(c);
    f = fopen(path, "w");
    fputs("gpus:\n  - name: lab-gpu\n    memory_gb: 16\n    usable_gb: 15.5\n", f);
    fclose(f);
    assert_int_equal(ap_gpu_catalog_load(&c, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(err.line, 4);
    assert_non_null(strstr(err.msg, "usable_gb"));
    setenv("AIRPACK_GPU_CATALOG", "/nonexistent/gpus.yaml", 1);
    assert_int_equal(ap_gpu_catalog_load(&c, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "AIRPACK_GPU_CATALOG"));
    unsetenv("AIRPACK_GPU_CATALOG");
    unlink(path);
}

static void test_malformed(void **state)
{
    static const struct { const char *yaml, *needle; unsigned line; } bad[] = {
        {"gpus:\n  - name: x\n    memory_gb: 16\n    usable_gib: -1\n", "positive", 4},
        {"gpus:\n  - name: x\n    memory_gb: 16\n", "usable_gib", 2},
        {"gpus:\n  - name: x\n    memory_gb: 16\n    usable_gib: 15\n  - name: X\n    memory_gb: 1\n    usable_gib: 1\n", "duplicate GPU", 5},
        {"gpu: []\n", "gpus", 1},
        {"gpus: {}\n", "'gpus'", 1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ap_gpu_catalog *c = NULL;
        ap_error err;
        ap_error_clear(&err);
        assert_int_equal(ap_gpu_catalog_parse("cat.yaml", bad[i].yaml, strlen(bad[i].yaml), &c, &err), AP_ERR_INPUT);
        assert_null(c);
        if (!strstr(err.msg, bad[i].needle) || err.line != bad[i].line)
            fail_msg("case %zu: '%s' (line %u) lacks '%s' at line %u", i, err.msg, err.line, bad[i].needle, bad[i].line);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin),
        cmocka_unit_test(test_override),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
