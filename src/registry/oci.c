/*
 * oci.c - the OCI mapping of a bundle (see oci.h, docs/oci.md): references,
 * the manifests built from a lock, and the parsers for what a registry
 * serves (hostile: every size capped, every field type-checked).
 */
#include "registry/oci.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- references ---- */

int ap_oci_is_ref(const char *s)
{
    return s && strncmp(s, "oci://", 6) == 0;
}

int ap_oci_digest_valid(const char *s)
{
    if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != AP_OCI_DIGEST_LEN)
        return 0;
    for (const char *p = s + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

void ap_oci_digest_of(const void *buf, size_t len, char out[AP_OCI_DIGEST_LEN + 1])
{
    uint8_t h[AP_SHA256_LEN];
    if (ap_sha256_buffer(buf, len, h) != AP_OK)
        memset(h, 0, sizeof h);
    memcpy(out, "sha256:", 7);
    ap_hex_encode(h, AP_SHA256_LEN, out + 7);
}

static int repo_component_ok(const char *s, size_t n)
{
    /* [a-z0-9]+([._-][a-z0-9]+)* (the distribution spec's path component) */
    int prev_sep = 1;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            prev_sep = 0;
        } else if (c == '.' || c == '_' || c == '-') {
            if (prev_sep)
                return 0;
            prev_sep = 1;
        } else {
            return 0;
        }
    }
    return !prev_sep;
}

int ap_oci_ref_parse(const char *s, ap_oci_ref *out, ap_error *err)
{
    const char *p, *slash, *at, *colon;
    size_t n;

    memset(out, 0, sizeof *out);
    if (!ap_oci_is_ref(s))
        return ap_error_set(err, AP_ERR_INPUT, "'%s' is not an oci:// reference", s ? s : "");
    p = s + 6;
    slash = strchr(p, '/');
    if (!slash || slash == p || (size_t)(slash - p) >= sizeof out->host)
        return ap_error_set(err, AP_ERR_INPUT, "reference '%s': expected oci://HOST[:PORT]/REPO[:TAG]",
                            s);
    memcpy(out->host, p, (size_t)(slash - p));
    for (const char *h = out->host; *h; h++)
        if (!(isalnum((unsigned char)*h) || *h == '.' || *h == '-' || *h == ':' || *h == '[' ||
              *h == ']'))
            return ap_error_set(err, AP_ERR_INPUT, "reference '%s': bad host '%s'", s, out->host);
    p = slash + 1;
    at = strchr(p, '@');
    if (at) {
        if (!ap_oci_digest_valid(at + 1))
            return ap_error_set(err, AP_ERR_INPUT,
                                "reference '%s': a digest is sha256: and 64 lowercase hex digits", s);
        snprintf(out->digest, sizeof out->digest, "%s", at + 1);
        n = (size_t)(at - p);
    } else {
        n = strlen(p);
    }
    /* a tag follows the last ':' after the last '/' */
    colon = NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '/')
            colon = NULL;
        else if (p[i] == ':')
            colon = p + i;
    }
    if (colon) {
        size_t tn = n - (size_t)(colon - p) - 1;
        if (at)
            return ap_error_set(err, AP_ERR_INPUT, "reference '%s': give a tag or a digest, not both", s);
        if (tn == 0 || tn > 128)
            return ap_error_set(err, AP_ERR_INPUT, "reference '%s': empty or long tag", s);
        for (size_t i = 0; i < tn; i++) {
            char c = colon[1 + i];
            if (!(isalnum((unsigned char)c) || c == '_' || (i > 0 && (c == '.' || c == '-'))))
                return ap_error_set(err, AP_ERR_INPUT, "reference '%s': bad tag", s);
        }
        memcpy(out->tag, colon + 1, tn);
        n = (size_t)(colon - p);
    } else if (!at) {
        strcpy(out->tag, "latest");
    }
    if (n == 0 || n >= sizeof out->repo)
        return ap_error_set(err, AP_ERR_INPUT, "reference '%s': no repository", s);
    memcpy(out->repo, p, n);
    for (const char *c = out->repo;;) {
        const char *e = strchr(c, '/');
        size_t cn = e ? (size_t)(e - c) : strlen(c);
        if (!repo_component_ok(c, cn))
            return ap_error_set(err, AP_ERR_INPUT,
                                "reference '%s': bad repository '%s' (lowercase letters, digits, "
                                "'.', '_', '-' between components)",
                                s, out->repo);
        if (!e)
            break;
        c = e + 1;
    }
    return AP_OK;
}

/* ---- building the manifests ---- */

static const char *model_name_of(const char *path, size_t *len)
{
    static const char pre[] = "payload/models/";
    const char *n, *e;
    if (strncmp(path, pre, sizeof pre - 1) != 0)
        return NULL;
    n = path + sizeof pre - 1;
    e = strchr(n, '/');
    if (!e)
        return NULL;
    *len = (size_t)(e - n);
    return n;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

const char *ap_oci_layer_media_type(const ap_artifact *a)
{
    static const char *const weights[] = {".gguf", ".safetensors", ".bin", ".pt", ".pth",
                                          ".onnx", ".ggml", ".ckpt", ".h5", ".msgpack", NULL};
    const char *base;
    if (a->role != AP_ROLE_MODEL)
        return AP_OCI_MT_FILE;
    base = strrchr(a->path, '/');
    base = base ? base + 1 : a->path;
    for (size_t i = 0; weights[i]; i++)
        if (ends_with(base, weights[i]))
            return AP_MP_MT_WEIGHT;
    if (strncasecmp(base, "readme", 6) == 0 || strncasecmp(base, "license", 7) == 0 ||
        strncasecmp(base, "licence", 7) == 0 || ends_with(base, ".md") ||
        ends_with(base, ".txt") || ends_with(base, ".pdf"))
        return AP_MP_MT_DOC;
    return AP_MP_MT_WCONFIG;
}

static int doc_set(ap_reg_doc *d, json_t *j, const char *mt, ap_error *err)
{
    d->buf = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!d->buf)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    d->len = strlen(d->buf);
    d->media_type = mt;
    ap_oci_digest_of(d->buf, d->len, d->digest);
    return AP_OK;
}

static json_t *desc(const char *mt, const char *digest, uint64_t size)
{
    return json_pack("{s:s,s:s,s:I}", "mediaType", mt, "digest", digest, "size", (json_int_t)size);
}

static void artifact_digest(const ap_artifact *a, char out[AP_OCI_DIGEST_LEN + 1])
{
    memcpy(out, "sha256:", 7);
    ap_hex_encode(a->sha256, AP_SHA256_LEN, out + 7);
}

/* The analysis' manifest entry of model `name`, or NULL. */
static json_t *model_entry(const ap_lock *lock, const char *name)
{
    json_t *models = json_object_get(json_object_get(json_object_get(lock->json, "analysis"),
                                                     "manifest"),
                                     "models");
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        json_t *n = json_object_get(m, "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
            return m;
    }
    return NULL;
}

static void param_size(json_int_t n, char out[32])
{
    static const char scale[] = {'K', 'M', 'B', 'T', 'Q'};
    double v = (double)n;
    int s = -1;
    while (v >= 1000.0 && s < 4) {
        v /= 1000.0;
        s++;
    }
    if (s < 0)
        snprintf(out, 32, "%lld", (long long)n);
    else
        snprintf(out, 32, "%.1f%c", v, scale[s]);
}

static json_t *model_config(const ap_lock *lock, const char *name, json_t *diff_ids)
{
    json_t *m = model_entry(lock, name), *facts = json_object_get(m, "facts");
    json_t *d = json_object(), *c = json_object(), *fs, *v;

    json_object_set_new(d, "createdAt", json_string(lock->created));
    json_object_set_new(d, "name", json_string(name));
    if (json_is_string(v = json_object_get(facts, "name")))
        json_object_set(d, "title", v);
    if (json_is_string(v = json_object_get(json_object_get(m, "origin"), "publisher")))
        json_object_set(d, "vendor", v);
    if (json_is_string(v = json_object_get(m, "license")))
        json_object_set_new(d, "licenses", json_pack("[O]", v));
    if (json_is_string(v = json_object_get(json_object_get(m, "origin"), "revision")))
        json_object_set(d, "revision", v);

    if (json_is_string(v = json_object_get(facts, "architecture")))
        json_object_set(c, "architecture", v);
    if (json_is_string(v = json_object_get(facts, "format")) ||
        json_is_string(v = json_object_get(m, "format")))
        json_object_set(c, "format", v);
    if (json_is_integer(v = json_object_get(facts, "parameters")) && json_integer_value(v) > 0) {
        char ps[32];
        param_size(json_integer_value(v), ps);
        json_object_set_new(c, "paramSize", json_string(ps));
    }
    if (json_is_string(v = json_object_get(facts, "dtype"))) {
        const char *t = json_string_value(v);
        char low[32];
        size_t i;
        if (strcmp(t, "F32") == 0)
            t = "fp32";
        else if (strcmp(t, "F16") == 0)
            t = "fp16";
        for (i = 0; t[i] && i < sizeof low - 1; i++)
            low[i] = (char)tolower((unsigned char)t[i]);
        low[i] = 0;
        json_object_set_new(c, "precision", json_string(low));
    }
    if (json_is_string(v = json_object_get(facts, "quant_method")))
        json_object_set(c, "quantization", v);
    fs = json_pack("{s:s,s:o}", "type", "layers", "diff_ids", diff_ids);
    return json_pack("{s:o,s:o,s:o}", "descriptor", d, "config", c, "modelfs", fs);
}

void ap_oci_content_release(ap_oci_content *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_models; i++) {
        free(c->models[i].name);
        free(c->models[i].config.buf);
        free(c->models[i].manifest.buf);
    }
    free(c->models);
    free(c->bundle.buf);
    free(c->index.buf);
    memset(c, 0, sizeof *c);
}

static int build_model(ap_oci_content *c, const ap_lock *lock, size_t from, size_t to,
                       const char *name, ap_error *err)
{
    ap_oci_model *m = &c->models[c->n_models];
    json_t *layers = json_array(), *diff = json_array(), *man;
    int rc;
    size_t plen = strlen("payload/models/") + strlen(name) + 1;

    memset(m, 0, sizeof *m);
    if (!(m->name = strdup(name)) || !layers || !diff) {
        json_decref(layers);
        json_decref(diff);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    c->n_models++;
    for (size_t i = from; i < to; i++) {
        const ap_artifact *a = &lock->artifacts[i];
        char dg[AP_OCI_DIGEST_LEN + 1];
        json_t *l;
        artifact_digest(a, dg);
        l = desc(ap_oci_layer_media_type(a), dg, a->size);
        json_object_set_new(l, "annotations",
                            json_pack("{s:s,s:s}", AP_MP_ANN_FILEPATH, a->path + plen,
                                      AP_OCI_ANN_TITLE, a->path + plen));
        json_array_append_new(layers, l);
        json_array_append_new(diff, json_string(dg));
    }
    if ((rc = doc_set(&m->config, model_config(lock, name, diff), AP_MP_MT_CONFIG, err))) {
        json_decref(layers);
        return rc;
    }
    man = json_pack("{s:i,s:s,s:s,s:o,s:o,s:{s:s,s:s}}", "schemaVersion", 2, "mediaType",
                    AP_OCI_MT_MANIFEST, "artifactType", AP_MP_AT_MANIFEST, "config",
                    desc(AP_MP_MT_CONFIG, m->config.digest, m->config.len), "layers", layers,
                    "annotations", AP_OCI_ANN_TITLE, name, "org.opencontainers.image.created",
                    lock->created);
    return doc_set(&m->manifest, man, AP_OCI_MT_MANIFEST, err);
}

int ap_oci_content_build(const char *lock_buf, size_t lock_len, const ap_oci_sig *sigs,
                         size_t n_sigs, const ap_lock *lock, ap_oci_content *c, ap_error *err)
{
    json_t *layers, *manifests, *l, *idx, *man;
    char seq[32];
    int rc;
    size_t i;

    memset(c, 0, sizeof *c);
    c->lock_buf = lock_buf;
    c->lock_len = lock_len;
    if (n_sigs == 0 || n_sigs > AP_OCI_MAX_SIGS)
        return ap_error_set(err, AP_ERR_CHECK, "a bundle has 1 to %d signature entries, not %zu",
                            AP_OCI_MAX_SIGS, n_sigs);
    ap_oci_digest_of(lock_buf, lock_len, c->lock_digest);
    for (size_t k = 0; k < n_sigs; k++) {
        c->sigs[k] = sigs[k];
        ap_oci_digest_of(sigs[k].buf, sigs[k].len, c->sigs[k].digest);
    }
    c->n_sigs = n_sigs;
    if (!(c->models = calloc(lock->n_artifacts ? lock->n_artifacts : 1, sizeof *c->models)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");

    /* one ModelPack artifact per model (the lock keeps a model's files together) */
    for (i = 0; i < lock->n_artifacts;) {
        size_t nl, j;
        const char *n = model_name_of(lock->artifacts[i].path, &nl);
        char name[AP_LOCK_MAX_PATH + 1];
        if (lock->artifacts[i].role != AP_ROLE_MODEL || !n) {
            i++;
            continue;
        }
        memcpy(name, n, nl);
        name[nl] = 0;
        for (j = i + 1; j < lock->n_artifacts; j++) {
            size_t ml;
            const char *mn = model_name_of(lock->artifacts[j].path, &ml);
            if (lock->artifacts[j].role != AP_ROLE_MODEL || !mn || ml != nl ||
                memcmp(mn, name, nl) != 0)
                break;
        }
        {
            /* a model with files a delta bundle leaves out gets no
             * ModelPack artifact (it would be incomplete) */
            int partial = 0;
            for (size_t k = i; k < j; k++)
                partial |= lock->artifacts[k].in_base;
            if (partial) {
                i = j;
                continue;
            }
        }
        for (size_t k = 0; k < c->n_models; k++)
            if (strcmp(c->models[k].name, name) == 0) {
                ap_oci_content_release(c);
                return ap_error_set(err, AP_ERR_CHECK, "lock: the files of model '%s' are not "
                                                       "together", name);
            }
        if ((rc = build_model(c, lock, i, j, name, err))) {
            ap_oci_content_release(c);
            return rc;
        }
        i = j;
    }

    /* the bundle manifest: config = lock, layers = signature + every artifact */
    layers = json_array();
    for (i = 0; i < c->n_sigs; i++) {
        l = desc(AP_OCI_MT_SIG, c->sigs[i].digest, c->sigs[i].len);
        json_object_set_new(l, "annotations", json_pack("{s:s,s:s}", AP_OCI_ANN_PATH,
                                                        c->sigs[i].name, AP_OCI_ANN_TITLE,
                                                        c->sigs[i].name));
        json_array_append_new(layers, l);
    }
    for (i = 0; i < lock->n_artifacts; i++) {
        const ap_artifact *a = &lock->artifacts[i];
        char dg[AP_OCI_DIGEST_LEN + 1];
        if (a->in_base)
            continue; /* not in a delta bundle's tar: not its content either */
        artifact_digest(a, dg);
        l = desc(ap_oci_layer_media_type(a), dg, a->size);
        json_object_set_new(l, "annotations", json_pack("{s:s,s:s}", AP_OCI_ANN_PATH, a->path,
                                                        AP_OCI_ANN_TITLE, a->path));
        json_array_append_new(layers, l);
    }
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)lock->sequence);
    man = json_pack("{s:i,s:s,s:s,s:o,s:o,s:{s:s,s:s,s:s,s:s}}", "schemaVersion", 2, "mediaType",
                    AP_OCI_MT_MANIFEST, "artifactType", AP_OCI_AT_BUNDLE, "config",
                    desc(AP_OCI_MT_LOCK, c->lock_digest, lock_len), "layers", layers,
                    "annotations", "org.airpack.name", lock->name, "org.airpack.version",
                    lock->version, "org.airpack.sequence", seq,
                    "org.opencontainers.image.created", lock->created);
    if ((rc = doc_set(&c->bundle, man, AP_OCI_MT_MANIFEST, err))) {
        ap_oci_content_release(c);
        return rc;
    }

    /* the index the tag names: the bundle first, then the models */
    manifests = json_array();
    l = desc(AP_OCI_MT_MANIFEST, c->bundle.digest, c->bundle.len);
    json_object_set_new(l, "artifactType", json_string(AP_OCI_AT_BUNDLE));
    json_object_set_new(l, "annotations", json_pack("{s:s}", AP_OCI_ANN_KIND, "bundle"));
    json_array_append_new(manifests, l);
    for (i = 0; i < c->n_models; i++) {
        l = desc(AP_OCI_MT_MANIFEST, c->models[i].manifest.digest, c->models[i].manifest.len);
        json_object_set_new(l, "artifactType", json_string(AP_MP_AT_MANIFEST));
        json_object_set_new(l, "annotations",
                            json_pack("{s:s,s:s}", AP_OCI_ANN_KIND, "model", AP_OCI_ANN_MODEL,
                                      c->models[i].name));
        json_array_append_new(manifests, l);
    }
    idx = json_pack("{s:i,s:s,s:s,s:o,s:{s:s,s:s,s:s,s:s}}", "schemaVersion", 2, "mediaType",
                    AP_OCI_MT_INDEX, "artifactType", AP_OCI_AT_BUNDLE, "manifests", manifests,
                    "annotations", "org.airpack.name", lock->name, "org.airpack.version",
                    lock->version, "org.airpack.sequence", seq,
                    "org.opencontainers.image.created", lock->created);
    if ((rc = doc_set(&c->index, idx, AP_OCI_MT_INDEX, err))) {
        ap_oci_content_release(c);
        return rc;
    }
    return AP_OK;
}

/* ---- parsing (hostile input) ---- */

static int bad(ap_error *err, const char *name, const char *fmt, const char *what)
    AP_PRINTF(3, 0);
static int bad(ap_error *err, const char *name, const char *fmt, const char *what)
{
    char msg[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(msg, sizeof msg, fmt, what);
#pragma GCC diagnostic pop
    return ap_error_set(err, AP_ERR_CHECK, "registry document '%s': %s", name, msg);
}

static json_t *load_json(const char *name, const void *buf, size_t len, ap_error *err)
{
    json_error_t je;
    json_t *j;
    if (len > AP_OCI_MANIFEST_MAX) {
        bad(err, name, "%s", "larger than 32 MiB");
        return NULL;
    }
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        ap_error_set(err, AP_ERR_CHECK, "registry document '%s': line %d, column %d: %s", name,
                     je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        bad(err, name, "%s", "not a JSON object");
        return NULL;
    }
    return j;
}

static int get_desc(const char *name, json_t *d, const char *what, ap_reg_desc *out,
                    uint64_t max, ap_error *err)
{
    json_t *dg = json_object_get(d, "digest"), *sz = json_object_get(d, "size");
    if (!json_is_object(d))
        return bad(err, name, "%s is not an object", what);
    if (!json_is_string(dg) || !ap_oci_digest_valid(json_string_value(dg)))
        return bad(err, name, "%s has no sha256 digest", what);
    if (!json_is_integer(sz) || json_integer_value(sz) < 0 ||
        (uint64_t)json_integer_value(sz) > max)
        return bad(err, name, "%s has a bad size", what);
    snprintf(out->digest, sizeof out->digest, "%s", json_string_value(dg));
    out->size = (uint64_t)json_integer_value(sz);
    return AP_OK;
}

static const char *ann(json_t *d, const char *key)
{
    json_t *v = json_object_get(json_object_get(d, "annotations"), key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int mt_is(json_t *o, const char *mt)
{
    json_t *v = json_object_get(o, "mediaType");
    return json_is_string(v) && strcmp(json_string_value(v), mt) == 0;
}

void ap_oci_top_release(ap_oci_top *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_models; i++)
        free(t->model_names[i]);
    free(t->model_names);
    free(t->models);
    memset(t, 0, sizeof *t);
}

int ap_oci_top_parse(const char *name, const void *buf, size_t len, ap_oci_top *out,
                     ap_error *err)
{
    json_t *j, *ms, *e;
    size_t i, nb = 0;
    int rc = AP_OK;

    memset(out, 0, sizeof *out);
    if (!(j = load_json(name, buf, len, err)))
        return err ? err->status : AP_ERR_CHECK;
    if (!json_is_integer(json_object_get(j, "schemaVersion")) ||
        json_integer_value(json_object_get(j, "schemaVersion")) != 2) {
        rc = bad(err, name, "%s", "schemaVersion is not 2");
        goto out;
    }
    if (mt_is(j, AP_OCI_MT_MANIFEST)) {
        out->is_index = 0; /* a bundle manifest named directly (by digest) */
        goto out;
    }
    if (!mt_is(j, AP_OCI_MT_INDEX)) {
        rc = bad(err, name, "%s", "neither an OCI image index nor an OCI manifest");
        goto out;
    }
    out->is_index = 1;
    ms = json_object_get(j, "manifests");
    if (!json_is_array(ms) || json_array_size(ms) == 0 ||
        json_array_size(ms) > AP_OCI_MAX_INDEX) {
        rc = bad(err, name, "%s", "no manifests, or more than 1024");
        goto out;
    }
    out->models = calloc(json_array_size(ms), sizeof *out->models);
    out->model_names = calloc(json_array_size(ms), sizeof *out->model_names);
    if (!out->models || !out->model_names) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(ms, i, e)
    {
        const char *kind = ann(e, AP_OCI_ANN_KIND);
        ap_reg_desc d;
        if ((rc = get_desc(name, e, "an index entry", &d, AP_OCI_MANIFEST_MAX, err)))
            goto out;
        if (!mt_is(e, AP_OCI_MT_MANIFEST)) {
            rc = bad(err, name, "%s", "an index entry is not an OCI manifest");
            goto out;
        }
        if (kind && strcmp(kind, "bundle") == 0) {
            if (nb++) {
                rc = bad(err, name, "%s", "more than one bundle manifest");
                goto out;
            }
            out->bundle = d;
        } else if (kind && strcmp(kind, "model") == 0) {
            const char *mn = ann(e, AP_OCI_ANN_MODEL);
            if (!mn || !*mn || strlen(mn) > 255 || strchr(mn, '/')) {
                rc = bad(err, name, "%s", "a model entry without a model name");
                goto out;
            }
            for (size_t k = 0; k < out->n_models; k++)
                if (strcmp(out->model_names[k], mn) == 0) {
                    rc = bad(err, name, "model '%s' listed twice", mn);
                    goto out;
                }
            if (!(out->model_names[out->n_models] = strdup(mn))) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            out->models[out->n_models++] = d;
        } else {
            rc = bad(err, name, "%s", "an index entry that is neither the bundle nor a model "
                                      "(extra content)");
            goto out;
        }
    }
    if (nb == 0)
        rc = bad(err, name, "%s", "no entry annotated org.airpack.kind=bundle");
out:
    json_decref(j);
    if (rc != AP_OK)
        ap_oci_top_release(out);
    return rc;
}

void ap_oci_bundle_manifest_release(ap_oci_bundle_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_sigs; i++)
        free(m->sigs[i].path);
    for (size_t i = 0; i < m->n_layers; i++)
        free(m->layers[i].path);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

int ap_oci_bundle_manifest_parse(const char *name, const void *buf, size_t len,
                                 ap_oci_bundle_manifest *out, ap_error *err)
{
    json_t *j, *ls, *l;
    size_t i;
    int rc = AP_OK;

    memset(out, 0, sizeof *out);
    if (!(j = load_json(name, buf, len, err)))
        return err ? err->status : AP_ERR_CHECK;
    if (!mt_is(j, AP_OCI_MT_MANIFEST) || !json_is_integer(json_object_get(j, "schemaVersion")) ||
        json_integer_value(json_object_get(j, "schemaVersion")) != 2) {
        rc = bad(err, name, "%s", "not an OCI manifest (schemaVersion 2)");
        goto out;
    }
    if (!mt_is(json_object_get(j, "config"), AP_OCI_MT_LOCK)) {
        rc = bad(err, name, "%s", "the config is not an airpack lock: not a bundle manifest");
        goto out;
    }
    if ((rc = get_desc(name, json_object_get(j, "config"), "the lock", &out->lock,
                       AP_LOCK_MAX_BYTES, err)))
        goto out;
    ls = json_object_get(j, "layers");
    if (!json_is_array(ls) || json_array_size(ls) < 1 ||
        json_array_size(ls) > AP_LOCK_MAX_ARTIFACTS + 1) {
        rc = bad(err, name, "%s", "no layers");
        goto out;
    }
    while (out->n_sigs < json_array_size(ls) && mt_is(json_array_get(ls, out->n_sigs), AP_OCI_MT_SIG)) {
        json_t *sl = json_array_get(ls, out->n_sigs);
        ap_reg_desc d;
        const char *p = ann(sl, AP_OCI_ANN_PATH);
        ap_oci_layer *o = &out->sigs[out->n_sigs];
        if (out->n_sigs == AP_OCI_MAX_SIGS) {
            rc = bad(err, name, "%s", "more than 16 signature layers");
            goto out;
        }
        if ((rc = get_desc(name, sl, "a signature", &d, AP_KEYFILE_MAX, err)))
            goto out;
        if (!p && out->n_sigs == 0)
            p = AP_LOCK_SIG_NAME;
        if (!p || strlen(p) >= AP_OCI_SIG_NAME_MAX ||
            (out->n_sigs == 0) != (strcmp(p, AP_LOCK_SIG_NAME) == 0) ||
            strncmp(p, AP_LOCK_NAME ".", sizeof AP_LOCK_NAME) != 0 ||
            strlen(p) < 8 || strcmp(p + strlen(p) - 8, ".minisig") != 0 ||
            strchr(p, '/') ||
            (out->n_sigs > 0 && strcmp(out->sigs[out->n_sigs - 1].path, p) >= 0 &&
             out->n_sigs > 1)) {
            rc = bad(err, name, "%s", "a signature layer with a bad entry name");
            goto out;
        }
        if (!(o->path = strdup(p))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(o->digest, d.digest, sizeof d.digest);
        o->size = d.size;
        out->n_sigs++;
    }
    if (out->n_sigs == 0) {
        rc = bad(err, name, "%s", "the first layer is not the lock's signature");
        goto out;
    }
    if (!(out->layers = calloc(json_array_size(ls), sizeof *out->layers))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(ls, i, l)
    {
        ap_reg_desc d;
        const char *p;
        if (i < out->n_sigs)
            continue;
        if ((rc = get_desc(name, l, "a layer", &d, UINT64_MAX >> 1, err)))
            goto out;
        p = ann(l, AP_OCI_ANN_PATH);
        if (!p || strlen(p) > AP_LOCK_MAX_PATH) {
            rc = bad(err, name, "%s", "a layer without an org.airpack.path annotation");
            goto out;
        }
        if (!(out->layers[out->n_layers].path = strdup(p))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(out->layers[out->n_layers].digest, d.digest, sizeof d.digest);
        out->layers[out->n_layers].size = d.size;
        out->n_layers++;
    }
out:
    json_decref(j);
    if (rc != AP_OK)
        ap_oci_bundle_manifest_release(out);
    return rc;
}

int ap_oci_bundle_check(const char *name, const ap_oci_bundle_manifest *m, const ap_lock *lock,
                        ap_error *err)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < lock->n_artifacts; i++)
        n += !lock->artifacts[i].in_base;
    if (m->n_layers != n)
        return ap_error_set(err, AP_ERR_CHECK,
                            "registry manifest '%s' does not match the lock: %zu layers for %zu "
                            "artifacts (%s)",
                            name, m->n_layers, n,
                            m->n_layers > n ? "extra layer" : "missing layer");
    for (size_t i = 0; i < m->n_layers; i++, k++) {
        const ap_artifact *a;
        char dg[AP_OCI_DIGEST_LEN + 1];
        while (lock->artifacts[k].in_base)
            k++;
        a = &lock->artifacts[k];
        artifact_digest(a, dg);
        if (strcmp(m->layers[i].path, a->path) != 0 || strcmp(m->layers[i].digest, dg) != 0 ||
            m->layers[i].size != a->size)
            return ap_error_set(err, AP_ERR_CHECK,
                                "registry manifest '%s' does not match the lock: layer %zu is "
                                "'%s' %s (%llu bytes), the lock has '%s' %s (%llu bytes)",
                                name, i + 1, m->layers[i].path, m->layers[i].digest,
                                (unsigned long long)m->layers[i].size, a->path, dg,
                                (unsigned long long)a->size);
    }
    return AP_OK;
}

struct mcmp {
    const ap_lock *lock;
    size_t plen;
};

static int cmp_model_idx(const void *a, const void *b, void *ctx)
{
    const struct mcmp *m = ctx;
    return strcmp(m->lock->artifacts[*(const size_t *)a].path + m->plen,
                  m->lock->artifacts[*(const size_t *)b].path + m->plen);
}

int ap_oci_model_check(const char *name, const void *buf, size_t len, const char *model,
                       const ap_lock *lock, ap_error *err)
{
    size_t *idx = NULL, n_idx = 0;
    struct mcmp mc;
    json_t *j, *ls, *l;
    size_t i, want = 0, plen;
    char prefix[AP_LOCK_MAX_PATH + 32];
    unsigned char *seen = NULL;
    int rc = AP_OK;

    if (!(j = load_json(name, buf, len, err)))
        return err ? err->status : AP_ERR_CHECK;
    snprintf(prefix, sizeof prefix, "payload/models/%s/", model);
    plen = strlen(prefix);
    if (!mt_is(json_object_get(j, "config"), AP_MP_MT_CONFIG)) {
        rc = bad(err, name, "model '%s': the config is not a ModelPack config", model);
        goto out;
    }
    for (i = 0; i < lock->n_artifacts; i++)
        if (lock->artifacts[i].role == AP_ROLE_MODEL &&
            strncmp(lock->artifacts[i].path, prefix, plen) == 0)
            want++;
    /* the model's files sorted by their path in the model: one lookup per
     * layer (a hostile manifest and lock cannot make this quadratic) */
    if (!(idx = malloc((want ? want : 1) * sizeof *idx))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < lock->n_artifacts; i++)
        if (lock->artifacts[i].role == AP_ROLE_MODEL &&
            strncmp(lock->artifacts[i].path, prefix, plen) == 0)
            idx[n_idx++] = i;
    mc.lock = lock;
    mc.plen = plen;
    qsort_r(idx, n_idx, sizeof *idx, cmp_model_idx, &mc);
    ls = json_object_get(j, "layers");
    if (!json_is_array(ls) || json_array_size(ls) != want || want == 0) {
        rc = ap_error_set(err, AP_ERR_CHECK,
                          "registry manifest '%s' of model '%s' does not match the lock: %zu "
                          "layers for %zu files",
                          name, model, json_is_array(ls) ? json_array_size(ls) : 0, want);
        goto out;
    }
    if (!(seen = calloc(lock->n_artifacts, 1))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(ls, i, l)
    {
        ap_reg_desc d;
        const char *fp = ann(l, AP_MP_ANN_FILEPATH);
        size_t k;
        if ((rc = get_desc(name, l, "a model layer", &d, UINT64_MAX >> 1, err)))
            goto out;
        if (!fp) {
            rc = bad(err, name, "%s", "a model layer without org.cncf.model.filepath");
            goto out;
        }
        int ok = 0;
        size_t lo = 0, hi = n_idx;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(lock->artifacts[idx[mid]].path + plen, fp);
            if (c == 0) {
                const ap_artifact *a;
                char dg[AP_OCI_DIGEST_LEN + 1];
                k = idx[mid];
                a = &lock->artifacts[k];
                artifact_digest(a, dg);
                if (!seen[k] && strcmp(dg, d.digest) == 0 && d.size == a->size)
                    ok = seen[k] = 1;
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (!ok) {
            rc = ap_error_set(err, AP_ERR_CHECK,
                              "registry manifest '%s' of model '%s' does not match the lock: "
                              "layer '%s' (%s)",
                              name, model, fp, d.digest);
            goto out;
        }
    }
out:
    free(seen);
    free(idx);
    json_decref(j);
    return rc;
}
