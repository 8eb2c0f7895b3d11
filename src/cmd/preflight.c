/*
 * preflight.c - `airpack preflight`: does the plan signed into a bundle or
 * an installed release fit this host's GPUs? (src/preflight/ does the
 * work; docs/preflight.md)
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

const char cmd_preflight_usage[] =
"usage: airpack preflight BUNDLE --public-key F [--public-key F]... [--prefix DIR]\n"
    "       airpack preflight --installed DIR [NAME] [--public-key F]...\n"
    "                         [--format text|json] [--ignore-free] [--require-gpu]\n"
    "\n"
    "Read this host's GPUs through NVML (libnvidia-ml.so.1, loaded at run time;\n"
    "AIRPACK_NVML_LIBRARY names another) and re-run the memory plan signed into\n"
    "the bundle's lock (its signature is checked first) or into an installed\n"
    "release's receipt against them: the GPU count, each GPU's free and total\n"
    "memory, the driver, CUDA driver and compute capability the manifest's\n"
    "target.requires asks for. Verdict per model and per GPU:\n"
    "  fits            the planned context and concurrency fit\n"
    "  fits-reduced    only a smaller context or concurrency would fit (which)\n"
    "  does-not-fit    too few GPUs, weights too large, or a requirement unmet\n"
    "\n"
    "options:\n"
    "  -k, --public-key F   a trusted minisign public key, or a folder of *.pub\n"
    "                       files; may be repeated (for --installed, without it the\n"
    "                       key in the install record is used)\n"
    "      --installed DIR  check the active release of NAME under the prefix DIR\n"
    "  -p, --prefix DIR     with a BUNDLE: the memory of the release it would replace\n"
    "                       in DIR counts as free\n"
    "  -f, --format FMT     text (default) or json (docs/preflight.md)\n"
    "      --ignore-free    compare with total memory, not what is free now\n"
    "      --require-gpu    a host without NVML fails (default: a warning)\n"
    "\n"
    "exit status: 0 fits (or no NVML without --require-gpu), 1 fits only smaller or\n"
    "does not fit, or the signature is bad, 2 bad usage or unreadable input\n";

const struct option cmd_preflight_options[] = {
    {"public-key", required_argument, NULL, 'k'},
    {"installed", required_argument, NULL, 'I'},
    {"prefix", required_argument, NULL, 'p'},
    {"format", required_argument, NULL, 'f'},
    {"ignore-free", no_argument, NULL, 'F'},
    {"require-gpu", no_argument, NULL, 'G'},
    {NULL, 0, NULL, 0},
};

static double gib(json_int_t b)
{
    return (double)b / 1073741824.0;
}

static const char *verdict_text(const char *v)
{
    if (!v)
        return "unknown";
    if (!strcmp(v, "fits-reduced"))
        return "fits only with a smaller context or concurrency";
    if (!strcmp(v, "does-not-fit"))
        return "does not fit";
    if (!strcmp(v, "unknown"))
        return "unknown (no NVML)";
    return v;
}

void cli_preflight_print(FILE *f, const json_t *r)
{
    const json_t *d = json_object_get(r, "deployment"), *pf = json_object_get(r, "planned_for");
    const json_t *host = json_object_get(r, "host"), *nv = json_object_get(host, "nvml"), *x;
    size_t i;

    fprintf(f, "preflight: %s %s (sequence %lld)", json_string_value(json_object_get(d, "name")),
            json_string_value(json_object_get(d, "version")),
            (long long)json_integer_value(json_object_get(d, "sequence")));
    if (json_is_object(pf))
        fprintf(f, ", planned for %lld x %s (%.2f GiB at utilization %.2f)",
                (long long)json_integer_value(json_object_get(pf, "count")),
                json_string_value(json_object_get(pf, "model")) ? json_string_value(json_object_get(pf, "model")) : "GPU",
                json_number_value(json_object_get(pf, "memory_gib")),
                json_number_value(json_object_get(pf, "memory_utilization")));
    fputc('\n', f);
    if (json_is_true(json_object_get(nv, "available")))
        fprintf(f, "host: %zu GPU(s) through NVML '%s', driver %s, CUDA %s\n",
                json_array_size(json_object_get(host, "gpus")),
                json_string_value(json_object_get(nv, "library")),
                json_string_value(json_object_get(host, "driver_version")) ? json_string_value(json_object_get(host, "driver_version")) : "?",
                json_string_value(json_object_get(host, "cuda_version")) ? json_string_value(json_object_get(host, "cuda_version")) : "?");
    else
        fprintf(f, "host: no NVML: %s\n", json_string_value(json_object_get(nv, "problem")));
    json_array_foreach(json_object_get(r, "gpus"), i, x) {
        const json_t *hg = json_array_get(json_object_get(host, "gpus"), i);
        fprintf(f, "  GPU %zu  %s  pci %s  cc %s  total %.2f GiB  free %.2f GiB  budget %.2f GiB  "
                   "planned %.2f GiB  %s\n", i, json_string_value(json_object_get(x, "name")),
                json_string_value(json_object_get(hg, "pci_device_id")),
                json_string_value(json_object_get(hg, "compute_capability")) ? json_string_value(json_object_get(hg, "compute_capability")) : "?",
                gib(json_integer_value(json_object_get(x, "total_bytes"))),
                gib(json_integer_value(json_object_get(x, "free_bytes"))),
                gib(json_integer_value(json_object_get(x, "budget_bytes"))),
                gib(json_integer_value(json_object_get(x, "planned_bytes"))),
                json_is_true(json_object_get(x, "fits")) ? "fits" : "does not fit");
    }
    json_array_foreach(json_object_get(r, "models"), i, x)
        fprintf(f, "model '%s' (%s, %lld GPU(s)): %s\n", json_string_value(json_object_get(x, "name")),
                json_string_value(json_object_get(x, "runtime")),
                (long long)json_integer_value(json_object_get(x, "tensor_parallel")),
                json_string_value(json_object_get(x, "message")));
    json_array_foreach(json_object_get(r, "requirements"), i, x)
        fprintf(f, "requires %s >= %s: found %s, %s\n", json_string_value(json_object_get(x, "key")),
                json_string_value(json_object_get(x, "required")),
                json_string_value(json_object_get(x, "found")) ? json_string_value(json_object_get(x, "found")) : "nothing",
                json_is_true(json_object_get(x, "met")) ? "met" : "NOT met");
    fprintf(f, "verdict: %s\n", verdict_text(json_string_value(json_object_get(r, "verdict"))));
}

int cmd_preflight(int argc, char **argv)
{
    ap_keyring kr = {0};
    ap_error err;
    enum cli_format fmt = CLI_FMT_TEXT;
    const char *installed = NULL, *prefix = NULL, *name = NULL, *bundle = NULL;
    int c, rc, nkeys = 0, ignore_free = 0, require_gpu = 0;
    json_t *lock_doc = NULL, *report = NULL;
    ap_lock *lock = NULL;
    ap_pf_verdict v;

    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:p:f:", cmd_preflight_options, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (ap_keyring_add(&kr, optarg, &err) != AP_OK) {
                rc = cli_report(&err);
                goto out;
            }
            nkeys++;
            break;
        case 'I':
            installed = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 'f':
            if ((rc = cli_parse_format("preflight", optarg, CLI_FMT_TEXT | CLI_FMT_JSON, &fmt)))
                goto out;
            break;
        case 'F':
            ignore_free = 1;
            break;
        case 'G':
            require_gpu = 1;
            break;
        default:
            rc = cli_usage_error("preflight", "invalid option");
            goto out;
        }
    }
    if (installed) {
        if (argc - optind > 1) {
            rc = cli_usage_error("preflight", "more than one deployment name given");
            goto out;
        }
        name = optind < argc ? argv[optind] : NULL;
        if (prefix) {
            rc = cli_usage_error("preflight", "--prefix goes with a BUNDLE, not --installed");
            goto out;
        }
    } else {
        if (optind != argc - 1) {
            rc = cli_usage_error("preflight", optind >= argc ? "no bundle given (or --installed DIR)"
                                                             : "more than one bundle given");
            goto out;
        }
        bundle = argv[optind];
        if (nkeys == 0 || kr.n == 0) {
            rc = cli_usage_error("preflight", nkeys ? "no public key found in the given folders"
                                                    : "no trusted key: give --public-key");
            goto out;
        }
    }
    if (installed) {
        if ((rc = ap_installed_lock(installed, name, NULL, &kr, &lock, NULL, NULL, &err)) != AP_OK) {
            rc = cli_report(&err);
            goto out;
        }
        lock_doc = json_incref(lock->json);
        prefix = installed;
    } else if ((rc = ap_bundle_signed_lock(bundle, &kr, &lock_doc, &err)) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if ((rc = ap_preflight_run(lock_doc, prefix, ignore_free, &report, &err)) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    v = ap_preflight_verdict(report);
    if (fmt == CLI_FMT_JSON) {
        if ((rc = cli_print_json(stdout, report)))
            goto out;
    } else {
        cli_preflight_print(stdout, report);
    }
    if (v == AP_PF_UNKNOWN && !require_gpu)
        cli_warn("no NVML on this host: the GPUs were not checked (--require-gpu makes this an error)");
    rc = v == AP_PF_FITS || (v == AP_PF_UNKNOWN && !require_gpu) ? 0 : 1;
out:
    json_decref(report);
    json_decref(lock_doc);
    ap_lock_free(lock);
    ap_keyring_release(&kr);
    return rc;
}
