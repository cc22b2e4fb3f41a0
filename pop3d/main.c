/* pop3d's entry: "-l" among the arguments picks the pre-auth (login) mode, otherwise
 * the post-login service; both hand their settings to the server skeleton.  The
 * pre-auth mode chroots to queue_directory/login (or works there, unprivileged). */
#include <stdlib.h>
#include <string.h>

#include "anvil_clnt.h"
#include "conf.h"
#include "log.h"
#include "login_serve.h"
#include "pop3d.h"
#include "proto.h"
#include "server.h"
#include "str.h"
#include "tls.h"

struct pop3_conf pop3_cf;

static void pop3_settings(const struct conf *c)
{
    pop3_cf.timeout_ms = (int)conf_time_ms(c, CONF_pop3d_timeout);
    pop3_cf.ipc_timeout_ms = (int)conf_time_ms(c, CONF_ipc_timeout);
    pop3_cf.command_deadline_ms = conf_time_ms(c, CONF_pop3d_command_deadline);
    pop3_cf.preauth_deadline_ms = conf_time_ms(c, CONF_pop3d_preauth_deadline);
    pop3_cf.auth_timeout_ms = (int)conf_time_ms(c, CONF_auth_request_timeout);
    pop3_cf.error_limit = conf_count(c, CONF_pop3d_error_limit);
    pop3_cf.wrapper = conf_bool(c, CONF_pop3d_tls_wrapper);
    pop3_cf.hostname = conf_str(c, CONF_myhostname);
}

static void preauth_pre_jail(struct server *srv)
{
    const char *cert, *key;
    struct str err = STR_INIT;

    pop3_settings(srv->conf);
    cert = conf_str(srv->conf, CONF_smtpd_tls_cert_file);
    key = conf_str(srv->conf, CONF_smtpd_tls_key_file);
    if (*cert != '\0') {
        pop3_cf.tls = tls_server_ctx(cert, *key != '\0' ? key : cert, &err);
        if (pop3_cf.tls == NULL)
            log_fatal("smtpd_tls_cert_file: %s", err.s);
    }
    if (pop3_cf.wrapper && pop3_cf.tls == NULL)
        log_fatal("pop3d_tls_wrapper = yes needs smtpd_tls_cert_file");
    str_free(&err);
    conn_limit_setup(&pop3_cf.limits, srv->conf, CONF_pop3d_client_connection_count_limit,
                     CONF_pop3d_client_connection_rate_limit,
                     CONF_pop3d_client_event_limit_exceptions);
    /* Chrooted to login/, anvil is reached through its socket there. */
    anvil_clnt_init(PROTO_LOGIN_ANVIL, pop3_cf.ipc_timeout_ms < ANVIL_CLNT_TIMEOUT_MS
                                       ? pop3_cf.ipc_timeout_ms : ANVIL_CLNT_TIMEOUT_MS);
}

/* The refusals before a session starts, in POP3's words. */
static const char *pop3_refusal(enum login_refusal why)
{
    switch (why) {
    case LOGIN_REFUSE_BUSY:
        return "-ERR [SYS/TEMP] server busy, try again later\r\n";
    case LOGIN_REFUSE_EXPIRED:
        return "-ERR [AUTH] login expired, try again\r\n";
    case LOGIN_REFUSE_AUTH_TEMP:
        return "-ERR [SYS/TEMP] authentication unavailable, try again later\r\n";
    case LOGIN_REFUSE_NO_MAILBOX:
        return "-ERR [SYS/PERM] no mailbox\r\n";
    case LOGIN_REFUSE_MAILBOX_TEMP:
        break;
    }
    return "-ERR [SYS/TEMP] cannot open the mailbox\r\n";
}

static struct login_service pop3_login = {
    .command = "pop3d",
    .path = PROTO_PATH_POP3,
    .session = pop3_session,
    .refusal = pop3_refusal,
};

static void postlogin_pre_jail(struct server *srv)
{
    pop3_settings(srv->conf);
    pop3_login.ipc_timeout_ms = pop3_cf.ipc_timeout_ms;
    login_post_setup(srv, &pop3_login);
}

static const struct server_opts preauth_opts = {
    .name = "pop3d",
    .pre_jail = preauth_pre_jail,
    .service = pop3_preauth_service,
    .jail_subdir = PROTO_LOGIN_DIR,
};

static const struct server_opts postlogin_opts = {
    .name = "pop3d",
    .pre_jail = postlogin_pre_jail,
    .loop = login_post_loop,
};

int main(int argc, char **argv)
{
    login_daemon_main(argc, argv, &preauth_opts, &postlogin_opts);
}
