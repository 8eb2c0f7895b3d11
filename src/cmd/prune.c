/*
 * prune.c - `airpack prune`: remove old releases of an install prefix and
 * the store objects no release uses any more (src/site/store.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "site/store.h"

const char cmd_prune_usage[] =
"usage: airpack prune --prefix DIR [--keep N] [--format text|json] [NAME]\n"
    "\n"
    "Remove old releases of the deployment NAME (default: every deployment under\n"
    "DIR), then the objects of DIR/.airpack/objects that no remaining release uses,\n"
    "and say how many bytes that freed. The active release and the previous one\n"
    "(the one rollback returns to) are never removed. Crash-safe: each release is\n"
    "moved aside before it is deleted, so a kill at any moment leaves every\n"
    "remaining release intact (the next run finishes the cleanup).\n"
    "\n"
    "options:\n"
    "  -p, --prefix DIR   the install root\n"
    "  -k, --keep N       keep the N newest releases per deployment (default 2),\n"
    "                     and always the active and the previous one\n"
    "  -f, --format FMT   text (default) or json\n"
    "\n"
    "exit status: 0 pruned (or nothing to prune), 2 bad usage or an I/O error\n";

const struct option cmd_prune_options[] = {
    {"prefix", required_argument, NULL, 'p'},
    {"keep", required_argument, NULL, 'k'},
    {"format", required_argument, NULL, 'f'},
    {NULL, 0, NULL, 0},
};

int cmd_prune(int argc, char **argv)
{
    ap_prune_opts o;
    enum cli_format fmt = CLI_FMT_TEXT;
    json_t *doc = NULL, *x;
    ap_error err;
    size_t i;
    int c, rc;

    memset(&o, 0, sizeof o);
    o.keep = 2;
    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:k:f:", cmd_prune_options, NULL)) != -1) {
        switch (c) {
        case 'p':
            o.prefix = optarg;
            break;
        case 'k': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 1000000)
                return cli_usage_error("prune", "bad --keep '%s': use a number from 1", optarg);
            o.keep = (unsigned)v;
            break;
        }
        case 'f':
            if ((rc = cli_parse_format("prune", optarg, CLI_FMT_TEXT | CLI_FMT_JSON, &fmt)))
                return rc;
            break;
        default:
            return cli_usage_error("prune", "invalid option");
        }
    }
    if (optind < argc)
        o.name = argv[optind++];
    if (optind != argc)
        return cli_usage_error("prune", "unexpected argument '%s'", argv[optind]);
    if (!o.prefix)
        return cli_usage_error("prune", "no --prefix given");
    if (ap_prune(&o, &doc, &err) != AP_OK)
        return cli_report(&err);
    if (fmt == CLI_FMT_JSON) {
        rc = cli_print_json(stdout, doc) == 0 ? 0 : 2;
        json_decref(doc);
        return rc;
    }
    json_array_foreach(json_object_get(doc, "releases_removed"), i, x)
        printf("removed %s %s: %lld bytes freed\n", json_string_value(json_object_get(x, "name")),
               json_string_value(json_object_get(x, "release")),
               (long long)json_integer_value(json_object_get(x, "bytes_freed")));
    json_array_foreach(json_object_get(doc, "releases_kept"), i, x)
        printf("kept %s %s (%s)\n", json_string_value(json_object_get(x, "name")),
               json_string_value(json_object_get(x, "release")),
               json_string_value(json_object_get(x, "why")));
    printf("removed %lld unused objects: %lld bytes\n",
           (long long)json_integer_value(json_object_get(doc, "objects_removed")),
           (long long)json_integer_value(json_object_get(doc, "object_bytes_freed")));
    printf("freed %lld bytes in '%s'\n",
           (long long)json_integer_value(json_object_get(doc, "bytes_freed")), o.prefix);
    json_decref(doc);
    return 0;
}
