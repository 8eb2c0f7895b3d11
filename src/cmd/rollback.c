/*
 * rollback.c - `airpack rollback`: switch a deployment back to its
 * previous installed release.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "install.h"

const char cmd_rollback_usage[] =
"usage: airpack rollback --prefix DIR [NAME]\n"
    "\n"
    "Switch DIR/current/NAME back to the installed release with the highest\n"
    "sequence below the active one (atomically). NAME may be left out when DIR\n"
    "holds one deployment. The highest sequence seen is kept, so a later install\n"
    "must still be above it (or use --allow-downgrade).\n"
    "\n"
    "options:\n"
    "  -p, --prefix DIR   the install root\n"
    "\n"
    "exit status: 0 switched, 1 nothing to roll back to, 2 bad usage or I/O error\n";

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_rollback_options[] = {
    {"prefix", required_argument, NULL, 'p'},
    {NULL, 0, NULL, 0},
};

int cmd_rollback(int argc, char **argv)
{
    const char *prefix = NULL, *name = NULL;
    char from[AP_RELEASE_MAX], to[AP_RELEASE_MAX];
    ap_error err;
    int c;

    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:", cmd_rollback_options, NULL)) != -1) {
        if (c == 'p')
            prefix = optarg;
        else
            return cli_usage_error("rollback", "invalid option");
    }
    if (optind < argc)
        name = argv[optind++];
    if (optind != argc)
        return cli_usage_error("rollback", "unexpected argument '%s'", argv[optind]);
    if (!prefix)
        return cli_usage_error("rollback", "no --prefix given");
    if (ap_rollback(prefix, name, from, to, &err) != AP_OK)
        return cli_report(&err);
    printf("rolled back from %s to %s in '%s'\n", from, to, prefix);
    return 0;
}
