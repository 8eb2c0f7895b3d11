/*
 * entries.c - the bundle entries a manifest would give, checked at check
 * time (see source.h): the plan is made by the code build uses
 * (ap_bundle_plan_add_manifest), then its names are checked the way pass
 * one and the lock parser check them.
 */
#include <stdlib.h>
#include <string.h>

#include "../bundle_write.h"
#include "source.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ap_input_entries_check(const ap_manifest *m, ap_error *err)
{
    ap_bundle_plan plan;
    char **names = NULL, buf[AP_LOCK_MAX_PATH + 1];
    int rc;

    ap_bundle_plan_init(&plan);
    if ((rc = ap_bundle_plan_add_manifest(&plan, m, err))) {
        ap_error_prefix(err, "manifest '%s'", m->file);
        goto out;
    }
    if (!(names = malloc((plan.n ? plan.n : 1) * sizeof *names))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < plan.n; i++)
        names[i] = plan.items[i].path;
    qsort(names, plan.n, sizeof *names, cmp_str);
    for (size_t i = 1; i < plan.n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            rc = ap_error_set(err, AP_ERR_INPUT, "two inputs would both be bundle entry '%s'",
                              names[i]);
            goto out;
        }
    for (size_t i = 0; i < plan.n; i++) {
        const char *p = names[i];
        for (const char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
            char *key = buf;
            if ((size_t)(s - p) > AP_LOCK_MAX_PATH)
                break;
            memcpy(buf, p, (size_t)(s - p));
            buf[s - p] = '\0';
            if (bsearch(&key, names, plan.n, sizeof *names, cmp_str)) {
                rc = ap_error_set(err, AP_ERR_INPUT,
                                  "bundle entry '%s' would also be the folder of '%s'", buf, p);
                goto out;
            }
        }
    }
out:
    free(names);
    ap_bundle_plan_release(&plan);
    return rc;
}
