/* auth(8): checks passwords for smtpd, pop3d and imapd over login/auth, and mints
 * and verifies the login tokens that carry a user from the pre-auth process to the
 * post-login one.  Requests come from local sockets that unprivileged, possibly
 * compromised processes can reach: only the users of the services that call auth may
 * connect (peer_allow.h); the shared request loop (ipc_serve.h) checks each frame's
 * shape, bounds and version, the handlers scan their attributes with their bounds,
 * and a malformed request is logged and ends that connection only.  Frames carry
 * passwords and tokens: the loop wipes them after use.  The client address that
 * failure penalties are keyed by is read from the client's connection, which the
 * caller passes before its request; no penalty makes this process wait: the caller
 * is told how long to wait before it answers its client. */
#include <errno.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "attr_scan.h"
#include "auth_check.h"
#include "auth_delay.h"
#include "auth_token.h"
#include "clock.h"
#include "conf.h"
#include "fd.h"
#include "ipc_serve.h"
#include "log.h"
#include "master_conf.h"
#include "peer_allow.h"
#include "proto.h"
#include "server.h"
#include "server_wait.h"
#include "sock.h"
#include "stream.h"
#include "str.h"

#define AUTH_KEY_FILE "private/auth.key"
#define REQ_FRAME_MAX (16u << 10)   /* largest request frame, bytes */
#define SERVICE_MAX 16              /* longest service name */
#define USER_MAX 320                /* longest user name */
#define PASSWORD_MAX 1024           /* longest password */
#define CLIENT_MAX 64               /* longest client address text, with its NUL */

static unsigned char token_key[AUTH_TOKEN_KEY_SIZE];
static struct auth_check *checker;
static struct peer_allow callers;

/* One connection: the client address of the connection passed with it. */
struct auth_conn {
    char client[CLIENT_MAX];        /* "" when none was passed */
};

/* The services that ask auth: smtpd (AUTH), pop3d and imapd (both sides). */
static bool calls_auth(const struct master_service *svc)
{
    return strcmp(svc->command, "smtpd") == 0 || strcmp(svc->command, "pop3d") == 0
           || strcmp(svc->command, "imapd") == 0;
}

static void auth_pre_jail(struct server *srv)
{
    struct str err = STR_INIT;

    if (peer_allow_load(srv->conf, calls_auth, &callers, &err) < 0)
        log_fatal("callers of %s: %s", PROTO_PATH_AUTH, err.s);
    auth_delay_setup(srv->conf);
    str_free(&err);
}

static void auth_post_jail(struct server *srv)
{
    struct str err = STR_INIT;

    if (auth_token_key_load(AUTH_KEY_FILE, token_key, &err) < 0)
        log_fatal("token key: %s", err.s ? err.s : "error");
    checker = auth_check_open(srv->conf, &err);
    if (checker == NULL)
        log_fatal("cannot open the password tables: %s", err.s ? err.s : "error");
    str_free(&err);
}

/* The client's address, from the connection the caller passes first (one byte "F"
 * with the descriptor, login.h's way): 1 taken, 0 nothing passed (the frame comes
 * straight away), -1 the connection is to be closed (logged). */
static int take_client(int conn, int timeout_ms, struct auth_conn *ac)
{
    char byte = 0;
    int cfd = -1, rc = -1;
    struct stat sb;
    ssize_t n;

    ac->client[0] = '\0';
    if (fd_wait(conn, POLLIN, clock_deadline(timeout_ms)) < 0)
        return 0;                   /* ipc_serve's wait takes over */
    do
        n = recv(conn, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n != 1 || byte != 'F')
        return 0;
    n = fd_recv(conn, &cfd, &byte, 1);
    if (n != 1 || cfd < 0) {
        log_warn("%s: a client connection announced but not passed", PROTO_PATH_AUTH);
    } else if (fstat(cfd, &sb) < 0 || !S_ISSOCK(sb.st_mode)
               || sock_peer(cfd, ac->client, sizeof(ac->client), NULL) < 0
               || strcmp(ac->client, "unix") == 0) {
        log_warn("%s: the descriptor passed is not a client's network connection",
                 PROTO_PATH_AUTH);
        ac->client[0] = '\0';
    } else {
        rc = 1;
    }
    if (cfd >= 0)
        close(cfd);                 /* only its address was wanted */
    return rc;
}

static bool printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* req=auth: 0, or -1 when malformed. */
static int answer_auth(void *ctx, const struct attr_list *in, struct attr_list *out,
                       struct str *err)
{
    const struct auth_conn *ac = ctx;
    const char *service = NULL, *user = NULL, *password = NULL, *client = ac->client;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_SERVICE, ATTR_NONEMPTY, &service, SERVICE_MAX),
        ATTR_STR(PROTO_A_USER, ATTR_NONEMPTY, &user, USER_MAX),
        ATTR_STR(PROTO_A_PASSWORD, ATTR_NONEMPTY, &password, PASSWORD_MAX),
        ATTR_END,
    };
    struct auth_token t;
    struct str why = STR_INIT, token = STR_INIT;
    enum auth_verdict v;
    struct auth_penalty pen;
    long long delay;

    if (attr_scan(in, 0, spec, err) < 0)
        return -1;
    if (strcmp(service, PROTO_SERVICE_POP3) != 0 && strcmp(service, PROTO_SERVICE_IMAP) != 0
        && strcmp(service, PROTO_SERVICE_SMTP) != 0) {
        str_sets(err, "unknown service");
        return -1;
    }
    if (!printable(user)) {
        str_sets(err, "control characters in user");
        return -1;
    }
    if (*client == '\0') {
        log_warn("auth refused: service=%s, user=%s: the caller passed no client connection",
                 service, user);
        attr_add(out, PROTO_A_STATUS, PROTO_TEMPFAIL);
        attr_add(out, PROTO_A_TEXT, "no client connection passed");
        return 0;
    }
    auth_token_init(&t);
    if (auth_delay_begin(client, user, &pen)) {
        /* a flood from this address: no password hash spent on it */
        v = AUTH_CHECK_FAIL;
        str_sets(&why, "too many failures from this client: not checked");
    } else {
        v = auth_check_login(checker, user, password, &t, &why);
    }
    if (v == AUTH_CHECK_OK) {
        t.expiry = (long long)time(NULL) + AUTH_TOKEN_LIFETIME;
        if (auth_token_mint(token_key, &t, &token) < 0) {
            str_sets(&why, "user or mailbox path cannot be carried in a token");
            v = AUTH_CHECK_TEMPFAIL;
        }
    }
    switch (v) {
    case AUTH_CHECK_OK:
        delay = auth_delay_ok(client, user, &pen);
        log_info("auth ok: service=%s, user=%s, client=%s, delay=%lldms", service, t.user.s,
                 client, delay);
        attr_add(out, PROTO_A_STATUS, PROTO_OK);
        attr_add(out, PROTO_A_USER, t.user.s);
        attr_add(out, PROTO_A_TOKEN, token.s);
        attr_add_int(out, PROTO_A_DELAY, delay);
        break;
    case AUTH_CHECK_FAIL:
        delay = auth_delay_failed(client, user);
        log_info("auth failed: service=%s, user=%s, client=%s, delay=%lldms (%s)", service,
                 user, client, delay, why.s ? why.s : "failed");
        attr_add(out, PROTO_A_STATUS, PROTO_FAIL);
        attr_add(out, PROTO_A_TEXT, "authentication failed");
        attr_add_int(out, PROTO_A_DELAY, delay);
        break;
    case AUTH_CHECK_TEMPFAIL:
        log_warn("auth tempfail: service=%s, user=%s, client=%s (%s)", service, user, client,
                 why.s ? why.s : "error");
        attr_add(out, PROTO_A_STATUS, PROTO_TEMPFAIL);
        attr_add(out, PROTO_A_TEXT, "temporary authentication failure");
        break;
    }
    if (token.s != NULL)
        OPENSSL_cleanse(token.s, token.len);
    auth_token_free(&t);
    str_free(&why);
    str_free(&token);
    return 0;
}

/* req=lookup: 0, or -1 when malformed. */
static int answer_lookup(void *ctx, const struct attr_list *in, struct attr_list *out,
                         struct str *err)
{
    const char *token = NULL;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_TOKEN, ATTR_NONEMPTY, &token, AUTH_TOKEN_MAX),
        ATTR_END,
    };
    struct auth_token t;

    if (attr_scan(in, 0, spec, err) < 0)
        return -1;
    auth_token_init(&t);
    if (auth_token_verify(token_key, token, (long long)time(NULL), &t) == 1) {
        attr_add(out, PROTO_A_STATUS, PROTO_OK);
        attr_add(out, PROTO_A_USER, t.user.s);
        attr_add_int(out, PROTO_A_UID, (long long)t.uid);
        attr_add_int(out, PROTO_A_GID, (long long)t.gid);
        attr_add(out, PROTO_A_MAILDIR, t.maildir.s);
    } else {
        log_info("lookup failed: invalid or expired token");
        attr_add(out, PROTO_A_STATUS, PROTO_FAIL);
        attr_add(out, PROTO_A_TEXT, "invalid or expired token");
    }
    auth_token_free(&t);
    return 0;
}

static void auth_service(struct server *srv, int *fd)
{
    static const struct ipc_handler handlers[] = {
        { PROTO_REQ_AUTH, answer_auth },
        { PROTO_REQ_LOOKUP, answer_lookup },
        { NULL, NULL },
    };
    static const struct ipc_service svc = {
        .proto = PROTO_AUTH,
        .version = PROTO_AUTH_VERSION,
        .frame_max = REQ_FRAME_MAX,
        .secret = true,
        .handlers = handlers,
    };
    struct server_wait w = {
        .idle_ms = conf_time_ms(srv->conf, CONF_max_idle),
        .reload_at_once = true,
        .watch_master = true,
    };
    int ipc_ms = (int)conf_time_ms(srv->conf, CONF_ipc_timeout);
    struct auth_conn ac;
    struct stream *st;

    if (!peer_allow_check(&callers, *fd, PROTO_PATH_AUTH))
        return;
    if (take_client(*fd, ipc_ms, &ac) < 0)
        return;
    st = stream_fdopen(*fd);
    *fd = -1;
    stream_set_timeout(st, ipc_ms);
    ipc_serve(st, &w, &svc, &ac);
    stream_close(st);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .name = "auth",
        .pre_jail = auth_pre_jail,
        .post_jail = auth_post_jail,
        .service = auth_service,
    };

    server_main(argc, argv, &opts);
}
