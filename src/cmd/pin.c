/*
 * pin.c - `airpack pin MANIFEST`: write a coreutils-format .sha256 pin file
 * beside each unpinned model, runtime and file path of a manifest, and say
 * which line to add to the manifest.
 *
 * For a folder 'models/x', the pin file is 'models/x.sha256' listing every
 * file under the folder relative to it (so `cd models/x && sha256sum -c
 * ../x.sha256` works); for a file 'models/m.gguf', 'models/m.gguf.sha256'
 * listing the file by name. Pin files are written to a temporary name and
 * renamed into place; an existing pin file is kept unless --force.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "common.h"
#include "manifest.h"
#include "pins.h"
#include "util.h"
#include "walk.h"
#include "source/source.h"

const char cmd_pin_usage[] =
    "usage: airpack pin MANIFEST [--force] [--allow-outside-paths]\n"
    "\n"
    "Write a coreutils-format .sha256 pin file beside each model, runtime and\n"
    "file path of MANIFEST that has neither 'sha256' nor 'sha256sums', and say\n"
    "which line to add to the manifest. Pinned paths are left alone.\n"
    "\n"
    "options:\n"
    "  --force                overwrite existing .sha256 files\n"
    "  --allow-outside-paths  allow absolute paths and paths outside the\n"
    "                         manifest's folder\n";

/* Write "hex  name\n" lines for names (relative to base) to out_path. */
static int write_sums(const char *out_path, const char *base, char **names, char **srcs,
                      size_t n, int force, ap_error *err)
{
    char **abs = calloc(n ? n : 1, sizeof *abs);
    char(*hex)[AP_SHA256_HEX_LEN + 1] = calloc(n ? n : 1, sizeof *hex);
    char *tmp = NULL;
    FILE *f = NULL;
    int rc = AP_OK, fd = -1;
    struct stat st;

    if (!abs || !hex) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!force && lstat(out_path, &st) == 0) {
        rc = ap_error_set_at(err, AP_ERR_INPUT, out_path, 0, 0,
                             "pin file exists already (use --force to overwrite)");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (!(abs[i] = srcs ? strdup(srcs[i]) : ap_path_join(base, names[i]))) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
    if ((rc = ap_hash_files(abs, n, 2, hex, NULL, err)))
        goto out;
    if (asprintf(&tmp, "%s.tmp.XXXXXX", out_path) < 0) {
        tmp = NULL;
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((fd = mkstemp(tmp)) < 0 || !(f = fdopen(fd, "w"))) {
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot create", out_path);
        if (fd >= 0)
            close(fd);
        free(tmp);
        tmp = NULL;
        goto out;
    }
    fchmod(fd, 0644);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s  %s\n", hex[i], names[i]);
    if (fflush(f) != 0 || fsync(fd) != 0 || ferror(f))
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", out_path);
    if (fclose(f) != 0 && !rc)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot write", out_path);
    f = NULL;
    if (!rc && rename(tmp, out_path) != 0)
        rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot rename into", out_path);
    if (rc)
        unlink(tmp);
out:
    if (abs)
        for (size_t i = 0; i < n; i++)
            free(abs[i]);
    free(abs);
    free(hex);
    free(tmp);
    return rc;
}

/* Pin one path; prints what to add. Returns AP_OK, or an error. */
static int pin_one(const ap_manifest *m, const ap_mpath *p, const char *subject, int force,
                   unsigned *written, ap_error *err)
{
    ap_filelist files = {0};
    ap_input in = {0};
    char **srcs = NULL;
    int borrowed = 0;
    char *out_abs = NULL, *out_rel = NULL, *base = NULL;
    char *rel = NULL;
    int rc;
    size_t l;
    ap_loc loc = {0, 0};

    if (!p->path || p->sha256 || p->sha256sums)
        return AP_OK;
    rel = strdup(p->path);
    if (!rel)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    l = strlen(rel);
    while (l > 1 && rel[l - 1] == '/')
        rel[--l] = '\0';
    if (asprintf(&out_rel, "%s.sha256", rel) < 0 || asprintf(&out_abs, "%s.sha256", p->abs) < 0) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (ap_source_is_ref(p->path)) {
        printf("%s: '%s' is pinned by its store's digests; no pin file written\n", subject,
               p->path);
        rc = AP_OK;
        goto out;
    }
    if (p->is_dir) {
        /* the walk check and build use: include/exclude, hub cache links */
        if ((rc = ap_input_walk(p, 0, &in, err)))
            goto out;
        files.paths = calloc(in.n ? in.n : 1, sizeof *files.paths);
        srcs = calloc(in.n ? in.n : 1, sizeof *srcs);
        if (!files.paths || !srcs) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < in.n; i++) {
            files.paths[files.n++] = in.files[i].rel;
            srcs[i] = in.files[i].src;
        }
        borrowed = 1;
        base = strdup(p->abs);
    } else {
        const char *slash = strrchr(p->abs, '/');
        files.paths = malloc(sizeof(char *));
        if (files.paths && (files.paths[0] = strdup(slash ? slash + 1 : p->abs)))
            files.n = 1;
        base = ap_path_dirname(p->abs);
    }
    if (!base || files.n == 0) {
        rc = files.n == 0 && base ? ap_error_set_at(err, AP_ERR_INPUT, p->abs, 0, 0,
                                                    "folder holds no files to pin")
                                  : ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = write_sums(out_abs, base, files.paths, srcs, files.n, force, err)))
        goto out;
    ap_manifest_locate(m, subject, &loc);
    printf("%s: wrote '%s' (%zu file%s)\n", subject, out_abs, files.n, files.n == 1 ? "" : "s");
    printf("  add to %s, line %u:  sha256sums: %s\n", m->file, loc.line, out_rel);
    (*written)++;
out:
    if (borrowed) {
        free(files.paths);
        files.paths = NULL;
        files.n = 0;
    }
    ap_filelist_release(&files);
    ap_input_release(&in);
    free(srcs);
    free(base);
    free(out_abs);
    free(out_rel);
    free(rel);
    return rc;
}

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_pin_options[] = {
    {"force", no_argument, NULL, 'f'},
    {"allow-outside-paths", no_argument, NULL, 'A'},
    {NULL, 0, NULL, 0},
};

int cmd_pin(int argc, char **argv)
{
    ap_manifest_opts mopts = {0};
    ap_manifest *m = NULL;
    ap_error err;
    int c, force = 0, rc = AP_OK;
    unsigned written = 0;
    char subject[64];

    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", cmd_pin_options, NULL)) != -1) {
        if (c == 'f')
            force = 1;
        else if (c == 'A')
            mopts.allow_outside_paths = 1;
        else
            return cli_usage_error("pin", "invalid option");
    }
    if (optind != argc - 1)
        return cli_usage_error("pin", optind >= argc ? "missing MANIFEST" : "too many arguments");
    if (ap_manifest_load(argv[optind], &mopts, &m, &err) != AP_OK)
        return cli_report(&err);
    for (size_t i = 0; !rc && i < m->n_models; i++) {
        snprintf(subject, sizeof subject, "models[%zu]", i);
        rc = pin_one(m, &m->models[i].src, subject, force, &written, &err);
    }
    for (size_t i = 0; !rc && i < m->n_runtimes; i++) {
        snprintf(subject, sizeof subject, "runtimes[%zu]", i);
        rc = pin_one(m, &m->runtimes[i].src, subject, force, &written, &err);
    }
    for (size_t i = 0; !rc && i < m->n_files; i++) {
        snprintf(subject, sizeof subject, "files[%zu]", i);
        rc = pin_one(m, &m->files[i].src, subject, force, &written, &err);
    }
    ap_manifest_free(m);
    if (rc)
        return cli_report(&err);
    if (!written)
        printf("every path is pinned already\n");
    return 0;
}
