/*
 * hfconfig.c - the Hugging Face config.json reader.
 *
 * config.json carries the attention shape that safetensors headers do not:
 * layers, heads, KV heads, head size, the trained context, sliding window,
 * MoE and MLA keys, the checkpoint dtype and the quantization config.
 * Multimodal checkpoints nest the language model's keys under
 * "text_config"; that object is used when the top level has no layer
 * count. Keys differ between model families, so a few aliases are read
 * (n_layer, num_layers, n_head, ...). A fact already read from a GGUF
 * header is never overwritten. The file is capped at 16 MiB; malformed
 * JSON is reported with its line and column.
 */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util.h"

/* The first present, non-null key of a NULL-terminated list. */
static json_t *get_any(json_t *o, const char *const *keys, const char **which)
{
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (v && !json_is_null(v)) {
            *which = keys[i];
            return v;
        }
    }
    return NULL;
}

/* Set fact from the first key found; error if it is not a non-negative integer. */
static int take_u64(const char *path, json_t *o, const char *const *keys, ap_fact *fact, ap_error *err)
{
    const char *which = NULL;
    json_t *v = get_any(o, keys, &which);
    if (!v)
        return AP_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "'%s' must be a non-negative integer", which);
    if (fact->src == AP_SRC_NONE)
        ap_facts_set(fact, (uint64_t)json_integer_value(v), AP_SRC_CONFIG);
    return AP_OK;
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

int ap_hfconfig_read(const char *path, ap_model_facts *f, ap_error *err)
{
    char *buf = NULL;
    size_t len;
    json_t *root = NULL, *lm, *tc, *v, *qc;
    json_error_t je;
    const char *which;
    int rc;

    if ((rc = ap_read_file(path, AP_MODEL_MAX_JSON, &buf, &len, err)))
        return rc;
    root = json_loadb(buf, len, 0, &je);
    if (!root) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, (unsigned)je.line, (unsigned)je.column, "%s", je.text);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 1, 1, "config.json must be a JSON object");
        goto out;
    }
    lm = root;
    tc = json_object_get(root, "text_config");
    if (json_is_object(tc) && !json_object_get(root, "num_hidden_layers"))
        lm = tc;

    /* architecture: the language model's model_type, else the top level's */
    v = json_object_get(lm, "model_type");
    if (!json_is_string(v))
        v = json_object_get(root, "model_type");
    if (!json_is_string(v)) {
        json_t *a = json_object_get(root, "architectures");
        v = json_is_array(a) ? json_array_get(a, 0) : NULL;
    }
    if (json_is_string(v) && !f->architecture &&
        ap_facts_set_str(&f->architecture, &f->architecture_src, json_string_value(v), AP_SRC_CONFIG)) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    v = json_object_get(root, "_name_or_path");
    if (json_is_string(v) && json_string_length(v) > 0 && !f->name &&
        ap_facts_set_str(&f->name, &f->name_src, json_string_value(v), AP_SRC_CONFIG)) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }

    if ((rc = take_u64(path, lm, KEYS("num_hidden_layers", "n_layer", "num_layers", "n_layers"), &f->layers, err)) ||
        (rc = take_u64(path, lm, KEYS("hidden_size", "n_embd", "d_model"), &f->hidden, err)) ||
        (rc = take_u64(path, lm, KEYS("num_attention_heads", "n_head", "n_heads"), &f->heads, err)) ||
        (rc = take_u64(path, lm, KEYS("num_key_value_heads", "n_head_kv", "num_kv_heads", "multi_query_group_num"), &f->kv_heads, err)) ||
        (rc = take_u64(path, lm, KEYS("head_dim", "head_size"), &f->head_dim, err)) ||
        (rc = take_u64(path, lm, KEYS("v_head_dim"), &f->v_head_dim, err)) ||
        (rc = take_u64(path, lm, KEYS("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length"), &f->context_length, err)) ||
        (rc = take_u64(path, lm, KEYS("num_local_experts", "n_routed_experts", "num_experts", "moe_num_experts"), &f->experts, err)) ||
        (rc = take_u64(path, lm, KEYS("num_experts_per_tok", "moe_top_k", "num_experts_per_token"), &f->experts_used, err)) ||
        (rc = take_u64(path, lm, KEYS("kv_lora_rank"), &f->kv_lora_rank, err)) ||
        (rc = take_u64(path, lm, KEYS("qk_rope_head_dim"), &f->qk_rope_head_dim, err)) ||
        (rc = take_u64(path, lm, KEYS("vocab_size", "padded_vocab_size"), &f->vocab, err)) ||
        (rc = take_u64(path, lm, KEYS("moe_intermediate_size", "intermediate_size", "ffn_hidden_size", "n_inner"), &f->ffn, err)))
        goto out;

    if ((rc = take_u64(path, lm, KEYS("num_nextn_predict_layers"), &f->mtp_layers, err)))
        goto out;
    /* rope_scaling: a context beyond max_position_embeddings (YaRN) */
    v = json_object_get(lm, "rope_scaling");
    if (!json_is_object(v))
        v = json_object_get(root, "rope_scaling");
    if (json_is_object(v)) {
        json_t *t = json_object_get(v, "rope_type"), *fa = json_object_get(v, "factor"),
               *o = json_object_get(v, "original_max_position_embeddings");
        if (!json_is_string(t))
            t = json_object_get(v, "type");
        if (json_is_string(t) && json_string_length(t) < 64 && !f->rope_type) {
            f->rope_type = strdup(json_string_value(t));
            if (!f->rope_type) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
        if (json_is_number(fa) && json_number_value(fa) > 0 && json_number_value(fa) <= 1024)
            f->rope_factor = json_number_value(fa);
        if (json_is_integer(o) && json_integer_value(o) > 0 && json_integer_value(o) <= (1ll << 32))
            f->rope_orig_ctx = (uint64_t)json_integer_value(o);
    }

    /* MLA: the query/key head is the no-RoPE part plus the RoPE part */
    if (f->kv_lora_rank.src == AP_SRC_CONFIG && f->head_dim.src == AP_SRC_NONE) {
        json_t *nope = json_object_get(lm, "qk_nope_head_dim");
        if (json_is_integer(nope) && json_integer_value(nope) >= 0 && f->qk_rope_head_dim.src)
            ap_facts_set(&f->head_dim, (uint64_t)json_integer_value(nope) + f->qk_rope_head_dim.v, AP_SRC_DERIVED);
    }

    /* sliding window: only when in use */
    v = json_object_get(lm, "use_sliding_window");
    if (!(json_is_boolean(v) && !json_is_true(v))) {
        ap_fact w = {0, AP_SRC_NONE};
        if ((rc = take_u64(path, lm, KEYS("sliding_window"), &w, err)))
            goto out;
        if (w.src && f->sliding_window.src == AP_SRC_NONE) {
            json_t *lt = json_object_get(lm, "layer_types");
            json_t *pat = json_object_get(lm, "sliding_window_pattern");
            json_t *mwl = json_object_get(lm, "max_window_layers");
            f->sliding_window = w;
            if (f->layers.src && f->layers.v <= AP_MODEL_MAX_LAYERS && !f->swa_layer) {
                uint64_t n = f->layers.v;
                if (json_is_array(lt) && json_array_size(lt) == n) {
                    f->swa_layer = calloc(n ? n : 1, 1);
                    for (uint64_t i = 0; f->swa_layer && i < n; i++) {
                        const char *s = json_string_value(json_array_get(lt, i));
                        f->swa_layer[i] = s && strstr(s, "sliding") != NULL;
                    }
                } else if (json_is_integer(pat) && json_integer_value(pat) > 0) {
                    uint64_t p = (uint64_t)json_integer_value(pat);
                    f->swa_layer = calloc(n ? n : 1, 1);
                    for (uint64_t i = 0; f->swa_layer && i < n; i++)
                        f->swa_layer[i] = ((i + 1) % p) != 0;
                } else if (json_is_boolean(v) && json_is_integer(mwl) && json_integer_value(mwl) >= 0) {
                    uint64_t m = (uint64_t)json_integer_value(mwl);
                    f->swa_layer = calloc(n ? n : 1, 1);
                    for (uint64_t i = 0; f->swa_layer && i < n; i++)
                        f->swa_layer[i] = i >= m;
                }
            }
        }
    } else if (f->sliding_window.src == AP_SRC_NONE) {
        ap_facts_set(&f->sliding_window, 0, AP_SRC_CONFIG);
    }

    v = get_any(lm, KEYS("torch_dtype", "dtype"), &which);
    if (!v)
        v = get_any(root, KEYS("torch_dtype", "dtype"), &which);
    if (json_is_string(v) && !f->dtype &&
        ap_facts_set_str(&f->dtype, &f->dtype_src, json_string_value(v), AP_SRC_CONFIG)) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    qc = json_object_get(root, "quantization_config");
    if (!qc)
        qc = json_object_get(lm, "quantization_config");
    if (json_is_object(qc)) {
        v = json_object_get(qc, "quant_method");
        if (json_is_string(v) && !f->quant_method &&
            ap_facts_set_str(&f->quant_method, &f->quant_method_src, json_string_value(v), AP_SRC_CONFIG)) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        v = json_object_get(qc, "bits");
        if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= 64)
            ap_facts_set(&f->quant_bits, (uint64_t)json_integer_value(v), AP_SRC_CONFIG);
    }
    if (!f->format)
        f->format = "hf-config";
out:
    json_decref(root);
    free(buf);
    return rc;
}
