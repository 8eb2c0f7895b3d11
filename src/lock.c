/*
 * lock.c - parse and check airpack.lock.json (see lock.h and
 * docs/bundle-format.md). The lock is treated as hostile: every field is
 * type-checked, unknown keys are refused, sizes and counts are capped,
 * artifact paths must be safe and unique (no file may also be a folder of
 * another), and the artifact list must follow the bundle's order of roles
 * with SHA256SUMS first. The lock writer lives in bundle_write.c.
 */
#include "lock.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/launch.h"
#include "util.h"

#define NAME_MAX_LEN 128
#define VERSION_MAX_LEN 64
#define TEXT_MAX_LEN 4096           /* description, owner */

static const char *const role_names[] = {"checksums", "sbom", "report", "model", "runtime", "file",
                                         "trust"};

const char *ap_role_name(ap_role r)
{
    if ((unsigned)r < AP_ARRAY_LEN(role_names))
        return role_names[r];
    return "unknown";
}

int ap_role_from_name(const char *s, ap_role *out)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(role_names); i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *out = (ap_role)i;
            return 0;
        }
    }
    return -1;
}

void ap_lock_free(ap_lock *lock)
{
    if (!lock)
        return;
    for (size_t i = 0; i < lock->n_artifacts; i++)
        free(lock->artifacts[i].path);
    free(lock->artifacts);
    free(lock->name);
    free(lock->version);
    free(lock->created);
    free(lock->expires);
    json_decref(lock->json);
    free(lock);
}

/* "WHERE: WHAT" as a format error of the lock. */
static int bad(ap_error *err, const char *name, const char *where, const char *what)
{
    return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "%s: %s", where, what);
}

/* Refuse keys of obj that are not in allowed (NULL-terminated). */
static int only_keys(const json_t *obj, const char *const *allowed, const char *name,
                     const char *where, ap_error *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        size_t i;
        (void)v;
        for (i = 0; allowed[i]; i++)
            if (strcmp(k, allowed[i]) == 0)
                break;
        if (!allowed[i])
            return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "%s: unknown key '%.64s'", where, k);
    }
    return AP_OK;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int version_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VERSION_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || !strchr(".-+_~", c)))
            return 0;
    }
    return 1;
}

/* "YYYY-MM-DDTHH:MM:SSZ" with plausible ranges. */
static int utc_time_ok(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
    int mo, d, h, mi, se;
    if (strlen(s) != sizeof pat - 1)
        return 0;
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
            return 0;
    }
    mo = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    h = (s[11] - '0') * 10 + (s[12] - '0');
    mi = (s[14] - '0') * 10 + (s[15] - '0');
    se = (s[17] - '0') * 10 + (s[18] - '0');
    return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && se <= 60;
}

static int text_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > TEXT_MAX_LEN || !ap_utf8_valid(s, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t') || s[i] == 0x7f)
            return 0; /* no escape sequences for terminals that show it */
    return 1;
}

/* Where a path of this role must live. */
static int role_path_ok(ap_role r, const char *p)
{
    switch (r) {
    case AP_ROLE_CHECKSUMS: return strcmp(p, AP_SUMS_NAME) == 0;
    case AP_ROLE_SBOM:      return strcmp(p, AP_SBOM_NAME) == 0;
    case AP_ROLE_REPORT:    return strchr(p, '/') == NULL && strcmp(p, AP_LOCK_NAME) != 0 &&
                                   strcmp(p, AP_LOCK_SIG_NAME) != 0 && strcmp(p, AP_SUMS_NAME) != 0 &&
                                   strcmp(p, AP_SBOM_NAME) != 0 && strcmp(p, "trust.json") != 0 &&
                                   strncmp(p, "airpack.lock.json.", 18) != 0;
    case AP_ROLE_MODEL:     return strncmp(p, "payload/models/", 15) == 0 && strchr(p + 15, '/');
    case AP_ROLE_RUNTIME:   return strncmp(p, "payload/runtimes/", 17) == 0 && strchr(p + 17, '/');
    case AP_ROLE_FILE:      return strncmp(p, "payload/files/", 14) == 0 && p[14] != '\0';
    case AP_ROLE_TRUST:     return strcmp(p, "trust.json") == 0;
    }
    return 0;
}

static int cmp_path_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Unique paths, and no path that is also the folder of another. */
static int check_unique(const ap_lock *l, const char *name, ap_error *err)
{
    char **sorted = malloc((l->n_artifacts ? l->n_artifacts : 1) * sizeof *sorted);
    char buf[AP_LOCK_MAX_PATH + 1];
    int rc = AP_OK;
    if (!sorted)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < l->n_artifacts; i++)
        sorted[i] = l->artifacts[i].path;
    qsort(sorted, l->n_artifacts, sizeof *sorted, cmp_path_ptr);
    for (size_t i = 1; i < l->n_artifacts; i++) {
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            rc = ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "artifact '%s' is listed twice",
                                 sorted[i]);
            goto out;
        }
    }
    for (size_t i = 0; i < l->n_artifacts; i++) {
        const char *p = l->artifacts[i].path;
        for (const char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
            char *key = buf;
            memcpy(buf, p, (size_t)(s - p));
            buf[s - p] = '\0';
            if (bsearch(&key, sorted, l->n_artifacts, sizeof *sorted, cmp_path_ptr)) {
                rc = ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0,
                                     "artifact '%s' is also the folder of '%s'", buf, p);
                goto out;
            }
        }
    }
out:
    free(sorted);
    return rc;
}

static int parse_artifact(const json_t *o, size_t i, ap_artifact *a, const char *name,
                          ap_error *err)
{
    static const char *const keys[] = {"path", "size", "sha256", "mode", "role", "in_base", NULL};
    char where[64];
    const json_t *v;
    const char *s;
    json_int_t size;
    int rc;

    snprintf(where, sizeof where, "artifacts[%zu]", i);
    if (!json_is_object(o))
        return bad(err, name, where, "not an object");
    if ((rc = only_keys(o, keys, name, where, err)))
        return rc;
    v = json_object_get(o, "path");
    if (!json_is_string(v))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "%s.path: missing or not a string", where);
    s = json_string_value(v);
    if (json_string_length(v) > AP_LOCK_MAX_PATH || strlen(s) != json_string_length(v) ||
        !ap_path_is_safe_relative(s) || s[strlen(s) - 1] == '/')
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "%s.path: unsafe path '%.200s'",
                               where, s);
    if (!(a->path = strdup(s)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    v = json_object_get(o, "size");
    if (!json_is_integer(v) || (size = json_integer_value(v)) < 0)
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "%s.size: %s", where, "missing or not a non-negative integer");
    a->size = (uint64_t)size;
    v = json_object_get(o, "sha256");
    s = json_string_value(v);
    if (!s || json_string_length(v) != AP_SHA256_HEX_LEN ||
        strspn(s, "0123456789abcdef") != AP_SHA256_HEX_LEN || !ap_hex_decode(s, a->sha256, 32))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "%s.sha256: %s", where, "missing or not 64 lowercase hex digits");
    s = json_string_value(json_object_get(o, "mode"));
    if (s && strcmp(s, "0644") == 0)
        a->mode = 0644;
    else if (s && strcmp(s, "0755") == 0)
        a->mode = 0755;
    else
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "%s.mode: %s", where, "missing or not \"0644\" or \"0755\"");
    s = json_string_value(json_object_get(o, "role"));
    if (!s || ap_role_from_name(s, &a->role) != 0)
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "%s.role: %s", where, "missing or unknown role");
    if (!role_path_ok(a->role, a->path))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0,
                               "%s: path '%.200s' does not fit role '%s'", where, a->path,
                               ap_role_name(a->role));
    v = json_object_get(o, "in_base");
    if (v) {
        /* a delta bundle: only payload and the report may come from the
         * base, and only as true */
        if (!json_is_true(v) || a->role < AP_ROLE_REPORT || a->role > AP_ROLE_FILE)
            return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "%s.in_base: %s", where,
                                   "only true, and only for the report, a model, runtime or file");
        a->in_base = 1;
    }
    return AP_OK;
}

static int dup_field(const json_t *obj, const char *key, int required, int (*ok)(const char *),
                     char **out, const char *name, ap_error *err)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v && !required)
        return AP_OK;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "metadata.%s: %s", key, "missing or not a string");
    if (ok && !ok(json_string_value(v)))
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "metadata.%s: invalid value '%.100s'",
                               key, json_string_value(v));
    if (!(*out = strdup(json_string_value(v))))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    return AP_OK;
}

int ap_lock_parse(const char *name, const void *buf, size_t len, ap_lock **out, ap_error *err)
{
    static const char *const top_keys[] = {"format", "metadata", "target", "analysis",
                                           "artifacts", "totals", "launch", NULL};
    static const char *const md_keys[] = {"name", "version", "sequence", "created", "expires",
                                          "description", "owner", NULL};
    static const char *const totals_keys[] = {"artifacts", "bytes", NULL};
    json_error_t jerr;
    json_t *root = NULL, *md, *arts, *totals, *v;
    ap_lock *l = NULL;
    char *tmp = NULL;
    int rc;

    *out = NULL;
    if (!name)
        name = AP_LOCK_NAME;
    if (len > AP_LOCK_MAX_BYTES)
        return ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0,
                               "lock is %zu bytes, more than the limit of %u", len,
                               (unsigned)AP_LOCK_MAX_BYTES);
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        /* Valid JSON that the format forbids (repeated keys, NUL) is hostile. */
        enum json_error_code code = json_error_code(&jerr);
        int hostile = code == json_error_duplicate_key || code == json_error_null_character ||
                      code == json_error_null_byte_in_key;
        return ap_error_set_at(err, hostile ? AP_ERR_CHECK : AP_ERR_INPUT, name,
                               (unsigned)(jerr.line > 0 ? jerr.line : 0),
                               (unsigned)(jerr.column > 0 ? jerr.column : 0), "%s", jerr.text);
    }
    if (!(l = calloc(1, sizeof *l))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    l->json = root;
    if (!json_is_object(root)) {
        rc = ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "the lock is not a JSON object");
        goto fail;
    }
    if ((rc = only_keys(root, top_keys, name, "lock", err)))
        goto fail;
    v = json_object_get(root, "format");
    if (!json_is_string(v) || strcmp(json_string_value(v), AP_LOCK_FORMAT) != 0) {
        rc = ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "format: expected '%s'", AP_LOCK_FORMAT);
        goto fail;
    }
    md = json_object_get(root, "metadata");
    if (!json_is_object(md)) {
        rc = bad(err, name, "metadata", "missing or not an object");
        goto fail;
    }
    if ((rc = only_keys(md, md_keys, name, "metadata", err)) ||
        (rc = dup_field(md, "name", 1, name_ok, &l->name, name, err)) ||
        (rc = dup_field(md, "version", 1, version_ok, &l->version, name, err)) ||
        (rc = dup_field(md, "created", 1, utc_time_ok, &l->created, name, err)) ||
        (rc = dup_field(md, "expires", 0, utc_time_ok, &l->expires, name, err)) ||
        (rc = dup_field(md, "description", 0, text_ok, &tmp, name, err)))
        goto fail;
    free(tmp);
    tmp = NULL;
    if ((rc = dup_field(md, "owner", 0, text_ok, &tmp, name, err)))
        goto fail;
    free(tmp);
    tmp = NULL;
    v = json_object_get(md, "sequence");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        rc = bad(err, name, "metadata.sequence", "missing or not a non-negative integer");
        goto fail;
    }
    l->sequence = (uint64_t)json_integer_value(v);
    if (!json_is_object(json_object_get(root, "target"))) {
        rc = bad(err, name, "target", "missing or not an object");
        goto fail;
    }
    if (!json_is_object(json_object_get(root, "analysis"))) {
        rc = bad(err, name, "analysis", "missing or not an object");
        goto fail;
    }
    /* optional: bundles built before launch specs have none */
    if ((v = json_object_get(root, "launch")) && (rc = ap_launch_check(name, v, err)))
        goto fail;
    arts = json_object_get(root, "artifacts");
    if (!json_is_array(arts) || json_array_size(arts) == 0) {
        rc = bad(err, name, "artifacts", "missing, empty or not an array");
        goto fail;
    }
    if (json_array_size(arts) > AP_LOCK_MAX_ARTIFACTS) {
        rc = ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0,
                             "artifacts: %zu entries, more than the limit of %u",
                             json_array_size(arts), (unsigned)AP_LOCK_MAX_ARTIFACTS);
        goto fail;
    }
    if (!(l->artifacts = calloc(json_array_size(arts), sizeof *l->artifacts))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < json_array_size(arts); i++) {
        ap_artifact *a = &l->artifacts[i];
        l->n_artifacts = i + 1;
        if ((rc = parse_artifact(json_array_get(arts, i), i, a, name, err)))
            goto fail;
        if (i == 0 && a->role != AP_ROLE_CHECKSUMS) {
            rc = ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0,
                                 "artifacts[0]: the first artifact must be '%s'", AP_SUMS_NAME);
            goto fail;
        }
        if (i > 0 && (a->role == AP_ROLE_CHECKSUMS || a->role < l->artifacts[i - 1].role ||
                      ((a->role <= AP_ROLE_SBOM || a->role == AP_ROLE_TRUST) &&
                       a->role == l->artifacts[i - 1].role))) {
            rc = ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0,
                                 "artifacts[%zu]: role '%s' out of order", i, ap_role_name(a->role));
            goto fail;
        }
        if (!ap_add_u64(l->total_bytes, a->size, &l->total_bytes)) {
            rc = ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0, "artifact sizes overflow");
            goto fail;
        }
    }
    if ((rc = check_unique(l, name, err)))
        goto fail;
    totals = json_object_get(root, "totals");
    if (!json_is_object(totals) || (rc = only_keys(totals, totals_keys, name, "totals", err)) ||
        !json_is_integer(json_object_get(totals, "artifacts")) ||
        !json_is_integer(json_object_get(totals, "bytes")) ||
        json_integer_value(json_object_get(totals, "artifacts")) != (json_int_t)l->n_artifacts ||
        json_integer_value(json_object_get(totals, "bytes")) < 0 ||
        (uint64_t)json_integer_value(json_object_get(totals, "bytes")) != l->total_bytes) {
        if (rc == AP_OK)
            rc = ap_error_set_at(err, AP_ERR_CHECK, name, 0, 0,
                                 "totals: missing or not the artifacts' count and bytes");
        goto fail;
    }
    *out = l;
    return AP_OK;
fail:
    free(tmp);
    if (l)
        ap_lock_free(l);
    else
        json_decref(root);
    return rc;
}
