/* Unit tests for lib/mail/mime_decode.c, mime_charset.c, mime_header.c (RFC 2047),
 * mime_params.c (RFC 2231) and mime_walk.c.  Expected values come from the RFCs'
 * own examples (RFC 2047 section 8, RFC 2231 sections 3-4) and from hand decoding. */
#include "unit.h"

#include <stdlib.h>

#include "mime.h"
#include "xmalloc.h"

static const char *dec(enum mime_encoding enc, const char *in, size_t max, int *rc)
{
    static struct str s;

    str_clear(&s);
    *rc = mime_decode(enc, in, strlen(in), &s, max);
    return s.s;
}

/* The same input fed one byte at a time. */
static const char *dec_bytewise(enum mime_encoding enc, const char *in)
{
    static struct str s;
    struct mime_decoder d;

    str_clear(&s);
    mime_decoder_init(&d, enc, 0);
    for (size_t i = 0; in[i] != '\0'; i++)
        mime_decoder_update(&d, in + i, 1, &s);
    (void)mime_decoder_finish(&d, &s);
    return s.s;
}

TEST(quoted_printable)
{
    static const struct { const char *in, *out; } t[] = {
        { "caf=C3=A9", "caf\xc3\xa9" },
        { "caf=c3=a9", "caf\xc3\xa9" },             /* lower case: accepted */
        { "a=\r\nb", "ab" },                        /* soft line break */
        { "a=\nb", "ab" },
        { "a=  \r\nb", "ab" },                      /* white space after "=" */
        { "a  \r\nb\t\n", "a\r\nb\n" },             /* trailing white space goes */
        { "a b", "a b" },
        { "a =\r\nb", "a b" },
        { "end  ", "end" },
        { "=4", "=4" },                             /* broken "=" kept */
        { "=ZZx", "=ZZx" },
        { "=4Z", "=4Z" },
        { "a=", "a" },
        { "x\ry", "x\ry" },
        { "=\rx", "=\rx" },
        { "=3D=3d", "==" },
        { "", "" },
    };
    int rc;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        CHECK_STR(dec(MIME_ENC_QP, t[i].in, 0, &rc), t[i].out);
        CHECK(rc == 0);
        CHECK_STR(dec_bytewise(MIME_ENC_QP, t[i].in), t[i].out);
    }
    CHECK_STR(dec(MIME_ENC_QP, "abcdef", 3, &rc), "abc");
    CHECK(rc == 1);
}

TEST(base64)
{
    static const struct { const char *in, *out; } t[] = {
        { "QUJD", "ABC" }, { "QUI=", "AB" }, { "QQ==", "A" },
        { "QU\r\nJD\r\n", "ABC" }, { "Q!U@J#D", "ABC" },
        { "QQ==QUJD", "A" },                        /* nothing after the padding */
        { "4oKsIDEwMA==", "\xe2\x82\xac 100" },
        { "QUJ", "AB" }, { "", "" }, { "====", "" },
    };
    int rc;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        CHECK_STR(dec(MIME_ENC_BASE64, t[i].in, 0, &rc), t[i].out);
        CHECK_STR(dec_bytewise(MIME_ENC_BASE64, t[i].in), t[i].out);
    }
    CHECK_STR(dec(MIME_ENC_BASE64, "QUJDREVG", 2, &rc), "AB");
    CHECK(rc == 1);
    CHECK_STR(dec(MIME_ENC_7BIT, "as=is", 0, &rc), "as=is");
}

TEST(base64_huge_line)
{
    /* 3 MiB of base64 on one line: decoded, bounded by max */
    size_t n = 4u * 1024 * 1024;
    char *in = xmalloc(n + 1);
    struct str out = STR_INIT;

    for (size_t i = 0; i < n; i += 4)
        memcpy(in + i, "QUJD", 4);
    in[n] = '\0';
    CHECK(mime_decode(MIME_ENC_BASE64, in, n, &out, 0) == 0);
    CHECK(out.len == n / 4 * 3);
    str_clear(&out);
    CHECK(mime_decode(MIME_ENC_BASE64, in, n, &out, 1000) == 1);
    CHECK(out.len == 1000);
    str_free(&out);
    free(in);
}

static const char *conv(const char *cs, const char *in, size_t len, int *rc)
{
    static struct str s;

    str_clear(&s);
    *rc = mime_charset_to_utf8(cs, in, len, &s, 0);
    return s.s;
}

TEST(charsets)
{
    int rc;

    CHECK_STR(conv("ISO-8859-1", "caf\xe9", 4, &rc), "caf\xc3\xa9");
    CHECK(rc == 0);
    CHECK_STR(conv("windows-1252", "\x80", 1, &rc), "\xe2\x82\xac");
    CHECK_STR(conv("iso-8859-15", "\xa4", 1, &rc), "\xe2\x82\xac");
    /* stateful: ISO-2022-JP "こん" (JIS 0x2433 0x2473) */
    CHECK_STR(conv("iso-2022-jp", "\x1b$B$3$s\x1b(B!", 11, &rc),
              "\xe3\x81\x93\xe3\x82\x93!");
    CHECK(rc == 0);
    /* invalid UTF-8 in UTF-8: U+FFFD; valid passes */
    CHECK_STR(conv("utf-8", "a\xffz", 3, &rc), "a\xef\xbf\xbdz");
    CHECK_STR(conv("UTF8", "\xc3\xa9", 2, &rc), "\xc3\xa9");
    /* an unknown charset: UTF-8 if it is, else Latin-1 */
    CHECK_STR(conv("x-no-such-charset", "caf\xe9", 4, &rc), "caf\xc3\xa9");
    CHECK(rc == -1);
    CHECK_STR(conv("x-no-such-charset", "caf\xc3\xa9", 5, &rc), "caf\xc3\xa9");
    CHECK_STR(conv("../../etc/passwd", "ok", 2, &rc), "ok");
    CHECK(rc == -1);
    CHECK_STR(conv(NULL, "plain", 5, &rc), "plain");
    CHECK(rc == 0);
    /* a sequence cut at the end */
    CHECK_STR(conv("shift_jis", "a\x82", 2, &rc), "a\xef\xbf\xbd");
    CHECK(mime_charset_known("iso-8859-1"));
    CHECK(mime_charset_known("us-ascii"));
    CHECK(!mime_charset_known("x-no-such-charset"));
    CHECK(!mime_charset_known("a b"));
    /* bounded */
    {
        struct str s = STR_INIT;
        mime_charset_to_utf8("iso-8859-1", "\xe9\xe9\xe9\xe9", 4, &s, 5);
        CHECK_STR(s.s, "\xc3\xa9\xc3\xa9");      /* whole characters only */
        str_free(&s);
    }
}

static const char *hdec(const char *in)
{
    static struct str s;

    str_clear(&s);
    mime_header_decode(in, strlen(in), &s);
    return s.s;
}

TEST(rfc2047)
{
    /* RFC 2047 section 8 */
    CHECK_STR(hdec("=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>"),
              "Keith Moore <moore@cs.utk.edu>");
    CHECK_STR(hdec("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?="), "Keld J\xc3\xb8rn Simonsen");
    CHECK_STR(hdec("=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>"),
              "Andr\xc3\xa9 Pirard <PIRARD@vm1.ulg.ac.be>");
    CHECK_STR(hdec("=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= "
                   "=?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?="),
              "If you can read this you understand the example.");
    CHECK_STR(hdec("(=?ISO-8859-1?Q?a?=)"), "(a)");
    CHECK_STR(hdec("(=?ISO-8859-1?Q?a?= b)"), "(a b)");
    CHECK_STR(hdec("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)"), "(ab)");
    CHECK_STR(hdec("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)"), "(ab)");
    CHECK_STR(hdec("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)"), "(ab)");
    CHECK_STR(hdec("(=?ISO-8859-1?Q?a_b?=)"), "(a b)");
    CHECK_STR(hdec("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)"), "(a b)");
    /* a UTF-8 character split over two words */
    CHECK_STR(hdec("=?UTF-8?B?ww==?= =?UTF-8?B?qQ==?="), "\xc3\xa9");
    /* RFC 2231 section 5: a language */
    CHECK_STR(hdec("=?US-ASCII*EN?Q?Keith_Moore?="), "Keith Moore");
    /* broken words stay as they are */
    CHECK_STR(hdec("=?utf-8?Q?a b?="), "=?utf-8?Q?a b?=");
    CHECK_STR(hdec("=?utf-8?B?###?="), "=?utf-8?B?###?=");
    CHECK_STR(hdec("=?utf-8?X?abc?="), "=?utf-8?X?abc?=");
    CHECK_STR(hdec("=?utf-8?Q?abc"), "=?utf-8?Q?abc");
    CHECK_STR(hdec("=??Q?abc?="), "=??Q?abc?=");
    CHECK_STR(hdec("=?"), "=?");
    /* unknown charset: Latin-1 guess; raw 8-bit text likewise */
    CHECK_STR(hdec("=?x-unknown?Q?caf=E9?="), "caf\xc3\xa9");
    CHECK_STR(hdec("caf\xe9 ok"), "caf\xc3\xa9 ok");
    CHECK_STR(hdec("caf\xc3\xa9"), "caf\xc3\xa9");
    CHECK_STR(hdec("a  b"), "a  b");
}

static const struct mime_part *first_leaf(const char *msg, struct mime_msg *m)
{
    mime_parse(m, msg, strlen(msg));
    return m->root;
}

TEST(rfc2231)
{
    struct mime_msg m;
    const struct mime_part *p;
    const struct mime_param *t;

    /* RFC 2231 section 4.1 */
    p = first_leaf("Content-Type: application/x-stuff;\r\n"
                   " title*0*=us-ascii'en'This%20is%20even%20more%20;\r\n"
                   " title*1*=%2A%2A%2Afun%2A%2A%2A%20;\r\n"
                   " title*2=\"isn't it!\"\r\n\r\n", &m);
    t = mime_param_find(p->params, p->nparams, "title");
    CHECK(t != NULL && t->extended);
    CHECK(t != NULL && strcmp(t->value, "This is even more ***fun*** isn't it!") == 0);
    CHECK(t != NULL && strcmp(t->raw, "us-ascii'en'This%20is%20even%20more%20"
                                      "%2A%2A%2Afun%2A%2A%2A%20isn't it!") == 0);
    mime_free(&m);

    /* section 4 */
    p = first_leaf("Content-Type: application/x-stuff;\r\n"
                   " title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A\r\n\r\n", &m);
    t = mime_param_find(p->params, p->nparams, "TITLE");
    CHECK(t != NULL && strcmp(t->value, "This is ***fun***") == 0);
    mime_free(&m);

    /* section 3: continuations, here out of order, and a gap */
    p = first_leaf("Content-Type: message/external-body; access-type=URL;\r\n"
                   " URL*1=\"cp/ietf/\"; URL*0=\"ftp://\"; URL*2=\"x\"; other*0=a; other*2=c\r\n"
                   "\r\n", &m);
    t = mime_param_find(p->params, p->nparams, "url");
    CHECK(t != NULL && !t->extended && strcmp(t->value, "ftp://cp/ietf/x") == 0);
    t = mime_param_find(p->params, p->nparams, "other");
    CHECK(t != NULL && strcmp(t->value, "a") == 0);
    t = mime_param_find(p->params, p->nparams, "access-type");
    CHECK(t != NULL && strcmp(t->raw, "URL") == 0);
    mime_free(&m);

    /* Latin-1 file name; an RFC 2047 one in quotes; the first of two wins */
    p = first_leaf("Content-Type: text/plain; name=\"=?utf-8?B?w6k=?=.txt\"; name=x\r\n"
                   "Content-Disposition: attachment; filename*=iso-8859-1''caf%E9.txt\r\n"
                   "\r\n", &m);
    t = mime_param_find(p->params, p->nparams, "name");
    CHECK(t != NULL && strcmp(t->value, "\xc3\xa9.txt") == 0);
    CHECK(t != NULL && strcmp(t->raw, "=?utf-8?B?w6k=?=.txt") == 0);
    CHECK(strcmp(p->disposition, "attachment") == 0);
    t = mime_param_find(p->disp_params, p->ndisp_params, "filename");
    CHECK(t != NULL && strcmp(t->value, "caf\xc3\xa9.txt") == 0);
    mime_free(&m);

    /* comments, odd spacing, a parameter without "=", too many parameters */
    {
        struct str s = STR_INIT;
        str_appends(&s, "Content-Type: (c) text (d) / (e) plain (f) ; junk ; "
                        "charset = (g) \"utf-8\"");
        for (int i = 0; i < 3 * MIME_PARAMS_MAX; i++)
            str_printf(&s, "; p%d=%d", i, i);
        str_appends(&s, "\r\n\r\n");
        p = first_leaf(s.s, &m);
        CHECK(strcmp(p->type, "text") == 0 && strcmp(p->subtype, "plain") == 0);
        t = mime_param_find(p->params, p->nparams, "charset");
        CHECK(t != NULL && strcmp(t->value, "utf-8") == 0);
        CHECK(p->nparams <= MIME_PARAMS_MAX);
        mime_free(&m);
        str_free(&s);
    }
}

/* The walk over RFC-style nested message: every field with its class, every body
 * line in message order, text decoded. */
struct rec {
    struct str log;
};

static int on_header(void *arg, const struct mime_part *p, enum mime_header_kind kind,
                     const struct mime_field *f, const char *value, size_t value_len)
{
    struct rec *r = arg;
    static const char k[] = { 'P', 'M', 'N' };

    str_printf(&r->log, "%c:%.*s=%.*s|", k[kind], (int)f->name_len, f->name,
               (int)value_len, value);
    return 0;
}

static int on_line(void *arg, const struct mime_part *p, const char *line, size_t len,
                   const char *raw, size_t raw_len)
{
    struct rec *r = arg;

    (void)raw;
    (void)raw_len;

    str_appends(&r->log, "L:");
    str_append(&r->log, line, len);
    str_appendc(&r->log, '|');
    return strncmp(line, "STOP", len < 4 ? len : 4) == 0 && len >= 4 ? 7 : 0;
}

TEST(walk)
{
    static const char msg[] =
        "From: a@b.example\r\n"
        "Content-Type: multipart/mixed; boundary=\"o\"\r\n"
        "\r\n"
        "pre\r\n"
        "--o\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "X-Part: 1\r\n"
        "\r\n"
        "caf=E9=\r\n"
        "s\r\n"
        "line two\r\n"
        "--o\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        "Subject: inner\r\n"
        "\r\n"
        "inner body\r\n"
        "--o\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "QUJD\r\n"
        "--o--\r\n"
        "epi\r\n";
    struct mime_walk_ops ops = { on_header, on_line };
    struct mime_msg m;
    struct rec r = { STR_INIT };

    mime_parse(&m, msg, sizeof(msg) - 1);
    CHECK(mime_walk(&m, &ops, 0, &r) == 0);
    CHECK_STR(r.log.s,
              "P:From=a@b.example|M:Content-Type=multipart/mixed; boundary=\"o\"|"
              "L:pre|L:--o|"
              "M:Content-Type=text/plain; charset=iso-8859-1|"
              "M:Content-Transfer-Encoding=quoted-printable|M:X-Part=1|"
              "L:caf\xc3\xa9s|L:line two|L:--o|"
              "M:Content-Type=message/rfc822|N:Subject=inner|L:inner body|L:--o|"
              "M:Content-Type=application/octet-stream|M:Content-Transfer-Encoding=base64|"
              "L:QUJD|L:--o--|L:epi|");
    str_clear(&r.log);
    CHECK(mime_walk(&m, &ops, MIME_WALK_DECODE_ALL, &r) == 0);
    CHECK(strstr(r.log.s, "|L:ABC|L:--o--|") != NULL);
    mime_free(&m);

    /* a callback stops the walk */
    {
        static const char two[] = "Subject: x\r\n\r\nfirst\r\nSTOP\r\nnot seen\r\n";
        str_clear(&r.log);
        mime_parse(&m, two, sizeof(two) - 1);
        CHECK(mime_walk(&m, &ops, 0, &r) == 7);
        CHECK_STR(r.log.s, "P:Subject=x|L:first|L:STOP|");
        mime_free(&m);
    }

    /* a long line comes in pieces of at most MIME_WALK_LINE_MAX */
    {
        struct str big = STR_INIT;
        str_appends(&big, "Subject: x\r\n\r\n");
        for (int i = 0; i < 3 * MIME_WALK_LINE_MAX; i++)
            str_appendc(&big, 'a');
        str_appends(&big, "\r\n");
        str_clear(&r.log);
        mime_parse(&m, big.s, big.len);
        CHECK(mime_walk(&m, &ops, 0, &r) == 0);
        CHECK(r.log.len == strlen("P:Subject=x|") + 3 * (3 + MIME_WALK_LINE_MAX));
        mime_free(&m);
        str_free(&big);
    }
    str_free(&r.log);
}

/* Each line with what the walk says are its bytes in the message: "line=[raw]|" or
 * "line=NULL|". */
struct raws {
    const struct mime_msg *m;
    struct str log;
    size_t bad;                 /* raw outside the buffer, or not the line's bytes */
};

static int on_raw(void *arg, const struct mime_part *p, const char *line, size_t len,
                  const char *raw, size_t raw_len)
{
    struct raws *x = arg;
    const char *b = x->m->buf;

    (void)p;
    str_append(&x->log, line, len);
    if (raw == NULL) {
        if (raw_len != 0)
            x->bad++;
        str_appends(&x->log, "=NULL|");
        return 0;
    }
    if (raw < b || raw > b + x->m->len || raw_len > (size_t)(b + x->m->len - raw)
        || raw_len < len || memcmp(raw, line, len) != 0)
        x->bad++;
    else
        str_printf(&x->log, "=[%.*s]|", (int)raw_len, raw);
    return 0;
}

static void walk_raw(struct raws *x, const char *msg, size_t len, unsigned flags)
{
    struct mime_walk_ops ops = { NULL, on_raw };
    struct mime_msg m;

    mime_parse(&m, msg, len);
    x->m = &m;
    str_clear(&x->log);
    x->bad = 0;
    CHECK(mime_walk(&m, &ops, flags, x) == 0);
    mime_free(&m);
}

/* A whole line that is not transfer-decoded points into the message, with its line
 * end (the last line of a part: the one before the boundary); decoded lines and
 * pieces of long lines do not. */
TEST(walk_points_into_the_message)
{
    static const char msg[] =
        "Subject: x\r\n"
        "Content-Type: multipart/mixed; boundary=\"o\"\r\n"
        "\r\n"
        "pre\r\n"
        "--o\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "one\r\n"
        "two\r\n"
        "--o\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "YWJjCg==\r\n"
        "--o\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "q=3Dp\r\n"
        "--o\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "QUJD\r\n"
        "--o--\r\n"
        "epi\n";
    struct raws x = { NULL, STR_INIT, 0 };

    walk_raw(&x, msg, sizeof(msg) - 1, 0);
    CHECK(x.bad == 0);
    CHECK_STR(x.log.s, "pre=[pre\r\n]|--o=[--o\r\n]|one=[one\r\n]|two=[two\r\n]|"
                       "--o=[--o\r\n]|abc=NULL|--o=[--o\r\n]|q=p=NULL|--o=[--o\r\n]|"
                       "QUJD=[QUJD\r\n]|--o--=[--o--\r\n]|epi=[epi\n]|");
    /* decoded when asked to: no longer the message's bytes */
    walk_raw(&x, msg, sizeof(msg) - 1, MIME_WALK_DECODE_ALL);
    CHECK(x.bad == 0);
    CHECK(strstr(x.log.s, "|ABC=NULL|") != NULL);

    /* bare "\n" line ends; a last line without one */
    {
        static const char plain[] = "Subject: y\n\nhello\n\nlast";
        walk_raw(&x, plain, sizeof(plain) - 1, 0);
        CHECK(x.bad == 0);
        CHECK_STR(x.log.s, "hello=[hello\n]|=[\n]|last=[last]|");
    }

    /* a long line comes in pieces without raw, text or not; the next line has it */
    for (int t = 0; t < 2; t++) {
        struct str big = STR_INIT;
        str_appends(&big, t ? "Content-Type: image/png\r\n\r\n" : "Subject: x\r\n\r\n");
        for (int i = 0; i < MIME_WALK_LINE_MAX + 10; i++)
            str_appendc(&big, 'a');
        str_appends(&big, "\r\nok\r\n");
        walk_raw(&x, big.s, big.len, 0);
        CHECK(x.bad == 0);
        static const char end[] = "=NULL|ok=[ok\r\n]|";
        CHECK(x.log.len > sizeof(end)
              && strcmp(x.log.s + x.log.len - (sizeof(end) - 1), end) == 0);
        CHECK(strstr(x.log.s, "=[a") == NULL);
        str_free(&big);
    }

    /* lines across the chunks the text is decoded in keep their place */
    {
        struct str big = STR_INIT;
        size_t n = 0;
        str_appends(&big, "Subject: x\r\n\r\n");
        for (int i = 0; i < 20000; i++)
            str_printf(&big, "line %05d\r\n", i);
        walk_raw(&x, big.s, big.len, 0);
        CHECK(x.bad == 0);
        for (const char *q = x.log.s; (q = strstr(q, "\r\n]|")) != NULL; q++)
            n++;
        CHECK(n == 20000);
        CHECK(strstr(x.log.s, "line 12345=[line 12345\r\n]|") != NULL);
        str_free(&big);
    }
    str_free(&x.log);
}

/* What SEARCH reads: each part's text decoded and in UTF-8; a header by name. */
TEST(part_text_and_header_get)
{
    static const char msg[] =
        "Subject: =?iso-8859-1?q?caf=E9?=\r\n"
        "subject: second\r\n"
        "X-Folded: a\r\n"
        " b\r\n"
        "Content-Type: multipart/mixed; boundary=z\r\n"
        "\r\n"
        "--z\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "na=EFve=\r\n"
        " text\r\n"
        "--z\r\n"
        "Content-Type: text/html; charset=koi8-r\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "0NLJ18XU\r\n"
        "--z\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: x-uuencode\r\n"
        "\r\n"
        "begin 644 x\r\n"
        "--z--\r\n";
    struct mime_msg m;
    struct str s = STR_INIT, d = STR_INIT;
    const struct mime_part *p;
    unsigned n1[] = { 1 }, n2[] = { 2 }, n3[] = { 3 };
    struct mime_section sec;

    mime_parse(&m, msg, sizeof(msg) - 1);
    CHECK(mime_header_get(&m, m.root, "SUBJECT", &s) == 1);
    CHECK_STR(s.s, "=?iso-8859-1?q?caf=E9?=");
    mime_header_decode(s.s, s.len, &d);
    CHECK_STR(d.s, "caf\xc3\xa9");
    CHECK(mime_header_get(&m, m.root, "x-folded", &s) == 1);
    CHECK_STR(s.s, "a b");
    CHECK(mime_header_get(&m, m.root, "x-none", &s) == 0 && s.len == 0);

    p = mime_part_lookup(&m, n1, 1);
    str_clear(&s);
    CHECK(p != NULL && mime_part_text(&m, p, &s, 0) == 0);
    CHECK_STR(s.s, "na\xc3\xafve text");
    /* KOI8-R "привет" */
    p = mime_part_lookup(&m, n2, 1);
    str_clear(&s);
    CHECK(p != NULL && mime_part_text(&m, p, &s, 0) == 0);
    CHECK_STR(s.s, "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
    str_clear(&s);
    CHECK(p != NULL && mime_part_decode(&m, p, &s, 0) == 0);
    CHECK_STR(s.s, "\xd0\xd2\xc9\xd7\xc5\xd4");
    p = mime_part_lookup(&m, n3, 1);
    str_clear(&s);
    CHECK(p != NULL && p->encoding == MIME_ENC_UNKNOWN);
    CHECK(p != NULL && mime_part_text(&m, p, &s, 0) == -1 && s.len == 0);
    CHECK(mime_section_parse("3", 1, &sec) == 0);
    CHECK(mime_section_fetch(&m, &sec, MIME_FETCH_BINARY, &s) == -2);
    mime_section_free(&sec);
    /* depth-first order */
    p = m.root;
    CHECK((p = mime_part_next(p)) != NULL && p->index == 1);
    CHECK((p = mime_part_next(p)) != NULL && p->index == 2);
    CHECK((p = mime_part_next(p)) != NULL && p->index == 3);
    CHECK(mime_part_next(p) == NULL);
    mime_free(&m);
    str_free(&s);
    str_free(&d);
}
