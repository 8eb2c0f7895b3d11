/*
 * vllm.c - vLLM's own memory accounting (docs/memory-planner.md, "vLLM").
 *
 * vLLM's worker (vllm/v1/worker/gpu_worker.py, determine_available_memory;
 * V0: vllm/worker/worker.py, determine_num_available_blocks) profiles one
 * forward pass of max_num_batched_tokens dummy tokens and a sampler
 * warm-up of max_num_seqs dummy sequences, then gives the KV cache
 *
 *     total x gpu_memory_utilization - weights - peak activation - non-torch memory
 *
 * CUDA graphs are captured after the KV cache is sized: they sit outside
 * that budget (in the 1 - utilization margin).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "planner/runtime.h"

typedef struct vprof {
    const char *id;
    long major, minor, patch;     /* first version of the profile */
    int v1;                       /* default engine: 1 V1, 0 V0 */
    double nt_tp1;                /* non-torch GiB, one GPU (or no custom all-reduce) */
    double nt_tp;                 /* non-torch GiB per GPU with NCCL + custom all-reduce */
    double err_gib;               /* stated error on the KV budget */
    double sampler;               /* bytes per logit of the sampler warm-up (V1) */
    const char *measured;         /* where the figures come from */
} vprof;

/* Oldest first. Figures and sources: docs/memory-planner.md. */
static const vprof profs[] = {
    {"0.6.5", 0, 6, 5, 0, 1.79, 3.58, 1.0, 4, "vLLM PR #10511 (H100, Llama-3-8B, TP 1 and 2)"},
    {"0.7", 0, 7, 0, 0, 0.25, 0.30, 1.0, 4, "vLLM issues #13061 (RTX 4090), #15815 (L40S), #13882, PR #14447"},
    {"0.8", 0, 8, 0, 1, 0.25, 2.1, 1.5, 38, "V1 engine; sampler fitted to Qwen3-14B on vLLM 0.15/0.16 (llm-d-planner version sweep)"},
    {"0.17", 0, 17, 0, 1, 0.25, 2.1, 0.5, 15.5, "llm-d-planner vLLM v0.17-v0.19 H100 sweeps (tests/planner/measurements)"},
};
#define NPROF (sizeof profs / sizeof profs[0])

/* CUDA graphs vLLM captures up to a largest size m: 1, 2, 4, then every 8 up to 248,
 * then every 16 up to m (vllm/config/compilation.py; 51 graphs for m = 512, as the
 * v0.19 logs count them: "PIECEWISE=51 (largest=512)"). */
static uint64_t capture_count(uint64_t m)
{
    uint64_t n = 0;
    for (uint64_t s = 1; s <= m && s < 8; s *= 2)
        n++;
    for (uint64_t s = 8; s < 256 && s <= m; s += 8)
        n++;
    for (uint64_t s = 256; s <= m; s += 16)
        n++;
    return n;
}

static int consumer_gpu(const char *name)
{
    /* GeForce / RTX workstation cards: no NVLink, vLLM disables custom all-reduce
     * without P2P (vllm/distributed/device_communicators/custom_all_reduce.py) */
    return name && (strcasestr(name, "rtx") || strcasestr(name, "geforce") || strstr(name, "4090") ||
                    strstr(name, "3090") || strstr(name, "2080") || strstr(name, "5090") || strstr(name, "4080"));
}

void ap_rt_vllm(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t)
{
    ap_rt_version v = ap_rt_version_parse(in->version);
    const vprof *p = &profs[NPROF - 1];
    uint64_t hidden = f->hidden.src ? f->hidden.v : 0, vocab = f->vocab.src ? f->vocab.v : 32000;
    uint64_t layers = f->layers.src ? f->layers.v : 32, ffn = ap_rt_ffn_active(f), tp = in->tp ? in->tp : 1;
    uint64_t fwd, smp;
    int v1, big;

    if (!v.known) {
        snprintf(t->note, sizeof t->note, "vLLM version %s%s%s is not known: the newest profile (%s) is used",
                 in->version ? "'" : "", in->version ? in->version : "not given", in->version ? "'" : "", p->id);
    } else if (ap_rt_version_cmp(v, profs[0].major, profs[0].minor, profs[0].patch) < 0) {
        p = &profs[0];
        snprintf(t->note, sizeof t->note, "vLLM %s is older than every profile: the nearest (%s) is used",
                 in->version, p->id);
    } else {
        for (size_t i = 0; i < NPROF; i++)
            if (ap_rt_version_cmp(v, profs[i].major, profs[i].minor, profs[i].patch) >= 0)
                p = &profs[i];
        if (v.major > 0 || v.minor > 19)
            snprintf(t->note, sizeof t->note, "vLLM %s is newer than the newest profile: the nearest (%s) is used",
                     in->version, p->id);
    }
    v1 = p->v1 && in->v0 != 1;
    snprintf(t->profile, sizeof t->profile, "vllm %s (%s)", p->id, v1 ? "V1" : "V0");
    if (!v1 && p->v1)
        p = &profs[1];   /* the V0 engine of a V1-era version: the V0 figures (0.7) */

    /* non-torch memory: CUDA context, cuBLAS workspaces, NCCL and custom all-reduce buffers */
    if (tp > 1 && in->custom_allreduce != 0 && !consumer_gpu(in->gpu_name)) {
        t->non_torch = ap_rt_gib(p->nt_tp);
        snprintf(t->src_non_torch, sizeof t->src_non_torch, "profile vllm %s: %.2f GiB per GPU at TP >= 2 with "
                 "NCCL and custom all-reduce (%s)", p->id, p->nt_tp, p->measured);
    } else {
        t->non_torch = ap_rt_gib(p->nt_tp1);
        snprintf(t->src_non_torch, sizeof t->src_non_torch, "profile vllm %s: %.2f GiB%s (%s)", p->id, p->nt_tp1,
                 tp > 1 ? " (no custom all-reduce on this GPU)" : " at TP 1", p->measured);
    }

    /* the profile run: defaults of vllm/engine/arg_utils.py (usage context OPENAI_API_SERVER) */
    big = in->memory_bytes >= ap_rt_gib(70) && !(in->gpu_name && strstr(in->gpu_name, "a100"));
    if (v1) {
        t->batch_tokens = in->max_batched_tokens ? in->max_batched_tokens : big ? 8192 : 2048;
        t->seqs = in->max_seqs ? in->max_seqs : big ? 1024 : 256;
    } else {
        /* V0: without chunked prefill the profile batch is max(max_model_len, 2048) tokens;
         * chunked prefill is on by default from 32K tokens of context, with 2048 */
        uint64_t ctx = in->context ? in->context : 4096;
        t->batch_tokens = in->max_batched_tokens ? in->max_batched_tokens : ctx >= 32768 ? 2048 : ctx > 2048 ? ctx : 2048;
        t->ctx_drop = in->max_batched_tokens ? 0 : 32768;
        t->seqs = in->max_seqs ? in->max_seqs : 256;
    }
    if (!hidden) {
        t->activation = ap_rt_gib(2.0);
        snprintf(t->src_activation, sizeof t->src_activation, "estimate: hidden size unknown");
    } else {
        /* one forward pass of T tokens: gate/up and activation of the FFN split by TP (3 x ffn x 2 bytes),
         * residual, norms and attention projections (8.5 x hidden bytes) */
        fwd = t->batch_tokens * (6 * ((ffn + tp - 1) / tp) + 17 * hidden / 2);
        /* sampler warm-up: max_num_seqs x vocab fp32 logits and the sampler's working copies
         * (bytes per logit of the profile in V1, fitted to the measurements; V0: the fp32 logits) */
        smp = (uint64_t)((double)t->seqs * (double)vocab * (v1 ? p->sampler : 4.0));
        t->activation = v1 ? (fwd > smp ? fwd : smp) : fwd + smp;
        snprintf(t->src_activation, sizeof t->src_activation,
                 "profile vllm %s: %s(%llu tokens x (6 x ffn/tp + 8.5 x hidden), %llu seqs x vocab x %g)",
                 p->id, v1 ? "max" : "sum", (unsigned long long)t->batch_tokens, (unsigned long long)t->seqs,
                 v1 ? p->sampler : 4.0);
    }
    /* CUDA graphs: captured after the KV cache is sized (outside the budget) */
    t->graphs_outside = 1;
    if (in->enforce_eager) {
        t->graphs = 0;
        snprintf(t->src_graphs, sizeof t->src_graphs, "enforce_eager: no CUDA graphs");
    } else {
        uint64_t m = in->graph_max ? in->graph_max : 512, n = capture_count(m);
        t->graphs = (uint64_t)((double)ap_rt_gib(0.35 + 0.018 * (double)layers) * (double)n / 51.0);
        snprintf(t->src_graphs, sizeof t->src_graphs, "estimate: (0.35 GiB + 0.018 GiB per layer) x %llu/51 "
                 "graphs up to size %llu (0.64-1.85 GiB measured in the v0.19 sweep), outside the budget",
                 (unsigned long long)n, (unsigned long long)m);
    }
    t->mxfp4_pad = 1;
    /* vision encoders use vLLM's parallel linear layers (sharded like the text model) unless
     * --mm-encoder-tp-mode data replicates them; measured: Mistral-Small-3.1 (Pixtral) at TP 2 */
    t->vision_replicated = in->vision_dp == 1;
    t->mla = AP_MLA_LATENT;
    t->error_bytes = ap_rt_gib(p->err_gib);
}
