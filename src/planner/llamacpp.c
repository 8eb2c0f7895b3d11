/*
 * llamacpp.c - llama.cpp's buffers (docs/memory-planner.md, "llama.cpp").
 *
 * src/llama-model.cpp keeps the token embedding in host memory (the
 * input layer's buffer type is the CPU's; a tied output is duplicated on
 * the GPU); the KV buffer holds n_ctx cells of every layer on the GPU of
 * that layer; the compute buffer is reserved for a worst-case graph of
 * n_ubatch tokens (src/llama-context.cpp, graph_reserve): the logits
 * (n_ubatch x vocab f32) or, without flash attention, the KQ matrix
 * (n_ubatch x n_ctx x heads f32), whichever is larger.
 */
#include <stdio.h>

#include "planner/runtime.h"

void ap_rt_llamacpp_common(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t, int fa);

void ap_rt_llamacpp_common(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t, int fa)
{
    uint64_t hidden = f->hidden.src ? f->hidden.v : 0, vocab = f->vocab.src ? f->vocab.v : 32000;
    uint64_t heads = f->heads.src ? f->heads.v : 32, ffn = ap_rt_ffn_active(f);
    uint64_t ub = in->ubatch ? in->ubatch : 512, nctx = (in->context ? in->context : 4096) * (in->concurrency ? in->concurrency : 1);
    uint64_t attn, logits;
    t->layer_split = 1;
    t->vision_replicated = 1;   /* a vision projector (mmproj) is a separate file, loaded whole */
    t->host_embedding = 1;
    t->non_torch = ap_rt_gib(0.5);
    snprintf(t->src_non_torch, sizeof t->src_non_torch, "estimate: 0.5 GiB CUDA context and cuBLAS outside "
             "llama.cpp's logged buffers");
    t->batch_tokens = ub;
    t->seqs = in->concurrency ? in->concurrency : 1;
    if (!hidden) {
        t->activation = ap_rt_gib(1.0);
        snprintf(t->src_activation, sizeof t->src_activation, "estimate: hidden size unknown");
    } else {
        attn = (fa ? 0 : ub * nctx * (heads + 1) * 4) + ub * (hidden + ffn) * 4;
        logits = ub * (vocab + hidden) * 4;
        t->activation = attn > logits ? attn : logits;
        snprintf(t->src_activation, sizeof t->src_activation, "compute buffer: max(%sn_ubatch x (hidden + ffn) x 4, "
                 "n_ubatch x (vocab + hidden) x 4), n_ubatch %llu, flash attention %s",
                 fa ? "" : "n_ubatch x n_ctx x (heads + 1) x 4 + ", (unsigned long long)ub, fa ? "on" : "off");
    }
    t->graphs = 0;
    snprintf(t->src_graphs, sizeof t->src_graphs, "none counted (llama.cpp's CUDA graphs live in the compute buffer)");
    t->error_bytes = ap_rt_gib(0.25);
}

void ap_rt_llamacpp(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t)
{
    ap_rt_version v = ap_rt_version_parse(in->version);
    long build = v.known ? v.major : 0;
    int fa;
    /* flash attention "auto" (on for CUDA) by default from about b6250 (PR #15434); off before;
     * MLA cache (K latent + rope, V latent) from about b5200 (PR #12801) */
    if (!v.known || build < 1000) {
        build = 6500;
        snprintf(t->note, sizeof t->note, "llama.cpp build %s is not known: the newest profile (b6500) is used",
                 in->version ? in->version : "not given");
    }
    fa = in->flash_attn >= 0 ? in->flash_attn : build >= 6250;
    snprintf(t->profile, sizeof t->profile, "llama.cpp %s",
             build >= 6250 ? "b6250+" : build >= 5200 ? "b5200-b6249" : "before b5200");
    t->mla = build >= 5200 ? AP_MLA_LATENT_KV : AP_MLA_FULL;
    ap_rt_llamacpp_common(f, in, t, fa);
}
