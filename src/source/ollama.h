/*
 * ollama.h - Ollama's model store: layout and media types (shared with the
 * site side, which writes the same layout on install).
 *
 * A store (OLLAMA_MODELS, default ~/.ollama/models) holds
 *   manifests/registry.ollama.ai/<namespace>/<name>/<tag>   a JSON manifest
 *   blobs/sha256-<64 hex>                                    content by digest
 * The manifest is an OCI/Docker image manifest (schemaVersion 2): "config"
 * and "layers", each {"mediaType", "digest": "sha256:<hex>", "size"}.
 */
#ifndef AIRPACK_SOURCE_OLLAMA_H
#define AIRPACK_SOURCE_OLLAMA_H

#include <stddef.h>
#include <stdint.h>

#include "../digest.h"
#include "../error.h"

#define AP_OLLAMA_REGISTRY        "registry.ollama.ai"
#define AP_OLLAMA_DEFAULT_NS      "library"
#define AP_OLLAMA_DEFAULT_TAG     "latest"
#define AP_OLLAMA_MT_MANIFEST     "application/vnd.docker.distribution.manifest.v2+json"
#define AP_OLLAMA_MT_CONFIG       "application/vnd.docker.container.image.v1+json"
#define AP_OLLAMA_MT_MODEL        "application/vnd.ollama.image.model"
#define AP_OLLAMA_MT_TEMPLATE     "application/vnd.ollama.image.template"
#define AP_OLLAMA_MT_SYSTEM       "application/vnd.ollama.image.system"
#define AP_OLLAMA_MT_PARAMS       "application/vnd.ollama.image.params"
#define AP_OLLAMA_MT_LICENSE      "application/vnd.ollama.image.license"
#define AP_OLLAMA_MT_ADAPTER      "application/vnd.ollama.image.adapter"
#define AP_OLLAMA_MT_PROJECTOR    "application/vnd.ollama.image.projector"
#define AP_OLLAMA_MT_MESSAGES     "application/vnd.ollama.image.messages"

#define AP_OLLAMA_MAX_MANIFEST    (1u << 20)   /* manifest bytes */
#define AP_OLLAMA_MAX_LAYERS      256
#define AP_OLLAMA_MAX_LICENSE     (1u << 20)   /* licence layer bytes read */

typedef struct ap_ollama_layer {
    char media_type[128];
    char hex[AP_SHA256_HEX_LEN + 1];   /* the digest's hex */
    uint64_t size;
    int is_config;
} ap_ollama_layer;

typedef struct ap_ollama_manifest {
    ap_ollama_layer *layers;           /* config first (when present), then layers in order */
    size_t n;
    int model;                         /* index of the model layer, or -1 */
} ap_ollama_manifest;

/* Parse a manifest (name for messages). Refuses: not JSON, a digest that
 * is not sha256:<64 lowercase hex>, a size that is not an integer >= 0, a
 * missing mediaType, more than one model layer, too many layers. */
int ap_ollama_manifest_parse(const char *name, const void *buf, size_t len,
                             ap_ollama_manifest *out, ap_error *err) AP_WUR;
void ap_ollama_manifest_release(ap_ollama_manifest *m);

/* The entry name a layer is carried under: "model.gguf", "template",
 * "system", "params.json", "license", "config.json", "adapter.gguf",
 * "projector.gguf", "messages.json", else "blobs/sha256-<hex>". */
const char *ap_ollama_layer_name(const ap_ollama_layer *l, char *buf, size_t len);

/* The store folder: OLLAMA_MODELS or $HOME/.ollama/models (new string). */
char *ap_ollama_store_dir(void);

/* Resolve ollama://[NAMESPACE/]NAME[:TAG]: the manifest file (new string)
 * and the display name "NAME:TAG". */
int ap_ollama_ref(const char *ref, char **manifest_path, char **display, ap_error *err) AP_WUR;

/* An SPDX id or LicenseRef for a well-known licence text (Llama, Gemma,
 * Qwen, Apache-2.0, MIT, ...), or NULL. */
const char *ap_license_from_text(const char *text, size_t len);

#endif
