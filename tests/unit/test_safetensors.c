/*
 * test_safetensors.c - the safetensors reader: single files and sharded
 * folders (totals recomputed from the shard headers, whatever the index's
 * total_size says), the dtype table with F8 and sub-byte types, and a
 * clear AP_ERR_INPUT for each malformed header: huge or short header
 * length, not an object, unknown dtype, gapped or overlapping offsets,
 * offsets that disagree with the shape, a data section that does not end
 * at the end of the file, unsafe shard names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"

static char dir[256];

/* Write a safetensors file: header text, then data bytes (sparse). */
static const char *write_st(const char *name, const char *hdr, uint64_t data)
{
    static char path[512];
    unsigned char len[8];
    uint64_t n = strlen(hdr);
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(hdr, 1, n, f);
    assert_int_equal(fflush(f), 0);
    assert_int_equal(ftruncate(fileno(f), (off_t)(8 + n + data)), 0);
    fclose(f);
    return path;
}

static void write_text(const char *name, const char *text)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void expect_error(const char *path, const char *needle)
{
    ap_model_facts *f = NULL;
    ap_error err;
    int rc;
    ap_error_clear(&err);
    rc = ap_model_facts_load(path, AP_FMT_SAFETENSORS, &f, &err);
    if (rc != AP_ERR_INPUT)
        fail_msg("expected AP_ERR_INPUT for '%s', got %d (%s)", needle, rc, err.msg);
    assert_null(f);
    if (!strstr(err.msg, needle))
        fail_msg("message '%s' does not say '%s'", err.msg, needle);
}

static void test_single(void **state)
{
    ap_model_facts *f = NULL;
    ap_error err;
    const char *p;
    (void)state;
    p = write_st("one.safetensors",
                 "{\"__metadata__\":{\"format\":\"pt\"},"
                 "\"b\":{\"dtype\":\"BF16\",\"shape\":[4,8],\"data_offsets\":[16,80]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"s\":{\"dtype\":\"F8_E4M3\",\"shape\":[3,5],\"data_offsets\":[80,95]},"
                 "\"q\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[95,98]},"
                 "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[98,98]},"
                 "\"model.rotary_emb.inv_freq\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[98,106]}}   ",
                 106);
    ap_error_clear(&err);
    assert_int_equal(ap_model_facts_load(p, AP_FMT_AUTO, &f, &err), AP_OK);
    assert_string_equal(f->format, "safetensors");
    assert_int_equal(f->n_tensors, 6);
    assert_int_equal(f->parameters, 4 + 32 + 15 + 6 + 0);   /* inv_freq is a buffer */
    assert_int_equal(f->weights_bytes, 106);
    assert_int_equal(f->n_files, 1);
    assert_string_equal(f->dtype, "BF16");                    /* most bytes */
    assert_int_equal(f->tensors_src, AP_SRC_SAFETENSORS);
    ap_model_facts_free(f);
}

static void test_dtype_table(void **state)
{
    (void)state;
    assert_int_equal(ap_st_dtype_bits("BOOL"), 8);
    assert_int_equal(ap_st_dtype_bits("F4"), 4);
    assert_int_equal(ap_st_dtype_bits("F6_E2M3"), 6);
    assert_int_equal(ap_st_dtype_bits("F6_E3M2"), 6);
    assert_int_equal(ap_st_dtype_bits("F8_E5M2"), 8);
    assert_int_equal(ap_st_dtype_bits("F8_E4M3"), 8);
    assert_int_equal(ap_st_dtype_bits("F8_E8M0"), 8);
    assert_int_equal(ap_st_dtype_bits("BF16"), 16);
    assert_int_equal(ap_st_dtype_bits("U16"), 16);
    assert_int_equal(ap_st_dtype_bits("U32"), 32);
    assert_int_equal(ap_st_dtype_bits("C64"), 64);
    assert_int_equal(ap_st_dtype_bits("F64"), 64);
    assert_int_equal(ap_st_dtype_bits("U64"), 64);
    assert_int_equal(ap_st_dtype_bits("bf16"), 0);
    assert_int_equal(ap_st_dtype_bits("Q4_K"), 0);
}

static void test_malformed(void **state)
{
    char big[64];
    (void)state;
    expect_error(write_st("gap.safetensors",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[32,48]}}", 48),
                 "gap after the previous tensor");
    expect_error(write_st("overlap.safetensors",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24),
                 "overlaps the previous tensor");
    expect_error(write_st("shape.safetensors",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 12),
                 "do not match its shape and dtype");
    expect_error(write_st("dtype.safetensors",
                          "{\"a\":{\"dtype\":\"F12\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16),
                 "unknown dtype 'F12'");
    expect_error(write_st("subbyte.safetensors",
                          "{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2),
                 "does not fill whole bytes");
    expect_error(write_st("short.safetensors",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
                 "truncated file");
    expect_error(write_st("long.safetensors",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 20),
                 "tensors cover 16 bytes");
    expect_error(write_st("start.safetensors", "[1,2]", 0), "does not start with '{'");
    expect_error(write_st("json.safetensors", "{\"a\":", 0), "header JSON");
    expect_error(write_st("dup.safetensors",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
                 "duplicate");
    expect_error(write_st("keys.safetensors",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4),
                 "exactly dtype, shape and data_offsets");
    expect_error(write_st("neg.safetensors",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4),
                 "not a non-negative integer");
    expect_error(write_st("ovf.safetensors",
                          "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4),
                 "overflows");
    expect_error(write_st("meta.safetensors", "{\"__metadata__\":{\"k\":1}}", 0), "is not a string");
    expect_error(write_st("trail.safetensors", "{} x", 0), "data after the header JSON");
    /* header length fields: huge, and past the end of the file */
    {
        char path[512];
        FILE *f;
        unsigned char len[8] = {0, 0, 0, 0, 1, 0, 0, 0};   /* 2^32 */
        snprintf(path, sizeof path, "%s/huge.safetensors", dir);
        f = fopen(path, "wb");
        fwrite(len, 1, 8, f);
        fputs("{}", f);
        fclose(f);
        expect_error(path, "over the limit");
        len[4] = 0;
        len[0] = 200;
        f = fopen(path, "wb");
        fwrite(len, 1, 8, f);
        fputs("{}", f);
        fclose(f);
        expect_error(path, "runs past the end of the file");
        f = fopen(path, "wb");
        fwrite(len, 1, 5, f);
        fclose(f);
        expect_error(path, "truncated header");
    }
    snprintf(big, sizeof big, "%s", "ok");
    (void)big;
}

static void test_sharded(void **state)
{
    char sub[300], path[400];
    ap_model_facts *f = NULL;
    ap_error err;
    (void)state;
    snprintf(sub, sizeof sub, "%s/sharded", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    write_st("sharded/model-00001-of-00002.safetensors",
             "{\"x\":{\"dtype\":\"BF16\",\"shape\":[8,8],\"data_offsets\":[0,128]}}", 128);
    write_st("sharded/model-00002-of-00002.safetensors",
             "{\"y\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[0,16]},"
             "\"z\":{\"dtype\":\"BF16\",\"shape\":[2,8],\"data_offsets\":[16,48]}}", 48);
    /* the index's total_size is wrong on purpose: totals come from the headers */
    write_text("sharded/model.safetensors.index.json",
               "{\"metadata\":{\"total_size\":999999},\"weight_map\":{"
               "\"x\":\"model-00001-of-00002.safetensors\",\"y\":\"model-00002-of-00002.safetensors\","
               "\"z\":\"model-00002-of-00002.safetensors\"}}");
    write_text("sharded/config.json",
               "{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":8,"
               "\"num_attention_heads\":2,\"max_position_embeddings\":4096,\"torch_dtype\":\"bfloat16\"}");
    ap_error_clear(&err);
    assert_int_equal(ap_model_facts_load(sub, AP_FMT_AUTO, &f, &err), AP_OK);
    assert_int_equal(f->n_files, 2);
    assert_int_equal(f->n_tensors, 3);
    assert_int_equal(f->parameters, 64 + 8 + 16);
    assert_int_equal(f->weights_bytes, 176);
    assert_string_equal(f->architecture, "llama");
    assert_int_equal(f->architecture_src, AP_SRC_CONFIG);
    assert_int_equal(f->kv_heads.v, 2);                 /* absent: = heads */
    assert_int_equal(f->kv_heads.src, AP_SRC_DEFAULT);
    assert_int_equal(f->head_dim.v, 4);
    assert_string_equal(f->dtype, "BF16");
    assert_int_equal(f->dtype_src, AP_SRC_SAFETENSORS);
    ap_model_facts_free(f);

    /* the index may also be named directly */
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", sub);
    assert_int_equal(ap_model_facts_load(path, AP_FMT_AUTO, &f, &err), AP_OK);
    assert_int_equal(f->weights_bytes, 176);
    ap_model_facts_free(f);

    /* a missing shard, an unsafe shard name */
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\",\"w\":\"missing.safetensors\"}}");
    expect_error(sub, "missing.safetensors");
    write_text("sharded/model.safetensors.index.json", "{\"weight_map\":{\"x\":\"../escape.safetensors\"}}");
    expect_error(sub, "unsafe or invalid shard");
    write_text("sharded/model.safetensors.index.json", "{\"weight_map\":{\n\"x\": 5,}}");
    expect_error(sub, "line 2");
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\",\"q\":\"model-00001-of-00002.safetensors\"}}");
    expect_error(sub, "names tensor 'q' in 'model-00001-of-00002.safetensors', which no shard holds");
    /* the same tensor in two shards would count twice */
    write_st("sharded/model-00002-of-00002.safetensors",
             "{\"x\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[0,16]}}", 16);
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\",\"y\":\"model-00002-of-00002.safetensors\"}}");
    expect_error(sub, "tensor 'x' is also in another file");
}

static void test_empty_folder(void **state)
{
    char sub[300];
    (void)state;
    snprintf(sub, sizeof sub, "%s/empty", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    expect_error(sub, "no model found");
}

/* Random corruption of a valid header: OK or AP_ERR_INPUT, never a crash. */
static void test_mutations(void **state)
{
    static const char good[] =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,4],\"data_offsets\":[16,32]}}";
    static const char alphabet[] = "{}[],:\"0123456789-.eE aF\\\x01\xff";
    char m[sizeof good];
    unsigned seed = 777;
    (void)state;
    for (int it = 0; it < 600; it++) {
        ap_model_facts *f = NULL;
        ap_error err;
        int rc, flips;
        memcpy(m, good, sizeof good);
        seed = seed * 1103515245u + 12345u;
        flips = 1 + (int)(seed >> 16) % 3;
        for (int k = 0; k < flips; k++) {
            seed = seed * 1103515245u + 12345u;
            m[(seed >> 8) % (sizeof good - 1)] = alphabet[(seed >> 20) % (sizeof alphabet - 1)];
        }
        ap_error_clear(&err);
        rc = ap_model_facts_load(write_st("mut.safetensors", m, 32), AP_FMT_SAFETENSORS, &f, &err);
        assert_true(rc == AP_OK || rc == AP_ERR_INPUT);
        if (rc == AP_OK)
            ap_model_facts_free(f);
        else
            assert_true(err.msg[0] != '\0');
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/airpack-test-st-XXXXXX");
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
        cmocka_unit_test(test_single),
        cmocka_unit_test(test_dtype_table),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_empty_folder),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
