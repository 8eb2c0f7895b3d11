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
 *   mksources tamper FILE
 *       Flip one byte in the middle of FILE (in place, through links).
 */
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
    if (argc >= 2 && !strcmp(argv[1], "tamper"))
        return cmd_tamper(argc, argv);
    fprintf(stderr, "usage: mksources hf|tamper ...\n");
    return 2;
}
