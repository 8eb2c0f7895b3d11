/*
 * main.c - the airpack command dispatcher. It only dispatches: every
 * command lives in src/cmd/NAME.c. Built twice: as `airpack` (every
 * command) and with AIRPACK_VERIFY_ONLY as `airpack-verify` (only the
 * commands a site inside the air gap needs).
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

#define C(n, s) {#n, cmd_##n, cmd_##n##_usage, cmd_##n##_options, s}
static const struct command commands[] = {
#ifndef AIRPACK_VERIFY_ONLY
    C(check, "validate a manifest, read model facts, plan VRAM, evaluate policies"),
    C(plan, "GPU memory plan per model and GPU; largest context and concurrency"),
    C(pin, "write .sha256 pin files for unpinned paths of a manifest"),
    C(model, "facts read from a model file or folder (GGUF, safetensors, config.json)"),
    C(keygen, "create an Ed25519 key pair in minisign's formats"),
    C(build, "write a signed, reproducible offline bundle"),
    C(inspect, "show what a bundle holds, without trusting it"),
#endif
    C(verify, "check a bundle's signature and every hash in one streaming pass"),
    C(install, "verify and install a bundle atomically"),
    C(list, "list installed releases"),
    C(rollback, "switch back to the previous installed release"),
    C(prune, "remove old releases and the store objects no release uses"),
    C(audit, "the auditor's report on a bundle or an installed prefix"),
    C(units, "the systemd service units of the installed releases"),
    C(preflight, "does the signed plan fit this host's GPUs (NVML)"),
#ifndef AIRPACK_VERIFY_ONLY
    C(activate, "start the active release, keep it only when it serves, else roll back"),
    C(sbom, "CycloneDX 1.6 SBOM of a manifest or a bundle"),
    C(completion, "shell completion script for bash or zsh"),
    C(split, "cut a bundle into volumes with a signed parts index"),
    C(sign, "add a co-signature to a bundle without rebuilding it"),
    C(export, "write a bundle as an OCI image layout (ModelPack model artifacts)"),
    C(push, "upload a bundle to an OCI registry"),
    C(pull, "rebuild a bundle byte for byte from an OCI registry"),
#endif
    C(trust, "manage a site trust file: keys, roles, thresholds, revocation"),
};
#undef C

#ifdef AIRPACK_VERIFY_ONLY
#define PROG "airpack-verify"
#else
#define PROG "airpack"
#endif

const struct command *cmd_table(size_t *n)
{
    *n = sizeof commands / sizeof commands[0];
    return commands;
}

static void print_help(FILE *f)
{
    fprintf(f, "usage: " PROG " <command> [options] [arguments]\n\n"
               "Offline bundles for LLM inference stacks in air-gapped sites.\n\ncommands:\n");
    int w = 0;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if ((int)strlen(commands[i].name) > w)
            w = (int)strlen(commands[i].name);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-*s  %s\n", w, commands[i].name, commands[i].summary);
    fprintf(f, "\n  help [COMMAND]      this text, or a command's help\n"
               "  --version           print the version\n\n"
               "exit status: 0 success, 1 a check failed, 2 bad usage or invalid input\n"
               "'" PROG " help COMMAND' or '" PROG " COMMAND --help' shows a command's options.\n");
}

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    const struct command *c;

    if (sodium_init() < 0) {
        fprintf(stderr, "error: cannot initialise libsodium\n");
        return 2;
    }
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf(PROG " %s\n", AIRPACK_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) {
            if (!(c = find(argv[2]))) {
                fprintf(stderr, "error: unknown command '%s'\n", argv[2]);
                return 2;
            }
            fputs(c->usage, stdout);
            return 0;
        }
        print_help(stdout);
        return 0;
    }
    if (!(c = find(argv[1]))) {
        fprintf(stderr, "error: unknown command '%s'\n", argv[1]);
        fprintf(stderr, "see '" PROG " help'\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(c->usage, stdout);
            return 0;
        }
    }
    return c->fn(argc - 1, argv + 1);
}
