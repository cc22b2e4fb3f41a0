/* smtpd: the RFC 5321 server.  Shared declarations of its files:
 *   smtpd.c    main, settings, one connection's command loop
 *   reply.c    replies, error counting and delays, reject logging, command input
 *   cmd.c      HELO, EHLO, MAIL, RSET, NOOP, QUIT, VRFY, HELP
 *   params.c   ESMTP parameters of MAIL and RCPT (SIZE, BODY, SMTPUTF8, DSN)
 *   rcpt.c     RCPT: resolve service, relay permission, the recipient set
 *   data.c     DATA and BDAT: content into the queue file, Received:, commit
 *   data_decode.c  the content decoder (line ends, dot-stuffing, end of data)
 *   tls.c      STARTTLS, wrapper mode, the TLS settings
 *   auth.c     AUTH PLAIN and LOGIN
 *   sender_login.c  MAIL FROM of an authenticated client: addresses its login owns
 *   auth_decode.c  AUTH's base64 and credential checks (auth_decode.h)
 *   policy.c   access tables, address checks, DNS blocklists at RCPT (policy.h)
 *   checks.c   header_checks, mime_header_checks, body_checks at the end (checks.h)
 *   milter_smtpd.c  smtpd_milters: the filters' stages, and their changes
 * Everything a connection knows lives in struct smtpd_session (TLS and AUTH add
 * their state there); everything a mail transaction knows in struct smtpd_txn. */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <stdbool.h>
#include <stddef.h>

#include "cidr.h"
#include "policy.h"
#include "conn_limit.h"
#include "queue.h"
#include "str.h"

struct stream;
struct smtpd_data;
struct resolve_clnt;
struct conf;
struct tls_ctx;
struct auth_clnt;
struct maplist;
struct smtpd_milter_conf;
struct smtpd_milters;

enum smtpd_tls_level {
    SMTPD_TLS_NONE,             /* no STARTTLS */
    SMTPD_TLS_MAY,              /* offered */
    SMTPD_TLS_ENCRYPT,          /* required before mail (or wrapper mode) */
};

/* Settings, read once per process from the config. */
struct smtpd_conf {
    const struct conf *conf;
    const char *myhostname;
    const char *banner;
    const char *myorigin;
    long long message_size_limit;   /* bytes; 0: none */
    long long recipient_limit;
    int timeout_ms;                 /* idle: between bytes */
    long long command_deadline_ms;  /* one command line, from its first byte */
    long long data_deadline_ms;     /* DATA, or a BDAT sequence, as a whole */
    long long header_size_limit;    /* bytes of the client's header section */
    long long junk_command_limit;
    long long greet_wait_ms;        /* 0: look only for input already there */
    bool forbid_unauth_pipelining;
    long long queue_minfree;        /* free bytes MAIL needs in the queue's tmp/ */
    long long hard_error_limit;
    long long soft_error_limit;
    long long error_sleep_ms;
    size_t line_length_limit;
    bool smtputf8;
    long long hopcount_limit;
    struct cidr_list mynetworks;
    struct conn_limit limits;       /* per client, counted by anvil */
    struct resolve_clnt *resolve;
    /* TLS and AUTH (tls.c, auth.c) */
    struct tls_ctx *tls;            /* NULL: no TLS */
    enum smtpd_tls_level tls_level;
    bool tls_wrapper;               /* TLS from the first byte (port 465) */
    int tls_timeout_ms;
    bool sasl_enable;
    bool tls_auth_only;
    bool auth_required;             /* no MAIL before AUTH (submission) */
    struct maplist *sender_login_maps;  /* NULL: none */
    bool sender_login_mismatch_allowed; /* any sender after AUTH (unsafe) */
    const char *recipient_delimiter;
    struct auth_clnt *auth;
    struct smtpd_milter_conf *milter;   /* NULL: no smtpd_milters */
};

/* Per-command counters for the disconnect line, in Postfix's manner. */
enum smtpd_cmd_id {
    CMD_HELO, CMD_EHLO, CMD_STARTTLS, CMD_AUTH, CMD_MAIL, CMD_RCPT, CMD_DATA,
    CMD_BDAT, CMD_RSET, CMD_NOOP, CMD_VRFY, CMD_HELP, CMD_QUIT, CMD_UNKNOWN,
    CMD_COUNT
};

/* A set of addresses (open addressing), to write each final recipient once. */
struct smtpd_addrset {
    char **slot;
    size_t cap;                 /* power of two, or 0 */
    size_t n;
};

struct smtpd_txn {
    bool active;                /* MAIL accepted */
    struct str sender;          /* internal form, "" for the null sender */
    bool smtputf8;
    const char *body;           /* "7BIT", "8BITMIME" or NULL */
    const char *ret;            /* "FULL", "HDRS" or NULL */
    struct str envid;           /* xtext as given; empty when absent */
    long long declared_size;    /* SIZE=, -1 when absent */
    struct queue_writer *qw;    /* made at the first accepted recipient */
    char id[QUEUE_ID_SIZE];     /* "" until qw exists */
    bool qw_failed;             /* a write to qw failed: the message cannot be taken */
    size_t rcpt_accepted;       /* RCPT commands accepted */
    size_t nrcpt;               /* recipients written to the queue file */
    struct str first_rcpt;      /* as given by the first accepted RCPT */
    struct smtpd_addrset seen;
    struct smtpd_policy_txn policy; /* policy.c: HOLD, DISCARD, sender domain */
    /* BDAT */
    bool bdat;                  /* a BDAT sequence is under way */
    struct smtpd_data *data;    /* content state while BDAT chunks arrive */
};

struct smtpd_session {
    const struct smtpd_conf *cf;
    struct stream *st;
    char addr[64];              /* client address, text */
    unsigned port;
    bool trusted;               /* in mynetworks */
    bool tls;                   /* under TLS (STARTTLS or wrapper mode) */
    bool authenticated;         /* AUTH succeeded */
    struct str sasl_user;       /* the canonical login, when authenticated */
    const char *sasl_method;    /* "PLAIN" or "LOGIN", when authenticated */
    bool esmtp;                 /* EHLO (not HELO) */
    struct str helo;            /* empty until HELO/EHLO */
    struct str line;            /* the current command line */
    long long phase_deadline;   /* clock_ms() end of the DATA/BDAT phase; 0: none */
    const char *phase;          /* its name for the log */
    long long errors;
    long long junk;             /* NOOP, RSET, VRFY, HELP, unknown or bad commands */
    bool done;                  /* QUIT, fatal error or lost connection */
    const char *lost_after;     /* command during which the connection was lost */
    unsigned counts[CMD_COUNT];
    unsigned oks[CMD_COUNT];
    struct smtpd_txn txn;
    struct smtpd_policy_session policy; /* policy.c: the blocklist verdict */
    struct smtpd_milters *milters;  /* connected at the first MAIL (milter_smtpd.c) */
};

/* ---- reply.c ---- */
/* Sends one reply line "CODE TEXT" (fmt makes the text after the code, enhanced
 * status code included), counting 4xx/5xx as errors: past the soft limit each such
 * reply is delayed; at the hard limit "421 4.7.0" is sent and the session ends.
 * Control characters in the text are replaced.  Buffered: see smtpd_read_line. */
void smtpd_reply(struct smtpd_session *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A line of a multi-line reply ("250-..."), never an error. */
void smtpd_reply_cont(struct smtpd_session *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Logs "ID|NOQUEUE: reject: CMD from [IP]: REPLY; from=<s> to=<r> proto=P helo=<h>"
 * and sends the reply (code, dsn, text). */
void smtpd_reject(struct smtpd_session *s, const char *cmd, const char *rcpt, int code,
                  const char *dsn, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Flushes replies when no input is waiting, then reads one line of at most max
 * bytes.  Returns what stream_getline returns; on EOF, a timeout or an error it
 * logs, sends the 421 reply to a timeout, and marks the session done. */
int smtpd_read_line(struct smtpd_session *s, struct str *line, size_t max);
/* The deadline of a line read now: smtpd_command_deadline from now, cut to the
 * phase deadline. */
long long smtpd_line_deadline(const struct smtpd_session *s);
/* A read of the session's stream failed with ETIMEDOUT: logs (a deadline when the
 * clock is past deadline, else the idle timeout), sends the 421 reply, ends the
 * session.  Returns -1. */
int smtpd_read_timed_out(struct smtpd_session *s, long long deadline);
/* Flushes replies; marks the session done on failure.  0 or -1. */
int smtpd_flush(struct smtpd_session *s);
/* "SMTP", "ESMTP", "ESMTPS", "UTF8SMTP", "UTF8SMTPS" for the current transaction. */
const char *smtpd_protocol(const struct smtpd_session *s);

/* ---- cmd.c ---- */
/* Runs one command line (without its line end). */
void smtpd_command(struct smtpd_session *s, char *line);
/* Ends the transaction: aborts its queue file if any, clears it. */
void smtpd_txn_reset(struct smtpd_session *s);
void smtpd_txn_free(struct smtpd_txn *t);
/* Counts a junk command (NOOP, RSET, VRFY, HELP, unknown or malformed): false,
 * after "421 4.7.0" and the end of the session, when it is one too many. */
bool smtpd_junk(struct smtpd_session *s);
/* Refuses the client for pipelining when it was not offered (or for talking before
 * the greeting, after "CONNECT"): logged, "554 5.5.0", the session ends. */
void smtpd_improper_pipelining(struct smtpd_session *s, const char *after);
/* true when the client has sent bytes we have not read (buffered or in the socket). */
bool smtpd_input_waiting(struct smtpd_session *s, int wait_ms);
/* true when arg starts with word (case-insensitive) followed by NUL or a space. */
bool smtpd_word_is(const char *arg, const char *word);

/* ---- params.c ---- */
/* Parses MAIL's ESMTP parameters into the transaction.  0, or -1 after a reply. */
int smtpd_mail_params(struct smtpd_session *s, const char *rest);
/* RCPT's parameters: NOTIFY (upper-cased) and ORCPT (as given).  0, or -1 after a
 * reply. */
int smtpd_rcpt_params(struct smtpd_session *s, const char *rest, struct str *notify,
                      struct str *orcpt);

/* ---- rcpt.c ---- */
void smtpd_cmd_rcpt(struct smtpd_session *s, char *arg);
bool smtpd_addrset_add(struct smtpd_addrset *set, const char *addr); /* false: already in */
void smtpd_addrset_free(struct smtpd_addrset *set);

/* ---- data.c ---- */
void smtpd_cmd_data(struct smtpd_session *s, char *arg);
void smtpd_cmd_bdat(struct smtpd_session *s, char *arg);
void smtpd_data_free(struct smtpd_data *d);

/* ---- milter_smtpd.c ---- */
/* Reads smtpd_milters and the milter_* keys (fatal on a bad filter name). */
void smtpd_milter_setup(struct smtpd_conf *cf, const struct conf *c);
bool smtpd_milter_active(const struct smtpd_session *s);
/* The stages: 0 when the command may go on, -1 after a refusal was answered.
 * smtpd_milter_mail connects the session's filters first. */
int smtpd_milter_mail(struct smtpd_session *s);
int smtpd_milter_rcpt(struct smtpd_session *s, const char *addr);
int smtpd_milter_data(struct smtpd_session *s, const char *cmd);
/* The whole message (LF line ends) through the filters; their changes are applied
 * to msg.  0 with *to the queue directory to commit into ("incoming", or "hold" for
 * a quarantine) or NULL (discarded: answer 250, keep nothing); -1 after a refusal
 * was answered. */
int smtpd_milter_message(struct smtpd_session *s, struct str *msg, const char *cmd,
                         const char **to);
/* Says QUIT to the session's filters. */
void smtpd_milter_end(struct smtpd_session *s);

/* ---- tls.c ---- */
/* Reads the TLS settings and, before chroot, the certificate and key. */
void smtpd_tls_setup(struct smtpd_conf *cf, const struct conf *c);
/* Wrapper mode: the handshake before the greeting.  0, or -1 (logged, session done). */
int smtpd_tls_wrap(struct smtpd_session *s);
bool smtpd_tls_offer(const struct smtpd_session *s);        /* EHLO lists STARTTLS */
void smtpd_cmd_starttls(struct smtpd_session *s, char *arg);
/* Appends "\t(using TLSv1.3 with cipher C (B/B bits))\n" under TLS. */
void smtpd_tls_received(const struct smtpd_session *s, struct str *out);

/* ---- auth.c ---- */
/* Reads the AUTH settings and opens smtpd_sender_login_maps (before chroot). */
void smtpd_auth_setup(struct smtpd_conf *cf, const struct conf *c);
bool smtpd_auth_offer(const struct smtpd_session *s);       /* EHLO lists AUTH */
void smtpd_cmd_auth(struct smtpd_session *s, char *arg);

/* ---- sender_login.c ---- */
/* MAIL FROM by an authenticated client: 0 when its login may use sender (the null
 * sender always), or -1 after a reply (553 5.7.1, or 451 when a lookup failed). */
int smtpd_sender_login_check(struct smtpd_session *s, const char *sender);

#endif
