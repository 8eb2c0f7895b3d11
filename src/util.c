/*
 * util.c - small shared helpers (see util.h).
 */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int ap_read_file(const char *path, size_t max, char **buf, size_t *len, ap_error *err)
{
    int fd = -1, rc;
    struct stat st;
    char *b = NULL;
    size_t n = 0;

    *buf = NULL;
    if (len)
        *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot open", path);
    if (fstat(fd, &st) != 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot stat", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "not a regular file");
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0,
                             "file is %lld bytes, more than the limit of %zu",
                             (long long)st.st_size, max);
        goto out;
    }
    b = malloc(max < (size_t)st.st_size + 1 ? max + 1 : (size_t)st.st_size + 1);
    if (!b) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory reading '%s'", path);
        goto out;
    }
    /* Read up to max+1 so a file that grew after fstat is still capped. */
    for (;;) {
        size_t cap = (size_t)st.st_size;
        ssize_t r;
        if (n >= cap) {
            char probe;
            r = read(fd, &probe, 1);
            if (r == 0)
                break;
            if (r < 0 && errno == EINTR)
                continue;
            rc = r < 0 ? ap_error_errno(err, AP_ERR_IO, errno, "cannot read", path)
                       : ap_error_set_at(err, AP_ERR_INPUT, path, 0, 0, "file changed while being read");
            goto out;
        }
        r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot read", path);
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    b[n] = '\0';
    *buf = b;
    b = NULL;
    if (len)
        *len = n;
    rc = AP_OK;
out:
    free(b);
    if (fd >= 0)
        close(fd);
    return rc;
}

char *ap_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int slash = la > 0 && a[la - 1] != '/';
    char *p;
    if (la == 0)
        return strdup(b);
    p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    if (slash)
        p[la++] = '/';
    memcpy(p + la, b, lb + 1);
    return p;
}

char *ap_path_dirname(const char *path)
{
    const char *s = strrchr(path, '/');
    char *d;
    if (!s)
        return strdup(".");
    if (s == path)
        return strdup("/");
    d = strndup(path, (size_t)(s - path));
    return d;
}

int ap_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

int ap_path_is_safe_relative(const char *p)
{
    size_t len = strlen(p);
    const char *c = p;
    if (len == 0 || len > 4096 || p[0] == '/')
        return 0;
    if (!ap_utf8_valid(p, len))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 0x20 || ch == 0x7F || ch == '\\')
            return 0;
    }
    while (*c) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 0)
            return 0; /* "a//b" */
        if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        if (!e)
            break;
        c = e + 1;
        if (*c == '\0')
            break; /* one trailing slash is fine (a folder) */
    }
    return 1;
}

unsigned ap_edit_distance(const char *a, const char *b)
{
    unsigned row[256];
    size_t la = strnlen(a, 255), lb = strnlen(b, 255);
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned prev = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned cur = row[j];
            unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
            unsigned best = prev + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

const char *ap_suggest(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    unsigned bestd = ~0u;
    size_t wl = strlen(word);
    unsigned limit = wl <= 4 ? 1 : wl <= 8 ? 2 : 3;
    for (size_t i = 0; candidates[i]; i++) {
        unsigned d = ap_edit_distance(word, candidates[i]);
        if (d < bestd) {
            bestd = d;
            best = candidates[i];
        }
    }
    return bestd <= limit ? best : NULL;
}

void ap_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ap_hex_decode(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int h = hexval(hex[2 * i]), l;
        if (h < 0)
            return 0;
        l = hexval(hex[2 * i + 1]);
        if (l < 0)
            return 0;
        out[i] = (uint8_t)(h << 4 | l);
    }
    return hex[2 * n] == '\0';
}

int ap_fsync_dir_of(const char *path, ap_error *err)
{
    char *d = ap_path_dirname(path);
    int fd, rc = AP_OK;
    if (!d)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot open folder", d);
    } else {
        if (fsync(fd) != 0 && errno != EINVAL)
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot fsync folder", d);
        close(fd);
    }
    free(d);
    return rc;
}

int ap_remove_tree(const char *path)
{
    struct stat st;
    char *argv[2];
    FTS *fts;
    FTSENT *e;
    int rc = 0, saved = 0;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
    argv[0] = (char *)path;
    argv[1] = NULL;
    if (!(fts = fts_open(argv, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL)))
        return -1;
    while (rc == 0 && (e = fts_read(fts)) != NULL) {
        switch (e->fts_info) {
        case FTS_D:      /* a folder on the way down: make it writable to empty it */
            if ((e->fts_statp->st_mode & 0700) != 0700)
                (void)chmod(e->fts_accpath, (e->fts_statp->st_mode & 07777) | 0700);
            break;
        case FTS_DP:     /* a folder on the way up, now empty */
            if (rmdir(e->fts_accpath) != 0 && errno != ENOENT)
                rc = -1;
            break;
        case FTS_DNR:
        case FTS_ERR:
        case FTS_NS:
            errno = e->fts_errno;
            rc = -1;
            break;
        default:         /* files, links, anything else */
            if (unlink(e->fts_accpath) != 0 && errno != ENOENT)
                rc = -1;
            break;
        }
        if (rc != 0)
            saved = errno;
    }
    fts_close(fts);
    if (rc != 0)
        errno = saved;
    return rc;
}

uint64_t ap_tree_unshared_bytes(const char *path)
{
    char *argv[2];
    FTS *fts;
    FTSENT *e;
    uint64_t sum = 0;

    argv[0] = (char *)path;
    argv[1] = NULL;
    if (!(fts = fts_open(argv, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL)))
        return 0;
    while ((e = fts_read(fts)) != NULL)
        if (e->fts_info == FTS_F && S_ISREG(e->fts_statp->st_mode) && e->fts_statp->st_nlink == 1)
            sum += (uint64_t)e->fts_statp->st_size;
    fts_close(fts);
    return sum;
}

/* name is ".BASE." + ("NNN." or "NNNN.")? + 6 letters or digits + ".tmp":
 * 1 for a bundle temporary, 2 for a part, 0 for anything else. */
static int tmp_kind(const char *name, const char *base)
{
    size_t bl = strlen(base), i = 0, digits = 0;
    const char *r;
    if (name[0] != '.' || strncmp(name + 1, base, bl) != 0 || name[1 + bl] != '.')
        return 0;
    r = name + bl + 2;
    while (r[digits] >= '0' && r[digits] <= '9')
        digits++;
    if ((digits == 3 || digits == 4) && r[digits] == '.')
        r += digits + 1;
    else
        digits = 0;
    for (i = 0; i < 6; i++) {
        char c = r[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    if (strcmp(r + 6, ".tmp") != 0)
        return 0;
    return digits ? 2 : 1;
}

/* 1 when the file is a regular file nobody holds a flock on (the file is
 * left open in *fdp, locked, so it can be unlinked under the lock). */
static int tmp_unheld(int dfd, const char *name, int *fdp)
{
    struct stat st;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    *fdp = -1;
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return 0;
    }
    *fdp = fd;
    return 1;
}

static int part_one(const char *name, const char *base)
{
    const char *r = name + strlen(base) + 2;
    return strncmp(r, "001.", 4) == 0 || strncmp(r, "0001.", 5) == 0;
}

size_t ap_tmp_sweep(const char *dir, const char *base)
{
    DIR *d;
    struct dirent *de;
    size_t removed = 0;
    int parts_live = 0, pass;
    if (!base || !*base || strchr(base, '/') || !(d = opendir(dir && *dir ? dir : ".")))
        return 0;
    /* pass 0: is a part writer alive (part 1 locked)? pass 1: remove */
    for (pass = 0; pass < 2; pass++) {
        rewinddir(d);
        while ((de = readdir(d)) != NULL) {
            int kind = tmp_kind(de->d_name, base), fd;
            if (!kind || (pass == 0 && (kind != 2 || !part_one(de->d_name, base))))
                continue;
            if (pass == 1 && kind == 2 && parts_live)
                continue;
            if (!tmp_unheld(dirfd(d), de->d_name, &fd)) {
                /* a part 1 that is locked (or not a plain file): keep every part */
                if (pass == 0 && faccessat(dirfd(d), de->d_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                    parts_live = 1;
                continue;
            }
            if (pass == 1 && unlinkat(dirfd(d), de->d_name, 0) == 0)
                removed++;
            close(fd);
        }
    }
    closedir(d);
    return removed;
}

void ap_test_stall(const char *var)
{
    const char *stall = getenv(var);
    int fd;
    if (!stall || !*stall)
        return;
    fd = open(stall, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < 2000 && access(stall, F_OK) == 0; i++)
        usleep(10000);
}
