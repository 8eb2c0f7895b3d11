/*
 * trust.c - the site trust file (see trust.h, docs/trust.md): parsing with
 * caps, edits, canonical bytes, minisign signatures and the threshold
 * rules for bundles, for the file itself and for rotation.
 */

#include "trust/trust.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle_read.h" /* ap_rfc3339_past */
#include "digest.h"
#include "util.h"

static int is_keyid(const char *s)
{
    if (!s || strlen(s) != 16)
        return 0;
    for (int i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return 1;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > AP_TRUST_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '@' || c == ' '))
            return 0;
    }
    return 1;
}

/* YYYY-MM-DDTHH:MM:SSZ exactly. */
static int date_ok(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
    if (!s || strlen(s) != sizeof pat - 1)
        return 0;
    for (size_t i = 0; i < sizeof pat - 1; i++) {
        if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
            return 0;
    }
    return ap_rfc3339_past(s) >= 0;
}

void ap_trust_free(ap_trust *t)
{
    if (!t)
        return;
    free(t->keys);
    free(t->revoked);
    free(t->sigs);
    for (size_t i = 0; i < t->n_sigs; i++)
        free(t->sig_texts[i]);
    free(t->sig_texts);
    json_decref(t->doc);
    free(t->signed_bytes);
    free(t->raw);
    free(t);
}

static int bad(ap_error *err, const char *name, const json_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(ap_error *err, const char *name, const json_t *at, const char *fmt, ...)
{
    char m[AP_ERROR_MSG_MAX];
    va_list ap;
    (void)at;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "%s", m);
}

static int only_keys(ap_error *err, const char *name, const json_t *o, const char *where,
                     const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            if (!strcmp(k, allowed[i]))
                ok = 1;
        if (!ok) {
            const char *s = ap_suggest(k, allowed);
            return bad(err, name, o, "%s: unknown key '%s'%s%s%s", where, k, s ? " (did you mean '" : "",
                       s ? s : "", s ? "'?)" : "");
        }
    }
    return AP_OK;
}

/* Rebuild t's fields from t->doc (already structurally checked) and the
 * canonical bytes. */
static int canon(ap_trust *t, ap_error *err)
{
    json_t *sg = json_object_get(t->doc, "signed");
    char *b = json_dumps(sg, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (!b)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    free(t->signed_bytes);
    t->signed_bytes = b;
    t->signed_len = strlen(b);
    return AP_OK;
}

static const ap_trust_key *find_hex(const ap_trust *t, const char *id)
{
    for (size_t i = 0; i < t->n_keys; i++)
        if (!strcmp(t->keys[i].id, id))
            return &t->keys[i];
    return NULL;
}

static int parse_role(ap_trust *t, const char *name, const json_t *roles, const char *role,
                      unsigned bit, size_t *threshold, ap_error *err)
{
    static const char *const rkeys[] = {"threshold", "keys", NULL};
    const json_t *r = json_object_get(roles, role), *th, *ks, *v;
    size_t i;
    char where[64];
    snprintf(where, sizeof where, "roles.%s", role);
    if (!json_is_object(r))
        return bad(err, name, roles, "'%s' must be an object with 'threshold' and 'keys'", where);
    if (only_keys(err, name, r, where, rkeys))
        return AP_ERR_INPUT;
    th = json_object_get(r, "threshold");
    ks = json_object_get(r, "keys");
    if (!json_is_integer(th) || json_integer_value(th) < 1 ||
        json_integer_value(th) > AP_TRUST_MAX_KEYS)
        return bad(err, name, r, "'%s.threshold' must be an integer from 1 to %d", where,
                   AP_TRUST_MAX_KEYS);
    if (!json_is_array(ks) || json_array_size(ks) > AP_TRUST_MAX_KEYS)
        return bad(err, name, r, "'%s.keys' must be an array of key ids", where);
    *threshold = (size_t)json_integer_value(th);
    json_array_foreach(ks, i, v) {
        ap_trust_key *k;
        if (!json_is_string(v) || !is_keyid(json_string_value(v)))
            return bad(err, name, v, "'%s.keys[%zu]' is not a key id (16 uppercase hex digits)",
                       where, i);
        k = (ap_trust_key *)find_hex(t, json_string_value(v));
        if (!k)
            return bad(err, name, v, "'%s.keys[%zu]': key %s is not in 'keys'", where, i,
                       json_string_value(v));
        if (k->roles & bit)
            return bad(err, name, v, "'%s.keys': key %s listed twice", where, k->id);
        k->roles |= bit;
    }
    return AP_OK;
}

static int parse_doc(ap_trust *t, const char *name, ap_error *err)
{
    static const char *const top[] = {"format", "signed", "signatures", NULL};
    static const char *const sk[] = {"version", "expires", "keys", "roles", "revoked", NULL};
    static const char *const kk[] = {"id", "name", "public_key", NULL};
    static const char *const rk[] = {"bundles", "root", NULL};
    json_t *d = t->doc, *sg, *v, *keys, *roles, *rev, *sigs;
    size_t i;

    if (!json_is_object(d))
        return bad(err, name, d, "a trust file is a JSON object");
    if (only_keys(err, name, d, "top level", top))
        return AP_ERR_INPUT;
    v = json_object_get(d, "format");
    if (!json_is_string(v) || strcmp(json_string_value(v), AP_TRUST_FORMAT) != 0)
        return bad(err, name, d, "'format' must be \"%s\"", AP_TRUST_FORMAT);
    sg = json_object_get(d, "signed");
    if (!json_is_object(sg))
        return bad(err, name, d, "'signed' must be an object");
    if (only_keys(err, name, sg, "signed", sk))
        return AP_ERR_INPUT;
    v = json_object_get(sg, "version");
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return bad(err, name, sg, "'signed.version' must be an integer of at least 1");
    t->version = (uint64_t)json_integer_value(v);
    v = json_object_get(sg, "expires");
    if (!json_is_string(v) || !date_ok(json_string_value(v)))
        return bad(err, name, sg, "'signed.expires' must be a date YYYY-MM-DDTHH:MM:SSZ (UTC)");
    snprintf(t->expires, sizeof t->expires, "%s", json_string_value(v));

    keys = json_object_get(sg, "keys");
    if (!json_is_array(keys) || json_array_size(keys) > AP_TRUST_MAX_KEYS)
        return bad(err, name, sg, "'signed.keys' must be an array of at most %d keys",
                   AP_TRUST_MAX_KEYS);
    t->keys = calloc(json_array_size(keys) + 1, sizeof *t->keys);
    if (!t->keys)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    json_array_foreach(keys, i, v) {
        ap_trust_key *k = &t->keys[t->n_keys];
        const char *id, *nm, *pk;
        char hex[17];
        ap_error e2;
        if (!json_is_object(v))
            return bad(err, name, v, "'signed.keys[%zu]' must be an object", i);
        if (only_keys(err, name, v, "signed.keys[]", kk))
            return AP_ERR_INPUT;
        id = json_string_value(json_object_get(v, "id"));
        nm = json_string_value(json_object_get(v, "name"));
        pk = json_string_value(json_object_get(v, "public_key"));
        if (!is_keyid(id))
            return bad(err, name, v, "'signed.keys[%zu].id' must be 16 uppercase hex digits", i);
        if (!nm || !name_ok(nm))
            return bad(err, name, v, "'signed.keys[%zu].name' must be 1 to %d letters, digits, "
                       "spaces or '-_.@'", i, AP_TRUST_NAME_MAX);
        if (!pk || strlen(pk) > 128)
            return bad(err, name, v, "'signed.keys[%zu].public_key' must be a minisign public key "
                       "line (base64)", i);
        ap_error_clear(&e2);
        if (ap_pubkey_parse(name, pk, strlen(pk), &k->pk, &e2) != AP_OK)
            return bad(err, name, v, "'signed.keys[%zu].public_key': %s", i, e2.msg);
        ap_keyid_hex(k->pk.keyid, hex);
        if (strcmp(hex, id) != 0)
            return bad(err, name, v, "'signed.keys[%zu]': id %s does not match the public key's "
                       "id %s", i, id, hex);
        if (find_hex(t, id))
            return bad(err, name, v, "'signed.keys': key %s listed twice", id);
        for (size_t j = 0; j < t->n_keys; j++)
            if (!strcmp(t->keys[j].name, nm))
                return bad(err, name, v, "'signed.keys': name '%s' used twice", nm);
        snprintf(k->id, sizeof k->id, "%s", id);
        snprintf(k->name, sizeof k->name, "%s", nm);
        snprintf(k->pk.source, sizeof k->pk.source, "%s", nm);
        t->n_keys++;
    }
    roles = json_object_get(sg, "roles");
    if (!json_is_object(roles))
        return bad(err, name, sg, "'signed.roles' must be an object with 'bundles' and 'root'");
    if (only_keys(err, name, roles, "signed.roles", rk) ||
        parse_role(t, name, roles, "bundles", AP_TRUST_ROLE_BUNDLES, &t->threshold_bundles, err) ||
        parse_role(t, name, roles, "root", AP_TRUST_ROLE_ROOT, &t->threshold_root, err))
        return AP_ERR_INPUT;
    rev = json_object_get(sg, "revoked");
    if (!json_is_array(rev) || json_array_size(rev) > AP_TRUST_MAX_REVOKED)
        return bad(err, name, sg, "'signed.revoked' must be an array of at most %d key ids",
                   AP_TRUST_MAX_REVOKED);
    t->revoked = calloc(json_array_size(rev) + 1, sizeof *t->revoked);
    if (!t->revoked)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    json_array_foreach(rev, i, v) {
        ap_trust_key *k;
        if (!json_is_string(v) || !is_keyid(json_string_value(v)))
            return bad(err, name, v, "'signed.revoked[%zu]' is not a key id", i);
        for (size_t j = 0; j < t->n_revoked; j++)
            if (!strcmp(t->revoked[j], json_string_value(v)))
                return bad(err, name, v, "'signed.revoked': key %s listed twice",
                           json_string_value(v));
        snprintf(t->revoked[t->n_revoked++], 17, "%s", json_string_value(v));
        if ((k = (ap_trust_key *)find_hex(t, json_string_value(v))))
            k->revoked = 1;
    }
    sigs = json_object_get(d, "signatures");
    if (!json_is_array(sigs) || json_array_size(sigs) > AP_TRUST_MAX_SIGS)
        return bad(err, name, d, "'signatures' must be an array of at most %d minisign signatures",
                   AP_TRUST_MAX_SIGS);
    t->sigs = calloc(json_array_size(sigs) + 1, sizeof *t->sigs);
    t->sig_texts = calloc(json_array_size(sigs) + 1, sizeof *t->sig_texts);
    if (!t->sigs || !t->sig_texts)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    json_array_foreach(sigs, i, v) {
        ap_error e2;
        const char *s = json_string_value(v);
        ap_error_clear(&e2);
        if (!s || json_string_length(v) > AP_KEYFILE_MAX)
            return bad(err, name, v, "'signatures[%zu]' must be a minisign signature (text)", i);
        if (ap_signature_parse(name, s, json_string_length(v), &t->sigs[t->n_sigs], &e2) != AP_OK)
            return bad(err, name, v, "'signatures[%zu]': %s", i, e2.msg);
        if (!(t->sig_texts[t->n_sigs] = strdup(s)))
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        t->n_sigs++;
    }
    return canon(t, err);
}

static int reparse(ap_trust *t, ap_error *err)
{
    /* after an edit of t->doc: rebuild the structures */
    ap_trust *n = calloc(1, sizeof *n);
    int rc;
    if (!n)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    n->doc = json_incref(t->doc);
    snprintf(n->source, sizeof n->source, "%s", t->source);
    if ((rc = parse_doc(n, t->source, err)) != AP_OK) {
        ap_trust_free(n);
        return rc;
    }
    memcpy(n->sha256, t->sha256, sizeof n->sha256);
    n->raw = t->raw; /* stale after an edit: the edited file is saved by dump */
    t->raw = NULL;
    n->raw_len = t->raw_len;
    {
        ap_trust tmp = *t;
        *t = *n;
        *n = tmp;
    }
    ap_trust_free(n);
    return AP_OK;
}

int ap_trust_parse(const char *name, const char *buf, size_t len, ap_trust **out, ap_error *err)
{
    json_error_t je;
    ap_trust *t;
    int rc;

    *out = NULL;
    if (len > AP_TRUST_MAX_BYTES)
        return ap_error_set_at(err, AP_ERR_INPUT, name, 0, 0, "trust file is larger than %u bytes",
                               (unsigned)AP_TRUST_MAX_BYTES);
    if (!(t = calloc(1, sizeof *t)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    snprintf(t->source, sizeof t->source, "%s", name ? name : "trust file");
    t->doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!t->doc) {
        ap_trust_free(t);
        return ap_error_set_at(err, AP_ERR_INPUT, name, (unsigned)(je.line > 0 ? je.line : 0),
                               (unsigned)(je.column > 0 ? je.column : 0), "invalid JSON: %s",
                               je.text);
    }
    if ((rc = parse_doc(t, t->source, err)) != AP_OK) {
        ap_trust_free(t);
        return rc;
    }
    if (!(t->raw = malloc(len + 1))) {
        ap_trust_free(t);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    memcpy(t->raw, buf, len);
    t->raw[len] = '\0';
    t->raw_len = len;
    if (ap_sha256_buffer(buf, len, t->sha256) != AP_OK) {
        ap_trust_free(t);
        return ap_error_set(err, AP_ERR_INTERNAL, "sha-256 failed");
    }
    *out = t;
    return AP_OK;
}

int ap_trust_load(const char *path, ap_trust **out, ap_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = ap_read_file(path, AP_TRUST_MAX_BYTES, &buf, &len, err);
    *out = NULL;
    if (rc != AP_OK)
        return rc;
    rc = ap_trust_parse(path, buf, len, out, err);
    free(buf);
    return rc;
}

int ap_trust_new(uint64_t version, const char *expires, size_t k, size_t m, ap_trust **out,
                 ap_error *err)
{
    ap_trust *t;
    int rc;
    *out = NULL;
    if (!date_ok(expires))
        return ap_error_set(err, AP_ERR_INPUT, "expiry date '%s' is not YYYY-MM-DD or "
                                               "YYYY-MM-DDTHH:MM:SSZ", expires);
    if (!(t = calloc(1, sizeof *t)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    snprintf(t->source, sizeof t->source, "trust file");
    t->doc = json_pack("{s:s, s:{s:I, s:s, s:[], s:{s:{s:I, s:[]}, s:{s:I, s:[]}}, s:[]}, s:[]}",
                       "format", AP_TRUST_FORMAT, "signed", "version", (json_int_t)version,
                       "expires", expires, "keys", "roles", "bundles", "threshold", (json_int_t)k,
                       "keys", "root", "threshold", (json_int_t)m, "keys", "revoked",
                       "signatures");
    if (!t->doc) {
        ap_trust_free(t);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if ((rc = parse_doc(t, t->source, err)) != AP_OK) {
        ap_trust_free(t);
        return rc;
    }
    *out = t;
    return AP_OK;
}

static void drop_sigs(ap_trust *t)
{
    json_object_set_new(t->doc, "signatures", json_array());
}

int ap_trust_add_key(ap_trust *t, const ap_pubkey *pk, const char *name, unsigned roles,
                     ap_error *err)
{
    json_t *sg = json_object_get(t->doc, "signed"), *keys = json_object_get(sg, "keys");
    json_t *r = json_object_get(sg, "roles");
    char hex[17], b64[128];
    uint8_t raw[42];
    const ap_trust_key *k;

    ap_keyid_hex(pk->keyid, hex);
    if (!name_ok(name))
        return ap_error_set(err, AP_ERR_INPUT, "key name '%s': 1 to %d letters, digits, spaces or "
                                               "'-_.@'", name, AP_TRUST_NAME_MAX);
    k = find_hex(t, hex);
    if (k && strcmp(k->name, name) != 0)
        return ap_error_set(err, AP_ERR_INPUT, "key %s is already in the file as '%s'", hex, k->name);
    if (!k) {
        for (size_t i = 0; i < t->n_keys; i++)
            if (!strcmp(t->keys[i].name, name))
                return ap_error_set(err, AP_ERR_INPUT, "name '%s' is already used by key %s", name,
                                    t->keys[i].id);
        memcpy(raw, "Ed", 2);
        memcpy(raw + 2, pk->keyid, AP_KEYID_LEN);
        memcpy(raw + 2 + AP_KEYID_LEN, pk->pk, AP_PK_LEN);
        sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
        json_array_append_new(keys, json_pack("{s:s,s:s,s:s}", "id", hex, "name", name,
                                              "public_key", b64));
    }
    if ((roles & AP_TRUST_ROLE_BUNDLES) && !(k && (k->roles & AP_TRUST_ROLE_BUNDLES)))
        json_array_append_new(json_object_get(json_object_get(r, "bundles"), "keys"),
                              json_string(hex));
    if ((roles & AP_TRUST_ROLE_ROOT) && !(k && (k->roles & AP_TRUST_ROLE_ROOT)))
        json_array_append_new(json_object_get(json_object_get(r, "root"), "keys"), json_string(hex));
    drop_sigs(t);
    return reparse(t, err);
}

int ap_trust_revoke(ap_trust *t, const char *keyid, ap_error *err)
{
    json_t *rev = json_object_get(json_object_get(t->doc, "signed"), "revoked");
    if (!is_keyid(keyid))
        return ap_error_set(err, AP_ERR_INPUT, "'%s' is not a key id (16 uppercase hex digits)",
                            keyid);
    for (size_t i = 0; i < t->n_revoked; i++)
        if (!strcmp(t->revoked[i], keyid))
            return ap_error_set(err, AP_ERR_INPUT, "key %s is already revoked", keyid);
    json_array_append_new(rev, json_string(keyid));
    drop_sigs(t);
    return reparse(t, err);
}

int ap_trust_set(ap_trust *t, uint64_t version, const char *expires, size_t k, size_t m,
                 ap_error *err)
{
    json_t *sg = json_object_get(t->doc, "signed"), *r = json_object_get(sg, "roles");
    if (expires && !date_ok(expires))
        return ap_error_set(err, AP_ERR_INPUT, "expiry date '%s' is not YYYY-MM-DDTHH:MM:SSZ",
                            expires);
    if (version)
        json_object_set_new(sg, "version", json_integer((json_int_t)version));
    if (expires)
        json_object_set_new(sg, "expires", json_string(expires));
    if (k)
        json_object_set_new(json_object_get(r, "bundles"), "threshold", json_integer((json_int_t)k));
    if (m)
        json_object_set_new(json_object_get(r, "root"), "threshold", json_integer((json_int_t)m));
    drop_sigs(t);
    return reparse(t, err);
}

int ap_trust_sign(ap_trust *t, const ap_seckey *sk, ap_error *err)
{
    uint8_t kid[AP_KEYID_LEN];
    char comment[128], *text = NULL;
    json_t *sigs = json_object_get(t->doc, "signatures");
    size_t len = 0;
    int rc;

    ap_seckey_keyid(sk, kid);
    snprintf(comment, sizeof comment, "file:%s\tversion:%llu\texpires:%s", AP_TRUST_ENTRY,
             (unsigned long long)t->version, t->expires);
    if ((rc = ap_sign(sk, t->signed_bytes, t->signed_len, comment, &text, &len, err)) != AP_OK)
        return rc;
    for (size_t i = t->n_sigs; i-- > 0;)
        if (!memcmp(t->sigs[i].keyid, kid, AP_KEYID_LEN))
            json_array_remove(sigs, i);
    json_array_append_new(sigs, json_string(text));
    free(text);
    return reparse(t, err);
}

int ap_trust_dump(const ap_trust *t, char **buf, size_t *len, ap_error *err)
{
    char *s = json_dumps(t->doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    size_t n;
    if (!s)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    n = strlen(s);
    *buf = malloc(n + 2);
    if (!*buf) {
        free(s);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    memcpy(*buf, s, n);
    free(s);
    (*buf)[n] = '\n';
    (*buf)[n + 1] = '\0';
    *len = n + 1;
    return AP_OK;
}

int ap_trust_write_bytes(const char *path, const void *buf, size_t len, ap_error *err)
{
    char *dir = ap_path_dirname(path), *tmp = NULL;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *p = buf;
    int fd = -1, rc = AP_OK;

    if (!dir || asprintf(&tmp, "%s/.%s.XXXXXX", dir, base) < 0) {
        free(dir);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot create a temporary file in", dir);
        free(tmp);
        tmp = NULL;
        goto out;
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = ap_error_errno(err, AP_ERR_IO, w < 0 ? errno : EIO, "cannot write", tmp);
            goto out;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", path);
        goto out;
    }
    free(tmp);
    tmp = NULL;
    rc = ap_fsync_dir_of(path, err);
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    return rc;
}

int ap_trust_save(const ap_trust *t, const char *path, ap_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = ap_trust_dump(t, &buf, &len, err);
    if (rc == AP_OK)
        rc = ap_trust_write_bytes(path, buf, len, err);
    free(buf);
    return rc;
}

const ap_trust_key *ap_trust_find(const ap_trust *t, const uint8_t keyid[AP_KEYID_LEN])
{
    char hex[17];
    ap_keyid_hex(keyid, hex);
    return find_hex(t, hex);
}

int ap_trust_keyring(const ap_trust *t, ap_keyring *kr, ap_error *err)
{
    kr->keys = calloc(t->n_keys + 1, sizeof *kr->keys);
    kr->n = 0;
    if (!kr->keys)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < t->n_keys; i++)
        kr->keys[kr->n++] = t->keys[i].pk;
    return AP_OK;
}

int ap_trust_counts(const ap_trust_key *k, unsigned role)
{
    return k && !k->revoked && (k->roles & role);
}

int ap_trust_expired(const ap_trust *t)
{
    return ap_rfc3339_past(t->expires);
}

int ap_trust_count_sigs(const ap_trust *t, unsigned role, const ap_signature *sigs, size_t n,
                        const void *msg, size_t len, size_t *found, char *desc, size_t desc_len,
                        ap_error *err)
{
    ap_keyring kr = {0};
    size_t count = 0, w = 0;
    int rc;
    const char *rname = role == AP_TRUST_ROLE_ROOT ? "root" : "bundles";

    *found = 0;
    if (desc && desc_len)
        desc[0] = '\0';
    if ((rc = ap_trust_keyring(t, &kr, err)) != AP_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const ap_trust_key *k = ap_trust_find(t, sigs[i].keyid);
        const char *why = NULL;
        char hex[17];
        int dup = 0;
        ap_keyid_hex(sigs[i].keyid, hex);
        if (!k) {
            why = "unknown key";
        } else {
            if (ap_signature_verify(&sigs[i], &kr, msg, len, NULL, err) != AP_OK) {
                char m[AP_ERROR_MSG_MAX];
                snprintf(m, sizeof m, "%s", err->msg);
                ap_keyring_release(&kr);
                return ap_error_set(err, AP_ERR_CHECK, "signature %zu by '%s' (%s) does not verify "
                                                       "over this file: %s", i + 1, k->name, hex, m);
            }
            for (size_t j = 0; j < i; j++)
                if (!memcmp(sigs[j].keyid, sigs[i].keyid, AP_KEYID_LEN))
                    dup = 1;
            if (dup)
                why = "duplicate";
            else if (k->revoked)
                why = "revoked";
            else if (!(k->roles & role))
                why = role == AP_TRUST_ROLE_ROOT ? "not in role 'root'" : "not in role 'bundles'";
            else
                count++;
        }
        if (desc && w < desc_len) {
            int m = snprintf(desc + w, desc_len - w, "%s%s%s%s (%s)", w ? ", " : "",
                             k ? k->name : "", k ? " " : "", hex, why ? why : "counted");
            if (m > 0)
                w += (size_t)m;
        }
    }
    (void)rname;
    ap_keyring_release(&kr);
    *found = count;
    return AP_OK;
}

int ap_trust_check_self(const ap_trust *t, ap_error *err)
{
    size_t found = 0;
    char desc[1024];
    int rc, past = ap_trust_expired(t);
    if (past != 0)
        return ap_error_set_at(err, AP_ERR_CHECK, t->source, 0, 0,
                               "trust file version %llu expired at %s", (unsigned long long)t->version,
                               t->expires);
    rc = ap_trust_count_sigs(t, AP_TRUST_ROLE_ROOT, t->sigs, t->n_sigs, t->signed_bytes,
                             t->signed_len, &found, desc, sizeof desc, err);
    if (rc != AP_OK) {
        ap_error_prefix(err, "trust file '%s'", t->source);
        return rc;
    }
    if (found < t->threshold_root)
        return ap_error_set_at(err, AP_ERR_CHECK, t->source, 0, 0,
                               "trust file version %llu: %zu valid signature%s of its own 'root' "
                               "role, %zu needed; signed by: %s", (unsigned long long)t->version,
                               found, found == 1 ? "" : "s", t->threshold_root,
                               desc[0] ? desc : "nobody");
    return AP_OK;
}

int ap_trust_check_rotation(const ap_trust *cur, const ap_trust *next, ap_error *err)
{
    size_t found = 0;
    char desc[1024];
    int rc;
    if (next->version <= cur->version)
        return ap_error_set_at(err, AP_ERR_CHECK, next->source, 0, 0,
                               "trust file version %llu is not newer than the installed version %llu "
                               "(a rollback of the trust file is refused)",
                               (unsigned long long)next->version, (unsigned long long)cur->version);
    if (ap_trust_expired(next) != 0)
        return ap_error_set_at(err, AP_ERR_CHECK, next->source, 0, 0,
                               "trust file version %llu expired at %s",
                               (unsigned long long)next->version, next->expires);
    rc = ap_trust_count_sigs(cur, AP_TRUST_ROLE_ROOT, next->sigs, next->n_sigs, next->signed_bytes,
                             next->signed_len, &found, desc, sizeof desc, err);
    if (rc != AP_OK) {
        ap_error_prefix(err, "trust file '%s'", next->source);
        return rc;
    }
    if (found < cur->threshold_root)
        return ap_error_set_at(err, AP_ERR_CHECK, next->source, 0, 0,
                               "trust file version %llu: %zu valid signature%s by root keys of the "
                               "installed version %llu, %zu needed; signed by: %s",
                               (unsigned long long)next->version, found, found == 1 ? "" : "s",
                               (unsigned long long)cur->version, cur->threshold_root,
                               desc[0] ? desc : "nobody");
    return ap_trust_check_self(next, err);
}

json_t *ap_trust_describe(const ap_trust *t)
{
    json_t *o = json_object(), *keys = json_array(), *sigs = json_array(), *rev = json_array();
    ap_keyring kr = {0};
    ap_error e;
    size_t found = 0;
    char hex[AP_SHA256_HEX_LEN + 1];
    ap_error_clear(&e);
    if (!o || !keys || !sigs || !rev) {
        json_decref(o);
        json_decref(keys);
        json_decref(sigs);
        json_decref(rev);
        return NULL;
    }
    json_object_set_new(o, "file", json_string(t->source));
    json_object_set_new(o, "version", json_integer((json_int_t)t->version));
    json_object_set_new(o, "expires", json_string(t->expires));
    json_object_set_new(o, "expired", json_boolean(ap_trust_expired(t) != 0));
    ap_hex_encode(t->sha256, sizeof t->sha256, hex);
    json_object_set_new(o, "sha256", json_string(hex));
    for (size_t i = 0; i < t->n_keys; i++) {
        const ap_trust_key *k = &t->keys[i];
        json_t *roles = json_array();
        if (k->roles & AP_TRUST_ROLE_BUNDLES)
            json_array_append_new(roles, json_string("bundles"));
        if (k->roles & AP_TRUST_ROLE_ROOT)
            json_array_append_new(roles, json_string("root"));
        json_array_append_new(keys, json_pack("{s:s,s:s,s:o,s:b}", "id", k->id, "name", k->name,
                                              "roles", roles, "revoked", k->revoked));
    }
    json_object_set_new(o, "keys", keys);
    json_object_set_new(o, "thresholds", json_pack("{s:I,s:I}", "bundles",
                                                   (json_int_t)t->threshold_bundles, "root",
                                                   (json_int_t)t->threshold_root));
    for (size_t i = 0; i < t->n_revoked; i++)
        json_array_append_new(rev, json_string(t->revoked[i]));
    json_object_set_new(o, "revoked", rev);
    if (ap_trust_keyring(t, &kr, &e) == AP_OK) {
        for (size_t i = 0; i < t->n_sigs; i++) {
            const ap_trust_key *k = ap_trust_find(t, t->sigs[i].keyid);
            char kid[17];
            const char *status = "unknown key";
            ap_keyid_hex(t->sigs[i].keyid, kid);
            if (k) {
                ap_error e2;
                ap_error_clear(&e2);
                if (ap_signature_verify(&t->sigs[i], &kr, t->signed_bytes, t->signed_len, NULL,
                                        &e2) != AP_OK)
                    status = "invalid";
                else if (k->revoked)
                    status = "revoked";
                else if (!(k->roles & AP_TRUST_ROLE_ROOT))
                    status = "not a root key";
                else
                    status = "valid";
            }
            json_array_append_new(sigs, json_pack("{s:s,s:s?,s:s,s:s}", "key_id", kid, "key",
                                                  k ? k->name : NULL, "status", status,
                                                  "trusted_comment", t->sigs[i].trusted_comment));
        }
        ap_keyring_release(&kr);
    }
    json_object_set_new(o, "signatures", sigs);
    if (ap_trust_count_sigs(t, AP_TRUST_ROLE_ROOT, t->sigs, t->n_sigs, t->signed_bytes,
                            t->signed_len, &found, NULL, 0, &e) != AP_OK)
        found = 0;
    json_object_set_new(o, "root_signatures", json_integer((json_int_t)found));
    ap_error_clear(&e);
    json_object_set_new(o, "valid", json_boolean(ap_trust_check_self(t, &e) == AP_OK));
    if (e.status != AP_OK)
        json_object_set_new(o, "problem", json_string(e.msg));
    return o;
}
