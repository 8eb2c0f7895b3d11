/*
 * launch.c - launch specs per runtime kind (launch.h, docs/runtimes.md).
 *
 * One function per kind appends the kind's flags to the spec, each value
 * taken from the plan (context, concurrency, tensor parallelism, KV dtype),
 * the target (memory utilization) or the runtime entry (listen). Every
 * derived flag is also listed in "derived" with where its value came from,
 * so `inspect` and the reports can show the provenance and the baseline
 * rule can compare the manifest's own args against it.
 */
#include "runtime/launch.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* ---- the offline environment per kind ---------------------------------- */

/* Every runtime: Hugging Face libraries local-only, no telemetry. */
static const char *const env_common[] = {
    "HF_HUB_OFFLINE", "1",          /* huggingface_hub: local files only */
    "TRANSFORMERS_OFFLINE", "1",    /* transformers: no downloads */
    "HF_DATASETS_OFFLINE", "1",     /* datasets: no downloads */
    "HF_HUB_DISABLE_TELEMETRY", "1",/* huggingface_hub: no telemetry */
    "DO_NOT_TRACK", "1",            /* consoledonottrack.com convention (vLLM honours it) */
    NULL};
static const char *const env_vllm[] = {
    "VLLM_NO_USAGE_STATS", "1",     /* vLLM usage statistics off */
    "VLLM_DO_NOT_TRACK", "1",
    NULL};
static const char *const env_llamacpp[] = {
    "LLAMA_OFFLINE", "1",           /* llama-server --offline */
    NULL};
static const char *const env_ollama[] = {
    "OLLAMA_NO_CLOUD", "1",         /* no cloud models through the local API */
    "OLLAMA_NOPRUNE", "1",          /* keep the installed blobs as they are */
    NULL};
static const char *const env_none[] = {NULL};

/* Combined list per kind (common first), built once. */
const char *const *ap_launch_offline_env(ap_runtime_kind kind)
{
    static const char *tables[AP_RT_UNKNOWN + 1][32];
    static int done;
    if (!done) {
        for (int k = 0; k <= AP_RT_UNKNOWN; k++) {
            const char *const *extra = k == AP_RT_VLLM ? env_vllm
                                       : k == AP_RT_LLAMACPP ? env_llamacpp
                                       : k == AP_RT_OLLAMA ? env_ollama
                                                           : env_none;
            size_t n = 0;
            for (size_t i = 0; env_common[i]; i++)
                tables[k][n++] = env_common[i];
            for (size_t i = 0; extra[i]; i++)
                tables[k][n++] = extra[i];
            tables[k][n] = NULL;
        }
        done = 1;
    }
    if ((int)kind < 0 || kind > AP_RT_UNKNOWN)
        kind = AP_RT_UNKNOWN;
    return tables[kind];
}

/* ---- helpers ----------------------------------------------------------- */

void ap_launch_fmt_ratio(double v, char *out, size_t len)
{
    snprintf(out, len, "%.2f", v);
    if (fabs(strtod(out, NULL) - v) > 1e-12)
        snprintf(out, len, "%.6g", v);
}

int ap_launch_split_listen(const char *listen, char *host, size_t host_len, unsigned *port)
{
    const char *colon;
    char *end;
    unsigned long p;
    size_t hl;
    if (!listen || !*listen)
        return -1;
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');
        if (!rb || rb[1] != ':')
            return -1;
        hl = (size_t)(rb - listen - 1);
        if (hl + 1 > host_len)
            return -1;
        memcpy(host, listen + 1, hl);
        host[hl] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || strchr(listen, ':') != colon)
            return -1;
        hl = (size_t)(colon - listen);
        if (hl + 1 > host_len)
            return -1;
        memcpy(host, listen, hl);
        host[hl] = '\0';
    }
    if (!*host || !colon[1])
        return -1;
    p = strtoul(colon + 1, &end, 10);
    if (*end || p == 0 || p > 65535 || colon[1] == '+' || colon[1] == '-')
        return -1;
    *port = (unsigned)p;
    return 0;
}

struct spec {
    json_t *o, *argv, *env, *derived, *problems;
    size_t env_at;                  /* container: where podman's --env words go (0: none) */
    int bad;                        /* allocation failed */
};

static void add_arg(struct spec *s, const char *a)
{
    s->bad |= json_array_append_new(s->argv, json_string(a)) != 0;
}

static void problem(struct spec *s, const char *path, const char *fmt, ...) AP_PRINTF(3, 4);
static void problem(struct spec *s, const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->bad |= json_array_append_new(s->problems, json_pack("{s:s,s:s}", "message", msg, "path",
                                                           path)) != 0;
}

/* flag + value, recorded in "derived" with its meaning and source. */
static void flag(struct spec *s, const char *fl, const char *value, const char *what,
                 const char *source)
{
    add_arg(s, fl);
    if (value)
        add_arg(s, value);
    s->bad |= json_array_append_new(s->derived,
                                    json_pack("{s:s,s:s?,s:s,s:s}", "flag", fl, "value", value,
                                              "setting", what, "source", source)) != 0;
}

static void flag_u(struct spec *s, const char *fl, uint64_t v, const char *what, const char *source)
{
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    flag(s, fl, b, what, source);
}

static void env_set(struct spec *s, const char *k, const char *v, const char *what,
                    const char *source)
{
    s->bad |= json_object_set_new(s->env, k, json_string(v)) != 0;
    if (what)
        s->bad |= json_array_append_new(s->derived,
                                        json_pack("{s:s,s:s,s:s,s:s}", "env", k, "value", v,
                                                  "setting", what, "source", source)) != 0;
}

static void env_set_u(struct spec *s, const char *k, uint64_t v, const char *what,
                      const char *source)
{
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    env_set(s, k, b, what, source);
}

static const char *base_name(const char *p)
{
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

/* The first *.gguf in a folder (sorted), for llama.cpp's -m; NULL if none. */
static char *first_gguf(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char *best = NULL;
    if (!d)
        return NULL;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".gguf") != 0 || e->d_name[0] == '.')
            continue;
        if (!best || strcmp(e->d_name, best) < 0) {
            free(best);
            best = strdup(e->d_name);
        }
    }
    closedir(d);
    return best;
}

/* Where the model is in the release: the folder, or the file (for GGUF
 * runtimes the first .gguf of a folder). */
static char *model_path(const ap_mmodel *mm, int want_file)
{
    char buf[8192];
    int n;
    if (!mm->src.is_dir) {
        char tmp[4096];
        size_t l;
        snprintf(tmp, sizeof tmp, "%s", mm->src.path);
        l = strlen(tmp);
        while (l > 1 && tmp[l - 1] == '/')
            tmp[--l] = '\0';
        n = snprintf(buf, sizeof buf, AP_LAUNCH_RELEASE "/payload/models/%s/%s", mm->name,
                     base_name(tmp));
    } else if (want_file) {
        char *g = mm->src.abs ? first_gguf(mm->src.abs) : NULL;
        n = snprintf(buf, sizeof buf, AP_LAUNCH_RELEASE "/payload/models/%s%s%s", mm->name,
                     g ? "/" : "", g ? g : "");
        free(g);
    } else {
        n = snprintf(buf, sizeof buf, AP_LAUNCH_RELEASE "/payload/models/%s", mm->name);
    }
    return n < 0 || n >= (int)sizeof buf ? NULL : strdup(buf);
}

/* The plan object of a model (by name), or NULL. */
static const json_t *plan_model(const json_t *plan, const char *name)
{
    size_t i;
    const json_t *pm;
    json_array_foreach(json_object_get(plan, "models"), i, pm) {
        const char *n = json_string_value(json_object_get(pm, "name"));
        if (n && !strcmp(n, name))
            return pm;
    }
    return NULL;
}

static uint64_t ju(const json_t *o, const char *k, uint64_t dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : dflt;
}

/* What the kind runs with, taken from the plan and the manifest. */
struct params {
    const ap_mmodel *mm;
    size_t mi;                      /* index in models[] */
    uint64_t context;               /* 0: unknown */
    const char *context_src;
    uint64_t concurrency, tp;
    const char *kv;                 /* manifest dtype: auto, f16, bf16, fp8, q8_0, q4_0 */
    const char *kv_resolved;        /* the plan's resolved dtype ("bf16" for auto) or NULL */
    double util;
    char host[256];
    unsigned port;
    char ppath[64];                 /* "models[i].serve" */
};

/* ---- the kinds ---------------------------------------------------------- */

static void kind_vllm(struct spec *s, const struct params *p)
{
    char *mp = model_path(p->mm, 0), ratio[32];
    const char *kv = "auto";
    if (!mp) {
        s->bad = 1;
        return;
    }
    add_arg(s, mp);
    free(mp);
    flag(s, "--served-model-name", p->mm->name, "model name", "models[].name");
    if (p->context)
        flag_u(s, "--max-model-len", p->context, "context", p->context_src);
    flag_u(s, "--max-num-seqs", p->concurrency, "concurrency", "serve.concurrency");
    ap_launch_fmt_ratio(p->util, ratio, sizeof ratio);
    flag(s, "--gpu-memory-utilization", ratio, "memory utilization", "target.memory_utilization");
    flag_u(s, "--tensor-parallel-size", p->tp, "tensor parallel", "serve.tensor_parallel");
    if (!strcmp(p->kv, "fp8"))
        kv = "fp8";
    else if (!strcmp(p->kv, "q8_0") || !strcmp(p->kv, "q4_0"))
        problem(s, p->ppath, "vLLM has no KV cache dtype '%s' (auto or fp8)", p->kv);
    flag(s, "--kv-cache-dtype", kv, "KV cache dtype", "serve.kv_cache_dtype");
    flag(s, "--host", p->host, "listen host", "listen");
    flag_u(s, "--port", p->port, "listen port", "listen");
}

static void kind_llamacpp(struct spec *s, const struct params *p)
{
    char *mp = model_path(p->mm, 1);
    const char *kv = "f16";
    uint64_t c;
    if (!mp) {
        s->bad = 1;
        return;
    }
    flag(s, "-m", mp, "model file", "models[].path");
    free(mp);
    flag(s, "--alias", p->mm->name, "model name", "models[].name");
    if (p->context) {
        /* llama-server's -c is the whole KV cache, shared by the -np slots */
        if (!ap_mul_u64(p->context, p->concurrency, &c))
            c = UINT64_MAX;
        flag_u(s, "-c", c, "context x concurrency", p->context_src);
    }
    flag_u(s, "-np", p->concurrency, "concurrency (parallel slots)", "serve.concurrency");
    flag(s, "-ngl", "999", "layers on the GPU (all)", "plan");
    if (p->tp > 1) {
        char ts[256] = "";
        for (uint64_t i = 0; i < p->tp && strlen(ts) + 3 < sizeof ts; i++)
            strcat(ts, i ? ",1" : "1");
        flag(s, "--split-mode", "layer", "tensor parallel", "serve.tensor_parallel");
        flag(s, "--tensor-split", ts, "tensor parallel", "serve.tensor_parallel");
    } else {
        /* one GPU: the one the plan placed it on (CUDA_VISIBLE_DEVICES) */
        flag(s, "--split-mode", "none", "tensor parallel (1: one GPU)", "serve.tensor_parallel");
    }
    if (!strcmp(p->kv, "fp8")) {
        problem(s, p->ppath, "llama.cpp has no KV cache dtype 'fp8' (f16, bf16, q8_0, q4_0)");
    } else if (strcmp(p->kv, "auto") != 0) {
        kv = p->kv;
    }
    flag(s, "-ctk", kv, "KV cache dtype (K)", "serve.kv_cache_dtype");
    flag(s, "-ctv", kv, "KV cache dtype (V)", "serve.kv_cache_dtype");
    if (!strcmp(kv, "q8_0") || !strcmp(kv, "q4_0")) /* a quantized V cache needs flash attention */
        flag(s, "-fa", NULL, "flash attention (quantized V cache)", "serve.kv_cache_dtype");
    flag(s, "--host", p->host, "listen host", "listen");
    flag_u(s, "--port", p->port, "listen port", "listen");
}

static void kind_sglang(struct spec *s, const struct params *p)
{
    char *mp = model_path(p->mm, 0), ratio[32];
    if (!mp) {
        s->bad = 1;
        return;
    }
    flag(s, "--model-path", mp, "model folder", "models[].path");
    free(mp);
    flag(s, "--served-model-name", p->mm->name, "model name", "models[].name");
    if (p->context)
        flag_u(s, "--context-length", p->context, "context", p->context_src);
    ap_launch_fmt_ratio(p->util, ratio, sizeof ratio);
    flag(s, "--mem-fraction-static", ratio, "memory utilization", "target.memory_utilization");
    flag_u(s, "--tp", p->tp, "tensor parallel", "serve.tensor_parallel");
    flag_u(s, "--max-running-requests", p->concurrency, "concurrency", "serve.concurrency");
    if (!strcmp(p->kv, "fp8"))
        flag(s, "--kv-cache-dtype", "fp8_e5m2", "KV cache dtype", "serve.kv_cache_dtype");
    else if (!strcmp(p->kv, "q8_0") || !strcmp(p->kv, "q4_0"))
        problem(s, p->ppath, "SGLang has no KV cache dtype '%s' (auto or fp8)", p->kv);
    flag(s, "--host", p->host, "listen host", "listen");
    flag_u(s, "--port", p->port, "listen port", "listen");
}

static void kind_tgi(struct spec *s, const struct params *p)
{
    char *mp = model_path(p->mm, 0), ratio[32];
    if (!mp) {
        s->bad = 1;
        return;
    }
    flag(s, "--model-id", mp, "model folder", "models[].path");
    free(mp);
    if (p->context)
        flag_u(s, "--max-total-tokens", p->context, "context", p->context_src);
    flag_u(s, "--max-concurrent-requests", p->concurrency, "concurrency", "serve.concurrency");
    flag_u(s, "--num-shard", p->tp, "tensor parallel", "serve.tensor_parallel");
    ap_launch_fmt_ratio(p->util, ratio, sizeof ratio);
    flag(s, "--cuda-memory-fraction", ratio, "memory utilization", "target.memory_utilization");
    if (!strcmp(p->kv, "fp8"))
        flag(s, "--kv-cache-dtype", "fp8_e5m2", "KV cache dtype", "serve.kv_cache_dtype");
    else if (!strcmp(p->kv, "q8_0") || !strcmp(p->kv, "q4_0"))
        problem(s, p->ppath, "TGI has no KV cache dtype '%s' (auto or fp8)", p->kv);
    flag(s, "--hostname", p->host, "listen host", "listen");
    flag_u(s, "--port", p->port, "listen port", "listen");
}

static void kind_ollama(struct spec *s, const struct params *p)
{
    char hp[300];
    if (strchr(p->host, ':'))
        snprintf(hp, sizeof hp, "[%s]:%u", p->host, p->port);
    else
        snprintf(hp, sizeof hp, "%s:%u", p->host, p->port);
    env_set(s, "OLLAMA_MODELS", AP_LAUNCH_RELEASE "/ollama", "model store", "install layout");
    env_set(s, "OLLAMA_HOST", hp, "listen", "listen");
    env_set_u(s, "OLLAMA_NUM_PARALLEL", p->concurrency, "concurrency", "serve.concurrency");
    if (p->context)
        env_set_u(s, "OLLAMA_CONTEXT_LENGTH", p->context, "context", p->context_src);
    if (!strcmp(p->kv, "q8_0") || !strcmp(p->kv, "q4_0") || !strcmp(p->kv, "f16")) {
        env_set(s, "OLLAMA_KV_CACHE_TYPE", p->kv, "KV cache dtype", "serve.kv_cache_dtype");
        if (strcmp(p->kv, "f16") != 0) /* quantized KV needs flash attention */
            env_set(s, "OLLAMA_FLASH_ATTENTION", "1", "KV cache dtype", "serve.kv_cache_dtype");
    } else if (strcmp(p->kv, "auto") != 0) {
        problem(s, p->ppath, "Ollama has no KV cache dtype '%s' (f16, q8_0, q4_0)", p->kv);
    }
}

/* The memory knobs of the plan (docs/memory-planner.md): serve.max_batched_tokens,
 * enforce_eager, pipeline_parallel and rope_scaling, as each kind spells them, so the
 * plan and the command line cannot disagree. */
static void memory_flags(struct spec *s, const struct params *p, const ap_mruntime *r)
{
    const ap_mserve *sv = &p->mm->serve;
    char rope[256];
    uint64_t orig = sv->rope_original_context;
    if (sv->rope_type && orig)
        snprintf(rope, sizeof rope, "{\"rope_type\":\"%s\",\"factor\":%g,\"original_max_position_embeddings\":%llu}",
                 sv->rope_type, sv->rope_factor, (unsigned long long)orig);
    else if (sv->rope_type)
        snprintf(rope, sizeof rope, "{\"rope_type\":\"%s\",\"factor\":%g}", sv->rope_type, sv->rope_factor);
    switch (r->kind) {
    case AP_RT_VLLM: {
        /* --rope-scaling until 0.10, --hf-overrides after */
        int old = 0;
        if (r->version) {
            const char *v = r->version + (r->version[0] == 'v');
            unsigned long a = strtoul(v, NULL, 10), b = 0;
            const char *d = strchr(v, '.');
            if (d)
                b = strtoul(d + 1, NULL, 10);
            old = a == 0 && b < 10;
        }
        if (sv->max_batched_tokens)
            flag_u(s, "--max-num-batched-tokens", sv->max_batched_tokens, "tokens per step", "serve.max_batched_tokens");
        if (sv->enforce_eager)
            flag(s, "--enforce-eager", NULL, "no CUDA graphs", "serve.enforce_eager");
        if (sv->pipeline_parallel > 1)
            flag_u(s, "--pipeline-parallel-size", sv->pipeline_parallel, "pipeline stages", "serve.pipeline_parallel");
        if (sv->rope_type) {
            char ov[300];
            if (old) {
                flag(s, "--rope-scaling", rope, "context extension", "serve.rope_scaling");
            } else {
                snprintf(ov, sizeof ov, "{\"rope_scaling\":%s}", rope);
                flag(s, "--hf-overrides", ov, "context extension", "serve.rope_scaling");
            }
        }
        break;
    }
    case AP_RT_SGLANG:
        if (sv->max_batched_tokens)
            flag_u(s, "--chunked-prefill-size", sv->max_batched_tokens, "tokens per step", "serve.max_batched_tokens");
        if (sv->enforce_eager)
            flag(s, "--disable-cuda-graph", NULL, "no CUDA graphs", "serve.enforce_eager");
        if (sv->pipeline_parallel > 1)
            flag_u(s, "--pp-size", sv->pipeline_parallel, "pipeline stages", "serve.pipeline_parallel");
        if (sv->rope_type) {
            char ov[300];
            snprintf(ov, sizeof ov, "{\"rope_scaling\":%s}", rope);
            flag(s, "--json-model-override-args", ov, "context extension", "serve.rope_scaling");
        }
        break;
    case AP_RT_TGI:
        if (sv->max_batched_tokens)
            flag_u(s, "--max-batch-prefill-tokens", sv->max_batched_tokens, "tokens per step", "serve.max_batched_tokens");
        if (sv->enforce_eager)
            flag(s, "--cuda-graphs", "0", "no CUDA graphs", "serve.enforce_eager");
        if (sv->pipeline_parallel > 1)
            problem(s, p->ppath, "TGI has no pipeline parallelism (serve.pipeline_parallel %llu)",
                    (unsigned long long)sv->pipeline_parallel);
        if (sv->rope_type) {
            char f[32];
            snprintf(f, sizeof f, "%g", sv->rope_factor);
            flag(s, "--rope-scaling", sv->rope_type, "context extension", "serve.rope_scaling");
            flag(s, "--rope-factor", f, "context extension", "serve.rope_scaling");
        }
        break;
    case AP_RT_LLAMACPP:
        if (sv->max_batched_tokens)
            flag_u(s, "-b", sv->max_batched_tokens, "tokens per step", "serve.max_batched_tokens");
        if (sv->pipeline_parallel > 1)
            problem(s, p->ppath, "llama.cpp splits layers with tensor_parallel; use it instead of pipeline_parallel");
        if (sv->rope_type) {
            char f[32];
            snprintf(f, sizeof f, "%g", sv->rope_factor);
            flag(s, "--rope-scaling", sv->rope_type, "context extension", "serve.rope_scaling");
            flag(s, "--rope-scale", f, "context extension", "serve.rope_scaling");
            if (orig)
                flag_u(s, "--yarn-orig-ctx", orig, "context extension", "serve.rope_scaling");
        }
        break;
    default:
        break;
    }
}

/* Default port and health path per kind (each server's documented default). */
static unsigned default_port(ap_runtime_kind k)
{
    switch (k) {
    case AP_RT_VLLM: return 8000;
    case AP_RT_LLAMACPP: return 8080;
    case AP_RT_SGLANG: return 30000;
    case AP_RT_TGI: return 3000;
    case AP_RT_OLLAMA: return 11434;
    default: return 8000;
    }
}

static const char *health_path(ap_runtime_kind k)
{
    return k == AP_RT_OLLAMA ? "/api/version" : "/health";
}

/* The program a kind runs when the manifest names none, and the words that
 * follow it when the program is that default (vllm serve, ollama serve,
 * python3 -m sglang.launch_server). */
static const char *default_program(ap_runtime_kind k)
{
    switch (k) {
    case AP_RT_VLLM: return "vllm";
    case AP_RT_LLAMACPP: return "llama-server";
    case AP_RT_SGLANG: return "python3";
    case AP_RT_TGI: return "text-generation-launcher";
    case AP_RT_OLLAMA: return "ollama";
    default: return NULL;
    }
}

static void subcommand(struct spec *s, ap_runtime_kind k, const char *program)
{
    const char *b = base_name(program);
    if (k == AP_RT_VLLM && !strcmp(b, "vllm"))
        add_arg(s, "serve");
    else if (k == AP_RT_OLLAMA && !strcmp(b, "ollama"))
        add_arg(s, "serve");
    else if (k == AP_RT_SGLANG && !strncmp(b, "python", 6)) {
        add_arg(s, "-m");
        add_arg(s, "sglang.launch_server");
    }
}

/* argv[0] (and podman's words for an image). */
static void start_words(struct spec *s, const ap_manifest *m, const ap_mruntime *r, size_t ri)
{
    char buf[8192];
    char tmp[4096]; /* holds the program name prog may point into, until subcommand() */
    const char *dflt = default_program(r->kind);
    const char *prog = r->program ? r->program : dflt;
    char rpath[64];
    snprintf(rpath, sizeof rpath, "runtimes[%zu]", ri);
    if (r->image) {
        static const char *const words[] = {"run", "--rm", "--replace", "--network", "host",
                                            "--device", "nvidia.com/gpu=all",
                                            "--security-opt", "label=disable", NULL};
        json_object_set_new(s->o, "start", json_string("container"));
        snprintf(buf, sizeof buf, AP_LAUNCH_RELEASE "/payload/runtimes/%s/%s", r->name, r->image);
        json_object_set_new(s->o, "image", json_string(buf));
        add_arg(s, "/usr/bin/podman");
        for (size_t i = 0; words[i]; i++)
            add_arg(s, words[i]);
        snprintf(buf, sizeof buf, "airpack-%s-%s", m->name, r->name);
        add_arg(s, "--name");
        add_arg(s, buf);
        add_arg(s, "--volume");
        add_arg(s, AP_LAUNCH_RELEASE ":" AP_LAUNCH_RELEASE ":ro");
        /* the environment is the unit's: podman passes each name through
         * (--env NAME, inserted here once the environment is complete) */
        s->env_at = json_array_size(s->argv);
        if (prog) {
            add_arg(s, "--entrypoint");
            add_arg(s, prog);
        } else {
            problem(s, rpath, "runtime '%s' of kind '%s' needs 'program' (the entrypoint in the image)",
                    r->name, ap_runtime_kind_name(r->kind));
        }
        snprintf(buf, sizeof buf, "docker-archive:" AP_LAUNCH_RELEASE "/payload/runtimes/%s/%s",
                 r->name, r->image);
        add_arg(s, buf);
        if (prog)
            subcommand(s, r->kind, prog);
        return;
    }
    if (!prog) {
        problem(s, rpath, "runtime '%s' of kind '%s' needs 'program' (how it starts)", r->name,
                ap_runtime_kind_name(r->kind));
        json_object_set_new(s->o, "start", json_string("none"));
        return;
    }
    if (r->program && r->program[0] != '/') {
        snprintf(buf, sizeof buf, AP_LAUNCH_RELEASE "/payload/runtimes/%s/%s", r->name, r->program);
        json_object_set_new(s->o, "start", json_string("runtime"));
    } else if (r->program) {
        snprintf(buf, sizeof buf, "%s", r->program);
        json_object_set_new(s->o, "start", json_string("site"));
    } else if (r->src.path && !r->src.is_dir) {
        /* the runtime is one file: that is the program */
        size_t l;
        snprintf(tmp, sizeof tmp, "%s", r->src.path);
        l = strlen(tmp);
        while (l > 1 && tmp[l - 1] == '/')
            tmp[--l] = '\0';
        snprintf(buf, sizeof buf, AP_LAUNCH_RELEASE "/payload/runtimes/%s/%s", r->name,
                 base_name(tmp));
        prog = base_name(tmp);
        json_object_set_new(s->o, "start", json_string("runtime"));
    } else {
        /* bin/<default> in the runtime's folder when it is there, else the
         * site's program of that name (systemd searches its PATH) */
        char probe[8192];
        int in_folder = 0;
        static const char *const where[] = {"bin/", "", NULL};
        size_t w = 0;
        for (; r->src.path && r->src.abs && where[w]; w++) {
            snprintf(probe, sizeof probe, "%s/%s%s", r->src.abs, where[w], dflt);
            if ((in_folder = access(probe, F_OK) == 0))
                break;
        }
        if (in_folder) {
            snprintf(buf, sizeof buf, AP_LAUNCH_RELEASE "/payload/runtimes/%s/%s%s", r->name,
                     where[w], dflt);
            json_object_set_new(s->o, "start", json_string("runtime"));
        } else {
            snprintf(buf, sizeof buf, "%s", dflt);
            json_object_set_new(s->o, "start", json_string("site"));
        }
    }
    json_object_set_new(s->o, "program", json_string(buf));
    add_arg(s, buf);
    subcommand(s, r->kind, prog);
}

/* Manifest env on top of the offline env: the manifest wins except on an
 * offline variable, where a different value is a problem and the offline
 * value stays. */
static void merge_env(struct spec *s, const ap_mruntime *r, size_t ri)
{
    const char *const *off = ap_launch_offline_env(r->kind);
    for (size_t i = 0; off[i]; i += 2)
        env_set(s, off[i], off[i + 1], NULL, NULL);
    for (size_t j = 0; j < r->n_env; j++) {
        const char *k = r->env[j].key, *v = r->env[j].value;
        int locked = 0;
        for (size_t i = 0; off[i]; i += 2)
            if (!strcmp(off[i], k)) {
                locked = 1;
                if (strcmp(off[i + 1], v) != 0) {
                    char path[300];
                    snprintf(path, sizeof path, "runtimes[%zu].env.%s", ri, k);
                    problem(s, path,
                            "env '%s=%s' of runtime '%s' is refused: the offline environment "
                            "sets '%s=%s'",
                            k, v, r->name, k, off[i + 1]);
                }
            }
        const json_t *derived_v = json_object_get(s->env, k);
        if (locked)
            continue;
        if (derived_v && strcmp(json_string_value(derived_v), v) != 0) {
            char path[300];
            snprintf(path, sizeof path, "runtimes[%zu].env.%s", ri, k);
            problem(s, path, "env '%s=%s' of runtime '%s' contradicts the plan ('%s')", k, v,
                    r->name, json_string_value(derived_v));
            continue;
        }
        env_set(s, k, v, NULL, NULL);
    }
}

static int build_one(const ap_manifest *m, const json_t *plan, size_t ri, json_t **out)
{
    const ap_mruntime *r = &m->runtimes[ri];
    struct spec s = {0};
    struct params p;
    json_t *models = json_array();
    const json_t *pm, *gpus;
    size_t first = (size_t)-1, n = 0;
    char rpath[64], buf[512];

    *out = NULL;
    memset(&p, 0, sizeof p);
    snprintf(rpath, sizeof rpath, "runtimes[%zu]", ri);
    for (size_t i = 0; i < m->n_models; i++)
        if (ap_manifest_model_runtime(m, &m->models[i]) == r) {
            if (first == (size_t)-1)
                first = i;
            n++;
            json_array_append_new(models, json_string(m->models[i].name));
        }
    if (!n) { /* serves nothing: no launch spec */
        json_decref(models);
        return 0;
    }
    s.o = json_object();
    s.argv = json_array();
    s.env = json_object();
    s.derived = json_array();
    s.problems = json_array();
    if (!s.o || !s.argv || !s.env || !s.derived || !s.problems || !models)
        goto nomem;
    json_object_set_new(s.o, "runtime", json_string(r->name));
    json_object_set_new(s.o, "kind", json_string(ap_runtime_kind_name(r->kind)));
    if (r->version)
        json_object_set_new(s.o, "version", json_string(r->version));
    json_object_set(s.o, "models", models);

    p.mm = &m->models[first];
    p.mi = first;
    snprintf(p.ppath, sizeof p.ppath, "models[%zu].serve", first);
    pm = plan_model(plan, p.mm->name);
    p.context = pm ? ju(pm, "context", p.mm->serve.context) : p.mm->serve.context;
    p.context_src = p.mm->serve.context ? "serve.context" : "plan (model maximum)";
    p.concurrency = pm ? ju(pm, "concurrency", p.mm->serve.concurrency) : p.mm->serve.concurrency;
    if (!p.concurrency)
        p.concurrency = 1;
    p.tp = pm ? ju(pm, "tensor_parallel", p.mm->serve.tensor_parallel) : p.mm->serve.tensor_parallel;
    if (!p.tp)
        p.tp = 1;
    p.kv = ap_kv_dtype_name(p.mm->serve.kv_cache_dtype);
    p.kv_resolved = pm ? json_string_value(json_object_get(pm, "kv_cache_dtype")) : NULL;
    p.util = m->memory_utilization > 0 ? m->memory_utilization : 0.90;
    snprintf(p.host, sizeof p.host, "127.0.0.1");
    p.port = default_port(r->kind);
    if (r->listen && ap_launch_split_listen(r->listen, p.host, sizeof p.host, &p.port) != 0) {
        char lp[64];
        snprintf(lp, sizeof lp, "runtimes[%zu].listen", ri);
        problem(&s, lp, "listen '%s' of runtime '%s' is not host:port", r->listen, r->name);
        snprintf(p.host, sizeof p.host, "127.0.0.1");
        p.port = default_port(r->kind);
    }
    if (n > 1 && r->kind != AP_RT_OLLAMA)
        problem(&s, rpath,
                "runtime '%s' of kind '%s' serves one model per process, but %zu models use it",
                r->name, ap_runtime_kind_name(r->kind), n);

    {
        char *mp = model_path(p.mm, r->kind == AP_RT_LLAMACPP);
        if (!mp)
            goto nomem;
        json_object_set_new(s.o, "model_path", json_string(mp));
        free(mp);
    }
    start_words(&s, m, r, ri);
    switch (r->kind) {
    case AP_RT_VLLM: kind_vllm(&s, &p); break;
    case AP_RT_LLAMACPP: kind_llamacpp(&s, &p); break;
    case AP_RT_SGLANG: kind_sglang(&s, &p); break;
    case AP_RT_TGI: kind_tgi(&s, &p); break;
    case AP_RT_OLLAMA: kind_ollama(&s, &p); break;
    default: break; /* other, triton: the manifest's command as given */
    }
    memory_flags(&s, &p, r);
    for (size_t j = 0; j < r->n_args; j++)
        add_arg(&s, r->args[j]);

    /* the GPUs the plan placed the model on */
    gpus = pm ? json_object_get(pm, "gpus") : NULL;
    if (json_is_array(gpus) && json_array_size(gpus) > 0 && r->kind != AP_RT_OTHER) {
        size_t k, len = 0;
        json_t *g;
        buf[0] = '\0';
        json_array_foreach(gpus, k, g) {
            int w = snprintf(buf + len, sizeof buf - len, "%s%lld", k ? "," : "",
                             (long long)json_integer_value(g));
            if (w < 0 || (size_t)w >= sizeof buf - len)
                break;
            len += (size_t)w;
        }
        env_set(&s, "CUDA_VISIBLE_DEVICES", buf, "GPUs placed by the plan", "plan");
    }
    merge_env(&s, r, ri);
    if (s.env_at) {
        const char *k;
        json_t *v;
        size_t at = s.env_at;
        json_object_foreach(s.env, k, v) {
            s.bad |= json_array_insert_new(s.argv, at++, json_string("--env")) != 0;
            s.bad |= json_array_insert_new(s.argv, at++, json_string(k)) != 0;
        }
    }

    snprintf(buf, sizeof buf, strchr(p.host, ':') ? "[%s]:%u" : "%s:%u", p.host, p.port);
    json_object_set_new(s.o, "listen", json_string(buf));
    json_object_set_new(s.o, "host", json_string(p.host));
    json_object_set_new(s.o, "port", json_integer(p.port));
    json_object_set_new(s.o, "health", json_string(r->health ? r->health : health_path(r->kind)));
    json_object_set_new(s.o, "working_directory", json_string(AP_LAUNCH_RELEASE));
    if (r->user)
        json_object_set_new(s.o, "user", json_string(r->user));
    json_object_set(s.o, "argv", s.argv);
    json_object_set(s.o, "env", s.env);
    json_object_set(s.o, "derived", s.derived);
    json_object_set(s.o, "problems", s.problems);
    if (s.bad)
        goto nomem;
    *out = s.o;
    s.o = NULL;
nomem:
    json_decref(s.o);
    json_decref(s.argv);
    json_decref(s.env);
    json_decref(s.derived);
    json_decref(s.problems);
    json_decref(models);
    return *out ? 0 : -1;
}

int ap_launch_build(const ap_manifest *m, const json_t *plan, json_t **out, ap_error *err)
{
    json_t *arr = json_array();
    *out = NULL;
    if (!arr)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_runtimes; i++) {
        json_t *one = NULL;
        if (build_one(m, plan, i, &one) != 0) {
            json_decref(arr);
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        }
        if (one && json_array_append_new(arr, one) != 0) {
            json_decref(arr);
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        }
    }
    *out = arr;
    return AP_OK;
}

/* ---- resolve ----------------------------------------------------------- */

static json_t *subst(const char *s, const char *rel)
{
    const char *at = strstr(s, AP_LAUNCH_RELEASE);
    size_t pl = strlen(AP_LAUNCH_RELEASE);
    char *buf;
    json_t *j;
    size_t cap, len = 0;
    if (!at)
        return json_string(s);
    cap = strlen(s) + 1;
    for (const char *q = at; q; q = strstr(q + pl, AP_LAUNCH_RELEASE))
        cap += strlen(rel);
    if (!(buf = malloc(cap)))
        return NULL;
    while (at) {
        memcpy(buf + len, s, (size_t)(at - s));
        len += (size_t)(at - s);
        memcpy(buf + len, rel, strlen(rel));
        len += strlen(rel);
        s = at + pl;
        at = strstr(s, AP_LAUNCH_RELEASE);
    }
    memcpy(buf + len, s, strlen(s) + 1);
    j = json_string(buf);
    free(buf);
    return j;
}

json_t *ap_launch_resolve(const json_t *spec, const char *release_dir)
{
    json_t *o = json_deep_copy(spec), *argv, *env, *v;
    const char *k;
    size_t i;
    static const char *const strs[] = {"program", "image", "working_directory", NULL};
    if (!o)
        return NULL;
    argv = json_object_get(o, "argv");
    json_array_foreach(argv, i, v)
        if (json_is_string(v) && json_array_set_new(argv, i, subst(json_string_value(v), release_dir)))
            goto fail;
    env = json_object_get(o, "env");
    json_object_foreach(env, k, v)
        if (json_is_string(v) && json_object_set_new(env, k, subst(json_string_value(v), release_dir)))
            goto fail;
    for (i = 0; strs[i]; i++) {
        v = json_object_get(o, strs[i]);
        if (json_is_string(v) &&
            json_object_set_new(o, strs[i], subst(json_string_value(v), release_dir)))
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* ---- quoting ----------------------------------------------------------- */

char *ap_launch_quote(const char *w)
{
    size_t n = strlen(w), k = 0;
    int bare = n > 0;
    char *out;
    for (size_t i = 0; i < n && bare; i++)
        bare = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,+@{}-",
                      w[i]) != NULL;
    if (!(out = malloc(2 * n + 3)))
        return NULL;
    if (!bare)
        out[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (w[i] == '%' || w[i] == '$')
            out[k++] = w[i];
        else if (w[i] == '"' || w[i] == '\\')
            out[k++] = '\\';
        out[k++] = w[i];
    }
    if (!bare)
        out[k++] = '"';
    out[k] = '\0';
    return out;
}

char *ap_launch_command_line(const json_t *spec)
{
    size_t i, len = 0, cap = 256;
    json_t *v;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    json_array_foreach(json_object_get(spec, "argv"), i, v) {
        char *q = ap_launch_quote(json_string_value(v) ? json_string_value(v) : "");
        size_t ql;
        if (!q)
            goto fail;
        ql = strlen(q);
        if (len + ql + 2 > cap) {
            char *nb;
            while (len + ql + 2 > cap)
                cap *= 2;
            if (!(nb = realloc(out, cap))) {
                free(q);
                goto fail;
            }
            out = nb;
        }
        if (i)
            out[len++] = ' ';
        memcpy(out + len, q, ql + 1);
        len += ql;
        free(q);
    }
    return out;
fail:
    free(out);
    return NULL;
}

/* ---- check (lock) ------------------------------------------------------ */

static int str_ok(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t l;
    if (!s)
        return 0;
    l = json_string_length(v);
    if (l > AP_LAUNCH_MAX_STR || strlen(s) != l)
        return 0;
    for (size_t i = 0; i < l; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return ap_utf8_valid(s, l);
}

/* runtime and user names: [a-z0-9_][a-z0-9._-]*, at most 128 bytes */
static int name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 128 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
              s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

static int env_name_ok(const char *k)
{
    if (!k[0] || !(k[0] == '_' || (k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z')))
        return 0;
    for (size_t i = 1; k[i]; i++)
        if (!(k[i] == '_' || (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= 'a' && k[i] <= 'z') ||
              (k[i] >= '0' && k[i] <= '9')))
            return 0;
    return strlen(k) <= 256;
}

int ap_launch_check(const char *name, const json_t *launch, ap_error *err)
{
    size_t i, j;
    const json_t *s, *v;
    const char *k;
    if (!json_is_array(launch) || json_array_size(launch) > AP_LAUNCH_MAX_SPECS)
        return ap_error_set(err, AP_ERR_CHECK, "'%s': 'launch' is not a list of launch specs",
                            name);
    json_array_foreach(launch, i, s) {
        const json_t *argv = json_object_get(s, "argv"), *env = json_object_get(s, "env");
        const char *rt = json_string_value(json_object_get(s, "runtime"));
        const json_t *port = json_object_get(s, "port");
        if (!json_is_object(s) || !str_ok(json_object_get(s, "runtime")) ||
            !name_valid(rt) || !str_ok(json_object_get(s, "kind")) ||
            !str_ok(json_object_get(s, "listen")) || !str_ok(json_object_get(s, "host")) ||
            !str_ok(json_object_get(s, "health")) ||
            json_string_value(json_object_get(s, "health"))[0] != '/' ||
            !str_ok(json_object_get(s, "working_directory")) || !json_is_integer(port) ||
            json_integer_value(port) < 1 || json_integer_value(port) > 65535 ||
            !json_is_array(argv) || json_array_size(argv) < 1 ||
            json_array_size(argv) > AP_LAUNCH_MAX_ARGS || !json_is_object(env) ||
            json_object_size(env) > AP_LAUNCH_MAX_ENV)
            return ap_error_set(err, AP_ERR_CHECK, "'%s': launch[%zu] is malformed", name, i);
        json_array_foreach(argv, j, v)
            if (!str_ok(v))
                return ap_error_set(err, AP_ERR_CHECK, "'%s': launch[%zu].argv[%zu] is malformed",
                                    name, i, j);
        json_object_foreach((json_t *)env, k, v)
            if (!env_name_ok(k) || !str_ok(v))
                return ap_error_set(err, AP_ERR_CHECK, "'%s': launch[%zu].env '%.64s' is malformed",
                                    name, i, k);
        v = json_object_get(s, "user");
        if (v && (!str_ok(v) || !name_valid(json_string_value(v))))
            return ap_error_set(err, AP_ERR_CHECK, "'%s': launch[%zu].user is malformed", name, i);
        for (size_t a = 0; a < i; a++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(launch, a), "runtime")), rt))
                return ap_error_set(err, AP_ERR_CHECK, "'%s': launch[%zu]: duplicate runtime '%s'",
                                    name, i, rt);
    }
    return AP_OK;
}

/* ---- contradictions ------------------------------------------------- */

/* A manifest option (or environment variable) and the launch flag whose
 * value it sets; "MODEL" for the model, "REMOTE" for a remote model id. */
struct alias {
    const char *name, *canon, *setting;
};

static const struct alias al_vllm[] = {
    {"--max-model-len", "--max-model-len", "context"},
    {"--max-num-seqs", "--max-num-seqs", "concurrency"},
    {"--gpu-memory-utilization", "--gpu-memory-utilization", "memory utilization"},
    {"--tensor-parallel-size", "--tensor-parallel-size", "tensor parallel size"},
    {"-tp", "--tensor-parallel-size", "tensor parallel size"},
    {"--kv-cache-dtype", "--kv-cache-dtype", "KV cache dtype"},
    {"--host", "--host", "host"},
    {"--port", "--port", "port"},
    {"--model", "MODEL", "model"},
    /* the planner's memory knobs (present in the spec only when planned) */
    {"--max-num-batched-tokens", "--max-num-batched-tokens", "batched tokens"},
    {"--pipeline-parallel-size", "--pipeline-parallel-size", "pipeline parallel size"},
    {"-pp", "--pipeline-parallel-size", "pipeline parallel size"},
    {NULL, NULL, NULL}};
static const struct alias al_llamacpp[] = {
    {"-c", "-c", "context"}, {"--ctx-size", "-c", "context"},
    {"-np", "-np", "concurrency"}, {"--parallel", "-np", "concurrency"},
    {"-ctk", "-ctk", "KV cache dtype"}, {"--cache-type-k", "-ctk", "KV cache dtype"},
    {"-ctv", "-ctv", "KV cache dtype"}, {"--cache-type-v", "-ctv", "KV cache dtype"},
    {"--host", "--host", "host"}, {"--port", "--port", "port"},
    {"-m", "MODEL", "model"}, {"--model", "MODEL", "model"},
    {"-hf", "REMOTE", "model"}, {"-hfr", "REMOTE", "model"}, {"--hf-repo", "REMOTE", "model"},
    {"-hff", "REMOTE", "model"}, {"--hf-file", "REMOTE", "model"},
    {"-mu", "REMOTE", "model"}, {"--model-url", "REMOTE", "model"},
    {"-dr", "REMOTE", "model"}, {"--docker-repo", "REMOTE", "model"},
    /* llama.cpp reads the same settings from LLAMA_ARG_* variables */
    {"LLAMA_ARG_CTX_SIZE", "-c", "context"}, {"LLAMA_ARG_N_PARALLEL", "-np", "concurrency"},
    {"LLAMA_ARG_CACHE_TYPE_K", "-ctk", "KV cache dtype"},
    {"LLAMA_ARG_CACHE_TYPE_V", "-ctv", "KV cache dtype"},
    {"LLAMA_ARG_HOST", "--host", "host"}, {"LLAMA_ARG_PORT", "--port", "port"},
    {"LLAMA_ARG_MODEL", "MODEL", "model"}, {"LLAMA_ARG_HF_REPO", "REMOTE", "model"},
    {"LLAMA_ARG_MODEL_URL", "REMOTE", "model"},
    {"-b", "-b", "batch size"}, {"--batch-size", "-b", "batch size"},
    {"LLAMA_ARG_BATCH", "-b", "batch size"},
    {NULL, NULL, NULL}};
static const struct alias al_sglang[] = {
    {"--context-length", "--context-length", "context"},
    {"--mem-fraction-static", "--mem-fraction-static", "memory utilization"},
    {"--tp", "--tp", "tensor parallel size"}, {"--tp-size", "--tp", "tensor parallel size"},
    {"--tensor-parallel-size", "--tp", "tensor parallel size"},
    {"--max-running-requests", "--max-running-requests", "concurrency"},
    {"--kv-cache-dtype", "--kv-cache-dtype", "KV cache dtype"},
    {"--host", "--host", "host"}, {"--port", "--port", "port"},
    {"--model-path", "MODEL", "model"}, {"--model", "MODEL", "model"},
    {"--chunked-prefill-size", "--chunked-prefill-size", "batched tokens"},
    {"--pp-size", "--pp-size", "pipeline parallel size"},
    {"--pipeline-parallel-size", "--pp-size", "pipeline parallel size"},
    {NULL, NULL, NULL}};
static const struct alias al_tgi[] = {
    {"--max-total-tokens", "--max-total-tokens", "context"},
    {"--max-concurrent-requests", "--max-concurrent-requests", "concurrency"},
    {"--num-shard", "--num-shard", "tensor parallel size"},
    {"--cuda-memory-fraction", "--cuda-memory-fraction", "memory utilization"},
    {"--kv-cache-dtype", "--kv-cache-dtype", "KV cache dtype"},
    {"--hostname", "--hostname", "host"}, {"--port", "--port", "port"}, {"-p", "--port", "port"},
    {"--model-id", "MODEL", "model"},
    /* the launcher reads each option from the variable of the same name */
    {"MAX_TOTAL_TOKENS", "--max-total-tokens", "context"},
    {"MAX_CONCURRENT_REQUESTS", "--max-concurrent-requests", "concurrency"},
    {"NUM_SHARD", "--num-shard", "tensor parallel size"},
    {"CUDA_MEMORY_FRACTION", "--cuda-memory-fraction", "memory utilization"},
    {"KV_CACHE_DTYPE", "--kv-cache-dtype", "KV cache dtype"},
    {"HOSTNAME", "--hostname", "host"}, {"PORT", "--port", "port"},
    {"MODEL_ID", "MODEL", "model"},
    {"--max-batch-prefill-tokens", "--max-batch-prefill-tokens", "batched tokens"},
    {"MAX_BATCH_PREFILL_TOKENS", "--max-batch-prefill-tokens", "batched tokens"},
    {NULL, NULL, NULL}};

static const struct alias *aliases_of(const char *kind)
{
    if (!kind)
        return NULL;
    if (!strcmp(kind, "vllm"))
        return al_vllm;
    if (!strcmp(kind, "llama.cpp"))
        return al_llamacpp;
    if (!strcmp(kind, "sglang"))
        return al_sglang;
    if (!strcmp(kind, "tgi"))
        return al_tgi;
    return NULL;
}

/* The value the spec gives canon (first occurrence: the derived flags come
 * before the manifest's args), or NULL. */
static const char *spec_value(const json_t *spec, const char *canon)
{
    const json_t *argv = json_object_get(spec, "argv");
    if (!strcmp(canon, "MODEL"))
        return json_string_value(json_object_get(spec, "model_path"));
    for (size_t i = 1; i + 1 < json_array_size(argv); i++)
        if (!strcmp(json_string_value(json_array_get(argv, i)), canon))
            return json_string_value(json_array_get(argv, i + 1));
    if (!strcmp(canon, "--kv-cache-dtype"))
        return "auto"; /* omitted: the plan assumed the model's dtype */
    return NULL;
}

static int same_value(const char *a, const char *b)
{
    char *ea, *eb;
    double da, db;
    if (!strcmp(a, b))
        return 1;
    da = strtod(a, &ea);
    db = strtod(b, &eb);
    return *a && *b && !*ea && !*eb && ea != a && eb != b && fabs(da - db) < 1e-9;
}

static int contra(json_t *out, const char *rt, size_t ri, const char *path, const char *arg,
                  const struct alias *a, const char *value, const char *expected,
                  const char *model_name)
{
    char msg[1024], what[512];
    /* an environment variable is named NAME=value, an option 'option value' */
    snprintf(what, sizeof what, strstr(path, ".env.") ? "variable '%s=%s'" : "argument '%s %s'",
             arg, value);
    if (!strcmp(a->canon, "REMOTE"))
        snprintf(msg, sizeof msg,
                 "runtime '%s': %s names a remote model, not the installed model '%s'", rt,
                 what, model_name);
    else if (!strcmp(a->canon, "MODEL"))
        snprintf(msg, sizeof msg,
                 "runtime '%s': %s names a model that is not the installed model '%s' (%s)",
                 rt, what, model_name, expected);
    else
        snprintf(msg, sizeof msg,
                 "runtime '%s': %s sets the %s to %s, but the checked plan has %s", rt, what,
                 a->setting, value, expected);
    return json_array_append_new(out, json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s?,s:s}", "runtime", rt,
                                                 "index", (json_int_t)ri, "path", path,
                                                 "argument", arg, "setting", a->setting,
                                                 "value", value, "expected", expected,
                                                 "message", msg));
}

/* One option or variable: a contradiction when it is an alias whose value
 * differs from the spec's. */
static int check_one(json_t *out, const json_t *spec, const struct alias *tab, const char *rt,
                     size_t ri, const char *path, const char *name, const char *value,
                     const char *model_name)
{
    for (const struct alias *a = tab; a->name; a++) {
        const char *exp;
        if (strcmp(a->name, name) != 0)
            continue;
        if (!strcmp(a->canon, "REMOTE"))
            return contra(out, rt, ri, path, name, a, value, NULL, model_name);
        exp = spec_value(spec, a->canon);
        if (exp && !same_value(value, exp))
            return contra(out, rt, ri, path, name, a, value, exp, model_name);
        return 0;
    }
    return 0;
}

json_t *ap_launch_contradictions(const json_t *manifest, const json_t *launch)
{
    json_t *out = json_array();
    size_t ri, si;
    const json_t *r, *spec;
    if (!out)
        return NULL;
    json_array_foreach(json_object_get(manifest, "runtimes"), ri, r) {
        const char *rt = json_string_value(json_object_get(r, "name"));
        const json_t *args = json_object_get(r, "args"), *env = json_object_get(r, "env");
        const struct alias *tab = NULL;
        const char *model_name = "";
        const json_t *found = NULL, *v;
        const char *k;
        char path[300];
        if (!rt)
            continue;
        json_array_foreach(launch, si, spec) {
            const char *n = json_string_value(json_object_get(spec, "runtime"));
            if (n && !strcmp(n, rt))
                found = spec;
        }
        if (!found || !(tab = aliases_of(json_string_value(json_object_get(found, "kind")))))
            continue;
        model_name = json_string_value(json_array_get(json_object_get(found, "models"), 0));
        if (!model_name)
            model_name = "";
        for (size_t j = 0; j < json_array_size(args); j++) {
            const char *a = json_string_value(json_array_get(args, j));
            const char *eq;
            char name[256];
            if (!a || a[0] != '-')
                continue;
            snprintf(path, sizeof path, "runtimes[%zu].args[%zu]", ri, j);
            if ((eq = strchr(a, '=')) && (size_t)(eq - a) < sizeof name) {
                memcpy(name, a, (size_t)(eq - a));
                name[eq - a] = '\0';
                if (check_one(out, found, tab, rt, ri, path, name, eq + 1, model_name))
                    goto fail;
            } else if (j + 1 < json_array_size(args)) {
                const char *val = json_string_value(json_array_get(args, j + 1));
                size_t before = json_array_size(out);
                if (check_one(out, found, tab, rt, ri, path, a, val ? val : "", model_name))
                    goto fail;
                if (json_array_size(out) > before || (val && val[0] != '-'))
                    j++; /* the value was this option's */
            }
        }
        json_object_foreach((json_t *)env, k, v) {
            if (!json_is_string(v))
                continue;
            snprintf(path, sizeof path, "runtimes[%zu].env.%s", ri, k);
            if (check_one(out, found, tab, rt, ri, path, k, json_string_value(v), model_name))
                goto fail;
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* ---- findings ---------------------------------------------------------- */

int ap_launch_findings(const json_t *launch, json_t *findings)
{
    size_t i, j;
    const json_t *s, *p;
    json_array_foreach(launch, i, s) {
        char subject[300];
        snprintf(subject, sizeof subject, "runtime '%s'",
                 json_string_value(json_object_get(s, "runtime")));
        json_array_foreach(json_object_get(s, "problems"), j, p) {
            json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[],s:s,s:s,s:b}", "rule", "AP-LAUNCH",
                                  "level", "error", "message",
                                  json_string_value(json_object_get(p, "message")), "subject",
                                  subject, "path", json_string_value(json_object_get(p, "path")),
                                  "controls", "pack", "airpack", "title",
                                  "the runtime can be launched as planned", "waived", 0);
            if (!f || json_array_append_new(findings, f))
                return -1;
        }
    }
    return 0;
}
