/* SPDX-License-Identifier: MIT */
/*
 * expo.h - the writer of the metrics exposition formats: the Prometheus
 * text format 0.0.4 and OpenMetrics 1.0, chosen from a request's Accept
 * header.  The caller says what families and samples there are; this
 * module knows how each format spells them (a counter's "_total", the
 * "# EOF" that ends OpenMetrics, label escaping, numbers).
 *
 * A writer appends to a struct buf (util.h).  Families are begun with
 * expo_family() and their samples follow at once: every sample of a
 * family must come before the next family begins (both formats require
 * a family's samples to be contiguous).
 */
#ifndef EXPO_H
#define EXPO_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum expo_format {
    EXPO_TEXT = 0,          /* text/plain; version=0.0.4 */
    EXPO_OPENMETRICS,       /* application/openmetrics-text; 1.0.0 */
    EXPO_FORMAT__MAX
};

enum expo_type {
    EXPO_COUNTER = 0,
    EXPO_GAUGE,
    EXPO_HISTOGRAM,
    EXPO_TYPE__MAX
};

/* One exposition being written; fill it with expo_init(). */
struct expo {
    struct buf         *out;
    enum expo_format    format;
    enum expo_type      type;       /* of the current family */
    const char         *family;     /* its name, without "_total" */
    int                 failed;     /* memory ran out: out is incomplete */
};

/*
 * Return the format an Accept header asks for: OpenMetrics when it names
 * application/openmetrics-text with a quality above 0 and at least that of
 * the text format (or of a wildcard), else the text format.  accept may be
 * NULL (no header: the text format).
 */
enum expo_format    expo_negotiate(const char *accept);

/* Return the Content-Type of format, with its version and charset. */
const char         *expo_content_type(enum expo_format format);

/* Start writing format to out (appended to what out holds). */
void                expo_init(struct expo *e, struct buf *out,
                        enum expo_format format);

/*
 * Begin the family name (a valid metric name; for a counter without its
 * "_total", which the writer adds where the format wants it) of type with
 * a one-line help text (no newline, no backslash).
 */
void                expo_family(struct expo *e, const char *name,
                        enum expo_type type, const char *help);

/*
 * One sample of the current counter or gauge family: labels is NULL or a
 * NULL-terminated list of name, value pairs (values are escaped here).
 */
void                expo_sample(struct expo *e, const char *const *labels,
                        double value);

/*
 * The samples of one histogram of the current family: nbounds upper bounds
 * in increasing order (without +Inf), counts[nbounds + 1] observations per
 * bucket, not cumulative (counts[nbounds]: above the last bound), and the
 * sum of the observations.
 */
void                expo_histogram(struct expo *e, const char *const *labels,
                        const double *bounds, size_t nbounds,
                        const uint64_t *counts, double sum);

/*
 * End the exposition ("# EOF" for OpenMetrics).  Return 0, or -1 if memory
 * ran out at any point (out then holds an incomplete exposition).
 */
int                 expo_end(struct expo *e);

/*
 * Write v into s (size n) the way both formats read numbers: integers
 * without a fraction, others in the shortest form that reads back as v,
 * "+Inf", "-Inf", "NaN".  Return s.
 */
char               *expo_number(char *s, size_t n, double v);

#endif /* EXPO_H */
