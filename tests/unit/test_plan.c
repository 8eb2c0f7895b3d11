/*
 * test_plan.c - the memory planner with published model shapes:
 * Llama-3.1-8B (131072 bytes of bf16 KV cache per token), Llama-3.1-70B,
 * Qwen2.5-7B (4 KV heads, replicated beyond tensor_parallel 4),
 * Mixtral-8x7B, DeepSeek-V3 (MLA), Mistral-7B-v0.1 (sliding window);
 * KV dtypes; the verdict, headroom and largest context/concurrency;
 * models sharing GPUs; tensor_parallel beyond the GPU count; unknown GPUs;
 * declared facts that disagree with the files; the JSON contract.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "plan.h"

#define GIB (1024ull * 1024 * 1024)

typedef struct shape {
    const char *arch;
    uint64_t params, bytes, layers, hidden, heads, kv, hd, ffn, ctx, vocab, experts, used;
    uint64_t kv_lora, rope, window;
    const char *dtype;
} shape;

/* Published shapes (config.json of each model; parameter counts from the tensors). */
static const shape llama8b = {"llama", 8030261248ull, 16060522496ull, 32, 4096, 32, 8, 128, 14336, 131072, 128256, 0, 0, 0, 0, 0, "BF16"};
static const shape llama70b = {"llama", 70553706496ull, 141107412992ull, 80, 8192, 64, 8, 128, 28672, 131072, 128256, 0, 0, 0, 0, 0, "BF16"};
static const shape qwen7b = {"qwen2", 7615616512ull, 15231233024ull, 28, 3584, 28, 4, 128, 18944, 32768, 152064, 0, 0, 0, 0, 0, "BF16"};
static const shape mixtral = {"mixtral", 46702792704ull, 93405585408ull, 32, 4096, 32, 8, 128, 14336, 32768, 32000, 8, 2, 0, 0, 0, "BF16"};
static const shape dsv3 = {"deepseek_v3", 671026419200ull, 688586727424ull, 61, 7168, 128, 128, 192, 2048, 163840, 129280, 256, 8, 512, 64, 0, "F8_E4M3"};
static const shape mistral = {"mistral", 7241732096ull, 14483464192ull, 32, 4096, 32, 8, 128, 14336, 32768, 32000, 0, 0, 0, 0, 4096, "BF16"};

static ap_model_facts *facts_of(const shape *s)
{
    ap_model_facts *f = ap_model_facts_new("test");
    assert_non_null(f);
    f->format = "safetensors";
    f->tensors_src = AP_SRC_SAFETENSORS;
    f->parameters = s->params;
    f->weights_bytes = s->bytes;
    f->n_files = 1;
    assert_int_equal(ap_facts_set_str(&f->architecture, &f->architecture_src, s->arch, AP_SRC_CONFIG), 0);
    assert_int_equal(ap_facts_set_str(&f->dtype, &f->dtype_src, s->dtype, AP_SRC_SAFETENSORS), 0);
    ap_facts_set(&f->layers, s->layers, AP_SRC_CONFIG);
    ap_facts_set(&f->hidden, s->hidden, AP_SRC_CONFIG);
    ap_facts_set(&f->heads, s->heads, AP_SRC_CONFIG);
    ap_facts_set(&f->kv_heads, s->kv, AP_SRC_CONFIG);
    ap_facts_set(&f->head_dim, s->hd, AP_SRC_CONFIG);
    ap_facts_set(&f->v_head_dim, s->kv_lora ? 128 : s->hd, AP_SRC_CONFIG);
    ap_facts_set(&f->ffn, s->ffn, AP_SRC_CONFIG);
    ap_facts_set(&f->context_length, s->ctx, AP_SRC_CONFIG);
    ap_facts_set(&f->vocab, s->vocab, AP_SRC_CONFIG);
    ap_facts_set(&f->experts, s->experts, AP_SRC_CONFIG);
    if (s->used)
        ap_facts_set(&f->experts_used, s->used, AP_SRC_CONFIG);
    if (s->kv_lora) {
        ap_facts_set(&f->kv_lora_rank, s->kv_lora, AP_SRC_CONFIG);
        ap_facts_set(&f->qk_rope_head_dim, s->rope, AP_SRC_CONFIG);
    }
    ap_facts_set(&f->sliding_window, s->window, AP_SRC_CONFIG);
    if (s->window) {
        f->swa_layer = calloc(s->layers, 1);
        memset(f->swa_layer, 1, s->layers);
    }
    return f;
}

static ap_plan_model one(const shape *s, ap_runtime_kind kind, uint64_t tp, uint64_t ctx, uint64_t conc,
                         ap_kv_dtype kvd, uint64_t budget)
{
    ap_plan_model pm;
    ap_model_facts *f = facts_of(s);
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute(f, kind, tp, ctx, conc, kvd, -1, -1, budget, &pm), 0);
    assert_true(pm.planned);
    ap_model_facts_free(f);
    return pm;
}

static void test_kv_per_token(void **state)
{
    ap_plan_model pm;
    (void)state;
    /* Llama-3.1-8B: 2 x 32 layers x 8 heads x 128 x 2 bytes */
    pm = one(&llama8b, AP_RT_VLLM, 1, 8192, 1, AP_KV_AUTO, 80 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 131072);
    assert_string_equal(pm.kv_dtype, "bf16");
    assert_int_equal(pm.kv_bytes, 131072ull * 8192);
    assert_int_equal(pm.weights_per_gpu, 16060522496ull);
    ap_plan_model_release(&pm);
    pm = one(&llama8b, AP_RT_VLLM, 1, 8192, 1, AP_KV_FP8, 80 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 65536);
    ap_plan_model_release(&pm);
    pm = one(&llama8b, AP_RT_LLAMACPP, 1, 8192, 1, AP_KV_Q8_0, 80 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 69632);   /* 65536 elements x 34/32 */
    ap_plan_model_release(&pm);
    pm = one(&llama8b, AP_RT_LLAMACPP, 1, 8192, 1, AP_KV_Q4_0, 80 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 65536 * 18 / 32);
    ap_plan_model_release(&pm);
    /* Llama-3.1-70B: 327680 per token; tp 8 splits the 8 KV heads; tp 16 replicates them */
    pm = one(&llama70b, AP_RT_VLLM, 1, 8192, 1, AP_KV_AUTO, 1000 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 327680);
    ap_plan_model_release(&pm);
    pm = one(&llama70b, AP_RT_VLLM, 8, 8192, 1, AP_KV_AUTO, 80 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 40960);
    assert_int_equal(pm.kv_heads_per_gpu, 1);
    assert_int_equal(pm.weights_per_gpu, 141107412992ull / 8);
    ap_plan_model_release(&pm);
    pm = one(&llama70b, AP_RT_VLLM, 16, 8192, 1, AP_KV_AUTO, 80 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 40960);
    ap_plan_model_release(&pm);
    /* Qwen2.5-7B: 4 KV heads: 57344 per token; tp 2 halves; tp 8 replicates (1 head per GPU) */
    pm = one(&qwen7b, AP_RT_VLLM, 1, 8192, 1, AP_KV_AUTO, 80 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 57344);
    ap_plan_model_release(&pm);
    pm = one(&qwen7b, AP_RT_VLLM, 2, 8192, 1, AP_KV_AUTO, 80 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 28672);
    ap_plan_model_release(&pm);
    pm = one(&qwen7b, AP_RT_VLLM, 8, 8192, 1, AP_KV_AUTO, 80 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 14336);
    assert_int_equal(pm.kv_heads_per_gpu, 1);
    ap_plan_model_release(&pm);
    /* llama.cpp splits layers, not heads: tp 8 divides the whole cache */
    pm = one(&qwen7b, AP_RT_LLAMACPP, 8, 8192, 1, AP_KV_F16, 80 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 57344 / 8);
    ap_plan_model_release(&pm);
    /* Mixtral-8x7B: as Llama-3.1-8B's attention */
    pm = one(&mixtral, AP_RT_VLLM, 2, 8192, 1, AP_KV_AUTO, 80 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 65536);
    ap_plan_model_release(&pm);
    /* DeepSeek-V3 MLA: 61 x (512 + 64) x 2 bytes, the latent replicated on every GPU */
    pm = one(&dsv3, AP_RT_VLLM, 1, 8192, 1, AP_KV_BF16, 1000 * GIB);
    assert_true(pm.mla);
    assert_int_equal(pm.kv_bytes_per_token, 70272);
    ap_plan_model_release(&pm);
    pm = one(&dsv3, AP_RT_VLLM, 8, 8192, 1, AP_KV_BF16, 141 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 70272);
    ap_plan_model_release(&pm);
    pm = one(&dsv3, AP_RT_VLLM, 8, 8192, 1, AP_KV_FP8, 141 * GIB);
    assert_int_equal(pm.kv_bytes_per_token, 35136);
    ap_plan_model_release(&pm);
}

static void test_sliding_window(void **state)
{
    ap_plan_model pm;
    (void)state;
    /* Mistral-7B-v0.1: every layer slides over 4096 tokens */
    pm = one(&mistral, AP_RT_VLLM, 1, 32768, 2, AP_KV_AUTO, 80 * GIB);
    assert_int_equal(pm.window, 4096);
    assert_int_equal(pm.kv_bytes_per_token, 131072);
    assert_int_equal(pm.kv_bytes, 131072ull * 4096 * 2);
    assert_int_equal(ap_plan_kv_bytes(&pm, 1000, 1), 131072ull * 1000);
    ap_plan_model_release(&pm);
}

static void test_fit_and_max(void **state)
{
    ap_plan_model pm;
    uint64_t budget = (uint64_t)(22.03 * 0.9 * GIB);   /* one L4 */
    (void)state;
    pm = one(&llama8b, AP_RT_VLLM, 1, 8192, 1, AP_KV_AUTO, budget);
    assert_true(pm.fits);
    assert_true(pm.kv_budget_bytes > 0);
    assert_int_equal(pm.total_per_gpu, pm.weights_per_gpu + pm.kv_bytes + pm.activation_bytes + pm.overhead_bytes);
    assert_int_equal((int64_t)budget - (int64_t)(pm.total_per_gpu - pm.kv_bytes), pm.kv_budget_bytes);
    /* the largest context: fits, and one more token does not */
    assert_true(pm.max_context >= 8192);
    assert_true(pm.max_context * 131072 <= (uint64_t)pm.kv_budget_bytes);
    assert_true((pm.max_context + 1) * 131072 > (uint64_t)pm.kv_budget_bytes);
    assert_int_equal(pm.max_concurrency, (uint64_t)pm.kv_budget_bytes / (131072ull * 8192));
    ap_plan_model_release(&pm);
    pm = one(&llama8b, AP_RT_VLLM, 1, 8192, 16, AP_KV_AUTO, budget);
    assert_false(pm.fits);
    ap_plan_model_release(&pm);
    /* the model's maximum bounds the largest context */
    pm = one(&llama8b, AP_RT_VLLM, 1, 8192, 1, AP_KV_AUTO, 1000 * GIB);
    assert_int_equal(pm.max_context, 131072);
    ap_plan_model_release(&pm);
    /* weights alone too big: negative KV budget, nothing fits */
    pm = one(&llama70b, AP_RT_VLLM, 1, 8192, 1, AP_KV_AUTO, 80 * GIB);
    assert_false(pm.fits);
    assert_true(pm.kv_budget_bytes < 0);
    assert_int_equal(pm.max_context, 0);
    assert_int_equal(pm.max_concurrency, 0);
    ap_plan_model_release(&pm);
}

static void test_overrides_and_missing(void **state)
{
    ap_plan_model pm;
    ap_model_facts *f = facts_of(&llama8b);
    (void)state;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute(f, AP_RT_VLLM, 1, 1024, 1, AP_KV_AUTO, 0, 0.5, 80 * GIB, &pm), 0);
    assert_int_equal(pm.overhead_bytes, 0);
    assert_int_equal(pm.activation_bytes, GIB / 2);
    assert_string_equal(pm.overhead_src, "manifest");
    assert_string_equal(pm.activation_src, "manifest");
    assert_int_equal(pm.total_per_gpu, 16060522496ull + 131072ull * 1024 + GIB / 2);
    ap_plan_model_release(&pm);
    /* no context given: the model's maximum */
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute(f, AP_RT_VLLM, 1, 0, 1, AP_KV_AUTO, -1, -1, 80 * GIB, &pm), 0);
    assert_int_equal(pm.context, 131072);
    assert_string_equal(pm.context_src, "default");
    ap_plan_model_release(&pm);
    /* facts without heads cannot be planned */
    f->kv_heads.src = AP_SRC_NONE;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute(f, AP_RT_VLLM, 1, 1024, 1, AP_KV_AUTO, -1, -1, 80 * GIB, &pm), 0);
    assert_false(pm.planned);
    assert_non_null(strstr(pm.problem, "KV heads"));
    ap_plan_model_release(&pm);
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute(NULL, AP_RT_VLLM, 1, 1024, 1, AP_KV_AUTO, -1, -1, 80 * GIB, &pm), 0);
    assert_false(pm.planned);
    ap_plan_model_release(&pm);
    ap_model_facts_free(f);
}

/* ---- whole manifests, built by hand ---- */

static ap_mruntime runtimes[2];
static ap_mmodel models[3];

static void mk_manifest(ap_manifest *m, const char *gpu, uint64_t count, size_t n)
{
    memset(m, 0, sizeof *m);
    memset(runtimes, 0, sizeof runtimes);
    memset(models, 0, sizeof models);
    m->file = (char *)"deploy.yaml";
    m->gpu_model = (char *)gpu;
    m->gpu_count = count;
    m->memory_utilization = 0.9;
    runtimes[0].name = (char *)"vllm";
    runtimes[0].kind = AP_RT_VLLM;
    runtimes[1].name = (char *)"llama";
    runtimes[1].kind = AP_RT_LLAMACPP;
    m->runtimes = runtimes;
    m->n_runtimes = 2;
    for (size_t i = 0; i < n; i++) {
        models[i].name = (char *)(i == 0 ? "a" : i == 1 ? "b" : "c");
        models[i].serve.runtime = (char *)"vllm";
        models[i].serve.context = 8192;
        models[i].serve.concurrency = 4;
        models[i].serve.tensor_parallel = 1;
        models[i].serve.overhead_gib = -1;
        models[i].serve.activation_gib = -1;
    }
    m->models = models;
    m->n_models = n;
}

static int count_rule(json_t *findings, const char *rule)
{
    size_t i;
    json_t *f;
    int n = 0;
    json_array_foreach(findings, i, f)
        if (strcmp(json_string_value(json_object_get(f, "rule")), rule) == 0)
            n++;
    return n;
}

static void test_manifest_plan(void **state)
{
    ap_manifest m;
    ap_model_facts *facts[3];
    ap_plan *p = NULL;
    ap_error err;
    json_t *j, *findings;
    (void)state;
    unsetenv("AIRPACK_GPU_CATALOG");
    facts[0] = facts_of(&llama8b);
    facts[1] = facts_of(&llama8b);
    facts[2] = facts_of(&qwen7b);

    /* one Llama-3.1-8B on one H100: fits */
    mk_manifest(&m, "nvidia-h100-sxm", 2, 1);
    ap_error_clear(&err);
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
    assert_true(ap_plan_fits(p));
    assert_int_equal(p->budget_bytes, (uint64_t)(79.22 * 0.9 * GIB + 0.5));
    assert_int_equal(p->gpus[0].used_bytes, p->models[0].total_per_gpu);
    assert_int_equal(p->gpus[1].used_bytes, 0);
    j = ap_plan_to_json(p);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "fits")));
    {
        json_t *m0 = json_array_get(json_object_get(j, "models"), 0), *g0 = json_array_get(json_object_get(j, "gpus"), 0);
        static const char *const mk[] = {"name", "weights_bytes", "kv_bytes_per_token", "kv_budget_bytes", "fits",
                                         "max_context", "max_concurrency", NULL};
        static const char *const gk[] = {"budget_bytes", "used_bytes", "headroom_bytes", "fits", NULL};
        for (size_t i = 0; mk[i]; i++)
            assert_non_null(json_object_get(m0, mk[i]));
        for (size_t i = 0; gk[i]; i++)
            assert_non_null(json_object_get(g0, gk[i]));
        assert_int_equal(json_integer_value(json_object_get(m0, "kv_bytes_per_token")), 131072);
        assert_int_equal(json_integer_value(json_object_get(m0, "weights_bytes")), 16060522496ull);
    }
    json_decref(j);
    ap_plan_free(p);

    /* three models on GPU 0 of two H100s: each fits alone, together they do not */
    mk_manifest(&m, "nvidia-h100-sxm", 2, 3);
    models[0].serve.concurrency = 32;
    models[1].serve.concurrency = 32;
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
    assert_false(ap_plan_fits(p));
    assert_false(p->gpus[0].fits);
    assert_true(p->gpus[0].headroom_bytes < 0);
    assert_int_equal(p->gpus[0].used_bytes,
                     p->models[0].total_per_gpu + p->models[1].total_per_gpu + p->models[2].total_per_gpu);
    assert_int_equal(p->models[0].others_bytes, p->models[1].total_per_gpu + p->models[2].total_per_gpu);
    findings = json_array();
    assert_int_equal(ap_plan_findings(p, &m, facts, findings), 0);
    assert_int_equal(count_rule(findings, "AP-PLAN-FIT"), 3);
    json_decref(findings);
    ap_plan_free(p);

    /* spread: tensor_parallel 2 puts model c on GPUs 0 and 1 */
    models[2].serve.tensor_parallel = 2;
    m.n_models = 3;
    models[0].serve.concurrency = models[1].serve.concurrency = 1;
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
    assert_int_equal(p->gpus[1].used_bytes, p->models[2].total_per_gpu);
    ap_plan_free(p);

    /* tensor_parallel beyond the GPU count */
    mk_manifest(&m, "nvidia-l40s", 2, 1);
    models[0].serve.tensor_parallel = 4;
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
    assert_false(ap_plan_fits(p));
    assert_non_null(strstr(p->models[0].problem, "tensor_parallel 4"));
    findings = json_array();
    assert_int_equal(ap_plan_findings(p, &m, facts, findings), 0);
    assert_int_equal(count_rule(findings, "AP-PLAN-TP"), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(findings, 0), "path")),
                        "models[0].serve.tensor_parallel");
    json_decref(findings);
    ap_plan_free(p);

    /* unknown GPU: a clear error with a hint; memory_gib instead */
    mk_manifest(&m, "nvidia-l40", 1, 1);
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_ERR_INPUT);
    assert_null(p);
    assert_non_null(strstr(err.msg, "did you mean 'nvidia-l40s'"));
    m.gpu_memory_gib = 48;
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
    assert_string_equal(p->memory_src, "manifest");
    assert_int_equal(p->budget_bytes, (uint64_t)(48 * 0.9 * GIB + 0.5));
    ap_plan_free(p);

    /* a model whose facts could not be read is reported, not planned */
    mk_manifest(&m, "nvidia-h200", 1, 1);
    {
        ap_model_facts *none[1] = {NULL};
        assert_int_equal(ap_plan_compute(&m, none, &p, &err), AP_OK);
        assert_false(p->models[0].planned);
        findings = json_array();
        assert_int_equal(ap_plan_findings(p, &m, none, findings), 0);
        assert_int_equal(count_rule(findings, "AP-PLAN-UNKNOWN"), 1);
        json_decref(findings);
        ap_plan_free(p);
    }
    for (int i = 0; i < 3; i++)
        ap_model_facts_free(facts[i]);
}

static void test_declared_facts(void **state)
{
    ap_manifest m;
    ap_model_facts *facts[1];
    ap_plan *p = NULL;
    ap_error err;
    json_t *findings;
    static const struct { const char *params, *quant; uint64_t ctx; int np, nq, nc; } cases[] = {
        {"8B", "bf16", 8192, 0, 0, 0},
        {"8.03B", "BF16", 131072, 0, 0, 0},
        {"8,030,261,248", "bfloat16", 1, 0, 0, 0},
        {"13B", "Q4_K_M", 8192, 1, 1, 0},
        {"70B", "fp8", 200000, 1, 1, 1},
        {"lots", NULL, 8192, 1, 0, 0},
        {"8.5B", NULL, 8192, 1, 0, 0},
    };
    (void)state;
    facts[0] = facts_of(&llama8b);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mk_manifest(&m, "nvidia-h200", 1, 1);
        models[0].parameters = (char *)cases[i].params;
        models[0].quantization = (char *)cases[i].quant;
        models[0].serve.context = cases[i].ctx;
        ap_error_clear(&err);
        assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
        findings = json_array();
        assert_int_equal(ap_plan_findings(p, &m, facts, findings), 0);
        if (count_rule(findings, "AP-MODEL-PARAMS") != cases[i].np ||
            count_rule(findings, "AP-MODEL-QUANT") != cases[i].nq ||
            count_rule(findings, "AP-MODEL-CONTEXT") != cases[i].nc)
            fail_msg("case %zu (%s, %s): findings %s", i, cases[i].params, cases[i].quant ? cases[i].quant : "-",
                     json_dumps(findings, 0));
        json_decref(findings);
        ap_plan_free(p);
    }
    ap_model_facts_free(facts[0]);
    /* Qwen2.5-7B is called "7B" although it holds 7.62B */
    facts[0] = facts_of(&qwen7b);
    mk_manifest(&m, "nvidia-h200", 1, 1);
    models[0].parameters = (char *)"7B";
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
    findings = json_array();
    assert_int_equal(ap_plan_findings(p, &m, facts, findings), 0);
    assert_int_equal(count_rule(findings, "AP-MODEL-PARAMS"), 0);
    json_decref(findings);
    ap_plan_free(p);
    ap_model_facts_free(facts[0]);
}

static void test_param_parse(void **state)
{
    uint64_t v;
    (void)state;
    assert_true(ap_parse_param_count("8B", &v));
    assert_int_equal(v, 8000000000ull);
    assert_true(ap_parse_param_count("70.6B", &v));
    assert_int_equal(v, 70600000000ull);
    assert_true(ap_parse_param_count("1.5T", &v));
    assert_int_equal(v, 1500000000000ull);
    assert_true(ap_parse_param_count("8,030,261,248", &v));
    assert_int_equal(v, 8030261248ull);
    assert_true(ap_parse_param_count("350M", &v));
    assert_false(ap_parse_param_count("", &v));
    assert_false(ap_parse_param_count("B", &v));
    assert_false(ap_parse_param_count("-3B", &v));
    assert_false(ap_parse_param_count("8X", &v));
    assert_false(ap_parse_param_count("1e30", &v));
}

static void test_quant_match(void **state)
{
    ap_model_facts *f = facts_of(&llama8b);
    (void)state;
    assert_true(ap_plan_quant_matches("bf16", f));
    assert_true(ap_plan_quant_matches("BFloat16", f));
    assert_false(ap_plan_quant_matches("fp16", f));
    assert_int_equal(ap_facts_set_str(&f->file_type, &f->file_type_src, "Q4_K_M", AP_SRC_GGUF), 0);
    assert_true(ap_plan_quant_matches("q4_k_m", f));
    assert_true(ap_plan_quant_matches("Q4-K-M", f));
    assert_int_equal(ap_facts_set_str(&f->quant_method, &f->quant_method_src, "fp8", AP_SRC_CONFIG), 0);
    assert_true(ap_plan_quant_matches("FP8", f));
    ap_model_facts_free(f);
    f = facts_of(&dsv3);
    assert_true(ap_plan_quant_matches("fp8", f));   /* F8_E4M3 weights */
    ap_model_facts_free(f);
}

/* ---- runtime memory models (src/planner/) ---- */

static ap_plan_in vin(ap_runtime_kind k, const char *ver, double mem_gib, double util, uint64_t tp, uint64_t ctx)
{
    ap_plan_in in;
    memset(&in, 0, sizeof in);
    in.kind = k;
    in.version = ver;
    in.gpu_name = "h100-sxm";
    in.memory_bytes = (uint64_t)(mem_gib * GIB);
    in.utilization = util;
    in.tp = tp;
    in.pp = 1;
    in.ctx = ctx;
    in.conc = 1;
    in.overhead_gib = in.activation_gib = -1;
    in.v0 = in.custom_allreduce = in.flash_attn = -1;
    return in;
}

static void test_runtime_profiles(void **state)
{
    (void)state;
    ap_model_facts *f = facts_of(&llama8b);
    ap_plan_model pm;
    ap_plan_in in = vin(AP_RT_VLLM, "0.19.0", 79.19, 0.95, 1, 8192);
    uint64_t a1024, a16, v0short, v0long;

    /* vLLM 0.19: budget = total x util = weights + activation + non-torch + KV; graphs outside */
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_string_equal(pm.profile, "vllm 0.17 (V1)");
    assert_string_equal(pm.profile_note, "");
    assert_true(pm.graphs_outside);
    assert_true(pm.graphs_bytes > 0);
    assert_int_equal(pm.overhead_bytes, (uint64_t)(0.25 * GIB + 0.5));
    assert_int_equal(pm.batch_tokens, 8192);   /* H100 defaults */
    assert_int_equal(pm.seqs, 1024);
    a1024 = pm.activation_bytes;
    assert_int_equal(pm.kv_budget_bytes, (int64_t)(uint64_t)((double)(uint64_t)(79.19 * GIB) * 0.95 + 0.5) - (int64_t)pm.weights_per_gpu -
                                             (int64_t)pm.activation_bytes - (int64_t)pm.overhead_bytes);
    ap_plan_model_release(&pm);
    /* fewer CUDA graph sizes, less graph memory: 1, 2, 4, 8..64 = 11 graphs of the default 51 */
    {
        uint64_t g51 = pm.graphs_bytes;
        ap_plan_model_release(&pm);
        in.graph_max = 64;
        memset(&pm, 0, sizeof pm);
        assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
        assert_int_equal(pm.graphs_bytes, (uint64_t)((double)g51 * 11 / 51));
        in.graph_max = 0;
    }
    /* the sampler warm-up: fewer sequences, smaller peak; enforce_eager: no graphs */
    in.max_seqs = 16;
    in.enforce_eager = 1;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    a16 = pm.activation_bytes;
    assert_true(a16 < a1024);
    assert_int_equal(pm.graphs_bytes, 0);
    ap_plan_model_release(&pm);
    /* TP 2 with custom all-reduce: about 2.1 GiB non-torch per GPU; none on a consumer GPU */
    in = vin(AP_RT_VLLM, "0.19.0", 79.19, 0.95, 2, 8192);
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_int_equal(pm.overhead_bytes, (uint64_t)(2.1 * GIB + 0.5));
    ap_plan_model_release(&pm);
    in.gpu_name = "rtx-4090";
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_int_equal(pm.overhead_bytes, (uint64_t)(0.25 * GIB + 0.5));
    ap_plan_model_release(&pm);
    /* V0: the profile batch grows with max_model_len */
    in = vin(AP_RT_VLLM, "0.6.6", 79.19, 0.9, 1, 4096);
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_string_equal(pm.profile, "vllm 0.6.5 (V0)");
    v0short = pm.activation_bytes;
    ap_plan_model_release(&pm);
    in.ctx = 16384;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    v0long = pm.activation_bytes;
    assert_true(v0long > v0short);
    ap_plan_model_release(&pm);
    /* versions: nearest profile, and the plan says so */
    in = vin(AP_RT_VLLM, "0.5.4", 79.19, 0.9, 1, 4096);
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_non_null(strstr(pm.profile_note, "older than every profile"));
    ap_plan_model_release(&pm);
    in.version = "1.2.0";
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_non_null(strstr(pm.profile_note, "newer than the newest profile"));
    assert_string_equal(pm.profile, "vllm 0.17 (V1)");
    ap_plan_model_release(&pm);
    in.version = "nightly";
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_non_null(strstr(pm.profile_note, "is not known"));
    ap_plan_model_release(&pm);
    in.version = "0.10.1";   /* V1 by default; VLLM_USE_V1=0 forces V0 */
    in.v0 = 1;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_string_equal(pm.profile, "vllm 0.8 (V0)");
    assert_string_equal(pm.profile_note, "");
    ap_plan_model_release(&pm);
    ap_model_facts_free(f);
}

static void test_sglang_and_verdict(void **state)
{
    (void)state;
    ap_model_facts *f = facts_of(&llama70b);
    ap_plan_model pm;
    ap_plan_in in = vin(AP_RT_SGLANG, "0.4.9", 79.19, 0.93, 2, 131072);
    /* SGLang: mem_fraction_static covers weights + the KV pool only; activations outside */
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_true(pm.static_fraction);
    assert_int_equal(pm.kv_budget_bytes, (int64_t)(uint64_t)((double)(uint64_t)(79.19 * GIB) * 0.93 + 0.5) - (int64_t)pm.weights_per_gpu -
                                             (int64_t)pm.overhead_bytes);
    assert_int_equal(pm.total_per_gpu, pm.weights_per_gpu + pm.overhead_bytes + pm.kv_bytes);
    ap_plan_model_release(&pm);
    /* a pool smaller than the sequences asked for, but positive: SGLang starts (marginal) */
    in.conc = 64;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_true(pm.kv_budget_bytes > 0);
    assert_true((uint64_t)pm.kv_budget_bytes < pm.kv_bytes);
    assert_string_equal(pm.verdict, "marginal");
    assert_true(pm.fits);
    ap_plan_model_release(&pm);
    /* vLLM with the same numbers does not fit; within the profile's error it is marginal */
    in = vin(AP_RT_VLLM, "0.19.0", 79.19, 0.93, 2, 131072);
    in.conc = 64;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_string_equal(pm.verdict, "does not fit");
    assert_false(pm.fits);
    ap_plan_model_release(&pm);
    in.conc = 1;
    in.ctx = 1;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    {
        /* find the context that leaves less than the error as headroom */
        uint64_t per = pm.kv_bytes_per_token, c = ((uint64_t)pm.kv_budget_bytes - pm.error_bytes / 2) / per;
        ap_plan_model_release(&pm);
        in.ctx = c;
        memset(&pm, 0, sizeof pm);
        assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
        assert_string_equal(pm.verdict, "marginal");
        ap_plan_model_release(&pm);
    }
    ap_model_facts_free(f);
}

static void add_t(ap_model_facts *f, const char *name, const char *dt, uint64_t bytes)
{
    ap_error err;
    assert_int_equal(ap_facts_add_tensor(f, name, dt, bytes / 2, bytes, &err), 0);
}

static void test_loaded_bytes(void **state)
{
    (void)state;
    ap_model_facts *f = ap_model_facts_new("t");
    ap_plan_model pm;
    ap_plan_in in = vin(AP_RT_VLLM, "0.19.0", 79.19, 0.9, 2, 4096);
    f->tensors_src = AP_SRC_SAFETENSORS;
    ap_facts_set(&f->layers, 2, AP_SRC_CONFIG);
    ap_facts_set(&f->hidden, 2880, AP_SRC_CONFIG);
    ap_facts_set(&f->heads, 8, AP_SRC_CONFIG);
    ap_facts_set(&f->kv_heads, 8, AP_SRC_CONFIG);
    ap_facts_set(&f->head_dim, 64, AP_SRC_CONFIG);
    ap_facts_set(&f->ffn, 2880, AP_SRC_CONFIG);
    ap_facts_set(&f->vocab, 1000, AP_SRC_CONFIG);
    ap_facts_set(&f->context_length, 4096, AP_SRC_CONFIG);
    add_t(f, "model.embed_tokens.weight", "BF16", 1000000);
    add_t(f, "model.layers.0.self_attn.q_proj.weight", "BF16", 2000000);
    add_t(f, "model.layers.1.self_attn.q_proj.weight", "BF16", 2000000);
    add_t(f, "model.layers.2.self_attn.q_proj.weight", "BF16", 4000000);   /* MTP layer (DeepSeek-V3 style) */
    add_t(f, "model.layers.0.mlp.experts.gate_up_proj_blocks", "U8", 8000000);
    add_t(f, "vision_tower.blocks.0.attn.qkv.weight", "BF16", 600000);
    add_t(f, "lm_head.weight", "BF16", 1000000);
    assert_int_equal(f->expert_bytes, 8000000);
    assert_int_equal(f->vision_bytes, 600000);
    assert_int_equal(f->embed_bytes, 1000000);
    assert_int_equal(ap_facts_layer_bytes_from(f, 2), 4000000);
    /* vLLM: MTP not loaded, everything else sharded by TP 2 (vision too) */
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_int_equal(pm.checkpoint_bytes, 18600000);
    assert_int_equal(pm.mtp_bytes, 4000000);
    assert_int_equal(pm.loaded_bytes_per_gpu, (18600000 - 4000000) / 2);
    ap_plan_model_release(&pm);
    /* MXFP4 experts: hidden 2880 -> 3072, intermediate per rank 1440 -> 1536 */
    assert_int_equal(ap_facts_set_str(&f->quant_method, &f->quant_method_src, "mxfp4", AP_SRC_CONFIG), 0);
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_int_equal(pm.loaded_bytes_per_gpu, (18600000 - 4000000) / 2 + (uint64_t)(4000000.0 * (3072.0 / 2880 * 1536.0 / 1440 - 1)));
    assert_non_null(strstr(pm.weights_src, "MXFP4"));
    ap_plan_model_release(&pm);
    /* SGLang: the vision tower whole on every rank */
    in.kind = AP_RT_SGLANG;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_int_equal(pm.loaded_bytes_per_gpu, (18600000 - 4000000 - 600000) / 2 + 600000);
    ap_plan_model_release(&pm);
    /* llama.cpp: the token embedding stays in host memory */
    in.kind = AP_RT_LLAMACPP;
    in.tp = 1;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_int_equal(pm.host_bytes, 1000000);
    assert_int_equal(pm.loaded_bytes_per_gpu, 18600000 - 4000000 - 1000000);
    ap_plan_model_release(&pm);
    ap_model_facts_free(f);
}

static void test_rope_scaling(void **state)
{
    (void)state;
    ap_model_facts *f = facts_of(&qwen7b);
    ap_plan_model pm;
    ap_plan_in in = vin(AP_RT_VLLM, "0.19.0", 79.19, 0.9, 1, 131072);
    /* without rope_scaling the context is capped at 32768 */
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_int_equal(pm.context_limit, 32768);
    assert_int_equal(pm.max_context, 32768);
    ap_plan_model_release(&pm);
    /* config.json's YaRN factor 4 from 32768 */
    f->rope_type = strdup("yarn");
    f->rope_factor = 4;
    f->rope_orig_ctx = 32768;
    assert_int_equal(ap_facts_scaled_context(f), 131072);
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_int_equal(pm.context_limit, 131072);
    assert_int_equal(pm.max_context, 131072);
    ap_plan_model_release(&pm);
    /* llama3-type scaling does not extend the trained maximum */
    free(f->rope_type);
    f->rope_type = strdup("llama3");
    assert_int_equal(ap_facts_scaled_context(f), 32768);
    /* serve.rope_scaling overrides */
    in.rope_type = "yarn";
    in.rope_factor = 2;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_int_equal(pm.context_limit, 65536);
    ap_plan_model_release(&pm);
    ap_model_facts_free(f);
}

/* The plan at ctx x conc: 1 when the whole per-GPU total is within the budget
 * (headroom >= 0), and its verdict is not "does not fit". */
static int within(const ap_model_facts *f, ap_plan_in in, uint64_t ctx, uint64_t conc)
{
    ap_plan_model pm;
    int r;
    memset(&pm, 0, sizeof pm);
    in.ctx = ctx;
    in.conc = conc;
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    assert_true(pm.planned);
    r = pm.kv_budget_bytes >= 0 && pm.kv_bytes <= (uint64_t)pm.kv_budget_bytes;
    if (r)
        assert_true(pm.fits);
    ap_plan_model_release(&pm);
    return r;
}

/* The largest context and concurrency of the plan at in.ctx x in.conc are exact:
 * they fit, one more does not (unless the context is the model's limit); the
 * same answers whether the planned point fits or not. Returns the plan's answers. */
static void check_max(const ap_model_facts *f, ap_plan_in in, uint64_t *mc, uint64_t *mq)
{
    ap_plan_model pm;
    uint64_t lim;
    memset(&pm, 0, sizeof pm);
    assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
    lim = pm.context_limit ? pm.context_limit : pm.model_max_context;
    /* 0: nothing fits */
    if (pm.max_context)
        assert_true(within(f, in, pm.max_context, pm.concurrency));
    if (pm.max_context < lim)
        assert_false(within(f, in, pm.max_context + 1, pm.concurrency));
    if (pm.max_concurrency)
        assert_true(within(f, in, pm.context, pm.max_concurrency));
    assert_false(within(f, in, pm.context, pm.max_concurrency + 1));
    /* the requested point is on the right side of both answers */
    if (within(f, in, pm.context, pm.concurrency)) {
        assert_true(pm.context <= pm.max_context);
        assert_true(pm.concurrency <= pm.max_concurrency);
    } else {
        assert_true(pm.concurrency > pm.max_concurrency);
    }
    *mc = pm.max_context;
    *mq = pm.max_concurrency;
    ap_plan_model_release(&pm);
}

static void test_max_exact(void **state)
{
    ap_model_facts *f = facts_of(&llama8b);
    ap_plan_in in;
    uint64_t mc, mq, mc2, mq2;
    (void)state;

    /* llama.cpp without flash attention: the compute buffer grows with n_ctx = context x slots */
    in = vin(AP_RT_LLAMACPP, "b6500", 24, 0.95, 1, 8192);
    in.flash_attn = 0;
    in.conc = 2;
    check_max(f, in, &mc, &mq);
    assert_true(mc >= 8192 && mc < 131072);
    in.conc = 64;   /* does not fit: the same search says what would */
    assert_false(within(f, in, 8192, 64));
    check_max(f, in, &mc2, &mq2);
    assert_int_equal(mq2, mq);
    assert_true(mc2 < 8192);
    /* with the KV cache alone against the budget at the planned point the answers were larger */
    {
        ap_plan_model pm;
        memset(&pm, 0, sizeof pm);
        in.conc = 2;
        assert_int_equal(ap_plan_model_compute_in(f, &in, &pm), 0);
        assert_true(pm.max_context < (uint64_t)pm.kv_budget_bytes / pm.kv_bytes_per_token / 2);
        ap_plan_model_release(&pm);
    }

    /* vLLM V0: the profile batch is max_model_len tokens from 2048 to 32K */
    in = vin(AP_RT_VLLM, "0.6.6", 80, 0.9, 1, 8192);
    in.conc = 16;
    check_max(f, in, &mc, &mq);
    assert_true(mc > 8192 && mc < 32768);
    /* from 32K vLLM V0 chunks the prefill (2048 tokens): contexts there fit although 32767 does not */
    in = vin(AP_RT_VLLM, "0.6.6", 24.5, 0.9, 1, 30000);
    assert_false(within(f, in, 30000, 1));
    assert_false(within(f, in, 32767, 1));
    assert_true(within(f, in, 32768, 1));
    check_max(f, in, &mc, &mq);
    assert_true(mc >= 32768 && mc < 131072);
    assert_int_equal(mq, 0);   /* at context 30000 not even one sequence */

    /* vLLM V1 */
    in = vin(AP_RT_VLLM, "0.19.0", 80, 0.9, 1, 32768);
    in.conc = 8;
    check_max(f, in, &mc, &mq);
    in.conc = 400;
    assert_false(within(f, in, 32768, 400));
    check_max(f, in, &mc2, &mq2);
    assert_int_equal(mq2, mq);

    /* TGI, Ollama (llama.cpp engine, flash attention off by default) */
    in = vin(AP_RT_TGI, NULL, 48, 0.9, 1, 16384);
    in.conc = 8;
    check_max(f, in, &mc, &mq);
    in = vin(AP_RT_OLLAMA, NULL, 24, 0.9, 1, 8192);
    in.conc = 2;
    check_max(f, in, &mc, &mq);
    assert_true(mc < 131072);
    ap_model_facts_free(f);

    /* sliding-window layers (Mistral-7B-v0.1, window 4096): the KV cache stops growing past the window */
    f = facts_of(&mistral);
    in = vin(AP_RT_VLLM, "0.19.0", 24, 0.9, 1, 8192);
    in.conc = 8;
    check_max(f, in, &mc, &mq);
    assert_int_equal(mc, 32768);   /* the model's maximum */
    ap_model_facts_free(f);

    /* SGLang: mem_fraction_static covers weights + KV pool; the activation is outside */
    f = facts_of(&llama70b);
    in = vin(AP_RT_SGLANG, "0.4.9", 79.19, 0.88, 2, 32768);
    in.conc = 4;
    check_max(f, in, &mc, &mq);
    in.conc = 200;
    check_max(f, in, &mc2, &mq2);
    assert_int_equal(mq2, mq);
    ap_model_facts_free(f);
}

/* Models sharing a GPU: the largest context of one counts the other's use. */
static void test_max_shared(void **state)
{
    ap_manifest m;
    ap_model_facts *facts[2];
    ap_plan *p = NULL;
    ap_error err;
    uint64_t mc, mq;
    (void)state;
    unsetenv("AIRPACK_GPU_CATALOG");
    facts[0] = facts_of(&llama8b);
    facts[1] = facts_of(&llama8b);
    mk_manifest(&m, "nvidia-h100-sxm", 1, 2);
    models[0].serve.concurrency = 16;
    ap_error_clear(&err);
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
    mc = p->models[0].max_context;
    mq = p->models[0].max_concurrency;
    assert_true(p->models[0].others_bytes > 0);
    ap_plan_free(p);
    /* at the answers the GPU is within its budget, one more is not */
    models[0].serve.context = mc;
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
    assert_true(p->gpus[0].headroom_bytes >= 0);
    ap_plan_free(p);
    models[0].serve.context = mc + 1;
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
    assert_true(p->gpus[0].headroom_bytes < 0);
    ap_plan_free(p);
    models[0].serve.context = 8192;
    models[0].serve.concurrency = mq;
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
    assert_true(p->gpus[0].headroom_bytes >= 0);
    ap_plan_free(p);
    models[0].serve.concurrency = mq + 1;
    assert_int_equal(ap_plan_compute(&m, facts, &p, &err), AP_OK);
    assert_true(p->gpus[0].headroom_bytes < 0);
    assert_int_equal(p->models[0].max_concurrency, mq);
    ap_plan_free(p);
    ap_model_facts_free(facts[0]);
    ap_model_facts_free(facts[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_per_token),
        cmocka_unit_test(test_sliding_window),
        cmocka_unit_test(test_fit_and_max),
        cmocka_unit_test(test_overrides_and_missing),
        cmocka_unit_test(test_manifest_plan),
        cmocka_unit_test(test_declared_facts),
        cmocka_unit_test(test_param_parse),
        cmocka_unit_test(test_quant_match),
        cmocka_unit_test(test_runtime_profiles),
        cmocka_unit_test(test_sglang_and_verdict),
        cmocka_unit_test(test_loaded_bytes),
        cmocka_unit_test(test_rope_scaling),
        cmocka_unit_test(test_max_exact),
        cmocka_unit_test(test_max_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
