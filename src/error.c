/*
 * error.c - the error record (see error.h).
 */
#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void ap_error_clear(ap_error *err)
{
    if (!err)
        return;
    err->status = AP_OK;
    err->file[0] = '\0';
    err->line = err->column = 0;
    err->msg[0] = '\0';
}

int ap_error_vset_at(ap_error *err, int status, const char *file, unsigned line,
                     unsigned column, const char *fmt, va_list ap)
{
    char body[AP_ERROR_MSG_MAX];
    if (!err)
        return status;
    vsnprintf(body, sizeof body, fmt, ap);
    err->status = status;
    err->line = line;
    err->column = column;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    if (file && line && column)
        snprintf(err->msg, sizeof err->msg, "'%s': line %u, column %u: %s", file, line, column, body);
    else if (file && line)
        snprintf(err->msg, sizeof err->msg, "'%s': line %u: %s", file, line, body);
    else if (file)
        snprintf(err->msg, sizeof err->msg, "'%s': %s", file, body);
    else
        snprintf(err->msg, sizeof err->msg, "%s", body);
    return status;
}

int ap_error_set_at(ap_error *err, int status, const char *file, unsigned line,
                    unsigned column, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ap_error_vset_at(err, status, file, line, column, fmt, ap);
    va_end(ap);
    return status;
}

int ap_error_set(ap_error *err, int status, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return status;
    va_start(ap, fmt);
    err->status = status;
    err->file[0] = '\0';
    err->line = err->column = 0;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return status;
}

int ap_error_errno(ap_error *err, int status, int errnum, const char *op, const char *file)
{
    if (!err)
        return status;
    ap_error_set(err, status, "%s '%s': %s", op, file ? file : "?", strerror(errnum));
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    return status;
}

int ap_error_prefix(ap_error *err, const char *fmt, ...)
{
    char pre[AP_ERROR_MSG_MAX], old[AP_ERROR_MSG_MAX];
    va_list ap;
    if (!err)
        return AP_ERR_INTERNAL;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", pre, old);
    return err->status;
}

int ap_error_exit_code(const ap_error *err)
{
    if (!err || err->status == AP_OK)
        return 0;
    return err->status == AP_ERR_CHECK ? 1 : 2;
}
