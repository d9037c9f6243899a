/*
 * fuzz_wsmsg — libFuzzer target for WebSocket client messages
 * (gateway/wsmsg.c). The first byte picks the encoding (even: JSON text,
 * odd: msgpack binary); the rest is the frame. A parsed subscribe or
 * unsubscribe is applied to a filter and echoed, a ping is answered, an
 * evaluate's batch body must be accepted by evalapi_parse (wsmsg checks
 * what evalapi would refuse) and its reply is rendered, and an error is
 * rendered, exactly as the gateway would.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/evalapi.h"
#include "gateway/filter.h"
#include "gateway/wsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    wsmsg_fmt_t fmt = (data[0] & 1) ? WSMSG_FMT_MSGPACK : WSMSG_FMT_JSON;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    wsmsg_t m;
    wsmsg_error_t e;
    buf_t b;
    filter_t f;
    const char *err;

    wsmsg_init(&m);
    buf_init(&b);
    filter_init(&f);
    if (wsmsg_parse(fmt, p, n, 4096, 32, &m, &e) == 0) {
        if (e.code != WSERR_NONE)
            abort();
        switch (m.type) {
        case WSMSG_SUBSCRIBE:
            if (filter_subscribe(&f, &m.req, 32, &err) == 0) {
                wsmsg_render_subscribed(fmt, &f, &b);
                filter_unsubscribe(&f, &m.req);
            }
            break;
        case WSMSG_UNSUBSCRIBE:
            filter_unsubscribe(&f, &m.req);
            break;
        case WSMSG_PING:
            wsmsg_render_pong(fmt, &m, &b);
            break;
        case WSMSG_AUTH:
            if (!m.token || !m.token[0])
                abort();
            break;
        case WSMSG_EVALUATE: {
            evalapi_req_t req;
            evalapi_reply_t out;
            if (!m.eval_body || m.eval_body_len != strlen(m.eval_body))
                abort();
            evalapi_reply_init(&out);
            if (evalapi_parse(EVALAPI_FLAGENT_BATCH, NULL, 0, m.eval_body, m.eval_body_len,
                              &req, &out) != 0 || req.nentities != 1 || req.nflag_keys == 0)
                abort();
            evalapi_req_free(&req);
            evalapi_reply_free(&out);
            if (wsmsg_render_evaluation(fmt, &m, "[{\"a\":[1,null]}]",
                                        strlen("[{\"a\":[1,null]}]"), &b) != 0)
                abort();
            break;
        }
        default:
            abort();
        }
    } else {
        if (e.code == WSERR_NONE || !e.message[0] || m.req.items.nkeys || m.token ||
            m.eval_body)
            abort();
        wsmsg_render_error(fmt, wsmsg_err_code(e.code), e.message, &b);
    }
    filter_free(&f);
    buf_free(&b);
    wsmsg_free(&m);
    return 0;
}
