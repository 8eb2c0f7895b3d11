/*
 * test_gguf.c - the GGUF header reader: facts from valid v2 and v3 files
 * (metadata of every width, per-layer arrays, alignment), exact parameter
 * and byte totals, and a clear AP_ERR_INPUT, never a crash, for each
 * malformed header: every truncation, huge lengths and counts, unknown
 * value types and ggml type ids, gapped or overlapping offsets, too many
 * tensors, a data section past the end of the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"

enum { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 };

typedef struct buf {
    unsigned char d[1 << 16];
    size_t n;
} buf;

static char dir[256];

static void put(buf *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof b->d);
    memcpy(b->d + b->n, p, n);
    b->n += n;
}
static void u32(buf *b, uint32_t v)
{
    unsigned char x[4] = {v & 255, v >> 8 & 255, v >> 16 & 255, v >> 24 & 255};
    put(b, x, 4);
}
static void u64(buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, 8);
}
static void str(buf *b, const char *s)
{
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void kv_u32(buf *b, const char *k, uint32_t v)
{
    str(b, k);
    u32(b, U32);
    u32(b, v);
}
static void kv_str(buf *b, const char *k, const char *v)
{
    str(b, k);
    u32(b, STR);
    str(b, v);
}
static void tensor(buf *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off)
{
    str(b, name);
    u32(b, nd);
    for (uint32_t i = 0; i < nd; i++)
        u64(b, ne[i]);
    u32(b, type);
    u64(b, off);
}
static void head(buf *b, uint32_t version, uint64_t nt, uint64_t nkv)
{
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, nt);
    u64(b, nkv);
}

/* Write b, pad to align, and extend by data bytes (sparse). */
static const char *write_gguf(const buf *b, uint64_t align, uint64_t data, const char *name)
{
    static char path[512];
    FILE *f;
    uint64_t start = (b->n + align - 1) / align * align;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b->d, 1, b->n, f), b->n);
    assert_int_equal(fflush(f), 0);
    assert_int_equal(ftruncate(fileno(f), (off_t)(start + data)), 0);
    fclose(f);
    return path;
}

/* The standard valid file: llama, 2 layers, 2 tensors. Returns data bytes. */
static uint64_t valid(buf *b, uint32_t version)
{
    uint64_t ne1[1] = {64}, ne2[2] = {64, 8};
    head(b, version, 2, 9);
    kv_str(b, "general.architecture", "llama");
    kv_str(b, "general.name", "Tiny");
    kv_str(b, "general.license", "apache-2.0");
    kv_u32(b, "general.file_type", 2);
    kv_u32(b, "llama.block_count", 2);
    kv_u32(b, "llama.context_length", 2048);
    kv_u32(b, "llama.embedding_length", 64);
    kv_u32(b, "llama.attention.head_count", 4);
    kv_u32(b, "llama.attention.head_count_kv", 2);
    tensor(b, "output_norm.weight", 1, ne1, 0, 0);          /* F32: 256 bytes */
    tensor(b, "output.weight", 2, ne2, 2, 256);             /* Q4_0: 16 blocks x 18 = 288 */
    return 256 + 288;
}

static ap_model_facts *load_ok(const char *path)
{
    ap_model_facts *f = NULL;
    ap_error err;
    int rc;
    ap_error_clear(&err);
    rc = ap_model_facts_load(path, AP_FMT_AUTO, &f, &err);
    if (rc)
        fail_msg("unexpected error: %s", err.msg);
    return f;
}

static void expect_error(const char *path, const char *needle)
{
    ap_model_facts *f = NULL;
    ap_error err;
    int rc;
    ap_error_clear(&err);
    rc = ap_model_facts_load(path, AP_FMT_GGUF, &f, &err);
    if (rc != AP_ERR_INPUT)
        fail_msg("expected AP_ERR_INPUT for '%s', got %d (%s)", needle, rc, err.msg);
    assert_null(f);
    if (!strstr(err.msg, needle))
        fail_msg("message '%s' does not say '%s'", err.msg, needle);
    assert_non_null(strstr(err.msg, path));   /* names the file */
}

static void test_valid_v3(void **state)
{
    buf *b = calloc(1, sizeof *b);
    uint64_t data;
    ap_model_facts *f;
    json_t *j;
    (void)state;
    data = valid(b, 3);
    f = load_ok(write_gguf(b, 32, data, "v3.gguf"));
    assert_string_equal(f->format, "gguf");
    assert_int_equal(f->gguf_version, 3);
    assert_int_equal(f->gguf_alignment, 32);
    assert_string_equal(f->architecture, "llama");
    assert_int_equal(f->architecture_src, AP_SRC_GGUF);
    assert_string_equal(f->name, "Tiny");
    assert_string_equal(f->license, "apache-2.0");
    assert_string_equal(f->file_type, "Q4_0");
    assert_int_equal(f->parameters, 64 + 512);
    assert_int_equal(f->weights_bytes, 256 + 288);
    assert_int_equal(f->n_tensors, 2);
    assert_int_equal(f->layers.v, 2);
    assert_int_equal(f->context_length.v, 2048);
    assert_int_equal(f->heads.v, 4);
    assert_int_equal(f->kv_heads.v, 2);
    assert_int_equal(f->head_dim.v, 16);
    assert_int_equal(f->head_dim.src, AP_SRC_DERIVED);
    assert_string_equal(f->dtype, "Q4_0");
    assert_int_equal(f->n_dtypes, 2);
    j = ap_model_facts_to_json(f);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "parameters")), 576);
    assert_int_equal(json_integer_value(json_object_get(j, "weights_bytes")), 544);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "sources"), "layers")), "gguf header");
    json_decref(j);
    ap_model_facts_free(f);
    free(b);
}

static void test_valid_v2_and_widths(void **state)
{
    buf *b = calloc(1, sizeof *b);
    uint64_t ne[2] = {256, 4};
    ap_model_facts *f;
    (void)state;
    head(b, 2, 2, 11);
    kv_str(b, "general.architecture", "qwen2");
    kv_u32(b, "general.alignment", 64);
    /* block_count as u16, context as u64, heads as i32, kv heads as a per-layer i32 array */
    str(b, "qwen2.block_count"); u32(b, U16); put(b, "\x03\x00", 2);
    str(b, "qwen2.context_length"); u32(b, U64); u64(b, 32768);
    str(b, "qwen2.attention.head_count"); u32(b, I32); u32(b, 8);
    str(b, "qwen2.attention.head_count_kv"); u32(b, ARR); u32(b, I32); u64(b, 3); u32(b, 2); u32(b, 0); u32(b, 4);
    str(b, "qwen2.embedding_length"); u32(b, U32); u32(b, 256);
    /* values to skip: f64, bool, array of strings, nested array, an arch key of another arch */
    str(b, "x.f64"); u32(b, F64); u64(b, 0);
    str(b, "x.flag"); u32(b, BOOL); put(b, "\x01", 1);
    str(b, "tokenizer.ggml.tokens"); u32(b, ARR); u32(b, STR); u64(b, 3); str(b, "a"); str(b, "bb"); str(b, "");
    str(b, "x.nested"); u32(b, ARR); u32(b, ARR); u64(b, 1); u32(b, U8); u64(b, 2); put(b, "\x01\x02", 2);
    /* tensors: BF16 256x4 then Q8_0 256x4, each padded to 64 */
    tensor(b, "a.weight", 2, ne, 30, 0);            /* 2048 bytes */
    tensor(b, "b.weight", 2, ne, 8, 2048);          /* 32 blocks x 34 = 1088 -> padded 1088+64-1088%64 */
    (void)0;
    f = load_ok(write_gguf(b, 64, 2048 + 1088, "v2.gguf"));
    assert_int_equal(f->gguf_version, 2);
    assert_int_equal(f->gguf_alignment, 64);
    assert_int_equal(f->layers.v, 3);
    assert_int_equal(f->context_length.v, 32768);
    assert_int_equal(f->heads.v, 8);
    assert_int_equal(f->kv_heads.v, 4);             /* the largest */
    assert_non_null(f->kv_heads_layer);
    assert_int_equal(f->kv_heads_layer[1], 0);
    assert_int_equal(f->vocab.v, 3);                /* the tokens array's length */
    assert_int_equal(f->parameters, 2048);
    assert_int_equal(f->weights_bytes, 2048 + 1088);
    ap_model_facts_free(f);
    free(b);
}

static void test_every_truncation(void **state)
{
    buf *b = calloc(1, sizeof *b), *c = calloc(1, sizeof *c);
    size_t full;
    (void)state;
    valid(b, 3);
    full = b->n;
    /* every prefix of the header is refused cleanly */
    for (size_t n = 0; n < full; n++) {
        ap_model_facts *f = NULL;
        ap_error err;
        char path[512];
        FILE *fp;
        snprintf(path, sizeof path, "%s/trunc.gguf", dir);
        fp = fopen(path, "wb");
        fwrite(b->d, 1, n, fp);
        fclose(fp);
        ap_error_clear(&err);
        assert_int_equal(ap_model_facts_load(path, AP_FMT_GGUF, &f, &err), AP_ERR_INPUT);
        assert_null(f);
        assert_true(err.msg[0] != '\0');
    }
    /* the whole header without its data section */
    expect_error(write_gguf(b, 32, 0, "nodata.gguf"), "truncated file");
    expect_error(write_gguf(b, 32, 100, "shortdata.gguf"), "runs past the end of the file");
    free(b);
    free(c);
}

static void test_bad_magic_and_version(void **state)
{
    buf *b = calloc(1, sizeof *b);
    (void)state;
    valid(b, 1);
    expect_error(write_gguf(b, 32, 544, "v1.gguf"), "unsupported GGUF version 1");
    valid(b, 4);
    expect_error(write_gguf(b, 32, 544, "v4.gguf"), "unsupported GGUF version 4");
    valid(b, 3);
    memcpy(b->d, "GGML", 4);
    expect_error(write_gguf(b, 32, 544, "magic.gguf"), "not a GGUF file");
    free(b);
}

static void test_huge_lengths(void **state)
{
    buf *b = calloc(1, sizeof *b);
    (void)state;
    head(b, 3, 0, 1);
    u64(b, 1ull << 62);   /* key length */
    expect_error(write_gguf(b, 32, 0, "hugekey.gguf"), "metadata key length");
    head(b, 3, 0, 1);
    str(b, "k"); u32(b, STR); u64(b, 1ull << 40);
    expect_error(write_gguf(b, 32, 0, "hugestr.gguf"), "string length");
    head(b, 3, 0, 1);
    str(b, "k"); u32(b, ARR); u32(b, U8); u64(b, 1ull << 50);
    expect_error(write_gguf(b, 32, 0, "hugearr.gguf"), "elements is over the limit");
    head(b, 3, 0, 1);
    str(b, "k"); u32(b, ARR); u32(b, U32); u64(b, 1u << 20);   /* within the cap, past the end */
    expect_error(write_gguf(b, 32, 0, "longarr.gguf"), "runs past the end of the file");
    head(b, 3, 1ull << 40, 0);
    expect_error(write_gguf(b, 32, 0, "tensors.gguf"), "tensors is over the limit");
    head(b, 3, 0, 1ull << 33);
    expect_error(write_gguf(b, 32, 0, "kvs.gguf"), "metadata pairs is over the limit");
    head(b, 3, 1, 0);
    str(b, "t"); u32(b, 5);
    expect_error(write_gguf(b, 32, 0, "dims.gguf"), "dimensions (at most 4)");
    head(b, 3, 1, 0);
    u64(b, 1u << 30);
    expect_error(write_gguf(b, 32, 0, "tname.gguf"), "tensor name length");
    free(b);
}

static void test_bad_values(void **state)
{
    buf *b = calloc(1, sizeof *b);
    uint64_t ne[1] = {64}, ne33[1] = {33};
    (void)state;
    head(b, 3, 0, 1);
    str(b, "k"); u32(b, 13);
    expect_error(write_gguf(b, 32, 0, "vtype.gguf"), "unknown value type 13");
    head(b, 3, 0, 1);
    str(b, "k"); u32(b, ARR); u32(b, 77); u64(b, 1);
    expect_error(write_gguf(b, 32, 0, "atype.gguf"), "array of unknown type 77");
    head(b, 3, 0, 2);
    kv_str(b, "general.architecture", "llama");
    str(b, "llama.block_count"); u32(b, I32); u32(b, 0xFFFFFFFFu);
    expect_error(write_gguf(b, 32, 0, "neg.gguf"), "not a non-negative integer");
    head(b, 3, 0, 1);
    kv_u32(b, "general.architecture", 7);
    expect_error(write_gguf(b, 32, 0, "archtype.gguf"), "must be a string");
    head(b, 3, 0, 1);
    kv_u32(b, "general.alignment", 48);
    expect_error(write_gguf(b, 32, 0, "align.gguf"), "power of two");
    head(b, 3, 1, 0);
    tensor(b, "t", 1, ne, 99, 0);
    expect_error(write_gguf(b, 32, 256, "type99.gguf"), "unknown ggml type id 99");
    head(b, 3, 1, 0);
    tensor(b, "t", 1, ne, 4, 0);   /* removed Q4_2 */
    expect_error(write_gguf(b, 32, 256, "type4.gguf"), "unknown ggml type id 4");
    head(b, 3, 1, 0);
    tensor(b, "t", 1, ne33, 2, 0);
    expect_error(write_gguf(b, 32, 256, "block.gguf"), "not a multiple of the Q4_0 block size 32");
    free(b);
}

static void test_offsets(void **state)
{
    buf *b = calloc(1, sizeof *b);
    uint64_t ne[1] = {64};
    (void)state;
    head(b, 3, 2, 0);
    tensor(b, "a", 1, ne, 0, 0);
    tensor(b, "b", 1, ne, 0, 0);      /* overlaps a */
    expect_error(write_gguf(b, 32, 512, "overlap.gguf"), "tensor 'b' has data offset 0, expected 256");
    head(b, 3, 2, 0);
    tensor(b, "a", 1, ne, 0, 0);
    tensor(b, "b", 1, ne, 0, 512);    /* gap after a */
    expect_error(write_gguf(b, 32, 1024, "gap.gguf"), "expected 256");
    head(b, 3, 2, 0);
    tensor(b, "a", 1, ne, 0, 0);
    tensor(b, "a", 1, ne, 0, 256);    /* the same name twice */
    expect_error(write_gguf(b, 32, 512, "dupname.gguf"), "tensor 'a' appears twice");
    head(b, 3, 1, 0);
    tensor(b, "a", 1, ne, 0, 16);     /* not at the start */
    expect_error(write_gguf(b, 32, 512, "start.gguf"), "expected 0");
    free(b);
}

static void test_buffers_not_parameters(void **state)
{
    buf *b = calloc(1, sizeof *b);
    uint64_t ne[1] = {64};
    ap_model_facts *f;
    (void)state;
    head(b, 3, 2, 0);
    tensor(b, "rope_freqs.weight", 1, ne, 0, 0);
    tensor(b, "a.weight", 1, ne, 0, 256);
    f = load_ok(write_gguf(b, 32, 512, "rope.gguf"));
    assert_int_equal(f->parameters, 64);
    assert_int_equal(f->weights_bytes, 512);
    ap_model_facts_free(f);
    free(b);
}

static void test_mla_moe_swa_keys(void **state)
{
    buf *b = calloc(1, sizeof *b);
    uint64_t ne[1] = {64};
    ap_model_facts *f;
    (void)state;
    /* DeepSeek-V3 in llama.cpp's naming: MLA latent and RoPE key, experts */
    head(b, 3, 1, 8);
    kv_str(b, "general.architecture", "deepseek2");
    kv_u32(b, "deepseek2.block_count", 61);
    kv_u32(b, "deepseek2.attention.head_count", 128);
    kv_u32(b, "deepseek2.attention.head_count_kv", 128);
    kv_u32(b, "deepseek2.attention.kv_lora_rank", 512);
    kv_u32(b, "deepseek2.rope.dimension_count", 64);
    kv_u32(b, "deepseek2.expert_count", 256);
    kv_u32(b, "deepseek2.expert_used_count", 8);
    tensor(b, "t", 1, ne, 0, 0);
    f = load_ok(write_gguf(b, 32, 256, "ds.gguf"));
    assert_int_equal(f->kv_lora_rank.v, 512);
    assert_int_equal(f->qk_rope_head_dim.v, 64);
    assert_int_equal(f->experts.v, 256);
    assert_int_equal(f->experts_used.v, 8);
    ap_model_facts_free(f);
    /* Gemma 2: a sliding window on every other layer, from the architecture */
    head(b, 3, 1, 4);
    kv_str(b, "general.architecture", "gemma2");
    kv_u32(b, "gemma2.block_count", 4);
    kv_u32(b, "gemma2.attention.sliding_window", 4096);
    kv_u32(b, "gemma2.attention.head_count", 8);
    tensor(b, "t", 1, ne, 0, 0);
    f = load_ok(write_gguf(b, 32, 256, "g2.gguf"));
    assert_int_equal(f->sliding_window.v, 4096);
    assert_non_null(f->swa_layer);
    assert_int_equal(f->swa_layer[0], 1);
    assert_int_equal(f->swa_layer[1], 0);
    assert_int_equal(f->qk_rope_head_dim.src, AP_SRC_NONE);   /* RoPE size only matters with MLA */
    ap_model_facts_free(f);
    /* an explicit per-layer pattern; keys of another architecture are ignored */
    head(b, 3, 1, 6);
    kv_str(b, "general.architecture", "gemma3");
    kv_u32(b, "gemma3.block_count", 3);
    kv_u32(b, "gemma3.attention.sliding_window", 1024);
    str(b, "gemma3.attention.sliding_window_pattern"); u32(b, ARR); u32(b, BOOL); u64(b, 3); put(b, "\x01\x00\x01", 3);
    kv_u32(b, "llama.block_count", 99);
    kv_u32(b, "gemma3.attention.head_count", 8);
    tensor(b, "t", 1, ne, 0, 0);
    f = load_ok(write_gguf(b, 32, 256, "g3.gguf"));
    assert_int_equal(f->layers.v, 3);
    assert_int_equal(f->swa_layer[0], 1);
    assert_int_equal(f->swa_layer[1], 0);
    assert_int_equal(f->swa_layer[2], 1);
    ap_model_facts_free(f);
    /* rope scaling (YaRN): type, f32 factor and original context; the context it accepts */
    head(b, 3, 1, 6);
    kv_str(b, "general.architecture", "qwen2");
    kv_u32(b, "qwen2.block_count", 2);
    kv_u32(b, "qwen2.context_length", 32768);
    kv_str(b, "qwen2.rope.scaling.type", "yarn");
    {
        float fl = 4.0f;
        uint32_t bits;
        memcpy(&bits, &fl, sizeof bits);
        str(b, "qwen2.rope.scaling.factor");
        u32(b, 6);   /* GGUF_TYPE_FLOAT32 */
        u32(b, bits);
    }
    kv_u32(b, "qwen2.rope.scaling.original_context_length", 32768);
    tensor(b, "t", 1, ne, 0, 0);
    f = load_ok(write_gguf(b, 32, 256, "yarn.gguf"));
    assert_string_equal(f->rope_type, "yarn");
    assert_true(f->rope_factor == 4.0);
    assert_int_equal(f->rope_orig_ctx, 32768);
    assert_int_equal(ap_facts_scaled_context(f), 131072);
    ap_model_facts_free(f);
    free(b);
}

/* Random corruption of a valid file: each load returns OK or AP_ERR_INPUT,
 * never crashes (run under ASan/UBSan in CI). Fixed seed: reproducible. */
static void test_mutations(void **state)
{
    buf *b = calloc(1, sizeof *b), *m = calloc(1, sizeof *m);
    unsigned seed = 12345;
    uint64_t data;
    (void)state;
    data = valid(b, 3);
    for (int it = 0; it < 800; it++) {
        ap_model_facts *f = NULL;
        ap_error err;
        int rc, flips;
        *m = *b;
        seed = seed * 1103515245u + 12345u;
        flips = 1 + (int)(seed >> 16) % 4;
        for (int k = 0; k < flips; k++) {
            size_t at;
            seed = seed * 1103515245u + 12345u;
            at = 4 + (seed >> 8) % (m->n - 4);
            seed = seed * 1103515245u + 12345u;
            m->d[at] = (seed >> 24) & 1 ? (unsigned char)(seed >> 16) : (unsigned char)(m->d[at] ^ 0x80);
        }
        ap_error_clear(&err);
        rc = ap_model_facts_load(write_gguf(m, 32, data, "mut.gguf"), AP_FMT_GGUF, &f, &err);
        assert_true(rc == AP_OK || rc == AP_ERR_INPUT || rc == AP_ERR_NOMEM);
        if (rc == AP_OK)
            ap_model_facts_free(f);
        else
            assert_true(err.msg[0] != '\0');
    }
    free(b);
    free(m);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/airpack-test-gguf-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_v3),
        cmocka_unit_test(test_valid_v2_and_widths),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_bad_magic_and_version),
        cmocka_unit_test(test_huge_lengths),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_buffers_not_parameters),
        cmocka_unit_test(test_mla_moe_swa_keys),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
