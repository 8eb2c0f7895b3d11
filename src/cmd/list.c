/*
 * list.c - `airpack list`: the releases installed under a prefix.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "install.h"
#include "lock.h"
#include "report_glue.h"
#include "util.h"

const char cmd_list_usage[] =
"usage: airpack list --prefix DIR [--format text|json]\n"
    "       airpack list --prefix DIR --export-lock FILE [--name NAME]\n"
    "\n"
    "List the deployments and releases installed under DIR; '*' marks the\n"
    "active release. Read-only.\n"
    "--export-lock writes the active release's signed lock (the receipt's\n"
    "airpack.lock.json, byte for byte) to FILE and its signature to\n"
    "FILE.minisig, to carry out of the site: `airpack build --base FILE` then\n"
    "builds a delta bundle that leaves out what the site already has.\n"
    "\n"
    "options:\n"
    "  -p, --prefix DIR   the install root\n"
    "  -f, --format FMT   text (default) or json (docs/install.md)\n"
    "  -e, --export-lock FILE  write the active release's lock to FILE\n"
    "  -n, --name NAME    the deployment (--export-lock; needed when DIR holds several)\n"
    "\n"
    "exit status: 0 listed, 2 bad usage or unreadable prefix\n";

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_list_options[] = {
    {"prefix", required_argument, NULL, 'p'},
    {"format", required_argument, NULL, 'f'},
    {"export-lock", required_argument, NULL, 'e'},
    {"name", required_argument, NULL, 'n'},
    {NULL, 0, NULL, 0},
};

struct blob {
    const char *buf;
    size_t len;
};

static int write_blob(FILE *f, void *ctx, ap_error *err)
{
    const struct blob *b = ctx;
    if (fwrite(b->buf, 1, b->len, f) != b->len)
        return ap_error_set(err, AP_ERR_IO, "cannot write the lock");
    return AP_OK;
}

/* list --export-lock: the active release's receipt lock (and signature). */
static int export_lock(const char *prefix, const char *name, const char *out)
{
    char *rdir = NULL, *rec = NULL, **names = NULL, rel[AP_RELEASE_MAX], p[4096], sigout[4096];
    char *lock = NULL, *sig = NULL;
    size_t llen = 0, slen = 0;
    struct blob b;
    ap_error err;
    int rc = 2;

    ap_error_clear(&err);
    if (!name) {
        if (ap_install_names(prefix, &names, &err) != AP_OK) {
            rc = cli_report(&err);
            goto out;
        }
        if (!names[0] || names[1]) {
            cli_error("prefix '%s' holds %s deployments: give --name", prefix,
                      names[0] ? "several" : "no");
            goto out;
        }
        name = names[0];
    }
    if (ap_install_current(prefix, name, &rdir, &rec, rel, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (snprintf(p, sizeof p, "%s/%s", rec, AP_LOCK_NAME) >= (int)sizeof p ||
        snprintf(sigout, sizeof sigout, "%s.minisig", out) >= (int)sizeof sigout) {
        cli_error("path too long");
        goto out;
    }
    if (ap_read_file(p, AP_LOCK_MAX_BYTES, &lock, &llen, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (snprintf(p, sizeof p, "%s/%s", rec, AP_LOCK_SIG_NAME) < (int)sizeof p &&
        ap_read_file(p, 1u << 20, &sig, &slen, &err) == AP_OK) {
        b.buf = sig;
        b.len = slen;
        if (cli_write_output(sigout, write_blob, &b, &err) != AP_OK) {
            rc = cli_report(&err);
            goto out;
        }
    }
    ap_error_clear(&err);
    b.buf = lock;
    b.len = llen;
    if (cli_write_output(out, write_blob, &b, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    printf("exported the lock of %s %s from '%s' to '%s'%s\n", name, rel, prefix, out,
           sig ? " (and its signature)" : "");
    rc = 0;
out:
    free(rdir);
    free(rec);
    free(lock);
    free(sig);
    ap_strv_free(names);
    return rc;
}

int cmd_list(int argc, char **argv)
{
    const char *prefix = NULL, *export = NULL, *name = NULL;
    enum cli_format fmt = CLI_FMT_TEXT;
    json_t *doc = NULL, *deps;
    ap_error err;
    int c, rc;

    ap_error_clear(&err);
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:f:e:n:", cmd_list_options, NULL)) != -1) {
        switch (c) {
        case 'e':
            export = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 'f':
            if ((rc = cli_parse_format("list", optarg, CLI_FMT_TEXT | CLI_FMT_JSON, &fmt)))
                return rc;
            break;
        default:
            return cli_usage_error("list", "invalid option");
        }
    }
    if (optind != argc)
        return cli_usage_error("list", "unexpected argument '%s'", argv[optind]);
    if (!prefix)
        return cli_usage_error("list", "no --prefix given");
    if (export)
        return export_lock(prefix, name, export);
    if (name)
        return cli_usage_error("list", "--name goes with --export-lock");
    if (ap_install_list(prefix, &doc, &err) != AP_OK)
        return cli_report(&err);
    if (fmt == CLI_FMT_JSON) {
        rc = cli_print_json(stdout, doc);
        json_decref(doc);
        return rc;
    }
    deps = json_object_get(doc, "deployments");
    if (json_array_size(deps) == 0)
        printf("no releases installed in '%s'\n", prefix);
    for (size_t i = 0; i < json_array_size(deps); i++) {
        json_t *d = json_array_get(deps, i), *rels = json_object_get(d, "releases");
        printf("%s (highest sequence %lld)\n", json_string_value(json_object_get(d, "name")),
               (long long)json_integer_value(json_object_get(d, "highest_sequence")));
        for (size_t k = 0; k < json_array_size(rels); k++) {
            json_t *r = json_array_get(rels, k);
            const char *when = json_string_value(json_object_get(r, "installed_at"));
            const char *kid = json_string_value(json_object_get(r, "key_id"));
            printf("  %c %-24s installed %s, key %s\n",
                   json_is_true(json_object_get(r, "active")) ? '*' : ' ',
                   json_string_value(json_object_get(r, "release")), when ? when : "?",
                   kid ? kid : "?");
        }
    }
    json_decref(doc);
    return 0;
}
