/* libFuzzer harness for the receiving side of the login hand-off (lib/mail/login.c:
 * login_receive, login_stream), which reads a descriptor and an attr frame from
 * whoever could reach the post-login socket.
 * Build and run: make fuzz (build/fuzz/fuzz_login), make fuzz-smoke-fuzz_login.
 *
 * The first input byte picks the mode.  Raw (bit 0 clear): the descriptor goes with
 * the "F" byte (or, by bits 1-2, with another byte or none at all) and the rest of the
 * input is the frame, as bytes.  Built (bit 0 set): the rest is split at NUL bytes
 * into service, token, user, client and pending, sent as a login/2 frame.
 * Checked: a refused hand-off leaves no descriptor and says why; an accepted one
 * has a token, at most LOGIN_PENDING_MAX pending bytes, answers "status=ok", and its
 * stream yields the pending bytes and then what the client sends next, in order; a
 * built frame is accepted exactly when its token is not empty and its text fields
 * within LOGIN_TEXT_MAX, with every field as sent. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "fd.h"
#include "ipc_proto.h"
#include "login.h"
#include "proto.h"
#include "str.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_INPUT_MAX 65536
#define TAIL "after the hand-off\r\n"

struct fields {
    struct str f[5];            /* service, token, user, client, pending */
    bool tls;
};

static void split_fields(const uint8_t *p, size_t n, struct fields *fl)
{
    size_t k = 0;

    for (size_t i = 0; i < 5; i++)
        str_init(&fl->f[i]);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\0' && k < 4)
            k++;
        else
            str_appendc(&fl->f[k], (char)p[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    struct login_handoff h;
    struct fields fl;
    struct str err = STR_INIT;
    int sv[2], client[2], rc;
    bool built;

    if (!once) {
        signal(SIGPIPE, SIG_IGN);
        once = true;
    }
    if (size == 0 || size > FUZZ_INPUT_MAX)
        return 0;
    built = data[0] & 1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, client) < 0)
        abort();
    {
        int sz = 4 * FUZZ_INPUT_MAX;
        (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        (void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    /* the descriptor, with "F" or, in raw mode, something else */
    switch (built ? 0 : (data[0] >> 1) & 3) {
    case 0:
    case 3:
        if (fd_send(sv[0], client[1], "F", 1) < 0)
            abort();
        break;
    case 1:
        if (fd_send(sv[0], client[1], "G", 1) < 0)
            abort();
        break;
    case 2:
        if (write(sv[0], "F", 1) != 1)
            abort();
        break;
    }
    close(client[1]);
    if (built) {
        struct attr_list al = ATTR_LIST_INIT;
        struct stream *w = stream_fdopen(dup(sv[0]));

        split_fields(data + 1, size - 1, &fl);
        fl.tls = data[0] & 2;
        ipc_frame_start(&al, PROTO_LOGIN, PROTO_LOGIN_VERSION);
        attr_add(&al, PROTO_A_SERVICE, fl.f[0].s);
        attr_addn(&al, PROTO_A_TOKEN, fl.f[1].s, fl.f[1].len);
        attr_addn(&al, PROTO_A_USER, fl.f[2].s, fl.f[2].len);
        attr_addn(&al, PROTO_A_CLIENT, fl.f[3].s, fl.f[3].len);
        attr_add(&al, PROTO_A_TLS, fl.tls ? PROTO_YES : PROTO_NO);
        attr_addn(&al, PROTO_A_PENDING, fl.f[4].s, fl.f[4].len);
        if (attr_write(w, &al) < 0)
            abort();
        attr_free(&al);
        stream_close(w);
    } else if (size > 1 && fd_write_all(sv[0], data + 1, size - 1) < 0) {
        abort();
    }
    shutdown(sv[0], SHUT_WR);

    login_handoff_init(&h);
    rc = login_receive(sv[1], &h, 1000, &err);
    if (rc < 0) {
        if (h.fd != -1 || err.len == 0)
            abort();
        if (built && fl.f[1].len > 0 && strlen(fl.f[0].s) <= LOGIN_TEXT_MAX
            && fl.f[1].len <= LOGIN_TEXT_MAX && fl.f[2].len <= LOGIN_TEXT_MAX
            && fl.f[3].len <= LOGIN_TEXT_MAX)
            abort();                /* a well-formed frame with a token is taken */
    } else {
        struct attr_list al = ATTR_LIST_INIT;
        struct stream *r = stream_fdopen(sv[0]), *cs;
        struct str got = STR_INIT;
        char buf[4096];
        ssize_t n;
        const char *status;

        sv[0] = -1;
        if (h.fd < 0 || h.token.len == 0 || h.pending.len > LOGIN_PENDING_MAX)
            abort();
        stream_set_timeout(r, 1000);
        if (attr_read(r, &al, 4096) != 1 || (status = attr_get(&al, PROTO_A_STATUS)) == NULL
            || strcmp(status, PROTO_OK) != 0)
            abort();
        attr_free(&al);
        stream_close(r);
        if (built) {
            const struct str *want[5] = { &h.service, &h.token, &h.user, &h.client,
                                          &h.pending };
            for (size_t i = 0; i < 5; i++) {
                /* service went as a C string: it ends at its first NUL */
                size_t len = i == 0 ? strlen(fl.f[0].s) : fl.f[i].len;
                if (want[i]->len != len || memcmp(want[i]->s, fl.f[i].s, len) != 0)
                    abort();
            }
            if (h.tls != fl.tls)
                abort();
        }
        /* the client's stream: the pending bytes, then the rest */
        if (fd_write_all(client[0], TAIL, sizeof(TAIL) - 1) < 0)
            abort();
        close(client[0]);
        client[0] = -1;
        {
            struct str pending = STR_INIT;
            size_t plen = h.pending.len;

            str_set(&pending, h.pending.s, plen);
            cs = login_stream(&h);
            if (h.fd != -1)
                abort();
            stream_set_timeout(cs, 1000);
            while ((n = stream_read(cs, buf, sizeof(buf))) > 0)
                str_append(&got, buf, (size_t)n);
            if (n < 0 || got.len != plen + sizeof(TAIL) - 1
                || memcmp(got.s, pending.s, plen) != 0
                || memcmp(got.s + plen, TAIL, sizeof(TAIL) - 1) != 0)
                abort();
            str_free(&pending);
            stream_close(cs);
        }
        str_free(&got);
    }
    if (built)
        for (size_t i = 0; i < 5; i++)
            str_free(&fl.f[i]);
    login_handoff_free(&h);
    if (sv[0] >= 0)
        close(sv[0]);
    if (client[0] >= 0)
        close(client[0]);
    str_free(&err);
    return 0;
}
