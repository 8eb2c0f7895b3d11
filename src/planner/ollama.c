/*
 * ollama.c - Ollama (docs/memory-planner.md, "Ollama"): llama.cpp's
 * buffers, with Ollama's defaults (flash attention only with
 * OLLAMA_FLASH_ATTENTION=1, n_ubatch 512, the parallel slots sharing one
 * n_ctx). Estimates: Ollama's scheduler logs its own estimate, not the
 * buffers.
 */
#include <stdio.h>

#include "planner/runtime.h"

void ap_rt_llamacpp_common(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t, int fa);

void ap_rt_ollama(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t)
{
    snprintf(t->profile, sizeof t->profile, "ollama (llama.cpp engine, estimate)");
    if (in->version && !ap_rt_version_parse(in->version).known)
        snprintf(t->note, sizeof t->note, "Ollama version '%s' is not known: the only profile is used", in->version);
    t->mla = AP_MLA_LATENT_KV;
    ap_rt_llamacpp_common(f, in, t, in->flash_attn > 0);
    t->error_bytes = ap_rt_gib(0.5);
}
