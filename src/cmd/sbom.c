/*
 * sbom.c - `airpack sbom`: the CycloneDX 1.6 SBOM of a manifest (after the
 * same analysis `check` does, without the policies) or of a bundle (from
 * its lock, after a verifying pass over the bundle; signed by a trusted key
 * when --public-key is given, else marked as from an unverified bundle).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze.h"
#include "bundle_read.h"
#include "cmd.h"
#include "common.h"
#include "manifest.h"
#include "sbom.h"
#include "sign.h"

const char cmd_sbom_usage[] =
    "usage: airpack sbom (MANIFEST|BUNDLE) [--output F] [--public-key F]...\n"
    "\n"
    "Write a CycloneDX 1.6 SBOM (JSON): the models as machine-learning-model\n"
    "components with SHA-256 hashes, licences, model card parameters and\n"
    "origin, the runtimes and the configuration files.\n"
    "\n"
    "For a BUNDLE the SBOM comes from its lock after every hash is checked;\n"
    "the signature is checked too when --public-key is given, else the SBOM\n"
    "says it comes from an unverified bundle.\n"
    "\n"
    "options:\n"
    "  --output F, -o F       write to F instead of standard output\n"
    "  --public-key F         trusted public key (or folder of *.pub); may repeat\n"
    "  --allow-outside-paths  let the manifest name paths outside its folder\n"
    "\n"
    "Exit status: 0 written, 1 the bundle failed verification, 2 bad usage\n"
    "or invalid input.\n";

/* A tar (ustar magic at 257) or a zstd frame: a bundle. */
static int looks_like_bundle(const char *path)
{
    unsigned char buf[512];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n >= 4 && buf[0] == 0x28 && buf[1] == 0xb5 && buf[2] == 0x2f && buf[3] == 0xfd)
        return 1;
    return n >= 262 && memcmp(buf + 257, "ustar", 5) == 0;
}

static int sbom_of_bundle(const char *path, const ap_keyring *kr, json_t **bom, ap_error *err)
{
    ap_bundle_opts opts = {0};
    ap_bundle_result res;
    int rc;
    opts.keys = kr->n ? kr : NULL;
    opts.allow_unsigned = kr->n == 0;
    rc = ap_bundle_verify(path, &opts, &res, err);
    if (rc == AP_OK) {
        const json_t *lock = res.lock->json;
        rc = ap_sbom_build(json_object_get(lock, "analysis"), lock, bom, err);
        if (rc == AP_OK) {
            json_t *props = json_object_get(json_object_get(*bom, "metadata"), "properties");
            char kid[17];
            json_array_append_new(props, json_pack("{s:s,s:s}", "name", "airpack:bundle-verified",
                                                   "value", res.signature_checked ? "true"
                                                                                  : "false"));
            if (res.signature_checked) {
                ap_keyid_hex(res.signer.keyid, kid);
                json_array_append_new(props, json_pack("{s:s,s:s}", "name", "airpack:signer-keyid",
                                                       "value", kid));
            }
        }
    }
    if (rc == AP_OK && !res.signature_checked)
        cli_warn("the SBOM comes from an unverified bundle (no --public-key): its hashes are "
                 "consistent, but nobody vouches for them");
    ap_bundle_result_release(&res);
    return rc;
}

static int sbom_of_manifest(const char *path, const ap_manifest_opts *mopts, json_t **bom,
                            ap_error *err)
{
    ap_manifest *m = NULL;
    ap_analyze_opts aopts = {0};
    json_t *analysis = NULL;
    int rc;
    aopts.skip_policies = 1;
    if ((rc = ap_manifest_load(path, mopts, &m, err)) == AP_OK &&
        (rc = ap_analyze(m, &aopts, &analysis, err)) == AP_OK)
        rc = ap_sbom_build(analysis, NULL, bom, err);
    json_decref(analysis);
    ap_manifest_free(m);
    return rc;
}

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_sbom_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"public-key", required_argument, NULL, 'k'},
    {"allow-outside-paths", no_argument, NULL, 'A'},
    {NULL, 0, NULL, 0},
};

int cmd_sbom(int argc, char **argv)
{
    const char *output = NULL;
    ap_keyring kr = {0};
    ap_manifest_opts mopts = {0};
    json_t *bom = NULL;
    ap_error err;
    int c, rc = 2;

    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", cmd_sbom_options, NULL)) != -1) {
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
        case 'A':
            mopts.allow_outside_paths = 1;
            break;
        default:
            rc = cli_usage_error("sbom", "invalid option");
            goto out;
        }
    }
    if (optind != argc - 1) {
        rc = cli_usage_error("sbom", optind >= argc ? "missing MANIFEST or BUNDLE"
                                                    : "too many arguments");
        goto out;
    }
    if (looks_like_bundle(argv[optind]))
        c = sbom_of_bundle(argv[optind], &kr, &bom, &err);
    else
        c = sbom_of_manifest(argv[optind], &mopts, &bom, &err);
    if (c != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (output && strcmp(output, "-") != 0) {
        FILE *f = fopen(output, "we");
        if (!f) {
            cli_error("cannot create '%s': %s", output, strerror(errno));
            rc = 2;
            goto out;
        }
        c = cli_print_json(f, bom);
        if (fclose(f) != 0 || c != 0) {
            cli_error("cannot write '%s'", output);
            rc = 2;
            goto out;
        }
    } else if (cli_print_json(stdout, bom) != 0) {
        rc = 2;
        goto out;
    }
    rc = 0;
out:
    json_decref(bom);
    ap_keyring_release(&kr);
    return rc;
}
