/*
 * mksafetensors.c - fixture writer: a Hugging Face style model folder with
 * real safetensors headers for a published model's tensor shapes, an
 * optional model.safetensors.index.json (sharded) and config.json. The data
 * sections are left sparse (ftruncate): a 140 GB model costs kilobytes.
 *
 * usage: mksafetensors --preset NAME [--dtype BF16|F16|F32|F8_E4M3]
 *                      [--shards N] [--no-config] [--index-total-size N]
 *                      [--context N] [--config-only] OUTDIR
 *   --shards N             N files model-0000i-of-0000N.safetensors and an index
 *                          (default 1: model.safetensors)
 *   --index-total-size N   write N as the index's metadata.total_size (writers disagree)
 *   --config-only          only config.json
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "presets.h"

typedef struct tinfo {
    char name[160];
    int nd;
    uint64_t shape[3];
    uint64_t bytes;
    const char *dtype;
} tinfo;

typedef struct wctx {
    tinfo *t;
    size_t n, cap;
    const char *dtype;
    int fail;
} wctx;

static unsigned bits_of(const char *d)
{
    if (!strcmp(d, "F32")) return 32;
    if (!strcmp(d, "F8_E4M3") || !strcmp(d, "U8")) return 8;
    return 16;
}

static void add(void *ctx, const char *name, int role, const uint64_t *shape, int nd)
{
    wctx *w = ctx;
    tinfo *t;
    uint64_t n = 1;
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
    snprintf(t->name, sizeof t->name, "%s", name);
    t->nd = nd;
    for (int i = 0; i < nd; i++) {
        t->shape[i] = shape[i];
        n *= shape[i];
    }
    /* FP8 checkpoints keep norms in BF16 */
    t->dtype = (!strcmp(w->dtype, "F8_E4M3") && (role == R_NORM || role == R_BIAS || role == R_EMBED ||
                                                 role == R_OUTPUT)) ? "BF16" : w->dtype;
    t->bytes = n * bits_of(t->dtype) / 8;
}

static int write_shard(const char *path, const wctx *w, size_t t0, size_t t1)
{
    json_t *h = json_object(), *meta = json_pack("{s:s}", "format", "pt");
    char *js;
    size_t len, padded;
    uint64_t off = 0;
    FILE *f;
    int rc = 1;

    json_object_set_new(h, "__metadata__", meta);
    for (size_t i = t0; i < t1; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < w->t[i].nd; d++)
            json_array_append_new(shape, json_integer((json_int_t)w->t[i].shape[d]));
        json_object_set_new(h, w->t[i].name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", w->t[i].dtype, "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + w->t[i].bytes)));
        off += w->t[i].bytes;
    }
    js = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!js)
        return 1;
    len = strlen(js);
    padded = (len + 7) / 8 * 8;   /* the reference writer pads the header to 8 bytes with spaces */
    f = fopen(path, "wb");
    if (f) {
        unsigned char b[8];
        for (int i = 0; i < 8; i++)
            b[i] = (unsigned char)((uint64_t)padded >> (8 * i));
        fwrite(b, 1, 8, f);
        fwrite(js, 1, len, f);
        for (size_t i = len; i < padded; i++)
            fputc(' ', f);
        if (fflush(f) == 0 && ftruncate(fileno(f), (off_t)(8 + padded + off)) == 0)
            rc = 0;
        if (fclose(f) != 0)
            rc = 1;
    }
    if (rc)
        fprintf(stderr, "mksafetensors: cannot write '%s': %s\n", path, strerror(errno));
    free(js);
    return rc;
}

static int write_config(const char *dir, const preset *p, const char *dtype, uint64_t context)
{
    char path[4096];
    json_t *c = json_pack("{s:[s],s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:f,s:b}",
                          "architectures", p->hf_arch, "model_type", p->model_type,
                          "vocab_size", (json_int_t)p->vocab, "hidden_size", (json_int_t)p->hidden,
                          "intermediate_size", (json_int_t)p->inter,
                          "num_hidden_layers", (json_int_t)p->layers,
                          "num_attention_heads", (json_int_t)p->heads,
                          "num_key_value_heads", (json_int_t)p->kv_heads,
                          "max_position_embeddings", (json_int_t)context,
                          "torch_dtype", !strcmp(dtype, "F32") ? "float32" : !strcmp(dtype, "F16") ? "float16" : "bfloat16",
                          "rms_norm_eps", 1e-5, "tie_word_embeddings", p->tied);
    int rc;
    if (!c)
        return 1;
    if (p->experts) {
        json_object_set_new(c, "num_local_experts", json_integer((json_int_t)p->experts));
        json_object_set_new(c, "num_experts_per_tok", json_integer((json_int_t)p->experts_used));
    }
    if (p->sliding_window)
        json_object_set_new(c, "sliding_window", json_integer((json_int_t)p->sliding_window));
    else if (!strcmp(p->model_type, "qwen2")) {
        /* Qwen2.5 declares a window it does not use */
        json_object_set_new(c, "sliding_window", json_integer(131072));
        json_object_set_new(c, "use_sliding_window", json_false());
        json_object_set_new(c, "max_window_layers", json_integer(28));
    } else {
        json_object_set_new(c, "sliding_window", json_null());
    }
    if (!strcmp(dtype, "F8_E4M3"))
        json_object_set_new(c, "quantization_config",
                            json_pack("{s:s,s:s}", "quant_method", "fp8", "activation_scheme", "dynamic"));
    snprintf(path, sizeof path, "%s/config.json", dir);
    rc = json_dump_file(c, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(c);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"preset", required_argument, NULL, 'p'}, {"dtype", required_argument, NULL, 'd'},
        {"shards", required_argument, NULL, 's'}, {"no-config", no_argument, NULL, 'n'},
        {"index-total-size", required_argument, NULL, 'T'}, {"context", required_argument, NULL, 'c'},
        {"config-only", no_argument, NULL, 'C'}, {NULL, 0, NULL, 0}};
    const char *pname = "tiny", *dtype = "BF16", *dir;
    unsigned shards = 1;
    int config = 1, config_only = 0, c, rc = 0;
    long long total_size = -1;
    uint64_t context = 0, total = 0;
    const preset *p;
    wctx w = {0};

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': pname = optarg; break;
        case 'd': dtype = optarg; break;
        case 's': shards = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'n': config = 0; break;
        case 'T': total_size = strtoll(optarg, NULL, 10); break;
        case 'c': context = strtoull(optarg, NULL, 10); break;
        case 'C': config_only = 1; break;
        default: return 2;
        }
    }
    if (optind != argc - 1 || !(p = preset_find(pname)) || shards == 0) {
        fprintf(stderr, "usage: mksafetensors --preset NAME [--dtype D] [--shards N] OUTDIR\n");
        return 2;
    }
    dir = argv[optind];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mksafetensors: cannot create '%s': %s\n", dir, strerror(errno));
        return 1;
    }
    if (!context)
        context = p->context;
    if (config && write_config(dir, p, dtype, context) != 0) {
        fprintf(stderr, "mksafetensors: cannot write config.json\n");
        return 1;
    }
    if (config_only)
        return 0;
    w.dtype = dtype;
    preset_tensors(p, 0, add, &w);
    if (w.fail) {
        free(w.t);
        return 1;
    }
    for (size_t i = 0; i < w.n; i++)
        total += w.t[i].bytes;
    if (shards == 1) {
        char path[4096];
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = write_shard(path, &w, 0, w.n);
    } else {
        json_t *idx = json_object(), *wm = json_object();
        char path[4096];
        size_t t0 = 0;
        uint64_t acc = 0;
        for (unsigned s = 1; s <= shards && rc == 0; s++) {
            char name[128];
            size_t t1 = t0;
            /* split by bytes: shard s ends once the running total passes s/shards */
            while (t1 < w.n && (s == shards || acc + w.t[t1].bytes <= total / shards * s || t1 == t0)) {
                acc += w.t[t1].bytes;
                t1++;
            }
            snprintf(name, sizeof name, "model-%05u-of-%05u.safetensors", s, shards);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            rc = write_shard(path, &w, t0, t1);
            for (size_t i = t0; i < t1; i++)
                json_object_set_new(wm, w.t[i].name, json_string(name));
            t0 = t1;
        }
        json_object_set_new(idx, "metadata", json_pack("{s:I}", "total_size",
                                                       (json_int_t)(total_size >= 0 ? (uint64_t)total_size : total)));
        json_object_set_new(idx, "weight_map", wm);
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        if (rc == 0 && json_dump_file(idx, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
            rc = 1;
        json_decref(idx);
    }
    free(w.t);
    return rc;
}
