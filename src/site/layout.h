/*
 * layout.h - model layouts a runtime can load, made inside each installed
 * release (docs/install.md, "Model layouts").
 *
 * Every model is installed as a plain file or folder under
 * payload/models/<name>/ (what vLLM, llama.cpp, SGLang and TGI load). On
 * top of that, install makes:
 *
 *  - for a model served by Ollama, Ollama's own store under ollama/
 *    (the OLLAMA_MODELS of its launch spec):
 *      ollama/manifests/registry.ollama.ai/library/<name>/latest
 *      ollama/blobs/sha256-<hex>   the GGUF (a hard link), config, template,
 *                                  params and licence layers
 *  - for a model with `hf_cache: org/name`, the Hugging Face hub cache under
 *    hf-cache/models--org--name/{blobs,refs/main,snapshots/<rev>/...}.
 *
 * Model bytes are never copied: the GGUF blob and the hub cache's blobs
 * and snapshot files are hard links of the installed artifact (so, with
 * the content-addressed store, of the one object). The small generated
 * files are a pure function of the signed lock, so audit regenerates the
 * layout and checks it: a generated file must have the same bytes, a link
 * the same inode as its artifact.
 */
#ifndef AIRPACK_SITE_LAYOUT_H
#define AIRPACK_SITE_LAYOUT_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

#define AP_LAYOUT_OLLAMA_DIR "ollama"
#define AP_LAYOUT_HF_DIR "hf-cache"
#define AP_LAYOUT_OLLAMA_TAG "latest"

typedef struct ap_layout_entry {
    char *path;                     /* relative to the release */
    char *link;                     /* a hard link of this artifact (release-relative), or NULL */
    char *content;                  /* else: the file's bytes (NUL-terminated) */
    size_t len;                     /* bytes of content */
} ap_layout_entry;

typedef struct ap_layout {
    ap_layout_entry *v;
    size_t n;
} ap_layout;

/* The layout entries of a release, from its parsed lock document
 * (analysis.manifest, launch, artifacts). Errors: AP_ERR_NOMEM. */
int ap_layout_render(const json_t *lock, ap_layout *out, ap_error *err) AP_WUR;
void ap_layout_release(ap_layout *l);

/* Make them in release_dir: folders 0755, files 0644, links with link(2)
 * (same filesystem: the release). */
int ap_layout_write(const char *release_dir, const ap_layout *l, ap_error *err) AP_WUR;

/* Check one entry in release_dir: 0 when it is as rendered, else -1 with a
 * reason ("missing" when absent). */
int ap_layout_check(const char *release_dir, const ap_layout_entry *e, char *reason,
                    size_t reason_len);

#endif
