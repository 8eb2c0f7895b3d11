/*
 * audit.c - `airpack audit`: the auditor's report on an installed prefix
 * (drift detection: re-verify each receipt, re-hash every installed file)
 * or on a bundle (src/audit.h builds the report document).
 *
 * Rendering: the report is one JSON document; each output format is a
 * renderer over it (the `renderers` table below). Text and JSON render the
 * whole document; SARIF, Markdown and HTML render its "evidence" (the
 * verified lock's analysis plus the audit's findings) with report.h.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"
#include "cmd.h"
#include "common.h"
#include "report_glue.h"
#include "report.h"
#include "sign.h"
#include "trust/trust.h"

const char cmd_audit_usage[] =
"usage: airpack audit (BUNDLE | --installed DIR [--all-releases]) [--name NAME]\n"
    "                     [--public-key F]... [--trust FILE]\n"
    "                     [--policy P]... [--policy-params F]\n"
    "                     [--format text|json|sarif|markdown|html] [--output F]\n"
    "\n"
    "The auditor's report.\n"
    "  --installed DIR: for each deployment under DIR (or --name), re-verify the\n"
    "  receipt's signature and re-hash every file of the active release, like\n"
    "  debsums or rpm -V; list modified, missing and unexpected files.\n"
    "  BUNDLE: verify every artifact of a bundle without installing it, going on\n"
    "  past mismatches, and show its metadata and build-time policy summary.\n"
    "\n"
    "options:\n"
    "  -i, --installed DIR   audit the releases installed under DIR\n"
    "  -n, --name NAME       only this deployment (with --installed)\n"
    "      --all-releases    every installed release, not only the active one (a\n"
    "                        file of the object store changed in place is reported\n"
    "                        in each release that shares it)\n"
    "  -k, --public-key F    a trusted key or folder of *.pub files; may repeat.\n"
    "                        Without it, an installed receipt is checked against\n"
    "                        the key recorded at install time (the report says so)\n"
    "                        and a bundle's signature is reported as not checked\n"
    "      --trust FILE      count the signatures under a site trust file\n"
    "                        (docs/trust.md): k distinct 'bundles' keys not revoked\n"
    "                        now. With --installed and neither --trust nor\n"
    "                        --public-key, DIR/.airpack/trust.json when it exists,\n"
    "                        so a key revoked since an install stops counting\n"
    "  -p, --policy P        evaluate policy pack P (a shipped name such as\n"
    "                        baseline, or a file) over the analysis each verified\n"
    "                        lock carries; may be repeated; an error-level\n"
    "                        finding fails the audit\n"
    "      --policy-params F site parameters for the packs (YAML)\n"
    "  -f, --format FMT      text (default), json (docs/install.md), or sarif,\n"
    "                        markdown or html: the evidence report (the verified\n"
    "                        lock's analysis with the audit's findings); with\n"
    "                        --installed, one deployment (--name)\n"
    "  -o, --output F        write the report to F instead of standard output\n"
    "\n"
    "exit status: 0 intact, 1 drift, failed or unchecked signature, failed\n"
    "artifact or policy error, 2 bad usage or unreadable input\n";

static void print_list(FILE *f, const char *label, const json_t *arr, int with_reason)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *x = json_array_get(arr, i);
        if (with_reason)
            fprintf(f, "  %s: %s (%s)\n", label, json_string_value(json_object_get(x, "path")),
                    json_string_value(json_object_get(x, "reason")));
        else
            fprintf(f, "  %s: %s\n", label, json_string_value(x));
    }
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "?";
}

/* One line for a preflight verdict (docs/preflight.md). */
static void print_verdict(FILE *f, const char *label, const json_t *pf)
{
    const char *v = json_string_value(json_object_get(pf, "verdict"));
    const json_t *host = json_object_get(pf, "host"), *g0 = json_array_get(json_object_get(host, "gpus"), 0);
    const char *problem = json_string_value(json_array_get(json_object_get(pf, "problems"), 0));
    fprintf(f, "  %s: ", label);
    if (!json_is_object(pf))
        fprintf(f, "not recorded\n");
    else if (json_is_true(json_object_get(pf, "skipped")))
        fprintf(f, "skipped (--skip-preflight)\n");
    else if (json_string_value(json_object_get(pf, "error")))
        fprintf(f, "failed: %s\n", json_string_value(json_object_get(pf, "error")));
    else if (v && !strcmp(v, "unknown") && json_is_false(json_object_get(json_object_get(host, "nvml"), "available")))
        fprintf(f, "not checked, no NVML (%s)\n", str(json_object_get(host, "nvml"), "problem"));
    else {
        fprintf(f, "%s", !v ? "?" : !strcmp(v, "does-not-fit") ? "does not fit"
                       : !strcmp(v, "fits-reduced") ? "fits only with a smaller context or concurrency" : v);
        if (g0)
            fprintf(f, " (%zu GPU(s), %s, driver %s)", json_array_size(json_object_get(host, "gpus")),
                    str(g0, "name"), str(host, "driver_version"));
        if (problem && v && strcmp(v, "fits") != 0)
            fprintf(f, ": %s", problem);
        fputc('\n', f);
    }
}

static void print_preflight(FILE *f, const json_t *pf)
{
    if (!json_is_object(pf))
        return;
    print_verdict(f, "GPU preflight at install", json_object_get(pf, "install_preflight"));
    print_verdict(f, "GPU preflight now", json_object_get(pf, "now"));
}

/* The deployment's last activation (docs/install.md, "Activation"). */
static void print_activation(FILE *f, const json_t *a)
{
    const char *r = json_string_value(json_object_get(a, "result"));
    const json_t *rb = json_object_get(a, "rollback");
    if (!json_is_object(a) || !r)
        return;
    fprintf(f, "  last activation: %s ", str(a, "release"));
    if (!strcmp(r, "ok"))
        fprintf(f, "serves (%s)\n", str(a, "finished_at"));
    else if (!strcmp(r, "rolled-back"))
        fprintf(f, "rolled back to %s (failed at %s: %s) %s\n", str(rb, "to"), str(a, "step"), str(a, "message"),
                str(a, "finished_at"));
    else if (!strcmp(r, "stopped"))
        fprintf(f, "stopped, no previous release (failed at %s: %s) %s\n", str(a, "step"), str(a, "message"),
                str(a, "finished_at"));
    else
        fprintf(f, "%s: rollback to %s failed too (%s: %s; then %s) %s\n", r, str(rb, "to"), str(a, "step"),
                str(a, "message"), str(rb, "message"), str(a, "finished_at"));
}

/* The "policy" part of a report: packs, counts, then each finding. */
static void print_policy(FILE *f, const json_t *pol)
{
    const json_t *packs = json_object_get(pol, "packs"), *fs = json_object_get(pol, "findings");
    const json_t *sum = json_object_get(pol, "summary");
    if (!json_is_object(pol))
        return;
    fprintf(f, "  policies:");
    for (size_t i = 0; i < json_array_size(packs); i++)
        fprintf(f, "%s %s", i ? "," : "", str(json_array_get(packs, i), "name"));
    fprintf(f, ": %lld errors, %lld warnings, %lld notes\n",
            (long long)json_integer_value(json_object_get(sum, "errors")),
            (long long)json_integer_value(json_object_get(sum, "warnings")),
            (long long)json_integer_value(json_object_get(sum, "notes")));
    if (json_object_get(pol, "error"))
        fprintf(f, "    error: %s\n", str(pol, "error"));
    for (size_t i = 0; i < json_array_size(fs); i++) {
        const json_t *x = json_array_get(fs, i);
        fprintf(f, "    %s %s: %s\n", str(x, "level"), str(x, "rule"), str(x, "message"));
    }
}

static int render_text_installed(FILE *f, const json_t *doc)
{
    const json_t *deps = json_object_get(doc, "deployments"), *sum = json_object_get(doc, "summary");
    fprintf(f, "audit of '%s'\n", str(doc, "prefix"));
    if (json_array_size(deps) == 0)
        fprintf(f, "  no deployment installed\n");
    for (size_t i = 0; i < json_array_size(deps); i++) {
        const json_t *d = json_array_get(deps, i), *sig = json_object_get(d, "signature");
        const json_t *files = json_object_get(d, "files");
        fprintf(f, "%s %s: ", str(d, "name"), str(d, "release"));
        if (json_object_get(d, "error") && !json_is_true(json_object_get(sig, "valid")))
            fprintf(f, "%s\n", str(d, "error"));
        else if (json_is_true(json_object_get(sig, "valid")))
            fprintf(f, "receipt signature valid (key %s, from the %s)\n", str(sig, "key_id"),
                    str(sig, "key_source"));
        else
            fprintf(f, "receipt signature INVALID: %s\n", str(sig, "message"));
        if (files)
            fprintf(f, "  files: %lld checked, %lld intact\n",
                    (long long)json_integer_value(json_object_get(files, "checked")),
                    (long long)json_integer_value(json_object_get(files, "ok")));
        print_list(f, "modified", json_object_get(d, "modified"), 1);
        print_list(f, "missing", json_object_get(d, "missing"), 0);
        print_list(f, "unexpected", json_object_get(d, "unexpected"), 0);
        print_preflight(f, json_object_get(d, "preflight"));
        print_activation(f, json_object_get(json_object_get(d, "activation"), "last"));
        print_policy(f, json_object_get(d, "policy"));
    }
    fprintf(f, "result: %s (%lld modified, %lld missing, %lld unexpected, %lld signature failures, "
               "%lld policy failures)\n",
            json_is_true(json_object_get(sum, "passed")) ? "intact" : "FAILED",
            (long long)json_integer_value(json_object_get(sum, "modified")),
            (long long)json_integer_value(json_object_get(sum, "missing")),
            (long long)json_integer_value(json_object_get(sum, "unexpected")),
            (long long)json_integer_value(json_object_get(sum, "signature_failures")),
            (long long)json_integer_value(json_object_get(sum, "policy_failures")));
    return 0;
}

static int render_text_bundle(FILE *f, const json_t *doc)
{
    const json_t *v = json_object_get(doc, "verify"), *sig = json_object_get(v, "signature");
    const json_t *arts = json_object_get(doc, "artifacts"), *sum = json_object_get(doc, "summary");
    const json_t *an = json_object_get(doc, "analysis"), *e = json_object_get(v, "error");
    fprintf(f, "audit of bundle '%s'\n", str(doc, "bundle"));
    if (json_object_get(v, "name"))
        fprintf(f, "  %s %s (sequence %lld), created %s\n", str(v, "name"), str(v, "version"),
                (long long)json_integer_value(json_object_get(v, "sequence")), str(v, "created"));
    if (json_is_object(sig))
        fprintf(f, "  signature: %s key %s%s\n",
                json_is_true(json_object_get(sig, "checked")) ? "valid, trusted" : "NOT CHECKED,",
                str(sig, "key_id"),
                json_is_true(json_object_get(sig, "checked")) ? "" : " (no --public-key given)");
    for (size_t i = 0; i < json_array_size(arts); i++) {
        const json_t *a = json_array_get(arts, i);
        fprintf(f, "  %-16s %-8s %s\n", str(a, "status"), str(a, "role"), str(a, "path"));
    }
    if (json_is_object(an))
        fprintf(f, "  build-time policy summary: %lld errors, %lld warnings, %s\n",
                (long long)json_integer_value(json_object_get(an, "errors")),
                (long long)json_integer_value(json_object_get(an, "warnings")),
                json_is_true(json_object_get(an, "passed")) ? "passed" : "not passed");
    print_policy(f, json_object_get(doc, "policy"));
    if (json_is_object(e))
        fprintf(f, "  error: %s\n", str(e, "message"));
    fprintf(f, "result: %s (%lld of %lld artifacts failed)\n",
            json_is_true(json_object_get(sum, "passed"))              ? "intact"
            : !json_is_true(json_object_get(sum, "signature_checked")) &&
                    !json_is_object(e)                                ? "UNVERIFIED: signature not checked"
                                                                      : "FAILED",
            (long long)json_integer_value(json_object_get(sum, "failed")),
            (long long)json_integer_value(json_object_get(sum, "artifacts")));
    return 0;
}

static int render_text(FILE *f, const json_t *doc)
{
    return strcmp(str(doc, "kind"), "bundle") == 0 ? render_text_bundle(f, doc)
                                                   : render_text_installed(f, doc);
}

static int render_json(FILE *f, const json_t *doc)
{
    return cli_print_json(f, doc);
}

/* SARIF, Markdown and HTML: the report module (report.h) renders the
 * evidence document of the audit (the verified lock's analysis with the
 * audit's findings, policy results, bundle and artifact evidence). An
 * installed prefix with several deployments needs --name for these. */
static int render_evidence(FILE *f, const json_t *doc, const char *fmt)
{
    const json_t *ev = json_object_get(doc, "evidence");
    ap_error err;
    if (strcmp(str(doc, "kind"), "installed") == 0) {
        const json_t *deps = json_object_get(doc, "deployments");
        if (json_array_size(deps) != 1) {
            cli_error("the prefix holds %zu deployments: choose one with --name for --format %s",
                      json_array_size(deps), fmt);
            return 2;
        }
        ev = json_object_get(json_array_get(deps, 0), "evidence");
    }
    if (!json_is_object(ev)) {
        cli_error("no verified lock to report on (use --format text or json to see why)");
        return 1;
    }
    if (ap_report_write(f, ev, fmt, &err) != AP_OK)
        return cli_report(&err);
    return 0;
}

static int render_sarif(FILE *f, const json_t *doc)
{
    return render_evidence(f, doc, "sarif");
}

static int render_markdown(FILE *f, const json_t *doc)
{
    return render_evidence(f, doc, "markdown");
}

static int render_html(FILE *f, const json_t *doc)
{
    return render_evidence(f, doc, "html");
}

/* The renderers of the report document. */
static const struct {
    enum cli_format fmt;
    int (*render)(FILE *f, const json_t *doc);
} renderers[] = {
    {CLI_FMT_TEXT, render_text},
    {CLI_FMT_JSON, render_json},
    {CLI_FMT_SARIF, render_sarif},
    {CLI_FMT_MARKDOWN, render_markdown},
    {CLI_FMT_HTML, render_html},
};

/* Output through cli_write_output (atomic for --output): the renderers
 * print their own errors and return exit codes. */
struct render_ctx {
    const json_t *doc;
    enum cli_format fmt;
    int rc;          /* the renderer's exit code */
};

static int write_rendered(FILE *f, void *ctx, ap_error *err)
{
    struct render_ctx *r = ctx;
    for (size_t i = 0; i < sizeof renderers / sizeof renderers[0]; i++)
        if (renderers[i].fmt == r->fmt && (r->rc = renderers[i].render(f, r->doc)) != 0)
            return ap_error_set(err, AP_ERR_INTERNAL, "rendering failed");
    return AP_OK;
}

#define AUDIT_MAX_POLICIES 64

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_audit_options[] = {
    {"installed", required_argument, NULL, 'i'},
    {"name", required_argument, NULL, 'n'},
    {"all-releases", no_argument, NULL, 'A'},
    {"public-key", required_argument, NULL, 'k'},
    {"format", required_argument, NULL, 'f'},
    {"output", required_argument, NULL, 'o'},
    {"policy", required_argument, NULL, 'p'},
    {"policy-params", required_argument, NULL, 'P'},
    {"trust", required_argument, NULL, 't'},
    {NULL, 0, NULL, 0},
};

int cmd_audit(int argc, char **argv)
{
    const char *policies[AUDIT_MAX_POLICIES + 1] = {NULL};
    size_t n_policies = 0;
    ap_audit_opts ao;
    const char *installed = NULL, *name = NULL, *output = NULL, *bundle = NULL;
    enum cli_format fmt = CLI_FMT_TEXT;
    unsigned accepted = 0;
    ap_keyring kr = {0};
    ap_error err;
    json_t *doc = NULL;
    int c, rc;
    const char *trust_file = NULL;
    ap_trust *trust = NULL;

    for (size_t i = 0; i < sizeof renderers / sizeof renderers[0]; i++)
        accepted |= renderers[i].fmt;
    ap_error_clear(&err);
    optind = 1;
    memset(&ao, 0, sizeof ao);
    while ((c = getopt_long(argc, argv, "i:n:k:f:o:p:", cmd_audit_options, NULL)) != -1) {
        switch (c) {
        case 'i':
            installed = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'A':
            ao.all_releases = 1;
            break;
        case 'k':
            if (ap_keyring_add(&kr, optarg, &err) != AP_OK) {
                rc = cli_report(&err);
                goto out;
            }
            break;
        case 'f':
            if ((rc = cli_parse_format("audit", optarg, accepted, &fmt)))
                goto out;
            break;
        case 'o':
            output = optarg;
            break;
        case 'p':
            if (n_policies == AUDIT_MAX_POLICIES) {
                rc = cli_usage_error("audit", "more than %d --policy options", AUDIT_MAX_POLICIES);
                goto out;
            }
            policies[n_policies++] = optarg;
            break;
        case 'P':
            ao.policy_params = optarg;
            break;
        case 't':
            trust_file = optarg;
            break;
        default:
            rc = cli_usage_error("audit", "invalid option");
            goto out;
        }
    }
    if (optind < argc)
        bundle = argv[optind++];
    if (optind != argc || (bundle && installed) || (!bundle && !installed)) {
        rc = cli_usage_error("audit", "give either a BUNDLE or --installed DIR");
        goto out;
    }
    if (name && !installed) {
        rc = cli_usage_error("audit", "--name goes with --installed");
        goto out;
    }
    if (trust_file && kr.n) {
        rc = cli_usage_error("audit", "give either --trust or --public-key, not both");
        goto out;
    }
    if (!trust_file && !kr.n && installed) {
        /* the prefix's recorded trust file, when it has one */
        char tp[4096];
        struct stat st;
        if (snprintf(tp, sizeof tp, "%s/%s", installed, AP_TRUST_PREFIX_FILE) < (int)sizeof tp &&
            stat(tp, &st) == 0) {
            if (ap_trust_load(tp, &trust, &err) != AP_OK) {
                rc = cli_report(&err);
                goto out;
            }
        }
    } else if (trust_file) {
        if (ap_trust_load(trust_file, &trust, &err) != AP_OK) {
            rc = cli_report(&err);
            goto out;
        }
        if (ap_trust_check_self(trust, &err) != AP_OK) {
            rc = cli_report(&err);
            goto out;
        }
    }
    ao.trust = trust;
    ao.keys = &kr;
    ao.policies = n_policies ? policies : NULL;
    rc = installed ? ap_audit_installed(installed, name, &ao, &doc, &err)
                   : ap_audit_bundle(bundle, &ao, &doc, &err);
    if (rc != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    {
        struct render_ctx r = {doc, fmt, 0};
        if (cli_write_output(output, write_rendered, &r, &err) != AP_OK) {
            /* a renderer that failed has said why; an I/O error has not */
            rc = r.rc ? r.rc : cli_report(&err);
            goto out;
        }
    }
    rc = json_is_true(json_object_get(json_object_get(doc, "summary"), "passed")) ? 0 : 1;
out:
    json_decref(doc);
    ap_keyring_release(&kr);
    ap_trust_free(trust);
    return rc;
}
