/*
 * presets.h - published model shapes for the fixture writers mkgguf and
 * mksafetensors (included by both; not a program of its own).
 *
 * Each preset is a decoder-only transformer of the Llama family (Llama,
 * Qwen2, Mistral/Mixtral), described by the numbers of its config.json.
 * preset_tensors() lists its tensors with Hugging Face names and shapes
 * (outermost dimension first) or GGUF names and ggml shapes (ne[0] first).
 * With these shapes the parameter counts are the published ones:
 * Llama-3.1-8B 8,030,261,248; Llama-3.1-70B 70,553,706,496; Qwen2.5-7B
 * 7,615,616,512; Mixtral-8x7B 46,702,792,704.
 */
#ifndef AIRPACK_TEST_PRESETS_H
#define AIRPACK_TEST_PRESETS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct preset {
    const char *name;          /* preset name */
    const char *hf_arch;       /* architectures[0] */
    const char *model_type;    /* config.json model_type, GGUF general.architecture */
    uint64_t vocab, hidden, layers, heads, kv_heads, head_dim, inter, context;
    uint64_t experts, experts_used;
    int qkv_bias, tied;
    uint64_t sliding_window;   /* 0 = none */
} preset;

static const preset presets[] = {
    {"llama-3.1-8b", "LlamaForCausalLM", "llama", 128256, 4096, 32, 32, 8, 128, 14336, 131072, 0, 0, 0, 0, 0},
    {"llama-3.1-70b", "LlamaForCausalLM", "llama", 128256, 8192, 80, 64, 8, 128, 28672, 131072, 0, 0, 0, 0, 0},
    {"qwen2.5-7b", "Qwen2ForCausalLM", "qwen2", 152064, 3584, 28, 28, 4, 128, 18944, 32768, 0, 0, 1, 0, 0},
    {"mixtral-8x7b", "MixtralForCausalLM", "mixtral", 32000, 4096, 32, 32, 8, 128, 14336, 32768, 8, 2, 0, 0, 0},
    {"mistral-7b-v0.1", "MistralForCausalLM", "mistral", 32000, 4096, 32, 32, 8, 128, 14336, 32768, 0, 0, 0, 0, 4096},
    {"tiny", "LlamaForCausalLM", "llama", 256, 64, 2, 4, 2, 16, 128, 2048, 0, 0, 0, 1, 0},
};

static inline const preset *preset_find(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0)
            return &presets[i];
    return NULL;
}

/* Roles, so a writer can pick a storage type per tensor. */
enum { R_EMBED, R_OUTPUT, R_NORM, R_BIAS, R_ATTN_QKO, R_ATTN_V, R_FFN_UP, R_FFN_DOWN, R_ROUTER };

typedef void (*preset_cb)(void *ctx, const char *name, int role, const uint64_t *shape, int ndims);

/* List the tensors: gguf selects GGUF names and ne[0]-first shapes. */
static inline void preset_tensors(const preset *p, int gguf, preset_cb cb, void *ctx)
{
    char n[256];
    uint64_t s[3];
    uint64_t q = p->heads * p->head_dim, kv = p->kv_heads * p->head_dim;
#define EMIT2(role, a, b) do { if (gguf) { s[0] = (b); s[1] = (a); } else { s[0] = (a); s[1] = (b); } cb(ctx, n, role, s, 2); } while (0)
#define EMIT1(role, a) do { s[0] = (a); cb(ctx, n, role, s, 1); } while (0)

    snprintf(n, sizeof n, gguf ? "token_embd.weight" : "model.embed_tokens.weight");
    EMIT2(R_EMBED, p->vocab, p->hidden);
    for (uint64_t l = 0; l < p->layers; l++) {
        unsigned long long L = (unsigned long long)l;
        snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "attn_norm.weight" : "input_layernorm.weight");
        EMIT1(R_NORM, p->hidden);
        snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "attn_q.weight" : "self_attn.q_proj.weight");
        EMIT2(R_ATTN_QKO, q, p->hidden);
        snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "attn_k.weight" : "self_attn.k_proj.weight");
        EMIT2(R_ATTN_QKO, kv, p->hidden);
        snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "attn_v.weight" : "self_attn.v_proj.weight");
        EMIT2(R_ATTN_V, kv, p->hidden);
        if (p->qkv_bias) {
            snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "attn_q.bias" : "self_attn.q_proj.bias");
            EMIT1(R_BIAS, q);
            snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "attn_k.bias" : "self_attn.k_proj.bias");
            EMIT1(R_BIAS, kv);
            snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "attn_v.bias" : "self_attn.v_proj.bias");
            EMIT1(R_BIAS, kv);
        }
        snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "attn_output.weight" : "self_attn.o_proj.weight");
        EMIT2(R_ATTN_QKO, p->hidden, q);
        snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "ffn_norm.weight" : "post_attention_layernorm.weight");
        EMIT1(R_NORM, p->hidden);
        if (p->experts) {
            snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "ffn_gate_inp.weight" : "block_sparse_moe.gate.weight");
            EMIT2(R_ROUTER, p->experts, p->hidden);
            if (gguf) {
                /* merged experts: ne = {hidden, inter, experts} / {inter, hidden, experts} */
                snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, "ffn_gate_exps.weight");
                s[0] = p->hidden; s[1] = p->inter; s[2] = p->experts;
                cb(ctx, n, R_FFN_UP, s, 3);
                snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, "ffn_up_exps.weight");
                cb(ctx, n, R_FFN_UP, s, 3);
                snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, "ffn_down_exps.weight");
                s[0] = p->inter; s[1] = p->hidden; s[2] = p->experts;
                cb(ctx, n, R_FFN_DOWN, s, 3);
            } else {
                for (uint64_t e = 0; e < p->experts; e++) {
                    char base[128];
                    snprintf(base, sizeof base, "model.layers.%llu.block_sparse_moe.experts.%llu.", L,
                             (unsigned long long)e);
                    snprintf(n, sizeof n, "%sw1.weight", base);
                    EMIT2(R_FFN_UP, p->inter, p->hidden);
                    snprintf(n, sizeof n, "%sw2.weight", base);
                    EMIT2(R_FFN_DOWN, p->hidden, p->inter);
                    snprintf(n, sizeof n, "%sw3.weight", base);
                    EMIT2(R_FFN_UP, p->inter, p->hidden);
                }
            }
        } else {
            snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "ffn_gate.weight" : "mlp.gate_proj.weight");
            EMIT2(R_FFN_UP, p->inter, p->hidden);
            snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "ffn_up.weight" : "mlp.up_proj.weight");
            EMIT2(R_FFN_UP, p->inter, p->hidden);
            snprintf(n, sizeof n, gguf ? "blk.%llu.%s" : "model.layers.%llu.%s", L, gguf ? "ffn_down.weight" : "mlp.down_proj.weight");
            EMIT2(R_FFN_DOWN, p->hidden, p->inter);
        }
    }
    snprintf(n, sizeof n, gguf ? "output_norm.weight" : "model.norm.weight");
    EMIT1(R_NORM, p->hidden);
    if (!p->tied) {
        snprintf(n, sizeof n, gguf ? "output.weight" : "lm_head.weight");
        EMIT2(R_OUTPUT, p->vocab, p->hidden);
    }
#undef EMIT1
#undef EMIT2
}

#endif
