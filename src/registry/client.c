/*
 * client.c - the OCI Distribution API client (client.h) on libcurl.
 */
#include "registry/client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define SMALL_BODY (64u << 10)       /* error bodies, token answers */
#define AUTH_FILE_MAX (1u << 20)
#define URL_MAX 8192

struct ap_reg {
    CURL *c;
    ap_oci_ref ref;
    ap_reg_opts o;
    char base[600];                  /* scheme://host/v2/repo */
    char basic[1024];                /* "user:pass" or "" */
    char authz[8192];                /* current Authorization header value, or "" */
    int token_request;               /* the request goes to the token realm */
    /* the upload in progress */
    char upload_url[URL_MAX];
    char digest[AP_OCI_DIGEST_LEN + 1];
    char *chunk;
    size_t chunk_len;
    uint64_t sent;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc;
static void global_init(void)
{
    g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

const char *ap_reg_host(const ap_reg *r)
{
    return r->ref.host;
}

/* ---- credentials ---- */

static int host_matches(const char *key, const char *host)
{
    const char *k = key;
    size_t n;
    if (strncmp(k, "https://", 8) == 0)
        k += 8;
    else if (strncmp(k, "http://", 7) == 0)
        k += 7;
    n = strcspn(k, "/");
    return n == strlen(host) && strncmp(k, host, n) == 0;
}

/* Credentials for the registry from one auth file: 1 when found. */
static int credentials_from(ap_reg *r, const char *path)
{
    char *buf = NULL;
    size_t len;
    json_t *j, *auths, *v;
    const char *key;
    ap_error e;

    if (ap_read_file(path, AUTH_FILE_MAX, &buf, &len, &e) != AP_OK)
        return 0;
    j = json_loadb(buf, len, 0, NULL);
    free(buf);
    auths = json_object_get(j, "auths");
    json_object_foreach(auths, key, v)
    {
        json_t *a = json_object_get(v, "auth"), *u = json_object_get(v, "username"),
               *p = json_object_get(v, "password");
        if (!host_matches(key, r->ref.host))
            continue;
        if (json_is_string(a)) {
            unsigned char out[768];
            size_t got = 0;
            const char *s = json_string_value(a);
            if (sodium_base642bin(out, sizeof out - 1, s, strlen(s), NULL, &got, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) == 0 &&
                memchr(out, ':', got) && !memchr(out, 0, got)) {
                out[got] = 0;
                snprintf(r->basic, sizeof r->basic, "%s", (char *)out);
                sodium_memzero(out, sizeof out);
                break;
            }
        } else if (json_is_string(u) && json_is_string(p)) {
            snprintf(r->basic, sizeof r->basic, "%s:%s", json_string_value(u),
                     json_string_value(p));
            break;
        }
    }
    json_decref(j);
    return r->basic[0] != 0;
}

/* REGISTRY_AUTH_FILE when set (only it); else the containers-auth.json
 * places ($XDG_RUNTIME_DIR/containers/auth.json,
 * ~/.config/containers/auth.json), then Docker's ($DOCKER_CONFIG/config.json
 * or ~/.docker/config.json): the first that has an entry for the host. */
static void load_credentials(ap_reg *r)
{
    const char *f = getenv("REGISTRY_AUTH_FILE"), *xdg = getenv("XDG_RUNTIME_DIR"),
               *home = getenv("HOME"), *dc = getenv("DOCKER_CONFIG");
    char path[4096];

    if (f && *f) {
        credentials_from(r, f);
        return;
    }
    if (xdg && *xdg) {
        snprintf(path, sizeof path, "%s/containers/auth.json", xdg);
        if (credentials_from(r, path))
            return;
    }
    if (home && *home) {
        snprintf(path, sizeof path, "%s/.config/containers/auth.json", home);
        if (credentials_from(r, path))
            return;
    }
    if (dc && *dc)
        snprintf(path, sizeof path, "%s/config.json", dc);
    else if (home && *home)
        snprintf(path, sizeof path, "%s/.docker/config.json", home);
    else
        return;
    credentials_from(r, path);
}

/* ---- one request ---- */

struct resp {
    ap_reg *r;
    long status;
    char location[URL_MAX];
    char www_auth[2048];
    char content_digest[AP_OCI_DIGEST_LEN + 1];
    char range[64];                  /* Range: of an upload's status */
    /* body to memory (cap) or to a sink when status is 200 */
    char *body;
    size_t body_len, body_cap, body_alloc;
    int (*sink)(void *, const void *, size_t, ap_error *);
    void *sink_ctx;
    uint64_t sink_max, sink_got;
    int over;                        /* body larger than allowed */
    int sink_failed;
    ap_error *err;
};

static size_t on_header(char *b, size_t size, size_t n, void *ctx)
{
    struct resp *rs = ctx;
    size_t len = size * n, k;
    char line[URL_MAX + 64];
    if (len >= sizeof line)
        return len;
    memcpy(line, b, len);
    line[len] = 0;
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        line[--len] = 0;
    if (strncmp(line, "HTTP/", 5) == 0) { /* a new response (after a redirect): reset */
        rs->location[0] = rs->www_auth[0] = rs->content_digest[0] = rs->range[0] = 0;
        return size * n;
    }
    k = strcspn(line, ":");
    if (!line[k])
        return size * n;
    line[k] = 0;
    {
        char *v = line + k + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strcasecmp(line, "location") == 0)
            snprintf(rs->location, sizeof rs->location, "%s", v);
        else if (strcasecmp(line, "www-authenticate") == 0)
            snprintf(rs->www_auth, sizeof rs->www_auth, "%s", v);
        else if (strcasecmp(line, "range") == 0)
            snprintf(rs->range, sizeof rs->range, "%s", v);
        else if (strcasecmp(line, "docker-content-digest") == 0 && strlen(v) <= AP_OCI_DIGEST_LEN)
            snprintf(rs->content_digest, sizeof rs->content_digest, "%s", v);
    }
    return size * n;
}

static size_t on_body(char *b, size_t size, size_t n, void *ctx)
{
    struct resp *rs = ctx;
    size_t len = size * n;
    long code = 0;
    curl_easy_getinfo(rs->r->c, CURLINFO_RESPONSE_CODE, &code);
    if (rs->sink && code == 200) {
        if ((uint64_t)len > rs->sink_max - rs->sink_got) {
            rs->over = 1;
            return 0;
        }
        rs->sink_got += len;
        if (rs->sink(rs->sink_ctx, b, len, rs->err) != AP_OK) {
            rs->sink_failed = 1;
            return 0;
        }
        return len;
    }
    if (rs->body_len + len > rs->body_cap) {
        rs->over = 1;
        return 0;
    }
    if (!rs->body) {
        size_t cap = rs->body_cap < (1u << 20) ? rs->body_cap : (1u << 20);
        /* grow as needed up to body_cap */
        if (cap == 0)
            cap = 1;
        rs->body = malloc(cap + 1);
        if (!rs->body)
            return 0;
        rs->body_len = 0;
        rs->body_alloc = cap;
    }
    if (rs->body_len + len > rs->body_alloc) {
        size_t nc = rs->body_alloc * 2;
        char *nb;
        while (nc < rs->body_len + len)
            nc *= 2;
        if (nc > rs->body_cap)
            nc = rs->body_cap;
        if (!(nb = realloc(rs->body, nc + 1)))
            return 0;
        rs->body = nb;
        rs->body_alloc = nc;
    }
    memcpy(rs->body + rs->body_len, b, len);
    rs->body_len += len;
    rs->body[rs->body_len] = 0;
    return len;
}

struct upload_src {
    const char *buf;
    size_t len, off;
};

static size_t on_read(char *b, size_t size, size_t n, void *ctx)
{
    struct upload_src *u = ctx;
    size_t k = size * n;
    if (k > u->len - u->off)
        k = u->len - u->off;
    memcpy(b, u->buf + u->off, k);
    u->off += k;
    return k;
}

static int challenge_param(const char *h, const char *key, char *out, size_t cap)
{
    const char *p = h;
    size_t kl = strlen(key);
    while ((p = strcasestr(p, key))) {
        if ((p == h || p[-1] == ' ' || p[-1] == ',') && p[kl] == '=' && p[kl + 1] == '"') {
            const char *s = p + kl + 2, *e = strchr(s, '"');
            if (!e || (size_t)(e - s) >= cap)
                return -1;
            memcpy(out, s, (size_t)(e - s));
            out[e - s] = 0;
            return 0;
        }
        p += kl;
    }
    return -1;
}

static int perform(ap_reg *r, const char *method, const char *url, const char *accept,
                   const char *ctype, const char *range, const void *body, size_t body_len,
                   int follow, struct resp *rs, ap_error *err);

/* The URL's authority is the registry's host[:port]. */
static int same_host(const ap_reg *r, const char *url)
{
    const char *p = strstr(url, "://");
    size_t n, hl = strlen(r->ref.host);
    if (!p)
        return 0;
    p += 3;
    n = strcspn(p, "/?#");
    return n == hl && strncmp(p, r->ref.host, n) == 0;
}

static int fetch_token(ap_reg *r, const char *challenge, ap_error *err)
{
    char realm[2048], service[512] = "", scope[1024] = "", url[URL_MAX];
    char *es = NULL, *esc = NULL;
    struct resp rs;
    json_t *j;
    const char *tok;
    int rc;

    if (challenge_param(challenge, "realm", realm, sizeof realm) != 0)
        return ap_error_set(err, AP_ERR_CHECK, "registry '%s': a bearer challenge without a realm",
                            r->ref.host);
    if (strncmp(realm, "https://", 8) != 0 && !(r->o.insecure && strncmp(realm, "http://", 7) == 0))
        return ap_error_set(err, AP_ERR_CHECK,
                            "registry '%s': token realm '%s' is not https (plain HTTP only with "
                            "--insecure-registry)",
                            r->ref.host, realm);
    challenge_param(challenge, "service", service, sizeof service);
    if (challenge_param(challenge, "scope", scope, sizeof scope) != 0)
        snprintf(scope, sizeof scope, "repository:%s:%s", r->ref.repo,
                 r->o.push ? "pull,push" : "pull");
    es = curl_easy_escape(r->c, service, 0);
    esc = curl_easy_escape(r->c, scope, 0);
    snprintf(url, sizeof url, "%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?",
             es ? es : "", esc ? esc : "");
    curl_free(es);
    curl_free(esc);
    memset(&rs, 0, sizeof rs);
    rs.body_cap = SMALL_BODY;
    r->authz[0] = 0;
    if (r->basic[0]) {
        char b64[1500];
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)r->basic, strlen(r->basic),
                          sodium_base64_VARIANT_ORIGINAL);
        snprintf(r->authz, sizeof r->authz, "Basic %s", b64);
    }
    r->token_request = 1;
    rc = perform(r, "GET", url, "application/json", NULL, NULL, NULL, 0, 0, &rs, err);
    r->token_request = 0;
    r->authz[0] = 0;
    if (rc == AP_OK && rs.status != 200)
        rc = ap_error_set(err, AP_ERR_CHECK, "registry '%s': the token server refused (HTTP %ld): "
                                             "wrong or missing credentials",
                          r->ref.host, rs.status);
    if (rc == AP_OK) {
        j = rs.body ? json_loadb(rs.body, rs.body_len, 0, NULL) : NULL;
        tok = json_string_value(json_object_get(j, "token"));
        if (!tok)
            tok = json_string_value(json_object_get(j, "access_token"));
        if (!tok || strlen(tok) + 8 >= sizeof r->authz || strpbrk(tok, "\r\n"))
            rc = ap_error_set(err, AP_ERR_CHECK, "registry '%s': no usable token in the token "
                                                 "server's answer", r->ref.host);
        else
            snprintf(r->authz, sizeof r->authz, "Bearer %s", tok);
        json_decref(j);
    }
    free(rs.body);
    return rc;
}

static int answer_challenge(ap_reg *r, const char *challenge, ap_error *err)
{
    if (strncasecmp(challenge, "Bearer", 6) == 0)
        return fetch_token(r, challenge, err);
    if (strncasecmp(challenge, "Basic", 5) == 0) {
        char b64[1500];
        if (!r->basic[0])
            return ap_error_set(err, AP_ERR_CHECK,
                                "registry '%s' asks for credentials and none are configured "
                                "(REGISTRY_AUTH_FILE or ~/.docker/config.json)",
                                r->ref.host);
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)r->basic, strlen(r->basic),
                          sodium_base64_VARIANT_ORIGINAL);
        snprintf(r->authz, sizeof r->authz, "Basic %s", b64);
        return AP_OK;
    }
    return ap_error_set(err, AP_ERR_CHECK, "registry '%s': unsupported authentication '%.40s'",
                        r->ref.host, challenge);
}

static int perform(ap_reg *r, const char *method, const char *url, const char *accept,
                   const char *ctype, const char *range, const void *body, size_t body_len,
                   int follow, struct resp *rs, ap_error *err)
{
    struct curl_slist *h = NULL;
    struct upload_src src = {body, body_len, 0};
    char line[8300];
    CURLcode cc;
    CURL *c = r->c;

    curl_easy_reset(c);
    rs->r = r;
    rs->err = err;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, r->o.insecure ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, r->o.insecure ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "airpack/" AIRPACK_VERSION);
    if (r->o.ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, r->o.ca_file);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, rs);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &src);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
        h = curl_slist_append(h, "Expect:");
    }
    if (accept) {
        snprintf(line, sizeof line, "Accept: %s", accept);
        h = curl_slist_append(h, line);
    }
    if (ctype) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        h = curl_slist_append(h, line);
    }
    if (range) {
        snprintf(line, sizeof line, "Content-Range: %s", range);
        h = curl_slist_append(h, line);
    }
    if (r->authz[0] && (r->token_request || same_host(r, url))) {
        /* credentials go to the registry (and its token realm) only, never
         * to an upload location or redirect elsewhere */
        snprintf(line, sizeof line, "Authorization: %s", r->authz);
        h = curl_slist_append(h, line);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    cc = curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
    if (cc != CURLE_OK) {
        if (rs->sink_failed)
            return err->status ? err->status : AP_ERR_IO;
        if (rs->over)
            return ap_error_set(err, AP_ERR_CHECK,
                                "registry '%s': %s %s: the answer is larger than allowed", r->ref.host,
                                method, url);
        if (cc == CURLE_PARTIAL_FILE)
            return ap_error_set(err, AP_ERR_CHECK, "registry '%s': %s %s: the answer was cut "
                                                   "short (truncated)",
                                r->ref.host, method, url);
        return ap_error_set(err, AP_ERR_IO, "registry '%s': %s %s: %s", r->ref.host, method, url,
                            curl_easy_strerror(cc));
    }
    return AP_OK;
}

/* A request with one retry after answering an authentication challenge. */
static int request(ap_reg *r, const char *method, const char *url, const char *accept,
                   const char *ctype, const char *range, const void *body, size_t body_len,
                   int follow, struct resp *rs, ap_error *err)
{
    struct resp keep = *rs;
    int rc = perform(r, method, url, accept, ctype, range, body, body_len, follow, rs, err);
    if (rc == AP_OK && rs->status == 401) {
        char ch[2048];
        snprintf(ch, sizeof ch, "%s", rs->www_auth);
        free(rs->body);
        *rs = keep;
        if (!ch[0])
            return ap_error_set(err, AP_ERR_CHECK, "registry '%s': unauthorized (no challenge)",
                                r->ref.host);
        if ((rc = answer_challenge(r, ch, err)))
            return rc;
        rc = perform(r, method, url, accept, ctype, range, body, body_len, follow, rs, err);
        if (rc == AP_OK && rs->status == 401)
            return ap_error_set(err, AP_ERR_CHECK,
                                "registry '%s': authentication failed (wrong credentials?)",
                                r->ref.host);
    }
    return rc;
}

static int http_fail(ap_reg *r, const char *what, struct resp *rs, ap_error *err)
{
    char snippet[200] = "";
    if (rs->body) {
        size_t i;
        for (i = 0; i < rs->body_len && i < sizeof snippet - 1; i++)
            snippet[i] = isprint((unsigned char)rs->body[i]) ? rs->body[i] : ' ';
        snippet[i] = 0;
    }
    return ap_error_set(err, rs->status == 403 ? AP_ERR_CHECK : AP_ERR_IO,
                        "registry '%s': %s: HTTP %ld%s%s", r->ref.host, what, rs->status,
                        snippet[0] ? ": " : "", snippet);
}

int ap_reg_open(const ap_oci_ref *ref, const ap_reg_opts *o, ap_reg **out, ap_error *err)
{
    ap_reg *r;
    pthread_once(&g_once, global_init);
    if (g_init_rc != 0)
        return ap_error_set(err, AP_ERR_INTERNAL, "cannot initialise libcurl");
    if (!(r = calloc(1, sizeof *r)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    r->ref = *ref;
    if (o)
        r->o = *o;
    if (!(r->c = curl_easy_init())) {
        free(r);
        return ap_error_set(err, AP_ERR_INTERNAL, "cannot initialise libcurl");
    }
    snprintf(r->base, sizeof r->base, "%s://%s/v2/%s", r->o.insecure ? "http" : "https",
             ref->host, ref->repo);
    load_credentials(r);
    *out = r;
    return AP_OK;
}

void ap_reg_close(ap_reg *r)
{
    if (!r)
        return;
    if (r->c)
        curl_easy_cleanup(r->c);
    free(r->chunk);
    sodium_memzero(r->basic, sizeof r->basic);
    sodium_memzero(r->authz, sizeof r->authz);
    free(r);
}

/* ---- pushing ---- */

static int t_has(void *ctx, const char *digest, uint64_t size, int *yes, ap_error *err)
{
    ap_reg *r = ctx;
    char url[URL_MAX];
    struct resp rs;
    int rc;

    *yes = 0;
    memset(&rs, 0, sizeof rs);
    rs.body_cap = SMALL_BODY;
    snprintf(url, sizeof url, "%s/blobs/%s", r->base, digest);
    rc = request(r, "HEAD", url, NULL, NULL, NULL, NULL, 0, 1, &rs, err);
    free(rs.body);
    if (rc)
        return rc;
    if (rs.status == 200) {
        curl_off_t cl = -1;
        curl_easy_getinfo(r->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        *yes = cl < 0 || (uint64_t)cl == size;
        return AP_OK;
    }
    if (rs.status != 404)
        return http_fail(r, "HEAD blob", &rs, err);
    if (r->o.mount_from) {
        memset(&rs, 0, sizeof rs);
        rs.body_cap = SMALL_BODY;
        snprintf(url, sizeof url, "%s/blobs/uploads/?mount=%s&from=%s", r->base, digest,
                 r->o.mount_from);
        rc = request(r, "POST", url, NULL, NULL, NULL, "", 0, 0, &rs, err);
        free(rs.body);
        if (rc)
            return rc;
        if (rs.status == 201)
            *yes = 1;
        /* 202: the registry opened an upload instead; it is abandoned */
    }
    return AP_OK;
}

static int abs_url(ap_reg *r, const char *loc, char out[URL_MAX], ap_error *err)
{
    if (!loc[0])
        return ap_error_set(err, AP_ERR_IO, "registry '%s': no upload location", r->ref.host);
    if (loc[0] == '/')
        snprintf(out, URL_MAX, "%s://%s%s", r->o.insecure ? "http" : "https", r->ref.host, loc);
    else if (strncmp(loc, "https://", 8) == 0 ||
             (r->o.insecure && strncmp(loc, "http://", 7) == 0))
        snprintf(out, URL_MAX, "%s", loc);
    else
        return ap_error_set(err, AP_ERR_IO, "registry '%s': unusable upload location",
                            r->ref.host);
    return AP_OK;
}

static int t_begin(void *ctx, const char *digest, uint64_t size, ap_error *err)
{
    ap_reg *r = ctx;
    char url[URL_MAX];
    struct resp rs;
    int rc;
    (void)size;

    if (!r->chunk && !(r->chunk = malloc(AP_REG_CHUNK)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    r->chunk_len = 0;
    r->sent = 0;
    snprintf(r->digest, sizeof r->digest, "%s", digest);
    memset(&rs, 0, sizeof rs);
    rs.body_cap = SMALL_BODY;
    snprintf(url, sizeof url, "%s/blobs/uploads/", r->base);
    rc = request(r, "POST", url, NULL, NULL, NULL, "", 0, 0, &rs, err);
    if (rc == AP_OK && rs.status != 202)
        rc = http_fail(r, "start upload", &rs, err);
    if (rc == AP_OK)
        rc = abs_url(r, rs.location, r->upload_url, err);
    free(rs.body);
    return rc;
}

/* Bytes the registry holds of the upload in progress (GET on the upload
 * URL: 204 with "Range: 0-N"), or -1 when it cannot say. */
static long long upload_status(ap_reg *r)
{
    struct resp rs;
    long long got = -1;
    unsigned long long a, b;
    memset(&rs, 0, sizeof rs);
    rs.body_cap = SMALL_BODY;
    if (request(r, "GET", r->upload_url, NULL, NULL, NULL, NULL, 0, 0, &rs, NULL) == AP_OK &&
        rs.status == 204) {
        if (!rs.range[0])
            got = 0;
        else if (sscanf(rs.range, "%llu-%llu", &a, &b) == 2 && a == 0)
            got = (long long)b + 1;
        if (got >= 0 && rs.location[0] && abs_url(r, rs.location, r->upload_url, NULL) != AP_OK)
            got = -1;
    }
    free(rs.body);
    return got;
}

static int patch_chunk(ap_reg *r, ap_error *err);

/* PATCH the chunk; when the connection fails, ask the registry what it
 * holds and send the chunk again (up to 3 tries): a network hiccup does
 * not restart the blob. */
static int send_chunk(ap_reg *r, ap_error *err)
{
    int rc = AP_OK;
    for (int tries = 0; tries < 3; tries++) {
        long long held;
        if (r->chunk_len == 0)
            return AP_OK;
        rc = patch_chunk(r, err);
        if (rc != AP_ERR_IO)
            return rc;
        held = upload_status(r);
        if (held == (long long)(r->sent + r->chunk_len)) { /* it arrived after all */
            r->sent += r->chunk_len;
            r->chunk_len = 0;
            ap_error_clear(err);
            return AP_OK;
        }
        if (held != (long long)r->sent)
            return rc; /* the registry lost more than this chunk: give up */
        ap_error_clear(err);
    }
    return rc;
}

static int patch_chunk(ap_reg *r, ap_error *err)
{
    struct resp rs;
    char range[64];
    int rc;
    if (r->chunk_len == 0)
        return AP_OK;
    memset(&rs, 0, sizeof rs);
    rs.body_cap = SMALL_BODY;
    snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)r->sent,
             (unsigned long long)(r->sent + r->chunk_len - 1));
    rc = request(r, "PATCH", r->upload_url, NULL, "application/octet-stream", range, r->chunk,
                 r->chunk_len, 0, &rs, err);
    if (rc == AP_OK && rs.status != 202)
        rc = http_fail(r, "upload chunk", &rs, err);
    if (rc == AP_OK)
        rc = abs_url(r, rs.location, r->upload_url, err);
    free(rs.body);
    if (rc == AP_OK) {
        r->sent += r->chunk_len;
        r->chunk_len = 0;
    }
    return rc;
}

static int t_data(void *ctx, const void *buf, size_t len, ap_error *err)
{
    ap_reg *r = ctx;
    int rc;
    while (len > 0) {
        size_t n = AP_REG_CHUNK - r->chunk_len;
        if (n > len)
            n = len;
        memcpy(r->chunk + r->chunk_len, buf, n);
        r->chunk_len += n;
        buf = (const char *)buf + n;
        len -= n;
        if (r->chunk_len == AP_REG_CHUNK && (rc = send_chunk(r, err)))
            return rc;
    }
    return AP_OK;
}

static int t_end(void *ctx, int ok, ap_error *err)
{
    ap_reg *r = ctx;
    char url[URL_MAX + 100];
    struct resp rs;
    int rc;
    if (!ok) {
        /* abandon the upload (best effort) */
        memset(&rs, 0, sizeof rs);
        rs.body_cap = SMALL_BODY;
        if (r->upload_url[0] && perform(r, "DELETE", r->upload_url, NULL, NULL, NULL, "", 0, 0,
                                        &rs, NULL) == AP_OK) {
        }
        free(rs.body);
        return AP_OK;
    }
    if ((rc = send_chunk(r, err)))
        return rc;
    snprintf(url, sizeof url, "%s%sdigest=%s", r->upload_url, strchr(r->upload_url, '?') ? "&" : "?",
             r->digest);
    memset(&rs, 0, sizeof rs);
    rs.body_cap = SMALL_BODY;
    rc = request(r, "PUT", url, NULL, "application/octet-stream", NULL, "", 0, 0, &rs, err);
    if (rc == AP_OK && rs.status != 201)
        rc = http_fail(r, "finish upload", &rs, err);
    free(rs.body);
    if (rc)
        ap_error_prefix(err, "blob %s", r->digest);
    return rc;
}

static int t_manifest(void *ctx, const ap_reg_doc *d, const char *tag, ap_error *err)
{
    ap_reg *r = ctx;
    char url[URL_MAX];
    struct resp rs;
    int rc;
    memset(&rs, 0, sizeof rs);
    rs.body_cap = SMALL_BODY;
    snprintf(url, sizeof url, "%s/manifests/%s", r->base, tag ? tag : d->digest);
    rc = request(r, "PUT", url, NULL, d->media_type, NULL, d->buf, d->len, 0, &rs, err);
    if (rc == AP_OK && rs.status != 201)
        rc = http_fail(r, "put manifest", &rs, err);
    if (rc == AP_OK && rs.content_digest[0] && strcmp(rs.content_digest, d->digest) != 0)
        rc = ap_error_set(err, AP_ERR_CHECK,
                          "registry '%s' stored manifest %s under digest %s", r->ref.host,
                          d->digest, rs.content_digest);
    free(rs.body);
    return rc;
}

void ap_reg_target(ap_reg *r, ap_oci_target *t)
{
    memset(t, 0, sizeof *t);
    t->ctx = r;
    t->has = t_has;
    t->blob_begin = t_begin;
    t->blob_data = t_data;
    t->blob_end = t_end;
    t->manifest = t_manifest;
}

/* ---- pulling ---- */

int ap_reg_manifest_get(ap_reg *r, const char *ref, char **buf, size_t *len,
                        char digest[AP_OCI_DIGEST_LEN + 1], ap_error *err)
{
    char url[URL_MAX];
    struct resp rs;
    int rc;
    *buf = NULL;
    memset(&rs, 0, sizeof rs);
    rs.body_cap = AP_OCI_MANIFEST_MAX;
    snprintf(url, sizeof url, "%s/manifests/%s", r->base, ref);
    rc = request(r, "GET", url, AP_OCI_MT_INDEX ", " AP_OCI_MT_MANIFEST, NULL, NULL, NULL, 0, 0,
                 &rs, err);
    if (rc == AP_OK && rs.status == 404)
        rc = ap_error_set(err, AP_ERR_INPUT, "registry '%s': '%s:%s' not found", r->ref.host,
                          r->ref.repo, ref);
    else if (rc == AP_OK && rs.status != 200)
        rc = http_fail(r, "get manifest", &rs, err);
    if (rc == AP_OK && !rs.body)
        rc = ap_error_set(err, AP_ERR_CHECK, "registry '%s': empty manifest '%s'", r->ref.host,
                          ref);
    if (rc == AP_OK) {
        ap_oci_digest_of(rs.body, rs.body_len, digest);
        if (ap_oci_digest_valid(ref) && strcmp(ref, digest) != 0)
            rc = ap_error_set(err, AP_ERR_CHECK,
                              "registry '%s' served manifest %s for digest %s (tampered)",
                              r->ref.host, digest, ref);
    }
    if (rc != AP_OK) {
        free(rs.body);
        return rc;
    }
    *buf = rs.body;
    *len = rs.body_len;
    return AP_OK;
}

static int blob_request(ap_reg *r, const char *digest, struct resp *rs, ap_error *err)
{
    char url[URL_MAX];
    int rc;
    snprintf(url, sizeof url, "%s/blobs/%s", r->base, digest);
    rc = request(r, "GET", url, NULL, NULL, NULL, NULL, 0, 1, rs, err);
    if (rc == AP_OK && rs->status == 404)
        return ap_error_set(err, AP_ERR_CHECK, "registry '%s' lacks blob %s", r->ref.host, digest);
    if (rc == AP_OK && rs->status != 200)
        return http_fail(r, "get blob", rs, err);
    return rc;
}

int ap_reg_blob_get_mem(ap_reg *r, const char *digest, uint64_t size, char **buf, size_t *len,
                        ap_error *err)
{
    struct resp rs;
    char got[AP_OCI_DIGEST_LEN + 1];
    int rc;
    *buf = NULL;
    if (size > AP_LOCK_MAX_BYTES)
        return ap_error_set(err, AP_ERR_CHECK, "blob %s: too large to hold", digest);
    memset(&rs, 0, sizeof rs);
    rs.body_cap = (size_t)size;
    rc = blob_request(r, digest, &rs, err);
    if (rc == AP_OK && rs.body_len != size)
        rc = ap_error_set(err, AP_ERR_CHECK, "registry '%s': blob %s has %zu bytes, not %llu%s",
                          r->ref.host, digest, rs.body_len, (unsigned long long)size,
                          rs.body_len < size ? " (truncated)" : "");
    if (rc == AP_OK) {
        ap_oci_digest_of(rs.body ? rs.body : "", rs.body_len, got);
        if (strcmp(got, digest) != 0)
            rc = ap_error_set(err, AP_ERR_CHECK,
                              "registry '%s' served other bytes for blob %s (they hash to %s)",
                              r->ref.host, digest, got);
    }
    if (rc != AP_OK) {
        free(rs.body);
        return rc;
    }
    if (!rs.body && !(rs.body = calloc(1, 1)))
        return ap_error_set(err, AP_ERR_NOMEM, "out of memory");
    *buf = rs.body;
    *len = rs.body_len;
    return AP_OK;
}

int ap_reg_blob_get(ap_reg *r, const char *digest, uint64_t size,
                    int (*sink)(void *ctx, const void *buf, size_t len, ap_error *err), void *ctx,
                    ap_error *err)
{
    struct resp rs;
    int rc;
    memset(&rs, 0, sizeof rs);
    rs.body_cap = SMALL_BODY;
    rs.sink = sink;
    rs.sink_ctx = ctx;
    rs.sink_max = size;
    rc = blob_request(r, digest, &rs, err);
    if (rc == AP_ERR_CHECK && rs.over)
        rc = ap_error_set(err, AP_ERR_CHECK, "registry '%s': blob %s is longer than %llu bytes",
                          r->ref.host, digest, (unsigned long long)size);
    if (rc == AP_OK && rs.sink_got != size)
        rc = ap_error_set(err, AP_ERR_CHECK,
                          "registry '%s': blob %s has %llu bytes, not %llu (truncated)", r->ref.host,
                          digest, (unsigned long long)rs.sink_got, (unsigned long long)size);
    free(rs.body);
    return rc;
}
