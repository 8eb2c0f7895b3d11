/*
 * test_hfconfig.c - the config.json reader: Llama, Qwen2.5 (an unused
 * sliding window), Mistral (a used one), Gemma 2 (alternating window
 * layers, head_dim wins over hidden/heads), nested text_config, MoE,
 * DeepSeek-V3 MLA, quantization_config, and errors with line and column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

static char dir[256];

static ap_model_facts *load_cfg(const char *text, int *rc, ap_error *err)
{
    char path[512];
    FILE *f;
    ap_model_facts *facts = NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    ap_error_clear(err);
    *rc = ap_model_facts_load(path, AP_FMT_AUTO, &facts, err);
    return facts;
}

static ap_model_facts *ok(const char *text)
{
    ap_error err;
    int rc;
    ap_model_facts *f = load_cfg(text, &rc, &err);
    if (rc)
        fail_msg("unexpected error: %s", err.msg);
    assert_string_equal(f->format, "hf-config");
    assert_int_equal(f->tensors_src, AP_SRC_NONE);
    return f;
}

static void test_llama(void **state)
{
    ap_model_facts *f = ok("{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\","
                           "\"hidden_size\":4096,\"intermediate_size\":14336,\"num_hidden_layers\":32,"
                           "\"num_attention_heads\":32,\"num_key_value_heads\":8,"
                           "\"max_position_embeddings\":131072,\"torch_dtype\":\"bfloat16\",\"vocab_size\":128256}");
    (void)state;
    assert_string_equal(f->architecture, "llama");
    assert_int_equal(f->layers.v, 32);
    assert_int_equal(f->layers.src, AP_SRC_CONFIG);
    assert_int_equal(f->kv_heads.v, 8);
    assert_int_equal(f->head_dim.v, 128);
    assert_int_equal(f->head_dim.src, AP_SRC_DERIVED);
    assert_int_equal(f->context_length.v, 131072);
    assert_int_equal(f->ffn.v, 14336);
    assert_int_equal(f->sliding_window.v, 0);
    assert_string_equal(f->dtype, "bfloat16");
    assert_int_equal(f->dtype_src, AP_SRC_CONFIG);
    ap_model_facts_free(f);
}

static void test_qwen_unused_window(void **state)
{
    ap_model_facts *f = ok("{\"model_type\":\"qwen2\",\"hidden_size\":3584,\"num_hidden_layers\":28,"
                           "\"num_attention_heads\":28,\"num_key_value_heads\":4,\"sliding_window\":131072,"
                           "\"use_sliding_window\":false,\"max_window_layers\":28,\"max_position_embeddings\":32768}");
    (void)state;
    assert_int_equal(f->sliding_window.v, 0);
    assert_null(f->swa_layer);
    assert_int_equal(f->head_dim.v, 128);
    ap_model_facts_free(f);
}

static void test_mistral_window(void **state)
{
    ap_model_facts *f = ok("{\"model_type\":\"mistral\",\"hidden_size\":4096,\"num_hidden_layers\":32,"
                           "\"num_attention_heads\":32,\"num_key_value_heads\":8,\"sliding_window\":4096,"
                           "\"max_position_embeddings\":32768}");
    (void)state;
    assert_int_equal(f->sliding_window.v, 4096);
    assert_non_null(f->swa_layer);
    for (int i = 0; i < 32; i++)
        assert_int_equal(f->swa_layer[i], 1);
    ap_model_facts_free(f);
}

static void test_gemma2(void **state)
{
    /* Gemma 2 9B: head_dim 256 although hidden/heads = 3584/16 = 224 */
    ap_model_facts *f = ok("{\"model_type\":\"gemma2\",\"hidden_size\":3584,\"num_hidden_layers\":42,"
                           "\"num_attention_heads\":16,\"num_key_value_heads\":8,\"head_dim\":256,"
                           "\"sliding_window\":4096,\"max_position_embeddings\":8192}");
    (void)state;
    assert_int_equal(f->head_dim.v, 256);
    assert_int_equal(f->head_dim.src, AP_SRC_CONFIG);
    assert_non_null(f->swa_layer);
    assert_int_equal(f->swa_layer[0], 1);
    assert_int_equal(f->swa_layer[1], 0);
    assert_int_equal(f->swa_layer[40], 1);
    assert_int_equal(f->swa_layer[41], 0);
    ap_model_facts_free(f);
}

static void test_layer_types_and_text_config(void **state)
{
    ap_model_facts *f = ok("{\"model_type\":\"gemma3\",\"architectures\":[\"Gemma3ForConditionalGeneration\"],"
                           "\"text_config\":{\"model_type\":\"gemma3_text\",\"hidden_size\":2560,"
                           "\"num_hidden_layers\":4,\"num_attention_heads\":8,\"num_key_value_heads\":4,"
                           "\"head_dim\":256,\"sliding_window\":1024,\"max_position_embeddings\":131072,"
                           "\"layer_types\":[\"sliding_attention\",\"sliding_attention\",\"full_attention\",\"sliding_attention\"]},"
                           "\"torch_dtype\":\"bfloat16\"}");
    (void)state;
    assert_string_equal(f->architecture, "gemma3_text");
    assert_int_equal(f->layers.v, 4);
    assert_int_equal(f->kv_heads.v, 4);
    assert_int_equal(f->swa_layer[2], 0);
    assert_int_equal(f->swa_layer[3], 1);
    assert_string_equal(f->dtype, "bfloat16");
    ap_model_facts_free(f);
}

static void test_moe_and_quant(void **state)
{
    ap_model_facts *f = ok("{\"model_type\":\"mixtral\",\"hidden_size\":4096,\"num_hidden_layers\":32,"
                           "\"num_attention_heads\":32,\"num_key_value_heads\":8,\"num_local_experts\":8,"
                           "\"num_experts_per_tok\":2,\"intermediate_size\":14336,"
                           "\"quantization_config\":{\"quant_method\":\"awq\",\"bits\":4}}");
    (void)state;
    assert_int_equal(f->experts.v, 8);
    assert_int_equal(f->experts_used.v, 2);
    assert_string_equal(f->quant_method, "awq");
    assert_int_equal(f->quant_bits.v, 4);
    ap_model_facts_free(f);
}

static void test_deepseek_v3_mla(void **state)
{
    ap_model_facts *f = ok("{\"model_type\":\"deepseek_v3\",\"hidden_size\":7168,\"num_hidden_layers\":61,"
                           "\"num_attention_heads\":128,\"num_key_value_heads\":128,\"kv_lora_rank\":512,"
                           "\"q_lora_rank\":1536,\"qk_rope_head_dim\":64,\"qk_nope_head_dim\":128,\"v_head_dim\":128,"
                           "\"n_routed_experts\":256,\"num_experts_per_tok\":8,\"moe_intermediate_size\":2048,"
                           "\"intermediate_size\":18432,\"max_position_embeddings\":163840,"
                           "\"quantization_config\":{\"quant_method\":\"fp8\",\"fmt\":\"e4m3\"}}");
    (void)state;
    assert_int_equal(f->kv_lora_rank.v, 512);
    assert_int_equal(f->qk_rope_head_dim.v, 64);
    assert_int_equal(f->head_dim.v, 192);
    assert_int_equal(f->v_head_dim.v, 128);
    assert_int_equal(f->experts.v, 256);
    assert_int_equal(f->ffn.v, 2048);       /* per expert */
    assert_string_equal(f->quant_method, "fp8");
    ap_model_facts_free(f);
}

/* rope_scaling: YaRN extends the context; llama3 scaling does not; MTP layers */
static void test_rope_scaling_and_mtp(void **state)
{
    (void)state;
    ap_model_facts *f = ok("{\"model_type\":\"qwen2\",\"num_hidden_layers\":28,\"max_position_embeddings\":32768,"
                           "\"num_nextn_predict_layers\":1,"
                           "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4.0,\"original_max_position_embeddings\":32768}}");
    assert_string_equal(f->rope_type, "yarn");
    assert_true(f->rope_factor == 4.0);
    assert_int_equal(f->rope_orig_ctx, 32768);
    assert_int_equal(ap_facts_scaled_context(f), 131072);
    assert_int_equal(f->mtp_layers.v, 1);
    ap_model_facts_free(f);
    f = ok("{\"model_type\":\"llama\",\"num_hidden_layers\":32,\"max_position_embeddings\":131072,"
           "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"original_max_position_embeddings\":8192}}");
    assert_string_equal(f->rope_type, "llama3");
    assert_int_equal(ap_facts_scaled_context(f), 131072);
    ap_model_facts_free(f);
    /* a hostile factor is ignored */
    f = ok("{\"model_type\":\"qwen2\",\"num_hidden_layers\":2,\"max_position_embeddings\":4096,"
           "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":1e300}}");
    assert_int_equal(ap_facts_scaled_context(f), 4096);
    ap_model_facts_free(f);
}

static void test_errors(void **state)
{
    ap_error err;
    int rc;
    ap_model_facts *f;
    (void)state;
    f = load_cfg("{\n  \"num_hidden_layers\": 32,\n  \"hidden_size\": ,\n}", &rc, &err);
    assert_int_equal(rc, AP_ERR_INPUT);
    assert_null(f);
    assert_int_equal(err.line, 3);
    assert_true(err.column > 0);
    assert_non_null(strstr(err.msg, "config.json"));
    f = load_cfg("{\"num_hidden_layers\": -3}", &rc, &err);
    assert_int_equal(rc, AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "'num_hidden_layers' must be a non-negative integer"));
    f = load_cfg("[1]", &rc, &err);
    assert_int_equal(rc, AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "must be a JSON object"));
    (void)f;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/airpack-test-hf-XXXXXX");
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
        cmocka_unit_test(test_llama),
        cmocka_unit_test(test_qwen_unused_window),
        cmocka_unit_test(test_mistral_window),
        cmocka_unit_test(test_gemma2),
        cmocka_unit_test(test_layer_types_and_text_config),
        cmocka_unit_test(test_moe_and_quant),
        cmocka_unit_test(test_deepseek_v3_mla),
        cmocka_unit_test(test_rope_scaling_and_mtp),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
