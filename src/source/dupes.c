/*
 * dupes.c - a model folder that holds the same weights twice (see
 * source.h): safetensors shards plus consolidated.safetensors (Mistral
 * repositories), safetensors plus the .pth files in original/ (Meta's Llama
 * repositories), GGUF plus safetensors. Each is a warning with the bytes
 * at stake and the exclude line that leaves the copy out.
 */
#include <stdio.h>
#include <string.h>

#include "source.h"

static int ends(const char *s, const char *sfx)
{
    size_t l = strlen(s), n = strlen(sfx);
    return l >= n && strcmp(s + l - n, sfx) == 0;
}

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void warn(json_t *findings, const char *subject, const char *path, uint64_t bytes,
                 const char *what, const char *exclude)
{
    char msg[1024];
    snprintf(msg, sizeof msg,
             "model folder '%s' holds the same weights twice (%s): %llu bytes (%.1f GiB) at "
             "stake; to leave the copy out, add to the model:  exclude: [\"%s\"]",
             path, what, (unsigned long long)bytes, (double)bytes / (1024.0 * 1024.0 * 1024.0),
             exclude);
    json_array_append_new(findings,
                          json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "rule",
                                    "AP-DUPLICATE-WEIGHTS", "level", "warning", "message", msg,
                                    "subject", subject, "path", subject, "pack", "airpack",
                                    "title", "a model is shipped once", "bytes",
                                    (json_int_t)bytes, "suggest", exclude));
}

void ap_input_dup_findings(const ap_input *in, const char *subject, const char *path,
                           int prefer_gguf, json_t *findings)
{
    uint64_t consolidated = 0, shards = 0, st = 0, pth = 0, gguf = 0;
    size_t n_cons = 0;
    const char *cons_name = NULL;
    char pat[256];

    if (in->kind != AP_INPUT_FOLDER && in->kind != AP_INPUT_HF)
        return;
    for (size_t i = 0; i < in->n; i++) {
        const char *r = in->files[i].rel, *b = base(r);
        uint64_t sz = in->files[i].size;
        if (ends(b, ".safetensors")) {
            st += sz;
            if (strncmp(b, "consolidated", 12) == 0) {
                consolidated += sz;
                n_cons++;
                cons_name = r;
            } else {
                shards += sz;
            }
        } else if (strncmp(r, "original/", 9) == 0 && (ends(b, ".pth") || ends(b, ".pt"))) {
            pth += sz;
        } else if (ends(b, ".gguf")) {
            gguf += sz;
        }
    }
    if (consolidated && shards) {
        snprintf(pat, sizeof pat, "%s", n_cons == 1 ? cons_name : "consolidated*.safetensors");
        warn(findings, subject, path, consolidated,
             "safetensors shards and a consolidated.safetensors", pat);
    }
    if (st && pth)
        warn(findings, subject, path, pth, "safetensors and original/*.pth", "original/");
    if (st && gguf) {
        if (prefer_gguf)
            warn(findings, subject, path, st, "GGUF and safetensors", "*.safetensors");
        else
            warn(findings, subject, path, gguf, "GGUF and safetensors", "*.gguf");
    }
}
