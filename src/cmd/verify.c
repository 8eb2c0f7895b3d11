/*
 * verify.c - `airpack verify` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_verify_usage[] =
"usage: airpack verify BUNDLE|- --public-key F [--public-key F]... [--format text|json]\n"
    "\n"
    "Check the signature and every hash of a bundle in one streaming pass.\n";

int cmd_verify(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack verify' is not implemented yet\n");
    return 2;
}
