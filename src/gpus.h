/*
 * gpus.h - the GPU catalogue: nominal memory and the memory a runtime
 * actually sees, per GPU model (data/gpus.yaml, docs/gpus.md).
 *
 * The catalogue is data, not code: the YAML file is embedded in the binary
 * (ap_data_get("gpus.yaml")), and the environment variable
 * AIRPACK_GPU_CATALOG may name a file that replaces it. Names and aliases
 * match case-insensitively.
 */
#ifndef AIRPACK_GPUS_H
#define AIRPACK_GPUS_H

#include <stddef.h>

#include "error.h"

#define AP_GPU_CATALOG_MAX 1024      /* entries */

typedef struct ap_gpu {
    char *name;                      /* catalogue id, "nvidia-h100-sxm" */
    char **aliases;                  /* other names, n_aliases entries */
    size_t n_aliases;
    char *label;                     /* "NVIDIA H100 SXM5 80GB HBM3" */
    char *vendor;                    /* "nvidia", "amd", "intel" */
    double memory_gb;                /* nominal memory, decimal GB */
    double usable_gib;               /* memory a runtime sees, GiB (> 0) */
    char *source;                    /* where usable_gib comes from */
} ap_gpu;

typedef struct ap_gpu_catalog {
    char *file;                      /* "gpus.yaml (built in)" or the override path */
    ap_gpu *gpus;
    size_t n;
} ap_gpu_catalog;

/* Load the catalogue: the file named by AIRPACK_GPU_CATALOG when set and
 * not empty, else the built-in one. *out is the caller's
 * (ap_gpu_catalog_free). Errors: AP_ERR_INPUT with file, line and column. */
int ap_gpu_catalog_load(ap_gpu_catalog **out, ap_error *err) AP_WUR;
/* Parse a catalogue from memory; name is used in messages. */
int ap_gpu_catalog_parse(const char *name, const void *buf, size_t len, ap_gpu_catalog **out,
                         ap_error *err) AP_WUR;
void ap_gpu_catalog_free(ap_gpu_catalog *c);

/* The entry whose name or alias equals name (case-insensitive), or NULL. */
const ap_gpu *ap_gpu_find(const ap_gpu_catalog *c, const char *name);
/* A catalogue name close to name (a typo hint), or NULL. */
const char *ap_gpu_suggest(const ap_gpu_catalog *c, const char *name);

#endif
