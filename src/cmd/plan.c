/*
 * plan.c - `airpack plan MANIFEST`: the GPU memory plan per model and per
 * GPU, the verdict, the headroom, and the largest context and concurrency
 * that fit (docs/memory-planner.md). Exit 0 when everything fits, 1 when
 * not, 2 on bad input.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "manifest.h"
#include "model/model.h"
#include "plan.h"
#include "source/source.h"

const char cmd_plan_usage[] =
"usage: airpack plan MANIFEST [--format text|json]\n"
    "\n"
    "The GPU memory plan per model and per GPU, by each runtime's own accounting\n"
    "(vLLM, SGLang, llama.cpp, TGI, Ollama; the profile chosen by runtimes[].version):\n"
    "the weights each GPU loads, KV cache, activations, non-torch memory and CUDA\n"
    "graphs against the usable memory, each with its source; the verdict (fits,\n"
    "marginal within the profile's error, does not fit), the headroom, and the\n"
    "largest context and concurrency that fit.\n"
    "\n"
    "options:\n"
    "  --format text|json   output format (default text)\n"
    "\n"
    "exit status: 0 everything fits (marginal included), 1 something does not fit,\n"
    "2 bad input\n"
    "The GPU catalogue is built in; AIRPACK_GPU_CATALOG=FILE replaces it.\n";

#define GIB (1024.0 * 1024.0 * 1024.0)

static double gib(uint64_t b)
{
    return (double)b / GIB;
}

static void print_text(const ap_plan *p, const json_t *findings)
{
    printf("target: %" PRIu64 " x %s (%.2f GiB seen by the runtime, %s) x memory_utilization %.2f = %.2f GiB per GPU\n",
           p->gpu_count, p->gpu_label ? p->gpu_label : p->gpu_model ? p->gpu_model : "GPU", p->memory_gib,
           p->memory_src, p->memory_utilization, gib(p->budget_bytes));
    for (size_t i = 0; i < p->n_models; i++) {
        const ap_plan_model *pm = &p->models[i];
        printf("\nmodel '%s' (%s, tensor_parallel %" PRIu64 ", GPUs 0-%" PRIu64 ")\n", pm->name, pm->kind_name,
               pm->tensor_parallel, pm->tensor_parallel - 1);
        if (!pm->planned) {
            printf("  not planned: %s\n", pm->problem ? pm->problem : "unknown");
            continue;
        }
        printf("  memory model: %s%s%s\n", pm->profile, pm->profile_note[0] ? "; " : "", pm->profile_note);
        printf("  %-34s %12s\n", "per GPU", "GiB");
        printf("  %-34s %12.2f  (%s; checkpoint %.2f GiB)\n", "weights loaded", gib(pm->weights_per_gpu),
               pm->weights_src, gib(pm->checkpoint_bytes));
        if (pm->host_bytes)
            printf("  %-34s %12.2f\n", "in host memory (not counted)", gib(pm->host_bytes));
        {
            char label[96];
            snprintf(label, sizeof label, "KV cache %" PRIu64 " x %" PRIu64 " %s%s", pm->context, pm->concurrency,
                     pm->kv_dtype, pm->mla ? " MLA" : pm->window ? " SWA" : "");
            printf("  %-34s %12.2f\n", label, gib(pm->kv_bytes));
        }
        printf("  %-34s %12.2f  (%s%s)\n", "activations", gib(pm->activation_bytes), pm->activation_note,
               pm->static_fraction ? "; outside mem_fraction_static" : "");
        printf("  %-34s %12.2f  (%s)\n", "runtime overhead", gib(pm->overhead_bytes), pm->overhead_note);
        if (pm->graphs_outside)
            printf("  %-34s %12.2f  (%s)\n", "CUDA graphs (outside the budget)", gib(pm->graphs_bytes), pm->graphs_note);
        printf("  %-34s %12.2f\n", "total", gib(pm->total_per_gpu));
        if (pm->others_bytes)
            printf("  %-34s %12.2f\n", "other models on these GPUs", gib(pm->others_bytes));
        printf("  %-34s %12.2f\n", "budget", gib(p->budget_bytes));
        printf("  %-34s %12.2f\n", "headroom",
               ((double)p->budget_bytes - (double)pm->total_per_gpu - (double)pm->others_bytes) / GIB);
        printf("  KV cache per token: %" PRIu64 " bytes per GPU (%" PRIu64 " KV head%s per GPU); KV budget %.2f GiB\n",
               pm->kv_bytes_per_token, pm->kv_heads_per_gpu, pm->kv_heads_per_gpu == 1 ? "" : "s",
               (double)pm->kv_budget_bytes / GIB);
        printf("  largest context at concurrency %" PRIu64 ": %" PRIu64 "%s; largest concurrency at context %" PRIu64 ": %" PRIu64 "\n",
               pm->concurrency, pm->max_context,
               pm->model_max_context && pm->max_context == pm->model_max_context ? " (the model's maximum)" : "",
               pm->context, pm->max_concurrency);
        if (pm->problem)
            printf("  problem: %s\n", pm->problem);
        printf("  verdict: %s (profile error %.2f GiB)\n", pm->verdict && strcmp(pm->verdict, "does not fit") == 0
               ? "DOES NOT FIT" : pm->verdict ? pm->verdict : "not planned", gib(pm->error_bytes));
    }
    printf("\n%-6s %12s %12s %12s  %s\n", "GPU", "budget GiB", "used GiB", "headroom", "models");
    for (size_t g = 0; g < p->n_gpus; g++) {
        const ap_plan_gpu *pg = &p->gpus[g];
        printf("%-6" PRIu64 " %12.2f %12.2f %12.2f  ", pg->index, gib(pg->budget_bytes), gib(pg->used_bytes),
               (double)pg->headroom_bytes / GIB);
        for (size_t k = 0, n = 0; k < p->n_models; k++)
            if (p->models[k].planned && pg->index < p->models[k].tensor_parallel &&
                p->models[k].tensor_parallel <= p->gpu_count)
                printf("%s%s", n++ ? ", " : "", p->models[k].name);
        printf("\n");
    }
    if (json_array_size(findings) > 0) {
        size_t i;
        json_t *f;
        printf("\n");
        json_array_foreach(findings, i, f)
            printf("%s: %s [%s]\n", json_string_value(json_object_get(f, "level")),
                   json_string_value(json_object_get(f, "message")), json_string_value(json_object_get(f, "rule")));
    }
    printf("\nverdict: %s\n", p->fits ? "fits" : "DOES NOT FIT");
}

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_plan_options[] = {
    {"format", required_argument, NULL, 'f'},
    {NULL, 0, NULL, 0},
};

int cmd_plan(int argc, char **argv)
{
    enum cli_format fmt = CLI_FMT_TEXT;
    ap_manifest *m = NULL;
    ap_model_facts **facts = NULL;
    ap_plan *p = NULL;
    json_t *findings = NULL;
    ap_error err;
    int c, rc = 2, errors = 0;

    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", cmd_plan_options, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (cli_parse_format("plan", optarg, CLI_FMT_TEXT | CLI_FMT_JSON, &fmt) != 0)
                return 2;
            break;
        default:
            return cli_usage_error("plan", "unknown option");
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("plan", "expected one MANIFEST");
    if (ap_manifest_load(argv[optind], NULL, &m, &err) != AP_OK)
        return cli_report(&err);
    facts = calloc(m->n_models ? m->n_models : 1, sizeof *facts);
    findings = json_array();
    if (!facts || !findings) {
        cli_error("out of memory");
        goto out;
    }
    for (size_t i = 0; i < m->n_models; i++) {
        /* the files check and build read (include/exclude applied) */
        if (ap_source_facts_load(&m->models[i], &facts[i], &err) != AP_OK) {
            ap_error_prefix(&err, "model '%s'", m->models[i].name);
            rc = cli_report(&err);
            goto out;
        }
    }
    if (ap_plan_compute(m, facts, &p, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (ap_plan_findings(p, m, facts, findings) != 0) {
        cli_error("out of memory");
        goto out;
    }
    {
        size_t i;
        json_t *f;
        json_array_foreach(findings, i, f)
            if (strcmp(json_string_value(json_object_get(f, "level")), "error") == 0)
                errors++;
    }
    if (fmt == CLI_FMT_JSON) {
        json_t *j = ap_plan_to_json(p);
        if (!j || json_object_set(j, "findings", findings) != 0) {
            json_decref(j);
            cli_error("out of memory");
            goto out;
        }
        rc = cli_print_json(stdout, j);
        json_decref(j);
        if (rc)
            goto out;
    } else {
        print_text(p, findings);
    }
    rc = ap_plan_fits(p) && errors == 0 ? 0 : 1;
out:
    json_decref(findings);
    ap_plan_free(p);
    for (size_t i = 0; m && facts && i < m->n_models; i++)
        ap_model_facts_free(facts[i]);
    free(facts);
    ap_manifest_free(m);
    return rc;
}
