/*
 * analyze.c - the check pipeline behind `airpack check` (see analyze.h).
 */
#include "analyze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data.h"
#include "model/model.h"
#include "pins.h"
#include "source/source.h"
#include "plan.h"
#include "runtime/launch.h"
#include "policy.h"
#include "util.h"
#include "waiver.h"

static int run_policies(const ap_manifest *m, const ap_analyze_opts *opts, json_t *analysis,
                        json_t *policies, json_t *findings, ap_error *err)
{
    size_t total = m->n_policies + opts->n_policies;
    const char **refs = calloc(total ? total : 1, sizeof *refs);
    const char **seen = calloc(total ? total : 1, sizeof *seen);
    size_t nseen = 0;
    int rc = AP_OK;

    if (!refs || !seen) {
        free(refs);
        free(seen);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < m->n_policies; i++)
        refs[i] = m->policies[i];
    for (size_t i = 0; i < opts->n_policies; i++)
        refs[m->n_policies + i] = opts->policies[i];
    for (size_t i = 0; i < total && !rc; i++) {
        ap_policy *p = NULL;
        int dup = 0;
        if ((rc = ap_policy_load_ref(refs[i], &p, err)))
            break;
        for (size_t k = 0; k < nseen; k++)
            dup |= !strcmp(seen[k], ap_policy_name(p));
        if (dup) {
            ap_policy_free(p);
            continue;
        }
        if (opts->policy_params && (rc = ap_policy_set_params(p, opts->policy_params, err))) {
            ap_policy_free(p);
            break;
        }
        json_array_append_new(policies, ap_policy_to_json(p));
        /* The name is kept by the analysis document, which outlives the pack. */
        seen[nseen++] = json_string_value(
            json_object_get(json_array_get(policies, json_array_size(policies) - 1), "name"));
        rc = ap_policy_eval(p, analysis, findings, err);
        ap_policy_free(p);
    }
    free(refs);
    free(seen);
    return rc;
}

static void locate_findings(const ap_manifest *m, const char *name, json_t *findings)
{
    size_t i;
    json_t *f;
    json_array_foreach(findings, i, f) {
        const char *path = json_string_value(json_object_get(f, "path"));
        const char *subject = json_string_value(json_object_get(f, "subject"));
        ap_loc loc = {0, 0};
        if (json_object_get(f, "location"))
            continue;
        if (path)
            ap_manifest_locate(m, path, &loc);
        else if (subject)
            ap_manifest_locate(m, subject, &loc);
        else
            continue;
        json_object_set_new(f, "location", json_pack("{s:s, s:i, s:i}", "file", name, "line",
                                                     (json_int_t)loc.line, "column",
                                                     (json_int_t)loc.column));
    }
}

void ap_analysis_summarize(json_t *analysis)
{
    json_t *findings = json_object_get(analysis, "findings"), *f;
    json_int_t errors = 0, warnings = 0, notes = 0, waived = 0;
    size_t i;
    json_array_foreach(findings, i, f) {
        const char *level = json_string_value(json_object_get(f, "level"));
        if (json_is_true(json_object_get(f, "waived"))) {
            waived++;
            continue;
        }
        if (!level)
            continue;
        if (!strcmp(level, "error"))
            errors++;
        else if (!strcmp(level, "warning"))
            warnings++;
        else
            notes++;
    }
    json_object_set_new(analysis, "summary",
                        json_pack("{s:I, s:I, s:I, s:I, s:b}", "errors", errors, "warnings",
                                  warnings, "notes", notes, "waived", waived, "passed",
                                  errors == 0));
}

int ap_analysis_passed(const json_t *analysis)
{
    return json_is_true(json_object_get(json_object_get(analysis, "summary"), "passed"));
}

/* True when the pin check of subject found its content changed: its facts
 * would describe files that are not the pinned ones, so they are not read. */
static int pin_failed(const json_t *pins, const char *subject)
{
    size_t i;
    const json_t *p;
    json_array_foreach(pins, i, p) {
        const char *st = json_string_value(json_object_get(p, "status"));
        if (!strcmp(json_string_value(json_object_get(p, "subject")), subject))
            return st && strcmp(st, "ok") != 0 && strcmp(st, "unpinned") != 0;
    }
    return 0;
}

/* A container image's config Env is the runtime's environment too: the
 * offline policies read runtimes[].env, where the manifest's own env wins
 * over the image's (as with `podman run --env`). Keys that come from the
 * image are listed in runtimes[].env_from_image. */
static void merge_image_env(json_t *item, const json_t *src)
{
    const json_t *images = json_object_get(src, "images"), *img, *e;
    json_t *env = json_object_get(item, "env"), *from = NULL;
    size_t i, k;
    json_array_foreach(images, i, img) {
        json_array_foreach(json_object_get(img, "env"), k, e) {
            const char *kv = json_string_value(e), *eq = kv ? strchr(kv, '=') : NULL;
            char key[256];
            if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key)
                continue;
            memcpy(key, kv, (size_t)(eq - kv));
            key[eq - kv] = '\0';
            if (!env) {
                env = json_object();
                json_object_set_new(item, "env", env);
            }
            if (json_object_get(env, key))
                continue;
            json_object_set_new(env, key, json_string(eq + 1));
            if (!from) {
                from = json_array();
                json_object_set_new(item, "env_from_image", from);
            }
            json_array_append_new(from, json_string(key));
        }
    }
}

/* Where an input came from (a hub cache revision, a store digest):
 * analysis.pins[].source onto the manifest's item, for the SBOM and the
 * policies. */
static void copy_sources(json_t *manifest, const json_t *pins)
{
    static const char *const lists[] = {"models", "runtimes", "files"};
    size_t i;
    const json_t *p;
    json_array_foreach(pins, i, p) {
        const char *subj = json_string_value(json_object_get(p, "subject"));
        json_t *src = json_object_get(p, "source");
        if (!subj || !src)
            continue;
        for (size_t l = 0; l < 3; l++) {
            size_t n = strlen(lists[l]), idx;
            char c;
            if (strncmp(subj, lists[l], n) == 0 && sscanf(subj + n, "[%zu%c", &idx, &c) == 2 &&
                c == ']') {
                json_t *item = json_array_get(json_object_get(manifest, lists[l]), idx);
                json_object_set(item, "source", src);
                /* The licence a store's licence layer names (Ollama) feeds
                 * the licence policies when the manifest declares none. */
                if (item && !json_object_get(item, "license") &&
                    json_is_string(json_object_get(src, "license")))
                    json_object_set(item, "license", json_object_get(src, "license"));
                if (item && l == 1)
                    merge_image_env(item, src);
            }
        }
    }
}

/* Read each model's facts from its files; facts[i] NULL when skipped. */
static int read_facts(const ap_manifest *m, ap_model_facts **facts, json_t *manifest,
                      const json_t *pins, ap_error *err)
{
    json_t *models = json_object_get(manifest, "models");
    for (size_t i = 0; i < m->n_models; i++) {
        char subject[64];
        snprintf(subject, sizeof subject, "models[%zu]", i);
        if (pin_failed(pins, subject))
            continue;
        int rc = ap_source_facts_load(&m->models[i], &facts[i], err);
        if (rc)
            return ap_error_prefix(err, "model '%s' (%s, line %u)", m->models[i].name, m->file,
                                   m->models[i].loc.line);
        json_t *fj = ap_model_facts_to_json(facts[i]);
        /* Name the files as the manifest does, not by where airpack ran. */
        if (fj)
            json_object_set_new(fj, "path", json_string(m->models[i].src.path));
        json_object_set_new(json_array_get(models, i), "facts", fj);
    }
    return AP_OK;
}

int ap_analyze(const ap_manifest *m, const ap_analyze_opts *opts, json_t **out, ap_error *err)
{
    static const ap_analyze_opts defaults = {0};
    json_t *a = NULL, *manifest = NULL, *pins = NULL, *findings = NULL, *policies = NULL;
    ap_model_facts **facts = NULL;
    int rc = AP_OK;

    *out = NULL;
    if (!opts)
        opts = &defaults;
    facts = calloc(m->n_models ? m->n_models : 1, sizeof *facts);
    if (!facts)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    a = json_object();
    manifest = ap_manifest_to_json(m);
    pins = json_array();
    findings = json_array();
    policies = json_array();
    if (!a || !manifest || !pins || !findings || !policies) {
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    json_object_set_new(a, "tool", json_pack("{s:s, s:s}", "name", "airpack", "version",
                                             AIRPACK_VERSION));
    json_object_set_new(a, "manifest_file",
                        json_string(opts->manifest_name ? opts->manifest_name : m->file));

    if (!opts->skip_pins && (rc = ap_pins_check(m, pins, findings, err)))
        goto fail;
    /* the entries build would write: what it would refuse, check refuses */
    if (!opts->skip_pins && (rc = ap_input_entries_check(m, err)))
        goto fail;
    copy_sources(manifest, pins);
    if (!opts->skip_facts && (rc = read_facts(m, facts, manifest, pins, err)))
        goto fail;

    json_object_set(a, "manifest", manifest);
    json_object_set(a, "pins", pins);
    {
        ap_plan *plan = NULL;
        if ((rc = ap_plan_compute(m, facts, &plan, err)))
            goto fail;
        json_object_set_new(a, "plan", ap_plan_to_json(plan));
        if (ap_plan_findings(plan, m, facts, findings) != 0)
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        ap_plan_free(plan);
        if (rc)
            goto fail;
    }
    {
        /* how each serving runtime starts, from the plan (docs/runtimes.md) */
        json_t *launch = NULL;
        if ((rc = ap_launch_build(m, json_object_get(a, "plan"), &launch, err)))
            goto fail;
        json_object_set_new(a, "launch", launch);
        if (ap_launch_findings(launch, findings) != 0) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    json_object_set(a, "policies", policies);
    json_object_set(a, "findings", findings);
    if (!opts->skip_policies && (rc = run_policies(m, opts, a, policies, findings, err)))
        goto fail;
    if (opts->waivers) {
        ap_waivers *w = NULL;
        char today[11];
        if ((rc = ap_waivers_load(opts->waivers, &w, err)))
            goto fail;
        ap_today_utc(today);
        rc = ap_waivers_apply(w, findings, opts->today ? opts->today : today, err);
        ap_waivers_free(w);
        if (rc)
            goto fail;
    }
    locate_findings(m, opts->manifest_name ? opts->manifest_name : m->file, findings);
    ap_analysis_summarize(a);
    *out = a;
    a = NULL;
fail:
    for (size_t i = 0; i < m->n_models; i++)
        ap_model_facts_free(facts[i]);
    free(facts);
    json_decref(a);
    json_decref(manifest);
    json_decref(pins);
    json_decref(findings);
    json_decref(policies);
    return rc;
}
