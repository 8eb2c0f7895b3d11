/*
 * plan.h - the GPU memory planner (docs/memory-planner.md).
 *
 * For each model of a manifest and each GPU it is placed on, the planner
 * adds up: the weights divided by tensor_parallel (exact, from the tensor
 * headers), the KV cache for context x concurrency at the KV dtype
 * (grouped-query attention, MLA and sliding-window layers handled; KV
 * heads replicated when tensor_parallel exceeds them), the activation peak
 * and the runtime overhead (per runtime kind, calibrated against published
 * measurements; the manifest may override both). It compares the total
 * with the GPU memory a runtime sees (GPU catalogue, or
 * target.gpu.memory_gib) times target.memory_utilization.
 *
 * Placement: a model with tensor_parallel N uses GPUs 0..N-1; models that
 * share GPUs add up. The answers: does it fit, the headroom per GPU, and
 * the largest context (at the given concurrency) and the largest
 * concurrency (at the given context) that fit.
 */
#ifndef AIRPACK_PLAN_H
#define AIRPACK_PLAN_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"
#include "manifest.h"
#include "model/model.h"

#define AP_PLAN_MAX_GPUS 4096

/* Everything the planner takes for one model (a manifest's serve block,
 * its runtime and the target GPU). */
typedef struct ap_plan_in {
    ap_runtime_kind kind;
    const char *version;            /* runtimes[].version or NULL */
    const char *gpu_name;           /* catalogue name or NULL */
    uint64_t memory_bytes;          /* GPU memory a runtime sees, per GPU */
    double utilization;             /* gpu_memory_utilization / mem_fraction_static */
    uint64_t tp, pp, ctx, conc;     /* ctx 0 = the model's maximum */
    ap_kv_dtype kvd;
    double overhead_gib, activation_gib;   /* < 0: not given */
    uint64_t max_batched_tokens, max_seqs; /* 0: runtime default */
    int enforce_eager;
    int v0;                         /* vLLM: 1 = VLLM_USE_V1=0, -1 unknown */
    int custom_allreduce;           /* vLLM: 0 = disabled, -1 unknown */
    int flash_attn;                 /* llama.cpp: 1/0, -1 default */
    uint64_t ubatch;                /* llama.cpp n_ubatch, 0 default */
    int vision_dp;                  /* vLLM --mm-encoder-tp-mode data */
    uint64_t graph_max;             /* vLLM largest CUDA graph capture size; 0 default */
    const char *rope_type;          /* serve.rope_scaling, or NULL */
    double rope_factor;
    uint64_t rope_original_context;
} ap_plan_in;

typedef struct ap_plan_model {
    char *name;                     /* the manifest's model name */
    size_t index;                   /* index in manifest models[] */
    ap_runtime_kind kind;           /* runtime kind used for the overheads */
    const char *kind_name;          /* "vllm", "llama.cpp", ... */
    int planned;                    /* 0 when facts were missing (see problem) */
    char *problem;                  /* why it was not planned or cannot run, or NULL */
    uint64_t tensor_parallel;       /* GPUs used: 0..tensor_parallel-1 */
    uint64_t context;               /* tokens per sequence */
    const char *context_src;        /* "manifest" or "default" (model maximum) */
    uint64_t concurrency;           /* sequences */
    uint64_t model_max_context;     /* trained maximum, tokens; 0 = unknown */
    const char *kv_dtype;           /* "bf16", "fp8", ... */
    uint32_t kv_num, kv_den;        /* bytes per KV element = kv_num / kv_den */
    int mla;                        /* KV cache holds an MLA latent */
    uint64_t kv_heads_per_gpu;      /* KV heads each GPU holds (replicated when tp > heads) */

    uint64_t weights_bytes;         /* whole model, bytes */
    uint64_t weights_per_gpu;       /* bytes */
    uint64_t kv_bytes_per_token;    /* per GPU, bytes, all attention layers */
    uint64_t kv_swa_bytes_per_token;/* of which sliding-window layers, bytes */
    uint64_t window;                /* sliding window, tokens; 0 = none */
    uint64_t kv_bytes;              /* per GPU at context x concurrency, bytes */
    uint64_t activation_bytes;      /* per GPU, bytes */
    const char *activation_src;     /* "model" (formula) or "manifest" */
    uint64_t overhead_bytes;        /* per GPU, bytes */
    const char *overhead_src;       /* "runtime profile" or "manifest" */
    uint64_t total_per_gpu;         /* weights + kv + activation + overhead, bytes */
    uint64_t others_bytes;          /* what other models use on its most loaded GPU, bytes */
    int64_t kv_budget_bytes;        /* per GPU: memory left for the KV cache after weights,
                                       overheads and the other models on the same GPUs; may be < 0 */
    int fits;                       /* planned and every GPU it uses fits (marginal counts as fitting) */
    const char *verdict;            /* "fits", "marginal", "does not fit" */
    uint64_t pipeline_parallel;     /* stages; GPUs used = tensor_parallel x pipeline_parallel */
    char profile[48];               /* runtime memory model used ("vllm 0.19 (V1)") */
    char profile_note[256];         /* why the nearest profile was used, or "" */
    uint64_t checkpoint_bytes;      /* = weights_bytes: what the files hold */
    uint64_t loaded_bytes_per_gpu;  /* = weights_per_gpu: what the runtime loads on each GPU */
    uint64_t host_bytes;            /* weights kept in host memory (llama.cpp token embedding) */
    uint64_t mtp_bytes;             /* multi-token-prediction layers not loaded */
    uint64_t vision_bytes;          /* vision tower, replicated on every rank */
    char weights_src[160];
    char activation_note[160];      /* the formula, or "manifest" */
    char overhead_note[160];
    char graphs_note[160];
    uint64_t graphs_bytes;          /* CUDA graphs per GPU */
    int graphs_outside;             /* graphs outside the budget (vLLM, SGLang) */
    int static_fraction;            /* SGLang: budget = weights + KV pool */
    uint64_t error_bytes;           /* the profile's stated error on the KV budget */
    uint64_t batch_tokens, seqs;    /* activation profile inputs */
    uint64_t context_limit;         /* largest context accepted (rope_scaling included); 0 = unknown */
    uint64_t max_context;           /* largest context at this concurrency that fits (<= model max) */
    uint64_t max_concurrency;       /* largest concurrency at this context that fits */
} ap_plan_model;

typedef struct ap_plan_gpu {
    uint64_t index;
    uint64_t budget_bytes;          /* memory seen x memory_utilization, bytes */
    uint64_t used_bytes;            /* sum over the models placed here, bytes */
    int64_t headroom_bytes;         /* budget - used */
    int fits;
} ap_plan_gpu;

typedef struct ap_plan {
    char *gpu_model;                /* catalogue name or NULL */
    char *gpu_label;                /* or NULL */
    uint64_t gpu_count;
    double memory_gib;              /* memory a runtime sees per GPU, GiB */
    const char *memory_src;         /* "catalogue" or "manifest" */
    double nominal_gb;              /* catalogue nominal memory, GB; 0 if unknown */
    double memory_utilization;
    uint64_t budget_bytes;          /* per GPU, bytes */
    ap_plan_model *models;  size_t n_models;
    ap_plan_gpu *gpus;      size_t n_gpus;
    int fits;                       /* every planned model fits, and none failed to plan */
} ap_plan;

/* Plan the manifest. facts has m->n_models entries, NULL where a model
 * could not be read (that model is reported as not planned). Errors:
 * AP_ERR_INPUT when the target GPU is not in the catalogue and no
 * memory_gib is given (with a "did you mean" hint), or the catalogue is
 * malformed; AP_ERR_NOMEM. A model that does not fit is not an error:
 * see ap_plan_fits(). *out is the caller's (ap_plan_free). */
int ap_plan_compute(const ap_manifest *m, ap_model_facts *const *facts, ap_plan **out,
                    ap_error *err) AP_WUR;

/* The `airpack plan --format json` object (new reference; NULL on OOM). */
json_t *ap_plan_to_json(const ap_plan *p);

/* Append Finding objects (HELPERS.md) to findings: AP-PLAN-FIT (error),
 * AP-PLAN-TP (error, tensor_parallel above the GPU count), AP-PLAN-UNKNOWN
 * (warning, a model that could not be planned), AP-PLAN-KV-DTYPE
 * (warning), AP-MODEL-PARAMS, AP-MODEL-QUANT and AP-MODEL-CONTEXT (error,
 * the manifest declares facts the files contradict). facts may be NULL.
 * Returns 0, or -1 on allocation failure. */
int ap_plan_findings(const ap_plan *p, const ap_manifest *m, ap_model_facts *const *facts,
                     json_t *findings);

/* 1 when everything fits. */
int ap_plan_fits(const ap_plan *p);
void ap_plan_free(ap_plan *p);

/* Exposed for tests: KV bytes per GPU for ctx tokens x conc sequences. */
uint64_t ap_plan_kv_bytes(const ap_plan_model *pm, uint64_t ctx, uint64_t conc);

/* Exposed for tests: plan one model alone (no manifest) on a GPU budget.
 * kind, tp, ctx (0 = model maximum), conc, kv dtype and the overrides
 * (<0 = not given) as in a manifest's serve block. Fills *pm (free its
 * strings with ap_plan_model_release). Returns 0 or AP_ERR_NOMEM. */
int ap_plan_model_compute(const ap_model_facts *f, ap_runtime_kind kind, uint64_t tp, uint64_t ctx,
                          uint64_t conc, ap_kv_dtype kvd, double overhead_gib,
                          double activation_gib, uint64_t budget_bytes, ap_plan_model *pm);
void ap_plan_model_release(ap_plan_model *pm);
/* The same from a full ap_plan_in (the runtime's version, GPU memory and
 * utilization, every serve knob). The budget is memory_bytes x utilization. */
int ap_plan_model_compute_in(const ap_model_facts *f, const ap_plan_in *in, ap_plan_model *pm);

/* Does the declared quantization string match the facts? 1 yes, 0 no. */
int ap_plan_quant_matches(const char *declared, const ap_model_facts *f);

#endif
