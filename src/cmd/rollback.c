/*
 * rollback.c - `airpack rollback` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_rollback_usage[] =
"usage: airpack rollback --prefix DIR [NAME]\n"
    "\n"
    "Switch back to the previous installed release.\n";

int cmd_rollback(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack rollback' is not implemented yet\n");
    return 2;
}
