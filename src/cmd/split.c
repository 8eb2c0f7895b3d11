/*
 * split.c - `airpack split`: cut an existing bundle into volumes
 * (NAME.001, NAME.002, ...) with a signed parts index (src/parts.h,
 * docs/bundle-format.md section 9).
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_write.h"
#include "cmd.h"
#include "common.h"
#include "lock.h"
#include "parts.h"
#include "sign.h"
#include "util.h"

const char cmd_split_usage[] =
"usage: airpack split BUNDLE --volume-size SIZE --secret-key F [--password-file F]\n"
    "                     [--output-dir DIR] [--reserve SIZE] [--quiet]\n"
    "\n"
    "Cut a bundle into parts BUNDLE.001, BUNDLE.002, ... of SIZE bytes each (the\n"
    "last may be shorter; the first is shorter by the signature reserve, room for\n"
    "co-signatures: docs/bundle-format.md section 9) for media smaller than the\n"
    "bundle, and write the parts\n"
    "index BUNDLE.parts with its minisign signature BUNDLE.parts.minisig (each\n"
    "part's size and SHA-256 and the SHA-256 of the bundle's lock). `cat\n"
    "BUNDLE.0*` gives back the bundle byte for byte. Inside the site, `airpack\n"
    "verify --parts BUNDLE.parts` checks each part on its own, and verify and\n"
    "install read BUNDLE.parts (or BUNDLE.001) as one bundle. The bundle itself is\n"
    "left in place.\n"
    "\n"
    "options:\n"
    "  --volume-size SIZE  bytes per part: a number with a unit (700M, 4GiB, 4.7GB;\n"
    "                      K/M/G/T are powers of 1000, KiB/MiB/GiB/TiB of 1024) or\n"
    "                      fat32 (4 GiB - 1), dvd (4.7 GB), dvd-dl (8.5 GB), bd25, bd50\n"
    "  --secret-key F      minisign secret key that signs the parts index\n"
    "  --password-file F   the secret key's password (else AIRPACK_PASSWORD, else a prompt)\n"
    "  --output-dir DIR    where the parts go (default: the bundle's folder)\n"
    "  --reserve SIZE      signature reserve left at the end of part 1 for\n"
    "                      co-signatures added later with 'airpack sign' (default\n"
    "                      and most: 80 KiB, room for 16 signatures; a quarter of\n"
    "                      the volume below 320 KiB; 0: none, part 1 is full)\n"
    "  --quiet             no summary\n"
    "\n"
    "exit status: 0 written, 2 bad usage or input, or an I/O error\n";

const struct option cmd_split_options[] = {
    {"volume-size", required_argument, NULL, 'V'},
    {"secret-key", required_argument, NULL, 's'},
    {"password-file", required_argument, NULL, 'w'},
    {"output-dir", required_argument, NULL, 'o'},
    {"reserve", required_argument, NULL, 'R'},
    {"quiet", no_argument, NULL, 'q'},
    {NULL, 0, NULL, 0},
};

int cmd_split(int argc, char **argv)
{
    const char *seckey = NULL, *pwfile = NULL, *outdir = NULL, *bundle;
    char *lock = NULL, *sig = NULL, *output = NULL, *dir = NULL;
    size_t lock_len = 0, sig_len = 0;
    uint64_t volume = 0, reserve = UINT64_MAX;
    int c, quiet = 0, rc = 2;
    ap_seckey *sk = NULL;
    ap_parts parts;
    ap_error err;

    ap_error_clear(&err);
    memset(&parts, 0, sizeof parts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", cmd_split_options, NULL)) != -1) {
        switch (c) {
        case 'V':
            if (ap_volume_size_parse(optarg, &volume) != 0)
                return cli_usage_error("split",
                                       "bad --volume-size '%s': use a size such as 700M, 4GiB, "
                                       "4.7GB (at least %u bytes) or fat32, dvd, dvd-dl, bd25, bd50",
                                       optarg, AP_VOLUME_MIN);
            break;
        case 'R':
            if (!strcmp(optarg, "0")) {
                reserve = 0;
            } else if (ap_volume_size_parse(optarg, &reserve) != 0 ||
                       reserve > AP_PARTS_SIG_RESERVE) {
                return cli_usage_error("split",
                                       "bad --reserve '%s': use 0 or a size from %u bytes to "
                                       "%llu (80KiB)",
                                       optarg, AP_VOLUME_MIN,
                                       (unsigned long long)AP_PARTS_SIG_RESERVE);
            }
            break;
        case 's': seckey = optarg; break;
        case 'w': pwfile = optarg; break;
        case 'o': outdir = optarg; break;
        case 'q': quiet = 1; break;
        case ':':
            return cli_usage_error("split", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("split", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("split", "missing BUNDLE");
    bundle = argv[optind++];
    if (optind < argc)
        return cli_usage_error("split", "unexpected argument '%s'", argv[optind]);
    if (!volume)
        return cli_usage_error("split", "missing --volume-size");
    if (!seckey)
        return cli_usage_error("split", "missing --secret-key (the parts index is signed)");
    ap_bundle_cleanup_on_signals();

    if ((rc = cli_load_seckey(seckey, pwfile, &sk)) != 0)
        goto out;
    rc = 2;
    /* the lock names the bundle in the index (read, not trusted: the
     * index only vouches for the bytes as they are split) */
    if (ap_bundle_read_head(bundle, &lock, &lock_len, &sig, &sig_len, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    {
        const char *base = strrchr(bundle, '/') ? strrchr(bundle, '/') + 1 : bundle;
        dir = outdir ? strdup(outdir) : ap_path_dirname(bundle);
        if (!dir || !(output = ap_path_join(dir, base))) {
            cli_error("out of memory");
            goto out;
        }
    }
    if (reserve == UINT64_MAX)
        reserve = ap_parts_default_reserve(volume);
    if (ap_parts_split_reserve(bundle, output, volume, reserve, &parts, &err) != AP_OK ||
        ap_parts_set_lock(&parts, lock, lock_len, &err) != AP_OK ||
        ap_parts_sign_write(dir, &parts, sk, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (!quiet)
        printf("split '%s' into %zu parts of at most %llu bytes: %s ... %s, index %s%s\n", bundle,
               parts.n, (unsigned long long)volume, parts.parts[0].file,
               parts.parts[parts.n - 1].file, output, AP_PARTS_SUFFIX);
    rc = 0;
out:
    ap_seckey_free(sk);
    ap_parts_release(&parts);
    free(lock);
    free(sig);
    free(output);
    free(dir);
    return rc;
}
