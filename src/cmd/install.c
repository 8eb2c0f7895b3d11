/*
 * install.c - `airpack install` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_install_usage[] =
"usage: airpack install BUNDLE --public-key F --prefix DIR [--allow-downgrade]\n"
    "\n"
    "Verify and install a bundle atomically.\n";

int cmd_install(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack install' is not implemented yet\n");
    return 2;
}
