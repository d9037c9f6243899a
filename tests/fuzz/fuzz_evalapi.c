/*
 * fuzz_evalapi — libFuzzer target for the evaluation API's request parser
 * (gateway/evalapi.c) and what runs on what it accepts. The first byte
 * chooses the request kind (Flagent single or batch, OFREP single or bulk)
 * and, for OFREP single, a known or unknown key; the rest is the body.
 * Invariants checked: every answer (refusal or result) is one valid JSON
 * value with a status of the kind's set; a refused parse leaves nothing to
 * free; a bulk answer has a quoted 16-hex ETag and a 304 has no body.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonin.h"
#include "gateway/evalapi.h"

static const char *const flags_js[] = {
    "{\"key\":\"dark\",\"enabled\":true,\"tags\":[\"web\"],\"variants\":[{\"key\":\"on\"},{\"key\":\"off\"}],"
    "\"segments\":[{\"rank\":1,\"rolloutPercent\":100,\"constraints\":[{\"property\":\"tier\",\"operator\":\"IN\","
    "\"value\":\"pro, gold\"}],\"distributions\":[{\"variantKey\":\"on\",\"percent\":100}]}]}",
    "{\"key\":\"split\",\"enabled\":true,\"tags\":[\"ui\",\"web\"],\"variants\":[{\"key\":\"a\",\"attachment\":{\"value\":[1,{\"x\":null}]}},"
    "{\"key\":\"b\"}],\"segments\":[{\"rank\":1,\"rolloutPercent\":30,\"constraints\":[{\"property\":\"email\","
    "\"operator\":\"EREG\",\"value\":\".*@example\\\\.com\"}],\"distributions\":[{\"variantKey\":\"a\",\"percent\":40},"
    "{\"variantKey\":\"b\",\"percent\":60}]},{\"rank\":2,\"rolloutPercent\":100,\"distributions\":[{\"variantKey\":\"b\",\"percent\":100}]}]}",
    "{\"key\":\"off\",\"enabled\":false}",
};

static mirror_t *mirror(void)
{
    static mirror_t *m;
    if (m)
        return m;
    m = mirror_new();
    for (size_t i = 0; i < sizeof(flags_js) / sizeof(flags_js[0]); i++) {
        json_error_t je;
        json_t *o = json_loads(flags_js[i], 0, &je);
        flag_t f;
        unsigned present;
        char err[200];
        flag_init(&f);
        if (!o || jsonin_flag(o, 0x3f, &f, &present, err, sizeof err) != 0)
            abort();
        f.id = i + 1;
        f.version = 1;
        if (mirror_put(m, &f) != 1)
            abort();
        flag_free(&f);
        json_decref(o);
    }
    return m;
}

static void check_json(const evalapi_reply_t *r)
{
    json_error_t je;
    json_t *v;
    if (r->body.err)
        abort();
    if (r->status == 304) {
        if (r->body.len)
            abort();
        return;
    }
    v = json_loadb(r->body.data, r->body.len, JSON_DECODE_ANY, &je);
    if (v == NULL)
        abort();
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const evalapi_kind_t kinds[] = { EVALAPI_FLAGENT, EVALAPI_FLAGENT_BATCH,
                                            EVALAPI_OFREP_ONE, EVALAPI_OFREP_BULK };
    char *roles[] = { "beta" };
    token_identity_t id = { .user = "alice", .roles = roles, .nroles = 1 };
    evalapi_req_t req;
    evalapi_reply_t out;
    evalapi_kind_t kind;
    const char *key;

    if (size < 1)
        return 0;
    kind = kinds[data[0] & 3];
    key = (data[0] & 4) ? "dark" : "nope";
    evalapi_reply_init(&out);
    if (evalapi_parse(kind, kind == EVALAPI_OFREP_ONE ? key : NULL,
                      kind == EVALAPI_OFREP_ONE ? 4 : 0, (const char *)data + 1, size - 1,
                      &req, &out) != 0) {
        if (out.status != 400 && out.status != 500)
            abort();
        check_json(&out);
        evalapi_reply_free(&out);
        return 0;
    }
    evalapi_env_t env = { .now_ms = 1, .seed = data[0],
                          .who = { .id = (data[0] & 8) ? &id : NULL, .evaluator = (data[0] & 16) != 0 },
                          .if_none_match = (data[0] & 32) ? "\"0000000000000000\", *" : NULL };
    if (evalapi_run(mirror(), &req, &env, &out) != 0)
        abort();   /* no allocation fails here */
    switch (out.status) {
    case 200: case 304: case 400: case 404: break;
    default: abort();
    }
    if (kind == EVALAPI_OFREP_BULK && (strlen(out.etag) != 18 || out.etag[0] != '"'))
        abort();
    check_json(&out);
    evalapi_req_free(&req);
    evalapi_reply_free(&out);
    return 0;
}
