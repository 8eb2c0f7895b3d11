/*
 * runtime.h - versioned runtime memory models (docs/memory-planner.md,
 * "Runtime memory models").
 *
 * Each runtime sizes GPU memory its own way. vLLM: total x
 * gpu_memory_utilization = weights + peak activation + non-torch memory +
 * KV cache, CUDA graphs captured afterwards, outside that budget. SGLang:
 * total x mem_fraction_static = weights + KV pool (activations and graphs
 * come from the rest). llama.cpp: model buffer (the token embedding stays
 * on the host) + KV buffer + compute buffer (by n_ubatch). TGI and Ollama
 * as their sources allow. ap_rt_model() picks the profile for a runtime
 * kind and version (the nearest one, saying so, for an unknown version)
 * and returns the terms the plan adds, each with its source.
 */
#ifndef AIRPACK_PLANNER_RUNTIME_H
#define AIRPACK_PLANNER_RUNTIME_H

#include <stdint.h>

#include "manifest.h"
#include "model/model.h"

/* What the planner knows of one deployment of one model. */
typedef struct ap_rt_in {
    ap_runtime_kind kind;
    const char *version;          /* runtimes[].version or NULL */
    const char *gpu_name;         /* catalogue name ("h100-sxm") or NULL */
    uint64_t memory_bytes;        /* GPU memory the runtime sees, per GPU */
    double utilization;           /* gpu_memory_utilization / mem_fraction_static */
    uint64_t tp, pp;
    uint64_t context, concurrency;
    uint64_t max_batched_tokens;  /* 0 = the runtime's default */
    uint64_t max_seqs;            /* 0 = the runtime's default */
    int enforce_eager;            /* 1: no CUDA graphs */
    int v0;                       /* vLLM: 1 forces the V0 engine (VLLM_USE_V1=0), -1 unknown */
    int custom_allreduce;         /* vLLM: 0 disabled (--disable-custom-all-reduce), -1 unknown */
    int flash_attn;               /* llama.cpp/Ollama: 1 on, 0 off, -1 the build's default */
    uint64_t ubatch;              /* llama.cpp n_ubatch; 0 = default 512 */
    int vision_dp;                /* vLLM --mm-encoder-tp-mode data: vision encoder replicated */
    uint64_t graph_max;           /* largest CUDA graph capture size (vLLM --max-cudagraph-capture-size,
                                     --cuda-graph-sizes N); 0 = the default 512 */
} ap_rt_in;

/* How the KV cache of an MLA model is laid out per token and layer. */
typedef enum ap_mla_layout {
    AP_MLA_LATENT = 0,            /* kv_lora_rank + qk_rope_head_dim (vLLM, SGLang) */
    AP_MLA_LATENT_KV,             /* K latent+rope, V latent (llama.cpp with MLA) */
    AP_MLA_FULL                   /* decompressed K and V per head (older llama.cpp) */
} ap_mla_layout;

/* The terms of one runtime's accounting, per GPU. */
typedef struct ap_rt_terms {
    char profile[48];             /* "vllm 0.19 (V1)" */
    char note[256];               /* why a nearest profile was used, or "" */
    int layer_split;              /* layers split over GPUs (llama.cpp): KV divided by GPUs */
    int static_fraction;          /* SGLang: the budget covers weights + KV pool only */
    int graphs_outside;           /* CUDA graphs outside the budget (captured after KV sizing) */
    int host_embedding;           /* the token embedding stays in host memory */
    int mxfp4_pad;                /* MXFP4 expert dims padded to 256 (vLLM) */
    int vision_replicated;        /* the vision tower is whole on every TP rank */
    ap_mla_layout mla;
    uint64_t non_torch;           /* CUDA context, NCCL / custom all-reduce buffers, bytes */
    uint64_t activation;          /* peak activation (profile run, sampler warm-up, compute buffer), bytes */
    uint64_t graphs;              /* CUDA graphs, bytes */
    uint64_t batch_tokens;        /* tokens of the activation profile */
    uint64_t seqs;                /* sequences of the sampler warm-up */
    uint64_t error_bytes;         /* the profile's stated error on the KV budget */
    uint64_t ctx_drop;            /* a context from which the activation is smaller than just below it
                                     (vLLM V0 turns chunked prefill on at 32K); 0 = none: the
                                     terms never shrink as context or concurrency grow */
    char src_non_torch[160];
    char src_activation[160];
    char src_graphs[160];
} ap_rt_terms;

/* Fill t for model f under in. Never fails (unknown facts fall back to
 * documented estimates, named in the sources). */
void ap_rt_model(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t);

/* Parsed version: major.minor.patch, or a llama.cpp build number (bNNNN). */
typedef struct ap_rt_version {
    int known;                    /* 0: none or unparsable */
    long major, minor, patch;     /* build number in major for llama.cpp */
} ap_rt_version;
ap_rt_version ap_rt_version_parse(const char *s);
/* -1, 0, 1 */
int ap_rt_version_cmp(ap_rt_version a, long major, long minor, long patch);

/* Shared helpers of the profiles (runtime.c). */
uint64_t ap_rt_gib(double gib);
uint64_t ap_rt_ffn_active(const ap_model_facts *f);   /* FFN width a token passes (x experts used) */
void ap_rt_vllm(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t);
void ap_rt_sglang(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t);
void ap_rt_llamacpp(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t);
void ap_rt_ollama(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t);
void ap_rt_tgi(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t);

#endif
