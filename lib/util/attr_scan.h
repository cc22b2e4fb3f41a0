/* Typed reading of an attribute frame (attr.h): the caller lists the attributes it
 * expects, each with a type, whether it is required, its bounds and where to store
 * it; one call checks the whole frame against the list.
 *
 *   const char *status = NULL;
 *   long long code = 0;
 *   struct attr_strs rcpts;
 *   const struct attr_spec spec[] = {
 *       ATTR_STR("status", 0, &status, 16),
 *       ATTR_INT("code", ATTR_OPTIONAL, &code, 200, 599),
 *       ATTR_STR_LIST("rcpt", ATTR_OPTIONAL, &rcpts, 0),
 *       ATTR_END,
 *   };
 *   if (attr_scan(&frame, 0, spec, &err) < 0) ... log err, close the connection
 *   ...
 *   attr_scan_free(spec);
 *
 * Rules, the same for every protocol:
 *  - a required attribute that is missing is an error;
 *  - a single-valued attribute given more than once is an error;
 *  - a value outside its type or bounds is an error (texts hold no NUL byte);
 *  - an attribute not in the list is skipped, so that a protocol can grow without
 *    breaking older readers, unless the scan is ATTR_SCAN_STRICT: then it is an error.
 * The order of attributes does not matter; a repeated attribute keeps its order.
 * Error messages name the attribute but never quote its value (it may be a password).
 *
 * Texts and data point into the frame: they stay valid while it is neither cleared
 * nor freed.  Lists are allocated: attr_scan_free() releases them.  An optional
 * attribute that is absent leaves its destination as it was (lists become empty). */
#ifndef POSTERN_ATTR_SCAN_H
#define POSTERN_ATTR_SCAN_H

#include <stddef.h>

#include "attr.h"

struct str;

enum attr_type {
    ATTR_TYPE_END,              /* ends the list */
    ATTR_TYPE_STR,              /* a text: no NUL byte, at most max bytes (0: any) */
    ATTR_TYPE_DATA,             /* any bytes, at most max (0: any) */
    ATTR_TYPE_INT,              /* a decimal integer in [min, max] */
    ATTR_TYPE_STR_LIST,         /* every value of a repeated text, in order */
    ATTR_TYPE_INT_LIST,         /* every value of a repeated integer, in order */
    ATTR_TYPE_IGNORE,           /* accepted any number of times and not looked at */
};

/* Flags of one attribute. */
#define ATTR_OPTIONAL   (1u << 0)   /* may be absent (otherwise required) */
#define ATTR_NONEMPTY   (1u << 1)   /* texts and data: not empty */

/* Flags of a scan. */
#define ATTR_SCAN_STRICT (1u << 0)  /* an attribute not in the list is an error */

struct attr_data {
    const char *s;              /* NUL-terminated after len bytes */
    size_t len;
};

struct attr_strs {
    const char **v;
    size_t n;
};

struct attr_ints {
    long long *v;
    size_t n;
};

struct attr_spec {
    const char *name;
    enum attr_type type;
    unsigned flags;
    long long min, max;         /* integers: the bounds; texts, data: max length */
    union {
        const char **str;
        struct attr_data *data;
        long long *num;
        struct attr_strs *strs;
        struct attr_ints *ints;
    } to;
};

#define ATTR_STR(name, flags, dest, maxlen) \
    { (name), ATTR_TYPE_STR, (flags), 0, (maxlen), { .str = (dest) } }
#define ATTR_DATA(name, flags, dest, maxlen) \
    { (name), ATTR_TYPE_DATA, (flags), 0, (maxlen), { .data = (dest) } }
#define ATTR_INT(name, flags, dest, lo, hi) \
    { (name), ATTR_TYPE_INT, (flags), (lo), (hi), { .num = (dest) } }
#define ATTR_STR_LIST(name, flags, dest, maxlen) \
    { (name), ATTR_TYPE_STR_LIST, (flags), 0, (maxlen), { .strs = (dest) } }
#define ATTR_INT_LIST(name, flags, dest, lo, hi) \
    { (name), ATTR_TYPE_INT_LIST, (flags), (lo), (hi), { .ints = (dest) } }
#define ATTR_IGNORE(name) \
    { (name), ATTR_TYPE_IGNORE, ATTR_OPTIONAL, 0, 0, { .str = NULL } }
#define ATTR_END \
    { NULL, ATTR_TYPE_END, 0, 0, 0, { .str = NULL } }

/* Checks al against spec (ended by ATTR_END) and fills the destinations: 0, or -1
 * with err set to the reason (the other destinations are then undefined, and lists
 * already released).  Lists are overwritten, not freed: release earlier ones first. */
int attr_scan(const struct attr_list *al, unsigned flags, const struct attr_spec *spec,
              struct str *err);

/* Releases the lists a successful attr_scan() filled; they become empty. */
void attr_scan_free(const struct attr_spec *spec);

#endif
