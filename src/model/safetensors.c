/*
 * safetensors.c - the safetensors header reader, for single files and
 * sharded folders (model.safetensors.index.json).
 *
 * Layout: a u64 little-endian header length N, N bytes of JSON (an object
 * mapping tensor names to {"dtype", "shape", "data_offsets": [begin, end]},
 * plus an optional "__metadata__" string map), then the data section.
 * The checks follow the reference implementation (huggingface/safetensors,
 * `Metadata::validate`): N at most 100,000,000 and inside the file; the
 * header starts with '{'; sorted by offset, each tensor begins where the
 * previous one ended (no gaps, no overlaps); end - begin equals the
 * element count times the dtype's size (sub-byte dtypes must fill whole
 * bytes); and the data section ends exactly at the end of the file.
 * Only the header is read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "util.h"

static const struct {
    const char *name;
    unsigned bits;
} st_dtypes[] = {
    {"BOOL", 8},    {"F4", 4},      {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"U8", 8},
    {"I8", 8},      {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"I16", 16},
    {"U16", 16},    {"F16", 16},    {"BF16", 16},   {"I32", 32},    {"U32", 32},
    {"F32", 32},    {"C64", 64},    {"F64", 64},    {"I64", 64},    {"U64", 64},
};

unsigned ap_st_dtype_bits(const char *dtype)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(st_dtypes); i++)
        if (strcmp(st_dtypes[i].name, dtype) == 0)
            return st_dtypes[i].bits;
    return 0;
}

typedef struct st_span {
    uint64_t begin, end;      /* byte offsets in the data section */
    const char *name;         /* borrowed from the JSON header */
} st_span;

static int cmp_span(const void *a, const void *b)
{
    const st_span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int read_full(int fd, void *buf, size_t n, ssize_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = read(fd, (char *)buf + done, n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        done += (size_t)k;
    }
    *got = (ssize_t)done;
    return 0;
}

static int get_u64(json_t *j, uint64_t *out)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return 0;
    *out = (uint64_t)json_integer_value(j);
    return 1;
}

int ap_safetensors_read(const char *path, ap_model_facts *f, ap_error *err)
{
    int fd = -1, rc = AP_OK;
    struct stat st;
    unsigned char lenb[8];
    uint64_t hlen = 0, data_size, expect = 0;
    char *hdr = NULL;
    json_t *root = NULL;
    json_error_t je;
    st_span *spans = NULL;
    size_t ns = 0, cap;
    ssize_t got;
    const char *key;
    json_t *val;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open", path);
    if (fstat(fd, &st) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot stat", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "not a regular file");
        goto out;
    }
    if (read_full(fd, lenb, 8, &got) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot read", path);
        goto out;
    }
    if (got < 8) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "offset 0: truncated header (file of %zd bytes, need 8 for the header length)", got);
        goto out;
    }
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | lenb[i];
    if (hlen > AP_MODEL_MAX_ST_HEADER) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "offset 0: header length %" PRIu64 " is over the limit of %u bytes", hlen,
                             AP_MODEL_MAX_ST_HEADER);
        goto out;
    }
    if (hlen + 8 > (uint64_t)st.st_size) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "offset 0: header length %" PRIu64 " runs past the end of the file (%lld bytes): truncated file",
                             hlen, (long long)st.st_size);
        goto out;
    }
    data_size = (uint64_t)st.st_size - 8 - hlen;
    hdr = malloc(hlen ? (size_t)hlen : 1);
    if (!hdr) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory reading '%s'", path);
        goto out;
    }
    if (read_full(fd, hdr, (size_t)hlen, &got) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot read", path);
        goto out;
    }
    if ((uint64_t)got != hlen) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "offset %zd: truncated header", 8 + got);
        goto out;
    }
    if (hlen == 0 || hdr[0] != '{') {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "offset 8: header does not start with '{'");
        goto out;
    }
    if (!ap_utf8_valid(hdr, (size_t)hlen)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "offset 8: header is not valid UTF-8");
        goto out;
    }
    root = json_loadb(hdr, (size_t)hlen, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &je);
    if (!root) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "offset %lld: header JSON: %s",
                             (long long)(8 + je.position), je.text);
        goto out;
    }
    /* only whitespace may follow the JSON object (writers pad with spaces) */
    for (size_t i = je.position; i < (size_t)hlen; i++)
        if (hdr[i] != ' ' && hdr[i] != '\n' && hdr[i] != '\r' && hdr[i] != '\t') {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "offset %zu: data after the header JSON", 8 + i);
            goto out;
        }
    if (!json_is_object(root)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "offset 8: header is not a JSON object");
        goto out;
    }
    cap = json_object_size(root);
    if (cap > AP_MODEL_MAX_TENSORS) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "offset 8: %zu tensors is over the limit of %u", cap, AP_MODEL_MAX_TENSORS);
        goto out;
    }
    spans = calloc(cap ? cap : 1, sizeof *spans);
    if (!spans) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory reading '%s'", path);
        goto out;
    }
    json_object_foreach(root, key, val) {
        json_t *dt, *shape, *offs;
        const char *dtype;
        unsigned bits;
        uint64_t elems = 1, nbits, b, e;
        size_t i;
        json_t *d;

        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(val)) {
                rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "header: '__metadata__' is not an object");
                goto out;
            }
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                         "header: '__metadata__' value '%s' is not a string", mk);
                    goto out;
                }
            }
            continue;
        }
        if (strlen(key) > AP_MODEL_MAX_NAME) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "header: tensor name longer than %d bytes", AP_MODEL_MAX_NAME);
            goto out;
        }
        if (!json_is_object(val) || json_unpack(val, "{s:o,s:o,s:o!}", "dtype", &dt, "shape", &shape,
                                                "data_offsets", &offs) != 0) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "header: tensor '%s' must have exactly dtype, shape and data_offsets", key);
            goto out;
        }
        dtype = json_string_value(dt);
        bits = dtype ? ap_st_dtype_bits(dtype) : 0;
        if (!bits) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "header: tensor '%s' has unknown dtype '%s'",
                                 key, dtype ? dtype : "(not a string)");
            goto out;
        }
        if (!json_is_array(shape) || json_array_size(shape) > AP_MODEL_MAX_ST_DIMS) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "header: tensor '%s' shape must be an array of at most %d integers", key,
                                 AP_MODEL_MAX_ST_DIMS);
            goto out;
        }
        json_array_foreach(shape, i, d) {
            uint64_t v;
            if (!get_u64(d, &v)) {
                rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                     "header: tensor '%s' shape holds a value that is not a non-negative integer", key);
                goto out;
            }
            if (!ap_mul_u64(elems, v, &elems)) {
                rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "header: tensor '%s' shape overflows", key);
                goto out;
            }
        }
        if (!json_is_array(offs) || json_array_size(offs) != 2 || !get_u64(json_array_get(offs, 0), &b) ||
            !get_u64(json_array_get(offs, 1), &e)) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "header: tensor '%s' data_offsets must be two non-negative integers", key);
            goto out;
        }
        if (!ap_mul_u64(elems, bits, &nbits)) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "header: tensor '%s' size overflows", key);
            goto out;
        }
        if (nbits % 8) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "header: tensor '%s' of %" PRIu64 " %s elements does not fill whole bytes",
                                 key, elems, dtype);
            goto out;
        }
        if (e < b || e - b != nbits / 8) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "header: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] do not match its shape and dtype (%" PRIu64 " bytes)",
                                 key, b, e, nbits / 8);
            goto out;
        }
        if (ap_facts_has_tensor(f, key)) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "header: tensor '%s' is also in another file", key);
            goto out;
        }
        spans[ns].begin = b;
        spans[ns].end = e;
        spans[ns].name = key;
        ns++;
        if ((rc = ap_facts_add_tensor(f, key, dtype, elems, nbits / 8, err)))
            goto out;
    }
    qsort(spans, ns, sizeof *spans, cmp_span);
    for (size_t i = 0; i < ns; i++) {
        if (spans[i].begin != expect) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                                 "header: tensor '%s' begins at data offset %" PRIu64 ", expected %" PRIu64 " (%s)",
                                 spans[i].name, spans[i].begin, expect,
                                 spans[i].begin < expect ? "overlaps the previous tensor" : "gap after the previous tensor");
            goto out;
        }
        expect = spans[i].end;
    }
    if (expect != data_size) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "data section is %" PRIu64 " bytes but the tensors cover %" PRIu64 " bytes%s",
                             data_size, expect, data_size < expect ? ": truncated file" : "");
        goto out;
    }
    f->n_files++;
    f->file_bytes += (uint64_t)st.st_size;
    f->tensors_src = AP_SRC_SAFETENSORS;
    if (!f->format)
        f->format = "safetensors";
out:
    free(spans);
    json_decref(root);
    free(hdr);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int ap_safetensors_read_index(const char *index_path, ap_model_facts *f, ap_error *err)
{
    char *buf = NULL, *dir = NULL;
    size_t len;
    json_t *root = NULL, *wm, *val;
    json_error_t je;
    const char **names = NULL;
    size_t n = 0, cap;
    const char *key;
    int rc;

    if ((rc = ap_read_file(index_path, AP_MODEL_MAX_JSON, &buf, &len, err)))
        return rc;
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, index_path, (unsigned)je.line, (unsigned)je.column, "%s", je.text);
        goto out;
    }
    wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, index_path, 0, 0, "'weight_map' must be a non-empty object");
        goto out;
    }
    cap = json_object_size(wm);
    if (cap > AP_MODEL_MAX_TENSORS) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, index_path, 0, 0, "'weight_map' names too many tensors");
        goto out;
    }
    names = calloc(cap, sizeof *names);
    dir = ap_path_dirname(index_path);
    if (!names || !dir) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    json_object_foreach(wm, key, val) {
        const char *s = json_string_value(val);
        if (!s || !ap_path_is_safe_relative(s) || strchr(s, '/')) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, index_path, 0, 0,
                                 "'weight_map': tensor '%s' names an unsafe or invalid shard file", key);
            goto out;
        }
        names[n++] = s;
    }
    qsort(names, n, sizeof *names, cmp_cstr);
    {
        size_t shards = 0;
        for (size_t i = 0; i < n; i++) {
            char *p;
            if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
                continue;
            if (++shards > AP_MODEL_MAX_SHARDS) {
                rc = ap_error_set_at(err, AP_ERR_INPUT, index_path, 0, 0, "more than %d shards", AP_MODEL_MAX_SHARDS);
                goto out;
            }
            p = ap_path_join(dir, names[i]);
            if (!p) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            rc = ap_safetensors_read(p, f, err);
            free(p);
            if (rc)
                goto out;
        }
    }
    json_object_foreach(wm, key, val) {
        if (!ap_facts_has_tensor(f, key)) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, index_path, 0, 0,
                                 "'weight_map' names tensor '%s' in '%s', which no shard holds", key,
                                 json_string_value(val));
            goto out;
        }
    }
out:
    free(names);
    free(dir);
    json_decref(root);
    free(buf);
    return rc;
}
