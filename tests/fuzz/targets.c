/*
 * targets.c - the bodies of the libFuzzer targets, shared by the fuzzers
 * (tests/fuzz/fuzz_*.c) and the regression replay test
 * (tests/unit/test_fuzz_regressions.c, which includes this file).
 *
 * Readers that only take a path (model files, secret keys, bundles by fd)
 * get the input through one private memfd per process, rewritten for each
 * input, named by its /proc/self/fd path: nothing is written to disk.
 */
#include "targets.h"

#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle_read.h"
#include "gpus.h"
#include "error.h"
#include "lock.h"
#include "registry/oci.h"
#include "parts.h"
#include "preflight/preflight.h"
#include "runtime/launch.h"
#include "site/layout.h"
#include "site/units.h"
#include "manifest.h"
#include "model/model.h"
#include "pins.h"
#include "policy.h"
#include "source/ollama.h"
#include "source/oci.h"
#include "sign.h"
#include "trust/trust.h"
#include "util.h"
#include "waiver.h"

/* The key fuzz_bundle trusts; its secret half (tests/fuzz/fuzz-test.key,
 * unencrypted, for tests only) signs the bundle seeds (mkfuzzseeds). */
const char ap_fuzz_trusted_pub[] =
    "untrusted comment: minisign public key F3CC6C05EBDA0FB7\n"
    "RWS3D9rrBWzM8z8WEO4QTci49VdEm1HFo8xiQkJjdqhGIYrbohJbRKTt\n";

/* A small analysis document the policy target evaluates packs over. */
static const char fuzz_analysis[] =
    "{\"tool\":{\"name\":\"airpack\",\"version\":\"0.1.0\"},"
    "\"manifest_file\":\"m.yaml\","
    "\"manifest\":{\"apiVersion\":\"airpack/v1\",\"kind\":\"Deployment\","
    " \"metadata\":{\"name\":\"chat\",\"version\":\"1.0.0\",\"sequence\":5,\"owner\":\"ops@example.eu\"},"
    " \"target\":{\"site\":\"fra-1\",\"region\":\"eu-central\",\"gpu\":{\"model\":\"L40S\",\"count\":2}},"
    " \"models\":[{\"name\":\"llama\",\"path\":\"models/llama.gguf\",\"sha256\":\"" 
    "0000000000000000000000000000000000000000000000000000000000000000\","
    "  \"license\":\"Apache-2.0\",\"origin\":{\"publisher\":\"Meta\",\"jurisdiction\":\"US\"},"
    "  \"serve\":{\"runtime\":\"vllm\",\"context\":8192,\"concurrency\":4},"
    "  \"facts\":{\"format\":\"gguf\",\"parameters\":8030261248,\"architecture\":\"llama\",\"layers\":32}},"
    "  {\"name\":\"qwen\",\"path\":\"models/qwen\",\"license\":null,\"origin\":{\"jurisdiction\":\"CN\"}}],"
    " \"runtimes\":[{\"name\":\"vllm\",\"kind\":\"vllm\",\"version\":\"0.6.3\",\"license\":\"Apache-2.0\","
    "  \"env\":{\"HF_HUB_OFFLINE\":\"1\"},\"listen\":\"127.0.0.1:8000\",\"args\":[\"--x\"]}],"
    " \"files\":[{\"path\":\"config/a.yaml\",\"target\":\"etc/a.yaml\"}],\"policies\":[]},"
    "\"pins\":[{\"subject\":\"models[0]\",\"path\":\"models/llama.gguf\",\"status\":\"ok\"},"
    " {\"subject\":\"models[1]\",\"path\":\"models/qwen\",\"status\":\"unpinned\"}],"
    "\"plan\":{\"fits\":false,\"gpus\":[{\"index\":0,\"used_gib\":50.5,\"usable_gib\":43.2}]},"
    "\"policies\":[],\"findings\":[],"
    "\"summary\":{\"errors\":0,\"warnings\":0,\"notes\":0,\"waived\":0,\"passed\":true}}";

static const char fuzz_findings[] =
    "[{\"rule\":\"EU-MODEL-JURISDICTION\",\"level\":\"error\",\"message\":\"m\","
    "\"subject\":\"models[0]\",\"subject_name\":\"llama\",\"path\":\"models[0].origin\","
    "\"controls\":[],\"pack\":\"eu\",\"title\":\"t\",\"waived\":false},"
    "{\"rule\":\"AP-PLAN-FIT\",\"level\":\"warning\",\"message\":\"m\",\"subject\":\"models[1]\","
    "\"controls\":[\"SI-7\"],\"pack\":\"airpack\",\"title\":\"t\",\"waived\":false}]";

/* libsodium must be initialised before any sign.c call (main.c does it
 * for the CLI); sodium_init() is cheap once done. */
static int fuzz_init(void)
{
    static int done;
    if (!done && sodium_init() < 0)
        return -1;
    done = 1;
    return 0;
}

/* ---- the memfd for path-only readers ---- */

static int fuzz_fd = -1;
static char fuzz_path[64];

/* Put data into the private memfd; returns its path or NULL. */
static const char *fuzz_file(const uint8_t *data, size_t len)
{
    size_t off = 0;
    if (fuzz_fd < 0) {
        fuzz_fd = memfd_create("airpack-fuzz", MFD_CLOEXEC);
        if (fuzz_fd < 0)
            return NULL;
        snprintf(fuzz_path, sizeof fuzz_path, "/proc/self/fd/%d", fuzz_fd);
    }
    if (ftruncate(fuzz_fd, 0) != 0)
        return NULL;
    while (off < len) {
        ssize_t w = pwrite(fuzz_fd, data + off, len - off, (off_t)off);
        if (w <= 0)
            return NULL;
        off += (size_t)w;
    }
    if (lseek(fuzz_fd, 0, SEEK_SET) != 0)
        return NULL;
    return fuzz_path;
}

/* ---- targets ---- */

int ap_fuzz_manifest(const uint8_t *data, size_t len)
{
    ap_manifest_opts opts = {.allow_outside_paths = 0, .skip_exists = 1};
    ap_manifest *m = NULL;
    ap_error err;
    json_t *j;
    ap_loc loc;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    rc = ap_manifest_parse("fuzz.yaml", "/nonexistent-airpack-fuzz", data, len, &opts, &m, &err);
    if (rc == AP_OK) {
        j = ap_manifest_to_json(m);
        json_decref(j);
        (void)ap_manifest_locate(m, "models[0].serve.context", &loc);
        (void)ap_manifest_locate(m, "runtimes[3].env", &loc);
        for (size_t i = 0; i < m->n_models; i++)
            (void)ap_manifest_model_runtime(m, &m->models[i]);
    }
    ap_manifest_free(m);
    return rc;
}

int ap_fuzz_policy(const uint8_t *data, size_t len)
{
    ap_policy *p = NULL;
    ap_error err;
    json_t *analysis = NULL, *findings = NULL, *j;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    rc = ap_policy_parse("fuzz-policy.yaml", data, len, &p, &err);
    if (rc != AP_OK)
        goto out;
    j = ap_policy_to_json(p);
    json_decref(j);
    analysis = json_loads(fuzz_analysis, 0, NULL);
    findings = json_array();
    if (analysis && findings && ap_policy_eval(p, analysis, findings, &err) == AP_OK) {
        j = ap_findings_summary(findings);
        json_decref(j);
    }
out:
    json_decref(analysis);
    json_decref(findings);
    ap_policy_free(p);
    return rc;
}

int ap_fuzz_waivers(const uint8_t *data, size_t len)
{
    ap_waivers *w = NULL;
    ap_error err;
    json_t *findings = NULL;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    rc = ap_waivers_parse("fuzz-waivers.yaml", data, len, &w, &err);
    if (rc != AP_OK)
        goto out;
    (void)ap_waivers_count(w);
    findings = json_loads(fuzz_findings, 0, NULL);
    if (findings && ap_waivers_apply(w, findings, "2026-06-01", &err) != AP_OK) {
        /* refused: nothing more to exercise */
    }
out:
    json_decref(findings);
    ap_waivers_free(w);
    return rc;
}

typedef int (*model_reader)(const char *path, ap_model_facts *f, ap_error *err);

/* fuzz_gguf's input is a GGUF header: the file is the input followed by a
 * sparse hole of zeros of this many bytes standing for the tensor data
 * (so seeds can be cut after the header and stay small). A tensor table
 * reaching past the hole is still refused as a truncated file. The hole is
 * small on purpose: a header whose metadata runs on into the data section
 * is parsed for as many bytes as the file has (linear, but seconds per GiB),
 * which a large hole turns into fuzzer timeouts. */
#define FUZZ_GGUF_HOLE (UINT64_C(4) << 20)

static int fuzz_model(const uint8_t *data, size_t len, model_reader rd, uint64_t hole)
{
    ap_model_facts *f = NULL;
    ap_error err;
    const char *path;
    json_t *j;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    if (!(path = fuzz_file(data, len)))
        return AP_ERR_IO;
    if (hole && ftruncate(fuzz_fd, (off_t)(len + hole)) != 0)
        return AP_ERR_IO;
    if (!(f = ap_model_facts_new(path)))
        return AP_ERR_NOMEM;
    rc = rd(path, f, &err);
    if (rc == AP_OK) {
        j = ap_model_facts_to_json(f);
        json_decref(j);
    }
    ap_model_facts_free(f);
    return rc;
}

int ap_fuzz_gguf(const uint8_t *data, size_t len)
{
    return fuzz_model(data, len, ap_gguf_read, FUZZ_GGUF_HOLE);
}

int ap_fuzz_safetensors(const uint8_t *data, size_t len)
{
    return fuzz_model(data, len, ap_safetensors_read, 0);
}

int ap_fuzz_hfconfig(const uint8_t *data, size_t len)
{
    return fuzz_model(data, len, ap_hfconfig_read, 0);
}

/* ---- a private folder for the sharded safetensors index ---- */

/* Two small shards the index may name; tensors a, b and c. */
static const char *const shard_name[2] = {"model-00001-of-00002.safetensors",
                                          "model-00002-of-00002.safetensors"};
static const char *const shard_hdr[2] = {
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
    "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}",
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"c\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}"};
static const size_t shard_data[2] = {16, 2};

static char fuzz_dir[64];
static char fuzz_index[128];

static void fuzz_dir_cleanup(void)
{
    char p[256];
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", fuzz_dir, shard_name[i]);
        unlink(p);
    }
    unlink(fuzz_index);
    rmdir(fuzz_dir);
}

/* Make the folder with its two shards once; returns 0 when ready. */
static int fuzz_dir_init(void)
{
    static int state; /* 0 not yet, 1 ready, -1 failed */
    if (state)
        return state > 0 ? 0 : -1;
    state = -1;
    snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/airpack-fuzz-XXXXXX");
    if (!mkdtemp(fuzz_dir))
        return -1;
    snprintf(fuzz_index, sizeof fuzz_index, "%s/model.safetensors.index.json", fuzz_dir);
    atexit(fuzz_dir_cleanup);
    for (int i = 0; i < 2; i++) {
        char p[256];
        uint8_t buf[512] = {0};
        size_t hl = strlen(shard_hdr[i]);
        FILE *f;
        for (int k = 0; k < 8; k++)
            buf[k] = (uint8_t)((uint64_t)hl >> (8 * k));
        memcpy(buf + 8, shard_hdr[i], hl);
        snprintf(p, sizeof p, "%s/%s", fuzz_dir, shard_name[i]);
        if (!(f = fopen(p, "wbe")))
            return -1;
        if (fwrite(buf, 1, 8 + hl + shard_data[i], f) != 8 + hl + shard_data[i]) {
            fclose(f);
            return -1;
        }
        if (fclose(f) != 0)
            return -1;
    }
    state = 1;
    return 0;
}

int ap_fuzz_stindex(const uint8_t *data, size_t len)
{
    ap_model_facts *f = NULL;
    ap_error err;
    FILE *fp;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0 || fuzz_dir_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    if (!(fp = fopen(fuzz_index, "wbe")))
        return AP_ERR_IO;
    if (fwrite(data, 1, len, fp) != len) {
        fclose(fp);
        return AP_ERR_IO;
    }
    if (fclose(fp) != 0)
        return AP_ERR_IO;
    if (!(f = ap_model_facts_new(fuzz_dir)))
        return AP_ERR_NOMEM;
    rc = ap_safetensors_read_index(fuzz_index, f, &err);
    ap_model_facts_free(f);
    return rc;
}

int ap_fuzz_sums(const uint8_t *data, size_t len)
{
    ap_sums sums;
    ap_error err;
    const char *path;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    if (!(path = fuzz_file(data, len)))
        return AP_ERR_IO;
    memset(&sums, 0, sizeof sums);
    rc = ap_sums_load(path, &sums, &err);
    ap_sums_release(&sums);
    return rc;
}

int ap_fuzz_ollama(const uint8_t *data, size_t len)
{
    ap_ollama_manifest m;
    ap_error err;
    char name[128];
    int rc;
    if (len > AP_FUZZ_MAX_INPUT)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    rc = ap_ollama_manifest_parse("fuzz", data, len, &m, &err);
    for (size_t i = 0; rc == AP_OK && i < m.n; i++)
        (void)ap_ollama_layer_name(&m.layers[i], name, sizeof name);
    if (rc == AP_OK) {
        (void)ap_license_from_text((const char *)data, len);
        ap_ollama_manifest_release(&m);
    }
    return rc;
}

int ap_fuzz_oci(const uint8_t *data, size_t len)
{
    ap_oci_doc doc;
    ap_docker_image *im = NULL;
    size_t n = 0;
    ap_error err;
    int rc, rc2;
    if (len > AP_FUZZ_MAX_INPUT)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    rc = ap_oci_parse("fuzz", data, len, &doc, &err);
    if (rc == AP_OK)
        ap_oci_doc_release(&doc);
    rc2 = ap_docker_manifest_parse("fuzz", data, len, &im, &n, &err);
    if (rc2 == AP_OK)
        ap_docker_images_free(im, n);
    return rc == AP_OK ? rc : rc2;
}

int ap_fuzz_gpus(const uint8_t *data, size_t len)
{
    ap_gpu_catalog *c = NULL;
    ap_error err;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    rc = ap_gpu_catalog_parse("fuzz-gpus.yaml", data, len, &c, &err);
    if (rc == AP_OK) {
        (void)ap_gpu_find(c, "nvidia-l4");
        (void)ap_gpu_suggest(c, "nvidia-l5");
    }
    ap_gpu_catalog_free(c);
    return rc;
}

int ap_fuzz_minisign(const uint8_t *data, size_t len)
{
    static const char msg[] = "airpack fuzz message";
    ap_pubkey pk, trusted;
    ap_signature sig;
    ap_keyring kr = {&trusted, 1};
    const ap_pubkey *signer = NULL;
    ap_seckey *sk = NULL;
    ap_error err;
    const char *path;
    char hex[17];
    int rc, best = AP_ERR_INPUT;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    /* A public key file. */
    rc = ap_pubkey_parse("fuzz.pub", (const char *)data, len, &pk, &err);
    if (rc == AP_OK) {
        ap_keyid_hex(pk.keyid, hex);
        best = AP_OK;
    }
    /* A signature file, checked against the trusted key and the one it names. */
    rc = ap_signature_parse("fuzz.minisig", (const char *)data, len, &sig, &err);
    if (rc == AP_OK) {
        best = AP_OK;
        if (ap_pubkey_parse("trusted", ap_fuzz_trusted_pub, strlen(ap_fuzz_trusted_pub), &trusted,
                            &err) == AP_OK)
            rc = ap_signature_verify(&sig, &kr, msg, sizeof msg - 1, &signer, &err);
    }
    /* A secret key file (never decrypted: no password, so no scrypt). */
    if ((path = fuzz_file(data, len)) != NULL) {
        (void)ap_seckey_file_encrypted(path, &err);
        rc = ap_seckey_load(path, NULL, &sk, &err);
        if (rc == AP_OK) {
            uint8_t id[AP_KEYID_LEN];
            ap_seckey_keyid(sk, id);
            best = AP_OK;
        }
        ap_seckey_free(sk);
    }
    return best;
}

/* The parts index: parse; what parses must dump and parse back the same. */
int ap_fuzz_parts(const uint8_t *data, size_t len)
{
    ap_parts *p = NULL, *q = NULL;
    ap_error err;
    char *buf = NULL;
    size_t blen = 0;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    rc = ap_parts_parse("fuzz.parts", data, len, &p, &err);
    if (rc == AP_OK) {
        if (ap_parts_dump(p, &buf, &blen, &err) != AP_OK ||
            ap_parts_parse("fuzz.parts", buf, blen, &q, &err) != AP_OK || q->n != p->n ||
            q->size != p->size)
            abort();
    }
    free(buf);
    ap_parts_free(q);
    ap_parts_free(p);
    return rc;
}

int ap_fuzz_lock(const uint8_t *data, size_t len)
{
    ap_lock *lock = NULL;
    ap_error err;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    rc = ap_lock_parse("fuzz.lock.json", data, len, &lock, &err);
    if (rc == AP_OK) {
        for (size_t i = 0; i < lock->n_artifacts; i++)
            (void)ap_role_name(lock->artifacts[i].role);
    }
    ap_lock_free(lock);
    return rc;
}

/* A registry's index or manifest (src/registry/oci.c): the top-level
 * parser, the bundle-manifest parser and its check against a fixed lock,
 * the ModelPack check, and the input as an oci:// reference. */
int ap_fuzz_registry(const uint8_t *data, size_t len)
{
    static char p0[] = "SHA256SUMS", p1[] = "payload/models/m/a.gguf",
                p2[] = "payload/models/m/config.json", p3[] = "payload/files/x";
    ap_artifact arts[4] = {
        {.path = p0, .size = 10, .sha256 = {0}, .mode = 0644, .role = AP_ROLE_CHECKSUMS},
        {.path = p1, .size = 1000, .sha256 = {1}, .mode = 0644, .role = AP_ROLE_MODEL},
        {.path = p2, .size = 20, .sha256 = {2}, .mode = 0644, .role = AP_ROLE_MODEL},
        {.path = p3, .size = 0, .sha256 = {3}, .mode = 0755, .role = AP_ROLE_FILE},
    };
    static char name[] = "fuzz", ver[] = "1", created[] = "2000-01-01T00:00:00Z";
    ap_lock lock;
    ap_oci_top top;
    ap_oci_bundle_manifest bm;
    ap_oci_ref ref;
    ap_error err;
    int rc, ok;
    char *s;

    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    memset(&lock, 0, sizeof lock);
    lock.name = name;
    lock.version = ver;
    lock.created = created;
    lock.artifacts = arts;
    lock.n_artifacts = 4;
    lock.total_bytes = 1030;
    ap_error_clear(&err);
    /* AP_OK when either parser accepted the document */
    rc = ap_oci_top_parse("fuzz.json", data, len, &top, &err);
    ok = rc == AP_OK;
    if (rc == AP_OK) {
        for (size_t i = 0; i < top.n_models; i++)
            if (ap_oci_model_check("fuzz.json", data, len, top.model_names[i], &lock, &err))
                ap_error_clear(&err);
        ap_oci_top_release(&top);
    }
    if (ap_oci_model_check("fuzz.json", data, len, "m", &lock, &err))
        ap_error_clear(&err);
    rc = ap_oci_bundle_manifest_parse("fuzz.json", data, len, &bm, &err);
    if (rc == AP_OK) {
        ok = 1;
        if (ap_oci_bundle_check("fuzz.json", &bm, &lock, &err))
            ap_error_clear(&err);
        ap_oci_bundle_manifest_release(&bm);
    }
    if (len < 4096 && (s = malloc(len + 1))) {
        memcpy(s, data, len);
        s[len] = 0;
        if (ap_oci_ref_parse(s, &ref, &err))
            ap_error_clear(&err);
        free(s);
    }
    return ok ? AP_OK : rc;
}

/* What install and `airpack units` derive from a signed lock: the launch
 * specs checked by the lock parser, then the service units, the JSON for
 * starting them, the model layouts and the contradiction rule. */
int ap_fuzz_launch(const uint8_t *data, size_t len)
{
    ap_lock *lock = NULL;
    ap_error err;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    rc = ap_lock_parse("fuzz.lock.json", data, len, &lock, &err);
    if (rc == AP_OK) {
        ap_unit_files uf;
        ap_layout lay;
        const json_t *launch = json_object_get(lock->json, "launch"), *s;
        json_t *j;
        size_t i;
        if (ap_units_render("/opt/llm", lock->name, "1.0.0+1", lock->json, &uf, &err) == AP_OK)
            ap_unit_files_release(&uf);
        json_decref(ap_units_specs("/opt/llm", lock->name, lock->json));
        if (ap_layout_render(lock->json, &lay, &err) == AP_OK)
            ap_layout_release(&lay);
        j = ap_launch_contradictions(json_object_get(json_object_get(lock->json, "analysis"),
                                                     "manifest"), launch ? launch : json_null());
        json_decref(j);
        json_array_foreach(launch, i, s) {
            char *line = ap_launch_command_line(s);
            free(line);
        }
    }
    ap_lock_free(lock);
    return rc;
}

/* One verify pass over the memfd. */
static int fuzz_verify(const char *path, const ap_bundle_opts *opts)
{
    ap_bundle_result res;
    ap_error err;
    json_t *j;
    int rc;
    ap_error_clear(&err);
    if (lseek(fuzz_fd, 0, SEEK_SET) != 0)
        return AP_ERR_IO;
    rc = ap_bundle_verify_fd(fuzz_fd, path, opts, &res, &err);
    j = ap_bundle_result_json("fuzz.tar", &res, &err);
    json_decref(j);
    ap_bundle_result_release(&res);
    return rc;
}

int ap_fuzz_bundle(const uint8_t *data, size_t len)
{
    ap_pubkey trusted;
    ap_keyring kr = {&trusted, 1};
    ap_bundle_opts opts;
    ap_error err;
    const char *path;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    if (ap_pubkey_parse("fuzz-test.pub", ap_fuzz_trusted_pub, strlen(ap_fuzz_trusted_pub), &trusted,
                        &err) != AP_OK)
        return AP_ERR_INTERNAL;
    if (!(path = fuzz_file(data, len)))
        return AP_ERR_IO;
    /* As `airpack verify --key fuzz-test.pub` does: one thread (deterministic). */
    memset(&opts, 0, sizeof opts);
    opts.keys = &kr;
    opts.threads = 1;
    rc = fuzz_verify(path, &opts);
    /* As `airpack audit` without keys does: reaches the lock parser and the
     * artifact checks for any input, whatever its signature. */
    memset(&opts, 0, sizeof opts);
    opts.allow_unsigned = 1;
    opts.keep_going = 1;
    opts.threads = 1;
    (void)fuzz_verify(path, &opts);
    return rc;
}

/* A lock document (as a verified lock carries it) against a fixed host of
 * two 24 GiB GPUs: reads the manifest, facts and plan back and re-plans. */
int ap_fuzz_preflight(const uint8_t *data, size_t len)
{
    ap_hostgpu g[2];
    ap_hostgpus host;
    ap_preflight_opts o = {0};
    json_t *doc, *rep = NULL;
    ap_error err;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    doc = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    if (!doc)
        return AP_ERR_INPUT;
    memset(&host, 0, sizeof host);
    memset(g, 0, sizeof g);
    for (unsigned i = 0; i < 2; i++) {
        g[i].index = i;
        snprintf(g[i].name, sizeof g[i].name, "NVIDIA Fuzz");
        g[i].total_bytes = 24ull << 30;
        g[i].free_bytes = 20ull << 30;
        g[i].cc_major = 8;
        g[i].cc_minor = 9;
    }
    host.available = 1;
    host.cuda_version = 12040;
    snprintf(host.driver_version, sizeof host.driver_version, "550.54.14");
    host.gpus = g;
    host.n = 2;
    o.credit_plan = json_object_get(json_object_get(doc, "analysis"), "plan");
    rc = ap_preflight_check(doc, &host, &o, &rep, &err);
    if (rc == AP_OK)
        (void)ap_preflight_verdict(rep);
    json_decref(rep);
    json_decref(doc);
    return rc;
}

int ap_fuzz_trust(const uint8_t *data, size_t len)
{
    static const char msg[] = "airpack fuzz lock";
    ap_trust *t = NULL;
    ap_error err;
    size_t found = 0;
    char desc[256], *dump = NULL;
    size_t dlen = 0;
    int rc;
    if (len > AP_FUZZ_MAX_INPUT || fuzz_init() != 0)
        return AP_ERR_INPUT;
    ap_error_clear(&err);
    rc = ap_trust_parse("fuzz-trust.json", (const char *)data, len, &t, &err);
    if (rc != AP_OK)
        return rc;
    /* every signature is checked against the keys the file names */
    json_decref(ap_trust_describe(t));
    {
        ap_trust *apply = NULL;
        int r1 = ap_trust_check_self(t, &err);
        int r2 = ap_trust_count_sigs(t, AP_TRUST_ROLE_BUNDLES, t->sigs, t->n_sigs, msg,
                                     sizeof msg - 1, &found, desc, sizeof desc, &err);
        int r3 = ap_trust_check_rotation(t, t, &err);
        int r4 = ap_trust_carried(t, "fuzz", (const char *)data, len, t->sigs, t->n_sigs, msg,
                                  sizeof msg - 1, &apply, &err);
        (void)r1, (void)r2, (void)r3, (void)r4;
        ap_trust_free(apply);
    }
    /* an edit round trip re-parses the document */
    if (ap_trust_revoke(t, "0123456789ABCDEF", &err) == AP_OK &&
        ap_trust_dump(t, &dump, &dlen, &err) == AP_OK) {
        ap_trust *u = NULL;
        if (ap_trust_parse("dump", dump, dlen, &u, &err) != AP_OK)
            __builtin_trap(); /* what airpack writes, airpack reads */
        ap_trust_free(u);
    }
    free(dump);
    ap_trust_free(t);
    return AP_OK;
}

const ap_fuzz_target ap_fuzz_targets[] = {
    {"manifest", ap_fuzz_manifest},
    {"policy", ap_fuzz_policy},
    {"waivers", ap_fuzz_waivers},
    {"gguf", ap_fuzz_gguf},
    {"safetensors", ap_fuzz_safetensors},
    {"hfconfig", ap_fuzz_hfconfig},
    {"stindex", ap_fuzz_stindex},
    {"sums", ap_fuzz_sums},
    {"ollama", ap_fuzz_ollama},
    {"oci", ap_fuzz_oci},
    {"gpus", ap_fuzz_gpus},
    {"minisign", ap_fuzz_minisign},
    {"lock", ap_fuzz_lock},
    {"parts", ap_fuzz_parts},
    {"bundle", ap_fuzz_bundle},
    {"preflight", ap_fuzz_preflight},
    {"registry", ap_fuzz_registry},
    {"trust", ap_fuzz_trust},
    {"launch", ap_fuzz_launch},
    {NULL, NULL},
};

ap_fuzz_fn ap_fuzz_find(const char *name)
{
    for (const ap_fuzz_target *t = ap_fuzz_targets; t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t->fn;
    return NULL;
}
