/*
 * sbom.c - CycloneDX 1.6 SBOM from the analysis document and, for a
 * bundle, its lock (see sbom.h, docs/reports.md).
 */
#include "sbom.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pins.h"
#include "policy.h"
#include "util.h"

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int add_prop(json_t *props, const char *name, const char *value)
{
    if (!value || !*value)
        return 0;
    return json_array_append_new(props, json_pack("{s:s,s:s}", "name", name, "value", value));
}

static int add_prop_int(json_t *props, const char *name, const json_t *v)
{
    char buf[64];
    if (!json_is_integer(v))
        return 0;
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return add_prop(props, name, buf);
}

/* Where an input came from (analysis.manifest.*[].source): every string
 * member as "airpack:source:KEY" (kind, repo, revision, ref, digest...). */
static int add_source_props(json_t *props, const json_t *src)
{
    const char *k;
    const json_t *v;
    int bad = 0;
    json_object_foreach((json_t *)src, k, v) {
        char name[128];
        if (!json_is_string(v))
            continue;
        snprintf(name, sizeof name, "airpack:source:%s", k);
        bad |= add_prop(props, name, json_string_value(v));
    }
    return bad;
}

static int is_hex64(const char *s);
static json_t *hash_list(const char *hex);

/* A runtime that is a container image: one `container` component per
 * image, named by its tag (or ref name), with the config digest as its
 * hash and the manifest digest and platform as properties. */
static int add_containers(json_t *comp, const json_t *src, const char *ref)
{
    const json_t *images = json_object_get(src, "images"), *img;
    json_t *subs = json_object_get(comp, "components");
    size_t i;
    int bad = 0;
    if (!json_is_array(images) || !json_array_size(images))
        return 0;
    if (!subs) {
        subs = json_array();
        bad |= json_object_set_new(comp, "components", subs);
    }
    json_array_foreach(images, i, img) {
        const char *cfg = json_string_value(json_object_get(img, "config_digest"));
        const char *tag = json_string_value(json_array_get(json_object_get(img, "repo_tags"), 0));
        const char *name = tag ? tag : json_string_value(json_object_get(img, "ref_name"));
        char bref[700];
        json_t *c, *props = json_array();
        snprintf(bref, sizeof bref, "%s/image:%zu", ref, i);
        c = json_pack("{s:s, s:s, s:s}", "type", "container", "bom-ref", bref, "name",
                      name ? name : "image");
        if (!c || !props) {
            json_decref(c);
            json_decref(props);
            return -1;
        }
        if (cfg && strncmp(cfg, "sha256:", 7) == 0 && is_hex64(cfg + 7))
            bad |= json_object_set_new(c, "hashes", hash_list(cfg + 7));
        bad |= add_prop(props, "airpack:image:config_digest", cfg);
        bad |= add_prop(props, "airpack:image:manifest_digest",
                        json_string_value(json_object_get(img, "manifest_digest")));
        bad |= add_prop(props, "airpack:image:platform",
                        json_string_value(json_object_get(img, "platform")));
        bad |= add_prop(props, "airpack:image:format", json_string_value(json_object_get(src, "kind")));
        if (json_array_size(props))
            bad |= json_object_set(c, "properties", props);
        json_decref(props);
        bad |= json_array_append_new(subs, c);
    }
    return bad;
}

static int is_hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static json_t *hash_list(const char *hex)
{
    return json_pack("[{s:s,s:s}]", "alg", "SHA-256", "content", hex);
}

/* licenses: an SPDX id we know is in the schema's list -> {license: {id}};
 * a valid expression (LicenseRef-..., AND/OR) -> [{expression}]; anything
 * else -> {license: {name}}. */
static json_t *licenses(const char *lic)
{
    if (!lic || !*lic)
        return NULL;
    if (ap_spdx_id_known(lic))
        return json_pack("[{s:{s:s}}]", "license", "id", lic);
    if (ap_license_expr_known(lic))
        return json_pack("[{s:s}]", "expression", lic);
    return json_pack("[{s:{s:s}}]", "license", "name", lic);
}

/* Files of one component: from the lock's artifacts under prefix, else
 * from its sha256sums file beside the manifest. Returns a new array of
 * {path, sha256}. */
static json_t *component_files(const json_t *analysis, const json_t *lock, const json_t *item,
                               const char *prefix)
{
    json_t *files = json_array();
    const json_t *arts = json_object_get(lock, "artifacts"), *a;
    size_t i, pl = strlen(prefix);
    if (!files)
        return NULL;
    if (lock) {
        json_array_foreach(arts, i, a) {
            const char *p = str(a, "path"), *h = str(a, "sha256");
            if (p && is_hex64(h) && strncmp(p, prefix, pl) == 0 && p[pl])
                json_array_append_new(files, json_pack("{s:s,s:s}", "path", p + pl, "sha256", h));
        }
        return files;
    }
    {
        /* No lock: the hashes the pin check computed (analysis.pins[].hashes),
         * for the pin entry of the same manifest path. */
        const json_t *pins = json_object_get(analysis, "pins"), *p;
        const char *ipath = str(item, "path");
        json_array_foreach(pins, i, p) {
            const json_t *hs = json_object_get(p, "hashes"), *h;
            size_t k;
            if (!ipath || !str(p, "path") || strcmp(str(p, "path"), ipath) != 0)
                continue;
            json_array_foreach(hs, k, h) {
                const char *hp = str(h, "path"), *hh = str(h, "sha256");
                if (!hp || !is_hex64(hh))
                    continue;
                /* a single file's pin names it by its manifest path: keep the file name */
                if (strcmp(hp, ipath) == 0 && strrchr(hp, '/'))
                    hp = strrchr(hp, '/') + 1;
                json_array_append_new(files, json_pack("{s:s,s:s}", "path", hp, "sha256", hh));
            }
            break;
        }
    }
    return files;
}

/* Hashes on the component itself (a single file) or nested file
 * components (a folder). */
static int attach_files(json_t *comp, const json_t *item, json_t *files, const char *ref)
{
    const char *pin = str(item, "sha256");
    size_t i;
    json_t *f;
    int bad = 0;
    if (is_hex64(pin) && json_array_size(files) <= 1) {
        return json_object_set_new(comp, "hashes", hash_list(pin));
    }
    if (json_array_size(files) == 1 && !json_is_true(json_object_get(item, "is_dir")) &&
        strcmp(str(item, "path_kind") ? str(item, "path_kind") : "", "folder") != 0) {
        return json_object_set_new(comp, "hashes",
                                   hash_list(str(json_array_get(files, 0), "sha256")));
    }
    if (json_array_size(files) == 0)
        return 0;
    json_t *sub = json_array();
    if (!sub)
        return -1;
    json_array_foreach(files, i, f) {
        char bref[2048];
        snprintf(bref, sizeof(bref), "%s/%s", ref, str(f, "path"));
        bad |= json_array_append_new(sub, json_pack("{s:s,s:s,s:s,s:o}", "type", "file",
                                                    "bom-ref", bref, "name", str(f, "path"),
                                                    "hashes", hash_list(str(f, "sha256"))));
    }
    bad |= json_object_set_new(comp, "components", sub);
    return bad ? -1 : 0;
}

static json_t *model_component(const json_t *analysis, const json_t *lock, const json_t *m)
{
    const char *name = str(m, "name");
    const json_t *o = json_object_get(m, "origin"), *facts = json_object_get(m, "facts");
    json_t *c, *props = json_array(), *card = NULL, *mp = json_object(), *cprops = json_array();
    json_t *files;
    char ref[600], prefix[600];
    int bad = !props || !mp || !cprops;
    snprintf(ref, sizeof(ref), "model:%s", name ? name : "?");
    snprintf(prefix, sizeof(prefix), "payload/models/%s/", name ? name : "?");
    c = json_pack("{s:s,s:s,s:s}", "type", "machine-learning-model", "bom-ref", ref, "name",
                  name ? name : "?");
    if (!c || bad)
        goto fail;
    if (str(o, "publisher"))
        bad |= json_object_set_new(c, "publisher", json_string(str(o, "publisher")));
    if (str(m, "license"))
        bad |= json_object_set_new(c, "licenses", licenses(str(m, "license")));
    files = component_files(analysis, lock, m, prefix);
    bad |= !files || attach_files(c, m, files, ref);
    json_decref(files);
    /* model card: parameters from the model facts */
    if (str(facts, "architecture"))
        bad |= json_object_set_new(mp, "modelArchitecture", json_string(str(facts, "architecture")));
    bad |= add_prop_int(cprops, "airpack:parameters", json_object_get(facts, "parameters"));
    bad |= add_prop(cprops, "airpack:parameters_declared", str(m, "parameters"));
    bad |= add_prop_int(cprops, "airpack:weights_bytes", json_object_get(facts, "weights_bytes"));
    bad |= add_prop_int(cprops, "airpack:layers", json_object_get(facts, "layers"));
    bad |= add_prop_int(cprops, "airpack:hidden_size", json_object_get(facts, "hidden_size"));
    bad |= add_prop_int(cprops, "airpack:heads", json_object_get(facts, "heads"));
    bad |= add_prop_int(cprops, "airpack:kv_heads", json_object_get(facts, "kv_heads"));
    bad |= add_prop_int(cprops, "airpack:context_length", json_object_get(facts, "context_length"));
    bad |= add_prop_int(cprops, "airpack:vocab_size", json_object_get(facts, "vocab_size"));
    bad |= add_prop_int(cprops, "airpack:experts", json_object_get(facts, "experts"));
    bad |= add_prop(cprops, "airpack:format", str(facts, "format") ? str(facts, "format")
                                                                   : str(m, "format"));
    bad |= add_prop(cprops, "airpack:dtype", str(facts, "dtype"));
    bad |= add_prop(cprops, "airpack:file_type", str(facts, "file_type"));
    bad |= add_prop(cprops, "airpack:quantization", str(m, "quantization") ? str(m, "quantization")
                                                                           : str(facts, "quant_method"));
    if (json_object_size(mp) || json_array_size(cprops)) {
        card = json_object();
        bad |= !card;
        if (card && json_object_size(mp))
            bad |= json_object_set(card, "modelParameters", mp);
        if (card && json_array_size(cprops))
            bad |= json_object_set(card, "properties", cprops);
        if (card)
            bad |= json_object_set_new(c, "modelCard", card);
    }
    /* origin and provenance as properties */
    bad |= add_prop(props, "airpack:origin:publisher", str(o, "publisher"));
    bad |= add_prop(props, "airpack:origin:jurisdiction", str(o, "jurisdiction"));
    bad |= add_prop(props, "airpack:origin:source", str(o, "source"));
    bad |= add_prop(props, "airpack:path", str(m, "path"));
    bad |= add_source_props(props, json_object_get(m, "source"));
    bad |= add_prop(props, "airpack:sha256sums", str(m, "sha256sums"));
    bad |= add_prop(props, "airpack:serve:runtime", str(json_object_get(m, "serve"), "runtime"));
    if (json_array_size(props))
        bad |= json_object_set(c, "properties", props);
    if (str(o, "source") && (!strncmp(str(o, "source"), "https://", 8) ||
                             !strncmp(str(o, "source"), "http://", 7)))
        bad |= json_object_set_new(c, "externalReferences",
                                   json_pack("[{s:s,s:s}]", "type", "distribution", "url",
                                             str(o, "source")));
    if (bad)
        goto fail;
    json_decref(props);
    json_decref(mp);
    json_decref(cprops);
    return c;
fail:
    json_decref(c);
    json_decref(props);
    json_decref(mp);
    json_decref(cprops);
    return NULL;
}

static json_t *runtime_component(const json_t *analysis, const json_t *lock, const json_t *r)
{
    const char *name = str(r, "name");
    json_t *c, *props = json_array(), *files;
    char ref[600], prefix[600];
    int bad = !props;
    snprintf(ref, sizeof(ref), "runtime:%s", name ? name : "?");
    snprintf(prefix, sizeof(prefix), "payload/runtimes/%s/", name ? name : "?");
    c = json_pack("{s:s,s:s,s:s}", "type", "application", "bom-ref", ref, "name",
                  name ? name : "?");
    if (!c || bad)
        goto fail;
    if (str(r, "version"))
        bad |= json_object_set_new(c, "version", json_string(str(r, "version")));
    if (str(r, "license"))
        bad |= json_object_set_new(c, "licenses", licenses(str(r, "license")));
    files = component_files(analysis, lock, r, prefix);
    bad |= !files || attach_files(c, r, files, ref);
    json_decref(files);
    bad |= add_prop(props, "airpack:runtime:kind", str(r, "kind"));
    bad |= add_prop(props, "airpack:runtime:listen", str(r, "listen"));
    bad |= add_prop(props, "airpack:path", str(r, "path"));
    bad |= add_source_props(props, json_object_get(r, "source"));
    bad |= add_containers(c, json_object_get(r, "source"), ref);
    if (json_array_size(props))
        bad |= json_object_set(c, "properties", props);
    if (bad)
        goto fail;
    json_decref(props);
    return c;
fail:
    json_decref(c);
    json_decref(props);
    return NULL;
}

static json_t *file_component(const json_t *analysis, const json_t *lock, const json_t *fl,
                              size_t i)
{
    const char *path = str(fl, "path"), *target = str(fl, "target");
    json_t *c, *files;
    char ref[600], prefix[600];
    int bad = 0;
    snprintf(ref, sizeof(ref), "file:%zu:%s", i, path ? path : "?");
    snprintf(prefix, sizeof(prefix), "payload/files/%s", target ? target : (path ? path : "?"));
    c = json_pack("{s:s,s:s,s:s}", "type", "file", "bom-ref", ref, "name", path ? path : "?");
    if (!c)
        return NULL;
    files = component_files(analysis, lock, fl, prefix);
    bad |= !files || attach_files(c, fl, files, ref);
    json_decref(files);
    if (target)
        bad |= json_object_set_new(c, "properties",
                                   json_pack("[{s:s,s:s}]", "name", "airpack:target", "value",
                                             target));
    if (bad) {
        json_decref(c);
        return NULL;
    }
    return c;
}

/* RFC 4122 name-based UUID (version 5, SHA-1) in the URL namespace. */
static int uuid_v5(const char *name, char out[37])
{
    static const unsigned char ns[16] = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
                                         0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, ns, sizeof(ns)) &&
             EVP_DigestUpdate(ctx, name, strlen(name)) && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen < 16)
        return -1;
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0], md[1],
             md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12],
             md[13], md[14], md[15]);
    return 0;
}

static int timestamp(const json_t *lock, char *buf, size_t cap)
{
    const char *created = str(json_object_get(lock, "metadata"), "created");
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (created && *created) {
        snprintf(buf, cap, "%s", created);
        return 1;
    }
    if (sde && *sde) {
        char *end;
        long long v = strtoll(sde, &end, 10);
        time_t t = (time_t)v;
        struct tm tm;
        if (*end == '\0' && v >= 0 && gmtime_r(&t, &tm) &&
            strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
            return 1;
    }
    return 0;
}

int ap_sbom_build(const json_t *analysis, const json_t *lock, json_t **out, ap_error *err)
{
    const json_t *man, *md, *t, *it;
    json_t *bom = NULL, *comps = json_array(), *deps = json_array(), *top = json_array();
    json_t *mprops = json_array(), *tprops = json_array();
    char ref[600], uuid[37], urn[64], ts[64];
    char *seed = NULL;
    size_t i;
    int rc = AP_OK, bad = !comps || !deps || !top || !mprops || !tprops;
    *out = NULL;
    if (!analysis && lock)
        analysis = json_object_get(lock, "analysis");
    man = json_object_get(analysis, "manifest");
    if (!json_is_object(man)) {
        rc = ap_error_set(err, AP_ERR_INPUT, "no manifest in the analysis document");
        goto done;
    }
    md = json_object_get(man, "metadata");
    t = json_object_get(man, "target");
    snprintf(ref, sizeof(ref), "deployment:%s", str(md, "name") ? str(md, "name") : "?");
    json_array_foreach(json_object_get(man, "models"), i, it) {
        json_t *c = model_component(analysis, lock, it);
        bad |= !c || json_array_append_new(comps, c);
        if (c)
            bad |= json_array_append_new(top, json_string(str(c, "bom-ref")));
        if (c && str(json_object_get(it, "serve"), "runtime")) {
            char rref[600];
            snprintf(rref, sizeof(rref), "runtime:%s", str(json_object_get(it, "serve"), "runtime"));
            bad |= json_array_append_new(deps, json_pack("{s:s,s:[s]}", "ref", str(c, "bom-ref"),
                                                         "dependsOn", rref));
        }
    }
    json_array_foreach(json_object_get(man, "runtimes"), i, it) {
        json_t *c = runtime_component(analysis, lock, it);
        bad |= !c || json_array_append_new(comps, c);
        if (c)
            bad |= json_array_append_new(top, json_string(str(c, "bom-ref")));
    }
    json_array_foreach(json_object_get(man, "files"), i, it) {
        json_t *c = file_component(analysis, lock, it, i);
        bad |= !c || json_array_append_new(comps, c);
        if (c)
            bad |= json_array_append_new(top, json_string(str(c, "bom-ref")));
    }
    bad |= json_array_insert_new(deps, 0, json_pack("{s:s,s:O}", "ref", ref, "dependsOn", top));
    if (bad) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* serial number: a v5 UUID of the deployment and every hash in it */
    seed = json_dumps(comps, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    {
        size_t n = (seed ? strlen(seed) : 0) + 512;
        char *name = malloc(n);
        if (!seed || !name) {
            free(name);
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto done;
        }
        snprintf(name, n, "airpack:%s:%s:%lld:%s", str(md, "name") ? str(md, "name") : "",
                 str(md, "version") ? str(md, "version") : "",
                 (long long)json_integer_value(json_object_get(md, "sequence")), seed);
        if (uuid_v5(name, uuid) != 0) {
            free(name);
            rc = ap_error_set(err, AP_ERR_INTERNAL, "cannot compute the SBOM serial number");
            goto done;
        }
        free(name);
    }
    snprintf(urn, sizeof(urn), "urn:uuid:%s", uuid);
    bad |= add_prop(tprops, "airpack:sequence", NULL);
    bad |= add_prop_int(tprops, "airpack:sequence", json_object_get(md, "sequence"));
    bad |= add_prop(tprops, "airpack:site", str(t, "site"));
    bad |= add_prop(tprops, "airpack:region", str(t, "region"));
    bad |= add_prop(tprops, "airpack:owner", str(md, "owner"));
    bad |= add_prop(mprops, "airpack:source", lock ? "bundle" : "manifest");
    bad |= add_prop(mprops, "airpack:manifest", str(analysis, "manifest_file"));
    bom = json_pack("{s:s,s:s,s:s,s:i,s:{s:{s:[{s:s,s:s,s:s}]},s:{s:s,s:s,s:s,s:s},s:O},"
                    "s:O,s:O}",
                    "bomFormat", "CycloneDX", "specVersion", "1.6", "serialNumber", urn,
                    "version", 1, "metadata", "tools", "components", "type", "application",
                    "name", "airpack", "version",
                    str(json_object_get(analysis, "tool"), "version")
                        ? str(json_object_get(analysis, "tool"), "version")
                        : AIRPACK_VERSION,
                    "component", "type", "application", "bom-ref", ref, "name",
                    str(md, "name") ? str(md, "name") : "?", "version",
                    str(md, "version") ? str(md, "version") : "0", "properties", mprops,
                    "components", comps, "dependencies", deps);
    if (!bom) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto done;
    }
    {
        json_t *mdj = json_object_get(bom, "metadata"), *comp = json_object_get(mdj, "component");
        if (str(md, "description"))
            bad |= json_object_set_new(comp, "description", json_string(str(md, "description")));
        if (json_array_size(tprops))
            bad |= json_object_set(comp, "properties", tprops);
        if (timestamp(lock, ts, sizeof(ts)))
            bad |= json_object_set_new(mdj, "timestamp", json_string(ts));
    }
    if (bad) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto done;
    }
    *out = bom;
    bom = NULL;
done:
    free(seed);
    json_decref(bom);
    json_decref(comps);
    json_decref(deps);
    json_decref(top);
    json_decref(mprops);
    json_decref(tprops);
    return rc;
}
