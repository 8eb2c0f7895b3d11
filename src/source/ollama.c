/*
 * ollama.c - an Ollama store's model as an input (see ollama.h, source.h).
 * The manifest format and media types were read from Ollama's
 * documentation and source (server/internal/manifest); no code copied.
 */
#include "ollama.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../util.h"
#include "source.h"

char *ap_ollama_store_dir(void)
{
    const char *e = getenv("OLLAMA_MODELS");
    if (e && *e)
        return strdup(e);
    if ((e = getenv("HOME")) && *e)
        return ap_path_join(e, ".ollama/models");
    return NULL;
}

static int part_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128 || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

int ap_ollama_ref(const char *ref, char **manifest_path, char **display, ap_error *err)
{
    const char *r = ref + 9, *slash, *colon, *name;
    char ns[160], nm[160], tag[160], rel[600];
    char *store;

    *manifest_path = *display = NULL;
    if (strncmp(ref, "ollama://", 9) != 0)
        return ap_error_set(err, AP_ERR_INPUT, "'%s' is not an ollama:// reference", ref);
    slash = strchr(r, '/');
    if (slash && strchr(slash + 1, '/'))
        goto bad;
    if (slash) {
        if (!part_ok(r, (size_t)(slash - r)))
            goto bad;
        snprintf(ns, sizeof ns, "%.*s", (int)(slash - r), r);
        name = slash + 1;
    } else {
        snprintf(ns, sizeof ns, "%s", AP_OLLAMA_DEFAULT_NS);
        name = r;
    }
    colon = strchr(name, ':');
    if (!part_ok(name, colon ? (size_t)(colon - name) : strlen(name)) ||
        (colon && !part_ok(colon + 1, strlen(colon + 1))))
        goto bad;
    snprintf(nm, sizeof nm, "%.*s", (int)(colon ? (size_t)(colon - name) : strlen(name)), name);
    snprintf(tag, sizeof tag, "%s", colon ? colon + 1 : AP_OLLAMA_DEFAULT_TAG);
    if (!(store = ap_ollama_store_dir()))
        return ap_error_set(err, AP_ERR_INPUT, "'%s': no Ollama store (set OLLAMA_MODELS)", ref);
    snprintf(rel, sizeof rel, "manifests/%s/%s/%s/%s", AP_OLLAMA_REGISTRY, ns, nm, tag);
    *manifest_path = ap_path_join(store, rel);
    free(store);
    if (!*manifest_path || asprintf(display, "%s%s%s:%s", slash ? ns : "", slash ? "/" : "", nm,
                                    tag) < 0) {
        free(*manifest_path);
        *manifest_path = NULL;
        *display = NULL;
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    return AP_OK;
bad:
    return ap_error_set(err, AP_ERR_INPUT,
                        "'%s' is not an Ollama model reference (expected "
                        "ollama://NAME[:TAG] or ollama://NAMESPACE/NAME[:TAG])",
                        ref);
}

static int parse_desc(const char *name, json_t *d, int is_config, ap_ollama_layer *l,
                      ap_error *err)
{
    json_t *mt = json_object_get(d, "mediaType"), *dg = json_object_get(d, "digest"),
           *sz = json_object_get(d, "size");
    const char *ds = json_string_value(dg), *ms = json_string_value(mt);
    uint8_t tmp[AP_SHA256_LEN];
    memset(l, 0, sizeof *l);
    if (!json_is_object(d))
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "a layer is not an object");
    if (!ms || !*ms || strlen(ms) >= sizeof l->media_type)
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                               "a layer has no valid 'mediaType'");
    if (!ds || strncmp(ds, "sha256:", 7) != 0 || strlen(ds) != 7 + AP_SHA256_HEX_LEN ||
        !ap_hex_decode(ds + 7, tmp, sizeof tmp))
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                               "layer '%s' has no valid digest (expected sha256:<64 hex>)", ms);
    for (const char *q = ds + 7; *q; q++)
        if (*q >= 'A' && *q <= 'F')
            return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                                   "layer '%s': digest not in lowercase", ms);
    if (!json_is_integer(sz) || json_integer_value(sz) < 0)
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                               "layer '%s' has no valid 'size'", ms);
    snprintf(l->media_type, sizeof l->media_type, "%s", ms);
    memcpy(l->hex, ds + 7, AP_SHA256_HEX_LEN + 1);
    l->size = (uint64_t)json_integer_value(sz);
    l->is_config = is_config;
    return AP_OK;
}

int ap_ollama_manifest_parse(const char *name, const void *buf, size_t len,
                             ap_ollama_manifest *out, ap_error *err)
{
    json_error_t je;
    json_t *root, *cfg, *layers, *d;
    size_t i;
    int rc = AP_OK;

    memset(out, 0, sizeof *out);
    out->model = -1;
    if (len > AP_OLLAMA_MAX_MANIFEST)
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "manifest larger than %u bytes",
                               AP_OLLAMA_MAX_MANIFEST);
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ap_error_set_at(err, AP_ERR_INPUT, name, (unsigned)je.line, (unsigned)je.column,
                               "not a JSON manifest: %s", je.text);
    cfg = json_object_get(root, "config");
    layers = json_object_get(root, "layers");
    if (!json_is_object(root) || !json_is_array(layers)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "not an image manifest (no 'layers')");
        goto out;
    }
    if (json_array_size(layers) + 1 > AP_OLLAMA_MAX_LAYERS) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "more than %d layers",
                             AP_OLLAMA_MAX_LAYERS - 1);
        goto out;
    }
    out->layers = calloc(json_array_size(layers) + 1, sizeof *out->layers);
    if (!out->layers) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (cfg && !json_is_null(cfg)) {
        if ((rc = parse_desc(name, cfg, 1, &out->layers[out->n], err)))
            goto out;
        out->n++;
    }
    json_array_foreach(layers, i, d) {
        ap_ollama_layer *l = &out->layers[out->n];
        if ((rc = parse_desc(name, d, 0, l, err)))
            goto out;
        if (strcmp(l->media_type, AP_OLLAMA_MT_MODEL) == 0) {
            if (out->model >= 0) {
                rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "more than one model layer");
                goto out;
            }
            out->model = (int)out->n;
        }
        out->n++;
    }
out:
    json_decref(root);
    if (rc)
        ap_ollama_manifest_release(out);
    return rc;
}

void ap_ollama_manifest_release(ap_ollama_manifest *m)
{
    if (!m)
        return;
    free(m->layers);
    m->layers = NULL;
    m->n = 0;
    m->model = -1;
}

const char *ap_ollama_layer_name(const ap_ollama_layer *l, char *buf, size_t len)
{
    static const struct {
        const char *mt, *name;
    } names[] = {
        {AP_OLLAMA_MT_MODEL, "model.gguf"},     {AP_OLLAMA_MT_TEMPLATE, "template"},
        {AP_OLLAMA_MT_SYSTEM, "system"},        {AP_OLLAMA_MT_PARAMS, "params.json"},
        {AP_OLLAMA_MT_LICENSE, "license"},      {AP_OLLAMA_MT_ADAPTER, "adapter.gguf"},
        {AP_OLLAMA_MT_PROJECTOR, "projector.gguf"}, {AP_OLLAMA_MT_MESSAGES, "messages.json"},
    };
    if (l->is_config) {
        snprintf(buf, len, "config.json");
        return buf;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(l->media_type, names[i].mt) == 0) {
            snprintf(buf, len, "%s", names[i].name);
            return buf;
        }
    snprintf(buf, len, "blobs/sha256-%s", l->hex);
    return buf;
}

const char *ap_license_from_text(const char *text, size_t len)
{
    static const struct {
        const char *needle, *id;
    } known[] = {
        {"LLAMA 4 COMMUNITY LICENSE", "LicenseRef-llama4-community"},
        {"LLAMA 3.3 COMMUNITY LICENSE", "LicenseRef-llama3.3-community"},
        {"LLAMA 3.2 COMMUNITY LICENSE", "LicenseRef-llama3.2-community"},
        {"LLAMA 3.1 COMMUNITY LICENSE", "LicenseRef-llama3.1-community"},
        {"META LLAMA 3 COMMUNITY LICENSE", "LicenseRef-llama3-community"},
        {"LLAMA 2 COMMUNITY LICENSE", "LicenseRef-llama2-community"},
        {"Gemma Terms of Use", "LicenseRef-gemma"},
        {"Tongyi Qianwen LICENSE", "LicenseRef-qwen"},
        {"Qwen LICENSE AGREEMENT", "LicenseRef-qwen"},
        {"DEEPSEEK LICENSE AGREEMENT", "LicenseRef-deepseek"},
        {"Apache License", "Apache-2.0"},
        {"MIT License", "MIT"},
        {"Permission is hereby granted, free of charge", "MIT"},
    };
    size_t scan = len < 4096 ? len : 4096; /* the title is near the top */
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        size_t nl = strlen(known[i].needle);
        for (size_t k = 0; k + nl <= scan; k++)
            if (strncasecmp(text + k, known[i].needle, nl) == 0) {
                if (!strcmp(known[i].id, "Apache-2.0") && !memmem(text, len, "Version 2.0", 11) &&
                    !memmem(text, len, "version 2.0", 11))
                    break;
                return known[i].id;
            }
    }
    return NULL;
}

/* The first non-empty line of a text (title), into buf. */
static void first_line(const char *t, size_t len, char *buf, size_t blen)
{
    size_t i = 0, j = 0;
    while (i < len && (t[i] == '\n' || t[i] == '\r' || t[i] == ' ' || t[i] == '\t'))
        i++;
    while (i < len && t[i] != '\n' && t[i] != '\r' && j + 1 < blen) {
        unsigned char c = (unsigned char)t[i++];
        buf[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    while (j > 0 && buf[j - 1] == ' ')
        j--;
    buf[j] = '\0';
}

static int load_manifest(const char *ref, char **mpath, char **disp, char **buf, size_t *len,
                         ap_ollama_manifest *om, ap_error *err)
{
    struct stat st;
    int rc;
    *buf = NULL;
    if ((rc = ap_ollama_ref(ref, mpath, disp, err)))
        return rc;
    if (lstat(*mpath, &st) != 0)
        return ap_error_set(err, AP_ERR_INPUT,
                            "'%s' is not in the Ollama store (looked for '%s'; set "
                            "OLLAMA_MODELS)",
                            ref, *mpath);
    if (!S_ISREG(st.st_mode))
        return ap_error_set_at(err, AP_ERR_INPUT, *mpath, 0, 0,
                               "the manifest is not a regular file");
    if ((rc = ap_read_file(*mpath, AP_OLLAMA_MAX_MANIFEST, buf, len, err)))
        return rc;
    return ap_ollama_manifest_parse(*mpath, *buf, *len, om, err);
}

/* The blob of a layer: a regular file of the declared size. */
static int layer_blob(const char *store, const ap_ollama_layer *l, const char *ref, char **out,
                      ap_error *err)
{
    char rel[100];
    struct stat st;
    snprintf(rel, sizeof rel, "blobs/sha256-%s", l->hex);
    if (!(*out = ap_path_join(store, rel)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (lstat(*out, &st) != 0)
        return ap_error_set_at(err, AP_ERR_INPUT, *out, 0, 0,
                               "layer '%s' of '%s' is missing from the store", l->media_type, ref);
    if (!S_ISREG(st.st_mode))
        return ap_error_set_at(err, AP_ERR_INPUT, *out, 0, 0,
                               "layer '%s' of '%s' is not a regular file", l->media_type, ref);
    if ((uint64_t)st.st_size != l->size)
        return ap_error_set_at(err, AP_ERR_INPUT, *out, 0, 0,
                               "layer '%s' of '%s' is %llu bytes, its manifest says %llu",
                               l->media_type, ref, (unsigned long long)st.st_size,
                               (unsigned long long)l->size);
    return AP_OK;
}

int ap_ollama_resolve(const char *ref, char **abs, ap_error *err)
{
    char *mpath = NULL, *disp = NULL, *buf = NULL, *store = NULL;
    size_t len = 0;
    ap_ollama_manifest om;
    int rc;
    *abs = NULL;
    memset(&om, 0, sizeof om);
    if ((rc = load_manifest(ref, &mpath, &disp, &buf, &len, &om, err)))
        goto out;
    if (om.model < 0) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, mpath, 0, 0,
                             "'%s' has no model layer (%s)", ref, AP_OLLAMA_MT_MODEL);
        goto out;
    }
    if (!(store = ap_ollama_store_dir())) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = layer_blob(store, &om.layers[om.model], ref, abs, err);
    if (rc) {
        free(*abs);
        *abs = NULL;
    }
out:
    ap_ollama_manifest_release(&om);
    free(mpath);
    free(disp);
    free(buf);
    free(store);
    return rc;
}

int ap_ollama_walk(const ap_mpath *p, ap_input *in, ap_error *err)
{
    char *mpath = NULL, *disp = NULL, *buf = NULL, *store = NULL, *lic = NULL;
    size_t len = 0, lic_len = 0;
    ap_ollama_manifest om;
    const char *why;
    int rc;
    char mhex[AP_SHA256_HEX_LEN + 1];
    uint8_t md[AP_SHA256_LEN];

    in->kind = AP_INPUT_OLLAMA;
    memset(&om, 0, sizeof om);
    if ((rc = load_manifest(p->path, &mpath, &disp, &buf, &len, &om, err)))
        goto out;
    if (om.model < 0) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, mpath, 0, 0, "'%s' has no model layer (%s)",
                             p->path, AP_OLLAMA_MT_MODEL);
        goto out;
    }
    if (!(store = ap_ollama_store_dir())) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = ap_sha256_buffer(buf, len, md))) {
        rc = ap_error_set(err, rc, "cannot hash '%s'", mpath);
        goto out;
    }
    ap_hex_encode(md, sizeof md, mhex);
    /* the manifest itself, so the site can rebuild the store */
    if (ap_input_filter(p, "manifest.json", &why))
        rc = ap_input_add(in, "manifest.json", mpath, 0, NULL, (uint64_t)len, err);
    for (size_t i = 0; rc == AP_OK && i < om.n; i++) {
        const ap_ollama_layer *l = &om.layers[i];
        char name[128], *blob = NULL;
        ap_ollama_layer_name(l, name, sizeof name);
        if ((rc = layer_blob(store, l, p->path, &blob, err))) {
            free(blob);
            break;
        }
        if (ap_input_find(in, name)) {
            /* a second layer of the same kind: by digest */
            snprintf(name, sizeof name, "blobs/sha256-%s", l->hex);
        }
        if (!ap_input_filter(p, name, &why))
            rc = ap_input_skip_add(in, name, why, l->size, err);
        else
            rc = ap_input_add(in, name, blob, 0, l->hex, l->size, err);
        if (rc == AP_OK && strcmp(l->media_type, AP_OLLAMA_MT_LICENSE) == 0 && !lic &&
            l->size <= AP_OLLAMA_MAX_LICENSE)
            rc = ap_read_file(blob, AP_OLLAMA_MAX_LICENSE, &lic, &lic_len, err);
        if (rc == AP_OK && (int)i == om.model && !(in->facts_path = strdup(blob)))
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        free(blob);
        ap_input_sort(in); /* ap_input_find needs the order */
    }
    if (rc)
        goto out;
    in->source = json_pack("{s:s, s:s, s:s, s:s}", "kind", "ollama", "name", disp,
                           "manifest_sha256", mhex, "model_digest", "");
    if (!in->source) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    {
        char d[80];
        snprintf(d, sizeof d, "sha256:%s", om.layers[om.model].hex);
        json_object_set_new(in->source, "model_digest", json_string(d));
    }
    if (lic) {
        char title[160];
        const char *id = ap_license_from_text(lic, lic_len);
        first_line(lic, lic_len, title, sizeof title);
        if (title[0])
            json_object_set_new(in->source, "license_title", json_string(title));
        if (id)
            json_object_set_new(in->source, "license", json_string(id));
        if (ap_sha256_buffer(lic, lic_len, md) == AP_OK) {
            char h[AP_SHA256_HEX_LEN + 1];
            ap_hex_encode(md, sizeof md, h);
            json_object_set_new(in->source, "license_sha256", json_string(h));
        }
    }
out:
    ap_ollama_manifest_release(&om);
    free(mpath);
    free(disp);
    free(buf);
    free(store);
    free(lic);
    return rc;
}
