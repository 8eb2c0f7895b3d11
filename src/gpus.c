/*
 * gpus.c - the GPU catalogue loader (see gpus.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data.h"
#include "gpus.h"
#include "util.h"
#include "yamltree.h"

void ap_gpu_catalog_free(ap_gpu_catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        ap_gpu *g = &c->gpus[i];
        free(g->name);
        for (size_t k = 0; k < g->n_aliases; k++)
            free(g->aliases[k]);
        free(g->aliases);
        free(g->label);
        free(g->vendor);
        free(g->source);
    }
    free(c->gpus);
    free(c->file);
    free(c);
}

static int dup_opt(const ap_ydoc *doc, const ap_ynode *map, const char *key, char **out, ap_error *err)
{
    ap_ynode *v = ap_ymap_get(map, key);
    const char *s;
    int rc;
    *out = NULL;
    if (!v)
        return AP_OK;
    if ((rc = ap_y_string(doc, v, key, &s, err)))
        return rc;
    *out = strdup(s);
    return *out ? AP_OK : ap_error_set(err, AP_ERR_NOMEM, "out of memory");
}

static int parse_gpu(const ap_ydoc *doc, const ap_ynode *m, ap_gpu *g, ap_error *err)
{
    static const char *const keys[] = {"name", "aliases", "label", "vendor", "memory_gb",
                                       "usable_gib", "source", NULL};
    ap_ynode *v;
    int rc;

    if ((rc = ap_y_expect(doc, m, AP_Y_MAP, "a GPU entry", err)) ||
        (rc = ap_y_check_keys(doc, m, keys, "a GPU entry", err)))
        return rc;
    if ((rc = ap_y_require(doc, m, "name", "a GPU entry", &v, err)))
        return rc;
    if ((rc = dup_opt(doc, m, "name", &g->name, err)) || (rc = dup_opt(doc, m, "label", &g->label, err)) ||
        (rc = dup_opt(doc, m, "vendor", &g->vendor, err)) || (rc = dup_opt(doc, m, "source", &g->source, err)))
        return rc;
    if ((rc = ap_y_require(doc, m, "memory_gb", "a GPU entry", &v, err)) ||
        (rc = ap_y_double(doc, v, "memory_gb", &g->memory_gb, err)))
        return rc;
    if ((rc = ap_y_require(doc, m, "usable_gib", "a GPU entry", &v, err)) ||
        (rc = ap_y_double(doc, v, "usable_gib", &g->usable_gib, err)))
        return rc;
    if (!(g->usable_gib > 0 && g->usable_gib < 1e6))
        return ap_y_error(doc, v, err, "'usable_gib' must be a positive number of GiB");
    if (!(g->memory_gb > 0 && g->memory_gb < 1e6))
        return ap_y_error(doc, ap_ymap_get(m, "memory_gb"), err, "'memory_gb' must be a positive number of GB");
    v = ap_ymap_get(m, "aliases");
    if (v) {
        if ((rc = ap_y_expect(doc, v, AP_Y_SEQ, "'aliases'", err)))
            return rc;
        g->aliases = calloc(v->n ? v->n : 1, sizeof *g->aliases);
        if (!g->aliases)
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < v->n; i++) {
            const char *s;
            if ((rc = ap_y_string(doc, v->items[i], "aliases", &s, err)))
                return rc;
            if (!(g->aliases[i] = strdup(s)))
                return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            g->n_aliases++;
        }
    }
    return AP_OK;
}

int ap_gpu_catalog_parse(const char *name, const void *buf, size_t len, ap_gpu_catalog **out,
                         ap_error *err)
{
    ap_ydoc *doc = NULL;
    ap_gpu_catalog *c = NULL;
    ap_ynode *list;
    static const char *const top[] = {"version", "gpus", NULL};
    int rc;

    *out = NULL;
    if ((rc = ap_yaml_load_buffer(name, buf, len, NULL, &doc, err)))
        return rc;
    c = calloc(1, sizeof *c);
    if (!c || !(c->file = strdup(name))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!doc->root) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "empty GPU catalogue");
        goto out;
    }
    if ((rc = ap_y_expect(doc, doc->root, AP_Y_MAP, "the GPU catalogue", err)) ||
        (rc = ap_y_check_keys(doc, doc->root, top, "the GPU catalogue", err)) ||
        (rc = ap_y_require(doc, doc->root, "gpus", "the GPU catalogue", &list, err)) ||
        (rc = ap_y_expect(doc, list, AP_Y_SEQ, "'gpus'", err)))
        goto out;
    if (list->n > AP_GPU_CATALOG_MAX) {
        rc = ap_y_error(doc, list, err, "more than %d GPUs", AP_GPU_CATALOG_MAX);
        goto out;
    }
    c->gpus = calloc(list->n ? list->n : 1, sizeof *c->gpus);
    if (!c->gpus) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < list->n; i++) {
        c->n++;
        if ((rc = parse_gpu(doc, list->items[i], &c->gpus[i], err)))
            goto out;
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(c->gpus[j].name, c->gpus[i].name) == 0) {
                rc = ap_y_error(doc, list->items[i], err, "duplicate GPU '%s'", c->gpus[i].name);
                goto out;
            }
    }
    *out = c;
    c = NULL;
out:
    ap_gpu_catalog_free(c);
    ap_ydoc_free(doc);
    return rc;
}

int ap_gpu_catalog_load(ap_gpu_catalog **out, ap_error *err)
{
    const char *env = getenv("AIRPACK_GPU_CATALOG");
    *out = NULL;
    if (env && *env) {
        char *buf = NULL;
        size_t len;
        int rc = ap_read_file(env, 4u << 20, &buf, &len, err);
        if (rc)
            return ap_error_prefix(err, "GPU catalogue (AIRPACK_GPU_CATALOG)");
        rc = ap_gpu_catalog_parse(env, buf, len, out, err);
        free(buf);
        return rc;
    }
    {
        size_t len;
        const char *data = ap_data_get("gpus.yaml", &len);
        if (!data)
            return ap_error_set(err, AP_ERR_INTERNAL, "the built-in GPU catalogue is missing");
        return ap_gpu_catalog_parse("gpus.yaml (built in)", data, len, out, err);
    }
}

const ap_gpu *ap_gpu_find(const ap_gpu_catalog *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n; i++) {
        if (strcasecmp(c->gpus[i].name, name) == 0)
            return &c->gpus[i];
        for (size_t k = 0; k < c->gpus[i].n_aliases; k++)
            if (strcasecmp(c->gpus[i].aliases[k], name) == 0)
                return &c->gpus[i];
    }
    return NULL;
}

const char *ap_gpu_suggest(const ap_gpu_catalog *c, const char *name)
{
    const char *cand[AP_GPU_CATALOG_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; c && i < c->n && n < AP_GPU_CATALOG_MAX; i++)
        cand[n++] = c->gpus[i].name;
    cand[n] = NULL;
    return name ? ap_suggest(name, cand) : NULL;
}
