/*
 * yamltree.h - a bounded YAML document tree with source positions.
 *
 * libyaml's event parser builds a small tree of maps, sequences and
 * scalars, each with its 1-based line and column. The loader is strict:
 * one document only, no anchors, aliases or tags beyond the standard
 * ones (no YAML bombs), keys must be scalars and unique in their map,
 * and the input size, nesting depth, node count and scalar length are
 * capped. Manifests, policy packs, waivers and the GPU catalogue all load
 * through here, then check their schema with the ap_y_* helpers, which
 * report errors as "'FILE': line L, column C: ..." with AP_ERR_INPUT.
 */
#ifndef AIRPACK_YAMLTREE_H
#define AIRPACK_YAMLTREE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum ap_ytype { AP_Y_SCALAR, AP_Y_MAP, AP_Y_SEQ } ap_ytype;

typedef struct ap_ynode ap_ynode;
typedef struct ap_ypair {
    ap_ynode *key;    /* always a scalar */
    ap_ynode *value;
} ap_ypair;

struct ap_ynode {
    ap_ytype type;
    unsigned line, column;   /* 1-based source position */
    /* AP_Y_SCALAR */
    char *str;               /* NUL-terminated; len excludes the NUL */
    size_t len;
    int plain;               /* 1 for a plain (unquoted) scalar */
    /* AP_Y_MAP: pairs[0..n); AP_Y_SEQ: items[0..n) */
    size_t n;
    ap_ypair *pairs;
    ap_ynode **items;
};

typedef struct ap_ylimits {
    size_t max_bytes;    /* input size (default 4 MiB) */
    unsigned max_depth;  /* nesting depth (default 32) */
    size_t max_nodes;    /* total nodes (default 200000) */
    size_t max_scalar;   /* one scalar's length (default 64 KiB) */
} ap_ylimits;

typedef struct ap_ydoc {
    char *file;          /* the name used in messages */
    ap_ynode *root;      /* NULL for an empty document */
    size_t nodes;
} ap_ydoc;

/* Load a YAML file. lim may be NULL for the defaults. On success *out is
 * the caller's (ap_ydoc_free). Errors: AP_ERR_INPUT with file:line:column. */
int ap_yaml_load_file(const char *path, const ap_ylimits *lim, ap_ydoc **out, ap_error *err) AP_WUR;

/* Load YAML from memory; name is used in messages. */
int ap_yaml_load_buffer(const char *name, const void *buf, size_t len, const ap_ylimits *lim,
                        ap_ydoc **out, ap_error *err) AP_WUR;

void ap_ydoc_free(ap_ydoc *doc);

/* Value of key in map, or NULL (also NULL when map is not a map). */
ap_ynode *ap_ymap_get(const ap_ynode *map, const char *key);

/* Error at a node: "'FILE': line L, column C: MSG", AP_ERR_INPUT. */
int ap_y_error(const ap_ydoc *doc, const ap_ynode *node, ap_error *err, const char *fmt, ...)
    AP_PRINTF(4, 5);

/* Require node to be of a type, naming what it is ("'metadata' must be a mapping"). */
int ap_y_expect(const ap_ydoc *doc, const ap_ynode *node, ap_ytype type, const char *what,
                ap_error *err) AP_WUR;

/* Every key of map must be in allowed (NULL-terminated); an unknown key is
 * an error at the key with a "did you mean" hint. what names the map. */
int ap_y_check_keys(const ap_ydoc *doc, const ap_ynode *map, const char *const *allowed,
                    const char *what, ap_error *err) AP_WUR;

/* A required key: its value, or an error at the map naming the key. */
int ap_y_require(const ap_ydoc *doc, const ap_ynode *map, const char *key, const char *what,
                 ap_ynode **out, ap_error *err) AP_WUR;

/* Scalar conversions with range checks; the error names key. */
int ap_y_string(const ap_ydoc *doc, const ap_ynode *node, const char *key, const char **out,
                ap_error *err) AP_WUR;
int ap_y_u64(const ap_ydoc *doc, const ap_ynode *node, const char *key, uint64_t min, uint64_t max,
             uint64_t *out, ap_error *err) AP_WUR;
int ap_y_double(const ap_ydoc *doc, const ap_ynode *node, const char *key, double *out,
                ap_error *err) AP_WUR;
int ap_y_bool(const ap_ydoc *doc, const ap_ynode *node, const char *key, int *out,
              ap_error *err) AP_WUR;

/* True for a plain scalar that YAML reads as null ("", "~", "null"). */
int ap_y_is_null(const ap_ynode *node);

#endif
