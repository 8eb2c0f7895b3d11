/*
 * input.c - the input walk shared by check and build (see source.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../model/model.h"
#include "../util.h"
#include "../walk.h"
#include "source.h"

int ap_input_add(ap_input *in, const char *rel, const char *src, int follow, const char *digest,
                 uint64_t size, ap_error *err)
{
    ap_input_file *f;
    if (in->n == in->cap) {
        size_t nc = in->cap ? in->cap * 2 : 16;
        ap_input_file *nf = realloc(in->files, nc * sizeof *nf);
        if (!nf)
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        in->files = nf;
        in->cap = nc;
    }
    f = &in->files[in->n];
    memset(f, 0, sizeof *f);
    f->rel = strdup(rel);
    f->src = strdup(src);
    if (!f->rel || !f->src) {
        free(f->rel);
        free(f->src);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    f->follow = follow;
    if (digest)
        snprintf(f->digest, sizeof f->digest, "%s", digest);
    f->size = size;
    in->n++;
    return AP_OK;
}

int ap_input_skip_add(ap_input *in, const char *rel, const char *pattern, uint64_t size,
                      ap_error *err)
{
    ap_input_skip *s;
    if (in->n_skipped == in->cap_skipped) {
        size_t nc = in->cap_skipped ? in->cap_skipped * 2 : 8;
        ap_input_skip *ns = realloc(in->skipped, nc * sizeof *ns);
        if (!ns)
            return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
        in->skipped = ns;
        in->cap_skipped = nc;
    }
    s = &in->skipped[in->n_skipped];
    s->rel = strdup(rel);
    s->pattern = strdup(pattern);
    s->size = size;
    if (!s->rel || !s->pattern) {
        free(s->rel);
        free(s->pattern);
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    }
    in->n_skipped++;
    return AP_OK;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const ap_input_file *)a)->rel, ((const ap_input_file *)b)->rel);
}

void ap_input_sort(ap_input *in)
{
    if (in->n > 1)
        qsort(in->files, in->n, sizeof *in->files, cmp_file);
}

const ap_input_file *ap_input_find(const ap_input *in, const char *rel)
{
    ap_input_file key;
    key.rel = (char *)rel;
    if (!in->n)
        return NULL;
    return bsearch(&key, in->files, in->n, sizeof *in->files, cmp_file);
}

void ap_input_release(ap_input *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < in->n; i++) {
        free(in->files[i].rel);
        free(in->files[i].src);
    }
    for (size_t i = 0; i < in->n_skipped; i++) {
        free(in->skipped[i].rel);
        free(in->skipped[i].pattern);
    }
    free(in->files);
    free(in->skipped);
    json_decref(in->source);
    free(in->facts_path);
    memset(in, 0, sizeof *in);
}

int ap_source_is_ref(const char *ref)
{
    return ref && (strncmp(ref, "hf://", 5) == 0 || strncmp(ref, "ollama://", 9) == 0);
}

/* A plain file or folder. */
static int walk_plain(const ap_mpath *p, ap_input *in, ap_error *err)
{
    struct stat st;
    ap_filelist fl = {0};
    int rc = AP_OK;

    if (stat(p->abs, &st) != 0)
        return ap_error_errno(err, AP_ERR_INPUT, errno, "cannot read", p->abs);
    if (!S_ISDIR(st.st_mode)) {
        const char *base = strrchr(p->abs, '/');
        if (!S_ISREG(st.st_mode))
            return ap_error_set_at(err, AP_ERR_INPUT, p->abs, 0, 0, "not a regular file");
        in->kind = AP_INPUT_FILE;
        return ap_input_add(in, base ? base + 1 : p->abs, p->abs, 1, NULL, (uint64_t)st.st_size,
                            err);
    }
    in->kind = AP_INPUT_FOLDER;
    if ((rc = ap_walk_files(p->abs, &fl, err)))
        return rc;
    for (size_t i = 0; i < fl.n && rc == AP_OK; i++) {
        char *abs = ap_path_join(p->abs, fl.paths[i]);
        const char *why;
        if (!abs) {
            rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
            break;
        }
        if (lstat(abs, &st) != 0)
            rc = ap_error_errno(err, AP_ERR_IO, errno, "cannot stat", abs);
        else if (!ap_input_filter(p, fl.paths[i], &why))
            rc = ap_input_skip_add(in, fl.paths[i], why, (uint64_t)st.st_size, err);
        else
            rc = ap_input_add(in, fl.paths[i], abs, 0, NULL, (uint64_t)st.st_size, err);
        free(abs);
    }
    ap_filelist_release(&fl);
    return rc;
}

int ap_input_walk(const ap_mpath *p, int flags, ap_input *out, ap_error *err)
{
    int rc, hf;
    char *repo = NULL, *rev = NULL;

    memset(out, 0, sizeof *out);
    if (!p->path || !p->abs)
        return AP_OK;
    hf = strncmp(p->path, "hf://", 5) == 0     ? 1
         : strncmp(p->path, "ollama://", 9) == 0 ? 0
                                                 : ap_hf_locate_real(p->abs, &repo, &rev);
    free(repo);
    free(rev);
    if (hf < 0)
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (strncmp(p->path, "ollama://", 9) == 0)
        rc = ap_ollama_walk(p, out, err);
    else if (hf)
        rc = ap_hf_walk(p, out, err);
    else if ((flags & AP_WALK_RUNTIME) && ap_image_detect(p->abs))
        rc = ap_image_walk(p, !(flags & AP_WALK_LIST_ONLY), out, err);
    else
        rc = walk_plain(p, out, err);
    if (rc == AP_OK && !out->facts_path && !(out->facts_path = strdup(p->abs)))
        rc = ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    if (rc) {
        ap_input_release(out);
        return rc;
    }
    ap_input_sort(out);
    return AP_OK;
}

int ap_source_resolve(const char *ref, char **abs, int *is_dir, ap_error *err)
{
    *abs = NULL;
    if (strncmp(ref, "hf://", 5) == 0) {
        *is_dir = 1;
        return ap_hf_resolve(ref, abs, err);
    }
    if (strncmp(ref, "ollama://", 9) == 0) {
        *is_dir = 1;
        return ap_ollama_resolve(ref, abs, err);
    }
    return AP_OK;
}

/* Files the manifest's include/exclude leave out are not read either. */
static int facts_skip(const char *name, void *ctx)
{
    const char *why;
    return !ap_input_filter(ctx, name, &why);
}

int ap_source_facts_load(const ap_mmodel *mm, struct ap_model_facts **out, ap_error *err)
{
    const ap_mpath *mp = &mm->src;
    if (mp->n_include || mp->n_exclude)
        return ap_model_facts_load_filtered(mp->abs, mm->format, facts_skip, (void *)mp, out, err);
    return ap_model_facts_load(mp->abs, mm->format, out, err);
}
