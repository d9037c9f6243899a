/*
 * Unit tests for gateway/evalapi: routes, request parsing (Flagent single
 * and batch, OFREP) and its 400s, Flagent results (shape, debug log, unknown
 * flags, batch order, tags ANY/ALL), OFREP results (typed values, reasons,
 * FLAG_NOT_FOUND, TARGETING_KEY_MISSING, bulk error entries), the ETag and
 * If-None-Match, and the identity rules (bound sub, claims win, evaluator).
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonin.h"
#include "gateway/evalapi.h"

/* Adds a flag written as JSON (the admin API's shape) with id and version. */
static void put_flag(mirror_t *m, uint64_t id, uint64_t version, const char *js)
{
    json_error_t je;
    json_t *o = json_loads(js, 0, &je);
    flag_t f;
    unsigned present;
    char err[200];

    ck_assert_msg(o != NULL, "bad test JSON: %s", je.text);
    flag_init(&f);
    ck_assert_msg(jsonin_flag(o, 0x3f, &f, &present, err, sizeof err) == 0, "%s", err);
    f.id = id;
    f.version = version;
    ck_assert_int_eq(mirror_put(m, &f), 1);
    flag_free(&f);
    json_decref(o);
}

static mirror_t *sample(void)
{
    mirror_t *m = mirror_new();
    put_flag(m, 1, 3, "{\"key\":\"dark\",\"enabled\":true,\"tags\":[\"web\"],"
             "\"variants\":[{\"key\":\"on\"},{\"key\":\"off\"}],"
             "\"segments\":[{\"rank\":1,\"rolloutPercent\":100,"
             "\"constraints\":[{\"property\":\"tier\",\"operator\":\"EQ\",\"value\":\"pro\"}],"
             "\"distributions\":[{\"variantKey\":\"on\",\"percent\":100}]}]}");
    put_flag(m, 2, 1, "{\"key\":\"color\",\"enabled\":true,\"tags\":[\"web\",\"ui\"],"
             "\"variants\":[{\"key\":\"red\",\"attachment\":{\"value\":\"crimson\"}}],"
             "\"segments\":[{\"rank\":1,\"rolloutPercent\":100,"
             "\"distributions\":[{\"variantKey\":\"red\",\"percent\":100}]}]}");
    put_flag(m, 3, 1, "{\"key\":\"split\",\"enabled\":true,"
             "\"variants\":[{\"key\":\"a\"},{\"key\":\"b\"}],"
             "\"segments\":[{\"rank\":1,\"rolloutPercent\":100,"
             "\"distributions\":[{\"variantKey\":\"a\",\"percent\":50},{\"variantKey\":\"b\",\"percent\":50}]}]}");
    put_flag(m, 4, 1, "{\"key\":\"off-flag\",\"enabled\":false}");
    put_flag(m, 5, 1, "{\"key\":\"admins\",\"enabled\":true,"
             "\"variants\":[{\"key\":\"yes\"}],"
             "\"segments\":[{\"rank\":1,\"rolloutPercent\":100,"
             "\"constraints\":[{\"property\":\"roles\",\"operator\":\"CONTAINS\",\"value\":\"admin\"}],"
             "\"distributions\":[{\"variantKey\":\"yes\",\"percent\":100}]}]}");
    return m;
}

/* Parses and runs one request; the answer's JSON into *js (caller decrefs,
 * NULL for an empty body). @return the status. */
static unsigned call(const mirror_t *m, evalapi_kind_t kind, const char *key, const char *body,
                     const evalapi_who_t *who, const char *inm, json_t **js, char *etag)
{
    evalapi_req_t req;
    evalapi_reply_t out;
    evalapi_env_t env = { .now_ms = 1767225600000ull, .seed = 42, .if_none_match = inm };
    unsigned st;

    if (who)
        env.who = *who;
    evalapi_reply_init(&out);
    if (evalapi_parse(kind, key, key ? strlen(key) : 0, body, strlen(body), &req, &out) == 0) {
        ck_assert_int_eq(evalapi_run(m, &req, &env, &out), 0);
        evalapi_req_free(&req);
    }
    st = out.status;
    *js = NULL;
    if (out.body.len) {
        json_error_t je;
        *js = json_loadb(out.body.data, out.body.len, 0, &je);
        ck_assert_msg(*js != NULL, "answer is not JSON: %s", out.body.data);
    }
    if (etag)
        strcpy(etag, out.etag);
    evalapi_reply_free(&out);
    return st;
}

static const char *sget(const json_t *o, const char *path)
{
    /* "a.b": nested members */
    char buf[128], *save, *tok;
    const json_t *v = o;
    snprintf(buf, sizeof buf, "%s", path);
    for (tok = strtok_r(buf, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save))
        v = json_object_get(v, tok);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_int_t iget(const json_t *o, const char *name)
{
    return json_integer_value(json_object_get(o, name));
}

START_TEST(routes)
{
    evalapi_kind_t k;
    const char *key;
    size_t kl;
    ck_assert(evalapi_route("/api/v1/evaluation", &k, &key, &kl) && k == EVALAPI_FLAGENT);
    ck_assert(evalapi_route("/api/v1/evaluation/batch", &k, &key, &kl) && k == EVALAPI_FLAGENT_BATCH);
    ck_assert(evalapi_route("/ofrep/v1/evaluate/flags", &k, &key, &kl) && k == EVALAPI_OFREP_BULK);
    ck_assert(evalapi_route("/ofrep/v1/evaluate/flags/new-ui", &k, &key, &kl) && k == EVALAPI_OFREP_ONE);
    ck_assert_uint_eq(kl, 6);
    ck_assert(strncmp(key, "new-ui", kl) == 0);
    ck_assert(!evalapi_route("/ofrep/v1/evaluate/flags/", &k, &key, &kl));
    ck_assert(!evalapi_route("/ofrep/v1/evaluate/flags/a/b", &k, &key, &kl));
    ck_assert(!evalapi_route("/api/v1/evaluations", &k, &key, &kl));
    ck_assert(!evalapi_route("/healthz", &k, &key, &kl));
}
END_TEST

START_TEST(parse_errors)
{
    mirror_t *m = sample();
    json_t *js;
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagKey\":", NULL, NULL, &js, NULL), 400);
    ck_assert(strstr(sget(js, "error"), "invalid JSON") != NULL);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "[1]", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagKey\":\"a\",\"flagKey\":\"b\"}", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"entityID\":\"u\"}", NULL, NULL, &js, NULL), 400);
    ck_assert(strstr(sget(js, "error"), "flagID or flagKey") != NULL);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagID\":-1}", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagKey\":\"dark\",\"entityID\":5}", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagKey\":\"dark\",\"entityContext\":\"x\"}", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagKey\":\"dark\",\"enableDebug\":1}", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT_BATCH, NULL, "{\"entities\":[{}]}", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT_BATCH, NULL, "{\"flagKeys\":[\"dark\"]}", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT_BATCH, NULL, "{\"entities\":[1],\"flagKeys\":[\"dark\"]}", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT_BATCH, NULL, "{\"entities\":[{}],\"flagKeys\":[1]}", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT_BATCH, NULL, "{\"entities\":[{}],\"flagTags\":[\"web\"],\"flagTagsOperator\":\"SOME\"}", NULL, NULL, &js, NULL), 400);
    json_decref(js);
    /* OFREP: PARSE_ERROR / INVALID_CONTEXT, with the key on a single flag */
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "dark", "{nope", NULL, NULL, &js, NULL), 400);
    ck_assert_str_eq(sget(js, "errorCode"), "PARSE_ERROR");
    ck_assert_str_eq(sget(js, "key"), "dark");
    ck_assert_ptr_nonnull(sget(js, "errorDetails"));
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "dark", "{\"context\":[]}", NULL, NULL, &js, NULL), 400);
    ck_assert_str_eq(sget(js, "errorCode"), "INVALID_CONTEXT");
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_BULK, NULL, "{\"context\":{\"targetingKey\":true}}", NULL, NULL, &js, NULL), 400);
    ck_assert_str_eq(sget(js, "errorCode"), "INVALID_CONTEXT");
    ck_assert_ptr_null(json_object_get(js, "key"));
    json_decref(js);
    /* an empty OFREP body is {} */
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "color", "", NULL, NULL, &js, NULL), 200);
    json_decref(js);
    mirror_free(m);
}
END_TEST

START_TEST(flagent_single)
{
    mirror_t *m = sample();
    json_t *js, *v;
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL,
        "{\"flagKey\":\"dark\",\"entityID\":\"u1\",\"entityType\":\"user\",\"entityContext\":{\"tier\":\"pro\"},\"extra\":1}",
        NULL, NULL, &js, NULL), 200);
    ck_assert_int_eq(iget(js, "flagID"), 1);
    ck_assert_str_eq(sget(js, "flagKey"), "dark");
    ck_assert_int_eq(iget(js, "flagSnapshotID"), 3);
    ck_assert_str_eq(sget(js, "variantKey"), "on");
    ck_assert(json_is_null(json_object_get(js, "variantID")));   /* a record without ids */
    ck_assert(json_is_null(json_object_get(js, "variantAttachment")));
    ck_assert(json_is_null(json_object_get(js, "evalDebugLog")));
    ck_assert_str_eq(sget(js, "evalContext.entityID"), "u1");
    ck_assert_str_eq(sget(js, "evalContext.entityType"), "user");
    ck_assert_str_eq(sget(js, "evalContext.entityContext.tier"), "pro");
    ck_assert_int_eq(iget(js, "timestamp"), 1767225600000ll);
    v = json_object_get(js, "flagTags");
    ck_assert(json_is_array(v) && json_array_size(v) == 1);
    json_decref(js);

    /* by id, attachment */
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagID\":2,\"entityID\":\"u1\"}", NULL, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "variantAttachment.value"), "crimson");
    json_decref(js);

    /* unknown: still 200, echoed, debug message */
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagID\":77,\"entityID\":\"u1\"}", NULL, NULL, &js, NULL), 200);
    ck_assert_int_eq(iget(js, "flagID"), 77);
    ck_assert(json_is_null(json_object_get(js, "variantKey")));
    ck_assert_str_eq(sget(js, "evalDebugLog.msg"), "flagID 77 not found or deleted");
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagKey\":\"zz\\\"q\"}", NULL, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "flagKey"), "zz\"q");
    ck_assert_str_eq(sget(js, "evalDebugLog.msg"), "flagKey zz\"q not found or deleted");
    json_decref(js);

    /* no entityID: a generated one, different per seed, same for the same */
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagKey\":\"split\"}", NULL, NULL, &js, NULL), 200);
    ck_assert(strncmp(sget(js, "evalContext.entityID"), "randomly_generated_", 19) == 0);
    json_decref(js);
    mirror_free(m);
}
END_TEST

/* Segment and variant ids the publisher assigned reach the results. */
START_TEST(ids)
{
    mirror_t *m = mirror_new();
    json_t *js, *logs;
    put_flag(m, 7, 2, "{\"key\":\"idf\",\"enabled\":true,\"variants\":[{\"id\":21,\"key\":\"on\"}],"
             "\"segments\":[{\"id\":11,\"rank\":1,\"rolloutPercent\":100,"
             "\"distributions\":[{\"variantKey\":\"on\",\"percent\":100}]}]}");
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagKey\":\"idf\",\"entityID\":\"u\",\"enableDebug\":true}",
                           NULL, NULL, &js, NULL), 200);
    ck_assert_int_eq(iget(js, "segmentID"), 11);
    ck_assert_int_eq(iget(js, "variantID"), 21);
    logs = json_object_get(json_object_get(js, "evalDebugLog"), "segmentDebugLogs");
    ck_assert_int_eq(iget(json_array_get(logs, 0), "segmentID"), 11);
    ck_assert(strstr(sget(json_array_get(logs, 0), "msg"), "variantID: 21") != NULL);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "idf", "{}", NULL, NULL, &js, NULL), 200);
    ck_assert_int_eq(iget(json_object_get(js, "metadata"), "segmentID"), 11);
    ck_assert_int_eq(iget(json_object_get(js, "metadata"), "variantID"), 21);
    json_decref(js);
    mirror_free(m);
}
END_TEST

START_TEST(flagent_debug)
{
    mirror_t *m = sample();
    json_t *js, *logs;
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL,
        "{\"flagKey\":\"dark\",\"entityID\":\"u2\",\"entityContext\":{\"tier\":\"free\"},\"enableDebug\":true}",
        NULL, NULL, &js, NULL), 200);
    logs = json_object_get(json_object_get(js, "evalDebugLog"), "segmentDebugLogs");
    ck_assert_uint_eq(json_array_size(logs), 1);
    ck_assert(strstr(sget(json_array_get(logs, 0), "msg"), "did not match constraints") != NULL);
    ck_assert(strstr(sget(js, "evalDebugLog.msg"), "did not match constraints") != NULL);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL,
        "{\"flagKey\":\"dark\",\"entityID\":\"u2\",\"entityContext\":{\"tier\":\"pro\"},\"enableDebug\":true}",
        NULL, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "evalDebugLog.msg"), "");
    logs = json_object_get(json_object_get(js, "evalDebugLog"), "segmentDebugLogs");
    ck_assert(strstr(sget(json_array_get(logs, 0), "msg"), "rollout yes") != NULL);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagKey\":\"off-flag\",\"enableDebug\":true}",
                           NULL, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "evalDebugLog.msg"), "flagID 4 is not enabled");
    json_decref(js);
    mirror_free(m);
}
END_TEST

START_TEST(flagent_batch)
{
    mirror_t *m = sample();
    json_t *js, *res;
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT_BATCH, NULL,
        "{\"entities\":[{\"entityID\":\"u1\",\"entityContext\":{\"tier\":\"pro\"}},{\"entityID\":\"u2\"}],"
        "\"flagIDs\":[99],\"flagKeys\":[\"dark\"],\"flagTags\":[\"ui\"]}", NULL, NULL, &js, NULL), 200);
    res = json_object_get(js, "evaluationResults");
    ck_assert_uint_eq(json_array_size(res), 6);
    ck_assert_int_eq(iget(json_array_get(res, 0), "flagID"), 99);
    ck_assert_str_eq(sget(json_array_get(res, 1), "variantKey"), "on");
    ck_assert_str_eq(sget(json_array_get(res, 2), "flagKey"), "color");
    ck_assert_str_eq(sget(json_array_get(res, 3), "evalContext.entityID"), "u2");
    ck_assert(json_is_null(json_object_get(json_array_get(res, 4), "variantKey")));
    json_decref(js);
    /* ANY (default) and ALL */
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT_BATCH, NULL,
        "{\"entities\":[{}],\"flagTags\":[\"web\",\"ui\"]}", NULL, NULL, &js, NULL), 200);
    ck_assert_uint_eq(json_array_size(json_object_get(js, "evaluationResults")), 2);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT_BATCH, NULL,
        "{\"entities\":[{}],\"flagTags\":[\"web\",\"ui\"],\"flagTagsOperator\":\"ALL\"}", NULL, NULL, &js, NULL), 200);
    res = json_object_get(js, "evaluationResults");
    ck_assert_uint_eq(json_array_size(res), 1);
    ck_assert_str_eq(sget(json_array_get(res, 0), "flagKey"), "color");
    json_decref(js);
    mirror_free(m);
}
END_TEST

START_TEST(ofrep_single)
{
    mirror_t *m = sample();
    json_t *js;
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "dark",
        "{\"context\":{\"targetingKey\":\"u1\",\"tier\":\"pro\"}}", NULL, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "key"), "dark");
    ck_assert(json_is_true(json_object_get(js, "value")));
    ck_assert_str_eq(sget(js, "variant"), "on");
    ck_assert_str_eq(sget(js, "reason"), "TARGETING_MATCH");
    ck_assert_int_eq(iget(json_object_get(js, "metadata"), "flagSnapshotID"), 3);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "dark",
        "{\"context\":{\"targetingKey\":\"u1\",\"tier\":\"free\"}}", NULL, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "reason"), "DEFAULT");
    ck_assert_ptr_null(json_object_get(js, "value"));
    ck_assert_ptr_null(json_object_get(js, "variant"));
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "off-flag", "{}", NULL, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "reason"), "DISABLED");
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "color", "{\"context\":{\"targetingKey\":\"u\"}}", NULL, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "value"), "crimson");
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "split", "{\"context\":{\"targetingKey\":\"u\"}}", NULL, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "reason"), "SPLIT");
    json_decref(js);
    /* a split needs a targeting key; a flag that does not split does not */
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "split", "{\"context\":{}}", NULL, NULL, &js, NULL), 400);
    ck_assert_str_eq(sget(js, "errorCode"), "TARGETING_KEY_MISSING");
    ck_assert_str_eq(sget(js, "key"), "split");
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "nope", "{}", NULL, NULL, &js, NULL), 404);
    ck_assert_str_eq(sget(js, "errorCode"), "FLAG_NOT_FOUND");
    ck_assert_str_eq(sget(js, "key"), "nope");
    json_decref(js);
    mirror_free(m);
}
END_TEST

START_TEST(ofrep_bulk_etag)
{
    mirror_t *m = sample();
    json_t *js, *flags;
    char e1[EVALAPI_ETAG_LEN], e2[EVALAPI_ETAG_LEN], e3[EVALAPI_ETAG_LEN];
    const char *ctx1 = "{\"context\":{\"targetingKey\":\"u1\",\"tier\":\"pro\"}}";
    const char *ctx1b = "{\"context\":{\"tier\":\"pro\",\"targetingKey\":\"u1\"}}";

    ck_assert_uint_eq(call(m, EVALAPI_OFREP_BULK, NULL, ctx1, NULL, NULL, &js, e1), 200);
    flags = json_object_get(js, "flags");
    ck_assert_uint_eq(json_array_size(flags), 5);
    ck_assert_str_eq(sget(json_array_get(flags, 0), "key"), "admins");   /* key order */
    ck_assert_str_eq(sget(json_array_get(flags, 2), "key"), "dark");
    ck_assert(json_is_true(json_object_get(json_array_get(flags, 2), "value")));
    ck_assert_int_eq(e1[0], '"');
    ck_assert_uint_eq(strlen(e1), 18);
    json_decref(js);
    /* the same context (any member order) gives the same ETag: 304 */
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_BULK, NULL, ctx1b, NULL, e1, &js, e2), 304);
    ck_assert_ptr_null(js);
    ck_assert_str_eq(e1, e2);
    /* another context, another ETag */
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_BULK, NULL, "{\"context\":{\"targetingKey\":\"u2\"}}", NULL, e1, &js, e3), 200);
    ck_assert_str_ne(e1, e3);
    json_decref(js);
    /* a change of a flag's version changes it */
    put_flag(m, 2, 2, "{\"key\":\"color\",\"enabled\":false}");
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_BULK, NULL, ctx1, NULL, e1, &js, e2), 200);
    ck_assert_str_ne(e1, e2);
    json_decref(js);
    /* no targeting key: the split flag is an error entry, the rest evaluate */
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_BULK, NULL, "{}", NULL, NULL, &js, NULL), 200);
    flags = json_object_get(js, "flags");
    ck_assert_str_eq(sget(json_array_get(flags, 4), "key"), "split");
    ck_assert_str_eq(sget(json_array_get(flags, 4), "errorCode"), "TARGETING_KEY_MISSING");
    ck_assert_str_eq(sget(json_array_get(flags, 3), "reason"), "DISABLED");
    json_decref(js);
    mirror_free(m);
}
END_TEST

START_TEST(etag_match)
{
    ck_assert(evalapi_etag_match("\"abc\"", "\"abc\""));
    ck_assert(evalapi_etag_match("W/\"abc\"", "\"abc\""));
    ck_assert(evalapi_etag_match("\"x\", \"abc\" ", "\"abc\""));
    ck_assert(evalapi_etag_match("*", "\"abc\""));
    ck_assert(!evalapi_etag_match("\"abcd\"", "\"abc\""));
    ck_assert(!evalapi_etag_match("abc", "\"abc\""));
    ck_assert(!evalapi_etag_match("", "\"abc\""));
    ck_assert(!evalapi_etag_match(NULL, "\"abc\""));
}
END_TEST

START_TEST(identity)
{
    mirror_t *m = sample();
    json_t *js;
    char *roles[] = { "admin", "beta" };
    token_identity_t alice = { .user = "alice", .roles = roles, .nroles = 2 };
    evalapi_who_t bound = { .id = &alice }, evaluator = { .id = &alice, .evaluator = true };
    char e1[EVALAPI_ETAG_LEN], e2[EVALAPI_ETAG_LEN];

    /* bound: the entity is the sub, whatever the request says */
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagKey\":\"dark\",\"entityID\":\"bob\"}",
                           &bound, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "evalContext.entityID"), "alice");
    json_decref(js);
    /* its claims win over the request's context */
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "admins",
        "{\"context\":{\"targetingKey\":\"bob\",\"roles\":\"none\"}}", &bound, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "variant"), "yes");
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "admins",
        "{\"context\":{\"targetingKey\":\"bob\",\"roles\":\"admin\"}}", NULL, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "variant"), "yes");   /* anonymous: the request's context */
    json_decref(js);
    /* a bound identity needs no targetingKey */
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "split", "{}", &bound, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "reason"), "SPLIT");
    json_decref(js);
    /* the evaluator evaluates the entity asked for, with the request's context only */
    ck_assert_uint_eq(call(m, EVALAPI_FLAGENT, NULL, "{\"flagKey\":\"dark\",\"entityID\":\"bob\"}",
                           &evaluator, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "evalContext.entityID"), "bob");
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_ONE, "admins", "{\"context\":{\"targetingKey\":\"bob\"}}",
                           &evaluator, NULL, &js, NULL), 200);
    ck_assert_str_eq(sget(js, "reason"), "DEFAULT");
    json_decref(js);
    /* the ETag depends on who is bound */
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_BULK, NULL, "{}", &bound, NULL, &js, e1), 200);
    json_decref(js);
    ck_assert_uint_eq(call(m, EVALAPI_OFREP_BULK, NULL, "{}", &evaluator, NULL, &js, e2), 200);
    json_decref(js);
    ck_assert_str_ne(e1, e2);
    mirror_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("evalapi");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, routes);
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, flagent_single);
    tcase_add_test(tc, ids);
    tcase_add_test(tc, flagent_debug);
    tcase_add_test(tc, flagent_batch);
    tcase_add_test(tc, ofrep_single);
    tcase_add_test(tc, ofrep_bulk_etag);
    tcase_add_test(tc, etag_match);
    tcase_add_test(tc, identity);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
