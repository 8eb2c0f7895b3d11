/*
 * test_preflight.c - the GPU preflight (src/preflight/): version
 * comparison; NVML read through the real dlopen path from the fake NVML
 * (tests/fake-nvml/, AIRPACK_FAKE_NVML names it) with the versioned
 * memory struct and its fallback; the signed plan re-run against
 * synthetic hosts: fits, too few GPUs, one GPU nearly full, credit of the
 * replaced release, target.requires, no NVML, a lock without a plan.
 * Lock documents are the committed fuzz seeds (tests/fuzz/seeds/preflight:
 * the demo on one L4, and 2 x L40S with tensor parallel 2 and
 * target.requires driver 550, cuda 12.2, compute capability 8.9).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preflight/preflight.h"

#define GIB (1ull << 30)

static json_t *seed(const char *name)
{
    char p[4096];
    json_error_t je;
    json_t *d;
    snprintf(p, sizeof p, "%s/tests/fuzz/seeds/preflight/%s", AIRPACK_SRC, name);
    d = json_load_file(p, 0, &je);
    if (!d)
        fail_msg("%s: %s", p, je.text);
    return d;
}

/* A host of n GPUs of total GiB each, free GiB each (the last may differ). */
static void host(ap_hostgpus *h, ap_hostgpu *g, size_t n, double total, double free_gib, double last_free)
{
    memset(h, 0, sizeof *h);
    memset(g, 0, n * sizeof *g);
    for (size_t i = 0; i < n; i++) {
        g[i].index = (unsigned)i;
        snprintf(g[i].name, sizeof g[i].name, "NVIDIA L40S");
        g[i].total_bytes = (uint64_t)(total * GIB);
        g[i].free_bytes = (uint64_t)((i + 1 == n ? last_free : free_gib) * GIB);
        g[i].cc_major = 8;
        g[i].cc_minor = 9;
    }
    h->available = 1;
    snprintf(h->driver_version, sizeof h->driver_version, "550.54.14");
    h->cuda_version = 12040;
    h->gpus = g;
    h->n = n;
}

static json_t *check(const json_t *lock, const ap_hostgpus *h, const ap_preflight_opts *o, ap_pf_verdict want)
{
    json_t *r = NULL;
    ap_error err;
    ap_error_clear(&err);
    if (ap_preflight_check(lock, h, o, &r, &err) != AP_OK)
        fail_msg("preflight: %s", err.msg);
    if (ap_preflight_verdict(r) != want) {
        char *s = json_dumps(r, JSON_INDENT(1));
        fail_msg("verdict %s, want %s: %s", ap_pf_verdict_name(ap_preflight_verdict(r)), ap_pf_verdict_name(want), s);
    }
    return r;
}

static int has_problem(const json_t *r, const char *needle)
{
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(r, "problems"), i, p)
        if (strstr(json_string_value(p), needle))
            return 1;
    return 0;
}

static void test_version_cmp(void **state)
{
    (void)state;
    assert_true(ap_version_cmp("550.100", "550.54") > 0);
    assert_true(ap_version_cmp("550.54.14", "550.54") > 0);
    assert_int_equal(ap_version_cmp("12.4", "12.4"), 0);
    assert_int_equal(ap_version_cmp("12.4.0", "12.4"), 0);
    assert_true(ap_version_cmp("8.9", "9.0") < 0);
    assert_true(ap_version_cmp("535.104.05", "550") < 0);
    assert_true(ap_version_cmp("", "1") < 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_nvml_fake(void **state)
{
    const char *lib = getenv("AIRPACK_FAKE_NVML");
    char path[] = "/tmp/airpack-fake-gpus-XXXXXX";
    ap_hostgpus h;
    ap_error err;
    json_t *j;
    int fd;
    (void)state;
    if (!lib)
        fail_msg("AIRPACK_FAKE_NVML is not set (tests/CMakeLists.txt)");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "{\"driver_version\": \"560.35.03\", \"cuda_version\": 12060, \"gpus\": ["
                     "{\"name\": \"NVIDIA H100 80GB HBM3\", \"pci_device_id\": \"0x233010de\", \"memory_total_gib\": 80,"
                     " \"memory_used_gib\": 2, \"memory_reserved_gib\": 0.5, \"compute_capability\": \"9.0\"},"
                     "{\"name\": \"NVIDIA L4\", \"memory_total_gib\": 24}]}");
    setenv("AIRPACK_NVML_LIBRARY", lib, 1);
    setenv("AIRPACK_FAKE_NVML_GPUS", path, 1);
    ap_error_clear(&err);
    assert_int_equal(ap_hostgpus_read(&h, &err), AP_OK);
    assert_true(h.available);
    assert_string_equal(h.driver_version, "560.35.03");
    assert_int_equal(h.cuda_version, 12060);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.gpus[0].name, "NVIDIA H100 80GB HBM3");
    assert_int_equal(h.gpus[0].pci_device_id, 0x233010de);
    assert_string_equal(h.gpus[0].bus_id, "00000000:01:00.0");
    assert_int_equal(h.gpus[0].total_bytes, 80 * GIB);
    assert_int_equal(h.gpus[0].used_bytes, 2 * GIB);
    assert_int_equal(h.gpus[0].reserved_bytes, GIB / 2);
    assert_int_equal(h.gpus[0].free_bytes, 80 * GIB - 2 * GIB - GIB / 2);
    assert_true(h.gpus[0].memory_v2);
    assert_int_equal(h.gpus[0].cc_major, 9);
    assert_int_equal(h.gpus[0].cc_minor, 0);
    j = ap_hostgpus_to_json(&h);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "cuda_version")), "12.6");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "gpus"), 0), "pci_device_id")),
                        "0x233010de");
    json_decref(j);
    ap_hostgpus_release(&h);

    /* an NVML whose memory_v2 is refused: nvmlDeviceGetMemoryInfo answers */
    write_file(path, "{\"memory_v2\": \"mismatch\", \"gpus\": [{\"memory_total_gib\": 48, \"memory_used_gib\": 1,"
                     " \"memory_reserved_gib\": 1}]}");
    assert_int_equal(ap_hostgpus_read(&h, &err), AP_OK);
    assert_false(h.gpus[0].memory_v2);
    assert_int_equal(h.gpus[0].reserved_bytes, 0);
    assert_int_equal(h.gpus[0].used_bytes, 2 * GIB);
    assert_int_equal(h.gpus[0].free_bytes, 46 * GIB);
    ap_hostgpus_release(&h);

    /* no driver: not an error */
    write_file(path, "{\"init_error\": 9}");
    assert_int_equal(ap_hostgpus_read(&h, &err), AP_OK);
    assert_false(h.available);
    assert_non_null(strstr(h.problem, "Driver Not Loaded"));
    ap_hostgpus_release(&h);

    /* no library */
    setenv("AIRPACK_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
    assert_int_equal(ap_hostgpus_read(&h, &err), AP_OK);
    assert_false(h.available);
    assert_non_null(strstr(h.problem, "cannot load '/nonexistent/libnvidia-ml.so.1'"));
    ap_hostgpus_release(&h);
    unlink(path);
}

static void test_fits(void **state)
{
    ap_hostgpus h;
    ap_hostgpu g[2];
    json_t *lock = seed("ok-demo.lock.json"), *r;
    (void)state;
    host(&h, g, 1, 24, 23.5, 23.5);
    r = check(lock, &h, NULL, AP_PF_FITS);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r, "models"), 0), "verdict")),
                        "fits");
    assert_true(json_is_true(json_object_get(json_array_get(json_object_get(r, "gpus"), 0), "fits")));
    /* budget: min(total x 0.90, free) */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(r, "gpus"), 0), "budget_bytes")),
                     (json_int_t)((24 * GIB) * 0.9));
    json_decref(r);
    json_decref(lock);
}

static void test_gpu_count_and_full_gpu(void **state)
{
    ap_hostgpus h;
    ap_hostgpu g[2];
    json_t *lock = seed("ok-tp2.lock.json"), *r, *credit;
    ap_preflight_opts o = {0};
    (void)state;
    /* one GPU for tensor parallel 2 */
    host(&h, g, 1, 48, 47, 47);
    r = check(lock, &h, NULL, AP_PF_NOFIT);
    assert_true(has_problem(r, "tensor_parallel 2 needs 2 GPUs, this host has 1"));
    json_decref(r);
    /* two GPUs, the second nearly full (another tenant) */
    host(&h, g, 2, 48, 47, 0.1);
    r = check(lock, &h, NULL, AP_PF_NOFIT);
    assert_false(json_is_true(json_object_get(json_array_get(json_object_get(r, "gpus"), 1), "fits")));
    assert_true(json_is_true(json_object_get(json_array_get(json_object_get(r, "gpus"), 0), "fits")));
    json_decref(r);
    /* ... held by the release this one replaces: its budget counts as free */
    credit = json_pack("{s:[{s:I},{s:I}]}", "gpus", "used_bytes", (json_int_t)(40 * GIB), "used_bytes",
                       (json_int_t)(40 * GIB));
    o.credit_plan = credit;
    r = check(lock, &h, &o, AP_PF_FITS);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(r, "gpus"), 1), "credit_bytes")),
                     (json_int_t)(40 * GIB));
    json_decref(r);
    /* ... or free memory ignored */
    o.credit_plan = NULL;
    o.ignore_free = 1;
    r = check(lock, &h, &o, AP_PF_FITS);
    json_decref(r);
    json_decref(credit);
    json_decref(lock);
}

static void test_requires(void **state)
{
    ap_hostgpus h;
    ap_hostgpu g[2];
    json_t *lock = seed("ok-tp2.lock.json"), *r;
    (void)state;
    host(&h, g, 2, 48, 47, 47);
    r = check(lock, &h, NULL, AP_PF_FITS);
    assert_int_equal(json_array_size(json_object_get(r, "requirements")), 3);
    json_decref(r);
    snprintf(h.driver_version, sizeof h.driver_version, "535.104.05");
    g[1].cc_major = 8;
    g[1].cc_minor = 0;
    r = check(lock, &h, NULL, AP_PF_NOFIT);
    assert_true(has_problem(r, "driver 535.104.05 is older than the required 550"));
    assert_true(has_problem(r, "compute capability 8.0 is below the required 8.9"));
    assert_false(has_problem(r, "CUDA driver"));
    json_decref(r);
    h.cuda_version = 0; /* not known: not met */
    r = check(lock, &h, NULL, AP_PF_NOFIT);
    assert_true(has_problem(r, "CUDA driver (unknown) is older than the required 12.2"));
    json_decref(r);
    json_decref(lock);
}

static void test_unknown(void **state)
{
    ap_hostgpus h;
    ap_hostgpu g[1];
    json_t *lock = seed("ok-demo.lock.json"), *bare, *r;
    (void)state;
    memset(&h, 0, sizeof h);
    snprintf(h.problem, sizeof h.problem, "cannot load 'libnvidia-ml.so.1'");
    r = check(lock, &h, NULL, AP_PF_UNKNOWN);
    assert_true(has_problem(r, "no NVML on this host"));
    json_decref(r);
    host(&h, g, 1, 24, 24, 24);
    bare = json_pack("{s:{s:s,s:s,s:i},s:{}}", "metadata", "name", "x", "version", "1", "sequence", 1, "analysis");
    r = check(bare, &h, NULL, AP_PF_UNKNOWN);
    assert_true(has_problem(r, "records no manifest and memory plan"));
    json_decref(r);
    /* no GPU at all */
    h.n = 0;
    r = check(lock, &h, NULL, AP_PF_NOFIT);
    json_decref(r);
    json_decref(bare);
    json_decref(lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_cmp),
        cmocka_unit_test(test_nvml_fake),
        cmocka_unit_test(test_fits),
        cmocka_unit_test(test_gpu_count_and_full_gpu),
        cmocka_unit_test(test_requires),
        cmocka_unit_test(test_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
