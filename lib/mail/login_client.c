/* The pre-auth side of pop3d -l and imapd -l, shared: checking a user name and
 * password with auth (login_check_password) and handing a logged-in client to the
 * post-login service (login_hand_over), with its pipelined bytes: the client's own
 * socket, or, when tlsproxy(8) relays its TLS, the plaintext socket the proxy gave;
 * only when TLS was done in this process (tlsproxy could not be reached) a socket
 * pair, which this process then relays.  The protocol's words stay with
 * the daemons; the names and passwords checked here come from the client. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth_clnt.h"
#include "log.h"
#include "login.h"
#include "server.h"
#include "stream.h"
#include "tls.h"

enum auth_status login_check_password(const struct login_attempt *a, const struct str *user,
                                      const struct str *pass, struct auth_result *r)
{
    struct auth_clnt *ac;
    enum auth_status s;

    if (user->len == 0 || user->len > a->name_max || memchr(user->s, '\0', user->len)
        || pass->len == 0 || memchr(pass->s, '\0', pass->len)) {
        s = AUTH_FAIL;
    } else {
        ac = auth_clnt_open(a->auth_path, a->auth_timeout_ms);
        s = auth_login(ac, a->service, user->s, pass->s, a->client_fd, r);
        auth_clnt_close(ac);
        /* auth's penalty for recent failures: this process waits, not auth */
        auth_delay_wait(r->delay_ms, &server_stop);
    }
    switch (s) {
    case AUTH_OK:
        log_info("login: client=[%s], user=<%s>, method=%s%s", a->client,
                 r->user.s ? r->user.s : user->s, a->method, a->tls ? ", tls" : "");
        if (r->user.len == 0)
            str_set(&r->user, user->s, user->len);
        break;
    case AUTH_FAIL:
        log_info("authentication failed: client=[%s], user=<%s>, method=%s", a->client,
                 user->s ? user->s : "", a->method);
        break;
    default:
        log_warn("authentication unavailable: client=[%s], user=<%s>: %s", a->client,
                 user->s ? user->s : "", r->text.s ? r->text.s : "auth failed");
        break;
    }
    return s;
}

int login_hand_over(const struct login_attempt *a, struct stream *st, const char *path,
                    const struct auth_result *r, int ipc_timeout_ms, int proxy_timeout_ms)
{
    struct login_handoff h;
    struct str err = STR_INIT;
    int pair[2] = { -1, -1 };
    bool relay_here = a->tls && tls_active(st);
    int rc = -1;

    login_handoff_init(&h);
    str_sets(&h.service, a->service);
    str_set(&h.token, r->token.s, r->token.len);
    str_set(&h.user, r->user.s, r->user.len);
    str_sets(&h.client, a->client);
    h.tls = a->tls;
    /* what the client pipelined after its login belongs to the session */
    while (stream_pending(st) > 0 && h.pending.len < LOGIN_PENDING_MAX) {
        char buf[4096];
        size_t want = LOGIN_PENDING_MAX - h.pending.len;
        ssize_t n = stream_read(st, buf, want < sizeof(buf) ? want : sizeof(buf));
        if (n <= 0)
            break;
        str_append(&h.pending, buf, (size_t)n);
    }
    if (relay_here) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
            log_warn("socketpair: %m");
            goto out;
        }
        h.fd = pair[1];
    } else {
        h.fd = stream_fd(st);
    }
    rc = login_send(path, &h, ipc_timeout_ms, &err);
    if (relay_here)
        close(pair[1]);
    h.fd = -1;                  /* the stream or the pair owns it */
    if (rc < 0) {
        log_warn("client=[%s], user=<%s>: %s", a->client, r->user.s ? r->user.s : "", err.s);
        if (pair[0] >= 0)
            close(pair[0]);
        goto out;
    }
    stream_set_deadline(st, 0); /* logged in: the pre-auth deadline is over */
    if (relay_here)
        login_proxy(st, pair[0], proxy_timeout_ms);
out:
    login_handoff_free(&h);
    str_free(&err);
    return rc < 0 ? -1 : 0;
}
