/*
 * test_calibration.c - the planner against every published startup log
 * recorded in tests/planner/measurements/ (docs/memory-planner.md,
 * "Calibration"). For each case the model's tensors are generated with
 * their real names from its config.json numbers (tests/planner/shapes.h),
 * the runtime, version, GPU, parallelism and flags of the log are given
 * to the planner, and its figures are compared with the logged ones:
 *   - the weights loaded per GPU (vLLM "Model loading took", llama.cpp's
 *     model buffer), within the case's weights_pct;
 *   - the KV cache budget (vLLM "Available KV cache memory", SGLang's K +
 *     V pool) or, for llama.cpp, the KV and compute buffers, within the
 *     case's kv_pct / compute_pct;
 *   - the verdict at max_model_len x 1 sequence: the runtime started
 *     (fits or marginal) or refused (does not fit).
 * It prints the table and the summary, and fails when a case is out of its
 * tolerance or the median KV budget error is above 3%.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "../planner/shapes.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define MIB (1024.0 * 1024.0)

static double num(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static ap_runtime_kind kind_of(const char *s)
{
    if (!strcmp(s, "vllm")) return AP_RT_VLLM;
    if (!strcmp(s, "sglang")) return AP_RT_SGLANG;
    if (!strcmp(s, "llama.cpp")) return AP_RT_LLAMACPP;
    if (!strcmp(s, "ollama")) return AP_RT_OLLAMA;
    if (!strcmp(s, "tgi")) return AP_RT_TGI;
    return AP_RT_OTHER;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int flags_have(const json_t *c, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(c, "flags"), i, v)
        if (json_is_string(v) && strstr(json_string_value(v), s))
            return 1;
    return 0;
}

static void test_calibration(void **state)
{
    (void)state;
    json_error_t je;
    json_t *doc = json_load_file(AIRPACK_SRC "/tests/planner/measurements/cases.json", 0, &je);
    json_t *models, *cases, *c;
    double kv_err[256], w_worst = 0, kv_worst = 0;
    size_t n_kv = 0, n_cases = 0, n_verdict = 0, n_marginal = 0, n_weights = 0, idx;
    int failures = 0;
    if (!doc)
        fprintf(stderr, "cases.json: line %d: %s\n", je.line, je.text);
    assert_non_null(doc);
    models = json_object_get(doc, "models");
    cases = json_object_get(doc, "cases");
    assert_true(json_array_size(cases) >= 25);
    printf("%-44s %-10s %-11s %3s %-22s %9s %9s %7s %8s %8s %7s  %s\n", "case", "runtime", "gpu", "tp", "profile",
           "KV meas", "KV plan", "KV err", "W meas", "W plan", "W err", "verdict");
    json_array_foreach(cases, idx, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *rt = json_string_value(json_object_get(c, "runtime"));
        const char *mname = json_string_value(json_object_get(c, "model"));
        const json_t *m = json_object_get(models, mname), *lg = json_object_get(c, "logged"),
                     *tol = json_object_get(c, "tolerance");
        const char *quant = json_string_value(json_object_get(m, "quant"));
        const char *dt = json_string_value(json_object_get(m, "dtype"));
        const char *fmt = json_string_value(json_object_get(m, "format"));
        const char *kvd = json_string_value(json_object_get(c, "kv_cache_dtype"));
        const char *engine = json_string_value(json_object_get(c, "engine"));
        ap_model_facts *f;
        shape_ctx sc;
        ap_plan_in in;
        ap_plan_model pm;
        double kv_m, kv_p, w_m, w_p, e_kv = NAN, e_w = NAN, tol_kv = num(tol, "kv_pct"), tol_w = num(tol, "weights_pct");
        int started = json_is_true(json_object_get(c, "started")), llama = !strcmp(rt, "llama.cpp"), ok_v, marginal;
        char kvtxt[16], wtxt[16];

        assert_non_null(m);
        n_cases++;
        f = ap_model_facts_new(mname);
        assert_non_null(f);
        f->format = fmt && !strcmp(fmt, "gguf") ? "gguf" : "safetensors";
        f->tensors_src = fmt && !strcmp(fmt, "gguf") ? AP_SRC_GGUF : AP_SRC_SAFETENSORS;
        memset(&sc, 0, sizeof sc);
        sc.f = f;
        sc.quant = quant ? quant : "bf16";
        sc.dtype16 = dt && !strcmp(dt, "F16") ? "F16" : "BF16";
        sc.gguf = fmt && !strcmp(fmt, "gguf");
        shape_facts(f, m);
        assert_int_equal(shape_tensors(&sc, m), 0);
        assert_false(sc.failed);
        assert_int_equal(ap_facts_set_str(&f->dtype, &f->dtype_src, sc.dtype16, AP_SRC_SAFETENSORS), 0);

        memset(&in, 0, sizeof in);
        in.kind = kind_of(rt);
        in.version = json_string_value(json_object_get(c, "version"));
        in.gpu_name = json_string_value(json_object_get(c, "gpu"));
        in.memory_bytes = (uint64_t)(num(c, "gpu_memory_gib") * GIB);
        in.utilization = num(c, "utilization");
        in.tp = (uint64_t)num(c, "tp");
        in.pp = (uint64_t)num(c, "pp");
        in.ctx = (uint64_t)num(c, "max_model_len");
        in.conc = 1;
        in.kvd = kvd && !strcmp(kvd, "fp8") ? AP_KV_FP8 : kvd && !strcmp(kvd, "f16") ? AP_KV_F16 : AP_KV_AUTO;
        in.overhead_gib = in.activation_gib = -1;
        in.v0 = engine && !strcmp(engine, "V0") ? 1 : -1;
        in.custom_allreduce = -1;
        in.flash_attn = flags_have(c, "flash_attn = 0") ? 0 : -1;
        memset(&pm, 0, sizeof pm);
        assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
        assert_true(pm.planned);

        if (llama) {
            kv_m = num(lg, "kv_buffer_mib");
            kv_p = (double)pm.kv_bytes / MIB;
            w_m = num(lg, "model_buffer_mib") / 1024.0;
        } else {
            kv_m = num(lg, "kv_cache_gib");
            kv_p = (double)pm.kv_budget_bytes / GIB;
            w_m = num(lg, "weights_gib");
        }
        w_p = (double)pm.loaded_bytes_per_gpu / GIB;
        if (!isnan(kv_m) && kv_m > 0) {
            e_kv = 100.0 * (kv_p - kv_m) / kv_m;
            kv_err[n_kv++] = fabs(e_kv);
            if (fabs(e_kv) > kv_worst)
                kv_worst = fabs(e_kv);
            if (fabs(e_kv) > tol_kv) {
                fprintf(stderr, "%s: KV %.2f planned, %.2f logged (%+.1f%%, tolerance %.0f%%)\n", id, kv_p, kv_m, e_kv, tol_kv);
                failures++;
            }
        }
        if (!isnan(w_m)) {
            n_weights++;
            e_w = 100.0 * (w_p - w_m) / w_m;
            if (fabs(e_w) > w_worst)
                w_worst = fabs(e_w);
            if (fabs(e_w) > tol_w) {
                fprintf(stderr, "%s: weights %.2f GiB planned, %.2f logged (%+.1f%%, tolerance %.0f%%)\n", id, w_p, w_m, e_w, tol_w);
                failures++;
            }
        }
        if (llama && !isnan(num(lg, "compute_buffer_mib"))) {
            double cm = num(lg, "compute_buffer_mib"), cp = (double)pm.activation_bytes / MIB;
            double ec = 100.0 * (cp - cm) / cm;
            printf("  %s: compute buffer %.0f MiB planned, %.0f logged (%+.1f%%)\n", id, cp, cm, ec);
            if (fabs(ec) > num(tol, "compute_pct")) {
                fprintf(stderr, "%s: compute buffer out of tolerance\n", id);
                failures++;
            }
        }
        /* "marginal" says the headroom is within the profile's stated error: either
         * outcome is consistent with it; counted apart in the summary */
        marginal = !strcmp(pm.verdict, "marginal");
        ok_v = marginal || (started ? strcmp(pm.verdict, "does not fit") != 0 : strcmp(pm.verdict, "does not fit") == 0);
        n_verdict += ok_v && !marginal;
        n_marginal += marginal;
        if (!ok_v) {
            fprintf(stderr, "%s: verdict '%s' but the runtime %s\n", id, pm.verdict, started ? "started" : "refused");
            failures++;
        }
        snprintf(kvtxt, sizeof kvtxt, isnan(e_kv) ? "-" : "%+.1f%%", e_kv);
        snprintf(wtxt, sizeof wtxt, isnan(e_w) ? "-" : "%+.1f%%", e_w);
        printf("%-44s %-10s %-11.11s %3llu %-22.22s %9.2f %9.2f %7s %8.2f %8.2f %7s  %s%s\n", id, rt,
               in.gpu_name, (unsigned long long)in.tp * (in.pp ? in.pp : 1), pm.profile, kv_m, kv_p, kvtxt,
               isnan(w_m) ? 0.0 : w_m, w_p, wtxt, pm.verdict,
               !ok_v ? " (MISMATCH)" : marginal ? (started ? " (started)" : " (refused)") : "");
        ap_plan_model_release(&pm);
        ap_model_facts_free(f);
    }
    qsort(kv_err, n_kv, sizeof kv_err[0], cmp_d);
    {
        double med = n_kv ? (n_kv % 2 ? kv_err[n_kv / 2] : (kv_err[n_kv / 2 - 1] + kv_err[n_kv / 2]) / 2) : 0;
        printf("\n%zu cases; verdicts %zu/%zu match, %zu marginal; KV budget median %.1f%% worst %.1f%% (%zu cases); "
               "weights worst %.1f%% (%zu cases)\n",
               n_cases, n_verdict, n_cases, n_marginal, med, kv_worst, n_kv, w_worst, n_weights);
        if (med > 3.0) {
            fprintf(stderr, "median KV budget error %.1f%% is above 3%%\n", med);
            failures++;
        }
    }
    json_decref(doc);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calibration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
