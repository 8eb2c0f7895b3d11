/*
 * mkhostile.c - the hostile-bundle generator (docs/threat-model.md).
 *
 * usage: mkhostile OUTDIR
 *        mkhostile --big OUTDIR MIB SHARDS   (benchmark bundle, see below)
 *
 * Writes, with libarchive and real minisign signatures (src/sign.h):
 *   OUTDIR/trusted.pub, trusted.key        the key the tests trust
 *   OUTDIR/other.pub, other.key            a second trusted key (keyring folders)
 *   OUTDIR/untrusted.pub, untrusted.key    a key the tests never trust
 *   OUTDIR/keys/                           a folder with trusted.pub and other.pub
 *   OUTDIR/good.tar                        a valid bundle, sequence 5
 *   OUTDIR/good-v6.tar, good-v4.tar        the same deployment, sequences 6 and 4
 *   OUTDIR/good.tar.zst                    good.tar compressed with zstd
 *   OUTDIR/good-legacy.tar                 signed with the legacy "Ed" algorithm
 *   OUTDIR/good-other.tar                  signed by other.key
 *   OUTDIR/hostile/NAME.tar[.zst]          one hostile bundle per case
 *   OUTDIR/hostile/cases.tsv               "NAME<TAB>FAULT" for every case, where
 *                                          FAULT is the fault code `airpack verify
 *                                          --format json` must report (one of
 *                                          several allowed: "a|b")
 * --big writes OUTDIR/trusted.pub, trusted.key and OUTDIR/big-SHARDS.tar: a
 * valid bundle whose model is MIB MiB of pseudo-random bytes split into
 * SHARDS equal shards, streamed in 1 MiB blocks (memory stays small).
 *
 * Every hostile case is a real tar: the generator builds the good bundle's
 * entries, then breaks exactly one thing. Cases whose hostile content sits
 * in the lock itself ("*-lock") are signed by the trusted key: the lock's
 * own checks must refuse them. The absolute-path cases name
 * /tmp/airpack-hostile-<pid>-* so a test can check nothing was written.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "digest.h"
#include "lock.h"
#include "sign.h"
#include "util.h"

#define MAXE 16

struct ent {
    char name[6000];       /* entry name in the tar */
    int type;              /* AE_IFREG, AE_IFLNK, ... ; 'H' for a hardlink */
    unsigned mode;         /* permission bits */
    uint8_t *data;         /* contents (owned) */
    size_t len;            /* bytes */
    char link[256];        /* symlink or hardlink target */
};

struct art {               /* one lock artifact */
    char path[6000];
    uint64_t size;
    uint8_t sha[32];
    unsigned mode;
    const char *role;
};

struct bundle {
    struct ent e[MAXE];    /* entries after lock and signature */
    size_t ne;
    struct art a[MAXE];    /* the lock's artifacts */
    size_t na;
    uint64_t sequence;
    const char *version;
    const char *expires;   /* or NULL */
    size_t lock_pad;       /* bytes of description padding (overlong lock) */
    int sign_key;          /* 0 trusted, 1 untrusted, 2 other */
    int legacy;            /* sign with "Ed" */
    int no_sig;            /* leave the signature entry out */
    char *sig_override;    /* use this signature text */
    char *lock_override;   /* use this lock text */
    int zstd;
    uint64_t zero_tail;    /* bytes of zeros after the archive (inside the stream) */
    const char *garbage_tail; /* bytes appended to the file */
    long truncate_by;      /* bytes cut from the end of the file */
    long truncate_to;      /* or: bytes kept */
    int sig_alg_xx;        /* unknown signature algorithm */
    int block512;          /* no record padding: the file ends with the end marker */
};

static const char *outdir;
static ap_seckey *keys[3];
static const char *keyfile[3] = {"trusted.key", "untrusted.key", "other.key"};
static FILE *cases;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mkhostile: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static char *outpath(const char *name)
{
    char *p = ap_path_join(outdir, name);
    if (!p)
        die("out of memory");
    return p;
}

static void add(struct bundle *b, const char *name, const char *role, unsigned mode,
                const void *data, size_t len)
{
    struct ent *e = &b->e[b->ne++];
    struct art *a = &b->a[b->na++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->type = AE_IFREG;
    e->mode = mode;
    e->data = malloc(len ? len : 1);
    memcpy(e->data, data, len);
    e->len = len;
    snprintf(a->path, sizeof a->path, "%s", name);
    a->size = len;
    if (ap_sha256_buffer(data, len, a->sha) != AP_OK)
        die("sha256");
    a->mode = mode;
    a->role = role;
}

/* The good bundle: every role, a 1 MiB model (several blocks per entry). */
static void good(struct bundle *b, uint64_t seq, const char *version)
{
    static uint8_t *model;
    static const size_t model_len = 1u << 20;
    char sums[4096];
    const char *sbom = "{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\"}\n";
    const char *report = "{\"version\":\"2.1.0\",\"runs\":[]}\n";
    const char *tok = "{\"model\":{\"type\":\"BPE\"}}\n";
    const char *run = "#!/bin/sh\necho serving\n";
    const char *conf = "listen: 127.0.0.1:8000\n";
    struct { const char *path; const void *d; size_t n; } f[6];
    size_t k = 0;

    memset(b, 0, sizeof *b);
    if (!model) {
        model = malloc(model_len);
        for (size_t i = 0; i < model_len; i++)
            model[i] = (uint8_t)((i * 2654435761u) >> 13);
    }
    f[0].path = AP_SBOM_NAME, f[0].d = sbom, f[0].n = strlen(sbom);
    f[1].path = AP_REPORT_NAME, f[1].d = report, f[1].n = strlen(report);
    f[2].path = "payload/models/tiny/model.gguf", f[2].d = model, f[2].n = model_len;
    f[3].path = "payload/models/tiny/tokenizer.json", f[3].d = tok, f[3].n = strlen(tok);
    f[4].path = "payload/runtimes/rt/bin/run.sh", f[4].d = run, f[4].n = strlen(run);
    f[5].path = "payload/files/etc/app/config.yaml", f[5].d = conf, f[5].n = strlen(conf);
    sums[0] = '\0';
    for (size_t i = 0; i < 6; i++) {
        uint8_t d[32];
        char hex[65];
        if (ap_sha256_buffer(f[i].d, f[i].n, d) != AP_OK)
            die("sha256");
        ap_hex_encode(d, 32, hex);
        k += (size_t)snprintf(sums + k, sizeof sums - k, "%s  %s\n", hex, f[i].path);
    }
    add(b, AP_SUMS_NAME, "checksums", 0644, sums, strlen(sums));
    add(b, f[0].path, "sbom", 0644, f[0].d, f[0].n);
    add(b, f[1].path, "report", 0644, f[1].d, f[1].n);
    add(b, f[2].path, "model", 0644, f[2].d, f[2].n);
    add(b, f[3].path, "model", 0644, f[3].d, f[3].n);
    add(b, f[4].path, "runtime", 0755, f[4].d, f[4].n);
    add(b, f[5].path, "file", 0644, f[5].d, f[5].n);
    b->sequence = seq;
    b->version = version;
}

static void release(struct bundle *b)
{
    for (size_t i = 0; i < b->ne; i++)
        free(b->e[i].data);
    free(b->sig_override);
    free(b->lock_override);
    memset(b, 0, sizeof *b);
}

static char *lock_text(const struct bundle *b)
{
    json_t *root = json_object(), *md = json_object(), *arts = json_array();
    uint64_t total = 0;
    char *s;
    json_object_set_new(root, "format", json_string(AP_LOCK_FORMAT));
    json_object_set_new(md, "name", json_string("chat-assistant"));
    json_object_set_new(md, "version", json_string(b->version));
    json_object_set_new(md, "sequence", json_integer((json_int_t)b->sequence));
    json_object_set_new(md, "created", json_string("2026-01-01T00:00:00Z"));
    if (b->expires)
        json_object_set_new(md, "expires", json_string(b->expires));
    if (b->lock_pad) {
        char *pad = malloc(b->lock_pad + 1);
        memset(pad, 'x', b->lock_pad);
        pad[b->lock_pad] = '\0';
        json_object_set_new(md, "description", json_string(pad));
        free(pad);
    }
    json_object_set_new(root, "metadata", md);
    json_object_set_new(root, "target", json_pack("{s:s}", "site", "test-site"));
    json_object_set_new(root, "analysis",
                        json_pack("{s:{s:s,s:s},s:[],s:{s:i,s:i,s:i,s:i,s:b}}", "tool", "name",
                                  "airpack", "version", "0.1.0", "findings", "summary", "errors", 0,
                                  "warnings", 0, "notes", 0, "waived", 0, "passed", 1));
    for (size_t i = 0; i < b->na; i++) {
        char hex[65], mode[8];
        ap_hex_encode(b->a[i].sha, 32, hex);
        snprintf(mode, sizeof mode, "%04o", b->a[i].mode);
        json_array_append_new(arts, json_pack("{s:s,s:I,s:s,s:s,s:s}", "path", b->a[i].path,
                                              "size", (json_int_t)b->a[i].size, "sha256", hex,
                                              "mode", mode, "role", b->a[i].role));
        total += b->a[i].size;
    }
    json_object_set_new(root, "artifacts", arts);
    json_object_set_new(root, "totals", json_pack("{s:I,s:I}", "artifacts", (json_int_t)b->na,
                                                  "bytes", (json_int_t)total));
    s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        die("json");
    return s;
}

/* A legacy ("Ed", not prehashed) signature: minisign -l. The secret key
 * bytes are read from the unencrypted key file (offset 62, see sign.c). */
static char *sign_legacy(const char *keypath, const char *msg, size_t len, const char *comment)
{
    char *txt = NULL, *line, *save = NULL;
    size_t n;
    uint8_t raw[158], sigbuf[74], global[64];
    uint8_t *tc;
    size_t tclen = strlen(comment);
    char b64a[200], b64b[200], *out;
    ap_error err;

    if (ap_read_file(keypath, 4096, &txt, &n, &err) != AP_OK)
        die("%s", err.msg);
    strtok_r(txt, "\n", &save);
    line = strtok_r(NULL, "\n", &save);
    if (!line || sodium_base642bin(raw, sizeof raw, line, strlen(line), NULL, &n, NULL,
                                   sodium_base64_VARIANT_ORIGINAL) != 0 || n != sizeof raw)
        die("cannot read secret key for the legacy signature");
    memcpy(sigbuf, "Ed", 2);
    memcpy(sigbuf + 2, raw + 54, 8);
    crypto_sign_detached(sigbuf + 10, NULL, (const uint8_t *)msg, len, raw + 62);
    tc = malloc(64 + tclen);
    memcpy(tc, sigbuf + 10, 64);
    memcpy(tc + 64, comment, tclen);
    crypto_sign_detached(global, NULL, tc, 64 + tclen, raw + 62);
    free(tc);
    sodium_bin2base64(b64a, sizeof b64a, sigbuf, sizeof sigbuf, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b64b, sizeof b64b, global, sizeof global, sodium_base64_VARIANT_ORIGINAL);
    out = malloc(1024 + tclen);
    snprintf(out, 1024 + tclen,
             "untrusted comment: legacy signature\n%s\ntrusted comment: %s\n%s\n", b64a, comment,
             b64b);
    sodium_memzero(raw, sizeof raw);
    free(txt);
    return out;
}

static char *sign_text(const struct bundle *b, const char *lock, size_t len)
{
    char comment[256], *sig = NULL;
    size_t n;
    ap_error err;
    snprintf(comment, sizeof comment,
             "file:airpack.lock.json name:chat-assistant version:%s sequence:%llu", b->version,
             (unsigned long long)b->sequence);
    if (b->legacy) {
        char *kp = outpath(keyfile[b->sign_key]);
        sig = sign_legacy(kp, lock, len, comment);
        free(kp);
        return sig;
    }
    if (ap_sign(keys[b->sign_key], lock, len, comment, &sig, &n, &err) != AP_OK)
        die("%s", err.msg);
    if (b->sig_alg_xx) {
        /* rewrite the algorithm bytes "ED" -> "XX" in the base64 line */
        char *l2 = strchr(sig, '\n') + 1, *end = strchr(l2, '\n');
        uint8_t raw[74];
        size_t rn;
        char b64[200];
        if (sodium_base642bin(raw, sizeof raw, l2, (size_t)(end - l2), NULL, &rn, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 || rn != 74)
            die("signature layout");
        raw[0] = 'X';
        raw[1] = 'X';
        sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
        memcpy(l2, b64, strlen(b64));
    }
    return sig;
}

/* Bytes of extended attribute (a pax header record) added to every
 * artifact entry: the pax-header bomb. */
static size_t g_xattr_bytes;

static void write_entry(struct archive *w, const char *name, int type, unsigned mode,
                        const void *data, size_t len, const char *link)
{
    struct archive_entry *e = archive_entry_new();
    if (g_xattr_bytes && strcmp(name, AP_LOCK_NAME) != 0 && strcmp(name, AP_LOCK_SIG_NAME) != 0) {
        char *x = malloc(g_xattr_bytes);
        memset(x, 'x', g_xattr_bytes);
        archive_entry_xattr_add_entry(e, "user.bomb", x, g_xattr_bytes);
        free(x);
    }
    archive_entry_set_pathname(e, name);
    archive_entry_set_mtime(e, 1767225600, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (type == 'H') {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, link);
        archive_entry_set_size(e, 0);
        len = 0;
    } else {
        archive_entry_set_filetype(e, (unsigned)type);
        if (type == AE_IFLNK)
            archive_entry_set_symlink(e, link);
        if (type == AE_IFCHR)
            archive_entry_set_rdev(e, makedev(1, 3));
        archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)len : 0);
        if (type != AE_IFREG)
            len = 0;
    }
    archive_entry_set_perm(e, mode);
    if (archive_write_header(w, e) < ARCHIVE_WARN)
        die("write header '%s': %s", name, archive_error_string(w));
    if (len && archive_write_data(w, data, len) != (la_ssize_t)len)
        die("write data '%s': %s", name, archive_error_string(w));
    archive_entry_free(e);
}

static void write_bundle(struct bundle *b, const char *file)
{
    char *path = outpath(file), *lock, *sig;
    struct archive *w = archive_write_new();
    size_t llen;

    lock = b->lock_override ? strdup(b->lock_override) : lock_text(b);
    llen = strlen(lock);
    sig = b->sig_override ? strdup(b->sig_override) : sign_text(b, lock, llen);
    archive_write_set_format_pax_restricted(w);
    archive_write_set_bytes_per_block(w, b->block512 ? 512 : 10240);
    if (b->zstd)
        archive_write_add_filter_zstd(w);
    if (archive_write_open_filename(w, path) != ARCHIVE_OK)
        die("open '%s': %s", path, archive_error_string(w));
    write_entry(w, AP_LOCK_NAME, AE_IFREG, 0644, lock, llen, NULL);
    if (!b->no_sig)
        write_entry(w, AP_LOCK_SIG_NAME, AE_IFREG, 0644, sig, strlen(sig), NULL);
    for (size_t i = 0; i < b->ne; i++)
        write_entry(w, b->e[i].name, b->e[i].type, b->e[i].mode, b->e[i].data, b->e[i].len,
                    b->e[i].link);
    if (archive_write_close(w) != ARCHIVE_OK)
        die("close '%s': %s", path, archive_error_string(w));
    archive_write_free(w);
    if (b->zero_tail) {
        /* re-compress: raw tar + zeros through zstd */
        struct archive *z = archive_write_new();
        char *tmp = outpath("tmp.tar");
        char *raw = NULL;
        size_t rn;
        ap_error err;
        uint8_t *zeros = calloc(1, 1u << 20);
        if (!b->zstd)
            die("zero_tail needs zstd");
        /* rebuild uncompressed to read it back */
        b->zstd = 0;
        b->zero_tail = 0;
        write_bundle(b, "tmp.tar");
        b->zstd = 1;
        if (ap_read_file(tmp, 64u << 20, &raw, &rn, &err) != AP_OK)
            die("%s", err.msg);
        archive_write_set_format_raw(z);
        archive_write_add_filter_zstd(z);
        archive_write_open_filename(z, path);
        {
            struct archive_entry *e = archive_entry_new();
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_pathname(e, "data");
            archive_write_header(z, e);
            archive_entry_free(e);
        }
        archive_write_data(z, raw, rn);
        for (uint64_t t = 0; t < (64u << 20); t += 1u << 20)
            archive_write_data(z, zeros, 1u << 20);
        if (archive_write_close(z) != ARCHIVE_OK)
            die("zstd bomb: %s", archive_error_string(z));
        archive_write_free(z);
        unlink(tmp);
        free(tmp);
        free(raw);
        free(zeros);
    }
    if (b->garbage_tail) {
        FILE *f = fopen(path, "ab");
        fputs(b->garbage_tail, f);
        fclose(f);
    }
    if (b->truncate_by || b->truncate_to) {
        struct stat st;
        if (stat(path, &st) != 0 ||
            truncate(path, b->truncate_to ? b->truncate_to : st.st_size - b->truncate_by) != 0)
            die("truncate '%s'", path);
    }
    free(lock);
    free(sig);
    free(path);
}

/* A ustar header block of type typ for a body of size bytes. */
static void ustar_header(uint8_t h[512], const char *name, unsigned long size, char typ)
{
    unsigned sum = 0;
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    snprintf((char *)h + 124, 12, "%011lo", size);
    memcpy(h + 136, "00000000000", 12);
    h[156] = (uint8_t)typ;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* A zstd bundle that expands without end inside the archive: the good
 * lock and signature, then pax global headers ('g', which a tar reader
 * consumes without returning an entry) for 256 MiB. */
static void header_bomb(struct bundle *b, const char *file)
{
    char *tmp = outpath("tmp.tar"), *path = outpath(file), *raw = NULL;
    size_t rn;
    ap_error err;
    struct archive *z = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    static const char rec[] = "18 comment=hello\n";
    uint8_t blk[1024];

    for (size_t i = 0; i < b->ne; i++) /* lock and signature only; the lock still lists them */
        free(b->e[i].data);
    b->ne = 0;
    b->block512 = 1;
    write_bundle(b, "tmp.tar");
    if (ap_read_file(tmp, 64u << 20, &raw, &rn, &err) != AP_OK || rn < 1024)
        die("header bomb");
    ustar_header(blk, "pax_global_header", sizeof rec - 1, 'g');
    memset(blk + 512, 0, 512);
    memcpy(blk + 512, rec, sizeof rec - 1);
    archive_write_set_format_raw(z);
    archive_write_add_filter_zstd(z);
    if (archive_write_open_filename(z, path) != ARCHIVE_OK)
        die("open '%s'", path);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_pathname(e, "data");
    archive_write_header(z, e);
    archive_entry_free(e);
    archive_write_data(z, raw, rn - 1024); /* without the end marker */
    for (unsigned long i = 0; i < (256ul << 20) / sizeof blk; i++)
        archive_write_data(z, blk, sizeof blk);
    memset(blk, 0, sizeof blk);
    archive_write_data(z, blk, sizeof blk);
    if (archive_write_close(z) != ARCHIVE_OK)
        die("header bomb: %s", archive_error_string(z));
    archive_write_free(z);
    unlink(tmp);
    free(tmp);
    free(path);
    free(raw);
}

static void hostile(struct bundle *b, const char *name, const char *expect)
{
    char file[256];
    snprintf(file, sizeof file, "hostile/%s.tar%s", name, b->zstd ? ".zst" : "");
    write_bundle(b, file);
    fprintf(cases, "%s.tar%s\t%s\n", name, b->zstd ? ".zst" : "", expect);
    release(b);
}

/* Replace entry i's name (and, with in_lock, the lock artifact's path). */
static void rename_entry(struct bundle *b, size_t i, const char *name, int in_lock)
{
    snprintf(b->e[i].name, sizeof b->e[i].name, "%s", name);
    if (in_lock)
        snprintf(b->a[i].path, sizeof b->a[i].path, "%s", name);
}

static void swap_ent(struct bundle *b, size_t i, size_t j)
{
    struct ent t = b->e[i];
    b->e[i] = b->e[j];
    b->e[j] = t;
}

/* ---- --big: a large benchmark bundle, streamed ---- */

static void fill(uint8_t *b, size_t n, uint64_t *st)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t x = *st;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *st = x;
        memcpy(b + i, &x, 8);
    }
}

static int big(const char *out, unsigned long mib, unsigned long shards)
{
    struct bundle b;
    uint8_t *blk = malloc(1u << 20);
    uint64_t shard_bytes;
    char name[128], *path, *lock, *sig;
    struct archive *w;
    ap_error err;
    char *p, *p2;

    outdir = out;
    mkdir(outdir, 0755);
    p = outpath("trusted.pub");
    p2 = outpath("trusted.key");
    /* keep an existing key pair: several big bundles share it */
    if ((access(p2, F_OK) != 0 && ap_keygen(p, p2, NULL, 1, &err) != AP_OK) ||
        ap_seckey_load(p2, NULL, &keys[0], &err) != AP_OK)
        die("%s", err.msg);
    free(p);
    free(p2);
    if (!blk || shards == 0 || shards > 10 || mib < shards)
        die("--big: 1..10 shards, at least 1 MiB each");
    shard_bytes = (uint64_t)(mib / shards) << 20;
    good(&b, 1, "1.0.0");
    /* replace the small model by the shards: hash them first */
    free(b.e[3].data);
    memmove(&b.e[3], &b.e[4], (b.ne - 4) * sizeof b.e[0]);
    memmove(&b.a[3], &b.a[4], (b.na - 4) * sizeof b.a[0]);
    b.ne--, b.na--;
    memmove(&b.e[3 + shards], &b.e[3], (b.ne - 3) * sizeof b.e[0]);
    memmove(&b.a[3 + shards], &b.a[3], (b.na - 3) * sizeof b.a[0]);
    b.ne += shards, b.na += shards;
    for (unsigned long s = 0; s < shards; s++) {
        struct ent *e = &b.e[3 + s];
        struct art *a = &b.a[3 + s];
        ap_sha256 *h = ap_sha256_new();
        uint64_t st = 0x9E3779B97F4A7C15ull * (s + 1);
        memset(e, 0, sizeof *e);
        memset(a, 0, sizeof *a);
        snprintf(e->name, sizeof e->name, "payload/models/big/model-%05lu-of-%05lu.safetensors",
                 s + 1, shards);
        snprintf(a->path, sizeof a->path, "%s", e->name);
        e->type = AE_IFREG, e->mode = 0644, e->len = 0, e->data = NULL;
        a->size = shard_bytes, a->mode = 0644, a->role = "model";
        for (uint64_t done = 0; done < shard_bytes; done += 1u << 20) {
            fill(blk, 1u << 20, &st);
            if (ap_sha256_update(h, blk, 1u << 20) != AP_OK)
                die("sha256");
        }
        if (ap_sha256_final(h, a->sha) != AP_OK)
            die("sha256");
        ap_sha256_free(h);
    }
    /* SHA256SUMS is not rewritten for the shards: the lock is what counts */
    lock = lock_text(&b);
    sig = sign_text(&b, lock, strlen(lock));
    snprintf(name, sizeof name, "big-%lu.tar", shards);
    path = outpath(name);
    w = archive_write_new();
    archive_write_set_format_pax_restricted(w);
    archive_write_set_bytes_per_block(w, 10240);
    if (archive_write_open_filename(w, path) != ARCHIVE_OK)
        die("open '%s'", path);
    write_entry(w, AP_LOCK_NAME, AE_IFREG, 0644, lock, strlen(lock), NULL);
    write_entry(w, AP_LOCK_SIG_NAME, AE_IFREG, 0644, sig, strlen(sig), NULL);
    for (size_t i = 0; i < b.ne; i++) {
        if (i >= 3 && i < 3 + shards) {
            struct archive_entry *e = archive_entry_new();
            uint64_t st = 0x9E3779B97F4A7C15ull * (i - 3 + 1);
            archive_entry_set_pathname(e, b.e[i].name);
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)shard_bytes);
            archive_entry_set_mtime(e, 1767225600, 0);
            if (archive_write_header(w, e) < ARCHIVE_WARN)
                die("header");
            archive_entry_free(e);
            for (uint64_t done = 0; done < shard_bytes; done += 1u << 20) {
                fill(blk, 1u << 20, &st);
                if (archive_write_data(w, blk, 1u << 20) != (la_ssize_t)(1u << 20))
                    die("write");
            }
            continue;
        }
        write_entry(w, b.e[i].name, b.e[i].type, b.e[i].mode, b.e[i].data, b.e[i].len, NULL);
    }
    if (archive_write_close(w) != ARCHIVE_OK)
        die("close");
    archive_write_free(w);
    free(path);
    free(lock);
    free(sig);
    free(blk);
    release(&b);
    ap_seckey_free(keys[0]);
    return 0;
}

int main(int argc, char **argv)
{
    struct bundle b;
    char abs1[128], abs2[128], longp[5200];
    ap_error err;
    char *p, *p2;
    const char *kn[3][2] = {{"trusted.pub", "trusted.key"},
                            {"untrusted.pub", "untrusted.key"},
                            {"other.pub", "other.key"}};

    if (sodium_init() < 0)
        die("libsodium");
    if (argc == 5 && strcmp(argv[1], "--big") == 0)
        return big(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10));
    if (argc != 2)
        die("usage: mkhostile OUTDIR | mkhostile --big OUTDIR MIB SHARDS");
    outdir = argv[1];
    mkdir(outdir, 0755);
    p = outpath("hostile");
    mkdir(p, 0755);
    free(p);
    p = outpath("keys");
    mkdir(p, 0755);
    free(p);
    for (int i = 0; i < 3; i++) {
        p = outpath(kn[i][0]);
        p2 = outpath(kn[i][1]);
        if (ap_keygen(p, p2, NULL, 1, &err) != AP_OK || ap_seckey_load(p2, NULL, &keys[i], &err) != AP_OK)
            die("%s", err.msg);
        if (i != 1) {
            char *kp = ap_path_join(outdir, i == 0 ? "keys/trusted.pub" : "keys/other.pub");
            char *txt;
            size_t n;
            FILE *f;
            if (ap_read_file(p, 4096, &txt, &n, &err) != AP_OK || !(f = fopen(kp, "w")))
                die("copy key");
            fwrite(txt, 1, n, f);
            fclose(f);
            free(txt);
            free(kp);
        }
        free(p);
        free(p2);
    }
    p = outpath("hostile/cases.tsv");
    if (!(cases = fopen(p, "w")))
        die("cannot write '%s'", p);
    free(p);

    /* the good bundles */
    good(&b, 5, "1.0.0"), write_bundle(&b, "good.tar"), release(&b);
    good(&b, 6, "1.1.0"), write_bundle(&b, "good-v6.tar"), release(&b);
    good(&b, 4, "0.9.0"), write_bundle(&b, "good-v4.tar"), release(&b);
    good(&b, 5, "1.0.0"), b.zstd = 1, write_bundle(&b, "good.tar.zst"), release(&b);
    good(&b, 5, "1.0.0"), b.legacy = 1, write_bundle(&b, "good-legacy.tar"), release(&b);
    good(&b, 5, "1.0.0"), b.sign_key = 2, write_bundle(&b, "good-other.tar"), release(&b);

    snprintf(abs1, sizeof abs1, "/tmp/airpack-hostile-%ld-abs", (long)getpid());
    snprintf(abs2, sizeof abs2, "/tmp/airpack-hostile-%ld-lockabs", (long)getpid());
    memset(longp, 'a', sizeof longp);
    memcpy(longp, "payload/files/", 14);
    longp[5000] = '\0';

    /* paths: in the tar only (the lock is honest) and in a signed lock */
    good(&b, 5, "1.0.0"), rename_entry(&b, 6, "../evil.txt", 0);
    hostile(&b, "traversal", "unsafe-path");
    good(&b, 5, "1.0.0"), rename_entry(&b, 6, "../evil.txt", 1);
    hostile(&b, "traversal-lock", "lock");
    good(&b, 5, "1.0.0"), rename_entry(&b, 6, "payload/files/a/../../../evil.txt", 0);
    hostile(&b, "inner-traversal", "unsafe-path");
    good(&b, 5, "1.0.0"), rename_entry(&b, 6, "payload/files/a/../../../evil.txt", 1);
    hostile(&b, "inner-traversal-lock", "lock");
    good(&b, 5, "1.0.0"), rename_entry(&b, 6, abs1, 0);
    hostile(&b, "absolute", "unsafe-path");
    good(&b, 5, "1.0.0"), rename_entry(&b, 6, abs2, 1);
    hostile(&b, "absolute-lock", "lock");
    good(&b, 5, "1.0.0"), rename_entry(&b, 6, "payload/files/bad\nname", 0);
    hostile(&b, "control-char", "unsafe-path");
    good(&b, 5, "1.0.0"), rename_entry(&b, 6, "payload/files/bad\xff\xfe", 0);
    hostile(&b, "not-utf8", "unsafe-path");
    good(&b, 5, "1.0.0"), rename_entry(&b, 6, longp, 0);
    hostile(&b, "overlong-path", "unsafe-path");
    good(&b, 5, "1.0.0"), rename_entry(&b, 6, longp, 1);
    hostile(&b, "overlong-path-lock", "lock");

    /* links, devices, FIFOs, folders */
    good(&b, 5, "1.0.0"), b.e[6].type = AE_IFLNK, snprintf(b.e[6].link, 256, "/etc/passwd");
    hostile(&b, "symlink-abs", "not-regular");
    good(&b, 5, "1.0.0"), b.e[6].type = AE_IFLNK, snprintf(b.e[6].link, 256, "../../../../etc");
    hostile(&b, "symlink-rel", "not-regular");
    good(&b, 5, "1.0.0"), b.e[6].type = 'H', snprintf(b.e[6].link, 256, "/etc/passwd");
    hostile(&b, "hardlink-abs", "not-regular");
    good(&b, 5, "1.0.0"), b.e[6].type = 'H', snprintf(b.e[6].link, 256, AP_SUMS_NAME);
    hostile(&b, "hardlink-inner", "not-regular");
    good(&b, 5, "1.0.0"), b.e[6].type = AE_IFCHR;
    hostile(&b, "device", "not-regular");
    good(&b, 5, "1.0.0"), b.e[6].type = AE_IFIFO;
    hostile(&b, "fifo", "not-regular");
    good(&b, 5, "1.0.0"), b.e[6].type = AE_IFDIR, snprintf(b.e[6].name, 6000, "payload/files/etc/app/config.yaml/");
    hostile(&b, "folder", "not-regular|unsafe-path");
    good(&b, 5, "1.0.0"), b.e[5].mode = 04755;
    hostile(&b, "setuid", "mode");
    good(&b, 5, "1.0.0"), b.e[5].mode = 02755;
    hostile(&b, "setgid", "mode");
    good(&b, 5, "1.0.0"), b.e[6].mode = 0666;
    hostile(&b, "mode-mismatch", "mode");

    /* set, order and count */
    good(&b, 5, "1.0.0");
    b.e[b.ne] = b.e[4];
    b.e[b.ne].data = malloc(b.e[4].len);
    memcpy(b.e[b.ne].data, b.e[4].data, b.e[4].len);
    b.ne++;
    hostile(&b, "duplicate", "duplicate");
    good(&b, 5, "1.0.0");
    b.a[b.na] = b.a[4], b.na++; /* the lock lists an artifact twice, signed */
    b.e[b.ne] = b.e[4];
    b.e[b.ne].data = malloc(b.e[4].len);
    memcpy(b.e[b.ne].data, b.e[4].data, b.e[4].len);
    b.ne++;
    hostile(&b, "duplicate-lock", "lock");
    good(&b, 5, "1.0.0");
    {
        struct ent *x = &b.e[b.ne++];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "payload/files/extra.sh");
        x->type = AE_IFREG, x->mode = 0755, x->data = (uint8_t *)strdup("#!/bin/sh\nrm -rf ~\n");
        x->len = strlen((char *)x->data);
    }
    hostile(&b, "extra-end", "unexpected");
    good(&b, 5, "1.0.0");
    {
        struct ent x;
        memset(&x, 0, sizeof x);
        snprintf(x.name, sizeof x.name, "payload/models/tiny/extra.bin");
        x.type = AE_IFREG, x.mode = 0644, x.data = (uint8_t *)strdup("evil"), x.len = 4;
        memmove(&b.e[4], &b.e[3], (b.ne - 3) * sizeof b.e[0]);
        b.e[3] = x;
        b.ne++;
    }
    hostile(&b, "extra-middle", "unexpected");
    good(&b, 5, "1.0.0"), free(b.e[6].data), b.ne--;
    hostile(&b, "missing", "missing");
    good(&b, 5, "1.0.0"), swap_ent(&b, 3, 4);
    hostile(&b, "reordered", "order");

    /* bytes and sizes */
    good(&b, 5, "1.0.0"), b.e[3].data[1000000] ^= 0x01;
    hostile(&b, "tampered", "sha256-mismatch");
    good(&b, 5, "1.0.0"), b.e[6].data[0] ^= 0x20;
    hostile(&b, "tampered-last", "sha256-mismatch");
    good(&b, 5, "1.0.0");
    b.e[6].data = realloc(b.e[6].data, b.e[6].len + 1), b.e[6].data[b.e[6].len++] = '\n';
    hostile(&b, "size-larger", "size-mismatch");
    good(&b, 5, "1.0.0"), b.e[6].len--;
    hostile(&b, "size-smaller", "size-mismatch");
    good(&b, 5, "1.0.0"), b.truncate_to = 600000; /* inside the model */
    hostile(&b, "truncated", "truncated");
    good(&b, 5, "1.0.0"), b.block512 = 1, b.truncate_by = 1024; /* no end marker */
    hostile(&b, "truncated-end", "truncated");
    good(&b, 5, "1.0.0"), b.block512 = 1, b.truncate_by = 512; /* half an end marker */
    hostile(&b, "truncated-end-half", "truncated");
    good(&b, 5, "1.0.0"), b.truncate_to = 2600; /* inside the lock or signature */
    hostile(&b, "truncated-header", "truncated|archive");
    good(&b, 5, "1.0.0"), b.garbage_tail = "#!/bin/sh\necho trailing data\n";
    hostile(&b, "trailing", "trailing-data");
    good(&b, 5, "1.0.0"), b.zstd = 1, b.truncate_by = 200;
    hostile(&b, "truncated-zstd", "truncated|archive");

    /* signatures and the lock */
    good(&b, 5, "1.0.0"), b.sign_key = 1;
    hostile(&b, "untrusted-key", "untrusted-key");
    good(&b, 5, "1.0.0"), b.no_sig = 1;
    hostile(&b, "no-signature", "signature");
    good(&b, 5, "1.0.0"), b.sig_alg_xx = 1;
    hostile(&b, "unknown-algorithm", "signature");
    {
        /* mix and match: the sequence 6 lock's valid signature on the
         * sequence 5 bundle */
        struct bundle o;
        char *olock;
        good(&o, 6, "1.1.0");
        olock = lock_text(&o);
        good(&b, 5, "1.0.0");
        b.sig_override = sign_text(&o, olock, strlen(olock));
        free(olock);
        release(&o);
        hostile(&b, "mix-and-match", "signature");
    }
    good(&b, 5, "1.0.0"), b.expires = "2020-01-01T00:00:00Z";
    hostile(&b, "expired", "expired");
    good(&b, 5, "1.0.0"), b.lock_pad = AP_LOCK_MAX_BYTES + 10;
    b.zstd = 1;
    hostile(&b, "overlong-lock", "lock");
    good(&b, 5, "1.0.0"), b.lock_override = strdup("{\"format\": \"airpack-bundle/1\", [");
    hostile(&b, "lock-not-json", "lock");
    good(&b, 5, "1.0.0"), b.zstd = 1, b.zero_tail = 1;
    hostile(&b, "zstd-bomb", "trailing-data|expansion");
    good(&b, 5, "1.0.0"), header_bomb(&b, "hostile/zstd-header-bomb.tar.zst"), release(&b);
    fprintf(cases, "zstd-header-bomb.tar.zst\texpansion|unsafe-path|archive\n");
    /* 300 KiB pax records on every artifact: the headers alone are more than
     * the lock allows for (the stream is stopped at the lock's size) */
    g_xattr_bytes = 300u << 10;
    good(&b, 5, "1.0.0"), b.zstd = 1;
    hostile(&b, "zstd-pax-bomb", "expansion");
    g_xattr_bytes = 0;
    {
        /* not a tar at all */
        char *np = outpath("hostile/not-a-tar.tar");
        FILE *f = fopen(np, "wb");
        for (int i = 0; i < 4096; i++)
            fputc((i * 7919) & 0xff, f);
        fclose(f);
        free(np);
        fprintf(cases, "not-a-tar.tar\tarchive|truncated\n");
        np = outpath("hostile/empty.tar");
        f = fopen(np, "wb");
        fclose(f);
        free(np);
        fprintf(cases, "empty.tar\tlock|archive\n");
    }
    fclose(cases);
    for (int i = 0; i < 3; i++)
        ap_seckey_free(keys[i]);
    return 0;
}
