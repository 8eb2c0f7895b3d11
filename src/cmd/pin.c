/*
 * pin.c - `airpack pin` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_pin_usage[] =
"usage: airpack pin MANIFEST\n"
    "\n"
    "Write a .sha256 pin file beside each unpinned path of a manifest.\n";

int cmd_pin(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack pin' is not implemented yet\n");
    return 2;
}
