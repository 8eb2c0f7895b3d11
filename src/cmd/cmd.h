/*
 * cmd.h - the commands of the airpack CLI, one file each in src/cmd/.
 *
 * Each command exports `int cmd_NAME(int argc, char **argv)` (argv[0] is
 * the command name; returns the exit code: 0 ok, 1 check failed, 2 bad
 * usage or input), `const char cmd_NAME_usage[]` (its --help text) and
 * `const struct option cmd_NAME_options[]` (the getopt_long table it parses,
 * NULL-terminated; main.c exposes it to the shell-completion generator, so
 * completion never drifts from the parser).
 * main.c handles `--help`/`-h` before dispatching, so commands need not.
 */
#ifndef AIRPACK_CMD_H
#define AIRPACK_CMD_H

#include <getopt.h>
#include <stddef.h>

#define AP_CMD(name)                                      \
    int cmd_##name(int argc, char **argv);                \
    extern const char cmd_##name##_usage[];               \
    extern const struct option cmd_##name##_options[];

/* One row of main.c's command table. */
struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
    const struct option *options;   /* the command's getopt_long table */
    const char *summary;            /* one line, for `airpack help` */
};

/* main.c's command table (the commands this program was built with), for
 * the commands that describe the CLI itself (completion); *n gets its
 * length. */
const struct command *cmd_table(size_t *n);

AP_CMD(completion)
AP_CMD(check)
AP_CMD(plan)
AP_CMD(pin)
AP_CMD(model)
AP_CMD(keygen)
AP_CMD(build)
AP_CMD(inspect)
AP_CMD(verify)
AP_CMD(install)
AP_CMD(rollback)
AP_CMD(list)
AP_CMD(audit)
AP_CMD(sbom)
AP_CMD(split)
AP_CMD(sign)
AP_CMD(prune)
AP_CMD(units)
AP_CMD(export)
AP_CMD(push)
AP_CMD(pull)
AP_CMD(preflight)
AP_CMD(trust)
AP_CMD(activate)

#endif
