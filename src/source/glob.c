/*
 * glob.c - include/exclude patterns: fnmatch(3) per path segment, with
 * '**' for any number of folders (see source.h).
 */
#include <fnmatch.h>
#include <string.h>

#include "source.h"

/* Match pattern segments [p, pe) against path segments [s, se). */
static int match_segs(const char *p, const char *s)
{
    const char *pe, *se;
    char pseg[1024], sseg[1024];
    size_t pl, sl;

    if (!*p)
        return !*s;
    pe = strchr(p, '/');
    pl = pe ? (size_t)(pe - p) : strlen(p);
    if (pl == 2 && p[0] == '*' && p[1] == '*') {
        const char *rest = pe ? pe + 1 : "";
        /* zero segments, then one more at a time */
        for (;;) {
            if (match_segs(rest, s))
                return 1;
            if (!*rest && *s)
                return 1; /* a trailing '**' takes everything left */
            if (!*s)
                return 0;
            se = strchr(s, '/');
            s = se ? se + 1 : s + strlen(s);
        }
    }
    if (!*s)
        return 0;
    se = strchr(s, '/');
    sl = se ? (size_t)(se - s) : strlen(s);
    if (pl >= sizeof pseg || sl >= sizeof sseg)
        return 0;
    memcpy(pseg, p, pl);
    pseg[pl] = '\0';
    memcpy(sseg, s, sl);
    sseg[sl] = '\0';
    if (fnmatch(pseg, sseg, 0) != 0)
        return 0;
    if (!pe)
        return !se;           /* the pattern ends: so must the path */
    if (!se)
        return 0;             /* more pattern than path */
    return match_segs(pe + 1, se + 1);
}

int ap_glob_match(const char *pattern, const char *path)
{
    char buf[1100];
    size_t l = strlen(pattern);
    if (l == 0 || l > 1024)
        return 0;
    while (pattern[0] == '.' && pattern[1] == '/')
        pattern += 2, l -= 2;
    if (pattern[l - 1] == '/') {
        /* "original/": everything below the folder */
        snprintf(buf, sizeof buf, "%.*s/**", (int)(l - 1), pattern);
        return match_segs(buf, path);
    }
    if (!strchr(pattern, '/')) {
        snprintf(buf, sizeof buf, "**/%s", pattern);
        return match_segs(buf, path);
    }
    return match_segs(pattern, path);
}

int ap_input_filter(const ap_mpath *p, const char *rel, const char **why)
{
    *why = NULL;
    if (p->n_include) {
        int in = 0;
        for (size_t i = 0; i < p->n_include && !in; i++)
            in = ap_glob_match(p->include[i], rel);
        if (!in) {
            *why = "(not included)";
            return 0;
        }
    }
    for (size_t i = 0; i < p->n_exclude; i++)
        if (ap_glob_match(p->exclude[i], rel)) {
            *why = p->exclude[i];
            return 0;
        }
    return 1;
}
