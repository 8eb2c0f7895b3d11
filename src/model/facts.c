/*
 * facts.c - the model facts record: loading a file or folder (choosing
 * the reader), the tensor totals shared by the readers, and the JSON that
 * `airpack model --format json` prints (docs/memory-planner.md).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "util.h"

const char *ap_fact_src_name(ap_fact_src s)
{
    switch (s) {
    case AP_SRC_GGUF: return "gguf header";
    case AP_SRC_SAFETENSORS: return "safetensors header";
    case AP_SRC_CONFIG: return "config.json";
    case AP_SRC_DERIVED: return "derived";
    case AP_SRC_DEFAULT: return "default";
    default: return "none";
    }
}

/* An open-addressing set of tensor names (FNV-1a), to refuse a tensor
 * that appears twice (in one file or across shards), which would count
 * its parameters twice. */
struct ap_name_set {
    char **slot;
    size_t cap, n;        /* cap is a power of two; n < cap / 2 */
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void name_set_free(struct ap_name_set *ns)
{
    if (!ns)
        return;
    for (size_t i = 0; i < ns->cap; i++)
        free(ns->slot[i]);
    free(ns->slot);
    free(ns);
}

static char **name_slot(const struct ap_name_set *ns, const char *name)
{
    size_t i = (size_t)fnv1a(name) & (ns->cap - 1);
    while (ns->slot[i] && strcmp(ns->slot[i], name) != 0)
        i = (i + 1) & (ns->cap - 1);
    return &ns->slot[i];
}

/* Add name: 0 added, 1 already there, -1 out of memory. */
static int name_set_add(struct ap_name_set **nsp, const char *name)
{
    struct ap_name_set *ns = *nsp;
    char **s;
    if (!ns) {
        ns = calloc(1, sizeof *ns);
        if (!ns || !(ns->slot = calloc(1024, sizeof *ns->slot))) {
            free(ns);
            return -1;
        }
        ns->cap = 1024;
        *nsp = ns;
    }
    if ((ns->n + 1) * 2 > ns->cap) {
        struct ap_name_set grown = {calloc(ns->cap * 2, sizeof(char *)), ns->cap * 2, ns->n};
        if (!grown.slot)
            return -1;
        for (size_t i = 0; i < ns->cap; i++)
            if (ns->slot[i])
                *name_slot(&grown, ns->slot[i]) = ns->slot[i];
        free(ns->slot);
        *ns = grown;
    }
    s = name_slot(ns, name);
    if (*s)
        return 1;
    if (!(*s = strdup(name)))
        return -1;
    ns->n++;
    return 0;
}

int ap_facts_has_tensor(const ap_model_facts *f, const char *tname)
{
    return f->names && *name_slot(f->names, tname) != NULL;
}

ap_model_facts *ap_model_facts_new(const char *path)
{
    ap_model_facts *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->path = strdup(path ? path : "");
    if (!f->path) {
        free(f);
        return NULL;
    }
    return f;
}

void ap_model_facts_free(ap_model_facts *f)
{
    if (!f)
        return;
    free(f->path);
    free(f->architecture);
    free(f->name);
    free(f->license);
    free(f->kv_heads_layer);
    free(f->swa_layer);
    free(f->dtype);
    free(f->file_type);
    free(f->quant_method);
    free(f->rope_type);
    free(f->layer_bytes);
    name_set_free(f->names);
    free(f);
}

int ap_facts_set_str(char **dst, ap_fact_src *dsrc, const char *v, ap_fact_src src)
{
    char *c = strdup(v);
    if (!c)
        return AP_ERR_NOMEM;
    free(*dst);
    *dst = c;
    *dsrc = src;
    return AP_OK;
}

void ap_facts_set(ap_fact *fact, uint64_t v, ap_fact_src src)
{
    fact->v = v;
    fact->src = src;
}

/* Buffers that are not learned weights: RoPE frequency tables. */
static int is_buffer(const char *name)
{
    size_t n = strlen(name);
    if (strncmp(name, "rope_freqs", 10) == 0 || strncmp(name, "rope_factors", 12) == 0)
        return 1;
    return n >= 9 && strcmp(name + n - 9, ".inv_freq") == 0;
}

/* The name after an optional wrapper prefix ("model.", "language_model.model."). */
static const char *strip_prefix(const char *n)
{
    static const char *const pre[] = {"model.language_model.", "language_model.model.", "language_model.", "model."};
    for (size_t i = 0; i < AP_ARRAY_LEN(pre); i++)
        if (strncmp(n, pre[i], strlen(pre[i])) == 0)
            return n + strlen(pre[i]);
    return n;
}

/* Decoder layer index of a tensor name ("...layers.12.", "blk.12."), or -1. */
static long layer_index(const char *n)
{
    const char *p = strstr(n, "layers.");
    size_t skip = 7;
    if (!p || (p != n && p[-1] != '.')) {
        p = strncmp(n, "blk.", 4) == 0 ? n : NULL;
        skip = 4;
    }
    if (!p)
        return -1;
    p += skip;
    if (*p < '0' || *p > '9')
        return -1;
    long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > AP_MODEL_MAX_LAYERS)
            return -1;
    }
    return *p == '.' ? v : -1;
}

/* Group a tensor by name for the loaded-bytes rules (model.h). */
static int classify_tensor(ap_model_facts *f, const char *tname, uint64_t bytes)
{
    const char *n = strip_prefix(tname);
    static const char *const vision[] = {"vision_tower", "visual.", "vision_model", "multi_modal_projector",
                                         "mm_projector", "vision_embed", "image_newline", "vpm."};
    long li;
    for (size_t i = 0; i < AP_ARRAY_LEN(vision); i++)
        if (strncmp(n, vision[i], strlen(vision[i])) == 0) {
            f->vision_bytes += bytes;
            return AP_OK;
        }
    if (strcmp(n, "embed_tokens.weight") == 0 || strcmp(n, "token_embd.weight") == 0 ||
        strcmp(n, "wte.weight") == 0 || strcmp(n, "transformer.wte.weight") == 0 ||
        strcmp(n, "embed_tokens.weight_packed") == 0)
        f->embed_bytes += bytes;
    if (strcmp(n, "lm_head.weight") == 0 || strcmp(tname, "lm_head.weight") == 0 || strcmp(n, "output.weight") == 0)
        f->has_output = 1;
    if (strstr(n, ".experts.") || strstr(n, "_exps."))
        f->expert_bytes += bytes;
    if ((li = layer_index(n)) >= 0 && li < AP_MODEL_MAX_LAYERS) {
        if (!f->layer_bytes && !(f->layer_bytes = calloc(AP_MODEL_MAX_LAYERS, sizeof *f->layer_bytes)))
            return AP_ERR_NOMEM;
        f->layer_bytes[li] += bytes;
    }
    return AP_OK;
}

uint64_t ap_facts_layer_bytes_from(const ap_model_facts *f, uint64_t first)
{
    uint64_t s = 0;
    if (!f->layer_bytes)
        return 0;
    for (uint64_t i = first; i < AP_MODEL_MAX_LAYERS; i++)
        s += f->layer_bytes[i];
    return s;
}

uint64_t ap_facts_scaled_context(const ap_model_facts *f)
{
    uint64_t base = f->context_length.src ? f->context_length.v : 0;
    if (f->rope_type && f->rope_factor > 1.0 &&
        (strcmp(f->rope_type, "yarn") == 0 || strcmp(f->rope_type, "dynamic") == 0 ||
         strcmp(f->rope_type, "linear") == 0)) {
        uint64_t orig = f->rope_orig_ctx ? f->rope_orig_ctx : base;
        double c = (double)orig * f->rope_factor;
        if (c > (double)base && c < 1e12)
            return (uint64_t)c;
    }
    return base;
}

int ap_facts_add_tensor(ap_model_facts *f, const char *tname, const char *dtype, uint64_t elems,
                        uint64_t bytes, ap_error *err)
{
    ap_dtype_use *u = NULL;
    int dup = name_set_add(&f->names, tname);
    if (dup < 0)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (dup)
        return ap_error_set(err, AP_ERR_INPUT, "'%s': tensor '%s' appears twice", f->path, tname);
    if (!is_buffer(tname) && !ap_add_u64(f->parameters, elems, &f->parameters))
        return ap_error_set(err, AP_ERR_INPUT, "'%s': parameter count overflows", f->path);
    if (!ap_add_u64(f->weights_bytes, bytes, &f->weights_bytes))
        return ap_error_set(err, AP_ERR_INPUT, "'%s': weight bytes overflow", f->path);
    f->n_tensors++;
    for (size_t i = 0; i < f->n_dtypes; i++)
        if (strcmp(f->dtypes[i].name, dtype) == 0)
            u = &f->dtypes[i];
    if (!u) {
        if (f->n_dtypes >= AP_MODEL_MAX_DTYPES)
            return ap_error_set(err, AP_ERR_INPUT, "'%s': more than %d storage types", f->path,
                                AP_MODEL_MAX_DTYPES);
        u = &f->dtypes[f->n_dtypes++];
        snprintf(u->name, sizeof u->name, "%s", dtype);
    }
    u->tensors++;
    u->parameters += elems;   /* bounded by f->parameters + buffers, checked above */
    u->bytes += bytes;
    if (classify_tensor(f, tname, bytes))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    return AP_OK;
}

/* ---- choosing the reader ---- */

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int file_magic_gguf(const char *path)
{
    unsigned char m[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC), ok = 0;
    if (fd < 0)
        return 0;
    ok = read(fd, m, 4) == 4 && memcmp(m, "GGUF", 4) == 0;
    close(fd);
    return ok;
}

/* Parse "PREFIX-00001-of-00003.gguf": returns 1 and fills part/count, and
 * the prefix length. */
static int split_name(const char *name, size_t *prefix_len, unsigned *part, unsigned *count)
{
    size_t n = strlen(name);
    const char *p;
    if (n < 5 + 17 || !has_suffix(name, ".gguf"))
        return 0;
    p = name + n - 5 - 15;   /* "-00001-of-00003" */
    if (p[0] != '-' || strncmp(p + 6, "-of-", 4) != 0)
        return 0;
    for (int i = 1; i < 6; i++)
        if (!isdigit((unsigned char)p[i]) || !isdigit((unsigned char)p[i + 9]))
            return 0;
    *part = (unsigned)strtoul(p + 1, NULL, 10);
    *count = (unsigned)strtoul(p + 10, NULL, 10);
    *prefix_len = (size_t)(p - name);
    return *part >= 1 && *count >= 1 && *part <= *count;
}

/* Read every part of a split GGUF set given its folder, prefix and count. */
static int read_gguf_split(const char *dir, const char *prefix, size_t plen, unsigned count,
                           ap_model_facts *f, ap_error *err)
{
    char name[4096];
    int rc = AP_OK;
    for (unsigned i = 1; i <= count && rc == AP_OK; i++) {
        char *p;
        if ((size_t)snprintf(name, sizeof name, "%.*s-%05u-of-%05u.gguf", (int)plen, prefix, i, count) >= sizeof name)
            return ap_error_set(err, AP_ERR_INPUT, "'%s': file name too long", dir);
        p = ap_path_join(dir, name);
        if (!p)
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        if (access(p, F_OK) != 0)
            rc = ap_error_set_at(err, AP_ERR_INPUT, p, 0, 0, "split GGUF part %u of %u is missing", i, count);
        else
            rc = ap_gguf_read(p, f, err);
        free(p);
    }
    return rc;
}

static int load_gguf_file(const char *path, ap_model_facts *f, ap_error *err)
{
    const char *base = strrchr(path, '/');
    size_t plen;
    unsigned part, count;
    base = base ? base + 1 : path;
    if (split_name(base, &plen, &part, &count) && count > 1) {
        char *dir = ap_path_dirname(path);
        int rc;
        if (!dir)
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        rc = read_gguf_split(dir, base, plen, count, f, err);
        free(dir);
        return rc;
    }
    return ap_gguf_read(path, f, err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The caller's file filter (ap_model_facts_load_filtered), this thread. */
static _Thread_local ap_facts_skip_fn g_skip;
static _Thread_local void *g_skip_ctx;

static int skipped(const char *name)
{
    return g_skip && g_skip(name, g_skip_ctx);
}

/* List a folder's regular entries ending in suffix (sorted). */
static int list_suffix(const char *dir, const char *suffix, char ***out, size_t *n, ap_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **v = NULL;
    size_t cnt = 0;
    int rc = AP_OK;

    *out = NULL;
    *n = 0;
    if (!d)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open folder", dir);
    while ((e = readdir(d)) != NULL) {
        char **nv;
        if (e->d_name[0] == '.' || !has_suffix(e->d_name, suffix) || skipped(e->d_name))
            continue;
        if (cnt >= AP_MODEL_MAX_SHARDS) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, dir, 0, 0, "more than %d '%s' files", AP_MODEL_MAX_SHARDS, suffix);
            break;
        }
        nv = realloc(v, (cnt + 1) * sizeof *v);
        if (!nv || !(nv[cnt] = strdup(e->d_name))) {
            if (nv)
                v = nv;
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            break;
        }
        v = nv;
        cnt++;
    }
    closedir(d);
    if (rc) {
        for (size_t i = 0; i < cnt; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_str);
    *out = v;
    *n = cnt;
    return AP_OK;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static int exists_file(const char *dir, const char *name, char **out)
{
    struct stat st;
    if (skipped(name)) {
        *out = NULL;
        return 0;
    }
    *out = ap_path_join(dir, name);
    if (!*out)
        return -1;
    if (stat(*out, &st) == 0 && S_ISREG(st.st_mode))
        return 1;
    free(*out);
    *out = NULL;
    return 0;
}

static int load_dir(const char *dir, ap_model_format fmt, ap_model_facts *f, ap_error *err)
{
    char **gg = NULL, **st = NULL, *p = NULL;
    size_t ngg = 0, nst = 0;
    int rc = AP_OK, e;

    if (fmt != AP_FMT_SAFETENSORS) {
        if ((rc = list_suffix(dir, ".gguf", &gg, &ngg, err)))
            goto out;
    }
    if (ngg > 0) {
        size_t plen;
        unsigned part, count;
        if (ngg == 1) {
            char *one = ap_path_join(dir, gg[0]);
            if (!one) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            rc = load_gguf_file(one, f, err);
            free(one);
        } else if (split_name(gg[0], &plen, &part, &count) && part == 1 && count >= ngg) {
            rc = read_gguf_split(dir, gg[0], plen, count, f, err);
        } else {
            rc = ap_error_set_at(err, AP_ERR_INPUT, dir, 0, 0,
                                 "folder holds %zu GGUF files that are not one split set; name the file", ngg);
        }
        goto out;
    }
    if (fmt == AP_FMT_GGUF) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, dir, 0, 0, "no GGUF file in the folder");
        goto out;
    }
    e = exists_file(dir, "model.safetensors.index.json", &p);
    if (e < 0) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (e == 1) {
        rc = ap_safetensors_read_index(p, f, err);
    } else {
        if ((rc = list_suffix(dir, ".safetensors", &st, &nst, err)))
            goto out;
        for (size_t i = 0; i < nst && rc == AP_OK; i++) {
            char *one = ap_path_join(dir, st[i]);
            if (!one) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            rc = ap_safetensors_read(one, f, err);
            free(one);
        }
    }
    if (rc)
        goto out;
    free(p);
    p = NULL;
    e = exists_file(dir, "config.json", &p);
    if (e < 0) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (e == 1)
        rc = ap_hfconfig_read(p, f, err);
    else if (f->n_files == 0)
        rc = ap_error_set_at(err, AP_ERR_INPUT, dir, 0, 0,
                             "no model found in the folder (no GGUF, safetensors or config.json)");
out:
    free(p);
    free_list(gg, ngg);
    free_list(st, nst);
    return rc;
}

/* Fill facts that follow from others (documented in docs/memory-planner.md). */
static void derive(ap_model_facts *f)
{
    size_t best = 0;
    if (f->heads.src && f->kv_heads.src == AP_SRC_NONE)
        ap_facts_set(&f->kv_heads, f->heads.v, AP_SRC_DEFAULT);
    if (f->head_dim.src == AP_SRC_NONE && f->hidden.src && f->heads.src && f->heads.v > 0)
        ap_facts_set(&f->head_dim, f->hidden.v / f->heads.v, AP_SRC_DERIVED);
    if (f->v_head_dim.src == AP_SRC_NONE && f->head_dim.src)
        ap_facts_set(&f->v_head_dim, f->head_dim.v, AP_SRC_DERIVED);
    if (f->sliding_window.src == AP_SRC_NONE)
        ap_facts_set(&f->sliding_window, 0, AP_SRC_DEFAULT);
    /* which layers slide, for families whose files do not say */
    if (f->sliding_window.v > 0 && !f->swa_layer && f->layers.src && f->layers.v <= AP_MODEL_MAX_LAYERS) {
        uint64_t period = 0, n = f->layers.v;
        const char *a = f->architecture ? f->architecture : "";
        if (strncmp(a, "gemma2", 6) == 0)
            period = 2;
        else if (strncmp(a, "gemma3", 6) == 0)
            period = 6;
        else if (strncmp(a, "cohere2", 7) == 0)
            period = 4;
        f->swa_layer = calloc(n ? (size_t)n : 1, 1);
        for (uint64_t i = 0; f->swa_layer && i < n; i++)
            f->swa_layer[i] = period ? ((i + 1) % period) != 0 : 1;
    }
    if (f->experts.src == AP_SRC_NONE && f->layers.src)
        ap_facts_set(&f->experts, 0, AP_SRC_DEFAULT);
    if (f->n_dtypes > 0 && f->tensors_src != AP_SRC_NONE) {
        for (size_t i = 1; i < f->n_dtypes; i++)
            if (f->dtypes[i].bytes > f->dtypes[best].bytes)
                best = i;
        if (!f->dtype || f->dtype_src == AP_SRC_CONFIG) {
            char *c = strdup(f->dtypes[best].name);
            if (c) {
                free(f->dtype);
                f->dtype = c;
                f->dtype_src = f->tensors_src;
            }
        }
    }
}

int ap_model_facts_load(const char *path, ap_model_format fmt, ap_model_facts **out,
                        ap_error *err)
{
    ap_model_facts *f;
    struct stat st;
    int rc;

    *out = NULL;
    if (stat(path, &st) != 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot read model", path);
    f = ap_model_facts_new(path);
    if (!f)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (S_ISDIR(st.st_mode)) {
        rc = load_dir(path, fmt, f, err);
    } else if (!S_ISREG(st.st_mode)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "not a regular file or folder");
    } else if (fmt == AP_FMT_GGUF || (fmt == AP_FMT_AUTO && file_magic_gguf(path))) {
        rc = load_gguf_file(path, f, err);
    } else if (fmt == AP_FMT_SAFETENSORS || has_suffix(path, ".safetensors")) {
        rc = ap_safetensors_read(path, f, err);
    } else if (has_suffix(path, ".json")) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (strcmp(base, "model.safetensors.index.json") == 0)
            rc = ap_safetensors_read_index(path, f, err);
        else
            rc = ap_hfconfig_read(path, f, err);
    } else {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "not a model file (expected GGUF, .safetensors or config.json)");
    }
    if (rc) {
        ap_model_facts_free(f);
        return rc;
    }
    if (!f->format)
        f->format = "hf-config";
    derive(f);
    name_set_free(f->names);   /* only needed while reading */
    f->names = NULL;
    *out = f;
    return AP_OK;
}

int ap_model_facts_load_filtered(const char *path, ap_model_format fmt, ap_facts_skip_fn skip,
                                 void *ctx, ap_model_facts **out, ap_error *err)
{
    int rc;
    g_skip = skip;
    g_skip_ctx = ctx;
    rc = ap_model_facts_load(path, fmt, out, err);
    g_skip = NULL;
    g_skip_ctx = NULL;
    return rc;
}

/* ---- JSON ---- */

static int put_fact(json_t *o, json_t *sources, const char *key, const ap_fact *v)
{
    if (v->src == AP_SRC_NONE)
        return json_object_set_new(o, key, json_null());
    if (json_object_set_new(sources, key, json_string(ap_fact_src_name(v->src))))
        return -1;
    return json_object_set_new(o, key, json_integer((json_int_t)v->v));
}

static int put_str(json_t *o, json_t *sources, const char *key, const char *v, ap_fact_src src)
{
    if (!v)
        return json_object_set_new(o, key, json_null());
    if (json_object_set_new(sources, key, json_string(ap_fact_src_name(src))))
        return -1;
    return json_object_set_new(o, key, json_string(v));
}

json_t *ap_model_facts_to_json(const ap_model_facts *f)
{
    json_t *o = json_object(), *src = json_object(), *mix = json_array();
    int bad = 0;
    const char *tsrc = ap_fact_src_name(f->tensors_src);

    if (!o || !src || !mix)
        goto fail;
    bad |= json_object_set_new(o, "path", json_string(f->path));
    bad |= json_object_set_new(o, "format", json_string(f->format ? f->format : "unknown"));
    bad |= put_str(o, src, "architecture", f->architecture, f->architecture_src);
    bad |= put_str(o, src, "name", f->name, f->name_src);
    bad |= put_str(o, src, "license", f->license, f->license_src);
    if (f->tensors_src != AP_SRC_NONE) {
        bad |= json_object_set_new(o, "parameters", json_integer((json_int_t)f->parameters));
        bad |= json_object_set_new(o, "weights_bytes", json_integer((json_int_t)f->weights_bytes));
        bad |= json_object_set_new(o, "tensors", json_integer((json_int_t)f->n_tensors));
        bad |= json_object_set_new(src, "parameters", json_string(tsrc));
        bad |= json_object_set_new(src, "weights_bytes", json_string(tsrc));
    } else {
        bad |= json_object_set_new(o, "parameters", json_null());
        bad |= json_object_set_new(o, "weights_bytes", json_null());
        bad |= json_object_set_new(o, "tensors", json_null());
    }
    bad |= json_object_set_new(o, "files", json_integer((json_int_t)f->n_files));
    bad |= json_object_set_new(o, "file_bytes", json_integer((json_int_t)f->file_bytes));
    bad |= put_fact(o, src, "layers", &f->layers);
    bad |= put_fact(o, src, "hidden_size", &f->hidden);
    bad |= put_fact(o, src, "heads", &f->heads);
    bad |= put_fact(o, src, "kv_heads", &f->kv_heads);
    bad |= put_fact(o, src, "head_dim", &f->head_dim);
    bad |= put_fact(o, src, "v_head_dim", &f->v_head_dim);
    bad |= put_fact(o, src, "context_length", &f->context_length);
    bad |= put_fact(o, src, "sliding_window", &f->sliding_window);
    bad |= put_fact(o, src, "experts", &f->experts);
    bad |= put_fact(o, src, "experts_used", &f->experts_used);
    bad |= put_fact(o, src, "kv_lora_rank", &f->kv_lora_rank);
    bad |= put_fact(o, src, "qk_rope_head_dim", &f->qk_rope_head_dim);
    bad |= put_fact(o, src, "vocab_size", &f->vocab);
    bad |= put_fact(o, src, "ffn_size", &f->ffn);
    if (f->kv_heads_layer && f->layers.src) {
        json_t *a = json_array();
        for (uint64_t i = 0; a && i < f->layers.v; i++)
            bad |= json_array_append_new(a, json_integer(f->kv_heads_layer[i]));
        bad |= json_object_set_new(o, "kv_heads_per_layer", a ? a : json_null());
    }
    if (f->swa_layer && f->layers.src) {
        uint64_t n = 0;
        for (uint64_t i = 0; i < f->layers.v; i++)
            n += f->swa_layer[i];
        bad |= json_object_set_new(o, "sliding_window_layers", json_integer((json_int_t)n));
    }
    bad |= put_str(o, src, "dtype", f->dtype, f->dtype_src);
    bad |= put_str(o, src, "file_type", f->file_type, f->file_type_src);
    bad |= put_str(o, src, "quant_method", f->quant_method, f->quant_method_src);
    if (f->quant_bits.src)
        bad |= put_fact(o, src, "quant_bits", &f->quant_bits);
    for (size_t i = 0; i < f->n_dtypes; i++) {
        const ap_dtype_use *u = &f->dtypes[i];
        bad |= json_array_append_new(mix, json_pack("{s:s,s:I,s:I,s:I}", "dtype", u->name,
                                                   "tensors", (json_int_t)u->tensors,
                                                   "parameters", (json_int_t)u->parameters,
                                                   "bytes", (json_int_t)u->bytes));
    }
    bad |= json_object_set_new(o, "quantization_mix", mix);
    mix = NULL;
    if (f->gguf_version) {
        bad |= json_object_set_new(o, "gguf_version", json_integer(f->gguf_version));
        bad |= json_object_set_new(o, "gguf_alignment", json_integer((json_int_t)f->gguf_alignment));
    }
    bad |= json_object_set_new(o, "sources", src);
    src = NULL;
    if (bad)
        goto fail;
    return o;
fail:
    json_decref(o);
    json_decref(src);
    json_decref(mix);
    return NULL;
}

/* ---- declared parameter counts ---- */

int ap_parse_param_count(const char *s, uint64_t *out)
{
    char buf[64];
    size_t n = 0;
    double v, mult = 1;
    char *end;

    while (*s == ' ')
        s++;
    for (; *s && n + 1 < sizeof buf; s++)
        if (*s != ',' && *s != '_' && *s != ' ')
            buf[n++] = *s;
    if (*s)
        return 0;
    buf[n] = '\0';
    if (n == 0)
        return 0;
    switch (buf[n - 1]) {
    case 'T': case 't': mult = 1e12; buf[--n] = '\0'; break;
    case 'B': case 'b': case 'G': case 'g': mult = 1e9; buf[--n] = '\0'; break;
    case 'M': case 'm': mult = 1e6; buf[--n] = '\0'; break;
    case 'K': case 'k': mult = 1e3; buf[--n] = '\0'; break;
    default: break;
    }
    if (n == 0 || !(isdigit((unsigned char)buf[0]) || buf[0] == '.'))
        return 0;
    errno = 0;
    v = strtod(buf, &end);
    if (errno || *end || v < 0 || v * mult > 1.8e19)
        return 0;
    *out = (uint64_t)(v * mult + 0.5);
    return 1;
}
