/*
 * policy.c - policy packs: strict loading from YAML, parameters, and
 * evaluation over the analysis document (see policy.h, docs/policies.md).
 *
 * A rule's subjects come from expanding its scope path (`each`, else the
 * check's path): every `[*]` walks an array, and each concrete match binds
 * its wildcards ("runtimes[*]" -> 0). The rule's `when` and `check` paths
 * are then expanded under that binding, so `runtimes[*].kind` in `when`
 * names the same runtime as `runtimes[*].env.X` in `check`. A clause holds
 * when every value its path expands to satisfies all its operators; a path
 * that expands to nothing holds vacuously; a missing value only fails
 * `required`.
 */
#include "policy.h"
#include "runtime/launch.h"

#include "data.h"

#include <fnmatch.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "yamltree.h"

#define MAX_BIND 8          /* wildcards in one path */
#define CONCRETE_MAX 1024   /* bytes of a concrete path */
#define MSG_MAX 1024        /* bytes of one finding message */

/* ---------------------------------------------------------------- paths */

typedef enum { SEG_KEY, SEG_INDEX, SEG_WILD } seg_type;

typedef struct seg {
    seg_type t;
    char *key;          /* SEG_KEY */
    size_t idx;         /* SEG_INDEX */
    size_t end;         /* offset in text just after this segment */
} seg;

typedef struct ppath {
    char *text;         /* canonical text, e.g. "runtimes[*].env.X" */
    int analysis_root;  /* resolve against the analysis, not analysis.manifest */
    seg *segs;
    size_t n;
} ppath;

static const char *const analysis_roots[] = {
    "plan", "pins", "policies", "tool", "manifest_file", "bundle", "manifest", NULL,
};

static void ppath_release(ppath *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->segs[i].key);
    free(p->segs);
    free(p->text);
    memset(p, 0, sizeof(*p));
}

static int key_char(char c)
{
    return c != '.' && c != '[' && c != ']' && c != '$' && (unsigned char)c > ' ' && c != 0x7f;
}

/* Parse "a.b[*].c[2]" into segments. Returns 0 on success, else fills why. */
static int ppath_parse(const char *s, ppath *out, const char **why)
{
    size_t cap = 0, len = strlen(s), i = 0, nwild = 0;
    memset(out, 0, sizeof(*out));
    *why = "malformed path";
    if (len == 0 || len >= CONCRETE_MAX / 2)
        return -1;
    out->text = strdup(s);
    if (!out->text)
        return -1;
    while (i < len) {
        seg sg = {0};
        if (out->n >= AP_POLICY_MAX_PATH_SEGS) {
            *why = "path has too many segments";
            goto fail;
        }
        if (s[i] == '[') {
            size_t j = i + 1;
            if (out->n == 0)
                goto fail;
            if (s[j] == '*' && s[j + 1] == ']') {
                sg.t = SEG_WILD;
                i = j + 2;
                if (++nwild > MAX_BIND) {
                    *why = "path has too many [*]";
                    goto fail;
                }
            } else {
                size_t v = 0;
                if (s[j] < '0' || s[j] > '9')
                    goto fail;
                while (s[j] >= '0' && s[j] <= '9') {
                    if (v > 1000000)
                        goto fail;
                    v = v * 10 + (size_t)(s[j] - '0');
                    j++;
                }
                if (s[j] != ']')
                    goto fail;
                sg.t = SEG_INDEX;
                sg.idx = v;
                i = j + 1;
            }
        } else {
            size_t j = i;
            if (out->n > 0) {
                if (s[i] != '.')
                    goto fail;
                j = ++i;
            }
            while (j < len && key_char(s[j]))
                j++;
            if (j == i)
                goto fail;
            sg.t = SEG_KEY;
            sg.key = strndup(s + i, j - i);
            if (!sg.key)
                goto fail;
            i = j;
        }
        sg.end = i;
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            seg *ns = realloc(out->segs, ncap * sizeof(*ns));
            if (!ns) {
                free(sg.key);
                goto fail;
            }
            out->segs = ns;
            cap = ncap;
        }
        out->segs[out->n++] = sg;
    }
    for (size_t k = 0; analysis_roots[k]; k++)
        if (strcmp(out->segs[0].key, analysis_roots[k]) == 0)
            out->analysis_root = 1;
    return 0;
fail:
    ppath_release(out);
    return -1;
}

/* ------------------------------------------------------------- clauses */

/* A value operand: inline (a JSON string, or array of strings) or $param. */
typedef struct vref {
    json_t *val;        /* inline value (owned) or NULL */
    char *param;        /* parameter name or NULL */
} vref;

typedef struct clause {
    ppath path;
    int has_path;
    int required;
    vref allow, deny, equals, match, not_match, min, max, contains;
    struct clause *any_of;
    size_t n_any;
    struct clause *all_of;
    size_t n_all;
    unsigned line, column;
} clause;

enum builtin { BI_NONE, BI_PINNED, BI_PINS_VERIFIED, BI_VRAM_FITS, BI_LICENSE_KNOWN,
               BI_LAUNCH_ARGS };
static const char *const builtin_names[] = {
    "", "pinned", "pins-verified", "vram-fits", "license-known", "launch-args", NULL,
};

typedef struct rule {
    char *id, *title, *rationale;
    const char *level;              /* "error", "warning", "note" (static) */
    char **controls;
    size_t n_controls;
    ppath each;
    int has_each;
    clause when;
    int has_when;
    clause check;
    int has_check;
    enum builtin builtin;
    vref headroom;                  /* vram-fits: share of usable memory left free */
    ppath bpath;                    /* license-known: the path (default models[*].license) */
    int has_bpath;
} rule;

struct ap_policy {
    char *file, *name, *version, *description;
    json_t *params;                 /* object: name -> string or array of strings */
    rule *rules;
    size_t n_rules;
};

static void vref_release(vref *v)
{
    json_decref(v->val);
    free(v->param);
    v->val = NULL;
    v->param = NULL;
}

static int vref_set(const vref *v)
{
    return v->val || v->param;
}

static void clause_release(clause *c)
{
    if (!c)
        return;
    ppath_release(&c->path);
    vref_release(&c->allow);
    vref_release(&c->deny);
    vref_release(&c->equals);
    vref_release(&c->match);
    vref_release(&c->not_match);
    vref_release(&c->min);
    vref_release(&c->max);
    vref_release(&c->contains);
    for (size_t i = 0; i < c->n_any; i++)
        clause_release(&c->any_of[i]);
    free(c->any_of);
    for (size_t i = 0; i < c->n_all; i++)
        clause_release(&c->all_of[i]);
    free(c->all_of);
}

static void rule_release(rule *r)
{
    free(r->id);
    free(r->title);
    free(r->rationale);
    for (size_t i = 0; i < r->n_controls; i++)
        free(r->controls[i]);
    free(r->controls);
    ppath_release(&r->each);
    clause_release(&r->when);
    clause_release(&r->check);
    vref_release(&r->headroom);
    ppath_release(&r->bpath);
}

void ap_policy_free(ap_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_rules; i++)
        rule_release(&p->rules[i]);
    free(p->rules);
    json_decref(p->params);
    free(p->file);
    free(p->name);
    free(p->version);
    free(p->description);
    free(p);
}

const char *ap_policy_name(const ap_policy *p)
{
    return p ? p->name : NULL;
}

const char *ap_policy_file(const ap_policy *p)
{
    return p ? p->file : NULL;
}

size_t ap_policy_rule_count(const ap_policy *p)
{
    return p ? p->n_rules : 0;
}

/* ------------------------------------------------------------- loading */

typedef struct loadctx {
    const ap_ydoc *doc;
    ap_policy *p;
    ap_error *err;
} loadctx;

/* A YAML node as JSON: scalars become strings (null for a plain null). */
static json_t *ynode_to_json(const ap_ynode *n)
{
    json_t *j = NULL;
    if (n->type == AP_Y_SCALAR)
        return ap_y_is_null(n) ? json_null() : json_stringn(n->str, n->len);
    if (n->type == AP_Y_SEQ) {
        j = json_array();
        for (size_t i = 0; j && i < n->n; i++) {
            json_t *c = ynode_to_json(n->items[i]);
            if (!c || json_array_append_new(j, c)) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    }
    j = json_object();
    for (size_t i = 0; j && i < n->n; i++) {
        json_t *c = ynode_to_json(n->pairs[i].value);
        if (!c || json_object_set_new(j, n->pairs[i].key->str, c)) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

static int nomem(ap_error *err)
{
    return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
}

static int dup_string(loadctx *L, const ap_ynode *n, const char *key, char **out)
{
    const char *s;
    int rc = ap_y_string(L->doc, n, key, &s, L->err);
    if (rc)
        return rc;
    *out = strdup(s);
    return *out ? AP_OK : nomem(L->err);
}

/* A parameter value: a string, or a list of strings. */
static int check_param_shape(const ap_ydoc *doc, const ap_ynode *n, const char *name,
                             ap_error *err)
{
    if (n->type == AP_Y_SCALAR) {
        if (ap_y_is_null(n))
            return ap_y_error(doc, n, err, "parameter '%s' must be a string or a list", name);
        return AP_OK;
    }
    if (n->type == AP_Y_SEQ) {
        for (size_t i = 0; i < n->n; i++)
            if (n->items[i]->type != AP_Y_SCALAR || ap_y_is_null(n->items[i]))
                return ap_y_error(doc, n->items[i], err,
                                  "items of parameter '%s' must be strings", name);
        return AP_OK;
    }
    return ap_y_error(doc, n, err, "parameter '%s' must be a string or a list", name);
}

/* An operand: "$param" (must be declared) or an inline value. list: the
 * operand must be a list (allow, deny); else a scalar. */
static int load_vref(loadctx *L, const ap_ynode *n, const char *key, int list, vref *out)
{
    if (n->type == AP_Y_SCALAR && !ap_y_is_null(n) && n->str[0] == '$') {
        json_t *pv = json_object_get(L->p->params, n->str + 1);
        if (!pv)
            return ap_y_error(L->doc, n, L->err, "'%s' refers to undeclared parameter '%s'", key,
                              n->str + 1);
        if (list != json_is_array(pv))
            return ap_y_error(L->doc, n, L->err, "parameter '%s' must be %s for '%s'",
                              n->str + 1, list ? "a list" : "a single value", key);
        out->param = strdup(n->str + 1);
        return out->param ? AP_OK : nomem(L->err);
    }
    if (list) {
        if (n->type != AP_Y_SEQ)
            return ap_y_error(L->doc, n, L->err, "'%s' must be a list or a $parameter", key);
        for (size_t i = 0; i < n->n; i++)
            if (n->items[i]->type != AP_Y_SCALAR || ap_y_is_null(n->items[i]))
                return ap_y_error(L->doc, n->items[i], L->err, "items of '%s' must be strings",
                                  key);
    } else if (n->type != AP_Y_SCALAR || ap_y_is_null(n)) {
        return ap_y_error(L->doc, n, L->err, "'%s' must be a single value", key);
    }
    out->val = ynode_to_json(n);
    return out->val ? AP_OK : nomem(L->err);
}

static int check_regex(loadctx *L, const ap_ynode *n, const vref *v, const char *key)
{
    regex_t re;
    int rc;
    const char *src = v->val ? json_string_value(v->val)
                             : json_string_value(json_object_get(L->p->params, v->param));
    if (!src)
        return AP_OK;
    rc = regcomp(&re, src, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char buf[256];
        regerror(rc, &re, buf, sizeof(buf));
        return ap_y_error(L->doc, n, L->err, "'%s' is not a valid POSIX extended regex: %s", key,
                          buf);
    }
    regfree(&re);
    return AP_OK;
}

static int check_number(loadctx *L, const ap_ynode *n, const vref *v, const char *key)
{
    const char *s = v->val ? json_string_value(v->val)
                           : json_string_value(json_object_get(L->p->params, v->param));
    char *end;
    double d;
    if (!s)
        return AP_OK;
    d = strtod(s, &end);
    if (end == s || *end || !isfinite(d))
        return ap_y_error(L->doc, n, L->err, "'%s' must be a number, not '%s'", key, s);
    return AP_OK;
}

static int load_path(loadctx *L, const ap_ynode *n, const char *key, ppath *out)
{
    const char *s, *why;
    int rc = ap_y_string(L->doc, n, key, &s, L->err);
    if (rc)
        return rc;
    if (ppath_parse(s, out, &why) != 0)
        return ap_y_error(L->doc, n, L->err, "%s '%s' in '%s'", why, s, key);
    return AP_OK;
}

static int load_clause(loadctx *L, const ap_ynode *n, const char *what, int depth, clause *c);

static int load_clause_list(loadctx *L, const ap_ynode *n, const char *key, int depth,
                            clause **out, size_t *nout)
{
    int rc;
    if ((rc = ap_y_expect(L->doc, n, AP_Y_SEQ, key, L->err)))
        return rc;
    if (n->n == 0)
        return ap_y_error(L->doc, n, L->err, "'%s' must not be empty", key);
    *out = calloc(n->n, sizeof(**out));
    if (!*out)
        return nomem(L->err);
    *nout = n->n;
    for (size_t i = 0; i < n->n; i++)
        if ((rc = load_clause(L, n->items[i], key, depth + 1, &(*out)[i])))
            return rc;
    return AP_OK;
}

static int load_clause(loadctx *L, const ap_ynode *n, const char *what, int depth, clause *c)
{
    static const char *const keys[] = {
        "path", "required", "allow", "deny", "equals", "match", "not_match", "min", "max",
        "contains", "any_of", "all_of", NULL,
    };
    ap_ynode *v;
    int rc, ops = 0;
    if (depth > 8)
        return ap_y_error(L->doc, n, L->err, "'%s' is nested too deeply", what);
    if ((rc = ap_y_expect(L->doc, n, AP_Y_MAP, what, L->err)) ||
        (rc = ap_y_check_keys(L->doc, n, keys, what, L->err)))
        return rc;
    c->line = n->line;
    c->column = n->column;
    if ((v = ap_ymap_get(n, "path"))) {
        if ((rc = load_path(L, v, "path", &c->path)))
            return rc;
        c->has_path = 1;
    }
    if ((v = ap_ymap_get(n, "required"))) {
        if ((rc = ap_y_bool(L->doc, v, "required", &c->required, L->err)))
            return rc;
        ops++;
    }
    struct { const char *k; vref *r; int list; } vr[] = {
        {"allow", &c->allow, 1}, {"deny", &c->deny, 1}, {"equals", &c->equals, 0},
        {"match", &c->match, 0}, {"not_match", &c->not_match, 0}, {"min", &c->min, 0},
        {"max", &c->max, 0}, {"contains", &c->contains, 0},
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(vr); i++) {
        if (!(v = ap_ymap_get(n, vr[i].k)))
            continue;
        if ((rc = load_vref(L, v, vr[i].k, vr[i].list, vr[i].r)))
            return rc;
        if ((!strcmp(vr[i].k, "match") || !strcmp(vr[i].k, "not_match")) &&
            (rc = check_regex(L, v, vr[i].r, vr[i].k)))
            return rc;
        if ((!strcmp(vr[i].k, "min") || !strcmp(vr[i].k, "max")) &&
            (rc = check_number(L, v, vr[i].r, vr[i].k)))
            return rc;
        ops++;
    }
    if ((v = ap_ymap_get(n, "any_of"))) {
        if ((rc = load_clause_list(L, v, "any_of", depth, &c->any_of, &c->n_any)))
            return rc;
        ops++;
    }
    if ((v = ap_ymap_get(n, "all_of"))) {
        if ((rc = load_clause_list(L, v, "all_of", depth, &c->all_of, &c->n_all)))
            return rc;
        ops++;
    }
    if (ops == 0)
        return ap_y_error(L->doc, n, L->err,
                          "%s has no test (one of required, allow, deny, equals, match, "
                          "not_match, min, max, contains, any_of, all_of)",
                          what);
    return AP_OK;
}

/* A clause with a path at its top, or whose alternatives all have one. */
static int clause_has_paths(const clause *c)
{
    if (c->has_path)
        return 1;
    if (c->n_any == 0 && c->n_all == 0)
        return 0;
    for (size_t i = 0; i < c->n_any; i++)
        if (!clause_has_paths(&c->any_of[i]))
            return 0;
    for (size_t i = 0; i < c->n_all; i++)
        if (!clause_has_paths(&c->all_of[i]))
            return 0;
    return 1;
}

static int valid_rule_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static int load_rule(loadctx *L, const ap_ynode *n, rule *r)
{
    static const char *const keys[] = {
        "id", "title", "severity", "controls", "rationale", "each", "when", "check", "builtin",
        "headroom", "path", NULL,
    };
    ap_ynode *v;
    const char *s;
    int rc;
    if ((rc = ap_y_expect(L->doc, n, AP_Y_MAP, "a rule", L->err)) ||
        (rc = ap_y_check_keys(L->doc, n, keys, "a rule", L->err)))
        return rc;
    if ((rc = ap_y_require(L->doc, n, "id", "a rule", &v, L->err)) ||
        (rc = dup_string(L, v, "id", &r->id)))
        return rc;
    if (!valid_rule_id(r->id))
        return ap_y_error(L->doc, v, L->err,
                          "rule id '%s' must be 1 to 64 characters of A-Z a-z 0-9 . _ -", r->id);
    if ((rc = ap_y_require(L->doc, n, "title", "a rule", &v, L->err)) ||
        (rc = dup_string(L, v, "title", &r->title)))
        return rc;
    if ((rc = ap_y_require(L->doc, n, "severity", "a rule", &v, L->err)) ||
        (rc = ap_y_string(L->doc, v, "severity", &s, L->err)))
        return rc;
    if (!strcmp(s, "error"))
        r->level = "error";
    else if (!strcmp(s, "warning"))
        r->level = "warning";
    else if (!strcmp(s, "note"))
        r->level = "note";
    else
        return ap_y_error(L->doc, v, L->err, "severity must be error, warning or note, not '%s'",
                          s);
    if ((rc = ap_y_require(L->doc, n, "controls", "a rule", &v, L->err)) ||
        (rc = ap_y_expect(L->doc, v, AP_Y_SEQ, "'controls'", L->err)))
        return rc;
    r->controls = calloc(v->n ? v->n : 1, sizeof(char *));
    if (!r->controls)
        return nomem(L->err);
    for (size_t i = 0; i < v->n; i++) {
        if ((rc = dup_string(L, v->items[i], "controls", &r->controls[i])))
            return rc;
        r->n_controls++;
    }
    if ((rc = ap_y_require(L->doc, n, "rationale", "a rule", &v, L->err)) ||
        (rc = dup_string(L, v, "rationale", &r->rationale)))
        return rc;
    if ((v = ap_ymap_get(n, "each"))) {
        if ((rc = load_path(L, v, "each", &r->each)))
            return rc;
        r->has_each = 1;
    }
    if ((v = ap_ymap_get(n, "when"))) {
        if ((rc = load_clause(L, v, "'when'", 0, &r->when)))
            return rc;
        if (!clause_has_paths(&r->when))
            return ap_y_error(L->doc, v, L->err, "'when' needs a path");
        r->has_when = 1;
    }
    if ((v = ap_ymap_get(n, "builtin"))) {
        size_t i;
        if ((rc = ap_y_string(L->doc, v, "builtin", &s, L->err)))
            return rc;
        for (i = 1; builtin_names[i]; i++)
            if (!strcmp(s, builtin_names[i]))
                break;
        if (!builtin_names[i]) {
            const char *sug = ap_suggest(s, builtin_names + 1);
            return ap_y_error(L->doc, v, L->err, "unknown builtin '%s'%s%s%s", s,
                              sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
        }
        r->builtin = (enum builtin)i;
        if (ap_ymap_get(n, "check"))
            return ap_y_error(L->doc, v, L->err, "a rule has either 'check' or 'builtin', not both");
    }
    if ((v = ap_ymap_get(n, "headroom"))) {
        if (r->builtin != BI_VRAM_FITS)
            return ap_y_error(L->doc, v, L->err, "'headroom' applies only to builtin vram-fits");
        if ((rc = load_vref(L, v, "headroom", 0, &r->headroom)) ||
            (rc = check_number(L, v, &r->headroom, "headroom")))
            return rc;
    }
    if ((v = ap_ymap_get(n, "path"))) {
        if (r->builtin != BI_LICENSE_KNOWN)
            return ap_y_error(L->doc, v, L->err,
                              "'path' at rule level applies only to builtin license-known "
                              "(put it in 'check')");
        if ((rc = load_path(L, v, "path", &r->bpath)))
            return rc;
        r->has_bpath = 1;
    }
    if ((v = ap_ymap_get(n, "check"))) {
        if ((rc = load_clause(L, v, "'check'", 0, &r->check)))
            return rc;
        r->has_check = 1;
        if (!r->has_each && !r->check.has_path)
            return ap_y_error(L->doc, v, L->err, "'check' needs a path, or the rule an 'each'");
    } else if (r->builtin == BI_NONE) {
        return ap_y_error(L->doc, n, L->err, "rule '%s' needs a 'check' or a 'builtin'", r->id);
    }
    if ((r->has_each || r->has_when) && r->builtin != BI_NONE)
        return ap_y_error(L->doc, n, L->err, "'each' and 'when' do not apply to builtin rules");
    return AP_OK;
}

static int load_pack(loadctx *L)
{
    static const char *const top[] = {"apiVersion", "kind", "metadata", "params", "rules", NULL};
    static const char *const meta[] = {"name", "version", "description", NULL};
    const ap_ynode *root = L->doc->root;
    ap_ynode *v, *m;
    const char *s;
    int rc;
    if (!root)
        return ap_error_set_at(L->err, AP_ERR_INPUT, L->doc->file, 0, 0,
                               "policy pack is empty");
    if ((rc = ap_y_expect(L->doc, root, AP_Y_MAP, "the policy pack", L->err)) ||
        (rc = ap_y_check_keys(L->doc, root, top, "the policy pack", L->err)))
        return rc;
    if ((rc = ap_y_require(L->doc, root, "apiVersion", "the policy pack", &v, L->err)) ||
        (rc = ap_y_string(L->doc, v, "apiVersion", &s, L->err)))
        return rc;
    if (strcmp(s, "airpack/v1") != 0)
        return ap_y_error(L->doc, v, L->err, "apiVersion must be 'airpack/v1', not '%s'", s);
    if ((rc = ap_y_require(L->doc, root, "kind", "the policy pack", &v, L->err)) ||
        (rc = ap_y_string(L->doc, v, "kind", &s, L->err)))
        return rc;
    if (strcmp(s, "PolicyPack") != 0)
        return ap_y_error(L->doc, v, L->err, "kind must be 'PolicyPack', not '%s'", s);
    if ((rc = ap_y_require(L->doc, root, "metadata", "the policy pack", &m, L->err)) ||
        (rc = ap_y_expect(L->doc, m, AP_Y_MAP, "'metadata'", L->err)) ||
        (rc = ap_y_check_keys(L->doc, m, meta, "'metadata'", L->err)) ||
        (rc = ap_y_require(L->doc, m, "name", "'metadata'", &v, L->err)) ||
        (rc = dup_string(L, v, "name", &L->p->name)))
        return rc;
    if (!valid_rule_id(L->p->name))
        return ap_y_error(L->doc, v, L->err, "pack name '%s' must be 1 to 64 characters of "
                          "A-Z a-z 0-9 . _ -", L->p->name);
    if ((v = ap_ymap_get(m, "version")) && (rc = dup_string(L, v, "version", &L->p->version)))
        return rc;
    if ((v = ap_ymap_get(m, "description")) &&
        (rc = dup_string(L, v, "description", &L->p->description)))
        return rc;
    if ((v = ap_ymap_get(root, "params"))) {
        if ((rc = ap_y_expect(L->doc, v, AP_Y_MAP, "'params'", L->err)))
            return rc;
        for (size_t i = 0; i < v->n; i++)
            if ((rc = check_param_shape(L->doc, v->pairs[i].value, v->pairs[i].key->str, L->err)))
                return rc;
        json_decref(L->p->params);
        if (!(L->p->params = ynode_to_json(v)))
            return nomem(L->err);
    }
    if ((rc = ap_y_require(L->doc, root, "rules", "the policy pack", &v, L->err)) ||
        (rc = ap_y_expect(L->doc, v, AP_Y_SEQ, "'rules'", L->err)))
        return rc;
    if (v->n == 0 || v->n > AP_POLICY_MAX_RULES)
        return ap_y_error(L->doc, v, L->err, "'rules' must hold 1 to %u rules",
                          AP_POLICY_MAX_RULES);
    L->p->rules = calloc(v->n, sizeof(rule));
    if (!L->p->rules)
        return nomem(L->err);
    for (size_t i = 0; i < v->n; i++) {
        L->p->n_rules++;
        if ((rc = load_rule(L, v->items[i], &L->p->rules[i])))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(L->p->rules[j].id, L->p->rules[i].id))
                return ap_y_error(L->doc, v->items[i], L->err, "duplicate rule id '%s'",
                                  L->p->rules[i].id);
    }
    return AP_OK;
}

static int policy_from_doc(const ap_ydoc *doc, const char *file, ap_policy **out, ap_error *err)
{
    loadctx L = {.doc = doc, .err = err};
    int rc;
    *out = NULL;
    L.p = calloc(1, sizeof(*L.p));
    if (!L.p)
        return nomem(err);
    L.p->params = json_object();
    L.p->file = strdup(file);
    if (!L.p->params || !L.p->file) {
        rc = nomem(err);
        goto done;
    }
    rc = load_pack(&L);
done:
    if (rc) {
        ap_policy_free(L.p);
        return rc;
    }
    *out = L.p;
    return AP_OK;
}

static const ap_ylimits policy_limits = {
    .max_bytes = AP_POLICY_MAX_BYTES, .max_depth = 32, .max_nodes = 100000,
    .max_scalar = 16u << 10,
};

int ap_policy_load(const char *path, ap_policy **out, ap_error *err)
{
    ap_ydoc *doc = NULL;
    int rc = ap_yaml_load_file(path, &policy_limits, &doc, err);
    if (rc)
        return rc;
    rc = policy_from_doc(doc, path, out, err);
    ap_ydoc_free(doc);
    return rc;
}

int ap_policy_parse(const char *name, const void *buf, size_t len, ap_policy **out,
                    ap_error *err)
{
    ap_ydoc *doc = NULL;
    int rc = ap_yaml_load_buffer(name, buf, len, &policy_limits, &doc, err);
    if (rc)
        return rc;
    rc = policy_from_doc(doc, name, out, err);
    ap_ydoc_free(doc);
    return rc;
}

/* How a clause uses parameter name: 1 as a regex, 2 as a number, 0 not
 * (or only as a plain value). */
static int param_use(const clause *c, const char *name)
{
    int u = 0;
    if ((c->match.param && !strcmp(c->match.param, name)) ||
        (c->not_match.param && !strcmp(c->not_match.param, name)))
        return 1;
    if ((c->min.param && !strcmp(c->min.param, name)) ||
        (c->max.param && !strcmp(c->max.param, name)))
        u = 2;
    for (size_t i = 0; i < c->n_any && u != 1; i++) {
        int v = param_use(&c->any_of[i], name);
        u = v ? v : u;
    }
    for (size_t i = 0; i < c->n_all && u != 1; i++) {
        int v = param_use(&c->all_of[i], name);
        u = v ? v : u;
    }
    return u;
}

/* A site's value for a parameter the rules use as a regex or a number
 * must be one. */
static int check_param_value(const ap_policy *p, const ap_ydoc *doc, const ap_ynode *val,
                             const char *name, ap_error *err)
{
    int use = 0;
    for (size_t i = 0; i < p->n_rules && use != 1; i++) {
        const rule *r = &p->rules[i];
        int u = 0;
        if (r->has_check)
            u = param_use(&r->check, name);
        if (!u && r->has_when)
            u = param_use(&r->when, name);
        if (!u && r->headroom.param && !strcmp(r->headroom.param, name))
            u = 2;
        use = u ? u : use;
    }
    if (use == 1 && val->type == AP_Y_SCALAR) {
        regex_t re;
        int rc = regcomp(&re, val->str, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char buf[256];
            regerror(rc, &re, buf, sizeof(buf));
            return ap_y_error(doc, val, err, "parameter '%s' is not a valid POSIX extended regex: %s",
                              name, buf);
        }
        regfree(&re);
    } else if (use == 2 && val->type == AP_Y_SCALAR) {
        char *end;
        double d = strtod(val->str, &end);
        if (end == val->str || *end || !isfinite(d))
            return ap_y_error(doc, val, err, "parameter '%s' must be a number, not '%s'", name,
                              val->str);
    }
    return AP_OK;
}

int ap_policy_set_params(ap_policy *p, const char *params_yaml_path, ap_error *err)
{
    static const char *const top[] = {"apiVersion", "kind", "packs", NULL};
    ap_ydoc *doc = NULL;
    ap_ynode *v, *sec;
    const char *s;
    json_t *next = NULL;
    int rc = ap_yaml_load_file(params_yaml_path, &policy_limits, &doc, err);
    if (rc)
        return rc;
    if (!doc->root) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, params_yaml_path, 0, 0,
                             "policy parameters file is empty");
        goto done;
    }
    if ((rc = ap_y_expect(doc, doc->root, AP_Y_MAP, "the parameters file", err)) ||
        (rc = ap_y_check_keys(doc, doc->root, top, "the parameters file", err)) ||
        (rc = ap_y_require(doc, doc->root, "apiVersion", "the parameters file", &v, err)) ||
        (rc = ap_y_string(doc, v, "apiVersion", &s, err)))
        goto done;
    if (strcmp(s, "airpack/v1") != 0) {
        rc = ap_y_error(doc, v, err, "apiVersion must be 'airpack/v1', not '%s'", s);
        goto done;
    }
    if ((rc = ap_y_require(doc, doc->root, "kind", "the parameters file", &v, err)) ||
        (rc = ap_y_string(doc, v, "kind", &s, err)))
        goto done;
    if (strcmp(s, "PolicyParams") != 0) {
        rc = ap_y_error(doc, v, err, "kind must be 'PolicyParams', not '%s'", s);
        goto done;
    }
    if ((rc = ap_y_require(doc, doc->root, "packs", "the parameters file", &v, err)) ||
        (rc = ap_y_expect(doc, v, AP_Y_MAP, "'packs'", err)))
        goto done;
    for (size_t i = 0; i < v->n; i++)
        if ((rc = ap_y_expect(doc, v->pairs[i].value, AP_Y_MAP, "a pack's parameters", err)))
            goto done;
    sec = ap_ymap_get(v, p->name);
    if (!sec)
        goto done;
    next = json_deep_copy(p->params);
    if (!next) {
        rc = nomem(err);
        goto done;
    }
    for (size_t i = 0; i < sec->n; i++) {
        const char *name = sec->pairs[i].key->str;
        const ap_ynode *val = sec->pairs[i].value;
        json_t *old = json_object_get(p->params, name), *nv;
        if (!old) {
            size_t np = json_object_size(p->params), k = 0;
            const char **cands = calloc(np + 1, sizeof(char *));
            const char *key, *sug = NULL;
            json_t *tmp;
            if (cands) {
                json_object_foreach(p->params, key, tmp) cands[k++] = key;
                sug = ap_suggest(name, cands);
            }
            rc = ap_y_error(doc, sec->pairs[i].key, err,
                            "pack '%s' has no parameter '%s'%s%s%s", p->name, name,
                            sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
            free(cands);
            goto done;
        }
        if ((rc = check_param_shape(doc, val, name, err)) ||
            (rc = check_param_value(p, doc, val, name, err)))
            goto done;
        if (json_is_array(old) != (val->type == AP_Y_SEQ)) {
            rc = ap_y_error(doc, val, err, "parameter '%s' of pack '%s' must be %s", name,
                            p->name, json_is_array(old) ? "a list" : "a single value");
            goto done;
        }
        if (!(nv = ynode_to_json(val)) || json_object_set_new(next, name, nv)) {
            rc = nomem(err);
            goto done;
        }
    }
    json_decref(p->params);
    p->params = next;
    next = NULL;
done:
    json_decref(next);
    ap_ydoc_free(doc);
    return rc;
}

/* ----------------------------------------------------------- expansion */

typedef struct bind {
    const char *tpl;    /* template text up to and including the [*] */
    size_t tpl_len;
    size_t idx;
} bind;

typedef struct binding {
    size_t n;
    bind b[MAX_BIND];
} binding;

typedef struct match {
    const json_t *value;            /* NULL when missing */
    char concrete[CONCRETE_MAX];    /* e.g. "runtimes[0].env.X" */
    char subject[CONCRETE_MAX];     /* e.g. "runtimes[0]" */
    const json_t *subject_item;     /* the JSON at subject, or NULL */
    binding b;
} match;

typedef struct mlist {
    match *m;
    size_t n, cap;
} mlist;

typedef struct evalctx {
    const json_t *analysis, *manifest;
    const ap_policy *p;
    ap_error *err;
    int oom;
} evalctx;

static void mlist_release(mlist *l)
{
    free(l->m);
    memset(l, 0, sizeof(*l));
}

static int appendf(char *buf, size_t cap, const char *fmt, ...) AP_PRINTF(3, 4);
static int appendf(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    int n;
    if (len >= cap - 1)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= cap - len) ? -1 : 0;
}

typedef struct walk {
    evalctx *E;
    const ppath *path;
    const binding *in;
    mlist *out;
    binding cur;
    char concrete[CONCRETE_MAX];
    char subject[CONCRETE_MAX];
    const json_t *subject_item;
} walk;

static void emit(walk *W, const json_t *v, size_t from_seg)
{
    match *m;
    if (W->out->n >= AP_POLICY_MAX_FINDINGS)
        return;
    if (W->out->n == W->out->cap) {
        size_t ncap = W->out->cap ? W->out->cap * 2 : 16;
        match *nm = realloc(W->out->m, ncap * sizeof(*nm));
        if (!nm) {
            W->E->oom = 1;
            return;
        }
        W->out->m = nm;
        W->out->cap = ncap;
    }
    m = &W->out->m[W->out->n++];
    memset(m, 0, sizeof(*m));
    m->value = v;
    snprintf(m->concrete, sizeof(m->concrete), "%s", W->concrete);
    /* a missing value: the rest of the path as written */
    for (size_t i = from_seg; i < W->path->n; i++) {
        const seg *s = &W->path->segs[i];
        if (s->t == SEG_KEY)
            (void)appendf(m->concrete, sizeof(m->concrete), "%s%s", m->concrete[0] ? "." : "",
                          s->key);
        else if (s->t == SEG_INDEX)
            (void)appendf(m->concrete, sizeof(m->concrete), "[%zu]", s->idx);
        else
            (void)appendf(m->concrete, sizeof(m->concrete), "[*]");
    }
    snprintf(m->subject, sizeof(m->subject), "%s", W->subject);
    m->subject_item = W->subject_item;
    m->b = W->cur;
}

static const bind *find_bind(const binding *b, const char *tpl, size_t len)
{
    for (size_t i = 0; b && i < b->n; i++)
        if (b->b[i].tpl_len == len && memcmp(b->b[i].tpl, tpl, len) == 0)
            return &b->b[i];
    return NULL;
}

static void walk_from(walk *W, const json_t *cur, size_t i)
{
    const seg *s;
    size_t save_len = strlen(W->concrete);
    if (W->E->oom)
        return;
    if (i == W->path->n) {
        emit(W, cur, i);
        return;
    }
    s = &W->path->segs[i];
    if (s->t == SEG_KEY) {
        const json_t *child = json_is_object(cur) ? json_object_get(cur, s->key) : NULL;
        if (!child || json_is_null(child)) {
            emit(W, NULL, i);
            return;
        }
        /* a path without [*]: the subject is the parent of the last key */
        if (W->cur.n == 0 && i + 1 == W->path->n && W->concrete[0]) {
            snprintf(W->subject, sizeof(W->subject), "%s", W->concrete);
            W->subject_item = cur;
        }
        if (appendf(W->concrete, sizeof(W->concrete), "%s%s", W->concrete[0] ? "." : "",
                    s->key) == 0)
            walk_from(W, child, i + 1);
        W->concrete[save_len] = '\0';
    } else if (s->t == SEG_INDEX) {
        const json_t *child = json_is_array(cur) ? json_array_get(cur, s->idx) : NULL;
        if (!child || json_is_null(child)) {
            emit(W, NULL, i);
            return;
        }
        if (appendf(W->concrete, sizeof(W->concrete), "[%zu]", s->idx) == 0)
            walk_from(W, child, i + 1);
        W->concrete[save_len] = '\0';
    } else {
        const bind *bd = find_bind(W->in, W->path->text, s->end);
        size_t lo = 0, hi, nsave = W->cur.n;
        char subj_save[CONCRETE_MAX];
        const json_t *item_save = W->subject_item;
        if (!json_is_array(cur))
            return;     /* nothing to iterate: vacuous */
        hi = json_array_size(cur);
        if (bd) {
            if (bd->idx >= hi)
                return;
            lo = bd->idx;
            hi = bd->idx + 1;
        }
        if (W->cur.n >= MAX_BIND)
            return;
        memcpy(subj_save, W->subject, sizeof(subj_save));
        for (size_t k = lo; k < hi && !W->E->oom; k++) {
            const json_t *item = json_array_get(cur, k);
            W->cur.b[nsave].tpl = W->path->text;
            W->cur.b[nsave].tpl_len = s->end;
            W->cur.b[nsave].idx = k;
            W->cur.n = nsave + 1;
            W->concrete[save_len] = '\0';
            if (appendf(W->concrete, sizeof(W->concrete), "[%zu]", k) != 0)
                break;
            snprintf(W->subject, sizeof(W->subject), "%s", W->concrete);
            W->subject_item = item;
            walk_from(W, item, i + 1);
        }
        W->cur.n = nsave;
        W->concrete[save_len] = '\0';
        memcpy(W->subject, subj_save, sizeof(subj_save));
        W->subject_item = item_save;
    }
}

/* Every value path expands to under the binding in (may be NULL). */
static int expand(evalctx *E, const ppath *path, const binding *in, mlist *out)
{
    walk W;
    memset(&W, 0, sizeof(W));
    W.E = E;
    W.path = path;
    W.in = in;
    W.out = out;
    if (in)
        W.cur = *in;
    /* keep only the bindings of the outer scope that are not re-bound here */
    W.cur.n = 0;
    if (in)
        for (size_t i = 0; i < in->n; i++)
            W.cur.b[W.cur.n++] = in->b[i];
    snprintf(W.subject, sizeof(W.subject), "%s", path->segs[0].key);
    W.subject_item = NULL;
    walk_from(&W, path->analysis_root ? E->analysis : E->manifest, 0);
    if (E->oom)
        return nomem(E->err);
    return AP_OK;
}

/* ----------------------------------------------------------- operators */

/* The scalar text of v into buf; 0 when v is not a scalar. */
static int scalar_text(const json_t *v, char *buf, size_t cap)
{
    if (json_is_string(v))
        snprintf(buf, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, cap, "%.17g", json_real_value(v));
    else if (json_is_true(v))
        snprintf(buf, cap, "true");
    else if (json_is_false(v))
        snprintf(buf, cap, "false");
    else
        return 0;
    return 1;
}

static const json_t *vref_get(const evalctx *E, const vref *r)
{
    return r->val ? r->val : json_object_get(E->p->params, r->param);
}

static void list_text(const json_t *list, char *buf, size_t cap)
{
    size_t i;
    json_t *it;
    buf[0] = '\0';
    json_array_foreach(list, i, it) {
        if (i == 8) {
            (void)appendf(buf, cap, ", ...");
            break;
        }
        (void)appendf(buf, cap, "%s%s", i ? ", " : "", json_string_value(it));
    }
}

/* Result of one test: ok, or a message saying what is wrong. */
typedef struct verdict {
    int ok;
    char msg[MSG_MAX];
    char path[CONCRETE_MAX];
    char subject[CONCRETE_MAX];
    const json_t *subject_item;
    const json_t *value;
} verdict;

static int regex_hit(evalctx *E, const char *re_src, const char *s, int *hit)
{
    regex_t re;
    if (regcomp(&re, re_src, REG_EXTENDED | REG_NOSUB) != 0)
        return ap_error_set(E->err, AP_ERR_INPUT, "policy '%s': invalid regex '%s'",
                            E->p->name, re_src);
    *hit = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return AP_OK;
}

static int to_double(const json_t *v, double *out)
{
    char *end;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 1;
    }
    if (!json_is_string(v))
        return 0;
    *out = strtod(json_string_value(v), &end);
    return end != json_string_value(v) && *end == '\0' && isfinite(*out);
}

/* One scalar value against the scalar operators. */
static int test_scalar(evalctx *E, const clause *c, const char *what, const json_t *v,
                       verdict *vd)
{
    char sv[512], lt[512];
    const json_t *op;
    int rc, hit;
    if (!scalar_text(v, sv, sizeof(sv))) {
        snprintf(vd->msg, sizeof(vd->msg), "%s is not a single value", what);
        vd->ok = 0;
        return AP_OK;
    }
    if (vref_set(&c->deny) && (op = vref_get(E, &c->deny))) {
        size_t i;
        json_t *it;
        json_array_foreach(op, i, it) {
            if (fnmatch(json_string_value(it), sv, FNM_CASEFOLD) == 0) {
                snprintf(vd->msg, sizeof(vd->msg), "%s is '%s', which is denied ('%s')", what,
                         sv, json_string_value(it));
                vd->ok = 0;
                return AP_OK;
            }
        }
    }
    if (vref_set(&c->allow) && (op = vref_get(E, &c->allow))) {
        size_t i;
        json_t *it;
        hit = 0;
        json_array_foreach(op, i, it)
            if (fnmatch(json_string_value(it), sv, FNM_CASEFOLD) == 0)
                hit = 1;
        if (!hit) {
            list_text(op, lt, sizeof(lt));
            snprintf(vd->msg, sizeof(vd->msg), "%s is '%s', not in the allowed list (%s)", what,
                     sv, lt);
            vd->ok = 0;
            return AP_OK;
        }
    }
    if (vref_set(&c->equals) && (op = vref_get(E, &c->equals)) &&
        strcmp(sv, json_string_value(op)) != 0) {
        snprintf(vd->msg, sizeof(vd->msg), "%s is '%s', must be exactly '%s'", what, sv,
                 json_string_value(op));
        vd->ok = 0;
        return AP_OK;
    }
    if (vref_set(&c->match) && (op = vref_get(E, &c->match))) {
        if ((rc = regex_hit(E, json_string_value(op), sv, &hit)))
            return rc;
        if (!hit) {
            snprintf(vd->msg, sizeof(vd->msg), "%s is '%s', does not match /%s/", what, sv,
                     json_string_value(op));
            vd->ok = 0;
            return AP_OK;
        }
    }
    if (vref_set(&c->not_match) && (op = vref_get(E, &c->not_match))) {
        if ((rc = regex_hit(E, json_string_value(op), sv, &hit)))
            return rc;
        if (hit) {
            snprintf(vd->msg, sizeof(vd->msg), "%s is '%s', which matches the forbidden /%s/",
                     what, sv, json_string_value(op));
            vd->ok = 0;
            return AP_OK;
        }
    }
    if (vref_set(&c->min) || vref_set(&c->max)) {
        double d, lim;
        if (!to_double(v, &d)) {
            snprintf(vd->msg, sizeof(vd->msg), "%s is '%s', not a number", what, sv);
            vd->ok = 0;
            return AP_OK;
        }
        if (vref_set(&c->min) && to_double(vref_get(E, &c->min), &lim) && d < lim) {
            snprintf(vd->msg, sizeof(vd->msg), "%s is %s, below the minimum %s", what, sv,
                     json_string_value(vref_get(E, &c->min)));
            vd->ok = 0;
            return AP_OK;
        }
        if (vref_set(&c->max) && to_double(vref_get(E, &c->max), &lim) && d > lim) {
            snprintf(vd->msg, sizeof(vd->msg), "%s is %s, above the maximum %s", what, sv,
                     json_string_value(vref_get(E, &c->max)));
            vd->ok = 0;
            return AP_OK;
        }
    }
    return AP_OK;
}

static int has_scalar_ops(const clause *c)
{
    return vref_set(&c->allow) || vref_set(&c->deny) || vref_set(&c->equals) ||
           vref_set(&c->match) || vref_set(&c->not_match) || vref_set(&c->min) ||
           vref_set(&c->max);
}

/* "runtime 'vllm': env.X" or "target.region": how a message names a value. */
static void describe(const match *m, char *buf, size_t cap)
{
    const char *name = json_string_value(json_object_get(m->subject_item, "name"));
    size_t sl = strlen(m->subject);
    const char *rel = m->concrete;
    if (name && strncmp(m->concrete, m->subject, sl) == 0) {
        char kind[64];
        size_t k = 0;
        while (m->subject[k] && m->subject[k] != '[' && m->subject[k] != '.' && k < 63) {
            kind[k] = m->subject[k];
            k++;
        }
        kind[k] = '\0';
        if (k > 1 && kind[k - 1] == 's')
            kind[k - 1] = '\0';   /* models -> model */
        rel = m->concrete + sl;
        if (*rel == '.')
            rel++;
        if (*rel)
            snprintf(buf, cap, "%s '%s': %s", kind, name, rel);
        else
            snprintf(buf, cap, "%s '%s'", kind, name);
        return;
    }
    snprintf(buf, cap, "%s", rel);
}

static int eval_clause(evalctx *E, const clause *c, const binding *b, const match *self,
                       verdict *vd);

/* All operators of c on one match. */
static int test_match(evalctx *E, const clause *c, const match *m, verdict *vd)
{
    char what[CONCRETE_MAX + 128];
    const json_t *v = m->value;
    int rc;
    vd->ok = 1;
    describe(m, what, sizeof(what));
    snprintf(vd->path, sizeof(vd->path), "%s", m->concrete);
    snprintf(vd->subject, sizeof(vd->subject), "%s", m->subject);
    vd->subject_item = m->subject_item;
    vd->value = v;
    if (!v) {
        if (c->required) {
            snprintf(vd->msg, sizeof(vd->msg), "%s is not set", what);
            vd->ok = 0;
            return AP_OK;
        }
    } else {
        if (c->required && ((json_is_string(v) && json_string_length(v) == 0) ||
                            (json_is_array(v) && json_array_size(v) == 0) ||
                            (json_is_object(v) && json_object_size(v) == 0))) {
            snprintf(vd->msg, sizeof(vd->msg), "%s is empty", what);
            vd->ok = 0;
            return AP_OK;
        }
        if (vref_set(&c->contains)) {
            const json_t *want = vref_get(E, &c->contains);
            size_t i;
            json_t *it;
            int hit = 0;
            char sv[512];
            if (!json_is_array(v)) {
                snprintf(vd->msg, sizeof(vd->msg), "%s is not a list", what);
                vd->ok = 0;
                return AP_OK;
            }
            json_array_foreach(v, i, it)
                if (scalar_text(it, sv, sizeof(sv)) && !strcmp(sv, json_string_value(want)))
                    hit = 1;
            if (!hit) {
                snprintf(vd->msg, sizeof(vd->msg), "%s does not contain '%s'", what,
                         json_string_value(want));
                vd->ok = 0;
                return AP_OK;
            }
        }
        if (has_scalar_ops(c)) {
            if (json_is_array(v)) {
                size_t i;
                json_t *it;
                json_array_foreach(v, i, it) {
                    char w2[CONCRETE_MAX + 160];
                    snprintf(w2, sizeof(w2), "%s[%zu]", what, i);
                    if ((rc = test_scalar(E, c, w2, it, vd)))
                        return rc;
                    if (!vd->ok) {
                        (void)appendf(vd->path, sizeof(vd->path), "[%zu]", i);
                        vd->value = it;
                        return AP_OK;
                    }
                }
            } else if ((rc = test_scalar(E, c, what, v, vd)) || !vd->ok) {
                return rc;
            }
        }
    }
    for (size_t i = 0; i < c->n_all; i++) {
        if ((rc = eval_clause(E, &c->all_of[i], &m->b, m, vd)) || !vd->ok)
            return rc;
    }
    if (c->n_any) {
        char msgs[MSG_MAX] = "";
        verdict first;
        int have_first = 0;
        for (size_t i = 0; i < c->n_any; i++) {
            if ((rc = eval_clause(E, &c->any_of[i], &m->b, m, vd)))
                return rc;
            if (vd->ok)
                return AP_OK;
            if (!have_first) {
                first = *vd;
                have_first = 1;
            }
            (void)appendf(msgs, sizeof(msgs), "%s%s", i ? "; " : "", vd->msg);
        }
        *vd = first;
        snprintf(vd->msg, sizeof(vd->msg), "none of the alternatives holds: %s", msgs);
        return AP_OK;
    }
    vd->ok = 1;
    return AP_OK;
}

/* c holds for every value its path expands to under b (or for self when
 * c has no path). */
static int eval_clause(evalctx *E, const clause *c, const binding *b, const match *self,
                       verdict *vd)
{
    mlist l = {0};
    int rc;
    vd->ok = 1;
    if (!c->has_path) {
        if (!self)
            return AP_OK;
        return test_match(E, c, self, vd);
    }
    if ((rc = expand(E, &c->path, b, &l)))
        goto done;
    for (size_t i = 0; i < l.n; i++) {
        if ((rc = test_match(E, c, &l.m[i], vd)) || !vd->ok)
            goto done;
    }
done:
    mlist_release(&l);
    return rc;
}

/* ------------------------------------------------------------ findings */

static int add_finding(evalctx *E, const rule *r, json_t *findings, const char *msg,
                       const char *subject, const json_t *subject_item, const char *path,
                       const json_t *value)
{
    json_t *f = json_object(), *ctl = json_array();
    const char *name = json_string_value(json_object_get(subject_item, "name"));
    char sv[512];
    int bad = !f || !ctl;
    for (size_t i = 0; !bad && i < r->n_controls; i++)
        bad |= json_array_append_new(ctl, json_string(r->controls[i])) != 0;
    if (!bad) {
        bad |= json_object_set_new(f, "rule", json_string(r->id));
        bad |= json_object_set_new(f, "level", json_string(r->level));
        bad |= json_object_set_new(f, "message", json_string(msg));
        bad |= json_object_set_new(f, "subject", json_string(subject));
        if (name)
            bad |= json_object_set_new(f, "subject_name", json_string(name));
        if (path && *path)
            bad |= json_object_set_new(f, "path", json_string(path));
        if (value && scalar_text(value, sv, sizeof(sv)))
            bad |= json_object_set_new(f, "value", json_string(sv));
        bad |= json_object_set_new(f, "controls", ctl);
        ctl = NULL;
        bad |= json_object_set_new(f, "pack", json_string(E->p->name));
        bad |= json_object_set_new(f, "title", json_string(r->title));
        bad |= json_object_set_new(f, "rationale", json_string(r->rationale));
        bad |= json_object_set_new(f, "waived", json_false());
    }
    if (!bad && json_array_size(findings) < (size_t)AP_POLICY_MAX_FINDINGS * 16)
        bad |= json_array_append(findings, f);
    json_decref(ctl);
    json_decref(f);
    return bad ? nomem(E->err) : AP_OK;
}

/* Analysis-level items (pins, plan entries) name their manifest subject. */
static void manifest_subject(const verdict *vd, const char **subject, const char **path)
{
    const char *s = json_string_value(json_object_get(vd->subject_item, "subject"));
    *subject = vd->subject;
    *path = vd->path;
    if (s && strncmp(vd->path, "pins", 4) == 0) {
        *subject = s;
        *path = s;
    } else if (s && strncmp(vd->path, "plan", 4) == 0) {
        *subject = s;
        *path = s;
    }
}

static int eval_declarative(evalctx *E, const rule *r, json_t *findings)
{
    mlist subjects = {0};
    const ppath *scope = r->has_each ? &r->each : &r->check.path;
    int rc;
    if ((rc = expand(E, scope, NULL, &subjects)))
        goto done;
    for (size_t i = 0; i < subjects.n; i++) {
        const match *sm = &subjects.m[i];
        verdict vd;
        const char *subject, *path;
        if (r->has_when) {
            if ((rc = eval_clause(E, &r->when, &sm->b, sm, &vd)))
                goto done;
            if (!vd.ok)
                continue;
        }
        if ((rc = eval_clause(E, &r->check, &sm->b, r->check.has_path ? NULL : sm, &vd)))
            goto done;
        if (vd.ok)
            continue;
        manifest_subject(&vd, &subject, &path);
        /* the subject of the scope, not of a nested value */
        if (r->has_each && strncmp(vd.path, "pins", 4) != 0 && strncmp(vd.path, "plan", 4) != 0) {
            subject = sm->subject;
            vd.subject_item = sm->subject_item;
        }
        if ((rc = add_finding(E, r, findings, vd.msg, subject, vd.subject_item, path, vd.value)))
            goto done;
    }
done:
    mlist_release(&subjects);
    return rc;
}

static int bi_pinned(evalctx *E, const rule *r, json_t *findings)
{
    static const char *const lists[] = {"models", "runtimes", "files"};
    static const char *const kinds[] = {"model", "runtime", "file"};
    int rc;
    for (size_t l = 0; l < AP_ARRAY_LEN(lists); l++) {
        const json_t *arr = json_object_get(E->manifest, lists[l]);
        size_t i;
        json_t *it;
        json_array_foreach(arr, i, it) {
            const char *p = json_string_value(json_object_get(it, "path"));
            const char *name = json_string_value(json_object_get(it, "name"));
            char subject[64], path[80], msg[MSG_MAX];
            if (!p)
                continue;   /* a runtime without files */
            if (json_string_value(json_object_get(it, "sha256")) ||
                json_string_value(json_object_get(it, "sha256sums")))
                continue;
            snprintf(subject, sizeof(subject), "%s[%zu]", lists[l], i);
            snprintf(path, sizeof(path), "%s.path", subject);
            snprintf(msg, sizeof(msg), "%s '%s' is not pinned (give 'sha256' or 'sha256sums'; "
                     "'airpack pin' writes them)", kinds[l], name ? name : p);
            if ((rc = add_finding(E, r, findings, msg, subject, it, path, NULL)))
                return rc;
        }
    }
    return AP_OK;
}

static int bi_pins_verified(evalctx *E, const rule *r, json_t *findings)
{
    const json_t *pins = json_object_get(E->analysis, "pins");
    size_t i;
    json_t *it;
    int rc;
    json_array_foreach(pins, i, it) {
        const char *st = json_string_value(json_object_get(it, "status"));
        const char *subj = json_string_value(json_object_get(it, "subject"));
        const char *p = json_string_value(json_object_get(it, "path"));
        char msg[MSG_MAX], idx[64];
        if (st && (!strcmp(st, "ok") || !strcmp(st, "unpinned")))
            continue;   /* unpinned items are the pinned-rules' business */
        snprintf(idx, sizeof(idx), "pins[%zu]", i);
        snprintf(msg, sizeof(msg), "'%s'%s%s: pin status is '%s'", p ? p : "?",
                 subj ? " of " : "", subj ? subj : "", st ? st : "unknown");
        if ((rc = add_finding(E, r, findings, msg, subj ? subj : idx, NULL, subj, NULL)))
            return rc;
    }
    return AP_OK;
}

static const json_t *first_number(const json_t *o, const char *const *keys, double *out)
{
    for (size_t i = 0; keys[i]; i++) {
        const json_t *v = json_object_get(o, keys[i]);
        if (json_is_number(v)) {
            *out = json_number_value(v);
            return v;
        }
    }
    return NULL;
}

/* Reads analysis.plan (docs/memory-planner.md): plan.gpu.budget_bytes and
 * per model {"name", "planned", "problem", "fits", "total_per_gpu_bytes",
 * "headroom_bytes"}; also accepts GiB fields ("per_gpu": {"total_gib",
 * "usable_gib"} or flat) for hand-made analyses (docs/policies.md). */
static int bi_vram_fits(evalctx *E, const rule *r, json_t *findings)
{
    static const char *const need_keys[] = {"total_gib", "required_gib", "needed_gib", NULL};
    static const char *const have_keys[] = {"usable_gib", "available_gib", NULL};
    static const char *const budget_keys[] = {"budget_bytes", NULL};
    const json_t *plan = json_object_get(E->analysis, "plan");
    const json_t *models, *mmodels = json_object_get(E->manifest, "models");
    double headroom = 0.0, budget = 0.0;
    size_t i;
    json_t *m;
    int rc;
    char msg[MSG_MAX];
    if (vref_set(&r->headroom))
        (void)to_double(vref_get(E, &r->headroom), &headroom);
    if (!json_is_object(plan)) {
        return add_finding(E, r, findings,
                           "no memory plan: give target.gpu (a catalogue model or memory_gib)",
                           "target", NULL, "target", NULL);
    }
    (void)first_number(json_object_get(plan, "gpu"), budget_keys, &budget);
    models = json_object_get(plan, "models");
    json_array_foreach(models, i, m) {
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *subj = json_string_value(json_object_get(m, "subject"));
        const char *problem = json_string_value(json_object_get(m, "problem"));
        const json_t *per = json_object_get(m, "per_gpu");
        const json_t *fits = json_object_get(m, "fits");
        const json_t *mm = NULL, *item = NULL;
        double need = 0, have = 0;
        char sbuf[64];
        int got;
        size_t k;
        json_array_foreach(mmodels, k, mm) {
            const char *mn = json_string_value(json_object_get(mm, "name"));
            if (name && !subj && mn && !strcmp(name, mn)) {
                snprintf(sbuf, sizeof(sbuf), "models[%zu]", k);
                subj = sbuf;
                item = mm;
            }
        }
        if (!subj) {
            snprintf(sbuf, sizeof(sbuf), "models[%zu]", i);
            subj = sbuf;
        }
        got = (first_number(per, need_keys, &need) || first_number(m, need_keys, &need)) &&
              (first_number(per, have_keys, &have) || first_number(m, have_keys, &have));
        if (!got && budget > 0 && json_is_number(json_object_get(m, "total_per_gpu_bytes"))) {
            const double gib = 1024.0 * 1024.0 * 1024.0;
            double other = json_number_value(json_object_get(m, "other_models_bytes"));
            need = (json_number_value(json_object_get(m, "total_per_gpu_bytes")) + other) / gib;
            have = budget / gib;
            got = 1;
        }
        if (json_is_false(json_object_get(m, "planned")) && problem) {
            snprintf(msg, sizeof(msg), "model '%s' could not be planned: %s", name ? name : subj,
                     problem);
        } else if (json_is_false(fits) || (got && need > have)) {
            if (got)
                snprintf(msg, sizeof(msg),
                         "model '%s' needs %.2f GiB per GPU, %.2f GiB usable: it does not fit",
                         name ? name : subj, need, have);
            else
                snprintf(msg, sizeof(msg), "model '%s' does not fit the target GPUs",
                         name ? name : subj);
        } else if (got && have > 0 && headroom > 0 && (have - need) < headroom * have) {
            snprintf(msg, sizeof(msg),
                     "model '%s' leaves %.2f GiB of %.2f GiB usable free per GPU, less than the "
                     "%.0f%% headroom",
                     name ? name : subj, have - need, have, headroom * 100.0);
        } else {
            continue;
        }
        if ((rc = add_finding(E, r, findings, msg, subj, item, subj, NULL)))
            return rc;
    }
    if (json_array_size(models) == 0 && json_is_false(json_object_get(plan, "fits")))
        return add_finding(E, r, findings, "the models do not fit the target GPUs", "target",
                           NULL, "target", NULL);
    return AP_OK;
}

static int bi_license_known(evalctx *E, const rule *r, json_t *findings)
{
    ppath def;
    const char *why;
    const ppath *pp = &r->bpath;
    mlist l = {0};
    int rc = AP_OK;
    memset(&def, 0, sizeof(def));
    if (!r->has_bpath) {
        if (ppath_parse("models[*].license", &def, &why) != 0)
            return nomem(E->err);
        pp = &def;
    }
    if ((rc = expand(E, pp, NULL, &l)))
        goto done;
    for (size_t i = 0; i < l.n; i++) {
        const match *m = &l.m[i];
        char what[CONCRETE_MAX + 128], msg[MSG_MAX];
        const char *s = json_string_value(m->value);
        describe(m, what, sizeof(what));
        if (!m->value)
            snprintf(msg, sizeof(msg), "%s is not set: declare the licence", what);
        else if (!s || !ap_license_expr_known(s))
            snprintf(msg, sizeof(msg),
                     "%s '%s' is not a known SPDX licence id or a LicenseRef-", what,
                     s ? s : "?");
        else
            continue;
        if ((rc = add_finding(E, r, findings, msg, m->subject, m->subject_item, m->concrete,
                              m->value)))
            goto done;
    }
done:
    mlist_release(&l);
    ppath_release(&def);
    return rc;
}

/* launch-args: the manifest's args and env of each runtime against the
 * launch spec derived from the plan (runtime/launch.h); one finding per
 * contradicting argument, at that argument. */
static int bi_launch_args(evalctx *E, const rule *r, json_t *findings)
{
    const json_t *launch = json_object_get(E->analysis, "launch");
    json_t *c, *x;
    size_t i;
    int rc = AP_OK;
    if (!json_is_array(launch))
        return AP_OK; /* no plan-derived launch (a bare manifest): nothing to compare */
    if (!(c = ap_launch_contradictions(E->manifest, launch)))
        return nomem(E->err);
    json_array_foreach(c, i, x) {
        char subject[64];
        const json_t *item;
        snprintf(subject, sizeof subject, "runtimes[%lld]",
                 (long long)json_integer_value(json_object_get(x, "index")));
        item = json_array_get(json_object_get(E->manifest, "runtimes"),
                              (size_t)json_integer_value(json_object_get(x, "index")));
        if ((rc = add_finding(E, r, findings, json_string_value(json_object_get(x, "message")),
                              subject, item, json_string_value(json_object_get(x, "path")),
                              json_object_get(x, "value"))))
            break;
    }
    json_decref(c);
    return rc;
}

int ap_policy_eval(const ap_policy *p, const json_t *analysis, json_t *findings, ap_error *err)
{
    evalctx E = {.analysis = analysis, .p = p, .err = err};
    int rc = AP_OK;
    if (!p || !json_is_object(analysis) || !json_is_array(findings))
        return ap_error_set(err, AP_ERR_INPUT, "policy evaluation needs an analysis document");
    E.manifest = json_object_get(analysis, "manifest");
    if (!json_is_object(E.manifest))
        E.manifest = analysis;   /* a bare manifest document */
    for (size_t i = 0; i < p->n_rules && rc == AP_OK; i++) {
        const rule *r = &p->rules[i];
        switch (r->builtin) {
        case BI_NONE: rc = eval_declarative(&E, r, findings); break;
        case BI_PINNED: rc = bi_pinned(&E, r, findings); break;
        case BI_PINS_VERIFIED: rc = bi_pins_verified(&E, r, findings); break;
        case BI_VRAM_FITS: rc = bi_vram_fits(&E, r, findings); break;
        case BI_LICENSE_KNOWN: rc = bi_license_known(&E, r, findings); break;
        case BI_LAUNCH_ARGS: rc = bi_launch_args(&E, r, findings); break;
        }
        if (rc && rc != AP_ERR_NOMEM)
            ap_error_prefix(err, "policy '%s', rule '%s'", p->name, r->id);
    }
    return rc;
}

/* ---------------------------------------------------------- describing */

json_t *ap_policy_to_json(const ap_policy *p)
{
    json_t *o = json_object(), *checks = json_array();
    int bad = !o || !checks || !p;
    for (size_t i = 0; !bad && i < p->n_rules; i++) {
        const rule *r = &p->rules[i];
        json_t *c = json_object(), *ctl = json_array();
        bad |= !c || !ctl;
        for (size_t k = 0; !bad && k < r->n_controls; k++)
            bad |= json_array_append_new(ctl, json_string(r->controls[k])) != 0;
        if (!bad) {
            bad |= json_object_set_new(c, "id", json_string(r->id));
            bad |= json_object_set_new(c, "title", json_string(r->title));
            bad |= json_object_set_new(c, "severity", json_string(r->level));
            bad |= json_object_set_new(c, "controls", ctl);
            ctl = NULL;
            bad |= json_object_set_new(c, "rationale", json_string(r->rationale));
            bad |= json_array_append(checks, c);
        }
        json_decref(ctl);
        json_decref(c);
    }
    if (!bad) {
        bad |= json_object_set_new(o, "name", json_string(p->name));
        bad |= json_object_set_new(o, "file", json_string(p->file));
        if (p->version)
            bad |= json_object_set_new(o, "version", json_string(p->version));
        if (p->description)
            bad |= json_object_set_new(o, "description", json_string(p->description));
        bad |= json_object_set_new(o, "rules", json_integer((json_int_t)p->n_rules));
        bad |= json_object_set_new(o, "params", json_deep_copy(p->params));
        bad |= json_object_set(o, "checks", checks);
    }
    json_decref(checks);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *ap_findings_summary(const json_t *findings)
{
    size_t i, e = 0, w = 0, n = 0, wv = 0;
    json_t *f;
    json_array_foreach(findings, i, f) {
        const char *lv = json_string_value(json_object_get(f, "level"));
        if (json_is_true(json_object_get(f, "waived"))) {
            wv++;
            continue;
        }
        if (lv && !strcmp(lv, "error"))
            e++;
        else if (lv && !strcmp(lv, "warning"))
            w++;
        else
            n++;
    }
    return json_pack("{s:I,s:I,s:I,s:I,s:b}", "errors", (json_int_t)e, "warnings",
                     (json_int_t)w, "notes", (json_int_t)n, "waived", (json_int_t)wv, "passed",
                     e == 0);
}

/* ------------------------------------------------------------ licences */

/* Common SPDX ids for models and runtimes; every one is in CycloneDX 1.6's
 * spdx.schema.json enumeration (checked by tests/unit/test_sbom.c). */
static const char *const spdx_ids[] = {
    "0BSD", "AFL-3.0", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-1.1", "Apache-2.0",
    "Artistic-2.0", "BSD-1-Clause", "BSD-2-Clause", "BSD-3-Clause", "BSD-3-Clause-Clear",
    "BSL-1.0", "CC-BY-2.0", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-NC-4.0", "CC-BY-NC-ND-4.0",
    "CC-BY-NC-SA-4.0", "CC-BY-ND-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC0-1.0", "CDDL-1.0",
    "CDLA-Permissive-1.0", "CDLA-Permissive-2.0", "CDLA-Sharing-1.0",
    "ECL-2.0", "EPL-1.0", "EPL-2.0", "EUPL-1.1", "EUPL-1.2", "GPL-2.0-only",
    "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later", "ISC", "LGPL-2.1-only",
    "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later", "MIT", "MIT-0", "MPL-2.0",
    "MS-PL", "NCSA", "ODC-By-1.0", "ODbL-1.0", "OFL-1.1", "OpenSSL", "PDDL-1.0",
    "PostgreSQL", "Python-2.0", "Unlicense", "UPL-1.0", "W3C", "WTFPL", "Zlib",
    "OPUBL-1.0", NULL,
};

const char *const *ap_spdx_ids(void)
{
    return spdx_ids;
}

int ap_spdx_id_known(const char *id)
{
    for (size_t i = 0; id && spdx_ids[i]; i++)
        if (strcmp(id, spdx_ids[i]) == 0)
            return 1;
    return 0;
}

static int license_ref_valid(const char *s, size_t n)
{
    static const char pfx[] = "LicenseRef-";
    size_t pl = sizeof(pfx) - 1;
    if (n <= pl || strncmp(s, pfx, pl) != 0)
        return 0;
    for (size_t i = pl; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int ap_license_expr_known(const char *expr)
{
    /* tokens: ( ) AND OR WITH id; ids alternate with operators */
    const char *s = expr;
    int depth = 0, want_id = 1, after_with = 0;
    if (!expr || !*expr || strlen(expr) > 512)
        return 0;
    while (*s) {
        const char *t;
        size_t n;
        char tok[128];
        if (*s == ' ') {
            s++;
            continue;
        }
        if (*s == '(') {
            if (!want_id)
                return 0;
            depth++;
            s++;
            continue;
        }
        if (*s == ')') {
            if (want_id || --depth < 0)
                return 0;
            s++;
            continue;
        }
        t = s;
        while (*s && *s != ' ' && *s != '(' && *s != ')')
            s++;
        n = (size_t)(s - t);
        if (n >= sizeof(tok))
            return 0;
        memcpy(tok, t, n);
        tok[n] = '\0';
        if (!strcmp(tok, "AND") || !strcmp(tok, "OR") || !strcmp(tok, "WITH")) {
            if (want_id)
                return 0;
            want_id = 1;
            after_with = !strcmp(tok, "WITH");
            continue;
        }
        if (!want_id)
            return 0;
        if (after_with) {
            /* an exception id: letters, digits, - and . */
            for (size_t i = 0; i < n; i++)
                if (!((tok[i] >= 'A' && tok[i] <= 'Z') || (tok[i] >= 'a' && tok[i] <= 'z') ||
                      (tok[i] >= '0' && tok[i] <= '9') || tok[i] == '-' || tok[i] == '.'))
                    return 0;
        } else {
            if (n > 1 && tok[n - 1] == '+')
                tok[--n] = '\0';   /* "or later" */
            if (!ap_spdx_id_known(tok) && !license_ref_valid(tok, n))
                return 0;
        }
        want_id = 0;
        after_with = 0;
    }
    return !want_id && depth == 0;
}

int ap_policy_ref_is_name(const char *ref)
{
    size_t n = strlen(ref);
    return n > 0 && n < 100 && strspn(ref, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

int ap_policy_load_ref(const char *ref, ap_policy **out, ap_error *err)
{
    if (ap_policy_ref_is_name(ref)) {
        char name[128], disp[160];
        size_t len;
        const char *buf;
        snprintf(name, sizeof name, "%s.yaml", ref);
        snprintf(disp, sizeof disp, "policies/%s.yaml", ref);
        if (!(buf = ap_data_get(name, &len)))
            return ap_error_set(err, AP_ERR_INPUT,
                                "unknown policy pack '%s' (shipped packs: baseline, "
                                "offline-runtime, eu-sovereignty, nist-800-53; or give a path)",
                                ref);
        return ap_policy_parse(disp, buf, len, out, err);
    }
    return ap_policy_load(ref, out, err);
}
