/* auth(8): checks passwords for smtpd, pop3d and imapd over login/auth, and mints
 * and verifies the login tokens that carry a user from the pre-auth process to the
 * post-login one.  Requests come from local sockets that unprivileged, possibly
 * compromised processes can reach: every frame is checked for shape and bounds, and
 * a malformed one is logged and ends that connection only. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "attr.h"
#include "auth_check.h"
#include "auth_delay.h"
#include "auth_token.h"
#include "conf.h"
#include "log.h"
#include "server.h"
#include "server_wait.h"
#include "stream.h"
#include "str.h"

#define AUTH_KEY_FILE "private/auth.key"
#define REQ_FRAME_MAX (16u << 10)   /* largest request frame, bytes */
#define USER_MAX 320                /* longest user name */
#define PASSWORD_MAX 1024           /* longest password */
#define CLIENT_MAX 63               /* longest client address text */

static unsigned char token_key[AUTH_TOKEN_KEY_SIZE];
static struct auth_check *checker;

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

/* The value of a text attribute (no NUL inside, 1..max bytes, given once), or NULL. */
static const char *text_arg(const struct attr_list *in, const char *name, size_t max)
{
    const char *v = NULL;

    for (size_t i = 0; i < in->n; i++) {
        if (strcmp(in->v[i].name, name) != 0)
            continue;
        if (v != NULL || in->v[i].len == 0 || in->v[i].len > max
            || strlen(in->v[i].value) != in->v[i].len)
            return NULL;
        v = in->v[i].value;
    }
    return v;
}

static bool printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* req=auth: 0, or -1 when malformed. */
static int answer_auth(const struct attr_list *in, struct attr_list *out)
{
    const char *service = text_arg(in, "service", 16);
    const char *user = text_arg(in, "user", USER_MAX);
    const char *password = text_arg(in, "password", PASSWORD_MAX);
    const char *client = text_arg(in, "client", CLIENT_MAX);
    struct auth_token t;
    struct str why = STR_INIT, token = STR_INIT;
    enum auth_verdict v;

    if (service == NULL || user == NULL || password == NULL || client == NULL
        || (strcmp(service, "pop3") != 0 && strcmp(service, "imap") != 0
            && strcmp(service, "smtp") != 0)
        || !printable(user) || !printable(client))
        return -1;
    auth_token_init(&t);
    v = auth_check_login(checker, user, password, &t, &why);
    if (v == AUTH_CHECK_OK) {
        t.expiry = (long long)time(NULL) + AUTH_TOKEN_LIFETIME;
        if (auth_token_mint(token_key, &t, &token) < 0) {
            str_sets(&why, "user or mailbox path cannot be carried in a token");
            v = AUTH_CHECK_TEMPFAIL;
        }
    }
    switch (v) {
    case AUTH_CHECK_OK:
        log_info("auth ok: service=%s, user=%s, client=%s", service, t.user.s, client);
        auth_delay_clear(client);
        attr_add(out, "status", "ok");
        attr_add(out, "user", t.user.s);
        attr_add(out, "token", token.s);
        break;
    case AUTH_CHECK_FAIL: {
        unsigned delay = auth_delay_fail(client, time(NULL));

        log_info("auth failed: service=%s, user=%s, client=%s (%s)", service, user, client,
                 why.s ? why.s : "failed");
        auth_delay_sleep(delay);
        attr_add(out, "status", "fail");
        attr_add(out, "text", "authentication failed");
        break;
    }
    case AUTH_CHECK_TEMPFAIL:
        log_warn("auth tempfail: service=%s, user=%s, client=%s (%s)", service, user, client,
                 why.s ? why.s : "error");
        attr_add(out, "status", "tempfail");
        attr_add(out, "text", "temporary authentication failure");
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
static int answer_lookup(const struct attr_list *in, struct attr_list *out)
{
    const char *token = text_arg(in, "token", AUTH_TOKEN_MAX);
    struct auth_token t;

    if (token == NULL)
        return -1;
    auth_token_init(&t);
    if (auth_token_verify(token_key, token, (long long)time(NULL), &t) == 1) {
        attr_add(out, "status", "ok");
        attr_add(out, "user", t.user.s);
        attr_add_int(out, "uid", (long long)t.uid);
        attr_add_int(out, "gid", (long long)t.gid);
        attr_add(out, "maildir", t.maildir.s);
    } else {
        log_info("lookup failed: invalid or expired token");
        attr_add(out, "status", "fail");
        attr_add(out, "text", "invalid or expired token");
    }
    auth_token_free(&t);
    return 0;
}

static int answer(const struct attr_list *in, struct attr_list *out)
{
    const char *req = text_arg(in, "req", 16);

    if (req == NULL)
        return -1;
    if (strcmp(req, "auth") == 0)
        return answer_auth(in, out);
    if (strcmp(req, "lookup") == 0)
        return answer_lookup(in, out);
    return -1;
}

/* Overwrites the values of a frame (passwords, tokens) before its memory is reused. */
static void attr_wipe(struct attr_list *al)
{
    for (size_t i = 0; i < al->n; i++)
        if (al->v[i].value != NULL)
            OPENSSL_cleanse(al->v[i].value, al->v[i].len);
}

static void auth_service(struct server *srv, int *fd)
{
    struct stream *st = stream_fdopen(*fd);
    struct attr_list in = ATTR_LIST_INIT, out = ATTR_LIST_INIT;
    struct server_wait w = {
        .idle_ms = conf_time_ms(srv->conf, CONF_max_idle),
        .reload_at_once = true,
        .watch_master = true,
    };

    *fd = -1;
    stream_set_timeout(st, conf_time_ms(srv->conf, CONF_ipc_timeout));
    while (server_wait_request(st, &w)) {
        int rc = attr_read(st, &in, REQ_FRAME_MAX);

        if (rc == 0)
            break;
        if (rc < 0) {
            log_warn("bad request frame: %s",
                     errno == EPROTO ? "malformed" : errno == EMSGSIZE ? "too large"
                                                                        : strerror(errno));
            break;
        }
        attr_clear(&out);
        rc = answer(&in, &out);
        attr_wipe(&in);
        if (rc < 0) {
            log_warn("malformed request, connection closed");
            break;
        }
        rc = attr_write(st, &out);
        attr_wipe(&out);
        if (rc < 0)
            break;
    }
    attr_wipe(&in);
    attr_free(&in);
    attr_free(&out);
    stream_close(st);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .name = "auth",
        .post_jail = auth_post_jail,
        .service = auth_service,
    };

    server_main(argc, argv, &opts);
}
