/*
 * mkgguf.c - fixture writer: a real GGUF file (v2 or v3) with a published
 * model's metadata and tensor shapes. The data section is left sparse
 * (ftruncate), so a 16 GB model costs a few kilobytes of disk.
 *
 * usage: mkgguf --preset NAME [--type F32|F16|BF16|Q8_0|Q4_0|Q4_K_M]
 *               [--version 2|3] [--alignment N] [--int-type u16|u32|i32|u64]
 *               [--kv-array] [--rope-freqs] [--context N] [--license L]
 *               [--split N] OUT.gguf
 *   --kv-array   write head_count_kv as a per-layer array
 *   --rope-freqs add a rope_freqs.weight buffer (not a parameter)
 *   --split N    write N parts OUT-0000i-of-0000N.gguf (OUT without .gguf)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "presets.h"

enum { GT_U8 = 0, GT_I8, GT_U16, GT_I16, GT_U32, GT_I32, GT_F32, GT_BOOL, GT_STRING, GT_ARRAY, GT_U64, GT_I64, GT_F64 };

typedef struct tinfo {
    char name[160];
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[4];
    uint64_t bytes;
} tinfo;

typedef struct wctx {
    tinfo *t;
    size_t n, cap;
    const char *qtype;
    int fail;
} wctx;

static uint32_t pick(const char *q, int role, const uint64_t *ne, int nd)
{
    uint32_t want;
    if (nd == 1 || role == R_NORM || role == R_BIAS || role == R_ROUTER)
        return 0; /* F32 */
    if (!strcmp(q, "F32")) want = 0;
    else if (!strcmp(q, "F16")) want = 1;
    else if (!strcmp(q, "BF16")) want = 30;
    else if (!strcmp(q, "Q8_0")) want = 8;
    else if (!strcmp(q, "Q4_0")) want = 2;
    else /* Q4_K_M */ want = (role == R_ATTN_V || role == R_FFN_DOWN || role == R_OUTPUT) ? 14 : 12;
    {
        const ap_ggml_type *t = ap_ggml_type_get(want);
        if (ne[0] % t->block_elems == 0)
            return want;
    }
    return ne[0] % 32 == 0 ? 8 : 1; /* llama.cpp's fallbacks: Q8_0, then F16 */
}

static void add(void *ctx, const char *name, int role, const uint64_t *shape, int nd)
{
    wctx *w = ctx;
    tinfo *t;
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 256;
        tinfo *nt = realloc(w->t, nc * sizeof *nt);
        if (!nt) {
            w->fail = 1;
            return;
        }
        w->t = nt;
        w->cap = nc;
    }
    t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = (uint32_t)nd;
    for (int i = 0; i < nd; i++)
        t->ne[i] = shape[i];
    t->type = pick(w->qtype, role, shape, nd);
    if (ap_ggml_tensor_bytes(t->type, t->ne, t->n_dims, &t->bytes, NULL) != 0)
        w->fail = 1;
}

static void w32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {v & 255, v >> 8 & 255, v >> 16 & 255, v >> 24 & 255};
    fwrite(b, 1, 4, f);
}
static void w64(FILE *f, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    fwrite(b, 1, 8, f);
}
static void wstr(FILE *f, const char *s)
{
    w64(f, strlen(s));
    fwrite(s, 1, strlen(s), f);
}
static void kv_str(FILE *f, const char *k, const char *v)
{
    wstr(f, k);
    w32(f, GT_STRING);
    wstr(f, v);
}
static int int_type = GT_U32;
static void wint(FILE *f, int t, uint64_t v)
{
    switch (t) {
    case GT_U16: { unsigned char b[2] = {v & 255, v >> 8 & 255}; fwrite(b, 1, 2, f); break; }
    case GT_U64: w64(f, v); break;
    default: w32(f, (uint32_t)v); break;
    }
}
static void kv_int(FILE *f, const char *arch, const char *k, uint64_t v)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, k);
    wstr(f, key);
    w32(f, (uint32_t)int_type);
    wint(f, int_type, v);
}
static void kv_u32(FILE *f, const char *k, uint32_t v)
{
    wstr(f, k);
    w32(f, GT_U32);
    w32(f, v);
}

static int write_part(const char *out, const preset *p, const wctx *w, size_t t0, size_t t1,
                      int version, uint32_t alignment, int kv_array, const char *qtype,
                      uint64_t context, const char *license, unsigned part, unsigned nparts)
{
    FILE *f = fopen(out, "wb");
    uint64_t n_kv = 0, off = 0, data_start;
    long pos;
    int fd;
    const char *arch = p->model_type;
    uint32_t ftype = !strcmp(qtype, "F32") ? 0 : !strcmp(qtype, "F16") ? 1 : !strcmp(qtype, "BF16") ? 32
                   : !strcmp(qtype, "Q8_0") ? 7 : !strcmp(qtype, "Q4_0") ? 2 : 15;
    if (!f) {
        fprintf(stderr, "mkgguf: cannot create '%s': %s\n", out, strerror(errno));
        return 1;
    }
    fwrite("GGUF", 1, 4, f);
    w32(f, (uint32_t)version);
    w64(f, t1 - t0);
    if (part == 1) {
        n_kv = 14 + (alignment != 32) + (p->experts ? 2 : 0) + (p->sliding_window ? 1 : 0) + (license ? 1 : 0) +
               (nparts > 1 ? 2 : 0);
    } else {
        n_kv = 2;
    }
    w64(f, n_kv);
    if (part == 1) {
        kv_str(f, "general.architecture", arch);
        kv_str(f, "general.name", p->name);
        kv_u32(f, "general.file_type", ftype);
        if (alignment != 32)
            kv_u32(f, "general.alignment", alignment);
        if (license)
            kv_str(f, "general.license", license);
        kv_int(f, arch, "block_count", p->layers);
        kv_int(f, arch, "context_length", context);
        kv_int(f, arch, "embedding_length", p->hidden);
        kv_int(f, arch, "feed_forward_length", p->inter);
        kv_int(f, arch, "attention.head_count", p->heads);
        if (kv_array) {
            char key[256];
            snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
            wstr(f, key);
            w32(f, GT_ARRAY);
            w32(f, GT_I32);
            w64(f, p->layers);
            for (uint64_t i = 0; i < p->layers; i++)
                w32(f, (uint32_t)p->kv_heads);
        } else {
            kv_int(f, arch, "attention.head_count_kv", p->kv_heads);
        }
        kv_int(f, arch, "rope.dimension_count", p->head_dim);
        {   /* a float value, to exercise skipping */
            char key[256];
            float eps = 1e-5f;
            snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
            wstr(f, key);
            w32(f, GT_F32);
            fwrite(&eps, 4, 1, f);
        }
        if (p->experts) {
            kv_int(f, arch, "expert_count", p->experts);
            kv_int(f, arch, "expert_used_count", p->experts_used);
        }
        if (p->sliding_window)
            kv_int(f, arch, "attention.sliding_window", p->sliding_window);
        kv_str(f, "tokenizer.ggml.model", "gpt2");
        /* the vocabulary: an array of strings, as real files carry */
        wstr(f, "tokenizer.ggml.tokens");
        w32(f, GT_ARRAY);
        w32(f, GT_STRING);
        w64(f, p->vocab);
        for (uint64_t i = 0; i < p->vocab; i++) {
            char tok[32];
            snprintf(tok, sizeof tok, "t%llu", (unsigned long long)i);
            wstr(f, tok);
        }
        {   /* a bool value */
            wstr(f, "tokenizer.ggml.add_bos_token");
            w32(f, GT_BOOL);
            fputc(1, f);
        }
    }
    if (nparts > 1) {
        wstr(f, "split.no");
        w32(f, GT_U16);
        wint(f, GT_U16, part - 1);
        wstr(f, "split.count");
        w32(f, GT_U16);
        wint(f, GT_U16, nparts);
    }
    for (size_t i = t0; i < t1; i++) {
        const tinfo *t = &w->t[i];
        wstr(f, t->name);
        w32(f, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            w64(f, t->ne[d]);
        w32(f, t->type);
        w64(f, off);
        off += (t->bytes + alignment - 1) / alignment * alignment;
    }
    pos = ftell(f);
    data_start = ((uint64_t)pos + alignment - 1) / alignment * alignment;
    for (uint64_t i = (uint64_t)pos; i < data_start; i++)
        fputc(0, f);
    if (fflush(f) != 0) {
        fprintf(stderr, "mkgguf: cannot write '%s'\n", out);
        fclose(f);
        return 1;
    }
    fd = fileno(f);
    if (ftruncate(fd, (off_t)(data_start + off)) != 0) {
        fprintf(stderr, "mkgguf: cannot extend '%s': %s\n", out, strerror(errno));
        fclose(f);
        return 1;
    }
    return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"preset", required_argument, NULL, 'p'}, {"type", required_argument, NULL, 't'},
        {"version", required_argument, NULL, 'v'}, {"alignment", required_argument, NULL, 'a'},
        {"int-type", required_argument, NULL, 'i'}, {"kv-array", no_argument, NULL, 'k'},
        {"rope-freqs", no_argument, NULL, 'r'}, {"context", required_argument, NULL, 'c'},
        {"license", required_argument, NULL, 'l'}, {"split", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0}};
    const char *pname = "tiny", *qtype = "F16", *license = NULL;
    int version = 3, kv_array = 0, rope = 0, c, rc = 0;
    uint32_t alignment = 32;
    unsigned nparts = 1;
    uint64_t context = 0;
    const preset *p;
    wctx w = {0};

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': pname = optarg; break;
        case 't': qtype = optarg; break;
        case 'v': version = atoi(optarg); break;
        case 'a': alignment = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'i':
            int_type = !strcmp(optarg, "u16") ? GT_U16 : !strcmp(optarg, "i32") ? GT_I32
                     : !strcmp(optarg, "u64") ? GT_U64 : GT_U32;
            break;
        case 'k': kv_array = 1; break;
        case 'r': rope = 1; break;
        case 'c': context = strtoull(optarg, NULL, 10); break;
        case 'l': license = optarg; break;
        case 's': nparts = (unsigned)strtoul(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    if (optind != argc - 1 || !(p = preset_find(pname)) || alignment == 0 || nparts == 0) {
        fprintf(stderr, "usage: mkgguf --preset NAME [--type T] [--version 2|3] [--alignment N] OUT\n");
        return 2;
    }
    if (!context)
        context = p->context;
    w.qtype = qtype;
    preset_tensors(p, 1, add, &w);
    if (rope) {
        uint64_t ne = p->head_dim / 2;
        add(&w, "rope_freqs.weight", R_NORM, &ne, 1);
    }
    if (w.fail) {
        fprintf(stderr, "mkgguf: cannot lay out the tensors\n");
        free(w.t);
        return 1;
    }
    if (nparts == 1) {
        rc = write_part(argv[optind], p, &w, 0, w.n, version, alignment, kv_array, qtype, context, license, 1, 1);
    } else {
        for (unsigned i = 1; i <= nparts && rc == 0; i++) {
            char path[4096];
            size_t t0 = w.n * (i - 1) / nparts, t1 = w.n * i / nparts;
            snprintf(path, sizeof path, "%s-%05u-of-%05u.gguf", argv[optind], i, nparts);
            rc = write_part(path, p, &w, t0, t1, version, alignment, kv_array, qtype, context, license, i, nparts);
        }
    }
    free(w.t);
    return rc;
}
