/*
 * sbom.c - `airpack sbom` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_sbom_usage[] =
"usage: airpack sbom (MANIFEST|BUNDLE) [--output F]\n"
    "\n"
    "A CycloneDX 1.6 SBOM with machine-learning-model components.\n";

int cmd_sbom(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack sbom' is not implemented yet\n");
    return 2;
}
