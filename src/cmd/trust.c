/*
 * trust.c - `airpack trust init|add-key|revoke|set|sign|show FILE`: manage
 * a site trust file (src/trust/trust.h, docs/trust.md).
 *
 * Editing a file that carries signatures starts its next version: the
 * version goes up by one and the signatures are dropped (they covered the
 * old contents). Editing an unsigned draft keeps its version.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "common.h"
#include "sign.h"
#include "trust/trust.h"
#include "util.h"

const char cmd_trust_usage[] =
"usage: airpack trust init FILE --expires DATE [--version N] [--bundles-threshold K]\n"
    "                          [--root-threshold M] [--force]\n"
    "       airpack trust add-key FILE --public-key K --name NAME --role bundles|root\n"
    "                          [--role ...]\n"
    "       airpack trust revoke FILE KEYID\n"
    "       airpack trust set FILE [--expires DATE] [--version N] [--bundles-threshold K]\n"
    "                          [--root-threshold M]\n"
    "       airpack trust sign FILE --secret-key S [--password-file F]\n"
    "       airpack trust show FILE [--format text|json] [--export DIR]\n"
    "\n"
    "Manage a site trust file (docs/trust.md): named minisign public keys, the\n"
    "'bundles' role (K distinct keys must sign a bundle) and the 'root' role (M\n"
    "distinct keys must sign the next version of the file), revoked keys, a\n"
    "version and an expiry date. verify, install and audit take it with --trust.\n"
    "Editing a signed file (add-key, revoke, set) starts its next version: the\n"
    "version goes up by one and the old signatures are dropped; sign it again\n"
    "with the root keys (of the installed version too, for a rotation).\n"
    "\n"
    "options:\n"
    "      --expires DATE          YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)\n"
    "      --version N             the file's version (init: default 1)\n"
    "      --bundles-threshold K   signatures a bundle needs (init: default 1)\n"
    "      --root-threshold M      signatures the next trust file needs (init: default 1)\n"
    "  -k, --public-key K          a minisign public key file\n"
    "      --name NAME             the key's name (\"build-ci\", \"compliance-officer\")\n"
    "      --role ROLE             bundles or root; may be repeated\n"
    "  -s, --secret-key S          sign with this minisign secret key\n"
    "      --password-file F       the secret key's password\n"
    "  -f, --format FMT            show: text (default) or json\n"
    "      --export DIR            show: write DIR/trust.signed.json (the signed bytes)\n"
    "                              and DIR/trust.signed.json.<KEYID>.minisig per\n"
    "                              signature, for `minisign -Vm`\n"
    "      --force                 init: overwrite an existing file\n"
    "\n"
    "exit status: 0 done, 1 show: the file is not valid (unsigned, under its\n"
    "root threshold or expired), 2 bad usage or invalid file\n";

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_trust_options[] = {
    {"expires", required_argument, NULL, 'e'},
    {"version", required_argument, NULL, 'V'},
    {"bundles-threshold", required_argument, NULL, 'K'},
    {"root-threshold", required_argument, NULL, 'M'},
    {"public-key", required_argument, NULL, 'k'},
    {"name", required_argument, NULL, 'n'},
    {"role", required_argument, NULL, 'r'},
    {"secret-key", required_argument, NULL, 's'},
    {"password-file", required_argument, NULL, 'w'},
    {"format", required_argument, NULL, 'f'},
    {"export", required_argument, NULL, 'x'},
    {"force", no_argument, NULL, 'F'},
    {NULL, 0, NULL, 0},
};

/* "2027-01-01" -> "2027-01-01T00:00:00Z"; anything else as given. */
static void norm_date(const char *in, char out[32])
{
    if (strlen(in) == 10)
        snprintf(out, 32, "%sT00:00:00Z", in);
    else
        snprintf(out, 32, "%s", in);
}

static int parse_count(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (!s || !*s || *s == '-')
        return -1;
    v = strtoull(s, &end, 10);
    if (*end || v == 0)
        return -1;
    *out = v;
    return 0;
}

static void print_text(const json_t *d)
{
    size_t i;
    json_t *v;
    printf("trust file:  %s\n", json_string_value(json_object_get(d, "file")));
    printf("version:     %lld\n", json_integer_value(json_object_get(d, "version")));
    printf("expires:     %s%s\n", json_string_value(json_object_get(d, "expires")),
           json_is_true(json_object_get(d, "expired")) ? " (EXPIRED: installs are refused)" : "");
    printf("thresholds:  bundles %lld, root %lld\n",
           json_integer_value(json_object_get(json_object_get(d, "thresholds"), "bundles")),
           json_integer_value(json_object_get(json_object_get(d, "thresholds"), "root")));
    printf("keys:\n");
    json_array_foreach(json_object_get(d, "keys"), i, v) {
        char roles[64] = "";
        size_t j;
        json_t *r;
        json_array_foreach(json_object_get(v, "roles"), j, r) {
            if (j)
                strncat(roles, ",", sizeof roles - strlen(roles) - 1);
            strncat(roles, json_string_value(r), sizeof roles - strlen(roles) - 1);
        }
        printf("  %s  %-24s %-14s%s\n", json_string_value(json_object_get(v, "id")),
               json_string_value(json_object_get(v, "name")), roles[0] ? roles : "-",
               json_is_true(json_object_get(v, "revoked")) ? " REVOKED" : "");
    }
    if (json_array_size(json_object_get(d, "revoked"))) {
        printf("revoked:    ");
        json_array_foreach(json_object_get(d, "revoked"), i, v)
            printf(" %s", json_string_value(v));
        printf("\n");
    }
    printf("signatures:\n");
    json_array_foreach(json_object_get(d, "signatures"), i, v) {
        const char *k = json_string_value(json_object_get(v, "key"));
        printf("  %s  %-24s %s\n", json_string_value(json_object_get(v, "key_id")), k ? k : "?",
               json_string_value(json_object_get(v, "status")));
    }
    if (json_array_size(json_object_get(d, "signatures")) == 0)
        printf("  none\n");
    if (json_is_true(json_object_get(d, "valid")))
        printf("status:      valid (signed by %lld of its root keys, threshold met)\n",
               json_integer_value(json_object_get(d, "root_signatures")));
    else
        printf("status:      NOT VALID: %s\n", json_string_value(json_object_get(d, "problem")));
}

static int export_sigs(const ap_trust *t, const char *dir, ap_error *err)
{
    char *p;
    int rc;
    if (mkdir(dir, 0755) != 0) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return ap_error_errno(err, AP_ERR_IO, 17, "cannot create folder", dir);
    }
    if (!(p = ap_path_join(dir, "trust.signed.json")))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    rc = ap_trust_write_bytes(p, t->signed_bytes, t->signed_len, err);
    free(p);
    for (size_t i = 0; rc == AP_OK && i < t->n_sigs; i++) {
        char kid[17], name[80];
        ap_keyid_hex(t->sigs[i].keyid, kid);
        snprintf(name, sizeof name, "trust.signed.json.%s.minisig", kid);
        if (!(p = ap_path_join(dir, name)))
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        rc = ap_trust_write_bytes(p, t->sig_texts[i], strlen(t->sig_texts[i]), err);
        free(p);
    }
    return rc;
}

int cmd_trust(int argc, char **argv)
{
    const char *verb, *file, *expires = NULL, *pubkey = NULL, *name = NULL, *seckey = NULL;
    const char *pwfile = NULL, *export_dir = NULL, *arg = NULL;
    uint64_t version = 0, k = 0, m = 0;
    unsigned roles = 0;
    int c, force = 0, rc = 2, edit = 0;
    enum cli_format fmt = CLI_FMT_TEXT;
    char date[32];
    ap_trust *t = NULL;
    ap_error err;

    ap_error_clear(&err);
    if (argc < 2)
        return cli_usage_error("trust", "missing a verb: init, add-key, revoke, set, sign or show");
    verb = argv[1];
    if (strcmp(verb, "init") && strcmp(verb, "add-key") && strcmp(verb, "revoke") &&
        strcmp(verb, "set") && strcmp(verb, "sign") && strcmp(verb, "show"))
        return cli_usage_error("trust", "unknown verb '%s' (init, add-key, revoke, set, sign, show)",
                               verb);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, ":k:s:f:", cmd_trust_options, NULL)) != -1) {
        switch (c) {
        case 'e': expires = optarg; break;
        case 'V':
            if (parse_count(optarg, &version))
                return cli_usage_error("trust", "--version wants a number of at least 1");
            break;
        case 'K':
            if (parse_count(optarg, &k) || k > AP_TRUST_MAX_KEYS)
                return cli_usage_error("trust", "--bundles-threshold wants 1 to %d", AP_TRUST_MAX_KEYS);
            break;
        case 'M':
            if (parse_count(optarg, &m) || m > AP_TRUST_MAX_KEYS)
                return cli_usage_error("trust", "--root-threshold wants 1 to %d", AP_TRUST_MAX_KEYS);
            break;
        case 'k': pubkey = optarg; break;
        case 'n': name = optarg; break;
        case 'r':
            if (!strcmp(optarg, "bundles"))
                roles |= AP_TRUST_ROLE_BUNDLES;
            else if (!strcmp(optarg, "root"))
                roles |= AP_TRUST_ROLE_ROOT;
            else
                return cli_usage_error("trust", "unknown role '%s' (bundles or root)", optarg);
            break;
        case 's': seckey = optarg; break;
        case 'w': pwfile = optarg; break;
        case 'f':
            if ((rc = cli_parse_format("trust", optarg, CLI_FMT_TEXT | CLI_FMT_JSON, &fmt)))
                return rc;
            break;
        case 'x': export_dir = optarg; break;
        case 'F': force = 1; break;
        case ':':
            return cli_usage_error("trust", "option '%s' needs a value", argv[optind]);
        default:
            return cli_usage_error("trust", "unknown option '%s'", argv[optind]);
        }
    }
    /* argv+1 was permuted: positional arguments follow optind */
    if (optind >= argc - 1)
        return cli_usage_error("trust", "missing FILE");
    file = argv[1 + optind];
    if (!strcmp(verb, "revoke")) {
        if (optind + 1 >= argc - 1)
            return cli_usage_error("trust", "revoke: missing KEYID");
        arg = argv[2 + optind];
        if (optind + 2 < argc - 1)
            return cli_usage_error("trust", "unexpected argument '%s'", argv[3 + optind]);
    } else if (optind + 1 < argc - 1) {
        return cli_usage_error("trust", "unexpected argument '%s'", argv[2 + optind]);
    }
    if (expires)
        norm_date(expires, date);

    if (!strcmp(verb, "init")) {
        struct stat st;
        if (!expires)
            return cli_usage_error("trust", "init: missing --expires DATE");
        if (!force && lstat(file, &st) == 0) {
            ap_error_set_at(&err, AP_ERR_INPUT, file, 0, 0, "file exists; use --force to overwrite it");
            return cli_report(&err);
        }
        if (ap_trust_new(version ? version : 1, date, k ? k : 1, m ? m : 1, &t, &err) != AP_OK ||
            ap_trust_save(t, file, &err) != AP_OK) {
            rc = cli_report(&err);
            goto out;
        }
        printf("created '%s': version %llu, expires %s (add keys with 'airpack trust add-key')\n",
               file, (unsigned long long)t->version, t->expires);
        rc = 0;
        goto out;
    }
    if (ap_trust_load(file, &t, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (!strcmp(verb, "show")) {
        json_t *d = ap_trust_describe(t);
        int valid;
        if (!d) {
            cli_error("out of memory");
            goto out;
        }
        valid = json_is_true(json_object_get(d, "valid"));
        if (export_dir && export_sigs(t, export_dir, &err) != AP_OK) {
            json_decref(d);
            rc = cli_report(&err);
            goto out;
        }
        rc = 0;
        if (fmt == CLI_FMT_JSON)
            rc = cli_print_json(stdout, d);
        else
            print_text(d);
        json_decref(d);
        rc = rc ? rc : valid ? 0 : 1;
        goto out;
    }
    if (!strcmp(verb, "sign")) {
        ap_seckey *sk = NULL;
        uint8_t kid[AP_KEYID_LEN];
        char hex[17];
        if (!seckey) {
            rc = cli_usage_error("trust", "sign: missing --secret-key");
            goto out;
        }
        if ((rc = cli_load_seckey(seckey, pwfile, &sk)) != 0)
            goto out;
        if (ap_trust_sign(t, sk, &err) != AP_OK || ap_trust_save(t, file, &err) != AP_OK) {
            ap_seckey_free(sk);
            rc = cli_report(&err);
            goto out;
        }
        ap_seckey_keyid(sk, kid);
        ap_seckey_free(sk);
        ap_keyid_hex(kid, hex);
        {
            const ap_trust_key *tk = ap_trust_find(t, kid);
            printf("signed '%s' version %llu with key %s%s%s%s: %zu signature%s\n", file,
                   (unsigned long long)t->version, hex, tk ? " (" : " (not in the file)",
                   tk ? tk->name : "", tk ? ")" : "", t->n_sigs, t->n_sigs == 1 ? "" : "s");
        }
        rc = 0;
        goto out;
    }
    /* edits */
    edit = t->n_sigs > 0;
    if (edit && !version) {
        version = t->version + 1;
    }
    if (!strcmp(verb, "add-key")) {
        ap_pubkey pk;
        if (!pubkey || !name || !roles) {
            rc = cli_usage_error("trust", "add-key: needs --public-key, --name and --role");
            goto out;
        }
        if (ap_pubkey_load(pubkey, &pk, &err) != AP_OK || ap_trust_add_key(t, &pk, name, roles, &err)) {
            rc = cli_report(&err);
            goto out;
        }
    } else if (!strcmp(verb, "revoke")) {
        if (ap_trust_revoke(t, arg, &err) != AP_OK) {
            rc = cli_report(&err);
            goto out;
        }
    }
    if ((version || expires || k || m) &&
        ap_trust_set(t, version, expires ? date : NULL, k, m, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (ap_trust_save(t, file, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    printf("updated '%s': version %llu, %zu keys, thresholds bundles %zu and root %zu%s\n", file,
           (unsigned long long)t->version, t->n_keys, t->threshold_bundles, t->threshold_root,
           edit ? " (a new version: the old signatures were dropped; sign it again)" : "");
    rc = 0;
out:
    ap_trust_free(t);
    return rc;
}
