/* SPDX-License-Identifier: MIT */
/*
 * curlfetch.c - an example module: an outbound HTTP call with libcurl,
 * relayed to the client as it arrives and aborted when the request is
 * cancelled, so that the cancel travels on to the next server.
 *
 *   { "path": "/fetch", "handler": "module",
 *     "module": "/usr/local/lib/fcgi-cancel/curlfetch.so",
 *     "symbol": "curlfetch_handler",
 *     "options": { "url": "http://127.0.0.1:8080/report" } }
 *
 * GET /fetch?x=1 fetches http://127.0.0.1:8080/report?x=1 (the request's
 * query string is passed on) and answers with its status, Content-Type
 * and body.  The transfer runs on libcurl's multi interface, and the
 * handler sleeps in curl_multi_poll() with fc_token_fd() as an extra
 * descriptor: when the client leaves, the poll returns at once, the
 * handler removes the transfer and closes its connection, and the server
 * behind that URL sees its client gone -- if it is fcgi-cancel behind
 * nginx, its job is cancelled in turn (tests/integration/hops.sh checks
 * exactly that).  A failed write to our client (the write callback
 * returns 0) aborts the transfer the same way.
 *
 * Build: see examples/README.md; needs libcurl (libcurl4-openssl-dev).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L   /* strdup() */
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <fcgi_cancel.h>
#include <json-c/json.h>

FC_MODULE_DECLARE();

#define CURLFETCH_URL_MAX   8192

FC_API int curlfetch_handler(fc_request *, fc_response *, fc_token *, void *);

/* One transfer: where its bytes go. */
struct fetch {
    CURL           *easy;
    fc_response    *resp;
    int             started;        /* status and headers set */
    int             failed;         /* a write to our client failed */
};

/* Read "url" (http or https); the route's data is a copy of it. */
int
fc_module_init(void *options, void **data, char **error)
{
    json_object *v;
    const char  *url;

    if (!json_object_object_get_ex(options, "url", &v) ||
        !json_object_is_type(v, json_type_string) ||
        (strncmp(url = json_object_get_string(v), "http://", 7) != 0 &&
        strncmp(url, "https://", 8) != 0)) {
        *error = strdup("options.url must be an http:// or https:// URL");
        return -1;
    }
    /* Not thread-safe, hence here: on the main thread, before requests. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        (*data = strdup(url)) == NULL) {
        *error = strdup("libcurl cannot start");
        return -1;
    }
    return 0;
}

void
fc_module_fini(void *data)
{
    free(data);
    curl_global_cleanup();
}

/* libcurl's write callback: relay body bytes to our client. */
static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct fetch   *f = arg;
    const char     *type = NULL;
    long            code = 502;

    if (!f->started) {
        curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(f->easy, CURLINFO_CONTENT_TYPE, &type);
        fc_response_status(f->resp, (int)code);
        if (type != NULL)
            fc_response_header(f->resp, "Content-Type", type);
        f->started = 1;
    }
    if (fc_response_write(f->resp, p, size * n) != 0) {
        f->failed = 1;
        return 0;                   /* aborts the transfer */
    }
    return size * n;
}

int
curlfetch_handler(fc_request *req, fc_response *resp, fc_token *tok,
    void *data)
{
    const char         *qs = fc_request_param(req, "QUERY_STRING");
    struct fetch        f = { .resp = resp };
    struct curl_waitfd  cancel = { .events = CURL_WAIT_POLLIN };
    CURLM              *multi;
    CURLMsg            *msg;
    CURLcode            result = CURLE_OK;
    char                url[CURLFETCH_URL_MAX];
    long                code = 0;
    int                 running = 1, left, rc = FC_OK;

    if ((cancel.fd = fc_token_fd(tok)) < 0)
        return FC_ERROR;
    if (snprintf(url, sizeof url, "%s%s%s", (const char *)data,
        qs != NULL && *qs != '\0' ? "?" : "", qs != NULL ? qs : "") >=
        (int)sizeof url)
        return fc_response_error(resp, 414, "query string too long") == 0 ?
            FC_OK : FC_ERROR;
    if ((multi = curl_multi_init()) == NULL ||
        (f.easy = curl_easy_init()) == NULL) {
        curl_multi_cleanup(multi);
        return FC_ERROR;
    }
    curl_easy_setopt(f.easy, CURLOPT_URL, url);
    curl_easy_setopt(f.easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(f.easy, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(f.easy, CURLOPT_NOSIGNAL, 1L);     /* threads */
    curl_easy_setopt(f.easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_multi_add_handle(multi, f.easy);

    while (running) {
        if (curl_multi_perform(multi, &running) != CURLM_OK)
            break;
        if (!running)
            break;
        cancel.revents = 0;
        if (curl_multi_poll(multi, &cancel, 1, 1000, NULL) != CURLM_OK)
            break;
        if (cancel.revents != 0)
            break;                  /* the token: stop at once */
    }
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE)
            result = msg->data.result;
    }
    if (!f.started)
        curl_easy_getinfo(f.easy, CURLINFO_RESPONSE_CODE, &code);
    /* Removing the handle and cleaning it up closes the connection: the
     * server at the other end sees its client gone. */
    curl_multi_remove_handle(multi, f.easy);
    curl_easy_cleanup(f.easy);
    curl_multi_cleanup(multi);

    if (fc_token_cancelled(tok) || f.failed) {
        fc_request_log(req, "curlfetch: transfer aborted (%s)",
            fc_reason_name(fc_token_reason(tok)));
        return FC_CANCELLED;
    }
    if (running || result != CURLE_OK) {
        fc_request_log(req, "curlfetch: %s", running ?
            "transfer stopped" : curl_easy_strerror(result));
        if (!fc_response_committed(resp))
            rc = fc_response_error(resp, 502, "upstream failed") == 0 ?
                FC_OK : FC_ERROR;
        else
            rc = FC_ERROR;
    } else if (!f.started) {
        /* An empty body: only the status to pass on. */
        fc_response_status(resp, code > 0 ? (int)code : 204);
    }
    return rc;
}
