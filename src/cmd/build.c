/*
 * build.c - `airpack build`: the signed, reproducible offline bundle
 * (docs/bundle-format.md). Steps: load the secret key (asking for its
 * password first, so a typo fails fast), load the manifest, run the
 * analysis (pins, facts, policies: a failed pin or an error finding stops
 * the build), plan the artifacts, check free space, hash (pass one), write
 * and sign the lock, write the bundle (pass two) and rename it into place.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analyze.h"
#include "bundle_write.h"
#include "cmd.h"
#include "common.h"
#include "lock.h"
#include "manifest.h"
#include "parts.h"
#include "pins.h"
#include "report.h"
#include "sbom.h"
#include "sign.h"
#include "trust/trust.h"
#include "util.h"
#include "source/source.h"

const char cmd_build_usage[] =
"usage: airpack build MANIFEST --secret-key F --output BUNDLE [--policy P]...\n"
    "                     [--password-file F] [--compress zstd[:LEVEL]|none]\n"
    "                     [--volume-size SIZE] [--base LOCK] [--trust-file F]\n"
    "                     [--allow-outside-paths] [--sync] [--quiet]\n"
    "\n"
    "Write a signed, checksummed, reproducible offline bundle.\n"
    "\n"
    "  --secret-key F      minisign secret key that signs the lock\n"
    "  --output BUNDLE     the bundle to write (replaced only when complete); '-' or a\n"
    "                      FIFO: streamed as it is written (two passes)\n"
    "  --policy P          also evaluate policy pack P (repeatable)\n"
    "  --password-file F   the secret key's password (else AIRPACK_PASSWORD, else a prompt)\n"
    "  --compress zstd[:LEVEL] | none\n"
    "                      compress the whole bundle with zstd (level 1-19, default 3);\n"
    "                      default: no compression (model weights barely compress),\n"
    "                      except zstd:19 for a delta (--base) of at most 16 MiB\n"
    "  --threads N         hashing threads (default: the number of CPUs, at most 8)\n"
    "  --two-pass          hash every input before writing (the default only for\n"
    "                      --compress and --base; otherwise the bundle is written in\n"
    "                      one pass and the lock filled in at the end)\n"
    "  --base LOCK         a delta bundle: the lock installed at the site (airpack list\n"
    "                      --export-lock, or a receipt folder); artifacts whose SHA-256\n"
    "                      it lists are marked \"in_base\" in the lock and left out of the\n"
    "                      tar (install takes them from the site's object store)\n"
    "  --volume-size SIZE  split the bundle into BUNDLE.001, BUNDLE.002, ... of SIZE\n"
    "                      bytes each (a number with a unit: 700M, 4GiB, 4.7GB; or\n"
    "                      fat32, dvd, dvd-dl, bd25, bd50) and write the signed parts\n"
    "                      index BUNDLE.parts (+ .minisig); `cat BUNDLE.0*` is the bundle\n"
    "  --trust-file F      carry a newer site trust file (docs/trust.md) as the\n"
    "                      artifact trust.json: install applies it when a threshold\n"
    "                      of the installed file's root keys signed it\n"
    "  --sync              have the bundle on disk before it gets its name (fsync\n"
    "                      before the rename): for output straight onto removable\n"
    "                      media; by default, as with tar, the kernel writes it back\n"
    "                      later (volumes are always synced)\n"
    "  --quiet             no progress and no summary\n"
    "  --allow-outside-paths\n"
    "                      allow absolute paths and paths outside the manifest's\n"
    "                      folder (as check does with the same option)\n"
    "\n"
    "Entry times come from SOURCE_DATE_EPOCH (default 2000-01-01T00:00:00Z): two\n"
    "builds of the same inputs are the same bytes.\n"
    "exit status: 0 written, 1 a pin or policy check failed, 2 bad usage or input\n";

struct progress_state {
    cli_progress p;
    int phase;
    int quiet;
};

static void on_progress(void *ctx, int phase, uint64_t done, uint64_t total)
{
    struct progress_state *s = ctx;
    if (phase != s->phase) {
        if (s->phase)
            cli_progress_end(&s->p);
        s->phase = phase;
        cli_progress_start(&s->p, phase == 1 ? "hashing" : "writing", total, s->quiet);
    }
    cli_progress_update(&s->p, done);
}

static int parse_compress(const char *s, int *level)
{
    char *end;
    long l;
    if (strcmp(s, "none") == 0) {
        *level = 0;
        return 0;
    }
    if (strncmp(s, "zstd", 4) != 0)
        return -1;
    if (s[4] == '\0') {
        *level = 3;
        return 0;
    }
    if (s[4] != ':')
        return -1;
    l = strtol(s + 5, &end, 10);
    if (*end || end == s + 5 || l < 1 || l > 19)
        return -1;
    *level = (int)l;
    return 0;
}

/* Add a JSON document as an in-memory artifact (deterministic text). */
static int add_json_artifact(ap_bundle_plan *plan, const char *name, json_t *doc, ap_role role,
                             ap_error *err)
{
    char *s;
    int rc;
    if (!doc)
        return ap_error_set(err, AP_ERR_NOMEM, "cannot build '%s'", name);
    s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(15));
    if (!s)
        return ap_error_set(err, AP_ERR_NOMEM, "cannot serialise '%s'", name);
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    rc = ap_bundle_plan_add_memory(plan, name, t, n + 1, role, err);
    free(t);
    return rc;
}

/* The SBOM (CycloneDX) and the compliance report (SARIF) of the analysis. */
static int add_extras(ap_bundle_plan *plan, const json_t *analysis, ap_error *err)
{
    json_t *sbom = NULL, *sarif;
    int rc = ap_sbom_build(analysis, NULL, &sbom, err);
    if (rc == AP_OK)
        rc = add_json_artifact(plan, AP_SBOM_NAME, sbom, AP_ROLE_SBOM, err);
    json_decref(sbom);
    if (rc != AP_OK)
        return rc;
    sarif = ap_report_sarif(analysis);
    rc = add_json_artifact(plan, AP_REPORT_NAME, sarif, AP_ROLE_REPORT, err);
    json_decref(sarif);
    return rc;
}

/* A delta whose tar carries at most this many bytes of artifacts is
 * compressed with zstd at this level unless --compress says otherwise (at
 * level 19, 16 MiB take a few seconds). */
#define DELTA_ZSTD_MAX ((uint64_t)16 << 20)
#define DELTA_ZSTD_LEVEL 19

/* The manifest path a pins[] subject ("models[0]", "runtimes[1]", "files[2]") names. */
static const ap_mpath *subject_path(const ap_manifest *m, const char *subject)
{
    size_t i;
    char c;
    if (sscanf(subject, "models[%zu%c", &i, &c) == 2 && c == ']' && i < m->n_models)
        return &m->models[i].src;
    if (sscanf(subject, "runtimes[%zu%c", &i, &c) == 2 && c == ']' && i < m->n_runtimes)
        return &m->runtimes[i].src;
    if (sscanf(subject, "files[%zu%c", &i, &c) == 2 && c == ']' && i < m->n_files)
        return &m->files[i].src;
    return NULL;
}

/* Content pins that the analysis found "ok" already hashed those files:
 * use them as pass one (pass two still hashes every file again). */
static int use_pin_hashes(ap_bundle_plan *plan, const ap_manifest *m, const json_t *analysis,
                          ap_error *err)
{
    const json_t *pins = json_object_get(analysis, "pins"), *pin;
    char **srcs = NULL;
    char(*hex)[AP_SHA256_HEX_LEN + 1] = NULL;
    size_t n = 0, cap = 0, i;
    int rc = AP_OK;

    json_array_foreach(pins, i, pin) {
        const char *st = json_string_value(json_object_get(pin, "status"));
        const char *subj = json_string_value(json_object_get(pin, "subject"));
        const ap_mpath *mp = subj ? subject_path(m, subj) : NULL;
        ap_sums sums = {0};
        if (!st || strcmp(st, "ok") != 0 || !mp || !mp->abs)
            continue;
        if (!mp->sha256 && !mp->sha256sums) {
            /* pin "store": the walk's files named by a digest the check verified */
            ap_input in;
            const char *pk = json_string_value(json_object_get(pin, "pin"));
            if (!pk || strcmp(pk, "store") != 0 ||
                ap_input_walk(mp, (!strncmp(subj, "runtimes", 8) ? AP_WALK_RUNTIME : 0) |
                                      AP_WALK_LIST_ONLY,
                              &in, err) != AP_OK) {
                ap_error_clear(err);
                continue;
            }
            for (size_t k = 0; rc == AP_OK && k < in.n; k++) {
                if (!in.files[k].digest[0])
                    continue;
                if (n == cap) {
                    size_t nc = cap ? cap * 2 : 64;
                    char **ns = realloc(srcs, nc * sizeof *ns);
                    if (ns)
                        srcs = ns;
                    char(*nh)[AP_SHA256_HEX_LEN + 1] = realloc(hex, nc * sizeof *nh);
                    if (nh)
                        hex = nh;
                    if (!ns || !nh) {
                        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                        break;
                    }
                    cap = nc;
                }
                if (!(srcs[n] = strdup(in.files[k].src))) {
                    rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                    break;
                }
                memcpy(hex[n++], in.files[k].digest, AP_SHA256_HEX_LEN + 1);
            }
            ap_input_release(&in);
            if (rc)
                goto out;
            continue;
        }
        if (mp->sha256) {
            if (strlen(mp->sha256) != AP_SHA256_HEX_LEN)
                continue;
        } else if (!mp->sha256sums_abs || ap_sums_load(mp->sha256sums_abs, &sums, err) != AP_OK) {
            ap_error_clear(err); /* no reuse; pass one hashes these files */
            continue;
        }
        size_t want = mp->sha256 ? 1 : sums.n;
        if (n + want > cap) {
            size_t nc = (n + want) * 2;
            char **ns = realloc(srcs, nc * sizeof *ns);
            if (ns)
                srcs = ns;
            char(*nh)[AP_SHA256_HEX_LEN + 1] = realloc(hex, nc * sizeof *nh);
            if (nh)
                hex = nh;
            if (!ns || !nh) {
                ap_sums_release(&sums);
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            cap = nc;
        }
        if (mp->sha256) {
            if (!(srcs[n] = strdup(mp->abs))) {
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            memcpy(hex[n++], mp->sha256, AP_SHA256_HEX_LEN + 1);
            continue;
        }
        for (size_t k = 0; k < sums.n; k++) {
            const char *slash = strrchr(mp->abs, '/');
            char *src;
            if (mp->is_dir)
                src = ap_path_join(mp->abs, sums.e[k].path);
            else if (strcmp(sums.e[k].path, slash ? slash + 1 : mp->abs) == 0)
                src = strdup(mp->abs);
            else
                continue; /* a file's sums file may list other files */
            if (!src) {
                ap_sums_release(&sums);
                rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
                goto out;
            }
            srcs[n] = src;
            memcpy(hex[n++], sums.e[k].hex, AP_SHA256_HEX_LEN + 1);
        }
        ap_sums_release(&sums);
    }
    if (n && ap_bundle_plan_use_hashes(plan, srcs, (const char(*)[AP_SHA256_HEX_LEN + 1])hex, n) < 0)
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
out:
    for (size_t k = 0; k < n; k++)
        free(srcs[k]);
    free(srcs);
    free(hex);
    return rc;
}

/* Print the pins that failed; 1 when any did. */
static int pins_failed(const json_t *analysis)
{
    const json_t *pins = json_object_get(analysis, "pins"), *pin;
    size_t i;
    int bad = 0;
    json_array_foreach(pins, i, pin) {
        const char *st = json_string_value(json_object_get(pin, "status"));
        if (st && strcmp(st, "ok") != 0 && strcmp(st, "unpinned") != 0) {
            cli_error("%s '%s': pin check failed: %s",
                      json_string_value(json_object_get(pin, "subject")),
                      json_string_value(json_object_get(pin, "path")), st);
            bad = 1;
        }
    }
    return bad;
}

static void print_error_findings(const json_t *analysis)
{
    const json_t *fs = json_object_get(analysis, "findings"), *f;
    size_t i;
    json_array_foreach(fs, i, f) {
        const char *lvl = json_string_value(json_object_get(f, "level"));
        if (lvl && strcmp(lvl, "error") == 0 && !json_is_true(json_object_get(f, "waived")))
            cli_error("%s: %s", json_string_value(json_object_get(f, "rule")),
                      json_string_value(json_object_get(f, "message")));
    }
}

struct head_ctx {
    const ap_manifest *m;
    json_t *analysis;
    uint64_t epoch;
    const ap_seckey *sk;
    ap_lock *check;                 /* the last lock built, parsed */
    char *lock, *sig;               /* one pass: the last (final) lock and signature */
    size_t lock_len, sig_len;
};

/* The lock from the plan as it is, checked by the verifier's own parser,
 * and its signature (ap_bundle_head_fn). */
static int make_head(void *ctx, const ap_bundle_plan *plan, char **lockp, size_t *lock_len,
                     char **sigp, size_t *sig_len, ap_error *err)
{
    struct head_ctx *hc = ctx;
    char tc[AP_TRUSTED_COMMENT_MAX + 1];
    json_t *lock = NULL;
    char *buf = NULL, *sig = NULL;
    size_t len = 0, slen = 0;
    ap_lock *check = NULL;
    int rc;

    if ((rc = ap_lock_build(hc->m, hc->analysis, plan, hc->epoch, &lock, err)) != AP_OK ||
        (rc = ap_lock_dump(lock, &buf, &len, err)) != AP_OK)
        goto out;
    if ((rc = ap_lock_parse(AP_LOCK_NAME, buf, len, &check, err)) != AP_OK) {
        ap_error_prefix(err, "the bundle's lock would be invalid");
        rc = err->status = AP_ERR_INPUT;
        goto out;
    }
    if (ap_lock_trusted_comment(hc->m->name, hc->m->version, hc->m->sequence, tc, sizeof tc) != 0) {
        rc = ap_error_set(err, AP_ERR_INPUT, "the trusted comment is too long");
        goto out;
    }
    if ((rc = ap_sign(hc->sk, buf, len, tc, &sig, &slen, err)) != AP_OK)
        goto out;
    ap_lock_free(hc->check);
    hc->check = check;
    check = NULL;
    /* the caller owns the buffers handed out; keep copies of the last ones (one pass) */
    free(hc->lock);
    free(hc->sig);
    hc->lock = malloc(len + 1);
    hc->sig = malloc(slen + 1);
    if (!hc->lock || !hc->sig) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(hc->lock, buf, len);
    memcpy(hc->sig, sig, slen);
    hc->lock_len = len;
    hc->sig_len = slen;
    *lockp = buf;
    *lock_len = len;
    *sigp = sig;
    *sig_len = slen;
    buf = sig = NULL;
out:
    json_decref(lock);
    ap_lock_free(check);
    free(buf);
    free(sig);
    return rc;
}

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_build_options[] = {
    {"secret-key", required_argument, NULL, 's'},
    {"output", required_argument, NULL, 'o'},
    {"policy", required_argument, NULL, 'P'},
    {"password-file", required_argument, NULL, 'w'},
    {"compress", required_argument, NULL, 'z'},
    {"threads", required_argument, NULL, 't'},
    {"quiet", no_argument, NULL, 'q'},
    {"volume-size", required_argument, NULL, 'V'},
    {"base", required_argument, NULL, 'B'},
    {"trust-file", required_argument, NULL, 'R'},
    {"two-pass", no_argument, NULL, '2'},
    {"allow-outside-paths", no_argument, NULL, 'A'},
    {"sync", no_argument, NULL, 'S'},
    {NULL, 0, NULL, 0},
};

int cmd_build(int argc, char **argv)
{
    const char *seckey = NULL, *output = NULL, *pwfile = NULL, *manifest = NULL, *base = NULL;
    ap_lock *base_lock = NULL;
    struct head_ctx hc;
    int two_pass = 0, one_pass = 0;
    size_t n_base = 0;
    uint64_t base_bytes = 0;
    const char *trust_file = NULL;
    const char **policies = NULL;
    size_t n_policies = 0;
    int quiet = 0, zlevel = 0, zset = 0, c, rc = 2, sync = 0;
    unsigned threads = 0;
    char *lock_buf = NULL, *sig_buf = NULL;
    size_t lock_len = 0, sig_len = 0;
    ap_error err;
    ap_seckey *sk = NULL;
    ap_manifest *m = NULL;
    json_t *analysis = NULL, *lock = NULL;
    ap_lock *check = NULL;
    ap_bundle_plan plan;
    ap_analyze_opts aopts;
    ap_bundle_write_opts wopts;
    uint64_t epoch, volume = 0;
    struct progress_state ps;
    ap_parts parts;
    ap_manifest_opts mopts;

    ap_error_clear(&err);
    memset(&mopts, 0, sizeof mopts);
    ap_bundle_plan_init(&plan);
    memset(&hc, 0, sizeof hc);
    memset(&ps, 0, sizeof ps);
    memset(&parts, 0, sizeof parts);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", cmd_build_options, NULL)) != -1) {
        switch (c) {
        case 's': seckey = optarg; break;
        case 'o': output = optarg; break;
        case 'R': trust_file = optarg; break;
        case 'w': pwfile = optarg; break;
        case 'q': quiet = 1; break;
        case 'S': sync = 1; break;
        case 'A': mopts.allow_outside_paths = 1; break;
        case 'P': {
            const char **np = realloc(policies, (n_policies + 1) * sizeof *np);
            if (!np) {
                cli_error("out of memory");
                goto out;
            }
            policies = np;
            policies[n_policies++] = optarg;
            break;
        }
        case 'z':
            if (parse_compress(optarg, &zlevel) != 0) {
                rc = cli_usage_error("build",
                                     "bad --compress '%s': use zstd, zstd:LEVEL (1-19) or none",
                                     optarg);
                goto out;
            }
            zset = 1;
            break;
        case 'B':
            base = optarg;
            break;
        case '2':
            two_pass = 1;
            break;
        case 'V':
            if (ap_volume_size_parse(optarg, &volume) != 0) {
                rc = cli_usage_error("build",
                                     "bad --volume-size '%s': use a size such as 700M, 4GiB, "
                                     "4.7GB (at least %u bytes) or fat32, dvd, dvd-dl, bd25, bd50",
                                     optarg, AP_VOLUME_MIN);
                goto out;
            }
            break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 8) {
                rc = cli_usage_error("build", "bad --threads '%s': use 1 to 8", optarg);
                goto out;
            }
            threads = (unsigned)v;
            break;
        }
        case ':':
            rc = cli_usage_error("build", "option '%s' needs a value", argv[optind - 1]);
            goto out;
        default:
            rc = cli_usage_error("build", "unknown option '%s'", argv[optind - 1]);
            goto out;
        }
    }
    if (optind >= argc) {
        rc = cli_usage_error("build", "missing MANIFEST");
        goto out;
    }
    manifest = argv[optind++];
    if (optind < argc) {
        rc = cli_usage_error("build", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!seckey) {
        rc = cli_usage_error("build", "missing --secret-key");
        goto out;
    }
    if (!output) {
        rc = cli_usage_error("build", "missing --output");
        goto out;
    }
    ps.quiet = quiet;
    ap_bundle_cleanup_on_signals();

    /* The key first: a wrong password should not cost a full hashing pass. */
    if ((rc = cli_load_seckey(seckey, pwfile, &sk)) != 0)
        goto out;
    rc = 2;
    if (ap_source_date_epoch(&epoch, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }

    /* The manifest and its analysis: pins and policies must pass. */
    if (ap_manifest_load(manifest, &mopts, &m, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    memset(&aopts, 0, sizeof aopts);
    aopts.policies = policies;
    aopts.n_policies = n_policies;
    /* The lock names the manifest by its file name alone: the bundle must
     * not depend on how the path was typed (reproducible builds). */
    aopts.manifest_name = strrchr(manifest, '/') ? strrchr(manifest, '/') + 1 : manifest;
    if (ap_analyze(m, &aopts, &analysis, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (pins_failed(analysis)) {
        print_error_findings(analysis); /* the same findings that check shows, naming the file */
        cli_error("manifest '%s': pinned content does not match; no bundle written", manifest);
        rc = 1;
        goto out;
    }
    if (!ap_analysis_passed(analysis)) {
        print_error_findings(analysis);
        cli_error("manifest '%s': checks failed (see 'airpack check'); no bundle written",
                  manifest);
        rc = 1;
        goto out;
    }

    /* One pass where the output allows it: uncompressed files (seek back to
     * fill the lock; with volumes, the parts that hold it are hashed again),
     * no delta (which needs every hash before it can choose). */
    one_pass = !two_pass && zlevel == 0 && !base && !ap_bundle_output_is_stream(output);
    if (ap_bundle_output_is_stream(output)) {
        /* a pipe: the summary must not mix with the bundle on stdout */
        if (volume > 0) {
            rc = cli_usage_error("build", "--volume-size needs a file for --output, not a pipe");
            goto out;
        }
        quiet = 1;
    }

    /* Plan, free space, pass one. */
    if (ap_bundle_plan_add_manifest(&plan, m, &err) != AP_OK) {
        ap_error_prefix(&err, "manifest '%s'", manifest);
        rc = cli_report(&err);
        goto out;
    }
    if (use_pin_hashes(&plan, m, analysis, &err) != AP_OK || add_extras(&plan, analysis, &err) != AP_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (trust_file) {
        /* a newer site trust file, checked for form here, for its
         * signatures by the site at install (docs/trust.md) */
        char *tb = NULL;
        size_t tl = 0;
        ap_trust *tt = NULL;
        if (ap_read_file(trust_file, AP_TRUST_MAX_BYTES, &tb, &tl, &err) != AP_OK ||
            ap_trust_parse(trust_file, tb, tl, &tt, &err) != AP_OK ||
            ap_bundle_plan_add_memory(&plan, AP_TRUST_ENTRY, tb, tl, AP_ROLE_TRUST, &err) != AP_OK) {
            free(tb);
            ap_trust_free(tt);
            rc = cli_report(&err);
            goto out;
        }
        free(tb);
        ap_trust_free(tt);
    }
    if ((!ap_bundle_output_is_stream(output) &&
         ap_bundle_check_space(output, ap_bundle_plan_estimate(&plan, AP_LOCK_MAX_BYTES,
                                                               AP_KEYFILE_MAX), &err) != AP_OK) ||
        (one_pass ? ap_bundle_plan_prepare(&plan, &err)
                  : ap_bundle_plan_hash(&plan, threads, on_progress, &ps, &err)) != AP_OK) {
        if (ps.phase)
            cli_progress_end(&ps.p);
        rc = cli_report(&err);
        goto out;
    }

    /* A delta: what the site already has stays out of the tar. */
    if (base) {
        char *bbuf = NULL, *bpath = NULL;
        size_t blen = 0;
        struct stat bst;
        if (stat(base, &bst) == 0 && S_ISDIR(bst.st_mode))
            bpath = ap_path_join(base, AP_LOCK_NAME);
        else
            bpath = strdup(base);
        if (!bpath || ap_read_file(bpath, AP_LOCK_MAX_BYTES, &bbuf, &blen, &err) != AP_OK ||
            ap_lock_parse(bpath, bbuf, blen, &base_lock, &err) != AP_OK) {
            if (err.status == AP_OK)
                ap_error_set(&err, AP_ERR_NOMEM, "out of memory");
            ap_error_prefix(&err, "base lock");
            err.status = AP_ERR_INPUT;
            free(bbuf);
            free(bpath);
            rc = cli_report(&err);
            goto out;
        }
        free(bbuf);
        free(bpath);
        n_base = ap_bundle_plan_mark_base(&plan, base_lock, &base_bytes);
        /* A small delta is mostly the lock, SBOM and sums (JSON, which
         * compresses about 5x): compress it unless told otherwise. */
        if (!zset && ap_bundle_plan_travel_bytes(&plan) <= DELTA_ZSTD_MAX)
            zlevel = DELTA_ZSTD_LEVEL;
    }

    /* The lock, checked by the same parser that verify uses, then signed;
     * in one pass it is built twice: first with placeholder hashes (its
     * length reserves its place), then final, once the payload is written. */
    hc.m = m;
    hc.analysis = analysis;
    hc.epoch = epoch;
    hc.sk = sk;
    memset(&wopts, 0, sizeof wopts);
    wopts.zstd_level = zlevel;
    wopts.mtime = epoch;
    wopts.progress = on_progress;
    wopts.progress_ctx = &ps;
    wopts.volume_size = volume;
    wopts.parts = &parts;
    wopts.sync = sync;
    if (one_pass) {
        rc = ap_bundle_write_one_pass(&plan, output, make_head, &hc, &wopts, &err);
        lock_buf = hc.lock;
        lock_len = hc.lock_len;
        sig_buf = hc.sig;
        sig_len = hc.sig_len;
        hc.lock = hc.sig = NULL;
    } else {
        rc = make_head(&hc, &plan, &lock_buf, &lock_len, &sig_buf, &sig_len, &err);
        if (rc == AP_OK)
            rc = ap_bundle_write(&plan, output, lock_buf, lock_len, sig_buf, sig_len, &wopts,
                                 &err);
    }
    check = hc.check;
    hc.check = NULL;
    if (rc != AP_OK) {
        if (ps.phase)
            cli_progress_end(&ps.p);
        rc = cli_report(&err);
        goto out;
    }
    if (ps.phase)
        cli_progress_end(&ps.p);
    if (volume > 0) {
        char *dir = ap_path_dirname(output);
        if (!dir || ap_parts_set_lock(&parts, lock_buf, lock_len, &err) != AP_OK ||
            ap_parts_sign_write(dir, &parts, sk, &err) != AP_OK) {
            free(dir);
            if (err.status == AP_OK)
                ap_error_set(&err, AP_ERR_NOMEM, "out of memory");
            rc = cli_report(&err);
            goto out;
        }
        free(dir);
    }
    ap_seckey_free(sk);
    sk = NULL;
    if (!quiet && base) {
        printf("delta against '%s' (%s %s, sequence %llu): %zu artifacts, %llu bytes left out "
               "(in_base)",
               base, base_lock->name, base_lock->version, (unsigned long long)base_lock->sequence,
               n_base, (unsigned long long)base_bytes);
        if (!zset && zlevel)
            printf("; compressed with zstd:%d (a small delta's default; --compress none for a "
                   "plain tar)",
                   zlevel);
        putchar('\n');
    }
    if (!quiet && volume > 0)
        printf("%zu parts of at most %llu bytes: %s ... %s, index %s%s\n", parts.n,
               (unsigned long long)volume, parts.parts[0].file, parts.parts[parts.n - 1].file,
               output, AP_PARTS_SUFFIX);
    if (!quiet) {
        uint8_t id[AP_KEYID_LEN];
        char hex[17];
        ap_signature sig;
        if (ap_signature_parse(AP_LOCK_SIG_NAME, sig_buf, sig_len, &sig, &err) == AP_OK)
            memcpy(id, sig.keyid, sizeof id);
        else
            memset(id, 0, sizeof id);
        ap_keyid_hex(id, hex);
        printf("bundle '%s' written: %s %s (sequence %llu), %zu artifacts, %llu bytes, "
               "signed by key %s\n",
               output, m->name, m->version, (unsigned long long)m->sequence, check->n_artifacts,
               (unsigned long long)check->total_bytes, hex);
    }
    rc = 0;
out:
    ap_seckey_free(sk);
    ap_lock_free(check);
    json_decref(lock);
    json_decref(analysis);
    ap_manifest_free(m);
    ap_bundle_plan_release(&plan);
    ap_parts_release(&parts);
    ap_lock_free(base_lock);
    ap_lock_free(hc.check);
    free(hc.lock);
    free(hc.sig);
    free(lock_buf);
    free(sig_buf);
    free(policies);
    return rc;
}
