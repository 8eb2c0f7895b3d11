/*
 * list.c - `airpack list` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_list_usage[] =
"usage: airpack list --prefix DIR [--format text|json]\n"
    "\n"
    "List the installed releases.\n";

int cmd_list(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack list' is not implemented yet\n");
    return 2;
}
