/* libFuzzer harness for the session process's command reader (imapd/mux_read.c: the
 * state machine of imapd/mux.c that takes command lines, literals, IDLE's line and
 * overlong lines from buffered input without waiting), with io.c's limits and replies.
 * Build and run: make fuzz (build/fuzz/fuzz_imap_mux), make fuzz-smoke-fuzz_imap_mux.
 *
 * The input: byte 0 chooses the pieces the client's bytes arrive in (sizes up to
 * 2^(b & 15), drawn from bytes 0 and 1; about 1024 pieces at most), byte 1 the
 * settings (bit 0: no message_size_limit, bit 1: imapd_error_limit 3, bit 2: "\xff k"
 * stands for (k + 1) * 512 'x', for lines past the discard limit), the rest is what
 * the client sends.  It goes through a socket piece by piece, only when the reader
 * has taken all it had, and the reader is stepped as mux.c steps it; a stand-in for
 * the session answers commands (IDLE starts idling, LOGOUT closes) and IDLE's line
 * (DONE or BAD).
 *
 * Checked beyond "no crash":
 *   - the bytes the reader took for each event are known exactly (the socket's and the
 *     stream's counts): a command is those bytes read again independently (line ends
 *     removed, "\r\n" before each literal, literals' bytes as sent, NUL only in them),
 *     every line within IMAP_LINE_MAX (however it ends), the command
 *     within IMAP_CMD_MAX besides its APPEND literals, those within their limit and
 *     only in an APPEND; the last line announces no literal;
 *   - an IDLE line only while idling, ended by LF, within MUX_IDLE_LINE_MAX; a command
 *     never while idling; a refusal answered, at a line's end, not while idling;
 *   - "no event" only when the buffered input was all taken (or after "{0}");
 *   - after the connection is marked ended (by the reader or by the caller), a step
 *     takes no byte, writes no reply and delivers nothing;
 *   - the same events, at the same places, and the same replies whatever the pieces
 *     (against the whole input offered at once); an end may take more or fewer of
 *     the bytes after it. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "str.h"
#include "stream.h"
#include "../../imapd/imapd.h"
#include "../../imapd/mux_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct imap_conf imap_cf;

#define FUZZ_INPUT_MAX 65536
#define FUZZ_EXPAND_MAX (256 * 1024)    /* the client's bytes after "\xff k" runs */
#define FUZZ_APPEND_LIMIT 100000

struct event {
    enum mux_event type;
    size_t start, end;              /* the input bytes it took */
    struct str data;                /* the command, the IDLE line, or why it ended */
};

struct run {
    struct event *ev;
    size_t n, cap;
    struct str replies;             /* all the client was sent */
};

static bool same(const struct str *a, const struct str *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->s, b->s, a->len) == 0);
}

/* The literal announced at the end of a line, read independently of io.c. */
static bool announces(const char *s, size_t len, uint64_t *n)
{
    size_t i, digits;
    uint64_t v = 0;

    if (len < 3 || s[len - 1] != '}')
        return false;
    i = len - 1;
    if (s[i - 1] == '+')
        i--;
    digits = 0;
    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') {
        i--;
        digits++;
    }
    if (digits == 0 || digits > 19 || i == 0 || s[i - 1] != '{')
        return false;
    for (size_t k = 0; k < digits; k++)
        v = v * 10 + (uint64_t)(s[i + k] - '0');
    *n = v;
    return true;
}

/* The command that span (the bytes taken for it) makes, checked line by line. */
static void rebuild(const char *span, size_t len, struct str *out)
{
    size_t pos = 0;

    str_clear(out);
    for (;;) {
        const char *nl = memchr(span + pos, '\n', len - pos);
        size_t l;
        uint64_t n;

        if (nl == NULL)
            abort();                    /* a command ends with a line's end */
        l = (size_t)(nl - (span + pos));
        if (l > 0 && span[pos + l - 1] == '\r')
            l--;
        if (l > IMAP_LINE_MAX || memchr(span + pos, '\0', l) != NULL)
            abort();
        str_append(out, span + pos, l);
        if (!announces(span + pos, l, &n)) {
            pos = (size_t)(nl - span) + 1;
            if (pos != len)
                abort();                /* bytes taken after a whole command */
            return;
        }
        pos = (size_t)(nl - span) + 1;
        if (n > len - pos)
            abort();                    /* delivered before its literal came */
        str_append(out, "\r\n", 2);
        str_append(out, span + pos, (size_t)n);
        pos += (size_t)n;
    }
}

/* The command's second word, upper-cased. */
static void command_name(const struct str *cmd, char *name, size_t size)
{
    const char *sp = cmd->s != NULL ? memchr(cmd->s, ' ', cmd->len) : NULL;
    size_t n = 0;

    name[0] = '\0';
    if (sp == NULL)
        return;
    for (const char *p = sp + 1; p < cmd->s + cmd->len && *p != ' ' && n + 1 < size; p++)
        name[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    name[n] = '\0';
}

static size_t socket_held(int fd)
{
    int n = 0;

    if (ioctl(fd, FIONREAD, &n) < 0 || n < 0)
        abort();
    return (size_t)n;
}

static void drain(struct stream *st, int fd, struct str *replies)
{
    char buf[4096];
    ssize_t n;

    (void)stream_flush_nowait(st);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        str_append(replies, buf, (size_t)n);
}

static void record(struct run *out, enum mux_event type, size_t start, size_t end,
                   const char *s, size_t len)
{
    struct event *e;

    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 16;
        out->ev = realloc(out->ev, out->cap * sizeof(*out->ev));
        if (out->ev == NULL)
            abort();
    }
    e = &out->ev[out->n++];
    e->type = type;
    e->start = start;
    e->end = end;
    e->data = (struct str)STR_INIT;
    str_set(&e->data, s != NULL ? s : "", len);
}

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->n; i++)
        str_free(&r->ev[i].data);
    free(r->ev);
    str_free(&r->replies);
}

/* Once the connection is marked ended, the reader takes and writes nothing. */
static void after_end(struct mux_reader *r, struct stream *st, int client, const char *in,
                      size_t len, size_t *fed)
{
    size_t pending, out, cmd = r->cmd.len, line = r->line.len;

    while (*fed < len) {
        ssize_t w = write(client, in + *fed, len - *fed);
        if (w <= 0)
            break;
        *fed += (size_t)w;
    }
    if (stream_fill_nowait(st) < 0 && errno != EAGAIN)
        return;
    pending = stream_pending(st);
    out = stream_output_pending(st);
    for (int i = 0; i < 3; i++) {
        if (mux_read_step(r) != MUX_ENDED || !r->dead || r->end_how == NULL)
            abort();
        if (stream_pending(st) != pending || stream_output_pending(st) != out
            || r->cmd.len != cmd || r->line.len != line)
            abort();
    }
}

/* Feeds in (pieces of at most max bytes, sizes drawn from seed) to a reader as mux.c
 * steps it; the events and replies into out. */
static void run(const char *in, size_t len, unsigned max, uint32_t seed, struct run *out)
{
    struct imap_conn c;
    struct mux_reader r;
    struct stream *st;
    int fds[2];
    size_t fed = 0, last = 0, steps = 0;
    bool idling = false, shut = false;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
        abort();
    {
        int sz = 4 * FUZZ_INPUT_MAX;
        (void)setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        (void)setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    (void)fcntl(fds[0], F_SETFL, O_NONBLOCK);
    (void)fcntl(fds[1], F_SETFL, O_NONBLOCK);
    memset(&c, 0, sizeof(c));
    c.client = "fuzz";
    c.user = "fuzz";
    c.st = st = stream_fdopen(fds[0]);
    stream_set_queue(st, 1024 * 1024);
    mux_read_init(&r, &c, 0);
    for (;;) {
        enum mux_event ev;
        size_t taken, before = out->replies.len;
        ssize_t n;

        if (++steps > 4 * len + 64)
            abort();                    /* stepping makes no progress */
        if (!stream_input_ready(st) && socket_held(fds[0]) == 0) {
            if (fed < len) {
                size_t piece;
                ssize_t w;

                seed = seed * 1103515245u + 12345u;
                piece = max >= len ? len : 1 + (size_t)((seed >> 8) % max);
                if (piece < len / 1024)
                    piece = len / 1024;     /* at most about 1024 pieces: speed */
                w = write(fds[1], in + fed, piece < len - fed ? piece : len - fed);
                if (w <= 0)
                    abort();
                fed += (size_t)w;
            } else if (!shut) {
                shutdown(fds[1], SHUT_WR);
                shut = true;
            }
        }
        n = stream_fill_nowait(st);     /* as mux.c's conn_input */
        if (n < 0 && errno == EAGAIN)
            continue;
        if (n <= 0) {
            mux_read_end(&r, "disconnected");
            record(out, MUX_ENDED, last, fed - socket_held(fds[0]) - stream_pending(st),
                   r.end_how, strlen(r.end_how));
            break;
        }
        ev = mux_read_step(&r);
        taken = fed - socket_held(fds[0]) - stream_pending(st);
        drain(st, fds[1], &out->replies);
        if (ev == MUX_MORE) {
            uint64_t zero = 1;

            if (r.dead)
                abort();
            if (stream_pending(st) > 0
                && !(r.state == MUX_IN_LINE && r.cmd.len >= 2
                     && memcmp(r.cmd.s + r.cmd.len - 2, "\r\n", 2) == 0
                     && announces(r.cmd.s, r.cmd.len - 2, &zero) && zero == 0))
                abort();                /* input left with no reason to pause */
            continue;
        }
        if (ev == MUX_ENDED) {
            if (!r.dead || r.end_how == NULL)
                abort();
            record(out, ev, last, taken, r.end_how, strlen(r.end_how));
            break;
        }
        if (r.dead)
            abort();
        if (ev == MUX_COMMAND) {
            struct str again = STR_INIT;
            char name[16];

            if (idling || r.state != MUX_IN_LINE || r.lit_left != 0 || r.skipped != 0)
                abort();
            if (r.cmd.len - r.message > IMAP_CMD_MAX)
                abort();
            if (imap_cf.append_limit != 0 && r.message > FUZZ_APPEND_LIMIT
                && r.message > IMAP_CMD_MAX)
                abort();
            rebuild(in + last, taken - last, &again);
            if (!same(&again, &r.cmd))
                abort();                /* not the bytes the client sent */
            str_free(&again);
            command_name(&r.cmd, name, sizeof(name));
            if (r.message > 0 && strcmp(name, "APPEND") != 0)
                abort();
            record(out, ev, last, taken, r.cmd.s, r.cmd.len);
            /* the session's part: IDLE idles, LOGOUT closes, the others are OK */
            if (strcmp(name, "IDLE") == 0) {
                stream_puts(st, "+ idling\r\n");
                idling = true;
            } else {
                if (strcmp(name, "LOGOUT") == 0)
                    c.closing = true;
                imap_ok(&c, "%s done", name);
            }
            if (c.closing)
                mux_read_end(&r, "closed");
            mux_read_reset(&r, idling, 0);
        } else if (ev == MUX_IDLE_LINE) {
            size_t l = r.line.len;

            if (!idling || r.state != MUX_IN_IDLE || r.line.len == 0
                || r.line.len > MUX_IDLE_LINE_MAX || r.line.s[r.line.len - 1] != '\n'
                || memchr(r.line.s, '\n', r.line.len - 1) != NULL)
                abort();
            if (taken - last != r.line.len || memcmp(in + last, r.line.s, r.line.len) != 0)
                abort();
            record(out, ev, last, taken, r.line.s, r.line.len);
            idling = false;
            while (l > 0 && (r.line.s[l - 1] == '\n' || r.line.s[l - 1] == '\r'))
                l--;
            if (l == 4 && strncasecmp(r.line.s, "DONE", 4) == 0)
                imap_ok(&c, "IDLE terminated");
            else
                imap_bad(&c, "Expected DONE");
            mux_read_reset(&r, false, 0);
        } else if (ev == MUX_REFUSED) {
            if (idling || taken == last || in[taken - 1] != '\n')
                abort();
            if (out->replies.len == before)
                abort();                /* refused without a word */
            record(out, ev, last, taken, NULL, 0);
            mux_read_reset(&r, false, 0);
        } else {
            abort();
        }
        drain(st, fds[1], &out->replies);
        last = taken;
        if (r.dead) {
            record(out, MUX_ENDED, last, last, r.end_how, strlen(r.end_how));
            break;
        }
    }
    after_end(&r, st, fds[1], in, len, &fed);
    mux_read_free(&r);
    close(fds[1]);
    stream_close(st);
}

static void compare(const struct run *a, const struct run *b)
{
    size_t n = a->n < b->n ? a->n : b->n;

    for (size_t i = 0; i < n; i++) {
        const struct event *x = &a->ev[i], *y = &b->ev[i];
        /* an end (a line too long to skip) may take more or fewer of the bytes
         * that come after it, as they arrived: where it ended is not compared */
        if (x->type != y->type || x->start != y->start
            || (x->end != y->end && x->type != MUX_ENDED) || !same(&x->data, &y->data))
            abort();
    }
    if (a->n != b->n)
        abort();
    if (!same(&a->replies, &b->replies))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    struct run whole = { 0 }, pieces = { 0 };
    struct str in = STR_INIT;
    unsigned max;

    if (size < 2 || size > FUZZ_INPUT_MAX)
        return 0;
    if (!quiet) {
        log_open("fuzz", LOG_DEST_FILE, "/dev/null");
        quiet = true;
    }
    imap_cf.timeout_ms = 1000;
    imap_cf.command_deadline_ms = 1000;
    imap_cf.error_limit = (data[1] & 2) ? 3 : 0;
    imap_cf.append_limit = (data[1] & 1) ? 0 : FUZZ_APPEND_LIMIT;
    for (size_t i = 2, j; i < size && in.len < FUZZ_EXPAND_MAX; i = j) {
        if ((data[1] & 4) && data[i] == 0xff && i + 1 < size) {
            static char run_x[512];

            if (run_x[0] == '\0')
                memset(run_x, 'x', sizeof(run_x));
            for (size_t k = (size_t)data[i + 1] + 1; k > 0 && in.len < FUZZ_EXPAND_MAX; k--)
                str_append(&in, run_x, sizeof(run_x));
            j = i + 2;
            continue;
        }
        for (j = i; j < size && !((data[1] & 4) && data[j] == 0xff); j++)
            ;
        if (j == i)
            j++;                        /* a lone 0xff at the end */
        str_append(&in, (const char *)data + i, j - i);
    }
    if (in.len == 0) {
        str_free(&in);
        return 0;
    }
    max = 1u << (data[0] & 15);
    run(in.s, in.len, (unsigned)in.len, 1, &whole);
    run(in.s, in.len, max, (uint32_t)data[0] << 8 | data[1], &pieces);
    compare(&whole, &pieces);
    run_free(&whole);
    run_free(&pieces);
    str_free(&in);
    return 0;
}
