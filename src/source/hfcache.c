/*
 * hfcache.c - Hugging Face hub cache snapshots as inputs (see source.h).
 *
 * Layout (huggingface_hub's file_download.py, read for the format):
 *   HUB/models--ORG--NAME/blobs/<sha256 for LFS files, git sha1 otherwise>
 *   HUB/models--ORG--NAME/refs/<branch or tag>       one line: the commit
 *   HUB/models--ORG--NAME/snapshots/<commit>/<file>  a link to ../../blobs/<id>
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../util.h"
#include "../walk.h"
#include "source.h"

char *ap_hf_cache_dir(void)
{
    const char *e;
    char *out = NULL;
    if ((e = getenv("HF_HUB_CACHE")) && *e)
        return strdup(e);
    if ((e = getenv("HF_HOME")) && *e)
        return ap_path_join(e, "hub");
    if ((e = getenv("XDG_CACHE_HOME")) && *e)
        return ap_path_join(e, "huggingface/hub");
    if ((e = getenv("HOME")) && *e)
        return ap_path_join(e, ".cache/huggingface/hub");
    return out;
}

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 96 || (n <= 2 && s[0] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return strstr(s, "..") == NULL || (size_t)(strstr(s, "..") - s) >= n;
}

static int is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int ap_hf_resolve(const char *ref, char **snapshot, ap_error *err)
{
    const char *r = ref + 5, *slash = strchr(r, '/'), *at;
    char *hub = NULL, *repo = NULL, *commit = NULL, *buf = NULL;
    char folder[512], rev[256];
    size_t len;
    struct stat st;
    int rc = AP_OK;

    *snapshot = NULL;
    at = slash ? strchr(slash, '@') : NULL;
    if (!slash || !name_ok(r, (size_t)(slash - r)) ||
        !name_ok(slash + 1, at ? (size_t)(at - slash - 1) : strlen(slash + 1)))
        return ap_error_set(err, AP_ERR_INPUT,
                            "'%s' is not a Hugging Face reference (expected "
                            "hf://ORG/NAME or hf://ORG/NAME@REVISION)",
                            ref);
    snprintf(rev, sizeof rev, "%s", at ? at + 1 : "main");
    if (!rev[0] || strlen(at ? at + 1 : "main") >= sizeof rev || !ap_path_is_safe_relative(rev))
        return ap_error_set(err, AP_ERR_INPUT, "'%s': bad revision '%s'", ref, rev);
    snprintf(folder, sizeof folder, "models--%.*s--%.*s", (int)(slash - r), r,
             (int)(at ? (size_t)(at - slash - 1) : strlen(slash + 1)), slash + 1);
    if (!(hub = ap_hf_cache_dir()))
        return ap_error_set(err, AP_ERR_INPUT,
                            "'%s': no Hugging Face cache folder (set HF_HUB_CACHE or HF_HOME)", ref);
    if (!(repo = ap_path_join(hub, folder))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (stat(repo, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = ap_error_set(err, AP_ERR_INPUT,
                          "'%s' is not in the Hugging Face cache (looked for '%s'; set "
                          "HF_HUB_CACHE or HF_HOME)",
                          ref, repo);
        goto out;
    }
    if (is_hex(rev, 40)) {
        commit = strdup(rev);
    } else {
        char refs[300];
        char *rf;
        snprintf(refs, sizeof refs, "refs/%s", rev);
        if (!(rf = ap_path_join(repo, refs))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = ap_read_file(rf, AP_HF_MAX_REF_BYTES, &buf, &len, err);
        if (rc) {
            ap_error_set(err, AP_ERR_INPUT,
                         "'%s': revision '%s' is not in the cache (no '%s')", ref, rev, rf);
            free(rf);
            goto out;
        }
        free(rf);
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
            buf[--len] = '\0';
        if (!is_hex(buf, 40)) {
            rc = ap_error_set(err, AP_ERR_INPUT,
                              "'%s': refs/%s does not hold a commit hash (40 hexadecimal digits)",
                              ref, rev);
            goto out;
        }
        commit = strdup(buf);
    }
    if (!commit) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    {
        char sub[64];
        snprintf(sub, sizeof sub, "snapshots/%s", commit);
        if (!(*snapshot = ap_path_join(repo, sub))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if (stat(*snapshot, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = ap_error_set(err, AP_ERR_INPUT, "'%s': snapshot '%s' is not in the cache", ref,
                          *snapshot);
        free(*snapshot);
        *snapshot = NULL;
    }
out:
    free(hub);
    free(repo);
    free(commit);
    free(buf);
    return rc;
}

int ap_hf_locate(const char *path, char **repo_dir, char **revision)
{
    /* ".../models--ORG--NAME/snapshots/REV[/...]", lexically */
    const char *p = path;
    *repo_dir = *revision = NULL;
    for (;;) {
        const char *s = strstr(p, "/snapshots/");
        const char *seg, *rev, *rend;
        if (!s)
            return 0;
        seg = s;
        while (seg > path && seg[-1] != '/')
            seg--;
        rev = s + 11;
        rend = strchr(rev, '/');
        if (!rend)
            rend = rev + strlen(rev);
        if (strncmp(seg, "models--", 8) == 0 && rend > rev) {
            *repo_dir = strndup(path, (size_t)(s - path));
            *revision = strndup(rev, (size_t)(rend - rev));
            if (!*repo_dir || !*revision) {
                free(*repo_dir);
                free(*revision);
                *repo_dir = *revision = NULL;
                return -1;
            }
            return 1;
        }
        p = s + 1;
    }
}

int ap_hf_locate_real(const char *path, char **repo_dir, char **revision)
{
    /* Where the path really is (a "../" or a linked folder in the path must
     * not name another revision, nor hide a snapshot); a file may itself be
     * a link into blobs/, so its folder is resolved, not it. */
    struct stat st;
    char *where = NULL;
    int loc;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        where = realpath(path, NULL);
    } else {
        char *dir = ap_path_dirname(path), *rd = dir ? realpath(dir, NULL) : NULL;
        const char *b = strrchr(path, '/');
        if (rd)
            where = ap_path_join(rd, b ? b + 1 : path);
        free(dir);
        free(rd);
    }
    loc = ap_hf_locate(where ? where : path, repo_dir, revision);
    free(where);
    return loc;
}

/* "models--ORG--NAME" -> "ORG/NAME" (new string). */
static char *repo_id(const char *repo_dir)
{
    const char *b = strrchr(repo_dir, '/');
    char *out, *q;
    b = b ? b + 1 : repo_dir;
    if (strncmp(b, "models--", 8) == 0)
        b += 8;
    if (!(out = strdup(b)))
        return NULL;
    if ((q = strstr(out, "--"))) {
        *q = '/';
        memmove(q + 1, q + 2, strlen(q + 2) + 1);
    }
    return out;
}

/* The file's digest when the blob it comes from is named by a SHA-256. */
static const char *blob_digest(const char *real)
{
    const char *b = real ? strrchr(real, '/') : NULL;
    return b && is_hex(b + 1, 64) ? b + 1 : NULL;
}

/* The refs (branches, tags: refs/NAME, refs/pr/N) that name revision. */
static json_t *refs_of(const char *repo, const char *rev)
{
    json_t *out = json_array();
    char *refs = ap_path_join(repo, "refs");
    ap_filelist fl = {0};
    ap_error e;
    if (!out || !refs || ap_walk_files(refs, &fl, &e) != AP_OK) {
        free(refs);
        return out;
    }
    for (size_t i = 0; i < fl.n && i < 256 && json_array_size(out) < 16; i++) {
        char *f = ap_path_join(refs, fl.paths[i]), *buf = NULL;
        size_t len = 0;
        if (f && ap_read_file(f, AP_HF_MAX_REF_BYTES, &buf, &len, &e) == AP_OK) {
            while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
                buf[--len] = '\0';
            if (!strcmp(buf, rev))
                json_array_append_new(out, json_string(fl.paths[i]));
        }
        free(buf);
        free(f);
    }
    ap_filelist_release(&fl);
    free(refs);
    return out;
}

int ap_hf_walk(const ap_mpath *p, ap_input *in, ap_error *err)
{
    char *repo = NULL, *rev = NULL, *blobs = NULL, *blobs_real = NULL, *id = NULL;
    ap_filelist fl = {0};
    struct stat st;
    int rc = AP_OK, loc = ap_hf_locate_real(p->abs, &repo, &rev);

    in->kind = AP_INPUT_HF;
    if (loc <= 0)
        return loc < 0 ? ap_error_set(err, AP_ERR_NOMEM, "out of memory")
                       : ap_error_set_at(err, AP_ERR_INPUT, p->abs, 0, 0,
                                         "not inside a Hugging Face cache snapshot");
    if (!(blobs = ap_path_join(repo, "blobs")) || !(id = repo_id(repo))) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!(blobs_real = realpath(blobs, NULL))) {
        rc = ap_error_errno(err, AP_ERR_INPUT, errno,
                            "cannot open the Hugging Face repository's blobs folder", blobs);
        goto out;
    }
    if (lstat(p->abs, &st) != 0) {
        rc = ap_error_errno(err, AP_ERR_INPUT, errno, "cannot read", p->abs);
        goto out;
    }
    if (S_ISLNK(st.st_mode)) {
        /* the manifest's path itself may be a link to a snapshot folder */
        struct stat ft;
        if (stat(p->abs, &ft) == 0 && S_ISDIR(ft.st_mode))
            st = ft;
    }
    if (S_ISDIR(st.st_mode)) {
        if ((rc = ap_walk_files_in(p->abs, blobs_real, &fl, err)))
            goto out;
        for (size_t i = 0; i < fl.n && rc == AP_OK; i++) {
            const char *real = fl.targets ? fl.targets[i] : NULL, *why;
            char *abs = ap_path_join(p->abs, fl.paths[i]);
            if (!abs) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                break;
            }
            if (stat(real ? real : abs, &st) != 0)
                rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot stat", abs);
            else if (!ap_input_filter(p, fl.paths[i], &why))
                rc = ap_input_skip_add(in, fl.paths[i], why, (uint64_t)st.st_size, err);
            else
                rc = ap_input_add(in, fl.paths[i], real ? real : abs, 0, blob_digest(real),
                                  (uint64_t)st.st_size, err);
            free(abs);
        }
    } else {
        /* One file of a snapshot: a link into blobs/, or a regular file. */
        const char *base = strrchr(p->abs, '/');
        char *real = NULL;
        base = base ? base + 1 : p->abs;
        if (S_ISLNK(st.st_mode)) {
            real = realpath(p->abs, NULL);
            if (!real || !ap_walk_link_ok(real, blobs_real)) {
                rc = ap_error_set_at(err, AP_ERR_INPUT, p->abs, 0, 0,
                                     "a symbolic link %s the repository's blobs folder '%s'; "
                                     "only links into it are followed",
                                     real ? "outside" : "missing from", blobs_real);
                free(real);
                goto out;
            }
        } else if (!S_ISREG(st.st_mode)) {
            rc = ap_error_set_at(err, AP_ERR_INPUT, p->abs, 0, 0, "not a regular file");
            goto out;
        }
        if (stat(real ? real : p->abs, &st) != 0)
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot stat", p->abs);
        else
            rc = ap_input_add(in, base, real ? real : p->abs, 0, blob_digest(real),
                              (uint64_t)st.st_size, err);
        free(real);
    }
    if (rc == AP_OK) {
        in->source = json_pack("{s:s, s:s, s:s}", "kind", "hf-cache", "repo", id, "revision", rev);
        if (in->source) {
            json_t *refs = refs_of(repo, rev);
            if (json_array_size(refs))
                json_object_set_new(in->source, "refs", refs);
            else
                json_decref(refs);
        }
        if (in->source && strncmp(p->path, "hf://", 5) == 0) {
            const char *at = strchr(p->path + 5, '@');
            json_object_set_new(in->source, "ref", json_string(at ? at + 1 : "main"));
        }
        if (!in->source)
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
out:
    ap_filelist_release(&fl);
    free(repo);
    free(rev);
    free(blobs);
    free(blobs_real);
    free(id);
    return rc;
}
