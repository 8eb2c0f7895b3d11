/*
 * manifest.c - manifest v1: schema checks and typed structures
 * (see manifest.h and docs/manifest.md).
 *
 * The YAML tree comes from yamltree (bounded, no aliases, unique keys).
 * This file walks it once with an explicit schema per mapping; the first
 * error stops the walk and names file, line and column.
 */
#include "manifest.h"

#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "util.h"
#include "source/source.h"

#define NAME_MAX_LEN 128
#define VERSION_MAX_LEN 64

struct ctx {
    ap_manifest *m;
    const ap_ydoc *doc;
    const ap_manifest_opts *opts;
    char *real_dir;     /* realpath of the manifest folder */
    ap_error *err;
};

static const char *const top_keys[] = {"apiVersion", "kind", "metadata", "target", "models",
                                       "runtimes", "files", "policies", NULL};
static const char *const metadata_keys[] = {"name", "version", "sequence", "description",
                                            "owner", "expires", NULL};
static const char *const target_keys[] = {"site", "region", "gpu", "memory_utilization",
                                           "requires", NULL};
static const char *const requires_keys[] = {"driver", "cuda", "compute_capability", NULL};
static const char *const gpu_keys[] = {"model", "count", "memory_gib", NULL};
static const char *const model_keys[] = {"name", "path", "sha256", "sha256sums", "format",
                                         "license", "origin", "parameters", "quantization",
                                         "serve", "include", "exclude", "hf_cache", NULL};
static const char *const origin_keys[] = {"publisher", "jurisdiction", "source", NULL};
static const char *const serve_keys[] = {"runtime", "context", "concurrency", "kv_cache_dtype",
                                         "tensor_parallel", "overhead_gib", "activation_gib",
                                         "max_batched_tokens", "enforce_eager", "pipeline_parallel",
                                         "rope_scaling", NULL};
static const char *const rope_keys[] = {"type", "factor", "original_context", NULL};
static const char *const rope_types[] = {"yarn", "linear", "dynamic", NULL};
static const char *const runtime_keys[] = {"name", "kind", "version", "path", "sha256",
                                           "sha256sums", "license", "env", "listen", "args",
                                           "program", "image", "user", "include", "exclude",
                                           "health", NULL};
static const char *const file_keys[] = {"path", "target", "sha256", "sha256sums", "include",
                                        "exclude", NULL};

static const char *const runtime_kinds[] = {"vllm", "llama.cpp", "ollama", "tgi", "triton",
                                            "sglang", "other", NULL};
static const char *const formats[] = {"auto", "gguf", "safetensors", NULL};
static const char *const kv_dtypes[] = {"auto", "f16", "bf16", "fp8", "q8_0", "q4_0", NULL};

const char *ap_runtime_kind_name(ap_runtime_kind k)
{
    return k < AP_RT_UNKNOWN ? runtime_kinds[k] : "unknown";
}

const char *ap_kv_dtype_name(ap_kv_dtype d)
{
    return (size_t)d < AP_ARRAY_LEN(kv_dtypes) - 1 ? kv_dtypes[d] : "auto";
}

/* ---- scalar helpers ---------------------------------------------------- */

static int dup_str(struct ctx *c, const ap_ynode *n, const char *key, char **out)
{
    const char *s;
    int rc = ap_y_string(c->doc, n, key, &s, c->err);
    if (rc)
        return rc;
    if (!ap_utf8_valid(s, n->len))
        return ap_y_error(c->doc, n, c->err, "'%s' is not valid UTF-8", key);
    *out = strdup(s);
    if (!*out)
        return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
    return AP_OK;
}

/* Optional string: absent or null leaves *out NULL. */
static int opt_str(struct ctx *c, const ap_ynode *map, const char *key, char **out)
{
    const ap_ynode *n = ap_ymap_get(map, key);
    if (!n || ap_y_is_null(n))
        return AP_OK;
    return dup_str(c, n, key, out);
}

static int pick(struct ctx *c, const ap_ynode *n, const char *key, const char *const *choices,
                int *out)
{
    const char *s, *hint;
    int rc = ap_y_string(c->doc, n, key, &s, c->err);
    if (rc)
        return rc;
    for (int i = 0; choices[i]; i++) {
        if (strcmp(s, choices[i]) == 0) {
            *out = i;
            return AP_OK;
        }
    }
    hint = ap_suggest(s, choices);
    if (hint)
        return ap_y_error(c->doc, n, c->err, "unknown %s '%s' (did you mean '%s'?)", key, s, hint);
    return ap_y_error(c->doc, n, c->err, "unknown %s '%s'", key, s);
}

/* A Hugging Face repository id "org/name": [A-Za-z0-9._-], one '/', at most 96 bytes. */
static int hf_repo_ok(const char *s)
{
    const char *slash = strchr(s, '/');
    size_t n = strlen(s);
    if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/') || n > 96 ||
        strstr(s, "..") || s[0] == '.' || slash[1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/", s[i]))
            return 0;
    return 1;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
              ch == '-'))
            return 0;
    }
    return 1;
}

static int name_field(struct ctx *c, const ap_ynode *map, const char *what, char **out)
{
    ap_ynode *n;
    int rc = ap_y_require(c->doc, map, "name", what, &n, c->err);
    if (rc)
        return rc;
    if ((rc = dup_str(c, n, "name", out)))
        return rc;
    if (!name_ok(*out))
        return ap_y_error(c->doc, n, c->err,
                          "invalid name '%s': use [a-z0-9][a-z0-9._-]*, at most %d characters",
                          *out, NAME_MAX_LEN);
    return AP_OK;
}

static int version_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VERSION_MAX_LEN)
        return 0;
    if (!((s[0] >= '0' && s[0] <= '9') || (s[0] >= 'a' && s[0] <= 'z') ||
          (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '.' || ch == '-' || ch == '+' || ch == '_' || ch == '~'))
            return 0;
    }
    return 1;
}

static int date_ok(const char *s)
{
    regex_t re;
    int ok;
    if (regcomp(&re, "^[0-9]{4}-[0-1][0-9]-[0-3][0-9](T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]+)?(Z|[+-][0-2][0-9]:[0-5][0-9]))?$",
                REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* ---- paths --------------------------------------------------------------- */

/* Resolve a manifest path: refuse absolute and escaping paths unless
 * allowed, then check that it exists. want_dir: -1 any, 0 file, 1 folder. */
static int resolve_path(struct ctx *c, const ap_ynode *n, const char *key, char **raw, char **abs,
                        int *is_dir, int want_dir)
{
    struct stat st;
    int rc;
    char *real = NULL;

    if ((rc = dup_str(c, n, key, raw)))
        return rc;
    if ((*raw)[0] == '\0')
        return ap_y_error(c->doc, n, c->err, "'%s' must not be empty", key);
    if (strlen(*raw) > 4096)
        return ap_y_error(c->doc, n, c->err, "'%s' is longer than 4096 bytes", key);
    if (ap_source_is_ref(*raw)) {
        /* A store reference (hf://, ollama://): resolved in its store, not
         * under the manifest's folder. */
        int d = 1;
        if (c->opts->skip_exists) {
            if (is_dir)
                *is_dir = 1;
            return (*abs = strdup(*raw)) ? AP_OK
                                          : ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
        }
        if ((rc = ap_source_resolve(*raw, abs, &d, c->err))) {
            char msg[AP_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", c->err->msg);
            return ap_y_error(c->doc, n, c->err, "%s", msg);
        }
        if (is_dir)
            *is_dir = d;
        return AP_OK;
    }
    if ((*raw)[0] == '/') {
        if (!c->opts->allow_outside_paths)
            return ap_y_error(c->doc, n, c->err,
                              "absolute path '%s' is not allowed (paths are relative to the "
                              "manifest's folder; see --allow-outside-paths)",
                              *raw);
        *abs = strdup(*raw);
    } else {
        *abs = ap_path_join(c->m->dir, *raw);
    }
    if (!*abs)
        return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
    /* A trailing slash says "folder". Remove it for display and stat. */
    size_t al = strlen(*abs);
    if (want_dir == -1 && (*raw)[strlen(*raw) - 1] == '/')
        want_dir = 1;
    if (al > 1 && (*abs)[al - 1] == '/')
        (*abs)[al - 1] = '\0';

    if (c->opts->skip_exists) {
        if (is_dir)
            *is_dir = want_dir == 1;
        if (!c->opts->allow_outside_paths) {
            /* lexical check only */
            char *tmp = strdup(*raw), *save = NULL, *tok;
            int depth = 0, bad = 0;
            if (!tmp)
                return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
            for (tok = strtok_r(tmp, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
                if (strcmp(tok, "..") == 0)
                    bad |= --depth < 0;
                else if (strcmp(tok, ".") != 0)
                    depth++;
            }
            free(tmp);
            if (bad)
                return ap_y_error(c->doc, n, c->err,
                                  "path '%s' is outside the manifest's folder (see "
                                  "--allow-outside-paths)",
                                  *raw);
        }
        return AP_OK;
    }
    if (stat(*abs, &st) != 0)
        return ap_y_error(c->doc, n, c->err, "%s '%s' does not exist (looked for '%s')", key,
                          *raw, *abs);
    if (!c->opts->allow_outside_paths) {
        size_t dl = strlen(c->real_dir);
        real = realpath(*abs, NULL);
        if (!real)
            return ap_y_error(c->doc, n, c->err, "cannot resolve path '%s': %s", *raw,
                              strerror(errno));
        if (!(strncmp(real, c->real_dir, dl) == 0 &&
              (real[dl] == '/' || (dl == 1 && c->real_dir[0] == '/')))) {
            rc = ap_y_error(c->doc, n, c->err,
                            "path '%s' is outside the manifest's folder (see "
                            "--allow-outside-paths)",
                            *raw);
            free(real);
            return rc;
        }
        free(real);
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return ap_y_error(c->doc, n, c->err, "%s '%s' is neither a file nor a folder", key, *raw);
    if (want_dir == 0 && S_ISDIR(st.st_mode))
        return ap_y_error(c->doc, n, c->err, "%s '%s' is a folder, not a file", key, *raw);
    if (want_dir == 1 && !S_ISDIR(st.st_mode))
        return ap_y_error(c->doc, n, c->err, "%s '%s' is a file, not a folder", key, *raw);
    if (is_dir)
        *is_dir = S_ISDIR(st.st_mode);
    return AP_OK;
}

/* include / exclude: a list of glob patterns (source/source.h) for a folder. */
static int parse_globs(struct ctx *c, const ap_ynode *map, const char *key, const ap_mpath *p,
                       char ***out, size_t *n)
{
    ap_ynode *l = ap_ymap_get(map, key);
    int rc;
    if (!l || ap_y_is_null(l))
        return AP_OK;
    if ((rc = ap_y_expect(c->doc, l, AP_Y_SEQ, key, c->err)))
        return rc;
    if (l->n > 256)
        return ap_y_error(c->doc, l, c->err, "'%s' lists more than 256 patterns", key);
    if (!c->opts->skip_exists && !p->is_dir)
        return ap_y_error(c->doc, l, c->err,
                          "'%s' selects files of a folder, but '%s' is a single file", key,
                          p->path);
    if (!(*out = calloc(l->n ? l->n : 1, sizeof **out)))
        return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++) {
        char *g;
        if ((rc = dup_str(c, l->items[i], key, &g)))
            return rc;
        (*out)[(*n)++] = g;
        if (!g[0] || strlen(g) > 1024 || g[0] == '/' || strstr(g, "../") || !strcmp(g, ".."))
            return ap_y_error(c->doc, l->items[i], c->err,
                              "'%s' pattern '%s' must be a relative glob of 1 to 1024 bytes "
                              "without '..'",
                              key, g);
    }
    return AP_OK;
}

/* path + sha256 / sha256sums of a model, runtime or file entry. */
static int parse_mpath(struct ctx *c, const ap_ynode *map, const char *what, int required,
                       ap_mpath *p)
{
    ap_ynode *pn = ap_ymap_get(map, "path"), *h = ap_ymap_get(map, "sha256"),
             *hs = ap_ymap_get(map, "sha256sums");
    int rc;

    if (!pn) {
        if (required)
            return ap_y_error(c->doc, map, c->err, "missing required key 'path' in %s", what);
        if (h || hs)
            return ap_y_error(c->doc, h ? h : hs, c->err, "'%s' needs a 'path' to pin",
                              h ? "sha256" : "sha256sums");
        return AP_OK;
    }
    p->loc.line = pn->line;
    p->loc.column = pn->column;
    if ((rc = resolve_path(c, pn, "path", &p->path, &p->abs, &p->is_dir, -1)))
        return rc;
    if (h && hs)
        return ap_y_error(c->doc, hs, c->err, "give either 'sha256' or 'sha256sums', not both");
    if (h) {
        if ((rc = dup_str(c, h, "sha256", &p->sha256)))
            return rc;
        uint8_t digest[32];
        if (!ap_hex_decode(p->sha256, digest, sizeof digest))
            return ap_y_error(c->doc, h, c->err,
                              "'sha256' must be 64 hexadecimal digits, not '%s'", p->sha256);
        for (char *q = p->sha256; *q; q++)
            if (*q >= 'A' && *q <= 'F')
                *q = (char)(*q - 'A' + 'a');
        if (p->is_dir)
            return ap_y_error(c->doc, h, c->err,
                              "'sha256' pins a single file, but '%s' is a folder: use "
                              "'sha256sums' (see 'airpack pin')",
                              p->path);
    }
    if (hs) {
        int d = 0;
        if ((rc = resolve_path(c, hs, "sha256sums", &p->sha256sums, &p->sha256sums_abs, &d, 0)))
            return rc;
    }
    if ((rc = parse_globs(c, map, "include", p, &p->include, &p->n_include)) ||
        (rc = parse_globs(c, map, "exclude", p, &p->exclude, &p->n_exclude)))
        return rc;
    return AP_OK;
}

/* ---- sections ------------------------------------------------------------ */

static int parse_metadata(struct ctx *c, const ap_ynode *root)
{
    ap_ynode *md, *n;
    int rc;
    if ((rc = ap_y_require(c->doc, root, "metadata", "the manifest", &md, c->err)) ||
        (rc = ap_y_expect(c->doc, md, AP_Y_MAP, "metadata", c->err)) ||
        (rc = ap_y_check_keys(c->doc, md, metadata_keys, "metadata", c->err)) ||
        (rc = name_field(c, md, "metadata", &c->m->name)))
        return rc;
    if ((rc = ap_y_require(c->doc, md, "version", "metadata", &n, c->err)) ||
        (rc = dup_str(c, n, "version", &c->m->version)))
        return rc;
    if (!version_ok(c->m->version))
        return ap_y_error(c->doc, n, c->err,
                          "invalid version '%s': use letters, digits and . - + _ ~, starting "
                          "with a letter or digit, at most %d characters",
                          c->m->version, VERSION_MAX_LEN);
    if ((rc = ap_y_require(c->doc, md, "sequence", "metadata", &n, c->err)) ||
        (rc = ap_y_u64(c->doc, n, "sequence", 0, (uint64_t)INT64_MAX, &c->m->sequence, c->err)))
        return rc;
    if ((rc = opt_str(c, md, "description", &c->m->description)) ||
        (rc = opt_str(c, md, "owner", &c->m->owner)) ||
        (rc = opt_str(c, md, "expires", &c->m->expires)))
        return rc;
    if (c->m->expires && !date_ok(c->m->expires))
        return ap_y_error(c->doc, ap_ymap_get(md, "expires"), c->err,
                          "'expires' must be a date (YYYY-MM-DD) or an RFC 3339 time, not '%s'",
                          c->m->expires);
    return AP_OK;
}

/* A version as NVML reports them: 1 to 4 dot-separated numbers ("550",
 * "550.54.14", "12.4", "8.9"). */
static int gpu_version_ok(const char *s)
{
    int parts = 0;
    while (*s) {
        size_t n = 0;
        while (s[n] >= '0' && s[n] <= '9')
            n++;
        if (n == 0 || n > 6 || ++parts > 4)
            return 0;
        s += n;
        if (*s == '.' && s[1])
            s++;
        else if (*s)
            return 0;
    }
    return parts > 0;
}

/* target.requires: the least driver, CUDA driver and compute capability
 * the site's GPUs must have (checked by `airpack preflight`). */
static int parse_requires(struct ctx *c, const ap_ynode *t)
{
    const char *const keys[] = {"driver", "cuda", "compute_capability"};
    char **dst[] = {&c->m->req_driver, &c->m->req_cuda, &c->m->req_compute_capability};
    const ap_ynode *r = ap_ymap_get(t, "requires");
    int rc;
    if (!r || ap_y_is_null(r))
        return AP_OK;
    if ((rc = ap_y_expect(c->doc, r, AP_Y_MAP, "requires", c->err)) ||
        (rc = ap_y_check_keys(c->doc, r, requires_keys, "target.requires", c->err)))
        return rc;
    for (size_t i = 0; i < 3; i++) {
        const ap_ynode *n = ap_ymap_get(r, keys[i]);
        if ((rc = opt_str(c, r, keys[i], dst[i])))
            return rc;
        if (*dst[i] && !gpu_version_ok(*dst[i]))
            return ap_y_error(c->doc, n, c->err,
                              "'%s' must be a version such as %s, not '%s'", keys[i],
                              i == 0 ? "'550.54.14'" : i == 1 ? "'12.4'" : "'8.9'", *dst[i]);
    }
    return AP_OK;
}

static int parse_target(struct ctx *c, const ap_ynode *root)
{
    ap_ynode *t, *g, *n;
    int rc;
    if ((rc = ap_y_require(c->doc, root, "target", "the manifest", &t, c->err)) ||
        (rc = ap_y_expect(c->doc, t, AP_Y_MAP, "target", c->err)) ||
        (rc = ap_y_check_keys(c->doc, t, target_keys, "target", c->err)) ||
        (rc = opt_str(c, t, "site", &c->m->site)) || (rc = opt_str(c, t, "region", &c->m->region)))
        return rc;
    if ((rc = ap_y_require(c->doc, t, "gpu", "target", &g, c->err)) ||
        (rc = ap_y_expect(c->doc, g, AP_Y_MAP, "gpu", c->err)) ||
        (rc = ap_y_check_keys(c->doc, g, gpu_keys, "target.gpu", c->err)) ||
        (rc = opt_str(c, g, "model", &c->m->gpu_model)))
        return rc;
    if ((rc = ap_y_require(c->doc, g, "count", "target.gpu", &n, c->err)) ||
        (rc = ap_y_u64(c->doc, n, "count", 1, 4096, &c->m->gpu_count, c->err)))
        return rc;
    if ((n = ap_ymap_get(g, "memory_gib"))) {
        if ((rc = ap_y_double(c->doc, n, "memory_gib", &c->m->gpu_memory_gib, c->err)))
            return rc;
        if (!(c->m->gpu_memory_gib > 0 && c->m->gpu_memory_gib <= 65536))
            return ap_y_error(c->doc, n, c->err, "'memory_gib' must be above 0 and at most 65536");
    }
    if (!c->m->gpu_model && c->m->gpu_memory_gib <= 0)
        return ap_y_error(c->doc, g, c->err,
                          "target.gpu needs 'model' (a GPU catalogue name) or 'memory_gib'");
    if ((rc = parse_requires(c, t)))
        return rc;
    c->m->memory_utilization = 0.90;
    if ((n = ap_ymap_get(t, "memory_utilization"))) {
        if ((rc = ap_y_double(c->doc, n, "memory_utilization", &c->m->memory_utilization, c->err)))
            return rc;
        if (!(c->m->memory_utilization > 0 && c->m->memory_utilization <= 1))
            return ap_y_error(c->doc, n, c->err,
                              "'memory_utilization' must be above 0 and at most 1, not %s",
                              n->str);
    }
    return AP_OK;
}

static int parse_double_opt(struct ctx *c, const ap_ynode *map, const char *key, double *out)
{
    ap_ynode *n = ap_ymap_get(map, key);
    int rc;
    *out = -1;
    if (!n)
        return AP_OK;
    if ((rc = ap_y_double(c->doc, n, key, out, c->err)))
        return rc;
    if (!(*out >= 0 && *out <= 65536))
        return ap_y_error(c->doc, n, c->err, "'%s' must be between 0 and 65536", key);
    return AP_OK;
}

static int parse_serve(struct ctx *c, const ap_ynode *s, ap_mserve *sv)
{
    ap_ynode *n;
    int rc, k;
    sv->concurrency = 1;
    sv->tensor_parallel = 1;
    sv->pipeline_parallel = 1;
    sv->kv_cache_dtype = AP_KV_AUTO;
    sv->overhead_gib = sv->activation_gib = -1;
    if (!s)
        return AP_OK;
    sv->loc.line = s->line;
    sv->loc.column = s->column;
    if ((rc = ap_y_expect(c->doc, s, AP_Y_MAP, "serve", c->err)) ||
        (rc = ap_y_check_keys(c->doc, s, serve_keys, "serve", c->err)) ||
        (rc = opt_str(c, s, "runtime", &sv->runtime)))
        return rc;
    if ((n = ap_ymap_get(s, "context")) &&
        (rc = ap_y_u64(c->doc, n, "context", 1, 1ull << 32, &sv->context, c->err)))
        return rc;
    if ((n = ap_ymap_get(s, "concurrency")) &&
        (rc = ap_y_u64(c->doc, n, "concurrency", 1, 1u << 20, &sv->concurrency, c->err)))
        return rc;
    if ((n = ap_ymap_get(s, "tensor_parallel")) &&
        (rc = ap_y_u64(c->doc, n, "tensor_parallel", 1, 4096, &sv->tensor_parallel, c->err)))
        return rc;
    if ((n = ap_ymap_get(s, "kv_cache_dtype"))) {
        if ((rc = pick(c, n, "kv_cache_dtype", kv_dtypes, &k)))
            return rc;
        sv->kv_cache_dtype = (ap_kv_dtype)k;
    }
    if ((rc = parse_double_opt(c, s, "overhead_gib", &sv->overhead_gib)) ||
        (rc = parse_double_opt(c, s, "activation_gib", &sv->activation_gib)))
        return rc;
    if ((n = ap_ymap_get(s, "max_batched_tokens")) &&
        (rc = ap_y_u64(c->doc, n, "max_batched_tokens", 1, 1u << 24, &sv->max_batched_tokens, c->err)))
        return rc;
    if ((n = ap_ymap_get(s, "enforce_eager")) &&
        (rc = ap_y_bool(c->doc, n, "enforce_eager", &sv->enforce_eager, c->err)))
        return rc;
    if ((n = ap_ymap_get(s, "pipeline_parallel")) &&
        (rc = ap_y_u64(c->doc, n, "pipeline_parallel", 1, 4096, &sv->pipeline_parallel, c->err)))
        return rc;
    if ((n = ap_ymap_get(s, "rope_scaling"))) {
        ap_ynode *t, *f, *o;
        if ((rc = ap_y_expect(c->doc, n, AP_Y_MAP, "serve.rope_scaling", c->err)) ||
            (rc = ap_y_check_keys(c->doc, n, rope_keys, "serve.rope_scaling", c->err)) ||
            (rc = ap_y_require(c->doc, n, "type", "serve.rope_scaling", &t, c->err)) ||
            (rc = ap_y_require(c->doc, n, "factor", "serve.rope_scaling", &f, c->err)) ||
            (rc = pick(c, t, "type", rope_types, &k)) ||
            (rc = ap_y_double(c->doc, f, "factor", &sv->rope_factor, c->err)))
            return rc;
        if (!(sv->rope_factor > 1 && sv->rope_factor <= 1024))
            return ap_y_error(c->doc, f, c->err, "'factor' must be above 1 and at most 1024");
        if (!(sv->rope_type = strdup(rope_types[k])))
            return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
        if ((o = ap_ymap_get(n, "original_context")) &&
            (rc = ap_y_u64(c->doc, o, "original_context", 1, 1ull << 32, &sv->rope_original_context, c->err)))
            return rc;
    }
    return AP_OK;
}

static int check_list(struct ctx *c, const ap_ynode *n, const char *what)
{
    int rc = ap_y_expect(c->doc, n, AP_Y_SEQ, what, c->err);
    if (rc)
        return rc;
    if (n->n > AP_MANIFEST_MAX_ITEMS)
        return ap_y_error(c->doc, n, c->err, "'%s' has more than %d entries", what,
                          AP_MANIFEST_MAX_ITEMS);
    return AP_OK;
}

static int parse_models(struct ctx *c, const ap_ynode *root)
{
    ap_ynode *list;
    int rc;
    if ((rc = ap_y_require(c->doc, root, "models", "the manifest", &list, c->err)) ||
        (rc = check_list(c, list, "models")))
        return rc;
    if (list->n == 0)
        return ap_y_error(c->doc, list, c->err, "'models' must list at least one model");
    c->m->models = calloc(list->n, sizeof *c->m->models);
    if (!c->m->models)
        return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < list->n; i++) {
        ap_ynode *it = list->items[i], *n, *o;
        ap_mmodel *mm = &c->m->models[i];
        int f;
        c->m->n_models = i + 1;
        mm->loc.line = it->line;
        mm->loc.column = it->column;
        mm->serve.concurrency = mm->serve.tensor_parallel = mm->serve.pipeline_parallel = 1;
        mm->serve.overhead_gib = mm->serve.activation_gib = -1;
        if ((rc = ap_y_expect(c->doc, it, AP_Y_MAP, "models[]", c->err)) ||
            (rc = ap_y_check_keys(c->doc, it, model_keys, "a model", c->err)) ||
            (rc = name_field(c, it, "a model", &mm->name)))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->m->models[j].name, mm->name) == 0)
                return ap_y_error(c->doc, ap_ymap_get(it, "name"), c->err,
                                  "duplicate model name '%s'", mm->name);
        if ((rc = parse_mpath(c, it, "a model", 1, &mm->src)))
            return rc;
        if ((n = ap_ymap_get(it, "format"))) {
            if ((rc = pick(c, n, "format", formats, &f)))
                return rc;
            mm->format = (ap_model_format)f;
        }
        if ((rc = opt_str(c, it, "license", &mm->license)) ||
            (rc = opt_str(c, it, "parameters", &mm->parameters)) ||
            (rc = opt_str(c, it, "quantization", &mm->quantization)) ||
            (rc = opt_str(c, it, "hf_cache", &mm->hf_cache)))
            return rc;
        if (mm->hf_cache && !hf_repo_ok(mm->hf_cache))
            return ap_y_error(c->doc, ap_ymap_get(it, "hf_cache"), c->err,
                              "hf_cache '%s' is not a Hugging Face repository id ('org/name')",
                              mm->hf_cache);
        if ((o = ap_ymap_get(it, "origin"))) {
            if ((rc = ap_y_expect(c->doc, o, AP_Y_MAP, "origin", c->err)) ||
                (rc = ap_y_check_keys(c->doc, o, origin_keys, "origin", c->err)) ||
                (rc = opt_str(c, o, "publisher", &mm->origin_publisher)) ||
                (rc = opt_str(c, o, "jurisdiction", &mm->origin_jurisdiction)) ||
                (rc = opt_str(c, o, "source", &mm->origin_source)))
                return rc;
        }
        if ((rc = parse_serve(c, ap_ymap_get(it, "serve"), &mm->serve)))
            return rc;
    }
    return AP_OK;
}

static int env_key_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* How a runtime starts (docs/runtimes.md): program (relative: inside the
 * runtime's folder; absolute: on the site), image (a container image
 * archive inside the runtime's folder, run with podman), user. */
static int parse_start(struct ctx *c, const ap_ynode *it, ap_mruntime *r)
{
    ap_ynode *pn = ap_ymap_get(it, "program"), *in = ap_ymap_get(it, "image");
    int rc;
    if ((rc = opt_str(c, it, "program", &r->program)) || (rc = opt_str(c, it, "image", &r->image)) ||
        (rc = opt_str(c, it, "user", &r->user)))
        return rc;
    /* a runtime whose path is itself a docker-archive image (podman save,
     * src/source/oci.h) runs as that image, as if 'image' named it */
    if (!r->image && !in && r->src.path && !r->src.is_dir && !c->opts->skip_exists &&
        ap_image_detect(r->src.abs) == 2) {
        const char *b = strrchr(r->src.abs, '/');
        if (!(r->image = strdup(b ? b + 1 : r->src.abs)))
            return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
    }
    if (r->user && (!*r->user || strlen(r->user) > 32 || strspn(r->user,
            "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(r->user) || r->user[0] == '-'))
        return ap_y_error(c->doc, ap_ymap_get(it, "user"), c->err,
                          "invalid user name '%s' (lowercase letters, digits, '_' and '-')",
                          r->user);
    if (pn) {
        r->program_loc.line = pn->line;
        r->program_loc.column = pn->column;
        if (!*r->program || strchr(r->program, '\n') || strchr(r->program, ' '))
            return ap_y_error(c->doc, pn, c->err, "invalid program '%s'", r->program);
        if (r->program[0] != '/' && !r->image) {
            if (!ap_path_is_safe_relative(r->program))
                return ap_y_error(c->doc, pn, c->err,
                                  "program '%s' must be a path inside the runtime's folder or "
                                  "an absolute path on the site", r->program);
            if (!r->src.path || !r->src.is_dir)
                return ap_y_error(c->doc, pn, c->err,
                                  "program '%s' is relative, but runtime '%s' has no folder "
                                  "('path')", r->program, r->name);
            if (!c->opts->skip_exists) {
                char full[4096];
                struct stat st;
                if (snprintf(full, sizeof full, "%s/%s", r->src.abs, r->program) >= (int)sizeof full)
                    return ap_y_error(c->doc, pn, c->err, "program path too long");
                if (lstat(full, &st) != 0 || !S_ISREG(st.st_mode))
                    return ap_y_error(c->doc, pn, c->err,
                                      "program '%s' is not a file in runtime '%s''s folder '%s'",
                                      r->program, r->name, r->src.path);
            }
        }
    }
    if (in) {
        r->image_loc.line = in->line;
        r->image_loc.column = in->column;
        if (!ap_path_is_safe_relative(r->image))
            return ap_y_error(c->doc, in, c->err,
                              "image '%s' must be a path inside the runtime's folder", r->image);
        if (!r->src.path || !r->src.is_dir)
            return ap_y_error(c->doc, in, c->err,
                              "image '%s' needs the runtime's folder ('path') to hold it", r->image);
        if (!c->opts->skip_exists) {
            char full[4096];
            struct stat st;
            if (snprintf(full, sizeof full, "%s/%s", r->src.abs, r->image) >= (int)sizeof full)
                return ap_y_error(c->doc, in, c->err, "image path too long");
            if (lstat(full, &st) != 0 || !S_ISREG(st.st_mode))
                return ap_y_error(c->doc, in, c->err,
                                  "image '%s' is not a file in runtime '%s''s folder '%s'",
                                  r->image, r->name, r->src.path);
        }
    }
    return AP_OK;
}

static int parse_runtimes(struct ctx *c, const ap_ynode *root)
{
    ap_ynode *list = ap_ymap_get(root, "runtimes");
    int rc;
    if (!list || ap_y_is_null(list))
        return AP_OK;
    if ((rc = check_list(c, list, "runtimes")))
        return rc;
    c->m->runtimes = calloc(list->n ? list->n : 1, sizeof *c->m->runtimes);
    if (!c->m->runtimes)
        return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < list->n; i++) {
        ap_ynode *it = list->items[i], *n, *env, *args;
        ap_mruntime *r = &c->m->runtimes[i];
        int k;
        c->m->n_runtimes = i + 1;
        r->loc.line = it->line;
        r->loc.column = it->column;
        if ((rc = ap_y_expect(c->doc, it, AP_Y_MAP, "runtimes[]", c->err)) ||
            (rc = ap_y_check_keys(c->doc, it, runtime_keys, "a runtime", c->err)) ||
            (rc = name_field(c, it, "a runtime", &r->name)))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->m->runtimes[j].name, r->name) == 0)
                return ap_y_error(c->doc, ap_ymap_get(it, "name"), c->err,
                                  "duplicate runtime name '%s'", r->name);
        if ((rc = ap_y_require(c->doc, it, "kind", "a runtime", &n, c->err)) ||
            (rc = pick(c, n, "kind", runtime_kinds, &k)) ||
            (rc = dup_str(c, n, "kind", &r->kind_str)))
            return rc;
        r->kind = (ap_runtime_kind)k;
        if ((rc = opt_str(c, it, "version", &r->version)) ||
            (rc = opt_str(c, it, "license", &r->license)) ||
            (rc = opt_str(c, it, "listen", &r->listen)) ||
            (rc = opt_str(c, it, "health", &r->health)) ||
            (rc = parse_mpath(c, it, "a runtime", 0, &r->src)))
            return rc;
        if (r->health) {
            /* an HTTP path: '/' then printable characters without blanks */
            int ok = r->health[0] == '/' && strlen(r->health) <= 256;
            for (const char *q = r->health; ok && *q; q++)
                ok = *q > 0x20 && *q < 0x7f;
            if (!ok)
                return ap_y_error(c->doc, ap_ymap_get(it, "health"), c->err,
                                  "'health' must be an HTTP path such as '/health', not '%s'", r->health);
        }
        if ((env = ap_ymap_get(it, "env"))) {
            if ((rc = ap_y_expect(c->doc, env, AP_Y_MAP, "env", c->err)))
                return rc;
            r->env = calloc(env->n ? env->n : 1, sizeof *r->env);
            if (!r->env)
                return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
            for (size_t j = 0; j < env->n; j++) {
                ap_ynode *kn = env->pairs[j].key, *vn = env->pairs[j].value;
                r->n_env = j + 1;
                if (!env_key_ok(kn->str))
                    return ap_y_error(c->doc, kn, c->err,
                                      "invalid environment variable name '%s'", kn->str);
                if (vn->type != AP_Y_SCALAR)
                    return ap_y_error(c->doc, vn, c->err,
                                      "environment variable '%s' must be a string", kn->str);
                r->env[j].key = strdup(kn->str);
                r->env[j].value = strdup(vn->str);
                r->env[j].loc.line = vn->line;
                r->env[j].loc.column = vn->column;
                if (!r->env[j].key || !r->env[j].value)
                    return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
            }
        }
        if ((rc = parse_start(c, it, r)))
            return rc;
        if ((args = ap_ymap_get(it, "args"))) {
            if ((rc = check_list(c, args, "args")))
                return rc;
            r->args = calloc(args->n ? args->n : 1, sizeof *r->args);
            if (!r->args)
                return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
            for (size_t j = 0; j < args->n; j++) {
                r->n_args = j + 1;
                if ((rc = dup_str(c, args->items[j], "args[]", &r->args[j])))
                    return rc;
            }
        }
    }
    return AP_OK;
}

static int parse_files(struct ctx *c, const ap_ynode *root)
{
    ap_ynode *list = ap_ymap_get(root, "files");
    int rc;
    if (!list || ap_y_is_null(list))
        return AP_OK;
    if ((rc = check_list(c, list, "files")))
        return rc;
    c->m->files = calloc(list->n ? list->n : 1, sizeof *c->m->files);
    if (!c->m->files)
        return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < list->n; i++) {
        ap_ynode *it = list->items[i], *t;
        ap_mfile *f = &c->m->files[i];
        c->m->n_files = i + 1;
        f->loc.line = it->line;
        f->loc.column = it->column;
        if ((rc = ap_y_expect(c->doc, it, AP_Y_MAP, "files[]", c->err)) ||
            (rc = ap_y_check_keys(c->doc, it, file_keys, "a file entry", c->err)) ||
            (rc = parse_mpath(c, it, "a file entry", 1, &f->src)))
            return rc;
        if ((t = ap_ymap_get(it, "target"))) {
            if ((rc = dup_str(c, t, "target", &f->target)))
                return rc;
            if (!ap_path_is_safe_relative(f->target))
                return ap_y_error(c->doc, t, c->err,
                                  "'target' must be a safe relative path (no '..', no leading "
                                  "'/'), not '%s'",
                                  f->target);
        }
    }
    return AP_OK;
}

static int parse_policies(struct ctx *c, const ap_ynode *root)
{
    ap_ynode *list = ap_ymap_get(root, "policies");
    int rc;
    if (!list || ap_y_is_null(list))
        return AP_OK;
    if ((rc = check_list(c, list, "policies")))
        return rc;
    c->m->policies = calloc(list->n ? list->n : 1, sizeof(char *));
    c->m->policies_raw = calloc(list->n ? list->n : 1, sizeof(char *));
    if (!c->m->policies || !c->m->policies_raw)
        return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < list->n; i++) {
        ap_ynode *it = list->items[i];
        c->m->n_policies = i + 1;
        if (it->type == AP_Y_SCALAR && ap_policy_ref_is_name(it->str)) {
            /* A shipped pack by name ("baseline"): resolved by the analysis. */
            if ((rc = dup_str(c, it, "policies[]", &c->m->policies_raw[i])))
                return rc;
            if (!(c->m->policies[i] = strdup(c->m->policies_raw[i])))
                return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
            continue;
        }
        if ((rc = resolve_path(c, it, "policy", &c->m->policies_raw[i], &c->m->policies[i], NULL,
                               0)))
            return rc;
    }
    return AP_OK;
}

static int check_references(struct ctx *c)
{
    ap_manifest *m = c->m;
    for (size_t i = 0; i < m->n_models; i++) {
        ap_mmodel *mm = &m->models[i];
        if (!mm->serve.runtime)
            continue;
        if (ap_manifest_model_runtime(m, mm))
            continue;
        char path[64];
        ap_loc loc;
        const char **names = calloc(m->n_runtimes + 1, sizeof *names);
        const char *hint;
        if (!names)
            return ap_error_set(c->err, AP_ERR_NOMEM, "out of memory");
        for (size_t j = 0; j < m->n_runtimes; j++)
            names[j] = m->runtimes[j].name;
        hint = ap_suggest(mm->serve.runtime, names);
        snprintf(path, sizeof path, "models[%zu].serve.runtime", i);
        ap_manifest_locate(m, path, &loc);
        if (hint)
            ap_error_set_at(c->err, AP_ERR_INPUT, m->file, loc.line, loc.column,
                            "model '%s' uses runtime '%s', which is not declared in 'runtimes' "
                            "(did you mean '%s'?)",
                            mm->name, mm->serve.runtime, hint);
        else
            ap_error_set_at(c->err, AP_ERR_INPUT, m->file, loc.line, loc.column,
                            "model '%s' uses runtime '%s', which is not declared in 'runtimes'",
                            mm->name, mm->serve.runtime);
        free(names);
        return AP_ERR_INPUT;
    }
    return AP_OK;
}

int ap_manifest_parse(const char *name, const char *dir, const void *buf, size_t len,
                      const ap_manifest_opts *opts, ap_manifest **out, ap_error *err)
{
    static const ap_manifest_opts defaults = {0, 0};
    static const ap_ylimits lim = {.max_bytes = AP_MANIFEST_MAX_BYTES, .max_depth = 16,
                                   .max_nodes = 100000, .max_scalar = 16384};
    struct ctx c = {0};
    ap_ynode *root, *n;
    int rc;

    *out = NULL;
    c.opts = opts ? opts : &defaults;
    c.err = err;
    c.m = calloc(1, sizeof *c.m);
    if (!c.m || !(c.m->file = strdup(name)) || !(c.m->dir = strdup(dir))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = ap_yaml_load_buffer(name, buf, len, &lim, &c.m->doc, err)))
        goto fail;
    c.doc = c.m->doc;
    root = c.doc->root;
    if (!root) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, name, 1, 1, "the manifest is empty");
        goto fail;
    }
    if (!c.opts->skip_exists && !c.opts->allow_outside_paths) {
        c.real_dir = realpath(dir, NULL);
        if (!c.real_dir) {
            rc = ap_error_errno(err, AP_ERR_INPUT, errno, "cannot resolve folder", dir);
            goto fail;
        }
    }
    if ((rc = ap_y_expect(c.doc, root, AP_Y_MAP, "the manifest", err)) ||
        (rc = ap_y_check_keys(c.doc, root, top_keys, "the manifest", err)))
        goto fail;
    if ((rc = ap_y_require(c.doc, root, "apiVersion", "the manifest", &n, err)) ||
        (rc = dup_str(&c, n, "apiVersion", &c.m->api_version)))
        goto fail;
    if (strcmp(c.m->api_version, "airpack/v1") != 0) {
        rc = ap_y_error(c.doc, n, err, "unsupported apiVersion '%s' (this airpack reads 'airpack/v1')",
                        c.m->api_version);
        goto fail;
    }
    if ((rc = ap_y_require(c.doc, root, "kind", "the manifest", &n, err)) ||
        (rc = dup_str(&c, n, "kind", &c.m->kind)))
        goto fail;
    if (strcmp(c.m->kind, "Deployment") != 0) {
        rc = ap_y_error(c.doc, n, err, "unsupported kind '%s' (expected 'Deployment')", c.m->kind);
        goto fail;
    }
    if ((rc = parse_metadata(&c, root)) || (rc = parse_target(&c, root)) ||
        (rc = parse_models(&c, root)) || (rc = parse_runtimes(&c, root)) ||
        (rc = parse_files(&c, root)) || (rc = parse_policies(&c, root)) ||
        (rc = check_references(&c)))
        goto fail;
    free(c.real_dir);
    *out = c.m;
    return AP_OK;
fail:
    free(c.real_dir);
    ap_manifest_free(c.m);
    return rc;
}

int ap_manifest_load(const char *path, const ap_manifest_opts *opts, ap_manifest **out,
                     ap_error *err)
{
    char *buf = NULL, *dir = NULL;
    size_t len = 0;
    int rc;
    *out = NULL;
    if ((rc = ap_read_file(path, AP_MANIFEST_MAX_BYTES, &buf, &len, err)))
        return rc;
    dir = ap_path_dirname(path);
    if (!dir) {
        free(buf);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    rc = ap_manifest_parse(path, dir, buf, len, opts, out, err);
    free(dir);
    free(buf);
    return rc;
}

static void mpath_free(ap_mpath *p)
{
    free(p->path);
    free(p->abs);
    free(p->sha256);
    free(p->sha256sums);
    free(p->sha256sums_abs);
    for (size_t i = 0; i < p->n_include; i++)
        free(p->include[i]);
    for (size_t i = 0; i < p->n_exclude; i++)
        free(p->exclude[i]);
    free(p->include);
    free(p->exclude);
}

void ap_manifest_free(ap_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_models; i++) {
        ap_mmodel *mm = &m->models[i];
        free(mm->name);
        mpath_free(&mm->src);
        free(mm->license);
        free(mm->origin_publisher);
        free(mm->origin_jurisdiction);
        free(mm->origin_source);
        free(mm->parameters);
        free(mm->quantization);
        free(mm->hf_cache);
        free(mm->serve.runtime);
        free(mm->serve.rope_type);
    }
    free(m->models);
    for (size_t i = 0; i < m->n_runtimes; i++) {
        ap_mruntime *r = &m->runtimes[i];
        free(r->name);
        free(r->kind_str);
        free(r->version);
        mpath_free(&r->src);
        free(r->license);
        for (size_t j = 0; j < r->n_env; j++) {
            free(r->env[j].key);
            free(r->env[j].value);
        }
        free(r->env);
        free(r->listen);
        free(r->health);
        free(r->program);
        free(r->image);
        free(r->user);
        for (size_t j = 0; j < r->n_args; j++)
            free(r->args[j]);
        free(r->args);
    }
    free(m->runtimes);
    for (size_t i = 0; i < m->n_files; i++) {
        mpath_free(&m->files[i].src);
        free(m->files[i].target);
    }
    free(m->files);
    for (size_t i = 0; i < m->n_policies; i++) {
        free(m->policies[i]);
        if (m->policies_raw)
            free(m->policies_raw[i]);
    }
    free(m->policies);
    free(m->policies_raw);
    free(m->api_version);
    free(m->kind);
    free(m->name);
    free(m->version);
    free(m->description);
    free(m->owner);
    free(m->expires);
    free(m->site);
    free(m->region);
    free(m->req_driver);
    free(m->req_cuda);
    free(m->req_compute_capability);
    free(m->gpu_model);
    ap_ydoc_free(m->doc);
    free(m->file);
    free(m->dir);
    free(m);
}

const ap_mruntime *ap_manifest_model_runtime(const ap_manifest *m, const ap_mmodel *mm)
{
    if (!mm->serve.runtime)
        return NULL;
    for (size_t i = 0; i < m->n_runtimes; i++)
        if (strcmp(m->runtimes[i].name, mm->serve.runtime) == 0)
            return &m->runtimes[i];
    return NULL;
}

int ap_manifest_locate(const ap_manifest *m, const char *path, ap_loc *out)
{
    const ap_ynode *n = m->doc ? m->doc->root : NULL;
    const char *p = path;
    int found = 1;

    out->line = n ? n->line : 0;
    out->column = n ? n->column : 0;
    while (n && *p) {
        char key[256];
        size_t k = 0;
        while (*p && *p != '.' && *p != '[' && k + 1 < sizeof key)
            key[k++] = *p++;
        key[k] = '\0';
        if (k) {
            const ap_ynode *v = NULL;
            if (n->type == AP_Y_MAP) {
                for (size_t i = 0; i < n->n; i++) {
                    if (strcmp(n->pairs[i].key->str, key) == 0) {
                        v = n->pairs[i].value;
                        /* Point at the key itself when the path ends here. */
                        out->line = n->pairs[i].key->line;
                        out->column = n->pairs[i].key->column;
                        break;
                    }
                }
            }
            if (!v) {
                found = 0;
                break;
            }
            n = v;
            if (*p != '.' && *p != '[') {
                if (n->type == AP_Y_SCALAR) {
                    out->line = n->line;
                    out->column = n->column;
                }
            }
        }
        while (*p == '[') {
            char *end;
            unsigned long idx = strtoul(p + 1, &end, 10);
            if (*end != ']' || n->type != AP_Y_SEQ || idx >= n->n) {
                found = 0;
                break;
            }
            n = n->items[idx];
            out->line = n->line;
            out->column = n->column;
            p = end + 1;
        }
        if (!found)
            break;
        if (*p == '.')
            p++;
        else if (*p)
            break;
    }
    return found;
}

/* ---- JSON ---------------------------------------------------------------- */

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

static json_t *mpath_json(json_t *o, const ap_mpath *p)
{
    if (p->path)
        json_object_set_new(o, "path", json_string(p->path));
    set_str(o, "sha256", p->sha256);
    set_str(o, "sha256sums", p->sha256sums);
    if (p->path)
        json_object_set_new(o, "path_kind", json_string(p->is_dir ? "folder" : "file"));
    if (p->n_include || p->n_exclude) {
        json_t *inc = json_array(), *exc = json_array();
        for (size_t i = 0; i < p->n_include; i++)
            json_array_append_new(inc, json_string(p->include[i]));
        for (size_t i = 0; i < p->n_exclude; i++)
            json_array_append_new(exc, json_string(p->exclude[i]));
        json_object_set_new(o, "include", inc);
        json_object_set_new(o, "exclude", exc);
    }
    return o;
}

json_t *ap_manifest_to_json(const ap_manifest *m)
{
    json_t *root = json_object(), *md = json_object(), *t = json_object(), *g = json_object();
    json_t *models = json_array(), *rts = json_array(), *files = json_array(),
           *pols = json_array();
    if (!root || !md || !t || !g || !models || !rts || !files || !pols)
        goto fail;
    json_object_set_new(root, "apiVersion", json_string(m->api_version));
    json_object_set_new(root, "kind", json_string(m->kind));
    json_object_set_new(md, "name", json_string(m->name));
    json_object_set_new(md, "version", json_string(m->version));
    json_object_set_new(md, "sequence", json_integer((json_int_t)m->sequence));
    set_str(md, "description", m->description);
    set_str(md, "owner", m->owner);
    set_str(md, "expires", m->expires);
    json_object_set_new(root, "metadata", md);
    md = NULL;
    set_str(t, "site", m->site);
    set_str(t, "region", m->region);
    set_str(g, "model", m->gpu_model);
    json_object_set_new(g, "count", json_integer((json_int_t)m->gpu_count));
    if (m->gpu_memory_gib > 0)
        json_object_set_new(g, "memory_gib", json_real(m->gpu_memory_gib));
    json_object_set_new(t, "gpu", g);
    g = NULL;
    json_object_set_new(t, "memory_utilization", json_real(m->memory_utilization));
    if (m->req_driver || m->req_cuda || m->req_compute_capability) {
        json_t *rq = json_object();
        set_str(rq, "driver", m->req_driver);
        set_str(rq, "cuda", m->req_cuda);
        set_str(rq, "compute_capability", m->req_compute_capability);
        json_object_set_new(t, "requires", rq);
    }
    json_object_set_new(root, "target", t);
    t = NULL;
    for (size_t i = 0; i < m->n_models; i++) {
        const ap_mmodel *mm = &m->models[i];
        json_t *o = json_object(), *s = json_object();
        json_object_set_new(o, "name", json_string(mm->name));
        mpath_json(o, &mm->src);
        json_object_set_new(o, "format", json_string(formats[mm->format]));
        set_str(o, "license", mm->license);
        if (mm->origin_publisher || mm->origin_jurisdiction || mm->origin_source) {
            json_t *or = json_object();
            set_str(or, "publisher", mm->origin_publisher);
            set_str(or, "jurisdiction", mm->origin_jurisdiction);
            set_str(or, "source", mm->origin_source);
            json_object_set_new(o, "origin", or);
        }
        set_str(o, "parameters", mm->parameters);
        set_str(o, "quantization", mm->quantization);
        set_str(o, "hf_cache", mm->hf_cache);
        set_str(s, "runtime", mm->serve.runtime);
        const ap_mruntime *rt = ap_manifest_model_runtime(m, mm);
        if (rt)
            json_object_set_new(s, "runtime_kind", json_string(ap_runtime_kind_name(rt->kind)));
        if (mm->serve.context)
            json_object_set_new(s, "context", json_integer((json_int_t)mm->serve.context));
        json_object_set_new(s, "concurrency", json_integer((json_int_t)mm->serve.concurrency));
        json_object_set_new(s, "kv_cache_dtype",
                            json_string(ap_kv_dtype_name(mm->serve.kv_cache_dtype)));
        json_object_set_new(s, "tensor_parallel",
                            json_integer((json_int_t)mm->serve.tensor_parallel));
        if (mm->serve.overhead_gib >= 0)
            json_object_set_new(s, "overhead_gib", json_real(mm->serve.overhead_gib));
        if (mm->serve.activation_gib >= 0)
            json_object_set_new(s, "activation_gib", json_real(mm->serve.activation_gib));
        if (mm->serve.max_batched_tokens)
            json_object_set_new(s, "max_batched_tokens", json_integer((json_int_t)mm->serve.max_batched_tokens));
        if (mm->serve.enforce_eager)
            json_object_set_new(s, "enforce_eager", json_true());
        if (mm->serve.pipeline_parallel > 1)
            json_object_set_new(s, "pipeline_parallel", json_integer((json_int_t)mm->serve.pipeline_parallel));
        if (mm->serve.rope_type)
            json_object_set_new(s, "rope_scaling", json_pack("{s:s,s:f,s:I}", "type", mm->serve.rope_type,
                                                              "factor", mm->serve.rope_factor, "original_context",
                                                              (json_int_t)mm->serve.rope_original_context));
        json_object_set_new(o, "serve", s);
        json_array_append_new(models, o);
    }
    json_object_set_new(root, "models", models);
    models = NULL;
    for (size_t i = 0; i < m->n_runtimes; i++) {
        const ap_mruntime *r = &m->runtimes[i];
        json_t *o = json_object(), *env = json_object();
        json_object_set_new(o, "name", json_string(r->name));
        json_object_set_new(o, "kind", json_string(ap_runtime_kind_name(r->kind)));
        set_str(o, "version", r->version);
        mpath_json(o, &r->src);
        set_str(o, "license", r->license);
        for (size_t j = 0; j < r->n_env; j++)
            json_object_set_new(env, r->env[j].key, json_string(r->env[j].value));
        json_object_set_new(o, "env", env);
        set_str(o, "listen", r->listen);
        set_str(o, "health", r->health);
        set_str(o, "program", r->program);
        set_str(o, "image", r->image);
        set_str(o, "user", r->user);
        if (r->n_args) {
            json_t *a = json_array();
            for (size_t j = 0; j < r->n_args; j++)
                json_array_append_new(a, json_string(r->args[j]));
            json_object_set_new(o, "args", a);
        }
        json_array_append_new(rts, o);
    }
    json_object_set_new(root, "runtimes", rts);
    rts = NULL;
    for (size_t i = 0; i < m->n_files; i++) {
        json_t *o = json_object();
        mpath_json(o, &m->files[i].src);
        set_str(o, "target", m->files[i].target);
        json_array_append_new(files, o);
    }
    json_object_set_new(root, "files", files);
    files = NULL;
    for (size_t i = 0; i < m->n_policies; i++)
        json_array_append_new(pols, json_string(m->policies_raw[i]));
    json_object_set_new(root, "policies", pols);
    return root;
fail:
    json_decref(root);
    json_decref(md);
    json_decref(t);
    json_decref(g);
    json_decref(models);
    json_decref(rts);
    json_decref(files);
    json_decref(pols);
    return NULL;
}
