/*
 * site.c - the trust file of an install prefix: which file governs it,
 * rotation by a newer file (given or carried in a bundle), recording
 * (see trust.h, docs/trust.md).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trust/trust.h"
#include "util.h"

void ap_trust_prefix_release(ap_trust *installed, ap_trust *eff)
{
    if (eff != installed)
        ap_trust_free(eff);
    ap_trust_free(installed);
}

int ap_trust_for_prefix(const char *prefix, const char *given, ap_trust **installed,
                        ap_trust **eff, int *record, ap_error *err)
{
    char p[PATH_MAX];
    ap_trust *inst = NULL, *g = NULL;
    int rc;

    *installed = *eff = NULL;
    *record = 0;
    if (snprintf(p, sizeof p, "%s/%s", prefix, AP_TRUST_PREFIX_FILE) >= (int)sizeof p)
        return ap_error_set(err, AP_ERR_INPUT, "prefix path too long");
    if (access(p, F_OK) == 0) {
        if ((rc = ap_trust_load(p, &inst, err)) != AP_OK) {
            ap_error_prefix(err, "the prefix's recorded trust file");
            return rc == AP_ERR_INPUT ? AP_ERR_CHECK : rc;
        }
    }
    if (!given) {
        *installed = *eff = inst;
        return AP_OK;
    }
    if ((rc = ap_trust_load(given, &g, err)) != AP_OK) {
        ap_trust_free(inst);
        return rc;
    }
    if (!inst) {
        if ((rc = ap_trust_check_self(g, err)) != AP_OK) {
            ap_trust_free(g);
            return rc;
        }
        *eff = g;
        *record = 1;
        return AP_OK;
    }
    if (!memcmp(g->sha256, inst->sha256, sizeof g->sha256)) {
        ap_trust_free(g);
        *installed = *eff = inst;
        return AP_OK;
    }
    if (g->version <= inst->version) {
        rc = ap_error_set_at(err, AP_ERR_CHECK, given, 0, 0,
                             "trust file version %llu is not newer than the prefix's version %llu "
                             "('%s'): a rollback of the trust file is refused",
                             (unsigned long long)g->version, (unsigned long long)inst->version, p);
        ap_trust_free(g);
        ap_trust_free(inst);
        return rc;
    }
    if ((rc = ap_trust_check_rotation(inst, g, err)) != AP_OK) {
        ap_trust_free(g);
        ap_trust_free(inst);
        return rc;
    }
    *installed = inst;
    *eff = g;
    *record = 1;
    return AP_OK;
}

int ap_trust_carried(const ap_trust *cur, const char *name, const char *buf, size_t len,
                     const ap_signature *sigs, size_t n, const void *lock, size_t lock_len,
                     ap_trust **apply, ap_error *err)
{
    ap_trust *t = NULL;
    size_t found = 0;
    char desc[1024];
    int rc;

    *apply = NULL;
    if ((rc = ap_trust_parse(name, buf, len, &t, err)) != AP_OK) {
        ap_error_prefix(err, "the bundle's trust file");
        return AP_ERR_CHECK;
    }
    if (!memcmp(t->sha256, cur->sha256, sizeof t->sha256)) {
        ap_trust_free(t); /* the file already in force */
        return AP_OK;
    }
    if (t->version <= cur->version) {
        rc = ap_error_set(err, AP_ERR_CHECK,
                          "the bundle's trust file has version %llu, not newer than the "
                          "installed version %llu: a rollback of the trust file is refused",
                          (unsigned long long)t->version, (unsigned long long)cur->version);
        ap_trust_free(t);
        return rc;
    }
    if ((rc = ap_trust_check_rotation(cur, t, err)) != AP_OK) {
        ap_error_prefix(err, "the bundle's trust file is refused");
        ap_trust_free(t);
        return AP_ERR_CHECK;
    }
    /* the bundle must also satisfy the file it installs */
    if ((rc = ap_trust_count_sigs(t, AP_TRUST_ROLE_BUNDLES, sigs, n, lock, lock_len, &found, desc,
                                  sizeof desc, err)) != AP_OK) {
        ap_trust_free(t);
        return AP_ERR_CHECK;
    }
    if (found < t->threshold_bundles) {
        rc = ap_error_set(err, AP_ERR_CHECK,
                          "the bundle carries trust file version %llu but holds only %zu valid "
                          "signature%s of that file's 'bundles' role, %zu needed; signed by: %s",
                          (unsigned long long)t->version, found, found == 1 ? "" : "s",
                          t->threshold_bundles, desc);
        ap_trust_free(t);
        return rc;
    }
    *apply = t;
    return AP_OK;
}

int ap_trust_record(const char *prefix, const char *buf, size_t len, uint64_t v, ap_error *err)
{
    char p[PATH_MAX], h[PATH_MAX];
    int rc;
    if (snprintf(p, sizeof p, "%s/%s", prefix, AP_TRUST_HISTORY_DIR) >= (int)sizeof p)
        return ap_error_set(err, AP_ERR_INPUT, "prefix path too long");
    {
        char a[PATH_MAX];
        snprintf(a, sizeof a, "%s/.airpack", prefix);
        if (mkdir(a, 0755) != 0 && errno != EEXIST)
            return ap_error_errno(err, AP_ERR_IO, errno, "cannot create folder", a);
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot create folder", p);
    if (snprintf(h, sizeof h, "%s/%llu.json", p, (unsigned long long)v) >= (int)sizeof h)
        return ap_error_set(err, AP_ERR_INPUT, "prefix path too long");
    if ((rc = ap_trust_write_bytes(h, buf, len, err)) != AP_OK)
        return rc;
    snprintf(p, sizeof p, "%s/%s", prefix, AP_TRUST_PREFIX_FILE);
    return ap_trust_write_bytes(p, buf, len, err);
}
