/*
 * keygen.c - `airpack keygen` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_keygen_usage[] =
"usage: airpack keygen --public-key F --secret-key F [--no-password] [--force]\n"
    "                      [--password-file F]\n"
    "\n"
    "Create an Ed25519 key pair in minisign's file formats.\n";

int cmd_keygen(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack keygen' is not implemented yet\n");
    return 2;
}
