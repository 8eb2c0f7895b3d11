/*
 * export.c - `airpack export BUNDLE --oci-layout DIR`: the bundle's OCI
 * content (docs/oci.md) written as an OCI image layout folder, for sites
 * that move it with skopeo or oras themselves (src/registry/ does the work).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "registry/oci.h"

const char cmd_export_usage[] =
"usage: airpack export BUNDLE --oci-layout DIR [--tag TAG] [--quiet]\n"
    "\n"
    "Write a bundle's OCI content as an OCI image layout (DIR/oci-layout,\n"
    "DIR/index.json, DIR/blobs/sha256/): an index tagged TAG holding the bundle\n"
    "manifest (config: the signed lock; layers: its signature, then every\n"
    "artifact uncompressed, digest = the lock's SHA-256) and one ModelPack\n"
    "artifact per model (docs/oci.md). `skopeo copy oci:DIR:TAG docker://...`\n"
    "moves it to a registry; `airpack pull` and `airpack install oci://...`\n"
    "rebuild the exact bundle from there. Blobs already in DIR are kept; every\n"
    "blob written is hashed and must match its digest. A bundle whose bytes\n"
    "differ from what airpack would rebuild from its lock is refused.\n"
    "\n"
    "options:\n"
    "      --oci-layout DIR  the layout folder (created when missing)\n"
    "  -t, --tag TAG         the tag in index.json (default: the bundle's\n"
    "                        version)\n"
    "  -q, --quiet           no progress meter\n"
    "\n"
    "exit status: 0 written, 1 refused (damaged or non-reproducible bundle),\n"
    "2 bad usage, unreadable bundle, I/O error\n";

const struct option cmd_export_options[] = {
    {"oci-layout", required_argument, NULL, 'L'},
    {"tag", required_argument, NULL, 't'},
    {"quiet", no_argument, NULL, 'q'},
    {NULL, 0, NULL, 0},
};

int cmd_export(int argc, char **argv)
{
    const char *dir = NULL, *tag = NULL;
    char digest[AP_OCI_DIGEST_LEN + 1];
    ap_oci_send_stats st;
    ap_error err;
    cli_progress prog;
    int c, quiet = 0, rc;

    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:q", cmd_export_options, NULL)) != -1) {
        switch (c) {
        case 'L':
            dir = optarg;
            break;
        case 't':
            tag = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        default:
            return cli_usage_error("export", "invalid option");
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("export", optind >= argc ? "no bundle given"
                                                        : "more than one bundle given");
    if (!dir)
        return cli_usage_error("export", "no --oci-layout given");
    if (tag) {
        ap_oci_ref r;
        char ref[300];
        snprintf(ref, sizeof ref, "oci://x/y:%s", tag);
        if (ap_oci_ref_parse(ref, &r, &err) != AP_OK || strcmp(r.tag, tag) != 0)
            return cli_usage_error("export", "'%s' is not a valid tag", tag);
    }
    cli_progress_start(&prog, "exporting", 0, quiet);
    rc = ap_oci_export_layout(argv[optind], dir, tag ? tag : "latest", digest, &st, cli_progress_cb,
                              &prog, &err);
    if (rc == AP_OK)
        cli_progress_end(&prog);
    else if (prog.enabled)
        fputc('\n', stderr);
    if (rc != AP_OK)
        return cli_report(&err);
    printf("exported '%s' to '%s' (tag %s): %zu blobs written, %zu already there\n%s\n",
           argv[optind], dir, tag ? tag : "latest", st.blobs_sent, st.blobs_skipped, digest);
    return 0;
}
