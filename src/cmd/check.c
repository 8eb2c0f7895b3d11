/*
 * check.c - `airpack check MANIFEST`: validate the manifest, check the
 * pins, read model facts, plan VRAM and evaluate policies; print the
 * result in the chosen format. Exit 0 when no unwaived error-level finding
 * remains, 1 when one does, 2 for bad usage or unreadable input.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze.h"
#include "cmd.h"
#include "common.h"
#include "manifest.h"
#include "report_glue.h"

const char cmd_check_usage[] =
    "usage: airpack check MANIFEST [--policy P]... [--waivers F] [--policy-params F]\n"
    "                     [--format text|json|sarif|markdown|html] [--output F]\n"
    "                     [--allow-outside-paths]\n"
    "\n"
    "Validate a deployment manifest, verify its content pins (sha256 and\n"
    "sha256sums), read the facts of every model from its files, plan GPU\n"
    "memory against the target and evaluate the policy packs (the manifest's\n"
    "'policies:' and every --policy).\n"
    "\n"
    "options:\n"
    "  --policy P             also evaluate policy pack P (a file, or a shipped\n"
    "                         pack name: baseline, offline-runtime, eu-sovereignty,\n"
    "                         nist-800-53); may repeat\n"
    "  --waivers F            apply the waivers in F (expired waivers do not apply)\n"
    "  --policy-params F      site parameters for the packs (allow-lists), YAML\n"
    "  --format FMT           text (default), json, sarif, markdown or html\n"
    "  --output F             write the result to F instead of standard output\n"
    "  --allow-outside-paths  allow absolute paths and paths outside the\n"
    "                         manifest's folder\n"
    "\n"
    "exit status: 0 passed, 1 a check failed (error-level finding, pin mismatch,\n"
    "VRAM does not fit), 2 bad usage or invalid input.\n";

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_check_options[] = {
    {"policy", required_argument, NULL, 'p'},
    {"waivers", required_argument, NULL, 'w'},
    {"policy-params", required_argument, NULL, 'P'},
    {"format", required_argument, NULL, 'f'},
    {"output", required_argument, NULL, 'o'},
    {"allow-outside-paths", no_argument, NULL, 'A'},
    {NULL, 0, NULL, 0},
};

int cmd_check(int argc, char **argv)
{
    const char **policies = NULL;
    size_t n_policies = 0;
    const char *waivers = NULL, *output = NULL, *params = NULL;
    enum cli_format fmt = CLI_FMT_TEXT;
    ap_manifest_opts mopts = {0};
    ap_analyze_opts aopts = {0};
    ap_manifest *m = NULL;
    json_t *analysis = NULL;
    ap_error err;
    int c, rc = 2;

    ap_error_clear(&err);
    policies = calloc((size_t)argc, sizeof *policies);
    if (!policies)
        return 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", cmd_check_options, NULL)) != -1) {
        switch (c) {
        case 'p':
            policies[n_policies++] = optarg;
            break;
        case 'w':
            waivers = optarg;
            break;
        case 'P':
            params = optarg;
            break;
        case 'f':
            if (cli_parse_format("check", optarg,
                                 CLI_FMT_TEXT | CLI_FMT_JSON | CLI_FMT_SARIF | CLI_FMT_MARKDOWN |
                                     CLI_FMT_HTML,
                                 &fmt))
                goto out;
            break;
        case 'o':
            output = optarg;
            break;
        case 'A':
            mopts.allow_outside_paths = 1;
            break;
        default:
            rc = cli_usage_error("check", "invalid option");
            goto out;
        }
    }
    if (optind != argc - 1) {
        rc = cli_usage_error("check", optind >= argc ? "missing MANIFEST" : "too many arguments");
        goto out;
    }
    if (ap_manifest_load(argv[optind], &mopts, &m, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    aopts.policies = policies;
    aopts.n_policies = n_policies;
    aopts.waivers = waivers;
    aopts.policy_params = params;
    if (ap_analyze(m, &aopts, &analysis, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (cli_write_report(analysis, fmt, output, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    rc = ap_analysis_passed(analysis) ? 0 : 1;
out:
    json_decref(analysis);
    ap_manifest_free(m);
    free(policies);
    return rc;
}
