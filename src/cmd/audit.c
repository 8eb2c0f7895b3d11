/*
 * audit.c - `airpack audit` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_audit_usage[] =
"usage: airpack audit (BUNDLE | --installed DIR) [--policy P]...\n"
    "                     [--format text|json|sarif|markdown|html] [--output F]\n"
    "\n"
    "The auditor's report on a bundle or an installed prefix.\n";

int cmd_audit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack audit' is not implemented yet\n");
    return 2;
}
