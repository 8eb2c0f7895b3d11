/*
 * test_launch.c - launch specs per runtime kind (src/runtime/launch.c):
 * from a manifest and a known plan, the exact argv and environment of
 * vLLM, llama.cpp, SGLang, TGI, Ollama and kind other; podman for an
 * image; the offline environment winning over the manifest's env; the
 * {release} substitution; and the lock-side check refusing malformed specs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "runtime/launch.h"

/* A manifest with one model (folder or file) served by one runtime. */
static ap_manifest *manifest(const char *model_path, const char *serve, const char *runtime)
{
    char buf[4096];
    ap_manifest *m = NULL;
    ap_error err;
    ap_manifest_opts o = {.skip_exists = 1};
    snprintf(buf, sizeof buf,
             "apiVersion: airpack/v1\n"
             "kind: Deployment\n"
             "metadata: { name: dep, version: 1.0.0, sequence: 1 }\n"
             "target:\n"
             "  gpu: { model: nvidia-l40s, count: 2 }\n"
             "  memory_utilization: 0.9\n"
             "models:\n"
             "  - name: m\n"
             "    path: %s\n"
             "    serve: { runtime: rt, %s }\n"
             "runtimes:\n"
             "  - name: rt\n"
             "%s",
             model_path, serve, runtime);
    ap_error_clear(&err);
    if (ap_manifest_parse("t.yaml", "/nonexistent", buf, strlen(buf), &o, &m, &err) != AP_OK) {
        fprintf(stderr, "manifest: %s\n", err.msg);
        return NULL;
    }
    return m;
}

/* The plan object as analysis.plan carries it. */
static json_t *plan(uint64_t ctx, uint64_t conc, uint64_t tp)
{
    json_t *gpus = json_array();
    for (uint64_t i = 0; i < tp; i++)
        json_array_append_new(gpus, json_integer((json_int_t)i));
    return json_pack("{s:[{s:s,s:I,s:I,s:I,s:o,s:s}]}", "models", "name", "m", "context",
                     (json_int_t)ctx, "concurrency", (json_int_t)conc, "tensor_parallel",
                     (json_int_t)tp, "gpus", gpus, "kv_cache_dtype", "bf16");
}

/* argv joined with spaces */
static char *argv_str(const json_t *spec)
{
    static char out[8192];
    size_t i;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(json_object_get(spec, "argv"), i, v) {
        if (i)
            strcat(out, " ");
        strcat(out, json_string_value(v));
    }
    return out;
}

static const char *env(const json_t *spec, const char *k)
{
    return json_string_value(json_object_get(json_object_get(spec, "env"), k));
}

static json_t *spec_of(const char *model_path, const char *serve, const char *runtime,
                       json_t *p)
{
    ap_manifest *m = manifest(model_path, serve, runtime);
    json_t *launch = NULL, *s;
    ap_error err;
    assert_non_null(m);
    ap_error_clear(&err);
    assert_int_equal(ap_launch_build(m, p, &launch, &err), AP_OK);
    assert_int_equal(json_array_size(launch), 1);
    s = json_incref(json_array_get(launch, 0));
    json_decref(launch);
    json_decref(p);
    ap_manifest_free(m);
    return s;
}

static void test_vllm(void **state)
{
    (void)state;
    json_t *s = spec_of("models/llama/", "context: 8192, concurrency: 16, tensor_parallel: 2",
                        "    kind: vllm\n    path: rt/\n    program: bin/vllm\n"
                        "    listen: 127.0.0.1:8000\n"
                        "    env: { VLLM_NO_USAGE_STATS: \"1\", MY_VAR: x }\n",
                        plan(8192, 16, 2));
    assert_string_equal(argv_str(s),
                        "{release}/payload/runtimes/rt/bin/vllm serve {release}/payload/models/m "
                        "--served-model-name m --max-model-len 8192 --max-num-seqs 16 "
                        "--gpu-memory-utilization 0.90 --tensor-parallel-size 2 "
                        "--kv-cache-dtype auto --host 127.0.0.1 --port 8000");
    assert_string_equal(env(s, "VLLM_NO_USAGE_STATS"), "1");
    assert_string_equal(env(s, "HF_HUB_OFFLINE"), "1");
    assert_string_equal(env(s, "TRANSFORMERS_OFFLINE"), "1");
    assert_string_equal(env(s, "DO_NOT_TRACK"), "1");
    assert_string_equal(env(s, "MY_VAR"), "x");
    assert_string_equal(env(s, "CUDA_VISIBLE_DEVICES"), "0,1");
    assert_string_equal(json_string_value(json_object_get(s, "start")), "runtime");
    assert_string_equal(json_string_value(json_object_get(s, "health")), "/health");
    assert_int_equal(json_integer_value(json_object_get(s, "port")), 8000);
    assert_int_equal(json_array_size(json_object_get(s, "problems")), 0);
    json_decref(s);
}

static void test_vllm_fp8_site_program(void **state)
{
    (void)state;
    json_t *s = spec_of("models/llama/",
                        "context: 4096, concurrency: 2, tensor_parallel: 1, kv_cache_dtype: fp8",
                        "    kind: vllm\n    program: /opt/vllm/bin/vllm\n    listen: '[::1]:9000'\n",
                        plan(4096, 2, 1));
    assert_string_equal(argv_str(s),
                        "/opt/vllm/bin/vllm serve {release}/payload/models/m --served-model-name m "
                        "--max-model-len 4096 --max-num-seqs 2 --gpu-memory-utilization 0.90 "
                        "--tensor-parallel-size 1 --kv-cache-dtype fp8 --host ::1 --port 9000");
    assert_string_equal(json_string_value(json_object_get(s, "start")), "site");
    assert_string_equal(json_string_value(json_object_get(s, "listen")), "[::1]:9000");
    json_decref(s);
}

static void test_llamacpp(void **state)
{
    (void)state;
    json_t *s = spec_of("models/tiny.gguf", "context: 2048, concurrency: 4, kv_cache_dtype: f16",
                        "    kind: llama.cpp\n    path: rt/\n    program: bin/llama-server\n"
                        "    listen: 127.0.0.1:8080\n    args: [--offline]\n",
                        plan(2048, 4, 1));
    assert_string_equal(argv_str(s),
                        "{release}/payload/runtimes/rt/bin/llama-server "
                        "-m {release}/payload/models/m/tiny.gguf --alias m -c 8192 -np 4 -ngl 999 "
                        "--split-mode none -ctk f16 -ctv f16 --host 127.0.0.1 --port 8080 --offline");
    assert_string_equal(env(s, "LLAMA_OFFLINE"), "1");
    assert_string_equal(env(s, "CUDA_VISIBLE_DEVICES"), "0");
    json_decref(s);
}

static void test_llamacpp_tp_q8(void **state)
{
    (void)state;
    json_t *s = spec_of("models/tiny.gguf",
                        "context: 1024, concurrency: 2, tensor_parallel: 2, kv_cache_dtype: q8_0",
                        "    kind: llama.cpp\n    program: /usr/bin/llama-server\n",
                        plan(1024, 2, 2));
    assert_string_equal(argv_str(s),
                        "/usr/bin/llama-server -m {release}/payload/models/m/tiny.gguf --alias m -c 2048 -np 2 "
                        "-ngl 999 --split-mode layer --tensor-split 1,1 -ctk q8_0 -ctv q8_0 -fa "
                        "--host 127.0.0.1 --port 8080");
    json_decref(s);
}

static void test_sglang(void **state)
{
    (void)state;
    json_t *s = spec_of("models/llama/", "context: 8192, concurrency: 8, tensor_parallel: 2",
                        "    kind: sglang\n    path: venv/\n    program: bin/python3\n"
                        "    listen: 127.0.0.1:30000\n",
                        plan(8192, 8, 2));
    assert_string_equal(argv_str(s),
                        "{release}/payload/runtimes/rt/bin/python3 -m sglang.launch_server "
                        "--model-path {release}/payload/models/m --served-model-name m "
                        "--context-length 8192 --mem-fraction-static 0.90 --tp 2 "
                        "--max-running-requests 8 --host 127.0.0.1 --port 30000");
    json_decref(s);
}

static void test_tgi(void **state)
{
    (void)state;
    json_t *s = spec_of("models/llama/", "context: 4096, concurrency: 32, tensor_parallel: 2",
                        "    kind: tgi\n    program: /usr/local/bin/text-generation-launcher\n"
                        "    listen: 127.0.0.1:3000\n",
                        plan(4096, 32, 2));
    assert_string_equal(argv_str(s),
                        "/usr/local/bin/text-generation-launcher --model-id {release}/payload/models/m "
                        "--max-total-tokens 4096 --max-concurrent-requests 32 --num-shard 2 "
                        "--cuda-memory-fraction 0.90 --hostname 127.0.0.1 --port 3000");
    json_decref(s);
}

static void test_ollama(void **state)
{
    (void)state;
    json_t *s = spec_of("models/tiny.gguf", "context: 4096, concurrency: 3, kv_cache_dtype: q8_0",
                        "    kind: ollama\n    program: /usr/bin/ollama\n"
                        "    listen: 127.0.0.1:11434\n    env: { OLLAMA_NO_CLOUD: \"1\" }\n",
                        plan(4096, 3, 1));
    assert_string_equal(argv_str(s), "/usr/bin/ollama serve");
    assert_string_equal(env(s, "OLLAMA_MODELS"), "{release}/ollama");
    assert_string_equal(env(s, "OLLAMA_HOST"), "127.0.0.1:11434");
    assert_string_equal(env(s, "OLLAMA_NUM_PARALLEL"), "3");
    assert_string_equal(env(s, "OLLAMA_CONTEXT_LENGTH"), "4096");
    assert_string_equal(env(s, "OLLAMA_KV_CACHE_TYPE"), "q8_0");
    assert_string_equal(env(s, "OLLAMA_FLASH_ATTENTION"), "1");
    assert_string_equal(env(s, "OLLAMA_NO_CLOUD"), "1");
    assert_string_equal(json_string_value(json_object_get(s, "health")), "/api/version");
    json_decref(s);
}

static void test_other(void **state)
{
    (void)state;
    json_t *s = spec_of("models/tiny.gguf", "context: 4096",
                        "    kind: other\n    program: /opt/srv/serve\n"
                        "    args: [--model, /srv/m, --verbose]\n",
                        plan(4096, 1, 1));
    assert_string_equal(argv_str(s), "/opt/srv/serve --model /srv/m --verbose");
    assert_null(env(s, "CUDA_VISIBLE_DEVICES"));
    assert_string_equal(env(s, "HF_HUB_OFFLINE"), "1");
    json_decref(s);
    /* no program: a problem, listed for the findings */
    s = spec_of("models/tiny.gguf", "context: 4096", "    kind: other\n", plan(4096, 1, 1));
    assert_int_equal(json_array_size(json_object_get(s, "problems")), 1);
    json_decref(s);
}

static void test_container(void **state)
{
    (void)state;
    json_t *s = spec_of("models/llama/", "context: 8192, concurrency: 4, tensor_parallel: 1",
                        "    kind: vllm\n    path: rt/\n    image: vllm-openai.tar\n"
                        "    program: vllm\n    listen: 127.0.0.1:8000\n",
                        plan(8192, 4, 1));
    assert_string_equal(argv_str(s),
                        "/usr/bin/podman run --rm --replace --network host --device nvidia.com/gpu=all "
                        "--security-opt label=disable --name airpack-dep-rt "
                        "--volume {release}:{release}:ro --env CUDA_VISIBLE_DEVICES "
                        "--env HF_HUB_OFFLINE --env TRANSFORMERS_OFFLINE --env HF_DATASETS_OFFLINE "
                        "--env HF_HUB_DISABLE_TELEMETRY --env DO_NOT_TRACK --env VLLM_NO_USAGE_STATS "
                        "--env VLLM_DO_NOT_TRACK --entrypoint vllm "
                        "docker-archive:{release}/payload/runtimes/rt/vllm-openai.tar serve "
                        "{release}/payload/models/m --served-model-name m --max-model-len 8192 "
                        "--max-num-seqs 4 --gpu-memory-utilization 0.90 --tensor-parallel-size 1 "
                        "--kv-cache-dtype auto --host 127.0.0.1 --port 8000");
    assert_string_equal(json_string_value(json_object_get(s, "start")), "container");
    json_decref(s);
}

/* The manifest may not switch the offline environment off. */
static void test_offline_env_wins(void **state)
{
    (void)state;
    json_t *s = spec_of("models/llama/", "context: 8192",
                        "    kind: vllm\n    program: /usr/bin/vllm\n"
                        "    env: { HF_HUB_OFFLINE: \"0\", VLLM_NO_USAGE_STATS: \"1\" }\n",
                        plan(8192, 1, 1));
    json_t *pr = json_object_get(s, "problems");
    assert_string_equal(env(s, "HF_HUB_OFFLINE"), "1");
    assert_int_equal(json_array_size(pr), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(pr, 0), "path")),
                        "runtimes[0].env.HF_HUB_OFFLINE");
    json_t *findings = json_array(), *launch = json_pack("[O]", s);
    assert_int_equal(ap_launch_findings(launch, findings), 0);
    assert_int_equal(json_array_size(findings), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(findings, 0), "level")),
                        "error");
    json_decref(findings);
    json_decref(launch);
    json_decref(s);
}

static void test_resolve_and_check(void **state)
{
    (void)state;
    json_t *s = spec_of("models/tiny.gguf", "context: 2048, concurrency: 4",
                        "    kind: llama.cpp\n    path: rt/\n    program: bin/llama-server\n",
                        plan(2048, 4, 1));
    json_t *r = ap_launch_resolve(s, "/srv/p/current/dep"), *launch;
    ap_error err;
    assert_non_null(r);
    assert_string_equal(json_string_value(json_array_get(json_object_get(r, "argv"), 0)),
                        "/srv/p/current/dep/payload/runtimes/rt/bin/llama-server");
    assert_string_equal(json_string_value(json_object_get(r, "working_directory")),
                        "/srv/p/current/dep");
    launch = json_pack("[O]", s);
    ap_error_clear(&err);
    assert_int_equal(ap_launch_check("lock", launch, &err), AP_OK);
    /* hostile: a control character in an argument, a bad port, a bad env name */
    json_array_set_new(json_object_get(s, "argv"), 1, json_string("-m\nExecStartPre=/bin/sh"));
    assert_int_equal(ap_launch_check("lock", launch, &err), AP_ERR_CHECK);
    json_array_set_new(json_object_get(s, "argv"), 1, json_string("-m"));
    json_object_set_new(s, "port", json_integer(70000));
    assert_int_equal(ap_launch_check("lock", launch, &err), AP_ERR_CHECK);
    json_object_set_new(s, "port", json_integer(8080));
    json_object_set_new(json_object_get(s, "env"), "A=B", json_string("x"));
    assert_int_equal(ap_launch_check("lock", launch, &err), AP_ERR_CHECK);
    json_decref(launch);
    json_decref(r);
    json_decref(s);
}

static void test_listen_split(void **state)
{
    (void)state;
    char h[64];
    unsigned p;
    assert_int_equal(ap_launch_split_listen("127.0.0.1:8000", h, sizeof h, &p), 0);
    assert_string_equal(h, "127.0.0.1");
    assert_int_equal(p, 8000);
    assert_int_equal(ap_launch_split_listen("[::1]:80", h, sizeof h, &p), 0);
    assert_string_equal(h, "::1");
    assert_int_not_equal(ap_launch_split_listen("::1:80", h, sizeof h, &p), 0);
    assert_int_not_equal(ap_launch_split_listen("host:0", h, sizeof h, &p), 0);
    assert_int_not_equal(ap_launch_split_listen("host:65536", h, sizeof h, &p), 0);
    assert_int_not_equal(ap_launch_split_listen("host:", h, sizeof h, &p), 0);
    char b[32];
    ap_launch_fmt_ratio(0.9, b, sizeof b);
    assert_string_equal(b, "0.90");
    ap_launch_fmt_ratio(0.925, b, sizeof b);
    assert_string_equal(b, "0.925");
}

/* serve.max_batched_tokens, enforce_eager, pipeline_parallel and rope_scaling reach every kind's
 * command line as the planner assumed them (docs/memory-planner.md) */
static void test_memory_knobs(void **state)
{
    (void)state;
    const char *sv = "context: 131072, max_batched_tokens: 4096, enforce_eager: true, pipeline_parallel: 2, "
                     "rope_scaling: { type: yarn, factor: 4, original_context: 32768 }";
    json_t *s = spec_of("models/qwen/", sv, "    kind: vllm\n    version: 0.19.0\n    path: rt/\n    program: bin/vllm\n",
                        plan(131072, 1, 1));
    assert_non_null(strstr(argv_str(s), "--max-num-batched-tokens 4096 --enforce-eager --pipeline-parallel-size 2 "
                                        "--hf-overrides {\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4,"
                                        "\"original_max_position_embeddings\":32768}}"));
    json_decref(s);
    s = spec_of("models/qwen/", sv, "    kind: vllm\n    version: 0.6.6\n    path: rt/\n    program: bin/vllm\n",
                plan(131072, 1, 1));
    assert_non_null(strstr(argv_str(s), "--rope-scaling {\"rope_type\":\"yarn\""));
    json_decref(s);
    s = spec_of("models/qwen/", sv, "    kind: sglang\n    path: rt/\n    program: bin/python3\n", plan(131072, 1, 1));
    assert_non_null(strstr(argv_str(s), "--chunked-prefill-size 4096 --disable-cuda-graph --pp-size 2 "
                                        "--json-model-override-args {\"rope_scaling\""));
    json_decref(s);
    s = spec_of("models/qwen/", sv, "    kind: tgi\n    path: rt/\n    program: bin/text-generation-launcher\n",
                plan(131072, 1, 1));
    assert_non_null(strstr(argv_str(s), "--max-batch-prefill-tokens 4096 --cuda-graphs 0 --rope-scaling yarn --rope-factor 4"));
    assert_int_equal(json_array_size(json_object_get(s, "problems")), 1);   /* no pipeline parallelism */
    json_decref(s);
    s = spec_of("models/qwen.gguf", "context: 131072, max_batched_tokens: 1024, rope_scaling: { type: yarn, factor: 4, original_context: 32768 }",
                "    kind: llama.cpp\n    path: rt/\n    program: bin/llama-server\n", plan(131072, 1, 1));
    assert_non_null(strstr(argv_str(s), "-b 1024 --rope-scaling yarn --rope-scale 4 --yarn-orig-ctx 32768"));
    json_decref(s);
}

/* The manifest's args and env against the spec: each contradiction named
 * with its manifest path; equal values (0.9 vs 0.90) are not one. */
static json_t *contradictions(const char *model_path, const char *serve, const char *runtime,
                              json_t *p)
{
    ap_manifest *m = manifest(model_path, serve, runtime);
    json_t *launch = NULL, *mj, *c;
    ap_error err;
    assert_non_null(m);
    ap_error_clear(&err);
    assert_int_equal(ap_launch_build(m, p, &launch, &err), AP_OK);
    mj = ap_manifest_to_json(m);
    c = ap_launch_contradictions(mj, launch);
    assert_non_null(c);
    json_decref(mj);
    json_decref(launch);
    json_decref(p);
    ap_manifest_free(m);
    return c;
}

static const char *cpath(const json_t *c, size_t i)
{
    return json_string_value(json_object_get(json_array_get(c, i), "path"));
}

static void test_contradictions_vllm(void **state)
{
    (void)state;
    json_t *c = contradictions(
        "models/llama/", "context: 2048, concurrency: 4, tensor_parallel: 1",
        "    kind: vllm\n    program: /usr/bin/vllm\n    listen: 127.0.0.1:8000\n"
        "    args: [--max-model-len, \"131072\", --gpu-memory-utilization, \"0.98\",\n"
        "           --max-num-seqs, \"4\", --gpu-memory-utilization=0.9, -tp, \"2\",\n"
        "           --kv-cache-dtype, fp8, --host, 0.0.0.0, --port, \"8001\",\n"
        "           --model, meta-llama/Llama-3.1-8B-Instruct, --enforce-eager]\n",
        plan(2048, 4, 1));
    assert_int_equal(json_array_size(c), 7);
    assert_string_equal(cpath(c, 0), "runtimes[0].args[0]");  /* context */
    assert_string_equal(cpath(c, 1), "runtimes[0].args[2]");  /* utilization 0.98 */
    assert_string_equal(cpath(c, 2), "runtimes[0].args[7]");  /* -tp 2 */
    assert_string_equal(cpath(c, 3), "runtimes[0].args[9]");  /* fp8 */
    assert_string_equal(cpath(c, 4), "runtimes[0].args[11]"); /* host */
    assert_string_equal(cpath(c, 5), "runtimes[0].args[13]"); /* port */
    assert_string_equal(cpath(c, 6), "runtimes[0].args[15]"); /* model */
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(c, 0), "message")),
                           "'--max-model-len 131072'"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 1), "expected")),
                        "0.90");
    json_decref(c);
}

static void test_contradictions_llamacpp_env(void **state)
{
    (void)state;
    json_t *c = contradictions(
        "models/tiny.gguf", "context: 2048, concurrency: 4, kv_cache_dtype: f16",
        "    kind: llama.cpp\n    program: /usr/bin/llama-server\n    listen: 127.0.0.1:8080\n"
        "    args: [--offline, --ctx-size=8192, --parallel, \"8\", -ctv, q8_0, -hf, org/repo]\n"
        "    env: { LLAMA_ARG_PORT: \"9000\", LLAMA_OFFLINE: \"1\" }\n",
        plan(2048, 4, 1));
    /* --ctx-size=8192 equals context x concurrency: no finding */
    assert_int_equal(json_array_size(c), 4);
    assert_string_equal(cpath(c, 0), "runtimes[0].args[2]");
    assert_string_equal(cpath(c, 1), "runtimes[0].args[4]");
    assert_string_equal(cpath(c, 2), "runtimes[0].args[6]");
    assert_string_equal(cpath(c, 3), "runtimes[0].env.LLAMA_ARG_PORT");
    json_decref(c);
}

static void test_contradictions_sglang_tgi(void **state)
{
    (void)state;
    json_t *c = contradictions("models/llama/", "context: 4096, concurrency: 8, tensor_parallel: 2",
                               "    kind: sglang\n    program: /usr/bin/python3\n"
                               "    args: [--context-length, \"4096\", --tp-size, \"4\", "
                               "--mem-fraction-static, \"0.95\"]\n",
                               plan(4096, 8, 2));
    assert_int_equal(json_array_size(c), 2);
    assert_string_equal(cpath(c, 0), "runtimes[0].args[2]");
    assert_string_equal(cpath(c, 1), "runtimes[0].args[4]");
    json_decref(c);
    c = contradictions("models/llama/", "context: 4096, concurrency: 8, tensor_parallel: 2",
                       "    kind: tgi\n    program: /usr/bin/text-generation-launcher\n"
                       "    env: { MAX_TOTAL_TOKENS: \"32768\", NUM_SHARD: \"2\" }\n"
                       "    args: [--cuda-memory-fraction, \"0.9\", --hostname, 0.0.0.0]\n",
                       plan(4096, 8, 2));
    assert_int_equal(json_array_size(c), 2);
    assert_string_equal(cpath(c, 0), "runtimes[0].args[2]");
    assert_string_equal(cpath(c, 1), "runtimes[0].env.MAX_TOTAL_TOKENS");
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vllm),          cmocka_unit_test(test_vllm_fp8_site_program),
        cmocka_unit_test(test_llamacpp),      cmocka_unit_test(test_llamacpp_tp_q8),
        cmocka_unit_test(test_sglang),        cmocka_unit_test(test_tgi),
        cmocka_unit_test(test_ollama),        cmocka_unit_test(test_other),
        cmocka_unit_test(test_container),     cmocka_unit_test(test_offline_env_wins),
        cmocka_unit_test(test_resolve_and_check), cmocka_unit_test(test_listen_split),
        cmocka_unit_test(test_memory_knobs),
        cmocka_unit_test(test_contradictions_vllm),
        cmocka_unit_test(test_contradictions_llamacpp_env),
        cmocka_unit_test(test_contradictions_sglang_tgi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
