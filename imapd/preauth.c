/* imapd -l: the not-authenticated state (RFC 3501 6.1-6.2, RFC 4959 SASL-IR, RFC 2595
 * STARTTLS) in a process that holds nothing worth stealing: it runs as an unprivileged
 * user, chrooted to login/, where only the auth and imap sockets live.  Credentials go
 * to auth; on success the tagged OK goes out, then the client's descriptor, auth's
 * token and any pipelined bytes go to the post-login service (login/imap).  TLS
 * (port 993, STARTTLS) is done by tlsproxy(8), which takes the client's socket and
 * gives back a plaintext one, so a TLS client is handed over like any other; only
 * when tlsproxy cannot be reached is TLS done here, and this process then stays as
 * the TLS proxy of the session.  LOGIN and AUTHENTICATE wait for TLS (LOGINDISABLED)
 * unless the client is on loopback and imapd_loopback_plaintext_login allows it.
 * Every byte from the client is untrusted; passwords are wiped from memory after use. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth_clnt.h"
#include "clock.h"
#include "imapd.h"
#include "log.h"
#include "login.h"
#include "proto.h"
#include "sasl.h"
#include "server.h"
#include "sock.h"
#include "stream.h"
#include "tls.h"
#include "tlsproxy_clnt.h"

#define IMAP_SASL_LINE_MAX 1024     /* one SASL response line */

struct preauth {
    struct imap_conn c;
    struct stream *raw;         /* the client's own socket, while tlsproxy relays it */
    char addr[64];
    bool tls;
    bool loopback;
};

static void wipe(struct str *s)
{
    if (s->s != NULL)
        explicit_bzero(s->s, s->cap > 0 ? s->cap : s->len);
    str_free(s);
}

static bool login_allowed(const struct preauth *p)
{
    return p->tls || (p->loopback && imap_cf.loopback_plaintext);
}

static bool is_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0
           || strncmp(addr, "::ffff:127.", 11) == 0;
}

/* Time left for a TLS handshake: the idle timeout, cut to the pre-auth deadline. */
static int handshake_ms(const struct preauth *p)
{
    long long left = p->c.phase_deadline - clock_ms();

    if (left < 0)
        left = 0;
    return left < imap_cf.preauth_timeout_ms ? (int)left : imap_cf.preauth_timeout_ms;
}

/* TLS now on the client's connection: through tlsproxy(8), or here when it cannot be
 * had.  0, or -1 with err (then the connection is unusable). */
static int preauth_tls(struct preauth *p, const char *service, size_t *discarded,
                       struct str *err)
{
    struct tlsproxy_req q = {
        .path = PROTO_LOGIN_TLSPROXY, .service = service, .handshake_ms = handshake_ms(p),
        .idle_ms = 2LL * imap_cf.timeout_ms, .ipc_timeout_ms = imap_cf.ipc_timeout_ms,
    };

    if (tlsproxy_start(&q, &p->c.st, &p->raw, discarded, err) == 0) {
        stream_set_timeout(p->c.st, imap_cf.preauth_timeout_ms);
        stream_set_deadline(p->c.st, p->c.phase_deadline);
        return 0;
    }
    log_warn("client=[%s]: TLS done in this process: %s", p->addr, err->s);
    str_clear(err);
    return tls_server_start(imap_cf.tls, p->c.st, handshake_ms(p), discarded, err);
}

static void preauth_capa_line(struct preauth *p, struct str *out)
{
    imap_capa_preauth(out, login_allowed(p), imap_cf.tls != NULL && !p->tls);
}

/* Hands the client to the post-login service after the tagged OK.  On failure the
 * client, told it is logged in, gets BYE. */
static void preauth_handoff(struct preauth *p, const struct login_attempt *a,
                            const struct auth_result *r)
{
    struct str capa = STR_INIT;

    imap_capa_session(&capa);
    imap_ok(&p->c, "[CAPABILITY %s] Logged in", capa.s);
    str_free(&capa);
    p->c.closing = true;
    if (stream_flush(p->c.st) < 0)
        return;
    if (login_hand_over(a, p->c.st, PROTO_LOGIN_IMAP, r, imap_cf.ipc_timeout_ms,
                        imap_cf.timeout_ms) < 0) {
        stream_puts(p->c.st, "* BYE [UNAVAILABLE] mailbox not available now, try again later\r\n");
        stream_flush(p->c.st);
    }
}

/* Checks user and password with auth; hands off on success. */
static void preauth_login(struct preauth *p, const char *method, const struct str *user,
                          const struct str *pass)
{
    struct login_attempt a = {
        .service = PROTO_SERVICE_IMAP, .auth_path = PROTO_LOGIN_AUTH, .method = method,
        .client = p->addr, .client_fd = stream_fd(p->raw != NULL ? p->raw : p->c.st),
        .tls = p->tls,
        .name_max = IMAP_NAME_MAX, .auth_timeout_ms = imap_cf.auth_timeout_ms,
    };
    struct auth_result r;

    auth_result_init(&r);
    switch (login_check_password(&a, user, pass, &r)) {
    case AUTH_OK:
        preauth_handoff(p, &a, &r);
        break;
    case AUTH_FAIL:
        imap_no(&p->c, "[AUTHENTICATIONFAILED] Authentication failed");
        break;
    default:
        imap_no(&p->c, "[UNAVAILABLE] Authentication unavailable, try again later");
        break;
    }
    auth_result_free(&r);
}

/* One SASL response: 1, 0 when cancelled or bad (answered), -1 to close. */
static int preauth_sasl_line(struct preauth *p, const char *prompt, struct str *out)
{
    struct str line = STR_INIT;
    int r;

    stream_printf(p->c.st, "+ %s\r\n", prompt);
    if (stream_flush(p->c.st) < 0) {
        p->c.closing = true;
        return -1;
    }
    stream_set_deadline(p->c.st, clock_ms() + imap_cf.command_deadline_ms < p->c.phase_deadline
                                 ? clock_ms() + imap_cf.command_deadline_ms
                                 : p->c.phase_deadline);
    r = stream_getline(p->c.st, &line, IMAP_SASL_LINE_MAX + 2);
    stream_set_deadline(p->c.st, p->c.phase_deadline);
    if (r != STREAM_LINE) {
        if (r == STREAM_PARTIAL) {
            wipe(&line);
            stream_printf(p->c.st, "%s BAD response too long\r\n* BYE closing\r\n", p->c.tag);
        } else if (errno == ETIMEDOUT) {
            imap_timed_out(&p->c);
        }
        wipe(&line);
        p->c.closing = true;
        return -1;
    }
    while (line.len > 0 && (line.s[line.len - 1] == '\n' || line.s[line.len - 1] == '\r'))
        str_truncate(&line, line.len - 1);
    if (line.len == 1 && line.s[0] == '*') {
        wipe(&line);
        imap_bad(&p->c, "Authentication cancelled");
        return 0;
    }
    r = sasl_base64_decode(line.s, line.len, out);
    wipe(&line);
    if (r < 0) {
        imap_bad(&p->c, "Malformed base64");
        return 0;
    }
    return 1;
}

/* A response given with the command ("=" is the empty one): 1, or 0 (answered). */
static int preauth_initial(struct preauth *p, const struct str *ir, struct str *out)
{
    if (ir->len == 1 && ir->s[0] == '=') {
        str_clear(out);
        return 1;
    }
    if (sasl_base64_decode(ir->s, ir->len, out) < 0) {
        imap_bad(&p->c, "Malformed base64");
        return 0;
    }
    return 1;
}

static void preauth_authenticate(struct preauth *p, struct imap_parser *ip)
{
    struct str mech = STR_INIT, irs = STR_INIT, d = STR_INIT, user = STR_INIT, pass = STR_INIT;
    bool have_ir = false;

    if (!imap_p_sp(ip) || !imap_p_atom(ip, &mech, 64)) {
        imap_bad(&p->c, "AUTHENTICATE needs a mechanism");
        goto out;
    }
    if (imap_p_sp(ip)) {
        if (!imap_p_atom(ip, &irs, IMAP_SASL_LINE_MAX)) {
            imap_bad(&p->c, "Malformed initial response");
            goto out;
        }
        have_ir = true;
    }
    if (!imap_p_eol(ip)) {
        imap_bad(&p->c, "Unexpected arguments");
        goto out;
    }
    if (!login_allowed(p)) {
        imap_no(&p->c, "[PRIVACYREQUIRED] Use STARTTLS first");
        goto out;
    }
    if (strcasecmp(mech.s, "PLAIN") == 0) {
        int r = have_ir ? preauth_initial(p, &irs, &d) : preauth_sasl_line(p, "", &d);
        if (r == 1) {
            if (sasl_plain(&d, &user, &pass) < 0)
                imap_bad(&p->c, "Malformed PLAIN response");
            else
                preauth_login(p, "PLAIN", &user, &pass);
        }
    } else if (strcasecmp(mech.s, "LOGIN") == 0) {
        int r = have_ir ? preauth_initial(p, &irs, &user)
                        : preauth_sasl_line(p, "VXNlcm5hbWU6", &user);
        if (r == 1 && user.len > IMAP_NAME_MAX) {
            imap_no(&p->c, "[AUTHENTICATIONFAILED] User name too long");
            r = 0;
        }
        if (r == 1)
            r = preauth_sasl_line(p, "UGFzc3dvcmQ6", &pass);
        if (r == 1)
            preauth_login(p, "LOGIN", &user, &pass);
    } else {
        imap_no(&p->c, "Unsupported authentication mechanism");
    }
out:
    str_free(&mech);
    wipe(&irs);
    wipe(&d);
    str_free(&user);
    wipe(&pass);
}

static void preauth_login_cmd(struct preauth *p, struct imap_parser *ip)
{
    struct str user = STR_INIT, pass = STR_INIT;

    if (!imap_p_sp(ip) || !imap_p_astring(ip, &user) || !imap_p_sp(ip)
        || !imap_p_astring(ip, &pass) || !imap_p_eol(ip))
        imap_bad(&p->c, "LOGIN needs a user name and a password");
    else if (!login_allowed(p))
        imap_no(&p->c, "[PRIVACYREQUIRED] Use STARTTLS first");
    else
        preauth_login(p, "LOGIN", &user, &pass);
    str_free(&user);
    wipe(&pass);
}

static void preauth_starttls(struct preauth *p)
{
    struct str err = STR_INIT;
    size_t discarded = 0;

    if (imap_cf.tls == NULL || p->tls) {
        imap_bad(&p->c, "%s", p->tls ? "TLS already active" : "TLS not available");
        return;
    }
    imap_ok(&p->c, "Begin TLS negotiation now");
    if (stream_flush(p->c.st) < 0) {
        p->c.closing = true;
        return;
    }
    if (preauth_tls(p, "imap", &discarded, &err) < 0) {
        log_info("client=[%s]: TLS handshake failed: %s%s", p->addr, err.s ? err.s : "",
                 clock_ms() >= p->c.phase_deadline ? " (pre-auth deadline exceeded)" : "");
        p->c.closing = true;
    } else {
        p->tls = true;
        if (discarded > 0)
            log_warn("client=[%s]: %zu bytes sent before the TLS handshake discarded",
                     p->addr, discarded);
    }
    str_free(&err);
}

/* The commands of the other states, refused here as such. */
static bool session_command(const char *name)
{
    static const char *const names[] = {
        "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE",
        "LIST", "LSUB", "STATUS", "APPEND", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE",
        "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "UID", "IDLE", "ENABLE", "NAMESPACE",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

static void preauth_command(struct preauth *p, const struct str *cmd)
{
    struct imap_parser ip;
    struct str tag = STR_INIT, name = STR_INIT;

    imap_parser_init(&ip, cmd);
    if (!imap_p_tag(&ip, &tag) || !imap_p_sp(&ip) || !imap_p_atom(&ip, &name, 32)) {
        imap_bad(&p->c, "Invalid tag or command");
        goto out;
    }
    if (strcasecmp(name.s, "CAPABILITY") == 0 || strcasecmp(name.s, "NOOP") == 0
        || strcasecmp(name.s, "LOGOUT") == 0 || strcasecmp(name.s, "STARTTLS") == 0) {
        if (!imap_p_eol(&ip)) {
            imap_bad(&p->c, "%s takes no arguments", name.s);
            goto out;
        }
    }
    if (strcasecmp(name.s, "CAPABILITY") == 0) {
        struct str capa = STR_INIT;
        preauth_capa_line(p, &capa);
        stream_printf(p->c.st, "* CAPABILITY %s\r\n", capa.s);
        imap_ok(&p->c, "CAPABILITY completed");
        str_free(&capa);
    } else if (strcasecmp(name.s, "NOOP") == 0) {
        imap_ok(&p->c, "NOOP completed");
    } else if (strcasecmp(name.s, "LOGOUT") == 0) {
        stream_puts(p->c.st, "* BYE Logging out\r\n");
        imap_ok(&p->c, "LOGOUT completed");
        p->c.closing = true;
    } else if (strcasecmp(name.s, "STARTTLS") == 0) {
        preauth_starttls(p);
    } else if (strcasecmp(name.s, "LOGIN") == 0) {
        preauth_login_cmd(p, &ip);
    } else if (strcasecmp(name.s, "AUTHENTICATE") == 0) {
        preauth_authenticate(p, &ip);
    } else if (strcasecmp(name.s, "ID") == 0) {
        imap_cmd_id(&p->c, &ip);
    } else if (session_command(name.s)) {
        imap_bad(&p->c, "%s not valid before login", name.s);
    } else {
        imap_bad(&p->c, "Unknown command");
    }
out:
    str_free(&tag);
    str_free(&name);
}

void imap_preauth_service(struct server *srv, int *fd)
{
    struct preauth p;
    struct str cmd = STR_INIT, capa = STR_INIT;
    struct conn_limit_state limit;
    bool over;

    memset(&p, 0, sizeof(p));
    if (sock_peer(*fd, p.addr, sizeof(p.addr), NULL) < 0)
        strcpy(p.addr, "unknown");
    p.loopback = is_loopback(p.addr);
    p.c.client = p.addr;
    p.c.st = stream_fdopen(*fd);
    *fd = -1;
    /* from connect to a successful login, TLS handshake included */
    p.c.phase_deadline = clock_ms() + imap_cf.preauth_deadline_ms;
    stream_set_timeout(p.c.st, imap_cf.preauth_timeout_ms);
    stream_set_deadline(p.c.st, p.c.phase_deadline);
    /* Over a limit, the client is told so (after the handshake in wrapper mode) and
     * goes, without a log line for each (conn_limit.h logs once a minute). */
    over = !conn_limit_check(&imap_cf.limits, srv->service, p.addr, &limit);
    if (!over)
        log_info("connect from [%s]", p.addr);
    if (imap_cf.wrapper) {
        struct str err = STR_INIT;
        size_t discarded = 0;
        if (imap_cf.tls == NULL || preauth_tls(&p, srv->service, &discarded, &err) < 0) {
            if (!over)
                log_info("client=[%s]: TLS handshake failed: %s%s", p.addr,
                         err.s ? err.s : "no certificate",
                         clock_ms() >= p.c.phase_deadline ? " (pre-auth deadline exceeded)"
                                                          : "");
            str_free(&err);
            stream_close(p.c.st);
            conn_limit_end(&limit);
            return;
        }
        p.tls = true;
        str_free(&err);
    }
    if (over) {
        stream_puts(p.c.st, "* BYE [UNAVAILABLE] Too many connections\r\n");
        stream_flush(p.c.st);
        stream_close(p.c.st);
        if (p.raw != NULL)
            stream_close(p.raw);
        conn_limit_end(&limit);
        return;
    }
    preauth_capa_line(&p, &capa);
    stream_printf(p.c.st, "* OK [CAPABILITY %s] Postern IMAP server ready\r\n", capa.s);
    str_free(&capa);
    while (!p.c.closing && !server_stop) {
        enum imap_read r = imap_read_command(&p.c, &cmd);
        if (r == IMAP_READ_EOF) {
            if (errno == ETIMEDOUT)
                imap_timed_out(&p.c);
            break;
        }
        if (r == IMAP_READ_OK)
            preauth_command(&p, &cmd);
        wipe(&cmd);
    }
    if (server_stop && !p.c.closing)
        stream_puts(p.c.st, "* BYE Server shutting down\r\n");
    stream_flush(p.c.st);
    wipe(&cmd);
    log_info("disconnect from [%s]", p.addr);
    stream_close(p.c.st);
    if (p.raw != NULL)
        stream_close(p.raw);
    conn_limit_end(&limit);
}
