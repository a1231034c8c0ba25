/* SPDX-License-Identifier: MIT */
/*
 * memstream.c - the in-memory FCGX_Stream of the unit tests: libfcgi's
 * writer calls memstream_empty() with the buffered bytes, which keeps them
 * or, once the stream is told to break, fails as a socket does.
 */
#include <errno.h>
#include <string.h>

#include "memstream.h"

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
