/*
 * activate.c - health-gated activation with automatic rollback
 * (activate.h, docs/install.md "Activation").
 *
 * The service manager is a command run with posix_spawnp (no shell), its
 * output captured (the last bytes go into messages). HTTP is libcurl:
 * plain http only, no proxy, no redirects, bounded answers.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preflight/preflight.h"
#include "site/activate.h"
#include "site/units.h"
#include "util.h"

extern char **environ;

#define SM_TIMEOUT_S 300          /* one service manager command */
#define HTTP_MAX (1u << 20)       /* bytes of an answer read */
#define SM_ARGS_MAX 32

struct act {
    const ap_activate_opts *o;
    char prefix[PATH_MAX];        /* absolute */
    const char *sysdir, *sm;
    double timeout;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void now_rfc3339(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void logf_(struct act *a, const char *fmt, ...) AP_PRINTF(2, 3);
static void logf_(struct act *a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    if (!a->o->log)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    a->o->log(a->o->log_ctx, buf);
}

/* The test hook (activate.h). */
static void maybe_die(const char *step)
{
    const char *k = getenv("AIRPACK_TEST_ACTIVATE_KILL");
    if (k && strcmp(k, step) == 0)
        kill(getpid(), SIGKILL);
}

/* ---- files ---- */

static int read_json(const char *path, json_t **out)
{
    char *buf = NULL;
    size_t len = 0;
    ap_error e;
    *out = NULL;
    if (access(path, F_OK) != 0)
        return errno == ENOENT ? 0 : -1;
    if (ap_read_file(path, 4u << 20, &buf, &len, &e) != AP_OK)
        return -1;
    *out = json_loadb(buf, len, 0, NULL);
    free(buf);
    return *out ? 0 : -1;
}

static int write_json_atomic(const char *path, const json_t *j, ap_error *err)
{
    char tmp[PATH_MAX + 32], *s;
    size_t len, off = 0;
    int fd, rc = AP_OK;
    char dir[PATH_MAX], *slash;

    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return ap_error_set(err, AP_ERR_IO, "path too long: '%s'", path);
    if (!(s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    len = strlen(s);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot create", tmp);
        goto out;
    }
    while (off < len) {
        ssize_t w = write(fd, s + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
            break;
        }
        off += (size_t)w;
    }
    if (rc == AP_OK && (write(fd, "\n", 1) != 1 || fsync(fd) != 0))
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", tmp);
    close(fd);
    if (rc == AP_OK && rename(tmp, path) != 0)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename", tmp);
    if (rc != AP_OK)
        unlink(tmp);
    snprintf(dir, sizeof dir, "%s", path);
    if (rc == AP_OK && (slash = strrchr(dir, '/'))) {
        *slash = '\0';
        if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
            (void)fsync(fd);
            close(fd);
        }
    }
out:
    free(s);
    return rc;
}

/* ---- the service manager ---- */

/* Run "SM verb [unit]"; 0 when it exited 0, else -1 with msg. */
static int run_sm(struct act *a, const char *verb, const char *unit, char *msg, size_t msglen)
{
    char cmd[1024], *argv[SM_ARGS_MAX + 3], *save = NULL, *tok, out[2048];
    size_t n = 0, got = 0;
    int pipefd[2], status = 0, exited = 0;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    double deadline;

    msg[0] = '\0';
    if (snprintf(cmd, sizeof cmd, "%s", a->sm) >= (int)sizeof cmd) {
        snprintf(msg, msglen, "service manager command too long");
        return -1;
    }
    for (tok = strtok_r(cmd, " \t", &save); tok && n < SM_ARGS_MAX; tok = strtok_r(NULL, " \t", &save))
        argv[n++] = tok;
    if (n == 0) {
        snprintf(msg, msglen, "empty service manager command");
        return -1;
    }
    argv[n++] = (char *)verb;
    if (unit)
        argv[n++] = (char *)unit;
    argv[n] = NULL;
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        snprintf(msg, msglen, "pipe: %s", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if ((errno = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ)) != 0) {
        snprintf(msg, msglen, "cannot run '%s': %s", argv[0], strerror(errno));
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    deadline = now_s() + SM_TIMEOUT_S;
    for (;;) {
        struct pollfd p = {pipefd[0], POLLIN, 0};
        int r = poll(&p, 1, 200);
        if (r > 0) {
            char buf[1024];
            ssize_t k = read(pipefd[0], buf, sizeof buf);
            if (k <= 0)
                break;
            for (ssize_t i = 0; i < k; i++) { /* keep the last bytes */
                if (got == sizeof out - 1) {
                    memmove(out, out + 1, got - 1);
                    got--;
                }
                out[got++] = buf[i];
            }
        }
        if (now_s() > deadline) {
            if (!exited)
                kill(pid, SIGKILL);
            break;
        }
        /* the command exited but something it started keeps the pipe
         * open (a service manager that forgot to redirect its child):
         * read what is there for a second more, then stop */
        if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
            exited = 1;
            deadline = now_s() + 1;
        }
    }
    close(pipefd[0]);
    if (!exited)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    out[got] = '\0';
    while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == '\r'))
        out[--got] = '\0';
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    {
        const char *last = strrchr(out, '\n');
        last = last ? last + 1 : out;
        if (WIFEXITED(status))
            snprintf(msg, msglen, "'%s %s%s%s' exited %d%s%s", a->sm, verb, unit ? " " : "", unit ? unit : "",
                     WEXITSTATUS(status), *last ? ": " : "", last);
        else
            snprintf(msg, msglen, "'%s %s%s%s' was killed (signal %d)", a->sm, verb, unit ? " " : "",
                     unit ? unit : "", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    return -1;
}

/* ---- HTTP ---- */

struct body {
    char *p;
    size_t n;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t len = size * nmemb, room = HTTP_MAX - b->n;
    char *q;
    if (len > room)
        return 0; /* too large: abort */
    q = realloc(b->p, b->n + len + 1);
    if (!q)
        return 0;
    b->p = q;
    memcpy(b->p + b->n, ptr, len);
    b->n += len;
    b->p[b->n] = '\0';
    return len;
}

/* GET url: the HTTP status (0 when no answer), the body in *out (new). */
static long http_get(const char *url, long timeout_ms, char **out, char *why, size_t whylen)
{
    CURL *c = curl_easy_init();
    struct body b = {NULL, 0};
    long code = 0;
    CURLcode r;
    char eb[CURL_ERROR_SIZE] = "";

    if (out)
        *out = NULL;
    if (!c) {
        snprintf(why, whylen, "cannot initialise libcurl");
        return 0;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP);
#endif
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, eb);
    r = curl_easy_perform(c);
    if (r == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    else
        snprintf(why, whylen, "%s", eb[0] ? eb : curl_easy_strerror(r));
    curl_easy_cleanup(c);
    if (out && code)
        *out = b.p;
    else
        free(b.p);
    return code;
}

static void base_url(const json_t *spec, char *out, size_t n)
{
    const char *host = json_string_value(json_object_get(spec, "host"));
    json_int_t port = json_integer_value(json_object_get(spec, "port"));
    if (!host || !*host || !strcmp(host, "0.0.0.0"))
        host = "127.0.0.1";
    else if (!strcmp(host, "::") || !strcmp(host, "[::]"))
        host = "[::1]";
    if (strchr(host, ':') && host[0] != '[')
        snprintf(out, n, "http://[%s]:%lld", host, (long long)port);
    else
        snprintf(out, n, "http://%s:%lld", host, (long long)port);
}

/* Does /v1/models name one of the spec's models (its name, its file name
 * or that without extension)? */
static int models_match(const json_t *spec, const json_t *answer, char *ids, size_t idlen)
{
    const json_t *data = json_object_get(answer, "data"), *d, *nm;
    const json_t *argv = json_object_get(spec, "argv");
    size_t i, k;
    int hit = 0;

    ids[0] = '\0';
    json_array_foreach(data, i, d) {
        const char *id = json_string_value(json_object_get(d, "id"));
        size_t used = strlen(ids);
        if (!id)
            continue;
        if (used + strlen(id) + 3 < idlen)
            snprintf(ids + used, idlen - used, "%s'%s'", used ? ", " : "", id);
        json_array_foreach(json_object_get(spec, "models"), k, nm) {
            const char *want = json_string_value(nm);
            if (want && strcmp(id, want) == 0)
                hit = 1;
        }
        for (k = 0; k + 1 < json_array_size(argv); k++) {
            const char *flag = json_string_value(json_array_get(argv, k));
            const char *val = json_string_value(json_array_get(argv, k + 1)), *base, *dot;
            if (!flag || !val || (strcmp(flag, "-m") && strcmp(flag, "--model") && strcmp(flag, "--model-path") &&
                                  strcmp(flag, "--model-id")))
                continue;
            base = strrchr(val, '/');
            base = base && base[1] ? base + 1 : val;
            dot = strrchr(base, '.');
            if (strcmp(id, base) == 0 || (dot && strlen(id) == (size_t)(dot - base) && !strncmp(id, base, (size_t)(dot - base))))
                hit = 1;
        }
    }
    return hit;
}

/* ---- one release ---- */

/* The units of the active release: specs (new array). */
static int load_specs(struct act *a, const char *name, json_t **specs, char *rel, ap_error *err)
{
    ap_lock *lock = NULL;
    int rc;
    *specs = NULL;
    if ((rc = ap_installed_lock(a->prefix, name, NULL, NULL, &lock, NULL, rel, err)) != AP_OK)
        return rc;
    *specs = ap_units_specs(a->prefix, name, lock->json);
    ap_lock_free(lock);
    if (!*specs)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    return AP_OK;
}

static int link_unit(struct act *a, const json_t *spec, char *msg, size_t n)
{
    const char *unit = json_string_value(json_object_get(spec, "unit"));
    const char *target = json_string_value(json_object_get(spec, "unit_file"));
    char link[PATH_MAX], tmp[PATH_MAX];
    struct stat st;
    if (!unit || !target || snprintf(link, sizeof link, "%s/%s", a->sysdir, unit) >= (int)sizeof link ||
        snprintf(tmp, sizeof tmp, "%s/.%s.airpack-tmp", a->sysdir, unit) >= (int)sizeof tmp) {
        snprintf(msg, n, "bad unit or path too long");
        return -1;
    }
    if (lstat(link, &st) == 0 && !S_ISLNK(st.st_mode)) {
        snprintf(msg, n, "'%s' exists and is not a link: not replaced", link);
        return -1;
    }
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
        snprintf(msg, n, "cannot link '%s': %s", link, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Start the release's units and check them. Fills rec (units[], step,
 * message). Returns 0 when every unit serves. */
static int start_and_check(struct act *a, const json_t *specs, json_t *rec)
{
    char msg[2048] = "", url[512], why[512];
    const json_t *s;
    json_t *units = json_array();
    const char *step = NULL;
    size_t i;

    json_object_set_new(rec, "units", units);
    if (json_array_size(specs) == 0) {
        step = "link";
        snprintf(msg, sizeof msg, "the release has no service units (no runtime with a launch spec)");
        goto fail;
    }
    maybe_die("link");
    json_array_foreach(specs, i, s) {
        json_t *u;
        base_url(s, url, sizeof url);
        u = json_pack("{s:O?,s:s,s:O?,s:b,s:n}", "unit", json_object_get(s, "unit"), "url", url, "health",
                      json_object_get(s, "health"), "healthy", 0, "models");
        json_array_append_new(units, u);
        logf_(a, "linking %s into %s", json_string_value(json_object_get(s, "unit")), a->sysdir);
        if (link_unit(a, s, msg, sizeof msg) != 0) {
            step = "link";
            goto fail;
        }
    }
    maybe_die("reload");
    logf_(a, "%s daemon-reload", a->sm);
    if (run_sm(a, "daemon-reload", NULL, msg, sizeof msg) != 0) {
        step = "reload";
        goto fail;
    }
    maybe_die("restart");
    json_array_foreach(specs, i, s) {
        const char *unit = json_string_value(json_object_get(s, "unit"));
        logf_(a, "%s restart %s", a->sm, unit);
        if (run_sm(a, "restart", unit, msg, sizeof msg) != 0) {
            step = "restart";
            goto fail;
        }
    }
    maybe_die("health");
    json_array_foreach(specs, i, s) {
        const char *hp = json_string_value(json_object_get(s, "health"));
        char full[700];
        double deadline = now_s() + a->timeout, t0 = now_s();
        long code = 0;
        base_url(s, url, sizeof url);
        snprintf(full, sizeof full, "%s%s", url, hp && hp[0] == '/' ? hp : "/health");
        logf_(a, "waiting for %s (at most %.0f s)", full, a->timeout);
        why[0] = '\0';
        while (1) {
            code = http_get(full, 2000, NULL, why, sizeof why);
            if (code == 200 || now_s() > deadline)
                break;
            if (code)
                snprintf(why, sizeof why, "HTTP %ld", code);
            usleep(200000);
        }
        if (code != 200) {
            step = "health";
            snprintf(msg, sizeof msg, "%s did not answer 200 within %.0f s (last: %s)", full, a->timeout,
                     why[0] ? why : "no answer");
            goto fail;
        }
        json_object_set_new(json_array_get(units, i), "healthy", json_true());
        json_object_set_new(json_array_get(units, i), "healthy_after_s", json_real((double)(long)((now_s() - t0) * 100) / 100));
    }
    maybe_die("models");
    json_array_foreach(specs, i, s) {
        char full[600], *body = NULL, ids[1024];
        json_t *ans;
        long code;
        base_url(s, url, sizeof url);
        snprintf(full, sizeof full, "%s/v1/models", url);
        why[0] = '\0';
        code = http_get(full, 10000, &body, why, sizeof why);
        ans = body ? json_loads(body, 0, NULL) : NULL;
        free(body);
        if (code != 200 || !ans) {
            step = "models";
            snprintf(msg, sizeof msg, "%s: %s", full, code ? (ans ? "not HTTP 200" : "not JSON") : why);
            json_decref(ans);
            goto fail;
        }
        if (!models_match(s, ans, ids, sizeof ids)) {
            char want[512] = "";
            const json_t *nm;
            size_t k;
            json_array_foreach(json_object_get(s, "models"), k, nm)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s'%s'", k ? ", " : "",
                         json_string_value(nm) ? json_string_value(nm) : "?");
            step = "models";
            snprintf(msg, sizeof msg, "%s names %s, not the installed model %s", full, ids[0] ? ids : "no model", want);
            json_object_set_new(json_array_get(units, i), "models", json_string(ids));
            json_decref(ans);
            goto fail;
        }
        json_object_set_new(json_array_get(units, i), "models", json_string(ids));
        json_decref(ans);
    }
    json_object_set_new(rec, "step", json_null());
    json_object_set_new(rec, "message", json_null());
    return 0;
fail:
    json_object_set_new(rec, "step", json_string(step));
    json_object_set_new(rec, "message", json_string(msg));
    return -1;
}

/* ---- records ---- */

static int set_record(struct act *a, const char *name, const char *rel, const json_t *rec, ap_error *err)
{
    char p[PATH_MAX];
    json_t *r = NULL;
    int rc;
    if (snprintf(p, sizeof p, "%s/.airpack/receipts/%s/%s/%s", a->prefix, name, rel, AP_INSTALL_RECORD) >=
        (int)sizeof p)
        return ap_error_set(err, AP_ERR_IO, "path too long");
    if (read_json(p, &r) != 0 || !json_is_object(r)) {
        json_decref(r);
        return ap_error_set(err, AP_ERR_IO, "install record '%s' is unreadable", p);
    }
    json_object_set(r, "activation", (json_t *)rec);
    rc = write_json_atomic(p, r, err);
    json_decref(r);
    return rc;
}

static int append_log(struct act *a, const char *name, const json_t *rec, ap_error *err)
{
    char p[PATH_MAX];
    json_t *log = NULL, *arr;
    int rc;
    if (snprintf(p, sizeof p, "%s/.airpack/activations", a->prefix) >= (int)sizeof p)
        return ap_error_set(err, AP_ERR_IO, "path too long");
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return ap_error_errno(err, AP_ERR_IO, errno, "cannot create", p);
    if (snprintf(p, sizeof p, "%s/.airpack/activations/%s.json", a->prefix, name) >= (int)sizeof p)
        return ap_error_set(err, AP_ERR_IO, "path too long");
    if (read_json(p, &log) != 0 || !json_is_object(log) || !json_is_array(json_object_get(log, "activations"))) {
        json_decref(log);
        log = json_pack("{s:s,s:s,s:[]}", "format", "airpack-activations/1", "name", name, "activations");
    }
    if (!log)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    arr = json_object_get(log, "activations");
    json_array_append(arr, (json_t *)rec);
    while (json_array_size(arr) > AP_ACTIVATE_LOG_MAX)
        json_array_remove(arr, 0);
    rc = write_json_atomic(p, log, err);
    json_decref(log);
    return rc;
}

static int marker_path(struct act *a, const char *name, char *p, size_t n)
{
    return snprintf(p, n, "%s/.airpack/activating-%s.json", a->prefix, name) >= (int)n ? -1 : 0;
}

/* state.json's previous release of name, "" when none. */
static void state_previous(struct act *a, const char *name, char out[AP_RELEASE_MAX])
{
    char p[PATH_MAX];
    json_t *st = NULL;
    const char *v;
    out[0] = '\0';
    if (snprintf(p, sizeof p, "%s/.airpack/state.json", a->prefix) >= (int)sizeof p || read_json(p, &st) != 0)
        return;
    v = json_string_value(json_object_get(json_object_get(json_object_get(st, "deployments"), name), "previous"));
    if (v && strlen(v) < AP_RELEASE_MAX && !strchr(v, '/'))
        snprintf(out, AP_RELEASE_MAX, "%s", v);
    json_decref(st);
}

static int release_exists(struct act *a, const char *name, const char *rel)
{
    char p[PATH_MAX];
    struct stat st;
    return rel[0] && snprintf(p, sizeof p, "%s/releases/%s/%s", a->prefix, name, rel) < (int)sizeof p &&
           stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void stop_units(struct act *a, const json_t *specs, const json_t *keep, int unlink_them)
{
    const json_t *s, *k;
    size_t i, j;
    char msg[512], link[PATH_MAX];
    json_array_foreach(specs, i, s) {
        const char *unit = json_string_value(json_object_get(s, "unit"));
        int kept = 0;
        if (!unit)
            continue;
        json_array_foreach(keep, j, k)
            if (json_string_value(json_object_get(k, "unit")) && !strcmp(unit, json_string_value(json_object_get(k, "unit"))))
                kept = 1;
        if (kept)
            continue;
        logf_(a, "%s stop %s", a->sm, unit);
        (void)run_sm(a, "stop", unit, msg, sizeof msg);
        if (unlink_them && snprintf(link, sizeof link, "%s/%s", a->sysdir, unit) < (int)sizeof link)
            unlink(link);
    }
}

/* ---- the whole ---- */

int ap_activate(const ap_activate_opts *o, ap_activate_result *res, ap_error *err)
{
    struct act a;
    char p[PATH_MAX], when[32], **names = NULL;
    json_t *specs = NULL, *prev_specs = NULL, *rec = NULL, *marker = NULL, *old = NULL;
    const char *name = o->name;
    int lockfd = -1, rc = AP_OK;
    struct stat st;

    memset(res, 0, sizeof *res);
    memset(&a, 0, sizeof a);
    a.o = o;
    a.sysdir = o->systemd_dir && *o->systemd_dir ? o->systemd_dir : AP_ACTIVATE_DEFAULT_DIR;
    a.sm = o->service_manager && *o->service_manager ? o->service_manager : AP_ACTIVATE_DEFAULT_SM;
    a.timeout = o->timeout_s > 0 ? o->timeout_s : AP_ACTIVATE_DEFAULT_TIMEOUT;
    if (!o->prefix || !realpath(o->prefix, a.prefix))
        return ap_error_errno(err, AP_ERR_INPUT, errno ? errno : ENOENT, "cannot open prefix",
                              o->prefix ? o->prefix : "");
    if (stat(a.sysdir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ap_error_set(err, AP_ERR_INPUT, "systemd unit folder '%s' does not exist", a.sysdir);
    if (!name) {
        if ((rc = ap_install_names(a.prefix, &names, err)) != AP_OK)
            return rc;
        if (!names[0] || names[1]) {
            rc = ap_error_set(err, AP_ERR_INPUT, names[0] ? "prefix '%s' holds several deployments: name one"
                                                          : "nothing installed in '%s'", a.prefix);
            goto out;
        }
        name = names[0];
    }
    if (!*name || strchr(name, '/') || strlen(name) >= sizeof res->name) {
        rc = ap_error_set(err, AP_ERR_INPUT, "bad deployment name '%s'", name);
        goto out;
    }
    snprintf(res->name, sizeof res->name, "%s", name);

    /* one activation at a time */
    if (snprintf(p, sizeof p, "%s/.airpack/activate.lock", a.prefix) >= (int)sizeof p) {
        rc = ap_error_set(err, AP_ERR_INPUT, "path too long");
        goto out;
    }
    lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (lockfd < 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot open", p);
        goto out;
    }
    if (flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
        rc = ap_error_set(err, AP_ERR_CHECK, "another activation is running in '%s'", a.prefix);
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = ap_error_set(err, AP_ERR_INTERNAL, "cannot initialise libcurl");
        goto out;
    }

    /* what to activate, what to fall back to */
    if ((rc = load_specs(&a, name, &specs, res->release, err)) != AP_OK)
        goto out;
    if (marker_path(&a, name, p, sizeof p) != 0) {
        rc = ap_error_set(err, AP_ERR_INPUT, "path too long");
        goto out;
    }
    if (read_json(p, &old) == 0 && json_is_object(old)) {
        const char *mp = json_string_value(json_object_get(old, "previous"));
        res->resumed = 1;
        logf_(&a, "resuming the interrupted activation of %s (started %s)",
              json_string_value(json_object_get(old, "release")) ? json_string_value(json_object_get(old, "release")) : "?",
              json_string_value(json_object_get(old, "started_at")) ? json_string_value(json_object_get(old, "started_at")) : "?");
        if (mp && strlen(mp) < AP_RELEASE_MAX && strcmp(mp, res->release) != 0)
            snprintf(res->previous, sizeof res->previous, "%s", mp);
    } else if (o->previous) {
        snprintf(res->previous, sizeof res->previous, "%s", o->previous);
    } else {
        state_previous(&a, name, res->previous);
    }
    if (strcmp(res->previous, res->release) == 0 || !release_exists(&a, name, res->previous))
        res->previous[0] = '\0';
    now_rfc3339(when);
    marker = json_pack("{s:s,s:s,s:s,s:s,s:I}", "name", name, "release", res->release, "previous",
                       res->previous, "started_at", when, "pid", (json_int_t)getpid());
    if (!marker || (rc = write_json_atomic(p, marker, err)) != AP_OK) {
        if (!marker)
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    rec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:s}", "at", when, "release", res->release, "previous",
                    res->previous, "service_manager", a.sm, "systemd_dir", a.sysdir, "resumed", res->resumed,
                    "result", "failed");
    if (!rec) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }

    if (start_and_check(&a, specs, rec) == 0) {
        res->ok = 1;
        json_object_set_new(rec, "result", json_string("ok"));
        json_object_set_new(rec, "rollback", json_null());
    } else {
        char from[AP_RELEASE_MAX] = "", to[AP_RELEASE_MAX] = "";
        json_t *rb;
        logf_(&a, "activation of %s failed at %s: %s", res->release,
              json_string_value(json_object_get(rec, "step")), json_string_value(json_object_get(rec, "message")));
        maybe_die("rollback");
        if (res->previous[0]) {
            ap_error re;
            rb = json_pack("{s:s,s:b}", "to", res->previous, "healthy", 0);
            json_object_set_new(rec, "rollback", rb);
            logf_(&a, "rolling back to %s", res->previous);
            /* switch current back: ap_rollback goes to the highest release
             * below the active one, so step down until the previous one
             * (releases in between, such as an earlier failed activation,
             * are passed; a previous release above the failed one, after a
             * downgrade, cannot be reached this way) */
            ap_error_clear(&re);
            for (int k = 0; k < 1000; k++) {
                if (ap_rollback(a.prefix, name, from, to, &re) != AP_OK || strcmp(to, res->previous) == 0)
                    break;
            }
            if (re.status != AP_OK || strcmp(to, res->previous) != 0) {
                json_object_set_new(rb, "message", json_string(re.status ? re.msg : "the previous release is not below the failed one"));
            } else {
                res->rolled_back = 1;
                if (load_specs(&a, name, &prev_specs, to, &re) != AP_OK) {
                    json_object_set_new(rb, "message", json_string(re.msg));
                } else {
                    json_t *prec = json_object();
                    stop_units(&a, specs, prev_specs, 1);
                    if (prec && start_and_check(&a, prev_specs, prec) == 0) {
                        res->previous_ok = 1;
                        json_object_set_new(rb, "healthy", json_true());
                    } else if (prec) {
                        json_object_set(rb, "step", json_object_get(prec, "step"));
                        json_object_set(rb, "message", json_object_get(prec, "message"));
                    }
                    if (prec)
                        json_object_set(rb, "units", json_object_get(prec, "units"));
                    json_decref(prec);
                }
            }
            json_object_set_new(rec, "result", json_string(res->previous_ok ? "rolled-back" : "rollback-failed"));
        } else {
            logf_(&a, "no previous release: stopping the failed service");
            stop_units(&a, specs, NULL, 0);
            json_object_set_new(rec, "rollback", json_null());
            json_object_set_new(rec, "result", json_string("stopped"));
        }
    }
    {
        char done[32];
        ap_error we;
        now_rfc3339(done);
        json_object_set_new(rec, "finished_at", json_string(done));
        res->record = json_incref(rec);
        /* the record: the activated release's install record, the log */
        if (set_record(&a, name, res->release, rec, &we) != AP_OK ||
            append_log(&a, name, rec, &we) != AP_OK) {
            rc = ap_error_set(err, AP_ERR_IO, "%s", we.msg);
            goto out;
        }
        unlink(p); /* the marker: the activation (or its rollback) is complete */
    }
    if (!res->ok) {
        const char *step = json_string_value(json_object_get(rec, "step"));
        const char *msg = json_string_value(json_object_get(rec, "message"));
        const json_t *rb = json_object_get(rec, "rollback");
        if (res->previous_ok)
            rc = ap_error_set(err, AP_ERR_CHECK, "activation of '%s' %s failed at %s: %s; rolled back to %s, which serves again",
                              name, res->release, step, msg, res->previous);
        else if (res->previous[0])
            rc = ap_error_set(err, AP_ERR_CHECK, "activation of '%s' %s failed at %s: %s; rollback to %s failed: %s",
                              name, res->release, step, msg, res->previous,
                              json_string_value(json_object_get(rb, "message")) ? json_string_value(json_object_get(rb, "message")) : "?");
        else
            rc = ap_error_set(err, AP_ERR_CHECK, "activation of '%s' %s failed at %s: %s; no previous release: the service is stopped",
                              name, res->release, step, msg);
    }
out:
    json_decref(specs);
    json_decref(prev_specs);
    json_decref(rec);
    json_decref(marker);
    json_decref(old);
    ap_strv_free(names);
    if (lockfd >= 0)
        close(lockfd);
    return rc;
}

void ap_activate_result_release(ap_activate_result *res)
{
    if (res) {
        json_decref(res->record);
        res->record = NULL;
    }
}
