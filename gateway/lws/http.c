/*
 * http — replies, CORS, the query string and token of a request (http.h).
 */
#include "gateway/lws/http.h"
#include "gateway/lws/conn.h"
#include "gateway/ident.h"
#include "proto/buf.h"
#include "proto/json.h"

#include <stdlib.h>
#include <string.h>

/* Adds the CORS headers for the request's Origin, if allowed
 * (FLAGCAST_CORS_ORIGINS, admit.h): the origin is echoed with
 * Allow-Credentials, also under "*" (a literal "*" makes browsers refuse
 * EventSource(url, {withCredentials: true})); the gateway reads bearer
 * tokens only, never cookies, so credentials grant nothing more here. */
int http_add_cors(struct lws *wsi, unsigned char **p, unsigned char *end)
{
    static const char expose[] = "X-Flagcast-Refused, Retry-After, ETag";
    char origin[256];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);

    if (n <= 0 || (size_t)n >= sizeof(origin) ||
        lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) != n ||
        !admit_origin_allowed(wsi_worker(wsi)->g->cfg.cors_origins, origin, (size_t)n))
        return 0;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-origin:",
                                    (const unsigned char *)origin, n, p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:",
                                    (const unsigned char *)"Origin", 6, p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-credentials:",
                                    (const unsigned char *)"true", 4, p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-expose-headers:",
                                    (const unsigned char *)expose, sizeof(expose) - 1, p, end))
        return 1;
    return 0;
}

/* A complete response with a body. @return what the HTTP callback returns. */
int http_reply(struct lws *wsi, unsigned status, const char *ctype,
                      const char *body, size_t blen)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                  *end = hdr + sizeof(hdr) - 1;
    unsigned char *out;

    if (lws_add_http_common_headers(wsi, status, ctype, blen, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        http_add_cors(wsi, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (blen) {
        out = malloc(LWS_PRE + blen);
        if (out == NULL)
            return -1;
        memcpy(out + LWS_PRE, body, blen);
        if (lws_write(wsi, out + LWS_PRE, blen, LWS_WRITE_HTTP_FINAL) != (int)blen) {
            free(out);
            return -1;
        }
        free(out);
    }
    if (lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

int http_reply_json_error(struct lws *wsi, unsigned status, const char *msg)
{
    buf_t b;
    int rc;

    buf_init(&b);
    buf_puts(&b, "{\"error\":");
    json_cstr(&b, msg);
    buf_puts(&b, "}\n");
    rc = b.err ? -1 : http_reply(wsi, status, "application/json", b.data, b.len);
    buf_free(&b);
    return rc;
}

int http_preflight(struct lws *wsi)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                  *end = hdr + sizeof(hdr) - 1;
    static const char methods[] = "GET, POST, OPTIONS";
    static const char headers[] = "Authorization, Last-Event-ID, Cache-Control, Content-Type, Accept, If-None-Match";

    if (lws_add_http_common_headers(wsi, 204, NULL, 0, &p, end) ||
        http_add_cors(wsi, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-methods:",
                                    (const unsigned char *)methods, sizeof(methods) - 1, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-headers:",
                                    (const unsigned char *)headers, sizeof(headers) - 1, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-max-age:",
                                    (const unsigned char *)"600", 3, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* The query string as lws split it (decoded args), joined with '&'.
 * A token=... argument is not joined: lws decoded it once already and
 * query_parse would decode it again (an API key may hold '%' or '+'); its
 * value goes to tokbuf (toklen bytes) and *tok points at it, or *tok is NULL
 * if there is none (tok NULL: the argument is just dropped).
 * @return its length, or -1 if it (or the token) is longer than the buffer. */
int http_query(struct lws *wsi, char *out, size_t outlen,
                     char *tokbuf, size_t toklen, const char **tok)
{
    size_t len = 0;
    int i, n;

    out[0] = '\0';
    if (tok)
        *tok = NULL;
    for (i = 0; i < 256; i++) {
        char *frag = out + len + (len ? 1 : 0);
        n = lws_hdr_copy_fragment(wsi, frag, (int)(outlen - len - 1), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) {
            if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0)
                return -1;
            break;
        }
        if (n >= 6 && memcmp(frag, "token=", 6) == 0) {
            size_t tl = (size_t)n - 6;
            bool fits = tok && tl < toklen;
            if (fits) {
                memcpy(tokbuf, frag + 6, tl);
                tokbuf[tl] = '\0';
                *tok = tokbuf;
            }
            explicit_bzero(frag, (size_t)n);
            out[len] = '\0';
            if (tok && !fits)
                return -1;
            continue;
        }
        if (len)
            out[len] = '&';
        len += (size_t)n + (len ? 1 : 0);
        if (len + 2 >= outlen)
            return -1;
    }
    out[len] = '\0';
    return (int)len;
}

bool http_is_sse_path(const char *path)
{
    return strcmp(path, "/api/v1/realtime/sse") == 0 || strcmp(path, "/realtime/sse") == 0 ||
           strcmp(path, "/api/v1/events/stream") == 0;
}

bool http_is_ws_path(const char *path)
{
    return strcmp(path, "/ws") == 0 || strcmp(path, "/api/v1/realtime/ws") == 0;
}

/* The token of a request: the Authorization bearer header first, else the
 * ?token= value http_query set aside (qtok, NULL if none); verified and
 * admitted under FLAGCAST_AUTH. A WebSocket without any token is let
 * through here even when auth is required (ws): it may still send `auth`.
 * @return 0 with *id (owned by the caller; NULL: anonymous), or -1 with *e. */
int http_identity(struct lws *wsi, const char *qtok, bool ws,
                            token_identity_t **id, access_error_t *e)
{
    char hdr[TOKEN_MAX_BYTES + 64];
    const char *tok = qtok;
    size_t len = qtok ? strlen(qtok) : 0;
    int n, rc;

    *id = NULL;
    if (!access_uses_tokens(gw_access()))
        return 0;
    n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 0) {
        if ((size_t)n >= sizeof(hdr) ||
            lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION) < 0) {
            metric_inc(wsi_worker(wsi)->g->m.auth_refused);
            return access_token_refused("Authorization header too long", e);
        }
        if (token_bearer(hdr, &tok, &len) != 0) {
            explicit_bzero(hdr, sizeof(hdr));
            metric_inc(wsi_worker(wsi)->g->m.auth_refused);
            return access_token_refused("Authorization is not a Bearer token", e);
        }
    }
    if (tok == NULL && ws)
        return 0;
    rc = gw_ident_admit(tok, len, id, e);
    if (n > 0)
        explicit_bzero(hdr, sizeof(hdr));
    return rc;
}
