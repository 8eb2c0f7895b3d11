/*
 * keygen.c - `airpack keygen`: a new Ed25519 key pair in minisign's file
 * formats (src/sign.h). The secret key is encrypted with scrypt exactly as
 * minisign does it, unless --no-password.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "sign.h"

const char cmd_keygen_usage[] =
"usage: airpack keygen --public-key F --secret-key F [--no-password] [--force]\n"
    "                      [--password-file F] [--quiet]\n"
    "\n"
    "Create an Ed25519 key pair in minisign's file formats.\n"
    "\n"
    "  --public-key F      write the public key to F\n"
    "  --secret-key F      write the secret key to F (created with mode 0600)\n"
    "  --no-password       leave the secret key unencrypted\n"
    "  --password-file F   read the password from the first line of F\n"
    "                      (else AIRPACK_PASSWORD, else a prompt on the terminal)\n"
    "  --force             overwrite existing key files\n"
    "  --quiet             print nothing on success\n";

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_keygen_options[] = {
    {"public-key", required_argument, NULL, 'p'},
    {"secret-key", required_argument, NULL, 's'},
    {"no-password", no_argument, NULL, 'W'},
    {"password-file", required_argument, NULL, 'P'},
    {"force", no_argument, NULL, 'f'},
    {"quiet", no_argument, NULL, 'q'},
    {NULL, 0, NULL, 0},
};

int cmd_keygen(int argc, char **argv)
{
    const char *pub = NULL, *sec = NULL, *pwfile = NULL;
    int nopw = 0, force = 0, quiet = 0, c, rc;
    char *pw = NULL;
    ap_error err;
    ap_pubkey pk;
    char hexid[17];

    ap_error_clear(&err);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", cmd_keygen_options, NULL)) != -1) {
        switch (c) {
        case 'p': pub = optarg; break;
        case 's': sec = optarg; break;
        case 'W': nopw = 1; break;
        case 'P': pwfile = optarg; break;
        case 'f': force = 1; break;
        case 'q': quiet = 1; break;
        case ':':
            return cli_usage_error("keygen", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("keygen", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
    if (!pub)
        return cli_usage_error("keygen", "missing --public-key");
    if (!sec)
        return cli_usage_error("keygen", "missing --secret-key");
    if (strcmp(pub, sec) == 0)
        return cli_usage_error("keygen", "the public and secret key files must differ");
    if (nopw && pwfile)
        return cli_usage_error("keygen", "--no-password and --password-file exclude each other");
    if (!nopw) {
        if (!(pw = cli_password(pwfile, "Password for the new secret key", 1)))
            return 2;
        if (pw[0] == '\0') {
            cli_password_free(pw);
            cli_error("the password is empty; use --no-password for an unencrypted key");
            return 2;
        }
    }
    rc = ap_keygen(pub, sec, pw, force, &err);
    cli_password_free(pw);
    if (rc != AP_OK)
        return cli_report(&err);
    if (ap_pubkey_load(pub, &pk, &err) != AP_OK)
        return cli_report(&err);
    ap_keyid_hex(pk.keyid, hexid);
    if (!quiet) {
        printf("secret key written to '%s'%s\n", sec, nopw ? " (unencrypted)" : "");
        printf("public key written to '%s' (key id %s)\n", pub, hexid);
    }
    return 0;
}
