/*
 * install.c - `airpack install`: verify a bundle while installing it
 * atomically under a prefix (src/install.h does the work).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "install.h"
#include "preflight/preflight.h"
#include "preflight_glue.h"
#include "sign.h"
#ifndef AIRPACK_VERIFY_ONLY
#include <unistd.h>

#include "activate_glue.h"
#include "registry/fetch.h"
#endif
#include "trust/trust.h"
#include <stdlib.h>

const char cmd_install_usage[] =
"usage: airpack install BUNDLE|-|oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]\n"
    "                       (--public-key F [--public-key F]... | --trust FILE) --prefix DIR\n"
    "                       [--allow-downgrade] [--skip-preflight] [--require-gpu] [--quiet]\n"
    "                       [--ca-file F] [--insecure-registry]\n"
    "                       [--activate [--systemd-dir DIR] [--service-manager CMD]\n"
    "                        [--activate-timeout SECONDS]]\n"
    "\n"
    "Verify and install a bundle atomically, in one streaming pass:\n"
    "  DIR/releases/<name>/<version>+<sequence>/   the release's files\n"
    "  DIR/current/<name>                          link to the active release\n"
    "  DIR/.airpack/receipts/<name>/<release>/     the signed lock and install record\n"
    "  DIR/.airpack/state.json                     highest sequence per deployment\n"
    "The bundle is written into a fresh staging folder and switched into place\n"
    "only after every hash matched; a hostile bundle leaves DIR unchanged, and an\n"
    "install killed at any moment leaves the previous release active.\n"
    "Before anything is written, the plan signed into the lock is checked against\n"
    "this host's GPUs (as `airpack preflight`, docs/preflight.md): a release that\n"
    "does not fit, or fits only with a smaller context or concurrency, is refused.\n"
    "\n"
    "options:\n"
    "  -k, --public-key F     a trusted minisign public key, or a folder of *.pub\n"
    "                         files; may be repeated\n"
    "      --trust FILE       a site trust file (docs/trust.md): k distinct unrevoked\n"
    "                         'bundles' keys must have signed. The first install\n"
    "                         records it as DIR/.airpack/trust.json and later\n"
    "                         commands on DIR use that file by default (then\n"
    "                         --public-key is refused); a newer FILE must be signed\n"
    "                         by the recorded file's root threshold (a rotation)\n"
    "  -p, --prefix DIR       the install root (created when missing)\n"
    "      --allow-downgrade  accept a sequence not above the installed one\n"
    "      --skip-preflight   install even if the GPU preflight fails (recorded in\n"
    "                         the install record)\n"
    "      --require-gpu      refuse when NVML cannot be read (default: a warning)\n"
    "  -q, --quiet            no progress meter\n"
    "      --threads N        1: hash on one thread (default: two where possible)\n"
    "      --ca-file F        oci://: trust this PEM CA bundle too\n"
    "      --insecure-registry  oci://: plain HTTP\n"
    "      --activate         then start the new release and keep it only when it\n"
    "                         serves, as `airpack activate` (not in airpack-verify);\n"
    "                         exit 1 when it was rolled back\n"
    "      --systemd-dir DIR, --service-manager CMD, --activate-timeout SECONDS\n"
    "                         as activate's --systemd-dir, --service-manager, --timeout\n"
    "\n"
    "From an OCI registry (oci://, docs/oci.md; not in airpack-verify) the lock's\n"
    "signature is checked first, the manifests must match the lock exactly, and\n"
    "the bundle is rebuilt from the blobs and installed through the same\n"
    "streaming verifier as a file; the manifest digest goes into install.json.\n"
    "\n"
    "exit status: 0 installed, 1 refused (hostile bundle, bad signature, downgrade,\n"
    "the GPU preflight) or, with --activate, installed but not serving (rolled back),\n"
    "2 bad usage, unreadable input, disk full or other I/O error\n";

#ifndef AIRPACK_VERIFY_ONLY
/* oci://: check the signature and the manifests, then feed the rebuilt
 * bundle stream to the same streaming installer as a file. */
static int install_oci(const char *reference, ap_install_opts *o, const char *ca_file,
                       int insecure, ap_install_result *res, ap_error *err)
{
    ap_reg_opts ro;
    ap_oci_fetch f;
    ap_oci_stream *s = NULL;
    ap_error serr;
    ap_keyring tkr = {0};
    const ap_keyring *keys = o->keys;
    int fd = -1, rc, src;

    memset(&ro, 0, sizeof ro);
    ro.ca_file = ca_file;
    ro.insecure = insecure;
    /* with a trust file: one signature by one of its keys before the lock
     * is parsed; the installer then applies the k-of-n rule itself */
    if (!keys && o->trust) {
        if ((rc = ap_trust_keyring(o->trust, &tkr, err)) != AP_OK)
            return rc;
        keys = &tkr;
    }
    rc = ap_oci_fetch_open(reference, &ro, keys, &f, err);
    ap_keyring_release(&tkr);
    if (rc != AP_OK)
        return rc;
    if ((rc = ap_oci_stream_start(&f, &fd, &s, err)) != AP_OK) {
        ap_oci_fetch_close(&f);
        return rc;
    }
    o->input_fd = fd;
    o->source_digest = f.digest;
    rc = ap_install(reference, o, res, err);
    close(fd);
    ap_error_clear(&serr);
    src = ap_oci_stream_finish(s, &serr);
    /* the download's own failure (a short or foreign blob) says more than
     * the verifier's "truncated" */
    if (rc != AP_OK && src != AP_OK && serr.status == AP_ERR_CHECK)
        *err = serr;
    else if (rc == AP_OK && src != AP_OK) {
        *err = serr;
        rc = src;
    }
    ap_oci_fetch_close(&f);
    return rc;
}
#endif

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_install_options[] = {
    {"public-key", required_argument, NULL, 'k'},
    {"prefix", required_argument, NULL, 'p'},
    {"allow-downgrade", no_argument, NULL, 'D'},
    {"quiet", no_argument, NULL, 'q'},
    {"threads", required_argument, NULL, 'T'},
    {"ca-file", required_argument, NULL, 'C'},
    {"insecure-registry", no_argument, NULL, 'I'},
    {"skip-preflight", no_argument, NULL, 'S'},
    {"require-gpu", no_argument, NULL, 'G'},
    {"trust", required_argument, NULL, 't'},
    {"activate", no_argument, NULL, 'A'},
    {"systemd-dir", required_argument, NULL, 'Y'},
    {"service-manager", required_argument, NULL, 'M'},
    {"activate-timeout", required_argument, NULL, 'W'},
    {NULL, 0, NULL, 0},
};

#ifndef AIRPACK_VERIFY_ONLY
static void install_activate_log(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "activate: %s\n", line);
}
#endif

/* The GPU preflight, run by ap_install once the lock verified. */
struct preflight_ctx {
    const char *prefix;
    int skip, require_gpu;
    json_t *record;          /* the install record's "preflight" (set here) */
    cli_progress *prog;
};

static int install_preflight(void *ctx, const ap_lock *lock, ap_error *err)
{
    struct preflight_ctx *pc = ctx;
    json_t *report = NULL, *rec;
    ap_pf_verdict v;
    int rc;

    if (pc->skip) {
        json_object_set_new(pc->record, "preflight", json_pack("{s:b,s:n}", "skipped", 1, "verdict"));
        if (pc->prog->enabled)
            fputc('\n', stderr);
        cli_warn("GPU preflight skipped (--skip-preflight); recorded in the install record");
        return AP_OK;
    }
    if ((rc = ap_preflight_run(lock->json, pc->prefix, 0, &report, err)) != AP_OK)
        return ap_error_prefix(err, "GPU preflight (--skip-preflight overrides)");
    v = ap_preflight_verdict(report);
    rec = json_pack("{s:b,s:s,s:b,s:O,s:O}", "skipped", 0, "verdict", ap_pf_verdict_name(v),
                    "require_gpu", pc->require_gpu, "host", json_object_get(report, "host"),
                    "problems", json_object_get(report, "problems"));
    if (!rec) {
        json_decref(report);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    json_object_set_new(pc->record, "preflight", rec);
    if (v == AP_PF_FITS) {
        json_decref(report);
        return AP_OK;
    }
    if (pc->prog->enabled)
        fputc('\n', stderr);
    if (v == AP_PF_UNKNOWN && !pc->require_gpu) {
        if (json_is_true(json_object_get(json_object_get(json_object_get(report, "host"), "nvml"), "available")))
            cli_warn("GPU preflight: %s", json_string_value(json_array_get(json_object_get(report, "problems"), 0)));
        else
            cli_warn("no NVML on this host (%s): the GPUs were not checked (--require-gpu refuses)",
                     json_string_value(json_object_get(json_object_get(json_object_get(report, "host"), "nvml"), "problem")));
        json_decref(report);
        return AP_OK;
    }
    cli_preflight_print(stderr, report);
    if (v == AP_PF_UNKNOWN) {
        int nvml = json_is_true(json_object_get(json_object_get(json_object_get(report, "host"), "nvml"), "available"));
        json_decref(report);
        return ap_error_set(err, AP_ERR_CHECK, "GPU preflight: %s and --require-gpu given",
                            nvml ? "nothing to check" : "no NVML on this host");
    }
    json_decref(report);
    return ap_error_set(err, AP_ERR_CHECK, "GPU preflight: '%s' %s+%llu %s this host's GPUs "
                        "(--skip-preflight overrides)", lock->name, lock->version,
                        (unsigned long long)lock->sequence,
                        v == AP_PF_NOFIT ? "does not fit" : "fits only with a smaller context or concurrency on");
}

int cmd_install(int argc, char **argv)
{
    ap_keyring kr = {0};
    ap_install_opts o;
    ap_install_result res;
    ap_error err;
    cli_progress prog;
    struct preflight_ctx pc = {0};
    int c, quiet = 0, rc, nkeys = 0, insecure = 0, record = 0, activate = 0;
    const char *systemd_dir = getenv("AIRPACK_SYSTEMD_DIR"), *service_manager = getenv("AIRPACK_SERVICE_MANAGER");
    double activate_timeout = 0;
    const char *ca_file = NULL;
    const char *trust_file = NULL;
    ap_trust *installed = NULL, *eff = NULL;

    memset(&o, 0, sizeof o);
    memset(&res, 0, sizeof res);
    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:p:q", cmd_install_options, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (ap_keyring_add(&kr, optarg, &err) != AP_OK) {
                rc = cli_report(&err);
                goto out;
            }
            nkeys++;
            break;
        case 'p':
            o.prefix = optarg;
            break;
        case 'D':
            o.allow_downgrade = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'T':
            o.threads = strcmp(optarg, "1") == 0 ? 1 : 0;
            break;
        case 'C':
            ca_file = optarg;
            break;
        case 'I':
            insecure = 1;
            break;
        case 'S':
            pc.skip = 1;
            break;
        case 'G':
            pc.require_gpu = 1;
            break;
        case 't':
            trust_file = optarg;
            break;
        case 'A':
            activate = 1;
            break;
        case 'Y':
            systemd_dir = optarg;
            break;
        case 'M':
            service_manager = optarg;
            break;
        case 'W':
#ifndef AIRPACK_VERIFY_ONLY
            if (cli_activate_parse_timeout(optarg, &activate_timeout) != 0) {
                rc = cli_usage_error("install", "--activate-timeout wants seconds (0 < N <= 86400), not '%s'", optarg);
                goto out;
            }
#endif
            break;
        default:
            rc = cli_usage_error("install", "invalid option");
            goto out;
        }
    }
    if (optind != argc - 1) {
        rc = cli_usage_error("install", optind >= argc ? "no bundle given" : "more than one bundle given");
        goto out;
    }
    if (!o.prefix) {
        rc = cli_usage_error("install", "no --prefix given");
        goto out;
    }
#ifdef AIRPACK_VERIFY_ONLY
    (void)systemd_dir;
    (void)service_manager;
    (void)activate_timeout;
    if (activate) {
        rc = cli_usage_error("install", "airpack-verify does not activate: run `airpack activate`");
        goto out;
    }
#endif
    if (trust_file && nkeys) {
        rc = cli_usage_error("install", "give either --trust or --public-key, not both");
        goto out;
    }
    /* the prefix's recorded trust file governs it, unless a newer one rotates it */
    if (ap_trust_for_prefix(o.prefix, trust_file, &installed, &eff, &record, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (eff && nkeys) {
        ap_error_set(&err, AP_ERR_CHECK,
                     "prefix '%s' is governed by its trust file '%s/.airpack/trust.json' "
                     "(version %llu): --public-key is not accepted there",
                     o.prefix, o.prefix, (unsigned long long)eff->version);
        rc = cli_report(&err);
        goto out;
    }
    if (eff) {
        o.trust = eff;
        o.record_trust = record;
    } else if (nkeys == 0 || kr.n == 0) {
        rc = cli_usage_error("install", nkeys ? "no public key found in the given folders"
                                              : "no trusted key: give --public-key or --trust");
        goto out;
    } else {
        o.keys = &kr;
    }
    cli_progress_start(&prog, "installing", 0, quiet);
    o.progress = cli_progress_cb;
    o.progress_ctx = &prog;
    pc.prefix = o.prefix;
    pc.prog = &prog;
    if (!(pc.record = json_object())) {
        cli_error("out of memory");
        rc = 2;
        goto out;
    }
    o.admit = install_preflight;
    o.admit_ctx = &pc;
    o.record_extra = pc.record;
    if (strncmp(argv[optind], "oci://", 6) == 0) {
#ifdef AIRPACK_VERIFY_ONLY
        (void)ca_file;
        (void)insecure;
        rc = cli_usage_error("install", "airpack-verify cannot install from a registry: "
                                        "`airpack pull` the bundle first");
        goto out;
#else
        rc = install_oci(argv[optind], &o, ca_file, insecure, &res, &err);
#endif
    } else {
        rc = ap_install(argv[optind], &o, &res, &err);
    }
    if (rc == AP_OK)
        cli_progress_end(&prog);
    else if (prog.enabled)
        fputc('\n', stderr);
    if (rc != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    printf("installed %s %s into '%s'", res.name, res.release, o.prefix);
    if (res.previous[0])
        printf(" (was %s)", res.previous);
    printf("\n");
    rc = 0;
#ifndef AIRPACK_VERIFY_ONLY
    if (activate) {
        ap_activate_opts ao;
        memset(&ao, 0, sizeof ao);
        ao.prefix = o.prefix;
        ao.name = res.name;
        ao.systemd_dir = systemd_dir;
        ao.service_manager = service_manager;
        ao.timeout_s = activate_timeout;
        ao.previous = res.previous;
        if (!quiet)
            ao.log = install_activate_log;
        fflush(stdout);
        rc = cli_activate_run(&ao, 0);
    }
#endif
out:
    json_decref(pc.record);
    ap_install_result_release(&res);
    ap_keyring_release(&kr);
    ap_trust_prefix_release(installed, eff);
    return rc;
}
