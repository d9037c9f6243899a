/*
 * flagcast — the admin command line for flagcast-publisher.
 *
 *   flagcast [--url URL] [--token TOKEN] [--json] COMMAND ...
 *
 * Each command is one HTTP request to the admin API (libevent's evhttp
 * client, one connection, a timeout), its JSON reply printed for humans or,
 * with --json, as received. A failed call prints the server's error message
 * and exits 1; a usage error exits 2.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FLAGCAST_VERSION
#define FLAGCAST_VERSION "0.0.0"
#endif

#define MAX_LIST 256

typedef struct cli {
    const char *url;
    const char *token;
    bool        json;
    long        timeout;
    /* command options */
    const char *if_match;
    const char *description;
    const char *tags[MAX_LIST];   size_t ntags;
    const char *users[MAX_LIST];  size_t nusers;
    const char *roles[MAX_LIST];  size_t nroles;
    const char *variants[MAX_LIST]; size_t nvariants;  /* "name=JSON" */
    const char *weights[MAX_LIST];  size_t nweights;   /* "name=N" */
    const char *key;                                   /* A/B message key */
    bool        enabled;
    bool        help;
    const char *pos[8];           size_t npos;
} cli_t;

typedef struct resp {
    struct event_base *base;
    int    status;        /* 0: no answer */
    char  *body;
    size_t len;
} resp_t;

static const char usage_main[] =
    "Usage: flagcast [--url URL] [--token TOKEN] [--json] COMMAND ...\n"
    "\n"
    "Admin command line for flagcast-publisher.\n"
    "\n"
    "Commands:\n"
    "  flags list                     list every flag\n"
    "  flags get KEY                  show one flag\n"
    "  flags create KEY [JSON]        create a flag (JSON: extra fields)\n"
    "  flags update KEY JSON          change description/tags/variants/segments/enabled\n"
    "  flags enable KEY               turn a flag on\n"
    "  flags disable KEY              turn a flag off\n"
    "  flags delete KEY               delete a flag\n"
    "  flags ... --user U --role R    address a change to inboxes instead of \"flags\"\n"
    "  publish CHANNEL JSON           publish JSON as a message on CHANNEL\n"
    "  send [--user U]... [--role R]... JSON\n"
    "                                 send JSON to users' and roles' inboxes\n"
    "  send --key K --user U... --variant NAME=JSON... [--weight NAME=N]...\n"
    "                                 per-user A/B: each user gets one variant\n"
    "\n"
    "Options:\n"
    "  --url URL        publisher URL (env FLAGCAST_URL, default http://127.0.0.1:8081)\n"
    "  --token TOKEN    admin token (env FLAGCAST_TOKEN)\n"
    "  --json           print the server's JSON reply instead of text\n"
    "  --timeout SECS   request timeout (default 10)\n"
    "  --help           help (also: flagcast COMMAND --help)\n"
    "  --version        print the version\n"
    "\n"
    "Exit status: 0 ok, 1 the call failed (the server's message is printed), 2 usage.\n";

static const char usage_flags[] =
    "Usage: flagcast flags list\n"
    "       flagcast flags get KEY\n"
    "       flagcast flags create KEY [--description TEXT] [--tag TAG]... [--enabled] [JSON]\n"
    "       flagcast flags update KEY [--if-match VERSION] JSON\n"
    "       flagcast flags enable|disable KEY [--if-match VERSION]\n"
    "       flagcast flags delete KEY [--if-match VERSION]\n"
    "       (each change also takes [--user USER]... [--role ROLE]...)\n"
    "\n"
    "JSON for create/update is an object with any of: description (string), enabled\n"
    "(bool), tags ([string]), variants ([{key, attachment}]), segments ([{rank,\n"
    "rolloutPercent, description, constraints [{property, operator, value}],\n"
    "distributions [{variantKey, percent}]}]). --if-match makes the change only if\n"
    "the flag is still at VERSION (else the call fails with 412).\n"
    "\n"
    "--user USER and --role ROLE (repeatable) on create/update/enable/disable/delete\n"
    "address the change: its event goes to those users' and roles' inboxes instead\n"
    "of the \"flags\" channel (a preview for them); the flag is stored as usual.\n";

static const char usage_publish[] =
    "Usage: flagcast publish CHANNEL JSON\n"
    "\n"
    "Publishes JSON (any value) as a message on CHANNEL ([A-Za-z0-9._:-], 1-200\n"
    "bytes; \"flags\" is reserved). Prints the channel, epoch and offset.\n";

static const char usage_send[] =
    "Usage: flagcast send [--user USER]... [--role ROLE]... JSON\n"
    "       flagcast send --key KEY --user USER... --variant NAME=JSON...\n"
    "                     [--weight NAME=N]...\n"
    "\n"
    "Sends JSON (any value) to the inboxes user:USER and role:ROLE, atomically:\n"
    "one publication per inbox. At least one --user or --role.\n"
    "\n"
    "Per-user A/B: with --variant (repeated, one per variant) each user gets the\n"
    "variant chosen by a stable hash of KEY and the user id, weighted by --weight\n"
    "(all variants weighted 1 when no --weight is given; otherwise give every\n"
    "variant one). The message's data is {\"variant\": NAME, \"data\": JSON}.\n"
    "Users only: a role inbox is shared, so it cannot carry a per-user variant.\n";

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "flagcast: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try --help)\n");
    return 2;
}

/* ==== HTTP ==== */

static void on_done(struct evhttp_request *req, void *arg)
{
    resp_t *r = arg;
    /* The connection would keep the loop alive (keep-alive); one request
     * per run, so stop here. */
    event_base_loopbreak(r->base);
    if (req == NULL || evhttp_request_get_response_code(req) == 0)
        return;
    r->status = evhttp_request_get_response_code(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    r->len = evbuffer_get_length(in);
    r->body = malloc(r->len + 1);
    if (r->body) {
        evbuffer_remove(in, r->body, r->len);
        r->body[r->len] = '\0';
    }
}

/* Appends s percent-encoded (everything but unreserved characters). */
static void pct(char *out, size_t len, const char *s)
{
    size_t o = strlen(out);
    for (; *s && o + 4 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, len - o, "%%%02X", c);
    }
    out[o] = '\0';
}

static int request(const cli_t *c, enum evhttp_cmd_type m, const char *path, const char *body,
                   resp_t *r)
{
    struct evhttp_uri *u = evhttp_uri_parse(c->url);
    const char *host, *scheme, *base_path;
    char full[2048], hostport[300], auth[600];
    int port;
    struct event_base *base;
    struct evhttp_connection *conn;
    struct evhttp_request *req;

    memset(r, 0, sizeof(*r));
    if (u == NULL || (scheme = evhttp_uri_get_scheme(u)) == NULL ||
        strcmp(scheme, "http") != 0 || (host = evhttp_uri_get_host(u)) == NULL) {
        fprintf(stderr, "flagcast: --url must be http://host[:port][/prefix], got \"%s\"\n", c->url);
        if (u)
            evhttp_uri_free(u);
        return 2;
    }
    port = evhttp_uri_get_port(u);
    if (port < 0)
        port = 80;
    base_path = evhttp_uri_get_path(u);
    snprintf(full, sizeof(full), "%s%s",
             base_path && strcmp(base_path, "/") != 0 ? base_path : "", path);
    snprintf(hostport, sizeof(hostport), "%s:%d", host, port);

    base = event_base_new();
    conn = base ? evhttp_connection_base_new(base, NULL, host, (ev_uint16_t)port) : NULL;
    if (conn == NULL) {
        fprintf(stderr, "flagcast: out of memory\n");
        evhttp_uri_free(u);
        return 1;
    }
    r->base = base;
    evhttp_connection_set_timeout(conn, (int)c->timeout);
    evhttp_connection_set_retries(conn, 0);
    req = evhttp_request_new(on_done, r);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", hostport);
    evhttp_add_header(h, "Accept", "application/json");
    evhttp_add_header(h, "Connection", "close");
    evhttp_add_header(h, "User-Agent", "flagcast-cli/" FLAGCAST_VERSION);
    if (c->token) {
        snprintf(auth, sizeof(auth), "Bearer %s", c->token);
        evhttp_add_header(h, "Authorization", auth);
    }
    if (c->if_match)
        evhttp_add_header(h, "If-Match", c->if_match);
    if (body) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    }
    if (evhttp_make_request(conn, req, m, full) == 0)
        event_base_dispatch(base);
    evhttp_connection_free(conn);
    event_base_free(base);
    evhttp_uri_free(u);
    if (r->status == 0) {
        fprintf(stderr, "flagcast: no answer from the publisher at %s\n", c->url);
        return 1;
    }
    return 0;
}

/* Prints the server's error and returns 1; or 0 for a 2xx. */
static int check(const cli_t *c, const resp_t *r, json_t **out)
{
    json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    if (r->status >= 200 && r->status < 300) {
        if (c->json)
            fwrite(r->body, 1, r->len, stdout);
        *out = j;
        if (j == NULL && !c->json) {
            fprintf(stderr, "flagcast: the publisher's reply is not JSON\n");
            return 1;
        }
        return 0;
    }
    if (c->json && r->body)
        fwrite(r->body, 1, r->len, stdout);
    json_t *e = j ? json_object_get(j, "error") : NULL;
    const char *msg = e ? json_string_value(json_object_get(e, "message")) : NULL;
    const char *code = e ? json_string_value(json_object_get(e, "code")) : NULL;
    fprintf(stderr, "flagcast: %s (HTTP %d%s%s)\n", msg ? msg : "request failed", r->status,
            code ? " " : "", code ? code : "");
    if (j)
        json_decref(j);
    *out = NULL;
    return 1;
}

/* ==== output ==== */

static void print_tags(json_t *tags)
{
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) printf("%s%s", i ? "," : "", json_string_value(t));
    if (json_array_size(tags) == 0)
        printf("-");
}

static void print_flag(json_t *f)
{
    printf("key:         %s\n", json_string_value(json_object_get(f, "key")));
    printf("id:          %lld\n", (long long)json_integer_value(json_object_get(f, "id")));
    printf("enabled:     %s\n", json_is_true(json_object_get(f, "enabled")) ? "true" : "false");
    printf("version:     %lld\n", (long long)json_integer_value(json_object_get(f, "version")));
    const char *d = json_string_value(json_object_get(f, "description"));
    printf("description: %s\n", d ? d : "");
    printf("tags:        ");
    print_tags(json_object_get(f, "tags"));
    printf("\n");
    static const char *const arrays[] = { "variants", "segments" };
    for (int a = 0; a < 2; a++) {
        json_t *v = json_object_get(f, arrays[a]);
        char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s:%*s%s\n", arrays[a], (int)(12 - strlen(arrays[a])), "", s ? s : "[]");
        free(s);
    }
}

static void print_publication(json_t *p)
{
    printf("published on %s at offset %lld (epoch %s)\n",
           json_string_value(json_object_get(p, "channel")),
           (long long)json_integer_value(json_object_get(p, "offset")),
           json_string_value(json_object_get(p, "epoch")));
}

static int finish(const cli_t *c, resp_t *r, void (*human)(json_t *))
{
    json_t *j;
    int rc = check(c, r, &j);
    if (rc == 0 && !c->json)
        human(j);
    if (j)
        json_decref(j);
    free(r->body);
    return rc;
}

static void human_list(json_t *j)
{
    json_t *flags = json_object_get(j, "flags"), *f;
    size_t i;
    printf("%-6s %-32s %-8s %-8s %-20s %s\n", "ID", "KEY", "ENABLED", "VERSION", "TAGS",
           "DESCRIPTION");
    json_array_foreach(flags, i, f) {
        const char *d = json_string_value(json_object_get(f, "description"));
        printf("%-6lld %-32s %-8s %-8lld ", (long long)json_integer_value(json_object_get(f, "id")),
               json_string_value(json_object_get(f, "key")),
               json_is_true(json_object_get(f, "enabled")) ? "true" : "false",
               (long long)json_integer_value(json_object_get(f, "version")));
        char tags[256] = "";
        json_t *t;
        size_t k;
        json_array_foreach(json_object_get(f, "tags"), k, t) {
            size_t o = strlen(tags);
            snprintf(tags + o, sizeof(tags) - o, "%s%s", k ? "," : "", json_string_value(t));
        }
        printf("%-20s %s\n", tags[0] ? tags : "-", d ? d : "");
    }
    printf("%zu flag%s\n", json_array_size(flags), json_array_size(flags) == 1 ? "" : "s");
}

static void human_get(json_t *j)
{
    print_flag(json_object_get(j, "flag"));
}

static void human_change(json_t *j)
{
    json_t *f = json_object_get(j, "flag");
    const char *ev = json_string_value(json_object_get(j, "event"));
    printf("%s: %s (version %lld, enabled %s)\n", ev ? ev : "changed",
           json_string_value(json_object_get(f, "key")),
           (long long)json_integer_value(json_object_get(j, "version")),
           json_is_true(json_object_get(f, "enabled")) ? "true" : "false");
    if (json_object_get(j, "publications")) {
        json_t *p;
        size_t i;
        json_array_foreach(json_object_get(j, "publications"), i, p) print_publication(p);
    } else {
        print_publication(json_object_get(j, "publication"));
    }
}

static void human_publish(json_t *j)
{
    print_publication(json_object_get(j, "publication"));
}

static void human_send(json_t *j)
{
    json_t *p;
    size_t i;
    json_array_foreach(json_object_get(j, "publications"), i, p) {
        const char *v = json_string_value(json_object_get(p, "variant"));
        if (v)
            printf("variant %s: ", v);
        print_publication(p);
    }
}

/* ==== commands ==== */

static int parse_json_arg(const char *s, json_t **out)
{
    json_error_t e;
    *out = json_loads(s, JSON_DECODE_ANY, &e);
    if (*out == NULL) {
        fprintf(stderr, "flagcast: invalid JSON argument: %s (column %d)\n", e.text, e.column);
        return 2;
    }
    return 0;
}

/* Appends ?to.users=a,b&to.roles=r for --user/--role on a flag change.
 * @return 0, or 2 after a usage message if it does not fit. */
static int add_to_query(const cli_t *c, char *path, size_t len)
{
    if (c->nusers + c->nroles == 0)
        return 0;
    for (int k = 0; k < 2; k++) {
        const char *const *list = k ? c->roles : c->users;
        size_t n = k ? c->nroles : c->nusers;
        if (n == 0)
            continue;
        strncat(path, strchr(path, '?') ? "&" : "?", len - strlen(path) - 1);
        strncat(path, k ? "to.roles=" : "to.users=", len - strlen(path) - 1);
        for (size_t i = 0; i < n; i++) {
            if (i)
                strncat(path, ",", len - strlen(path) - 1);
            pct(path, len, list[i]);
        }
    }
    if (strlen(path) + 8 >= len)
        return usage_error("too many --user/--role for one request");
    return 0;
}

static int cmd_flags(cli_t *c)
{
    char path[16384] = "/api/v1/flags";
    resp_t r;
    int rc;
    const char *sub = c->npos > 1 ? c->pos[1] : NULL;

    if (c->help || sub == NULL) {
        fputs(usage_flags, c->help ? stdout : stderr);
        return c->help ? 0 : 2;
    }
    if (strcmp(sub, "list") == 0) {
        if (c->npos != 2)
            return usage_error("flags list takes no arguments");
        if ((rc = request(c, EVHTTP_REQ_GET, path, NULL, &r)))
            return rc;
        return finish(c, &r, human_list);
    }
    if (c->npos < 3)
        return usage_error("flags %s needs a KEY", sub);
    const char *key = c->pos[2];
    if (strcmp(sub, "create") != 0) {
        strcat(path, "/");
        pct(path, sizeof(path), key);
    }
    if (strcmp(sub, "get") == 0) {
        if (c->npos != 3)
            return usage_error("flags get takes one KEY");
        if (c->nusers + c->nroles)
            return usage_error("--user/--role address a change, not flags get");
        if ((rc = request(c, EVHTTP_REQ_GET, path, NULL, &r)))
            return rc;
        return finish(c, &r, human_get);
    }
    if (strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0) {
        if (c->npos != 3)
            return usage_error("flags %s takes one KEY", sub);
        strcat(path, "/enabled");
        if ((rc = add_to_query(c, path, sizeof(path))))
            return rc;
        if ((rc = request(c, EVHTTP_REQ_PUT, path,
                          sub[0] == 'e' ? "{\"enabled\":true}" : "{\"enabled\":false}", &r)))
            return rc;
        return finish(c, &r, human_change);
    }
    if (strcmp(sub, "delete") == 0) {
        if (c->npos != 3)
            return usage_error("flags delete takes one KEY");
        if ((rc = add_to_query(c, path, sizeof(path))))
            return rc;
        if ((rc = request(c, EVHTTP_REQ_DELETE, path, NULL, &r)))
            return rc;
        return finish(c, &r, human_change);
    }
    if (strcmp(sub, "create") == 0 || strcmp(sub, "update") == 0) {
        json_t *body = NULL;
        bool create = sub[0] == 'c';
        if (c->npos > 4)
            return usage_error("flags %s takes KEY and at most one JSON", sub);
        if (c->npos == 4) {
            if ((rc = parse_json_arg(c->pos[3], &body)))
                return rc;
            if (!json_is_object(body)) {
                json_decref(body);
                return usage_error("the JSON of flags %s must be an object", sub);
            }
        } else if (!create && !c->description && !c->ntags) {
            return usage_error("flags update needs JSON, --description or --tag");
        } else {
            body = json_object();
        }
        if (create)
            json_object_set_new(body, "key", json_string(key));
        if (c->description)
            json_object_set_new(body, "description", json_string(c->description));
        if (c->ntags) {
            json_t *t = json_array();
            for (size_t i = 0; i < c->ntags; i++)
                json_array_append_new(t, json_string(c->tags[i]));
            json_object_set_new(body, "tags", t);
        }
        if (c->enabled)
            json_object_set_new(body, "enabled", json_true());
        if ((rc = add_to_query(c, path, sizeof(path)))) {
            json_decref(body);
            return rc;
        }
        char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(body);
        rc = request(c, create ? EVHTTP_REQ_POST : EVHTTP_REQ_PUT, path, s, &r);
        free(s);
        if (rc)
            return rc;
        return finish(c, &r, human_change);
    }
    return usage_error("unknown flags command \"%s\"", sub);
}

static int cmd_publish(cli_t *c)
{
    char path[1024] = "/api/v1/channels/";
    json_t *data, *body;
    resp_t r;
    int rc;

    if (c->help) {
        fputs(usage_publish, stdout);
        return 0;
    }
    if (c->npos != 3)
        return usage_error("publish needs CHANNEL and JSON");
    if ((rc = parse_json_arg(c->pos[2], &data)))
        return rc;
    pct(path, sizeof(path), c->pos[1]);
    strcat(path, "/messages");
    body = json_pack("{s:o}", "data", data);
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    rc = request(c, EVHTTP_REQ_POST, path, s, &r);
    free(s);
    return rc ? rc : finish(c, &r, human_publish);
}

/* Builds {"key", "variants", "weights"?} of an A/B send into body.
 * @return 0, or 2 after a usage message. */
static int ab_fields(const cli_t *c, json_t *body)
{
    json_t *variants = json_object(), *weights = NULL;
    int rc;
    json_object_set_new(body, "key", json_string(c->key));
    json_object_set_new(body, "variants", variants);
    for (size_t i = 0; i < c->nvariants; i++) {
        const char *eq = strchr(c->variants[i], '=');
        char name[128];
        json_t *v;
        if (eq == NULL || eq == c->variants[i] || (size_t)(eq - c->variants[i]) >= sizeof(name))
            return usage_error("--variant takes NAME=JSON, got \"%s\"", c->variants[i]);
        snprintf(name, sizeof(name), "%.*s", (int)(eq - c->variants[i]), c->variants[i]);
        if (json_object_get(variants, name))
            return usage_error("variant \"%s\" given twice", name);
        if ((rc = parse_json_arg(eq + 1, &v)))
            return rc;
        json_object_set_new(variants, name, v);
    }
    if (c->nweights)
        weights = json_object();
    for (size_t i = 0; i < c->nweights; i++) {
        const char *eq = strchr(c->weights[i], '=');
        char name[128], *end;
        long long w;
        if (eq == NULL || eq == c->weights[i] || (size_t)(eq - c->weights[i]) >= sizeof(name)) {
            json_decref(weights);
            return usage_error("--weight takes NAME=N, got \"%s\"", c->weights[i]);
        }
        snprintf(name, sizeof(name), "%.*s", (int)(eq - c->weights[i]), c->weights[i]);
        w = strtoll(eq + 1, &end, 10);
        if (!eq[1] || *end || w < 0) {
            json_decref(weights);
            return usage_error("--weight %s: N must be a non-negative integer", name);
        }
        if (json_object_get(variants, name) == NULL) {
            json_decref(weights);
            return usage_error("--weight %s: no --variant %s=...", name, name);
        }
        json_object_set_new(weights, name, json_integer(w));
    }
    if (weights)
        json_object_set_new(body, "weights", weights);
    return 0;
}

static int cmd_send(cli_t *c)
{
    json_t *data = NULL, *body, *users, *roles;
    resp_t r;
    int rc;

    if (c->help) {
        fputs(usage_send, stdout);
        return 0;
    }
    if (c->nvariants) {
        if (c->npos != 1)
            return usage_error("send with --variant takes no JSON argument");
        if (c->key == NULL || *c->key == '\0')
            return usage_error("send with --variant needs --key");
        if (c->nroles)
            return usage_error("--variant goes to users only (a role inbox is shared)");
    } else {
        if (c->key || c->nweights)
            return usage_error("--key and --weight need --variant");
        if (c->npos != 2)
            return usage_error("send needs one JSON argument");
    }
    if (c->nusers + c->nroles == 0)
        return usage_error("send needs at least one --user or --role");
    if (!c->nvariants && (rc = parse_json_arg(c->pos[1], &data)))
        return rc;
    users = json_array();
    roles = json_array();
    for (size_t i = 0; i < c->nusers; i++)
        json_array_append_new(users, json_string(c->users[i]));
    for (size_t i = 0; i < c->nroles; i++)
        json_array_append_new(roles, json_string(c->roles[i]));
    body = json_pack("{s:o,s:o}", "users", users, "roles", roles);
    if (data)
        json_object_set_new(body, "data", data);
    else if ((rc = ab_fields(c, body))) {
        json_decref(body);
        return rc;
    }
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    rc = request(c, EVHTTP_REQ_POST, "/api/v1/messages", s, &r);
    free(s);
    return rc ? rc : finish(c, &r, human_send);
}

/* ==== arguments ==== */

static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

static int push(const char **list, size_t *n, const char *v, const char *what)
{
    if (*n == MAX_LIST) {
        fprintf(stderr, "flagcast: too many %s (at most %d)\n", what, MAX_LIST);
        return -1;
    }
    list[(*n)++] = v;
    return 0;
}

int main(int argc, char **argv)
{
    cli_t c = { 0 };
    const char *timeout = NULL;

    c.url = getenv("FLAGCAST_URL");
    if (c.url == NULL || *c.url == '\0')
        c.url = "http://127.0.0.1:8081";
    c.token = getenv("FLAGCAST_TOKEN");
    if (c.token && *c.token == '\0')
        c.token = NULL;
    c.timeout = 10;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp(a, "--") == 0) {
            while (++i < argc)
                if (c.npos < 8)
                    c.pos[c.npos++] = argv[i];
            break;
        }
        if (a[0] != '-' || a[1] != '-' || (a[1] == '-' && a[2] == '\0')) {
            if (c.npos == 8)
                return usage_error("too many arguments");
            c.pos[c.npos++] = a;
            continue;
        }
        if (strcmp(a, "--help") == 0) { c.help = true; continue; }
        if (strcmp(a, "--version") == 0) {
            printf("flagcast %s\n", FLAGCAST_VERSION);
            return 0;
        }
        if (strcmp(a, "--json") == 0) { c.json = true; continue; }
        if (strcmp(a, "--enabled") == 0) { c.enabled = true; continue; }
#define OPT(name, stmt) \
        if ((r = opt_value(argc, argv, &i, name, &v)) != 0) { \
            if (r < 0) return usage_error("%s needs a value", name); \
            stmt; continue; }
        OPT("--url", c.url = v)
        OPT("--token", c.token = v)
        OPT("--timeout", timeout = v)
        OPT("--if-match", c.if_match = v)
        OPT("--description", c.description = v)
        OPT("--tag", if (push(c.tags, &c.ntags, v, "tags")) return 2)
        OPT("--user", if (push(c.users, &c.nusers, v, "users")) return 2)
        OPT("--role", if (push(c.roles, &c.nroles, v, "roles")) return 2)
        OPT("--variant", if (push(c.variants, &c.nvariants, v, "variants")) return 2)
        OPT("--weight", if (push(c.weights, &c.nweights, v, "weights")) return 2)
        OPT("--key", c.key = v)
#undef OPT
        return usage_error("unknown option \"%s\"", a);
    }
    if (timeout) {
        char *e;
        c.timeout = strtol(timeout, &e, 10);
        if (*e || c.timeout < 1 || c.timeout > 3600)
            return usage_error("--timeout must be 1-3600 seconds");
    }
    if (c.npos == 0) {
        fputs(usage_main, c.help ? stdout : stderr);
        return c.help ? 0 : 2;
    }
    if (strcmp(c.pos[0], "flags") == 0)
        return cmd_flags(&c);
    if (strcmp(c.pos[0], "publish") == 0)
        return cmd_publish(&c);
    if (strcmp(c.pos[0], "send") == 0)
        return cmd_send(&c);
    if (strcmp(c.pos[0], "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    return usage_error("unknown command \"%s\"", c.pos[0]);
}
