/*
 * model.c - `airpack model` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_model_usage[] =
"usage: airpack model PATH [--format text|json]\n"
    "\n"
    "Facts read from a model file or folder (GGUF, safetensors, HF config.json),\n"
    "each with where it came from.\n";

int cmd_model(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack model' is not implemented yet\n");
    return 2;
}
