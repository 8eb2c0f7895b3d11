/*
 * common.c - CLI helpers (see common.h).
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "sign.h"
#include "util.h"

static void vmsg(const char *prefix, const char *fmt, va_list ap) AP_PRINTF(2, 0);
static void vmsg(const char *prefix, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("error", fmt, ap);
    va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("warning", fmt, ap);
    va_end(ap);
}

int cli_report(const ap_error *err)
{
    if (!err || err->status == AP_OK)
        return 0;
    fprintf(stderr, "error: %s\n", err->msg[0] ? err->msg : "unknown error");
    return ap_error_exit_code(err);
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("error", fmt, ap);
    va_end(ap);
#ifdef AIRPACK_VERIFY_ONLY
    fprintf(stderr, "see 'airpack-verify %s --help'\n", command);
#else
    fprintf(stderr, "see 'airpack %s --help'\n", command);
#endif
    return 2;
}

int cli_parse_format(const char *command, const char *s, unsigned accepted, enum cli_format *out)
{
    static const struct { const char *name; enum cli_format f; } names[] = {
        {"text", CLI_FMT_TEXT}, {"json", CLI_FMT_JSON}, {"sarif", CLI_FMT_SARIF},
        {"markdown", CLI_FMT_MARKDOWN}, {"md", CLI_FMT_MARKDOWN}, {"html", CLI_FMT_HTML},
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(names); i++) {
        if (strcmp(s, names[i].name) == 0 && (accepted & names[i].f)) {
            *out = names[i].f;
            return 0;
        }
    }
    return cli_usage_error(command, "unknown format '%s' for '%s'", s, command);
}

int cli_print_json(FILE *f, const json_t *j)
{
    if (json_dumpf(j, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) != 0) {
        cli_error("cannot write JSON output");
        return 2;
    }
    fputc('\n', f);
    return 0;
}

int cli_use_color(FILE *f)
{
    const char *nc = getenv("NO_COLOR");
    if (nc && *nc)
        return 0;
    return isatty(fileno(f));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_progress_start(cli_progress *p, const char *label, uint64_t total, int quiet)
{
    memset(p, 0, sizeof *p);
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->label = label;
    p->total = total;
    p->start = p->last = now_s();
}

static void human_bytes(double b, char *out, size_t n)
{
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, n, "%.1f %s", b, u[i]);
}

void cli_progress_update(cli_progress *p, uint64_t done)
{
    double t;
    char d[32], tot[32], rate[32];
    p->done = done;
    if (!p->enabled)
        return;
    t = now_s();
    if (t - p->last < 0.2 && done < p->total)
        return;
    p->last = t;
    double el = t - p->start, r = el > 0 ? (double)done / el : 0;
    human_bytes((double)done, d, sizeof d);
    human_bytes((double)p->total, tot, sizeof tot);
    human_bytes(r, rate, sizeof rate);
    if (r > 0 && p->total > done)
        fprintf(stderr, "\r%s: %s / %s  %s/s  %.0fs left   ", p->label, d, tot, rate,
                (double)(p->total - done) / r);
    else
        fprintf(stderr, "\r%s: %s / %s  %s/s            ", p->label, d, tot, rate);
}

void cli_progress_end(cli_progress *p)
{
    if (p->enabled) {
        cli_progress_update(p, p->total);
        fputc('\n', stderr);
    }
}

static char *read_line_secret(int fd, int echo_off)
{
    struct termios old, raw;
    char *buf = sodium_malloc(1024);
    size_t n = 0;
    int restore = 0;
    if (!buf)
        return NULL;
    if (echo_off && tcgetattr(fd, &old) == 0) {
        raw = old;
        raw.c_lflag &= ~(tcflag_t)ECHO;
        restore = tcsetattr(fd, TCSAFLUSH, &raw) == 0;
    }
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n')
            break;
        if (n + 1 < 1024)
            buf[n++] = c;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    if (restore) {
        tcsetattr(fd, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    return buf;
}

char *cli_password(const char *password_file, const char *prompt, int confirm)
{
    const char *env = getenv("AIRPACK_PASSWORD");
    char *pw;
    if (password_file) {
        int fd = open(password_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            cli_error("cannot open password file '%s': %s", password_file, strerror(errno));
            return NULL;
        }
        pw = read_line_secret(fd, 0);
        close(fd);
        return pw;
    }
    if (env) {
        size_t n = strlen(env);
        pw = sodium_malloc(n + 1);
        if (pw)
            memcpy(pw, env, n + 1);
        return pw;
    }
    int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty < 0) {
        cli_error("a password is needed: no terminal; use --password-file or AIRPACK_PASSWORD");
        return NULL;
    }
    fprintf(stderr, "%s: ", prompt);
    fflush(stderr);
    pw = read_line_secret(tty, 1);
    if (pw && confirm) {
        fprintf(stderr, "%s (again): ", prompt);
        fflush(stderr);
        char *again = read_line_secret(tty, 1);
        if (!again || strcmp(pw, again) != 0) {
            cli_error("the passwords do not match");
            cli_password_free(pw);
            pw = NULL;
        }
        cli_password_free(again);
    }
    close(tty);
    return pw;
}

void cli_password_free(char *pw)
{
    if (pw)
        sodium_free(pw);
}

int cli_load_seckey(const char *path, const char *pwfile, ap_seckey **out)
{
    ap_error err;
    char *pw = NULL;
    int enc, rc;

    *out = NULL;
    ap_error_clear(&err);
    if ((enc = ap_seckey_file_encrypted(path, &err)) < 0)
        return cli_report(&err);
    if (enc == 1) {
        char prompt[300];
        snprintf(prompt, sizeof prompt, "Password for '%s'", path);
        if (!(pw = cli_password(pwfile, prompt, 0)))
            return 2;
    }
    rc = ap_seckey_load(path, pw, out, &err);
    cli_password_free(pw);
    if (rc != AP_OK) {
        *out = NULL;
        return cli_report(&err);
    }
    return 0;
}

void cli_progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    cli_progress *p = ctx;
    p->total = total;
    cli_progress_update(p, done);
}
