/*
 * list.c - `airpack list`: the releases installed under a prefix.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "install.h"

const char cmd_list_usage[] =
"usage: airpack list --prefix DIR [--format text|json]\n"
    "\n"
    "List the deployments and releases installed under DIR; '*' marks the\n"
    "active release. Read-only.\n"
    "\n"
    "options:\n"
    "  -p, --prefix DIR   the install root\n"
    "  -f, --format FMT   text (default) or json (docs/install.md)\n"
    "\n"
    "exit status: 0 listed, 2 bad usage or unreadable prefix\n";

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_list_options[] = {
    {"prefix", required_argument, NULL, 'p'},
    {"format", required_argument, NULL, 'f'},
    {NULL, 0, NULL, 0},
};

int cmd_list(int argc, char **argv)
{
    const char *prefix = NULL;
    enum cli_format fmt = CLI_FMT_TEXT;
    json_t *doc = NULL, *deps;
    ap_error err;
    int c, rc;

    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:f:", cmd_list_options, NULL)) != -1) {
        switch (c) {
        case 'p':
            prefix = optarg;
            break;
        case 'f':
            if ((rc = cli_parse_format("list", optarg, CLI_FMT_TEXT | CLI_FMT_JSON, &fmt)))
                return rc;
            break;
        default:
            return cli_usage_error("list", "invalid option");
        }
    }
    if (optind != argc)
        return cli_usage_error("list", "unexpected argument '%s'", argv[optind]);
    if (!prefix)
        return cli_usage_error("list", "no --prefix given");
    if (ap_install_list(prefix, &doc, &err) != AP_OK)
        return cli_report(&err);
    if (fmt == CLI_FMT_JSON) {
        rc = cli_print_json(stdout, doc);
        json_decref(doc);
        return rc;
    }
    deps = json_object_get(doc, "deployments");
    if (json_array_size(deps) == 0)
        printf("no releases installed in '%s'\n", prefix);
    for (size_t i = 0; i < json_array_size(deps); i++) {
        json_t *d = json_array_get(deps, i), *rels = json_object_get(d, "releases");
        printf("%s (highest sequence %lld)\n", json_string_value(json_object_get(d, "name")),
               (long long)json_integer_value(json_object_get(d, "highest_sequence")));
        for (size_t k = 0; k < json_array_size(rels); k++) {
            json_t *r = json_array_get(rels, k);
            const char *when = json_string_value(json_object_get(r, "installed_at"));
            const char *kid = json_string_value(json_object_get(r, "key_id"));
            printf("  %c %-24s installed %s, key %s\n",
                   json_is_true(json_object_get(r, "active")) ? '*' : ' ',
                   json_string_value(json_object_get(r, "release")), when ? when : "?",
                   kid ? kid : "?");
        }
    }
    json_decref(doc);
    return 0;
}
