/*
 * installed.c - the verified lock of an installed release, for preflight
 * and activation (preflight.h). The receipt (install.h) holds the signed
 * lock as shipped; its signature is checked before the lock is parsed.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_read.h"
#include "install.h"
#include "preflight/preflight.h"
#include "util.h"

static int receipt_dir(const char *prefix, const char *name, const char *release, char *out,
                       size_t n, char rel[AP_RELEASE_MAX], ap_error *err)
{
    char *rd = NULL, *rc_dir = NULL;
    int rc;
    if (!release) {
        if ((rc = ap_install_current(prefix, name, &rd, &rc_dir, rel, err)) != AP_OK)
            return rc;
        rc = snprintf(out, n, "%s", rc_dir) >= (int)n ? ap_error_set(err, AP_ERR_INPUT, "path too long") : AP_OK;
        free(rd);
        free(rc_dir);
        return rc;
    }
    if (!name || strchr(name, '/') || strchr(release, '/') || strlen(release) >= AP_RELEASE_MAX)
        return ap_error_set(err, AP_ERR_INPUT, "bad deployment or release name");
    snprintf(rel, AP_RELEASE_MAX, "%s", release);
    if (snprintf(out, n, "%s/.airpack/receipts/%s/%s", prefix, name, release) >= (int)n)
        return ap_error_set(err, AP_ERR_INPUT, "path too long");
    return AP_OK;
}

int ap_installed_lock(const char *prefix, const char *name, const char *release,
                      const ap_keyring *keys, ap_lock **out, const char **key_source,
                      char *release_out, ap_error *err)
{
    char dir[PATH_MAX], p[PATH_MAX], rel[AP_RELEASE_MAX];
    char *lock_buf = NULL, *sig_buf = NULL, *rec_buf = NULL;
    size_t lock_len = 0, sig_len = 0, rec_len = 0;
    ap_signature sig;
    ap_keyring own = {0};
    const ap_keyring *kr = keys;
    const ap_pubkey *signer = NULL;
    json_t *rec = NULL;
    int rc;

    *out = NULL;
    if (key_source)
        *key_source = keys && keys->n ? "trusted keys" : "install record";
    if ((rc = receipt_dir(prefix, name, release, dir, sizeof dir, rel, err)) != AP_OK)
        return rc;
    if (release_out)
        snprintf(release_out, AP_RELEASE_MAX, "%s", rel);
    if (snprintf(p, sizeof p, "%s/%s", dir, AP_LOCK_NAME) >= (int)sizeof p ||
        (rc = ap_read_file(p, AP_LOCK_MAX_BYTES, &lock_buf, &lock_len, err)) != AP_OK) {
        rc = ap_error_set(err, AP_ERR_CHECK, "receipt '%s': the signed lock is missing or unreadable", dir);
        goto out;
    }
    if (snprintf(p, sizeof p, "%s/%s", dir, AP_LOCK_SIG_NAME) >= (int)sizeof p ||
        (rc = ap_read_file(p, AP_KEYFILE_MAX, &sig_buf, &sig_len, err)) != AP_OK) {
        rc = ap_error_set(err, AP_ERR_CHECK, "receipt '%s': the lock's signature is missing or unreadable", dir);
        goto out;
    }
    if ((rc = ap_signature_parse(p, sig_buf, sig_len, &sig, err)) != AP_OK) {
        rc = AP_ERR_CHECK;
        goto out;
    }
    if (!kr || kr->n == 0) {
        const char *b64;
        if (snprintf(p, sizeof p, "%s/%s", dir, AP_INSTALL_RECORD) < (int)sizeof p &&
            ap_read_file(p, 1u << 20, &rec_buf, &rec_len, err) == AP_OK)
            rec = json_loadb(rec_buf, rec_len, 0, NULL);
        b64 = json_string_value(json_object_get(json_object_get(rec, "signature"), "public_key"));
        own.keys = calloc(1, sizeof *own.keys);
        if (!b64 || !own.keys ||
            ap_pubkey_parse("install record", b64, strlen(b64), &own.keys[0], err) != AP_OK) {
            rc = ap_error_set(err, AP_ERR_CHECK, "receipt '%s': no trusted key given and no key in the install record", dir);
            goto out;
        }
        snprintf(own.keys[0].source, sizeof own.keys[0].source, "install record");
        own.n = 1;
        kr = &own;
    }
    if ((rc = ap_signature_verify(&sig, kr, lock_buf, lock_len, &signer, err)) != AP_OK) {
        ap_error_prefix(err, "receipt '%s'", dir);
        rc = err ? err->status : rc;
        goto out;
    }
    rc = ap_lock_parse(AP_LOCK_NAME, lock_buf, lock_len, out, err);
out:
    free(lock_buf);
    free(sig_buf);
    free(rec_buf);
    json_decref(rec);
    ap_keyring_release(&own);
    return rc;
}

json_t *ap_preflight_credit(const ap_lock *lock)
{
    const json_t *plan = json_object_get(json_object_get(lock ? lock->json : NULL, "analysis"), "plan");
    const json_t *gpus = json_object_get(plan, "gpus"), *g;
    json_t *out, *arr;
    size_t i;
    if (!json_is_array(gpus))
        return NULL;
    if (!(arr = json_array()))
        return NULL;
    json_array_foreach(gpus, i, g) {
        const json_t *u = json_object_get(g, "used_bytes"), *b = json_object_get(g, "budget_bytes");
        json_int_t v = json_is_integer(u) && json_integer_value(u) > 0 && json_is_integer(b) &&
                               json_integer_value(b) > 0 ? json_integer_value(b) : 0;
        if (i >= AP_HOSTGPU_MAX || json_array_append_new(arr, json_pack("{s:I}", "used_bytes", v))) {
            json_decref(arr);
            return NULL;
        }
    }
    out = json_pack("{s:o}", "gpus", arr);
    return out;
}

int ap_preflight_run(const json_t *lock_doc, const char *prefix, int ignore_free, json_t **report,
                     ap_error *err)
{
    ap_hostgpus host;
    ap_preflight_opts o = {0};
    ap_lock *active = NULL;
    json_t *credit = NULL;
    const char *name = json_string_value(json_object_get(json_object_get(lock_doc, "metadata"), "name"));
    ap_error ignored;
    int rc;

    *report = NULL;
    if ((rc = ap_hostgpus_read(&host, err)) != AP_OK)
        return rc;
    if (prefix && name && ap_installed_lock(prefix, name, NULL, NULL, &active, NULL, NULL, &ignored) == AP_OK)
        credit = ap_preflight_credit(active);
    o.ignore_free = ignore_free;
    o.credit_plan = credit;
    rc = ap_preflight_check(lock_doc, &host, &o, report, err);
    if (rc == AP_OK && active)
        json_object_set_new(*report, "credited_release",
                            json_pack("{s:s,s:I}", "version", active->version, "sequence",
                                      (json_int_t)active->sequence));
    json_decref(credit);
    ap_lock_free(active);
    ap_hostgpus_release(&host);
    return rc;
}

struct lock_only {
    json_t *doc;
};

static int lock_only_begin(void *ctx, const ap_lock *lock, const void *lock_buf, size_t lock_len,
                           const void *sig_buf, size_t sig_len, const ap_pubkey *signer, ap_error *err)
{
    struct lock_only *lo = ctx;
    lo->doc = json_incref(lock->json);
    /* stop the pass: the artifacts are not needed */
    return ap_error_set(err, AP_ERR_CHECK, "lock read");
}

int ap_bundle_signed_lock(const char *path, const ap_keyring *keys, json_t **lock_doc, ap_error *err)
{
    struct lock_only lo = {0};
    ap_bundle_sink sink = {0};
    ap_bundle_opts bo;
    ap_bundle_result res;
    int rc;

    *lock_doc = NULL;
    memset(&bo, 0, sizeof bo);
    sink.ctx = &lo;
    sink.begin = lock_only_begin;
    bo.keys = keys;
    bo.threads = 1;
    bo.sink = &sink;
    rc = ap_bundle_verify(path, &bo, &res, err);
    if (lo.doc && res.signature_checked) {
        ap_error_clear(err);
        *lock_doc = lo.doc;
        rc = AP_OK;
    } else {
        json_decref(lo.doc);
        if (rc == AP_OK)
            rc = ap_error_set(err, AP_ERR_CHECK, "bundle '%s': no lock", path);
    }
    ap_bundle_result_release(&res);
    return rc;
}
