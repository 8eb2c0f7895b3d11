/*
 * plan.c - the GPU memory planner (see plan.h; every formula and its
 * source is in docs/memory-planner.md).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gpus.h"
#include "plan.h"
#include "util.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define MAX_CONTEXT_SEARCH (1ull << 26)   /* context cap when the model's maximum is unknown */
#define MAX_CONCURRENCY (1ull << 20)

/* Runtime profiles: the overheads each runtime adds per GPU. Sources in
 * docs/memory-planner.md ("Runtime overheads"). */
typedef struct rt_profile {
    const char *name;
    double base_gib;          /* CUDA context, cuBLAS/cuDNN workspaces, allocator (non-torch memory) */
    double tp_extra_gib;      /* NCCL and custom all-reduce buffers when tensor_parallel > 1 */
    double graphs_gib;        /* CUDA graphs */
    int layer_split;          /* 1: layers are split across GPUs (llama.cpp), 0: tensor parallel */
    uint64_t batch_tokens;    /* tokens in the activation profile (max_num_batched_tokens, n_ubatch) */
} rt_profile;

static const rt_profile prof_vllm = {"vllm", 1.8, 1.8, 0.5, 0, 8192};
static const rt_profile prof_sglang = {"sglang", 1.8, 1.8, 0.5, 0, 8192};
static const rt_profile prof_tgi = {"tgi", 1.8, 1.8, 0.5, 0, 4096};
static const rt_profile prof_llamacpp = {"llama.cpp", 0.5, 0.0, 0.0, 1, 512};

static const rt_profile *profile_of(ap_runtime_kind k)
{
    switch (k) {
    case AP_RT_LLAMACPP:
    case AP_RT_OLLAMA: return &prof_llamacpp;
    case AP_RT_SGLANG: return &prof_sglang;
    case AP_RT_TGI: return &prof_tgi;
    default: return &prof_vllm;   /* vllm, triton, other, unknown: the vLLM profile */
    }
}

static const char *kind_name(ap_runtime_kind k)
{
    switch (k) {
    case AP_RT_VLLM: return "vllm";
    case AP_RT_LLAMACPP: return "llama.cpp";
    case AP_RT_OLLAMA: return "ollama";
    case AP_RT_TGI: return "tgi";
    case AP_RT_TRITON: return "triton";
    case AP_RT_SGLANG: return "sglang";
    case AP_RT_OTHER: return "other";
    default: return "unknown";
    }
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return ap_mul_u64(a, b, &r) ? r : UINT64_MAX;
}
static uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return ap_add_u64(a, b, &r) ? r : UINT64_MAX;
}
static uint64_t div_ceil(uint64_t a, uint64_t b)
{
    return b ? a / b + (a % b != 0) : a;
}
static uint64_t gib_bytes(double gib)
{
    double b = gib * GIB;
    return b >= 1.8e19 ? UINT64_MAX : (uint64_t)(b + 0.5);
}

/* KV element size as a fraction of bytes. auto: the runtime's default
 * (vLLM and others: the model's 16-bit dtype, f16 or bf16; llama.cpp: f16). */
static void kv_size(ap_kv_dtype d, const ap_model_facts *f, int llamacpp, uint32_t *num, uint32_t *den,
                    const char **name)
{
    *den = 1;
    switch (d) {
    case AP_KV_FP8: *num = 1; *name = "fp8"; return;
    case AP_KV_Q8_0: *num = 34; *den = 32; *name = "q8_0"; return;
    case AP_KV_Q4_0: *num = 18; *den = 32; *name = "q4_0"; return;
    case AP_KV_F16: *num = 2; *name = "f16"; return;
    case AP_KV_BF16: *num = 2; *name = "bf16"; return;
    default: break;
    }
    *num = 2;
    *name = "bf16";
    if (llamacpp || (f && f->dtype && (strcasecmp(f->dtype, "F16") == 0 || strcasecmp(f->dtype, "float16") == 0)))
        *name = "f16";
}

uint64_t ap_plan_kv_bytes(const ap_plan_model *pm, uint64_t ctx, uint64_t conc)
{
    uint64_t full = pm->kv_bytes_per_token - pm->kv_swa_bytes_per_token;
    uint64_t swa_tokens = pm->window && pm->window < ctx ? pm->window : ctx;
    /* bytes per token are already scaled by the KV element size */
    return sat_add(sat_mul(sat_mul(full, ctx), conc), sat_mul(sat_mul(pm->kv_swa_bytes_per_token, swa_tokens), conc));
}

void ap_plan_model_release(ap_plan_model *pm)
{
    if (!pm)
        return;
    free(pm->name);
    free(pm->problem);
    pm->name = pm->problem = NULL;
}

static int set_problem(ap_plan_model *pm, const char *fmt, ...) AP_PRINTF(2, 3);
static int set_problem(ap_plan_model *pm, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(pm->problem);
    pm->problem = strdup(buf);
    return pm->problem ? AP_OK : AP_ERR_NOMEM;
}

/* Per-GPU KV elements per token over full and sliding-window layers. */
static const char *kv_layout(const ap_model_facts *f, const rt_profile *rp, uint64_t tp,
                             ap_plan_model *pm, uint64_t *full, uint64_t *swa)
{
    uint64_t layers, hd, vhd;
    *full = *swa = 0;
    if (f->layers.src == AP_SRC_NONE || f->layers.v == 0)
        return "the layer count is not known";
    layers = f->layers.v;
    pm->window = f->sliding_window.v;
    if (f->kv_lora_rank.src && f->kv_lora_rank.v > 0) {
        /* MLA: one compressed latent plus the RoPE key per layer and token */
        uint64_t per = f->kv_lora_rank.v + (f->qk_rope_head_dim.src ? f->qk_rope_head_dim.v : 0);
        pm->mla = 1;
        pm->kv_heads_per_gpu = 1;
        *full = sat_mul(per, layers);
        if (rp->layer_split)
            *full = div_ceil(*full, tp);
        pm->window = 0;
        return NULL;
    }
    if (f->kv_heads.src == AP_SRC_NONE || f->head_dim.src == AP_SRC_NONE || f->head_dim.v == 0)
        return "the KV heads or head size are not known";
    hd = f->head_dim.v;
    vhd = f->v_head_dim.src ? f->v_head_dim.v : hd;
    for (uint64_t l = 0; l < layers; l++) {
        uint64_t h = f->kv_heads_layer ? f->kv_heads_layer[l] : f->kv_heads.v, hg, e;
        if (h == 0)
            continue;
        if (rp->layer_split)
            hg = h;
        else
            hg = h >= tp ? div_ceil(h, tp) : 1;   /* replicated when tp exceeds the KV heads */
        if (hg > pm->kv_heads_per_gpu)
            pm->kv_heads_per_gpu = hg;
        e = sat_mul(hg, hd + vhd);
        if (pm->window > 0 && (!f->swa_layer || f->swa_layer[l]))
            *swa = sat_add(*swa, e);
        else
            *full = sat_add(*full, e);
    }
    if (rp->layer_split) {
        *full = div_ceil(*full, tp);
        *swa = div_ceil(*swa, tp);
    }
    if (*swa == 0)
        pm->window = 0;
    return NULL;
}

/* Activation peak per GPU (docs/memory-planner.md, "Activations"). */
static uint64_t activation(const ap_model_facts *f, const rt_profile *rp, uint64_t tp, uint64_t conc)
{
    uint64_t hidden = f->hidden.src ? f->hidden.v : 0, vocab = f->vocab.src ? f->vocab.v : 32000;
    uint64_t ffn, per_tok;
    if (!hidden)
        return gib_bytes(1.0);
    ffn = f->ffn.src ? f->ffn.v : 4 * hidden;
    if (f->experts.v > 0 && f->experts_used.src && f->experts_used.v > 0)
        ffn = sat_mul(ffn, f->experts_used.v);
    if (rp->layer_split) {
        /* llama.cpp compute buffer: n_ubatch x (logits + hidden states + FFN) in f32 */
        per_tok = sat_add(sat_add(vocab, sat_mul(4, hidden)), sat_mul(2, ffn));
        return sat_mul(sat_mul(rp->batch_tokens, per_tok), 4);
    }
    /* vLLM-style profile run: batched tokens through one layer (gate+up of the FFN
     * split by tp, residual and norms) in 16-bit, plus the sampler's fp32 logits */
    per_tok = sat_add(sat_mul(2, div_ceil(ffn, tp)), sat_mul(4, hidden));
    return sat_add(sat_mul(sat_mul(rp->batch_tokens, per_tok), 2),
                   sat_mul(sat_mul(conc < MAX_CONCURRENCY ? conc : MAX_CONCURRENCY, vocab), 20));
}

static void solve_max(ap_plan_model *pm)
{
    uint64_t lo = 0, hi, per;
    pm->max_context = pm->max_concurrency = 0;
    if (!pm->planned || pm->kv_budget_bytes < 0)
        return;
    hi = pm->model_max_context ? pm->model_max_context : MAX_CONTEXT_SEARCH;
    while (lo < hi) {   /* largest ctx in [0, hi] with kv(ctx) <= budget */
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if (ap_plan_kv_bytes(pm, mid, pm->concurrency) <= (uint64_t)pm->kv_budget_bytes)
            lo = mid;
        else
            hi = mid - 1;
    }
    pm->max_context = lo;
    per = ap_plan_kv_bytes(pm, pm->context, 1);
    if (per == 0)
        pm->max_concurrency = MAX_CONCURRENCY;
    else {
        uint64_t c = (uint64_t)pm->kv_budget_bytes / per;
        pm->max_concurrency = c > MAX_CONCURRENCY ? MAX_CONCURRENCY : c;
    }
}

int ap_plan_model_compute(const ap_model_facts *f, ap_runtime_kind kind, uint64_t tp, uint64_t ctx,
                          uint64_t conc, ap_kv_dtype kvd, double overhead_gib,
                          double activation_gib, uint64_t budget_bytes, ap_plan_model *pm)
{
    const rt_profile *rp = profile_of(kind);
    uint64_t full = 0, swa = 0, fixed;
    const char *why;

    pm->kind = kind;
    pm->kind_name = kind_name(kind);
    pm->tensor_parallel = tp ? tp : 1;
    pm->concurrency = conc ? conc : 1;
    pm->context = ctx;
    pm->context_src = ctx ? "manifest" : "default";
    kv_size(kvd, f, rp->layer_split, &pm->kv_num, &pm->kv_den, &pm->kv_dtype);
    pm->activation_src = activation_gib >= 0 ? "manifest" : "model";
    pm->overhead_src = overhead_gib >= 0 ? "manifest" : "runtime profile";
    if (!f)
        return set_problem(pm, "the model's facts could not be read");
    pm->model_max_context = f->context_length.src ? f->context_length.v : 0;
    if (!pm->context)
        pm->context = pm->model_max_context ? pm->model_max_context : 4096;
    if (f->tensors_src == AP_SRC_NONE)
        return set_problem(pm, "no weight files were read, so the weight size is not known");
    if ((why = kv_layout(f, rp, pm->tensor_parallel, pm, &full, &swa)) != NULL)
        return set_problem(pm, "cannot size the KV cache: %s", why);
    pm->planned = 1;
    pm->weights_bytes = f->weights_bytes;
    pm->weights_per_gpu = div_ceil(f->weights_bytes, pm->tensor_parallel);
    /* bytes per token: elements x kv_num / kv_den, rounded up */
    pm->kv_swa_bytes_per_token = div_ceil(sat_mul(swa, pm->kv_num), pm->kv_den);
    pm->kv_bytes_per_token = sat_add(div_ceil(sat_mul(full, pm->kv_num), pm->kv_den), pm->kv_swa_bytes_per_token);
    pm->kv_bytes = ap_plan_kv_bytes(pm, pm->context, pm->concurrency);
    pm->activation_bytes = activation_gib >= 0 ? gib_bytes(activation_gib)
                                               : activation(f, rp, pm->tensor_parallel, pm->concurrency);
    pm->overhead_bytes = overhead_gib >= 0 ? gib_bytes(overhead_gib)
                       : gib_bytes(rp->base_gib + rp->graphs_gib + (pm->tensor_parallel > 1 ? rp->tp_extra_gib : 0));
    fixed = sat_add(sat_add(pm->weights_per_gpu, pm->activation_bytes), pm->overhead_bytes);
    pm->total_per_gpu = sat_add(fixed, pm->kv_bytes);
    pm->kv_budget_bytes = fixed > budget_bytes ? -(int64_t)((fixed - budget_bytes) > INT64_MAX ? INT64_MAX : fixed - budget_bytes)
                                              : (int64_t)(budget_bytes - fixed > INT64_MAX ? INT64_MAX : budget_bytes - fixed);
    pm->fits = pm->total_per_gpu <= budget_bytes;
    solve_max(pm);
    return AP_OK;
}

/* The runtime kind serving a model: by name, or the only runtime. */
static ap_runtime_kind model_kind(const ap_manifest *m, const ap_mmodel *mm)
{
    for (size_t i = 0; i < m->n_runtimes; i++)
        if (mm->serve.runtime && m->runtimes[i].name && strcmp(m->runtimes[i].name, mm->serve.runtime) == 0)
            return m->runtimes[i].kind;
    if (!mm->serve.runtime && m->n_runtimes == 1)
        return m->runtimes[0].kind;
    return AP_RT_UNKNOWN;
}

/* Position of target.gpu.model in the manifest, for error messages. */
static void gpu_model_pos(const ap_manifest *m, unsigned *line, unsigned *col)
{
    const ap_ynode *n = m->doc ? m->doc->root : NULL;
    *line = *col = 0;
    n = ap_ymap_get(n, "target");
    n = ap_ymap_get(n, "gpu");
    if (n && ap_ymap_get(n, "model"))
        n = ap_ymap_get(n, "model");
    if (n) {
        *line = n->line;
        *col = n->column;
    }
}

int ap_plan_compute(const ap_manifest *m, ap_model_facts *const *facts, ap_plan **out, ap_error *err)
{
    ap_plan *p = NULL;
    ap_gpu_catalog *cat = NULL;
    const ap_gpu *g = NULL;
    int rc = AP_OK;

    *out = NULL;
    p = calloc(1, sizeof *p);
    if (!p)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if ((rc = ap_gpu_catalog_load(&cat, err)))
        goto out;
    if (m->gpu_model)
        g = ap_gpu_find(cat, m->gpu_model);
    if (m->gpu_memory_gib > 0) {
        p->memory_gib = m->gpu_memory_gib;
        p->memory_src = "manifest";
    } else if (g) {
        p->memory_gib = g->usable_gib;
        p->memory_src = "catalogue";
    } else {
        unsigned line, col;
        const char *hint = m->gpu_model ? ap_gpu_suggest(cat, m->gpu_model) : NULL;
        gpu_model_pos(m, &line, &col);
        if (!m->gpu_model)
            rc = ap_error_set_at(err, AP_ERR_INPUT, m->file, line, col,
                                 "no GPU model or memory_gib in target.gpu: cannot plan GPU memory");
        else
            rc = ap_error_set_at(err, AP_ERR_INPUT, m->file, line, col,
                                 "unknown GPU '%s' in the GPU catalogue%s%s%s (or give target.gpu.memory_gib)",
                                 m->gpu_model, hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        goto out;
    }
    if (g) {
        p->nominal_gb = g->memory_gb;
        if (!(p->gpu_label = strdup(g->label ? g->label : g->name))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if (m->gpu_model && !(p->gpu_model = strdup(g ? g->name : m->gpu_model))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    p->gpu_count = m->gpu_count ? m->gpu_count : 1;
    if (p->gpu_count > AP_PLAN_MAX_GPUS) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, m->file, 0, 0, "target.gpu.count %" PRIu64 " is over the limit of %d",
                             p->gpu_count, AP_PLAN_MAX_GPUS);
        goto out;
    }
    p->memory_utilization = m->memory_utilization > 0 ? m->memory_utilization : 0.90;
    p->budget_bytes = gib_bytes(p->memory_gib * p->memory_utilization);
    p->n_gpus = (size_t)p->gpu_count;
    p->gpus = calloc(p->n_gpus, sizeof *p->gpus);
    p->models = calloc(m->n_models ? m->n_models : 1, sizeof *p->models);
    if (!p->gpus || !p->models) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t g_i = 0; g_i < p->n_gpus; g_i++) {
        p->gpus[g_i].index = g_i;
        p->gpus[g_i].budget_bytes = p->budget_bytes;
    }
    for (size_t i = 0; i < m->n_models; i++) {
        const ap_mmodel *mm = &m->models[i];
        ap_plan_model *pm = &p->models[i];
        p->n_models++;
        pm->index = i;
        if (!(pm->name = strdup(mm->name ? mm->name : "?"))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = ap_plan_model_compute(facts ? facts[i] : NULL, model_kind(m, mm), mm->serve.tensor_parallel,
                                   mm->serve.context, mm->serve.concurrency, mm->serve.kv_cache_dtype,
                                   mm->serve.overhead_gib, mm->serve.activation_gib, p->budget_bytes, pm);
        if (rc) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (pm->planned && pm->tensor_parallel > p->gpu_count) {
            pm->fits = 0;
            if (set_problem(pm, "tensor_parallel %" PRIu64 " needs more GPUs than the %" PRIu64 " of the target",
                            pm->tensor_parallel, p->gpu_count)) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
        if (pm->planned)
            for (uint64_t k = 0; k < pm->tensor_parallel && k < p->gpu_count; k++)
                p->gpus[k].used_bytes = sat_add(p->gpus[k].used_bytes, pm->total_per_gpu);
    }
    for (size_t g_i = 0; g_i < p->n_gpus; g_i++) {
        ap_plan_gpu *pg = &p->gpus[g_i];
        pg->fits = pg->used_bytes <= pg->budget_bytes;
        pg->headroom_bytes = pg->fits ? (int64_t)(pg->budget_bytes - pg->used_bytes)
                                      : -(int64_t)((pg->used_bytes - pg->budget_bytes) > INT64_MAX ? INT64_MAX : pg->used_bytes - pg->budget_bytes);
    }
    p->fits = 1;
    for (size_t i = 0; i < p->n_models; i++) {
        ap_plan_model *pm = &p->models[i];
        uint64_t others = 0, fixed;
        int ok = 1;
        if (!pm->planned)
            continue;
        if (pm->tensor_parallel > p->gpu_count) {
            p->fits = 0;
            continue;
        }
        for (uint64_t k = 0; k < pm->tensor_parallel; k++) {
            uint64_t o = p->gpus[k].used_bytes - pm->total_per_gpu;
            if (o > others)
                others = o;
            if (!p->gpus[k].fits)
                ok = 0;
        }
        pm->others_bytes = others;
        fixed = sat_add(sat_add(sat_add(pm->weights_per_gpu, pm->activation_bytes), pm->overhead_bytes), others);
        pm->kv_budget_bytes = fixed > p->budget_bytes
            ? -(int64_t)((fixed - p->budget_bytes) > INT64_MAX ? INT64_MAX : fixed - p->budget_bytes)
            : (int64_t)(p->budget_bytes - fixed > INT64_MAX ? INT64_MAX : p->budget_bytes - fixed);
        pm->fits = ok;
        solve_max(pm);
        if (!pm->fits)
            p->fits = 0;
    }
    *out = p;
    p = NULL;
out:
    ap_gpu_catalog_free(cat);
    ap_plan_free(p);
    return rc;
}

int ap_plan_fits(const ap_plan *p)
{
    return p && p->fits;
}

void ap_plan_free(ap_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_models; i++)
        ap_plan_model_release(&p->models[i]);
    free(p->models);
    free(p->gpus);
    free(p->gpu_model);
    free(p->gpu_label);
    free(p);
}

/* ---- JSON ---- */

static json_t *model_json(const ap_plan_model *pm)
{
    json_t *o = json_object(), *gpus = json_array();
    int bad = !o || !gpus;
    if (bad)
        goto fail;
    bad |= json_object_set_new(o, "name", json_string(pm->name));
    bad |= json_object_set_new(o, "runtime", json_string(pm->kind_name));
    bad |= json_object_set_new(o, "planned", json_boolean(pm->planned));
    bad |= json_object_set_new(o, "problem", pm->problem ? json_string(pm->problem) : json_null());
    bad |= json_object_set_new(o, "tensor_parallel", json_integer((json_int_t)pm->tensor_parallel));
    for (uint64_t k = 0; k < pm->tensor_parallel && k < AP_PLAN_MAX_GPUS; k++)
        bad |= json_array_append_new(gpus, json_integer((json_int_t)k));
    bad |= json_object_set_new(o, "gpus", gpus);
    gpus = NULL;
    bad |= json_object_set_new(o, "context", json_integer((json_int_t)pm->context));
    bad |= json_object_set_new(o, "context_source", json_string(pm->context_src));
    bad |= json_object_set_new(o, "concurrency", json_integer((json_int_t)pm->concurrency));
    bad |= json_object_set_new(o, "model_max_context",
                               pm->model_max_context ? json_integer((json_int_t)pm->model_max_context) : json_null());
    bad |= json_object_set_new(o, "kv_cache_dtype", json_string(pm->kv_dtype));
    bad |= json_object_set_new(o, "kv_bytes_per_element", json_real((double)pm->kv_num / pm->kv_den));
    bad |= json_object_set_new(o, "mla", json_boolean(pm->mla));
    bad |= json_object_set_new(o, "kv_heads_per_gpu", json_integer((json_int_t)pm->kv_heads_per_gpu));
    bad |= json_object_set_new(o, "sliding_window", json_integer((json_int_t)pm->window));
    bad |= json_object_set_new(o, "weights_bytes", json_integer((json_int_t)pm->weights_bytes));
    bad |= json_object_set_new(o, "weights_per_gpu_bytes", json_integer((json_int_t)pm->weights_per_gpu));
    bad |= json_object_set_new(o, "kv_bytes_per_token", json_integer((json_int_t)pm->kv_bytes_per_token));
    bad |= json_object_set_new(o, "kv_bytes", json_integer((json_int_t)pm->kv_bytes));
    bad |= json_object_set_new(o, "activation_bytes", json_integer((json_int_t)pm->activation_bytes));
    bad |= json_object_set_new(o, "activation_source", json_string(pm->activation_src));
    bad |= json_object_set_new(o, "overhead_bytes", json_integer((json_int_t)pm->overhead_bytes));
    bad |= json_object_set_new(o, "overhead_source", json_string(pm->overhead_src));
    bad |= json_object_set_new(o, "total_per_gpu_bytes", json_integer((json_int_t)pm->total_per_gpu));
    bad |= json_object_set_new(o, "other_models_bytes", json_integer((json_int_t)pm->others_bytes));
    bad |= json_object_set_new(o, "headroom_bytes", json_integer(pm->planned ? (json_int_t)pm->kv_budget_bytes - (json_int_t)pm->kv_bytes : 0));
    bad |= json_object_set_new(o, "kv_budget_bytes", json_integer((json_int_t)pm->kv_budget_bytes));
    bad |= json_object_set_new(o, "fits", json_boolean(pm->fits));
    bad |= json_object_set_new(o, "max_context", json_integer((json_int_t)pm->max_context));
    bad |= json_object_set_new(o, "max_concurrency", json_integer((json_int_t)pm->max_concurrency));
    if (bad)
        goto fail;
    return o;
fail:
    json_decref(o);
    json_decref(gpus);
    return NULL;
}

json_t *ap_plan_to_json(const ap_plan *p)
{
    json_t *o = json_object(), *gpu = json_object(), *models = json_array(), *gpus = json_array();
    int bad = !o || !gpu || !models || !gpus;
    if (bad)
        goto fail;
    bad |= json_object_set_new(o, "fits", json_boolean(p->fits));
    bad |= json_object_set_new(gpu, "model", p->gpu_model ? json_string(p->gpu_model) : json_null());
    bad |= json_object_set_new(gpu, "label", p->gpu_label ? json_string(p->gpu_label) : json_null());
    bad |= json_object_set_new(gpu, "count", json_integer((json_int_t)p->gpu_count));
    bad |= json_object_set_new(gpu, "nominal_memory_gb", p->nominal_gb > 0 ? json_real(p->nominal_gb) : json_null());
    bad |= json_object_set_new(gpu, "memory_gib", json_real(p->memory_gib));
    bad |= json_object_set_new(gpu, "memory_source", json_string(p->memory_src));
    bad |= json_object_set_new(gpu, "memory_utilization", json_real(p->memory_utilization));
    bad |= json_object_set_new(gpu, "budget_bytes", json_integer((json_int_t)p->budget_bytes));
    bad |= json_object_set_new(o, "gpu", gpu);
    gpu = NULL;
    for (size_t i = 0; i < p->n_models; i++) {
        json_t *mj = model_json(&p->models[i]);
        bad |= !mj || json_array_append_new(models, mj);
    }
    bad |= json_object_set_new(o, "models", models);
    models = NULL;
    for (size_t i = 0; i < p->n_gpus; i++) {
        const ap_plan_gpu *pg = &p->gpus[i];
        json_t *names = json_array();
        for (size_t k = 0; names && k < p->n_models; k++)
            if (p->models[k].planned && pg->index < p->models[k].tensor_parallel &&
                p->models[k].tensor_parallel <= p->gpu_count)
                bad |= json_array_append_new(names, json_string(p->models[k].name));
        bad |= !names || json_array_append_new(gpus, json_pack("{s:I,s:I,s:I,s:I,s:b,s:o}",
                                                          "index", (json_int_t)pg->index,
                                                          "budget_bytes", (json_int_t)pg->budget_bytes,
                                                          "used_bytes", (json_int_t)pg->used_bytes,
                                                          "headroom_bytes", (json_int_t)pg->headroom_bytes,
                                                          "fits", pg->fits, "models", names));
    }
    bad |= json_object_set_new(o, "gpus", gpus);
    gpus = NULL;
    if (bad)
        goto fail;
    return o;
fail:
    json_decref(o);
    json_decref(gpu);
    json_decref(models);
    json_decref(gpus);
    return NULL;
}

/* ---- findings ---- */

static int add_finding(json_t *arr, const char *rule, const char *level, const char *title,
                       const char *subject, const char *path, const char *fmt, ...) AP_PRINTF(7, 8);
static int add_finding(json_t *arr, const char *rule, const char *level, const char *title,
                       const char *subject, const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    json_t *f;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    f = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[],s:s,s:s,s:b}", "rule", rule, "level", level, "message", msg,
                  "subject", subject, "path", path, "controls", "pack", "airpack", "title", title,
                  "waived", 0);
    if (!f)
        return -1;
    return json_array_append_new(arr, f);
}

/* Normalise a dtype or quantization name: lowercase, no '-', '_', ' ', synonyms folded. */
static void norm_q(const char *in, char *out, size_t n)
{
    size_t k = 0;
    static const struct { const char *from, *to; } syn[] = {
        {"bfloat16", "bf16"}, {"float16", "f16"}, {"fp16", "f16"}, {"half", "f16"},
        {"float32", "f32"}, {"fp32", "f32"}, {"float", "f32"}, {"f8e4m3", "fp8"}, {"f8e5m2", "fp8"},
        {"float8", "fp8"}, {"f8", "fp8"}, {"fp8e4m3", "fp8"}, {"fp8e5m2", "fp8"},
    };
    for (; *in && k + 1 < n; in++)
        if (*in != '-' && *in != '_' && *in != ' ')
            out[k++] = (char)((*in >= 'A' && *in <= 'Z') ? *in + 32 : *in);
    out[k] = '\0';
    for (size_t i = 0; i < AP_ARRAY_LEN(syn); i++)
        if (strcmp(out, syn[i].from) == 0) {
            snprintf(out, n, "%s", syn[i].to);
            return;
        }
}

int ap_plan_quant_matches(const char *declared, const ap_model_facts *f)
{
    char d[64], c[64];
    norm_q(declared, d, sizeof d);
    if (f->file_type) {
        norm_q(f->file_type, c, sizeof c);
        if (!strcmp(c, d))
            return 1;
    }
    if (f->quant_method) {
        norm_q(f->quant_method, c, sizeof c);
        if (!strcmp(c, d))
            return 1;
    }
    if (f->dtype) {
        norm_q(f->dtype, c, sizeof c);
        if (!strcmp(c, d))
            return 1;
    }
    for (size_t i = 0; i < f->n_dtypes; i++) {
        norm_q(f->dtypes[i].name, c, sizeof c);
        if (!strcmp(c, d) && f->dtypes[i].bytes * 4 >= f->weights_bytes)
            return 1;
    }
    return 0;
}

/* The precision of a declared count: one unit of its last written digit. */
static uint64_t param_unit(const char *s)
{
    double mult = 1;
    int dec = -1;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        n--;
    if (n > 0) {
        switch (s[n - 1]) {
        case 'T': case 't': mult = 1e12; break;
        case 'B': case 'b': case 'G': case 'g': mult = 1e9; break;
        case 'M': case 'm': mult = 1e6; break;
        case 'K': case 'k': mult = 1e3; break;
        default: break;
        }
    }
    for (const char *q = s; *q; q++) {
        if (*q == '.')
            dec = 0;
        else if (dec >= 0 && *q >= '0' && *q <= '9')
            dec++;
    }
    if (dec > 0)
        mult /= pow(10, dec);
    return mult < 1 ? 1 : (uint64_t)mult;
}

static const char *human(uint64_t b, char *buf, size_t n)
{
    snprintf(buf, n, "%.1f GiB", (double)b / GIB);
    return buf;
}

int ap_plan_findings(const ap_plan *p, const ap_manifest *m, ap_model_facts *const *facts, json_t *findings)
{
    char subj[64], path[96], a[32], b[32];
    for (size_t i = 0; m && i < m->n_models; i++) {
        const ap_mmodel *mm = &m->models[i];
        const ap_model_facts *f = facts ? facts[i] : NULL;
        const ap_plan_model *pm = p && i < p->n_models ? &p->models[i] : NULL;
        snprintf(subj, sizeof subj, "models[%zu]", i);

        if (f && mm->parameters && f->tensors_src != AP_SRC_NONE) {
            uint64_t want, unit, tol, diff;
            snprintf(path, sizeof path, "models[%zu].parameters", i);
            if (!ap_parse_param_count(mm->parameters, &want)) {
                if (add_finding(findings, "AP-MODEL-PARAMS", "error", "declared parameter count matches the files",
                                subj, path, "model '%s' declares parameters '%s', which is not a count", mm->name,
                                mm->parameters))
                    return -1;
            } else {
                unit = param_unit(mm->parameters);
                tol = unit > f->parameters / 200 ? unit : f->parameters / 200;
                diff = want > f->parameters ? want - f->parameters : f->parameters - want;
                if (diff >= tol && add_finding(findings, "AP-MODEL-PARAMS", "error",
                                               "declared parameter count matches the files", subj, path,
                                               "model '%s' declares %s parameters but its files hold %" PRIu64 " (%.2fB)",
                                               mm->name, mm->parameters, f->parameters, (double)f->parameters / 1e9))
                    return -1;
            }
        }
        if (f && mm->quantization && !ap_plan_quant_matches(mm->quantization, f)) {
            snprintf(path, sizeof path, "models[%zu].quantization", i);
            if (add_finding(findings, "AP-MODEL-QUANT", "error", "declared quantization matches the files", subj, path,
                            "model '%s' declares quantization '%s' but its files hold %s%s%s",
                            mm->name, mm->quantization, f->file_type ? f->file_type : f->dtype ? f->dtype : "unknown",
                            f->quant_method ? " / " : "", f->quant_method ? f->quant_method : ""))
                return -1;
        }
        if (f && mm->serve.context && f->context_length.src && mm->serve.context > f->context_length.v) {
            snprintf(path, sizeof path, "models[%zu].serve.context", i);
            if (add_finding(findings, "AP-MODEL-CONTEXT", "error", "context within the model's maximum", subj, path,
                            "model '%s' is served with context %" PRIu64 " but its maximum is %" PRIu64 " (%s)",
                            mm->name, mm->serve.context, f->context_length.v, ap_fact_src_name(f->context_length.src)))
                return -1;
        }
        if (!pm)
            continue;
        if (!pm->planned) {
            snprintf(path, sizeof path, "models[%zu].path", i);
            if (add_finding(findings, "AP-PLAN-UNKNOWN", "warning", "GPU memory can be planned", subj, path,
                            "model '%s' cannot be planned: %s", mm->name, pm->problem ? pm->problem : "unknown"))
                return -1;
            continue;
        }
        if (pm->tensor_parallel > p->gpu_count) {
            snprintf(path, sizeof path, "models[%zu].serve.tensor_parallel", i);
            if (add_finding(findings, "AP-PLAN-TP", "error", "tensor_parallel fits the GPU count", subj, path,
                            "model '%s' uses tensor_parallel %" PRIu64 " but the target has %" PRIu64 " GPU%s",
                            mm->name, pm->tensor_parallel, p->gpu_count, p->gpu_count == 1 ? "" : "s"))
                return -1;
            continue;
        }
        if (!pm->fits) {
            char c[32];
            snprintf(path, sizeof path, "models[%zu].serve", i);
            if (pm->others_bytes) {
                if (add_finding(findings, "AP-PLAN-FIT", "error", "the deployment fits the GPU memory", subj, path,
                                "model '%s' needs %s per GPU and the models sharing its GPUs %s more, %s usable; "
                                "largest context that fits: %" PRIu64 ", largest concurrency: %" PRIu64,
                                mm->name, human(pm->total_per_gpu, a, sizeof a), human(pm->others_bytes, c, sizeof c),
                                human(p->budget_bytes, b, sizeof b), pm->max_context, pm->max_concurrency))
                    return -1;
            } else if (add_finding(findings, "AP-PLAN-FIT", "error", "the deployment fits the GPU memory", subj, path,
                                   "model '%s' needs %s per GPU, %s usable; largest context that fits: %" PRIu64
                                   ", largest concurrency: %" PRIu64,
                                   mm->name, human(pm->total_per_gpu, a, sizeof a), human(p->budget_bytes, b, sizeof b),
                                   pm->max_context, pm->max_concurrency)) {
                return -1;
            }
        }
        {
            ap_runtime_kind k = pm->kind;
            ap_kv_dtype d = mm->serve.kv_cache_dtype;
            int bad = ((k == AP_RT_LLAMACPP || k == AP_RT_OLLAMA) && d == AP_KV_FP8) ||
                      ((k == AP_RT_VLLM || k == AP_RT_SGLANG || k == AP_RT_TGI) && (d == AP_KV_Q8_0 || d == AP_KV_Q4_0));
            snprintf(path, sizeof path, "models[%zu].serve.kv_cache_dtype", i);
            if (bad && add_finding(findings, "AP-PLAN-KV-DTYPE", "warning", "the runtime supports the KV cache dtype",
                                   subj, path, "runtime %s does not offer KV cache dtype '%s' for model '%s'",
                                   pm->kind_name, pm->kv_dtype, mm->name))
                return -1;
        }
    }
    return 0;
}
