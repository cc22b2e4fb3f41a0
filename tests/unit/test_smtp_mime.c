/* Unit tests for the SMTP client's 8-bit to quoted-printable conversion
 * (smtp/smtp_mime.c, built into this test program): which parts are converted, the
 * fields rewritten, the encoding itself, and encoded lines that must not look like a
 * boundary. */
#include "unit.h"

#include "../../smtp/smtp_mime.c"
#include "str.h"

static int collect(void *arg, const char *data, size_t len)
{
    str_append(arg, data, len);
    return 0;
}

/* Scans then converts msg as smtp_data_send() does; returns the 8-bit leaves. */
static size_t convert(const char *msg, struct str *out)
{
    struct smtp_mime *scan = smtp_mime_new(NULL, NULL, NULL), *conv;
    size_t parts8;

    str_clear(out);
    CHECK(smtp_mime_feed(scan, msg, strlen(msg)) == 0);
    CHECK(smtp_mime_finish(scan) == 0);
    conv = smtp_mime_new(scan, collect, out);
    CHECK(smtp_mime_feed(conv, msg, strlen(msg)) == 0);
    CHECK(smtp_mime_finish(conv) == 0);
    parts8 = smtp_mime_parts8(scan);
    smtp_mime_free(conv);
    smtp_mime_free(scan);
    return parts8;
}

/* Lines of s equal to line (without its '\n'). */
static size_t count_lines(const char *s, const char *line)
{
    size_t n = 0, len = strlen(line);

    for (const char *p = s; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (l == len && memcmp(p, line, len) == 0)
            n++;
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

TEST(single_part)
{
    struct str out = STR_INIT;

    CHECK(convert("Subject: x\n\nplain\n", &out) == 0);
    CHECK_STR(out.s, "Subject: x\n\nplain\n");
    CHECK(convert("Subject: x\nContent-Transfer-Encoding: 8bit\n\ncaf\xc3\xa9 = ok \n", &out) == 1);
    CHECK_STR(out.s, "Subject: x\nMIME-Version: 1.0\n"
                     "Content-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 =3D ok=20\n");
    /* base64 is not an identity encoding: left alone */
    CHECK(convert("Content-Transfer-Encoding: base64\n\n\xff\n", &out) == 1);
    CHECK_STR(out.s, "Content-Transfer-Encoding: base64\n\n\xff\n");
    str_free(&out);
}

/* A soft line break must not leave a '-' at the start of an encoded line: the line
 * after it could be the enclosing multipart's boundary ("--b1"), and the part would
 * end there for the reader. */
TEST(no_boundary_after_soft_break)
{
    struct str msg = STR_INIT, out = STR_INIT;
    char fill[70];

    memset(fill, 'a', sizeof(fill) - 1);
    fill[sizeof(fill) - 1] = '\0';
    /* "=C3=A9" and 69 'a' fill the 75 columns before a soft break */
    str_printf(&msg, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b1\n\n"
                     "--b1\nContent-Type: text/plain\n\n\xc3\xa9%s--b1\n"
                     "-\xc3\xa9 dash first\n--b1--\n", fill);
    CHECK(convert(msg.s, &out) == 1);
    CHECK(count_lines(out.s, "--b1") == 1);
    CHECK(count_lines(out.s, "--b1--") == 1);
    CHECK(strstr(out.s, "\n--b1\n") != NULL && strstr(out.s, "\n--b1--\n") != NULL);
    CHECK(strstr(out.s, "=C3=A9aaaa") != NULL);
    CHECK(strstr(out.s, "a=\n=2D-b1\n=2D=C3=A9 dash first\n--b1--\n") != NULL);
    for (const char *p = strstr(out.s, "quoted-printable\n\n"); p != NULL && *p; ) {
        const char *nl = strchr(p, '\n');
        if (nl == NULL || strncmp(nl + 1, "--b1--", 6) == 0)
            break;
        CHECK(nl[1] != '-');
        p = nl + 1;
    }
    str_free(&msg);
    str_free(&out);
}
