/* imapd: the IMAP server in two programs-in-one (see imapd(8)), split as pop3d is.
 *   imapd -l   pre-auth: greets, serves the not-authenticated state, asks auth, hands
 *              the client to the post-login service (login/imap); chrooted to login/,
 *              no rights, no password data, no mailbox access.
 *   imapd      post-login: receives clients, asks auth who they are (token), and
 *              gives each to a session process running as the mailbox owner,
 *              chrooted into the user's Maildir (lib/mail/login_serve.h).
 * Everything read from a client is untrusted. */
#ifndef IMAPD_H
#define IMAPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn_limit.h"
#include "str.h"

struct stream;
struct server;
struct tls_ctx;
struct login_handoff;
struct auth_result;

#define IMAP_LINE_MAX 8192          /* one line of a command, CRLF excluded (RFC 7162) */
#define IMAP_LITERAL_MAX 65536      /* a literal outside APPEND */
#define IMAP_CMD_MAX (4 * IMAP_LINE_MAX + 4 * IMAP_LITERAL_MAX)  /* a whole command */
#define IMAP_TAG_MAX 64             /* a tag we echo back */
#define IMAP_NAME_MAX 255           /* a user name */
#define IMAP_SEQ_RANGES_MAX 1024    /* ranges in one sequence set */
#define IMAP_LAST_REPLY_MS 10000    /* for the reply after a timeout */

struct imap_conf {
    int timeout_ms;                 /* imapd_timeout */
    int preauth_timeout_ms;         /* min(imapd_timeout, imapd_preauth_deadline) */
    int ipc_timeout_ms;             /* ipc_timeout */
    long long command_deadline_ms;  /* imapd_command_deadline */
    long long preauth_deadline_ms;  /* imapd_preauth_deadline */
    int auth_timeout_ms;            /* auth_request_timeout */
    long long error_limit;          /* imapd_error_limit */
    unsigned long long append_limit;  /* message_size_limit (0: none) */
    size_t index_limit;             /* imapd_index_cache_limit (0: no cache) */
    bool wrapper;                   /* imapd_tls_wrapper: TLS from the first byte */
    bool loopback_plaintext;        /* imapd_loopback_plaintext_login */
    struct tls_ctx *tls;            /* NULL without a certificate */
    const char *hostname;
    struct conn_limit limits;       /* pre-auth: per client, counted by anvil */
};

extern struct imap_conf imap_cf;

/* ---- io.c: one connection's command reading and replies ---- */
struct imap_conn {
    struct stream *st;
    const char *client;             /* address, for logs */
    const char *user;               /* NULL before login, for logs */
    unsigned errors;                /* BAD and NO counted against imapd_error_limit */
    bool closing;                   /* the connection is to be closed */
    bool compressed;                /* COMPRESS DEFLATE is on (compress.c) */
    long long phase_deadline;       /* clock_ms() end of the pre-auth phase, or 0 */
    char tag[IMAP_TAG_MAX + 1];     /* of the command being answered ("*" when none) */
};

enum imap_read {
    IMAP_READ_OK,                   /* a command in cmd (literals inline, see parse.c) */
    IMAP_READ_BAD,                  /* answered BAD already (too long, NUL, literal) */
    IMAP_READ_EOF,                  /* EOF, error or timeout (errno ETIMEDOUT): end */
};

/* Reads one command, literals included: each "{n}" gets a continuation request,
 * "{n+}" (LITERAL+) none.  A literal over its limit (message_size_limit for APPEND,
 * IMAP_LITERAL_MAX otherwise) is refused before a byte of it is read; a refused
 * non-synchronizing literal closes the connection since its bytes are on the way.
 * The wait for the first byte is the idle timeout, the command then has
 * imapd_command_deadline (plus 1 s per 16 KiB of literal), both cut to the phase
 * deadline. */
enum imap_read imap_read_command(struct imap_conn *c, struct str *cmd);
/* After a read timed out: logs and says BYE. */
void imap_timed_out(struct imap_conn *c);
/* "TAG OK text" (c->tag). */
void imap_ok(struct imap_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "TAG BAD text" / "TAG NO text" with a log line; one more error against the limit,
 * after which the connection is told BYE and closed (c->closing). */
void imap_bad(struct imap_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_no(struct imap_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes s as an IMAP string: quoted when it can be, a literal otherwise. */
void imap_put_string(struct stream *st, const char *s, size_t len);
/* As imap_put_string, NIL for NULL. */
void imap_put_nstring(struct stream *st, const char *s, size_t len);
/* For readers of commands other than imap_read_command (mux_read.c): the tag of a
 * (partial) command line into c->tag ("*" when none); whether a line ends with a
 * literal announcement, its size and LITERAL+. */
void imap_take_tag(struct imap_conn *c, const char *s, size_t len);
bool imap_literal_at_end(const struct str *line, uint64_t *n, bool *plus);
/* Whether a literal of n bytes may follow cmd, whose APPEND literals so far add up
 * to message bytes (an APPEND's are held to its limit, the others to IMAP_CMD_MAX
 * with the lines); *append: cmd is an APPEND.  When not, the refusal is logged and
 * answered (with LITERAL+ a BYE, and c->closing set) and false returned. */
bool imap_literal_allowed(struct imap_conn *c, const struct str *cmd, uint64_t message,
                          uint64_t n, bool plus, bool *append);

/* ---- parse.c: the grammar of RFC 3501 section 9 over a read command ---- */
struct imap_parser {
    const char *p, *end;
};

void imap_parser_init(struct imap_parser *ip, const struct str *cmd);
bool imap_p_sp(struct imap_parser *ip);
bool imap_p_eol(const struct imap_parser *ip);
bool imap_p_char(struct imap_parser *ip, char c);
bool imap_p_peek(const struct imap_parser *ip, char c);
/* An atom (RFC 3501 ATOM-CHAR), at most max bytes. */
bool imap_p_atom(struct imap_parser *ip, struct str *out, size_t max);
/* The tag: ASTRING-CHAR but '+'. */
bool imap_p_tag(struct imap_parser *ip, struct str *out);
/* A quoted string or a literal (no NUL in either). */
bool imap_p_string(struct imap_parser *ip, struct str *out);
/* A literal8 "~{n}" (RFC 3516: NUL allowed), or a string as imap_p_string. */
bool imap_p_string8(struct imap_parser *ip, struct str *out);
/* An atom with ']' allowed, or a string. */
bool imap_p_astring(struct imap_parser *ip, struct str *out);
/* A LIST pattern: list-char atoms ('%' '*' allowed) or a string. */
bool imap_p_list_mailbox(struct imap_parser *ip, struct str *out);
/* A decimal number up to max. */
bool imap_p_number(struct imap_parser *ip, uint64_t max, uint64_t *out);

/* ---- seqset.c: sequence sets ---- */
#define IMAP_SEQ_STAR UINT32_MAX    /* "*" before it is resolved */
struct imap_range {
    uint32_t lo, hi;                /* lo <= hi after imap_seq_resolve */
};
struct imap_seqset {
    struct imap_range *r;
    size_t n;
};

/* Parses a sequence set (RFC 3501 sequence-set): numbers 1..4294967295 and "*",
 * at most IMAP_SEQ_RANGES_MAX ranges.  true, or false with *why and the cursor where
 * it was. */
bool imap_p_seqset(struct imap_parser *ip, struct imap_seqset *set, const char **why);
/* "*" becomes max (the largest number in use: message count or last UID; 0 when
 * empty) and each range is ordered lo..hi. */
void imap_seq_resolve(struct imap_seqset *set, uint32_t max);
bool imap_seq_has(const struct imap_seqset *set, uint32_t v);
void imap_seq_free(struct imap_seqset *set);
/* After imap_seq_resolve: ranges sorted and merged where they touch. */
void imap_seq_normalize(struct imap_seqset *set);
/* After imap_seq_normalize: whether v is in the set (a binary search). */
bool imap_seq_has_sorted(const struct imap_seqset *set, uint32_t v);
/* After imap_seq_resolve: the number of values named (repeats counted). */
uint64_t imap_seq_count(const struct imap_seqset *set);

/* ---- capa.c: what is offered ---- */
/* The CAPABILITY list (without "* CAPABILITY "): before login, login_ok tells
 * whether LOGIN and AUTHENTICATE may be used now and tls_offer whether STARTTLS is. */
void imap_capa_preauth(struct str *out, bool login_ok, bool tls_offer);
void imap_capa_session(struct str *out);
/* ID (RFC 2971): checks the client's list and answers "* ID (...)". */
void imap_cmd_id(struct imap_conn *c, struct imap_parser *ip);

/* ---- preauth.c ---- */
void imap_preauth_service(struct server *srv, int *fd);


#endif
