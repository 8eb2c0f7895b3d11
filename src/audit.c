/*
 * audit.c - drift audit of installed releases and report on a bundle
 * (see audit.h).
 */
#include "audit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle_read.h"
#include "data.h"
#include "digest.h"
#include "install.h"
#include "preflight/preflight.h"
#include "lock.h"
#include "policy.h"
#include "site/layout.h"
#include "site/units.h"
#include "trust/cosign.h"
#include "trust/trust.h"
#include "util.h"

struct packs {
    ap_policy **p;
    size_t n;
};

static void packs_free(struct packs *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        ap_policy_free(ps->p[i]);
    free(ps->p);
    ps->p = NULL;
    ps->n = 0;
}

static int packs_load(const ap_audit_opts *o, struct packs *ps, ap_error *err)
{
    size_t n = 0;
    int rc;
    memset(ps, 0, sizeof *ps);
    if (!o || !o->policies)
        return AP_OK;
    while (o->policies[n])
        n++;
    if (!n)
        return AP_OK;
    if (!(ps->p = calloc(n, sizeof *ps->p)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if ((rc = ap_policy_load_ref(o->policies[i], &ps->p[i], err)) != AP_OK ||
            (o->policy_params && (rc = ap_policy_set_params(ps->p[i], o->policy_params, err)))) {
            ps->n = i + 1;
            packs_free(ps);
            return rc;
        }
        ps->n = i + 1;
    }
    return AP_OK;
}

/* Evaluate the packs over the lock's analysis: {"packs", "findings",
 * "summary"}; *passed cleared on an error-level finding. NULL without packs. */
static json_t *eval_packs(const struct packs *ps, const ap_lock *l, int *passed)
{
    json_t *out, *packs, *findings, *sum;
    const json_t *analysis = l ? json_object_get(l->json, "analysis") : NULL;
    ap_error e;
    if (!ps->n)
        return NULL;
    out = json_object();
    packs = json_array();
    findings = json_array();
    if (!out || !packs || !findings) {
        json_decref(out);
        json_decref(packs);
        json_decref(findings);
        *passed = 0;
        return NULL;
    }
    for (size_t i = 0; i < ps->n; i++) {
        json_array_append_new(packs, ap_policy_to_json(ps->p[i]));
        if (!analysis || ap_policy_eval(ps->p[i], analysis, findings, &e) != AP_OK) {
            json_object_set_new(out, "error", json_string(analysis ? e.msg : "no analysis in the lock"));
            *passed = 0;
        }
    }
    sum = ap_findings_summary(findings);
    if (!sum || !json_is_true(json_object_get(sum, "passed")))
        *passed = 0;
    json_object_set_new(out, "packs", packs);
    json_object_set_new(out, "findings", findings);
    json_object_set_new(out, "summary", sum ? sum : json_null());
    return out;
}

static json_t *tool_json(void)
{
    return json_pack("{s:s,s:s}", "name", "airpack", "version", AIRPACK_VERSION);
}

/* The build-time analysis summary carried in the lock, or null. */
static json_t *analysis_summary(const ap_lock *l)
{
    json_t *s = l ? json_object_get(json_object_get(l->json, "analysis"), "summary") : NULL;
    return s ? json_incref(s) : json_null();
}

/* One audit Finding (the shared contract) about subject. */
static json_t *finding(const char *rule, const char *title, const char *subject, const char *msg)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:[s,s],s:s,s:s,s:b}", "rule", rule, "level", "error",
                     "message", msg, "subject", subject, "controls", "NIST SP 800-53 SI-7",
                     "NIST SP 800-53 CM-14", "pack", "airpack", "title", title, "waived", 0);
}

static void add_finding(json_t *arr, json_t *f)
{
    if (f)
        json_array_append_new(arr, f);
}

/* The evidence document: the lock's analysis (what was checked at build
 * time) with the audit's own findings and the policy results added, and
 * the bundle and artifact evidence report.h renders (SARIF, Markdown,
 * HTML). extra is stolen. NULL when out of memory. */
static json_t *evidence(const ap_lock *lock, const char *file, const uint8_t lock_sha[AP_SHA256_LEN],
                        const char *keyid, const char *keyfile, int verified, json_t *extra,
                        const json_t *policy)
{
    const json_t *an = json_object_get(lock->json, "analysis");
    json_t *doc = an ? json_deep_copy(an) : json_object(), *fs, *pols, *x;
    char hex[AP_SHA256_HEX_LEN + 1], when[32];
    time_t t = time(NULL);
    struct tm tm;
    size_t i;

    if (!doc) {
        json_decref(extra);
        return NULL;
    }
    ap_hex_encode(lock_sha, AP_SHA256_LEN, hex);
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(doc, "generated", json_string(when));
    json_object_set_new(doc, "bundle",
                        json_pack("{s:s,s:s,s:s,s:o,s:{s:s,s:s},s:b}", "file", file, "lock_sha256",
                                  hex, "created", lock->created, "expires",
                                  lock->expires ? json_string(lock->expires) : json_null(),
                                  "signer", "keyid", keyid ? keyid : "", "file",
                                  keyfile ? keyfile : "", "verified", verified));
    json_object_set(doc, "artifacts", json_object_get(lock->json, "artifacts"));
    fs = json_object_get(doc, "findings");
    if (!json_is_array(fs)) {
        fs = json_array();
        json_object_set_new(doc, "findings", fs);
    }
    pols = json_object_get(doc, "policies");
    if (!json_is_array(pols)) {
        pols = json_array();
        json_object_set_new(doc, "policies", pols);
    }
    json_array_foreach(json_object_get(policy, "findings"), i, x)
        json_array_append(fs, x);
    json_array_foreach(json_object_get(policy, "packs"), i, x)
        json_array_append(pols, x);
    json_array_extend(fs, extra);
    json_decref(extra);
    json_object_set_new(doc, "summary", ap_findings_summary(fs));
    return doc;
}

static int cmp_art(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct walk {
    const char *root;            /* release folder */
    char **sorted;               /* artifact paths, sorted */
    size_t n;
    json_t *unexpected;          /* array of paths */
};

/* Every non-folder entry (and symlink) under dir that the lock does not list. */
static void walk_dir(struct walk *w, const char *rel, int depth)
{
    char path[PATH_MAX], sub[PATH_MAX];
    DIR *d;
    struct dirent *e;
    if (snprintf(path, sizeof path, "%s%s%s", w->root, *rel ? "/" : "", rel) >= (int)sizeof path)
        return;
    if (depth > AP_AUDIT_MAX_DEPTH) {
        json_array_append_new(w->unexpected, json_string(rel));
        return;
    }
    if (!(d = opendir(path)))
        return;
    while ((e = readdir(d))) {
        struct stat st;
        char full[PATH_MAX];
        char *key = sub;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= (int)sizeof sub ||
            snprintf(full, sizeof full, "%s/%s", w->root, sub) >= (int)sizeof full)
            continue;
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            walk_dir(w, sub, depth + 1);
            continue;
        }
        if (!bsearch(&key, w->sorted, w->n, sizeof *w->sorted, cmp_art) &&
            json_array_size(w->unexpected) < AP_AUDIT_MAX_LISTED) {
            json_t *s = json_string(sub);
            json_array_append_new(w->unexpected, s ? s : json_string("(name not UTF-8)"));
        }
    }
    closedir(d);
}

static void add_modified(json_t *arr, const char *path, const char *reason)
{
    if (json_array_size(arr) < AP_AUDIT_MAX_LISTED)
        json_array_append_new(arr, json_pack("{s:s,s:s}", "path", path, "reason", reason));
}

/* Check one file of a release against its artifact. */
static void check_file(const char *root, const ap_artifact *a, json_t *modified, json_t *missing,
                       size_t *ok)
{
    char path[PATH_MAX], reason[160];
    struct stat st;
    uint8_t d[AP_SHA256_LEN];
    uint64_t size = 0;
    ap_error e;

    if (snprintf(path, sizeof path, "%s/%s", root, a->path) >= (int)sizeof path) {
        add_modified(modified, a->path, "path too long");
        return;
    }
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            json_array_append_new(missing, json_string(a->path));
        else
            add_modified(modified, a->path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        add_modified(modified, a->path, S_ISLNK(st.st_mode) ? "replaced by a symlink"
                                                            : "not a regular file");
        return;
    }
    if ((unsigned)(st.st_mode & 07777) != a->mode) {
        snprintf(reason, sizeof reason, "mode %04o, the lock says %04o",
                 (unsigned)(st.st_mode & 07777), a->mode);
        add_modified(modified, a->path, reason);
        return;
    }
    if ((uint64_t)st.st_size != a->size) {
        snprintf(reason, sizeof reason, "size %llu, the lock says %llu",
                 (unsigned long long)st.st_size, (unsigned long long)a->size);
        add_modified(modified, a->path, reason);
        return;
    }
    if (ap_sha256_file(path, 0, d, &size, &e) != AP_OK) {
        add_modified(modified, a->path, e.msg);
        return;
    }
    if (size != a->size || memcmp(d, a->sha256, AP_SHA256_LEN) != 0) {
        if (st.st_nlink > 2) {
            /* the object store's file (docs/install.md), linked by other
             * releases too: the change is in each of them */
            snprintf(reason, sizeof reason,
                     "sha256 differs from the lock (the file is shared with %llu other "
                     "releases through the object store; audit --all-releases shows each)",
                     (unsigned long long)st.st_nlink - 2);
            add_modified(modified, a->path, reason);
        } else {
            add_modified(modified, a->path, "sha256 differs from the lock");
        }
        return;
    }
    (*ok)++;
}

/* Verify a receipt's signature; fills sig_json. Returns 1 when valid. */
static int check_receipt_signature(const char *receipt, const ap_keyring *keys, const json_t *rec,
                                   const char *lock_buf, size_t lock_len, json_t *sig_json)
{
    char p[PATH_MAX], *sig_buf = NULL, kid[17];
    size_t sig_len;
    ap_signature sig;
    ap_keyring own = {0};
    const ap_keyring *kr = keys;
    const ap_pubkey *signer = NULL;
    ap_error e;
    int valid = 0;

    json_object_set_new(sig_json, "key_source",
                        json_string(keys && keys->n ? "trusted keys" : "install record"));
    if (snprintf(p, sizeof p, "%s/%s", receipt, AP_LOCK_SIG_NAME) >= (int)sizeof p ||
        ap_read_file(p, AP_KEYFILE_MAX, &sig_buf, &sig_len, &e) != AP_OK) {
        json_object_set_new(sig_json, "message", json_string("cannot read the receipt's signature"));
        goto out;
    }
    if (ap_signature_parse(p, sig_buf, sig_len, &sig, &e) != AP_OK) {
        json_object_set_new(sig_json, "message", json_string(e.msg));
        goto out;
    }
    ap_keyid_hex(sig.keyid, kid);
    json_object_set_new(sig_json, "key_id", json_string(kid));
    json_object_set_new(sig_json, "algorithm", json_string(sig.alg));
    if (!kr || kr->n == 0) {
        const char *b64 = json_string_value(
            json_object_get(json_object_get(rec, "signature"), "public_key"));
        own.keys = calloc(1, sizeof *own.keys);
        if (!b64 || !own.keys ||
            ap_pubkey_parse("install record", b64, strlen(b64), &own.keys[0], &e) != AP_OK) {
            json_object_set_new(sig_json, "message",
                                json_string("no trusted key given and no key in the install record"));
            goto out;
        }
        snprintf(own.keys[0].source, sizeof own.keys[0].source, "install record");
        own.n = 1;
        kr = &own;
    }
    if (ap_signature_verify(&sig, kr, lock_buf, lock_len, &signer, &e) != AP_OK) {
        json_object_set_new(sig_json, "message", json_string(e.msg));
        goto out;
    }
    json_object_set_new(sig_json, "key_file", json_string(signer ? signer->source : ""));
    valid = 1;
out:
    json_object_set_new(sig_json, "valid", json_boolean(valid));
    free(sig_buf);
    ap_keyring_release(&own);
    return valid;
}

/* The trust file the installed audit counts signatures under (one audit at
 * a time per process), or NULL. */
static const ap_trust *audit_trust;

/* Count a receipt's signatures (the build signature and every
 * co-signature kept with it) under the trust file in force now: a key
 * revoked since the install no longer counts. Returns 1 when the
 * threshold is met. */
static int check_receipt_trust(const char *receipt, const ap_trust *t, const char *lock_buf,
                               size_t lock_len, json_t *sig_json)
{
    ap_signature sigs[AP_BUNDLE_MAX_SIGS];
    size_t n = 0, found = 0;
    char desc[1024], msg[1400];
    DIR *d = opendir(receipt);
    struct dirent *de;
    ap_error e;
    int valid = 0;

    ap_error_clear(&e);
    json_object_set_new(sig_json, "key_source", json_string("trust file"));
    json_object_set_new(sig_json, "trust_version", json_integer((json_int_t)t->version));
    if (!d) {
        json_object_set_new(sig_json, "message", json_string("cannot read the receipt"));
        goto out;
    }
    while ((de = readdir(d)) && n < AP_BUNDLE_MAX_SIGS) {
        char p[PATH_MAX], *buf = NULL;
        size_t len = 0;
        if (!ap_sig_entry_like(de->d_name) ||
            snprintf(p, sizeof p, "%s/%s", receipt, de->d_name) >= (int)sizeof p)
            continue;
        if (ap_read_file(p, AP_KEYFILE_MAX, &buf, &len, &e) == AP_OK &&
            ap_signature_parse(p, buf, len, &sigs[n], &e) == AP_OK) {
            if (n == 0 || !strcmp(de->d_name, AP_LOCK_SIG_NAME)) {
                char kid[17];
                ap_keyid_hex(sigs[n].keyid, kid);
                json_object_set_new(sig_json, "key_id", json_string(kid));
                json_object_set_new(sig_json, "algorithm", json_string(sigs[n].alg));
            }
            n++;
        }
        free(buf);
    }
    closedir(d);
    if (ap_trust_count_sigs(t, AP_TRUST_ROLE_BUNDLES, sigs, n, lock_buf, lock_len, &found, desc,
                            sizeof desc, &e) != AP_OK) {
        json_object_set_new(sig_json, "message", json_string(e.msg));
        goto out;
    }
    json_object_set_new(sig_json, "found", json_integer((json_int_t)found));
    json_object_set_new(sig_json, "needed", json_integer((json_int_t)t->threshold_bundles));
    json_object_set_new(sig_json, "signers", json_string(desc));
    if (found >= t->threshold_bundles) {
        json_object_set_new(sig_json, "key_file", json_string(t->source));
        valid = 1;
        goto out;
    }
    snprintf(msg, sizeof msg, "%s%zu valid signature%s of role 'bundles' under trust file version "
             "%llu, %zu needed; signed by: %s",
             found == 0 && strstr(desc, "(revoked)") ? "signed only by keys that are now revoked: "
                                                     : "",
             found, found == 1 ? "" : "s", (unsigned long long)t->version, t->threshold_bundles,
             desc[0] ? desc : "nobody");
    json_object_set_new(sig_json, "message", json_string(msg));
out:
    json_object_set_new(sig_json, "valid", json_boolean(valid));
    return valid;
}

/* Drop path from the unexpected list; 1 when it was there. */
static int take_unexpected(json_t *unexpected, const char *path)
{
    size_t i;
    json_t *x;
    json_array_foreach(unexpected, i, x)
        if (!strcmp(json_string_value(x), path)) {
            json_array_remove(unexpected, i);
            return 1;
        }
    return 0;
}

/* Files install generates into a release from its lock (service units and
 * env files, site/units.h) are not drift when they are exactly what the
 * lock generates; a changed one is modified, a missing one missing. */
static void check_generated(const char *prefix, const char *name, const char *rel,
                            const ap_lock *lock, const char *release_dir, json_t *modified,
                            json_t *missing, json_t *unexpected)
{
    char abs_prefix[PATH_MAX], path[PATH_MAX];
    ap_unit_files uf;
    ap_layout lay;
    ap_error e;
    char why[300];
    /* model layouts: generated files with the same bytes, links to the same inode */
    if (ap_layout_render(lock->json, &lay, &e) == AP_OK) {
        for (size_t i = 0; i < lay.n; i++) {
            take_unexpected(unexpected, lay.v[i].path);
            if (ap_layout_check(release_dir, &lay.v[i], why, sizeof why) != 0) {
                if (!strcmp(why, "missing"))
                    json_array_append_new(missing, json_string(lay.v[i].path));
                else
                    add_modified(modified, lay.v[i].path, why);
            }
        }
        ap_layout_release(&lay);
    }
    if (!json_object_get(lock->json, "launch") || !realpath(prefix, abs_prefix) ||
        ap_units_render(abs_prefix, name, rel, lock->json, &uf, &e) != AP_OK)
        return;
    for (size_t i = 0; i < uf.n; i++) {
        char *buf = NULL;
        size_t len = 0;
        struct stat st;
        take_unexpected(unexpected, uf.v[i].path);
        if (snprintf(path, sizeof path, "%s/%s", release_dir, uf.v[i].path) >= (int)sizeof path)
            continue;
        if (lstat(path, &st) != 0) {
            json_array_append_new(missing, json_string(uf.v[i].path));
            continue;
        }
        if (!S_ISREG(st.st_mode) || ap_read_file(path, 1u << 20, &buf, &len, &e) != AP_OK ||
            len != uf.v[i].len || memcmp(buf, uf.v[i].content, len) != 0)
            add_modified(modified, uf.v[i].path,
                         "differs from what airpack generates from the signed lock");
        free(buf);
    }
    ap_unit_files_release(&uf);
}

/* One line for a preflight verdict (docs/preflight.md). */
static void preflight_line(const json_t *pf, char *out, size_t n)
{
    const char *v = json_string_value(json_object_get(pf, "verdict"));
    const json_t *host = json_object_get(pf, "host"), *nv = json_object_get(host, "nvml");
    const json_t *g0 = json_array_get(json_object_get(host, "gpus"), 0);
    const char *problem = json_string_value(json_array_get(json_object_get(pf, "problems"), 0));
    size_t k;
    if (!json_is_object(pf)) {
        snprintf(out, n, "not recorded");
        return;
    }
    if (json_is_true(json_object_get(pf, "skipped"))) {
        snprintf(out, n, "skipped (--skip-preflight)");
        return;
    }
    if (json_string_value(json_object_get(pf, "error"))) {
        snprintf(out, n, "failed: %s", json_string_value(json_object_get(pf, "error")));
        return;
    }
    if (v && !strcmp(v, "unknown") && json_is_false(json_object_get(nv, "available"))) {
        snprintf(out, n, "not checked, no NVML (%s)",
                 json_string_value(json_object_get(nv, "problem")) ? json_string_value(json_object_get(nv, "problem")) : "?");
        return;
    }
    snprintf(out, n, "%s", !v ? "?" : !strcmp(v, "does-not-fit") ? "does not fit"
                          : !strcmp(v, "fits-reduced") ? "fits only with a smaller context or concurrency" : v);
    k = strlen(out);
    if (g0 && k < n)
        snprintf(out + k, n - k, " (%zu GPU(s), %s, driver %s)", json_array_size(json_object_get(host, "gpus")),
                 json_string_value(json_object_get(g0, "name")) ? json_string_value(json_object_get(g0, "name")) : "?",
                 json_string_value(json_object_get(host, "driver_version")) ? json_string_value(json_object_get(host, "driver_version")) : "?");
    k = strlen(out);
    if (problem && v && strcmp(v, "fits") != 0 && k < n)
        snprintf(out + k, n - k, ": %s", problem);
}

/* The site's checks of a deployment as rows for the reports (evidence
 * "site_checks": [{"check", "result"}], rendered by report.c). */
static json_t *site_checks(const json_t *d)
{
    const json_t *pf = json_object_get(d, "preflight");
    const json_t *a = json_object_get(json_object_get(d, "activation"), "last");
    char line[1400];
    json_t *rows = json_array();
    if (!rows)
        return NULL;
    if (json_is_object(pf)) {
        preflight_line(json_object_get(pf, "install_preflight"), line, sizeof line);
        json_array_append_new(rows, json_pack("{s:s,s:s}", "check", "GPU preflight at install", "result", line));
        preflight_line(json_object_get(pf, "now"), line, sizeof line);
        json_array_append_new(rows, json_pack("{s:s,s:s}", "check", "GPU preflight now", "result", line));
    }
    if (json_is_object(a)) {
        const char *r = json_string_value(json_object_get(a, "result"));
        const char *rel = json_string_value(json_object_get(a, "release"));
        const char *step = json_string_value(json_object_get(a, "step"));
        const char *msg = json_string_value(json_object_get(a, "message"));
        const char *to = json_string_value(json_object_get(json_object_get(a, "rollback"), "to"));
        const char *at = json_string_value(json_object_get(a, "finished_at"));
        if (r && !strcmp(r, "ok"))
            snprintf(line, sizeof line, "%s serves (%s)", rel ? rel : "?", at ? at : "?");
        else
            snprintf(line, sizeof line, "%s %s%s (failed at %s: %s) %s", rel ? rel : "?",
                     r && !strcmp(r, "rolled-back") ? "rolled back to " : r && !strcmp(r, "stopped") ? "stopped, no previous release" : "rollback failed, to ",
                     r && !strcmp(r, "stopped") ? "" : (to ? to : "?"), step ? step : "?", msg ? msg : "?", at ? at : "");
        json_array_append_new(rows, json_pack("{s:s,s:s}", "check", "Last activation", "result", line));
    }
    return rows;
}

static json_t *audit_one(const char *prefix, const char *name, const char *release,
                         const ap_keyring *keys, const struct packs *ps, size_t *n_mod,
                         size_t *n_miss, size_t *n_unexp, size_t *n_sigfail, size_t *n_policy)
{
    char *release_dir = NULL, *receipt = NULL, rel[AP_RELEASE_MAX], p[PATH_MAX];
    char *lock_buf = NULL, *rec_buf = NULL, hex[AP_SHA256_HEX_LEN + 1];
    size_t lock_len = 0, rec_len = 0, ok = 0;
    json_t *d = json_pack("{s:s}", "name", name), *rec = NULL, *sig = json_object();
    json_t *modified = json_array(), *missing = json_array(), *unexpected = json_array();
    ap_lock *lock = NULL;
    ap_error e;
    uint8_t lh[AP_SHA256_LEN];
    int sig_ok = 0, problems = 0;

    if (!d || !sig || !modified || !missing || !unexpected)
        goto out;
    if (release) {
        /* a named release (audit --all-releases), active or not */
        char cur[AP_RELEASE_MAX] = "";
        char *cd = NULL, *cr = NULL;
        if (ap_install_current(prefix, name, &cd, &cr, cur, &e) != AP_OK)
            cur[0] = '\0';
        free(cd);
        free(cr);
        snprintf(rel, sizeof rel, "%s", release);
        if (asprintf(&release_dir, "%s/releases/%s/%s", prefix, name, release) < 0 ||
            asprintf(&receipt, "%s/.airpack/receipts/%s/%s", prefix, name, release) < 0) {
            release_dir = receipt = NULL;
            goto out;
        }
        json_object_set_new(d, "active", json_boolean(strcmp(cur, release) == 0));
    } else if (ap_install_current(prefix, name, &release_dir, &receipt, rel, &e) != AP_OK) {
        json_object_set_new(d, "error", json_string(e.msg));
        problems = 1;
        goto out;
    }
    json_object_set_new(d, "release", json_string(rel));
    json_object_set_new(d, "release_dir", json_string(release_dir));
    if (snprintf(p, sizeof p, "%s/%s", receipt, AP_INSTALL_RECORD) < (int)sizeof p &&
        ap_read_file(p, 1u << 20, &rec_buf, &rec_len, &e) == AP_OK)
        rec = json_loadb(rec_buf, rec_len, 0, NULL);
    if (snprintf(p, sizeof p, "%s/%s", receipt, AP_LOCK_NAME) >= (int)sizeof p ||
        ap_read_file(p, AP_LOCK_MAX_BYTES, &lock_buf, &lock_len, &e) != AP_OK) {
        json_object_set_new(d, "error", json_string("the receipt's lock is missing or unreadable"));
        problems = 1;
        (*n_sigfail)++;
        goto out;
    }
    if (rec) {
        json_object_set(d, "installed_at", json_object_get(rec, "installed_at"));
        json_object_set(d, "bundle", json_object_get(rec, "bundle"));
    }
    /* the signature before the lock is trusted */
    sig_ok = audit_trust ? check_receipt_trust(receipt, audit_trust, lock_buf, lock_len, sig)
                         : check_receipt_signature(receipt, keys, rec, lock_buf, lock_len, sig);
    json_object_set(d, "signature", sig);
    if (!sig_ok) {
        (*n_sigfail)++;
        problems = 1;
        goto out;
    }
    if (ap_sha256_buffer(lock_buf, lock_len, lh) != AP_OK)
        goto out;
    ap_hex_encode(lh, sizeof lh, hex);
    json_object_set_new(d, "lock_sha256", json_string(hex));
    if (rec && json_string_value(json_object_get(rec, "lock_sha256")) &&
        strcmp(json_string_value(json_object_get(rec, "lock_sha256")), hex) != 0) {
        json_object_set_new(d, "record_mismatch", json_true());
        problems = 1;
    }
    if (ap_lock_parse(AP_LOCK_NAME, lock_buf, lock_len, &lock, &e) != AP_OK) {
        json_object_set_new(d, "error", json_string(e.msg));
        problems = 1;
        goto out;
    }
    json_object_set_new(d, "version", json_string(lock->version));
    json_object_set_new(d, "sequence", json_integer((json_int_t)lock->sequence));
    json_object_set_new(d, "analysis", analysis_summary(lock));
    {
        struct walk w = {.root = release_dir, .n = lock->n_artifacts, .unexpected = unexpected};
        w.sorted = malloc((lock->n_artifacts ? lock->n_artifacts : 1) * sizeof *w.sorted);
        if (!w.sorted)
            goto out;
        for (size_t i = 0; i < lock->n_artifacts; i++) {
            check_file(release_dir, &lock->artifacts[i], modified, missing, &ok);
            w.sorted[i] = lock->artifacts[i].path;
        }
        qsort(w.sorted, w.n, sizeof *w.sorted, cmp_art);
        walk_dir(&w, "", 0);
        free(w.sorted);
    }
    check_generated(prefix, name, rel, lock, release_dir, modified, missing, unexpected);
    json_object_set_new(d, "files", json_pack("{s:I,s:I}", "checked",
                                              (json_int_t)lock->n_artifacts, "ok", (json_int_t)ok));
    {
        int pol_ok = 1;
        json_t *pol = eval_packs(ps, lock, &pol_ok);
        if (pol)
            json_object_set_new(d, "policy", pol);
        if (!pol_ok) {
            problems = 1;
            (*n_policy)++;
        }
    }
    {
        /* activation (src/site/activate.h): the current release's record and
         * the deployment's last activation from the log */
        json_t *act = json_object(), *lg = NULL;
        char *lbuf = NULL;
        size_t llen = 0;
        ap_error le;
        if (act) {
            const json_t *cur = rec ? json_object_get(rec, "activation") : NULL;
            json_object_set_new(act, "current", cur ? json_incref((json_t *)cur) : json_null());
            if (snprintf(p, sizeof p, "%s/.airpack/activations/%s.json", prefix, name) < (int)sizeof p &&
                ap_read_file(p, 4u << 20, &lbuf, &llen, &le) == AP_OK)
                lg = json_loadb(lbuf, llen, 0, NULL);
            free(lbuf);
            {
                const json_t *arr = json_object_get(lg, "activations");
                const json_t *last = json_array_size(arr) ? json_array_get(arr, json_array_size(arr) - 1) : NULL;
                json_object_set_new(act, "last", json_is_object(last) ? json_incref((json_t *)last) : json_null());
            }
            json_decref(lg);
            json_object_set_new(d, "activation", act);
        }
    }
    {
        /* the GPU preflight: as recorded at install, and against this host now */
        json_t *now = NULL, *pfo = json_object(), *ip = rec ? json_object_get(rec, "preflight") : NULL;
        ap_error pe;
        if (ap_preflight_run(lock->json, prefix, 0, &now, &pe) != AP_OK)
            now = json_pack("{s:s,s:s}", "verdict", "unknown", "error", pe.msg);
        if (pfo) {
            json_object_set_new(pfo, "install_preflight", ip ? json_incref(ip) : json_null());
            json_object_set_new(pfo, "now", now ? now : json_null());
            json_object_set_new(d, "preflight", pfo);
        } else {
            json_decref(now);
        }
    }
    {
        json_t *extra = json_array();
        size_t i;
        json_t *x;
        char msg[AP_LOCK_MAX_PATH + 200];
        const json_t *now = json_object_get(json_object_get(d, "preflight"), "now");
        const json_t *lact = json_object_get(json_object_get(d, "activation"), "last");
        const char *lres = json_string_value(json_object_get(lact, "result"));
        if (lres && strcmp(lres, "ok") != 0) {
            json_t *f;
            const json_t *rb = json_object_get(lact, "rollback");
            snprintf(msg, sizeof msg, "the last activation, of %s, failed at %s: %s; %s%s",
                     json_string_value(json_object_get(lact, "release")) ? json_string_value(json_object_get(lact, "release")) : "?",
                     json_string_value(json_object_get(lact, "step")) ? json_string_value(json_object_get(lact, "step")) : "?",
                     json_string_value(json_object_get(lact, "message")) ? json_string_value(json_object_get(lact, "message")) : "?",
                     !strcmp(lres, "rolled-back") ? "rolled back to " : !strcmp(lres, "stopped") ? "no previous release: the service was stopped"
                                                                       : "the rollback failed too: ",
                     !strcmp(lres, "rolled-back") ? (json_string_value(json_object_get(rb, "to")) ? json_string_value(json_object_get(rb, "to")) : "?")
                     : !strcmp(lres, "stopped") ? ""
                     : (json_string_value(json_object_get(rb, "message")) ? json_string_value(json_object_get(rb, "message")) : "?"));
            f = finding("AP-ACTIVATE-FAILED", "the last activation served the new release", "activation", msg);
            if (f) {
                json_object_set_new(f, "level", json_string(strcmp(lres, "rolled-back") == 0 ? "warning" : "error"));
                json_object_set_new(f, "controls", json_pack("[s,s]", "NIST SP 800-53 CM-3", "NIST SP 800-53 SI-6"));
            }
            add_finding(extra, f);
        }
        const char *pv = json_string_value(json_object_get(now, "verdict"));
        if (pv && (strcmp(pv, "does-not-fit") == 0 || strcmp(pv, "fits-reduced") == 0)) {
            json_t *f;
            snprintf(msg, sizeof msg, "the signed plan %s this host's GPUs: %s",
                     strcmp(pv, "does-not-fit") == 0 ? "does not fit" : "fits only with a smaller context or concurrency on",
                     json_string_value(json_array_get(json_object_get(now, "problems"), 0))
                         ? json_string_value(json_array_get(json_object_get(now, "problems"), 0)) : pv);
            f = finding("AP-PREFLIGHT-FIT", "the signed memory plan fits this host's GPUs", "target.gpu", msg);
            if (f) {
                json_object_set_new(f, "level", json_string("warning"));
                json_object_set_new(f, "controls", json_pack("[s,s]", "NIST SP 800-53 CM-8", "NIST SP 800-53 SA-9(5)"));
            }
            add_finding(extra, f);
        }
        json_array_foreach(modified, i, x) {
            snprintf(msg, sizeof msg, "installed file '%s' was modified: %s",
                     json_string_value(json_object_get(x, "path")),
                     json_string_value(json_object_get(x, "reason")));
            add_finding(extra, finding("AP-AUDIT-MODIFIED", "installed file differs from the signed lock",
                                       json_string_value(json_object_get(x, "path")), msg));
        }
        json_array_foreach(missing, i, x) {
            snprintf(msg, sizeof msg, "installed file '%s' is missing", json_string_value(x));
            add_finding(extra, finding("AP-AUDIT-MISSING", "file of the signed lock is missing",
                                       json_string_value(x), msg));
        }
        json_array_foreach(unexpected, i, x) {
            snprintf(msg, sizeof msg, "'%s' is in the release but not in the signed lock",
                     json_string_value(x));
            add_finding(extra, finding("AP-AUDIT-UNEXPECTED", "file not in the signed lock",
                                       json_string_value(x), msg));
        }
        json_object_set_new(d, "evidence",
                            evidence(lock, release_dir, lh,
                                     json_string_value(json_object_get(sig, "key_id")),
                                     json_string_value(json_object_get(sig, "key_file")), 1, extra,
                                     json_object_get(d, "policy")));
        {
            json_t *ev = json_object_get(d, "evidence"), *sc = site_checks(d);
            if (ev && sc)
                json_object_set_new(ev, "site_checks", sc);
            else
                json_decref(sc);
        }
    }
out:
    if (d) {
        size_t m = json_array_size(modified), mi = json_array_size(missing),
               u = json_array_size(unexpected);
        json_object_set(d, "modified", modified);
        json_object_set(d, "missing", missing);
        json_object_set(d, "unexpected", unexpected);
        *n_mod += m;
        *n_miss += mi;
        *n_unexp += u;
        json_object_set_new(d, "drift", json_boolean(m + mi + u > 0));
        json_object_set_new(d, "passed", json_boolean(!problems && m + mi + u == 0));
        if (!json_object_get(d, "signature"))
            json_object_set(d, "signature", sig);
    }
    json_decref(sig);
    json_decref(modified);
    json_decref(missing);
    json_decref(unexpected);
    json_decref(rec);
    ap_lock_free(lock);
    free(lock_buf);
    free(rec_buf);
    free(release_dir);
    free(receipt);
    return d;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The installed releases of name (non-dot folders of releases/<name>),
 * sorted; a NULL-terminated new array, 0 on success. */
static int installed_releases(const char *prefix, const char *name, char ***out)
{
    char p[PATH_MAX];
    DIR *d;
    struct dirent *e;
    char **v = NULL;
    size_t n = 0;
    *out = NULL;
    if (snprintf(p, sizeof p, "%s/releases/%s", prefix, name) >= (int)sizeof p || !(d = opendir(p)))
        return -1;
    while ((e = readdir(d))) {
        char **nv;
        if (e->d_name[0] == '.')
            continue;
        if (!(nv = realloc(v, (n + 2) * sizeof *v)))
            break;
        v = nv;
        v[n] = NULL;
        if (!(v[n] = strdup(e->d_name)))
            break;
        v[++n] = NULL;
    }
    closedir(d);
    if (!v)
        return -1;
    qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    return 0;
}

int ap_audit_installed(const char *prefix, const char *name, const ap_audit_opts *o,
                       json_t **report, ap_error *err)
{
    const ap_keyring *keys = o ? o->keys : NULL;
    struct packs ps;
    size_t n_pol = 0;
    audit_trust = o ? o->trust : NULL;
    char **names = NULL, *one[2] = {NULL, NULL};
    char **list;
    json_t *doc, *deps;
    size_t n_mod = 0, n_miss = 0, n_unexp = 0, n_sig = 0, n = 0, failed = 0;
    struct stat st;
    int rc;

    *report = NULL;
    if (stat(prefix, &st) != 0 || !S_ISDIR(st.st_mode))
        return ap_error_errno(err, AP_ERR_INPUT, errno ? errno : ENOTDIR, "cannot open prefix",
                              prefix);
    if ((rc = packs_load(o, &ps, err)) != AP_OK)
        return rc;
    if (name) {
        one[0] = (char *)name;
        list = one;
    } else {
        if ((rc = ap_install_names(prefix, &names, err)) != AP_OK) {
            packs_free(&ps);
            return rc;
        }
        list = names;
    }
    doc = json_pack("{s:o,s:s,s:s,s:[]}", "tool", tool_json(), "kind", "installed", "prefix",
                    prefix, "deployments");
    deps = json_object_get(doc, "deployments");
    for (size_t i = 0; doc && list[i]; i++) {
        char **rels = NULL;
        size_t nr = 1;
        if (o && o->all_releases && installed_releases(prefix, list[i], &rels) == 0)
            for (nr = 0; rels[nr]; nr++)
                ;
        for (size_t k = 0; k < nr; k++, n++) {
            json_t *d = audit_one(prefix, list[i], rels ? rels[k] : NULL, keys, &ps, &n_mod,
                                  &n_miss, &n_unexp, &n_sig, &n_pol);
            if (!d)
                continue;
            if (!json_is_true(json_object_get(d, "passed")))
                failed++;
            json_array_append_new(deps, d);
        }
        ap_strv_free(rels);
    }
    ap_strv_free(names);
    packs_free(&ps);
    if (!doc)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (n == 0)
        failed++; /* nothing installed: nothing proven */
    json_object_set_new(doc, "summary",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "deployments", (json_int_t)n,
                                  "modified", (json_int_t)n_mod, "missing", (json_int_t)n_miss,
                                  "unexpected", (json_int_t)n_unexp, "signature_failures",
                                  (json_int_t)n_sig, "policy_failures", (json_int_t)n_pol,
                                  "passed", failed == 0));
    *report = doc;
    return AP_OK;
}

struct bundle_audit {
    json_t *arts;
};

static void on_artifact(void *ctx, size_t index, const ap_artifact *a, ap_bundle_fault f,
                        const char *msg)
{
    struct bundle_audit *b = ctx;
    char hex[AP_SHA256_HEX_LEN + 1];
    json_t *o;
    (void)index;
    ap_hex_encode(a->sha256, AP_SHA256_LEN, hex);
    o = json_pack("{s:s,s:s,s:I,s:s,s:s}", "path", a->path, "role", ap_role_name(a->role), "size",
                  (json_int_t)a->size, "sha256", hex, "status",
                  f == AP_FAULT_NONE ? "ok" : ap_bundle_fault_name(f));
    if (o && f != AP_FAULT_NONE && msg) {
        json_t *m = json_string(msg);
        json_object_set_new(o, "message", m ? m : json_string("(message not UTF-8)"));
    }
    if (o)
        json_array_append_new(b->arts, o);
}

int ap_audit_bundle(const char *path, const ap_audit_opts *ao, json_t **report, ap_error *err)
{
    const ap_keyring *keys = ao ? ao->keys : NULL;
    struct packs ps;
    json_t *pol = NULL;
    int pol_ok = 1;
    ap_bundle_opts o;
    ap_bundle_result res;
    struct bundle_audit b;
    ap_error verr;
    json_t *doc, *v;
    int rc, passed;

    *report = NULL;
    if (strcmp(path, "-") != 0 && access(path, R_OK) != 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open bundle", path);
    if ((rc = packs_load(ao, &ps, err)) != AP_OK)
        return rc;
    memset(&o, 0, sizeof o);
    b.arts = json_array();
    if (!b.arts) {
        packs_free(&ps);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    o.keys = keys;
    o.trust = ao ? ao->trust : NULL;
    o.allow_unsigned = (!keys || keys->n == 0) && !o.trust;
    o.keep_going = 1;
    o.threads = 1;
    o.artifact_done = on_artifact;
    o.artifact_ctx = &b;
    ap_error_clear(&verr);
    rc = ap_bundle_verify(path, &o, &res, &verr);
    if (rc != AP_OK && rc != AP_ERR_CHECK) {
        *err = verr;
        json_decref(b.arts);
        ap_bundle_result_release(&res);
        packs_free(&ps);
        return rc;
    }
    v = ap_bundle_result_json(path, &res, rc == AP_OK ? NULL : &verr);
    if (res.lock)
        pol = eval_packs(&ps, res.lock, &pol_ok);
    else if (ps.n)
        pol_ok = 0;
    packs_free(&ps);
    passed = rc == AP_OK && res.signature_checked && pol_ok;
    doc = json_pack("{s:o,s:s,s:s,s:o,s:o,s:o,s:o}", "tool", tool_json(), "kind", "bundle",
                    "bundle", path, "verify", v ? v : json_null(), "artifacts", b.arts,
                    "target",
                    res.lock && json_object_get(res.lock->json, "target")
                        ? json_incref(json_object_get(res.lock->json, "target"))
                        : json_null(),
                    "analysis", analysis_summary(res.lock));
    if (doc && res.lock && res.has_sig) {
        json_t *extra = json_array();
        char kid[17];
        ap_keyid_hex(res.sig.keyid, kid);
        for (size_t i = 0; i < json_array_size(b.arts); i++) {
            json_t *a = json_array_get(b.arts, i);
            const char *st = json_string_value(json_object_get(a, "status"));
            if (st && strcmp(st, "ok") != 0 && strcmp(st, "in-base") != 0)
                add_finding(extra, finding("AP-AUDIT-ARTIFACT", "bundle entry does not match the signed lock",
                                           json_string_value(json_object_get(a, "path")),
                                           json_string_value(json_object_get(a, "message"))
                                               ? json_string_value(json_object_get(a, "message"))
                                               : st));
        }
        if (rc != AP_OK && !res.n_failed)
            add_finding(extra, finding("AP-AUDIT-BUNDLE", "bundle refused", path, verr.msg));
        if (!res.signature_checked)
            add_finding(extra, finding("AP-AUDIT-SIGNATURE", "signature not checked", path,
                                       "the lock's signature was not checked: no trusted key given"));
        json_object_set_new(doc, "evidence",
                            evidence(res.lock, path, res.lock_sha256, kid,
                                     res.signature_checked ? res.signer.source : NULL,
                                     rc == AP_OK && res.signature_checked, extra, pol));
    }
    if (doc && pol)
        json_object_set_new(doc, "policy", pol);
    else
        json_decref(pol);
    if (doc) {
        size_t bad = 0;
        for (size_t i = 0; i < json_array_size(b.arts); i++)
            if (strcmp(json_string_value(json_object_get(json_array_get(b.arts, i), "status")),
                       "ok") != 0 &&
                strcmp(json_string_value(json_object_get(json_array_get(b.arts, i), "status")),
                       "in-base") != 0)
                bad++;
        json_object_set_new(doc, "summary",
                            json_pack("{s:I,s:I,s:b,s:b}", "artifacts",
                                      (json_int_t)json_array_size(b.arts), "failed",
                                      (json_int_t)bad, "signature_checked",
                                      res.signature_checked, "passed", passed));
    }
    ap_bundle_result_release(&res);
    if (!doc)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    *report = doc;
    return AP_OK;
}
