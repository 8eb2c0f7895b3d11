/*
 * mkcosign.c - hostile and odd co-signature heads for tests/cli/test_cosign.sh.
 *
 * usage: mkcosign BUNDLE OUTDIR TRUSTED.key OTHER.key
 *
 * BUNDLE is a valid bundle signed by TRUSTED.key. Writes, with real
 * minisign signatures (src/sign.h) and the head writer (src/trust/cosign.h):
 *   OUTDIR/dup.tar         signed by TRUSTED twice (the build entry and a
 *                          co-signature entry): counts once
 *   OUTDIR/too-many.tar    17 signature entries (16 are allowed)
 *   OUTDIR/oversized.tar   a co-signature entry of 5000 bytes
 *   OUTDIR/other-lock.tar  a co-signature by OTHER over a different lock
 *   OUTDIR/bad-name.tar    a co-signature entry whose name names another key
 *   OUTDIR/many-N.pub, many-N.key  the 16 throw-away keys of too-many.tar
 * In the hostile ones (all but dup.tar) the lock itself is replaced by bytes
 * that are not JSON, re-signed by TRUSTED: a verifier that parsed the lock
 * before refusing the signatures would report a "lock" fault instead of
 * "signature".
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lock.h"
#include "sign.h"
#include "trust/cosign.h"

static void die(const char *what, const ap_error *e)
{
    fprintf(stderr, "mkcosign: %s: %s\n", what, e ? e->msg : "");
    exit(1);
}

static char *sign(const ap_seckey *sk, const char *msg, size_t len, size_t *out_len)
{
    char *t = NULL;
    ap_error e;
    ap_error_clear(&e);
    if (ap_sign(sk, msg, len, "file:airpack.lock.json\tname:hostile", &t, out_len, &e) != AP_OK)
        die("sign", &e);
    return t;
}

static void add(ap_bundle_head *h, const char *name, char *text, size_t len)
{
    snprintf(h->sigs[h->n_sigs].name, sizeof h->sigs[0].name, "%s", name);
    h->sigs[h->n_sigs].text = text;
    h->sigs[h->n_sigs].len = len;
    h->n_sigs++;
}

/* The head of in with a garbage lock signed by sk as the build signature. */
static void garbage_head(const ap_bundle_head *in, ap_bundle_head *h, const ap_seckey *sk)
{
    static const char junk[] = "this is not a lock {";
    memset(h, 0, sizeof *h);
    h->compressed = in->compressed;
    h->payload_off = in->payload_off;
    h->mtime = in->mtime;
    h->lock = strdup(junk);
    h->lock_len = strlen(junk);
    {
        size_t n;
        char *t = sign(sk, h->lock, h->lock_len, &n);
        add(h, AP_LOCK_SIG_NAME, t, n);
    }
}

static void out(const char *bundle, const char *dir, const char *name, ap_bundle_head *h)
{
    char path[4096];
    ap_error e;
    ap_error_clear(&e);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (ap_bundle_head_write(bundle, path, h, &e) != AP_OK)
        die(path, &e);
    ap_bundle_head_release(h);
}

int main(int argc, char **argv)
{
    ap_bundle_head in, h;
    ap_seckey *tk = NULL, *ok = NULL;
    ap_error e;
    uint8_t kid[AP_KEYID_LEN];
    char name[AP_SIG_ENTRY_NAME_MAX];
    size_t n;

    if (argc != 5) {
        fprintf(stderr, "usage: mkcosign BUNDLE OUTDIR TRUSTED.key OTHER.key\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    ap_error_clear(&e);
    if (ap_seckey_load(argv[3], NULL, &tk, &e) != AP_OK || ap_seckey_load(argv[4], NULL, &ok, &e) != AP_OK)
        die("key", &e);
    if (ap_bundle_head_read(argv[1], &in, &e) != AP_OK)
        die(argv[1], &e);

    /* dup: the same key twice */
    memset(&h, 0, sizeof h);
    h.payload_off = in.payload_off;
    h.mtime = in.mtime;
    h.lock = malloc(in.lock_len + 1);
    memcpy(h.lock, in.lock, in.lock_len + 1);
    h.lock_len = in.lock_len;
    add(&h, AP_LOCK_SIG_NAME, strdup(in.sigs[0].text), in.sigs[0].len);
    ap_seckey_keyid(tk, kid);
    ap_sig_entry_name(kid, name);
    {
        char *t = sign(tk, h.lock, h.lock_len, &n);
        add(&h, name, t, n);
    }
    out(argv[1], argv[2], "dup.tar", &h);

    /* too many: 1 + 16 co-signatures by fresh keys (written beside the output) */
    garbage_head(&in, &h, tk);
    {
        for (int i = 0; i < 16; i++) {
            char pub[4096], sec[4096];
            ap_seckey *fk = NULL;
            snprintf(pub, sizeof pub, "%s/many-%d.pub", argv[2], i);
            snprintf(sec, sizeof sec, "%s/many-%d.key", argv[2], i);
            if (ap_keygen(pub, sec, NULL, 1, &e) != AP_OK || ap_seckey_load(sec, NULL, &fk, &e) != AP_OK)
                die("keygen", &e);
            ap_seckey_keyid(fk, kid);
            ap_sig_entry_name(kid, name);
            {
                char *t = sign(fk, h.lock, h.lock_len, &n);
                add(&h, name, t, n);
            }
            ap_seckey_free(fk);
        }
        ap_bundle_head_sort(&h);
    }
    out(argv[1], argv[2], "too-many.tar", &h);

    /* oversized */
    garbage_head(&in, &h, tk);
    ap_seckey_keyid(ok, kid);
    ap_sig_entry_name(kid, name);
    {
        char *t = calloc(1, 5001);
        memset(t, 'A', 5000);
        add(&h, name, t, 5000);
    }
    out(argv[1], argv[2], "oversized.tar", &h);

    /* other lock: OTHER signed different bytes */
    garbage_head(&in, &h, tk);
    {
        char *t = sign(ok, in.lock, in.lock_len, &n); /* the real lock, not this one */
        add(&h, name, t, n);
    }
    out(argv[1], argv[2], "other-lock.tar", &h);

    /* bad name: OTHER's signature under TRUSTED's name */
    garbage_head(&in, &h, tk);
    {
        uint8_t tkid[AP_KEYID_LEN];
        char tname[AP_SIG_ENTRY_NAME_MAX];
        ap_seckey_keyid(tk, tkid);
        ap_sig_entry_name(tkid, tname);
        char *t = sign(ok, h.lock, h.lock_len, &n);
        add(&h, tname, t, n);
    }
    out(argv[1], argv[2], "bad-name.tar", &h);

    ap_bundle_head_release(&in);
    ap_seckey_free(tk);
    ap_seckey_free(ok);
    return 0;
}
