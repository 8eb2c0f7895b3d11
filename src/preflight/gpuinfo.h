/*
 * gpuinfo.h - what this host's GPUs are, read through NVML (docs/preflight.md).
 *
 * The small interface the preflight uses: one call fills an ap_hostgpus
 * record with the GPU count, each GPU's name, PCI ids, total and free
 * memory and compute capability, and the driver and CUDA driver versions.
 * nvml.c implements it by loading libnvidia-ml.so.1 at run time with
 * dlopen (never linked), so airpack runs where no NVIDIA driver is
 * installed: the record then says NVML is not available and why. The
 * environment variable AIRPACK_NVML_LIBRARY names another library to load
 * (the tests' fake NVML, tests/fake-nvml/).
 *
 * Everything NVML returns is bounded: names are cut at their buffer and
 * made printable, the GPU count is capped at AP_HOSTGPU_MAX.
 */
#ifndef AIRPACK_PREFLIGHT_GPUINFO_H
#define AIRPACK_PREFLIGHT_GPUINFO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define AP_HOSTGPU_MAX 256            /* GPUs read from one host */
#define AP_NVML_DEFAULT_LIBRARY "libnvidia-ml.so.1"

typedef struct ap_hostgpu {
    unsigned index;                   /* NVML index */
    char name[96];                    /* "NVIDIA L40S" (NVML_DEVICE_NAME_V2_BUFFER_SIZE) */
    uint32_t pci_device_id;           /* combined: device id << 16 | vendor id (0x26B510DE) */
    uint32_t pci_subsystem_id;
    char bus_id[32];                  /* "00000000:01:00.0" */
    uint64_t total_bytes;             /* memory, bytes */
    uint64_t free_bytes;              /* unallocated memory, bytes */
    uint64_t used_bytes;              /* allocated memory, bytes */
    uint64_t reserved_bytes;          /* set aside by the driver, bytes (0 from the v1 call) */
    int memory_v2;                    /* 1: read with nvmlDeviceGetMemoryInfo_v2 */
    int cc_major, cc_minor;           /* compute capability; -1 when not known */
} ap_hostgpu;

typedef struct ap_hostgpus {
    int available;                    /* 1 when NVML answered */
    char library[512];                /* the library loaded (or tried) */
    char problem[512];                /* why NVML is not available, "" when it is */
    char driver_version[80];          /* "550.54.14", "" when not known */
    int cuda_version;                 /* CUDA driver API version, 12040 = 12.4; 0 when not known */
    ap_hostgpu *gpus;                 /* n entries (owned) */
    size_t n;
} ap_hostgpus;

/* Read the GPUs of this host. A host without NVML (library missing, no
 * driver loaded, nvmlInit failing) is not an error: AP_OK with
 * out->available = 0 and out->problem saying why. An NVML that loads but
 * then fails a call is AP_ERR_IO naming the call and GPU. AP_ERR_NOMEM.
 * Release with ap_hostgpus_release. */
int ap_hostgpus_read(ap_hostgpus *out, ap_error *err) AP_WUR;
void ap_hostgpus_release(ap_hostgpus *h);

/* The host as JSON: {"nvml": {"available", "library", "problem"},
 * "driver_version", "cuda_version" ("12.4" or null), "gpus": [{"index",
 * "name", "pci_device_id" ("0x26b510de"), "bus_id", "memory_total_bytes",
 * "memory_free_bytes", "memory_used_bytes", "memory_reserved_bytes",
 * "compute_capability" ("8.9" or null)}]}. New reference or NULL (OOM). */
json_t *ap_hostgpus_to_json(const ap_hostgpus *h);

#endif
