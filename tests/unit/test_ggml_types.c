/*
 * test_ggml_types.c - the ggml type table: block size and bytes per block
 * of every type GGUF files use, tensor byte sizes, and the refusal of
 * unknown and removed type ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "model/model.h"

static const struct {
    uint32_t id;
    const char *name;
    uint32_t blk, bytes;
} want[] = {
    {0, "F32", 1, 4},        {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},     {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},     {7, "Q5_1", 32, 24},      {8, "Q8_0", 32, 34},     {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},   {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},  {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},  {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},  {20, "IQ4_NL", 32, 18},  {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},  {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},        {25, "I16", 1, 2},
    {26, "I32", 1, 4},       {27, "I64", 1, 8},        {28, "F64", 1, 8},       {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},      {34, "TQ1_0", 256, 54},   {35, "TQ2_0", 256, 66},  {39, "MXFP4", 32, 17},
    {40, "NVFP4", 64, 36},   {41, "Q1_0", 128, 18},
};

static void test_every_type(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const ap_ggml_type *t = ap_ggml_type_get(want[i].id);
        uint64_t ne[2] = {want[i].blk * 16, 3}, bytes = 0, elems = 0;
        assert_non_null(t);
        assert_string_equal(t->name, want[i].name);
        assert_int_equal(t->block_elems, want[i].blk);
        assert_int_equal(t->block_bytes, want[i].bytes);
        assert_ptr_equal(ap_ggml_type_by_name(want[i].name), t);
        /* a 16-block x 3-row tensor */
        assert_int_equal(ap_ggml_tensor_bytes(want[i].id, ne, 2, &bytes, &elems), 0);
        assert_int_equal(bytes, 48u * want[i].bytes);
        assert_int_equal(elems, 48u * want[i].blk);
    }
}

static void test_bits_per_weight(void **state)
{
    (void)state;
    /* well-known densities: Q4_K 4.5 bpw, Q6_K 6.5625, Q8_0 8.5, IQ4_XS 4.25, MXFP4 4.25 */
    const ap_ggml_type *t = ap_ggml_type_get(12);
    assert_int_equal(t->block_bytes * 8 * 1000 / t->block_elems, 4500);
    t = ap_ggml_type_get(14);
    assert_int_equal(t->block_bytes * 8 * 10000 / t->block_elems, 65625);
    t = ap_ggml_type_get(8);
    assert_int_equal(t->block_bytes * 8 * 10 / t->block_elems, 85);
    t = ap_ggml_type_get(23);
    assert_int_equal(t->block_bytes * 8 * 100 / t->block_elems, 425);
    t = ap_ggml_type_get(39);
    assert_int_equal(t->block_bytes * 8 * 100 / t->block_elems, 425);
}

static void test_unknown_and_removed(void **state)
{
    static const uint32_t bad[] = {4, 5, 31, 32, 33, 36, 37, 38, 42, 43, 100, 0xFFFFFFFFu};
    uint64_t ne[1] = {256}, bytes;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(ap_ggml_type_get(bad[i]));
        assert_int_equal(ap_ggml_tensor_bytes(bad[i], ne, 1, &bytes, NULL), 1);
    }
    assert_null(ap_ggml_type_by_name("Q4_2"));
}

static void test_partial_block_and_overflow(void **state)
{
    uint64_t ne[4] = {33, 1, 1, 1}, bytes;
    (void)state;
    assert_int_equal(ap_ggml_tensor_bytes(2, ne, 1, &bytes, NULL), 2);   /* Q4_0 row of 33 */
    ne[0] = 256;
    ne[1] = UINT64_MAX / 8;
    ne[2] = 16;
    assert_int_equal(ap_ggml_tensor_bytes(0, ne, 3, &bytes, NULL), 3);
    ne[1] = 0;                                                            /* empty tensor */
    assert_int_equal(ap_ggml_tensor_bytes(0, ne, 3, &bytes, NULL), 0);
    assert_int_equal(bytes, 0);
}

static void test_llama_sizes(void **state)
{
    /* Llama-3.1-8B token embedding 4096 x 128256 in F16, Q4_K and Q6_K */
    uint64_t ne[2] = {4096, 128256}, bytes;
    (void)state;
    assert_int_equal(ap_ggml_tensor_bytes(1, ne, 2, &bytes, NULL), 0);
    assert_int_equal(bytes, 1050673152u);
    assert_int_equal(ap_ggml_tensor_bytes(12, ne, 2, &bytes, NULL), 0);
    assert_int_equal(bytes, 4096u / 256 * 128256 * 144);
    assert_int_equal(ap_ggml_tensor_bytes(14, ne, 2, &bytes, NULL), 0);
    assert_int_equal(bytes, 4096u / 256 * 128256 * 210);
}

static void test_file_types(void **state)
{
    (void)state;
    assert_string_equal(ap_gguf_file_type_name(15), "Q4_K_M");
    assert_string_equal(ap_gguf_file_type_name(1), "F16");
    assert_string_equal(ap_gguf_file_type_name(32), "BF16");
    assert_string_equal(ap_gguf_file_type_name(38), "MXFP4_MOE");
    assert_string_equal(ap_gguf_file_type_name(1024 + 7), "Q8_0");   /* "guessed" flag */
    assert_null(ap_gguf_file_type_name(4));
    assert_null(ap_gguf_file_type_name(999));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_bits_per_weight),
        cmocka_unit_test(test_unknown_and_removed),
        cmocka_unit_test(test_partial_block_and_overflow),
        cmocka_unit_test(test_llama_sizes),
        cmocka_unit_test(test_file_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
