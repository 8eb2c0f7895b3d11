/*
 * waiver.c - loading waivers and applying them to findings (see waiver.h).
 */
#include "waiver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "yamltree.h"

typedef struct waiver {
    char *rule, *subject, *justification, *approver;
    char expires[11];               /* YYYY-MM-DD, valid through that day */
    unsigned line;                  /* of the list item */
} waiver;

struct ap_waivers {
    char *file;
    waiver *w;
    size_t n;
};

void ap_waivers_free(ap_waivers *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->w[i].rule);
        free(w->w[i].subject);
        free(w->w[i].justification);
        free(w->w[i].approver);
    }
    free(w->w);
    free(w->file);
    free(w);
}

size_t ap_waivers_count(const ap_waivers *w)
{
    return w ? w->n : 0;
}

/* A real calendar date "YYYY-MM-DD". */
static int valid_date(const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    y = atoi(s);
    m = atoi(s + 5);
    d = atoi(s + 8);
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return 0;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 0;
    return 1;
}

static int dup_field(const ap_ydoc *doc, const ap_ynode *item, const char *key, char **out,
                     ap_error *err)
{
    ap_ynode *v;
    const char *s;
    int rc;
    if ((rc = ap_y_require(doc, item, key, "a waiver", &v, err)) ||
        (rc = ap_y_string(doc, v, key, &s, err)))
        return rc;
    if (!*s)
        return ap_y_error(doc, v, err, "'%s' must not be empty", key);
    *out = strdup(s);
    return *out ? AP_OK : ap_error_set(err, AP_ERR_NOMEM, "out of memory");
}

static int from_doc(const ap_ydoc *doc, const char *name, ap_waivers **out, ap_error *err)
{
    static const char *const top[] = {"apiVersion", "kind", "waivers", NULL};
    static const char *const keys[] = {"rule", "subject", "justification", "approver",
                                       "expires", NULL};
    ap_waivers *w = calloc(1, sizeof(*w));
    ap_ynode *v, *list;
    const char *s;
    int rc = AP_OK;
    *out = NULL;
    if (!w || !(w->file = strdup(name))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (!doc->root) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "waivers file is empty");
        goto done;
    }
    if ((rc = ap_y_expect(doc, doc->root, AP_Y_MAP, "the waivers file", err)) ||
        (rc = ap_y_check_keys(doc, doc->root, top, "the waivers file", err)) ||
        (rc = ap_y_require(doc, doc->root, "apiVersion", "the waivers file", &v, err)) ||
        (rc = ap_y_string(doc, v, "apiVersion", &s, err)))
        goto done;
    if (strcmp(s, "airpack/v1") != 0) {
        rc = ap_y_error(doc, v, err, "apiVersion must be 'airpack/v1', not '%s'", s);
        goto done;
    }
    if ((rc = ap_y_require(doc, doc->root, "kind", "the waivers file", &v, err)) ||
        (rc = ap_y_string(doc, v, "kind", &s, err)))
        goto done;
    if (strcmp(s, "Waivers") != 0) {
        rc = ap_y_error(doc, v, err, "kind must be 'Waivers', not '%s'", s);
        goto done;
    }
    if ((rc = ap_y_require(doc, doc->root, "waivers", "the waivers file", &list, err)) ||
        (rc = ap_y_expect(doc, list, AP_Y_SEQ, "'waivers'", err)))
        goto done;
    if (list->n > AP_WAIVERS_MAX) {
        rc = ap_y_error(doc, list, err, "too many waivers (at most %u)", AP_WAIVERS_MAX);
        goto done;
    }
    w->w = calloc(list->n ? list->n : 1, sizeof(waiver));
    if (!w->w) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < list->n; i++) {
        const ap_ynode *it = list->items[i];
        waiver *x = &w->w[w->n++];
        if ((rc = ap_y_expect(doc, it, AP_Y_MAP, "a waiver", err)) ||
            (rc = ap_y_check_keys(doc, it, keys, "a waiver", err)) ||
            (rc = dup_field(doc, it, "rule", &x->rule, err)) ||
            (rc = dup_field(doc, it, "subject", &x->subject, err)) ||
            (rc = dup_field(doc, it, "justification", &x->justification, err)) ||
            (rc = dup_field(doc, it, "approver", &x->approver, err)) ||
            (rc = ap_y_require(doc, it, "expires", "a waiver", &v, err)) ||
            (rc = ap_y_string(doc, v, "expires", &s, err)))
            goto done;
        if (!valid_date(s)) {
            rc = ap_y_error(doc, v, err, "'expires' must be a date YYYY-MM-DD, not '%s'", s);
            goto done;
        }
        memcpy(x->expires, s, 11);
        x->line = it->line;
    }
done:
    if (rc) {
        ap_waivers_free(w);
        return rc;
    }
    *out = w;
    return AP_OK;
}

int ap_waivers_load(const char *path, ap_waivers **out, ap_error *err)
{
    static const ap_ylimits lim = {.max_bytes = AP_WAIVERS_MAX_BYTES, .max_depth = 16,
                                   .max_nodes = 200000, .max_scalar = 16u << 10};
    ap_ydoc *doc = NULL;
    int rc = ap_yaml_load_file(path, &lim, &doc, err);
    if (rc)
        return rc;
    rc = from_doc(doc, path, out, err);
    ap_ydoc_free(doc);
    return rc;
}

int ap_waivers_parse(const char *name, const void *buf, size_t len, ap_waivers **out,
                     ap_error *err)
{
    static const ap_ylimits lim = {.max_bytes = AP_WAIVERS_MAX_BYTES, .max_depth = 16,
                                   .max_nodes = 200000, .max_scalar = 16u << 10};
    ap_ydoc *doc = NULL;
    int rc = ap_yaml_load_buffer(name, buf, len, &lim, &doc, err);
    if (rc)
        return rc;
    rc = from_doc(doc, name, out, err);
    ap_ydoc_free(doc);
    return rc;
}

static json_t *waiver_json(const ap_waivers *w, const waiver *x)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "rule", x->rule, "subject", x->subject,
                     "justification", x->justification, "approver", x->approver, "expires",
                     x->expires, "file", w->file, "line", (json_int_t)x->line);
}

int ap_waivers_apply(const ap_waivers *w, json_t *findings, const char *today, ap_error *err)
{
    size_t i;
    json_t *f;
    if (!today || !valid_date(today))
        return ap_error_set(err, AP_ERR_INPUT, "invalid date '%s' (want YYYY-MM-DD)",
                            today ? today : "");
    if (!w)
        return AP_OK;
    json_array_foreach(findings, i, f) {
        const char *rule = json_string_value(json_object_get(f, "rule"));
        const char *subj = json_string_value(json_object_get(f, "subject"));
        const char *sname = json_string_value(json_object_get(f, "subject_name"));
        if (!rule || json_is_true(json_object_get(f, "waived")))
            continue;
        for (size_t k = 0; k < w->n; k++) {
            const waiver *x = &w->w[k];
            json_t *wj;
            if (strcmp(x->rule, rule) != 0)
                continue;
            if (!((subj && !strcmp(x->subject, subj)) || (sname && !strcmp(x->subject, sname))))
                continue;
            if (!(wj = waiver_json(w, x)))
                return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            /* valid through its expiry day; ISO dates compare as strings */
            if (strcmp(today, x->expires) <= 0) {
                if (json_object_set_new(f, "waived", json_true()) ||
                    json_object_set_new(f, "waiver", wj))
                    return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                json_object_del(f, "waiver_expired");
                break;
            }
            if (json_object_set_new(f, "waiver_expired", wj))
                return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        }
    }
    return AP_OK;
}

void ap_today_utc(char out[11])
{
    time_t t = time(NULL);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 11, "%Y-%m-%d", &tm) != 10)
        snprintf(out, 11, "1970-01-01");
}
