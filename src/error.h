/*
 * error.h - status codes and the error record every core function fills.
 *
 * The core library never prints and never exits. A fallible function
 * returns an ap_status (AP_OK on success) and, when it fails, fills the
 * caller's ap_error with a complete human message that already carries its
 * context (file, line, column). Callers add context as errors propagate
 * with ap_error_prefix(). Only src/cmd/ prints messages and picks exit
 * codes (ap_error_exit_code()).
 *
 * Messages follow git's style: lowercase, subject in quotes, no full stop:
 *   manifest 'deploy.yaml': line 12, column 5: unknown key 'licence' (did you mean 'license'?)
 */
#ifndef AIRPACK_ERROR_H
#define AIRPACK_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define AP_WUR __attribute__((warn_unused_result))
#define AP_PRINTF(a, b) __attribute__((format(printf, a, b)))

typedef enum ap_status {
    AP_OK = 0,
    AP_ERR_CHECK = 1,    /* a check failed: verification, policy, VRAM fit, hostile bundle (exit 1) */
    AP_ERR_INPUT = 2,    /* invalid input: malformed or missing file, bad usage (exit 2) */
    AP_ERR_IO = 3,       /* an I/O operation failed: read, write, rename, disk full (exit 2) */
    AP_ERR_NOMEM = 4,    /* out of memory (exit 2) */
    AP_ERR_INTERNAL = 5  /* a bug or an impossible state (exit 2) */
} ap_status;

#define AP_ERROR_MSG_MAX 2048
#define AP_ERROR_FILE_MAX 1024

typedef struct ap_error {
    int status;                       /* ap_status; AP_OK when no error */
    char file[AP_ERROR_FILE_MAX];     /* file the error is about, "" if none */
    unsigned line;                    /* 1-based line in file, 0 if not known */
    unsigned column;                  /* 1-based column in file, 0 if not known */
    char msg[AP_ERROR_MSG_MAX];       /* full message with context */
} ap_error;

/* Reset err to "no error". err may be NULL. */
void ap_error_clear(ap_error *err);

/* Set err (which may be NULL) to status with a printf-style message and
 * return status, so that `return ap_error_set(err, AP_ERR_IO, ...)` works. */
int ap_error_set(ap_error *err, int status, const char *fmt, ...) AP_PRINTF(3, 4);

/* As ap_error_set, for an error at a place in a file. The message becomes
 * "'FILE': line L, column C: MSG" (line/column left out when 0) and the
 * file, line and column are kept in their fields for tests and reports. */
int ap_error_set_at(ap_error *err, int status, const char *file, unsigned line,
                    unsigned column, const char *fmt, ...) AP_PRINTF(6, 7);
int ap_error_vset_at(ap_error *err, int status, const char *file, unsigned line,
                     unsigned column, const char *fmt, va_list ap) AP_PRINTF(6, 0);

/* Set err from errno for an operation on a file: "OP 'FILE': strerror". */
int ap_error_errno(ap_error *err, int status, int errnum, const char *op, const char *file);

/* Prepend context to an existing message: "CONTEXT: old message".
 * Returns err->status (so it can be returned directly). */
int ap_error_prefix(ap_error *err, const char *fmt, ...) AP_PRINTF(2, 3);

/* The process exit code for an error: 0, 1 (check failed) or 2. */
int ap_error_exit_code(const ap_error *err);

#endif
