/* MIME (RFC 2045-2049) for a message held in memory: the tree of its parts with their
 * header and body offsets and Content-* fields; header fields unfolded, RFC 2047
 * encoded words and RFC 2231 parameters decoded; quoted-printable and base64 decoded;
 * charsets converted to UTF-8 (iconv); the IMAP views of the tree (ENVELOPE,
 * BODY/BODYSTRUCTURE, BODY[section]/BINARY[section], RFC 3501 and RFC 9051); and a
 * walk that hands every header field and every body line of every part to a callback
 * (header_checks, mime_header_checks, body_checks).
 *
 * The message is untrusted.  mime_parse() never fails on content: a broken message
 * still yields a tree (at worst one text/plain part), and what the parser could not
 * make sense of is marked in mime_msg.flags.  Time is linear in the message size
 * (each byte is looked at a bounded number of times: a boundary line is compared
 * with at most MIME_DEPTH_MAX boundaries); memory is the part structures (at most
 * MIME_PARTS_MAX) plus the Content-* values copied out of the headers (bounded by
 * MIME_FIELD_MAX each and MIME_HEADER_FIELDS_MAX fields a part), never a copy of the
 * message.  The buffer must stay valid and unchanged while the mime_msg is used.
 *
 * Line ends: "\r\n" or a bare "\n" are both a line end.  Every size and offset the
 * IMAP functions give is in "\r\n" terms (a bare "\n" counts 2 octets, as it will
 * when sent), so that a Maildir file with bare "\n" and the octets an IMAP client
 * receives agree; the raw offsets in the buffer are kept too.
 *
 * Limits (what happens when one is reached):
 *   MIME_DEPTH_MAX         nesting of multipart and message/rfc822 entities; deeper
 *                          entities are leaves (their body is not looked into)
 *   MIME_PARTS_MAX         parts in one message; after it, boundaries are no longer
 *                          recognised and the rest belongs to the last part
 *   MIME_HEADER_FIELDS_MAX fields looked at in one header section; later fields are
 *                          still part of the header bytes but not interpreted
 *   MIME_FIELD_MAX         unfolded length of a field that is interpreted; longer
 *                          values are cut at this length
 *   MIME_PARAMS_MAX        parameters of one Content-Type/-Disposition; more ignored
 *   MIME_BOUNDARY_MAX      boundary length (RFC 2046 allows 70); a multipart with a
 *                          longer or empty boundary has one part: its whole body
 *   MIME_DECODE_MAX        default bound on a decoded or converted body
 * The flags in mime_msg.flags say which limit was hit and which defect was met. */
#ifndef POSTERN_MIME_H
#define POSTERN_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "str.h"

#define MIME_DEPTH_MAX 32
#define MIME_PARTS_MAX 10000
#define MIME_HEADER_FIELDS_MAX 1000
#define MIME_FIELD_MAX (64u * 1024)
#define MIME_PARAMS_MAX 64
#define MIME_BOUNDARY_MAX 200
#define MIME_DECODE_MAX (64u * 1024 * 1024)

/* ---- the tree ---- */

enum mime_encoding {
    MIME_ENC_7BIT,              /* also when there is no Content-Transfer-Encoding */
    MIME_ENC_8BIT,
    MIME_ENC_BINARY,
    MIME_ENC_QP,                /* quoted-printable */
    MIME_ENC_BASE64,
    MIME_ENC_UNKNOWN,           /* anything else (x-uuencode...): left as it is */
};

/* A parameter of Content-Type or Content-Disposition.  RFC 2231 continuations
 * (name*0, name*1*...) are joined into one parameter.  name is lower case, without
 * any '*'.  raw is the value as BODYSTRUCTURE shows it: unquoted, continuations
 * joined; for an extended value (name* or name*0*) it keeps the charset'language'
 * prefix and the %XX escapes and extended is true (BODYSTRUCTURE then names it
 * "name*", as Dovecot does).  value is the value decoded to UTF-8: %XX undone and the
 * charset converted for an extended value, RFC 2047 words decoded otherwise (common
 * in filenames, though RFC 2047 5 forbids it). */
struct mime_param {
    const char *name;
    const char *raw;
    const char *value;
    bool extended;
};

enum mime_part_flags {
    MIME_PART_NO_END = 1,           /* multipart: no closing boundary "--b--" */
    MIME_PART_DEPTH_LIMIT = 2,      /* a multipart or message left unparsed (depth) */
    MIME_PART_BAD_BOUNDARY = 4,     /* multipart without a usable boundary */
    MIME_PART_SYNTHETIC = 8,        /* made up: the only part of a multipart that had
                                     * none (its header is empty, its body the whole
                                     * multipart body) */
    MIME_PART_HEADER_UNTERMINATED = 16, /* no empty line ended the header */
};

struct mime_part {
    struct mime_part *parent;   /* NULL for the message itself */
    struct mime_part *children; /* multipart: its parts; message/rfc822: one child, the
                                 * encapsulated message (header + body) */
    struct mime_part *next;     /* next sibling */
    unsigned nchildren;
    unsigned index;             /* 1-based among its siblings; 0 for the root */
    unsigned depth;             /* 0 for the root */
    unsigned flags;             /* enum mime_part_flags */

    /* In the buffer: header section [off, body_off) (its empty line included), body
     * [body_off, end).  For a part of a multipart, end is before the line end that
     * precedes the next boundary (RFC 2046 5.1.1: it belongs to the boundary). */
    size_t off, body_off, end;
    /* The same in "\r\n" octets, and the number of "\n" in the body (BODYSTRUCTURE's
     * lines).  The root's header_size + body_size is the message's RFC822.SIZE. */
    size_t header_size, body_size, body_lines;

    /* Content-Type, lower case; text/plain (charset us-ascii) when absent or broken,
     * message/rfc822 in a multipart/digest.  Never NULL. */
    const char *type, *subtype;
    struct mime_param *params;
    size_t nparams;
    bool type_given;            /* a valid Content-Type field was there */
    enum mime_encoding encoding;
    const char *encoding_name;  /* lower case as given, NULL when absent */
    /* Unfolded, trimmed values as given, NULL when the field is absent. */
    const char *id, *description, *md5, *language, *location;
    const char *disposition;    /* lower case, NULL when absent */
    struct mime_param *disp_params;
    size_t ndisp_params;
};

enum mime_msg_flags {
    MIME_MSG_DEPTH_LIMIT = 1,
    MIME_MSG_PARTS_LIMIT = 2,
    MIME_MSG_FIELDS_LIMIT = 4,      /* some header had more than MIME_HEADER_FIELDS_MAX */
    MIME_MSG_FIELD_CUT = 8,         /* some interpreted field was longer than
                                     * MIME_FIELD_MAX */
    MIME_MSG_NO_END = 16,           /* some multipart lacked its closing boundary */
    MIME_MSG_BAD_BOUNDARY = 32,
    MIME_MSG_NUL = 64,              /* NUL bytes somewhere */
};

struct mime_arena;

struct mime_msg {
    const char *buf;
    size_t len;
    struct mime_part *root;     /* the message: never NULL after mime_parse() */
    size_t nparts;              /* root included */
    unsigned flags;             /* enum mime_msg_flags */
    struct mime_arena *arena;   /* every string and part of the tree */
};

/* Builds the tree of buf[0..len).  Always returns 0 (content cannot make it fail;
 * out of memory is fatal).  Free with mime_free(). */
int mime_parse(struct mime_msg *m, const char *buf, size_t len);
void mime_free(struct mime_msg *m);

/* Part by IMAP part number ("1.2.3" as nums {1,2,3}, n 3; n 0 is the root), RFC 3501
 * 6.4.5: the parts of a multipart are numbered from 1; a message/rfc822 part's
 * numbers go to its encapsulated message's parts; the body of a message that is not
 * multipart is its part 1.  NULL when there is no such part. */
const struct mime_part *mime_part_lookup(const struct mime_msg *m, const unsigned *nums,
                                         size_t n);
/* Depth-first order (the root first); NULL after the last. */
const struct mime_part *mime_part_next(const struct mime_part *p);
/* Parameter by name (ASCII case-insensitive, name without '*'), NULL when absent. */
const struct mime_param *mime_param_find(const struct mime_param *params, size_t n,
                                         const char *name);
bool mime_part_is(const struct mime_part *p, const char *type, const char *subtype);
bool mime_part_is_multipart(const struct mime_part *p);
/* message/rfc822 (or message/global) whose encapsulated message was parsed. */
bool mime_part_is_message(const struct mime_part *p);

/* ---- header fields (mime_header.c) ---- */

/* One field of a header section. */
struct mime_field {
    const char *name;           /* into the buffer, name_len bytes */
    size_t name_len;
    const char *raw;            /* the whole field with its line ends (folded) */
    size_t raw_len;
};

/* Iterates the fields of the header section buf[0..len) (e.g. a part's
 * [off, body_off)).  Lines that are not fields (no colon, or a name with bad bytes)
 * are skipped; an empty line ends the section.  Returns 1 with f set, 0 at the end. */
struct mime_field_iter {
    const char *buf;
    size_t len, pos;
};
void mime_field_iter_init(struct mime_field_iter *it, const char *buf, size_t len);
int mime_field_next(struct mime_field_iter *it, struct mime_field *f);
/* The field's value unfolded (line ends before white space removed, the rest kept),
 * trimmed, at most max bytes (MIME_FIELD_MAX when 0); replaces out's contents.
 * Returns true when it was cut. */
bool mime_field_value(const struct mime_field *f, struct str *out, size_t max);
bool mime_field_is(const struct mime_field *f, const char *name);
/* The value of the first field called name in part p's header, as mime_field_value();
 * returns 1 when found, 0 when not (out is then ""). */
int mime_header_get(const struct mime_msg *m, const struct mime_part *p,
                    const char *name, struct str *out);

/* RFC 2047: appends value (an unfolded field value) to out with its encoded words
 * decoded and converted to UTF-8; white space between two encoded words is dropped.
 * Broken words stay as they are; bytes that are not valid UTF-8 outside words are
 * taken as ISO-8859-1 (so the output is always UTF-8). */
void mime_header_decode(const char *value, size_t len, struct str *out);

/* ---- transfer decoding (mime_decode.c) ---- */

/* Streaming decoder: feed any pieces, then finish.  Invalid input is skipped the
 * way RFC 2045 suggests (base64: non-alphabet bytes ignored; quoted-printable: a
 * bad "=" sequence kept literally).  Output beyond max (0: MIME_DECODE_MAX) is
 * dropped and *truncated reported by mime_decoder_finish. */
struct mime_decoder {
    enum mime_encoding enc;
    size_t max, written;
    bool truncated;
    unsigned bits, nbits;       /* base64: bits not yet written */
    bool b64_end;               /* base64: "=" seen */
    int qstate;                 /* quoted-printable: after "=", "=X", CR... */
    char qhex;
    char ws[80];                /* quoted-printable: white space that may be trailing */
    size_t nws;
};
void mime_decoder_init(struct mime_decoder *d, enum mime_encoding enc, size_t max);
void mime_decoder_update(struct mime_decoder *d, const char *in, size_t len,
                         struct str *out);
/* Returns true when output was dropped (over max). */
bool mime_decoder_finish(struct mime_decoder *d, struct str *out);
/* In one go; appends to out.  Returns 0, or 1 when the output was cut at max. */
int mime_decode(enum mime_encoding enc, const char *in, size_t len, struct str *out,
                size_t max);
/* Part p's body decoded (transfer encoding undone), appended to out.  Returns 0,
 * 1 when cut at max, -1 when the encoding is MIME_ENC_UNKNOWN (IMAP's
 * [UNKNOWN-CTE]; nothing appended). */
int mime_part_decode(const struct mime_msg *m, const struct mime_part *p,
                     struct str *out, size_t max);

/* ---- charsets (mime_charset.c) ---- */

/* Appends in[0..len) converted from charset to UTF-8.  NULL or "" charset means
 * us-ascii.  Returns 0 when the charset is known, -1 when it is not: the bytes are
 * then appended as they are when they are valid UTF-8, else as ISO-8859-1.  Bytes
 * that do not convert become U+FFFD.  Output bounded by max (0: MIME_DECODE_MAX). */
int mime_charset_to_utf8(const char *charset, const char *in, size_t len,
                         struct str *out, size_t max);
bool mime_charset_known(const char *charset);

/* Part p's text as UTF-8 for searching: transfer decoding, then the charset of a
 * text/ part converted (other parts: the decoded bytes).  Appends; returns as
 * mime_part_decode(). */
int mime_part_text(const struct mime_msg *m, const struct mime_part *p,
                   struct str *out, size_t max);

/* ---- IMAP (mime_imap.c, mime_envelope.c, mime_section.c) ---- */

/* An IMAP string: NIL when s is NULL, a quoted string when it can be one (no CR, LF,
 * NUL or 8-bit byte, at most 1000 bytes), else a literal {n}\r\n... (with 8-bit
 * bytes, a literal is what RFC 3501 asks; without UTF8=ACCEPT clients get it too). */
void mime_imap_string(struct str *out, const char *s, size_t n);
void mime_imap_nstring(struct str *out, const char *s);  /* NUL-terminated or NULL */

/* ENVELOPE of the message entity p (the root, or the child of a message/rfc822
 * part): "(date subject from sender reply-to to cc bcc in-reply-to message-id)".
 * sender and reply-to default to from (RFC 3501 7.4.2); groups are written as
 * (NIL NIL "group" NIL) ... (NIL NIL NIL NIL).  Appends to out. */
void mime_imap_envelope(const struct mime_msg *m, const struct mime_part *p,
                        struct str *out);
/* BODYSTRUCTURE (extended true) or BODY (false) of part p (usually m->root),
 * appended to out. */
void mime_imap_bodystructure(const struct mime_msg *m, const struct mime_part *p,
                             bool extended, struct str *out);

/* A section-spec of BODY[...] / BINARY[...]: part numbers then a text part. */
enum mime_section_text {
    MIME_SECT_NONE,             /* [] or [1.2]: the whole message or the part's body */
    MIME_SECT_HEADER,           /* [HEADER], [1.HEADER] */
    MIME_SECT_FIELDS,           /* [HEADER.FIELDS (A B)] */
    MIME_SECT_FIELDS_NOT,       /* [HEADER.FIELDS.NOT (A B)] */
    MIME_SECT_TEXT,             /* [TEXT], [1.TEXT] */
    MIME_SECT_MIME,             /* [1.MIME] (numbers required) */
};
#define MIME_SECTION_FIELDS_MAX 256
struct mime_section {
    unsigned nums[MIME_DEPTH_MAX + 2];
    size_t nnums;
    enum mime_section_text text;
    char **fields;              /* HEADER.FIELDS: names as given (xstrdup'ed) */
    size_t nfields;
};
/* Parses what is between the brackets (len bytes at s), e.g. "1.2.HEADER.FIELDS
 * (From \"To\")": field names are atoms or quoted strings (imapd turns literals into
 * quoted form first, or fills fields itself).  Keywords are case-insensitive.
 * Returns 0, or -1 on a syntax error (BAD).  Free with mime_section_free(). */
int mime_section_parse(const char *s, size_t len, struct mime_section *sec);
void mime_section_free(struct mime_section *sec);
/* Writes the section's canonical form (what goes between the brackets of the
 * response: keywords in upper case, field names as given, quoted when needed). */
void mime_section_format(const struct mime_section *sec, struct str *out);

enum mime_fetch_flags {
    MIME_FETCH_BINARY = 1,      /* BINARY[]: the part's body with its transfer
                                 * encoding undone (no text specifier allowed) */
    MIME_FETCH_RAW_EOL = 2,     /* keep bare "\n" (default: every bare "\n" becomes
                                 * "\r\n", matching the sizes of the tree) */
};
/* Appends the bytes of the section (before any <partial>) to out.  Returns 0; -1 when
 * the part does not exist or the spec does not apply (RFC 3501 lets the server answer
 * with an empty string; imapd decides); -2 for BINARY of an unknown transfer
 * encoding ([UNKNOWN-CTE]). */
int mime_section_fetch(const struct mime_msg *m, const struct mime_section *sec,
                       unsigned flags, struct str *out);
/* <origin.count> of RFC 3501 6.4.5: the window of data[0..len) to send. */
void mime_partial(size_t len, uint64_t origin, uint64_t count, size_t *start,
                  size_t *n);

/* ---- the walk (mime_walk.c): for content checks ---- */

enum mime_header_kind {
    MIME_HDR_PRIMARY,           /* a field of the message's own header (header_checks) */
    MIME_HDR_MIME,              /* a MIME field (Content-*, MIME-Version) of any part
                                 * below the top (mime_header_checks) */
    MIME_HDR_NESTED,            /* a non-MIME field of an attached message's header
                                 * (nested_header_checks) */
};
/* Postfix's split: the top-level Content-* fields are MIME_HDR_MIME too. */

struct mime_walk_ops {
    /* Each header field of each part in order.  value is unfolded and trimmed (not
     * RFC 2047 decoded: see mime_header_decode); raw is the field as in the message. */
    int (*header)(void *arg, const struct mime_part *p, enum mime_header_kind kind,
                  const struct mime_field *f, const char *value, size_t value_len);
    /* Each body line (no line end) of each leaf part: for text/ parts and
     * message/ parts that were not parsed, decoded (transfer encoding undone) and
     * converted to UTF-8; for other leaves the lines as they are in the message
     * (base64 of an attachment stays base64, as Postfix's body_checks see it), unless
     * MIME_WALK_DECODE_ALL.  Also the preamble/epilogue lines of multiparts, as
     * they are.  Lines longer than MIME_WALK_LINE_MAX come in pieces.  raw is the
     * line in the buffer with its line end (for the last line of a part, the one
     * before the boundary), when it is there whole: no transfer decoding undone and
     * not a piece (line may still differ from it by the charset conversion); NULL
     * (raw_len 0) otherwise. */
    int (*body_line)(void *arg, const struct mime_part *p, const char *line, size_t len,
                     const char *raw, size_t raw_len);
};
#define MIME_WALK_LINE_MAX 8192
enum mime_walk_flags {
    MIME_WALK_DECODE_ALL = 1,   /* every leaf decoded, not only text/ */
};
/* Calls ops for each part in message order (a part's header, then its body lines
 * or its parts).  A callback returning non-zero stops
 * the walk and mime_walk returns that value; else 0. */
int mime_walk(const struct mime_msg *m, const struct mime_walk_ops *ops, unsigned flags,
              void *arg);

#endif
