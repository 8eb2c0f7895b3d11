/*
 * gguf.c - the GGUF header reader (versions 2 and 3).
 *
 * Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64
 * metadata count; metadata pairs (string key, u32 value type, value);
 * tensor infos (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 * u64 offset); padding to general.alignment (default 32); the data section.
 * A string is a u64 length and that many bytes; an array is a u32 element
 * type, a u64 count and the elements.
 *
 * The reader streams the header through a 64 KiB buffer and never reads
 * the data section. Every count and length is capped before use. As in
 * ggml's own gguf.cpp, tensor i must start exactly where tensor i-1 ended,
 * padded to the alignment (no gaps, no overlaps), and the data section
 * must lie inside the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "util.h"

enum {
    GT_U8 = 0, GT_I8, GT_U16, GT_I16, GT_U32, GT_I32, GT_F32, GT_BOOL, GT_STRING, GT_ARRAY,
    GT_U64, GT_I64, GT_F64, GT_COUNT
};
static const char *const gt_names[GT_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"
};
static const unsigned gt_size[GT_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

#define RD_BUF (64 * 1024)
#define MAX_NESTING 4
#define GGUF_MAX_METADATA (256u << 20)  /* bytes of header + metadata (real vocabularies: tens of MiB) */

typedef struct rd {
    int fd;
    const char *path;
    uint64_t file_size;   /* bytes */
    uint64_t off;         /* file offset of buf[0] */
    size_t pos, len;      /* read position and fill of buf */
    unsigned char buf[RD_BUF];
    ap_error *err;
} rd;

static uint64_t rd_tell(const rd *r)
{
    return r->off + r->pos;
}

static int rd_fail(rd *r, const char *fmt, ...) AP_PRINTF(2, 3);
static int rd_fail(rd *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ap_error_set_at(r->err, AP_ERR_INPUT, r->path, 0, 0, "offset %" PRIu64 ": %s", rd_tell(r), msg);
}

static int rd_fill(rd *r)
{
    ssize_t n;
    if (r->pos < r->len)
        return AP_OK;
    r->off += r->len;
    r->pos = r->len = 0;
    do
        n = read(r->fd, r->buf, sizeof r->buf);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return ap_error_errno(r->err, AP_ERR_IO, errno, "cannot read", r->path);
    if (n == 0)
        return ap_error_set_at(r->err, AP_ERR_INPUT, r->path, 0, 0,
                               "offset %" PRIu64 ": truncated header (unexpected end of file)", r->off);
    r->len = (size_t)n;
    return AP_OK;
}

/* Copy n bytes (dst may be NULL to skip). */
static int rd_bytes(rd *r, void *dst, uint64_t n)
{
    unsigned char *d = dst;
    while (n > 0) {
        size_t k;
        int rc = rd_fill(r);
        if (rc)
            return rc;
        k = r->len - r->pos;
        if (k > n)
            k = (size_t)n;
        if (d) {
            memcpy(d, r->buf + r->pos, k);
            d += k;
        }
        r->pos += k;
        n -= k;
    }
    return AP_OK;
}

/* Skip n bytes cheaply: seek when beyond the buffer. */
static int rd_skip(rd *r, uint64_t n)
{
    uint64_t in_buf = r->len - r->pos, target;
    if (n <= in_buf) {
        r->pos += (size_t)n;
        return AP_OK;
    }
    if (!ap_add_u64(rd_tell(r), n, &target) || target > r->file_size)
        return rd_fail(r, "truncated header (a value of %" PRIu64 " bytes runs past the end of the file)", n);
    if (lseek(r->fd, (off_t)target, SEEK_SET) < 0)
        return ap_error_errno(r->err, AP_ERR_IO, errno, "cannot seek", r->path);
    r->off = target;
    r->pos = r->len = 0;
    return AP_OK;
}

static int rd_u32(rd *r, uint32_t *v)
{
    unsigned char b[4];
    int rc = rd_bytes(r, b, 4);
    if (rc)
        return rc;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return AP_OK;
}

static int rd_u64(rd *r, uint64_t *v)
{
    unsigned char b[8];
    int rc = rd_bytes(r, b, 8);
    if (rc)
        return rc;
    *v = 0;
    for (int i = 7; i >= 0; i--)
        *v = *v << 8 | b[i];
    return AP_OK;
}

/* A string: into a new buffer when out != NULL (NUL-terminated), else skipped. */
static int rd_string(rd *r, uint64_t cap, const char *what, char **out)
{
    uint64_t n;
    int rc = rd_u64(r, &n);
    if (rc)
        return rc;
    if (n > cap)
        return rd_fail(r, "%s length %" PRIu64 " is over the limit", what, n);
    if (!out)
        return rd_skip(r, n);
    *out = malloc((size_t)n + 1);
    if (!*out)
        return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory reading '%s'", r->path);
    rc = rd_bytes(r, *out, n);
    if (rc) {
        free(*out);
        *out = NULL;
        return rc;
    }
    (*out)[n] = '\0';
    if (memchr(*out, '\0', (size_t)n)) {
        free(*out);
        *out = NULL;
        return rd_fail(r, "%s holds a NUL byte", what);
    }
    return AP_OK;
}

/* ---- metadata values we keep ---- */

typedef struct gval {
    int present;              /* the key was read */
    int type;                 /* GT_* of the value (of the elements for an array) */
    int is_array;
    int has_int;              /* an integer or bool scalar */
    int negative;
    uint64_t u;               /* scalar integer (or max of an integer array) */
    char *str;                /* string scalar */
    uint64_t n;               /* array length */
    uint32_t *items;          /* integer array elements, when n <= AP_MODEL_MAX_LAYERS */
    int has_f;                /* an f32 scalar */
    double f;
} gval;

static void gval_free(gval *v)
{
    free(v->str);
    free(v->items);
    memset(v, 0, sizeof *v);
}

/* Read one scalar integer-like value of type t into *u (negative flagged). */
static int rd_scalar(rd *r, int t, uint64_t *u, int *neg)
{
    unsigned char b[8] = {0};
    uint64_t x = 0;
    int rc = rd_bytes(r, b, gt_size[t]);
    if (rc)
        return rc;
    for (int i = (int)gt_size[t] - 1; i >= 0; i--)
        x = x << 8 | b[i];
    *neg = 0;
    switch (t) {
    case GT_I8: if (x & 0x80) *neg = 1; break;
    case GT_I16: if (x & 0x8000) *neg = 1; break;
    case GT_I32: if (x & 0x80000000u) *neg = 1; break;
    case GT_I64: if (x >> 63) *neg = 1; break;
    default: break;
    }
    *u = x;
    return AP_OK;
}

static int is_int_type(int t)
{
    return t == GT_U8 || t == GT_I8 || t == GT_U16 || t == GT_I16 || t == GT_U32 || t == GT_I32 ||
           t == GT_U64 || t == GT_I64 || t == GT_BOOL;
}

/* Read (keep != NULL) or skip a value of type t. depth bounds nested arrays. */
static int rd_value(rd *r, uint32_t t, const char *key, gval *keep, unsigned depth)
{
    int rc;
    /* The metadata is headers: bound its size, or nested arrays of empty
     * arrays could walk a hostile file end to end (found by fuzz_gguf). */
    if (rd_tell(r) > GGUF_MAX_METADATA)
        return rd_fail(r, "metadata is larger than %u MiB", GGUF_MAX_METADATA >> 20);
    if (t >= GT_COUNT)
        return rd_fail(r, "metadata '%s' has unknown value type %" PRIu32, key, t);
    if (t == GT_STRING)
        return rd_string(r, AP_MODEL_MAX_STRING, "string", keep ? &keep->str : NULL);
    if (t == GT_ARRAY) {
        uint32_t et;
        uint64_t n, bytes;
        if ((rc = rd_u32(r, &et)) || (rc = rd_u64(r, &n)))
            return rc;
        if (et >= GT_COUNT)
            return rd_fail(r, "metadata '%s' is an array of unknown type %" PRIu32, key, et);
        if (n > AP_MODEL_MAX_ARRAY)
            return rd_fail(r, "metadata '%s' array of %" PRIu64 " elements is over the limit", key, n);
        if (et == GT_ARRAY && depth >= MAX_NESTING)
            return rd_fail(r, "metadata '%s' nests arrays too deeply", key);
        if (keep) {
            keep->is_array = 1;
            keep->type = (int)et;
            keep->n = n;
        }
        if (gt_size[et] > 0) {
            if (keep && is_int_type((int)et) && n <= AP_MODEL_MAX_LAYERS) {
                keep->items = calloc(n ? (size_t)n : 1, sizeof *keep->items);
                if (!keep->items)
                    return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory reading '%s'", r->path);
                for (uint64_t i = 0; i < n; i++) {
                    uint64_t u;
                    int neg;
                    if ((rc = rd_scalar(r, (int)et, &u, &neg)))
                        return rc;
                    if (neg || u > UINT32_MAX)
                        return rd_fail(r, "metadata '%s' has an out-of-range element %" PRIu64, key, u);
                    keep->items[i] = (uint32_t)u;
                    if (u > keep->u)
                        keep->u = u;
                }
                return AP_OK;
            }
            if (!ap_mul_u64(n, gt_size[et], &bytes))
                return rd_fail(r, "metadata '%s' array size overflows", key);
            return rd_skip(r, bytes);
        }
        for (uint64_t i = 0; i < n; i++)
            if ((rc = rd_value(r, et, key, NULL, depth + 1)))
                return rc;
        return AP_OK;
    }
    if (keep && is_int_type((int)t)) {
        keep->type = (int)t;
        keep->has_int = 1;
        return rd_scalar(r, (int)t, &keep->u, &keep->negative);
    }
    if (keep && t == GT_F32) {
        uint32_t bits;
        float fl;
        keep->type = (int)t;
        if ((rc = rd_u32(r, &bits)))
            return rc;
        memcpy(&fl, &bits, sizeof fl);
        keep->has_f = 1;
        keep->f = fl;
        return AP_OK;
    }
    if (keep)
        keep->type = (int)t;
    return rd_skip(r, gt_size[t]);
}

/* Keys we read; arch-specific ones are "{arch}.<suffix>". */
enum {
    K_ARCH, K_NAME, K_LICENSE, K_FILE_TYPE, K_ALIGNMENT, K_SPLIT_COUNT, K_TOKENS,
    K_BLOCK_COUNT, K_CONTEXT, K_EMBED, K_HEADS, K_KV_HEADS, K_KEY_LEN, K_VALUE_LEN, K_KV_LORA,
    K_ROPE_DIM, K_SWA, K_SWA_PATTERN, K_EXPERTS, K_EXPERTS_USED, K_VOCAB, K_FFN, K_EXPERT_FFN,
    K_ROPE_TYPE, K_ROPE_FACTOR, K_ROPE_ORIG, K_COUNT
};
static const char *const general_keys[] = {
    [K_ARCH] = "general.architecture", [K_NAME] = "general.name",
    [K_LICENSE] = "general.license", [K_FILE_TYPE] = "general.file_type",
    [K_ALIGNMENT] = "general.alignment", [K_SPLIT_COUNT] = "split.count",
    [K_TOKENS] = "tokenizer.ggml.tokens",
};
static const char *const arch_suffixes[] = {
    [K_BLOCK_COUNT] = "block_count", [K_CONTEXT] = "context_length",
    [K_EMBED] = "embedding_length", [K_HEADS] = "attention.head_count",
    [K_KV_HEADS] = "attention.head_count_kv", [K_KEY_LEN] = "attention.key_length",
    [K_VALUE_LEN] = "attention.value_length", [K_KV_LORA] = "attention.kv_lora_rank",
    [K_ROPE_DIM] = "rope.dimension_count", [K_SWA] = "attention.sliding_window",
    [K_SWA_PATTERN] = "attention.sliding_window_pattern", [K_EXPERTS] = "expert_count",
    [K_EXPERTS_USED] = "expert_used_count", [K_VOCAB] = "vocab_size",
    [K_FFN] = "feed_forward_length", [K_EXPERT_FFN] = "expert_feed_forward_length",
    [K_ROPE_TYPE] = "rope.scaling.type", [K_ROPE_FACTOR] = "rope.scaling.factor",
    [K_ROPE_ORIG] = "rope.scaling.original_context_length",
};

typedef struct kept {
    gval v[K_COUNT];
    char *prefix[K_COUNT];    /* the architecture prefix an arch key was read with */
} kept;

static int match_key(const char *key, char **prefix)
{
    const char *dot;
    *prefix = NULL;
    for (int k = 0; k < K_COUNT; k++)
        if (k < (int)AP_ARRAY_LEN(general_keys) && general_keys[k] && strcmp(key, general_keys[k]) == 0)
            return k;
    dot = strchr(key, '.');
    if (!dot || dot == key)
        return -1;
    for (int k = K_BLOCK_COUNT; k < K_COUNT; k++)
        if (strcmp(dot + 1, arch_suffixes[k]) == 0) {
            *prefix = strndup(key, (size_t)(dot - key));
            return *prefix ? k : -2;
        }
    return -1;
}

/* An integer fact from a kept value; error when it is not a non-negative integer. */
static int kept_uint(rd *r, const gval *v, const char *key, uint64_t *out)
{
    if (v->is_array) {
        if (!v->items)
            return rd_fail(r, "metadata '%s' is an array of %" PRIu64 " elements, expected an integer", key, v->n);
        *out = v->u;
        return AP_OK;
    }
    if (!v->has_int || v->negative)
        return rd_fail(r, "metadata '%s' is not a non-negative integer", key);
    *out = v->u;
    return AP_OK;
}

static const char *kname(int k)
{
    return k < (int)AP_ARRAY_LEN(general_keys) && general_keys[k] ? general_keys[k] : arch_suffixes[k];
}

static int apply_kept(rd *r, kept *kp, ap_model_facts *f, uint64_t *alignment)
{
    int rc;
    uint64_t u;
    const char *arch = kp->v[K_ARCH].str;
    static const struct { int k; size_t off; } nums[] = {
        {K_BLOCK_COUNT, offsetof(ap_model_facts, layers)},
        {K_CONTEXT, offsetof(ap_model_facts, context_length)},
        {K_EMBED, offsetof(ap_model_facts, hidden)},
        {K_HEADS, offsetof(ap_model_facts, heads)},
        {K_KV_HEADS, offsetof(ap_model_facts, kv_heads)},
        {K_KEY_LEN, offsetof(ap_model_facts, head_dim)},
        {K_VALUE_LEN, offsetof(ap_model_facts, v_head_dim)},
        {K_KV_LORA, offsetof(ap_model_facts, kv_lora_rank)},
        {K_ROPE_DIM, offsetof(ap_model_facts, qk_rope_head_dim)},
        {K_SWA, offsetof(ap_model_facts, sliding_window)},
        {K_EXPERTS, offsetof(ap_model_facts, experts)},
        {K_EXPERTS_USED, offsetof(ap_model_facts, experts_used)},
        {K_VOCAB, offsetof(ap_model_facts, vocab)},
        {K_EXPERT_FFN, offsetof(ap_model_facts, ffn)},
        {K_FFN, offsetof(ap_model_facts, ffn)},
    };

    if (kp->v[K_ALIGNMENT].present) {
        const gval *v = &kp->v[K_ALIGNMENT];
        if (v->is_array || v->type != GT_U32 || v->u == 0 || (v->u & (v->u - 1)) != 0)
            return rd_fail(r, "general.alignment must be a u32 power of two");
        *alignment = v->u;
    }
    if (arch && f->architecture == NULL) {
        if (ap_facts_set_str(&f->architecture, &f->architecture_src, arch, AP_SRC_GGUF))
            return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory");
    }
    if (kp->v[K_NAME].str && !f->name && ap_facts_set_str(&f->name, &f->name_src, kp->v[K_NAME].str, AP_SRC_GGUF))
        return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory");
    if (kp->v[K_LICENSE].str && !f->license &&
        ap_facts_set_str(&f->license, &f->license_src, kp->v[K_LICENSE].str, AP_SRC_GGUF))
        return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory");
    if (kp->v[K_FILE_TYPE].has_int && !f->file_type) {
        const char *ft = ap_gguf_file_type_name(kp->v[K_FILE_TYPE].u);
        char buf[32];
        if (!ft) {
            snprintf(buf, sizeof buf, "unknown-%" PRIu64, kp->v[K_FILE_TYPE].u);
            ft = buf;
        }
        if (ap_facts_set_str(&f->file_type, &f->file_type_src, ft, AP_SRC_GGUF))
            return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory");
    }
    if (kp->v[K_TOKENS].is_array && f->vocab.src == AP_SRC_NONE)
        ap_facts_set(&f->vocab, kp->v[K_TOKENS].n, AP_SRC_GGUF);

    for (size_t i = 0; i < AP_ARRAY_LEN(nums); i++) {
        int k = nums[i].k;
        ap_fact *dst = (ap_fact *)((char *)f + nums[i].off);
        if (!kp->prefix[k] || !arch || strcmp(kp->prefix[k], arch) != 0)
            continue;
        if (k == K_ROPE_DIM && !kp->prefix[K_KV_LORA])
            continue;   /* the RoPE size matters to the KV cache only with MLA */
        if ((rc = kept_uint(r, &kp->v[k], kname(k), &u)))
            return rc;
        if (dst->src == AP_SRC_NONE)
            ap_facts_set(dst, u, AP_SRC_GGUF);
    }
    /* rope scaling (YaRN): the context the model accepts beyond context_length */
    if (kp->prefix[K_ROPE_TYPE] && arch && strcmp(kp->prefix[K_ROPE_TYPE], arch) == 0 && kp->v[K_ROPE_TYPE].str &&
        strlen(kp->v[K_ROPE_TYPE].str) < 64 && !f->rope_type) {
        if (!(f->rope_type = strdup(kp->v[K_ROPE_TYPE].str)))
            return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory");
    }
    if (kp->prefix[K_ROPE_FACTOR] && arch && strcmp(kp->prefix[K_ROPE_FACTOR], arch) == 0 &&
        kp->v[K_ROPE_FACTOR].has_f && kp->v[K_ROPE_FACTOR].f > 0 && kp->v[K_ROPE_FACTOR].f <= 1024)
        f->rope_factor = kp->v[K_ROPE_FACTOR].f;
    if (kp->prefix[K_ROPE_ORIG] && arch && strcmp(kp->prefix[K_ROPE_ORIG], arch) == 0 &&
        kp->v[K_ROPE_ORIG].has_int && !kp->v[K_ROPE_ORIG].negative && kp->v[K_ROPE_ORIG].u <= (1ull << 32))
        f->rope_orig_ctx = kp->v[K_ROPE_ORIG].u;
    /* per-layer KV heads (0 = a layer without attention) */
    if (kp->prefix[K_KV_HEADS] && arch && strcmp(kp->prefix[K_KV_HEADS], arch) == 0 &&
        kp->v[K_KV_HEADS].is_array && !f->kv_heads_layer) {
        const gval *v = &kp->v[K_KV_HEADS];
        if (f->layers.src == AP_SRC_NONE || v->n != f->layers.v)
            return rd_fail(r, "metadata '%s.attention.head_count_kv' has %" PRIu64 " entries, not one per block", arch, v->n);
        f->kv_heads_layer = v->items;
        kp->v[K_KV_HEADS].items = NULL;
    }
    /* sliding-window layers: a period (every Nth layer is global) or a per-layer array */
    if (kp->prefix[K_SWA_PATTERN] && arch && strcmp(kp->prefix[K_SWA_PATTERN], arch) == 0 &&
        f->layers.src != AP_SRC_NONE && f->layers.v <= AP_MODEL_MAX_LAYERS && !f->swa_layer) {
        const gval *v = &kp->v[K_SWA_PATTERN];
        uint64_t n = f->layers.v;
        f->swa_layer = calloc(n ? (size_t)n : 1, 1);
        if (!f->swa_layer)
            return ap_error_set(r->err, AP_ERR_NOMEM, "out of memory");
        if (v->is_array) {
            if (!v->items || v->n != n)
                return rd_fail(r, "metadata '%s.attention.sliding_window_pattern' has %" PRIu64 " entries, not one per block", arch, v->n);
            for (uint64_t i = 0; i < n; i++)
                f->swa_layer[i] = v->items[i] != 0;
        } else if (v->has_int && !v->negative && v->u > 0) {
            for (uint64_t i = 0; i < n; i++)
                f->swa_layer[i] = ((i + 1) % v->u) != 0;
        } else {
            free(f->swa_layer);
            f->swa_layer = NULL;
        }
    }
    return AP_OK;
}

int ap_gguf_read(const char *path, ap_model_facts *f, ap_error *err)
{
    rd *r = NULL;
    kept kp;
    struct stat st;
    unsigned char magic[4];
    uint32_t version;
    uint64_t n_tensors, n_kv, alignment = 32, data_off = 0, data_start;
    char *key = NULL, *tname = NULL;
    int rc = AP_OK;

    memset(&kp, 0, sizeof kp);
    r = calloc(1, sizeof *r);
    if (!r)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory reading '%s'", path);
    r->path = path;
    r->err = err;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc = ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open", path);
        goto out;
    }
    if (fstat(r->fd, &st) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot stat", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "not a regular file");
        goto out;
    }
    r->file_size = (uint64_t)st.st_size;

    if ((rc = rd_bytes(r, magic, 4)))
        goto out;
    if (memcmp(magic, "GGUF", 4) != 0) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "offset 0: not a GGUF file (bad magic)");
        goto out;
    }
    if ((rc = rd_u32(r, &version)))
        goto out;
    if (version != 2 && version != 3) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "offset 4: unsupported GGUF version %" PRIu32 " (supported: 2, 3)", version);
        goto out;
    }
    if ((rc = rd_u64(r, &n_tensors)) || (rc = rd_u64(r, &n_kv)))
        goto out;
    if (n_tensors > AP_MODEL_MAX_TENSORS) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "offset 8: %" PRIu64 " tensors is over the limit of %u", n_tensors,
                             AP_MODEL_MAX_TENSORS);
        goto out;
    }
    if (n_kv > AP_MODEL_MAX_KV) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "offset 16: %" PRIu64 " metadata pairs is over the limit of %u", n_kv,
                             AP_MODEL_MAX_KV);
        goto out;
    }

    for (uint64_t i = 0; i < n_kv; i++) {
        uint32_t t;
        char *prefix = NULL;
        int k;
        if ((rc = rd_string(r, 65535, "metadata key", &key)) || (rc = rd_u32(r, &t)))
            goto out;
        k = match_key(key, &prefix);
        if (k == -2) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (k >= 0 && prefix && kp.v[K_ARCH].str && strcmp(prefix, kp.v[K_ARCH].str) != 0) {
            free(prefix);   /* a key of another architecture (writers put general.architecture first) */
            prefix = NULL;
            k = -1;
        }
        if (k >= 0) {
            gval_free(&kp.v[k]);
            free(kp.prefix[k]);
            kp.prefix[k] = prefix;
            kp.v[k].present = 1;
        }
        rc = rd_value(r, t, key, k >= 0 ? &kp.v[k] : NULL, 0);
        if (rc)
            goto out;
        if (k >= 0 && t == GT_STRING && kp.v[k].str == NULL)
            kp.v[k].type = GT_STRING;
        if (k >= 0 && t != GT_STRING && (k == K_ARCH || k == K_NAME || k == K_LICENSE)) {
            rc = rd_fail(r, "metadata '%s' must be a string, not %s", key, t < GT_COUNT ? gt_names[t] : "?");
            goto out;
        }
        free(key);
        key = NULL;
    }
    if ((rc = apply_kept(r, &kp, f, &alignment)))
        goto out;

    f->gguf_version = version;
    f->gguf_alignment = alignment;
    for (uint64_t i = 0; i < n_tensors; i++) {
        uint32_t n_dims, type;
        uint64_t ne[AP_MODEL_MAX_DIMS] = {0}, offset, bytes, elems, padded;
        const ap_ggml_type *gt;
        uint64_t at = rd_tell(r);
        if ((rc = rd_string(r, AP_MODEL_MAX_NAME, "tensor name", &tname)) || (rc = rd_u32(r, &n_dims)))
            goto out;
        if (n_dims > AP_MODEL_MAX_DIMS) {
            rc = rd_fail(r, "tensor '%s' has %" PRIu32 " dimensions (at most 4)", tname, n_dims);
            goto out;
        }
        for (uint32_t d = 0; d < n_dims; d++) {
            if ((rc = rd_u64(r, &ne[d])))
                goto out;
            if (ne[d] > INT64_MAX) {
                rc = rd_fail(r, "tensor '%s' has a negative dimension %" PRIu64, tname, ne[d]);
                goto out;
            }
        }
        if ((rc = rd_u32(r, &type)) || (rc = rd_u64(r, &offset)))
            goto out;
        gt = ap_ggml_type_get(type);
        switch (ap_ggml_tensor_bytes(type, ne, n_dims, &bytes, &elems)) {
        case 0:
            break;
        case 1:
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "offset %" PRIu64 ": tensor '%s' has unknown ggml type id %" PRIu32,
                                 at, tname, type);
            goto out;
        case 2:
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "offset %" PRIu64 ": tensor '%s': row of %" PRIu64
                                 " elements is not a multiple of the %s block size %" PRIu32,
                                 at, tname, ne[0], gt->name, gt->block_elems);
            goto out;
        default:
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "offset %" PRIu64 ": tensor '%s': size overflows", at, tname);
            goto out;
        }
        if (offset != data_off) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "offset %" PRIu64 ": tensor '%s' has data offset %" PRIu64
                                 ", expected %" PRIu64 " (tensors must be contiguous, padded to %" PRIu64 ")",
                                 at, tname, offset, data_off, alignment);
            goto out;
        }
        padded = bytes % alignment ? bytes + (alignment - bytes % alignment) : bytes;
        if (padded < bytes || !ap_add_u64(data_off, padded, &data_off)) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "offset %" PRIu64 ": tensor '%s': data section overflows", at, tname);
            goto out;
        }
        if (ap_facts_has_tensor(f, tname)) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "offset %" PRIu64 ": tensor '%s' appears twice",
                                 at, tname);
            goto out;
        }
        if ((rc = ap_facts_add_tensor(f, tname, gt->name, elems, bytes, err)))
            goto out;
        free(tname);
        tname = NULL;
    }
    data_start = rd_tell(r);
    if (data_start % alignment)
        data_start += alignment - data_start % alignment;
    if (data_start > r->file_size || data_off > r->file_size - data_start) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "data section of %" PRIu64 " bytes at offset %" PRIu64
                             " runs past the end of the file (%" PRIu64 " bytes): truncated file",
                             data_off, data_start, r->file_size);
        goto out;
    }
    f->n_files++;
    f->file_bytes += r->file_size;
    f->tensors_src = AP_SRC_GGUF;
    if (!f->format)
        f->format = "gguf";
out:
    free(key);
    free(tname);
    for (int k = 0; k < K_COUNT; k++) {
        gval_free(&kp.v[k]);
        free(kp.prefix[k]);
    }
    if (r && r->fd >= 0)
        close(r->fd);
    free(r);
    return rc;
}
