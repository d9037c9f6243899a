/*
 * metrics — a tiny Prometheus registry.
 *
 * Metrics live in a singly linked list in registration order. Counters and
 * gauges are one atomic int64; a histogram keeps atomic bucket counts and a
 * sum guarded by a mutex (observations are rare next to the work they
 * measure). Rendering groups series by family (the name before '{') so that
 * # HELP and # TYPE appear once per family, in first-registration order.
 */
#include "common/metrics.h"

#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } mtype_t;

struct metric {
    struct metric   *next;
    mtype_t          type;
    char            *name;       /* full name, with labels */
    size_t           famlen;     /* length of the family part */
    char            *help;
    _Atomic int64_t  value;
    /* histogram */
    double          *bounds;
    size_t           nbounds;
    _Atomic uint64_t *buckets;   /* nbounds + 1 (the last is +Inf) */
    double           sum;
    uint64_t         count;
    pthread_mutex_t  lock;
};

static metric_t *registry;
static metric_t **registry_tail = &registry;

static metric_t *metric_new(mtype_t type, const char *name, const char *help)
{
    metric_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->type = type;
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    if (m->name == NULL || m->help == NULL) {
        free(m->name);
        free(m->help);
        free(m);
        return NULL;
    }
    m->famlen = strcspn(name, "{");
    pthread_mutex_init(&m->lock, NULL);
    *registry_tail = m;
    registry_tail = &m->next;
    return m;
}

metric_t *metrics_counter(const char *name, const char *help)
{
    return metric_new(M_COUNTER, name, help);
}

metric_t *metrics_gauge(const char *name, const char *help)
{
    return metric_new(M_GAUGE, name, help);
}

metric_t *metrics_histogram(const char *name, const char *help,
                            const double *bounds, size_t n)
{
    metric_t *m = metric_new(M_HISTOGRAM, name, help);
    if (m == NULL)
        return NULL;
    m->bounds = calloc(n ? n : 1, sizeof(double));
    m->buckets = calloc(n + 1, sizeof(*m->buckets));
    if (m->bounds == NULL || m->buckets == NULL)
        return NULL; /* stays registered and renders nothing harmful */
    if (n)
        memcpy(m->bounds, bounds, n * sizeof(double));
    m->nbounds = n;
    return m;
}

void metric_inc(metric_t *m)
{
    if (m)
        atomic_fetch_add(&m->value, 1);
}

void metric_add(metric_t *m, int64_t v)
{
    if (m)
        atomic_fetch_add(&m->value, v);
}

void metric_set(metric_t *m, int64_t v)
{
    if (m)
        atomic_store(&m->value, v);
}

int64_t metric_get(const metric_t *m)
{
    if (m == NULL)
        return 0;
    if (m->type == M_HISTOGRAM) {
        metric_t *mm = (metric_t *)m;
        pthread_mutex_lock(&mm->lock);
        int64_t c = (int64_t)mm->count;
        pthread_mutex_unlock(&mm->lock);
        return c;
    }
    return atomic_load(&((metric_t *)m)->value);
}

void metric_observe(metric_t *m, double v)
{
    size_t i;
    if (m == NULL || m->type != M_HISTOGRAM || m->buckets == NULL)
        return;
    for (i = 0; i < m->nbounds; i++)
        if (v <= m->bounds[i])
            break;
    atomic_fetch_add(&m->buckets[i], 1);
    pthread_mutex_lock(&m->lock);
    m->sum += v;
    m->count++;
    pthread_mutex_unlock(&m->lock);
}

static void render_double(buf_t *out, double v)
{
    if (isinf(v))
        buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        buf_puts(out, "NaN");
    else
        buf_printf(out, "%.17g", v);
}

/* name_suffix{labels,extra} — labels are the text inside the metric's
 * braces, if any. */
static void render_series_name(buf_t *out, const metric_t *m, const char *suffix,
                               const char *extra)
{
    const char *labels = m->name[m->famlen] == '{' ? m->name + m->famlen + 1 : NULL;
    size_t llen = labels ? strcspn(labels, "}") : 0;

    buf_append(out, m->name, m->famlen);
    buf_puts(out, suffix);
    if (llen == 0 && extra == NULL)
        return;
    buf_putc(out, '{');
    if (llen)
        buf_append(out, labels, llen);
    if (llen && extra)
        buf_putc(out, ',');
    if (extra)
        buf_puts(out, extra);
    buf_putc(out, '}');
}

static void render_one(buf_t *out, metric_t *m)
{
    if (m->type != M_HISTOGRAM) {
        render_series_name(out, m, "", NULL);
        buf_printf(out, " %lld\n", (long long)atomic_load(&m->value));
        return;
    }
    if (m->buckets == NULL)
        return;
    uint64_t cum = 0;
    char le[64];
    for (size_t i = 0; i <= m->nbounds; i++) {
        buf_t tmp;
        cum += atomic_load(&m->buckets[i]);
        buf_init(&tmp);
        buf_puts(&tmp, "le=\"");
        if (i < m->nbounds)
            render_double(&tmp, m->bounds[i]);
        else
            buf_puts(&tmp, "+Inf");
        buf_putc(&tmp, '"');
        snprintf(le, sizeof(le), "%s", tmp.data ? tmp.data : "");
        buf_free(&tmp);
        render_series_name(out, m, "_bucket", le);
        buf_printf(out, " %llu\n", (unsigned long long)cum);
    }
    pthread_mutex_lock(&m->lock);
    double sum = m->sum;
    uint64_t count = m->count;
    pthread_mutex_unlock(&m->lock);
    render_series_name(out, m, "_sum", NULL);
    buf_putc(out, ' ');
    render_double(out, sum);
    buf_putc(out, '\n');
    render_series_name(out, m, "_count", NULL);
    buf_printf(out, " %llu\n", (unsigned long long)count);
}

static int family_seen_before(const metric_t *m)
{
    for (const metric_t *p = registry; p != m; p = p->next)
        if (p->famlen == m->famlen && memcmp(p->name, m->name, m->famlen) == 0)
            return 1;
    return 0;
}

int metrics_render(buf_t *out)
{
    static const char *const tnames[] = { "counter", "gauge", "histogram" };
    for (metric_t *m = registry; m; m = m->next) {
        if (family_seen_before(m))
            continue;
        buf_printf(out, "# HELP %.*s ", (int)m->famlen, m->name);
        for (const char *h = m->help; *h; h++) {
            if (*h == '\\')
                buf_puts(out, "\\\\");
            else if (*h == '\n')
                buf_puts(out, "\\n");
            else
                buf_putc(out, *h);
        }
        buf_printf(out, "\n# TYPE %.*s %s\n", (int)m->famlen, m->name, tnames[m->type]);
        for (metric_t *s = m; s; s = s->next)
            if (s->famlen == m->famlen && memcmp(s->name, m->name, m->famlen) == 0)
                render_one(out, s);
    }
    return out->err ? -1 : 0;
}

void metrics_free_all(void)
{
    metric_t *m = registry;
    while (m) {
        metric_t *next = m->next;
        free(m->name);
        free(m->help);
        free(m->bounds);
        free((void *)m->buckets);
        pthread_mutex_destroy(&m->lock);
        free(m);
        m = next;
    }
    registry = NULL;
    registry_tail = &registry;
}
