/* Reader of a message's header section held in memory: see headers.h.  Trusts
 * nothing in the buffer; never reads past buf + len. */
#include "headers.h"

#include <stdio.h>
#include <string.h>

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_eq_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

/* The line at pos: its length without the line end, and where the next one starts. */
static size_t line_at(const struct header_reader *hr, size_t pos, size_t *next)
{
    const char *p = hr->buf + pos;
    size_t left = hr->len - pos;
    const char *nl = memchr(p, '\n', left);
    size_t n;

    if (nl == NULL) {
        n = left;
        *next = hr->len;
    } else {
        n = (size_t)(nl - p);
        *next = pos + n + 1;
    }
    if (n > 0 && p[n - 1] == '\r' && nl != NULL)
        n--;
    return n;
}

void header_reader_init(struct header_reader *hr, const char *buf, size_t len)
{
    hr->buf = buf;
    hr->len = buf == NULL ? 0 : len;
    hr->pos = 0;
    hr->ended = false;
    str_init(&hr->value);
}

void header_reader_free(struct header_reader *hr)
{
    str_free(&hr->value);
}

int header_next(struct header_reader *hr, struct header_field *f)
{
    size_t start = hr->pos, next, n, i;
    const char *line;

    if (hr->ended || hr->pos >= hr->len) {
        hr->ended = true;
        return 0;
    }
    line = hr->buf + start;
    n = line_at(hr, start, &next);
    if (n == 0) {                       /* the empty line: part of the section */
        hr->pos = next;
        hr->ended = true;
        return 0;
    }
    /* field-name = 1*(%d33-57 / %d59-126), then (obsolete) white space, then ':' */
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == ':' || c < 33 || c > 126)
            break;
    }
    f->name = line;
    f->name_len = i;
    while (i < n && is_wsp(line[i]))
        i++;
    if (f->name_len == 0 || i >= n || line[i] != ':') {
        hr->ended = true;               /* not a field: the body starts here */
        return 0;
    }
    i++;

    str_clear(&hr->value);
    str_append(&hr->value, line + i, n - i);
    hr->pos = next;
    while (hr->pos < hr->len && is_wsp(hr->buf[hr->pos])) {
        n = line_at(hr, hr->pos, &next);
        str_append(&hr->value, hr->buf + hr->pos, n);
        hr->pos = next;
    }

    {
        const char *v = hr->value.s;
        size_t vlen = hr->value.len, b = 0;
        while (b < vlen && is_wsp(v[b]))
            b++;
        while (vlen > b && is_wsp(v[vlen - 1]))
            vlen--;
        f->value = v + b;
        f->value_len = vlen - b;
        /* NUL-terminate in place (the bytes cut were trailing white space). */
        if (vlen < hr->value.len)
            hr->value.s[vlen] = '\0';
    }
    f->raw = hr->buf + start;
    f->raw_len = hr->pos - start;
    return 1;
}

size_t header_section_len(const char *buf, size_t len)
{
    struct header_reader hr;
    struct header_field f;
    size_t n;

    header_reader_init(&hr, buf, len);
    while (header_next(&hr, &f) == 1)
        ;
    n = hr.pos;
    header_reader_free(&hr);
    return n;
}

bool header_name_is(const struct header_field *f, const char *name)
{
    return ascii_eq_nocase(f->name, f->name_len, name, strlen(name));
}

size_t header_count(const char *buf, size_t len, const char *name)
{
    struct header_reader hr;
    struct header_field f;
    size_t count = 0;

    header_reader_init(&hr, buf, len);
    while (header_next(&hr, &f) == 1)
        if (header_name_is(&f, name))
            count++;
    header_reader_free(&hr);
    return count;
}


void header_date(struct str *out, time_t t)
{
    char buf[64];
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL
        || strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
        snprintf(buf, sizeof(buf), "Thu, 01 Jan 1970 00:00:00 +0000");
    str_appends(out, buf);
}
