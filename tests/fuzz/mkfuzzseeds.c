/*
 * mkfuzzseeds.c - writes the fuzz_bundle seed corpus: small bundles (a few
 * KiB: 512-byte tar blocks, tiny payloads) signed with the test-only key
 * tests/fuzz/fuzz-test.key, whose public half fuzz_bundle trusts
 * (ap_fuzz_trusted_pub in targets.c). Output is deterministic.
 *
 * usage: mkfuzzseeds SECRET_KEY OUTDIR
 *   OUTDIR/ok-good.tar          a valid bundle (verify passes)
 *   OUTDIR/ok-good.tar.zst      the same, zstd-compressed
 *   OUTDIR/sha-mismatch.tar     an artifact's bytes changed after signing
 *   OUTDIR/order.tar            two artifacts swapped
 *   OUTDIR/symlink.tar          an artifact that is a symbolic link
 *   OUTDIR/traversal-lock.tar   a signed lock naming "../escape"
 *   OUTDIR/unsigned.tar         no signature entry
 */
#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "lock.h"
#include "sign.h"
#include "util.h"

#define NART 4

typedef struct art {
    const char *path, *role;
    unsigned mode;
    const char *data;
} art;

static const char *outdir;
static ap_seckey *key;

static void die(const char *fmt, ...) AP_PRINTF(1, 2);
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mkfuzzseeds: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static char *lock_text(const art *a, size_t n)
{
    json_t *root = json_object(), *arts = json_array();
    uint64_t total = 0;
    char *s;
    json_object_set_new(root, "format", json_string(AP_LOCK_FORMAT));
    json_object_set_new(root, "metadata",
                        json_pack("{s:s,s:s,s:i,s:s}", "name", "fuzz", "version", "1.0.0",
                                  "sequence", 1, "created", "2026-01-01T00:00:00Z"));
    json_object_set_new(root, "target", json_pack("{s:s}", "site", "fuzz"));
    json_object_set_new(root, "analysis",
                        json_pack("{s:{s:s,s:s},s:[],s:{s:i,s:i,s:i,s:i,s:b}}", "tool", "name",
                                  "airpack", "version", "0.1.0", "findings", "summary", "errors", 0,
                                  "warnings", 0, "notes", 0, "waived", 0, "passed", 1));
    for (size_t i = 0; i < n; i++) {
        uint8_t sha[AP_SHA256_LEN];
        char hex[65], mode[8];
        if (ap_sha256_buffer(a[i].data, strlen(a[i].data), sha) != AP_OK)
            die("sha256");
        ap_hex_encode(sha, sizeof sha, hex);
        snprintf(mode, sizeof mode, "%04o", a[i].mode);
        json_array_append_new(arts, json_pack("{s:s,s:I,s:s,s:s,s:s}", "path", a[i].path, "size",
                                              (json_int_t)strlen(a[i].data), "sha256", hex, "mode",
                                              mode, "role", a[i].role));
        total += strlen(a[i].data);
    }
    json_object_set_new(root, "artifacts", arts);
    json_object_set_new(root, "totals", json_pack("{s:I,s:I}", "artifacts", (json_int_t)n, "bytes",
                                                  (json_int_t)total));
    s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        die("json");
    return s;
}

static void entry(struct archive *w, const char *name, unsigned type, unsigned mode,
                  const char *data)
{
    struct archive_entry *e = archive_entry_new();
    size_t len = type == AE_IFREG ? strlen(data) : 0;
    archive_entry_set_pathname(e, name);
    archive_entry_set_mtime(e, 1767225600, 0);
    archive_entry_set_filetype(e, type);
    if (type == AE_IFLNK)
        archive_entry_set_symlink(e, data);
    archive_entry_set_perm(e, mode);
    archive_entry_set_size(e, (la_int64_t)len);
    if (archive_write_header(w, e) < ARCHIVE_WARN)
        die("header '%s': %s", name, archive_error_string(w));
    if (len && archive_write_data(w, data, len) != (la_ssize_t)len)
        die("data '%s': %s", name, archive_error_string(w));
    archive_entry_free(e);
}

/* flags */
enum { F_ZSTD = 1, F_TAMPER = 2, F_SWAP = 4, F_SYMLINK = 8, F_NOSIG = 16 };

static void bundle(const char *file, const art *arts, size_t n, int flags)
{
    char path[4096], *lock = lock_text(arts, n), *sig = NULL;
    size_t siglen;
    ap_error err;
    struct archive *w = archive_write_new();
    if (ap_sign(key, lock, strlen(lock), "file:airpack.lock.json name:fuzz version:1.0.0 sequence:1",
                &sig, &siglen, &err) != AP_OK)
        die("%s", err.msg);
    snprintf(path, sizeof path, "%s/%s", outdir, file);
    archive_write_set_format_pax_restricted(w);
    archive_write_set_bytes_per_block(w, 512);
    if (flags & F_ZSTD)
        archive_write_add_filter_zstd(w);
    if (archive_write_open_filename(w, path) != ARCHIVE_OK)
        die("open '%s': %s", path, archive_error_string(w));
    entry(w, AP_LOCK_NAME, AE_IFREG, 0644, lock);
    if (!(flags & F_NOSIG))
        entry(w, AP_LOCK_SIG_NAME, AE_IFREG, 0644, sig);
    for (size_t k = 0; k < n; k++) {
        size_t i = k;
        if ((flags & F_SWAP) && k < 2)
            i = 1 - k;
        if ((flags & F_TAMPER) && i == n - 1)
            entry(w, arts[i].path, AE_IFREG, arts[i].mode, "tampered!\n");
        else if ((flags & F_SYMLINK) && i == n - 1)
            entry(w, arts[i].path, AE_IFLNK, 0777, "/etc/passwd");
        else
            entry(w, arts[i].path, AE_IFREG, arts[i].mode, arts[i].data);
    }
    if (archive_write_close(w) != ARCHIVE_OK)
        die("close '%s': %s", path, archive_error_string(w));
    archive_write_free(w);
    free(lock);
    free(sig);
}

int main(int argc, char **argv)
{
    ap_error err;
    static const char sums[] =
        "0000000000000000000000000000000000000000000000000000000000000000  payload/models/m/model.gguf\n";
    art good[NART] = {
        {"SHA256SUMS", "checksums", 0644, sums},
        {"sbom.cdx.json", "sbom", 0644, "{\"bomFormat\":\"CycloneDX\"}\n"},
        {"payload/models/m/model.gguf", "model", 0644, "GGUF\3\0\0\0"},
        {"payload/runtimes/rt/bin/run.sh", "runtime", 0755, "#!/bin/sh\nexec true\n"},
    };
    art trav[NART];
    if (argc != 3)
        die("usage: mkfuzzseeds SECRET_KEY OUTDIR");
    outdir = argv[2];
    if (sodium_init() < 0)
        die("cannot initialise libsodium");
    if (ap_seckey_load(argv[1], NULL, &key, &err) != AP_OK)
        die("%s", err.msg);
    bundle("ok-good.tar", good, NART, 0);
    bundle("ok-good.tar.zst", good, NART, F_ZSTD);
    bundle("sha-mismatch.tar", good, NART, F_TAMPER);
    bundle("order.tar", good, NART, F_SWAP);
    bundle("symlink.tar", good, NART, F_SYMLINK);
    bundle("unsigned.tar", good, NART, F_NOSIG);
    memcpy(trav, good, sizeof trav);
    trav[NART - 1].path = "payload/runtimes/../../escape";
    bundle("traversal-lock.tar", trav, NART, 0);
    ap_seckey_free(key);
    return 0;
}
