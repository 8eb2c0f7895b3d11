/*
 * units.c - `airpack units`: the systemd service units of the installed
 * releases (docs/install.md, "Service units"): print them, link them into
 * a unit folder, or give their launch specs as JSON for starting the
 * services without systemd.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "common.h"
#include "install.h"
#include "lock.h"
#include "site/units.h"
#include "util.h"

const char cmd_units_usage[] =
"usage: airpack units --prefix DIR [NAME] [--systemd-dir DIR] [--format text|json]\n"
    "\n"
    "Print the systemd service units that install wrote into the active\n"
    "release of each deployment under the prefix (or of NAME). Each unit\n"
    "starts one runtime with the launch spec of the signed lock and refers\n"
    "to the release through PREFIX/current/NAME, so 'airpack rollback' plus a\n"
    "restart runs the previous release.\n"
    "\n"
    "options:\n"
    "  -p, --prefix DIR        the install root\n"
    "  -s, --systemd-dir DIR   link each unit into DIR (e.g. /etc/systemd/system);\n"
    "                          then run 'systemctl daemon-reload'\n"
    "  -f, --format FMT        text (the units, default) or json (argv, env,\n"
    "                          working directory, listen address, health path:\n"
    "                          docs/install.md)\n"
    "\n"
    "exit status: 0 done, 1 a unit of the release is missing, 2 bad usage or\n"
    "nothing installed\n";

const struct option cmd_units_options[] = {
    {"prefix", required_argument, NULL, 'p'},
    {"systemd-dir", required_argument, NULL, 's'},
    {"format", required_argument, NULL, 'f'},
    {NULL, 0, NULL, 0},
};

/* The lock of a deployment's active release, parsed (from its receipt). */
static int load_current(const char *prefix, const char *name, ap_lock **lock, char *rel,
                        ap_error *err)
{
    char *release_dir = NULL, *receipt = NULL, *buf = NULL, p[PATH_MAX];
    size_t len = 0;
    int rc = ap_install_current(prefix, name, &release_dir, &receipt, rel, err);
    if (rc != AP_OK)
        return rc;
    if (snprintf(p, sizeof p, "%s/%s", receipt, AP_LOCK_NAME) >= (int)sizeof p)
        rc = ap_error_set(err, AP_ERR_INPUT, "path too long");
    else if ((rc = ap_read_file(p, AP_LOCK_MAX_BYTES, &buf, &len, err)) == AP_OK)
        rc = ap_lock_parse(p, buf, len, lock, err);
    free(buf);
    free(release_dir);
    free(receipt);
    return rc;
}

/* DIR/<unit> -> target, replacing an older link atomically. */
static int link_unit(const char *dir, const char *unit, const char *target)
{
    char link[PATH_MAX], tmp[PATH_MAX];
    struct stat st;
    if (snprintf(link, sizeof link, "%s/%s", dir, unit) >= (int)sizeof link ||
        snprintf(tmp, sizeof tmp, "%s/.%s.airpack-tmp", dir, unit) >= (int)sizeof tmp) {
        fprintf(stderr, "error: path too long in '%s'\n", dir);
        return 2;
    }
    if (lstat(link, &st) == 0 && !S_ISLNK(st.st_mode)) {
        fprintf(stderr, "error: '%s' exists and is not a link: not replaced\n", link);
        return 1;
    }
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
        fprintf(stderr, "error: cannot link '%s': %s\n", link, strerror(errno));
        unlink(tmp);
        return 1;
    }
    printf("linked %s -> %s\n", link, target);
    return 0;
}

int cmd_units(int argc, char **argv)
{
    const char *prefix = NULL, *only = NULL, *sysdir = NULL;
    enum cli_format fmt = CLI_FMT_TEXT;
    char abs_prefix[PATH_MAX], **names = NULL;
    json_t *doc = NULL, *all = NULL;
    ap_error err;
    int c, rc = 0;

    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:s:f:", cmd_units_options, NULL)) != -1) {
        switch (c) {
        case 'p':
            prefix = optarg;
            break;
        case 's':
            sysdir = optarg;
            break;
        case 'f':
            if ((rc = cli_parse_format("units", optarg, CLI_FMT_TEXT | CLI_FMT_JSON, &fmt)))
                return rc;
            break;
        default:
            return cli_usage_error("units", "invalid option");
        }
    }
    if (optind < argc)
        only = argv[optind++];
    if (optind != argc)
        return cli_usage_error("units", "unexpected argument '%s'", argv[optind]);
    if (!prefix)
        return cli_usage_error("units", "no --prefix given");
    if (!realpath(prefix, abs_prefix)) {
        fprintf(stderr, "error: prefix '%s': %s\n", prefix, strerror(errno));
        return 2;
    }
    if (sysdir) {
        struct stat st;
        if (stat(sysdir, &st) != 0 || !S_ISDIR(st.st_mode))
            return cli_usage_error("units", "--systemd-dir '%s' is not a folder", sysdir);
    }
    if (ap_install_names(abs_prefix, &names, &err) != AP_OK)
        return cli_report(&err);
    all = json_array();
    if (!all)
        goto oom;
    for (size_t i = 0; names[i]; i++) {
        ap_lock *lock = NULL;
        char rel[AP_RELEASE_MAX] = "";
        ap_unit_files uf;
        json_t *specs;
        if (only && strcmp(names[i], only) != 0)
            continue;
        if (load_current(abs_prefix, names[i], &lock, rel, &err) != AP_OK) {
            if (only) {
                rc = cli_report(&err);
                goto out;
            }
            continue; /* no active release */
        }
        if (ap_units_render(abs_prefix, names[i], rel, lock->json, &uf, &err) != AP_OK) {
            ap_lock_free(lock);
            rc = cli_report(&err);
            goto out;
        }
        specs = ap_units_specs(abs_prefix, names[i], lock->json);
        if (!specs) {
            ap_unit_files_release(&uf);
            ap_lock_free(lock);
            goto oom;
        }
        for (size_t k = 0; k < json_array_size(specs); k++)
            json_object_set_new(json_array_get(specs, k), "release", json_string(rel));
        json_array_extend(all, specs);
        json_decref(specs);
        for (size_t k = 0; k < uf.n; k++) {
            char target[PATH_MAX];
            struct stat st;
            const char *base = strrchr(uf.v[k].path, '/') + 1;
            size_t bl = strlen(base);
            if (bl < 8 || strcmp(base + bl - 8, ".service") != 0)
                continue;
            snprintf(target, sizeof target, "%s/current/%s/%s", abs_prefix, names[i], uf.v[k].path);
            if (stat(target, &st) != 0) {
                fprintf(stderr, "error: unit '%s' is missing (installed by an airpack without "
                                "service units? reinstall the bundle)\n", target);
                rc = 1;
                continue;
            }
            if (sysdir) {
                int lr = link_unit(sysdir, base, target);
                if (lr > rc)
                    rc = lr;
            } else if (fmt == CLI_FMT_TEXT) {
                printf("# %s\n%s\n", target, uf.v[k].content);
            }
        }
        ap_unit_files_release(&uf);
        ap_lock_free(lock);
    }
    if (only && !json_array_size(all) && rc == 0) {
        int known = 0;
        for (size_t i = 0; names[i]; i++)
            known |= !strcmp(names[i], only);
        if (!known) {
            fprintf(stderr, "error: no deployment '%s' installed in '%s'\n", only, prefix);
            rc = 2;
            goto out;
        }
    }
    if (fmt == CLI_FMT_JSON && !sysdir) {
        doc = json_pack("{s:s,s:O}", "prefix", abs_prefix, "units", all);
        if (!doc)
            goto oom;
        int prc = cli_print_json(stdout, doc);
        if (prc > rc)
            rc = prc;
    } else if (fmt == CLI_FMT_TEXT && !sysdir && json_array_size(all) == 0) {
        printf("no service units: no installed release serves a model in '%s'\n", prefix);
    }
out:
    json_decref(doc);
    json_decref(all);
    ap_strv_free(names);
    return rc;
oom:
    fprintf(stderr, "error: out of memory\n");
    rc = 2;
    goto out;
}
