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
#include "source/source.h"

/* qsort_r comparator: entry indexes by path, then by line (ctx: entries). */
static int cmp_entry_idx(const void *a, const void *b, void *ctx)
{
    const ap_sums_entry *e = ctx, *x = &e[*(const size_t *)a], *y = &e[*(const size_t *)b];
    int c = strcmp(x->path, y->path);
    return c ? c : (x->line > y->line) - (x->line < y->line);
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

/* Check one path; subject like "models[0]". The files come from the
 * input walk that build uses too (source/source.h): a path build would
 * refuse is refused here first, with the same message. */
static int check_one(const ap_mpath *p, const char *subject, int for_runtime, int model,
                     json_t *pins, json_t *findings, ap_error *err)
{
    json_t *o = NULL, *problems = NULL, *hs = NULL;
    char keypath[128], disp[4200];
    const char *status = "ok";
    int rc = AP_OK;
    ap_sums sums = {0};
    ap_input in;
    char **abs = NULL;
    char(*hex)[AP_SHA256_HEX_LEN + 1] = NULL;
    const char **want = NULL;     /* per input file: the sums hex, or NULL */
    unsigned *want_line = NULL;
    size_t *idx = NULL, nh = 0;
    int dir;

    if ((rc = ap_input_walk(p, for_runtime ? AP_WALK_RUNTIME : 0, &in, err)))
        return rc;
    if (model)
        ap_input_dup_findings(&in, subject, p->path, model == 2, findings);
    dir = p->is_dir; /* a folder, a store's model: files named below the path */
    o = json_object();
    problems = json_array();
    hs = json_array();
    abs = calloc(in.n ? in.n : 1, sizeof *abs);
    hex = calloc(in.n ? in.n : 1, sizeof *hex);
    want = calloc(in.n ? in.n : 1, sizeof *want);
    want_line = calloc(in.n ? in.n : 1, sizeof *want_line);
    idx = calloc(in.n ? in.n : 1, sizeof *idx);
    if (!o || !problems || !hs || !abs || !hex || !want || !want_line || !idx) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* For messages: the path without its trailing slash. */
    snprintf(disp, sizeof disp, "%s", p->path ? p->path : "");
    for (size_t dl = strlen(disp); dl > 1 && disp[dl - 1] == '/'; dl--)
        disp[dl - 1] = '\0';
    json_object_set_new(o, "subject", json_string(subject));
    json_object_set_new(o, "path", json_string(p->path));
    if (in.source)
        json_object_set(o, "source", in.source);
    if (in.n_skipped) {
        /* the first 10,000 (the lock that records them is bounded) and the count */
        json_t *ex = json_array();
        json_object_set_new(o, "excluded_count", json_integer((json_int_t)in.n_skipped));
        for (size_t k = 0; ex && k < in.n_skipped && k < 10000; k++)
            json_array_append_new(ex, json_pack("{s:s, s:s, s:I}", "path", in.skipped[k].rel,
                                                "pattern", in.skipped[k].pattern, "size",
                                                (json_int_t)in.skipped[k].size));
        json_object_set_new(o, "excluded", ex);
    }
    if (p->sha256) {
        snprintf(keypath, sizeof keypath, "%s.sha256", subject);
        json_object_set_new(o, "pin", json_string("sha256"));
    } else if (p->sha256sums) {
        snprintf(keypath, sizeof keypath, "%s.sha256sums", subject);
        json_object_set_new(o, "pin", json_string("sha256sums"));
        json_object_set_new(o, "sha256sums", json_string(p->sha256sums));
        if ((rc = ap_sums_load(p->sha256sums_abs, &sums, err)))
            goto out;
    } else {
        /* No pin of the manifest's: the store's own digests are the pin. */
        snprintf(keypath, sizeof keypath, "%s.path", subject);
        int any = 0;
        for (size_t k = 0; k < in.n && !any; k++)
            any = in.files[k].digest[0] != '\0';
        json_object_set_new(o, "pin", any ? json_string("store") : json_null());
        if (!any)
            status = "unpinned";
    }
    /* What each file must hash to, and which files to hash. */
    for (size_t k = 0; k < in.n; k++) {
        const ap_input_file *f = &in.files[k];
        if (p->sha256 && in.n == 1) {
            want[k] = p->sha256;
        } else if (p->sha256sums) {
            const ap_sums_entry *e = ap_sums_find(&sums, f->rel);
            if (e) {
                want[k] = e->hex;
                want_line[k] = e->line;
            } else {
                status = worst(status, "unlisted");
                if (dir)
                    finding(findings, "AP-PIN-UNLISTED", subject, keypath,
                            "file '%s/%s' is in the folder but not listed in '%s'", disp, f->rel,
                            p->sha256sums);
                else
                    finding(findings, "AP-PIN-UNLISTED", subject, keypath,
                            "file '%s' is not listed in its pin file '%s'", p->path,
                            p->sha256sums);
                json_array_append_new(problems, json_pack("{s:s,s:s}", "file",
                                                          dir ? f->rel : p->path, "status",
                                                          "unlisted"));
            }
        }
        if (want[k] || f->digest[0]) {
            abs[nh] = f->src;
            idx[nh++] = k;
        }
    }
    /* Listed files that are not there (a folder's; excluded ones do not count). */
    for (size_t i = 0; dir && p->sha256sums && i < sums.n; i++) {
        int skipped = 0;
        if (ap_input_find(&in, sums.e[i].path))
            continue;
        for (size_t k = 0; k < in.n_skipped && !skipped; k++)
            skipped = !strcmp(in.skipped[k].rel, sums.e[i].path);
        if (skipped)
            continue;
        status = worst(status, "missing");
        finding(findings, "AP-PIN-MISSING", subject, keypath,
                "file '%s/%s' is listed in '%s' (line %u) but missing", disp, sums.e[i].path,
                p->sha256sums, sums.e[i].line);
        json_array_append_new(problems, json_pack("{s:s%,s:s}", "file", sums.e[i].path,
                                                  strlen(sums.e[i].path), "status", "missing"));
    }
    if (nh == 1 && in.files[idx[0]].follow) {
        /* the manifest's own path, which may be a link */
        if ((rc = ap_sha256_file_hex(abs[0], 1, hex[0], NULL, err)))
            goto out;
    } else if (nh && (rc = ap_hash_files(abs, nh, 2, hex, NULL, err))) {
        goto out;
    }
    for (size_t h = 0; h < nh; h++) {
        const ap_input_file *f = &in.files[idx[h]];
        char shown[4400];
        if (dir)
            snprintf(shown, sizeof shown, "%s/%s", disp, f->rel);
        else
            snprintf(shown, sizeof shown, "%s", p->path);
        json_array_append_new(hs, json_pack("{s:s, s:s}", "path", dir ? f->rel : p->path,
                                            "sha256", hex[h]));
        if (f->digest[0] && strcmp(hex[h], f->digest) != 0) {
            status = worst(status, "mismatch");
            finding(findings, "AP-PIN-MISMATCH", subject, keypath,
                    "file '%s' does not match the blob digest it is stored under: its sha-256 "
                    "is %s, the store names it %s ('%s')",
                    shown, hex[h], f->digest, f->src);
            json_array_append_new(problems, json_pack("{s:s,s:s}", "file", dir ? f->rel : p->path,
                                                      "status", "mismatch"));
            continue;
        }
        if (!want[idx[h]] || strcmp(hex[h], want[idx[h]]) == 0)
            continue;
        status = worst(status, "mismatch");
        if (p->sha256)
            finding(findings, "AP-PIN-MISMATCH", subject, keypath,
                    "file '%s' has changed: its sha-256 is %s, the manifest pins %s", p->path,
                    hex[h], p->sha256);
        else
            finding(findings, "AP-PIN-MISMATCH", subject, keypath,
                    "file '%s' has changed: its sha-256 is %s, '%s' line %u pins %s", shown,
                    hex[h], p->sha256sums, want_line[idx[h]], want[idx[h]]);
        json_array_append_new(problems, json_pack("{s:s,s:s}", "file", dir ? f->rel : p->path,
                                                  "status", "mismatch"));
    }
    if (p->sha256 && nh == 1)
        json_object_set_new(o, "sha256", json_string(hex[0]));
    if (p->sha256sums)
        json_object_set_new(o, "files", json_integer((json_int_t)sums.n));
    if (nh)
        json_object_set(o, "hashes", hs);
    json_object_set_new(o, "status", json_string(status));
    if (strcmp(status, "unpinned") != 0)
        json_object_set(o, "problems", problems);
    json_array_append_new(pins, o);
    o = NULL;
out:
    free(abs);
    free(hex);
    free(want);
    free(want_line);
    free(idx);
    ap_sums_release(&sums);
    ap_input_release(&in);
    json_decref(o);
    json_decref(hs);
    json_decref(problems);
    return rc;
}

int ap_pins_check(const ap_manifest *m, json_t *pins, json_t *findings, ap_error *err)
{
    char subject[64];
    int rc;
    /* Errors carry the same context as build's (bundle_write.c). */
    for (size_t i = 0; i < m->n_models; i++) {
        snprintf(subject, sizeof subject, "models[%zu]", i);
        const ap_mruntime *rt = ap_manifest_model_runtime(m, &m->models[i]);
        int gguf_rt = rt && (rt->kind == AP_RT_LLAMACPP || rt->kind == AP_RT_OLLAMA);
        if ((rc = check_one(&m->models[i].src, subject, 0, gguf_rt ? 2 : 1, pins, findings,
                            err)))
            return ap_error_prefix(err, "model '%s'", m->models[i].name);
    }
    for (size_t i = 0; i < m->n_runtimes; i++) {
        if (!m->runtimes[i].src.path)
            continue;
        snprintf(subject, sizeof subject, "runtimes[%zu]", i);
        if ((rc = check_one(&m->runtimes[i].src, subject, 1, 0, pins, findings, err)))
            return ap_error_prefix(err, "runtime '%s'", m->runtimes[i].name);
    }
    for (size_t i = 0; i < m->n_files; i++) {
        snprintf(subject, sizeof subject, "files[%zu]", i);
        if ((rc = check_one(&m->files[i].src, subject, 0, 0, pins, findings, err)))
            return ap_error_prefix(err, "files[%zu] '%s'", i, m->files[i].src.path);
    }
    return AP_OK;
}
