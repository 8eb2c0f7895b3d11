/*
 * mksources.c - fixture writer for the input sources of issue 13
 * (src/source/): stores shaped like the real ones, made from model files
 * that mkgguf / mksafetensors wrote.
 *
 * usage:
 *   mksources hf HUB ORG/NAME FOLDER [--hostile]
 *       Move FOLDER's files into a Hugging Face hub cache HUB as
 *       huggingface_hub lays it out: models--ORG--NAME/blobs/<id> (id = the
 *       SHA-256 for weight files, as for LFS files; the git blob SHA-1 for
 *       the others), refs/main holding the commit, and
 *       snapshots/<commit>/<path> as relative links ../../blobs/<id>.
 *       Prints the commit. --hostile adds snapshots/<commit>/evil.json, a
 *       link out of the repository's blobs (to HUB/outside.json).
 *   mksources ollama STORE NAME:TAG MODEL.gguf [LICENSE.txt]
 *       Write an Ollama store as `ollama pull` leaves it: MODEL.gguf moved
 *       to blobs/sha256-<hex>, a template, params, licence and config blob,
 *       and manifests/registry.ollama.ai/library/NAME/TAG (schemaVersion 2,
 *       the media types of Ollama's registry). Prints the model digest.
 *   mksources image oci-layout|oci-archive|docker-archive OUT [--corrupt|--missing]
 *       A small container image (one layer holding bin/serve, a config
 *       whose Env sets VLLM_USAGE_SOURCE and HF_HUB_OFFLINE) as an OCI image
 *       layout folder (skopeo copy oci:OUT), an oci-archive tar (the same
 *       layout in a tar) or a docker-archive tar (podman save: manifest.json,
 *       <config hex>.json, <layer hex>.tar). --corrupt flips a byte of the
 *       layer (same size); --missing leaves the layer's blob out while the
 *       manifest still points at it. Prints the config digest.
 *   mksources tamper FILE
 *       Flip one byte in the middle of FILE (in place, through links).
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "util.h"

static void die(const char *what, const char *path)
{
    fprintf(stderr, "mksources: %s '%s': %s\n", what, path, strerror(errno));
    exit(1);
}

static void mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                die("cannot create", buf);
            *p = '/';
        }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        die("cannot create", buf);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("cannot write", path);
}

/* git's blob id: sha1("blob <len>\0" + content). */
static void git_sha1(const char *path, char out[41])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char md[20], buf[65536];
    unsigned int mdl;
    struct stat st;
    char hdr[64];
    FILE *f = fopen(path, "rb");
    size_t r;
    if (!f || stat(path, &st) != 0)
        die("cannot read", path);
    snprintf(hdr, sizeof hdr, "blob %lld", (long long)st.st_size);
    EVP_DigestInit_ex(c, EVP_sha1(), NULL);
    EVP_DigestUpdate(c, hdr, strlen(hdr) + 1);
    while ((r = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(c, buf, r);
    fclose(f);
    EVP_DigestFinal_ex(c, md, &mdl);
    EVP_MD_CTX_free(c);
    ap_hex_encode(md, 20, out);
}

static int is_weight(const char *name)
{
    const char *sfx[] = {".gguf", ".safetensors", ".pth", ".bin", ".pt", NULL};
    size_t l = strlen(name);
    for (int i = 0; sfx[i]; i++) {
        size_t s = strlen(sfx[i]);
        if (l >= s && !strcmp(name + l - s, sfx[i]))
            return 1;
    }
    return 0;
}

/* Move every file under src/rel into the cache; link it from snap/rel. */
static void hf_move(const char *src, const char *rel, const char *blobs, const char *snap,
                    int depth)
{
    char dpath[4096];
    DIR *d;
    struct dirent *e;
    snprintf(dpath, sizeof dpath, "%s%s%s", src, *rel ? "/" : "", rel);
    if (!(d = opendir(dpath)))
        die("cannot open", dpath);
    while ((e = readdir(d))) {
        char from[4096], r2[4096], id[65], to[4096], link[4096], target[4096];
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(from, sizeof from, "%s/%s", dpath, e->d_name);
        snprintf(r2, sizeof r2, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        if (lstat(from, &st) != 0)
            die("cannot stat", from);
        if (S_ISDIR(st.st_mode)) {
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", snap, r2);
            mkdirs(sub);
            hf_move(src, r2, blobs, snap, depth + 1);
            continue;
        }
        if (is_weight(e->d_name)) {
            ap_error err;
            if (ap_sha256_file_hex(from, 0, id, NULL, &err) != AP_OK) {
                fprintf(stderr, "mksources: %s\n", err.msg);
                exit(1);
            }
        } else {
            git_sha1(from, id);
        }
        snprintf(to, sizeof to, "%s/%s", blobs, id);
        if (rename(from, to) != 0)
            die("cannot move", from);
        target[0] = '\0';
        for (int i = 0; i < depth + 2; i++)
            strcat(target, "../");
        strcat(target, "blobs/");
        strcat(target, id);
        snprintf(link, sizeof link, "%s/%s", snap, r2);
        if (symlink(target, link) != 0)
            die("cannot link", link);
    }
    closedir(d);
}

static int cmd_hf(int argc, char **argv)
{
    const char *hub, *id, *folder;
    char repo[4096], blobs[4096], refs[4096], snap[4096], path[4096], commit[41];
    unsigned char raw[20];
    int hostile = argc > 5 && !strcmp(argv[5], "--hostile");
    if (argc < 5) {
        fprintf(stderr, "usage: mksources hf HUB ORG/NAME FOLDER [--hostile]\n");
        return 2;
    }
    hub = argv[2];
    id = argv[3];
    folder = argv[4];
    if (!strchr(id, '/'))
        return fprintf(stderr, "mksources: ORG/NAME expected\n"), 2;
    snprintf(repo, sizeof repo, "%s/models--%.*s--%s", hub, (int)(strchr(id, '/') - id), id,
             strchr(id, '/') + 1);
    /* The commit: a hash of the repository name (stable across runs). */
    {
        uint8_t d[32];
        if (ap_sha256_buffer(id, strlen(id), d) != AP_OK)
            return 1;
        memcpy(raw, d, 20);
        ap_hex_encode(raw, 20, commit);
    }
    snprintf(blobs, sizeof blobs, "%s/blobs", repo);
    snprintf(refs, sizeof refs, "%s/refs", repo);
    snprintf(snap, sizeof snap, "%s/snapshots/%s", repo, commit);
    mkdirs(blobs);
    mkdirs(refs);
    mkdirs(snap);
    snprintf(path, sizeof path, "%s/main", refs);
    write_text(path, commit); /* huggingface_hub writes no newline */
    hf_move(folder, "", blobs, snap, 0);
    if (hostile) {
        snprintf(path, sizeof path, "%s/outside.json", hub);
        write_text(path, "{\"stolen\": true}\n");
        snprintf(path, sizeof path, "%s/evil.json", snap);
        if (symlink("../../../outside.json", path) != 0)
            die("cannot link", path);
    }
    printf("%s\n", commit);
    return 0;
}

/* Write data as a blob of the store; fill hex. */
static void blob_from_buffer(const char *store, const char *data, size_t len, char hex[65])
{
    uint8_t d[32];
    char path[4096];
    FILE *f;
    if (ap_sha256_buffer(data, len, d) != AP_OK)
        exit(1);
    ap_hex_encode(d, 32, hex);
    snprintf(path, sizeof path, "%s/blobs/sha256-%s", store, hex);
    if (!(f = fopen(path, "wb")) || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die("cannot write", path);
}

static json_t *desc(const char *mt, const char *hex, uint64_t size)
{
    char d[80];
    snprintf(d, sizeof d, "sha256:%s", hex);
    return json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", d, "size", (json_int_t)size);
}

static int cmd_ollama(int argc, char **argv)
{
    const char *store, *ref, *model, *colon;
    char path[4096], mhex[65], thex[65], phex[65], lhex[65], chex[65], *lic = NULL;
    const char *tmpl = "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n"
                       "{{ .System }}<|eot_id|>{{ end }}{{ .Prompt }}";
    const char *params = "{\"stop\": [\"<|eot_id|>\"], \"temperature\": 0.6}";
    const char *config = "{\"model_format\":\"gguf\",\"model_family\":\"llama\","
                         "\"model_type\":\"tiny\",\"file_type\":\"F16\","
                         "\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":"
                         "{\"type\":\"layers\",\"diff_ids\":[]}}";
    size_t lic_len = 0;
    struct stat st;
    json_t *m, *layers;
    ap_error err;
    if (argc < 5) {
        fprintf(stderr, "usage: mksources ollama STORE NAME:TAG MODEL.gguf [LICENSE.txt]\n");
        return 2;
    }
    store = argv[2];
    ref = argv[3];
    model = argv[4];
    colon = strchr(ref, ':');
    snprintf(path, sizeof path, "%s/blobs", store);
    mkdirs(path);
    if (ap_sha256_file_hex(model, 0, mhex, NULL, &err) != AP_OK || stat(model, &st) != 0) {
        fprintf(stderr, "mksources: cannot hash '%s'\n", model);
        return 1;
    }
    snprintf(path, sizeof path, "%s/blobs/sha256-%s", store, mhex);
    if (rename(model, path) != 0)
        die("cannot move", model);
    blob_from_buffer(store, tmpl, strlen(tmpl), thex);
    blob_from_buffer(store, params, strlen(params), phex);
    blob_from_buffer(store, config, strlen(config), chex);
    if (argc > 5) {
        if (ap_read_file(argv[5], 1 << 20, &lic, &lic_len, &err) != AP_OK) {
            fprintf(stderr, "mksources: %s\n", err.msg);
            return 1;
        }
        blob_from_buffer(store, lic, lic_len, lhex);
    }
    layers = json_array();
    json_array_append_new(layers, desc("application/vnd.ollama.image.model", mhex,
                                       (uint64_t)st.st_size));
    json_array_append_new(layers, desc("application/vnd.ollama.image.template", thex,
                                       strlen(tmpl)));
    if (lic)
        json_array_append_new(layers, desc("application/vnd.ollama.image.license", lhex, lic_len));
    json_array_append_new(layers, desc("application/vnd.ollama.image.params", phex,
                                       strlen(params)));
    m = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType",
                  "application/vnd.docker.distribution.manifest.v2+json", "config",
                  desc("application/vnd.docker.container.image.v1+json", chex, strlen(config)),
                  "layers", layers);
    snprintf(path, sizeof path, "%s/manifests/registry.ollama.ai/library/%.*s", store,
             (int)(colon ? (size_t)(colon - ref) : strlen(ref)), ref);
    mkdirs(path);
    snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", colon ? colon + 1 : "latest");
    if (json_dump_file(m, path, JSON_COMPACT) != 0)
        die("cannot write", path);
    json_decref(m);
    free(lic);
    printf("%s\n", mhex);
    return 0;
}

/* ---- container images ---- */

struct membuf {
    char *p;
    size_t n, cap;
};

static la_ssize_t mem_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct membuf *m = ctx;
    (void)a;
    if (m->n + len > m->cap) {
        size_t nc = (m->n + len) * 2;
        char *np = realloc(m->p, nc);
        if (!np)
            return -1;
        m->p = np;
        m->cap = nc;
    }
    memcpy(m->p + m->n, buf, len);
    m->n += len;
    return (la_ssize_t)len;
}

static void tar_add(struct archive *a, const char *name, const void *data, size_t len)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, 946684800, 0);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        (len && archive_write_data(a, data, len) != (la_ssize_t)len)) {
        fprintf(stderr, "mksources: tar: %s\n", archive_error_string(a));
        exit(1);
    }
    archive_entry_free(e);
}

static struct archive *tar_open_mem(struct membuf *m)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    if (archive_write_open(a, m, NULL, mem_write, NULL) != ARCHIVE_OK)
        exit(1);
    return a;
}

static void hex_of(const void *d, size_t n, char hex[65])
{
    uint8_t md[32];
    if (ap_sha256_buffer(d, n, md) != AP_OK)
        exit(1);
    ap_hex_encode(md, 32, hex);
}

static void write_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f) != 0)
        die("cannot write", path);
}

static int cmd_image(int argc, char **argv)
{
    const char *kind, *out;
    int corrupt = argc > 4 && !strcmp(argv[4], "--corrupt");
    int missing = argc > 4 && !strcmp(argv[4], "--missing");
    struct membuf layer = {0}, outer = {0};
    struct archive *a;
    char lhex[65], chex[65], mhex[65], path[4096];
    char *config, *manifest, *index;
    const char *serve = "#!/bin/sh\nexec python3 -m vllm.entrypoints.openai.api_server \"$@\"\n";
    json_t *j;

    if (argc < 4) {
        fprintf(stderr, "usage: mksources image oci-layout|oci-archive|docker-archive OUT "
                        "[--corrupt|--missing]\n");
        return 2;
    }
    kind = argv[2];
    out = argv[3];
    /* the layer: an uncompressed tar holding bin/serve */
    a = tar_open_mem(&layer);
    tar_add(a, "bin/serve", serve, strlen(serve));
    archive_write_close(a);
    archive_write_free(a);
    hex_of(layer.p, layer.n, lhex);
    j = json_pack("{s:s, s:s, s:{s:[s,s,s], s:[s], s:s}, s:{s:s, s:[s]}, s:[{s:s, s:s}]}",
                  "architecture", "amd64", "os", "linux", "config", "Env",
                  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "VLLM_USAGE_SOURCE=production-docker-image", "HF_HUB_OFFLINE=1", "Entrypoint",
                  "/bin/serve", "WorkingDir", "/", "rootfs", "type", "layers", "diff_ids",
                  "sha256:PLACEHOLDER", "history", "created", "2000-01-01T00:00:00Z",
                  "created_by", "mksources");
    {
        char d[80];
        snprintf(d, sizeof d, "sha256:%s", lhex);
        json_array_set_new(json_object_get(json_object_get(j, "rootfs"), "diff_ids"), 0,
                           json_string(d));
    }
    config = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    hex_of(config, strlen(config), chex);
    if (corrupt)
        layer.p[layer.n / 3] ^= 0x20; /* same size, other bytes */
    if (!strcmp(kind, "docker-archive")) {
        char cname[80], lname[80];
        snprintf(cname, sizeof cname, "%s.json", chex);
        snprintf(lname, sizeof lname, "%s.tar", lhex);
        j = json_pack("[{s:s, s:[s], s:[s]}]", "Config", cname, "RepoTags",
                      "localhost/vllm-openai:v0.6.0", "Layers", lname);
        manifest = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        a = tar_open_mem(&outer);
        if (!missing)
            tar_add(a, lname, layer.p, layer.n);
        tar_add(a, cname, config, strlen(config));
        tar_add(a, "manifest.json", manifest, strlen(manifest));
        {
            const char *repos = "{\"localhost/vllm-openai\":{\"v0.6.0\":\"x\"}}";
            tar_add(a, "repositories", repos, strlen(repos));
        }
        archive_write_close(a);
        archive_write_free(a);
        write_file(out, outer.p, outer.n);
        printf("sha256:%s\n", chex);
        free(manifest);
        free(config);
        free(layer.p);
        free(outer.p);
        return 0;
    }
    /* OCI: manifest, index, layout */
    j = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I}], s:{s:s, s:s}}",
                  "schemaVersion", 2, "mediaType", "application/vnd.oci.image.manifest.v1+json",
                  "config", "mediaType", "application/vnd.oci.image.config.v1+json", "digest", "",
                  "size", (json_int_t)strlen(config), "layers", "mediaType",
                  "application/vnd.oci.image.layer.v1.tar", "digest", "", "size",
                  (json_int_t)layer.n, "annotations", "org.opencontainers.image.version", "0.6.0",
                  "org.opencontainers.image.source", "https://github.com/vllm-project/vllm");
    {
        char d[80];
        snprintf(d, sizeof d, "sha256:%s", chex);
        json_object_set_new(json_object_get(j, "config"), "digest", json_string(d));
        snprintf(d, sizeof d, "sha256:%s", lhex);
        json_object_set_new(json_array_get(json_object_get(j, "layers"), 0), "digest",
                            json_string(d));
    }
    manifest = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    hex_of(manifest, strlen(manifest), mhex);
    j = json_pack("{s:i, s:s, s:[{s:s, s:s, s:I, s:{s:s}, s:{s:s, s:s}}]}", "schemaVersion", 2,
                  "mediaType", "application/vnd.oci.image.index.v1+json", "manifests",
                  "mediaType", "application/vnd.oci.image.manifest.v1+json", "digest", "", "size",
                  (json_int_t)strlen(manifest), "annotations", "org.opencontainers.image.ref.name",
                  "v0.6.0", "platform", "architecture", "amd64", "os", "linux");
    {
        char d[80];
        snprintf(d, sizeof d, "sha256:%s", mhex);
        json_object_set_new(json_array_get(json_object_get(j, "manifests"), 0), "digest",
                            json_string(d));
    }
    index = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    {
        const char *layout = "{\"imageLayoutVersion\": \"1.0.0\"}";
        char bl[100], bc[100], bm[100];
        snprintf(bl, sizeof bl, "blobs/sha256/%s", lhex);
        snprintf(bc, sizeof bc, "blobs/sha256/%s", chex);
        snprintf(bm, sizeof bm, "blobs/sha256/%s", mhex);
        if (!strcmp(kind, "oci-layout")) {
            snprintf(path, sizeof path, "%s/blobs/sha256", out);
            mkdirs(path);
            snprintf(path, sizeof path, "%s/oci-layout", out);
            write_file(path, layout, strlen(layout));
            snprintf(path, sizeof path, "%s/index.json", out);
            write_file(path, index, strlen(index));
            snprintf(path, sizeof path, "%s/%s", out, bm);
            write_file(path, manifest, strlen(manifest));
            snprintf(path, sizeof path, "%s/%s", out, bc);
            write_file(path, config, strlen(config));
            if (!missing) {
                snprintf(path, sizeof path, "%s/%s", out, bl);
                write_file(path, layer.p, layer.n);
            }
        } else if (!strcmp(kind, "oci-archive")) {
            a = tar_open_mem(&outer);
            tar_add(a, "oci-layout", layout, strlen(layout));
            tar_add(a, "index.json", index, strlen(index));
            tar_add(a, bm, manifest, strlen(manifest));
            tar_add(a, bc, config, strlen(config));
            if (!missing)
                tar_add(a, bl, layer.p, layer.n);
            archive_write_close(a);
            archive_write_free(a);
            write_file(out, outer.p, outer.n);
        } else {
            fprintf(stderr, "mksources: unknown image kind '%s'\n", kind);
            return 2;
        }
    }
    printf("sha256:%s\n", chex);
    free(index);
    free(manifest);
    free(config);
    free(layer.p);
    free(outer.p);
    return 0;
}

static int cmd_tamper(int argc, char **argv)
{
    struct stat st;
    unsigned char c;
    int fd;
    if (argc < 3)
        return fprintf(stderr, "usage: mksources tamper FILE\n"), 2;
    if ((fd = open(argv[2], O_RDWR)) < 0 || fstat(fd, &st) != 0 || st.st_size == 0)
        die("cannot open", argv[2]);
    if (pread(fd, &c, 1, st.st_size / 2) != 1)
        die("cannot read", argv[2]);
    c ^= 0x55;
    if (pwrite(fd, &c, 1, st.st_size / 2) != 1)
        die("cannot write", argv[2]);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "hf"))
        return cmd_hf(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "ollama"))
        return cmd_ollama(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "image"))
        return cmd_image(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "tamper"))
        return cmd_tamper(argc, argv);
    fprintf(stderr, "usage: mksources hf|tamper ...\n");
    return 2;
}
