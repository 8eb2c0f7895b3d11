/*
 * sglang.c - SGLang's mem_fraction_static (docs/memory-planner.md, "SGLang").
 *
 * python/sglang/srt/model_executor/model_runner.py, profile_max_num_token:
 * after the weights load, the KV pool gets
 *
 *     available memory - total x (1 - mem_fraction_static)
 *
 * so total x mem_fraction_static covers the weights, what was in use
 * before them (CUDA context, NCCL, custom all-reduce) and the KV pool;
 * activations and CUDA graphs come from the rest. A pool smaller than
 * one full-context sequence starts with a warning there, not an error.
 */
#include <stdio.h>

#include "planner/runtime.h"

void ap_rt_sglang(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t)
{
    ap_rt_version v = ap_rt_version_parse(in->version);
    uint64_t hidden = f->hidden.src ? f->hidden.v : 0, vocab = f->vocab.src ? f->vocab.v : 32000;
    uint64_t layers = f->layers.src ? f->layers.v : 32, ffn = ap_rt_ffn_active(f), tp = in->tp ? in->tp : 1;
    double nt = tp > 1 ? 2.6 : 0.6;

    snprintf(t->profile, sizeof t->profile, "sglang 0.4");
    if (!v.known)
        snprintf(t->note, sizeof t->note, "SGLang version %s is not known: the only profile (0.4) is used",
                 in->version ? in->version : "not given");
    else if (v.major != 0 || v.minor != 4)
        snprintf(t->note, sizeof t->note, "SGLang %s: the nearest profile (0.4) is used", in->version);
    t->static_fraction = 1;
    t->non_torch = ap_rt_gib(nt);
    snprintf(t->src_non_torch, sizeof t->src_non_torch, "profile sglang 0.4: %.1f GiB in use before the weights "
             "(CUDA context%s; %s)", nt, tp > 1 ? ", NCCL, custom all-reduce" : "",
             tp > 1 ? "fitted to vLLM issue #21348, 4 x H100" : "estimate");
    /* chunked_prefill_size default 8192 on large GPUs, 2048 below 35 GiB (server_args.py) */
    t->batch_tokens = in->max_batched_tokens ? in->max_batched_tokens : in->memory_bytes >= ap_rt_gib(35) ? 8192 : 2048;
    t->seqs = in->max_seqs ? in->max_seqs : 256;
    t->activation = hidden ? t->batch_tokens * (6 * ((ffn + tp - 1) / tp) + 17 * hidden / 2) + t->seqs * vocab * 8
                           : ap_rt_gib(2.0);
    snprintf(t->src_activation, sizeof t->src_activation, "estimate: %llu tokens of chunked prefill; "
             "outside mem_fraction_static", (unsigned long long)t->batch_tokens);
    t->graphs_outside = 1;
    t->graphs = in->enforce_eager ? 0 : ap_rt_gib(0.35 + 0.018 * (double)layers);
    snprintf(t->src_graphs, sizeof t->src_graphs, "%s", in->enforce_eager ? "disable_cuda_graph: none"
             : "estimate: 0.35 GiB + 0.018 GiB per layer, outside mem_fraction_static");
    t->mla = AP_MLA_LATENT;
    t->vision_replicated = 1;   /* estimate: the vision tower is not tensor-parallel */
    t->error_bytes = ap_rt_gib(1.0);
}
