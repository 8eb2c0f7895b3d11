/*
 * activate.c - `airpack activate`: start the active release's services and
 * keep it only when it serves; roll back otherwise (src/site/activate.h,
 * docs/install.md "Activation").
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activate_glue.h"
#include "cmd.h"
#include "common.h"
#include "site/activate.h"

const char cmd_activate_usage[] =
"usage: airpack activate --prefix DIR [NAME] [--systemd-dir DIR] [--service-manager CMD]\n"
    "                        [--timeout SECONDS] [--format text|json] [--quiet]\n"
    "\n"
    "Start the active release of NAME (or of the prefix's only deployment) and\n"
    "keep it only when it serves:\n"
    "  1. link its service units into the systemd unit folder;\n"
    "  2. CMD daemon-reload, then CMD restart each unit;\n"
    "  3. wait for each runtime's health endpoint (/health; /api/version for\n"
    "     Ollama) to answer 200;\n"
    "  4. GET /v1/models and check that it names the installed model.\n"
    "If a step fails, current is switched back to the previous release, its\n"
    "services are restarted and checked the same way, and the exit status is 1;\n"
    "without a previous release the failed services are stopped. The outcome is\n"
    "written into the release's install record and the activation log. An\n"
    "activation that was killed is taken up by the next run.\n"
    "\n"
    "options:\n"
    "  -p, --prefix DIR           the install root\n"
    "  -s, --systemd-dir DIR      unit folder (default /etc/systemd/system, or\n"
    "                             $AIRPACK_SYSTEMD_DIR)\n"
    "  -m, --service-manager CMD  the service manager command, split on blanks\n"
    "                             (default systemctl, or $AIRPACK_SERVICE_MANAGER);\n"
    "                             called as CMD daemon-reload | restart U | stop U\n"
    "  -t, --timeout SECONDS      health wait per unit (default 120)\n"
    "  -f, --format FMT           text (default) or json (the activation record)\n"
    "  -q, --quiet                no progress lines on standard error\n"
    "\n"
    "exit status: 0 the release serves, 1 it does not (rolled back or stopped),\n"
    "2 bad usage, nothing installed\n";

const struct option cmd_activate_options[] = {
    {"prefix", required_argument, NULL, 'p'},
    {"systemd-dir", required_argument, NULL, 's'},
    {"service-manager", required_argument, NULL, 'm'},
    {"timeout", required_argument, NULL, 't'},
    {"format", required_argument, NULL, 'f'},
    {"quiet", no_argument, NULL, 'q'},
    {NULL, 0, NULL, 0},
};

static void on_log(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "activate: %s\n", line);
}

int cli_activate_parse_timeout(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v > 0 && v <= 86400))
        return -1;
    *out = v;
    return 0;
}

int cli_activate_run(const ap_activate_opts *o, int json_out)
{
    ap_activate_result res;
    ap_error err;
    int rc;

    ap_error_clear(&err);
    rc = ap_activate(o, &res, &err);
    if (json_out && res.record) {
        if (cli_print_json(stdout, res.record)) {
            ap_activate_result_release(&res);
            return 2;
        }
    } else if (rc == AP_OK) {
        const json_t *u;
        size_t i;
        printf("activated %s %s", res.name, res.release);
        if (res.resumed)
            printf(" (an interrupted activation taken up)");
        printf("\n");
        json_array_foreach(json_object_get(res.record, "units"), i, u)
            printf("  %s: healthy at %s, /v1/models names %s\n",
                   json_string_value(json_object_get(u, "unit")), json_string_value(json_object_get(u, "url")),
                   json_string_value(json_object_get(u, "models")) ? json_string_value(json_object_get(u, "models")) : "?");
    }
    if (rc != AP_OK)
        rc = cli_report(&err);
    ap_activate_result_release(&res);
    return rc;
}

int cmd_activate(int argc, char **argv)
{
    ap_activate_opts o;
    enum cli_format fmt = CLI_FMT_TEXT;
    int c, rc, quiet = 0;

    memset(&o, 0, sizeof o);
    o.systemd_dir = getenv("AIRPACK_SYSTEMD_DIR");
    o.service_manager = getenv("AIRPACK_SERVICE_MANAGER");
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:s:m:t:f:q", cmd_activate_options, NULL)) != -1) {
        switch (c) {
        case 'p':
            o.prefix = optarg;
            break;
        case 's':
            o.systemd_dir = optarg;
            break;
        case 'm':
            o.service_manager = optarg;
            break;
        case 't':
            if (cli_activate_parse_timeout(optarg, &o.timeout_s) != 0)
                return cli_usage_error("activate", "--timeout wants seconds (0 < N <= 86400), not '%s'", optarg);
            break;
        case 'f':
            if ((rc = cli_parse_format("activate", optarg, CLI_FMT_TEXT | CLI_FMT_JSON, &fmt)))
                return rc;
            break;
        case 'q':
            quiet = 1;
            break;
        default:
            return cli_usage_error("activate", "invalid option");
        }
    }
    if (optind < argc)
        o.name = argv[optind++];
    if (optind != argc)
        return cli_usage_error("activate", "unexpected argument '%s'", argv[optind]);
    if (!o.prefix)
        return cli_usage_error("activate", "no --prefix given");
    if (!quiet) {
        o.log = on_log;
        o.log_ctx = NULL;
    }
    return cli_activate_run(&o, fmt == CLI_FMT_JSON);
}
