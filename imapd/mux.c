/* The session process's loop: one process serves all the connections of its user
 * (up to imapd_session_connection_limit; the post-login process sends them) from
 * one poll().  Each connection is a state machine that never waits for its client:
 * it reads a command line, then its literals, from what has arrived, runs the
 * command once it is whole, or, in IDLE, waits for DONE.  Replies are queued and
 * written as the client takes them (bounded: a client that reads slower than one
 * reply over MUX_QUEUE_MAX makes the others wait for that reply's bytes), and a
 * connection whose replies wait is not read from.  Each has its own timeouts: the
 * idle one (imapd_timeout, IDLE included) and the command deadline.  After a
 * command that changes a folder, the other connections idling on it are told at
 * once; inotify (one instance for the process, store_watch.h) tells them of
 * deliveries and of changes made elsewhere.  The reading itself is mux_read.c's.
 * Every byte read here is the client's. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "imapd.h"
#include "log.h"
#include "login.h"
#include "login_serve.h"
#include "mux_read.h"
#include "server.h"
#include "session.h"
#include "store.h"
#include "store_watch.h"
#include "stream.h"
#include "xmalloc.h"

#define MUX_QUEUE_MAX (1024 * 1024)     /* replies queued for one client */
#define MUX_READ_HOLD (64 * 1024)       /* no reading while more than this waits */
#define MUX_WRITE_TIMEOUT_MS 30000      /* a write that must wait (over the queue) */
#define MUX_IDLE_POLL_MS 5000           /* sync interval in IDLE without a watch */

struct conn {
    struct imap_session *s;
    struct mux_reader rd;       /* the command being read, its deadline; dead, end_how */
    long long next_sync;        /* IDLE without a watch: the next sync */
    long long verified;         /* the store_verify_at it last synced for */
    bool transport_dry;         /* the transport's held input decoded to nothing */
};

static struct conn **conns;
static size_t nconns, conns_cap;

static void conn_add(struct login_handoff *h, const struct auth_result *who)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    int fd = h->fd;

    if (fd >= 0)
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    c->s = imap_session_start(h, who);
    stream_set_timeout(c->s->c.st, MUX_WRITE_TIMEOUT_MS);
    stream_set_queue(c->s->c.st, MUX_QUEUE_MAX);
    mux_read_init(&c->rd, &c->s->c, clock_ms() + imap_cf.timeout_ms);
    if (nconns == conns_cap) {
        conns_cap = conns_cap ? conns_cap * 2 : 16;
        conns = xreallocarray(conns, conns_cap, sizeof(*conns));
    }
    conns[nconns++] = c;
}

static void conn_end(struct conn *c, const char *how)
{
    mux_read_end(&c->rd, how);
}

/* Ready for the next command: the idle timeout starts again. */
static void conn_reset(struct conn *c)
{
    mux_read_reset(&c->rd, c->s->idling,
                   c->s->idling ? c->s->idle_end : clock_ms() + imap_cf.timeout_ms);
    c->next_sync = clock_ms() + MUX_IDLE_POLL_MS;
}

/* When a connection in IDLE must sync its folder without being woken: every
 * MUX_IDLE_POLL_MS without an inotify watch, and when the folder's own changes stop
 * being taken on trust (store_verify_at), so that another program's change hidden by
 * one of them is told within that second too.  0: none. */
static long long idle_due(const struct conn *c)
{
    long long due = 0, v;

    if (c->rd.dead || !c->s->idling)
        return 0;
    if (c->s->watch == NULL)
        due = c->next_sync;
    if (c->s->box != NULL && (v = store_verify_at(c->s->box)) != 0 && v != c->verified &&
        (due == 0 || v < due))
        due = v;
    return due;
}

static bool on_folder(const struct imap_session *s, const struct str *name)
{
    return s->box != NULL && s->box_name.len == name->len
           && memcmp(s->box_name.s, name->s, name->len) == 0;
}

/* The command's name, upper-cased (after "UID", the next word), into name. */
static void command_name(const struct str *cmd, char *name, size_t size)
{
    const char *p = cmd->s, *end = cmd->s + cmd->len;

    name[0] = '\0';
    for (int word = 0; word < 3; word++) {
        size_t n = 0;

        while (p < end && *p != ' ' && *p != '\r')
            p++;            /* the tag, then a word */
        if (word == 0 || (word == 2 && strcmp(name, "UID") == 0)) {
            if (p == end || *p != ' ')
                return;
            p++;
            for (const char *q = p; q < end && *q != ' ' && *q != '\r' && n + 1 < size; q++)
                name[n++] = (char)(*q >= 'a' && *q <= 'z' ? *q - 32 : *q);
            name[n] = '\0';
            if (word == 0 && strcmp(name, "UID") != 0)
                return;
            if (word == 2)
                return;
        }
    }
}

/* After a command of c's that may have changed folders (was: the folder selected
 * before it), the other connections idling on a folder it changed hear of it now:
 * STORE, EXPUNGE and CLOSE change the selected one; COPY, MOVE and APPEND may change
 * any. */
static void tell_others(struct conn *c, const struct str *cmd, const struct str *was)
{
    char name[16];
    bool any;

    command_name(cmd, name, sizeof(name));
    if (strcmp(name, "STORE") == 0 || strcmp(name, "EXPUNGE") == 0
        || strcmp(name, "CLOSE") == 0)
        any = false;
    else if (strcmp(name, "COPY") == 0 || strcmp(name, "MOVE") == 0
             || strcmp(name, "APPEND") == 0)
        any = true;
    else
        return;
    for (size_t i = 0; i < nconns; i++) {
        struct conn *o = conns[i];
        if (o == c || o->rd.dead || !o->s->idling || o->s->box == NULL)
            continue;
        if (any || on_folder(o->s, was)) {
            imap_idle_wake(o->s);
            if (stream_flush_nowait(o->s->c.st) < 0)
                conn_end(o, "disconnected");
        }
    }
}

/* Runs the whole command in c->rd.cmd. */
static void conn_run(struct conn *c)
{
    struct str was = STR_INIT;

    if (c->s->box != NULL)
        str_set(&was, c->s->box_name.s, c->s->box_name.len);
    imap_session_command(c->s, &c->rd.cmd);
    if (c->s->c.closing)
        conn_end(c, "closed");
    else if (was.len > 0 || c->s->box != NULL || nconns > 1)
        tell_others(c, &c->rd.cmd, &was);
    str_free(&was);
    conn_reset(c);
}

/* Reads what the client sent, without waiting, and runs at most one command. */
static void conn_input(struct conn *c)
{
    ssize_t n = stream_fill_nowait(c->s->c.st);

    if (n < 0 && errno == EAGAIN) {
        c->transport_dry = true;
        return;
    }
    c->transport_dry = false;
    if (n < 0) {
        if (errno == EPROTO)
            log_info("corrupt compressed input: client=[%s]", c->s->c.client);
        conn_end(c, "disconnected");
        return;
    }
    if (n == 0) {
        conn_end(c, "disconnected");
        return;
    }
    switch (mux_read_step(&c->rd)) {
    case MUX_COMMAND:
        conn_run(c);
        break;
    case MUX_IDLE_LINE:
        imap_idle_input(c->s, &c->rd.line);
        conn_reset(c);
        break;
    case MUX_REFUSED:
        conn_reset(c);
        break;
    case MUX_MORE:
    case MUX_ENDED:
        break;
    }
    /* a refusal or a bad line in IDLE that reached the error limit said BYE */
    if (c->s->c.closing)
        conn_end(c, "closed");
}

/* Whether c has input we can take without poll saying so. */
static bool conn_ready(const struct conn *c)
{
    return !c->rd.dead && !c->transport_dry && stream_input_ready(c->s->c.st)
           && stream_output_pending(c->s->c.st) <= MUX_READ_HOLD;
}

static void conn_timeout(struct conn *c, long long now)
{
    if (now < c->rd.deadline)
        return;
    if (c->rd.in_command)
        log_info("command line deadline exceeded: client=[%s], user=<%s>", c->s->c.client,
                 c->s->c.user);
    imap_timed_out(&c->s->c);
    conn_end(c, "timeout");
}

/* Ends the dead connections and reports each to the post-login process. */
static void reap(int ctl)
{
    size_t k = 0;

    for (size_t i = 0; i < nconns; i++) {
        struct conn *c = conns[i];
        if (!c->rd.dead) {
            conns[k++] = c;
            continue;
        }
        imap_session_end(c->s, c->rd.end_how);
        mux_read_free(&c->rd);
        free(c);
        login_worker_done(ctl);
    }
    nconns = k;
}

/* inotify said a folder changed: the idling connections on it hear of it. */
static void watches_fired(void)
{
    store_watches_drain();
    for (size_t i = 0; i < nconns; i++) {
        struct conn *c = conns[i];
        if (c->rd.dead || !c->s->idling || c->s->watch == NULL)
            continue;
        if (store_watch_changed(c->s->watch))
            imap_idle_wake(c->s);
    }
}

/* A new client from the post-login process; false when no more will come. */
static bool take_client(int ctl)
{
    struct login_handoff h;
    struct auth_result who;
    int r;

    login_handoff_init(&h);
    r = login_worker_next(ctl, &h, &who);
    if (r == 1)
        conn_add(&h, &who);
    login_handoff_free(&h);
    auth_result_free(&who);
    return r != 0;
}

void imap_mux(int ctl, struct login_handoff *h, const struct auth_result *who)
{
    struct pollfd *pfd = NULL;
    size_t pfd_cap = 0;

    conn_add(h, who);
    while (ctl >= 0 || nconns > 0) {
        long long now = clock_ms(), wake = now + 60000;
        size_t np = 0, first;
        int wait, ifd = store_watches_fd();
        bool ready = false;

        if (pfd_cap < nconns + 2) {
            pfd_cap = nconns + 16;
            pfd = xreallocarray(pfd, pfd_cap, sizeof(*pfd));
        }
        pfd[np++] = (struct pollfd){ .fd = ctl, .events = POLLIN, .revents = 0 };
        pfd[np++] = (struct pollfd){ .fd = ifd, .events = POLLIN, .revents = 0 };
        first = np;
        for (size_t i = 0; i < nconns; i++) {
            struct conn *c = conns[i];
            struct stream *st = c->s->c.st;
            short ev = 0;

            if (stream_output_pending(st) > 0 && stream_flush_nowait(st) < 0)
                conn_end(c, "disconnected");
            if (stream_output_pending(st) > 0)
                ev |= POLLOUT;
            if (stream_output_pending(st) <= MUX_READ_HOLD)
                ev |= POLLIN;
            pfd[np++] = (struct pollfd){ .fd = c->rd.dead ? -1 : stream_fd(st), .events = ev,
                                         .revents = 0 };
            if (conn_ready(c))
                ready = true;
            if (c->rd.deadline < wake)
                wake = c->rd.deadline;
            long long due = idle_due(c);
            if (due != 0 && due < wake)
                wake = due;
        }
        wait = ready ? 0 : wake <= now ? 0 : (int)(wake - now);
        if (poll(pfd, (nfds_t)np, wait) < 0 && errno != EINTR) {
            log_error("poll: %m");
            break;
        }
        if (ctl >= 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && !take_client(ctl)) {
            close(ctl);
            ctl = -1;
        }
        if (ifd >= 0 && (pfd[1].revents & POLLIN))
            watches_fired();
        now = clock_ms();
        /* Clients added above are not in this round's pfd. */
        for (size_t i = 0; i + first < np && i < nconns; i++) {
            struct conn *c = conns[i];
            short re = pfd[first + i].revents;

            if (c->rd.dead)
                continue;
            if (re & (POLLIN | POLLHUP | POLLERR))
                c->transport_dry = false;
            if ((re & (POLLIN | POLLHUP | POLLERR)) || conn_ready(c)) {
                if (stream_output_pending(c->s->c.st) <= MUX_READ_HOLD)
                    conn_input(c);
            }
            long long due = idle_due(c);
            if (due != 0 && now >= due) {
                c->next_sync = now + MUX_IDLE_POLL_MS;
                if (c->s->box != NULL)
                    c->verified = store_verify_at(c->s->box);
                imap_idle_wake(c->s);
            }
            if (!c->rd.dead)
                conn_timeout(c, now);
            if (!c->rd.dead && stream_flush_nowait(c->s->c.st) < 0)
                conn_end(c, "disconnected");
        }
        reap(ctl);
        if (server_stop)
            break;
    }
    for (size_t i = 0; i < nconns; i++)
        conn_end(conns[i], "disconnected");
    reap(-1);
    free(conns);
    free(pfd);
    if (ctl >= 0)
        close(ctl);
}
