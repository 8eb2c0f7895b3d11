/*
 * pins.c - checking the manifest's content pins (see pins.h).
 */
#include "pins.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"
#include "walk.h"

/* qsort_r comparator: entry indexes by path, then by line (ctx: entries). */
static int cmp_entry_idx(const void *a, const void *b, void *ctx)
{
    const ap_sums_entry *e = ctx, *x = &e[*(const size_t *)a], *y = &e[*(const size_t *)b];
    int c = strcmp(x->path, y->path);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ap_sums_load(const char *path, ap_sums *out, ap_error *err)
{
    char *buf = NULL, *p, *save = NULL;
    size_t len, cap = 0;
    unsigned line = 0;
    int rc;

    out->e = NULL;
    out->n = 0;
    out->by_path = NULL;
    if ((rc = ap_read_file(path, AP_SUMS_MAX_BYTES, &buf, &len, err)))
        return rc;
    if (memchr(buf, '\0', len)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "not a text file (NUL byte)");
        goto fail;
    }
    /* strtok_r skips empty lines, so count lines by hand. */
    p = buf;
    while (*p) {
        char *nl = strchr(p, '\n'), *name;
        line++;
        if (nl)
            *nl = '\0';
        size_t ll = strlen(p);
        if (ll && p[ll - 1] == '\r')
            p[--ll] = '\0';
        if (ll == 0)
            goto next;
        if (p[0] == '\\') {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, line, 1,
                                 "escaped file names are not supported");
            goto fail;
        }
        if (ll < 66 || p[64] != ' ' || (p[65] != ' ' && p[65] != '*')) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, line, 1,
                                 "not a sha256sum line (expected '<64 hex digits>  <file>')");
            goto fail;
        }
        name = p + 66;
        if (strncmp(name, "./", 2) == 0)
            name += 2;
        if (!ap_path_is_safe_relative(name) || name[strlen(name) - 1] == '/') {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, line, 67,
                                 "unsafe or invalid path '%s' (must be relative, without '..')",
                                 name);
            goto fail;
        }
        if (out->n >= AP_SUMS_MAX_LINES) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, line, 1, "too many lines");
            goto fail;
        }
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            ap_sums_entry *ne = realloc(out->e, nc * sizeof *ne);
            if (!ne) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto fail;
            }
            out->e = ne;
            cap = nc;
        }
        {
            ap_sums_entry *e = &out->e[out->n];
            uint8_t tmp[AP_SHA256_LEN];
            char hx[65];
            memcpy(hx, p, 64);
            hx[64] = '\0';
            if (!ap_hex_decode(hx, tmp, sizeof tmp)) {
                rc = ap_error_set_at(err, AP_ERR_INPUT, path, line, 1,
                                     "invalid sha-256 (64 hexadecimal digits expected)");
                goto fail;
            }
            ap_hex_encode(tmp, sizeof tmp, e->hex);
            e->line = line;
            if (!(e->path = strdup(name))) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto fail;
            }
            out->n++;
        }
    next:
        if (!nl)
            break;
        p = nl + 1;
    }
    (void)save;
    free(buf);
    buf = NULL;
    /* Index by path: lookups, and duplicates are neighbours. */
    out->by_path = malloc((out->n ? out->n : 1) * sizeof *out->by_path);
    if (!out->by_path) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < out->n; i++)
        out->by_path[i] = i;
    qsort_r(out->by_path, out->n, sizeof *out->by_path, cmp_entry_idx, out->e);
    {
        /* Report the duplicate that comes first in the file, against the
         * first line that lists its path. */
        const ap_sums_entry *dup = NULL, *first = NULL;
        for (size_t i = 1; i < out->n; i++) {
            const ap_sums_entry *a = &out->e[out->by_path[i - 1]], *b = &out->e[out->by_path[i]];
            /* b is the second line of its path when a is the first */
            if (strcmp(a->path, b->path) != 0 ||
                (i >= 2 && !strcmp(out->e[out->by_path[i - 2]].path, b->path)))
                continue;
            if (!dup || b->line < dup->line) {
                dup = b;
                first = a;
            }
        }
        if (dup) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, dup->line, 67,
                                 "'%s' is listed twice (first on line %u)", dup->path, first->line);
            goto fail;
        }
    }
    return AP_OK;
fail:
    free(buf);
    ap_sums_release(out);
    return rc;
}

void ap_sums_release(ap_sums *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->e[i].path);
    free(s->e);
    free(s->by_path);
    s->e = NULL;
    s->by_path = NULL;
    s->n = 0;
}

struct sums_key {
    const ap_sums *s;
    const char *path;
};

static int cmp_key_entry(const void *k, const void *b)
{
    const struct sums_key *key = k;
    return strcmp(key->path, key->s->e[*(const size_t *)b].path);
}

const ap_sums_entry *ap_sums_find(const ap_sums *s, const char *path)
{
    struct sums_key key = {s, path};
    const size_t *hit;
    if (!s->n || !s->by_path)
        return NULL;
    hit = bsearch(&key, s->by_path, s->n, sizeof *s->by_path, cmp_key_entry);
    return hit ? &s->e[*hit] : NULL;
}

/* True when path is one of the sorted paths (a folder walk's listing). */
static int listed_in(char *const *sorted, size_t n, const char *path)
{
    return n && bsearch(&path, sorted, n, sizeof *sorted, cmp_str) != NULL;
}

/* ---- parallel hashing ---------------------------------------------------- */

struct hash_job {
    char *const *paths;
    size_t n;
    char (*hex)[AP_SHA256_HEX_LEN + 1];
    uint64_t *sizes;
    atomic_size_t next;
    atomic_int failed;
    pthread_mutex_t lock;
    ap_error *err;
};

static void *hash_worker(void *arg)
{
    struct hash_job *j = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        ap_error e;
        uint64_t sz = 0;
        if (i >= j->n || atomic_load(&j->failed))
            break;
        ap_error_clear(&e);
        if (ap_sha256_file_hex(j->paths[i], 0, j->hex[i], &sz, &e) != AP_OK) {
            pthread_mutex_lock(&j->lock);
            if (!atomic_exchange(&j->failed, 1) && j->err)
                *j->err = e;
            pthread_mutex_unlock(&j->lock);
            break;
        }
        if (j->sizes)
            j->sizes[i] = sz;
    }
    return NULL;
}

int ap_hash_files(char *const *paths, size_t n, unsigned nthreads,
                  char (*hex)[AP_SHA256_HEX_LEN + 1], uint64_t *sizes, ap_error *err)
{
    struct hash_job j = {.paths = paths, .n = n, .hex = hex, .sizes = sizes, .err = err};
    pthread_t th[8];
    unsigned started = 0;
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    pthread_mutex_init(&j.lock, NULL);
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > 8)
        nthreads = 8;
    if (nthreads > n)
        nthreads = n ? (unsigned)n : 1;
    for (unsigned t = 1; t < nthreads; t++)
        if (pthread_create(&th[started], NULL, hash_worker, &j) == 0)
            started++;
    hash_worker(&j);
    for (unsigned t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&j.lock);
    return atomic_load(&j.failed) ? (err ? err->status : AP_ERR_IO) : AP_OK;
}

/* ---- pin checks ---------------------------------------------------------- */

static void finding(json_t *findings, const char *rule, const char *subject, const char *path,
                    const char *fmt, ...) AP_PRINTF(5, 6);
static void finding(json_t *findings, const char *rule, const char *subject, const char *path,
                    const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(findings,
                          json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s,s], s:s, s:s}", "rule", rule,
                                    "level", "error", "message", msg, "subject", subject, "path",
                                    path, "controls", "NIST SP 800-53 SI-7",
                                    "NIST SP 800-53 CM-14", "pack", "airpack", "title",
                                    "content matches its pin"));
}

static const char *worst(const char *a, const char *b)
{
    static const char *order[] = {"ok", "unlisted", "missing", "mismatch"};
    int ia = 0, ib = 0;
    for (int i = 0; i < 4; i++) {
        if (!strcmp(a, order[i]))
            ia = i;
        if (!strcmp(b, order[i]))
            ib = i;
    }
    return ia >= ib ? a : b;
}

/* Check one pinned path; subject like "models[0]". */
static int check_one(const ap_mpath *p, const char *subject, json_t *pins, json_t *findings,
                     ap_error *err)
{
    json_t *o = json_object(), *problems = json_array();
    char keypath[128], disp[4200];
    const char *status = "ok";
    int rc = AP_OK;
    ap_sums sums = {0};
    ap_filelist files = {0};
    char **abs = NULL;
    char(*hex)[AP_SHA256_HEX_LEN + 1] = NULL;

    if (!o || !problems) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* For messages: the path without its trailing slash. */
    snprintf(disp, sizeof disp, "%s", p->path ? p->path : "");
    for (size_t dl = strlen(disp); dl > 1 && disp[dl - 1] == '/'; dl--)
        disp[dl - 1] = '\0';
    json_object_set_new(o, "subject", json_string(subject));
    json_object_set_new(o, "path", json_string(p->path));
    if (!p->sha256 && !p->sha256sums) {
        json_object_set_new(o, "pin", json_null());
        json_object_set_new(o, "status", json_string("unpinned"));
        json_array_append_new(pins, o);
        o = NULL;
        goto out;
    }
    if (p->sha256) {
        char got[AP_SHA256_HEX_LEN + 1];
        snprintf(keypath, sizeof keypath, "%s.sha256", subject);
        json_object_set_new(o, "pin", json_string("sha256"));
        if ((rc = ap_sha256_file_hex(p->abs, 1, got, NULL, err)))
            goto out;
        json_object_set_new(o, "sha256", json_string(got));
        json_object_set_new(o, "hashes",
                            json_pack("[{s:s, s:s}]", "path", p->path, "sha256", got));
        if (strcmp(got, p->sha256) != 0) {
            status = "mismatch";
            finding(findings, "AP-PIN-MISMATCH", subject, keypath,
                    "file '%s' has changed: its sha-256 is %s, the manifest pins %s", p->path,
                    got, p->sha256);
            json_array_append_new(problems, json_pack("{s:s,s:s}", "file", p->path, "status",
                                                      "mismatch"));
        }
    } else {
        char *base = NULL;
        snprintf(keypath, sizeof keypath, "%s.sha256sums", subject);
        json_object_set_new(o, "pin", json_string("sha256sums"));
        json_object_set_new(o, "sha256sums", json_string(p->sha256sums));
        if ((rc = ap_sums_load(p->sha256sums_abs, &sums, err)))
            goto out;
        if (p->is_dir) {
            base = strdup(p->abs);
            if ((rc = ap_walk_files(p->abs, &files, err))) {
                free(base);
                goto out;
            }
        } else {
            const char *slash = strrchr(p->abs, '/');
            base = ap_path_dirname(p->abs);
            files.paths = malloc(sizeof(char *));
            if (files.paths && (files.paths[0] = strdup(slash ? slash + 1 : p->abs)))
                files.n = 1;
        }
        if (!base || (!p->is_dir && files.n != 1)) {
            free(base);
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        /* Listed files that exist get hashed; missing ones are findings. */
        abs = calloc(sums.n ? sums.n : 1, sizeof *abs);
        hex = calloc(sums.n ? sums.n : 1, sizeof *hex);
        size_t nh = 0;
        size_t *idx = calloc(sums.n ? sums.n : 1, sizeof *idx);
        if (!abs || !hex || !idx) {
            free(idx);
            free(base);
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < sums.n; i++) {
            struct stat st;
            char *fp = ap_path_join(base, sums.e[i].path);
            int present = 0;
            if (!fp) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                break;
            }
            if (p->is_dir) {
                present = listed_in(files.paths, files.n, sums.e[i].path);
            } else {
                present = !strcmp(files.paths[0], sums.e[i].path) && lstat(fp, &st) == 0;
            }
            if (!present) {
                if (!p->is_dir) {
                    /* A file's sums file may list other files too: ignore those. */
                    free(fp);
                    continue;
                }
                status = worst(status, "missing");
                finding(findings, "AP-PIN-MISSING", subject, keypath,
                        "file '%s/%s' is listed in '%s' (line %u) but missing", disp,
                        sums.e[i].path, p->sha256sums, sums.e[i].line);
                json_array_append_new(problems,
                                      json_pack("{s:s%,s:s}", "file", sums.e[i].path,
                                                strlen(sums.e[i].path), "status", "missing"));
                free(fp);
                continue;
            }
            abs[nh] = fp;
            idx[nh++] = i;
        }
        if (!rc)
            rc = ap_hash_files(abs, nh, 2, hex, NULL, err);
        for (size_t k = 0; !rc && k < nh; k++) {
            const ap_sums_entry *e = &sums.e[idx[k]];
            if (strcmp(hex[k], e->hex) != 0) {
                status = worst(status, "mismatch");
                finding(findings, "AP-PIN-MISMATCH", subject, keypath,
                        "file '%s%s%s' has changed: its sha-256 is %s, '%s' line %u pins %s",
                        p->is_dir ? disp : "", p->is_dir ? "/" : "",
                        p->is_dir ? e->path : p->path, hex[k], p->sha256sums, e->line, e->hex);
                json_array_append_new(problems,
                                      json_pack("{s:s,s:s}", "file", e->path, "status", "mismatch"));
            }
        }
        if (!rc && !p->is_dir) {
            if (!ap_sums_find(&sums, files.paths[0])) {
                status = worst(status, "unlisted");
                finding(findings, "AP-PIN-UNLISTED", subject, keypath,
                        "file '%s' is not listed in its pin file '%s'", p->path, p->sha256sums);
                json_array_append_new(problems,
                                      json_pack("{s:s,s:s}", "file", p->path, "status", "unlisted"));
            }
        }
        for (size_t k = 0; !rc && p->is_dir && k < files.n; k++) {
            if (!ap_sums_find(&sums, files.paths[k])) {
                status = worst(status, "unlisted");
                finding(findings, "AP-PIN-UNLISTED", subject, keypath,
                        "file '%s/%s' is in the folder but not listed in '%s'", disp,
                        files.paths[k], p->sha256sums);
                json_array_append_new(problems, json_pack("{s:s,s:s}", "file", files.paths[k],
                                                          "status", "unlisted"));
            }
        }
        json_object_set_new(o, "files", json_integer((json_int_t)sums.n));
        if (!rc) {
            /* The evidence: each hashed file with the hash it has now. */
            json_t *hs = json_array();
            for (size_t k = 0; k < nh; k++)
                json_array_append_new(hs, json_pack("{s:s, s:s}", "path", sums.e[idx[k]].path,
                                                    "sha256", hex[k]));
            json_object_set_new(o, "hashes", hs);
        }
        for (size_t k = 0; k < nh; k++)
            free(abs[k]);
        free(idx);
        free(base);
        if (rc)
            goto out;
    }
    json_object_set_new(o, "status", json_string(status));
    json_object_set(o, "problems", problems);
    json_array_append_new(pins, o);
    o = NULL;
out:
    free(abs);
    free(hex);
    ap_sums_release(&sums);
    ap_filelist_release(&files);
    json_decref(o);
    json_decref(problems);
    return rc;
}

int ap_pins_check(const ap_manifest *m, json_t *pins, json_t *findings, ap_error *err)
{
    char subject[64];
    int rc;
    for (size_t i = 0; i < m->n_models; i++) {
        snprintf(subject, sizeof subject, "models[%zu]", i);
        if ((rc = check_one(&m->models[i].src, subject, pins, findings, err)))
            return rc;
    }
    for (size_t i = 0; i < m->n_runtimes; i++) {
        if (!m->runtimes[i].src.path)
            continue;
        snprintf(subject, sizeof subject, "runtimes[%zu]", i);
        if ((rc = check_one(&m->runtimes[i].src, subject, pins, findings, err)))
            return rc;
    }
    for (size_t i = 0; i < m->n_files; i++) {
        snprintf(subject, sizeof subject, "files[%zu]", i);
        if ((rc = check_one(&m->files[i].src, subject, pins, findings, err)))
            return rc;
    }
    return AP_OK;
}
