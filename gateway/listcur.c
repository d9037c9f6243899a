/*
 * listcur — the SSE list cursor (listcur.h).
 */
#include "gateway/listcur.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

listcur_t *listcur_new(const filter_t *f, size_t max)
{
    size_t n = (f->flags != FILTER_FLAGS_NONE) + f->nchannels, i, k = 0;
    listcur_t *p;

    if (n > max)
        n = max;
    if (n < 2)
        return NULL;   /* one position: the shared id says it all */
    p = calloc(1, sizeof(*p) + n * sizeof(p->e[0]));
    if (p == NULL)
        return NULL;
    if (f->flags != FILTER_FLAGS_NONE)
        p->e[k++].ch = "flags";
    for (i = 0; k < n && i < f->nchannels; i++)
        p->e[k++].ch = f->channels[i];
    p->n = (uint32_t)k;
    return p;
}

void listcur_set(listcur_t *p, const char *ch, const char *epoch, uint64_t off)
{
    uint32_t i;

    if (p == NULL || ch == NULL || epoch == NULL)
        return;
    for (i = 0; i < p->n; i++)
        if (strcmp(p->e[i].ch, ch) == 0) {
            snprintf(p->e[i].epoch, sizeof(p->e[i].epoch), "%s", epoch);
            p->e[i].off = off;
            p->e[i].known = true;
            return;
        }
}

void listcur_format(const listcur_t *p, buf_t *b)
{
    uint32_t i;
    bool first = true;

    for (i = 0; i < p->n; i++) {
        if (!p->e[i].known)
            continue;
        buf_printf(b, "%s%s/%s/%llu", first ? "" : " ", p->e[i].ch, p->e[i].epoch,
                   (unsigned long long)p->e[i].off);
        first = false;
    }
}

void listcur_frame(const listcur_t *p, const char *frame, size_t n, buf_t *out)
{
    const char *nl;

    buf_puts(out, "id: ");
    listcur_format(p, out);
    buf_putc(out, '\n');
    if (n > 4 && memcmp(frame, "id: ", 4) == 0 && (nl = memchr(frame, '\n', n)) != NULL)
        buf_append(out, nl + 1, n - (size_t)(nl + 1 - frame));
    else
        buf_append(out, frame, n);
}
