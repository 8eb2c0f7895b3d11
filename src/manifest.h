/*
 * manifest.h - the deployment manifest v1 (docs/manifest.md), parsed into
 * typed structures.
 *
 * ap_manifest_load() reads the YAML through yamltree (bounded, no aliases,
 * no duplicate keys), checks every key against the schema (unknown keys are
 * refused with a "did you mean" hint), checks types and ranges, resolves
 * paths against the manifest's folder (refusing absolute or escaping paths
 * unless allowed), and checks that every referenced path exists. Every
 * error carries the file, line and column (AP_ERR_INPUT).
 *
 * Strings are owned by the manifest; ap_manifest_free() releases all.
 * Optional strings are NULL when absent. Numbers of 0 mean "not given"
 * where the comment says so.
 */
#ifndef AIRPACK_MANIFEST_H
#define AIRPACK_MANIFEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "yamltree.h"

#define AP_MANIFEST_MAX_BYTES (1u << 20)   /* manifest size cap */
#define AP_MANIFEST_MAX_ITEMS 1024         /* models, runtimes, files, policies each */

typedef enum ap_runtime_kind {
    AP_RT_VLLM, AP_RT_LLAMACPP, AP_RT_OLLAMA, AP_RT_TGI, AP_RT_TRITON, AP_RT_SGLANG, AP_RT_OTHER,
    AP_RT_UNKNOWN /* a model's serve.runtime naming no declared runtime */
} ap_runtime_kind;

typedef enum ap_model_format { AP_FMT_AUTO, AP_FMT_GGUF, AP_FMT_SAFETENSORS } ap_model_format;

typedef enum ap_kv_dtype {
    AP_KV_AUTO, AP_KV_F16, AP_KV_BF16, AP_KV_FP8, AP_KV_Q8_0, AP_KV_Q4_0
} ap_kv_dtype;

typedef struct ap_loc {
    unsigned line, column;          /* 1-based position in the manifest */
} ap_loc;

/* A path of the manifest with its pin. */
typedef struct ap_mpath {
    char *path;                     /* as written (relative to the manifest folder) */
    char *abs;                      /* resolved: manifest folder + path (or path if absolute) */
    int is_dir;                     /* the path is a folder */
    char *sha256;                   /* pin of a file: 64 lowercase hex, or NULL */
    char *sha256sums;               /* pin file of a folder, as written, or NULL */
    char *sha256sums_abs;           /* pin file resolved, or NULL */
    ap_loc loc;                     /* the 'path' key's value */
    char **include, **exclude;      /* glob lists for a folder (source/source.h), or NULL */
    size_t n_include, n_exclude;
} ap_mpath;

typedef struct ap_kv {
    char *key, *value;
    ap_loc loc;
} ap_kv;

typedef struct ap_mserve {
    char *runtime;                  /* name of a runtimes[] entry; NULL if not given */
    uint64_t context;               /* tokens per sequence; 0 = not given */
    uint64_t concurrency;           /* sequences resident at once; default 1 */
    uint64_t tensor_parallel;       /* GPUs per replica; default 1 */
    ap_kv_dtype kv_cache_dtype;     /* default auto */
    double overhead_gib;            /* runtime overhead override per GPU; <0 = not given */
    double activation_gib;          /* activation override per GPU; <0 = not given */
    uint64_t max_batched_tokens;    /* tokens per scheduler step (vLLM max_num_batched_tokens); 0 = runtime default */
    int enforce_eager;              /* 1: no CUDA graphs; 0: the runtime default (graphs on) */
    uint64_t pipeline_parallel;     /* pipeline stages (GPUs = tensor_parallel x this); default 1 */
    char *rope_type;                /* serve.rope_scaling.type ("yarn", "linear", "dynamic") or NULL */
    double rope_factor;             /* serve.rope_scaling.factor; 0 = not given */
    uint64_t rope_original_context; /* serve.rope_scaling.original_context; 0 = the model's trained maximum */
    ap_loc loc;
} ap_mserve;

typedef struct ap_mmodel {
    char *name;
    ap_mpath src;
    ap_model_format format;
    char *license;                  /* SPDX id or LicenseRef-..., or NULL */
    char *origin_publisher, *origin_jurisdiction, *origin_source; /* or NULL */
    char *parameters;               /* declared parameter count ("8B", "70.6B", "8030261248"), or NULL */
    char *quantization;             /* declared quantization ("Q4_K_M", "bf16", ...), or NULL */
    char *hf_cache;                 /* also install in the Hugging Face hub cache layout under
                                       this repository id ("org/name"), or NULL */
    ap_mserve serve;
    ap_loc loc;                     /* the list item */
} ap_mmodel;

typedef struct ap_mruntime {
    char *name;
    ap_runtime_kind kind;
    char *kind_str;
    char *version;                  /* or NULL */
    ap_mpath src;                   /* src.path NULL when no path given */
    char *license;
    ap_kv *env;
    size_t n_env;
    char *listen;                   /* "host:port" or NULL */
    char *health;                   /* health probe path overriding the kind's ("/v1/ready"), or NULL */
    char **args;                    /* extra command-line arguments, or NULL */
    size_t n_args;
    char *program;                  /* how it starts: inside the runtime's folder (relative)
                                       or on the site (absolute); in the image with 'image';
                                       NULL = the kind's default (docs/runtimes.md) */
    char *image;                    /* container image archive inside the runtime's folder,
                                       run with podman; or NULL */
    char *user;                     /* the service's user, or NULL (DynamicUser) */
    ap_loc program_loc, image_loc;
    ap_loc loc;
} ap_mruntime;

typedef struct ap_mfile {
    ap_mpath src;
    char *target;                   /* install destination, relative; NULL = same as path */
    ap_loc loc;
} ap_mfile;

typedef struct ap_manifest {
    char *file;                     /* manifest path as given */
    char *dir;                      /* its folder */
    ap_ydoc *doc;                   /* the YAML tree, kept for locating keys */

    char *api_version, *kind;
    /* metadata */
    char *name, *version, *description, *owner, *expires;
    uint64_t sequence;
    /* target */
    char *site, *region;
    char *gpu_model;                /* catalogue name or NULL */
    uint64_t gpu_count;             /* >= 1 */
    double gpu_memory_gib;          /* override; 0 = from the catalogue */
    double memory_utilization;      /* (0, 1]; default 0.90 */
    /* target.requires: least versions the site's GPUs need, or NULL */
    char *req_driver;               /* NVIDIA driver, "550.54.14" */
    char *req_cuda;                 /* CUDA driver API version, "12.4" */
    char *req_compute_capability;   /* "8.9" */

    ap_mmodel *models;     size_t n_models;
    ap_mruntime *runtimes; size_t n_runtimes;
    ap_mfile *files;       size_t n_files;
    char **policies;       size_t n_policies;   /* resolved paths */
    char **policies_raw;                         /* as written */
} ap_manifest;

typedef struct ap_manifest_opts {
    int allow_outside_paths;        /* allow absolute paths and paths outside the manifest folder */
    int skip_exists;                /* do not check that paths exist (fuzzing, sbom of a lock) */
} ap_manifest_opts;

int ap_manifest_load(const char *path, const ap_manifest_opts *opts, ap_manifest **out,
                     ap_error *err) AP_WUR;
/* Parse from memory (name is used in messages); paths resolve against dir. */
int ap_manifest_parse(const char *name, const char *dir, const void *buf, size_t len,
                      const ap_manifest_opts *opts, ap_manifest **out, ap_error *err) AP_WUR;
void ap_manifest_free(ap_manifest *m);

/* The runtime a model is served by, or NULL. */
const ap_mruntime *ap_manifest_model_runtime(const ap_manifest *m, const ap_mmodel *mm);

const char *ap_runtime_kind_name(ap_runtime_kind k);
const char *ap_kv_dtype_name(ap_kv_dtype d);

/* Position of a key path such as "models[0].origin.jurisdiction" in the
 * manifest; falls back to the nearest existing parent. Returns 1 if found. */
int ap_manifest_locate(const ap_manifest *m, const char *path, ap_loc *out);

/* The manifest as JSON, typed, with paths as written (new reference).
 * This is the document that policies evaluate (docs/policies.md) and that
 * the lock embeds as "manifest". */
json_t *ap_manifest_to_json(const ap_manifest *m);

#endif
