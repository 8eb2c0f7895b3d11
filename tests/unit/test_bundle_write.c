/*
 * test_bundle_write.c - unit tests for src/bundle_write.c: the plan (walk,
 * names, modes, refusals), pass one (order, SHA256SUMS, threads), the lock
 * document, pass two (determinism, inputs that change between the passes,
 * no output and no temporary file on failure), reading a bundle's head.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle_write.h"
#include "lock.h"
#include "util.h"

static char dir[256];

static char *tp(const char *name)
{
    static char buf[8][512];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void put(const char *name, const char *text, mode_t mode)
{
    FILE *f = fopen(tp(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(tp(name), mode), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_bundle_write.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    mkdir(tp("m"), 0755);
    mkdir(tp("m/sub"), 0755);
    mkdir(tp("out"), 0755);
    put("m/b.bin", "bbbb", 0644);
    put("m/a.bin", "aaaa", 0600);
    put("m/sub/c.bin", "cc", 0644);
    put("run.sh", "#!/bin/sh\n", 0700);
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* No temporary files in out/. */
static void assert_no_tmp(void)
{
    DIR *d = opendir(tp("out"));
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0) {
            fprintf(stderr, "temporary file left: %s\n", e->d_name);
            fail();
        }
    }
    closedir(d);
}

static void make_plan(ap_bundle_plan *p)
{
    ap_error err;
    ap_bundle_plan_init(p);
    assert_int_equal(ap_bundle_plan_add_path(p, "payload/runtimes/r", tp("run.sh"), AP_ROLE_RUNTIME,
                                             &err), AP_OK);
    assert_int_equal(ap_bundle_plan_add_path(p, "payload/models/m", tp("m"), AP_ROLE_MODEL, &err),
                     AP_OK);
    assert_int_equal(ap_bundle_plan_add_memory(p, "report.sarif.json", "{}", 2, AP_ROLE_REPORT,
                                               &err), AP_OK);
    assert_int_equal(ap_bundle_plan_add_memory(p, AP_SBOM_NAME, "{\"bom\":1}", 9, AP_ROLE_SBOM,
                                               &err), AP_OK);
}

static void test_plan_and_hash(void **state)
{
    ap_bundle_plan p, q;
    ap_error err;
    (void)state;
    make_plan(&p);
    assert_int_equal(p.n, 6);
    assert_int_equal(ap_bundle_plan_hash(&p, 1, NULL, NULL, &err), AP_OK);
    /* Bundle order: sbom, report, models (sorted), runtimes. */
    assert_string_equal(p.items[0].path, "sbom.cdx.json");
    assert_string_equal(p.items[1].path, "report.sarif.json");
    assert_string_equal(p.items[2].path, "payload/models/m/a.bin");
    assert_string_equal(p.items[3].path, "payload/models/m/b.bin");
    assert_string_equal(p.items[4].path, "payload/models/m/sub/c.bin");
    assert_string_equal(p.items[5].path, "payload/runtimes/r/run.sh");
    assert_int_equal(p.items[2].mode, 0644); /* 0600 normalised */
    assert_int_equal(p.items[5].mode, 0755); /* 0700 normalised */
    assert_int_equal(p.bytes, 9 + 2 + 4 + 4 + 2 + 10);
    /* SHA256SUMS: coreutils format, every artifact after itself. */
    assert_non_null(strstr(p.sums, "61be55a8e2f6b4e172338bddf184d6dbee29c98853e0a0485ecee7f27b9af0b4"
                                   "  payload/models/m/a.bin\n"));
    assert_int_equal(strncmp(p.sums + 66, "sbom.cdx.json\n", 14), 0);
    {
        int lines = 0;
        for (size_t i = 0; i < p.sums_len; i++)
            lines += p.sums[i] == '\n';
        assert_int_equal(lines, 6);
    }
    /* Four threads give the same result. */
    make_plan(&q);
    assert_int_equal(ap_bundle_plan_hash(&q, 4, NULL, NULL, &err), AP_OK);
    assert_int_equal(q.sums_len, p.sums_len);
    assert_memory_equal(q.sums, p.sums, p.sums_len);
    ap_bundle_plan_release(&q);
    ap_bundle_plan_release(&p);
    ap_bundle_plan_release(NULL);
}

static void test_plan_refusals(void **state)
{
    ap_bundle_plan p;
    ap_error err;
    (void)state;
    ap_bundle_plan_init(&p);
    /* Unsafe entry names. */
    assert_int_equal(ap_bundle_plan_add_file(&p, "../x", tp("run.sh"), 0, AP_ROLE_FILE, &err),
                     AP_ERR_INPUT);
    assert_int_equal(ap_bundle_plan_add_file(&p, "/abs", tp("run.sh"), 0, AP_ROLE_FILE, &err),
                     AP_ERR_INPUT);
    assert_int_equal(ap_bundle_plan_add_path(&p, "payload/files/a/../b", tp("run.sh"),
                                             AP_ROLE_FILE, &err), AP_ERR_INPUT);
    /* Missing input, not a regular file. */
    assert_int_equal(ap_bundle_plan_add_file(&p, "payload/files/x", tp("nope"), 0, AP_ROLE_FILE,
                                             &err), AP_ERR_INPUT);
    assert_int_equal(ap_bundle_plan_add_file(&p, "payload/files/x", tp("m"), 0, AP_ROLE_FILE, &err),
                     AP_ERR_INPUT);
    /* A symlink inside a folder is refused; as the named path itself it is followed. */
    assert_int_equal(symlink("../run.sh", tp("m/link")), 0);
    assert_int_equal(ap_bundle_plan_add_path(&p, "payload/models/m", tp("m"), AP_ROLE_MODEL, &err),
                     AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "link"));
    assert_int_equal(ap_bundle_plan_add_file(&p, "payload/files/l", tp("m/link"), 0, AP_ROLE_FILE,
                                             &err), AP_ERR_INPUT);
    ap_bundle_plan_release(&p);
    ap_bundle_plan_init(&p);
    assert_int_equal(ap_bundle_plan_add_path(&p, "payload/files/l", tp("m/link"), AP_ROLE_FILE, &err),
                     AP_OK);
    assert_string_equal(p.items[0].path, "payload/files/l/link");
    assert_int_equal(unlink(tp("m/link")), 0);
    /* Two inputs with one entry name. */
    assert_int_equal(ap_bundle_plan_add_file(&p, "payload/files/l/link", tp("run.sh"), 0,
                                             AP_ROLE_FILE, &err), AP_OK);
    assert_int_equal(ap_bundle_plan_hash(&p, 1, NULL, NULL, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "both be bundle entry"));
    ap_bundle_plan_release(&p);
}

static void fake_manifest(ap_manifest *m)
{
    memset(m, 0, sizeof *m);
    m->file = "m.yaml";
    m->name = "demo";
    m->version = "1.0.0";
    m->sequence = 4;
    m->expires = "2030-06-01T12:00:00+02:00";
}

/* Build lock + signature stand-in and write the plan to path. */
static int write_bundle(ap_bundle_plan *p, const char *path, int zstd, ap_error *err)
{
    ap_manifest m;
    json_t *lock = NULL, *analysis = json_pack("{s:{s:{s:s}}}", "manifest", "target", "site", "x");
    char *buf = NULL;
    size_t len = 0;
    ap_bundle_write_opts o = {.zstd_level = zstd, .mtime = 1700000000};
    int rc;
    fake_manifest(&m);
    rc = ap_lock_build(&m, analysis, p, 1700000000, &lock, err);
    if (rc == AP_OK)
        rc = ap_lock_dump(lock, &buf, &len, err);
    if (rc == AP_OK)
        rc = ap_bundle_write(p, path, buf, len, "sig\n", 4, &o, err);
    json_decref(lock);
    json_decref(analysis);
    free(buf);
    return rc;
}

static void test_lock_document(void **state)
{
    ap_bundle_plan p;
    ap_manifest m;
    ap_error err;
    json_t *lock = NULL, *analysis = json_object();
    char *buf = NULL, tc[256];
    size_t len = 0;
    ap_lock *l = NULL;
    (void)state;
    make_plan(&p);
    fake_manifest(&m);
    assert_int_equal(ap_lock_build(&m, analysis, &p, 1700000000, &lock, &err), AP_ERR_INTERNAL);
    assert_int_equal(ap_bundle_plan_hash(&p, 2, NULL, NULL, &err), AP_OK);
    assert_int_equal(ap_lock_build(&m, analysis, &p, 1700000000, &lock, &err), AP_OK);
    assert_int_equal(ap_lock_dump(lock, &buf, &len, &err), AP_OK);
    assert_int_equal(buf[len - 1], '\n');
    assert_int_equal(ap_lock_parse("lock", buf, len, &l, &err), AP_OK);
    assert_string_equal(l->created, "2023-11-14T22:13:20Z");
    assert_string_equal(l->expires, "2030-06-01T10:00:00Z");
    assert_int_equal(l->n_artifacts, 7);
    assert_string_equal(l->artifacts[0].path, "SHA256SUMS");
    assert_int_equal(l->artifacts[0].size, p.sums_len);
    assert_int_equal(l->total_bytes, p.bytes + p.sums_len);
    ap_lock_free(l);
    free(buf);
    json_decref(lock);
    /* A date-only expiry is midnight UTC; garbage is refused. */
    m.expires = "2031-02-03";
    assert_int_equal(ap_lock_build(&m, analysis, &p, 0, &lock, &err), AP_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(lock, "metadata"),
                                                          "expires")), "2031-02-03T00:00:00Z");
    assert_string_equal(json_string_value(json_object_get(json_object_get(lock, "metadata"),
                                                          "created")), "1970-01-01T00:00:00Z");
    json_decref(lock);
    m.expires = "soon";
    assert_int_equal(ap_lock_build(&m, analysis, &p, 0, &lock, &err), AP_ERR_INPUT);
    assert_int_equal(ap_lock_trusted_comment("demo", "1.0.0", 4, tc, sizeof tc), 0);
    assert_string_equal(tc, "file:airpack.lock.json\tname:demo\tversion:1.0.0\tsequence:4");
    assert_int_equal(ap_lock_trusted_comment("demo", "1.0.0", 4, tc, 10), -1);
    json_decref(analysis);
    ap_bundle_plan_release(&p);
}

static void test_epoch(void **state)
{
    uint64_t e;
    ap_error err;
    (void)state;
    unsetenv("SOURCE_DATE_EPOCH");
    assert_int_equal(ap_source_date_epoch(&e, &err), AP_OK);
    assert_int_equal(e, AP_DEFAULT_EPOCH);
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    assert_int_equal(ap_source_date_epoch(&e, &err), AP_OK);
    assert_int_equal(e, 1700000000);
    setenv("SOURCE_DATE_EPOCH", "-5", 1);
    assert_int_equal(ap_source_date_epoch(&e, &err), AP_ERR_INPUT);
    setenv("SOURCE_DATE_EPOCH", "12abc", 1);
    assert_int_equal(ap_source_date_epoch(&e, &err), AP_ERR_INPUT);
    unsetenv("SOURCE_DATE_EPOCH");
}

static void read_names(const char *path, char names[][128], size_t *n)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    archive_read_support_format_tar(a);
    archive_read_support_filter_zstd(a);
    assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
    *n = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        snprintf(names[*n], 128, "%s", archive_entry_pathname(e));
        assert_int_equal(archive_entry_uid(e), 0);
        assert_int_equal(archive_entry_mtime(e), 1700000000);
        assert_false(archive_entry_atime_is_set(e));
        assert_false(archive_entry_ctime_is_set(e));
        (*n)++;
    }
    archive_read_free(a);
}

static void cmp_files(const char *a, const char *b, int want_equal)
{
    char *x = NULL, *y = NULL;
    size_t lx = 0, ly = 0;
    ap_error err;
    assert_int_equal(ap_read_file(a, 1 << 24, &x, &lx, &err), AP_OK);
    assert_int_equal(ap_read_file(b, 1 << 24, &y, &ly, &err), AP_OK);
    assert_int_equal(lx == ly && memcmp(x, y, lx) == 0, want_equal);
    free(x);
    free(y);
}

static void test_write(void **state)
{
    ap_bundle_plan p;
    ap_error err;
    char names[16][128];
    size_t n = 0;
    char *lock = NULL, *sig = NULL;
    size_t ll = 0, sl = 0;
    (void)state;
    make_plan(&p);
    assert_int_equal(ap_bundle_plan_hash(&p, 2, NULL, NULL, &err), AP_OK);
    assert_int_equal(write_bundle(&p, tp("out/b1.tar"), 0, &err), AP_OK);
    assert_int_equal(write_bundle(&p, tp("out/b2.tar"), 0, &err), AP_OK);
    cmp_files(tp("out/b1.tar"), tp("out/b2.tar"), 1);
    assert_int_equal(write_bundle(&p, tp("out/z1.tar.zst"), 3, &err), AP_OK);
    assert_int_equal(write_bundle(&p, tp("out/z2.tar.zst"), 3, &err), AP_OK);
    cmp_files(tp("out/z1.tar.zst"), tp("out/z2.tar.zst"), 1);
    cmp_files(tp("out/b1.tar"), tp("out/z1.tar.zst"), 0);
    assert_no_tmp();

    read_names(tp("out/b1.tar"), names, &n);
    assert_int_equal(n, 9);
    assert_string_equal(names[0], "airpack.lock.json");
    assert_string_equal(names[1], "airpack.lock.json.minisig");
    assert_string_equal(names[2], "SHA256SUMS");
    assert_string_equal(names[3], "sbom.cdx.json");
    assert_string_equal(names[8], "payload/runtimes/r/run.sh");
    read_names(tp("out/z1.tar.zst"), names, &n);
    assert_int_equal(n, 9);

    /* The head: lock and signature, read without trust. */
    assert_int_equal(ap_bundle_read_head(tp("out/z1.tar.zst"), &lock, &ll, &sig, &sl, &err), AP_OK);
    assert_non_null(strstr(lock, "\"format\": \"airpack-bundle/1\""));
    assert_int_equal(sl, 4);
    assert_string_equal(sig, "sig\n");
    free(lock);
    free(sig);
    assert_int_equal(ap_bundle_read_head(tp("run.sh"), &lock, &ll, &sig, &sl, &err), AP_ERR_CHECK);
    assert_int_equal(ap_bundle_read_head(tp("none.tar"), &lock, &ll, &sig, &sl, &err), AP_ERR_INPUT);
    assert_null(lock);
    ap_bundle_plan_release(&p);
}

/* Inputs that change between the two passes fail the build and leave nothing. */
static void test_changed_inputs(void **state)
{
    ap_bundle_plan p;
    ap_error err;
    (void)state;

    /* Same size, other bytes. */
    make_plan(&p);
    assert_int_equal(ap_bundle_plan_hash(&p, 2, NULL, NULL, &err), AP_OK);
    {
        FILE *f = fopen(tp("m/b.bin"), "r+");
        assert_non_null(f);
        fputs("BBBB", f);
        fclose(f);
    }
    assert_int_equal(write_bundle(&p, tp("out/c1.tar"), 0, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "changed while building"));
    assert_non_null(strstr(err.msg, "sha-256"));
    assert_int_equal(access(tp("out/c1.tar"), F_OK), -1);
    assert_no_tmp();
    ap_bundle_plan_release(&p);

    /* It grew. */
    make_plan(&p);
    assert_int_equal(ap_bundle_plan_hash(&p, 2, NULL, NULL, &err), AP_OK);
    put("m/sub/c.bin", "ccc", 0644);
    assert_int_equal(write_bundle(&p, tp("out/c2.tar"), 0, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "changed while building"));
    assert_int_equal(access(tp("out/c2.tar"), F_OK), -1);
    ap_bundle_plan_release(&p);

    /* Replaced by another file (rename over it). */
    make_plan(&p);
    assert_int_equal(ap_bundle_plan_hash(&p, 2, NULL, NULL, &err), AP_OK);
    put("m/a.new", "aaaa", 0644);
    assert_int_equal(rename(tp("m/a.new"), tp("m/a.bin")), 0);
    assert_int_equal(write_bundle(&p, tp("out/c3.tar"), 0, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "replaced or resized"));
    ap_bundle_plan_release(&p);

    /* Removed. */
    make_plan(&p);
    assert_int_equal(ap_bundle_plan_hash(&p, 2, NULL, NULL, &err), AP_OK);
    assert_int_equal(unlink(tp("m/a.bin")), 0);
    assert_int_equal(write_bundle(&p, tp("out/c4.tar"), 0, &err), AP_ERR_INPUT);
    assert_int_equal(access(tp("out/c4.tar"), F_OK), -1);
    assert_no_tmp();
    put("m/a.bin", "aaaa", 0600);
    ap_bundle_plan_release(&p);

    /* An existing output stays as it was when a build fails. */
    make_plan(&p);
    assert_int_equal(ap_bundle_plan_hash(&p, 2, NULL, NULL, &err), AP_OK);
    put("out/keep.tar", "old", 0644);
    put("run.sh", "#!/bin/sh\n#\n", 0700);
    assert_int_equal(write_bundle(&p, tp("out/keep.tar"), 0, &err), AP_ERR_INPUT);
    {
        char *x = NULL;
        size_t lx;
        assert_int_equal(ap_read_file(tp("out/keep.tar"), 100, &x, &lx, &err), AP_OK);
        assert_string_equal(x, "old");
        free(x);
    }
    assert_no_tmp();
    ap_bundle_plan_release(&p);
}

/* Hashes from checked pins stand in for pass one; pass two still checks them. */
static void test_known_hashes(void **state)
{
    ap_bundle_plan p;
    ap_error err;
    char *srcs[2];
    char hex[2][AP_SHA256_HEX_LEN + 1];
    (void)state;
    make_plan(&p);
    srcs[0] = tp("m/a.bin");
    srcs[1] = tp("not/in/plan");
    /* sha256("aaaa"), the truth; then a wrong one. */
    snprintf(hex[0], sizeof hex[0], "%s",
             "61be55a8e2f6b4e172338bddf184d6dbee29c98853e0a0485ecee7f27b9af0b4");
    snprintf(hex[1], sizeof hex[1], "%s",
             "0000000000000000000000000000000000000000000000000000000000000000");
    assert_int_equal(ap_bundle_plan_use_hashes(&p, srcs, (const char(*)[65])hex, 2), 1);
    assert_int_equal(ap_bundle_plan_hash(&p, 2, NULL, NULL, &err), AP_OK);
    assert_non_null(strstr(p.sums, "61be55a8e2f6b4e172338bddf184d6dbee29c98853e0a0485ecee7f27b9af0b4"
                                   "  payload/models/m/a.bin\n"));
    assert_int_equal(write_bundle(&p, tp("out/k1.tar"), 0, &err), AP_OK);
    ap_bundle_plan_release(&p);

    /* A stale pin hash (the file changed after the check): pass one trusts it,
     * pass two catches it, nothing is written. */
    make_plan(&p);
    memcpy(hex[0], hex[1], sizeof hex[0]);
    assert_int_equal(ap_bundle_plan_use_hashes(&p, srcs, (const char(*)[65])hex, 1), 1);
    assert_int_equal(ap_bundle_plan_hash(&p, 1, NULL, NULL, &err), AP_OK);
    assert_non_null(strstr(p.sums, "0000000000000000000000000000000000000000000000000000000000000000"
                                   "  payload/models/m/a.bin\n"));
    assert_int_equal(write_bundle(&p, tp("out/k2.tar"), 0, &err), AP_ERR_INPUT);
    assert_non_null(strstr(err.msg, "changed while building"));
    assert_int_equal(access(tp("out/k2.tar"), F_OK), -1);
    assert_no_tmp();
    ap_bundle_plan_release(&p);
}

static void test_space(void **state)
{
    ap_bundle_plan p;
    ap_error err;
    (void)state;
    assert_int_equal(ap_bundle_check_space(tp("out/x.tar"), 1, &err), AP_OK);
    assert_int_equal(ap_bundle_check_space(tp("out/x.tar"), UINT64_MAX, &err), AP_ERR_IO);
    assert_non_null(strstr(err.msg, "not enough free space"));
    assert_int_equal(ap_bundle_check_space(tp("nodir/x.tar"), 1, &err), AP_ERR_INPUT);
    make_plan(&p);
    /* Headers, data rounded to 512 bytes, end marker. */
    assert_true(ap_bundle_plan_estimate(&p, 100, 100) >= 6 * 512 + 2 * 512 + 1024);
    ap_bundle_plan_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_and_hash),
        cmocka_unit_test(test_plan_refusals),
        cmocka_unit_test(test_lock_document),
        cmocka_unit_test(test_epoch),
        cmocka_unit_test(test_write),
        cmocka_unit_test(test_changed_inputs),
        cmocka_unit_test(test_known_hashes),
        cmocka_unit_test(test_space),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
