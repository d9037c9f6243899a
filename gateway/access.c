/*
 * access — per-connection read rules (see access.h).
 *
 * Everything is decided from the channel's kind (proto/names.h), the
 * identity's user, roles and "channels" patterns, and the configured
 * private patterns. The order of the checks matters only for which refusal
 * is reported: a bad name first (400), then the inbox rules, then the
 * claim, then privacy. The access_t is read-only after access_new, so
 * service threads may share it.
 */
#include "gateway/access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/textlist.h"
#include "gateway/filter.h"
#include "proto/names.h"

struct access {
    access_mode_t mode;
    char         *priv[ACCESS_MAX_PRIVATE];
    size_t        npriv;
};

int access_mode_parse(const char *s, access_mode_t *mode, const char **err)
{
    if (s && strcmp(s, "off") == 0)
        *mode = ACCESS_AUTH_OFF;
    else if (s && strcmp(s, "optional") == 0)
        *mode = ACCESS_AUTH_OPTIONAL;
    else if (s && strcmp(s, "required") == 0)
        *mode = ACCESS_AUTH_REQUIRED;
    else {
        *err = "auth mode must be required, optional or off";
        return -1;
    }
    return 0;
}

const char *access_mode_name(access_mode_t mode)
{
    switch (mode) {
    case ACCESS_AUTH_OFF:      return "off";
    case ACCESS_AUTH_OPTIONAL: return "optional";
    case ACCESS_AUTH_REQUIRED: return "required";
    }
    return "?";
}

access_t *access_new(access_mode_t mode, const char *list, const char **err)
{
    access_t *a = calloc(1, sizeof(*a));
    const char *p = list;
    if (a == NULL) {
        *err = "out of memory";
        return NULL;
    }
    if (mode != ACCESS_AUTH_OFF && mode != ACCESS_AUTH_OPTIONAL && mode != ACCESS_AUTH_REQUIRED) {
        *err = "auth mode must be required, optional or off";
        free(a);
        return NULL;
    }
    a->mode = mode;
    const char *start;
    size_t ilen;
    while (textlist_next(&p, &start, &ilen)) {
        const char *end = start + ilen, *perr;
        if (a->npriv == ACCESS_MAX_PRIVATE) {
            *err = "too many private channel patterns (at most 64)";
            goto fail;
        }
        if (token_pattern_valid(start, (size_t)(end - start), &perr) < 0) {
            *err = perr;
            goto fail;
        }
        if ((a->priv[a->npriv] = strndup(start, (size_t)(end - start))) == NULL) {
            *err = "out of memory";
            goto fail;
        }
        a->npriv++;
    }
    return a;
fail:
    access_free(a);
    return NULL;
}

void access_free(access_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->npriv; i++)
        free(a->priv[i]);
    free(a);
}

access_mode_t access_mode(const access_t *a)
{
    return a->mode;
}

bool access_uses_tokens(const access_t *a)
{
    return a->mode != ACCESS_AUTH_OFF;
}

const token_identity_t *access_effective(const access_t *a, const token_identity_t *id)
{
    return a->mode == ACCESS_AUTH_OFF ? NULL : id;
}

static int refuse(access_error_t *e, int status, const char *code, const char *msg)
{
    if (e) {
        e->status = status;
        e->code = code;
        e->message = msg;
    }
    return -1;
}

bool access_is_private(const access_t *a, const char *ch, size_t len)
{
    if (name_channel_kind(ch, len, NULL) != CHAN_APP)
        return false;
    for (size_t i = 0; i < a->npriv; i++)
        if (token_pattern_match(a->priv[i], strlen(a->priv[i]), ch, len))
            return true;
    return false;
}

int access_admit(const access_t *a, const token_identity_t *id, access_error_t *e)
{
    if (a->mode == ACCESS_AUTH_REQUIRED && id == NULL)
        return refuse(e, 401, "unauthorized", "authentication required");
    return 0;
}

int access_token_refused(const char *why, access_error_t *e)
{
    return refuse(e, 401, "unauthorized", why ? why : "invalid token");
}

size_t access_inbox_count(const access_t *a, const token_identity_t *id)
{
    id = access_effective(a, id);
    return id ? 1 + id->nroles : 0;
}

int access_inbox(const access_t *a, const token_identity_t *id, size_t i,
                 char *buf, size_t len)
{
    int n;
    id = access_effective(a, id);
    if (id == NULL || i > id->nroles || buf == NULL)
        return -1;
    if (i == 0)
        n = snprintf(buf, len, "user:%s", id->user);
    else
        n = snprintf(buf, len, "role:%s", id->roles[i - 1]);
    if (n < 0 || (size_t)n >= len)
        return -1;
    return n;
}

static bool claim_allows(const token_identity_t *id, const char *ch, size_t len)
{
    for (size_t i = 0; i < id->nchannels; i++)
        if (token_pattern_match(id->channels[i], strlen(id->channels[i]), ch, len))
            return true;
    return false;
}

int access_check_channel(const access_t *a, const token_identity_t *id,
                         const char *ch, size_t len, access_error_t *e)
{
    const char *nerr = "invalid channel name";
    chan_kind_t kind = name_channel_kind(ch, len, &nerr);

    id = access_effective(a, id);
    switch (kind) {
    case CHAN_INVALID:
        return refuse(e, 400, "bad_channel", nerr);
    case CHAN_FLAGS:
        return 0;
    case CHAN_USER:
        if (id == NULL)
            return refuse(e, 403, "forbidden", "a user inbox needs authentication as that user");
        if (strlen(id->user) != len - 5 || memcmp(id->user, ch + 5, len - 5) != 0)
            return refuse(e, 403, "forbidden", "another user's inbox");
        return 0;
    case CHAN_ROLE:
        if (id == NULL)
            return refuse(e, 403, "forbidden", "a role inbox needs authentication with that role");
        for (size_t i = 0; i < id->nroles; i++)
            if (strlen(id->roles[i]) == len - 5 && memcmp(id->roles[i], ch + 5, len - 5) == 0)
                return 0;
        return refuse(e, 403, "forbidden", "the inbox of a role this identity does not hold");
    case CHAN_APP:
        break;
    }
    if (id && id->has_channels) {
        if (claim_allows(id, ch, len))
            return 0;
        return refuse(e, 403, "forbidden", "channel not allowed by the token's channels claim");
    }
    if (access_is_private(a, ch, len))
        return refuse(e, 403, "forbidden",
                      id ? "private channel: the token's channels claim must allow it"
                         : "private channel: needs a token whose channels claim allows it");
    return 0;
}

int access_check_filter(const access_t *a, const token_identity_t *id,
                        const filter_t *f, access_error_t *e, const char **bad)
{
    for (uint32_t i = 0; i < f->nchannels; i++) {
        const char *ch = f->channels[i];
        if (access_check_channel(a, id, ch, strlen(ch), e) != 0) {
            if (bad)
                *bad = ch;
            return -1;
        }
    }
    return 0;
}

int access_apply_filter(const access_t *a, const token_identity_t *id, filter_t *f,
                        const char **err)
{
    char inbox[ACCESS_INBOX_MAX];
    size_t n = access_inbox_count(a, id);
    filter_t nf;

    /* a copy with the same flag selection and a rebuilt channel set */
    filter_init(&nf);
    if (filter_copy(&nf, f) != 0) {
        *err = "out of memory";
        return -1;
    }
    for (uint32_t i = 0; i < nf.nchannels; i++)
        free(nf.channels[i]);
    nf.nchannels = 0;
    for (uint32_t i = 0; i < f->nchannels; i++) {
        const char *ch = f->channels[i];
        size_t len = strlen(ch);
        if (access_check_channel(a, id, ch, len, NULL) == 0 &&
            filter_add_channel(&nf, ch, len, ACCESS_FILTER_MAX_CHANNELS, err) < 0)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        int len = access_inbox(a, id, i, inbox, sizeof(inbox));
        if (len < 0) {
            *err = "inbox name too long";
            goto fail;
        }
        if (filter_add_channel(&nf, inbox, (size_t)len, ACCESS_FILTER_MAX_CHANNELS, err) < 0)
            goto fail;
    }
    filter_free(f);
    *f = nf;
    return 0;
fail:
    filter_free(&nf);
    return -1;
}
