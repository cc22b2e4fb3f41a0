/* Requests and replies between daemons: a frame is a list of named attributes.
 *
 * On the wire each attribute is one netstring "LEN:name=value," and a frame ends with
 * the empty netstring "0:,".  Example: "11:req=wakeup,0:,".  Names are [a-z0-9_]+,
 * values are any bytes; a name may repeat (lists keep their order).  Readable and
 * writable by a person with socat.  A malformed frame is an error (the caller logs
 * it and closes the connection); it never crashes the reader. */
#ifndef POSTERN_ATTR_H
#define POSTERN_ATTR_H

#include <stdbool.h>
#include <stddef.h>

struct str;
struct stream;

struct attr {
    char *name;
    char *value;            /* NUL-terminated; may hold NULs, see len */
    size_t len;
};

struct attr_list {
    struct attr *v;
    size_t n;
    size_t cap;
};

#define ATTR_LIST_INIT { NULL, 0, 0 }
#define ATTR_FRAME_MAX (4u << 20)      /* default largest frame read: 4 MiB */
#define ATTR_COUNT_MAX 100000          /* most attributes in one frame */

void attr_init(struct attr_list *al);
void attr_clear(struct attr_list *al);      /* removes all, keeps memory */
void attr_free(struct attr_list *al);
void attr_add(struct attr_list *al, const char *name, const char *value);
void attr_addn(struct attr_list *al, const char *name, const void *value, size_t len);
void attr_addf(struct attr_list *al, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void attr_add_int(struct attr_list *al, const char *name, long long value);

/* true when name[0..len) is a valid attribute name: [a-z0-9_]+. */
bool attr_name_valid(const char *name, size_t len);

/* The first value named name, or NULL.  Typed reading of a whole frame, with
 * required, repeated and unknown attributes checked: attr_scan.h. */
const char *attr_get(const struct attr_list *al, const char *name);
/* Parses the first value named name as a decimal integer: 0, or -1 (absent/invalid). */
int attr_get_int(const struct attr_list *al, const char *name, long long *out);
/* A decimal integer ("-" allowed, no sign "+", no spaces, no NUL) in s[0..len): 0, or -1. */
int attr_parse_int(const char *s, size_t len, long long *out);

/* Overwrites every value (passwords, tokens) before the memory is reused or freed. */
void attr_wipe(struct attr_list *al);

/* Writes one frame and flushes: 0 or -1. */
int attr_write(struct stream *st, const struct attr_list *al);
/* Reads one frame into al (cleared first).  Returns 1 for a frame, 0 for EOF before
 * any byte of a frame, -1 for I/O error, timeout, or a malformed or oversized frame
 * (errno EPROTO for malformed, EMSGSIZE for oversized). */
int attr_read(struct stream *st, struct attr_list *al, size_t max_frame);

/* The same frame as bytes in memory, for a datagram: appended to out. */
void attr_encode(const struct attr_list *al, struct str *out);
/* Parses buf[0..len), which must hold exactly one frame: 0, or -1 (errno EPROTO or
 * EMSGSIZE as attr_read). */
int attr_decode(const void *buf, size_t len, struct attr_list *al, size_t max_frame);

#endif
