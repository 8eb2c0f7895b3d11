/*
 * model.c - `airpack model PATH`: the facts read from a model file or
 * folder (GGUF, safetensors, HF config.json), each with where it came from.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "model/model.h"
#include "source/source.h"

const char cmd_model_usage[] =
"usage: airpack model PATH [--format text|json] [--type auto|gguf|safetensors]\n"
    "\n"
    "Facts read from a model file or folder (GGUF, safetensors, HF config.json),\n"
    "each with where it came from. Only headers are read. PATH may also be\n"
    "hf://ORG/NAME[@REVISION] (the Hugging Face hub cache) or ollama://NAME[:TAG]\n"
    "(the Ollama store).\n"
    "\n"
    "options:\n"
    "  --format text|json   output format (default text)\n"
    "  --type FORMAT        read PATH as this format (default auto)\n";

static void print_num(const char *label, const ap_fact *v, const char *unit)
{
    if (v->src == AP_SRC_NONE) {
        printf("  %-17s -\n", label);
        return;
    }
    printf("  %-17s %" PRIu64 "%s%s  (%s)\n", label, v->v, unit ? " " : "", unit ? unit : "",
           ap_fact_src_name(v->src));
}

static void print_str(const char *label, const char *v, ap_fact_src src)
{
    if (!v)
        printf("  %-17s -\n", label);
    else
        printf("  %-17s %s  (%s)\n", label, v, ap_fact_src_name(src));
}

static void print_text(const ap_model_facts *f)
{
    printf("model '%s'\n", f->path);
    printf("  %-17s %s", "format", f->format);
    if (f->gguf_version)
        printf(" v%" PRIu32 " (alignment %" PRIu64 ")", f->gguf_version, f->gguf_alignment);
    printf("\n");
    print_str("architecture", f->architecture, f->architecture_src);
    print_str("name", f->name, f->name_src);
    print_str("license", f->license, f->license_src);
    if (f->tensors_src != AP_SRC_NONE) {
        printf("  %-17s %" PRIu64 " (%.2fB)  (%s)\n", "parameters", f->parameters,
               (double)f->parameters / 1e9, ap_fact_src_name(f->tensors_src));
        printf("  %-17s %" PRIu64 " (%.2f GiB)  (%s)\n", "weights_bytes", f->weights_bytes,
               (double)f->weights_bytes / (1024.0 * 1024 * 1024), ap_fact_src_name(f->tensors_src));
        printf("  %-17s %" PRIu64 " in %" PRIu64 " file%s\n", "tensors", f->n_tensors, f->n_files,
               f->n_files == 1 ? "" : "s");
    } else {
        printf("  %-17s - (no weight files read)\n", "parameters");
    }
    print_num("layers", &f->layers, NULL);
    print_num("hidden_size", &f->hidden, NULL);
    print_num("heads", &f->heads, NULL);
    print_num("kv_heads", &f->kv_heads, f->kv_heads_layer ? "(max over layers)" : NULL);
    print_num("head_dim", &f->head_dim, NULL);
    print_num("v_head_dim", &f->v_head_dim, NULL);
    print_num("context_length", &f->context_length, "tokens");
    print_num("sliding_window", &f->sliding_window, "tokens");
    print_num("experts", &f->experts, NULL);
    print_num("experts_used", &f->experts_used, NULL);
    if (f->kv_lora_rank.src) {
        print_num("kv_lora_rank", &f->kv_lora_rank, "(MLA)");
        print_num("qk_rope_head_dim", &f->qk_rope_head_dim, NULL);
    }
    print_num("vocab_size", &f->vocab, NULL);
    print_str("dtype", f->dtype, f->dtype_src);
    if (f->file_type)
        print_str("file_type", f->file_type, f->file_type_src);
    if (f->quant_method)
        print_str("quant_method", f->quant_method, f->quant_method_src);
    if (f->n_dtypes > 0) {
        printf("  quantization mix:\n");
        for (size_t i = 0; i < f->n_dtypes; i++)
            printf("    %-10s %6" PRIu64 " tensors %16" PRIu64 " params %16" PRIu64 " bytes\n",
                   f->dtypes[i].name, f->dtypes[i].tensors, f->dtypes[i].parameters, f->dtypes[i].bytes);
    }
}

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_model_options[] = {
    {"format", required_argument, NULL, 'f'},
    {"type", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
};

int cmd_model(int argc, char **argv)
{
    enum cli_format fmt = CLI_FMT_TEXT;
    ap_model_format type = AP_FMT_AUTO;
    ap_model_facts *f = NULL;
    ap_error err;
    int c, rc;

    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", cmd_model_options, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (cli_parse_format("model", optarg, CLI_FMT_TEXT | CLI_FMT_JSON, &fmt) != 0)
                return 2;
            break;
        case 't':
            if (!strcmp(optarg, "auto"))
                type = AP_FMT_AUTO;
            else if (!strcmp(optarg, "gguf"))
                type = AP_FMT_GGUF;
            else if (!strcmp(optarg, "safetensors"))
                type = AP_FMT_SAFETENSORS;
            else
                return cli_usage_error("model", "unknown --type '%s' (auto, gguf or safetensors)", optarg);
            break;
        default:
            return cli_usage_error("model", "unknown option");
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("model", "expected one PATH");
    {
        /* a store reference (hf://ORG/NAME[@REV], ollama://NAME[:TAG]) is read
         * where the store keeps it */
        char *abs = NULL;
        int d = 0, lrc;
        if (ap_source_is_ref(argv[optind]) &&
            ap_source_resolve(argv[optind], &abs, &d, &err) != AP_OK)
            return cli_report(&err);
        lrc = ap_model_facts_load(abs ? abs : argv[optind], type, &f, &err);
        free(abs);
        if (lrc != AP_OK)
            return cli_report(&err);
    }
    if (fmt == CLI_FMT_JSON) {
        json_t *j = ap_model_facts_to_json(f);
        if (!j) {
            cli_error("out of memory");
            rc = 2;
        } else {
            rc = cli_print_json(stdout, j);
            json_decref(j);
        }
    } else {
        print_text(f);
        rc = 0;
    }
    ap_model_facts_free(f);
    return rc;
}
