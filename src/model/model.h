/*
 * model.h - facts read from real model files: GGUF, safetensors (single
 * files and sharded folders) and Hugging Face config.json.
 *
 * airpack never trusts what a manifest says a model is: it reads the
 * headers of the files themselves. Every reader here reads headers only,
 * streaming through a small buffer, never the tensor data, and caps and
 * checks every length and count read from a file before it uses it
 * (docs/memory-planner.md lists the caps). Malformed input is refused with
 * AP_ERR_INPUT and a message naming the file and the byte offset (or the
 * JSON line and column).
 *
 * The result is one ap_model_facts record: the tensor totals (parameter
 * count and weight bytes, summed from the tensor shapes), the attention
 * shape the memory planner needs (layers, KV heads, head size, MLA,
 * sliding window), and, for each fact, where it came from.
 */
#ifndef AIRPACK_MODEL_H
#define AIRPACK_MODEL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "manifest.h"

/* Caps on untrusted sizes and counts. */
#define AP_MODEL_MAX_TENSORS     (1u << 20)   /* tensors in one file */
#define AP_MODEL_MAX_KV          (1u << 16)   /* GGUF metadata pairs */
#define AP_MODEL_MAX_STRING      (1u << 20)   /* one GGUF string, bytes */
#define AP_MODEL_MAX_ARRAY       (1u << 24)   /* GGUF array elements (a vocabulary) */
#define AP_MODEL_MAX_DIMS        4            /* GGUF tensor dimensions (GGML_MAX_DIMS) */
#define AP_MODEL_MAX_ST_DIMS     16           /* safetensors tensor dimensions */
#define AP_MODEL_MAX_NAME        4096         /* tensor name, bytes */
#define AP_MODEL_MAX_ST_HEADER   100000000u   /* safetensors header, bytes (reference: 100 MB) */
#define AP_MODEL_MAX_JSON        (16u << 20)  /* config.json / index.json, bytes */
#define AP_MODEL_MAX_SHARDS      4096         /* safetensors shards in one folder */
#define AP_MODEL_MAX_LAYERS      4096         /* per-layer arrays */
#define AP_MODEL_MAX_DTYPES      48           /* distinct storage types tracked */

/* Where a fact came from. */
typedef enum ap_fact_src {
    AP_SRC_NONE = 0,      /* not known */
    AP_SRC_GGUF,          /* a GGUF header */
    AP_SRC_SAFETENSORS,   /* safetensors headers */
    AP_SRC_CONFIG,        /* config.json */
    AP_SRC_DERIVED,       /* computed from other facts (named in docs) */
    AP_SRC_DEFAULT        /* a documented default */
} ap_fact_src;

/* "gguf header", "safetensors header", "config.json", "derived", "default", "none". */
const char *ap_fact_src_name(ap_fact_src s);

/* A numeric fact with its source; v is meaningful only when src != AP_SRC_NONE. */
typedef struct ap_fact {
    uint64_t v;
    ap_fact_src src;
} ap_fact;

/* Use of one storage type across the tensors. */
typedef struct ap_dtype_use {
    char name[16];            /* "BF16", "Q4_K", "F8_E4M3", ... */
    uint64_t tensors;         /* count */
    uint64_t parameters;      /* elements */
    uint64_t bytes;           /* bytes of tensor data */
} ap_dtype_use;

typedef struct ap_model_facts {
    char *path;                     /* the file or folder read */
    const char *format;             /* "gguf", "safetensors" or "hf-config" (static string) */
    uint32_t gguf_version;          /* 2 or 3; 0 for other formats */
    uint64_t gguf_alignment;        /* bytes; 0 for other formats */

    uint64_t n_files;               /* weight files read (shards) */
    uint64_t file_bytes;            /* their total size, bytes */
    uint64_t n_tensors;             /* tensors in all files */
    uint64_t parameters;            /* elements of every tensor except non-learned buffers (rope_freqs, inv_freq) */
    uint64_t weights_bytes;         /* sum of the tensors' data sizes, bytes, without padding */
    ap_fact_src tensors_src;        /* AP_SRC_GGUF or AP_SRC_SAFETENSORS; NONE for config.json only */

    char *architecture;             /* "llama", "qwen2", "deepseek2", ... or NULL */
    ap_fact_src architecture_src;
    char *name;  ap_fact_src name_src;
    char *license; ap_fact_src license_src;

    ap_fact layers;                 /* transformer blocks */
    ap_fact hidden;                 /* embedding length */
    ap_fact heads;                  /* attention (query) heads */
    ap_fact kv_heads;               /* KV heads (the largest when per layer) */
    ap_fact head_dim;               /* key head size, elements */
    ap_fact v_head_dim;             /* value head size, elements */
    ap_fact context_length;         /* trained maximum context, tokens */
    ap_fact sliding_window;         /* tokens; 0 = none */
    ap_fact experts;                /* routed experts; 0 = dense */
    ap_fact experts_used;           /* experts per token */
    ap_fact kv_lora_rank;           /* MLA latent size, elements; 0 = no MLA */
    ap_fact qk_rope_head_dim;       /* MLA decoupled RoPE key size, elements */
    ap_fact vocab;                  /* vocabulary size, tokens */
    ap_fact ffn;                    /* feed-forward (per-expert for MoE) size, elements */
    ap_fact quant_bits;             /* config.json quantization_config bits */

    uint32_t *kv_heads_layer;       /* layers.v entries, or NULL when uniform; 0 = no attention */
    uint8_t *swa_layer;             /* layers.v entries, or NULL; 1 = sliding-window layer */

    char *dtype;  ap_fact_src dtype_src;          /* storage type of most weight bytes ("BF16", "Q4_K"), or config torch_dtype */
    char *file_type; ap_fact_src file_type_src;   /* GGUF general.file_type name ("Q4_K_M"), or NULL */
    char *quant_method; ap_fact_src quant_method_src; /* config.json quantization_config.quant_method, or NULL */

    /* Tensor groups by name, for the bytes a runtime loads per GPU
     * (docs/memory-planner.md, "Loaded bytes"). */
    uint64_t embed_bytes;           /* token embedding: model.embed_tokens.weight, token_embd.weight, ... */
    int has_output;                 /* a separate output projection (lm_head.weight, output.weight) */
    uint64_t vision_bytes;          /* vision tower and projector tensors (replicated on every TP rank) */
    uint64_t expert_bytes;          /* routed-expert tensors (.experts., _exps.) */
    uint64_t *layer_bytes;          /* bytes per decoder layer index (AP_MODEL_MAX_LAYERS), or NULL */
    ap_fact mtp_layers;             /* config.json num_nextn_predict_layers (MTP layers after the last) */
    char *rope_type;                /* config.json rope_scaling type ("yarn", "llama3", ...) or NULL */
    double rope_factor;             /* rope_scaling factor; 0 = none */
    uint64_t rope_orig_ctx;         /* rope_scaling original_max_position_embeddings; 0 = not given */

    ap_dtype_use dtypes[AP_MODEL_MAX_DTYPES];     /* the quantization mix, by first appearance */
    size_t n_dtypes;

    struct ap_name_set *names;      /* internal: tensor names seen, to refuse duplicates */
} ap_model_facts;

/* ---- ggml type table (ggml_types.c) ---- */

typedef struct ap_ggml_type {
    uint32_t id;              /* GGML_TYPE_* value as stored in GGUF */
    const char *name;         /* "F32", "Q4_K", ... */
    uint32_t block_elems;     /* elements per block */
    uint32_t block_bytes;     /* bytes per block */
} ap_ggml_type;

/* The type with that id, or NULL for an unknown or removed id. */
const ap_ggml_type *ap_ggml_type_get(uint32_t id);
/* The type with that name (case-insensitive), or NULL. */
const ap_ggml_type *ap_ggml_type_by_name(const char *name);
/* Number of ids the table spans (ids >= this are unknown). */
uint32_t ap_ggml_type_count(void);

/* Bytes of a tensor of type id with n_dims dims (ne[0] is the row length,
 * which must be a multiple of the block size). Returns 0 on success, 1 for
 * an unknown type, 2 when ne[0] is not a multiple of the block size, 3 on
 * overflow. *elems gets the element count (may be NULL). */
int ap_ggml_tensor_bytes(uint32_t id, const uint64_t *ne, uint32_t n_dims, uint64_t *bytes,
                         uint64_t *elems);

/* Name of a llama_ftype (GGUF general.file_type), or NULL when unknown. */
const char *ap_gguf_file_type_name(uint64_t ftype);

/* ---- safetensors dtype table (safetensors.c) ---- */

/* Bits per element of a safetensors dtype ("BF16" -> 16, "F4" -> 4), or 0. */
unsigned ap_st_dtype_bits(const char *dtype);

/* ---- readers: each adds to f (tensors are summed across calls) ---- */

/* Read a GGUF file's header (v2 or v3). */
int ap_gguf_read(const char *path, ap_model_facts *f, ap_error *err) AP_WUR;
/* Read one safetensors file's header, checking offsets against shapes and
 * the file size as the reference implementation does. */
int ap_safetensors_read(const char *path, ap_model_facts *f, ap_error *err) AP_WUR;
/* Read a sharded safetensors folder through its model.safetensors.index.json:
 * every shard named by the weight map is read; totals come from the shard
 * headers, not the index's total_size. */
int ap_safetensors_read_index(const char *index_path, ap_model_facts *f, ap_error *err) AP_WUR;
/* Read a Hugging Face config.json (facts already known from a GGUF header
 * are not overwritten; safetensors-derived totals are kept). */
int ap_hfconfig_read(const char *path, ap_model_facts *f, ap_error *err) AP_WUR;

/* Internal helpers shared by the readers (facts.c). */
int ap_facts_add_tensor(ap_model_facts *f, const char *tname, const char *dtype, uint64_t elems,
                        uint64_t bytes, ap_error *err) AP_WUR;
int ap_facts_set_str(char **dst, ap_fact_src *dsrc, const char *v, ap_fact_src src) AP_WUR;
void ap_facts_set(ap_fact *fact, uint64_t v, ap_fact_src src);
/* Bytes of the tensors in decoder layers with an index >= first (MTP
 * layers shipped after the last decoder layer), 0 when not tracked. */
uint64_t ap_facts_layer_bytes_from(const ap_model_facts *f, uint64_t first);
/* The context the model accepts with its rope_scaling: for yarn, dynamic
 * and linear scaling (original_max_position_embeddings or the trained
 * maximum) x factor; otherwise context_length. 0 when unknown. */
uint64_t ap_facts_scaled_context(const ap_model_facts *f);
/* 1 when a tensor of that name was added. */
int ap_facts_has_tensor(const ap_model_facts *f, const char *tname);

/* ---- the public entry points ---- */

/* Read the facts of a model file or folder. fmt AUTO decides from the
 * content: a GGUF file (by its magic), a .safetensors file, or a folder
 * holding one GGUF file (or a split GGUF set), model.safetensors or
 * model.safetensors.index.json (or *.safetensors files), and config.json.
 * On success *out is the caller's (ap_model_facts_free). Errors:
 * AP_ERR_INPUT naming the file and offset (or JSON line/column) for
 * malformed input or a folder with no model; AP_ERR_IO; AP_ERR_NOMEM. */
int ap_model_facts_load(const char *path, ap_model_format fmt, ap_model_facts **out,
                        ap_error *err) AP_WUR;
/* As ap_model_facts_load, for a folder whose files a manifest's
 * include/exclude lists select: a top-level file for which skip(name, ctx)
 * returns 1 is not read (it is not shipped either). */
typedef int (*ap_facts_skip_fn)(const char *name, void *ctx);
int ap_model_facts_load_filtered(const char *path, ap_model_format fmt, ap_facts_skip_fn skip,
                                 void *ctx, ap_model_facts **out, ap_error *err) AP_WUR;
void ap_model_facts_free(ap_model_facts *f);
/* A new, empty record (NULL on allocation failure). */
ap_model_facts *ap_model_facts_new(const char *path);

/* The `airpack model --format json` object (new reference; NULL on OOM). */
json_t *ap_model_facts_to_json(const ap_model_facts *f);

/* Parse a parameter count as people write it: "8B", "70.6B", "1.5T", "7M",
 * "8030261248", "8,030,261,248". Returns 1 on success. */
int ap_parse_param_count(const char *s, uint64_t *out);

#endif
