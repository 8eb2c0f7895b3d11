/*
 * report.c - text, JSON, SARIF and Markdown renderers of the analysis
 * document, and the format dispatch (see report.h). The HTML audit report
 * is in report_html.c; helpers both share are in report_int.h.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "report_int.h"

const char *rp_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

long long rp_int(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

int rp_waived(const json_t *f)
{
    return json_is_true(json_object_get(f, "waived"));
}

json_t *rp_rules(const json_t *analysis)
{
    json_t *rules = json_array(), *seen = json_object();
    const json_t *pols = json_object_get(analysis, "policies"), *pol, *chk, *f;
    size_t i, j;
    if (!rules || !seen)
        goto fail;
    json_array_foreach(pols, i, pol) {
        json_array_foreach(json_object_get(pol, "checks"), j, chk) {
            const char *id = rp_str(chk, "id");
            json_t *r;
            if (!*id || json_object_get(seen, id))
                continue;
            json_t *ctl = json_object_get(chk, "controls");
            r = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "id", id, "title", rp_str(chk, "title"),
                          "level", rp_str(chk, "severity"), "controls",
                          ctl ? json_deep_copy(ctl) : json_array(),
                          "rationale", rp_str(chk, "rationale"), "pack", rp_str(pol, "name"));
            if (!r || json_array_append_new(rules, r) || json_object_set_new(seen, id, json_true()))
                goto fail;
        }
    }
    /* rules known only from their findings (built-in checks) */
    json_array_foreach(json_object_get(analysis, "findings"), i, f) {
        const char *id = rp_str(f, "rule");
        const json_t *ctl = json_object_get(f, "controls");
        json_t *r, *c = ctl ? json_deep_copy(ctl) : json_array();
        if (!*id || json_object_get(seen, id)) {
            json_decref(c);
            continue;
        }
        r = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "id", id, "title",
                      *rp_str(f, "title") ? rp_str(f, "title") : id, "level", rp_str(f, "level"),
                      "controls", c, "rationale", rp_str(f, "rationale"), "pack",
                      *rp_str(f, "pack") ? rp_str(f, "pack") : "airpack");
        if (!r || json_array_append_new(rules, r) || json_object_set_new(seen, id, json_true()))
            goto fail;
    }
    json_decref(seen);
    return rules;
fail:
    json_decref(rules);
    json_decref(seen);
    return NULL;
}

/* Counts of unwaived and waived findings of a rule. */
void rp_rule_counts(const json_t *analysis, const char *id, size_t *open, size_t *waived)
{
    size_t i;
    const json_t *f;
    *open = *waived = 0;
    json_array_foreach(json_object_get(analysis, "findings"), i, f) {
        if (strcmp(rp_str(f, "rule"), id) != 0)
            continue;
        if (rp_waived(f))
            (*waived)++;
        else
            (*open)++;
    }
}

/* ------------------------------------------------------------------ text */

static const char *const levels[] = {"error", "warning", "note"};

static void text_location(FILE *f, const json_t *fd)
{
    const json_t *loc = json_object_get(fd, "location");
    if (loc && rp_int(loc, "line") > 0)
        fprintf(f, "%s:%lld:%lld: ", rp_str(loc, "file"), rp_int(loc, "line"),
                rp_int(loc, "column"));
    else if (loc)
        fprintf(f, "%s: ", rp_str(loc, "file"));
}

static void text_controls(FILE *f, const json_t *fd)
{
    const json_t *ctl = json_object_get(fd, "controls"), *c;
    size_t i;
    if (json_array_size(ctl) == 0)
        return;
    fputs("    controls: ", f);
    json_array_foreach(ctl, i, c) fprintf(f, "%s%s", i ? ", " : "", json_string_value(c));
    fputc('\n', f);
}

/* One line for the pins and a few for the memory plan, when the document
 * has them (a check's analysis does; an audit's evidence may not). */
static void text_pins_plan(FILE *f, const json_t *a)
{
    const json_t *pins = json_object_get(a, "pins"), *p, *plan = json_object_get(a, "plan"), *mm;
    size_t i, ok = 0, unpinned = 0;

    if (json_is_array(pins)) {
        json_array_foreach(pins, i, p) {
            ok += !strcmp(rp_str(p, "status"), "ok");
            unpinned += !strcmp(rp_str(p, "status"), "unpinned");
        }
        fprintf(f, "pins: %zu checked, %zu ok, %zu unpinned\n", json_array_size(pins), ok,
                unpinned);
        /* where store inputs came from, and files include/exclude left out */
        json_array_foreach(pins, i, p) {
            const json_t *src = json_object_get(p, "source");
            const char *kind = rp_str(src, "kind");
            if (!src || !*kind)
                continue;
            if (!strcmp(kind, "hf-cache"))
                fprintf(f, "  %s: Hugging Face cache '%s', revision %s\n", rp_str(p, "subject"),
                        rp_str(src, "repo"), rp_str(src, "revision"));
            else if (!strcmp(kind, "ollama"))
                fprintf(f, "  %s: Ollama model '%s', %s\n", rp_str(p, "subject"),
                        rp_str(src, "name"), rp_str(src, "model_digest"));
            else
                fprintf(f, "  %s: %s image, %s\n", rp_str(p, "subject"), kind,
                        rp_str(src, "digest"));
        }
        json_array_foreach(pins, i, p) {
            const json_t *ex = json_object_get(p, "excluded"), *e;
            size_t k;
            json_array_foreach(ex, k, e)
                fprintf(f, "  %s: left out '%s' (%lld bytes, pattern '%s')\n", rp_str(p, "subject"),
                        rp_str(e, "path"), rp_int(e, "size"), rp_str(e, "pattern"));
        }
    }
    if (!json_is_object(plan))
        return;
    const json_t *gpu = json_object_get(plan, "gpu");
    fprintf(f, "plan: %s on %lld x %s (%.2f GiB each, utilization %.2f)\n",
            json_is_true(json_object_get(plan, "fits")) ? "fits" : "DOES NOT FIT",
            rp_int(gpu, "count"), json_is_string(json_object_get(gpu, "label")) ? rp_str(gpu, "label") : "GPU",
            json_number_value(json_object_get(gpu, "memory_gib")),
            json_number_value(json_object_get(gpu, "memory_utilization")));
    json_array_foreach(json_object_get(plan, "models"), i, mm) {
        if (!json_is_true(json_object_get(mm, "planned")))
            continue;
        fprintf(f, "  model '%s': %.2f GiB per GPU, headroom %.2f GiB, largest context %lld, "
                   "largest concurrency %lld%s%s%s%s%s\n",
                rp_str(mm, "name"), (double)rp_int(mm, "total_per_gpu_bytes") / (1024.0 * 1024 * 1024),
                (double)rp_int(mm, "headroom_bytes") / (1024.0 * 1024 * 1024),
                rp_int(mm, "max_context"), rp_int(mm, "max_concurrency"),
                json_is_string(json_object_get(mm, "verdict")) ? "; " : "",
                json_is_string(json_object_get(mm, "verdict")) ? rp_str(mm, "verdict") : "",
                json_is_string(json_object_get(mm, "profile")) ? " (" : "",
                json_is_string(json_object_get(mm, "profile")) ? rp_str(mm, "profile") : "",
                json_is_string(json_object_get(mm, "profile")) ? ")" : "");
    }
}

static int write_text(FILE *f, const json_t *a)
{
    const json_t *man = json_object_get(a, "manifest");
    const json_t *md = json_object_get(man, "metadata"), *s = json_object_get(a, "summary");
    const json_t *findings = json_object_get(a, "findings"), *fd, *pol;
    size_t i;
    fprintf(f, "manifest '%s': deployment '%s' version %s sequence %lld\n",
            rp_str(a, "manifest_file"), rp_str(md, "name"), rp_str(md, "version"),
            rp_int(md, "sequence"));
    text_pins_plan(f, a);
    json_array_foreach(json_object_get(a, "policies"), i, pol)
        fprintf(f, "policy '%s' (%s): %lld rules\n", rp_str(pol, "name"), rp_str(pol, "file"),
                rp_int(pol, "rules"));
    for (size_t l = 0; l < AP_ARRAY_LEN_RP(levels); l++) {
        size_t n = 0;
        json_array_foreach(findings, i, fd)
            n += !rp_waived(fd) && !strcmp(rp_str(fd, "level"), levels[l]);
        if (!n)
            continue;
        fprintf(f, "\n%ss (%zu):\n", levels[l], n);
        json_array_foreach(findings, i, fd) {
            if (rp_waived(fd) || strcmp(rp_str(fd, "level"), levels[l]) != 0)
                continue;
            fputs("  ", f);
            text_location(f, fd);
            fprintf(f, "%s: [%s] %s\n", levels[l], rp_str(fd, "rule"), rp_str(fd, "message"));
            text_controls(f, fd);
            if (json_object_get(fd, "waiver_expired"))
                fprintf(f, "    waiver expired on %s\n",
                        rp_str(json_object_get(fd, "waiver_expired"), "expires"));
        }
    }
    {
        size_t n = 0;
        json_array_foreach(findings, i, fd) n += rp_waived(fd);
        if (n)
            fprintf(f, "\nwaived (%zu):\n", n);
        json_array_foreach(findings, i, fd) {
            const json_t *w = json_object_get(fd, "waiver");
            if (!rp_waived(fd))
                continue;
            fputs("  ", f);
            text_location(f, fd);
            fprintf(f, "%s (waived): [%s] %s\n", rp_str(fd, "level"), rp_str(fd, "rule"),
                    rp_str(fd, "message"));
            fprintf(f, "    waived by %s until %s: %s\n", rp_str(w, "approver"),
                    rp_str(w, "expires"), rp_str(w, "justification"));
        }
    }
    fprintf(f, "\n%s: %lld errors, %lld warnings, %lld notes, %lld waived\n",
            json_is_true(json_object_get(s, "passed")) ? "passed" : "FAILED",
            rp_int(s, "errors"), rp_int(s, "warnings"), rp_int(s, "notes"), rp_int(s, "waived"));
    return ferror(f) ? -1 : 0;
}

/* ----------------------------------------------------------------- SARIF */

/* A path as a URI reference: unreserved characters and '/' kept, every
 * other byte percent-encoded (spaces, '#', '?', non-ASCII). */
static json_t *uri_ref(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path);
    char *buf = malloc(n * 3 + 1), *o = buf;
    json_t *j;
    if (!buf)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~' || *p == '/') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    j = json_string(buf);
    free(buf);
    return j;
}

static json_t *sarif_location(const json_t *fd)
{
    const json_t *loc = json_object_get(fd, "location");
    const char *path = rp_str(fd, "path");
    json_t *l = json_object();
    if (!l)
        return NULL;
    if (loc && *rp_str(loc, "file")) {
        json_t *phys = json_pack("{s:{s:o}}", "artifactLocation", "uri", uri_ref(rp_str(loc, "file")));
        if (phys && rp_int(loc, "line") > 0) {
            json_t *reg = json_pack("{s:I}", "startLine", (json_int_t)rp_int(loc, "line"));
            if (reg && rp_int(loc, "column") > 0)
                json_object_set_new(reg, "startColumn",
                                    json_integer((json_int_t)rp_int(loc, "column")));
            json_object_set_new(phys, "region", reg);
        }
        json_object_set_new(l, "physicalLocation", phys);
    }
    if (!*path)
        path = rp_str(fd, "subject");
    if (*path)
        json_object_set_new(l, "logicalLocations",
                            json_pack("[{s:s,s:s}]", "fullyQualifiedName", path, "kind",
                                      "member"));
    return l;
}

json_t *ap_report_sarif(const json_t *a)
{
    json_t *rules = rp_rules(a), *srules = json_array(), *results = json_array(), *log = NULL;
    const json_t *s = json_object_get(a, "summary"), *r, *fd;
    const char *version = rp_str(json_object_get(a, "tool"), "version");
    size_t i;
    if (!rules || !srules || !results)
        goto done;
    json_array_foreach(rules, i, r) {
        json_t *sr = json_pack("{s:s,s:s,s:{s:s},s:{s:s},s:{s:s},s:{s:O,s:s}}", "id",
                               rp_str(r, "id"), "name", rp_str(r, "id"), "shortDescription",
                               "text", rp_str(r, "title"), "fullDescription", "text",
                               *rp_str(r, "rationale") ? rp_str(r, "rationale")
                                                       : rp_str(r, "title"),
                               "defaultConfiguration", "level",
                               *rp_str(r, "level") ? rp_str(r, "level") : "warning",
                               "properties", "tags", json_object_get(r, "controls"), "pack",
                               rp_str(r, "pack"));
        if (!sr || json_array_append_new(srules, sr))
            goto done;
    }
    json_array_foreach(json_object_get(a, "findings"), i, fd) {
        size_t idx = 0, k;
        const json_t *rr;
        const char *lvl = rp_str(fd, "level");
        json_t *res, *locs = json_array(), *l = sarif_location(fd);
        json_array_foreach(rules, k, rr)
            if (!strcmp(rp_str(rr, "id"), rp_str(fd, "rule")))
                idx = k;
        if (!locs || !l || json_array_append_new(locs, l)) {
            json_decref(locs);
            goto done;
        }
        const json_t *fctl = json_object_get(fd, "controls");
        res = json_pack("{s:s,s:I,s:s,s:{s:s},s:o,s:{s:s,s:o}}", "ruleId", rp_str(fd, "rule"),
                        "ruleIndex", (json_int_t)idx, "level",
                        (!strcmp(lvl, "error") || !strcmp(lvl, "warning")) ? lvl : "note",
                        "message", "text", rp_str(fd, "message"), "locations", locs,
                        "properties", "subject", rp_str(fd, "subject"), "controls",
                        fctl ? json_deep_copy(fctl) : json_array());
        if (!res)
            goto done;
        if (rp_waived(fd)) {
            const json_t *w = json_object_get(fd, "waiver");
            char just[2048];
            snprintf(just, sizeof(just), "%s (approved by %s, expires %s)",
                     rp_str(w, "justification"), rp_str(w, "approver"), rp_str(w, "expires"));
            json_object_set_new(res, "suppressions",
                                json_pack("[{s:s,s:s,s:s}]", "kind", "external", "status",
                                          "accepted", "justification", just));
        }
        if (json_array_append_new(results, res))
            goto done;
    }
    log = json_pack("{s:s,s:s,s:[{s:{s:{s:s,s:s,s:O}},s:[{s:b,s:I,s:{s:o}}],s:O,"
                    "s:{s:s}}]}",
                    "$schema", "https://json.schemastore.org/sarif-2.1.0.json", "version", "2.1.0",
                    "runs", "tool", "driver", "name", "airpack", "version", *version ? version : "0",
                    "rules", srules,
                    "invocations", "executionSuccessful", 1, "exitCode",
                    (json_int_t)(json_is_true(json_object_get(s, "passed")) ? 0 : 1),
                    "properties", "summary", s ? json_deep_copy(s) : json_object(),
                    "results", results, "properties", "manifest", rp_str(a, "manifest_file"));
done:
    json_decref(rules);
    json_decref(srules);
    json_decref(results);
    return log;
}

/* -------------------------------------------------------------- Markdown */

void rp_md(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '|': fputs("\\|", f); break;
        case '\\': case '`': case '*': case '_': case '[': case ']': case '#': case '!':
            fputc('\\', f);
            fputc(*s, f);
            break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '\n': case '\r': case '\t': fputc(' ', f); break;
        default:
            if ((unsigned char)*s >= 0x20 && *s != 0x7f)
                fputc(*s, f);
        }
    }
}

static void md_controls(FILE *f, const json_t *ctl)
{
    const json_t *c;
    size_t i;
    json_array_foreach(ctl, i, c) {
        if (i)
            fputs(", ", f);
        rp_md(f, json_string_value(c));
    }
}

static int write_markdown(FILE *f, const json_t *a)
{
    const json_t *man = json_object_get(a, "manifest"), *md = json_object_get(man, "metadata");
    const json_t *s = json_object_get(a, "summary"), *fd, *r, *p;
    json_t *rules = rp_rules(a);
    size_t i;
    if (!rules)
        return -1;
    fputs("# airpack compliance report: ", f);
    rp_md(f, rp_str(md, "name"));
    fputs(" ", f);
    rp_md(f, rp_str(md, "version"));
    fprintf(f, "\n\n**Result: %s** — %lld errors, %lld warnings, %lld notes, %lld waived\n\n",
            json_is_true(json_object_get(s, "passed")) ? "PASSED" : "FAILED", rp_int(s, "errors"),
            rp_int(s, "warnings"), rp_int(s, "notes"), rp_int(s, "waived"));
    fputs("| | |\n| --- | --- |\n| Manifest | ", f);
    rp_md(f, rp_str(a, "manifest_file"));
    fprintf(f, " |\n| Sequence | %lld |\n| Site | ", rp_int(md, "sequence"));
    rp_md(f, rp_str(json_object_get(man, "target"), "site"));
    fputs(" |\n| Region | ", f);
    rp_md(f, rp_str(json_object_get(man, "target"), "region"));
    fputs(" |\n| Tool | airpack ", f);
    rp_md(f, rp_str(json_object_get(a, "tool"), "version"));
    fputs(" |\n\n## Findings\n\n", f);
    if (json_array_size(json_object_get(a, "findings")) == 0)
        fputs("No findings.\n", f);
    else
        fputs("| Level | Rule | Location | Message | Controls | Status |\n"
              "| --- | --- | --- | --- | --- | --- |\n", f);
    for (size_t l = 0; l < AP_ARRAY_LEN_RP(levels); l++) {
        json_array_foreach(json_object_get(a, "findings"), i, fd) {
            const json_t *loc = json_object_get(fd, "location");
            if (strcmp(rp_str(fd, "level"), levels[l]) != 0)
                continue;
            fprintf(f, "| %s | ", levels[l]);
            rp_md(f, rp_str(fd, "rule"));
            fputs(" | ", f);
            rp_md(f, rp_str(loc, "file"));
            if (rp_int(loc, "line") > 0)
                fprintf(f, ":%lld:%lld", rp_int(loc, "line"), rp_int(loc, "column"));
            fputs(" | ", f);
            rp_md(f, rp_str(fd, "message"));
            fputs(" | ", f);
            md_controls(f, json_object_get(fd, "controls"));
            if (rp_waived(fd)) {
                const json_t *w = json_object_get(fd, "waiver");
                fputs(" | waived by ", f);
                rp_md(f, rp_str(w, "approver"));
                fputs(" until ", f);
                rp_md(f, rp_str(w, "expires"));
                fputs(": ", f);
                rp_md(f, rp_str(w, "justification"));
                fputs(" |\n", f);
            } else if (json_object_get(fd, "waiver_expired")) {
                fputs(" | open (waiver expired ", f);
                rp_md(f, rp_str(json_object_get(fd, "waiver_expired"), "expires"));
                fputs(") |\n", f);
            } else {
                fputs(" | open |\n", f);
            }
        }
    }
    fputs("\n## Rules checked\n\n| Rule | Pack | Severity | Title | Controls | Result |\n"
          "| --- | --- | --- | --- | --- | --- |\n", f);
    json_array_foreach(rules, i, r) {
        size_t open, waived;
        rp_rule_counts(a, rp_str(r, "id"), &open, &waived);
        fputs("| ", f);
        rp_md(f, rp_str(r, "id"));
        fputs(" | ", f);
        rp_md(f, rp_str(r, "pack"));
        fputs(" | ", f);
        rp_md(f, rp_str(r, "level"));
        fputs(" | ", f);
        rp_md(f, rp_str(r, "title"));
        fputs(" | ", f);
        md_controls(f, json_object_get(r, "controls"));
        if (open)
            fprintf(f, " | fail (%zu) |\n", open);
        else if (waived)
            fprintf(f, " | waived (%zu) |\n", waived);
        else
            fputs(" | pass |\n", f);
    }
    fputs("\n## Pins\n\n| Subject | Path | Status |\n| --- | --- | --- |\n", f);
    json_array_foreach(json_object_get(a, "pins"), i, p) {
        fputs("| ", f);
        rp_md(f, rp_str(p, "subject"));
        fputs(" | ", f);
        rp_md(f, rp_str(p, "path"));
        fputs(" | ", f);
        rp_md(f, rp_str(p, "status"));
        fputs(" |\n", f);
    }
    if (json_array_size(json_object_get(a, "site_checks"))) {
        /* audit of an installed release: GPU preflight and activation */
        fputs("\n## At the site\n\n| Check | Result |\n| --- | --- |\n", f);
        json_array_foreach(json_object_get(a, "site_checks"), i, p) {
            fputs("| ", f);
            rp_md(f, rp_str(p, "check"));
            fputs(" | ", f);
            rp_md(f, rp_str(p, "result"));
            fputs(" |\n", f);
        }
    }
    json_decref(rules);
    return ferror(f) ? -1 : 0;
}

/* ------------------------------------------------------------- dispatch */

int ap_report_write(FILE *f, const json_t *analysis, const char *format, ap_error *err)
{
    int rc = 0;
    if (!format || !json_is_object(analysis))
        return ap_error_set(err, AP_ERR_INPUT, "no analysis to report");
    if (!strcmp(format, "text")) {
        rc = write_text(f, analysis);
    } else if (!strcmp(format, "json")) {
        rc = json_dumpf(analysis, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) != 0 ||
             fputc('\n', f) == EOF;
    } else if (!strcmp(format, "sarif")) {
        json_t *s = ap_report_sarif(analysis);
        if (!s)
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        rc = json_dumpf(s, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) != 0 || fputc('\n', f) == EOF;
        json_decref(s);
    } else if (!strcmp(format, "markdown") || !strcmp(format, "md")) {
        rc = write_markdown(f, analysis);
    } else if (!strcmp(format, "html")) {
        rc = rp_write_html(f, analysis);
    } else {
        return ap_error_set(err, AP_ERR_INPUT, "unknown report format '%s'", format);
    }
    if (rc || ferror(f))
        return ap_error_set(err, AP_ERR_IO, "cannot write the %s report", format);
    return AP_OK;
}
