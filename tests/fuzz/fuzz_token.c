/*
 * fuzz_token — libFuzzer target for the token verifier (common/token.c)
 * and what the gateway does with its result (gateway/access.c), plus the
 * channel-pattern matcher.
 *
 * The input is verified as a token (HS256 with FUZZ_SECRET, RS256 with the
 * public key below, two API keys, issuer/audience unchecked, at the fixed
 * time FUZZ_NOW so exp/nbf decisions are reproducible). Invariants: an
 * accepted token yields an identity within every bound (user, roles and
 * patterns valid, counts bounded), whose own inboxes access allows and
 * another user's refuses; a refused token yields no identity and a static
 * message that never contains the input. The input is also split at its
 * first '|' into a pattern and a channel: a valid pattern without '*'
 * matches exactly itself.
 *
 * Seeds (tests/fuzz/corpus/fuzz_token/) are tokens signed with FUZZ_SECRET
 * or with the private half of the key below (made once with openssl and
 * thrown away: test-only material), alg none, HS/RS confusion, malformed
 * shapes and API keys, so the fuzzer starts past the signature check.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/token.h"
#include "gateway/access.h"
#include "proto/names.h"

#define FUZZ_SECRET "fuzz-secret-0123456789abcdef0123456789"
#define FUZZ_NOW    ((time_t)1700000000)

static const char fuzz_pubkey[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnZZeGiR83w6fMuF7+wsP\n"
    "930oO651ttxLUBmwnsZORoGJJv3KQ3Au+Q6QcMaM3+3V98WgQEXsUtXGoZwK128R\n"
    "fRO5Pj4l/dDTpscva7q/80ZeZKEjmv9e6YVWaUUeNikDr2ie49AIeHz6zb517+rw\n"
    "m/epnVLMMPNSvSjQsTy0eQZX7qGaMzc8X5H8dAVvIhY6UGNLXXFBfwsG0UuiinRu\n"
    "+i74rvM/mOkNv8prYdM8C5VqCmHRQbDAmPWFdi+MdWwnzAl0ZxA0LpqQ/yZP36de\n"
    "+rMRYW3wQi7O8lt7LrA7PuFnflFiOXTCyJR+koav0ooDDNyPqAHciNHJGE+q1e1G\n"
    "oQIDAQAB\n"
    "-----END PUBLIC KEY-----\n"
    ;

static token_verifier_t *verifier;
static access_t *acc;

static void check_identity(const token_identity_t *id)
{
    const char *err;
    size_t n = strlen(id->user);
    if (n == 0 || n > TOKEN_MAX_USER || id->nroles > TOKEN_MAX_ROLES ||
        id->nchannels > TOKEN_MAX_PATTERNS || (id->nchannels && !id->has_channels))
        abort();
    char inbox[ACCESS_INBOX_MAX + 1];
    size_t cnt = access_inbox_count(acc, id);
    if (cnt != 1 + id->nroles)
        abort();
    for (size_t i = 0; i < cnt; i++) {
        int len = access_inbox(acc, id, i, inbox, ACCESS_INBOX_MAX);
        if (len < 0 || name_channel_kind(inbox, (size_t)len, &err) == CHAN_INVALID)
            abort();
        if (access_check_channel(acc, id, inbox, (size_t)len, NULL) != 0)
            abort();
    }
    for (size_t i = 0; i < id->nroles; i++)
        if (!id->roles[i][0] || strlen(id->roles[i]) > TOKEN_MAX_ROLE)
            abort();
    for (size_t i = 0; i < id->nchannels; i++)
        if (token_pattern_valid(id->channels[i], strlen(id->channels[i]), &err) != 0)
            abort();
    /* Someone else's inbox. */
    if (n < TOKEN_MAX_USER) {
        int len = snprintf(inbox, sizeof inbox, "user:x%s", id->user);
        if (access_check_channel(acc, id, inbox, (size_t)len, NULL) == 0)
            abort();
    }
    auth_identity_t aid;
    if (token_identity_admin(id, &aid) == 0 && strcmp(aid.name, id->user) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *err = NULL;
    token_identity_t *id = (token_identity_t *)1;

    if (verifier == NULL) {
        token_config_t c;
        token_config_init(&c);
        c.jwt_secret = FUZZ_SECRET;
        c.jwt_pubkey_pem = fuzz_pubkey;
        c.api_keys = "fuzz-key-1=svc:ops+admin,k2=anon";
        verifier = token_verifier_new(&c, &err);
        acc = access_new(ACCESS_AUTH_OPTIONAL, "secret.*", &err);
        if (verifier == NULL || acc == NULL)
            abort();
    }

    if (token_verify_at(verifier, s, size, FUZZ_NOW, &id, &err) == 0) {
        if (id == NULL)
            abort();
        check_identity(id);
        token_identity_free(id);
    } else {
        if (id != NULL || err == NULL || !err[0])
            abort();
        /* Messages hold spaces and at most one '.': an input of 8+ bytes
         * without a space is never part of one unless echoed. */
        if (size >= 8 && size < 256 && !memchr(s, ' ', size)) {
            char *in = malloc(size + 1);
            memcpy(in, s, size);
            in[size] = '\0';
            if (!memchr(in, '\0', size) && strstr(err, in))
                abort();
            free(in);
        }
    }

    const char *bar = memchr(s, '|', size);
    if (bar) {
        size_t pl = (size_t)(bar - s), cl = size - pl - 1;
        if (token_pattern_valid(s, pl, &err) == 0) {
            bool m = token_pattern_match(s, pl, bar + 1, cl);
            if (!memchr(s, '*', pl) && m != (pl == cl && memcmp(s, bar + 1, pl) == 0))
                abort();
        }
    }
    return 0;
}
