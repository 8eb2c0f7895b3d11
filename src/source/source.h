/*
 * source.h - the one input walk behind `airpack check` and `airpack build`.
 *
 * Every model, runtime and file of a manifest names its content with a
 * `path`. This module turns that path into the list of files that are
 * pinned, hashed and shipped, and check (pins.c) and build
 * (bundle_write.c) both take their list from here, so whatever build would
 * refuse, check refuses first with the same message.
 *
 * Forms of `path` (docs/manifest.md):
 *   - a file or a folder of regular files (links refused);
 *   - a path inside a Hugging Face hub cache snapshot
 *     (.../models--ORG--NAME/snapshots/REV[/...]): links are followed only
 *     into the same repository's blobs/ folder, and a blob named by a
 *     SHA-256 must hash to its name;
 *   - hf://ORG/NAME[@REVISION]: the same, resolved in HF_HUB_CACHE, else
 *     HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else
 *     ~/.cache/huggingface/hub (REVISION: a branch or tag under refs/, or a
 *     commit; default main);
 *   - ollama://NAME[:TAG] (ollama.c), container images (oci.c): later
 *     sections of this header.
 * `include` and `exclude` glob lists (ap_glob_match) select the files of
 * a folder; a file left out is not pinned, hashed or shipped, and the walk
 * says which pattern left it out.
 */
#ifndef AIRPACK_SOURCE_H
#define AIRPACK_SOURCE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../digest.h"
#include "../error.h"
#include "../manifest.h"

#define AP_HF_MAX_REF_BYTES 4096          /* a refs/ file */

typedef enum ap_input_kind {
    AP_INPUT_FILE,            /* one regular file (the manifest's path may be a link) */
    AP_INPUT_FOLDER,          /* a folder of regular files */
    AP_INPUT_HF,              /* a Hugging Face hub cache snapshot (or a part of one) */
    AP_INPUT_OLLAMA,          /* a model of an Ollama store */
    AP_INPUT_IMAGE            /* a container image (OCI layout, oci-archive, docker-archive) */
} ap_input_kind;

typedef struct ap_input_file {
    char *rel;                          /* entry name below the input's prefix ('/'-separated) */
    char *src;                          /* the file to read */
    int follow;                         /* src may be a symbolic link (the manifest's own path) */
    char digest[AP_SHA256_HEX_LEN + 1]; /* the SHA-256 the store names the file by, or "" */
    uint64_t size;
} ap_input_file;

typedef struct ap_input_skip {
    char *rel;                          /* a file left out */
    char *pattern;                      /* the exclude pattern, or "(not included)" */
    uint64_t size;
} ap_input_skip;

typedef struct ap_input {
    ap_input_kind kind;
    ap_input_file *files;               /* sorted by rel (strcmp) */
    size_t n, cap;
    ap_input_skip *skipped;             /* files left out by include/exclude */
    size_t n_skipped, cap_skipped;
    json_t *source;                     /* provenance for the lock and the SBOM, or NULL:
                                         * {"kind", "repo", "revision", "ref", ...} */
    char *facts_path;                   /* what the model facts are read from, or NULL */
} ap_input;

/* Walk one manifest path (with its include/exclude lists). flags:
 * AP_WALK_RUNTIME, the path is a runtime's (a tar or an OCI layout folder
 * is then a container image); AP_WALK_LIST_ONLY, list the files without
 * verifying a container image's blobs again (build, after the analysis
 * verified them). Errors (AP_ERR_INPUT, AP_ERR_CHECK) name the file. */
#define AP_WALK_RUNTIME 1
#define AP_WALK_LIST_ONLY 2
int ap_input_walk(const ap_mpath *p, int flags, ap_input *out, ap_error *err) AP_WUR;
void ap_input_release(ap_input *in);

/* The input file listed under rel, or NULL. */
const ap_input_file *ap_input_find(const ap_input *in, const char *rel);

/* Resolve a store reference (hf://..., ollama://...) to the path the
 * manifest keeps as `abs` (the snapshot folder; the model layer of an
 * Ollama model) and whether the input is a folder. Returns 0 with *abs
 * NULL when ref is no store reference. */
int ap_source_resolve(const char *ref, char **abs, int *is_dir, ap_error *err) AP_WUR;

/* 1 when ref names a store (hf://, ollama://). */
int ap_source_is_ref(const char *ref);

/* A model's facts from its files as the manifest selects them: the path
 * as resolved (a snapshot folder, an Ollama model's GGUF layer), without
 * the files include/exclude leave out. */
struct ap_model_facts;
int ap_source_facts_load(const ap_mmodel *mm, struct ap_model_facts **out, ap_error *err) AP_WUR;

/* ---- Hugging Face hub cache (hfcache.c) ---- */

/* The hub cache folder: HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub
 * or $HOME/.cache/huggingface/hub (new string). */
char *ap_hf_cache_dir(void);

/* Resolve hf://ORG/NAME[@REV] to its snapshot folder (new string). */
int ap_hf_resolve(const char *ref, char **snapshot, ap_error *err) AP_WUR;

/* If path lies in a hub cache snapshot, fill repo_dir (".../models--ORG--NAME"),
 * revision (the snapshot's folder name) and return 1; 0 when it does not
 * (then nothing is allocated); <0 out of memory. */
int ap_hf_locate(const char *path, char **repo_dir, char **revision);

/* As ap_hf_locate, for where path really is (its folder resolved). */
int ap_hf_locate_real(const char *path, char **repo_dir, char **revision);

/* Walk a snapshot path (folder or file) into in (kind AP_INPUT_HF). */
int ap_hf_walk(const ap_mpath *p, ap_input *in, ap_error *err) AP_WUR;

/* ---- Ollama store (ollama.c, ollama.h) ---- */

/* Resolve ollama://... to its model layer's blob (new string). */
int ap_ollama_resolve(const char *ref, char **abs, ap_error *err) AP_WUR;
/* Walk an Ollama model (kind AP_INPUT_OLLAMA): manifest.json, model.gguf,
 * template, params.json, license, config.json..., each blob's digest the
 * file's pin; the source records the name, the manifest's SHA-256, the
 * model digest and the licence the licence layer names. */
int ap_ollama_walk(const ap_mpath *p, ap_input *in, ap_error *err) AP_WUR;

/* ---- container images (oci.c, oci.h) ---- */

/* 1: an OCI image layout folder (oci-layout and index.json), 2: a tar
 * whose top level holds manifest.json (docker-archive), 3: a tar whose top
 * level holds oci-layout and index.json (oci-archive), 0: anything else (a
 * plain file or folder). */
int ap_image_detect(const char *abs);
/* Walk an image (kind AP_INPUT_IMAGE): a layout's files (blobs pinned by
 * their names), or the tar as one file. verify: check every blob against
 * its manifest and index (AP_ERR_CHECK for a blob that does not match,
 * AP_ERR_INPUT for a missing one) and fill the source: {"kind":
 * "oci-layout"|"oci-archive"|"docker-archive", "digest", "images": [
 * {"manifest_digest", "config_digest", "platform", "ref_name",
 * "repo_tags", "annotations", "env"}]}. */
int ap_image_walk(const ap_mpath *p, int verify, ap_input *in, ap_error *err) AP_WUR;

/* ---- globs (glob.c) ---- */

/* fnmatch(3) glob with '**' on a '/'-separated relative path:
 *   - a pattern without '/' matches the file's name at any depth ("*.pth");
 *   - a pattern with '/' matches the whole path ("original/" then "*.pth");
 *   - '**' as a whole segment matches any number of folders ("a/ ** /b",
 *     written without the spaces);
 *   - a trailing '/' matches everything below a folder ("original/").
 * Returns 1 on a match. */
int ap_glob_match(const char *pattern, const char *path);

/* Apply include/exclude: 1 when rel is kept; else 0 and *why is the
 * pattern that left it out ("(not included)" for an include miss). */
int ap_input_filter(const ap_mpath *p, const char *rel, const char **why);

/* The bundle entries the manifest would give (made by build's own plan
 * code, ap_bundle_plan_add_manifest): refused when two inputs give the same
 * entry or an entry is also the folder of another, with build's messages.
 * check runs it so that it refuses what build would. */
int ap_input_entries_check(const ap_manifest *m, ap_error *err) AP_WUR;

/* Warnings (AP-DUPLICATE-WEIGHTS, level warning) when a model's files hold
 * the same weights twice, with the bytes at stake and the exclude line
 * that leaves the copy out. prefer_gguf: the model's runtime reads GGUF
 * (llama.cpp, ollama), so the safetensors are the copy. */
void ap_input_dup_findings(const ap_input *in, const char *subject, const char *path,
                           int prefer_gguf, json_t *findings);

/* Internal to the walkers: add a file (copies strings). */
int ap_input_add(ap_input *in, const char *rel, const char *src, int follow, const char *digest,
                 uint64_t size, ap_error *err) AP_WUR;
int ap_input_skip_add(ap_input *in, const char *rel, const char *pattern, uint64_t size,
                      ap_error *err) AP_WUR;
void ap_input_sort(ap_input *in);

#endif
