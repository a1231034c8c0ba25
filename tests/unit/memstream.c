/* SPDX-License-Identifier: MIT */
/*
 * memstream.c - the in-memory FCGX_Stream of the unit tests: libfcgi's
 * writer calls memstream_empty() with the buffered bytes, which keeps them
 * or, once the stream is told to break, fails as a socket does.  And two
 * helpers of the tests of what handlers answer: run one into a memstream,
 * parse its JSON strictly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memstream.h"
#include "request.h"
#include "token.h"

/* libfcgi's emptyBuffProc: move the buffered bytes to got, or fail. */
static void
memstream_empty(FCGX_Stream *s, int do_close)
{
    struct memstream *m = s->data;
    size_t            n = (size_t)(s->wrNext - m->chunk);

    (void)do_close;
    if (m->fail_after >= 0 && m->got.len + n > (size_t)m->fail_after) {
        s->FCGI_errno = EPIPE;
        s->isClosed = 1;
    } else if (buf_add(&m->got, m->chunk, n) != 0) {
        s->FCGI_errno = ENOMEM;
        s->isClosed = 1;
    }
    s->wrNext = m->chunk;
}

void
memstream_init(struct memstream *m, size_t size, long fail_after)
{
    memset(m, 0, sizeof *m);
    m->s.wrNext = m->chunk;
    m->s.stop = m->chunk + (size < sizeof m->chunk ? size : sizeof m->chunk);
    m->s.rdNext = m->s.stop;
    m->s.emptyBuffProc = memstream_empty;
    m->s.data = m;
    m->fail_after = fail_after;
}

void
memstream_break(struct memstream *m)
{
    m->fail_after = (long)m->got.len;
}

const char *
memstream_text(struct memstream *m)
{
    FCGX_FFlush(&m->s);
    return m->got.data != NULL ? m->got.data : "";
}

void
memstream_free(struct memstream *m)
{
    buf_free(&m->got);
}

char *
memstream_run(fc_handler_cb handler, void *data, char **envp, int *status,
    int *result)
{
    struct memstream    m;
    fc_token           *tok = token_new(NULL);
    fc_request         *req = request_new(1, envp);
    fc_response        *resp;
    const char         *body;
    char               *out;

    memstream_init(&m, MEMSTREAM_CHUNK, -1);
    if (tok == NULL || req == NULL ||
        (resp = response_new(&m.s, tok)) == NULL)
        abort();
    *result = handler(req, resp, tok, data);
    *status = response_get_status(resp);
    body = strstr(memstream_text(&m), "\r\n\r\n");
    if ((out = strdup(body != NULL ? body + 4 : "")) == NULL)
        abort();
    response_free(resp);
    request_free(req);
    token_unref(tok);
    memstream_free(&m);
    return out;
}

json_object *
memstream_json_strict(const char *s)
{
    struct json_tokener *jt = json_tokener_new();
    json_object         *o;

    if (jt == NULL)
        abort();
    json_tokener_set_flags(jt, JSON_TOKENER_STRICT |
        JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(jt, s, (int)strlen(s));
    if (o == NULL)
        fprintf(stderr, "not strict UTF-8 JSON (%s): %s\n",
            json_tokener_error_desc(json_tokener_get_error(jt)), s);
    json_tokener_free(jt);
    return o;
}
