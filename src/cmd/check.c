/*
 * check.c - `airpack check` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_check_usage[] =
"usage: airpack check MANIFEST [--policy P]... [--waivers F]\n"
    "                     [--format text|json|sarif|markdown|html] [--output F]\n"
    "\n"
    "Validate a manifest, check its pins, read model facts, plan VRAM and\n"
    "evaluate policies.\n";

int cmd_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack check' is not implemented yet\n");
    return 2;
}
