/*
 * plan.c - `airpack plan` (not built yet).
 */
#include <stdio.h>

#include "cmd.h"

const char cmd_plan_usage[] =
"usage: airpack plan MANIFEST [--format text|json]\n"
    "\n"
    "The GPU memory plan per model and per GPU: weights, KV cache, activations\n"
    "and runtime overhead against the usable memory, the verdict, the headroom,\n"
    "and the largest context and concurrency that fit.\n";

int cmd_plan(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "error: 'airpack plan' is not implemented yet\n");
    return 2;
}
