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
#include "planner/runtime.h"
#include "util.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define MAX_CONTEXT_SEARCH (1ull << 26)   /* context cap when the model's maximum is unknown */
#define MAX_CONCURRENCY (1ull << 20)

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

/* Per-GPU KV elements per token over full and sliding-window layers.
 * layer_split: llama.cpp (whole model's cache divided over the GPUs);
 * otherwise heads split by tp and layers by pp. */
static const char *kv_layout(const ap_model_facts *f, int layer_split, ap_mla_layout mla, uint64_t tp, uint64_t pp,
                             ap_plan_model *pm, uint64_t *full, uint64_t *swa)
{
    uint64_t layers, hd, vhd, split = layer_split ? tp * pp : pp;
    *full = *swa = 0;
    if (f->layers.src == AP_SRC_NONE || f->layers.v == 0)
        return "the layer count is not known";
    layers = f->layers.v;
    pm->window = f->sliding_window.v;
    if (f->kv_lora_rank.src && f->kv_lora_rank.v > 0) {
        /* MLA: the latent plus the RoPE key per layer and token, replicated on every TP rank;
         * llama.cpp with MLA also caches V as the latent; older llama.cpp the decompressed heads */
        uint64_t rope = f->qk_rope_head_dim.src ? f->qk_rope_head_dim.v : 0, per = f->kv_lora_rank.v + rope;
        if (mla == AP_MLA_LATENT_KV)
            per += f->kv_lora_rank.v;
        else if (mla == AP_MLA_FULL && f->heads.src && f->head_dim.src)
            per = sat_mul(f->heads.v, f->head_dim.v + (f->v_head_dim.src ? f->v_head_dim.v : f->head_dim.v));
        pm->mla = 1;
        pm->kv_heads_per_gpu = 1;
        *full = sat_mul(per, div_ceil(layers, split));
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
        if (layer_split)
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
    if (split > 1) {
        *full = div_ceil(*full, split);
        *swa = div_ceil(*swa, split);
    }
    if (*swa == 0)
        pm->window = 0;
    return NULL;
}

static uint64_t round_up(uint64_t v, uint64_t m)
{
    return m ? div_ceil(v, m) * m : v;
}

/* The bytes a runtime loads on each GPU (docs/memory-planner.md, "Loaded bytes"). */
static void loaded_bytes(const ap_model_facts *f, const ap_rt_terms *t, uint64_t tp, uint64_t pp, ap_plan_model *pm)
{
    uint64_t ckpt = f->weights_bytes, sharded, per;
    char extra[128] = "";
    size_t k = 0;
    pm->checkpoint_bytes = ckpt;
    /* MTP layers: shipped after the last decoder layer, not loaded for serving */
    pm->mtp_bytes = f->layers.src ? ap_facts_layer_bytes_from(f, f->layers.v) : 0;
    pm->vision_bytes = t->vision_replicated && f->vision_bytes <= ckpt - pm->mtp_bytes ? f->vision_bytes : 0;
    sharded = ckpt - pm->mtp_bytes - pm->vision_bytes;
    /* llama.cpp keeps the token embedding on the host; a tied output is duplicated on the GPU */
    if (t->host_embedding && f->embed_bytes <= sharded) {
        pm->host_bytes = f->embed_bytes;
        if (f->has_output)
            sharded -= f->embed_bytes;
    }
    per = div_ceil(sharded, tp * pp);
    /* MXFP4 experts: hidden and per-rank intermediate sizes padded to 256 for the MoE kernels */
    if (t->mxfp4_pad && f->expert_bytes && f->expert_bytes <= sharded && f->quant_method &&
        strcasecmp(f->quant_method, "mxfp4") == 0 && f->hidden.src && f->ffn.src && f->hidden.v && f->ffn.v) {
        uint64_t h = f->hidden.v, i = div_ceil(f->ffn.v, tp);
        double pad = (double)round_up(h, 256) / (double)h * (double)round_up(i, 256) / (double)i;
        uint64_t e = div_ceil(f->expert_bytes, tp * pp);
        per += (uint64_t)((double)e * (pad - 1.0));
        k += (size_t)snprintf(extra + k, sizeof extra - k, "; MXFP4 experts padded x%.3f", pad);
    }
    per += pm->vision_bytes;
    if (pm->mtp_bytes && k < sizeof extra)
        k += (size_t)snprintf(extra + k, sizeof extra - k, "; MTP layers not loaded");
    if (pm->vision_bytes && k < sizeof extra)
        k += (size_t)snprintf(extra + k, sizeof extra - k, "; vision tower on every rank");
    if (pm->host_bytes && k < sizeof extra)
        k += (size_t)snprintf(extra + k, sizeof extra - k, "; token embedding in host memory");
    pm->weights_per_gpu = pm->loaded_bytes_per_gpu = per;
    snprintf(pm->weights_src, sizeof pm->weights_src, "model files (tensor headers)%s", extra);
}

/* The runtime's inputs for a model at ctx tokens x conc sequences. */
static void rt_in_of(const ap_plan_in *in, uint64_t tp, uint64_t pp, uint64_t ctx, uint64_t conc, ap_rt_in *ri)
{
    memset(ri, 0, sizeof *ri);
    ri->kind = in->kind;
    ri->version = in->version;
    ri->gpu_name = in->gpu_name;
    ri->memory_bytes = in->memory_bytes;
    ri->utilization = in->utilization;
    ri->tp = tp;
    ri->pp = pp;
    ri->context = ctx;
    ri->concurrency = conc;
    ri->max_batched_tokens = in->max_batched_tokens;
    ri->max_seqs = in->max_seqs;
    ri->enforce_eager = in->enforce_eager;
    ri->v0 = in->v0;
    ri->custom_allreduce = in->custom_allreduce;
    ri->flash_attn = in->flash_attn;
    ri->ubatch = in->ubatch;
    ri->vision_dp = in->vision_dp;
    ri->graph_max = in->graph_max;
}

/* The activation and overhead per GPU from the terms, or the manifest's overrides. */
static uint64_t term_activation(const ap_plan_in *in, const ap_rt_terms *t)
{
    return in->activation_gib >= 0 ? gib_bytes(in->activation_gib) : t->activation;
}
static uint64_t term_overhead(const ap_plan_in *in, const ap_rt_terms *t)
{
    return in->overhead_gib >= 0 ? gib_bytes(in->overhead_gib) : sat_add(t->non_torch, t->graphs_outside ? 0 : t->graphs);
}

/* One point of the search: the model at ctx x conc with everything else as planned. */
typedef struct solve_ctx {
    const ap_model_facts *f;
    const ap_plan_in *in;
    const ap_plan_model *pm;
    uint64_t room;                  /* budget - the other models on the same GPUs */
} solve_ctx;

/* What the runtime's own accounting puts inside the budget at ctx x conc:
 * weights + overhead + activation (not under SGLang's static fraction) + KV. */
static uint64_t inside_at(const solve_ctx *sc, uint64_t ctx, uint64_t conc, ap_rt_terms *t)
{
    ap_rt_in ri;
    uint64_t v;
    rt_in_of(sc->in, sc->pm->tensor_parallel, sc->pm->pipeline_parallel, ctx, conc, &ri);
    ap_rt_model(sc->f, &ri, t);
    v = sat_add(sc->pm->weights_per_gpu, term_overhead(sc->in, t));
    if (!sc->pm->static_fraction)
        v = sat_add(v, term_activation(sc->in, t));
    return sat_add(v, ap_plan_kv_bytes(sc->pm, ctx, conc));
}

static int fits_at(const solve_ctx *sc, uint64_t ctx, uint64_t conc, ap_rt_terms *t)
{
    return inside_at(sc, ctx, conc, t) <= sc->room;
}

/* Largest x in [a, b] that fits, the total being monotone on [a, b] (x is the
 * context when ctx_axis, else the concurrency); 0 when a does not fit. */
static uint64_t search(const solve_ctx *sc, int ctx_axis, uint64_t other, uint64_t a, uint64_t b)
{
    ap_rt_terms t;
    uint64_t lo = a, hi = b;
    if (a > b || !fits_at(sc, ctx_axis ? a : other, ctx_axis ? other : a, &t))
        return 0;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if (fits_at(sc, ctx_axis ? mid : other, ctx_axis ? other : mid, &t))
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* The largest context (at the planned concurrency) and the largest concurrency
 * (at the planned context) for which the whole per-GPU total fits: the runtime's
 * terms are recomputed at every point searched (llama.cpp's compute buffer grows
 * with n_ctx, vLLM V0's profile batch with max_model_len), so the answers agree
 * with the verdict the plan would give there. The total grows with both, except
 * where a runtime's activation drops (t.ctx_drop): the contexts from there up are
 * searched first, then those below. */
static void solve_max(ap_plan_model *pm, const ap_model_facts *f, const ap_plan_in *in, uint64_t budget,
                      uint64_t others)
{
    solve_ctx sc;
    ap_rt_terms t;
    uint64_t hi, drop, c = 0;
    pm->max_context = pm->max_concurrency = 0;
    if (!pm->planned || !f || others >= budget)
        return;
    sc.f = f;
    sc.in = in;
    sc.pm = pm;
    sc.room = budget - others;
    hi = pm->context_limit ? pm->context_limit : pm->model_max_context ? pm->model_max_context : MAX_CONTEXT_SEARCH;
    (void)inside_at(&sc, pm->context, pm->concurrency, &t);
    drop = t.ctx_drop;
    if (drop > 1 && drop <= hi)
        c = search(&sc, 1, pm->concurrency, drop, hi);
    if (!c)
        c = search(&sc, 1, pm->concurrency, 1, drop > 1 && drop <= hi ? drop - 1 : hi);
    pm->max_context = c;
    pm->max_concurrency = search(&sc, 0, pm->context, 1, MAX_CONCURRENCY);
}

static int64_t signed_diff(uint64_t a, uint64_t b)
{
    if (a >= b)
        return a - b > INT64_MAX ? INT64_MAX : (int64_t)(a - b);
    return b - a > INT64_MAX ? -INT64_MAX : -(int64_t)(b - a);
}

/* The verdict from the KV budget, the KV cache needed and the profile's error. */
static void set_verdict(ap_plan_model *pm)
{
    int64_t head = pm->kv_budget_bytes - (pm->kv_bytes > INT64_MAX ? INT64_MAX : (int64_t)pm->kv_bytes);
    int64_t e = (int64_t)(pm->error_bytes > INT64_MAX / 2 ? INT64_MAX / 2 : pm->error_bytes);
    if (head >= e)
        pm->verdict = "fits";
    else if (head >= -e)
        pm->verdict = "marginal";
    else if (pm->static_fraction && pm->kv_budget_bytes > 0)
        pm->verdict = "marginal";   /* SGLang starts with a smaller pool and warns */
    else
        pm->verdict = "does not fit";
    pm->fits = strcmp(pm->verdict, "does not fit") != 0;
}

int ap_plan_model_compute_in(const ap_model_facts *f, const ap_plan_in *in, ap_plan_model *pm)
{
    ap_rt_in ri;
    ap_rt_terms t;
    uint64_t full = 0, swa = 0, fixed, budget, tp = in->tp ? in->tp : 1, pp = in->pp ? in->pp : 1;
    const char *why;

    pm->kind = in->kind;
    pm->kind_name = kind_name(in->kind);
    pm->tensor_parallel = tp;
    pm->pipeline_parallel = pp;
    pm->concurrency = in->conc ? in->conc : 1;
    pm->context = in->ctx;
    pm->context_src = in->ctx ? "manifest" : "default";
    pm->verdict = "not planned";
    budget = (uint64_t)((double)in->memory_bytes * in->utilization + 0.5);
    pm->activation_src = in->activation_gib >= 0 ? "manifest" : "model";
    pm->overhead_src = in->overhead_gib >= 0 ? "manifest" : "runtime profile";
    rt_in_of(in, tp, pp, 0, pm->concurrency, &ri);
    if (!f) {
        kv_size(in->kvd, f, in->kind == AP_RT_LLAMACPP || in->kind == AP_RT_OLLAMA, &pm->kv_num, &pm->kv_den, &pm->kv_dtype);
        return set_problem(pm, "the model's facts could not be read");
    }
    pm->model_max_context = f->context_length.src ? f->context_length.v : 0;
    pm->context_limit = ap_facts_scaled_context(f);
    if (in->rope_type && in->rope_factor > 1 && (pm->model_max_context || in->rope_original_context)) {
        /* serve.rope_scaling overrides config.json's */
        double c = (double)(in->rope_original_context ? in->rope_original_context : pm->model_max_context) * in->rope_factor;
        pm->context_limit = c < 1e12 ? (uint64_t)c : pm->context_limit;
    }
    if (!pm->context)
        pm->context = pm->model_max_context ? pm->model_max_context : 4096;
    ri.context = pm->context;
    ap_rt_model(f, &ri, &t);
    snprintf(pm->profile, sizeof pm->profile, "%s", t.profile);
    snprintf(pm->profile_note, sizeof pm->profile_note, "%s", t.note);
    kv_size(in->kvd, f, t.layer_split, &pm->kv_num, &pm->kv_den, &pm->kv_dtype);
    if (f->tensors_src == AP_SRC_NONE)
        return set_problem(pm, "no weight files were read, so the weight size is not known");
    if ((why = kv_layout(f, t.layer_split, t.mla, tp, pp, pm, &full, &swa)) != NULL)
        return set_problem(pm, "cannot size the KV cache: %s", why);
    pm->planned = 1;
    pm->weights_bytes = f->weights_bytes;
    loaded_bytes(f, &t, tp, pp, pm);
    /* bytes per token: elements x kv_num / kv_den, rounded up */
    pm->kv_swa_bytes_per_token = div_ceil(sat_mul(swa, pm->kv_num), pm->kv_den);
    pm->kv_bytes_per_token = sat_add(div_ceil(sat_mul(full, pm->kv_num), pm->kv_den), pm->kv_swa_bytes_per_token);
    pm->kv_bytes = ap_plan_kv_bytes(pm, pm->context, pm->concurrency);
    pm->batch_tokens = t.batch_tokens;
    pm->seqs = t.seqs;
    pm->static_fraction = t.static_fraction;
    pm->graphs_outside = t.graphs_outside;
    pm->graphs_bytes = t.graphs;
    pm->error_bytes = t.error_bytes;
    snprintf(pm->graphs_note, sizeof pm->graphs_note, "%s", t.src_graphs);
    if (in->activation_gib >= 0) {
        pm->activation_bytes = gib_bytes(in->activation_gib);
        snprintf(pm->activation_note, sizeof pm->activation_note, "manifest (serve.activation_gib)");
    } else {
        pm->activation_bytes = t.activation;
        snprintf(pm->activation_note, sizeof pm->activation_note, "%s", t.src_activation);
    }
    if (in->overhead_gib >= 0) {
        pm->overhead_bytes = gib_bytes(in->overhead_gib);
        snprintf(pm->overhead_note, sizeof pm->overhead_note, "manifest (serve.overhead_gib)");
    } else {
        pm->overhead_bytes = sat_add(t.non_torch, t.graphs_outside ? 0 : t.graphs);
        snprintf(pm->overhead_note, sizeof pm->overhead_note, "%s", t.src_non_torch);
    }
    /* inside the budget: vLLM, TGI, llama.cpp everything but the graphs outside it;
     * SGLang only the weights, what was in use before them, and the KV pool */
    fixed = sat_add(pm->weights_per_gpu, pm->overhead_bytes);
    if (!pm->static_fraction)
        fixed = sat_add(fixed, pm->activation_bytes);
    pm->total_per_gpu = sat_add(fixed, pm->kv_bytes);
    pm->kv_budget_bytes = signed_diff(budget, fixed);
    set_verdict(pm);
    solve_max(pm, f, in, budget, 0);
    return AP_OK;
}

int ap_plan_model_compute(const ap_model_facts *f, ap_runtime_kind kind, uint64_t tp, uint64_t ctx,
                          uint64_t conc, ap_kv_dtype kvd, double overhead_gib,
                          double activation_gib, uint64_t budget_bytes, ap_plan_model *pm)
{
    ap_plan_in in;
    memset(&in, 0, sizeof in);
    in.kind = kind;
    in.utilization = 0.90;
    in.memory_bytes = (uint64_t)((double)budget_bytes / 0.90 + 0.5);
    in.tp = tp;
    in.pp = 1;
    in.ctx = ctx;
    in.conc = conc;
    in.kvd = kvd;
    in.overhead_gib = overhead_gib;
    in.activation_gib = activation_gib;
    in.v0 = in.custom_allreduce = in.flash_attn = -1;
    return ap_plan_model_compute_in(f, &in, pm);
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

static const ap_mruntime *runtime_of(const ap_manifest *m, const ap_mmodel *mm)
{
    for (size_t i = 0; i < m->n_runtimes; i++)
        if (mm->serve.runtime && m->runtimes[i].name && strcmp(m->runtimes[i].name, mm->serve.runtime) == 0)
            return &m->runtimes[i];
    if (!mm->serve.runtime && m->n_runtimes == 1)
        return &m->runtimes[0];
    return NULL;
}

/* A runtime argument's value ("--max-num-seqs 64" or "--max-num-seqs=64"), or NULL. */
static const char *arg_value(const ap_mruntime *rt, const char *name, int *present)
{
    size_t n = strlen(name);
    for (size_t i = 0; rt && i < rt->n_args; i++) {
        const char *a = rt->args[i];
        if (!a)
            continue;
        if (strcmp(a, name) == 0) {
            *present = 1;
            return i + 1 < rt->n_args ? rt->args[i + 1] : NULL;
        }
        if (strncmp(a, name, n) == 0 && a[n] == '=') {
            *present = 1;
            return a + n + 1;
        }
    }
    return NULL;
}

static uint64_t arg_u64(const ap_mruntime *rt, const char *name)
{
    int present = 0;
    const char *v = arg_value(rt, name, &present);
    char *end;
    unsigned long long x;
    if (!v)
        return 0;
    x = strtoull(v, &end, 10);
    return *end == '\0' && x < (1ull << 32) ? (uint64_t)x : 0;
}

static int arg_flag(const ap_mruntime *rt, const char *name)
{
    int present = 0;
    (void)arg_value(rt, name, &present);
    return present;
}

/* The planner's inputs for one model: its serve block, its runtime (version,
 * arguments, environment) and the target GPU. */
static void plan_in_of(const ap_manifest *m, const ap_mmodel *mm, const ap_mruntime *rt, const ap_plan *p,
                       const char *gpu_name, ap_plan_in *in)
{
    memset(in, 0, sizeof *in);
    in->kind = model_kind(m, mm);
    in->version = rt ? rt->version : NULL;
    in->gpu_name = gpu_name;
    in->memory_bytes = gib_bytes(p->memory_gib);
    in->utilization = p->memory_utilization;
    in->tp = mm->serve.tensor_parallel;
    in->pp = mm->serve.pipeline_parallel ? mm->serve.pipeline_parallel : 1;
    in->ctx = mm->serve.context;
    in->conc = mm->serve.concurrency;
    in->kvd = mm->serve.kv_cache_dtype;
    in->overhead_gib = mm->serve.overhead_gib;
    in->activation_gib = mm->serve.activation_gib;
    in->max_batched_tokens = mm->serve.max_batched_tokens ? mm->serve.max_batched_tokens
                                                          : arg_u64(rt, "--max-num-batched-tokens");
    /* the sampler warm-up: the runtime's default max_num_seqs (256 or 1024 dummy
     * sequences), as the published logs show it, unless the runtime's args set it.
     * The launch spec passes --max-num-seqs = serve.concurrency, which makes the real
     * warm-up smaller: the plan errs on the safe side (docs/memory-planner.md). */
    in->max_seqs = arg_u64(rt, "--max-num-seqs");
    if (!in->max_seqs)
        in->max_seqs = arg_u64(rt, "--max-running-requests");
    in->enforce_eager = mm->serve.enforce_eager || arg_flag(rt, "--enforce-eager");
    in->v0 = -1;
    for (size_t i = 0; rt && i < rt->n_env; i++)
        if (rt->env[i].key && strcmp(rt->env[i].key, "VLLM_USE_V1") == 0 && rt->env[i].value)
            in->v0 = strcmp(rt->env[i].value, "0") == 0;
    in->custom_allreduce = arg_flag(rt, "--disable-custom-all-reduce") ? 0 : -1;
    in->flash_attn = -1;
    {
        int present = 0;
        const char *v = arg_value(rt, "--flash-attn", &present);
        if (!present)
            v = arg_value(rt, "-fa", &present);
        if (present)
            in->flash_attn = !(v && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0));
        /* the launch spec turns flash attention on for a quantized V cache */
        if (in->kvd == AP_KV_Q8_0 || in->kvd == AP_KV_Q4_0)
            in->flash_attn = 1;
    }
    in->ubatch = arg_u64(rt, "--ubatch-size") ? arg_u64(rt, "--ubatch-size") : arg_u64(rt, "-ub");
    {
        int present = 0;
        const char *v = arg_value(rt, "--mm-encoder-tp-mode", &present);
        in->vision_dp = v && strcmp(v, "data") == 0;
    }
    in->graph_max = arg_u64(rt, "--max-cudagraph-capture-size");
    if (!in->graph_max)
        in->graph_max = arg_u64(rt, "--cuda-graph-sizes");
    in->rope_type = mm->serve.rope_type;
    in->rope_factor = mm->serve.rope_factor;
    in->rope_original_context = mm->serve.rope_original_context;
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
        {
            ap_plan_in in;
            const ap_mruntime *rt = runtime_of(m, mm);
            plan_in_of(m, mm, rt, p, g ? g->name : m->gpu_model, &in);
            rc = ap_plan_model_compute_in(facts ? facts[i] : NULL, &in, pm);
        }
        if (rc) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (pm->planned && pm->tensor_parallel * pm->pipeline_parallel > p->gpu_count) {
            pm->fits = 0;
            pm->verdict = "does not fit";
            if (set_problem(pm, "tensor_parallel %" PRIu64 " x pipeline_parallel %" PRIu64 " needs more GPUs than the %" PRIu64 " of the target",
                            pm->tensor_parallel, pm->pipeline_parallel, p->gpu_count)) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
        if (pm->planned)
            for (uint64_t k = 0; k < pm->tensor_parallel * pm->pipeline_parallel && k < p->gpu_count; k++)
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
        if (!pm->planned)
            continue;
        if (pm->tensor_parallel * pm->pipeline_parallel > p->gpu_count) {
            p->fits = 0;
            continue;
        }
        for (uint64_t k = 0; k < pm->tensor_parallel * pm->pipeline_parallel; k++) {
            uint64_t o = p->gpus[k].used_bytes - pm->total_per_gpu;
            if (o > others)
                others = o;
        }
        pm->others_bytes = others;
        fixed = sat_add(sat_add(pm->weights_per_gpu, pm->overhead_bytes), others);
        if (!pm->static_fraction)
            fixed = sat_add(fixed, pm->activation_bytes);
        pm->kv_budget_bytes = signed_diff(p->budget_bytes, fixed);
        set_verdict(pm);   /* the verdict on its fullest GPU, the other models' use included */
        {
            ap_plan_in in;
            plan_in_of(m, &m->models[pm->index], runtime_of(m, &m->models[pm->index]), p,
                       g ? g->name : m->gpu_model, &in);
            solve_max(pm, facts ? facts[pm->index] : NULL, &in, p->budget_bytes, others);
        }
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
    for (uint64_t k = 0; k < pm->tensor_parallel * (pm->pipeline_parallel ? pm->pipeline_parallel : 1) &&
                         k < AP_PLAN_MAX_GPUS; k++)
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
    bad |= json_object_set_new(o, "verdict", json_string(pm->verdict ? pm->verdict : "not planned"));
    bad |= json_object_set_new(o, "pipeline_parallel", json_integer((json_int_t)(pm->pipeline_parallel ? pm->pipeline_parallel : 1)));
    bad |= json_object_set_new(o, "profile", json_string(pm->profile));
    bad |= json_object_set_new(o, "profile_note", pm->profile_note[0] ? json_string(pm->profile_note) : json_null());
    bad |= json_object_set_new(o, "error_bytes", json_integer((json_int_t)pm->error_bytes));
    bad |= json_object_set_new(o, "context_limit", pm->context_limit ? json_integer((json_int_t)pm->context_limit) : json_null());
    bad |= json_object_set_new(o, "checkpoint_bytes", json_integer((json_int_t)pm->checkpoint_bytes));
    bad |= json_object_set_new(o, "loaded_bytes_per_gpu", json_integer((json_int_t)pm->loaded_bytes_per_gpu));
    bad |= json_object_set_new(o, "host_bytes", json_integer((json_int_t)pm->host_bytes));
    bad |= json_object_set_new(o, "graphs_bytes", json_integer((json_int_t)pm->graphs_bytes));
    bad |= json_object_set_new(o, "graphs_outside_budget", json_boolean(pm->graphs_outside));
    bad |= json_object_set_new(o, "batch_tokens", json_integer((json_int_t)pm->batch_tokens));
    bad |= json_object_set_new(o, "sampler_seqs", json_integer((json_int_t)pm->seqs));
    {
        json_t *terms = json_pack("{s:{s:I,s:s},s:{s:I,s:s},s:{s:I,s:s},s:{s:I,s:s},s:{s:I,s:s,s:b}}",
                                  "weights", "bytes", (json_int_t)pm->weights_per_gpu, "source", pm->weights_src,
                                  "kv_cache", "bytes", (json_int_t)pm->kv_bytes, "source", "model shape x context x concurrency",
                                  "activation", "bytes", (json_int_t)pm->activation_bytes, "source", pm->activation_note,
                                  "non_torch", "bytes", (json_int_t)pm->overhead_bytes, "source", pm->overhead_note,
                                  "cuda_graphs", "bytes", (json_int_t)pm->graphs_bytes, "source", pm->graphs_note,
                                  "outside_budget", pm->graphs_outside);
        bad |= !terms || json_object_set_new(o, "terms", terms);
    }
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
            if (p->models[k].planned && pg->index < p->models[k].tensor_parallel * p->models[k].pipeline_parallel &&
                p->models[k].tensor_parallel * p->models[k].pipeline_parallel <= p->gpu_count)
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
    char subj[64], path[96], a[32], b[32], subj2[32];
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
        if (f && mm->serve.context && f->context_length.src &&
            mm->serve.context > (pm && pm->context_limit ? pm->context_limit : f->context_length.v)) {
            uint64_t lim = pm && pm->context_limit ? pm->context_limit : f->context_length.v;
            snprintf(path, sizeof path, "models[%zu].serve.context", i);
            if (add_finding(findings, "AP-MODEL-CONTEXT", "error", "context within the model's maximum", subj, path,
                            "model '%s' is served with context %" PRIu64 " but its maximum is %" PRIu64 " (%s%s)",
                            mm->name, mm->serve.context, lim, ap_fact_src_name(f->context_length.src),
                            lim > f->context_length.v ? ", with rope_scaling" : ""))
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
        if (pm->profile_note[0] && !strstr(pm->profile_note, "not given")) {
            snprintf(path, sizeof path, "models[%zu].serve.runtime", i);
            if (add_finding(findings, "AP-PLAN-PROFILE", "warning", "the runtime version has a memory profile", subj, path,
                            "model '%s': %s", mm->name, pm->profile_note))
                return -1;
        }
        if (pm->verdict && strcmp(pm->verdict, "marginal") == 0) {
            snprintf(path, sizeof path, "models[%zu].serve", i);
            if (add_finding(findings, "AP-PLAN-MARGINAL", "warning", "the deployment fits with room to spare", subj, path,
                            "model '%s' is marginal: %s of KV cache budget per GPU for %s needed, within the "
                            "%s profile's error of %s%s", mm->name, human((uint64_t)(pm->kv_budget_bytes > 0 ? pm->kv_budget_bytes : 0), a, sizeof a),
                            human(pm->kv_bytes, b, sizeof b), pm->profile, human(pm->error_bytes, subj2, sizeof subj2),
                            pm->static_fraction && pm->kv_budget_bytes > 0 && (uint64_t)pm->kv_budget_bytes < pm->kv_bytes
                                ? "; SGLang starts with the smaller pool and warns" : ""))
                return -1;
        }
        if (pm->graphs_outside && p->memory_gib > 0) {
            double margin = p->memory_gib * (1.0 - p->memory_utilization) * GIB;
            uint64_t out = pm->graphs_bytes + (pm->static_fraction ? pm->activation_bytes : 0);
            if ((double)out > margin) {
                snprintf(path, sizeof path, "models[%zu].serve", i);
                if (add_finding(findings, "AP-PLAN-MARGIN", "warning", "CUDA graphs and activations fit beside the budget",
                                subj, path, "model '%s': %s of %s outside the %.0f%% budget exceed the %s left beside it",
                                mm->name, human(out, a, sizeof a), pm->static_fraction ? "activations and CUDA graphs" : "CUDA graphs",
                                p->memory_utilization * 100, human((uint64_t)margin, b, sizeof b)))
                    return -1;
            }
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
