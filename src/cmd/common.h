/*
 * common.h - helpers shared by the commands: messages, output formats,
 * progress on stderr, passwords. Only src/cmd/ prints.
 */
#ifndef AIRPACK_CMD_COMMON_H
#define AIRPACK_CMD_COMMON_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

/* Output formats; a command passes the set it accepts. */
enum cli_format {
    CLI_FMT_TEXT = 1 << 0,
    CLI_FMT_JSON = 1 << 1,
    CLI_FMT_SARIF = 1 << 2,
    CLI_FMT_MARKDOWN = 1 << 3,
    CLI_FMT_HTML = 1 << 4,
};

/* "error: MSG" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print err ("error: ...") and return its exit code. */
int cli_report(const ap_error *err);
/* Print "error: MSG" plus "usage: ..." hint for COMMAND and return 2. */
int cli_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse --format's value against the accepted set; 0 on success, else prints
 * an error and returns 2. */
int cli_parse_format(const char *command, const char *s, unsigned accepted, enum cli_format *out);

/* Write JSON to f, indented, with a trailing newline; 0 or 2 on failure. */
int cli_print_json(FILE *f, const json_t *j);

/* Colour only when f is a terminal and NO_COLOR is unset or empty. */
int cli_use_color(FILE *f);

/* Progress meter on stderr, only when stderr is a terminal and not quiet. */
typedef struct cli_progress {
    int enabled;
    const char *label;
    uint64_t total, done;     /* bytes */
    double start, last;       /* seconds (monotonic) */
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, uint64_t total, int quiet);
void cli_progress_update(cli_progress *p, uint64_t done);
void cli_progress_end(cli_progress *p);
/* A library progress callback (done, total in bytes) over the cli_progress
 * passed as ctx. */
void cli_progress_cb(void *ctx, uint64_t done, uint64_t total);

/* Read a secret key's password: from --password-file F when given, else
 * AIRPACK_PASSWORD, else a prompt on the terminal (no echo). confirm asks
 * twice. Returns a new sodium_malloc'ed string (free with cli_password_free)
 * or NULL after printing an error. */
char *cli_password(const char *password_file, const char *prompt, int confirm);
void cli_password_free(char *pw);

/* Load the minisign secret key at path, asking for its password (as
 * cli_password does, from pwfile, AIRPACK_PASSWORD or the terminal) only
 * when the key is encrypted. 0 and *out (the caller's, ap_seckey_free), or
 * an exit code after printing the error. */
struct ap_seckey;
int cli_load_seckey(const char *path, const char *pwfile, struct ap_seckey **out);

#endif
