/*
 * report_html.c - the self-contained HTML audit report (docs/reports.md):
 * what was checked, against which controls, with the evidence (pins and
 * hashes, the bundle's signer key id, dates, the memory plan). One file,
 * inline CSS, no scripts and nothing loaded from elsewhere; every string
 * from the analysis is escaped.
 */
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "report_int.h"
#include "runtime/launch.h"

static void h(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
                fputc(*s, f);
        }
    }
}

static void td(FILE *f, const char *s)
{
    fputs("<td>", f);
    h(f, s);
    fputs("</td>", f);
}

static void td_code(FILE *f, const char *s)
{
    fputs("<td><code>", f);
    h(f, s);
    fputs("</code></td>", f);
}

static void controls(FILE *f, const json_t *ctl)
{
    const json_t *c;
    size_t i;
    fputs("<td>", f);
    json_array_foreach(ctl, i, c) {
        fputs("<span class=\"ctl\">", f);
        h(f, json_string_value(c));
        fputs("</span> ", f);
    }
    fputs("</td>", f);
}

static const char css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;"
    "max-width:1100px;padding:0 1em;color:#1b1f24;background:#fff}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;"
    "margin-top:1.6em;font-size:1.25em}"
    "table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.92em}"
    "th,td{border:1px solid #d0d7de;padding:.35em .5em;text-align:left;vertical-align:top}"
    "th{background:#f6f8fa}code{font-family:ui-monospace,Menlo,Consolas,monospace;"
    "font-size:.88em;word-break:break-all}"
    ".verdict{display:inline-block;padding:.3em .8em;border-radius:4px;font-weight:700;color:#fff}"
    ".pass{background:#1a7f37}.fail{background:#cf222e}"
    ".lv-error{color:#cf222e;font-weight:700}.lv-warning{color:#9a6700;font-weight:700}"
    ".lv-note{color:#0969da}.waived{color:#57606a;font-style:italic}"
    ".ctl{display:inline-block;background:#ddf4ff;border-radius:3px;padding:0 .3em;margin:1px;"
    "font-size:.85em}.muted{color:#57606a}pre{background:#f6f8fa;padding:.8em;overflow:auto;"
    "font-size:.85em}.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #d0d7de;"
    "border-radius:6px;padding:.5em 1em;min-width:7em}.card b{display:block;font-size:1.5em}"
    "@media print{body{margin:0}}";

static void kv_row(FILE *f, const char *k, const char *v)
{
    if (!v || !*v)
        return;
    fputs("<tr><th>", f);
    h(f, k);
    fputs("</th>", f);
    td(f, v);
    fputs("</tr>\n", f);
}

static void findings_table(FILE *f, const json_t *a)
{
    static const char *const levels[] = {"error", "warning", "note"};
    const json_t *fd;
    size_t i;
    if (json_array_size(json_object_get(a, "findings")) == 0) {
        fputs("<p>No findings: every rule checked passed.</p>\n", f);
        return;
    }
    fputs("<table><tr><th>Level</th><th>Rule</th><th>Location</th><th>Finding</th>"
          "<th>Controls</th><th>Status</th></tr>\n", f);
    for (size_t l = 0; l < AP_ARRAY_LEN_RP(levels); l++) {
        json_array_foreach(json_object_get(a, "findings"), i, fd) {
            const json_t *loc = json_object_get(fd, "location");
            if (strcmp(rp_str(fd, "level"), levels[l]) != 0)
                continue;
            fprintf(f, "<tr%s><td class=\"lv-%s\">%s</td>",
                    rp_waived(fd) ? " class=\"waived\"" : "", levels[l], levels[l]);
            td_code(f, rp_str(fd, "rule"));
            fputs("<td><code>", f);
            h(f, rp_str(loc, "file"));
            if (rp_int(loc, "line") > 0)
                fprintf(f, ":%lld:%lld", rp_int(loc, "line"), rp_int(loc, "column"));
            fputs("</code><br><span class=\"muted\">", f);
            h(f, *rp_str(fd, "path") ? rp_str(fd, "path") : rp_str(fd, "subject"));
            fputs("</span></td><td>", f);
            h(f, rp_str(fd, "message"));
            if (*rp_str(fd, "title")) {
                fputs("<br><span class=\"muted\">", f);
                h(f, rp_str(fd, "title"));
                fputs("</span>", f);
            }
            fputs("</td>", f);
            controls(f, json_object_get(fd, "controls"));
            if (rp_waived(fd)) {
                const json_t *w = json_object_get(fd, "waiver");
                fputs("<td>waived by ", f);
                h(f, rp_str(w, "approver"));
                fputs(" until ", f);
                h(f, rp_str(w, "expires"));
                fputs(": ", f);
                h(f, rp_str(w, "justification"));
                fputs("</td>", f);
            } else if (json_object_get(fd, "waiver_expired")) {
                fputs("<td><b>open</b> (waiver expired ", f);
                h(f, rp_str(json_object_get(fd, "waiver_expired"), "expires"));
                fputs(")</td>", f);
            } else {
                fputs("<td><b>open</b></td>", f);
            }
            fputs("</tr>\n", f);
        }
    }
    fputs("</table>\n", f);
}

static void rules_table(FILE *f, const json_t *a, const json_t *rules)
{
    const json_t *r, *pol;
    size_t i;
    fputs("<table><tr><th>Pack</th><th>File</th><th>Version</th><th>Rules</th></tr>\n", f);
    json_array_foreach(json_object_get(a, "policies"), i, pol) {
        char n[32];
        fputs("<tr>", f);
        td(f, rp_str(pol, "name"));
        td_code(f, rp_str(pol, "file"));
        td(f, rp_str(pol, "version"));
        snprintf(n, sizeof(n), "%lld", rp_int(pol, "rules"));
        td(f, n);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<table><tr><th>Rule</th><th>Pack</th><th>Severity</th><th>Title and "
          "rationale</th><th>Controls</th><th>Result</th></tr>\n", f);
    json_array_foreach(rules, i, r) {
        size_t open, waived;
        rp_rule_counts(a, rp_str(r, "id"), &open, &waived);
        fputs("<tr>", f);
        td_code(f, rp_str(r, "id"));
        td(f, rp_str(r, "pack"));
        td(f, rp_str(r, "level"));
        fputs("<td>", f);
        h(f, rp_str(r, "title"));
        if (*rp_str(r, "rationale")) {
            fputs("<br><span class=\"muted\">", f);
            h(f, rp_str(r, "rationale"));
            fputs("</span>", f);
        }
        fputs("</td>", f);
        controls(f, json_object_get(r, "controls"));
        if (open)
            fprintf(f, "<td class=\"lv-error\">fail (%zu)</td>", open);
        else if (waived)
            fprintf(f, "<td class=\"waived\">waived (%zu)</td>", waived);
        else
            fputs("<td style=\"color:#1a7f37\">pass</td>", f);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* Controls, each with the rules that map to it and their combined result. */
static void controls_table(FILE *f, const json_t *a, const json_t *rules)
{
    json_t *byctl = json_object();
    const json_t *r, *c;
    const char *key;
    json_t *list;
    size_t i, j;
    if (!byctl)
        return;
    json_array_foreach(rules, i, r) {
        json_array_foreach(json_object_get(r, "controls"), j, c) {
            const char *name = json_string_value(c);
            json_t *l;
            if (!name)
                continue;
            if (!(l = json_object_get(byctl, name))) {
                l = json_array();
                if (!l || json_object_set_new(byctl, name, l))
                    goto done;
            }
            json_array_append_new(l, json_string(rp_str(r, "id")));
        }
    }
    fputs("<table><tr><th>Control</th><th>Rules</th><th>Result</th></tr>\n", f);
    json_object_foreach(byctl, key, list) {
        size_t open = 0, waived = 0;
        const json_t *id;
        fputs("<tr>", f);
        td(f, key);
        fputs("<td>", f);
        json_array_foreach(list, j, id) {
            size_t o, w;
            rp_rule_counts(a, json_string_value(id), &o, &w);
            open += o;
            waived += w;
            fputs("<code>", f);
            h(f, json_string_value(id));
            fputs("</code> ", f);
        }
        fputs("</td>", f);
        if (open)
            fputs("<td class=\"lv-error\">not met</td>", f);
        else if (waived)
            fputs("<td class=\"waived\">met with waivers</td>", f);
        else
            fputs("<td style=\"color:#1a7f37\">met</td>", f);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
done:
    json_decref(byctl);
}

static void gib_cell(FILE *f, const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_number(v))
        fprintf(f, "<td>%.2f GiB</td>", json_number_value(v) / (1024.0 * 1024.0 * 1024.0));
    else
        fputs("<td></td>", f);
}

static void int_cell(FILE *f, const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        fprintf(f, "<td>%lld</td>", (long long)json_integer_value(v));
    else
        fputs("<td></td>", f);
}

/* The planner's numbers per model (docs/memory-planner.md). */
static void plan_table(FILE *f, const json_t *plan)
{
    const json_t *gpu = json_object_get(plan, "gpu"), *m;
    size_t i;
    fputs("<p>", f);
    fputs(json_is_true(json_object_get(plan, "fits")) ? "Fits" : "<b>Does not fit</b>", f);
    if (json_is_object(gpu)) {
        fprintf(f, " on %lld &times; ", rp_int(gpu, "count"));
        h(f, *rp_str(gpu, "label") ? rp_str(gpu, "label") : rp_str(gpu, "model"));
        if (json_is_number(json_object_get(gpu, "budget_bytes")))
            fprintf(f, ", %.2f GiB usable per GPU (utilization %.2f)",
                    json_number_value(json_object_get(gpu, "budget_bytes")) /
                        (1024.0 * 1024.0 * 1024.0),
                    json_number_value(json_object_get(gpu, "memory_utilization")));
    }
    fputs(".</p>\n<table><tr><th>Model</th><th>Runtime</th><th>Context &times; concurrency</th>"
          "<th>Weights</th><th>KV cache</th><th>Activations</th><th>Overhead</th>"
          "<th>Total per GPU</th><th>Headroom</th><th>Largest context</th>"
          "<th>Largest concurrency</th><th>Fits</th></tr>\n", f);
    json_array_foreach(json_object_get(plan, "models"), i, m) {
        fputs("<tr>", f);
        td(f, rp_str(m, "name"));
        td(f, rp_str(m, "runtime"));
        fprintf(f, "<td>%lld &times; %lld</td>", rp_int(m, "context"), rp_int(m, "concurrency"));
        gib_cell(f, m, "weights_per_gpu_bytes");
        gib_cell(f, m, "kv_bytes");
        gib_cell(f, m, "activation_bytes");
        gib_cell(f, m, "overhead_bytes");
        gib_cell(f, m, "total_per_gpu_bytes");
        gib_cell(f, m, "headroom_bytes");
        int_cell(f, m, "max_context");
        int_cell(f, m, "max_concurrency");
        if (json_is_true(json_object_get(m, "fits")))
            fputs("<td style=\"color:#1a7f37\">yes</td>", f);
        else {
            fputs("<td class=\"lv-error\">no", f);
            if (*rp_str(m, "problem")) {
                fputs(": ", f);
                h(f, rp_str(m, "problem"));
            }
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* File hashes: the bundle's artifacts (analysis.artifacts, from a lock)
 * or the per-file hashes of the pins (pins[*].hashes: [{path, sha256}]). */
static void hashes_table(FILE *f, const json_t *a)
{
    const json_t *arts = json_object_get(a, "artifacts"), *p, *x;
    size_t i, j;
    int any = 0;
    if (json_array_size(arts)) {
        fputs("<h3>Bundle artifacts</h3><table><tr><th>Path</th><th>Role</th><th>Bytes</th>"
              "<th>SHA-256</th></tr>\n", f);
        json_array_foreach(arts, i, x) {
            char n[32];
            fputs("<tr>", f);
            td_code(f, rp_str(x, "path"));
            td(f, rp_str(x, "role"));
            snprintf(n, sizeof(n), "%lld", rp_int(x, "size"));
            td(f, n);
            td_code(f, rp_str(x, "sha256"));
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
        return;
    }
    json_array_foreach(json_object_get(a, "pins"), i, p) {
        json_array_foreach(json_object_get(p, "hashes"), j, x) {
            if (!any)
                fputs("<h3>File hashes</h3><table><tr><th>Subject</th><th>File</th>"
                      "<th>SHA-256</th></tr>\n", f);
            any = 1;
            fputs("<tr>", f);
            td(f, rp_str(p, "subject"));
            td_code(f, *rp_str(x, "path") ? rp_str(x, "path") : rp_str(x, "file"));
            td_code(f, rp_str(x, "sha256"));
            fputs("</tr>\n", f);
        }
    }
    if (any)
        fputs("</table>\n", f);
}

static void launch_table(FILE *f, const json_t *launch);

static void evidence(FILE *f, const json_t *a)
{
    const json_t *man = json_object_get(a, "manifest"), *p, *m, *b = json_object_get(a, "bundle");
    const json_t *plan = json_object_get(a, "plan");
    size_t i;
    fputs("<h2>Evidence</h2>\n", f);
    if (json_is_object(b)) {
        const json_t *sg = json_object_get(b, "signer");
        fputs("<h3>Bundle</h3><table>\n", f);
        kv_row(f, "Bundle file", rp_str(b, "file"));
        kv_row(f, "Bundle SHA-256", rp_str(b, "sha256"));
        kv_row(f, "Lock SHA-256", rp_str(b, "lock_sha256"));
        kv_row(f, "Created", rp_str(b, "created"));
        kv_row(f, "Expires", rp_str(b, "expires"));
        kv_row(f, "Signer key id", rp_str(sg, "keyid"));
        kv_row(f, "Trusted key file", rp_str(sg, "file"));
        kv_row(f, "Signature", json_is_true(json_object_get(b, "verified"))
                                    ? "verified against a trusted key"
                                    : "NOT verified");
        fputs("</table>\n", f);
    }
    fputs("<h3>Models</h3><table><tr><th>Name</th><th>Path</th><th>Pin</th><th>Licence</th>"
          "<th>Origin</th><th>Format</th></tr>\n", f);
    json_array_foreach(json_object_get(man, "models"), i, m) {
        const json_t *o = json_object_get(m, "origin");
        char origin[1024];
        snprintf(origin, sizeof(origin), "%s%s%s%s", rp_str(o, "publisher"),
                 *rp_str(o, "jurisdiction") ? " (" : "", rp_str(o, "jurisdiction"),
                 *rp_str(o, "jurisdiction") ? ")" : "");
        fputs("<tr>", f);
        td(f, rp_str(m, "name"));
        td_code(f, rp_str(m, "path"));
        td_code(f, *rp_str(m, "sha256") ? rp_str(m, "sha256") : rp_str(m, "sha256sums"));
        td(f, rp_str(m, "license"));
        fputs("<td>", f);
        h(f, origin);
        if (*rp_str(o, "source")) {
            fputs("<br><code>", f);
            h(f, rp_str(o, "source"));
            fputs("</code>", f);
        }
        fputs("</td>", f);
        td(f, rp_str(m, "format"));
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<h3>Runtimes</h3><table><tr><th>Name</th><th>Kind</th><th>Version</th>"
          "<th>Licence</th><th>Listen</th><th>Pin</th></tr>\n", f);
    json_array_foreach(json_object_get(man, "runtimes"), i, m) {
        fputs("<tr>", f);
        td(f, rp_str(m, "name"));
        td(f, rp_str(m, "kind"));
        td(f, rp_str(m, "version"));
        td(f, rp_str(m, "license"));
        td_code(f, rp_str(m, "listen"));
        td_code(f, *rp_str(m, "sha256") ? rp_str(m, "sha256") : rp_str(m, "sha256sums"));
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<h3>Content pins</h3><table><tr><th>Subject</th><th>Path</th><th>Pin"
          "</th><th>Status</th><th>SHA-256</th></tr>\n", f);
    json_array_foreach(json_object_get(a, "pins"), i, p) {
        const json_t *pin = json_object_get(p, "pin");
        fputs("<tr>", f);
        td(f, rp_str(p, "subject"));
        td_code(f, rp_str(p, "path"));
        td_code(f, json_is_string(pin) ? json_string_value(pin) : rp_str(pin, "file"));
        fprintf(f, "<td class=\"%s\">", !strcmp(rp_str(p, "status"), "ok") ? "" : "lv-error");
        h(f, rp_str(p, "status"));
        fputs("</td>", f);
        td_code(f, rp_str(p, "sha256"));
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    hashes_table(f, a);
    fputs("<h3>Memory plan</h3>\n", f);
    if (!json_is_object(plan)) {
        fputs("<p class=\"muted\">No memory plan in this analysis.</p>\n", f);
    } else {
        char *txt = json_dumps(plan, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
        plan_table(f, plan);
        fputs("<details><summary>The plan as data</summary><pre>", f);
        h(f, txt);
        fputs("</pre></details>\n", f);
        free(txt);
    }
    launch_table(f, json_object_get(a, "launch"));
}

/* How each runtime starts (analysis.launch, docs/runtimes.md): the command
 * line and environment derived from the plan, and where each value came from. */
static void launch_table(FILE *f, const json_t *launch)
{
    size_t i, j;
    const json_t *s, *d;
    fputs("<h3>Launch</h3>\n", f);
    if (!json_is_array(launch) || json_array_size(launch) == 0) {
        fputs("<p class=\"muted\">No runtime serves a model.</p>\n", f);
        return;
    }
    json_array_foreach(launch, i, s) {
        char *line = ap_launch_command_line(s);
        const char *k;
        const json_t *v;
        fputs("<table>\n", f);
        kv_row(f, "Runtime", rp_str(s, "runtime"));
        kv_row(f, "Kind", rp_str(s, "kind"));
        kv_row(f, "Listen", rp_str(s, "listen"));
        kv_row(f, "Health", rp_str(s, "health"));
        fputs("<tr><th>Command</th><td><code>", f);
        h(f, line);
        fputs("</code></td></tr>\n<tr><th>Environment</th><td><code>", f);
        json_object_foreach((json_t *)json_object_get(s, "env"), k, v) {
            h(f, k);
            fputs("=", f);
            h(f, json_string_value(v));
            fputs("<br>", f);
        }
        fputs("</code></td></tr>\n</table>\n<table><tr><th>Flag or variable</th><th>Value</th>"
              "<th>Setting</th><th>From</th></tr>\n", f);
        json_array_foreach(json_object_get(s, "derived"), j, d) {
            fputs("<tr>", f);
            td_code(f, *rp_str(d, "flag") ? rp_str(d, "flag") : rp_str(d, "env"));
            td_code(f, rp_str(d, "value"));
            td(f, rp_str(d, "setting"));
            td(f, rp_str(d, "source"));
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
        free(line);
    }
}

int rp_write_html(FILE *f, const json_t *a)
{
    const json_t *man = json_object_get(a, "manifest"), *md = json_object_get(man, "metadata");
    const json_t *t = json_object_get(man, "target"), *s = json_object_get(a, "summary");
    const json_t *gpu = json_object_get(t, "gpu");
    int passed = json_is_true(json_object_get(s, "passed"));
    json_t *rules = rp_rules(a);
    char buf[256];
    if (!rules)
        return -1;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "style-src 'unsafe-inline'\">\n<meta name=\"viewport\" content=\"width=device-width\">\n"
          "<title>airpack audit report: ", f);
    h(f, rp_str(md, "name"));
    fprintf(f, "</title>\n<style>%s</style></head><body>\n<h1>Compliance audit report: ", css);
    h(f, rp_str(md, "name"));
    fputs(" ", f);
    h(f, rp_str(md, "version"));
    fprintf(f, "</h1>\n<p><span class=\"verdict %s\">%s</span> <span class=\"muted\">"
               "generated by airpack ", passed ? "pass" : "fail", passed ? "PASSED" : "FAILED");
    h(f, rp_str(json_object_get(a, "tool"), "version"));
    fputs(" from <code>", f);
    h(f, rp_str(a, "manifest_file"));
    fputs("</code></span></p>\n<div class=\"cards\">", f);
    fprintf(f, "<div class=\"card\"><b>%lld</b>errors</div><div class=\"card\"><b>%lld</b>"
               "warnings</div><div class=\"card\"><b>%lld</b>notes</div><div class=\"card\">"
               "<b>%lld</b>waived</div><div class=\"card\"><b>%zu</b>rules checked</div></div>\n",
            rp_int(s, "errors"), rp_int(s, "warnings"), rp_int(s, "notes"), rp_int(s, "waived"),
            json_array_size(rules));
    fputs("<h2>Scope</h2><table>\n", f);
    kv_row(f, "Deployment", rp_str(md, "name"));
    kv_row(f, "Version", rp_str(md, "version"));
    snprintf(buf, sizeof(buf), "%lld", rp_int(md, "sequence"));
    kv_row(f, "Sequence", buf);
    kv_row(f, "Description", rp_str(md, "description"));
    kv_row(f, "Owner", rp_str(md, "owner"));
    kv_row(f, "Expires", rp_str(md, "expires"));
    kv_row(f, "Site", rp_str(t, "site"));
    kv_row(f, "Region", rp_str(t, "region"));
    if (json_is_object(gpu)) {
        snprintf(buf, sizeof(buf), "%lld x %s", rp_int(gpu, "count"),
                 *rp_str(gpu, "model") ? rp_str(gpu, "model") : "GPU");
        kv_row(f, "GPUs", buf);
    }
    kv_row(f, "Generated", rp_str(a, "generated"));
    fputs("</table>\n<h2>Findings</h2>\n", f);
    findings_table(f, a);
    fputs("<h2>Controls</h2>\n", f);
    controls_table(f, a, rules);
    fputs("<h2>Policies and rules checked</h2>\n", f);
    rules_table(f, a, rules);
    if (json_array_size(json_object_get(a, "site_checks"))) {
        /* audit of an installed release: GPU preflight and activation */
        size_t i;
        const json_t *c;
        fputs("<h2>At the site</h2><table>\n", f);
        json_array_foreach(json_object_get(a, "site_checks"), i, c)
            kv_row(f, rp_str(c, "check"), rp_str(c, "result"));
        fputs("</table>\n", f);
    }
    evidence(f, a);
    fputs("<p class=\"muted\">This report is self-contained: it loads nothing from the "
          "network.</p>\n</body></html>\n", f);
    json_decref(rules);
    return ferror(f) ? -1 : 0;
}
