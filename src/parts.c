/*
 * parts.c - split volumes and the parts index (see parts.h).
 */
#include "parts.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lock.h"
#include "util.h"

#define IO_BLOCK (1u << 20) /* bytes per read when checking parts */

/* ---- volume sizes ---- */

int ap_volume_size_parse(const char *s, uint64_t *out)
{
    static const struct {
        const char *name;
        uint64_t bytes;
    } presets[] = {
        {"fat32", 4294967295ull},     /* 4 GiB - 1: FAT32's largest file */
        {"dvd", 4700000000ull},       /* single-layer DVD (4.7 GB) */
        {"dvd-dl", 8500000000ull},    /* dual-layer DVD (8.5 GB) */
        {"bd25", 25000000000ull},     /* single-layer Blu-ray */
        {"bd50", 50000000000ull},     /* dual-layer Blu-ray */
    };
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {
        {"", 1},           {"b", 1},
        {"k", 1000ull},    {"kb", 1000ull},    {"kib", 1ull << 10},
        {"m", 1000000ull}, {"mb", 1000000ull}, {"mib", 1ull << 20},
        {"g", 1000000000ull}, {"gb", 1000000000ull}, {"gib", 1ull << 30},
        {"t", 1000000000000ull}, {"tb", 1000000000000ull}, {"tib", 1ull << 40},
    };
    char unit[8];
    size_t k = 0;
    uint64_t v = 0, frac = 0, fdiv = 1, r;
    const char *c = s;

    if (!s || !*s)
        return -1;
    for (size_t i = 0; i < AP_ARRAY_LEN(presets); i++) {
        if (strcasecmp(s, presets[i].name) == 0) {
            *out = presets[i].bytes;
            return 0;
        }
    }
    if (!isdigit((unsigned char)*c))
        return -1;
    for (; isdigit((unsigned char)*c); c++)
        if (!ap_mul_u64(v, 10, &v) || !ap_add_u64(v, (uint64_t)(*c - '0'), &v))
            return -1;
    if (*c == '.') {
        c++;
        if (!isdigit((unsigned char)*c))
            return -1;
        for (; isdigit((unsigned char)*c); c++) {
            if (fdiv >= 1000000000ull)
                return -1; /* at most 9 decimals */
            frac = frac * 10 + (uint64_t)(*c - '0');
            fdiv *= 10;
        }
    }
    if (*c == ' ')
        c++;
    for (; *c && k + 1 < sizeof unit; c++)
        unit[k++] = (char)tolower((unsigned char)*c);
    if (*c)
        return -1;
    unit[k] = '\0';
    for (size_t i = 0; i < AP_ARRAY_LEN(units); i++) {
        if (strcmp(unit, units[i].unit) != 0)
            continue;
        if (!ap_mul_u64(v, units[i].mul, &r))
            return -1;
        if (frac) {
            uint64_t f;
            if (!ap_mul_u64(frac, units[i].mul, &f) || !ap_add_u64(r, f / fdiv, &r))
                return -1;
        }
        if (r < AP_VOLUME_MIN)
            return -1;
        *out = r;
        return 0;
    }
    return -1;
}

/* ---- names ---- */

int ap_parts_width(uint64_t nparts)
{
    return nparts <= 99 ? 3 : 4;
}

char *ap_part_name(const char *bundle, size_t i, int width)
{
    char *s;
    if (i < 1 || i > AP_PARTS_MAX || (width == 3 && i > 99) || (width != 3 && width != 4) ||
        asprintf(&s, "%s.%0*zu", bundle, width, i) < 0)
        return NULL;
    return s;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int ap_parts_is_split_path(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return (ends_with(base, AP_PARTS_SUFFIX) && strlen(base) > strlen(AP_PARTS_SUFFIX)) ||
           ap_parts_first_width(path) != 0;
}

int ap_parts_first_width(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (ends_with(base, ".0001") && strlen(base) > 5)
        return 4;
    if (ends_with(base, ".001") && strlen(base) > 4)
        return 3;
    return 0;
}

char *ap_parts_index_path(const char *path)
{
    char *s;
    size_t n = strlen(path);
    if (ends_with(path, AP_PARTS_SUFFIX))
        return strdup(path);
    if (ap_parts_first_width(path))
        n -= (size_t)ap_parts_first_width(path) + 1;
    if (asprintf(&s, "%.*s%s", (int)n, path, AP_PARTS_SUFFIX) < 0)
        return NULL;
    return s;
}

/* A bundle or part file name: one path component, printable, no leading dot. */
static int file_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > AP_PARTS_NAME_MAX || s[0] == '.' || strchr(s, '/') || strchr(s, '\\'))
        return 0;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return 0;
    return ap_utf8_valid(s, n);
}

/* ---- the index ---- */

void ap_parts_release(ap_parts *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->parts[i].file);
    free(p->parts);
    free(p->bundle);
    free(p->name);
    free(p->version);
    memset(p, 0, sizeof *p);
}

void ap_parts_free(ap_parts *p)
{
    ap_parts_release(p);
    free(p);
}

static int bad(ap_error *err, const char *name, const char *fmt, ...) AP_PRINTF(3, 4);
static int bad(ap_error *err, const char *name, const char *fmt, ...)
{
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "invalid parts index: %s", m);
}

static int get_hex(const json_t *o, const char *key, uint8_t out[AP_SHA256_LEN])
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s || strlen(s) != AP_SHA256_HEX_LEN)
        return -1;
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return -1;
    return ap_hex_decode(s, out, AP_SHA256_LEN) ? 0 : -1;
}

static int get_u64(const json_t *o, const char *key, uint64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int only_keys(const json_t *o, const char *const *keys, const char **unknown)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        size_t i;
        for (i = 0; keys[i]; i++)
            if (strcmp(k, keys[i]) == 0)
                break;
        if (!keys[i]) {
            *unknown = k;
            return 0;
        }
    }
    return 1;
}

int ap_parts_parse(const char *name, const void *buf, size_t len, ap_parts **out, ap_error *err)
{
    static const char *const top_keys[] = {"format", "bundle", "name", "version", "sequence",
                                           "lock_sha256", "volume_size", "size", "parts", NULL};
    static const char *const part_keys[] = {"file", "size", "sha256", NULL};
    json_error_t jerr;
    json_t *root = NULL, *arr;
    ap_parts *p = NULL;
    const char *s, *unknown = NULL;
    uint64_t total = 0;
    int rc;

    *out = NULL;
    if (len > AP_PARTS_INDEX_MAX)
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0,
                               "invalid parts index: %zu bytes, more than %u", len,
                               (unsigned)AP_PARTS_INDEX_MAX);
    if (memchr(buf, '\0', len))
        return bad(err, name, "%s", "a NUL byte");
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ap_error_set_at(err, AP_ERR_INPUT, name, (unsigned)jerr.line,
                               (unsigned)jerr.column, "%s", jerr.text);
    if (!json_is_object(root)) {
        rc = bad(err, name, "%s", "not a JSON object");
        goto out;
    }
    if (!only_keys(root, top_keys, &unknown)) {
        rc = bad(err, name, "unknown key '%.200s'", unknown);
        goto out;
    }
    s = json_string_value(json_object_get(root, "format"));
    if (!s || strcmp(s, AP_PARTS_FORMAT) != 0) {
        rc = bad(err, name, "%s", "format is not '" AP_PARTS_FORMAT "'");
        goto out;
    }
    if (!(p = calloc(1, sizeof *p))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    s = json_string_value(json_object_get(root, "bundle"));
    if (!s || !file_name_ok(s)) {
        rc = bad(err, name, "%s", "'bundle' is not a plain file name");
        goto out;
    }
    p->bundle = strdup(s);
    s = json_string_value(json_object_get(root, "name"));
    if (!s || !*s || strlen(s) > 128) {
        rc = bad(err, name, "%s", "'name' is missing or too long");
        goto out;
    }
    p->name = strdup(s);
    s = json_string_value(json_object_get(root, "version"));
    if (!s || !*s || strlen(s) > 64) {
        rc = bad(err, name, "%s", "'version' is missing or too long");
        goto out;
    }
    p->version = strdup(s);
    if (!p->bundle || !p->name || !p->version) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (get_u64(root, "sequence", &p->sequence) || get_u64(root, "volume_size", &p->volume_size) ||
        get_u64(root, "size", &p->size)) {
        rc = bad(err, name, "%s", "'sequence', 'volume_size' and 'size' must be integers >= 0");
        goto out;
    }
    if (p->volume_size < AP_VOLUME_MIN) {
        rc = bad(err, name, "%s", "'volume_size' is too small");
        goto out;
    }
    if (get_hex(root, "lock_sha256", p->lock_sha256)) {
        rc = bad(err, name, "%s", "'lock_sha256' is not 64 lowercase hex digits");
        goto out;
    }
    arr = json_object_get(root, "parts");
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > AP_PARTS_MAX) {
        rc = bad(err, name, "%s", "'parts' must be an array of 1 to 999 parts");
        goto out;
    }
    p->n = json_array_size(arr);
    if (!(p->parts = calloc(p->n, sizeof *p->parts))) {
        p->n = 0;
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < p->n; i++) {
        const json_t *o = json_array_get(arr, i);
        ap_part *pt = &p->parts[i];
        char *want;
        char what[64];
        snprintf(what, sizeof what, "part %zu", i + 1);
        if (!json_is_object(o) || !only_keys(o, part_keys, &unknown)) {
            rc = bad(err, name, "%s is not an object with file, size and sha256", what);
            goto out;
        }
        s = json_string_value(json_object_get(o, "file"));
        if (i == 0) {
            /* the width of the names: what the first one uses */
            size_t bl = strlen(p->bundle);
            p->width = s && strncmp(s, p->bundle, bl) == 0 && s[bl] == '.' &&
                               strlen(s + bl + 1) == 4
                           ? 4
                           : 3;
        }
        want = ap_part_name(p->bundle, i + 1, p->width); /* NULL: past 99 with three digits */
        if (!s || !want || strcmp(s, want) != 0) {
            free(want);
            rc = bad(err, name,
                     "%s is not named '<bundle>.NNN' in order (three digits up to 99 parts, "
                     "four from 100)",
                     what);
            goto out;
        }
        pt->file = want;
        if (get_u64(o, "size", &pt->size) || get_hex(o, "sha256", pt->sha256)) {
            rc = bad(err, name, "%s: bad size or sha256", what);
            goto out;
        }
        if (pt->size == 0 || pt->size > p->volume_size ||
            (i > 0 && i + 1 < p->n && pt->size != p->volume_size) ||
            (i == 0 && p->n > 1 && pt->size < ap_parts_first_min(p->volume_size))) {
            rc = bad(err, name,
                     "%s: every part but the first and the last holds exactly volume_size "
                     "bytes, the first at least volume_size minus the signature reserve "
                     "(%llu bytes)",
                     what, (unsigned long long)AP_PARTS_SIG_RESERVE);
            goto out;
        }
        if (!ap_add_u64(total, pt->size, &total)) {
            rc = bad(err, name, "%s", "sizes overflow");
            goto out;
        }
    }
    if (total != p->size) {
        rc = bad(err, name, "%s", "'size' is not the sum of the parts' sizes");
        goto out;
    }
    *out = p;
    p = NULL;
    rc = AP_OK;
out:
    ap_parts_free(p);
    json_decref(root);
    return rc;
}

int ap_parts_dump(const ap_parts *p, char **buf, size_t *len, ap_error *err)
{
    char hex[AP_SHA256_HEX_LEN + 1];
    json_t *root, *arr;
    char *s;
    size_t n;

    ap_hex_encode(p->lock_sha256, AP_SHA256_LEN, hex);
    root = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:[]}", "format", AP_PARTS_FORMAT,
                     "bundle", p->bundle, "name", p->name, "version", p->version, "sequence",
                     (json_int_t)p->sequence, "lock_sha256", hex, "volume_size",
                     (json_int_t)p->volume_size, "size", (json_int_t)p->size, "parts");
    if (!root)
        return ap_error_set(err, AP_ERR_NOMEM, "cannot build the parts index");
    arr = json_object_get(root, "parts");
    for (size_t i = 0; i < p->n; i++) {
        ap_hex_encode(p->parts[i].sha256, AP_SHA256_LEN, hex);
        if (json_array_append_new(arr, json_pack("{s:s,s:I,s:s}", "file", p->parts[i].file,
                                                 "size", (json_int_t)p->parts[i].size, "sha256",
                                                 hex)) != 0) {
            json_decref(root);
            return ap_error_set(err, AP_ERR_NOMEM, "cannot build the parts index");
        }
    }
    s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!s)
        return ap_error_set(err, AP_ERR_NOMEM, "cannot serialise the parts index");
    n = strlen(s);
    {
        char *t = realloc(s, n + 2);
        if (!t) {
            free(s);
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        }
        *buf = t;
    }
    (*buf)[n] = '\n';
    (*buf)[n + 1] = '\0';
    *len = n + 1;
    return AP_OK;
}

int ap_parts_trusted_comment(const ap_parts *p, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "file:%s%s\tname:%s\tversion:%s\tsequence:%llu", p->bundle,
                     AP_PARTS_SUFFIX, p->name, p->version, (unsigned long long)p->sequence);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* Write data to path through a temporary file renamed over it. */
static int write_atomic(const char *path, const void *data, size_t len, ap_error *err)
{
    char *tmp = NULL;
    int fd, rc = AP_OK;
    size_t off = 0;

    if (asprintf(&tmp, "%s.XXXXXX.tmp", path) < 0)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    fd = mkostemps(tmp, 4, O_CLOEXEC);
    if (fd < 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot create", tmp);
        free(tmp);
        return rc;
    }
    if (fchmod(fd, 0644) != 0)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot set the mode of", tmp);
    while (rc == AP_OK && off < len) {
        ssize_t n = write(fd, (const char *)data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = ap_error_errno(err, AP_ERR_IO, n < 0 ? errno : EIO, "cannot write", tmp);
        else
            off += (size_t)n;
    }
    if (rc == AP_OK && fsync(fd) != 0)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
    if (close(fd) != 0 && rc == AP_OK)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
    if (rc == AP_OK && rename(tmp, path) != 0)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename onto", path);
    if (rc != AP_OK)
        unlink(tmp);
    free(tmp);
    return rc;
}

int ap_parts_write_index(const char *dir, const ap_parts *p, const char *sig, size_t sig_len,
                         ap_error *err)
{
    char *buf = NULL, *path = NULL, *sigpath = NULL;
    size_t len = 0;
    int rc;

    if ((rc = ap_parts_dump(p, &buf, &len, err)) != AP_OK)
        return rc;
    if (asprintf(&path, "%s/%s%s", dir, p->bundle, AP_PARTS_SUFFIX) < 0 ||
        asprintf(&sigpath, "%s/%s%s", dir, p->bundle, AP_PARTS_SIG_SUFFIX) < 0) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* the signature first: an index never sits beside a stale signature
     * that would pass for it */
    if ((rc = write_atomic(sigpath, sig, sig_len, err)) == AP_OK &&
        (rc = write_atomic(path, buf, len, err)) == AP_OK)
        rc = ap_fsync_dir_of(path, err);
out:
    free(buf);
    free(path);
    free(sigpath);
    return rc;
}

int ap_parts_sign_write(const char *dir, const ap_parts *p, const ap_seckey *sk, ap_error *err)
{
    char tc[AP_TRUSTED_COMMENT_MAX + 1];
    char *buf = NULL, *sig = NULL;
    size_t len = 0, sig_len = 0;
    int rc;

    if (ap_parts_trusted_comment(p, tc, sizeof tc) != 0)
        return ap_error_set(err, AP_ERR_INPUT, "the parts index's trusted comment is too long");
    if ((rc = ap_parts_dump(p, &buf, &len, err)) == AP_OK &&
        (rc = ap_sign(sk, buf, len, tc, &sig, &sig_len, err)) == AP_OK)
        rc = ap_parts_write_index(dir, p, sig, sig_len, err);
    free(buf);
    free(sig);
    return rc;
}

int ap_parts_set_lock(ap_parts *p, const void *lock, size_t lock_len, ap_error *err)
{
    ap_lock *l = NULL;
    int rc;
    if ((rc = ap_lock_parse(AP_LOCK_NAME, lock, lock_len, &l, err)) != AP_OK)
        return rc;
    free(p->name);
    free(p->version);
    p->name = strdup(l->name);
    p->version = strdup(l->version);
    p->sequence = l->sequence;
    ap_lock_free(l);
    if (!p->name || !p->version)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (ap_sha256_buffer(lock, lock_len, p->lock_sha256) != AP_OK)
        return ap_error_set(err, AP_ERR_INTERNAL, "sha-256 failed");
    return AP_OK;
}

int ap_parts_load(const char *path, const ap_keyring *keys, int allow_unsigned, ap_parts **out,
                  ap_error *err)
{
    char *buf = NULL, *sbuf = NULL, *sigpath = NULL;
    size_t len = 0, slen = 0;
    ap_signature sig;
    const ap_pubkey *signer = NULL;
    int rc;

    *out = NULL;
    if ((rc = ap_read_file(path, AP_PARTS_INDEX_MAX, &buf, &len, err)) != AP_OK)
        return rc;
    if (!keys || keys->n == 0) {
        if (!allow_unsigned) {
            rc = ap_error_set(err, AP_ERR_INPUT, "no trusted public key given");
            goto out;
        }
    } else {
        if (asprintf(&sigpath, "%s.minisig", path) < 0) {
            sigpath = NULL;
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        if ((rc = ap_read_file(sigpath, AP_KEYFILE_MAX, &sbuf, &slen, err)) != AP_OK) {
            ap_error_prefix(err, "parts index '%s' has no readable signature", path);
            goto out;
        }
        if ((rc = ap_signature_parse(sigpath, sbuf, slen, &sig, err)) != AP_OK ||
            (rc = ap_signature_verify(&sig, keys, buf, len, &signer, err)) != AP_OK) {
            ap_error_prefix(err, "parts index '%s': signature does not verify", path);
            err->status = rc = AP_ERR_CHECK;
            goto out;
        }
    }
    rc = ap_parts_parse(path, buf, len, out, err);
out:
    free(buf);
    free(sbuf);
    free(sigpath);
    return rc;
}

char **ap_parts_files(const char *path)
{
    char *ipath = ap_parts_index_path(path), *dir = NULL, *buf = NULL, **v = NULL;
    ap_parts *idx = NULL;
    size_t len = 0, n = 0;
    ap_error err;
    int width = ap_parts_first_width(path);

    if (!ipath || !(dir = ap_path_dirname(ipath)) || !(v = calloc(AP_PARTS_MAX + 1, sizeof *v)))
        goto fail;
    if (ap_read_file(ipath, AP_PARTS_INDEX_MAX, &buf, &len, &err) == AP_OK &&
        ap_parts_parse(ipath, buf, len, &idx, &err) == AP_OK) {
        for (n = 0; n < idx->n; n++)
            if (!(v[n] = ap_path_join(dir, idx->parts[n].file)))
                goto fail;
    } else if (width) {
        size_t stem = strlen(path) - (size_t)width - 1;
        for (n = 0; n < (width == 3 ? 99u : (size_t)AP_PARTS_MAX); n++) {
            if (asprintf(&v[n], "%.*s.%0*zu", (int)stem, path, width, n + 1) < 0) {
                v[n] = NULL;
                goto fail;
            }
            if (access(v[n], F_OK) != 0) {
                free(v[n]);
                v[n] = NULL;
                break;
            }
        }
    }
    if (n == 0)
        goto fail;
    ap_parts_free(idx);
    free(buf);
    free(ipath);
    free(dir);
    return v;
fail:
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
    ap_parts_free(idx);
    free(buf);
    free(ipath);
    free(dir);
    return NULL;
}

/* ---- the part writer ---- */

uint64_t ap_parts_default_reserve(uint64_t volume_size)
{
    if (volume_size >= 4 * AP_PARTS_SIG_RESERVE)
        return AP_PARTS_SIG_RESERVE;
    return (volume_size / 4) & ~(uint64_t)511;
}

uint64_t ap_parts_first_min(uint64_t volume_size)
{
    return volume_size > AP_PARTS_SIG_RESERVE ? volume_size - AP_PARTS_SIG_RESERVE : 1;
}

struct ap_partw {
    char *dir;                       /* the output's folder */
    char *base;                      /* the output's file name */
    uint64_t volume;                 /* bytes per part */
    uint64_t reserve;                /* part 1 holds volume - reserve bytes */
    uint64_t size_hint;
    int fd;                          /* the current part, or -1 */
    uint64_t in_part;                /* bytes in the current part */
    uint64_t total;
    char **tmp;                      /* temporary file of each part */
    ap_part *parts;                  /* size and hash of each finished part */
    size_t n;                        /* parts opened */
    ap_sha256 *h;
    uint8_t *dirty;                  /* per part: overwritten after it was hashed */
    int width;                       /* digits in the part names */
    int hold;                        /* part 1's temporary, flock'ed until the end (so
                                        ap_tmp_sweep leaves this writer's parts), or -1 */
};

/* The writer in flight, for the signal handler (one at a time). */
static char *volatile *volatile g_tmps;
static volatile size_t g_ntmps;

void ap_partw_unlink_tmp_on_signal(void)
{
    char *volatile *t = g_tmps;
    size_t n = g_ntmps;
    if (!t)
        return;
    for (size_t i = 0; i < n; i++)
        if (t[i])
            unlink(t[i]);
}

int ap_partw_open(const char *output, uint64_t volume_size, uint64_t size_hint, ap_partw **out,
                  ap_error *err)
{
    ap_partw *w;
    const char *slash = strrchr(output, '/');

    *out = NULL;
    if (volume_size < AP_VOLUME_MIN)
        return ap_error_set(err, AP_ERR_INPUT, "volume size %llu is below the minimum of %u bytes",
                            (unsigned long long)volume_size, AP_VOLUME_MIN);
    if (!(w = calloc(1, sizeof *w)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    w->fd = -1;
    w->hold = -1;
    w->volume = volume_size;
    w->size_hint = size_hint;
    ap_partw_set_reserve(w, ap_parts_default_reserve(volume_size));
    w->dir = ap_path_dirname(output);
    w->base = strdup(slash ? slash + 1 : output);
    w->tmp = calloc(AP_PARTS_MAX, sizeof *w->tmp);
    w->parts = calloc(AP_PARTS_MAX, sizeof *w->parts);
    w->dirty = calloc(AP_PARTS_MAX, 1);
    w->h = ap_sha256_new();
    if (!w->dir || !w->base || !w->tmp || !w->parts || !w->h || !w->dirty) {
        ap_partw_abort(w);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if (!file_name_ok(w->base) || strlen(w->base) + 4 > AP_PARTS_NAME_MAX) {
        ap_partw_abort(w);
        return ap_error_set(err, AP_ERR_INPUT, "'%s' is not a usable bundle file name", output);
    }
    /* what a killed writer of this output left behind */
    (void)ap_tmp_sweep(w->dir, w->base);
    g_ntmps = 0;
    g_tmps = w->tmp;
    *out = w;
    return AP_OK;
}

void ap_partw_set_reserve(ap_partw *w, uint64_t reserve)
{
    uint64_t first, h = w->size_hint, n = 1;
    if (w->n > 0)
        return; /* too late: part 1 is being written */
    if (reserve > AP_PARTS_SIG_RESERVE)
        reserve = AP_PARTS_SIG_RESERVE;
    if (reserve >= w->volume)
        reserve = w->volume - 1;
    w->reserve = reserve;
    first = w->volume - reserve;
    if (h > first)
        n += (h - first) / w->volume + ((h - first) % w->volume != 0);
    w->width = ap_parts_width(n);
}

/* Bytes part i (0-based) holds when full. */
static uint64_t part_cap(const ap_partw *w, size_t i)
{
    return i == 0 ? w->volume - w->reserve : w->volume;
}

static int finish_part(ap_partw *w, ap_error *err)
{
    ap_part *pt = &w->parts[w->n - 1];
    pt->size = w->in_part;
    if (ap_sha256_final(w->h, pt->sha256) != AP_OK)
        return ap_error_set(err, AP_ERR_INTERNAL, "sha-256 failed");
    if (fsync(w->fd) != 0)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot write", w->tmp[w->n - 1]);
    if (close(w->fd) != 0) {
        w->fd = -1;
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot write", w->tmp[w->n - 1]);
    }
    w->fd = -1;
    return AP_OK;
}

static int next_part(ap_partw *w, ap_error *err)
{
    char *t;
    int fd;
    sigset_t block, saved;

    if (w->width == 3 && w->n >= 99)
        return ap_error_set(err, AP_ERR_INTERNAL, "more than the 99 parts that were expected");
    if (w->n >= AP_PARTS_MAX)
        return ap_error_set(err, AP_ERR_INPUT,
                            "the bundle needs more than %d parts of %llu bytes: use a larger "
                            "--volume-size",
                            AP_PARTS_MAX, (unsigned long long)w->volume);
    if (w->n == 1) /* test hook (tests/cli/test_parts_kill.sh): kill before part 2 */
        ap_test_stall("AIRPACK_TEST_PARTS_STALL");
    if (asprintf(&t, "%s/.%s.%0*zu.XXXXXX.tmp", w->dir, w->base, w->width, w->n + 1) < 0)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    /* no signal between creating the file and registering it for cleanup */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &block, &saved);
    fd = mkostemps(t, 4, O_CLOEXEC);
    if (fd >= 0) {
        w->tmp[w->n++] = t;
        g_ntmps = w->n;
        if (w->n == 1 && flock(fd, LOCK_EX) == 0)
            w->hold = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* the lock lives with this copy */
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (fd < 0) {
        int rc = ap_error_errno(err, errno == ENOENT ? AP_ERR_INPUT : AP_ERR_IO, errno,
                                "cannot create a part in", w->dir);
        free(t);
        return rc;
    }
    if (fchmod(fd, 0644) != 0) {
        close(fd);
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot set the mode of", t);
    }
    w->fd = fd;
    w->in_part = 0;
    if (ap_sha256_reset(w->h) != AP_OK)
        return ap_error_set(err, AP_ERR_INTERNAL, "sha-256 failed");
    return AP_OK;
}

int ap_partw_write(ap_partw *w, const void *buf, size_t len, ap_error *err)
{
    const char *b = buf;
    int rc;
    while (len > 0) {
        size_t room, n;
        if (w->fd >= 0 && w->in_part == part_cap(w, w->n - 1) &&
            (rc = finish_part(w, err)) != AP_OK)
            return rc;
        if (w->fd < 0 && (rc = next_part(w, err)) != AP_OK)
            return rc;
        room = part_cap(w, w->n - 1) - w->in_part < len
                   ? (size_t)(part_cap(w, w->n - 1) - w->in_part)
                   : len;
        n = 0;
        while (n < room) {
            ssize_t k = write(w->fd, b + n, room - n);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return ap_error_errno(err, AP_ERR_IO, k < 0 ? errno : EIO, "cannot write",
                                      w->tmp[w->n - 1]);
            n += (size_t)k;
        }
        if (ap_sha256_update(w->h, b, room) != AP_OK)
            return ap_error_set(err, AP_ERR_INTERNAL, "sha-256 failed");
        w->in_part += room;
        w->total += room;
        b += room;
        len -= room;
    }
    return AP_OK;
}

void ap_partw_abort(ap_partw *w)
{
    if (!w)
        return;
    if (g_tmps == w->tmp) {
        g_tmps = NULL;
        g_ntmps = 0;
    }
    if (w->fd >= 0)
        close(w->fd);
    if (w->hold >= 0)
        close(w->hold);
    if (w->tmp) {
        for (size_t i = 0; i < w->n; i++) {
            if (w->tmp[i])
                unlink(w->tmp[i]);
            free(w->tmp[i]);
        }
    }
    for (size_t i = 0; w->parts && i < AP_PARTS_MAX; i++)
        free(w->parts[i].file);
    free(w->tmp);
    free(w->parts);
    free(w->dirty);
    ap_sha256_free(w->h);
    free(w->dir);
    free(w->base);
    free(w);
}

static int hash_fd(int fd, uint8_t *buf, uint8_t out[AP_SHA256_LEN], uint64_t *size);

/* Apply op (pread or pwrite) to the bytes [off, off + len) across parts. */
static int partw_io(ap_partw *w, uint64_t off, void *buf, size_t len, int write_, ap_error *err)
{
    uint8_t *b = buf;
    while (len > 0) {
        uint64_t first = part_cap(w, 0);
        size_t i = off < first ? 0 : (size_t)(1 + (off - first) / w->volume), n;
        uint64_t in = off < first ? off : (off - first) % w->volume;
        int fd, own = 0;
        ssize_t k;
        if (i >= w->n)
            return ap_error_set(err, AP_ERR_INTERNAL, "offset %llu past the parts written",
                                (unsigned long long)off);
        n = part_cap(w, i) - in < len ? (size_t)(part_cap(w, i) - in) : len;
        if (i == w->n - 1 && w->fd >= 0) {
            fd = w->fd;
        } else {
            fd = open(w->tmp[i], (write_ ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
            if (fd < 0)
                return ap_error_errno(err, AP_ERR_IO, errno, "cannot open", w->tmp[i]);
            own = 1;
        }
        k = write_ ? pwrite(fd, b, n, (off_t)in) : pread(fd, b, n, (off_t)in);
        if (own)
            close(fd);
        if (k != (ssize_t)n)
            return ap_error_errno(err, AP_ERR_IO, k < 0 ? errno : EIO,
                                  write_ ? "cannot write" : "cannot read", w->tmp[i]);
        if (write_)
            w->dirty[i] = 1;
        b += n;
        off += n;
        len -= n;
    }
    return AP_OK;
}

int ap_partw_pread(ap_partw *w, uint64_t off, void *buf, size_t len, ap_error *err)
{
    return partw_io(w, off, buf, len, 0, err);
}

int ap_partw_pwrite(ap_partw *w, uint64_t off, const void *buf, size_t len, ap_error *err)
{
    return partw_io(w, off, (void *)buf, len, 1, err);
}

/* A part overwritten after it was hashed: fsync it and hash it again. */
static int rehash_part(ap_partw *w, size_t i, ap_error *err)
{
    uint8_t *buf = malloc(IO_BLOCK);
    uint64_t size = 0;
    int fd = open(w->tmp[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = AP_OK;
    if (fd < 0 || !buf) {
        rc = ap_error_errno(err, AP_ERR_IO, fd < 0 ? errno : ENOMEM, "cannot read", w->tmp[i]);
    } else if (fsync(fd) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", w->tmp[i]);
    } else if (hash_fd(fd, buf, w->parts[i].sha256, &size) != 0 || size != w->parts[i].size) {
        rc = ap_error_errno(err, AP_ERR_IO, errno ? errno : EIO, "cannot read", w->tmp[i]);
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int ap_partw_commit(ap_partw *w, ap_parts *out, ap_error *err)
{
    int rc = AP_OK;
    size_t i;

    memset(out, 0, sizeof *out);
    if (w->n == 0 && (rc = next_part(w, err)) != AP_OK) /* an empty input: one empty part */
        goto fail;
    if (w->fd >= 0 && (rc = finish_part(w, err)) != AP_OK)
        goto fail;
    for (i = 0; i < w->n; i++)
        if (w->dirty[i] && (rc = rehash_part(w, i, err)) != AP_OK)
            goto fail;
    for (i = 0; i < w->n; i++) {
        char *name = ap_part_name(w->base, i + 1, w->width), *path = NULL;
        if (!name || asprintf(&path, "%s/%s", w->dir, name) < 0) {
            free(name);
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if (rename(w->tmp[i], path) != 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename a part to", path);
            free(name);
            free(path);
            goto fail;
        }
        free(w->tmp[i]);
        w->tmp[i] = NULL;
        w->parts[i].file = name;
        free(path);
    }
    /* stale parts of an earlier, longer split would be read as trailing data
     * (or, under the other width, taken by `cat NAME.0*`) */
    for (int wd = 3; wd <= 4; wd++) {
        for (i = wd == w->width ? w->n + 1 : 1; i <= AP_PARTS_MAX; i++) {
            char *name = ap_part_name(w->base, i, wd), *path = NULL;
            int gone;
            if (!name || asprintf(&path, "%s/%s", w->dir, name) < 0) {
                free(name);
                break;
            }
            gone = unlink(path) != 0;
            free(name);
            free(path);
            if (gone)
                break;
        }
    }
    {
        char *any = ap_path_join(w->dir, w->base);
        if (!any)
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        else
            rc = ap_fsync_dir_of(any, err);
        free(any);
    }
    if (rc != AP_OK)
        goto fail;
    out->bundle = w->base;
    w->base = NULL;
    out->volume_size = w->volume;
    out->size = w->total;
    out->n = w->n;
    out->width = w->width;
    out->parts = calloc(w->n, sizeof *out->parts);
    if (!out->parts) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(out->parts, w->parts, w->n * sizeof *out->parts);
    memset(w->parts, 0, w->n * sizeof *w->parts);
    ap_partw_abort(w);
    return AP_OK;
fail:
    ap_partw_abort(w);
    return rc;
}

int ap_parts_split(const char *path, const char *output, uint64_t volume_size, ap_parts *out,
                   ap_error *err)
{
    return ap_parts_split_reserve(path, output, volume_size, ap_parts_default_reserve(volume_size),
                                  out, err);
}

int ap_parts_split_reserve(const char *path, const char *output, uint64_t volume_size,
                           uint64_t reserve, ap_parts *out, ap_error *err)
{
    ap_partw *w = NULL;
    uint8_t *buf = NULL;
    struct stat st;
    int fd, rc;

    memset(out, 0, sizeof *out);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open bundle", path);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "not a regular file");
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (!(buf = malloc(IO_BLOCK))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = ap_partw_open(output, volume_size, (uint64_t)st.st_size, &w, err)) != AP_OK)
        goto out;
    ap_partw_set_reserve(w, reserve);
    for (;;) {
        ssize_t n = read(fd, buf, IO_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot read", path);
            goto out;
        }
        if (n == 0)
            break;
        if ((rc = ap_partw_write(w, buf, (size_t)n, err)) != AP_OK)
            goto out;
    }
    rc = ap_partw_commit(w, out, err);
    w = NULL;
out:
    ap_partw_abort(w);
    free(buf);
    close(fd);
    return rc;
}

/* ---- checking parts ---- */

const char *ap_part_state_name(ap_part_state s)
{
    static const char *const names[] = {"ok", "missing", "size-mismatch", "sha256-mismatch",
                                        "misplaced", "unreadable"};
    return (unsigned)s < AP_ARRAY_LEN(names) ? names[s] : "unknown";
}

static int hash_fd(int fd, uint8_t *buf, uint8_t out[AP_SHA256_LEN], uint64_t *size)
{
    ap_sha256 *h = ap_sha256_new();
    uint64_t n = 0;
    int rc = -1;
    if (!h)
        return -1;
    for (;;) {
        ssize_t k = read(fd, buf, IO_BLOCK);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            goto out;
        if (k == 0)
            break;
        if (ap_sha256_update(h, buf, (size_t)k) != AP_OK)
            goto out;
        n += (uint64_t)k;
    }
    if (ap_sha256_final(h, out) != AP_OK)
        goto out;
    *size = n;
    rc = 0;
out:
    ap_sha256_free(h);
    return rc;
}

long ap_parts_check(const char *dir, const ap_parts *p,
                    void (*cb)(void *ctx, size_t i, const ap_part *part, ap_part_state st,
                               const char *msg),
                    void *ctx, ap_error *err)
{
    uint8_t *buf = malloc(IO_BLOCK);
    long nbad = 0;

    if (!buf)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory"), -1;
    for (size_t i = 0; i < p->n; i++) {
        const ap_part *pt = &p->parts[i];
        char *path = ap_path_join(dir, pt->file);
        char msg[512];
        ap_part_state st = AP_PART_OK;
        uint8_t d[AP_SHA256_LEN];
        uint64_t size = 0;
        struct stat sb;
        int fd;

        if (!path) {
            free(buf);
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory"), -1;
        }
        msg[0] = '\0';
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            st = errno == ENOENT ? AP_PART_MISSING : AP_PART_UNREADABLE;
            snprintf(msg, sizeof msg, "%s", st == AP_PART_MISSING ? "missing" : strerror(errno));
        } else if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            st = AP_PART_UNREADABLE;
            snprintf(msg, sizeof msg, "not a regular file");
        } else if ((uint64_t)sb.st_size != pt->size) {
            st = AP_PART_SIZE;
            snprintf(msg, sizeof msg, "%llu bytes, the index says %llu (%s)",
                     (unsigned long long)sb.st_size, (unsigned long long)pt->size,
                     (uint64_t)sb.st_size < pt->size ? "truncated" : "too long");
            /* the size of another part (part 1 is shorter by the signature
             * reserve): perhaps that part, in the wrong place */
            for (size_t j = 0; j < p->n; j++) {
                if (j == i || p->parts[j].size != (uint64_t)sb.st_size)
                    continue;
                if (hash_fd(fd, buf, d, &size) == 0 && size == p->parts[j].size) {
                    for (size_t k = 0; k < p->n; k++) {
                        if (k != i && memcmp(d, p->parts[k].sha256, AP_SHA256_LEN) == 0) {
                            st = AP_PART_MISPLACED;
                            snprintf(msg, sizeof msg,
                                     "holds the content of part %zu ('%s'): parts in the "
                                     "wrong order",
                                     k + 1, p->parts[k].file);
                            break;
                        }
                    }
                }
                break;
            }
        } else {
            (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
            if (hash_fd(fd, buf, d, &size) != 0) {
                st = AP_PART_UNREADABLE;
                snprintf(msg, sizeof msg, "cannot read: %s", strerror(errno));
            } else if (size != pt->size) {
                st = AP_PART_SIZE;
                snprintf(msg, sizeof msg, "changed while read");
            } else if (memcmp(d, pt->sha256, AP_SHA256_LEN) != 0) {
                st = AP_PART_SHA256;
                snprintf(msg, sizeof msg, "sha256 mismatch: damaged");
                for (size_t j = 0; j < p->n; j++) {
                    if (j != i && memcmp(d, p->parts[j].sha256, AP_SHA256_LEN) == 0) {
                        st = AP_PART_MISPLACED;
                        snprintf(msg, sizeof msg,
                                 "holds the content of part %zu ('%s'): parts in the wrong order",
                                 j + 1, p->parts[j].file);
                        break;
                    }
                }
            }
        }
        if (fd >= 0)
            close(fd);
        if (st != AP_PART_OK)
            nbad++;
        if (cb)
            cb(ctx, i, pt, st, st == AP_PART_OK ? NULL : msg);
        free(path);
    }
    free(buf);
    return nbad;
}
