/* pop3d -l: the AUTHORIZATION state (RFC 1939, RFC 2449, RFC 5034, RFC 2595) in a
 * process that holds nothing worth stealing: it runs as an unprivileged user, chrooted
 * to login/, where only the auth and pop3 sockets live.  Credentials go to auth; on
 * success the client's descriptor, auth's token and any pipelined bytes go to the
 * post-login service.  TLS (port 995, STLS) is done by tlsproxy(8), which takes the
 * client's socket and gives back a plaintext one, so a TLS client is handed over like
 * any other; only when tlsproxy cannot be reached is TLS done here, and this process
 * then stays as the TLS proxy of the session.  Every byte from the client is
 * untrusted; passwords are wiped from memory after use. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth_clnt.h"
#include "clock.h"
#include "log.h"
#include "login.h"
#include "pop3d.h"
#include "proto.h"
#include "sasl.h"
#include "server.h"
#include "sock.h"
#include "stream.h"
#include "tls.h"
#include "tlsproxy_clnt.h"

struct preauth {
    struct stream *st;
    struct stream *raw;         /* the client's own socket, while tlsproxy relays it */
    char addr[64];
    struct str user;            /* from USER */
    unsigned errors;
    bool tls;
    bool done;                  /* handed off, or the connection is to be closed */
    long long deadline;         /* clock_ms() end of the pre-auth phase */
};

/* Time left for a TLS handshake: the idle timeout, cut to the pre-auth deadline. */
static int handshake_ms(const struct preauth *p)
{
    long long left = p->deadline - clock_ms();

    if (left < 0)
        left = 0;
    return left < pop3_cf.timeout_ms ? (int)left : pop3_cf.timeout_ms;
}

/* TLS now on the client's connection: through tlsproxy(8), or here when it cannot be
 * had.  0, or -1 with err (then the connection is unusable). */
static int preauth_tls(struct preauth *p, const char *service, size_t *discarded,
                       struct str *err)
{
    struct tlsproxy_req q = {
        .path = PROTO_LOGIN_TLSPROXY, .service = service, .handshake_ms = handshake_ms(p),
        .idle_ms = 2LL * pop3_cf.timeout_ms, .ipc_timeout_ms = pop3_cf.ipc_timeout_ms,
    };

    if (tlsproxy_start(&q, &p->st, &p->raw, discarded, err) == 0) {
        stream_set_timeout(p->st, pop3_cf.timeout_ms);
        stream_set_deadline(p->st, p->deadline);
        return 0;
    }
    log_warn("client=[%s]: TLS done in this process: %s", p->addr, err->s);
    str_clear(err);
    return tls_server_start(pop3_cf.tls, p->st, handshake_ms(p), discarded, err);
}

/* A read timed out: the pre-auth deadline or the idle timeout.  Logged, answered. */
static void preauth_timed_out(struct preauth *p)
{
    if (clock_ms() >= p->deadline)
        log_info("pre-auth deadline exceeded: client=[%s]", p->addr);
    else
        log_info("%s: client=[%s]", pop3_timeout_kind(), p->addr);
    pop3_timeout_reply(p->st);
    p->done = true;
}

static void wipe(struct str *s)
{
    if (s->s != NULL)
        explicit_bzero(s->s, s->cap > 0 ? s->cap : s->len);
    str_free(s);
}

static void preauth_capa(struct preauth *p)
{
    stream_puts(p->st, "+OK Capability list follows\r\n");
    stream_puts(p->st, "USER\r\nSASL PLAIN LOGIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
                       "PIPELINING\r\nTOP\r\nUIDL\r\n");
    if (pop3_cf.tls != NULL && !p->tls)
        stream_puts(p->st, "STLS\r\n");
    stream_puts(p->st, "IMPLEMENTATION Postern\r\n.\r\n");
}

static void preauth_error(struct preauth *p, const char *fmt, const char *arg)
{
    if (!pop3_err(p->st, &p->errors, fmt, arg))
        p->done = true;
}

/* Hands the client to the post-login service, which answers the login.  On failure
 * the client is told to come back later. */
static void preauth_handoff(struct preauth *p, const struct login_attempt *a,
                            const struct auth_result *r)
{
    p->done = true;
    /* Replies to pipelined commands before the login go out before the session's. */
    if (stream_flush(p->st) < 0)
        return;
    if (login_hand_over(a, p->st, PROTO_LOGIN_POP3, r, pop3_cf.ipc_timeout_ms,
                        pop3_cf.timeout_ms) < 0) {
        stream_puts(p->st, "-ERR [SYS/TEMP] mailbox not available now, try again later\r\n");
        stream_flush(p->st);
    }
}

/* Checks user and password with auth; hands off on success. */
static void preauth_login(struct preauth *p, const char *method, const struct str *user,
                          const struct str *pass)
{
    struct login_attempt a = {
        .service = PROTO_SERVICE_POP3, .auth_path = PROTO_LOGIN_AUTH, .method = method,
        .client = p->addr, .client_fd = stream_fd(p->raw != NULL ? p->raw : p->st),
        .tls = p->tls,
        .name_max = POP3_NAME_MAX, .auth_timeout_ms = pop3_cf.auth_timeout_ms,
    };
    struct auth_result r;

    auth_result_init(&r);
    switch (login_check_password(&a, user, pass, &r)) {
    case AUTH_OK:
        preauth_handoff(p, &a, &r);
        break;
    case AUTH_FAIL:
        preauth_error(p, "%s", "[AUTH] authentication failed");
        break;
    default:
        preauth_error(p, "%s", "[SYS/TEMP] authentication unavailable, try again later");
        break;
    }
    auth_result_free(&r);
}

/* One SASL response line: 1, 0 when cancelled or bad (answered), -1 to close. */
static int preauth_sasl_line(struct preauth *p, const char *prompt, struct str *out)
{
    struct str line = STR_INIT;
    int r;

    stream_printf(p->st, "+ %s\r\n", prompt);
    r = pop3_getline(p->st, &line, POP3_SASL_MAX + 2, p->deadline);
    if (r == POP3_LINE_EOF) {
        if (errno == ETIMEDOUT)
            preauth_timed_out(p);
        wipe(&line);
        p->done = true;
        return -1;
    }
    if (r == POP3_LINE_BAD) {
        wipe(&line);
        preauth_error(p, "%s", "[AUTH] response too long");
        return 0;
    }
    if (line.len == 1 && line.s[0] == '*') {
        wipe(&line);
        preauth_error(p, "%s", "authentication cancelled");
        return 0;
    }
    if (sasl_base64_decode(line.s, line.len, out) < 0) {
        wipe(&line);
        preauth_error(p, "%s", "[AUTH] malformed base64");
        return 0;
    }
    wipe(&line);
    return 1;
}

/* A response given with the command ("=" is the empty one): 1, or 0 (answered). */
static int preauth_initial(struct preauth *p, const char *ir, struct str *out)
{
    if (strcmp(ir, "=") == 0) {
        str_clear(out);
        return 1;
    }
    if (sasl_base64_decode(ir, strlen(ir), out) < 0) {
        preauth_error(p, "%s", "[AUTH] malformed base64");
        return 0;
    }
    return 1;
}

static void preauth_auth(struct preauth *p, const char *args)
{
    struct str mech = STR_INIT, d = STR_INIT, user = STR_INIT, pass = STR_INIT;
    const char *ir = NULL, *sp;

    if (args == NULL || *args == '\0') {
        stream_puts(p->st, "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
        return;
    }
    sp = strchr(args, ' ');
    if (sp != NULL) {
        str_set(&mech, args, (size_t)(sp - args));
        ir = sp + 1;
    } else {
        str_sets(&mech, args);
    }
    for (size_t i = 0; i < mech.len; i++)
        if (mech.s[i] >= 'a' && mech.s[i] <= 'z')
            mech.s[i] = (char)(mech.s[i] - 'a' + 'A');
    if (strcmp(mech.s, "PLAIN") == 0) {
        int r = ir != NULL ? preauth_initial(p, ir, &d) : preauth_sasl_line(p, "", &d);
        if (r == 1) {
            if (sasl_plain(&d, &user, &pass) < 0)
                preauth_error(p, "%s", "[AUTH] malformed PLAIN response");
            else
                preauth_login(p, "PLAIN", &user, &pass);
        }
    } else if (strcmp(mech.s, "LOGIN") == 0) {
        int r = ir != NULL ? preauth_initial(p, ir, &user)
                           : preauth_sasl_line(p, "VXNlcm5hbWU6", &user);
        if (r == 1 && user.len > POP3_NAME_MAX) {
            preauth_error(p, "%s", "[AUTH] user name too long");
            r = 0;
        }
        if (r == 1)
            r = preauth_sasl_line(p, "UGFzc3dvcmQ6", &pass);
        if (r == 1)
            preauth_login(p, "LOGIN", &user, &pass);
    } else {
        preauth_error(p, "%s", "unsupported authentication mechanism");
    }
    str_free(&mech);
    wipe(&d);
    str_free(&user);
    wipe(&pass);
}

static void preauth_stls(struct preauth *p, const char *args)
{
    struct str err = STR_INIT;
    size_t discarded = 0;

    if (pop3_cf.tls == NULL || p->tls) {
        preauth_error(p, "%s", p->tls ? "TLS already active" : "TLS not available");
        return;
    }
    if (args != NULL) {
        preauth_error(p, "%s", "STLS takes no argument");
        return;
    }
    stream_puts(p->st, "+OK Begin TLS negotiation\r\n");
    if (stream_flush(p->st) < 0) {
        p->done = true;
        return;
    }
    if (preauth_tls(p, "pop3", &discarded, &err) < 0) {
        log_info("client=[%s]: TLS handshake failed: %s%s", p->addr, err.s ? err.s : "",
                 clock_ms() >= p->deadline ? " (pre-auth deadline exceeded)" : "");
        p->done = true;
    } else {
        p->tls = true;
        str_clear(&p->user);     /* RFC 2595: forget what was said in the clear */
        if (discarded > 0)
            log_warn("client=[%s]: %zu bytes sent before the TLS handshake discarded",
                     p->addr, discarded);
    }
    str_free(&err);
}

static void preauth_command(struct preauth *p, struct str *line)
{
    const char *kw, *args;

    pop3_split(line, &kw, &args);
    if (strcmp(kw, "CAPA") == 0) {
        preauth_capa(p);
    } else if (strcmp(kw, "QUIT") == 0) {
        stream_puts(p->st, "+OK bye\r\n");
        p->done = true;
    } else if (strcmp(kw, "USER") == 0) {
        if (args == NULL || *args == '\0') {
            preauth_error(p, "%s", "USER needs a name");
        } else {
            str_sets(&p->user, args);
            stream_puts(p->st, "+OK\r\n");
        }
    } else if (strcmp(kw, "PASS") == 0) {
        struct str pass = STR_INIT;
        if (p->user.len == 0) {
            preauth_error(p, "%s", "USER first");
        } else if (args == NULL || *args == '\0') {
            preauth_error(p, "%s", "PASS needs a password");
        } else {
            struct str user = STR_INIT;
            str_set(&user, p->user.s, p->user.len);
            str_clear(&p->user);
            str_sets(&pass, args);
            preauth_login(p, "USER", &user, &pass);
            str_free(&user);
        }
        wipe(&pass);
    } else if (strcmp(kw, "AUTH") == 0) {
        preauth_auth(p, args);
    } else if (strcmp(kw, "STLS") == 0) {
        preauth_stls(p, args);
    } else if (strcmp(kw, "STAT") == 0 || strcmp(kw, "LIST") == 0 || strcmp(kw, "RETR") == 0
               || strcmp(kw, "DELE") == 0 || strcmp(kw, "NOOP") == 0 || strcmp(kw, "RSET") == 0
               || strcmp(kw, "TOP") == 0 || strcmp(kw, "UIDL") == 0) {
        preauth_error(p, "%s", "not logged in");
    } else {
        preauth_error(p, "%s", "unknown command");
    }
}

void pop3_preauth_service(struct server *srv, int *fd)
{
    struct preauth p;
    struct str line = STR_INIT;
    struct conn_limit_state limit;
    bool over;

    memset(&p, 0, sizeof(p));
    if (sock_peer(*fd, p.addr, sizeof(p.addr), NULL) < 0)
        strcpy(p.addr, "unknown");
    p.st = stream_fdopen(*fd);
    *fd = -1;
    /* from connect to a successful login, TLS handshake included */
    p.deadline = clock_ms() + pop3_cf.preauth_deadline_ms;
    stream_set_timeout(p.st, pop3_cf.timeout_ms);
    stream_set_deadline(p.st, p.deadline);
    /* Over a limit, the client is told so (after the handshake in wrapper mode) and
     * goes, without a log line for each (conn_limit.h logs once a minute). */
    over = !conn_limit_check(&pop3_cf.limits, srv->service, p.addr, &limit);
    if (!over)
        log_info("connect from [%s]", p.addr);
    if (pop3_cf.wrapper) {
        struct str err = STR_INIT;
        size_t discarded = 0;
        if (pop3_cf.tls == NULL || preauth_tls(&p, srv->service, &discarded, &err) < 0) {
            if (!over)
                log_info("client=[%s]: TLS handshake failed: %s%s", p.addr,
                         err.s ? err.s : "no certificate",
                         clock_ms() >= p.deadline ? " (pre-auth deadline exceeded)" : "");
            str_free(&err);
            stream_close(p.st);
            conn_limit_end(&limit);
            return;
        }
        p.tls = true;
        str_free(&err);
    }
    if (over) {
        stream_puts(p.st, "-ERR [SYS/TEMP] too many connections\r\n");
        stream_flush(p.st);
        stream_close(p.st);
        if (p.raw != NULL)
            stream_close(p.raw);
        conn_limit_end(&limit);
        return;
    }
    stream_puts(p.st, "+OK Postern POP3 server ready\r\n");
    while (!p.done && !server_stop) {
        int r = pop3_getline(p.st, &line, POP3_CMD_MAX, p.deadline);
        if (r == POP3_LINE_EOF) {
            if (errno == ETIMEDOUT)
                preauth_timed_out(&p);
            break;
        }
        if (r == POP3_LINE_BAD)
            preauth_error(&p, "%s", "line too long or not text");
        else
            preauth_command(&p, &line);
    }
    stream_flush(p.st);
    wipe(&line);
    str_free(&p.user);
    log_info("disconnect from [%s]", p.addr);
    stream_close(p.st);
    if (p.raw != NULL)
        stream_close(p.raw);
    conn_limit_end(&limit);
}
