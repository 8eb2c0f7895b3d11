/*
 * push.c - `airpack push BUNDLE oci://HOST[:PORT]/REPO[:TAG]`: upload a
 * bundle to an OCI registry (docs/oci.md; src/registry/ does the work).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "registry/client.h"
#include "registry/oci.h"

const char cmd_push_usage[] =
"usage: airpack push BUNDLE oci://HOST[:PORT]/REPO[:TAG] [--ca-file F]\n"
    "                    [--insecure-registry] [--mount-from REPO] [--quiet]\n"
    "\n"
    "Upload a bundle to an OCI registry over the OCI Distribution API: the bundle\n"
    "index (tagged TAG, default latest) with the bundle manifest (config: the\n"
    "signed lock; layers: its signature and every artifact, uncompressed, digest =\n"
    "the lock's SHA-256) and one ModelPack artifact per model (docs/oci.md).\n"
    "Blobs the registry has already are not sent (HEAD, then a cross-repository\n"
    "mount with --mount-from); others go up in 16 MiB chunks. The bundle must be\n"
    "laid out exactly as airpack writes bundles, so that `airpack pull` gives back\n"
    "the same bytes. Prints the index digest (use it as oci://HOST/REPO@DIGEST).\n"
    "Credentials: REGISTRY_AUTH_FILE or ~/.docker/config.json (basic or token).\n"
    "\n"
    "options:\n"
    "      --ca-file F          trust this PEM CA bundle (besides the system store)\n"
    "      --insecure-registry  plain HTTP (never use it across a network)\n"
    "      --mount-from REPO    try mounting missing blobs from REPO of the registry\n"
    "  -q, --quiet              no progress meter\n"
    "\n"
    "exit status: 0 pushed, 1 refused (bundle not reproducible, registry refused),\n"
    "2 bad usage, unreadable bundle, network or I/O error\n";

const struct option cmd_push_options[] = {
    {"ca-file", required_argument, NULL, 'C'},
    {"insecure-registry", no_argument, NULL, 'I'},
    {"mount-from", required_argument, NULL, 'M'},
    {"quiet", no_argument, NULL, 'q'},
    {NULL, 0, NULL, 0},
};

struct pctx {
    ap_reg *reg;
    ap_oci_target inner;
    cli_progress prog;
};

static int p_has(void *c, const char *d, uint64_t s, int *y, ap_error *e)
{
    struct pctx *p = c;
    return p->inner.has(p->inner.ctx, d, s, y, e);
}
static int p_begin(void *c, const char *d, uint64_t s, ap_error *e)
{
    struct pctx *p = c;
    return p->inner.blob_begin(p->inner.ctx, d, s, e);
}
static int p_data(void *c, const void *b, size_t l, ap_error *e)
{
    struct pctx *p = c;
    return p->inner.blob_data(p->inner.ctx, b, l, e);
}
static int p_end(void *c, int ok, ap_error *e)
{
    struct pctx *p = c;
    return p->inner.blob_end(p->inner.ctx, ok, e);
}
static int p_manifest(void *c, const ap_reg_doc *d, const char *tag, ap_error *e)
{
    struct pctx *p = c;
    return p->inner.manifest(p->inner.ctx, d, tag, e);
}
static void p_progress(void *c, uint64_t done, uint64_t total)
{
    struct pctx *p = c;
    p->prog.total = total;
    cli_progress_update(&p->prog, done);
}

int cmd_push(int argc, char **argv)
{
    ap_reg_opts o;
    ap_oci_ref ref;
    ap_oci_target t;
    struct pctx p;
    ap_oci_send_stats st;
    char digest[AP_OCI_DIGEST_LEN + 1];
    ap_error err;
    int c, quiet = 0, rc;

    memset(&o, 0, sizeof o);
    memset(&p, 0, sizeof p);
    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "q", cmd_push_options, NULL)) != -1) {
        switch (c) {
        case 'C':
            o.ca_file = optarg;
            break;
        case 'I':
            o.insecure = 1;
            break;
        case 'M':
            o.mount_from = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        default:
            return cli_usage_error("push", "invalid option");
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("push", "give a bundle and an oci:// reference");
    if (ap_oci_ref_parse(argv[optind + 1], &ref, &err) != AP_OK)
        return cli_report(&err);
    if (ref.digest[0])
        return cli_usage_error("push", "push to a tag, not to a digest");
    o.push = 1;
    if (ap_reg_open(&ref, &o, &p.reg, &err) != AP_OK)
        return cli_report(&err);
    ap_reg_target(p.reg, &p.inner);
    memset(&t, 0, sizeof t);
    t.ctx = &p;
    t.has = p_has;
    t.blob_begin = p_begin;
    t.blob_data = p_data;
    t.blob_end = p_end;
    t.manifest = p_manifest;
    t.progress = p_progress;
    cli_progress_start(&p.prog, "pushing", 0, quiet);
    rc = ap_oci_send_bundle(argv[optind], &t, ref.tag, digest, &st, &err);
    if (rc == AP_OK)
        cli_progress_end(&p.prog);
    else if (p.prog.enabled)
        fputc('\n', stderr);
    ap_reg_close(p.reg);
    if (rc != AP_OK)
        return cli_report(&err);
    printf("pushed '%s' to oci://%s/%s:%s: %zu blobs uploaded (%llu bytes), %zu already there "
           "(%llu bytes)\n%s\n",
           argv[optind], ref.host, ref.repo, ref.tag, st.blobs_sent,
           (unsigned long long)st.bytes_sent, st.blobs_skipped,
           (unsigned long long)st.bytes_skipped, digest);
    return 0;
}
