/*
 * eval_ctx — the entity context of an evaluation (see eval_ctx.h).
 *
 * A flat array of views, searched from the end: a context holds a handful of
 * properties and a flag a handful of constraints, so a linear scan that
 * compares lengths first costs less than building any index would.
 */
#include "proto/eval_ctx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void eval_ctx_init(eval_ctx_t *c)
{
    memset(c, 0, sizeof(*c));
}

void eval_ctx_free(eval_ctx_t *c)
{
    free(c->props);
    memset(c, 0, sizeof(*c));
}

void eval_ctx_reset(eval_ctx_t *c)
{
    c->n = 0;
}

static eval_prop_t *slot(eval_ctx_t *c, const char *name, size_t name_len)
{
    if (c->n >= EVAL_CTX_MAX_PROPS)
        return NULL;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        if (cap > EVAL_CTX_MAX_PROPS)
            cap = EVAL_CTX_MAX_PROPS;
        eval_prop_t *p = realloc(c->props, cap * sizeof(*p));
        if (!p)
            return NULL;
        c->props = p;
        c->cap = cap;
    }
    eval_prop_t *e = &c->props[c->n];
    e->name = name ? name : "";
    e->name_len = name ? name_len : 0;
    e->str = NULL;
    e->len = 0;
    e->num[0] = '\0';
    return e;
}

int eval_ctx_add_str(eval_ctx_t *c, const char *name, size_t name_len,
                     const char *value, size_t len)
{
    eval_prop_t *e = slot(c, name, name_len);
    if (!e)
        return -1;
    e->str = value ? value : "";
    e->len = value ? len : 0;
    c->n++;
    return 0;
}

int eval_ctx_add_int(eval_ctx_t *c, const char *name, size_t name_len, long long v)
{
    eval_prop_t *e = slot(c, name, name_len);
    if (!e)
        return -1;
    e->len = (size_t)snprintf(e->num, sizeof(e->num), "%lld", v);
    c->n++;
    return 0;
}

size_t eval_ctx_real_text(double v, char out[EVAL_CTX_NUM_MAX])
{
    if (!isfinite(v)) {
        out[0] = '\0';
        return 0;
    }
    /* The shortest of %.15g..%.17g that reads back as v: 0.1 is "0.1", not
     * %.17g's "0.10000000000000001". */
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, EVAL_CTX_NUM_MAX, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            break;
    }
    if (!strpbrk(out, ".eE") && n + 2 < EVAL_CTX_NUM_MAX) {
        out[n++] = '.';
        out[n++] = '0';
        out[n] = '\0';
    }
    return (size_t)n;
}

int eval_ctx_add_real(eval_ctx_t *c, const char *name, size_t name_len, double v)
{
    if (!isfinite(v))
        return 0;
    eval_prop_t *e = slot(c, name, name_len);
    if (!e)
        return -1;
    e->len = eval_ctx_real_text(v, e->num);
    c->n++;
    return 0;
}

int eval_ctx_add_bool(eval_ctx_t *c, const char *name, size_t name_len, bool v)
{
    return eval_ctx_add_str(c, name, name_len, v ? "true" : "false", v ? 4 : 5);
}

int eval_ctx_add_json(eval_ctx_t *c, const char *name, size_t name_len, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return eval_ctx_add_str(c, name, name_len, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return eval_ctx_add_int(c, name, name_len, (long long)json_integer_value(v));
    case JSON_REAL:
        return eval_ctx_add_real(c, name, name_len, json_real_value(v));
    case JSON_TRUE:
        return eval_ctx_add_bool(c, name, name_len, true);
    case JSON_FALSE:
        return eval_ctx_add_bool(c, name, name_len, false);
    default:
        return 0;
    }
}

int eval_ctx_add_object(eval_ctx_t *c, const json_t *obj)
{
    if (!obj)
        return 0;
    if (!json_is_object(obj))
        return -1;
    const char *key;
    size_t key_len;
    json_t *v;
    /* jansson's foreach macros take a non-const object; they do not modify it. */
    json_t *o = (json_t *)obj;
    json_object_keylen_foreach(o, key, key_len, v) {
        if (eval_ctx_add_json(c, key, key_len, v) != 0)
            return -1;
    }
    return 0;
}

bool eval_ctx_get(const eval_ctx_t *c, const char *name, size_t name_len,
                  const char **value, size_t *len)
{
    if (!c)
        return false;
    for (size_t i = c->n; i-- > 0;) {
        const eval_prop_t *e = &c->props[i];
        if (e->name_len == name_len && memcmp(e->name, name, name_len) == 0) {
            *value = e->str ? e->str : e->num;
            *len = e->len;
            return true;
        }
    }
    return false;
}
