/*
 * yamltree.c - bounded YAML loading with positions (see yamltree.h).
 */
#include "yamltree.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"

static const ap_ylimits default_limits = {
    .max_bytes = 4u << 20, .max_depth = 32, .max_nodes = 200000, .max_scalar = 64u << 10,
};

static void node_free(ap_ynode *n)
{
    if (!n)
        return;
    free(n->str);
    if (n->type == AP_Y_MAP) {
        for (size_t i = 0; i < n->n; i++) {
            node_free(n->pairs[i].key);
            node_free(n->pairs[i].value);
        }
        free(n->pairs);
    } else if (n->type == AP_Y_SEQ) {
        for (size_t i = 0; i < n->n; i++)
            node_free(n->items[i]);
        free(n->items);
    }
    free(n);
}

void ap_ydoc_free(ap_ydoc *doc)
{
    if (!doc)
        return;
    node_free(doc->root);
    free(doc->file);
    free(doc);
}

struct loader {
    yaml_parser_t parser;
    const ap_ylimits *lim;
    ap_ydoc *doc;
    ap_error *err;
};

static int ev_error(struct loader *L, const yaml_event_t *ev, const char *fmt, ...) AP_PRINTF(3, 4);
static int ev_error(struct loader *L, const yaml_event_t *ev, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ap_error_vset_at(L->err, AP_ERR_INPUT, L->doc->file, (unsigned)ev->start_mark.line + 1,
                     (unsigned)ev->start_mark.column + 1, fmt, ap);
    va_end(ap);
    return AP_ERR_INPUT;
}

static int next_event(struct loader *L, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&L->parser, ev)) {
        const yaml_mark_t *m = L->parser.problem ? &L->parser.problem_mark : &L->parser.mark;
        return ap_error_set_at(L->err, AP_ERR_INPUT, L->doc->file, (unsigned)m->line + 1,
                               (unsigned)m->column + 1, "invalid YAML: %s%s%s",
                               L->parser.problem ? L->parser.problem : "syntax error",
                               L->parser.context ? " " : "",
                               L->parser.context ? L->parser.context : "");
    }
    return AP_OK;
}

static int parse_node(struct loader *L, yaml_event_t *ev, unsigned depth, ap_ynode **out);

static ap_ynode *new_node(struct loader *L, const yaml_event_t *ev, ap_ytype t)
{
    ap_ynode *n;
    if (++L->doc->nodes > L->lim->max_nodes) {
        ap_error_set_at(L->err, AP_ERR_INPUT, L->doc->file, (unsigned)ev->start_mark.line + 1,
                        (unsigned)ev->start_mark.column + 1,
                        "document has more than %zu nodes", L->lim->max_nodes);
        return NULL;
    }
    n = calloc(1, sizeof *n);
    if (!n) {
        ap_error_set(L->err, AP_ERR_NOMEM, "out of memory loading '%s'", L->doc->file);
        return NULL;
    }
    n->type = t;
    n->line = (unsigned)ev->start_mark.line + 1;
    n->column = (unsigned)ev->start_mark.column + 1;
    return n;
}

static int check_tag(struct loader *L, const yaml_event_t *ev, const yaml_char_t *tag,
                     const yaml_char_t *anchor)
{
    if (anchor)
        return ev_error(L, ev, "anchors and aliases are not allowed (anchor '%s')",
                        (const char *)anchor);
    if (tag && strncmp((const char *)tag, "tag:yaml.org,2002:", 18) != 0)
        return ev_error(L, ev, "custom tag '%s' is not allowed", (const char *)tag);
    return AP_OK;
}

static int grow(void **arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return 1;
    size_t nc = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, nc * elem);
    if (!p)
        return 0;
    *arr = p;
    *cap = nc;
    return 1;
}

static int parse_node(struct loader *L, yaml_event_t *ev, unsigned depth, ap_ynode **out)
{
    ap_ynode *n = NULL;
    int rc;
    size_t cap = 0;

    *out = NULL;
    if (depth > L->lim->max_depth)
        return ap_error_set_at(L->err, AP_ERR_INPUT, L->doc->file, (unsigned)ev->start_mark.line + 1,
                               (unsigned)ev->start_mark.column + 1,
                               "nesting deeper than %u levels", L->lim->max_depth);

    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return ev_error(L, ev, "anchors and aliases are not allowed (alias '%s')",
                        (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        if ((rc = check_tag(L, ev, ev->data.scalar.tag, ev->data.scalar.anchor)))
            return rc;
        if (ev->data.scalar.length > L->lim->max_scalar)
            return ev_error(L, ev, "scalar longer than the limit");
        if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
            return ev_error(L, ev, "scalar contains a NUL character");
        if (!(n = new_node(L, ev, AP_Y_SCALAR)))
            return L->err ? L->err->status : AP_ERR_NOMEM;
        n->str = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        if (!n->str) {
            free(n);
            return ap_error_set(L->err, AP_ERR_NOMEM, "out of memory");
        }
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        *out = n;
        return AP_OK;
    case YAML_SEQUENCE_START_EVENT:
        if ((rc = check_tag(L, ev, ev->data.sequence_start.tag, ev->data.sequence_start.anchor)))
            return rc;
        if (!(n = new_node(L, ev, AP_Y_SEQ)))
            return L->err ? L->err->status : AP_ERR_NOMEM;
        for (;;) {
            yaml_event_t cev;
            ap_ynode *child;
            if ((rc = next_event(L, &cev)))
                goto fail;
            if (cev.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&cev);
                break;
            }
            rc = parse_node(L, &cev, depth + 1, &child);
            yaml_event_delete(&cev);
            if (rc)
                goto fail;
            if (!grow((void **)&n->items, n->n, &cap, sizeof *n->items)) {
                node_free(child);
                rc = ap_error_set(L->err, AP_ERR_NOMEM, "out of memory");
                goto fail;
            }
            n->items[n->n++] = child;
        }
        *out = n;
        return AP_OK;
    case YAML_MAPPING_START_EVENT:
        if ((rc = check_tag(L, ev, ev->data.mapping_start.tag, ev->data.mapping_start.anchor)))
            return rc;
        if (!(n = new_node(L, ev, AP_Y_MAP)))
            return L->err ? L->err->status : AP_ERR_NOMEM;
        for (;;) {
            yaml_event_t kev, vev;
            ap_ynode *k = NULL, *v = NULL;
            if ((rc = next_event(L, &kev)))
                goto fail;
            if (kev.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&kev);
                break;
            }
            if (kev.type != YAML_SCALAR_EVENT) {
                rc = ev_error(L, &kev, "mapping keys must be plain strings");
                yaml_event_delete(&kev);
                goto fail;
            }
            rc = parse_node(L, &kev, depth + 1, &k);
            yaml_event_delete(&kev);
            if (rc)
                goto fail;
            for (size_t i = 0; i < n->n; i++) {
                if (strcmp(n->pairs[i].key->str, k->str) == 0) {
                    rc = ap_error_set_at(L->err, AP_ERR_INPUT, L->doc->file, k->line, k->column,
                                         "duplicate key '%s' (first at line %u)", k->str,
                                         n->pairs[i].key->line);
                    node_free(k);
                    goto fail;
                }
            }
            if ((rc = next_event(L, &vev))) {
                node_free(k);
                goto fail;
            }
            rc = parse_node(L, &vev, depth + 1, &v);
            yaml_event_delete(&vev);
            if (rc) {
                node_free(k);
                goto fail;
            }
            if (!grow((void **)&n->pairs, n->n, &cap, sizeof *n->pairs)) {
                node_free(k);
                node_free(v);
                rc = ap_error_set(L->err, AP_ERR_NOMEM, "out of memory");
                goto fail;
            }
            n->pairs[n->n].key = k;
            n->pairs[n->n].value = v;
            n->n++;
        }
        *out = n;
        return AP_OK;
    default:
        return ev_error(L, ev, "unexpected YAML event");
    }
fail:
    node_free(n);
    return rc;
}

int ap_yaml_load_buffer(const char *name, const void *buf, size_t len, const ap_ylimits *lim,
                        ap_ydoc **out, ap_error *err)
{
    struct loader L;
    yaml_event_t ev;
    int rc = AP_OK, have_doc = 0;

    *out = NULL;
    memset(&L, 0, sizeof L);
    L.lim = lim ? lim : &default_limits;
    L.err = err;
    if (len > L.lim->max_bytes)
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0,
                               "document is %zu bytes, more than the limit of %zu", len,
                               L.lim->max_bytes);
    L.doc = calloc(1, sizeof *L.doc);
    if (!L.doc || !(L.doc->file = strdup(name))) {
        free(L.doc);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if (!yaml_parser_initialize(&L.parser)) {
        ap_ydoc_free(L.doc);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    yaml_parser_set_input_string(&L.parser, buf, len);

    for (;;) {
        if ((rc = next_event(&L, &ev)))
            break;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_DOCUMENT_START_EVENT) {
            if (have_doc) {
                rc = ev_error(&L, &ev, "more than one YAML document");
                yaml_event_delete(&ev);
                break;
            }
            have_doc = 1;
            yaml_event_delete(&ev);
            if ((rc = next_event(&L, &ev)))
                break;
            if (ev.type != YAML_DOCUMENT_END_EVENT) {
                rc = parse_node(&L, &ev, 1, &L.doc->root);
                yaml_event_delete(&ev);
                if (rc)
                    break;
                if ((rc = next_event(&L, &ev)))
                    break;
            }
            yaml_event_delete(&ev);
            continue;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&L.parser);
    if (rc) {
        ap_ydoc_free(L.doc);
        return rc;
    }
    *out = L.doc;
    return AP_OK;
}

int ap_yaml_load_file(const char *path, const ap_ylimits *lim, ap_ydoc **out, ap_error *err)
{
    char *buf;
    size_t len;
    int rc;
    const ap_ylimits *l = lim ? lim : &default_limits;
    *out = NULL;
    if ((rc = ap_read_file(path, l->max_bytes, &buf, &len, err)))
        return rc;
    rc = ap_yaml_load_buffer(path, buf, len, l, out, err);
    free(buf);
    return rc;
}

ap_ynode *ap_ymap_get(const ap_ynode *map, const char *key)
{
    if (!map || map->type != AP_Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->pairs[i].key->str, key) == 0)
            return map->pairs[i].value;
    return NULL;
}

int ap_y_error(const ap_ydoc *doc, const ap_ynode *node, ap_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ap_error_vset_at(err, AP_ERR_INPUT, doc->file, node ? node->line : 0, node ? node->column : 0,
                     fmt, ap);
    va_end(ap);
    return AP_ERR_INPUT;
}

static const char *type_name(ap_ytype t)
{
    return t == AP_Y_MAP ? "a mapping" : t == AP_Y_SEQ ? "a list" : "a scalar";
}

int ap_y_expect(const ap_ydoc *doc, const ap_ynode *node, ap_ytype type, const char *what,
                ap_error *err)
{
    if (node->type != type)
        return ap_y_error(doc, node, err, "'%s' must be %s, not %s", what, type_name(type),
                          type_name(node->type));
    return AP_OK;
}

int ap_y_check_keys(const ap_ydoc *doc, const ap_ynode *map, const char *const *allowed,
                    const char *what, ap_error *err)
{
    for (size_t i = 0; i < map->n; i++) {
        const ap_ynode *k = map->pairs[i].key;
        size_t j;
        for (j = 0; allowed[j]; j++)
            if (strcmp(allowed[j], k->str) == 0)
                break;
        if (!allowed[j]) {
            const char *s = ap_suggest(k->str, allowed);
            if (s)
                return ap_y_error(doc, k, err, "unknown key '%s' in %s (did you mean '%s'?)",
                                  k->str, what, s);
            return ap_y_error(doc, k, err, "unknown key '%s' in %s", k->str, what);
        }
    }
    return AP_OK;
}

int ap_y_require(const ap_ydoc *doc, const ap_ynode *map, const char *key, const char *what,
                 ap_ynode **out, ap_error *err)
{
    ap_ynode *v = ap_ymap_get(map, key);
    *out = v;
    if (!v)
        return ap_y_error(doc, map, err, "missing required key '%s' in %s", key, what);
    return AP_OK;
}

int ap_y_is_null(const ap_ynode *n)
{
    return n->type == AP_Y_SCALAR && n->plain &&
           (n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
            strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0);
}

int ap_y_string(const ap_ydoc *doc, const ap_ynode *node, const char *key, const char **out,
                ap_error *err)
{
    if (node->type != AP_Y_SCALAR || ap_y_is_null(node))
        return ap_y_error(doc, node, err, "'%s' must be a string", key);
    *out = node->str;
    return AP_OK;
}

int ap_y_u64(const ap_ydoc *doc, const ap_ynode *node, const char *key, uint64_t min, uint64_t max,
             uint64_t *out, ap_error *err)
{
    char *end;
    unsigned long long v;
    if (node->type != AP_Y_SCALAR || node->len == 0 || node->str[0] == '-' || node->str[0] == '+' ||
        node->str[0] == ' ')
        goto bad;
    errno = 0;
    v = strtoull(node->str, &end, 10);
    if (errno || *end != '\0')
        goto bad;
    if (v < min || v > max) {
        if (max == UINT64_MAX)
            return ap_y_error(doc, node, err, "'%s' must be at least %llu, not %s", key,
                              (unsigned long long)min, node->str);
        return ap_y_error(doc, node, err, "'%s' must be between %llu and %llu, not %s", key,
                          (unsigned long long)min, (unsigned long long)max, node->str);
    }
    *out = v;
    return AP_OK;
bad:
    return ap_y_error(doc, node, err, "'%s' must be a whole number%s%s%s", key,
                      node->type == AP_Y_SCALAR ? ", not '" : "",
                      node->type == AP_Y_SCALAR ? node->str : "",
                      node->type == AP_Y_SCALAR ? "'" : "");
}

int ap_y_double(const ap_ydoc *doc, const ap_ynode *node, const char *key, double *out,
                ap_error *err)
{
    char *end;
    double v;
    if (node->type != AP_Y_SCALAR || node->len == 0)
        return ap_y_error(doc, node, err, "'%s' must be a number", key);
    errno = 0;
    v = strtod(node->str, &end);
    if (errno || *end != '\0' || !isfinite(v))
        return ap_y_error(doc, node, err, "'%s' must be a number, not '%s'", key, node->str);
    *out = v;
    return AP_OK;
}

int ap_y_bool(const ap_ydoc *doc, const ap_ynode *node, const char *key, int *out, ap_error *err)
{
    if (node->type == AP_Y_SCALAR && node->plain) {
        if (!strcmp(node->str, "true") || !strcmp(node->str, "True") || !strcmp(node->str, "TRUE")) {
            *out = 1;
            return AP_OK;
        }
        if (!strcmp(node->str, "false") || !strcmp(node->str, "False") ||
            !strcmp(node->str, "FALSE")) {
            *out = 0;
            return AP_OK;
        }
    }
    return ap_y_error(doc, node, err, "'%s' must be true or false", key);
}
