/* Milter client: frames, option negotiation and the stages of the Sendmail mail
 * filter protocol version 6 (see milter.h).  Written from the protocol's public
 * description (libmilter's documentation and Postfix's MILTER_README); nothing a
 * filter sends is trusted beyond the checks here. */
#include "milter.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sock.h"
#include "stream.h"
#include "xmalloc.h"

/* Commands (client to filter). */
#define SMFIC_ABORT 'A'
#define SMFIC_BODY 'B'
#define SMFIC_CONNECT 'C'
#define SMFIC_MACRO 'D'
#define SMFIC_BODYEOB 'E'
#define SMFIC_HELO 'H'
#define SMFIC_HEADER 'L'
#define SMFIC_MAIL 'M'
#define SMFIC_EOH 'N'
#define SMFIC_OPTNEG 'O'
#define SMFIC_QUIT 'Q'
#define SMFIC_RCPT 'R'
#define SMFIC_DATA 'T'

/* Replies and end-of-message actions (filter to client). */
#define SMFIR_ADDRCPT '+'
#define SMFIR_DELRCPT '-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_ACCEPT 'a'
#define SMFIR_REPLBODY 'b'
#define SMFIR_CONTINUE 'c'
#define SMFIR_DISCARD 'd'
#define SMFIR_CHGFROM 'e'
#define SMFIR_ADDHEADER 'h'
#define SMFIR_INSHEADER 'i'
#define SMFIR_CHGHEADER 'm'
#define SMFIR_PROGRESS 'p'
#define SMFIR_QUARANTINE 'q'
#define SMFIR_REJECT 'r'
#define SMFIR_SKIP 's'
#define SMFIR_TEMPFAIL 't'
#define SMFIR_REPLYCODE 'y'

/* Actions offered at negotiation. */
#define SMFIF_ADDHDRS 0x01
#define SMFIF_CHGBODY 0x02
#define SMFIF_ADDRCPT 0x04
#define SMFIF_DELRCPT 0x08
#define SMFIF_CHGHDRS 0x10
#define SMFIF_QUARANTINE 0x20
#define SMFIF_CHGFROM 0x40
#define SMFIF_ADDRCPT_PAR 0x80
#define SMFIF_SETSYMLIST 0x100
#define MILTER_ACTIONS (SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT \
                        | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_CHGFROM \
                        | SMFIF_ADDRCPT_PAR | SMFIF_SETSYMLIST)

/* Protocol steps a filter may skip (NO*) or not answer (NR_*). */
#define SMFIP_NOCONNECT 0x1
#define SMFIP_NOHELO 0x2
#define SMFIP_NOMAIL 0x4
#define SMFIP_NORCPT 0x8
#define SMFIP_NOBODY 0x10
#define SMFIP_NOHDRS 0x20
#define SMFIP_NOEOH 0x40
#define SMFIP_NR_HDR 0x80
#define SMFIP_NOUNKNOWN 0x100
#define SMFIP_NODATA 0x200
#define SMFIP_SKIP 0x400
#define SMFIP_NR_CONN 0x1000
#define SMFIP_NR_HELO 0x2000
#define SMFIP_NR_MAIL 0x4000
#define SMFIP_NR_RCPT 0x8000
#define SMFIP_NR_DATA 0x10000
#define SMFIP_NR_UNKN 0x20000
#define SMFIP_NR_EOH 0x40000
#define SMFIP_NR_BODY 0x80000
#define MILTER_PROTOCOL (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT \
                         | SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NR_HDR \
                         | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_SKIP | SMFIP_NR_CONN \
                         | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA \
                         | SMFIP_NR_UNKN | SMFIP_NR_EOH | SMFIP_NR_BODY)

struct milter {
    char *spec;
    char *host;                 /* inet: address; unix: NULL */
    char *path;                 /* unix: socket path */
    unsigned port;
    struct milter_timeouts t;
    struct stream *st;          /* NULL until connected */
    bool failed;
    bool done;                  /* accepted or rejected this message */
    bool skip_body;             /* the filter said SKIP to a body chunk */
    bool in_msg;                /* MAIL sent, end of message not answered yet */
    bool session_done;          /* accepted at CONNECT or HELO: the whole session */
    uint32_t actions;           /* agreed at negotiation */
    uint32_t protocol;
    struct str macros;          /* a pending SMFIC_MACRO frame's data */
    char macro_stage;
};

void milter_result_init(struct milter_result *r)
{
    /* Nothing allocated: milter_result_free leaves r ready for use again, and a
     * result freed twice leaks nothing. */
    memset(r, 0, sizeof(*r));
    r->verdict = MILTER_CONTINUE;
    r->reply = (struct str)STR_INIT;
    r->reason = (struct str)STR_INIT;
}

void milter_result_free(struct milter_result *r)
{
    for (size_t i = 0; i < r->nmods; i++) {
        free(r->mods[i].name);
        str_free(&r->mods[i].value);
    }
    free(r->mods);
    str_free(&r->reply);
    str_free(&r->reason);
    milter_result_init(r);
}

int milter_new(const char *spec, const struct milter_timeouts *t, struct milter **out,
               struct str *err)
{
    struct milter *m;

    if (strncmp(spec, "inet:", 5) == 0) {
        const char *hp = spec + 5, *colon = strrchr(hp, ':');
        char *end;
        unsigned long port;
        size_t hlen;

        if (colon == NULL || colon == hp) {
            str_printf(err, "milter %s: not inet:host:port", spec);
            return -1;
        }
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (*end != '\0' || colon[1] == '\0' || port == 0 || port > 65535 || errno) {
            str_printf(err, "milter %s: bad port", spec);
            return -1;
        }
        hlen = (size_t)(colon - hp);
        if (hp[0] == '[' && hlen >= 2 && hp[hlen - 1] == ']') {
            hp++;
            hlen -= 2;
        }
        m = xcalloc(1, sizeof(*m));
        m->host = xstrndup(hp, hlen);
        m->port = (unsigned)port;
    } else if (strncmp(spec, "unix:", 5) == 0 && spec[5] != '\0') {
        m = xcalloc(1, sizeof(*m));
        m->path = xstrdup(spec + 5);
    } else {
        str_printf(err, "milter %s: not inet:host:port or unix:path", spec);
        return -1;
    }
    m->spec = xstrdup(spec);
    m->t = *t;
    str_init(&m->macros);
    *out = m;
    return 0;
}

static void quit(struct milter *m)
{
    static const unsigned char q[5] = { 0, 0, 0, 1, SMFIC_QUIT };

    if (m->st != NULL) {
        if (!m->failed) {
            stream_set_timeout(m->st, m->t.command_ms);
            (void)stream_write(m->st, q, sizeof(q));
            (void)stream_flush(m->st);
        }
        stream_close(m->st);
        m->st = NULL;
    }
}

void milter_free(struct milter *m)
{
    if (m == NULL)
        return;
    quit(m);
    free(m->spec);
    free(m->host);
    free(m->path);
    str_free(&m->macros);
    free(m);
}

const char *milter_name(const struct milter *m)
{
    return m->spec;
}

bool milter_failed(const struct milter *m)
{
    return m->failed;
}

bool milter_done(const struct milter *m)
{
    return m->failed || m->done || m->session_done;
}

static void fail(struct milter *m, struct milter_result *r, const char *fmt, const char *what)
{
    if (!m->failed)
        log_warn("milter %s: %s%s", m->spec, fmt, what ? what : "");
    m->failed = true;
    if (m->st != NULL) {
        stream_close(m->st);
        m->st = NULL;
    }
    if (r != NULL)
        r->verdict = MILTER_FAILED;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Queues one frame (flushed by the reply read, or by flush). */
static int send_frame(struct milter *m, char cmd, const void *data, size_t len)
{
    unsigned char hdr[5];

    put32(hdr, (uint32_t)len + 1);
    hdr[4] = (unsigned char)cmd;
    stream_set_timeout(m->st, m->t.command_ms);
    if (stream_write(m->st, hdr, sizeof(hdr)) < 0 || (len > 0 && stream_write(m->st, data, len) < 0))
        return -1;
    return 0;
}

/* Reads one frame: its letter in *cmd and its data in buf.  0, or -1 with why. */
static int read_frame(struct milter *m, int timeout_ms, char *cmd, struct str *buf,
                      const char **why)
{
    unsigned char hdr[4];
    uint32_t len;

    stream_set_timeout(m->st, timeout_ms);
    if (stream_flush(m->st) < 0) {
        *why = errno == ETIMEDOUT ? "timeout while sending" : "write error";
        return -1;
    }
    if (stream_read_full(m->st, hdr, 4) < 0) {
        *why = errno == ETIMEDOUT ? "timeout while waiting for a reply"
                                  : "connection closed or read error";
        return -1;
    }
    len = get32(hdr);
    if (len == 0 || len > MILTER_FRAME_MAX) {
        *why = "bad frame length";
        return -1;
    }
    str_clear(buf);
    str_reserve(buf, len);
    if (stream_read_full(m->st, buf->s, len) < 0) {
        *why = errno == ETIMEDOUT ? "timeout in a frame" : "connection closed in a frame";
        return -1;
    }
    *cmd = buf->s[0];
    memmove(buf->s, buf->s + 1, len - 1);
    buf->len = len - 1;
    buf->s[buf->len] = '\0';
    return 0;
}

static int negotiate(struct milter *m, struct milter_result *r)
{
    unsigned char opt[12];
    struct str buf = STR_INIT;
    const char *why = NULL;
    int fd;
    char cmd;

    if (m->path != NULL)
        fd = sock_connect_unix(m->path, m->t.connect_ms);
    else
        fd = sock_connect_inet(m->host, m->port, m->t.connect_ms);
    if (fd < 0) {
        fail(m, r, "cannot connect: ", strerror(errno));
        return -1;
    }
    m->st = stream_fdopen(fd);
    put32(opt, MILTER_VERSION);
    put32(opt + 4, MILTER_ACTIONS);
    put32(opt + 8, MILTER_PROTOCOL);
    if (send_frame(m, SMFIC_OPTNEG, opt, sizeof(opt)) < 0
        || read_frame(m, m->t.connect_ms, &cmd, &buf, &why) < 0) {
        fail(m, r, "negotiation: ", why ? why : "write error");
        str_free(&buf);
        return -1;
    }
    if (cmd != SMFIC_OPTNEG || buf.len < 12) {
        fail(m, r, "negotiation: ", "bad reply");
        str_free(&buf);
        return -1;
    }
    {
        const unsigned char *p = (const unsigned char *)buf.s;
        uint32_t version = get32(p), actions = get32(p + 4), protocol = get32(p + 8);

        if (version < 2 || version > MILTER_VERSION) {
            fail(m, r, "negotiation: ", "unsupported protocol version");
            str_free(&buf);
            return -1;
        }
        if ((actions & ~(uint32_t)MILTER_ACTIONS) || (protocol & ~(uint32_t)MILTER_PROTOCOL)) {
            fail(m, r, "negotiation: ", "the filter asks for what was not offered");
            str_free(&buf);
            return -1;
        }
        m->actions = actions;
        m->protocol = protocol;
    }
    str_free(&buf);
    return 0;
}

void milter_macros(struct milter *m, char stage, const char *const *pairs)
{
    str_clear(&m->macros);
    m->macro_stage = stage;
    str_appendc(&m->macros, stage);
    for (size_t i = 0; pairs[i] != NULL && pairs[i + 1] != NULL; i += 2) {
        str_append(&m->macros, pairs[i], strlen(pairs[i]) + 1);
        str_append(&m->macros, pairs[i + 1], strlen(pairs[i + 1]) + 1);
    }
}

/* A reply with text: "CODE X.Y.Z text" of a REPLYCODE, checked. */
static bool replycode_ok(const char *s, size_t len)
{
    if (len < 3 || !(s[0] == '4' || s[0] == '5') || s[1] < '0' || s[1] > '9' || s[2] < '0'
        || s[2] > '9' || (len > 3 && s[3] != ' ' && s[3] != '-'))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

static void add_mod(struct milter_result *r, enum milter_mod_type type, unsigned long index,
                    const char *name, const char *value, size_t vlen)
{
    struct milter_mod *md;

    r->mods = xreallocarray(r->mods, r->nmods + 1, sizeof(*r->mods));
    md = &r->mods[r->nmods++];
    md->type = type;
    md->index = index;
    md->name = name ? xstrdup(name) : NULL;
    str_init(&md->value);
    str_set(&md->value, value, vlen);
}

/* A header field name (RFC 5322 2.2: printable ASCII but ':'), at most 200 bytes. */
static bool field_name_ok(const char *name)
{
    size_t n = 0;

    for (; name[n] != '\0'; n++)
        if ((unsigned char)name[n] <= 32 || (unsigned char)name[n] >= 127 || name[n] == ':')
            return false;
    return n > 0 && n <= 200;
}

/* Splits data into n NUL-terminated strings: true when exactly that many (at least)
 * fit inside len. */
static bool strings(const char *data, size_t len, const char **out, size_t n)
{
    size_t pos = 0;

    for (size_t i = 0; i < n; i++) {
        const char *z;

        if (pos >= len || (z = memchr(data + pos, '\0', len - pos)) == NULL)
            return false;
        out[i] = data + pos;
        pos = (size_t)(z - data) + 1;
    }
    return true;
}

/* Sends cmd (with the pending macros first) and, unless no_reply, reads replies until
 * a verdict.  eom: modifications are allowed and gathered. */
static void exchange(struct milter *m, char cmd, const void *data, size_t len, bool no_reply,
                     int timeout_ms, bool eom, struct milter_result *r)
{
    struct str buf = STR_INIT;
    const char *why = NULL;
    size_t mod_bytes = 0, env_changes = 0;
    char rc;

    r->verdict = MILTER_CONTINUE;
    if (m->failed) {
        r->verdict = MILTER_FAILED;
        return;
    }
    if (m->done || m->session_done)
        return;
    if (m->st == NULL && negotiate(m, r) < 0)
        return;
    if (m->macros.len > 0 && m->macro_stage == cmd) {
        if (send_frame(m, SMFIC_MACRO, m->macros.s, m->macros.len) < 0) {
            fail(m, r, "write error", NULL);
            return;
        }
    }
    str_clear(&m->macros);
    if (send_frame(m, cmd, data, len) < 0) {
        fail(m, r, "write error", NULL);
        return;
    }
    if (no_reply) {
        if (stream_flush(m->st) < 0)
            fail(m, r, "write error", NULL);
        return;
    }
    for (int frames = 0;; frames++) {
        if (frames > MILTER_MODS_COUNT + 1000 || read_frame(m, timeout_ms, &rc, &buf, &why) < 0) {
            fail(m, r, why ? why : "too many frames", NULL);
            break;
        }
        if (rc == SMFIR_PROGRESS)
            continue;
        if (rc == SMFIR_CONTINUE) {
            r->verdict = MILTER_CONTINUE;
            break;
        }
        if (rc == SMFIR_ACCEPT) {
            r->verdict = MILTER_ACCEPT;
            m->done = true;
            m->session_done = cmd == SMFIC_CONNECT || cmd == SMFIC_HELO;
            break;
        }
        if (rc == SMFIR_REJECT || rc == SMFIR_TEMPFAIL) {
            r->verdict = rc == SMFIR_REJECT ? MILTER_REJECT : MILTER_TEMPFAIL;
            m->done = true;
            break;
        }
        if (rc == SMFIR_DISCARD) {
            if (cmd == SMFIC_CONNECT || cmd == SMFIC_HELO) {
                fail(m, r, "discard before a message", NULL);
                break;
            }
            r->verdict = MILTER_DISCARD;
            m->done = true;
            break;
        }
        if (rc == SMFIR_REPLYCODE) {
            if (!replycode_ok(buf.s, strnlen(buf.s, buf.len))) {
                fail(m, r, "bad reply code", NULL);
                break;
            }
            str_sets(&r->reply, buf.s);
            r->verdict = buf.s[0] == '5' ? MILTER_REJECT : MILTER_TEMPFAIL;
            m->done = true;
            break;
        }
        if (rc == SMFIR_SKIP && cmd == SMFIC_BODY && (m->protocol & SMFIP_SKIP)) {
            m->skip_body = true;
            r->verdict = MILTER_CONTINUE;
            break;
        }
        if (!eom) {
            fail(m, r, "a reply that this stage does not allow", NULL);
            break;
        }
        /* End of message: modifications, then a verdict; all of them together
         * bounded. */
        mod_bytes += buf.len + 64;
        if (mod_bytes > MILTER_MODS_MAX || r->nmods >= MILTER_MODS_COUNT) {
            fail(m, r, "too many changes", NULL);
            break;
        }
        {
            const char *s[2];

            if (rc == SMFIR_ADDHEADER && (m->actions & SMFIF_ADDHDRS)) {
                if (!strings(buf.s, buf.len, s, 2) || !field_name_ok(s[0])) {
                    fail(m, r, "bad header change", NULL);
                    break;
                }
                add_mod(r, MILTER_MOD_ADDHDR, 0, s[0], s[1], strlen(s[1]));
            } else if ((rc == SMFIR_INSHEADER && (m->actions & SMFIF_ADDHDRS))
                       || (rc == SMFIR_CHGHEADER && (m->actions & SMFIF_CHGHDRS))) {
                if (buf.len < 4 || !strings(buf.s + 4, buf.len - 4, s, 2)
                    || !field_name_ok(s[0])) {
                    fail(m, r, "bad header change", NULL);
                    break;
                }
                add_mod(r, rc == SMFIR_INSHEADER ? MILTER_MOD_INSHDR : MILTER_MOD_CHGHDR,
                        get32((const unsigned char *)buf.s), s[0], s[1], strlen(s[1]));
            } else if (rc == SMFIR_REPLBODY && (m->actions & SMFIF_CHGBODY)) {
                add_mod(r, MILTER_MOD_BODY, 0, NULL, buf.s, buf.len);
            } else if (rc == SMFIR_QUARANTINE && (m->actions & SMFIF_QUARANTINE)
                       && strings(buf.s, buf.len, s, 1)) {
                r->quarantine = true;
                str_sets(&r->reason, s[0]);
            } else if ((rc == SMFIR_CHGFROM && (m->actions & SMFIF_CHGFROM))
                       || (rc == SMFIR_ADDRCPT && (m->actions & SMFIF_ADDRCPT))
                       || (rc == SMFIR_ADDRCPT_PAR && (m->actions & SMFIF_ADDRCPT_PAR))
                       || (rc == SMFIR_DELRCPT && (m->actions & SMFIF_DELRCPT))) {
                /* The address, then (CHGFROM, ADDRCPT_PAR) its ESMTP parameters. */
                bool params = rc == SMFIR_CHGFROM || rc == SMFIR_ADDRCPT_PAR;
                enum milter_mod_type t = rc == SMFIR_CHGFROM ? MILTER_MOD_CHGFROM
                                         : rc == SMFIR_DELRCPT ? MILTER_MOD_DELRCPT
                                                               : MILTER_MOD_ADDRCPT;

                if (!strings(buf.s, buf.len, s, 1) || s[0][0] == '\0'
                    || strlen(s[0]) > 2000) {
                    fail(m, r, "bad envelope change", NULL);
                    break;
                }
                if (++env_changes > MILTER_ENV_MAX) {
                    fail(m, r, "too many envelope changes", NULL);
                    break;
                }
                if (params && strings(buf.s, buf.len, s, 2) && s[1][0] != '\0')
                    add_mod(r, t, 0, s[1], s[0], strlen(s[0]));
                else
                    add_mod(r, t, 0, NULL, s[0], strlen(s[0]));
            } else {
                fail(m, r, "a reply that this stage does not allow", NULL);
                break;
            }
        }
    }
    str_free(&buf);
}

void milter_connect(struct milter *m, const char *hostname, const char *addr, unsigned port,
                    struct milter_result *r)
{
    struct str d = STR_INIT;
    unsigned char p[2] = { (unsigned char)(port >> 8), (unsigned char)port };

    if (m->st == NULL && !m->failed && negotiate(m, r) < 0)
        return;
    if (m->failed || (m->protocol & SMFIP_NOCONNECT)) {
        r->verdict = m->failed ? MILTER_FAILED : MILTER_CONTINUE;
        return;
    }
    str_append(&d, hostname, strlen(hostname) + 1);
    str_appendc(&d, strchr(addr, ':') ? '6' : '4');
    str_append(&d, p, 2);
    str_append(&d, addr, strlen(addr) + 1);
    exchange(m, SMFIC_CONNECT, d.s, d.len, m->protocol & SMFIP_NR_CONN, m->t.command_ms, false,
             r);
    str_free(&d);
}

void milter_helo(struct milter *m, const char *helo, struct milter_result *r)
{
    if (!m->failed && (m->protocol & SMFIP_NOHELO)) {
        r->verdict = MILTER_CONTINUE;
        return;
    }
    exchange(m, SMFIC_HELO, helo, strlen(helo) + 1, m->protocol & SMFIP_NR_HELO,
             m->t.command_ms, false, r);
}

static void args_stage(struct milter *m, char cmd, uint32_t skip, uint32_t nr,
                       const char *const *args, struct milter_result *r)
{
    struct str d = STR_INIT;

    if (!m->failed && (m->protocol & skip)) {
        r->verdict = MILTER_CONTINUE;
        return;
    }
    for (size_t i = 0; args[i] != NULL; i++)
        str_append(&d, args[i], strlen(args[i]) + 1);
    exchange(m, cmd, d.s, d.len, m->protocol & nr, m->t.command_ms, false, r);
    str_free(&d);
}

void milter_mail(struct milter *m, const char *const *args, struct milter_result *r)
{
    milter_abort(m);
    m->in_msg = true;
    args_stage(m, SMFIC_MAIL, SMFIP_NOMAIL, SMFIP_NR_MAIL, args, r);
}

void milter_rcpt(struct milter *m, const char *const *args, struct milter_result *r)
{
    args_stage(m, SMFIC_RCPT, SMFIP_NORCPT, SMFIP_NR_RCPT, args, r);
    /* A rejected recipient does not end the filter's interest in the message. */
    if (r->verdict == MILTER_REJECT || r->verdict == MILTER_TEMPFAIL)
        m->done = false;
}

void milter_data(struct milter *m, struct milter_result *r)
{
    if (!m->failed && (m->protocol & SMFIP_NODATA)) {
        r->verdict = MILTER_CONTINUE;
        return;
    }
    exchange(m, SMFIC_DATA, NULL, 0, m->protocol & SMFIP_NR_DATA, m->t.command_ms, false, r);
}

void milter_header(struct milter *m, const char *name, const char *value,
                   struct milter_result *r)
{
    struct str d = STR_INIT;

    if (!m->failed && (m->protocol & SMFIP_NOHDRS)) {
        r->verdict = MILTER_CONTINUE;
        return;
    }
    str_append(&d, name, strlen(name) + 1);
    str_append(&d, value, strlen(value) + 1);
    exchange(m, SMFIC_HEADER, d.s, d.len, m->protocol & SMFIP_NR_HDR, m->t.content_ms, false,
             r);
    str_free(&d);
}

void milter_eoh(struct milter *m, struct milter_result *r)
{
    if (!m->failed && (m->protocol & SMFIP_NOEOH)) {
        r->verdict = MILTER_CONTINUE;
        return;
    }
    exchange(m, SMFIC_EOH, NULL, 0, m->protocol & SMFIP_NR_EOH, m->t.content_ms, false, r);
}

void milter_body(struct milter *m, const char *data, size_t len, struct milter_result *r)
{
    if (!m->failed && ((m->protocol & SMFIP_NOBODY) || m->skip_body)) {
        r->verdict = MILTER_CONTINUE;
        return;
    }
    while (len > 0 && r->verdict == MILTER_CONTINUE && !m->skip_body && !m->done) {
        size_t n = len > MILTER_CHUNK ? MILTER_CHUNK : len;

        exchange(m, SMFIC_BODY, data, n, m->protocol & SMFIP_NR_BODY, m->t.content_ms, false,
                 r);
        data += n;
        len -= n;
    }
}

void milter_eom(struct milter *m, struct milter_result *r)
{
    exchange(m, SMFIC_BODYEOB, NULL, 0, false, m->t.content_ms, true, r);
    m->in_msg = false;
    m->done = false;
}

void milter_abort(struct milter *m)
{
    bool was = m->in_msg;

    m->done = false;
    m->skip_body = false;
    m->in_msg = false;
    if (was && m->st != NULL && !m->failed && send_frame(m, SMFIC_ABORT, NULL, 0) < 0)
        fail(m, NULL, "write error", NULL);
}

enum milter_verdict milter_default_verdict(const char *action)
{
    return strcmp(action, "accept") == 0 ? MILTER_ACCEPT : MILTER_TEMPFAIL;
}
