/*
 * inspect.c - `airpack inspect`: what a bundle holds, read WITHOUT
 * trusting it. Only the first two entries are read (the lock and its
 * signature); the lock goes through the strict parser (lock.h), but the
 * signature is not checked and no payload is hashed, and the output says
 * so. `airpack verify` is the command that establishes trust.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_read.h"
#include "bundle_write.h"
#include "cmd.h"
#include "trust/cosign.h"
#include "common.h"
#include "lock.h"
#include "parts.h"
#include "runtime/launch.h"
#include "sign.h"
#include "util.h"

const char cmd_inspect_usage[] =
"usage: airpack inspect BUNDLE [--format text|json]\n"
    "\n"
    "Show what a bundle holds, read without trusting it: the lock's metadata\n"
    "and artifacts and the signature's key id and trusted comment. Nothing is\n"
    "verified; use 'airpack verify' for that.\n"
    "\n"
    "  --format text|json  output format (default text)\n"
    "exit status: 0 shown, 1 not a well-formed bundle, 2 bad usage or unreadable file\n";

#define UNTRUSTED_NOTE "not verified: the signature and the hashes were not checked " \
                       "(use 'airpack verify')"

/* The files include/exclude left out (the lock's analysis.pins[].excluded),
 * each with its subject: a new array. */
static json_t *excluded_files(const ap_lock *l)
{
    const json_t *pins = json_object_get(json_object_get(l->json, "analysis"), "pins"), *p, *e;
    json_t *out = json_array();
    size_t i, k;
    json_array_foreach(pins, i, p) {
        json_array_foreach(json_object_get(p, "excluded"), k, e) {
            json_t *c = json_deep_copy(e);
            if (!c)
                continue;
            json_object_set(c, "subject", json_object_get(p, "subject"));
            json_array_append_new(out, c);
        }
    }
    return out;
}

static const ap_bundle_head *g_head; /* every signature entry, for the listings */

static json_t *sigs_json(void)
{
    json_t *a = json_array();
    for (size_t i = 0; g_head && i < g_head->n_sigs; i++) {
        ap_signature s;
        ap_error e;
        char hex[17];
        ap_error_clear(&e);
        if (ap_signature_parse(g_head->sigs[i].name, g_head->sigs[i].text, g_head->sigs[i].len, &s,
                               &e) != AP_OK) {
            json_array_append_new(a, json_pack("{s:s,s:n,s:n,s:n,s:s}", "entry",
                                               g_head->sigs[i].name, "algorithm", "key_id",
                                               "trusted_comment", "error", e.msg));
            continue;
        }
        ap_keyid_hex(s.keyid, hex);
        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s}", "entry", g_head->sigs[i].name,
                                           "algorithm", s.alg, "key_id", hex, "trusted_comment",
                                           s.trusted_comment));
    }
    return a;
}

static json_t *to_json(const char *path, const ap_lock *l, const ap_signature *sig, int has_sig)
{
    json_t *o = json_object(), *md = json_object(), *arts = json_array(), *s;
    const json_t *src_md = json_object_get(l->json, "metadata");
    const char *k;
    json_t *v;
    json_object_set_new(o, "bundle", json_string(path));
    json_object_set_new(o, "verified", json_false());
    json_object_set_new(o, "note", json_string(UNTRUSTED_NOTE));
    json_object_set_new(o, "format", json_string(AP_LOCK_FORMAT));
    json_object_foreach((json_t *)src_md, k, v)
        json_object_set(md, k, v);
    json_object_set_new(o, "metadata", md);
    json_object_set_new(o, "expired", json_boolean(l->expires && ap_rfc3339_past(l->expires) == 1));
    json_object_set(o, "target", json_object_get(l->json, "target"));
    if (has_sig) {
        char hex[17];
        ap_keyid_hex(sig->keyid, hex);
        s = json_pack("{s:s, s:s, s:s}", "algorithm", sig->alg, "key_id", hex, "trusted_comment",
                      sig->trusted_comment);
    } else {
        s = json_null();
    }
    json_object_set_new(o, "signature", s);
    json_object_set_new(o, "signatures", sigs_json());
    for (size_t i = 0; i < l->n_artifacts; i++) {
        const ap_artifact *a = &l->artifacts[i];
        char hex[AP_SHA256_HEX_LEN + 1];
        ap_hex_encode(a->sha256, AP_SHA256_LEN, hex);
        json_array_append_new(arts, json_pack("{s:s, s:I, s:s, s:s, s:s}", "path", a->path, "size",
                                              (json_int_t)a->size, "sha256", hex, "mode",
                                              a->mode == 0755 ? "0755" : "0644", "role",
                                              ap_role_name(a->role)));
    }
    json_object_set_new(o, "artifacts", arts);
    json_object_set_new(o, "totals", json_pack("{s:I, s:I}", "artifacts",
                                               (json_int_t)l->n_artifacts, "bytes",
                                               (json_int_t)l->total_bytes));
    const json_t *summary = json_object_get(json_object_get(l->json, "analysis"), "summary");
    if (summary)
        json_object_set(o, "analysis_summary", (json_t *)summary);
    const json_t *launch = json_object_get(l->json, "launch");
    if (launch)
        json_object_set(o, "launch", (json_t *)launch);
    {
        json_t *ex = excluded_files(l);
        if (ex && json_array_size(ex))
            json_object_set(o, "excluded", ex);
        json_decref(ex);
    }
    return o;
}

static void human(uint64_t b, char *out, size_t n)
{
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double d = (double)b;
    int i = 0;
    while (d >= 1024 && i < 4) {
        d /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(out, n, "%llu B", (unsigned long long)b);
    else
        snprintf(out, n, "%.1f %s", d, u[i]);
}

/* The launch specs as recorded (docs/runtimes.md). */
static void print_launch(const json_t *launch)
{
    size_t i;
    const json_t *s;
    json_array_foreach(launch, i, s) {
        const char *k;
        const json_t *v;
        char *line = ap_launch_command_line(s);
        printf("launch:      %s (%s), listen %s, health %s\n",
               json_string_value(json_object_get(s, "runtime")),
               json_string_value(json_object_get(s, "kind")),
               json_string_value(json_object_get(s, "listen")),
               json_string_value(json_object_get(s, "health")));
        printf("             %s\n", line ? line : "");
        json_object_foreach((json_t *)json_object_get(s, "env"), k, v)
            printf("             env %s=%s\n", k, json_string_value(v));
        free(line);
    }
}

static void print_text(const char *path, const ap_lock *l, const ap_signature *sig, int has_sig)
{
    const json_t *md = json_object_get(l->json, "metadata");
    const json_t *t = json_object_get(l->json, "target");
    const json_t *summary = json_object_get(json_object_get(l->json, "analysis"), "summary");
    char hb[32];
    printf("bundle:      %s\n", path);
    printf("WARNING:     %s\n", UNTRUSTED_NOTE);
    printf("format:      %s\n", AP_LOCK_FORMAT);
    printf("name:        %s\n", l->name);
    printf("version:     %s\n", l->version);
    printf("sequence:    %llu\n", (unsigned long long)l->sequence);
    printf("created:     %s\n", l->created);
    if (l->expires)
        printf("expires:     %s%s\n", l->expires,
               ap_rfc3339_past(l->expires) == 1 ? " (expired: verify and install refuse it)" : "");
    if (json_string_value(json_object_get(md, "description")))
        printf("description: %s\n", json_string_value(json_object_get(md, "description")));
    if (json_string_value(json_object_get(md, "owner")))
        printf("owner:       %s\n", json_string_value(json_object_get(md, "owner")));
    if (json_string_value(json_object_get(t, "site")) || json_string_value(json_object_get(t, "region")))
        printf("target:      site %s, region %s\n",
               json_string_value(json_object_get(t, "site")) ? json_string_value(json_object_get(t, "site")) : "-",
               json_string_value(json_object_get(t, "region")) ? json_string_value(json_object_get(t, "region")) : "-");
    if (has_sig) {
        char hex[17];
        ap_keyid_hex(sig->keyid, hex);
        printf("signature:   key id %s, algorithm %s (not checked)\n", hex, sig->alg);
        printf("             trusted comment: %s\n", sig->trusted_comment);
    } else {
        printf("signature:   missing or unreadable\n");
    }
    for (size_t i = 1; g_head && i < g_head->n_sigs; i++) {
        ap_signature s;
        ap_error e;
        char hex[17];
        ap_error_clear(&e);
        if (ap_signature_parse(g_head->sigs[i].name, g_head->sigs[i].text, g_head->sigs[i].len, &s,
                               &e) != AP_OK) {
            printf("co-signature: %s unreadable: %s\n", g_head->sigs[i].name, e.msg);
            continue;
        }
        ap_keyid_hex(s.keyid, hex);
        printf("co-signature: key id %s, algorithm %s (not checked)\n", hex, s.alg);
        printf("             trusted comment: %s\n", s.trusted_comment);
    }
    if (summary)
        printf("analysis:    %lld errors, %lld warnings, %lld notes, %lld waived (as recorded)\n",
               json_integer_value(json_object_get(summary, "errors")),
               json_integer_value(json_object_get(summary, "warnings")),
               json_integer_value(json_object_get(summary, "notes")),
               json_integer_value(json_object_get(summary, "waived")));
    print_launch(json_object_get(l->json, "launch"));
    human(l->total_bytes, hb, sizeof hb);
    printf("artifacts:   %zu, %llu bytes (%s)\n\n", l->n_artifacts,
           (unsigned long long)l->total_bytes, hb);
    printf("  %-4s  %-9s  %14s  %-16s  %s\n", "mode", "role", "size", "sha256", "path");
    for (size_t i = 0; i < l->n_artifacts; i++) {
        const ap_artifact *a = &l->artifacts[i];
        char hex[AP_SHA256_HEX_LEN + 1];
        ap_hex_encode(a->sha256, AP_SHA256_LEN, hex);
        hex[16] = '\0';
        printf("  %04o  %-9s  %14llu  %-16s  %s\n", a->mode, ap_role_name(a->role),
               (unsigned long long)a->size, hex, a->path);
    }
    {
        json_t *ex = excluded_files(l), *e;
        size_t i;
        if (ex && json_array_size(ex)) {
            printf("\nleft out by include/exclude: %zu files\n", json_array_size(ex));
            json_array_foreach(ex, i, e)
                printf("  %-12s  %14lld  %s  (pattern '%s')\n",
                       json_string_value(json_object_get(e, "subject")),
                       (long long)json_integer_value(json_object_get(e, "size")),
                       json_string_value(json_object_get(e, "path")),
                       json_string_value(json_object_get(e, "pattern")));
        }
        json_decref(ex);
    }
}

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_inspect_options[] = {
    {"format", required_argument, NULL, 'f'},
    {NULL, 0, NULL, 0},
};

int cmd_inspect(int argc, char **argv)
{
    enum cli_format fmt = CLI_FMT_TEXT;
    const char *path;
    char *lock_buf = NULL, *sig_buf = NULL;
    size_t lock_len = 0, sig_len = 0;
    ap_lock *l = NULL;
    ap_signature sig;
    ap_bundle_head head;
    int has_sig = 0, c, rc;
    ap_error err, serr;

    ap_error_clear(&err);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", cmd_inspect_options, NULL)) != -1) {
        switch (c) {
        case 'f':
            if ((rc = cli_parse_format("inspect", optarg, CLI_FMT_TEXT | CLI_FMT_JSON, &fmt)))
                return rc;
            break;
        case ':':
            return cli_usage_error("inspect", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("inspect", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("inspect", "missing BUNDLE");
    path = argv[optind++];
    if (optind < argc)
        return cli_usage_error("inspect", "unexpected argument '%s'", argv[optind]);

    {
        /* a split bundle (NAME.parts or NAME.001): the head is in its first
         * part(s); read it from the first part (parts.h) */
        char **parts = ap_parts_is_split_path(path) ? ap_parts_files(path) : NULL;
        int hr = ap_bundle_head_read(parts ? parts[0] : path, &head, &err);
        for (size_t i = 0; parts && parts[i]; i++)
            free(parts[i]);
        free(parts);
        if (hr != AP_OK)
            return cli_report(&err);
    }
    g_head = &head;
    lock_buf = head.lock;
    lock_len = head.lock_len;
    sig_buf = head.n_sigs ? head.sigs[0].text : NULL;
    sig_len = head.n_sigs ? head.sigs[0].len : 0;
    if (ap_lock_parse(AP_LOCK_NAME, lock_buf, lock_len, &l, &err) != AP_OK) {
        ap_error_prefix(&err, "bundle '%s'", path);
        err.status = AP_ERR_CHECK; /* a lock that does not parse: not a well-formed bundle */
        rc = cli_report(&err);
        goto out;
    }
    if (sig_buf && ap_signature_parse(AP_LOCK_SIG_NAME, sig_buf, sig_len, &sig, &serr) == AP_OK)
        has_sig = 1;
    if (fmt == CLI_FMT_JSON) {
        json_t *o = to_json(path, l, &sig, has_sig);
        rc = o ? cli_print_json(stdout, o) : 2;
        json_decref(o);
    } else {
        print_text(path, l, &sig, has_sig);
        rc = 0;
    }
out:
    ap_lock_free(l);
    g_head = NULL;
    ap_bundle_head_release(&head);
    return rc;
}
