/*
 * mkdemo.c - writes the files the demo manifest (manifests/demo.yaml)
 * refers to, so that no binary blob is committed:
 *
 *   DIR/models/tiny-chat.gguf         a tiny GGUF v3 llama model that
 *                                     llama.cpp loads and runs (2 layers,
 *                                     grouped-query attention, F32 random
 *                                     weights, a SentencePiece-style
 *                                     vocabulary: 3 control tokens, 256 byte
 *                                     tokens, a few words)
 *   DIR/models/tiny-chat.gguf.sha256  its pin (coreutils format)
 *   DIR/runtimes/llama.cpp/...        the runtime's files: with --runtime RT,
 *                                     a copy of the runtime folder RT (the
 *                                     real server: bin/llama-server, lib/,
 *                                     LICENSE; tools/demo-server builds it
 *                                     as build/<preset>/demo-runtime);
 *                                     without, a stand-in script and licence
 *   DIR/runtimes/llama.cpp.sha256     their pins
 *   DIR/config/...                    site configuration and its pins
 *
 * Output is deterministic: the same bytes on every run.
 * usage: mkdemo [--runtime RT] DIR
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "util.h"

enum { GGUF_U32 = 4, GGUF_I32 = 5, GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9 };

static void die(const char *what, const char *path)
{
    fprintf(stderr, "mkdemo: %s '%s': %s\n", what, path, strerror(errno));
    exit(2);
}

static void put_u32(FILE *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fwrite(b, 1, 4, f);
}

static void put_u64(FILE *f, uint64_t v)
{
    put_u32(f, (uint32_t)v);
    put_u32(f, (uint32_t)(v >> 32));
}

static void put_str(FILE *f, const char *s)
{
    put_u64(f, strlen(s));
    fwrite(s, 1, strlen(s), f);
}

static void kv_str(FILE *f, const char *k, const char *v)
{
    put_str(f, k);
    put_u32(f, GGUF_STRING);
    put_str(f, v);
}

static void kv_u32(FILE *f, const char *k, uint32_t v)
{
    put_str(f, k);
    put_u32(f, GGUF_U32);
    put_u32(f, v);
}

static void kv_f32(FILE *f, const char *k, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    put_str(f, k);
    put_u32(f, GGUF_F32);
    put_u32(f, u);
}

static void kv_bool(FILE *f, const char *k, int v)
{
    put_str(f, k);
    put_u32(f, GGUF_BOOL);
    fputc(v ? 1 : 0, f);
}

static void kv_arr_head(FILE *f, const char *k, uint32_t type, uint64_t n)
{
    put_str(f, k);
    put_u32(f, GGUF_ARRAY);
    put_u32(f, type);
    put_u64(f, n);
}

/* The vocabulary, SentencePiece style (tokenizer.ggml.model "llama"), as
 * llama.cpp reads it: <unk> <s> </s>, then the 256 byte tokens <0x00>..<0xFF>
 * (byte fallback: any text tokenizes), then whole words with the
 * SentencePiece word-start mark U+2581 (so the nonsense reads as words). */
static const char *const demo_words[] = {
    "the", "site", "model", "bundle", "signed", "offline", "gap", "air", "verify",
    "install", "audit", "plan", "memory", "context", "token", "policy", "runtime",
    "server", "release", "key", "hash", "trust", "local", "network", "none", "is",
    "and", "of", "to", "in", "a", "with", "every", "inside", "safe", "ready",
    "answer", "question", "assistant", "operator", "checked", "pinned", "sovereign",
    "GPU", "fits", "runs", "here", "no", "internet", "needed", "we", "it",
};
#define N_WORDS (sizeof demo_words / sizeof demo_words[0])
#define N_SPECIAL 3
#define FIRST_WORD (N_SPECIAL + 256)

struct tensor {
    char name[64];
    uint64_t ne0, ne1; /* ne1 = 1 for vectors */
};

#define N_EMBD 64
#define N_FF 128
#define N_VOCAB (FIRST_WORD + N_WORDS)
#define N_LAYER 2
#define N_HEAD 4
#define N_HEAD_KV 2
#define HEAD_DIM (N_EMBD / N_HEAD)

static size_t tensors(struct tensor *t)
{
    size_t n = 0;
#define T(nm, a, b) (snprintf(t[n].name, sizeof t[n].name, "%s", nm), t[n].ne0 = (a), t[n].ne1 = (b), n++)
    T("token_embd.weight", N_EMBD, N_VOCAB);
    for (int l = 0; l < N_LAYER; l++) {
        char nm[64];
#define L(suffix, a, b) (snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix), T(nm, a, b))
        L("attn_norm.weight", N_EMBD, 1);
        L("attn_q.weight", N_EMBD, N_EMBD);
        L("attn_k.weight", N_EMBD, HEAD_DIM * N_HEAD_KV);
        L("attn_v.weight", N_EMBD, HEAD_DIM * N_HEAD_KV);
        L("attn_output.weight", N_EMBD, N_EMBD);
        L("ffn_norm.weight", N_EMBD, 1);
        L("ffn_gate.weight", N_EMBD, N_FF);
        L("ffn_up.weight", N_EMBD, N_FF);
        L("ffn_down.weight", N_FF, N_EMBD);
#undef L
    }
    T("output_norm.weight", N_EMBD, 1);
    T("output.weight", N_EMBD, N_VOCAB);
#undef T
    return n;
}

static void write_gguf(const char *path)
{
    struct tensor t[64];
    size_t nt = tensors(t);
    uint64_t off = 0, rng = 0x9E3779B97F4A7C15ull;
    FILE *f = fopen(path, "wb");
    long pos;
    if (!f)
        die("cannot create", path);
    fwrite("GGUF", 1, 4, f);
    put_u32(f, 3);
    put_u64(f, nt);
    put_u64(f, 24);
    kv_str(f, "general.architecture", "llama");
    kv_str(f, "general.name", "tiny-chat (airpack demo)");
    kv_str(f, "general.license", "apache-2.0");
    kv_u32(f, "general.file_type", 0); /* all F32 */
    kv_u32(f, "general.alignment", 32);
    kv_u32(f, "llama.block_count", N_LAYER);
    kv_u32(f, "llama.context_length", 2048);
    kv_u32(f, "llama.embedding_length", N_EMBD);
    kv_u32(f, "llama.feed_forward_length", N_FF);
    kv_u32(f, "llama.attention.head_count", N_HEAD);
    kv_u32(f, "llama.attention.head_count_kv", N_HEAD_KV);
    kv_u32(f, "llama.rope.dimension_count", HEAD_DIM);
    kv_f32(f, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_u32(f, "llama.vocab_size", (uint32_t)N_VOCAB);
    kv_f32(f, "llama.rope.freq_base", 10000.0f);
    kv_str(f, "tokenizer.ggml.model", "llama");
    kv_u32(f, "tokenizer.ggml.unknown_token_id", 0);
    kv_u32(f, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(f, "tokenizer.ggml.eos_token_id", 2);
    kv_bool(f, "tokenizer.ggml.add_bos_token", 1);
    kv_bool(f, "tokenizer.ggml.add_eos_token", 0);
    kv_arr_head(f, "tokenizer.ggml.tokens", GGUF_STRING, N_VOCAB);
    put_str(f, "<unk>");
    put_str(f, "<s>");
    put_str(f, "</s>");
    for (int i = 0; i < 256; i++) {
        char tok[8];
        snprintf(tok, sizeof tok, "<0x%02X>", i);
        put_str(f, tok);
    }
    for (size_t i = 0; i < N_WORDS; i++) {
        char tok[64];
        snprintf(tok, sizeof tok, "\xE2\x96\x81%s", demo_words[i]); /* U+2581 + word */
        put_str(f, tok);
    }
    /* scores: words win over bytes when SentencePiece merges */
    kv_arr_head(f, "tokenizer.ggml.scores", GGUF_F32, N_VOCAB);
    for (size_t i = 0; i < N_VOCAB; i++) {
        float sc = i < FIRST_WORD ? 0.0f : -1.0f - (float)(i - FIRST_WORD) / 100.0f;
        uint32_t u;
        memcpy(&u, &sc, 4);
        put_u32(f, u);
    }
    /* token types: 2 unknown, 3 control, 6 byte, 1 normal */
    kv_arr_head(f, "tokenizer.ggml.token_type", GGUF_I32, N_VOCAB);
    for (size_t i = 0; i < N_VOCAB; i++)
        put_u32(f, i == 0 ? 2 : i < N_SPECIAL ? 3 : i < FIRST_WORD ? 6 : 1);
    for (size_t i = 0; i < nt; i++) {
        int dims = t[i].ne1 == 1 ? 1 : 2;
        put_str(f, t[i].name);
        put_u32(f, (uint32_t)dims);
        put_u64(f, t[i].ne0);
        if (dims == 2)
            put_u64(f, t[i].ne1);
        put_u32(f, 0); /* GGML_TYPE_F32 */
        put_u64(f, off);
        off += t[i].ne0 * t[i].ne1 * 4;
        off = (off + 31) & ~(uint64_t)31;
    }
    pos = ftell(f);
    while (pos % 32) {
        fputc(0, f);
        pos++;
    }
    off = 0;
    for (size_t i = 0; i < nt; i++) {
        uint64_t n = t[i].ne0 * t[i].ne1;
        int out = strcmp(t[i].name, "output.weight") == 0;
        for (uint64_t k = 0; k < n; k++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            float v = (float)((int)(rng % 2001) - 1000) / 25000.0f;
            if (out) {
                /* the output row of each token: words get larger logits
                 * than bytes and control tokens, so text comes out */
                uint64_t tok = k / t[i].ne0;
                v *= tok >= FIRST_WORD ? 8.0f : 0.25f;
            }
            uint32_t u;
            memcpy(&u, &v, 4);
            put_u32(f, u);
        }
        off += n * 4;
        while (off % 32) {
            fputc(0, f);
            off++;
        }
    }
    if (fclose(f) != 0)
        die("cannot write", path);
}

static void write_text(const char *path, const char *text, int exec)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        die("cannot create", path);
    fputs(text, f);
    if (fclose(f) != 0)
        die("cannot write", path);
    if (chmod(path, exec ? 0755 : 0644) != 0)
        die("cannot chmod", path);
}

static void mkdirs(const char *dir, const char *sub)
{
    char *p = ap_path_join(dir, sub);
    char *q = p;
    while ((q = strchr(q + 1, '/'))) {
        *q = '\0';
        mkdir(p, 0755);
        *q = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        die("cannot create folder", p);
    free(p);
}

/* Write a pin file listing names (relative to base). */
static void pin(const char *sums_path, const char *base, const char *const *names)
{
    FILE *f = fopen(sums_path, "wb");
    if (!f)
        die("cannot create", sums_path);
    for (size_t i = 0; names[i]; i++) {
        char hex[65];
        ap_error err;
        char *p = ap_path_join(base, names[i]);
        if (ap_sha256_file_hex(p, 0, hex, NULL, &err) != AP_OK) {
            fprintf(stderr, "mkdemo: %s\n", err.msg);
            exit(2);
        }
        fprintf(f, "%s  %s\n", hex, names[i]);
        free(p);
    }
    if (fclose(f) != 0)
        die("cannot write", sums_path);
}

static void copy_file(const char *from, const char *to, int exec)
{
    char buf[65536];
    size_t n;
    FILE *in = fopen(from, "rb"), *out;
    if (!in)
        die("cannot open", from);
    out = fopen(to, "wb");
    if (!out)
        die("cannot create", to);
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            die("cannot write", to);
    if (ferror(in))
        die("cannot read", from);
    fclose(in);
    if (fclose(out) != 0)
        die("cannot write", to);
    if (chmod(to, exec ? 0755 : 0644) != 0)
        die("cannot chmod", to);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names of the plain files in DIR, sorted, NULL-terminated (at most 63). */
static size_t list_files(const char *dir, char **names)
{
    size_t n = 0;
    struct dirent *e;
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    while ((e = readdir(dp)) && n < 63) {
        struct stat st;
        char *p;
        if (e->d_name[0] == '.')
            continue;
        p = ap_path_join(dir, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            names[n++] = strdup(e->d_name);
        free(p);
    }
    closedir(dp);
    qsort(names, n, sizeof *names, cmp_str);
    names[n] = NULL;
    return n;
}

/* The runtime folder: a copy of RT (bin/llama-server, the files in lib/, LICENSE) or,
 * without RT, a stand-in script. Either way with its pins. */
static void write_runtime(const char *d, const char *rt)
{
    char path[4096], from[4096], base[4096], *libs[64], *old[64];
    const char *pins[80];
    size_t np = 0, nlibs = 0, nold;
    snprintf(base, sizeof base, "%s/runtimes/llama.cpp", d);
    /* no library of an earlier run is left behind */
    snprintf(path, sizeof path, "%s/lib", base);
    nold = list_files(path, old);
    for (size_t i = 0; i < nold; i++) {
        char *p = ap_path_join(path, old[i]);
        unlink(p);
        free(p);
        free(old[i]);
    }
    rmdir(path);
    snprintf(path, sizeof path, "%s/bin/llama-server", base);
    unlink(path);
    pins[np++] = "LICENSE";
    pins[np++] = "bin/llama-server";
    if (!rt) {
        write_text(path,
                   "#!/bin/sh\n"
                   "# airpack demo: stands where the llama.cpp server binary goes.\n"
                   "echo 'llama-server (airpack demo runtime)'\n",
                   1);
        snprintf(path, sizeof path, "%s/LICENSE", base);
        write_text(path, "MIT License\n\nCopyright (c) 2023-2026 The ggml authors\n", 0);
    } else {
        snprintf(from, sizeof from, "%s/bin/llama-server", rt);
        copy_file(from, path, 1);
        snprintf(from, sizeof from, "%s/LICENSE", rt);
        snprintf(path, sizeof path, "%s/LICENSE", base);
        copy_file(from, path, 0);
        snprintf(from, sizeof from, "%s/lib", rt);
        nlibs = list_files(from, libs);
        if (nlibs == 0) {
            fprintf(stderr, "mkdemo: no libraries in '%s'\n", from);
            exit(2);
        }
        mkdirs(base, "lib");
        for (size_t i = 0; i < nlibs; i++) {
            char *src = ap_path_join(from, libs[i]), *dst, rel[512];
            snprintf(path, sizeof path, "%s/lib", base);
            dst = ap_path_join(path, libs[i]);
            copy_file(src, dst, 0);
            free(src);
            free(dst);
            snprintf(rel, sizeof rel, "lib/%s", libs[i]);
            free(libs[i]);
            libs[i] = strdup(rel);
            pins[np++] = libs[i];
        }
    }
    pins[np] = NULL;
    snprintf(path, sizeof path, "%s/runtimes/llama.cpp.sha256", d);
    pin(path, base, pins);
    for (size_t i = 0; i < nlibs; i++)
        free(libs[i]);
}

int main(int argc, char **argv)
{
    char path[4096];
    const char *d, *rt = NULL;
    if (argc == 4 && strcmp(argv[1], "--runtime") == 0) {
        rt = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: mkdemo [--runtime RT] DIR\n");
        return 2;
    }
    d = argv[1];
    mkdirs(d, "models");
    mkdirs(d, "runtimes/llama.cpp/bin");
    mkdirs(d, "config");

    snprintf(path, sizeof path, "%s/models/tiny-chat.gguf", d);
    write_gguf(path);
    snprintf(path, sizeof path, "%s/models/tiny-chat.gguf.sha256", d);
    {
        char *base = ap_path_dirname(path);
        pin(path, base, (const char *const[]){"tiny-chat.gguf", NULL});
        free(base);
    }

    write_runtime(d, rt);

    snprintf(path, sizeof path, "%s/config/server.env", d);
    write_text(path, "LLAMA_ARG_HOST=127.0.0.1\nLLAMA_ARG_PORT=8080\nLLAMA_OFFLINE=1\n", 0);
    snprintf(path, sizeof path, "%s/config/prompt.txt", d);
    write_text(path, "You are the internal assistant of an air-gapped site.\n", 0);
    snprintf(path, sizeof path, "%s/config.sha256", d);
    {
        char base[4096];
        snprintf(base, sizeof base, "%s/config", d);
        pin(path, base, (const char *const[]){"prompt.txt", "server.env", NULL});
    }
    printf("mkdemo: wrote the demo files under '%s'\n", d);
    return 0;
}
