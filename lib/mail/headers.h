/* The header section of a message held in memory (RFC 5322 2.2): where it ends, its
 * fields one by one with their values unfolded, and two common questions ("how many
 * NAME fields", "is there a NAME field whose value is V").
 *
 * The buffer is untrusted: nothing is read past buf + len, lines may end in "\n" or
 * "\r\n", a field may hold any bytes.  The section ends at the first empty line, at
 * the end of the buffer, or at the first line that is neither a field ("name:") nor
 * the continuation of one (white space first), as if the body started there.
 * Callers bound the buffer (e.g. the first MiB of a message). */
#ifndef POSTERN_HEADERS_H
#define POSTERN_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "str.h"

struct header_field {
    const char *name;       /* into the buffer; name_len bytes, no trailing space */
    size_t name_len;
    const char *value;      /* unfolded, white space trimmed at both ends; value_len
                             * bytes (NUL-terminated), valid until the next call */
    size_t value_len;
    const char *raw;        /* the whole field as in the buffer, line ends included */
    size_t raw_len;
};

struct header_reader {
    const char *buf;
    size_t len;
    size_t pos;
    bool ended;
    struct str value;
};

void header_reader_init(struct header_reader *hr, const char *buf, size_t len);
void header_reader_free(struct header_reader *hr);
/* 1 with the next field in f, or 0 at the end of the header section. */
int header_next(struct header_reader *hr, struct header_field *f);
/* Bytes before the body: the fields and the empty line that ends them (when there is
 * one).  A message whose first line is not a field has a section of length 0. */
size_t header_section_len(const char *buf, size_t len);

/* Case-insensitive (ASCII) comparison of the field's name with name. */
bool header_name_is(const struct header_field *f, const char *name);
/* Number of fields called name. */
size_t header_count(const char *buf, size_t len, const char *name);

/* Appends time t as an RFC 5322 date-time in local time ("Sat, 05 Dec 2026 08:00:00
 * +0000"), the form of Date: and Received: fields. */
void header_date(struct str *out, time_t t);

#endif
