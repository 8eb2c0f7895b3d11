/*
 * inspect.c - `airpack inspect` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_inspect_usage[] =
"usage: airpack inspect BUNDLE [--format text|json]\n"
    "\n"
    "Show what a bundle holds, read without trusting it.\n";

int cmd_inspect(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack inspect' is not implemented yet\n");
    return 2;
}
