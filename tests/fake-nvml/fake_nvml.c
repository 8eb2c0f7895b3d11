/*
 * fake_nvml.c - a stand-in for NVIDIA's libnvidia-ml.so.1 for the tests:
 * it implements the NVML entry points airpack calls (src/preflight/nvml.c)
 * with the ABI of NVIDIA's nvml.h, and answers from a JSON description of
 * fake GPUs named by the environment variable AIRPACK_FAKE_NVML_GPUS:
 *
 *   {"driver_version": "550.54.14", "cuda_version": 12040,
 *    "init_error": 0,                  NVML return code of nvmlInit_v2 (9: no driver)
 *    "memory_v2": "ok",                "ok", "mismatch" (ARGUMENT_VERSION_MISMATCH),
 *                                      "missing" (FUNCTION_NOT_FOUND): the v1 call is then used
 *    "gpus": [{"name": "NVIDIA L40S", "pci_device_id": "0x26b510de",
 *              "memory_total_gib": 48, "memory_used_gib": 0.5,
 *              "memory_reserved_gib": 0.4, "compute_capability": "8.9",
 *              "memory_error": 0}]}    NVML return code of the memory calls
 *
 * The structs are declared here from nvml.h independently of airpack's own
 * declarations, so a layout mistake on either side shows in the tests. The
 * versioned nvmlDeviceGetMemoryInfo_v2 checks the caller's version field as
 * the real library does. Built by tests/CMakeLists.txt as a shared library.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

struct fake_gpu {
    char name[96];
    unsigned int pci_device_id;
    unsigned long long total, used, reserved;
    int cc_major, cc_minor;
    int memory_error;
};
typedef struct fake_gpu *nvmlDevice_t;

typedef struct nvmlMemory_st {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct nvmlMemory_v2_st {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

#define nvmlMemory_v2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2U << 24U)))

typedef struct nvmlPciInfo_st {
    char busIdLegacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

#define EXPORT __attribute__((visibility("default")))

EXPORT nvmlReturn_t nvmlInit_v2(void);
EXPORT nvmlReturn_t nvmlShutdown(void);
EXPORT const char *nvmlErrorString(nvmlReturn_t r);
EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length);
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v);
EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n);
EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d);
EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length);
EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p);
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m);
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m);
EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *major, int *minor);

static struct fake_gpu gpus[64];
static unsigned int n_gpus;
static char driver[80];
static int cuda_version;
static int inited;
static int v2_mode; /* 0 ok, 1 mismatch, 2 missing */

static unsigned long long gib(const json_t *v)
{
    return json_is_number(v) ? (unsigned long long)(json_number_value(v) * 1073741824.0) : 0;
}

nvmlReturn_t nvmlInit_v2(void)
{
    const char *path = getenv("AIRPACK_FAKE_NVML_GPUS");
    json_error_t je;
    json_t *root, *a, *g, *v;
    size_t i;
    int ie;

    if (!path)
        return NVML_ERROR_DRIVER_NOT_LOADED;
    root = json_load_file(path, 0, &je);
    if (!root) {
        fprintf(stderr, "fake nvml: %s: line %d: %s\n", path, je.line, je.text);
        return NVML_ERROR_UNKNOWN;
    }
    ie = (int)json_integer_value(json_object_get(root, "init_error"));
    if (ie) {
        json_decref(root);
        return (nvmlReturn_t)ie;
    }
    snprintf(driver, sizeof driver, "%s",
             json_string_value(json_object_get(root, "driver_version")) ? json_string_value(json_object_get(root, "driver_version")) : "550.54.14");
    cuda_version = json_is_integer(json_object_get(root, "cuda_version"))
                       ? (int)json_integer_value(json_object_get(root, "cuda_version")) : 12040;
    v = json_object_get(root, "memory_v2");
    v2_mode = json_is_string(v) ? (strcmp(json_string_value(v), "mismatch") == 0 ? 1
                                   : strcmp(json_string_value(v), "missing") == 0 ? 2 : 0) : 0;
    a = json_object_get(root, "gpus");
    n_gpus = 0;
    json_array_foreach(a, i, g) {
        struct fake_gpu *f;
        const char *s;
        if (n_gpus >= sizeof gpus / sizeof gpus[0])
            break;
        f = &gpus[n_gpus++];
        memset(f, 0, sizeof *f);
        s = json_string_value(json_object_get(g, "name"));
        snprintf(f->name, sizeof f->name, "%s", s ? s : "NVIDIA Fake GPU");
        s = json_string_value(json_object_get(g, "pci_device_id"));
        f->pci_device_id = s ? (unsigned int)strtoul(s, NULL, 0) : 0x26b510deu;
        f->total = gib(json_object_get(g, "memory_total_gib"));
        f->used = gib(json_object_get(g, "memory_used_gib"));
        f->reserved = gib(json_object_get(g, "memory_reserved_gib"));
        if (f->used > f->total)
            f->used = f->total;
        s = json_string_value(json_object_get(g, "compute_capability"));
        if (!s || sscanf(s, "%d.%d", &f->cc_major, &f->cc_minor) != 2)
            f->cc_major = 8, f->cc_minor = 9;
        f->memory_error = (int)json_integer_value(json_object_get(g, "memory_error"));
    }
    json_decref(root);
    inited = 1;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
    if (!inited)
        return NVML_ERROR_UNINITIALIZED;
    inited = 0;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument Version Mismatch";
    default: return "Unknown Error";
    }
}

static int dev_ok(nvmlDevice_t d)
{
    return inited && d >= gpus && d < gpus + n_gpus;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    if (!inited)
        return NVML_ERROR_UNINITIALIZED;
    if (!version)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(driver) + 1 > length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(version, driver, strlen(driver) + 1);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v)
{
    if (!v)
        return NVML_ERROR_INVALID_ARGUMENT;
    *v = cuda_version;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n)
{
    if (!inited)
        return NVML_ERROR_UNINITIALIZED;
    if (!n)
        return NVML_ERROR_INVALID_ARGUMENT;
    *n = n_gpus;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d)
{
    if (!inited)
        return NVML_ERROR_UNINITIALIZED;
    if (i >= n_gpus || !d)
        return NVML_ERROR_INVALID_ARGUMENT;
    *d = &gpus[i];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length)
{
    if (!dev_ok(d) || !name)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(d->name) + 1 > length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(name, d->name, strlen(d->name) + 1);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p)
{
    unsigned int bus;
    if (!dev_ok(d) || !p)
        return NVML_ERROR_INVALID_ARGUMENT;
    bus = (unsigned int)(d - gpus) + 1;
    memset(p, 0, sizeof *p);
    p->bus = bus;
    p->pciDeviceId = d->pci_device_id;
    p->pciSubSystemId = 0x17ba10deu;
    snprintf(p->busIdLegacy, sizeof p->busIdLegacy, "%04X:%02X:%02X.0", 0u, bus, 0u);
    snprintf(p->busId, sizeof p->busId, "%08X:%02X:%02X.0", 0u, bus, 0u);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
    if (!dev_ok(d) || !m)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (d->memory_error)
        return (nvmlReturn_t)d->memory_error;
    m->total = d->total;
    m->used = d->used + d->reserved;     /* v1: reserved counts as used */
    m->free = d->total - m->used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m)
{
    if (v2_mode == 2)
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    if (!dev_ok(d) || !m)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (v2_mode == 1 || m->version != nvmlMemory_v2)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    if (d->memory_error)
        return (nvmlReturn_t)d->memory_error;
    m->total = d->total;
    m->reserved = d->reserved;
    m->used = d->used;
    m->free = d->total - d->reserved - d->used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *major, int *minor)
{
    if (!dev_ok(d) || !major || !minor)
        return NVML_ERROR_INVALID_ARGUMENT;
    *major = d->cc_major;
    *minor = d->cc_minor;
    return NVML_SUCCESS;
}
