/* tlsproxy: the table of relayed connections.  Each is a TLS client socket and the
 * plaintext end of a socket pair whose other end went to a pre-auth process (and,
 * after login, on to a session), relayed by tls_relay.h without waiting.  A
 * connection ends when either side closes, on any error, when its handshake is not
 * done by its deadline, or when nothing moved for its idle time; each start, each
 * failed handshake and each end is logged with the client's address, which is read
 * from the socket itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "sock.h"
#include "str.h"
#include "tls_relay.h"
#include "tlsproxy.h"
#include "xmalloc.h"

struct conn {
    struct tls_relay *relay;
    char addr[TLSPROXY_ADDR_MAX];
    char service[TLSPROXY_SERVICE_MAX + 1];
    long long started;
    long long hs_deadline;      /* the handshake's end, clock_ms() */
    long long idle_ms;
    long long last_moved;
};

static struct conn **conns;
static size_t nconns, conns_cap;
static long long last_deadline_check;

size_t relay_count(void)
{
    return nconns;
}

int relay_add(int net, int plain, const char *service, long long handshake_ms,
              long long idle_ms)
{
    struct str err = STR_INIT;
    struct conn *c = xcalloc(1, sizeof(*c));
    long long now = clock_ms();

    if (sock_peer(net, c->addr, sizeof(c->addr), NULL) < 0)
        strcpy(c->addr, "unknown");
    snprintf(c->service, sizeof(c->service), "%s", service);
    c->relay = tls_relay_new(tlsproxy_cf.tls, net, plain, tlsproxy_cf.buf_size, &err);
    if (c->relay == NULL) {
        log_warn("client=[%s], service=%s: %s", c->addr, c->service, err.s);
        str_free(&err);
        free(c);
        return -1;
    }
    str_free(&err);
    c->started = c->last_moved = now;
    c->hs_deadline = now + handshake_ms;
    c->idle_ms = idle_ms;
    if (nconns == conns_cap) {
        conns_cap = conns_cap > 0 ? 2 * conns_cap : 64;
        conns = xreallocarray(conns, conns_cap, sizeof(*conns));
    }
    conns[nconns++] = c;
    return 0;
}

/* Ends the connection at index i, logging why (as a failed handshake or as the end
 * of a relay); the last connection takes its place. */
static void conn_end(size_t i, const char *why, bool handshake_failed)
{
    struct conn *c = conns[i];
    long long secs = (clock_ms() - c->started) / 1000;

    if (handshake_failed)
        log_info("client=[%s]: TLS handshake failed: %s", c->addr, why);
    else
        log_info("client=[%s], service=%s: TLS relay ended: %s, %llds", c->addr,
                 c->service, why, secs);
    tls_relay_free(c->relay);
    free(c);
    conns[i] = conns[--nconns];
}

size_t relay_poll_fill(struct pollfd *pfd)
{
    size_t n = 0;

    for (size_t i = 0; i < nconns; i++) {
        short ne, pe;
        tls_relay_events(conns[i]->relay, &ne, &pe);
        /* A side waited for nothing is left out (fd -1), or its hang-up, which poll
         * reports whatever was asked, would wake the loop again and again. */
        pfd[n].fd = ne != 0 ? tls_relay_net_fd(conns[i]->relay) : -1;
        pfd[n].events = ne;
        pfd[n++].revents = 0;
        pfd[n].fd = pe != 0 ? tls_relay_plain_fd(conns[i]->relay) : -1;
        pfd[n].events = pe;
        pfd[n++].revents = 0;
    }
    return n;
}

/* Runs c once; false when it ended (and was removed: index i now holds another). */
static bool conn_run(size_t i, long long now)
{
    struct conn *c = conns[i];
    struct str err = STR_INIT;
    bool moved = false, was_done = tls_relay_handshaken(c->relay);
    int rc = tls_relay_run(c->relay, &moved, &err);

    if (moved)
        c->last_moved = now;
    if (!was_done && tls_relay_handshaken(c->relay))
        log_info("client=[%s], service=%s: TLS %s, cipher %s (%d bits)", c->addr,
                 c->service, tls_relay_version(c->relay), tls_relay_cipher(c->relay),
                 tls_relay_cipher_bits(c->relay));
    if (rc < 0) {
        conn_end(i, err.s != NULL && err.s[0] != '\0' ? err.s : "failed",
                 !tls_relay_handshaken(c->relay));
        str_free(&err);
        return false;
    }
    str_free(&err);
    if (rc == 0) {
        const char *by = tls_relay_closed_by(c->relay);
        conn_end(i, by != NULL && strcmp(by, "client") == 0 ? "closed by the client"
                                                              : "closed by the server",
                 false);
        return false;
    }
    return true;
}

void relay_poll_done(const struct pollfd *pfd, long long now)
{
    bool check = now - last_deadline_check >= TLSPROXY_TICK_MS;

    /* Backwards: an ended connection's slot takes the last one, already seen. */
    for (size_t i = nconns; i-- > 0;) {
        struct conn *c;

        if (((pfd[2 * i].revents | pfd[2 * i + 1].revents) != 0
             || tls_relay_more(conns[i]->relay))
            && !conn_run(i, now))
            continue;
        if (!check)
            continue;
        c = conns[i];
        if (!tls_relay_handshaken(c->relay) && now >= c->hs_deadline)
            conn_end(i, "timed out (pre-auth deadline exceeded)", true);
        else if (tls_relay_handshaken(c->relay) && now - c->last_moved >= c->idle_ms)
            conn_end(i, "idle timeout", false);
    }
    if (check)
        last_deadline_check = now;
}

bool relay_more(void)
{
    for (size_t i = 0; i < nconns; i++)
        if (tls_relay_more(conns[i]->relay))
            return true;
    return false;
}

void relay_close_all(void)
{
    while (nconns > 0)
        conn_end(nconns - 1, "shutting down", false);
    free(conns);
    conns = NULL;
    conns_cap = 0;
}
