/*
 * targets.h - the bodies of the libFuzzer targets (tests/fuzz/fuzz_*.c),
 * shared with the regression replay test (tests/unit/test_fuzz_regressions.c)
 * so that a crash input is replayed through exactly the code that found it.
 *
 * Each function feeds one untrusted input to one parser entry point and
 * returns the parser's ap_status (AP_OK when the input was accepted). They
 * never print, never touch the file system outside a private memfd (for
 * readers that only take a path) or, for stindex, a private folder under
 * /tmp (removed at exit), and release everything they allocate.
 * Inputs larger than AP_FUZZ_MAX_INPUT are ignored (AP_ERR_INPUT).
 */
#ifndef AIRPACK_FUZZ_TARGETS_H
#define AIRPACK_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

#define AP_FUZZ_MAX_INPUT (4u << 20)   /* bytes; larger inputs are skipped */

typedef int (*ap_fuzz_fn)(const uint8_t *data, size_t len);

typedef struct ap_fuzz_target {
    const char *name;                  /* "manifest" for fuzz_manifest */
    ap_fuzz_fn fn;
} ap_fuzz_target;

/* Every target, terminated by {NULL, NULL}. */
extern const ap_fuzz_target ap_fuzz_targets[];

int ap_fuzz_manifest(const uint8_t *data, size_t len);     /* ap_manifest_parse + to_json */
int ap_fuzz_policy(const uint8_t *data, size_t len);       /* ap_policy_parse + eval */
int ap_fuzz_waivers(const uint8_t *data, size_t len);      /* ap_waivers_parse + apply */
int ap_fuzz_gguf(const uint8_t *data, size_t len);         /* ap_gguf_read (memfd) */
int ap_fuzz_safetensors(const uint8_t *data, size_t len);  /* ap_safetensors_read (memfd) */
int ap_fuzz_hfconfig(const uint8_t *data, size_t len);     /* ap_hfconfig_read (memfd) */
int ap_fuzz_stindex(const uint8_t *data, size_t len);      /* ap_safetensors_read_index (tmp folder) */
int ap_fuzz_sums(const uint8_t *data, size_t len);         /* ap_sums_load (memfd) */
int ap_fuzz_ollama(const uint8_t *data, size_t len);       /* ap_ollama_manifest_parse */
int ap_fuzz_oci(const uint8_t *data, size_t len);          /* ap_oci_parse, ap_docker_manifest_parse */
int ap_fuzz_gpus(const uint8_t *data, size_t len);         /* ap_gpu_catalog_parse */
int ap_fuzz_trust(const uint8_t *data, size_t len);        /* ap_trust_parse + checks, edits */
int ap_fuzz_launch(const uint8_t *data, size_t len);       /* ap_lock_parse + units, layouts, contradictions */
int ap_fuzz_minisign(const uint8_t *data, size_t len);     /* public key, signature, secret key */
int ap_fuzz_lock(const uint8_t *data, size_t len);         /* ap_lock_parse */
int ap_fuzz_parts(const uint8_t *data, size_t len);        /* ap_parts_parse */
int ap_fuzz_bundle(const uint8_t *data, size_t len);       /* ap_bundle_verify_fd, fixed key */
int ap_fuzz_preflight(const uint8_t *data, size_t len);    /* ap_preflight_check, fixed host */
int ap_fuzz_registry(const uint8_t *data, size_t len);     /* src/registry/ index and manifest parsers */

/* The target named name ("gguf"), or NULL. */
ap_fuzz_fn ap_fuzz_find(const char *name);

/* The public key fuzz_bundle trusts (tests/fuzz/fuzz-test.pub). */
extern const char ap_fuzz_trusted_pub[];

#endif
