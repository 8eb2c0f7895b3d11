/*
 * verify.c - `airpack verify`: check a bundle's signature and every hash
 * in one streaming pass (src/bundle_read.h does the work).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "bundle_read.h"
#include "cmd.h"
#include "common.h"
#include "sign.h"

const char cmd_verify_usage[] =
"usage: airpack verify BUNDLE|- --public-key F [--public-key F]... [--format text|json]\n"
    "\n"
    "Check the signature and every hash of a bundle in one streaming pass, in\n"
    "constant memory, from a file or from standard input ('-': a pipe, a tape).\n"
    "The lock's signature is checked against the trusted keys before the lock is\n"
    "read; then every entry must be the lock's next artifact: a regular file with\n"
    "a safe path, the lock's mode, size and SHA-256. Plain or zstd-compressed tar.\n"
    "\n"
    "options:\n"
    "  -k, --public-key F   a trusted minisign public key, or a folder of *.pub\n"
    "                       files; may be repeated (any of them may have signed)\n"
    "  -f, --format FMT     text (default) or json (docs/install.md)\n"
    "  -q, --quiet          no progress meter\n"
    "      --threads N      1: hash on one thread (default: two where possible)\n"
    "\n"
    "exit status: 0 verified, 1 refused (which artifact and why on stderr),\n"
    "2 bad usage, unreadable bundle or key\n";

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    cli_progress *p = ctx;
    p->total = total;
    cli_progress_update(p, done);
}

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_verify_options[] = {
    {"public-key", required_argument, NULL, 'k'},
    {"format", required_argument, NULL, 'f'},
    {"quiet", no_argument, NULL, 'q'},
    {"threads", required_argument, NULL, 'T'},
    {NULL, 0, NULL, 0},
};

int cmd_verify(int argc, char **argv)
{
    ap_keyring kr = {0};
    ap_bundle_opts o;
    ap_bundle_result res;
    ap_error err;
    enum cli_format fmt = CLI_FMT_TEXT;
    cli_progress prog;
    int c, quiet = 0, rc, nkeys = 0, threads = 0;
    const char *bundle;

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
        default:
            rc = cli_usage_error("verify", "invalid option");
            goto out_keys;
        }
    }
    if (optind != argc - 1) {
        rc = cli_usage_error("verify", optind >= argc ? "no bundle given" : "more than one bundle given");
        goto out_keys;
    }
    bundle = argv[optind];
    if (nkeys == 0 || kr.n == 0) {
        rc = cli_usage_error("verify", nkeys ? "no public key found in the given folders"
                                             : "no trusted key: give --public-key");
        goto out_keys;
    }
    o.keys = &kr;
    o.threads = threads;
    cli_progress_start(&prog, "verifying", 0, quiet || fmt == CLI_FMT_JSON);
    o.progress = on_progress;
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
        printf("signed by key %s (%s), %s signature\n", kid, res.signer.source,
               strcmp(res.sig.alg, "ED") == 0 ? "prehashed" : "legacy");
    }
    rc = 0;
out:
    ap_bundle_result_release(&res);
out_keys:
    ap_keyring_release(&kr);
    return rc;
}
