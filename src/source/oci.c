/*
 * oci.c - container images as runtime inputs (see oci.h, source.h).
 * Formats read from the OCI image spec (image-layout.md, image-index.md,
 * manifest.md) and the docker-archive layout podman and docker write.
 */
#include "oci.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../util.h"
#include "../walk.h"
#include "source.h"

/* ---- parsers ------------------------------------------------------------ */

static int parse_desc(const char *name, json_t *d, ap_oci_desc *o, ap_error *err)
{
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    const char *dg = json_string_value(json_object_get(d, "digest"));
    json_t *sz = json_object_get(d, "size");
    uint8_t tmp[AP_SHA256_LEN];
    memset(o, 0, sizeof *o);
    if (!json_is_object(d))
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "a descriptor is not an object");
    if (!dg || strncmp(dg, "sha256:", 7) != 0 || strlen(dg) != 7 + AP_SHA256_HEX_LEN ||
        !ap_hex_decode(dg + 7, tmp, sizeof tmp))
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                               "descriptor digest '%.80s' is not sha256:<64 hex>", dg ? dg : "");
    for (const char *q = dg + 7; *q; q++)
        if (*q >= 'A' && *q <= 'F')
            return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                                   "descriptor digest '%.80s' is not in lowercase", dg);
    if (!json_is_integer(sz) || json_integer_value(sz) < 0)
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                               "descriptor '%s' has no valid 'size'", dg);
    if (mt && strlen(mt) >= sizeof o->media_type)
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "media type too long");
    snprintf(o->media_type, sizeof o->media_type, "%s", mt ? mt : "");
    memcpy(o->hex, dg + 7, AP_SHA256_HEX_LEN + 1);
    o->size = (uint64_t)json_integer_value(sz);
    o->annotations = json_is_object(json_object_get(d, "annotations"))
                         ? json_object_get(d, "annotations") : NULL;
    o->platform = json_is_object(json_object_get(d, "platform")) ? json_object_get(d, "platform")
                                                                  : NULL;
    return AP_OK;
}

int ap_oci_parse(const char *name, const void *buf, size_t len, ap_oci_doc *out, ap_error *err)
{
    json_error_t je;
    json_t *list, *d;
    size_t i;
    int rc = AP_OK;

    memset(out, 0, sizeof *out);
    if (len > AP_OCI_MAX_JSON)
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "larger than %u bytes",
                               AP_OCI_MAX_JSON);
    out->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!out->root)
        return ap_error_set_at(err, AP_ERR_INPUT, name, (unsigned)je.line, (unsigned)je.column,
                               "not JSON: %s", je.text);
    if (!json_is_object(out->root)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "not an image index or manifest");
        goto out;
    }
    if (json_is_array(json_object_get(out->root, "manifests"))) {
        out->is_index = 1;
        list = json_object_get(out->root, "manifests");
    } else if (json_is_array(json_object_get(out->root, "layers"))) {
        list = json_object_get(out->root, "layers");
        if ((rc = parse_desc(name, json_object_get(out->root, "config"), &out->config, err)))
            goto out;
    } else {
        rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                             "not an image index or manifest (no 'manifests' or 'layers')");
        goto out;
    }
    if (json_array_size(list) > AP_OCI_MAX_DESCS) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "more than %d descriptors",
                             AP_OCI_MAX_DESCS);
        goto out;
    }
    if (json_is_object(json_object_get(out->root, "annotations")))
        out->annotations = json_object_get(out->root, "annotations");
    out->d = calloc(json_array_size(list) ? json_array_size(list) : 1, sizeof *out->d);
    if (!out->d) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(list, i, d) {
        if ((rc = parse_desc(name, d, &out->d[out->n], err)))
            goto out;
        out->n++;
    }
out:
    if (rc)
        ap_oci_doc_release(out);
    return rc;
}

void ap_oci_doc_release(ap_oci_doc *d)
{
    if (!d)
        return;
    free(d->d);
    json_decref(d->root);
    memset(d, 0, sizeof *d);
}

static char *entry_name(json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > 1024)
        return NULL;
    if (s[0] == '.' && s[1] == '/')
        s += 2;
    return ap_path_is_safe_relative(s) ? strdup(s) : NULL;
}

int ap_docker_manifest_parse(const char *name, const void *buf, size_t len,
                             ap_docker_image **out, size_t *n, ap_error *err)
{
    json_error_t je;
    json_t *root, *it;
    size_t i;
    int rc = AP_OK;
    *out = NULL;
    *n = 0;
    if (len > AP_OCI_MAX_JSON)
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "larger than %u bytes",
                               AP_OCI_MAX_JSON);
    if (!(root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je)))
        return ap_error_set_at(err, AP_ERR_INPUT, name, (unsigned)je.line, (unsigned)je.column,
                               "not JSON: %s", je.text);
    if (!json_is_array(root) || json_array_size(root) == 0 || json_array_size(root) > 256) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                             "not a docker-archive manifest (a list of 1 to 256 images)");
        goto out;
    }
    if (!(*out = calloc(json_array_size(root), sizeof **out))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(root, i, it) {
        ap_docker_image *im = &(*out)[(*n)++];
        json_t *layers = json_object_get(it, "Layers"), *tags = json_object_get(it, "RepoTags"),
               *v;
        size_t k;
        if (!json_is_object(it) || !(im->config = entry_name(json_object_get(it, "Config"))) ||
            !json_is_array(layers) || json_array_size(layers) > AP_OCI_MAX_DESCS ||
            (tags && !json_is_null(tags) &&
             (!json_is_array(tags) || json_array_size(tags) > 256))) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                                 "image %zu: needs a safe 'Config' name, a 'Layers' list and "
                                 "at most 256 'RepoTags'",
                                 i);
            goto out;
        }
        im->layers = calloc(json_array_size(layers) + 1, sizeof *im->layers);
        im->tags = calloc(json_array_size(tags) + 1, sizeof *im->tags);
        if (!im->layers || !im->tags) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        json_array_foreach(layers, k, v) {
            if (!(im->layers[im->n_layers] = entry_name(v))) {
                rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                                     "image %zu: layer %zu is not a safe entry name", i, k);
                goto out;
            }
            im->n_layers++;
        }
        json_array_foreach(tags, k, v) {
            const char *t = json_string_value(v);
            if (!t || strlen(t) > 512 || !ap_utf8_valid(t, strlen(t))) {
                rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                                     "image %zu: tag %zu is not a string", i, k);
                goto out;
            }
            if (!(im->tags[im->n_tags] = strdup(t))) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            im->n_tags++;
        }
    }
out:
    json_decref(root);
    if (rc) {
        ap_docker_images_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void ap_docker_images_free(ap_docker_image *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].config);
        for (size_t k = 0; k < v[i].n_layers; k++)
            free(v[i].layers[k]);
        for (size_t k = 0; k < v[i].n_tags; k++)
            free(v[i].tags[k]);
        free(v[i].layers);
        free(v[i].tags);
    }
    free(v);
}

/* ---- the blobs of an image: a folder or a tar --------------------------- */

struct blob {
    char *name;
    uint64_t size;
    char hex[AP_SHA256_HEX_LEN + 1];   /* tar: the content's sha-256 */
    char *data;                        /* tar: kept JSON-sized content, or NULL */
    size_t len;
    char *link;                        /* tar: a hard or symbolic link's target */
};

struct store {
    int is_tar;
    const char *root;                  /* the folder or the tar (messages, reads) */
    const char *shown;                 /* the manifest's path, for messages */
    struct blob *b;
    size_t n, cap;
    size_t kept;
};

static void store_release(struct store *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->b[i].name);
        free(s->b[i].data);
        free(s->b[i].link);
    }
    free(s->b);
    memset(s, 0, sizeof *s);
}

static int cmp_blob(const void *a, const void *b)
{
    return strcmp(((const struct blob *)a)->name, ((const struct blob *)b)->name);
}

static int keep_json(const char *name, uint64_t size)
{
    size_t l = strlen(name);
    if (size > AP_OCI_MAX_JSON)
        return 0;
    return !strchr(name, '/') || strncmp(name, "blobs/", 6) == 0 ||
           (l > 5 && !strcmp(name + l - 5, ".json"));
}

/* Read a tar's entries: names, sizes, sha-256 of each, JSON-sized content. */
static int tar_scan(struct store *s, ap_error *err)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    ap_sha256 *h = ap_sha256_new();
    int rc = AP_OK, r;

    if (!a || !h) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    archive_read_support_format_tar(a);
    archive_read_support_filter_all(a);
    if (archive_read_open_filename(a, s->root, 1 << 20) != ARCHIVE_OK) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, s->root, 0, 0, "not a tar archive: %s",
                             archive_error_string(a));
        goto out;
    }
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *nm = archive_entry_pathname(e);
        struct blob *b;
        mode_t ft = archive_entry_filetype(e);
        if (!nm)
            continue;
        while (nm[0] == '.' && nm[1] == '/')
            nm += 2;
        if (!*nm || ft == AE_IFDIR)
            continue;
        if (!ap_path_is_safe_relative(nm)) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, s->root, 0, 0,
                                 "entry '%.200s' is not a safe relative name", nm);
            goto out;
        }
        if (s->n >= AP_OCI_MAX_ENTRIES) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, s->root, 0, 0, "more than %d entries",
                                 AP_OCI_MAX_ENTRIES);
            goto out;
        }
        if (s->n == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 32;
            struct blob *nb = realloc(s->b, nc * sizeof *nb);
            if (!nb) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            s->b = nb;
            s->cap = nc;
        }
        b = &s->b[s->n];
        memset(b, 0, sizeof *b);
        if (!(b->name = strdup(nm))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        s->n++;
        if (archive_entry_hardlink(e) || ft == AE_IFLNK) {
            const char *t = archive_entry_hardlink(e) ? archive_entry_hardlink(e)
                                                      : archive_entry_symlink(e);
            if (!t || !(b->link = strdup(t))) {
                rc = ap_error_set_at(err, AP_ERR_INPUT, s->root, 0, 0, "bad link entry '%s'", nm);
                goto out;
            }
            continue;
        }
        if (ft != AE_IFREG) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, s->root, 0, 0,
                                 "entry '%s' is not a regular file", nm);
            goto out;
        }
        {
            uint64_t size = archive_entry_size(e) > 0 ? (uint64_t)archive_entry_size(e) : 0, got = 0;
            int keep = keep_json(nm, size) && s->kept + size <= AP_OCI_MAX_KEPT;
            const void *blk;
            size_t bl;
            la_int64_t off;
            uint8_t md[AP_SHA256_LEN];
            if (keep && !(b->data = malloc(size + 1))) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            if ((rc = ap_sha256_reset(h)))
                goto out;
            while ((r = archive_read_data_block(a, &blk, &bl, &off)) == ARCHIVE_OK) {
                if (got + bl > size || (uint64_t)off != got) {
                    /* sparse or over-long data: not a blob we can trust */
                    rc = ap_error_set_at(err, AP_ERR_INPUT, s->root, 0, 0,
                                         "entry '%s' has sparse or inconsistent data", nm);
                    goto out;
                }
                if (ap_sha256_update(h, blk, bl) != AP_OK) {
                    rc = ap_error_set(err, AP_ERR_INTERNAL, "cannot hash");
                    goto out;
                }
                if (keep)
                    memcpy(b->data + got, blk, bl);
                got += bl;
            }
            if (r != ARCHIVE_EOF || got != size) {
                rc = ap_error_set_at(err, AP_ERR_INPUT, s->root, 0, 0,
                                     "cannot read entry '%s': %s", nm,
                                     r != ARCHIVE_EOF ? archive_error_string(a) : "truncated");
                goto out;
            }
            if ((rc = ap_sha256_final(h, md)))
                goto out;
            ap_hex_encode(md, sizeof md, b->hex);
            b->size = size;
            if (keep) {
                b->data[size] = '\0';
                b->len = size;
                s->kept += size;
            }
        }
    }
    if (r != ARCHIVE_EOF) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, s->root, 0, 0, "not a readable tar: %s",
                             archive_error_string(a));
        goto out;
    }
    if (s->n)
        qsort(s->b, s->n, sizeof *s->b, cmp_blob);
    for (size_t i = 1; i < s->n; i++)
        if (!strcmp(s->b[i - 1].name, s->b[i].name)) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, s->root, 0, 0, "entry '%s' appears twice",
                                 s->b[i].name);
            goto out;
        }
out:
    ap_sha256_free(h);
    if (a)
        archive_read_free(a);
    return rc;
}

static struct blob *tar_find(struct store *s, const char *name, int depth)
{
    struct blob key, *b;
    key.name = (char *)name;
    if (!s->n)
        return NULL;
    b = bsearch(&key, s->b, s->n, sizeof *s->b, cmp_blob);
    if (b && b->link && depth < 4) {
        /* a link: relative to the entry's folder (symbolic) or the root (hard) */
        char tmp[2048];
        const char *slash = strrchr(b->name, '/');
        if (b->link[0] != '/' && slash && strncmp(b->link, "../", 3) == 0) {
            snprintf(tmp, sizeof tmp, "%.*s/%s", (int)(slash - b->name), b->name, b->link);
            /* fold "dir/../x" */
            char *p = strstr(tmp, "/../");
            if (p) {
                char *q = p;
                while (q > tmp && q[-1] != '/')
                    q--;
                memmove(q, p + 4, strlen(p + 4) + 1);
            }
        } else {
            snprintf(tmp, sizeof tmp, "%s", b->link);
        }
        return tar_find(s, tmp, depth + 1);
    }
    return b && !b->link ? b : NULL;
}

/* A blob: present (else AP_ERR_INPUT naming what points at it), its size;
 * data (when want) up to AP_OCI_MAX_JSON; for a tar, its sha-256. */
static int get_blob(struct store *s, const char *name, const char *from, uint64_t *size,
                    const char **hex, char **data, size_t *len, ap_error *err)
{
    if (data)
        *data = NULL;
    if (hex)
        *hex = NULL;
    if (s->is_tar) {
        struct blob *b = tar_find(s, name, 0);
        if (!b)
            return ap_error_set_at(err, AP_ERR_INPUT, s->shown, 0, 0,
                                   "%s points at a missing blob '%s'", from, name);
        *size = b->size;
        if (hex)
            *hex = b->hex;
        if (data) {
            if (!b->data)
                return ap_error_set_at(err, AP_ERR_INPUT, s->shown, 0, 0,
                                       "'%s' is too large to be JSON", name);
            if (!(*data = malloc(b->len + 1)))
                return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            memcpy(*data, b->data, b->len + 1);
            *len = b->len;
        }
        return AP_OK;
    } else {
        struct stat st;
        char *p = ap_path_join(s->root, name);
        int rc = AP_OK;
        if (!p)
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode))
            rc = ap_error_set_at(err, AP_ERR_INPUT, s->shown, 0, 0,
                                 "%s points at a missing blob '%s'", from, name);
        else
            *size = (uint64_t)st.st_size;
        if (!rc && data)
            rc = ap_read_file(p, AP_OCI_MAX_JSON, data, len, err);
        free(p);
        return rc;
    }
}

/* A descriptor's blob: present, of its size and (tar) digest. */
static int check_desc(struct store *s, const ap_oci_desc *d, const char *from, int want,
                      char **data, size_t *len, ap_error *err)
{
    char name[100];
    uint64_t size = 0;
    const char *hex = NULL;
    int rc;
    snprintf(name, sizeof name, "blobs/sha256/%s", d->hex);
    if ((rc = get_blob(s, name, from, &size, &hex, want ? data : NULL, len, err)))
        return rc;
    if (size != d->size) {
        if (want)
            free(*data);
        return ap_error_set_at(err, AP_ERR_CHECK, s->shown, 0, 0,
                               "blob '%s' is %llu bytes, %s says %llu", name,
                               (unsigned long long)size, from, (unsigned long long)d->size);
    }
    if (hex && strcmp(hex, d->hex) != 0) {
        if (want)
            free(*data);
        return ap_error_set_at(err, AP_ERR_CHECK, s->shown, 0, 0,
                               "blob '%s' does not match its digest: its sha-256 is %s", name,
                               hex);
    }
    return AP_OK;
}

/* Facts of an image config: platform and Env. */
static void config_facts(const char *data, size_t len, json_t *img)
{
    json_t *c = json_loadb(data, len, 0, NULL), *env;
    const char *os = json_string_value(json_object_get(c, "os"));
    const char *arch = json_string_value(json_object_get(c, "architecture"));
    if (os && arch && !json_object_get(img, "platform")) {
        char p[160];
        snprintf(p, sizeof p, "%.60s/%.60s", os, arch);
        json_object_set_new(img, "platform", json_string(p));
    }
    env = json_object_get(json_object_get(c, "config"), "Env");
    if (json_is_array(env)) {
        /* bounded: the lock that records it is (AP_LOCK_MAX_BYTES) */
        json_t *e = json_array(), *v;
        size_t i;
        json_array_foreach(env, i, v)
            if (json_is_string(v) && json_string_length(v) <= 1024 && json_array_size(e) < 256)
                json_array_append(e, v);
        json_object_set_new(img, "env", e);
    }
    json_decref(c);
}

static void copy_oci_annotations(json_t *img, const json_t *ann)
{
    const char *k;
    json_t *v, *dst = json_object_get(img, "annotations");
    json_object_foreach((json_t *)ann, k, v) {
        if (strncmp(k, "org.opencontainers.image.", 25) != 0 || !json_is_string(v) ||
            strlen(k) > 128 || json_string_length(v) > 1024 ||
            (dst && json_object_size(dst) >= 32))
            continue;
        if (!dst) {
            dst = json_object();
            json_object_set_new(img, "annotations", dst);
        }
        json_object_set(dst, k, v);
    }
}

/* An index or manifest blob (or index.json) and everything below it. */
static int walk_doc(struct store *s, const char *name, const char *data, size_t len,
                    const ap_oci_desc *via, int depth, json_t *images, ap_error *err)
{
    ap_oci_doc doc;
    int rc;
    char from[200];
    if (depth > AP_OCI_MAX_DEPTH)
        return ap_error_set_at(err, AP_ERR_INPUT, s->shown, 0, 0,
                               "indexes nested deeper than %d levels", AP_OCI_MAX_DEPTH);
    if ((rc = ap_oci_parse(name, data, len, &doc, err)))
        return ap_error_prefix(err, "image '%s'", s->shown);
    snprintf(from, sizeof from, "'%s'", name);
    if (doc.is_index) {
        for (size_t i = 0; i < doc.n && rc == AP_OK; i++) {
            char *sub = NULL, bn[100];
            size_t sl = 0;
            if ((rc = check_desc(s, &doc.d[i], from, 1, &sub, &sl, err)))
                break;
            snprintf(bn, sizeof bn, "blobs/sha256/%s", doc.d[i].hex);
            rc = walk_doc(s, bn, sub, sl, &doc.d[i], depth + 1, images, err);
            free(sub);
        }
    } else {
        char *cfg = NULL, d[80];
        size_t cl = 0;
        json_t *img = json_object();
        if (!img) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (via) {
            snprintf(d, sizeof d, "sha256:%s", via->hex);
            json_object_set_new(img, "manifest_digest", json_string(d));
        }
        snprintf(d, sizeof d, "sha256:%s", doc.config.hex);
        json_object_set_new(img, "config_digest", json_string(d));
        if (via && via->annotations) {
            const char *ref = json_string_value(
                json_object_get(via->annotations, "org.opencontainers.image.ref.name"));
            if (ref && strlen(ref) <= 1024)
                json_object_set_new(img, "ref_name", json_string(ref));
            copy_oci_annotations(img, via->annotations);
        }
        if (doc.annotations)
            copy_oci_annotations(img, doc.annotations);
        if (via && via->platform) {
            const char *os = json_string_value(json_object_get(via->platform, "os"));
            const char *ar = json_string_value(json_object_get(via->platform, "architecture"));
            if (os && ar) {
                char p[160];
                snprintf(p, sizeof p, "%.60s/%.60s", os, ar);
                json_object_set_new(img, "platform", json_string(p));
            }
        }
        /* every image is verified; the first 64 are recorded (lock size) */
        if (json_array_size(images) < 64)
            json_array_append(images, img);
        if ((rc = check_desc(s, &doc.config, from, 1, &cfg, &cl, err))) {
            json_decref(img);
            goto out;
        }
        config_facts(cfg, cl, img);
        json_decref(img);
        free(cfg);
        for (size_t i = 0; i < doc.n && rc == AP_OK; i++)
            rc = check_desc(s, &doc.d[i], from, 0, NULL, NULL, err);
    }
out:
    ap_oci_doc_release(&doc);
    return rc;
}

static int is_hexname(const char *b, const char *suffix, char hex[AP_SHA256_HEX_LEN + 1])
{
    size_t sl = strlen(suffix);
    const char *base = strrchr(b, '/');
    base = base ? base + 1 : b;
    if (strlen(base) != AP_SHA256_HEX_LEN + sl || strcmp(base + AP_SHA256_HEX_LEN, suffix) != 0)
        return 0;
    for (size_t i = 0; i < AP_SHA256_HEX_LEN; i++)
        if (!((base[i] >= '0' && base[i] <= '9') || (base[i] >= 'a' && base[i] <= 'f')))
            return 0;
    memcpy(hex, base, AP_SHA256_HEX_LEN);
    hex[AP_SHA256_HEX_LEN] = '\0';
    return 1;
}

/* docker-archive: manifest.json, the configs (named by their digest) and
 * the layers (matching the config's rootfs.diff_ids). */
static int walk_docker(struct store *s, json_t *images, ap_error *err)
{
    char *data = NULL;
    size_t len = 0, n = 0;
    uint64_t size;
    ap_docker_image *im = NULL;
    int rc;
    if ((rc = get_blob(s, "manifest.json", "the archive", &size, NULL, &data, &len, err)))
        return rc;
    rc = ap_docker_manifest_parse("manifest.json", data, len, &im, &n, err);
    free(data);
    data = NULL;
    if (rc)
        return ap_error_prefix(err, "image '%s'", s->shown);
    for (size_t i = 0; i < n && rc == AP_OK; i++) {
        const char *hex = NULL;
        char want[AP_SHA256_HEX_LEN + 1], d[80];
        json_t *img = json_object(), *cfg, *diff, *tags = json_array();
        if (!img || !tags) {
            json_decref(img);
            json_decref(tags);
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            break;
        }
        json_array_append_new(images, img);
        for (size_t k = 0; k < im[i].n_tags && k < 32; k++)
            json_array_append_new(tags, json_string(im[i].tags[k]));
        json_object_set_new(img, "repo_tags", tags);
        if ((rc = get_blob(s, im[i].config, "'manifest.json'", &size, &hex, &data, &len, err)))
            break;
        if ((is_hexname(im[i].config, ".json", want) || is_hexname(im[i].config, "", want)) &&
            strcmp(want, hex) != 0) {
            rc = ap_error_set_at(err, AP_ERR_CHECK, s->shown, 0, 0,
                                 "config '%s' does not match its digest: its sha-256 is %s",
                                 im[i].config, hex);
            break;
        }
        snprintf(d, sizeof d, "sha256:%s", hex);
        json_object_set_new(img, "config_digest", json_string(d));
        config_facts(data, len, img);
        cfg = json_loadb(data, len, 0, NULL);
        free(data);
        data = NULL;
        diff = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
        if (json_array_size(diff) != im[i].n_layers) {
            json_decref(cfg);
            rc = ap_error_set_at(err, AP_ERR_INPUT, s->shown, 0, 0,
                                 "image %zu: %zu layers, but its config lists %zu diff_ids", i,
                                 im[i].n_layers, json_array_size(diff));
            break;
        }
        for (size_t k = 0; k < im[i].n_layers && rc == AP_OK; k++) {
            const char *id = json_string_value(json_array_get(diff, k));
            if ((rc = get_blob(s, im[i].layers[k], "'manifest.json'", &size, &hex, NULL, NULL,
                               err)))
                break;
            if (!id || strncmp(id, "sha256:", 7) != 0 || strcmp(id + 7, hex) != 0) {
                /* a compressed layer's name may still be its digest */
                if (!(is_hexname(im[i].layers[k], "", want) && !strcmp(want, hex)))
                    rc = ap_error_set_at(err, AP_ERR_CHECK, s->shown, 0, 0,
                                         "layer '%s' does not match its digest: its sha-256 is "
                                         "%s, the config names %.80s",
                                         im[i].layers[k], hex, id ? id : "nothing");
            }
        }
        json_decref(cfg);
    }
    free(data);
    ap_docker_images_free(im, n);
    return rc;
}

/* ---- detection and the walk --------------------------------------------- */

int ap_image_detect(const char *abs)
{
    struct stat st;
    char *p;
    int yes = 0;
    if (stat(abs, &st) != 0)
        return 0;
    if (S_ISDIR(st.st_mode)) {
        if ((p = ap_path_join(abs, "oci-layout"))) {
            yes = lstat(p, &st) == 0 && S_ISREG(st.st_mode);
            free(p);
        }
        if (yes && (p = ap_path_join(abs, "index.json"))) {
            yes = lstat(p, &st) == 0 && S_ISREG(st.st_mode);
            free(p);
        }
        return yes ? 1 : 0;
    }
    if (S_ISREG(st.st_mode)) {
        /* a tar ("ustar" at offset 257) whose top level holds manifest.json
         * (docker-archive) or oci-layout and index.json (oci-archive); any
         * other tar is a plain file of the runtime */
        FILE *f = fopen(abs, "rb");
        char magic[6] = {0};
        struct archive *a;
        struct archive_entry *e;
        int has_manifest = 0, has_layout = 0, has_index = 0, n = 0;
        if (f) {
            if (fseek(f, 257, SEEK_SET) == 0 && fread(magic, 1, 5, f) == 5)
                yes = memcmp(magic, "ustar", 5) == 0;
            fclose(f);
        }
        if (!yes || !(a = archive_read_new()))
            return 0;
        archive_read_support_format_tar(a);
        if (archive_read_open_filename(a, abs, 1 << 16) == ARCHIVE_OK) {
            while (n++ < AP_OCI_MAX_ENTRIES && archive_read_next_header(a, &e) == ARCHIVE_OK) {
                const char *nm = archive_entry_pathname(e);
                while (nm && nm[0] == '.' && nm[1] == '/')
                    nm += 2;
                if (nm && !strcmp(nm, "manifest.json"))
                    has_manifest = 1;
                else if (nm && !strcmp(nm, "oci-layout"))
                    has_layout = 1;
                else if (nm && !strcmp(nm, "index.json"))
                    has_index = 1;
                if (has_manifest || (has_layout && has_index))
                    break;
                archive_read_data_skip(a);
            }
        }
        archive_read_free(a);
        return has_manifest ? 2 : has_layout && has_index ? 3 : 0;
    }
    return 0;
}

int ap_image_walk(const ap_mpath *p, int verify, ap_input *in, ap_error *err)
{
    struct store s;
    json_t *images = NULL;
    const char *kind = NULL;
    int rc = AP_OK, det = ap_image_detect(p->abs);
    struct stat st;

    memset(&s, 0, sizeof s);
    s.root = p->abs;
    s.shown = p->path;
    s.is_tar = det >= 2;
    in->kind = AP_INPUT_IMAGE;
    if (s.is_tar) {
        const char *base = strrchr(p->abs, '/');
        if (stat(p->abs, &st) != 0)
            return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot read", p->abs);
        if ((rc = ap_input_add(in, base ? base + 1 : p->abs, p->abs, 1, NULL,
                               (uint64_t)st.st_size, err)))
            return rc;
    } else {
        /* the layout's files, links refused; blobs pinned by their names */
        ap_filelist fl = {0};
        if ((rc = ap_walk_files(p->abs, &fl, err)))
            return rc;
        for (size_t i = 0; i < fl.n && rc == AP_OK; i++) {
            char *abs = ap_path_join(p->abs, fl.paths[i]), hex[AP_SHA256_HEX_LEN + 1];
            const char *dg = NULL;
            if (!abs) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                break;
            }
            if (strncmp(fl.paths[i], "blobs/sha256/", 13) == 0 &&
                is_hexname(fl.paths[i] + 13, "", hex) && !strchr(fl.paths[i] + 13, '/'))
                dg = hex;
            if (lstat(abs, &st) != 0)
                rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot stat", abs);
            else
                rc = ap_input_add(in, fl.paths[i], abs, 0, dg, (uint64_t)st.st_size, err);
            free(abs);
        }
        ap_filelist_release(&fl);
        if (rc)
            return rc;
    }
    if (!verify)
        return AP_OK;
    if (s.is_tar && (rc = tar_scan(&s, err)))
        goto out;
    if (!(images = json_array())) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    {
        uint64_t size;
        char *idx = NULL;
        size_t il = 0;
        ap_error probe;
        int has_index = get_blob(&s, "index.json", "", &size, NULL, NULL, NULL, &probe) == AP_OK;
        int has_docker = s.is_tar &&
                         get_blob(&s, "manifest.json", "", &size, NULL, NULL, NULL, &probe) == AP_OK;
        if (has_docker) {
            kind = "docker-archive";
            rc = walk_docker(&s, images, err);
        } else if (has_index) {
            kind = s.is_tar ? "oci-archive" : "oci-layout";
            if ((rc = get_blob(&s, "index.json", "", &size, NULL, &idx, &il, err)) == AP_OK)
                rc = walk_doc(&s, "index.json", idx, il, NULL, 0, images, err);
            free(idx);
        } else {
            rc = ap_error_set_at(err, AP_ERR_INPUT, p->path, 0, 0,
                                 "a tar that is no container image (neither index.json nor "
                                 "manifest.json)");
        }
    }
    if (rc)
        goto out;
    in->source = json_pack("{s:s, s:o}", "kind", kind, "images", images);
    images = NULL;
    if (!in->source) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    {
        json_t *first = json_array_get(json_object_get(in->source, "images"), 0);
        json_t *d = json_object_get(first, "manifest_digest");
        if (!d)
            d = json_object_get(first, "config_digest");
        if (d)
            json_object_set(in->source, "digest", d);
    }
out:
    json_decref(images);
    store_release(&s);
    return rc;
}
