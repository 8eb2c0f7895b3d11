/*
 * preflight.c - re-run a release's signed plan against this host's GPUs
 * (preflight.h, docs/preflight.md).
 *
 * The lock's analysis holds the typed manifest (models[i].serve, the
 * runtimes and the target) and, per model, the facts read from its files.
 * They are read back into an ap_manifest and ap_model_facts records (only
 * the fields the planner uses) and handed to ap_plan_compute() with the
 * host's GPU count and the smallest per-GPU budget of the GPUs in use; the
 * per-GPU verdicts then use each GPU's own budget.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lock.h"
#include "manifest.h"
#include "model/model.h"
#include "plan.h"
#include "preflight/preflight.h"

#define GIB 1073741824.0
#define MAX_MODELS 1024

static const char *const verdict_names[] = {"fits", "fits-reduced", "does-not-fit", "unknown"};

const char *ap_pf_verdict_name(ap_pf_verdict v)
{
    return (unsigned)v <= AP_PF_UNKNOWN ? verdict_names[v] : "unknown";
}

ap_pf_verdict ap_preflight_verdict(const json_t *report)
{
    const char *s = json_string_value(json_object_get(report, "verdict"));
    for (int i = 0; s && i <= AP_PF_UNKNOWN; i++)
        if (strcmp(s, verdict_names[i]) == 0)
            return (ap_pf_verdict)i;
    return AP_PF_UNKNOWN;
}

int ap_version_cmp(const char *a, const char *b)
{
    while (1) {
        unsigned long x = 0, y = 0;
        int ha = 0, hb = 0;
        while (a && *a >= '0' && *a <= '9' && x < 100000000UL) {
            x = x * 10 + (unsigned long)(*a++ - '0');
            ha = 1;
        }
        while (b && *b >= '0' && *b <= '9' && y < 100000000UL) {
            y = y * 10 + (unsigned long)(*b++ - '0');
            hb = 1;
        }
        if (!ha && !hb)
            return 0;
        if (x != y)
            return x < y ? -1 : 1;
        if (a && *a == '.')
            a++;
        else
            a = NULL;
        if (b && *b == '.')
            b++;
        else
            b = NULL;
        if (!a && !b)
            return 0;
    }
}

/* ---- reading the lock back ---- */

static int u64_of(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

static ap_fact_src src_of(const json_t *sources, const char *key)
{
    const char *s = json_string_value(json_object_get(sources, key));
    static const ap_fact_src all[] = {AP_SRC_GGUF, AP_SRC_SAFETENSORS, AP_SRC_CONFIG,
                                      AP_SRC_DERIVED, AP_SRC_DEFAULT};
    if (!s)
        return AP_SRC_DERIVED;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, ap_fact_src_name(all[i])) == 0)
            return all[i];
    return AP_SRC_DERIVED;
}

static void fact_of(const json_t *fj, const json_t *sources, const char *key, ap_fact *out)
{
    uint64_t v;
    if (u64_of(json_object_get(fj, key), &v))
        ap_facts_set(out, v, src_of(sources, key));
}

static int str_of(const json_t *fj, const json_t *sources, const char *key, char **dst,
                  ap_fact_src *dsrc)
{
    const char *s = json_string_value(json_object_get(fj, key));
    if (!s || strlen(s) > 256)
        return AP_OK;
    return ap_facts_set_str(dst, dsrc, s, src_of(sources, key));
}

/* Facts as ap_model_facts_to_json wrote them (model.h). */
static int facts_from_json(const json_t *fj, ap_model_facts **out, ap_error *err)
{
    const json_t *sources = json_object_get(fj, "sources"), *a;
    const char *fmt = json_string_value(json_object_get(fj, "format"));
    ap_model_facts *f;
    uint64_t v;
    ap_fact_src dummy;

    *out = NULL;
    if (!json_is_object(fj))
        return AP_OK; /* not read at build time: the model is reported as not planned */
    f = ap_model_facts_new(json_string_value(json_object_get(fj, "path")));
    if (!f)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    f->format = fmt && strcmp(fmt, "gguf") == 0 ? "gguf"
              : fmt && strcmp(fmt, "safetensors") == 0 ? "safetensors" : "hf-config";
    if (u64_of(json_object_get(fj, "weights_bytes"), &f->weights_bytes)) {
        f->tensors_src = src_of(sources, "weights_bytes");
        u64_of(json_object_get(fj, "parameters"), &f->parameters);
        u64_of(json_object_get(fj, "tensors"), &f->n_tensors);
    }
    u64_of(json_object_get(fj, "files"), &f->n_files);
    u64_of(json_object_get(fj, "file_bytes"), &f->file_bytes);
    fact_of(fj, sources, "layers", &f->layers);
    fact_of(fj, sources, "hidden_size", &f->hidden);
    fact_of(fj, sources, "heads", &f->heads);
    fact_of(fj, sources, "kv_heads", &f->kv_heads);
    fact_of(fj, sources, "head_dim", &f->head_dim);
    fact_of(fj, sources, "v_head_dim", &f->v_head_dim);
    fact_of(fj, sources, "context_length", &f->context_length);
    fact_of(fj, sources, "sliding_window", &f->sliding_window);
    fact_of(fj, sources, "experts", &f->experts);
    fact_of(fj, sources, "experts_used", &f->experts_used);
    fact_of(fj, sources, "kv_lora_rank", &f->kv_lora_rank);
    fact_of(fj, sources, "qk_rope_head_dim", &f->qk_rope_head_dim);
    fact_of(fj, sources, "vocab_size", &f->vocab);
    fact_of(fj, sources, "ffn_size", &f->ffn);
    fact_of(fj, sources, "quant_bits", &f->quant_bits);
    if (f->layers.src && f->layers.v > AP_MODEL_MAX_LAYERS) {
        ap_model_facts_free(f);
        return ap_error_set(err, AP_ERR_CHECK, "lock: model facts: %" PRIu64 " layers is over the limit of %u",
                            f->layers.v, AP_MODEL_MAX_LAYERS);
    }
    a = json_object_get(fj, "kv_heads_per_layer");
    if (json_is_array(a) && f->layers.src && json_array_size(a) == f->layers.v && f->layers.v > 0) {
        f->kv_heads_layer = calloc((size_t)f->layers.v, sizeof *f->kv_heads_layer);
        if (!f->kv_heads_layer)
            goto nomem;
        for (size_t i = 0; i < (size_t)f->layers.v; i++)
            f->kv_heads_layer[i] = u64_of(json_array_get(a, i), &v) && v < UINT32_MAX ? (uint32_t)v : 0;
    }
    if (u64_of(json_object_get(fj, "sliding_window_layers"), &v) && f->layers.src && f->layers.v > 0) {
        /* the lock records how many layers use the window, not which: the
         * KV cache sums over layers, so the first v layers stand for them */
        f->swa_layer = calloc((size_t)f->layers.v, 1);
        if (!f->swa_layer)
            goto nomem;
        for (uint64_t i = 0; i < v && i < f->layers.v; i++)
            f->swa_layer[i] = 1;
    }
    if (str_of(fj, sources, "architecture", &f->architecture, &f->architecture_src) ||
        str_of(fj, sources, "dtype", &f->dtype, &f->dtype_src) ||
        str_of(fj, sources, "file_type", &f->file_type, &f->file_type_src) ||
        str_of(fj, sources, "quant_method", &f->quant_method, &f->quant_method_src) ||
        str_of(fj, sources, "name", &f->name, &dummy))
        goto nomem;
    *out = f;
    return AP_OK;
nomem:
    ap_model_facts_free(f);
    return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
}

static ap_kv_dtype kv_of(const char *s)
{
    for (int d = AP_KV_AUTO; d <= AP_KV_Q4_0; d++)
        if (s && strcmp(s, ap_kv_dtype_name((ap_kv_dtype)d)) == 0)
            return (ap_kv_dtype)d;
    return AP_KV_AUTO;
}

static ap_runtime_kind kind_of(const char *s)
{
    for (int k = AP_RT_VLLM; k < AP_RT_UNKNOWN; k++)
        if (s && strcmp(s, ap_runtime_kind_name((ap_runtime_kind)k)) == 0)
            return (ap_runtime_kind)k;
    return AP_RT_OTHER;
}

static double dbl_or(const json_t *v, double dflt)
{
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* The planner's inputs from the lock's manifest. Strings are borrowed
 * from the lock document (the record is freed with free_manifest). */
static int manifest_from_json(const json_t *mj, ap_manifest *m, ap_error *err)
{
    const json_t *models = json_object_get(mj, "models"), *rts = json_object_get(mj, "runtimes");
    const json_t *t = json_object_get(mj, "target");
    size_t nm = json_array_size(models), nr = json_array_size(rts);

    memset(m, 0, sizeof *m);
    if (!json_is_object(mj) || !json_is_array(models) || !json_is_object(t))
        return ap_error_set(err, AP_ERR_CHECK, "lock: analysis.manifest is missing or malformed");
    if (nm > MAX_MODELS || nr > MAX_MODELS)
        return ap_error_set(err, AP_ERR_CHECK, "lock: too many models or runtimes");
    m->file = (char *)AP_LOCK_NAME;
    /* the target's GPU name selects runtime profiles; the memory is the host's */
    m->gpu_model = (char *)json_string_value(json_object_get(json_object_get(t, "gpu"), "model"));
    m->name = (char *)json_string_value(json_object_get(json_object_get(mj, "metadata"), "name"));
    m->memory_utilization = dbl_or(json_object_get(t, "memory_utilization"), 0.90);
    if (!(m->memory_utilization > 0 && m->memory_utilization <= 1))
        m->memory_utilization = 0.90;
    m->models = calloc(nm ? nm : 1, sizeof *m->models);
    m->runtimes = calloc(nr ? nr : 1, sizeof *m->runtimes);
    if (!m->models || !m->runtimes)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nr; i++) {
        const json_t *r = json_array_get(rts, i), *env = json_object_get(r, "env");
        const json_t *args = json_object_get(r, "args"), *v;
        ap_mruntime *mr = &m->runtimes[i];
        const char *k;
        size_t j;
        mr->name = (char *)json_string_value(json_object_get(r, "name"));
        mr->kind = kind_of(json_string_value(json_object_get(r, "kind")));
        mr->version = (char *)json_string_value(json_object_get(r, "version"));
        m->n_runtimes++;
        /* the planner reads a few runtime arguments and environment
         * variables (vLLM's --max-num-seqs, llama.cpp's --flash-attn, ...) */
        if (json_object_size(env) > MAX_MODELS || json_array_size(args) > MAX_MODELS)
            return ap_error_set(err, AP_ERR_CHECK, "lock: runtime '%s': too many env or args", mr->name ? mr->name : "?");
        if (json_object_size(env)) {
            mr->env = calloc(json_object_size(env), sizeof *mr->env);
            if (!mr->env)
                return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            json_object_foreach((json_t *)env, k, v)
                if (json_is_string(v)) {
                    mr->env[mr->n_env].key = (char *)k;
                    mr->env[mr->n_env++].value = (char *)json_string_value(v);
                }
        }
        if (json_array_size(args)) {
            mr->args = calloc(json_array_size(args), sizeof *mr->args);
            if (!mr->args)
                return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            json_array_foreach(args, j, v)
                if (json_is_string(v))
                    mr->args[mr->n_args++] = (char *)json_string_value(v);
        }
    }
    for (size_t i = 0; i < nm; i++) {
        const json_t *mo = json_array_get(models, i), *s = json_object_get(mo, "serve");
        ap_mmodel *mm = &m->models[i];
        uint64_t v;
        mm->name = (char *)json_string_value(json_object_get(mo, "name"));
        mm->serve.runtime = (char *)json_string_value(json_object_get(s, "runtime"));
        mm->serve.context = u64_of(json_object_get(s, "context"), &v) ? v : 0;
        mm->serve.concurrency = u64_of(json_object_get(s, "concurrency"), &v) && v ? v : 1;
        mm->serve.tensor_parallel = u64_of(json_object_get(s, "tensor_parallel"), &v) && v ? v : 1;
        if (mm->serve.tensor_parallel > AP_PLAN_MAX_GPUS)
            mm->serve.tensor_parallel = AP_PLAN_MAX_GPUS;
        mm->serve.kv_cache_dtype = kv_of(json_string_value(json_object_get(s, "kv_cache_dtype")));
        mm->serve.overhead_gib = dbl_or(json_object_get(s, "overhead_gib"), -1);
        mm->serve.activation_gib = dbl_or(json_object_get(s, "activation_gib"), -1);
        mm->serve.max_batched_tokens = u64_of(json_object_get(s, "max_batched_tokens"), &v) ? v : 0;
        mm->serve.enforce_eager = json_is_true(json_object_get(s, "enforce_eager"));
        mm->serve.pipeline_parallel = u64_of(json_object_get(s, "pipeline_parallel"), &v) && v ? v : 1;
        if (mm->serve.pipeline_parallel > AP_PLAN_MAX_GPUS)
            mm->serve.pipeline_parallel = AP_PLAN_MAX_GPUS;
        {
            const json_t *rs = json_object_get(s, "rope_scaling");
            mm->serve.rope_type = (char *)json_string_value(json_object_get(rs, "type"));
            mm->serve.rope_factor = dbl_or(json_object_get(rs, "factor"), 0);
            mm->serve.rope_original_context = u64_of(json_object_get(rs, "original_context"), &v) ? v : 0;
        }
        m->n_models++;
    }
    return AP_OK;
}

static void free_manifest(ap_manifest *m)
{
    for (size_t i = 0; m->runtimes && i < m->n_runtimes; i++) {
        free(m->runtimes[i].env);
        free(m->runtimes[i].args);
    }
    free(m->models);
    free(m->runtimes);
}

/* ---- the check ---- */

struct gpu_budget {
    uint64_t total, free, credit, budget;
};

static json_t *requirement(const char *key, const char *need, const char *found, int met,
                           const char *note)
{
    return json_pack("{s:s,s:s,s:o,s:b,s:o}", "key", key, "required", need, "found",
                     found ? json_string(found) : json_null(), "met", met, "note",
                     note ? json_string(note) : json_null());
}

static int add_problem(json_t *problems, const char *fmt, ...) AP_PRINTF(2, 3);
static int add_problem(json_t *problems, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return json_array_append_new(problems, json_string(buf));
}

static int check_requires(const json_t *target, const ap_hostgpus *h, uint64_t used_gpus,
                          json_t *reqs, json_t *problems)
{
    const json_t *rq = json_object_get(target, "requires");
    const char *need;
    int bad = 0, unmet = 0;

    if ((need = json_string_value(json_object_get(rq, "driver")))) {
        int met = h->driver_version[0] && ap_version_cmp(h->driver_version, need) >= 0;
        bad |= json_array_append_new(reqs, requirement("driver", need, h->driver_version[0] ? h->driver_version : NULL,
                                                       met, h->driver_version[0] ? NULL : "driver version not known"));
        if (!met) {
            unmet++;
            bad |= add_problem(problems, "driver %s is older than the required %s",
                               h->driver_version[0] ? h->driver_version : "(unknown)", need);
        }
    }
    if ((need = json_string_value(json_object_get(rq, "cuda")))) {
        char cuda[32] = "";
        int met;
        if (h->cuda_version)
            snprintf(cuda, sizeof cuda, "%d.%d", h->cuda_version / 1000, (h->cuda_version % 1000) / 10);
        met = cuda[0] && ap_version_cmp(cuda, need) >= 0;
        bad |= json_array_append_new(reqs, requirement("cuda", need, cuda[0] ? cuda : NULL, met,
                                                       cuda[0] ? NULL : "CUDA driver version not known"));
        if (!met) {
            unmet++;
            bad |= add_problem(problems, "CUDA driver %s is older than the required %s",
                               cuda[0] ? cuda : "(unknown)", need);
        }
    }
    if ((need = json_string_value(json_object_get(rq, "compute_capability")))) {
        char low[16] = "";
        int met = h->n > 0, lowest = -1;
        for (size_t i = 0; i < h->n && i < used_gpus; i++) {
            const ap_hostgpu *g = &h->gpus[i];
            char cc[16];
            if (g->cc_major < 0) {
                met = 0;
                continue;
            }
            snprintf(cc, sizeof cc, "%d.%d", g->cc_major, g->cc_minor);
            if (lowest < 0 || g->cc_major * 100 + g->cc_minor < lowest) {
                lowest = g->cc_major * 100 + g->cc_minor;
                snprintf(low, sizeof low, "%s", cc);
            }
            if (ap_version_cmp(cc, need) < 0)
                met = 0;
        }
        bad |= json_array_append_new(reqs, requirement("compute_capability", need, low[0] ? low : NULL, met,
                                                       "the lowest of the GPUs the models use"));
        if (!met) {
            unmet++;
            bad |= add_problem(problems, "compute capability %s is below the required %s",
                               low[0] ? low : "(unknown)", need);
        }
    }
    return bad ? -1 : unmet;
}

static int credit_for(const json_t *credit_plan, size_t gpu, uint64_t *out)
{
    const json_t *g = json_array_get(json_object_get(credit_plan, "gpus"), gpu);
    *out = 0;
    return u64_of(json_object_get(g, "used_bytes"), out);
}

int ap_preflight_check(const json_t *lock_doc, const ap_hostgpus *h, const ap_preflight_opts *o,
                       json_t **report, ap_error *err)
{
    const json_t *analysis = json_object_get(lock_doc, "analysis");
    const json_t *mj = json_object_get(analysis, "manifest");
    const json_t *recorded = json_object_get(analysis, "plan");
    const json_t *target = json_object_get(mj, "target"), *md = json_object_get(lock_doc, "metadata");
    ap_preflight_opts dflt = {0};
    ap_manifest m;
    ap_model_facts **facts = NULL;
    uint64_t *delta = NULL, *used = NULL, max_delta = 0;
    ap_plan *plan = NULL;
    struct gpu_budget *gb = NULL;
    json_t *rep = NULL, *reqs = NULL, *problems = NULL, *jm = NULL, *jg = NULL, *host = NULL;
    uint64_t need_gpus = 1, min_budget = UINT64_MAX;
    ap_pf_verdict overall = AP_PF_FITS;
    int rc = AP_OK, unmet, bad = 0, nothing = 0;

    *report = NULL;
    if (!o)
        o = &dflt;
    memset(&m, 0, sizeof m);
    if (!json_is_object(mj) && !json_is_object(recorded))
        nothing = 1; /* a lock without a manifest or plan: nothing to check */
    else if ((rc = manifest_from_json(mj, &m, err)) != AP_OK)
        goto out;
    rep = json_object();
    reqs = json_array();
    problems = json_array();
    jm = json_array();
    jg = json_array();
    host = ap_hostgpus_to_json(h);
    if (!rep || !reqs || !problems || !jm || !jg || !host)
        goto nomem;
    bad |= json_object_set_new(rep, "format", json_string(AP_PREFLIGHT_FORMAT));
    bad |= json_object_set_new(rep, "deployment",
                               json_pack("{s:O?,s:O?,s:O?}", "name", json_object_get(md, "name"),
                                         "version", json_object_get(md, "version"), "sequence",
                                         json_object_get(md, "sequence")));
    bad |= json_object_set(rep, "planned_for", json_object_get(recorded, "gpu") ? json_object_get(recorded, "gpu")
                                                                                : json_null());
    bad |= json_object_set_new(rep, "host", host);
    host = NULL;
    for (size_t i = 0; i < m.n_models; i++)
        if (m.models[i].serve.tensor_parallel * m.models[i].serve.pipeline_parallel > need_gpus)
            need_gpus = m.models[i].serve.tensor_parallel * m.models[i].serve.pipeline_parallel;

    if (nothing) {
        overall = AP_PF_UNKNOWN;
        bad |= add_problem(problems, "the lock records no manifest and memory plan to check");
        goto finish;
    }
    if (!h->available) {
        overall = AP_PF_UNKNOWN;
        bad |= add_problem(problems, "no NVML on this host: %s", h->problem[0] ? h->problem : "not available");
        goto finish;
    }
    if (h->n == 0) {
        overall = AP_PF_NOFIT;
        bad |= add_problem(problems, "NVML found no GPU on this host");
        goto finish;
    }

    /* per-GPU budgets, and the smallest among the GPUs the models use */
    gb = calloc(h->n, sizeof *gb);
    if (!gb)
        goto nomem;
    for (size_t i = 0; i < h->n; i++) {
        uint64_t by_util = (uint64_t)((double)h->gpus[i].total_bytes * m.memory_utilization);
        uint64_t avail;
        gb[i].total = h->gpus[i].total_bytes;
        gb[i].free = h->gpus[i].free_bytes;
        if (o->credit_plan)
            credit_for(o->credit_plan, i, &gb[i].credit);
        if (o->ignore_free) {
            avail = by_util;
        } else {
            avail = gb[i].free + gb[i].credit;
            if (avail < gb[i].free || avail > gb[i].total)
                avail = gb[i].total;
        }
        gb[i].budget = avail < by_util ? avail : by_util;
        if (i < need_gpus && gb[i].budget < min_budget)
            min_budget = gb[i].budget;
    }
    if (min_budget == UINT64_MAX)
        min_budget = gb[0].budget;

    facts = calloc(m.n_models ? m.n_models : 1, sizeof *facts);
    delta = calloc(m.n_models ? m.n_models : 1, sizeof *delta);
    if (!facts || !delta)
        goto nomem;
    for (size_t i = 0; i < m.n_models; i++)
        if ((rc = facts_from_json(json_object_get(json_array_get(json_object_get(mj, "models"), i), "facts"),
                                  &facts[i], err)) != AP_OK)
            goto out;

    /* Calibrate: the lock's facts are what `airpack model` prints, and the
     * planner may use facts it does not print (which tensors a runtime
     * keeps in host memory, ...). Re-run at the signed target; where a
     * model's total per GPU comes out lower than the signed plan's, the
     * difference is added to its needs on this host. */
    if (json_is_object(json_object_get(recorded, "gpu"))) {
        const json_t *rg = json_object_get(recorded, "gpu");
        ap_plan *cal = NULL;
        ap_error ce;
        uint64_t cnt;
        double mem = dbl_or(json_object_get(rg, "memory_gib"), 0);
        if (u64_of(json_object_get(rg, "count"), &cnt) && cnt > 0 && cnt <= AP_PLAN_MAX_GPUS && mem > 0 &&
            mem <= 65536) {
            m.gpu_count = cnt;
            m.gpu_memory_gib = mem;
            if (ap_plan_compute(&m, facts, &cal, &ce) == AP_OK) {
                for (size_t i = 0; i < cal->n_models && i < m.n_models; i++) {
                    uint64_t rt = 0;
                    const json_t *rm = json_array_get(json_object_get(recorded, "models"), i);
                    if (cal->models[i].planned && u64_of(json_object_get(rm, "total_per_gpu_bytes"), &rt) &&
                        rt > cal->models[i].total_per_gpu) {
                        delta[i] = rt - cal->models[i].total_per_gpu;
                        if (delta[i] > max_delta)
                            max_delta = delta[i];
                    }
                }
            }
            ap_plan_free(cal);
        }
    }

    /* re-plan: the host's GPU count, the smallest budget (less the largest
     * calibration difference, so the largest context and concurrency stay safe) */
    m.gpu_count = h->n;
    m.gpu_memory_gib = (double)(min_budget > max_delta ? min_budget - max_delta : 0) / m.memory_utilization / GIB;
    if (m.gpu_memory_gib <= 0)
        m.gpu_memory_gib = 1.0 / GIB;
    if ((rc = ap_plan_compute(&m, facts, &plan, err)) != AP_OK)
        goto out;
    /* what each GPU holds: the re-plan plus the calibration differences */
    used = calloc(h->n, sizeof *used);
    if (!used)
        goto nomem;
    for (size_t i = 0; i < h->n; i++)
        used[i] = i < plan->n_gpus ? plan->gpus[i].used_bytes : 0;
    for (size_t i = 0; i < plan->n_models; i++) {
        const ap_plan_model *pm = &plan->models[i];
        uint64_t ng = pm->tensor_parallel * (pm->pipeline_parallel ? pm->pipeline_parallel : 1);
        if (pm->planned)
            for (uint64_t k = 0; k < ng && k < h->n; k++)
                used[k] += delta[i];
    }

    /* GPUs */
    for (size_t i = 0; i < h->n; i++) {
        int fits = used[i] <= gb[i].budget;
        int64_t head = fits ? (int64_t)(gb[i].budget - used[i]) : -(int64_t)(used[i] - gb[i].budget);
        json_t *g = json_pack("{s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "index", (json_int_t)i, "name",
                              h->gpus[i].name, "total_bytes", (json_int_t)gb[i].total, "free_bytes",
                              (json_int_t)gb[i].free, "credit_bytes", (json_int_t)gb[i].credit,
                              "budget_bytes", (json_int_t)gb[i].budget, "planned_bytes",
                              (json_int_t)used[i], "headroom_bytes", (json_int_t)head, "fits", fits);
        if (!g || json_array_append_new(jg, g))
            goto nomem;
    }

    /* models */
    for (size_t i = 0; i < plan->n_models; i++) {
        const ap_plan_model *pm = &plan->models[i];
        const json_t *rec = json_array_get(json_object_get(recorded, "models"), i);
        ap_pf_verdict v;
        char msg[512] = "";
        json_t *mo, *gl = json_array();
        int gpus_fit = 1;
        uint64_t recorded_total = 0;

        if (!gl)
            goto nomem;
        uint64_t used_gpus = pm->tensor_parallel * (pm->pipeline_parallel ? pm->pipeline_parallel : 1);
        for (uint64_t k = 0; k < used_gpus && k < h->n; k++) {
            bad |= json_array_append_new(gl, json_integer((json_int_t)k));
            if (used[k] > gb[k].budget)
                gpus_fit = 0;
        }
        if (!pm->planned) {
            v = AP_PF_UNKNOWN;
            snprintf(msg, sizeof msg, "not planned: %s", pm->problem ? pm->problem : "facts missing");
        } else if (used_gpus > h->n) {
            v = AP_PF_NOFIT;
            if (used_gpus == pm->tensor_parallel)
                snprintf(msg, sizeof msg, "does not fit: tensor_parallel %" PRIu64 " needs %" PRIu64
                         " GPUs, this host has %zu", pm->tensor_parallel, used_gpus, h->n);
            else
                snprintf(msg, sizeof msg, "does not fit: tensor_parallel %" PRIu64 " x pipeline_parallel %" PRIu64
                         " needs %" PRIu64 " GPUs, this host has %zu", pm->tensor_parallel,
                         pm->pipeline_parallel, used_gpus, h->n);
        } else if (pm->fits && gpus_fit) {
            v = AP_PF_FITS;
            snprintf(msg, sizeof msg, "fits: context %" PRIu64 " x concurrency %" PRIu64,
                     pm->context, pm->concurrency);
        } else if (/* the planner's answers count every term at the point they name
                      * (activations grow with the context too), so they hold even
                      * when the KV budget at the planned point is negative */
                   ((pm->max_context >= AP_PREFLIGHT_MIN_CONTEXT ||
                     (pm->max_context > 0 && pm->max_context >= pm->context)) ||
                    pm->max_concurrency >= 1)) {
            v = AP_PF_REDUCED;
            snprintf(msg, sizeof msg, "fits only with a smaller context or concurrency: context at most %" PRIu64
                     " at concurrency %" PRIu64 ", or concurrency at most %" PRIu64 " at context %" PRIu64
                     " (planned: context %" PRIu64 " x concurrency %" PRIu64 ")",
                     pm->max_context, pm->concurrency, pm->max_concurrency, pm->context, pm->context,
                     pm->concurrency);
        } else {
            v = AP_PF_NOFIT;
            snprintf(msg, sizeof msg, "does not fit: needs %.2f GiB per GPU for weights, activations and "
                     "runtime overhead, the GPU budget is %.2f GiB",
                     (double)(pm->weights_per_gpu + pm->activation_bytes + pm->overhead_bytes + pm->others_bytes) / GIB,
                     (double)min_budget / GIB);
        }
        if (v > overall && v != AP_PF_UNKNOWN)
            overall = v;
        u64_of(json_object_get(rec, "total_per_gpu_bytes"), &recorded_total);
        mo = json_pack("{s:s,s:s,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:s}", "name", pm->name, "runtime",
                       pm->kind_name, "tensor_parallel", (json_int_t)pm->tensor_parallel, "gpus", gl,
                       "context", (json_int_t)pm->context, "concurrency", (json_int_t)pm->concurrency,
                       "recorded_bytes_per_gpu", (json_int_t)recorded_total, "needed_bytes_per_gpu",
                       (json_int_t)(pm->total_per_gpu + delta[i]), "max_context", (json_int_t)pm->max_context,
                       "max_concurrency", (json_int_t)pm->max_concurrency, "verdict",
                       ap_pf_verdict_name(v), "message", msg);
        if (!mo || json_array_append_new(jm, mo))
            goto nomem;
        if (v == AP_PF_NOFIT || v == AP_PF_REDUCED)
            bad |= add_problem(problems, "model '%s': %s", pm->name, msg);
    }
    if ((unmet = check_requires(target, h, need_gpus, reqs, problems)) < 0)
        goto nomem;
    if (unmet > 0)
        overall = AP_PF_NOFIT;

finish:
    bad |= json_object_set_new(rep, "requirements", reqs);
    reqs = NULL;
    bad |= json_object_set_new(rep, "gpus", jg);
    jg = NULL;
    bad |= json_object_set_new(rep, "models", jm);
    jm = NULL;
    bad |= json_object_set_new(rep, "problems", problems);
    problems = NULL;
    bad |= json_object_set_new(rep, "verdict", json_string(ap_pf_verdict_name(overall)));
    if (bad)
        goto nomem;
    *report = rep;
    rep = NULL;
    goto out;
nomem:
    rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
out:
    if (facts)
        for (size_t i = 0; i < m.n_models; i++)
            ap_model_facts_free(facts[i]);
    free(facts);
    free(delta);
    free(used);
    free(gb);
    ap_plan_free(plan);
    free_manifest(&m);
    json_decref(rep);
    json_decref(reqs);
    json_decref(problems);
    json_decref(jm);
    json_decref(jg);
    json_decref(host);
    return rc;
}
