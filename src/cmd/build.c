/*
 * build.c - `airpack build` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_build_usage[] =
"usage: airpack build MANIFEST --secret-key F --output BUNDLE [--policy P]...\n"
    "                     [--password-file F] [--compress zstd[:LEVEL]] [--quiet]\n"
    "\n"
    "Write a signed, checksummed, reproducible offline bundle.\n";

int cmd_build(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack build' is not implemented yet\n");
    return 2;
}
