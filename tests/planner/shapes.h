/*
 * shapes.h - model shapes with their real tensor names, generated from
 * config.json numbers (tests/planner/measurements/cases.json "models"),
 * for the planner's calibration test. Each tensor is added to an
 * ap_model_facts with its Hugging Face name (or GGUF name), storage type
 * and byte size, as the safetensors and GGUF readers would add it, so the
 * loaded-bytes rules (MTP layers, vision towers, the token embedding,
 * routed experts) see what they see in real checkpoints.
 *
 * Storage ("quant"):
 *   bf16 (default) / F16 - every tensor 16-bit;
 *   fp8-channel - linear weights F8_E4M3 + a BF16 weight_scale per output
 *                 channel (compressed-tensors FP8 dynamic);
 *   fp8-block   - linear weights F8_E4M3 + F32 weight_scale_inv per 128x128
 *                 block (Qwen3 / DeepSeek FP8);
 *   w8a8        - linear weights I8 + BF16 weight_scale per channel;
 *   w4a16       - linear weights packed 8 per I32 (weight_packed) + a scale
 *                 per group of 128 (compressed-tensors pack-quantized);
 *   awq         - AutoAWQ GEMM: qweight, qzeros (I32) and F16 scales per
 *                 group of 128;
 *   mxfp4       - routed experts as U8 blocks (2 values a byte) + one U8
 *                 E8M0 scale per 32 values (gpt-oss); the rest BF16.
 * Embeddings, output heads, norms, routers and vision towers stay 16-bit.
 */
#ifndef AIRPACK_TEST_SHAPES_H
#define AIRPACK_TEST_SHAPES_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

typedef struct shape_ctx {
    ap_model_facts *f;
    const char *quant;     /* see above */
    const char *dtype16;   /* "BF16" or "F16" */
    int gguf;
    int failed;
} shape_ctx;

static inline uint64_t sj(const json_t *m, const char *k)
{
    json_t *v = json_object_get(m, k);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

static inline void sh_add(shape_ctx *c, const char *name, const char *dtype, uint64_t elems, uint64_t bytes)
{
    ap_error err;
    memset(&err, 0, sizeof err);
    if (ap_facts_add_tensor(c->f, name, dtype, elems, bytes, &err) != AP_OK)
        c->failed = 1;
}

/* A 16-bit tensor of n elements. */
static inline void sh_t16(shape_ctx *c, const char *name, uint64_t n)
{
    sh_add(c, name, c->dtype16, n, 2 * n);
}

/* A linear layer's weight [out, in] in the model's storage; name ends in ".weight". */
static inline void sh_linear(shape_ctx *c, const char *base, uint64_t out, uint64_t in)
{
    char n[512];
    const char *q = c->quant;
    if (!strcmp(q, "fp8-channel") || !strcmp(q, "w8a8")) {
        snprintf(n, sizeof n, "%s.weight", base);
        sh_add(c, n, !strcmp(q, "w8a8") ? "I8" : "F8_E4M3", out * in, out * in);
        snprintf(n, sizeof n, "%s.weight_scale", base);
        sh_add(c, n, c->dtype16, out, 2 * out);
    } else if (!strcmp(q, "fp8-block")) {
        uint64_t s = ((out + 127) / 128) * ((in + 127) / 128);
        snprintf(n, sizeof n, "%s.weight", base);
        sh_add(c, n, "F8_E4M3", out * in, out * in);
        snprintf(n, sizeof n, "%s.weight_scale_inv", base);
        sh_add(c, n, "F32", s, 4 * s);
    } else if (!strcmp(q, "awq")) {
        /* AutoAWQ GEMM: qweight [in, out/8] I32, qzeros [in/128, out/8] I32, scales [in/128, out] F16 */
        snprintf(n, sizeof n, "%s.qweight", base);
        sh_add(c, n, "I32", in * out / 8, in * out / 2);
        snprintf(n, sizeof n, "%s.qzeros", base);
        sh_add(c, n, "I32", (in / 128) * (out / 8), (in / 128) * (out / 8) * 4);
        snprintf(n, sizeof n, "%s.scales", base);
        sh_add(c, n, "F16", (in / 128) * out, (in / 128) * out * 2);
    } else if (!strcmp(q, "w4a16")) {
        snprintf(n, sizeof n, "%s.weight_packed", base);
        sh_add(c, n, "I32", out * in / 8, out * in / 2);
        snprintf(n, sizeof n, "%s.weight_scale", base);
        sh_add(c, n, c->dtype16, out * (in / 128), 2 * out * (in / 128));
        snprintf(n, sizeof n, "%s.weight_shape", base);
        sh_add(c, n, "I64", 2, 16);
    } else {
        snprintf(n, sizeof n, "%s.weight", base);
        sh_t16(c, n, out * in);
    }
}

static inline void sh_bias(shape_ctx *c, const char *base, uint64_t n)
{
    char b[512];
    snprintf(b, sizeof b, "%s.bias", base);
    sh_t16(c, b, n);
}

/* One dense or expert MLP with gate/up/down projections. */
static inline void sh_mlp(shape_ctx *c, const char *pre, uint64_t hidden, uint64_t ffn, const char *g,
                          const char *u, const char *d)
{
    char n[512];
    snprintf(n, sizeof n, "%s.%s", pre, g);
    sh_linear(c, n, ffn, hidden);
    snprintf(n, sizeof n, "%s.%s", pre, u);
    sh_linear(c, n, ffn, hidden);
    snprintf(n, sizeof n, "%s.%s", pre, d);
    sh_linear(c, n, hidden, ffn);
}

/* The vision tower of Mistral 3.1 (Pixtral): transformer layers and projector, 16-bit. */
static inline void sh_vision_pixtral(shape_ctx *c, const json_t *v)
{
    uint64_t L = sj(v, "layers"), h = sj(v, "hidden"), ffn = sj(v, "ffn"), p = sj(v, "patch"), out = sj(v, "out");
    char n[512];
    sh_t16(c, "vision_tower.patch_conv.weight", h * 3 * p * p);
    sh_t16(c, "vision_tower.ln_pre.weight", h);
    for (uint64_t i = 0; i < L; i++) {
        static const char *const att[] = {"q_proj", "k_proj", "v_proj", "o_proj"};
        for (int k = 0; k < 4; k++) {
            snprintf(n, sizeof n, "vision_tower.transformer.layers.%llu.attention.%s.weight", (unsigned long long)i, att[k]);
            sh_t16(c, n, h * h);
        }
        snprintf(n, sizeof n, "vision_tower.transformer.layers.%llu.feed_forward.gate_proj.weight", (unsigned long long)i);
        sh_t16(c, n, h * ffn);
        snprintf(n, sizeof n, "vision_tower.transformer.layers.%llu.feed_forward.up_proj.weight", (unsigned long long)i);
        sh_t16(c, n, h * ffn);
        snprintf(n, sizeof n, "vision_tower.transformer.layers.%llu.feed_forward.down_proj.weight", (unsigned long long)i);
        sh_t16(c, n, h * ffn);
        snprintf(n, sizeof n, "vision_tower.transformer.layers.%llu.attention_norm.weight", (unsigned long long)i);
        sh_t16(c, n, h);
        snprintf(n, sizeof n, "vision_tower.transformer.layers.%llu.ffn_norm.weight", (unsigned long long)i);
        sh_t16(c, n, h);
    }
    sh_t16(c, "multi_modal_projector.norm.weight", h);
    sh_t16(c, "multi_modal_projector.patch_merger.merging_layer.weight", h * 4 * h);
    sh_t16(c, "multi_modal_projector.linear_1.weight", h * out);
    sh_t16(c, "multi_modal_projector.linear_2.weight", out * out);
}

/* GGUF names, F16 everywhere but the norms (F32), llama layout. */
static inline void sh_gguf_llama(shape_ctx *c, const json_t *m)
{
    uint64_t V = sj(m, "vocab"), H = sj(m, "hidden"), L = sj(m, "layers"), nh = sj(m, "heads"),
             kv = sj(m, "kv_heads"), hd = sj(m, "head_dim"), F = sj(m, "ffn");
    char n[256];
    sh_add(c, "token_embd.weight", "F16", V * H, 2 * V * H);
    for (uint64_t i = 0; i < L; i++) {
        struct { const char *t; uint64_t e; } ts[] = {
            {"attn_norm.weight", 0}, {"attn_q.weight", nh * hd * H}, {"attn_k.weight", kv * hd * H},
            {"attn_v.weight", kv * hd * H}, {"attn_output.weight", nh * hd * H}, {"ffn_norm.weight", 0},
            {"ffn_gate.weight", F * H}, {"ffn_up.weight", F * H}, {"ffn_down.weight", F * H}};
        for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
            snprintf(n, sizeof n, "blk.%llu.%s", (unsigned long long)i, ts[k].t);
            if (ts[k].e)
                sh_add(c, n, "F16", ts[k].e, 2 * ts[k].e);
            else
                sh_add(c, n, "F32", H, 4 * H);
        }
    }
    sh_add(c, "output_norm.weight", "F32", H, 4 * H);
    sh_add(c, "output.weight", "F16", V * H, 2 * V * H);
}

/* Generate the tensors of model m into c->f. Returns 0, or -1 for an unknown family. */
static inline int shape_tensors(shape_ctx *c, const json_t *m)
{
    const char *fam = json_string_value(json_object_get(m, "family"));
    uint64_t V = sj(m, "vocab"), H = sj(m, "hidden"), L = sj(m, "layers"), nh = sj(m, "heads"),
             kv = sj(m, "kv_heads"), hd = sj(m, "head_dim"), F = sj(m, "ffn"), E = sj(m, "experts"),
             shared = sj(m, "shared_ffn"), dense = sj(m, "dense_layers"), dffn = sj(m, "dense_ffn");
    int tied = json_is_true(json_object_get(m, "tied")), bias = json_is_true(json_object_get(m, "qkv_bias"));
    const char *lm = !strcmp(fam, "mistral3") ? "language_model.model." : "model.";
    char p[256], n[512];
    if (c->gguf) {
        sh_gguf_llama(c, m);
        return 0;
    }
    snprintf(n, sizeof n, "%sembed_tokens.weight", lm);
    sh_t16(c, n, V * H);
    for (uint64_t i = 0; i < L; i++) {
        snprintf(p, sizeof p, "%slayers.%llu", lm, (unsigned long long)i);
        /* norms */
        snprintf(n, sizeof n, "%s.input_layernorm.weight", p);
        sh_t16(c, n, H);
        snprintf(n, sizeof n, "%s.post_attention_layernorm.weight", p);
        sh_t16(c, n, H);
        if (!strcmp(fam, "gemma2")) {
            snprintf(n, sizeof n, "%s.pre_feedforward_layernorm.weight", p);
            sh_t16(c, n, H);
            snprintf(n, sizeof n, "%s.post_feedforward_layernorm.weight", p);
            sh_t16(c, n, H);
        }
        /* attention */
        if (!strcmp(fam, "deepseek_v2")) {
            uint64_t r = sj(m, "kv_lora_rank"), rope = sj(m, "qk_rope_head_dim"), nope = sj(m, "qk_nope_head_dim"),
                     vh = sj(m, "v_head_dim");
            snprintf(n, sizeof n, "%s.self_attn.q_proj", p);
            sh_linear(c, n, nh * (nope + rope), H);
            snprintf(n, sizeof n, "%s.self_attn.kv_a_proj_with_mqa", p);
            sh_linear(c, n, r + rope, H);
            snprintf(n, sizeof n, "%s.self_attn.kv_a_layernorm.weight", p);
            sh_t16(c, n, r);
            snprintf(n, sizeof n, "%s.self_attn.kv_b_proj", p);
            sh_linear(c, n, nh * (nope + vh), r);
            snprintf(n, sizeof n, "%s.self_attn.o_proj", p);
            sh_linear(c, n, H, nh * vh);
        } else if (!strcmp(fam, "phi3")) {
            snprintf(n, sizeof n, "%s.self_attn.qkv_proj", p);
            sh_linear(c, n, (nh + 2 * kv) * hd, H);
            snprintf(n, sizeof n, "%s.self_attn.o_proj", p);
            sh_linear(c, n, H, nh * hd);
        } else {
            static const char *const qkv[] = {"q_proj", "k_proj", "v_proj"};
            for (int k = 0; k < 3; k++) {
                uint64_t o = k == 0 ? nh * hd : kv * hd;
                snprintf(n, sizeof n, "%s.self_attn.%s", p, qkv[k]);
                sh_linear(c, n, o, H);
                if (bias || !strcmp(fam, "gpt_oss"))
                    sh_bias(c, n, o);
            }
            snprintf(n, sizeof n, "%s.self_attn.o_proj", p);
            sh_linear(c, n, H, nh * hd);
            if (!strcmp(fam, "gpt_oss")) {
                sh_bias(c, n, H);
                snprintf(n, sizeof n, "%s.self_attn.sinks", p);
                sh_t16(c, n, nh);
            }
            if (!strcmp(fam, "qwen3") || !strcmp(fam, "qwen3_moe")) {
                snprintf(n, sizeof n, "%s.self_attn.q_norm.weight", p);
                sh_t16(c, n, hd);
                snprintf(n, sizeof n, "%s.self_attn.k_norm.weight", p);
                sh_t16(c, n, hd);
            }
        }
        /* feed-forward */
        if (!strcmp(fam, "phi3")) {
            snprintf(n, sizeof n, "%s.mlp.gate_up_proj", p);
            sh_linear(c, n, 2 * F, H);
            snprintf(n, sizeof n, "%s.mlp.down_proj", p);
            sh_linear(c, n, H, F);
        } else if (!strcmp(fam, "mixtral")) {
            for (uint64_t e = 0; e < E; e++) {
                snprintf(n, sizeof n, "%s.block_sparse_moe.experts.%llu", p, (unsigned long long)e);
                sh_mlp(c, n, H, F, "w1", "w3", "w2");
            }
            snprintf(n, sizeof n, "%s.block_sparse_moe.gate.weight", p);
            sh_t16(c, n, E * H);
        } else if (!strcmp(fam, "gpt_oss")) {
            /* experts fused per layer: gate_up [E, 2F, H] and down [E, H, F], MXFP4 blocks of 32 */
            snprintf(n, sizeof n, "%s.mlp.experts.gate_up_proj_blocks", p);
            sh_add(c, n, "U8", E * 2 * F * H / 2, E * 2 * F * H / 2);
            snprintf(n, sizeof n, "%s.mlp.experts.gate_up_proj_scales", p);
            sh_add(c, n, "U8", E * 2 * F * H / 32, E * 2 * F * H / 32);
            snprintf(n, sizeof n, "%s.mlp.experts.gate_up_proj_bias", p);
            sh_t16(c, n, E * 2 * F);
            snprintf(n, sizeof n, "%s.mlp.experts.down_proj_blocks", p);
            sh_add(c, n, "U8", E * H * F / 2, E * H * F / 2);
            snprintf(n, sizeof n, "%s.mlp.experts.down_proj_scales", p);
            sh_add(c, n, "U8", E * H * F / 32, E * H * F / 32);
            snprintf(n, sizeof n, "%s.mlp.experts.down_proj_bias", p);
            sh_t16(c, n, E * H);
            snprintf(n, sizeof n, "%s.mlp.router.weight", p);
            sh_t16(c, n, E * H);
            snprintf(n, sizeof n, "%s.mlp.router.bias", p);
            sh_t16(c, n, E);
        } else if (E && i >= dense) {
            for (uint64_t e = 0; e < E; e++) {
                snprintf(n, sizeof n, "%s.mlp.experts.%llu", p, (unsigned long long)e);
                sh_mlp(c, n, H, F, "gate_proj", "up_proj", "down_proj");
            }
            snprintf(n, sizeof n, "%s.mlp.gate.weight", p);
            sh_t16(c, n, E * H);
            if (shared) {
                const char *sn = !strcmp(fam, "qwen2_moe") ? "shared_expert" : "shared_experts";
                snprintf(n, sizeof n, "%s.mlp.%s", p, sn);
                sh_mlp(c, n, H, shared, "gate_proj", "up_proj", "down_proj");
                if (!strcmp(fam, "qwen2_moe")) {
                    snprintf(n, sizeof n, "%s.mlp.shared_expert_gate.weight", p);
                    sh_t16(c, n, H);
                }
            }
        } else {
            snprintf(n, sizeof n, "%s.mlp", p);
            sh_mlp(c, n, H, E ? dffn : F, "gate_proj", "up_proj", "down_proj");
        }
    }
    snprintf(n, sizeof n, "%snorm.weight", lm);
    sh_t16(c, n, H);
    if (!tied)
        sh_t16(c, !strcmp(fam, "mistral3") ? "language_model.lm_head.weight" : "lm_head.weight", V * H);
    if (json_is_object(json_object_get(m, "vision")))
        sh_vision_pixtral(c, json_object_get(m, "vision"));
    return 0;
}

/* The config.json facts of model m (what ap_hfconfig_read would set). */
static inline void shape_facts(ap_model_facts *f, const json_t *m)
{
    const char *fam = json_string_value(json_object_get(m, "family"));
    uint64_t L = sj(m, "layers"), W = sj(m, "sliding_window");
    json_t *rope = json_object_get(m, "rope");
    ap_facts_set(&f->layers, L, AP_SRC_CONFIG);
    ap_facts_set(&f->hidden, sj(m, "hidden"), AP_SRC_CONFIG);
    ap_facts_set(&f->heads, sj(m, "heads"), AP_SRC_CONFIG);
    ap_facts_set(&f->kv_heads, sj(m, "kv_heads"), AP_SRC_CONFIG);
    ap_facts_set(&f->head_dim, sj(m, "head_dim"), AP_SRC_CONFIG);
    ap_facts_set(&f->v_head_dim, sj(m, "v_head_dim") ? sj(m, "v_head_dim") : sj(m, "head_dim"), AP_SRC_CONFIG);
    ap_facts_set(&f->context_length, sj(m, "context"), AP_SRC_CONFIG);
    ap_facts_set(&f->vocab, sj(m, "vocab"), AP_SRC_CONFIG);
    ap_facts_set(&f->ffn, sj(m, "ffn"), AP_SRC_CONFIG);
    ap_facts_set(&f->experts, sj(m, "experts"), AP_SRC_CONFIG);
    if (sj(m, "top_k"))
        ap_facts_set(&f->experts_used, sj(m, "top_k"), AP_SRC_CONFIG);
    if (sj(m, "kv_lora_rank")) {
        ap_facts_set(&f->kv_lora_rank, sj(m, "kv_lora_rank"), AP_SRC_CONFIG);
        ap_facts_set(&f->qk_rope_head_dim, sj(m, "qk_rope_head_dim"), AP_SRC_CONFIG);
    }
    ap_facts_set(&f->sliding_window, W, AP_SRC_CONFIG);
    if (W && L) {
        /* Gemma 2 and gpt-oss alternate sliding and full layers, sliding first */
        f->swa_layer = calloc(L, 1);
        for (uint64_t i = 0; f->swa_layer && i < L; i++)
            f->swa_layer[i] = (i % 2) == 0;
    }
    if (json_is_object(rope)) {
        f->rope_type = strdup(json_string_value(json_object_get(rope, "type")));
        f->rope_factor = json_number_value(json_object_get(rope, "factor"));
        f->rope_orig_ctx = (uint64_t)json_integer_value(json_object_get(rope, "original"));
    }
    if (json_is_string(json_object_get(m, "quant")) && !strcmp(json_string_value(json_object_get(m, "quant")), "mxfp4"))
        if (ap_facts_set_str(&f->quant_method, &f->quant_method_src, "mxfp4", AP_SRC_CONFIG))
            abort();
    if (ap_facts_set_str(&f->architecture, &f->architecture_src, fam, AP_SRC_CONFIG))
        abort();
}

#endif
