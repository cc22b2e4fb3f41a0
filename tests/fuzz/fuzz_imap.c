/* libFuzzer harness for imapd's command reading (imapd/io.c: lines, literals and
 * their limits) and its grammar (imapd/parse.c, imapd/seqset.c).  The input is what
 * a client sends: it arrives through a socket and is read command by command as
 * imapd does, until EOF or until the connection would be closed.
 * Build and run: make fuzz (build/fuzz/fuzz_imap), make fuzz-smoke-fuzz_imap.
 *
 * Each command read is walked with the grammar's functions in the order a command
 * would use them; checked: the cursor never leaves the command, a string never holds
 * NUL, CR or LF unless it was a literal, every sequence set has 1..1024 ranges of
 * numbers 1..2^32-2 or "*", and after resolving each range is ordered within 1..max. */
#include <fcntl.h>
#include <sys/socket.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "str.h"
#include "stream.h"
#include "../../imapd/imapd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct imap_conf imap_cf;

#define FUZZ_INPUT_MAX 65536

static void check_cursor(const struct imap_parser *ip, const struct str *cmd)
{
    const char *base = cmd->s != NULL ? cmd->s : ip->p;

    if (cmd->s != NULL && (ip->p < base || ip->p > base + cmd->len || ip->end != base + cmd->len))
        abort();
}

static void walk(const struct str *cmd)
{
    struct imap_parser ip;
    struct str tok = STR_INIT;
    int steps = 0;

    imap_parser_init(&ip, cmd);
    if (!imap_p_tag(&ip, &tok))
        goto out;
    if (tok.len == 0 || tok.len > IMAP_TAG_MAX || memchr(tok.s, '+', tok.len))
        abort();
    while (!imap_p_eol(&ip) && steps++ < 10000) {
        struct imap_seqset set;
        const char *why = NULL;
        const char *before = ip.p;
        uint64_t n;

        check_cursor(&ip, cmd);
        if (imap_p_sp(&ip) || imap_p_char(&ip, '(') || imap_p_char(&ip, ')'))
            continue;
        if (imap_p_seqset(&ip, &set, &why)) {
            if (set.n == 0 || set.n > IMAP_SEQ_RANGES_MAX)
                abort();
            for (size_t i = 0; i < set.n; i++)
                if (set.r[i].lo == 0 || set.r[i].hi == 0)
                    abort();
            imap_seq_resolve(&set, 1000);
            for (size_t i = 0; i < set.n; i++)
                if (set.r[i].lo > set.r[i].hi || set.r[i].lo == 0)
                    abort();
            imap_seq_free(&set);
            continue;
        }
        if (why == NULL || ip.p != before)
            abort();                    /* a refusal says why and consumes nothing */
        if (imap_p_number(&ip, UINT32_MAX, &n)) {
            if (n > UINT32_MAX)
                abort();
            continue;
        }
        if (imap_p_peek(&ip, '"') || imap_p_peek(&ip, '{')) {
            bool literal = imap_p_peek(&ip, '{');
            if (!imap_p_string(&ip, &tok))
                break;
            if (memchr(tok.s ? tok.s : "", '\0', tok.len))
                abort();
            if (!literal && (memchr(tok.s ? tok.s : "", '\r', tok.len)
                             || memchr(tok.s ? tok.s : "", '\n', tok.len)))
                abort();
            continue;
        }
        if (imap_p_peek(&ip, '~')) {
            /* literal8 (RFC 3516): NUL allowed, but it stays inside the command */
            if (!imap_p_string8(&ip, &tok))
                break;
            continue;
        }
        if (imap_p_list_mailbox(&ip, &tok) || imap_p_astring(&ip, &tok)
            || imap_p_atom(&ip, &tok, IMAP_LINE_MAX))
            continue;
        break;                          /* a byte no production takes */
    }
    check_cursor(&ip, cmd);
out:
    str_free(&tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imap_conn c;
    struct str cmd = STR_INIT;
    int fds[2];
    int rounds = 0;

    if (size > FUZZ_INPUT_MAX)
        return 0;
    imap_cf.timeout_ms = 1000;
    imap_cf.preauth_timeout_ms = 1000;
    imap_cf.command_deadline_ms = 1000;
    imap_cf.error_limit = 10;
    imap_cf.append_limit = 100000;
    /* The client's end holds the whole input, then EOF; replies are drained from it
     * after each command and dropped. */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
        return 0;
    {
        int sz = 4 * FUZZ_INPUT_MAX;
        (void)setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        (void)setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    if (write(fds[1], data, size) != (ssize_t)size) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    shutdown(fds[1], SHUT_WR);
    (void)fcntl(fds[1], F_SETFL, O_NONBLOCK);
    memset(&c, 0, sizeof(c));
    c.client = "fuzz";
    c.st = stream_fdopen(fds[0]);
    while (!c.closing && rounds++ < 10000) {
        enum imap_read r = imap_read_command(&c, &cmd);
        if (r == IMAP_READ_EOF)
            break;
        if (r == IMAP_READ_OK) {
            if (cmd.len > IMAP_CMD_MAX + imap_cf.append_limit)
                abort();
            walk(&cmd);
        }
        for (char sink[4096]; read(fds[1], sink, sizeof(sink)) > 0;)
            ;
    }
    close(fds[1]);
    stream_close(c.st);
    str_free(&cmd);
    return 0;
}
