/* The SMTP client's parts (see smtp(8)): the process context, the policy for one
 * next hop (TLS level, name check, credential), a session with one server, AUTH, the
 * server's replies and EHLO extensions, the transaction for one delivery request,
 * the message content writer and the 8-bit to quoted-printable converter. */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "deliver.h"
#include "queue.h"
#include "str.h"

struct conf;
struct dns;
struct maplist;
struct stream;
struct tls_ctx;

#define SMTP_LINE_MAX 2048          /* longest reply line read, CRLF included */
#define SMTP_REPLY_LINES_MAX 100    /* most lines in one reply */
#define SMTP_TEXT_MAX 1000          /* reply text kept for logs and notices */
#define SMTP_MX_MAX 20              /* MX hosts considered */
#define SMTP_ADDR_MAX 4             /* addresses tried per host */
#define SMTP_TARGETS_MAX 40         /* connection attempts per delivery */
#define SMTP_PIPELINE_MAX 100       /* commands sent before replies are read */
#define SMTP_REUSE_IDLE 5           /* seconds a finished session is kept for reuse */
#define SMTP_REUSE_MAX 100          /* messages over one session */

enum smtp_tls_level {
    SMTP_TLS_NONE,
    SMTP_TLS_MAY,
    SMTP_TLS_ENCRYPT,
    SMTP_TLS_VERIFY,
};

/* ESMTP extensions the server offered. */
#define SMTP_EXT_PIPELINING 0x01
#define SMTP_EXT_SIZE       0x02
#define SMTP_EXT_8BITMIME   0x04
#define SMTP_EXT_SMTPUTF8   0x08
#define SMTP_EXT_DSN        0x10
#define SMTP_EXT_STARTTLS   0x20
#define SMTP_EXT_AUTH_PLAIN 0x40
#define SMTP_EXT_AUTH_LOGIN 0x80
#define SMTP_EXT_AUTH_OTHER 0x100       /* AUTH offered (any mechanisms) */

struct smtp_session;

struct smtp_ctx {
    struct conf *conf;
    struct dns *dns;
    struct tls_ctx *tls;            /* NULL: no client TLS */
    enum smtp_tls_level tls_level;  /* smtp_tls_security_level */
    struct maplist *tls_policy;     /* smtp_tls_policy_maps (opened before the chroot) */
    struct maplist *sasl_passwords; /* smtp_sasl_password_maps (likewise) */
    const char *myhostname;
    unsigned port;                  /* smtp_destination_port */
    int connect_ms, helo_ms, data_ms;
    struct smtp_session *cached;    /* kept open after a delivery, or NULL */
};

/* Which name a verified certificate must carry. */
enum smtp_tls_match {
    SMTP_MATCH_HOSTNAME,            /* the server's host name (MX host, bracketed host) */
    SMTP_MATCH_NEXTHOP,             /* the next hop's domain or bracketed host */
    SMTP_MATCH_NAME,                /* a name given in the policy */
};

#define SMTP_CRED_MAX 255           /* longest user name and password (RFC 4616) */

/* How to talk to one next hop: smtp_tls_policy_maps or the global level, and the
 * credential of smtp_sasl_password_maps. */
struct smtp_policy {
    enum smtp_tls_level level;      /* raised to encrypt when a credential exists */
    enum smtp_tls_match match;
    char match_name[256];           /* for SMTP_MATCH_NEXTHOP and SMTP_MATCH_NAME */
    bool auth;                      /* a credential is configured */
    struct str user, password;
    char nexthop[300];              /* for texts */
};

struct smtp_reply {
    int code;                       /* 200..599 */
    char dsn[16];                   /* enhanced status code, or derived from code */
    struct str text;                /* "250 2.0.0 Ok" style, lines joined by ' ' */
    struct str lines;               /* each line's text after the code, '\n' ended */
};

struct smtp_session {
    struct stream *st;
    char host[256];
    char addr[64];
    unsigned port;
    char where[360];                /* "host[addr]:port" for logs and texts */
    struct str dest;                /* the nexthop it serves, for reuse */
    unsigned ext;                   /* SMTP_EXT_* */
    unsigned long long size_max;    /* SIZE limit, 0 when none given */
    bool tls;
    unsigned uses;                  /* transactions done */
    time_t idle_since;
};

/* A server we may connect to. */
struct smtp_target {
    char host[256];
    char addr[64];
};

/* smtp_reply.c: reads one reply with bounded lines; 0, or -1 with a reason in err
 * (lost connection, timeout, or a malformed reply whose sanitised text is quoted). */
void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);
int smtp_reply_read(struct smtp_session *s, struct smtp_reply *r, struct str *err);
/* Writes one command line (CRLF appended) without flushing: 0 or -1. */
int smtp_command(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Control characters and non-ASCII bytes become '?'. */
void smtp_sanitise(struct str *out, const char *s, size_t len);

/* smtp_ehlo.c: sets s->ext and s->size_max from a 250 reply to EHLO (its lines after
 * the first). */
void smtp_ehlo_parse(struct smtp_session *s, const struct smtp_reply *r);

/* smtp_policy.c: the policy for nexthop.  0, or -1 with *fail, dsn and err (a map
 * lookup failed, or its value is invalid: deferral). */
void smtp_policy_init(struct smtp_policy *p);
void smtp_policy_free(struct smtp_policy *p);       /* wipes the password */
int smtp_policy_get(struct smtp_ctx *ctx, const char *nexthop, struct smtp_policy *p,
                    enum deliver_status *fail, char dsn[16], struct str *err);
/* Parses a TLS policy map value ("verify match=mx.example.org"): 0 or -1 with err. */
int smtp_policy_parse(struct smtp_policy *p, const char *value, struct str *err);

/* smtp_auth.c: AUTH PLAIN (or LOGIN when PLAIN is not offered) with p's credential,
 * on a session under TLS.  0, or -1 with *fail, dsn and err. */
int smtp_auth(struct smtp_ctx *ctx, struct smtp_session *s, const struct smtp_policy *p,
              enum deliver_status *fail, char dsn[16], struct str *err);

/* smtp_session.c */
int smtp_targets(struct smtp_ctx *ctx, const char *nexthop, unsigned *port,
                 struct smtp_target *t, size_t max, size_t *n, enum deliver_status *fail,
                 char dsn[16], struct str *err);
/* Connects, reads the greeting, EHLO/HELO, STARTTLS and AUTH as policy says.  NULL
 * with *fail (DEFER or BOUNCE for a 5xx greeting), dsn and err. */
struct smtp_session *smtp_session_open(struct smtp_ctx *ctx, const struct smtp_policy *policy,
                                       const struct smtp_target *t,
                                       unsigned port, enum deliver_status *fail,
                                       char dsn[16], struct str *err);
/* QUIT (when polite) and close. */
void smtp_session_close(struct smtp_ctx *ctx, struct smtp_session *s, bool polite);
/* RSET on a kept session: 0 when it answered 250. */
int smtp_session_reset(struct smtp_ctx *ctx, struct smtp_session *s);

/* smtp_trans.c: one message to the recipients of dr over s.  Sets the result of
 * every recipient it decides; returns 0 when the session may be used again, -1 when
 * it must be closed. */
int smtp_transaction(struct smtp_ctx *ctx, struct smtp_session *s, struct queue_file *qf,
                     struct deliver_request *dr, bool *decided);

/* smtp_data.c: the content as DATA (CRLF, dot-stuffing, final dot), converting 8-bit
 * parts to quoted-printable when convert is true.  0, or -1 (I/O: errno). */
int smtp_data_send(struct smtp_session *s, struct queue_file *qf, bool convert);
/* true when the content holds a byte with the high bit set. */
int smtp_data_8bit(struct queue_file *qf, bool *has8);

/* smtp_mime.c: a streaming converter over the message's lines ('\n' ended).  In scan
 * mode it only records which leaf parts hold 8-bit bytes; in convert mode it writes
 * the message through out, with those parts' bodies encoded as quoted-printable. */
struct smtp_mime;
typedef int (*smtp_mime_out)(void *arg, const char *data, size_t len);
struct smtp_mime *smtp_mime_new(struct smtp_mime *scanned, smtp_mime_out out, void *arg);
/* 0, or out's non-zero value. */
int smtp_mime_feed(struct smtp_mime *m, const char *data, size_t len);
int smtp_mime_finish(struct smtp_mime *m);
size_t smtp_mime_parts8(const struct smtp_mime *m);   /* leaves with 8-bit bytes */
void smtp_mime_free(struct smtp_mime *m);

#endif
