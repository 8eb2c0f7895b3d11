/*
 * layout.c - Ollama store and Hugging Face hub cache layouts of installed
 * models (layout.h, docs/install.md "Model layouts").
 *
 * Ollama's store, as its server reads it (server/images.go, server/manifest.go,
 * server/modelpath.go of ollama/ollama): a manifest per model and tag at
 * manifests/<registry>/<namespace>/<model>/<tag>, a Docker distribution
 * manifest v2 whose config (media type application/vnd.docker.container.
 * image.v1+json) is a ConfigV2 JSON (model_format, model_family,
 * model_families, model_type, file_type, architecture, os, rootfs with the
 * layers' digests), and whose layers are blobs at blobs/sha256-<hex> with
 * the media types application/vnd.ollama.image.{model,template,params,
 * license}. Digests are the SHA-256 of each blob's bytes; for the GGUF it is
 * the artifact's sha256 from the signed lock (not recomputed).
 */
#include "site/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "util.h"

#define MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_MODEL "application/vnd.ollama.image.model"
#define MT_TEMPLATE "application/vnd.ollama.image.template"
#define MT_PARAMS "application/vnd.ollama.image.params"
#define MT_LICENSE "application/vnd.ollama.image.license"
#define OLLAMA_TEMPLATE "{{ .Prompt }}"   /* Ollama's default: the prompt as is */

static int name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (!n || n > 128 || !strchr("abcdefghijklmnopqrstuvwxyz0123456789", s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789._-", s[i]))
            return 0;
    return !strstr(s, "..");
}

static int repo_ok(const char *s)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    size_t n = s ? strlen(s) : 0;
    if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/') || n > 96 || strstr(s, "..") ||
        s[0] == '.' || slash[1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/", s[i]))
            return 0;
    return 1;
}

static int hex64_ok(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    return strspn(s, "0123456789abcdef") == 64;
}

/* Add an entry; an entry of the same path is kept once (identical blobs). */
static int add(ap_layout *l, const char *path, const char *link, const char *content, size_t len)
{
    ap_layout_entry *nv;
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].path, path))
            return 0;
    if (!(nv = realloc(l->v, (l->n + 1) * sizeof *nv)))
        return -1;
    l->v = nv;
    memset(&l->v[l->n], 0, sizeof l->v[l->n]);
    l->v[l->n].path = strdup(path);
    if (link)
        l->v[l->n].link = strdup(link);
    else if ((l->v[l->n].content = malloc(len + 1))) {
        memcpy(l->v[l->n].content, content, len);
        l->v[l->n].content[len] = '\0';
        l->v[l->n].len = len;
    }
    l->n++;
    if (!l->v[l->n - 1].path || (link ? !l->v[l->n - 1].link : !l->v[l->n - 1].content))
        return -1;
    return 0;
}

/* A generated blob: its digest, and the entry blobs/sha256-<hex>. */
static int add_blob(ap_layout *l, const char *text, char hex[AP_SHA256_HEX_LEN + 1])
{
    uint8_t d[AP_SHA256_LEN];
    char path[256];
    if (ap_sha256_buffer(text, strlen(text), d) != AP_OK)
        return -1;
    ap_hex_encode(d, sizeof d, hex);
    snprintf(path, sizeof path, AP_LAYOUT_OLLAMA_DIR "/blobs/sha256-%s", hex);
    return add(l, path, NULL, text, strlen(text));
}

static json_t *layer(const char *mt, const char *hex, json_int_t size)
{
    char digest[80];
    snprintf(digest, sizeof digest, "sha256:%s", hex);
    return json_pack("{s:s,s:s,s:I}", "mediaType", mt, "digest", digest, "size", size);
}

/* Parameter count as Ollama shows it ("8.0B", "107K"). */
static void human_params(double n, char *out, size_t len)
{
    if (n >= 1e9)
        snprintf(out, len, "%.1fB", n / 1e9);
    else if (n >= 1e6)
        snprintf(out, len, "%.1fM", n / 1e6);
    else if (n >= 1e3)
        snprintf(out, len, "%.0fK", n / 1e3);
    else
        snprintf(out, len, "%.0f", n);
}

static const json_t *plan_model(const json_t *lock, const char *name)
{
    size_t i;
    const json_t *pm;
    json_array_foreach(json_object_get(json_object_get(json_object_get(lock, "analysis"), "plan"),
                                       "models"), i, pm) {
        const char *n = json_string_value(json_object_get(pm, "name"));
        if (n && !strcmp(n, name))
            return pm;
    }
    return NULL;
}

/* A model carried from an Ollama store (ollama://, src/source/ollama.c):
 * the bundle holds the store's own manifest (manifest.json) and every
 * layer, each checked against its digest at check time, so its blobs are
 * the artifacts (named by the sha256 the lock signs) and its manifest is
 * the carried one: the model keeps its own template, parameters, system
 * prompt and licence. 1 when the model is not such a model (or a layer
 * was left out by include/exclude), 0 when laid out, -1 out of memory. */
static int ollama_carried(ap_layout *l, const json_t *lock, const json_t *mm, const char *name)
{
    const char *kind = json_string_value(json_object_get(json_object_get(mm, "source"), "kind"));
    const json_t *art;
    const char *man = NULL;
    char prefix[300], want[400], path[512];
    size_t i, pl;

    if (!kind || strcmp(kind, "ollama") != 0 || json_object_get(mm, "include") ||
        json_object_get(mm, "exclude"))
        return 1;
    snprintf(prefix, sizeof prefix, "payload/models/%s/", name);
    snprintf(want, sizeof want, "%smanifest.json", prefix);
    pl = strlen(prefix);
    json_array_foreach(json_object_get(lock, "artifacts"), i, art) {
        const char *p = json_string_value(json_object_get(art, "path"));
        if (p && !strcmp(p, want))
            man = p;
    }
    if (!man)
        return 1;
    json_array_foreach(json_object_get(lock, "artifacts"), i, art) {
        const char *p = json_string_value(json_object_get(art, "path"));
        const char *h = json_string_value(json_object_get(art, "sha256"));
        if (!p || strncmp(p, prefix, pl) != 0 || p == man || !hex64_ok(h))
            continue;
        snprintf(path, sizeof path, AP_LAYOUT_OLLAMA_DIR "/blobs/sha256-%s", h);
        if (add(l, path, p, NULL, 0) != 0)
            return -1;
    }
    snprintf(path, sizeof path,
             AP_LAYOUT_OLLAMA_DIR "/manifests/registry.ollama.ai/library/%s/" AP_LAYOUT_OLLAMA_TAG,
             name);
    return add(l, path, man, NULL, 0) != 0 ? -1 : 0;
}

static int ollama_model(ap_layout *l, const json_t *lock, const json_t *mm)
{
    const char *name = json_string_value(json_object_get(mm, "name"));
    const json_t *facts = json_object_get(mm, "facts"), *art, *pm;
    const char *gguf = NULL, *gguf_hex = NULL, *arch, *ft, *lic;
    json_int_t gguf_size = 0;
    char prefix[300], path[512], tmpl_hex[AP_SHA256_HEX_LEN + 1], par_hex[AP_SHA256_HEX_LEN + 1],
        lic_hex[AP_SHA256_HEX_LEN + 1], cfg_hex[AP_SHA256_HEX_LEN + 1], ptype[32];
    json_t *layers = NULL, *diff = NULL, *cfg = NULL, *man = NULL;
    char *cfg_txt = NULL, *man_txt = NULL, *par_txt = NULL;
    size_t i;
    int rc = -1, have_par = 0;

    if ((rc = ollama_carried(l, lock, mm, name)) != 1)
        return rc;
    rc = -1;
    snprintf(prefix, sizeof prefix, "payload/models/%s/", name);
    json_array_foreach(json_object_get(lock, "artifacts"), i, art) {
        const char *p = json_string_value(json_object_get(art, "path"));
        size_t pl = p ? strlen(p) : 0;
        if (p && !strncmp(p, prefix, strlen(prefix)) && pl > 5 && !strcmp(p + pl - 5, ".gguf") &&
            (!gguf || strcmp(p, gguf) < 0)) {
            gguf = p;
            gguf_hex = json_string_value(json_object_get(art, "sha256"));
            gguf_size = json_integer_value(json_object_get(art, "size"));
        }
    }
    if (!gguf || !hex64_ok(gguf_hex))
        return 0; /* nothing Ollama can load (not a GGUF): no store entry */
    snprintf(path, sizeof path, AP_LAYOUT_OLLAMA_DIR "/blobs/sha256-%s", gguf_hex);
    if (add(l, path, gguf, NULL, 0) != 0)
        return -1;

    layers = json_array();
    diff = json_array();
    if (!layers || !diff)
        goto out;
    json_array_append_new(layers, layer(MT_MODEL, gguf_hex, gguf_size));
    if (add_blob(l, OLLAMA_TEMPLATE, tmpl_hex) != 0)
        goto out;
    json_array_append_new(layers, layer(MT_TEMPLATE, tmpl_hex, (json_int_t)strlen(OLLAMA_TEMPLATE)));
    pm = plan_model(lock, name);
    if (json_integer_value(json_object_get(pm, "context")) > 0) {
        json_t *par = json_pack("{s:I}", "num_ctx", json_integer_value(json_object_get(pm, "context")));
        par_txt = par ? json_dumps(par, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(par);
        if (!par_txt || add_blob(l, par_txt, par_hex) != 0)
            goto out;
        json_array_append_new(layers, layer(MT_PARAMS, par_hex, (json_int_t)strlen(par_txt)));
        have_par = 1;
    }
    lic = json_string_value(json_object_get(mm, "license"));
    if (lic && *lic) {
        if (add_blob(l, lic, lic_hex) != 0)
            goto out;
        json_array_append_new(layers, layer(MT_LICENSE, lic_hex, (json_int_t)strlen(lic)));
    }
    (void)have_par;
    for (size_t k = 0; k < json_array_size(layers); k++)
        json_array_append(diff, json_object_get(json_array_get(layers, k), "digest"));
    arch = json_string_value(json_object_get(facts, "architecture"));
    ft = json_string_value(json_object_get(facts, "file_type"));
    human_params(json_number_value(json_object_get(facts, "parameters")), ptype, sizeof ptype);
    cfg = json_pack("{s:s,s:s,s:[s],s:s,s:s,s:s,s:s,s:{s:s,s:O}}", "model_format", "gguf",
                    "model_family", arch ? arch : "", "model_families", arch ? arch : "",
                    "model_type", ptype, "file_type", ft ? ft : "", "architecture", "amd64", "os",
                    "linux", "rootfs", "type", "layers", "diff_ids", diff);
    cfg_txt = cfg ? json_dumps(cfg, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!cfg_txt || add_blob(l, cfg_txt, cfg_hex) != 0)
        goto out;
    man = json_pack("{s:i,s:s,s:o,s:O}", "schemaVersion", 2, "mediaType", MT_MANIFEST, "config",
                    layer(MT_CONFIG, cfg_hex, (json_int_t)strlen(cfg_txt)), "layers", layers);
    man_txt = man ? json_dumps(man, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!man_txt)
        goto out;
    snprintf(path, sizeof path,
             AP_LAYOUT_OLLAMA_DIR "/manifests/registry.ollama.ai/library/%s/" AP_LAYOUT_OLLAMA_TAG,
             name);
    rc = add(l, path, NULL, man_txt, strlen(man_txt));
out:
    json_decref(layers);
    json_decref(diff);
    json_decref(cfg);
    json_decref(man);
    free(cfg_txt);
    free(man_txt);
    free(par_txt);
    return rc;
}

/* models--org--name/{blobs/<sha256>, refs/main, snapshots/<rev>/<file>} */
static int hf_model(ap_layout *l, const json_t *lock, const json_t *mm)
{
    const char *name = json_string_value(json_object_get(mm, "name"));
    const char *repo = json_string_value(json_object_get(mm, "hf_cache"));
    char prefix[300], dir[300], path[1400], rev[AP_SHA256_HEX_LEN + 1];
    const json_t *art;
    size_t i, cap = 256, len = 0;
    char *ids = malloc(cap);
    uint8_t d[AP_SHA256_LEN];
    int rc = -1, any = 0;

    if (!ids)
        return -1;
    ids[0] = '\0';
    snprintf(prefix, sizeof prefix, "payload/models/%s/", name);
    snprintf(dir, sizeof dir, AP_LAYOUT_HF_DIR "/models--%s", repo);
    for (char *s = dir + strlen(AP_LAYOUT_HF_DIR "/models--"); *s; s++)
        if (*s == '/') { /* org/name -> org--name */
            memmove(s + 2, s + 1, strlen(s + 1) + 1);
            s[0] = '-';
            s[1] = '-';
            break;
        }
    /* the snapshot's revision: a digest of the model's files, stable across builds */
    json_array_foreach(json_object_get(lock, "artifacts"), i, art) {
        const char *p = json_string_value(json_object_get(art, "path"));
        const char *h = json_string_value(json_object_get(art, "sha256"));
        size_t need;
        if (!p || strncmp(p, prefix, strlen(prefix)) != 0 || !hex64_ok(h))
            continue;
        need = len + strlen(p) + 66 + 2;
        if (need > cap) {
            char *n;
            while (need > cap)
                cap *= 2;
            if (!(n = realloc(ids, cap)))
                goto out;
            ids = n;
        }
        len += (size_t)sprintf(ids + len, "%s %s\n", h, p + strlen(prefix));
        any = 1;
    }
    if (!any) {
        rc = 0;
        goto out;
    }
    if (ap_sha256_buffer(ids, len, d) != AP_OK)
        goto out;
    ap_hex_encode(d, sizeof d, rev);
    rev[40] = '\0'; /* a git-commit-sized revision */
    snprintf(path, sizeof path, "%s/refs/main", dir);
    if (add(l, path, NULL, rev, 40) != 0)
        goto out;
    json_array_foreach(json_object_get(lock, "artifacts"), i, art) {
        const char *p = json_string_value(json_object_get(art, "path"));
        const char *h = json_string_value(json_object_get(art, "sha256"));
        if (!p || strncmp(p, prefix, strlen(prefix)) != 0 || !hex64_ok(h))
            continue;
        snprintf(path, sizeof path, "%s/blobs/%s", dir, h);
        if (add(l, path, p, NULL, 0) != 0)
            goto out;
        if (snprintf(path, sizeof path, "%s/snapshots/%s/%s", dir, rev, p + strlen(prefix)) >=
            (int)sizeof path)
            continue;
        if (add(l, path, p, NULL, 0) != 0)
            goto out;
    }
    rc = 0;
out:
    free(ids);
    return rc;
}

void ap_layout_release(ap_layout *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].link);
        free(l->v[i].content);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int ap_layout_render(const json_t *lock, ap_layout *out, ap_error *err)
{
    const json_t *models = json_object_get(json_object_get(json_object_get(lock, "analysis"),
                                                           "manifest"), "models");
    const json_t *mm;
    size_t i;
    memset(out, 0, sizeof *out);
    json_array_foreach(models, i, mm) {
        const char *name = json_string_value(json_object_get(mm, "name"));
        const char *kind = json_string_value(json_object_get(json_object_get(mm, "serve"),
                                                             "runtime_kind"));
        const char *repo = json_string_value(json_object_get(mm, "hf_cache"));
        if (!name_ok(name))
            continue; /* a name that is not one of the manifest's: nothing to lay out */
        if ((kind && !strcmp(kind, "ollama") && ollama_model(out, lock, mm) != 0) ||
            (repo && repo_ok(repo) && hf_model(out, lock, mm) != 0)) {
            ap_layout_release(out);
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory (layout of model '%s')", name);
        }
    }
    return AP_OK;
}

static int mkdirs_for(const char *root, const char *rel, ap_error *err)
{
    char p[4096];
    size_t rl = strlen(root);
    if (snprintf(p, sizeof p, "%s/%s", root, rel) >= (int)sizeof p)
        return ap_error_set(err, AP_ERR_IO, "path too long: '%s'", rel);
    for (char *s = p + rl + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            return ap_error_errno(err, AP_ERR_IO, e, "cannot create folder", p);
        }
        *s = '/';
    }
    return AP_OK;
}

int ap_layout_write(const char *release_dir, const ap_layout *l, ap_error *err)
{
    char p[4096], t[4096];
    int rc;
    for (size_t i = 0; i < l->n; i++) {
        const ap_layout_entry *e = &l->v[i];
        if ((rc = mkdirs_for(release_dir, e->path, err)) != AP_OK)
            return rc;
        snprintf(p, sizeof p, "%s/%s", release_dir, e->path);
        if (e->link) {
            if (snprintf(t, sizeof t, "%s/%s", release_dir, e->link) >= (int)sizeof t)
                return ap_error_set(err, AP_ERR_IO, "path too long: '%s'", e->link);
            if (link(t, p) != 0)
                return ap_error_errno(err, AP_ERR_IO, errno, "cannot hard-link", p);
        } else {
            int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            size_t off = 0;
            if (fd < 0)
                return ap_error_errno(err, AP_ERR_IO, errno, "cannot create", p);
            while (off < e->len) {
                ssize_t w = write(fd, e->content + off, e->len - off);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    int en = errno;
                    close(fd);
                    return ap_error_errno(err, AP_ERR_IO, en, "cannot write", p);
                }
                off += (size_t)w;
            }
            if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
                int en = errno;
                close(fd);
                return ap_error_errno(err, AP_ERR_IO, en, "cannot write", p);
            }
            close(fd);
        }
    }
    return AP_OK;
}

int ap_layout_check(const char *release_dir, const ap_layout_entry *e, char *reason,
                    size_t reason_len)
{
    char p[4096], t[4096];
    struct stat st, at;
    snprintf(p, sizeof p, "%s/%s", release_dir, e->path);
    if (lstat(p, &st) != 0) {
        snprintf(reason, reason_len, "missing");
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(reason, reason_len, "not a regular file");
        return -1;
    }
    if (e->link) {
        snprintf(t, sizeof t, "%s/%s", release_dir, e->link);
        if (lstat(t, &at) != 0 || at.st_dev != st.st_dev || at.st_ino != st.st_ino) {
            snprintf(reason, reason_len, "not a hard link of '%s'", e->link);
            return -1;
        }
        return 0;
    } else {
        char *buf = NULL;
        size_t len = 0;
        ap_error er;
        int same = ap_read_file(p, 1u << 20, &buf, &len, &er) == AP_OK && len == e->len &&
                   memcmp(buf, e->content, len) == 0;
        free(buf);
        if (!same) {
            snprintf(reason, reason_len, "differs from what airpack generates from the signed lock");
            return -1;
        }
    }
    return 0;
}
