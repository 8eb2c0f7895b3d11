/*
 * pull.c - `airpack pull oci://... --output BUNDLE`: rebuild the exact
 * bundle bytes from a registry (docs/oci.md; src/registry/ does the work).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "bundle_write.h"
#include "registry/fetch.h"
#include "sign.h"

const char cmd_pull_usage[] =
"usage: airpack pull oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX] --output BUNDLE\n"
    "                    [--public-key F]... [--ca-file F] [--insecure-registry]\n"
    "                    [--quiet]\n"
    "\n"
    "Rebuild the bundle pushed under a reference, byte for byte, into BUNDLE\n"
    "(written to a temporary file beside it and renamed into place only when\n"
    "complete). The manifests must match the lock exactly, every blob must have\n"
    "the lock's size and SHA-256. With --public-key the lock's signature is\n"
    "checked first. `airpack verify` checks the result as any bundle.\n"
    "\n"
    "options:\n"
    "  -o, --output BUNDLE      the bundle file to write\n"
    "  -k, --public-key F       check the signature with this key (or folder)\n"
    "      --ca-file F          trust this PEM CA bundle (besides the system store)\n"
    "      --insecure-registry  plain HTTP\n"
    "  -q, --quiet              no progress meter\n"
    "\n"
    "exit status: 0 pulled, 1 refused (tampered, truncated or mismatched content,\n"
    "bad signature), 2 bad usage, network or I/O error\n";

const struct option cmd_pull_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"public-key", required_argument, NULL, 'k'},
    {"ca-file", required_argument, NULL, 'C'},
    {"insecure-registry", no_argument, NULL, 'I'},
    {"quiet", no_argument, NULL, 'q'},
    {NULL, 0, NULL, 0},
};

int cmd_pull(int argc, char **argv)
{
    ap_reg_opts o;
    ap_keyring kr = {0};
    ap_oci_fetch f;
    const char *output = NULL;
    ap_error err;
    cli_progress prog;
    int c, quiet = 0, rc;

    memset(&o, 0, sizeof o);
    memset(&f, 0, sizeof f);
    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:k:q", cmd_pull_options, NULL)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'k':
            if (ap_keyring_add(&kr, optarg, &err) != AP_OK) {
                rc = cli_report(&err);
                goto out;
            }
            break;
        case 'C':
            o.ca_file = optarg;
            break;
        case 'I':
            o.insecure = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        default:
            rc = cli_usage_error("pull", "invalid option");
            goto out;
        }
    }
    if (argc - optind != 1) {
        rc = cli_usage_error("pull", "give one oci:// reference");
        goto out;
    }
    if (!output) {
        rc = cli_usage_error("pull", "no --output given");
        goto out;
    }
    ap_bundle_cleanup_on_signals(); /* an interrupted pull leaves no temporary file */
    if ((rc = ap_oci_fetch_open(argv[optind], &o, &kr, &f, &err)) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    cli_progress_start(&prog, "pulling", f.lock->total_bytes, quiet);
    f.progress = cli_progress_cb;
    f.progress_ctx = &prog;
    rc = ap_oci_pull(&f, output, &err);
    if (rc == AP_OK)
        cli_progress_end(&prog);
    else if (prog.enabled)
        fputc('\n', stderr);
    if (rc != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    printf("pulled %s %s+%llu (%s) into '%s'%s\n%s\n", f.lock->name, f.lock->version,
           (unsigned long long)f.lock->sequence, argv[optind], output,
           f.signature_checked ? ", signature verified" : "", f.digest);
    rc = 0;
out:
    ap_oci_fetch_close(&f);
    ap_keyring_release(&kr);
    return rc;
}
