/*
 * runtime.c - profile selection and helpers shared by the runtime memory
 * models (runtime.h; formulas and sources in docs/memory-planner.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/runtime.h"

uint64_t ap_rt_gib(double gib)
{
    double b = gib * 1073741824.0;
    return b <= 0 ? 0 : b >= 1.8e19 ? UINT64_MAX : (uint64_t)(b + 0.5);
}

uint64_t ap_rt_ffn_active(const ap_model_facts *f)
{
    uint64_t hidden = f->hidden.src ? f->hidden.v : 0;
    uint64_t ffn = f->ffn.src ? f->ffn.v : 4 * hidden;
    if (f->experts.v > 0 && f->experts_used.src && f->experts_used.v > 0 && f->experts_used.v < 1024)
        ffn *= f->experts_used.v;
    return ffn;
}

static long num(const char **p)
{
    long v = 0;
    int any = 0;
    while (**p >= '0' && **p <= '9' && v < 100000000) {
        v = v * 10 + (**p - '0');
        (*p)++;
        any = 1;
    }
    return any ? v : -1;
}

ap_rt_version ap_rt_version_parse(const char *s)
{
    ap_rt_version v = {0, 0, 0, 0};
    const char *p = s;
    long a;
    if (!s)
        return v;
    if (*p == 'v' || *p == 'V' || *p == 'b')
        p++;
    if ((a = num(&p)) < 0)
        return v;
    v.known = 1;
    v.major = a;
    if (*p == '.') {
        p++;
        if ((a = num(&p)) >= 0)
            v.minor = a;
        if (*p == '.') {
            p++;
            if ((a = num(&p)) >= 0)
                v.patch = a;
        }
    }
    return v;
}

int ap_rt_version_cmp(ap_rt_version a, long major, long minor, long patch)
{
    if (a.major != major)
        return a.major < major ? -1 : 1;
    if (a.minor != minor)
        return a.minor < minor ? -1 : 1;
    if (a.patch != patch)
        return a.patch < patch ? -1 : 1;
    return 0;
}

void ap_rt_model(const ap_model_facts *f, const ap_rt_in *in, ap_rt_terms *t)
{
    memset(t, 0, sizeof *t);
    switch (in->kind) {
    case AP_RT_LLAMACPP: ap_rt_llamacpp(f, in, t); break;
    case AP_RT_OLLAMA: ap_rt_ollama(f, in, t); break;
    case AP_RT_SGLANG: ap_rt_sglang(f, in, t); break;
    case AP_RT_TGI: ap_rt_tgi(f, in, t); break;
    case AP_RT_VLLM: ap_rt_vllm(f, in, t); break;
    default:
        /* triton, other, unknown: vLLM's accounting, the most conservative published one */
        ap_rt_vllm(f, in, t);
        snprintf(t->note, sizeof t->note, "no memory model for this runtime kind: vLLM's is used");
        break;
    }
}
