/*
 * tgi.c - Text Generation Inference (docs/memory-planner.md, "TGI").
 *
 * server/text_generation_server/models/flash_causal_lm.py, warmup: a
 * prefill of max_batch_prefill_tokens (default 4096) is run, then the KV
 * blocks take the free memory x cuda_memory_fraction. The same terms as
 * vLLM's, with estimates: TGI does not log its breakdown.
 */
#include <stdio.h>

#include "planner/runtime.h"

void ap_rt_tgi(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t)
{
    uint64_t hidden = f->hidden.src ? f->hidden.v : 0, vocab = f->vocab.src ? f->vocab.v : 32000;
    uint64_t layers = f->layers.src ? f->layers.v : 32, ffn = ap_rt_ffn_active(f), tp = in->tp ? in->tp : 1;
    double nt = tp > 1 ? 2.1 : 0.5;
    snprintf(t->profile, sizeof t->profile, "tgi 3 (estimate)");
    if (in->version && ap_rt_version_parse(in->version).major != 3)
        snprintf(t->note, sizeof t->note, "TGI %s: the nearest profile (3, estimate) is used", in->version);
    t->non_torch = ap_rt_gib(nt);
    snprintf(t->src_non_torch, sizeof t->src_non_torch, "estimate: %.1f GiB (the vLLM figures, same stack)", nt);
    t->batch_tokens = in->max_batched_tokens ? in->max_batched_tokens : 4096;
    t->seqs = in->max_seqs ? in->max_seqs : 128;
    t->activation = hidden ? t->batch_tokens * (6 * ((ffn + tp - 1) / tp) + 17 * hidden / 2) + t->seqs * vocab * 8
                           : ap_rt_gib(2.0);
    snprintf(t->src_activation, sizeof t->src_activation, "estimate: warm-up prefill of %llu tokens "
             "(max_batch_prefill_tokens)", (unsigned long long)t->batch_tokens);
    /* graphs for batch sizes 1..32 captured after the KV blocks: counted inside, conservatively */
    t->graphs_outside = 0;
    t->graphs = in->enforce_eager ? 0 : ap_rt_gib(0.2 + 0.01 * (double)layers);
    snprintf(t->src_graphs, sizeof t->src_graphs, "estimate: CUDA graphs for batch sizes 1-32, inside the budget");
    t->mla = AP_MLA_LATENT;
    t->vision_replicated = 1;   /* estimate: the vision tower is not tensor-parallel */
    t->error_bytes = ap_rt_gib(1.5);
}
