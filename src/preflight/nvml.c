/*
 * nvml.c - gpuinfo.h through NVIDIA's management library, loaded with
 * dlopen at run time.
 *
 * The types and entry points below are declared here, as NVML's nvml.h
 * defines them (NVIDIA's header as shipped with the CUDA toolkit and
 * mirrored in NVIDIA/go-nvml, gen/nvml/nvml.h); airpack does not need the
 * header to build. Versioned entry points are used where nvml.h maps the
 * plain name to them (nvmlInit -> nvmlInit_v2, nvmlDeviceGetCount ->
 * nvmlDeviceGetCount_v2, nvmlDeviceGetHandleByIndex -> _v2,
 * nvmlDeviceGetPciInfo -> _v3), with the older symbol as a fallback for
 * old drivers. Memory is read with nvmlDeviceGetMemoryInfo_v2 and its
 * versioned struct (version = sizeof | 2 << 24, nvml.h's
 * NVML_STRUCT_VERSION(Memory, 2)); a driver without it (symbol missing,
 * NVML_ERROR_FUNCTION_NOT_FOUND, NOT_SUPPORTED or
 * ARGUMENT_VERSION_MISMATCH) is asked with nvmlDeviceGetMemoryInfo.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "preflight/gpuinfo.h"

/* ---- NVML's ABI (nvml.h) ---- */

typedef int nvmlReturn_t;                       /* enum nvmlReturn_enum */
typedef struct nvmlDevice_st *nvmlDevice_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25

#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16

typedef struct nvmlMemory_st {
    unsigned long long total;                   /* bytes */
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct nvmlMemory_v2_st {
    unsigned int version;                       /* nvmlMemory_v2 */
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

#define NVML_STRUCT_VERSION(size, ver) ((unsigned int)(size) | ((unsigned int)(ver) << 24U))
#define nvmlMemory_v2 NVML_STRUCT_VERSION(sizeof(nvmlMemory_v2_t), 2)

typedef struct nvmlPciInfo_st {
    char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;                   /* device id << 16 | vendor id */
    unsigned int pciSubSystemId;
    char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

/* The layouts NVML's ABI fixes on x86-64 and aarch64 (LP64). */
_Static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t layout");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t layout");
_Static_assert(nvmlMemory_v2 == 0x02000028u, "nvmlMemory_v2 version");
_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t layout");

struct nvml_api {
    void *dl;
    nvmlReturn_t (*init)(void);
    nvmlReturn_t (*shutdown)(void);
    const char *(*error_string)(nvmlReturn_t);
    nvmlReturn_t (*driver_version)(char *, unsigned int);
    nvmlReturn_t (*cuda_version)(int *);
    nvmlReturn_t (*count)(unsigned int *);
    nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t *);
    nvmlReturn_t (*name)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*pci)(nvmlDevice_t, nvmlPciInfo_t *);
    nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t *);
    nvmlReturn_t (*memory_v2)(nvmlDevice_t, nvmlMemory_v2_t *);
    nvmlReturn_t (*cc)(nvmlDevice_t, int *, int *);
};

/* dlsym the first name that exists (a function pointer through a void *:
 * POSIX guarantees this works). */
static void *sym(void *dl, const char *a, const char *b)
{
    void *p = dlsym(dl, a);
    if (!p && b)
        p = dlsym(dl, b);
    return p;
}

static const char *nvml_err(const struct nvml_api *api, nvmlReturn_t r, char buf[32])
{
    const char *s = api->error_string ? api->error_string(r) : NULL;
    if (s && *s)
        return s;
    snprintf(buf, 32, "NVML error %d", r);
    return buf;
}

/* Copy an NVML string: bounded, NUL-terminated, non-printable bytes as '?'. */
static void copy_clean(char *dst, size_t n, const char *src, size_t srcmax)
{
    size_t i;
    for (i = 0; i + 1 < n && i < srcmax && src[i]; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
    dst[i] = '\0';
}

#define LOAD(field, a, b) (api->field = (__typeof__(api->field))sym(api->dl, a, b))

static int load(struct nvml_api *api, ap_hostgpus *h)
{
    const char *lib = getenv("AIRPACK_NVML_LIBRARY");
    const char *e;
    if (!lib || !*lib)
        lib = AP_NVML_DEFAULT_LIBRARY;
    snprintf(h->library, sizeof h->library, "%s", lib);
    api->dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!api->dl) {
        e = dlerror();
        snprintf(h->problem, sizeof h->problem, "cannot load '%s': %s", lib, e ? e : "not found");
        return -1;
    }
    LOAD(init, "nvmlInit_v2", "nvmlInit");
    LOAD(shutdown, "nvmlShutdown", NULL);
    LOAD(error_string, "nvmlErrorString", NULL);
    LOAD(driver_version, "nvmlSystemGetDriverVersion", NULL);
    LOAD(cuda_version, "nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion");
    LOAD(count, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount");
    LOAD(handle, "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex");
    LOAD(name, "nvmlDeviceGetName", NULL);
    LOAD(pci, "nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2");
    LOAD(memory, "nvmlDeviceGetMemoryInfo", NULL);
    LOAD(memory_v2, "nvmlDeviceGetMemoryInfo_v2", NULL);
    LOAD(cc, "nvmlDeviceGetCudaComputeCapability", NULL);
    if (!api->init || !api->shutdown || !api->count || !api->handle || !api->name ||
        (!api->memory && !api->memory_v2)) {
        snprintf(h->problem, sizeof h->problem,
                 "'%s' lacks the NVML entry points airpack needs (nvmlInit_v2, "
                 "nvmlDeviceGetCount_v2, nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetName, "
                 "nvmlDeviceGetMemoryInfo)", lib);
        return -1;
    }
    return 0;
}

static int read_memory(const struct nvml_api *api, nvmlDevice_t d, ap_hostgpu *g, nvmlReturn_t *why)
{
    nvmlReturn_t r = NVML_ERROR_FUNCTION_NOT_FOUND;
    if (api->memory_v2) {
        nvmlMemory_v2_t m;
        memset(&m, 0, sizeof m);
        m.version = nvmlMemory_v2;
        r = api->memory_v2(d, &m);
        if (r == NVML_SUCCESS) {
            g->total_bytes = m.total;
            g->free_bytes = m.free;
            g->used_bytes = m.used;
            g->reserved_bytes = m.reserved;
            g->memory_v2 = 1;
            return 0;
        }
        if (r != NVML_ERROR_FUNCTION_NOT_FOUND && r != NVML_ERROR_NOT_SUPPORTED &&
            r != NVML_ERROR_ARGUMENT_VERSION_MISMATCH) {
            *why = r;
            return -1;
        }
    }
    if (api->memory) {
        nvmlMemory_t m;
        memset(&m, 0, sizeof m);
        r = api->memory(d, &m);
        if (r == NVML_SUCCESS) {
            g->total_bytes = m.total;
            g->free_bytes = m.free;
            g->used_bytes = m.used;
            return 0;
        }
    }
    *why = r;
    return -1;
}

int ap_hostgpus_read(ap_hostgpus *h, ap_error *err)
{
    struct nvml_api api;
    nvmlReturn_t r;
    unsigned int n = 0;
    char eb[32];
    int rc = AP_OK, inited = 0;

    memset(h, 0, sizeof *h);
    memset(&api, 0, sizeof api);
    if (load(&api, h) != 0)
        goto out;
    if ((r = api.init()) != NVML_SUCCESS) {
        snprintf(h->problem, sizeof h->problem, "nvmlInit_v2 in '%s' failed: %s", h->library,
                 nvml_err(&api, r, eb));
        goto out;
    }
    inited = 1;
    if (api.driver_version) {
        char v[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE + 1];
        memset(v, 0, sizeof v);
        if (api.driver_version(v, NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE) == NVML_SUCCESS)
            copy_clean(h->driver_version, sizeof h->driver_version, v, NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE);
    }
    if (api.cuda_version) {
        int cv = 0;
        if (api.cuda_version(&cv) == NVML_SUCCESS && cv > 0 && cv < 1000000)
            h->cuda_version = cv;
    }
    if ((r = api.count(&n)) != NVML_SUCCESS) {
        rc = ap_error_set(err, AP_ERR_IO, "nvml '%s': nvmlDeviceGetCount_v2 failed: %s",
                          h->library, nvml_err(&api, r, eb));
        goto out;
    }
    if (n > AP_HOSTGPU_MAX) {
        rc = ap_error_set(err, AP_ERR_IO, "nvml '%s': %u GPUs is over the limit of %d", h->library,
                          n, AP_HOSTGPU_MAX);
        goto out;
    }
    h->gpus = calloc(n ? n : 1, sizeof *h->gpus);
    if (!h->gpus) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        ap_hostgpu *g = &h->gpus[i];
        nvmlDevice_t d = NULL;
        char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE + 1];
        const char *call;

        g->index = i;
        g->cc_major = g->cc_minor = -1;
        h->n = i + 1;
        call = "nvmlDeviceGetHandleByIndex_v2";
        if ((r = api.handle(i, &d)) != NVML_SUCCESS)
            goto call_failed;
        memset(name, 0, sizeof name);
        call = "nvmlDeviceGetName";
        if ((r = api.name(d, name, NVML_DEVICE_NAME_V2_BUFFER_SIZE)) != NVML_SUCCESS)
            goto call_failed;
        copy_clean(g->name, sizeof g->name, name, NVML_DEVICE_NAME_V2_BUFFER_SIZE);
        if (api.pci) {
            nvmlPciInfo_t p;
            memset(&p, 0, sizeof p);
            if (api.pci(d, &p) == NVML_SUCCESS) {
                g->pci_device_id = p.pciDeviceId;
                g->pci_subsystem_id = p.pciSubSystemId;
                copy_clean(g->bus_id, sizeof g->bus_id, p.busId, sizeof p.busId);
            }
        }
        call = "nvmlDeviceGetMemoryInfo_v2";
        if (read_memory(&api, d, g, &r) != 0)
            goto call_failed;
        if (g->free_bytes > g->total_bytes)
            g->free_bytes = g->total_bytes;
        if (api.cc) {
            int ma = -1, mi = -1;
            if (api.cc(d, &ma, &mi) == NVML_SUCCESS && ma >= 0 && ma < 100 && mi >= 0 && mi < 100) {
                g->cc_major = ma;
                g->cc_minor = mi;
            }
        }
        continue;
call_failed:
        rc = ap_error_set(err, AP_ERR_IO, "nvml '%s': %s on GPU %u failed: %s", h->library, call, i,
                          nvml_err(&api, r, eb));
        goto out;
    }
    h->n = n;
    h->available = 1;
out:
    if (inited)
        api.shutdown();
    if (api.dl)
        dlclose(api.dl);
    if (rc != AP_OK) {
        free(h->gpus);
        h->gpus = NULL;
        h->n = 0;
    }
    return rc;
}

void ap_hostgpus_release(ap_hostgpus *h)
{
    if (!h)
        return;
    free(h->gpus);
    h->gpus = NULL;
    h->n = 0;
}

json_t *ap_hostgpus_to_json(const ap_hostgpus *h)
{
    json_t *o, *gpus = json_array();
    char cuda[32];
    if (!gpus)
        return NULL;
    for (size_t i = 0; i < h->n; i++) {
        const ap_hostgpu *g = &h->gpus[i];
        char pci[16], cc[16];
        json_t *j;
        snprintf(pci, sizeof pci, "0x%08x", g->pci_device_id);
        snprintf(cc, sizeof cc, "%d.%d", g->cc_major, g->cc_minor);
        j = json_pack("{s:I,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:o}", "index", (json_int_t)g->index,
                      "name", g->name, "pci_device_id", pci, "bus_id", g->bus_id,
                      "memory_total_bytes", (json_int_t)g->total_bytes, "memory_free_bytes",
                      (json_int_t)g->free_bytes, "memory_used_bytes", (json_int_t)g->used_bytes,
                      "memory_reserved_bytes", (json_int_t)g->reserved_bytes,
                      "compute_capability", g->cc_major >= 0 ? json_string(cc) : json_null());
        if (!j || json_array_append_new(gpus, j) != 0) {
            json_decref(gpus);
            return NULL;
        }
    }
    snprintf(cuda, sizeof cuda, "%d.%d", h->cuda_version / 1000, (h->cuda_version % 1000) / 10);
    o = json_pack("{s:{s:b,s:s,s:o},s:o,s:o,s:o}", "nvml", "available", h->available, "library",
                  h->library, "problem", h->problem[0] ? json_string(h->problem) : json_null(),
                  "driver_version", h->driver_version[0] ? json_string(h->driver_version) : json_null(),
                  "cuda_version", h->cuda_version ? json_string(cuda) : json_null(), "gpus", gpus);
    return o;
}
