/*
 * verify.c - `airpack verify`: check a bundle's signature and every hash
 * in one streaming pass (src/bundle_read.h does the work).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_read.h"
#include "cmd.h"
#include "common.h"
#include "parts.h"
#include "sign.h"
#include "trust/trust.h"
#include "util.h"

const char cmd_verify_usage[] =
"usage: airpack verify BUNDLE|- (--public-key F [--public-key F]... | --trust FILE)\n"
    "                      [--format text|json]\n"
    "       airpack verify --parts NAME.parts (--public-key F... | --trust FILE)\n"
    "                      [--format text|json]\n"
    "\n"
    "Check the signature and every hash of a bundle in one streaming pass, in\n"
    "constant memory, from a file or from standard input ('-': a pipe, a tape).\n"
    "The lock's signature is checked against the trusted keys before the lock is\n"
    "read; then every entry must be the lock's next artifact: a regular file with\n"
    "a safe path, the lock's mode, size and SHA-256. Plain or zstd-compressed tar.\n"
    "A split bundle (build --volume-size, split) is given as its parts index\n"
    "NAME.parts or its first part NAME.001: its parts are read as one stream.\n"
    "--parts checks each part of a split bundle on its own against the signed parts\n"
    "index (present, size, SHA-256) and names the parts that are bad or missing, so\n"
    "only those are copied again; it works with only some parts present. The\n"
    "index is signed by whoever signed the bundle last (airpack sign re-signs it):\n"
    "that key must be among the --public-key keys, or an unrevoked 'bundles' key\n"
    "of the --trust file.\n"
    "\n"
    "options:\n"
    "  -k, --public-key F   a trusted minisign public key, or a folder of *.pub\n"
    "                       files; may be repeated (any of them may have signed)\n"
    "      --trust FILE       a site trust file (docs/trust.md): k distinct unrevoked\n"
    "                       keys of its 'bundles' role must have signed; the file\n"
    "                       must be signed by its root threshold and not expired\n"
    "  -f, --format FMT     text (default) or json (docs/install.md)\n"
    "  -q, --quiet          no progress meter\n"
    "      --threads N      1: hash on one thread (default: two where possible)\n"
    "      --parts INDEX    check the parts of a split bundle one by one\n"
    "\n"
    "exit status: 0 verified, 1 refused (which artifact and why on stderr),\n"
    "2 bad usage, unreadable bundle or key\n";

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_verify_options[] = {
    {"public-key", required_argument, NULL, 'k'},
    {"format", required_argument, NULL, 'f'},
    {"quiet", no_argument, NULL, 'q'},
    {"threads", required_argument, NULL, 'T'},
    {"parts", required_argument, NULL, 'P'},
    {"trust", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
};

struct parts_out {
    enum cli_format fmt;
    json_t *arr;
    char bad[4096];
    size_t bad_len;
};

static void on_part(void *ctx, size_t i, const ap_part *part, ap_part_state st, const char *msg)
{
    struct parts_out *po = ctx;
    char hex[AP_SHA256_HEX_LEN + 1];
    (void)i;
    if (st != AP_PART_OK && po->bad_len < sizeof po->bad) {
        int n = snprintf(po->bad + po->bad_len, sizeof po->bad - po->bad_len, "%s%s",
                         po->bad_len ? " " : "", part->file);
        if (n > 0)
            po->bad_len += (size_t)n;
    }
    if (po->fmt == CLI_FMT_JSON) {
        ap_hex_encode(part->sha256, AP_SHA256_LEN, hex);
        json_array_append_new(po->arr, json_pack("{s:s,s:I,s:s,s:s,s:s?}", "file", part->file,
                                                 "size", (json_int_t)part->size, "sha256", hex,
                                                 "state", ap_part_state_name(st), "message",
                                                 msg));
        return;
    }
    if (st == AP_PART_OK)
        printf("ok       %s\n", part->file);
    else
        printf("%-8s %s: %s\n", st == AP_PART_MISSING ? "MISSING" : "BAD", part->file, msg);
}

/* verify --parts: every part on its own against the signed index. */
static int verify_parts(const char *path, const ap_keyring *kr, enum cli_format fmt)
{
    ap_parts *idx = NULL;
    ap_error err;
    char *ipath = ap_parts_index_path(path), *dir = NULL;
    struct parts_out po;
    long nbad;
    int rc;

    ap_error_clear(&err);
    memset(&po, 0, sizeof po);
    po.fmt = fmt;
    if (!ipath || !(dir = ap_path_dirname(ipath))) {
        cli_error("out of memory");
        rc = 2;
        goto out;
    }
    if (ap_parts_load(ipath, kr, 0, &idx, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (fmt == CLI_FMT_JSON && !(po.arr = json_array())) {
        cli_error("out of memory");
        rc = 2;
        goto out;
    }
    nbad = ap_parts_check(dir, idx, on_part, &po, &err);
    if (nbad < 0) {
        rc = cli_report(&err);
        goto out;
    }
    if (fmt == CLI_FMT_JSON) {
        json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:b,s:I,s:I,s:O}", "index", ipath, "name",
                              idx->name, "version", idx->version, "sequence",
                              (json_int_t)idx->sequence, "ok", nbad == 0, "parts_total",
                              (json_int_t)idx->n, "parts_bad", (json_int_t)nbad, "parts", po.arr);
        if (!j || cli_print_json(stdout, j) != 0) {
            json_decref(j);
            cli_error("cannot write JSON output");
            rc = 2;
            goto out;
        }
        json_decref(j);
    } else {
        printf("parts index '%s': %s %s (sequence %llu): %zu of %zu parts ok\n", ipath, idx->name,
               idx->version, (unsigned long long)idx->sequence, idx->n - (size_t)nbad, idx->n);
        if (nbad)
            printf("copy again: %s\n", po.bad);
    }
    if (nbad)
        cli_error("parts index '%s': %ld of %zu parts bad or missing: %s", ipath, nbad, idx->n,
                  po.bad);
    rc = nbad ? 1 : 0;
out:
    json_decref(po.arr);
    ap_parts_free(idx);
    free(ipath);
    free(dir);
    return rc;
}

int cmd_verify(int argc, char **argv)
{
    ap_keyring kr = {0};
    ap_bundle_opts o;
    ap_bundle_result res;
    ap_error err;
    enum cli_format fmt = CLI_FMT_TEXT;
    cli_progress prog;
    int c, quiet = 0, rc, nkeys = 0, threads = 0;
    const char *bundle, *parts = NULL, *trust_file = NULL;
    ap_trust *trust = NULL;

    memset(&o, 0, sizeof o);
    memset(&res, 0, sizeof res);
    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:f:q", cmd_verify_options, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (ap_keyring_add(&kr, optarg, &err) != AP_OK) {
                rc = cli_report(&err);
                goto out_keys;
            }
            nkeys++;
            break;
        case 'f':
            if ((rc = cli_parse_format("verify", optarg, CLI_FMT_TEXT | CLI_FMT_JSON, &fmt)))
                goto out_keys;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'T':
            threads = strcmp(optarg, "1") == 0 ? 1 : 0;
            break;
        case 't':
            trust_file = optarg;
            break;
        case 'P':
            parts = optarg;
            break;
        default:
            rc = cli_usage_error("verify", "invalid option");
            goto out_keys;
        }
    }
    if (parts) {
        if (optind != argc) {
            rc = cli_usage_error("verify", "--parts takes the parts index, not a bundle too");
            goto out_keys;
        }
        if (trust_file && nkeys) {
            rc = cli_usage_error("verify", "give either --trust or --public-key, not both");
            goto out_keys;
        }
        if (trust_file) {
            /* the index may be signed by any unrevoked key of the trust
             * file's 'bundles' role (airpack sign re-signs it: the last
             * signer's key), as when verifying across the parts */
            if (ap_trust_load(trust_file, &trust, &err) != AP_OK ||
                ap_trust_check_self(trust, &err) != AP_OK) {
                rc = cli_report(&err);
                goto out_keys;
            }
            if (!(kr.keys = calloc(trust->n_keys + 1, sizeof *kr.keys))) {
                cli_error("out of memory");
                rc = 2;
                goto out_keys;
            }
            for (size_t i = 0; i < trust->n_keys; i++)
                if (ap_trust_counts(&trust->keys[i], AP_TRUST_ROLE_BUNDLES))
                    kr.keys[kr.n++] = trust->keys[i].pk;
        } else if (nkeys == 0 || kr.n == 0) {
            rc = cli_usage_error("verify", "no trusted key: give --public-key or --trust");
            goto out_keys;
        }
        rc = verify_parts(parts, &kr, fmt);
        goto out_keys;
    }
    if (optind != argc - 1) {
        rc = cli_usage_error("verify", optind >= argc ? "no bundle given" : "more than one bundle given");
        goto out_keys;
    }
    bundle = argv[optind];
    if (trust_file && nkeys) {
        rc = cli_usage_error("verify", "give either --trust or --public-key, not both");
        goto out_keys;
    }
    if (trust_file) {
        if (ap_trust_load(trust_file, &trust, &err) != AP_OK) {
            rc = cli_report(&err);
            goto out_keys;
        }
        if (ap_trust_check_self(trust, &err) != AP_OK) {
            rc = cli_report(&err);
            goto out_keys;
        }
        o.trust = trust;
    } else if (nkeys == 0 || kr.n == 0) {
        rc = cli_usage_error("verify", nkeys ? "no public key found in the given folders"
                                             : "no trusted key: give --public-key");
        goto out_keys;
    }
    o.keys = trust ? NULL : &kr;
    o.threads = threads;
    cli_progress_start(&prog, "verifying", 0, quiet || fmt == CLI_FMT_JSON);
    o.progress = cli_progress_cb;
    o.progress_ctx = &prog;
    rc = ap_bundle_verify(bundle, &o, &res, &err);
    if (rc == AP_OK)
        cli_progress_end(&prog);
    else if (prog.enabled)
        fputc('\n', stderr);
    if (fmt == CLI_FMT_JSON) {
        json_t *j = ap_bundle_result_json(bundle, &res, rc == AP_OK ? NULL : &err);
        if (!j || cli_print_json(stdout, j) != 0) {
            json_decref(j);
            rc = AP_ERR_NOMEM;
            cli_error("cannot write JSON output");
            goto out;
        }
        json_decref(j);
        if (rc != AP_OK)
            fprintf(stderr, "error: %s\n", err.msg);
        rc = rc == AP_OK ? 0 : ap_error_exit_code(&err);
        goto out;
    }
    if (rc != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    {
        char kid[17];
        ap_keyid_hex(res.sig.keyid, kid);
        printf("verified '%s': %s %s (sequence %llu), %zu artifacts, %llu bytes\n", bundle,
               res.lock->name, res.lock->version, (unsigned long long)res.lock->sequence,
               res.lock->n_artifacts, (unsigned long long)res.lock->total_bytes);
        if (res.n_in_base)
            printf("delta bundle: needs %zu artifacts (%llu bytes) from the base, which install "
                   "takes from the site's object store\n",
                   res.n_in_base, (unsigned long long)res.bytes_in_base);
        if (trust) {
            printf("signatures: %zu of %zu needed (trust file '%s', version %llu):", res.sigs_counted,
                   res.sigs_needed, trust->source, (unsigned long long)trust->version);
            for (size_t i = 0; i < res.n_sigs; i++) {
                if (!res.sigs[i].counted)
                    continue;
                ap_keyid_hex(res.sigs[i].sig.keyid, kid);
                printf(" %s (%s)", res.sigs[i].key_name, kid);
            }
            printf("\n");
        } else {
            printf("signed by key %s (%s), %s signature\n", kid, res.signer.source,
                   strcmp(res.sig.alg, "ED") == 0 ? "prehashed" : "legacy");
        }
    }
    rc = 0;
out:
    ap_bundle_result_release(&res);
out_keys:
    ap_keyring_release(&kr);
    ap_trust_free(trust);
    return rc;
}
