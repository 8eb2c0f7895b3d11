/*
 * ggml_types.c - the ggml tensor type table (block sizes and bytes per
 * block) and the llama_ftype names GGUF files carry in general.file_type.
 *
 * The numbers are the sizes of ggml's block structs (ggml-common.h) and
 * the type ids of ggml.h's enum ggml_type, as written into GGUF files.
 * Ids 4, 5 (Q4_2, Q4_3), 31-33 (Q4_0_4_4 ...) and 36-38 (IQ4_NL_4_4 ...)
 * were removed from ggml and are refused like unknown ids.
 */
#include <strings.h>

#include "model/model.h"
#include "util.h"

#define T(i, n, e, b) [i] = {i, n, e, b}
static const ap_ggml_type types[] = {
    T(0, "F32", 1, 4),
    T(1, "F16", 1, 2),
    T(2, "Q4_0", 32, 18),      /* f16 d + 16 nibbles */
    T(3, "Q4_1", 32, 20),      /* f16 d, m + 16 */
    T(6, "Q5_0", 32, 22),      /* f16 d + 4 qh + 16 */
    T(7, "Q5_1", 32, 24),      /* f16 d, m + 4 + 16 */
    T(8, "Q8_0", 32, 34),      /* f16 d + 32 */
    T(9, "Q8_1", 32, 36),      /* f16 d, s + 32 */
    T(10, "Q2_K", 256, 84),    /* 16 scales + 64 qs + f16 d, dmin */
    T(11, "Q3_K", 256, 110),   /* 32 hmask + 64 qs + 12 scales + f16 d */
    T(12, "Q4_K", 256, 144),   /* f16 d, dmin + 12 scales + 128 qs */
    T(13, "Q5_K", 256, 176),   /* 4 + 12 + 32 qh + 128 qs */
    T(14, "Q6_K", 256, 210),   /* 128 ql + 64 qh + 16 scales + f16 d */
    T(15, "Q8_K", 256, 292),   /* f32 d + 256 qs + 16 i16 bsums */
    T(16, "IQ2_XXS", 256, 66),
    T(17, "IQ2_XS", 256, 74),
    T(18, "IQ3_XXS", 256, 98),
    T(19, "IQ1_S", 256, 50),
    T(20, "IQ4_NL", 32, 18),
    T(21, "IQ3_S", 256, 110),
    T(22, "IQ2_S", 256, 82),
    T(23, "IQ4_XS", 256, 136),
    T(24, "I8", 1, 1),
    T(25, "I16", 1, 2),
    T(26, "I32", 1, 4),
    T(27, "I64", 1, 8),
    T(28, "F64", 1, 8),
    T(29, "IQ1_M", 256, 56),
    T(30, "BF16", 1, 2),
    T(34, "TQ1_0", 256, 54),   /* 48 qs + 4 qh + f16 d */
    T(35, "TQ2_0", 256, 66),   /* 64 qs + f16 d */
    T(39, "MXFP4", 32, 17),    /* e8m0 e + 16 nibbles */
    T(40, "NVFP4", 64, 36),    /* 4 e4m3 scales + 32 nibbles */
    T(41, "Q1_0", 128, 18),    /* f16 d + 16 bit bytes */
};
#undef T

const ap_ggml_type *ap_ggml_type_get(uint32_t id)
{
    if (id >= AP_ARRAY_LEN(types) || types[id].name == NULL)
        return NULL;
    return &types[id];
}

const ap_ggml_type *ap_ggml_type_by_name(const char *name)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(types); i++)
        if (types[i].name && strcasecmp(types[i].name, name) == 0)
            return &types[i];
    return NULL;
}

uint32_t ap_ggml_type_count(void)
{
    return (uint32_t)AP_ARRAY_LEN(types);
}

int ap_ggml_tensor_bytes(uint32_t id, const uint64_t *ne, uint32_t n_dims, uint64_t *bytes,
                         uint64_t *elems)
{
    const ap_ggml_type *t = ap_ggml_type_get(id);
    uint64_t n = 1, rows = 1, blocks;

    if (!t)
        return 1;
    for (uint32_t i = 0; i < n_dims; i++)
        if (!ap_mul_u64(n, ne[i], &n))
            return 3;
    if (n_dims > 0 && ne[0] % t->block_elems != 0)
        return 2;
    if (n_dims == 0 && t->block_elems != 1)
        return 2;
    for (uint32_t i = 1; i < n_dims; i++)
        rows *= ne[i];   /* cannot overflow: n did not */
    blocks = (n_dims > 0 ? ne[0] / t->block_elems : 1);
    if (!ap_mul_u64(blocks, rows, &blocks) || !ap_mul_u64(blocks, t->block_bytes, bytes))
        return 3;
    if (n_dims > 0 && n == 0)
        *bytes = 0;
    if (elems)
        *elems = n;
    return 0;
}

static const char *const ftypes[] = {
    [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [7] = "Q8_0", [8] = "Q5_0",
    [9] = "Q5_1", [10] = "Q2_K", [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L",
    [14] = "Q4_K_S", [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K",
    [19] = "IQ2_XXS", [20] = "IQ2_XS", [21] = "Q2_K_S", [22] = "IQ3_XS", [23] = "IQ3_XXS",
    [24] = "IQ1_S", [25] = "IQ4_NL", [26] = "IQ3_S", [27] = "IQ3_M", [28] = "IQ2_S",
    [29] = "IQ2_M", [30] = "IQ4_XS", [31] = "IQ1_M", [32] = "BF16", [36] = "TQ1_0",
    [37] = "TQ2_0", [38] = "MXFP4_MOE", [39] = "NVFP4",
};

const char *ap_gguf_file_type_name(uint64_t ftype)
{
    /* the "guessed" flag (1024) marks a file type inferred by a converter */
    uint64_t t = ftype & ~(uint64_t)1024;
    if (t >= AP_ARRAY_LEN(ftypes))
        return NULL;
    return ftypes[t];
}
