/*
 * sign.c - `airpack sign`: add a co-signature to a bundle without
 * rebuilding it (src/trust/cosign.h). The new signature is a stock minisign
 * signature over the same lock bytes, stored as the entry
 * airpack.lock.json.<KEYID>.minisig; only the head of the bundle is
 * rewritten and the payload is copied once (cloned where the filesystem can).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_write.h"
#include "cmd.h"
#include "common.h"
#include "lock.h"
#include "sign.h"
#include "parts.h"
#include "trust/cosign.h"
#include "trust/cosign_parts.h"

const char cmd_sign_usage[] =
"usage: airpack sign BUNDLE --secret-key F [--output OUT] [--password-file F] [--quiet]\n"
    "\n"
    "Add a signature over the bundle's lock (a co-signature, for sites that\n"
    "require k of n signers: docs/trust.md). The bundle is not rebuilt: only its\n"
    "head changes (a new entry airpack.lock.json.<KEYID>.minisig); the payload\n"
    "is copied once, or cloned where the filesystem shares extents. Without\n"
    "--output the bundle is replaced atomically. Nothing is verified: sign only\n"
    "bundles you have verified or built.\n"
    "\n"
    "A split bundle (BUNDLE.parts or BUNDLE.001) is signed in place: part 1 grows\n"
    "into the signature reserve that build --volume-size and split leave, is\n"
    "written beside itself and renamed over; the other parts are not touched;\n"
    "the parts index is rewritten and signed with the signer's key. Refused when\n"
    "the reserve is full or the parts have none (join, sign, split again).\n"
    "\n"
    "options:\n"
    "  -s, --secret-key F    the signer's minisign secret key\n"
    "  -o, --output OUT      write the signed bundle to OUT (default: replace BUNDLE)\n"
    "      --password-file F the secret key's password (else AIRPACK_PASSWORD, else a prompt)\n"
    "  -q, --quiet           print nothing on success\n"
    "\n"
    "exit status: 0 signed, 1 not a bundle, already signed by this key, or no\n"
    "room in the signature reserve of a split bundle,\n"
    "2 bad usage or unreadable key\n";

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_sign_options[] = {
    {"secret-key", required_argument, NULL, 's'},
    {"output", required_argument, NULL, 'o'},
    {"password-file", required_argument, NULL, 'w'},
    {"quiet", no_argument, NULL, 'q'},
    {NULL, 0, NULL, 0},
};

int cmd_sign(int argc, char **argv)
{
    const char *seckey = NULL, *output = NULL, *pwfile = NULL, *bundle;
    int c, rc = 2, quiet = 0, split = 0;
    ap_parts *idx = NULL;
    char *ipath = NULL, *part1 = NULL;
    char *text = NULL;
    size_t text_len = 0;
    ap_seckey *sk = NULL;
    ap_bundle_head h;
    ap_lock *lock = NULL;
    ap_error err;
    uint8_t kid[AP_KEYID_LEN];
    char hex[17], comment[AP_TRUSTED_COMMENT_MAX + 1];

    memset(&h, 0, sizeof h);
    ap_error_clear(&err);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:o:q", cmd_sign_options, NULL)) != -1) {
        switch (c) {
        case 's': seckey = optarg; break;
        case 'o': output = optarg; break;
        case 'w': pwfile = optarg; break;
        case 'q': quiet = 1; break;
        case ':':
            return cli_usage_error("sign", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("sign", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("sign", "missing BUNDLE");
    bundle = argv[optind++];
    if (optind < argc)
        return cli_usage_error("sign", "unexpected argument '%s'", argv[optind]);
    if (!seckey)
        return cli_usage_error("sign", "missing --secret-key");
    if (ap_parts_is_split_path(bundle)) {
        if (output)
            return cli_usage_error("sign", "--output does not apply to a split bundle: only "
                                           "part 1 and the parts index are rewritten in place");
        split = 1;
    }
    if (!output)
        output = bundle;

    if ((rc = cli_load_seckey(seckey, pwfile, &sk)) != 0)
        return rc;

    if (split && (rc = ap_parts_cosign_open(bundle, &idx, &ipath, &part1, &err)) != AP_OK)
        goto fail;
    if ((rc = ap_bundle_head_read(split ? part1 : bundle, &h, &err)) != AP_OK)
        goto fail;
    if (h.n_sigs == 0) {
        rc = ap_error_set_at(&err, AP_ERR_CHECK, bundle, 0, 0,
                             "no signature entry after the lock: not a signed bundle");
        goto fail;
    }
    if ((rc = ap_lock_parse(AP_LOCK_NAME, h.lock, h.lock_len, &lock, &err)) != AP_OK) {
        ap_error_prefix(&err, "bundle '%s'", bundle);
        err.status = AP_ERR_CHECK;
        rc = AP_ERR_CHECK;
        goto fail;
    }
    ap_seckey_keyid(sk, kid);
    ap_keyid_hex(kid, hex);
    for (size_t i = 0; i < h.n_sigs; i++) {
        ap_signature s;
        ap_error e2;
        ap_error_clear(&e2);
        if (ap_signature_parse(h.sigs[i].name, h.sigs[i].text, h.sigs[i].len, &s, &e2) != AP_OK) {
            rc = ap_error_set_at(&err, AP_ERR_CHECK, bundle, 0, 0, "entry '%s': %s",
                                 h.sigs[i].name, e2.msg);
            goto fail;
        }
        if (!memcmp(s.keyid, kid, AP_KEYID_LEN)) {
            rc = ap_error_set_at(&err, AP_ERR_CHECK, bundle, 0, 0,
                                 "already signed by key %s (entry '%s')", hex, h.sigs[i].name);
            goto fail;
        }
    }
    if (h.n_sigs >= AP_BUNDLE_MAX_SIGS) {
        rc = ap_error_set_at(&err, AP_ERR_CHECK, bundle, 0, 0,
                             "the bundle already holds %d signatures, the most allowed",
                             AP_BUNDLE_MAX_SIGS);
        goto fail;
    }
    if (ap_lock_trusted_comment(lock->name, lock->version, lock->sequence, comment,
                                sizeof comment) != 0) {
        rc = ap_error_set(&err, AP_ERR_INPUT, "trusted comment too long");
        goto fail;
    }
    if ((rc = ap_sign(sk, h.lock, h.lock_len, comment, &text, &text_len, &err)) != AP_OK)
        goto fail;
    ap_sig_entry_name(kid, h.sigs[h.n_sigs].name);
    h.sigs[h.n_sigs].text = text;
    h.sigs[h.n_sigs].len = text_len;
    h.n_sigs++;
    text = NULL;
    ap_bundle_head_sort(&h);
    if (split) {
        uint64_t grown = 0;
        if ((rc = ap_parts_cosign_write(ipath, idx, part1, &h, sk, &grown, &err)) != AP_OK)
            goto fail;
        if (!quiet)
            printf("signed '%s' with key %s: %zu signatures; rewrote '%s' (+%llu bytes, %llu of "
                   "%llu) and the parts index '%s' (signed by key %s)\n",
                   bundle, hex, h.n_sigs, part1, (unsigned long long)grown,
                   (unsigned long long)idx->parts[0].size,
                   (unsigned long long)idx->volume_size, ipath, hex);
    } else {
        if ((rc = ap_bundle_head_write(bundle, output, &h, &err)) != AP_OK)
            goto fail;
        if (!quiet)
            printf("signed '%s' with key %s: %zu signatures\n", output, hex, h.n_sigs);
    }
    rc = 0;
    goto out;
fail:
    rc = cli_report(&err);
out:
    free(text);
    ap_lock_free(lock);
    ap_bundle_head_release(&h);
    ap_seckey_free(sk);
    ap_parts_free(idx);
    free(ipath);
    free(part1);
    return rc;
}
