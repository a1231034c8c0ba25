/* SPDX-License-Identifier: MIT */
/*
 * expo.c - the writer of the Prometheus text format 0.0.4 and of
 * OpenMetrics 1.0 (see expo.h).  Where the two differ, and only there, a
 * table or a test of e->format says so:
 *
 *   what                  text 0.0.4                 OpenMetrics 1.0
 *   counter family name   "x_total" in HELP/TYPE     "x" in HELP/TYPE
 *   counter sample        x_total                    x_total
 *   end                   nothing                    "# EOF"
 *   Content-Type          text/plain; version=0.0.4  application/openmetrics-
 *                                                    text; version=1.0.0
 *
 * Gauges and histograms (_bucket with "le" last, _sum, _count) read the
 * same in both.  Label values are escaped (backslash, double quote,
 * newline) in both.  No state but the struct expo the caller holds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "expo.h"

static const char *const content_types[EXPO_FORMAT__MAX] = {
    [EXPO_TEXT] = "text/plain; version=0.0.4; charset=utf-8",
    [EXPO_OPENMETRICS] =
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
};

static const char *const type_names[EXPO_TYPE__MAX] = {
    [EXPO_COUNTER] = "counter",
    [EXPO_GAUGE] = "gauge",
    [EXPO_HISTOGRAM] = "histogram",
};

/* Return the q of one media range's parameters (p after the type), 1.0
 * when it has none, 0 when it cannot be read. */
static double
expo_quality(const char *p, const char *end)
{
    char    num[16];
    size_t  len;

    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t'))
            p++;
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            p += 2;
            for (len = 0; p + len < end && p[len] != ';' &&
                p[len] != ' ' && len < sizeof num - 1; len++)
                num[len] = p[len];
            num[len] = '\0';
            return len > 0 ? strtod(num, NULL) : 0;
        }
        while (p < end && *p != ';')
            p++;
    }
    return 1.0;
}

enum expo_format
expo_negotiate(const char *accept)
{
    static const char   om[] = "application/openmetrics-text";
    double              q_om = -1, q_other = -1, q;
    const char         *p, *end, *semi;
    size_t              tlen;

    if (accept == NULL)
        return EXPO_TEXT;
    for (p = accept; *p != '\0'; p = *end == ',' ? end + 1 : end) {
        while (*p == ' ' || *p == '\t')
            p++;
        if ((end = strchr(p, ',')) == NULL)
            end = p + strlen(p);
        for (semi = p; semi < end && *semi != ';'; semi++)
            continue;
        for (tlen = (size_t)(semi - p); tlen > 0 &&
            (p[tlen - 1] == ' ' || p[tlen - 1] == '\t'); tlen--)
            continue;
        q = expo_quality(semi, end);
        if (tlen == sizeof om - 1 && strncasecmp(p, om, tlen) == 0) {
            if (q > q_om)
                q_om = q;
        } else if ((tlen == 10 && strncasecmp(p, "text/plain", 10) == 0) ||
            (tlen == 6 && strncasecmp(p, "text/*", 6) == 0) ||
            (tlen == 3 && strncmp(p, "*/*", 3) == 0)) {
            if (q > q_other)
                q_other = q;
        }
    }
    return q_om > 0 && q_om >= q_other ? EXPO_OPENMETRICS : EXPO_TEXT;
}

const char *
expo_content_type(enum expo_format format)
{
    return content_types[format];
}

char *
expo_number(char *s, size_t n, double v)
{
    int prec;

    if (isnan(v))
        snprintf(s, n, "NaN");
    else if (isinf(v))
        snprintf(s, n, v > 0 ? "+Inf" : "-Inf");
    else if (v > -1e15 && v < 1e15 && (double)(long long)v == v)
        snprintf(s, n, "%lld", (long long)v);
    else {
        /* The shortest %g that reads back as v. */
        for (prec = 1; prec < 17; prec++) {
            snprintf(s, n, "%.*g", prec, v);
            if (strtod(s, NULL) == v)
                return s;
        }
        snprintf(s, n, "%.17g", v);
    }
    return s;
}

void
expo_init(struct expo *e, struct buf *out, enum expo_format format)
{
    memset(e, 0, sizeof *e);
    e->out = out;
    e->format = format;
}

/* Append text; remember a failure. */
static void
expo_put(struct expo *e, const char *s, size_t len)
{
    if (buf_add(e->out, s, len) != 0)
        e->failed = 1;
}

/* Append a C string. */
static void
expo_puts(struct expo *e, const char *s)
{
    expo_put(e, s, strlen(s));
}

void
expo_family(struct expo *e, const char *name, enum expo_type type,
    const char *help)
{
    const char *suffix = type == EXPO_COUNTER && e->format == EXPO_TEXT ?
        "_total" : "";

    e->family = name;
    e->type = type;
    if (buf_printf(e->out, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, suffix,
        help, name, suffix, type_names[type]) != 0)
        e->failed = 1;
}

/* Append a label value, escaped as both formats want it. */
static void
expo_label_value(struct expo *e, const char *v)
{
    const char *p;

    for (p = v; *p != '\0'; p++) {
        if (*p == '\\')
            expo_puts(e, "\\\\");
        else if (*p == '"')
            expo_puts(e, "\\\"");
        else if (*p == '\n')
            expo_puts(e, "\\n");
        else
            expo_put(e, p, 1);
    }
}

/*
 * Append one sample line: the family's name, suffix, the labels and, when
 * le is not NULL, an "le" label after them, then the value.
 */
static void
expo_line(struct expo *e, const char *suffix, const char *const *labels,
    const char *le, double value)
{
    char    num[40];
    size_t  i;
    int     any = 0;

    expo_puts(e, e->family);
    expo_puts(e, suffix);
    for (i = 0; labels != NULL && labels[i] != NULL; i += 2) {
        expo_puts(e, any ? "," : "{");
        any = 1;
        expo_puts(e, labels[i]);
        expo_puts(e, "=\"");
        expo_label_value(e, labels[i + 1] != NULL ? labels[i + 1] : "");
        expo_puts(e, "\"");
    }
    if (le != NULL) {
        expo_puts(e, any ? ",le=\"" : "{le=\"");
        expo_puts(e, le);
        expo_puts(e, "\"");
        any = 1;
    }
    if (any)
        expo_puts(e, "}");
    expo_puts(e, " ");
    expo_puts(e, expo_number(num, sizeof num, value));
    expo_puts(e, "\n");
}

void
expo_sample(struct expo *e, const char *const *labels, double value)
{
    expo_line(e, e->type == EXPO_COUNTER ? "_total" : "", labels, NULL,
        value);
}

void
expo_histogram(struct expo *e, const char *const *labels,
    const double *bounds, size_t nbounds, const uint64_t *counts, double sum)
{
    char        le[40];
    uint64_t    cum = 0;
    size_t      i;

    for (i = 0; i <= nbounds; i++) {
        cum += counts[i];
        if (i < nbounds)
            expo_number(le, sizeof le, bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        expo_line(e, "_bucket", labels, le, (double)cum);
    }
    expo_line(e, "_sum", labels, NULL, sum);
    expo_line(e, "_count", labels, NULL, (double)cum);
}

int
expo_end(struct expo *e)
{
    if (e->format == EXPO_OPENMETRICS)
        expo_puts(e, "# EOF\n");
    return e->failed ? -1 : 0;
}
