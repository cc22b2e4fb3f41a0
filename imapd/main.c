/* imapd's entry: "-l" among the arguments picks the pre-auth (login) mode, otherwise
 * the post-login service; both hand their settings to the server skeleton.  The
 * pre-auth mode chroots to queue_directory/login (or works there, unprivileged). */
#include <stdlib.h>
#include <string.h>

#include "anvil_clnt.h"
#include "conf.h"
#include "imapd.h"
#include "log.h"
#include "login_serve.h"
#include "proto.h"
#include "server.h"
#include "session.h"
#include "str.h"
#include "tls.h"

struct imap_conf imap_cf;

static void imap_settings(const struct conf *c)
{
    imap_cf.timeout_ms = (int)conf_time_ms(c, CONF_imapd_timeout);
    imap_cf.ipc_timeout_ms = (int)conf_time_ms(c, CONF_ipc_timeout);
    imap_cf.command_deadline_ms = conf_time_ms(c, CONF_imapd_command_deadline);
    imap_cf.preauth_deadline_ms = conf_time_ms(c, CONF_imapd_preauth_deadline);
    imap_cf.preauth_timeout_ms = imap_cf.preauth_deadline_ms < imap_cf.timeout_ms
                                 ? (int)imap_cf.preauth_deadline_ms : imap_cf.timeout_ms;
    imap_cf.auth_timeout_ms = (int)conf_time_ms(c, CONF_auth_request_timeout);
    imap_cf.error_limit = conf_count(c, CONF_imapd_error_limit);
    imap_cf.append_limit = (unsigned long long)conf_size(c, CONF_message_size_limit);
    imap_cf.wrapper = conf_bool(c, CONF_imapd_tls_wrapper);
    imap_cf.loopback_plaintext = conf_bool(c, CONF_imapd_loopback_plaintext_login);
    imap_cf.hostname = conf_str(c, CONF_myhostname);
    imap_cf.index_limit = (size_t)conf_size(c, CONF_imapd_index_cache_limit);
}

static void preauth_pre_jail(struct server *srv)
{
    const char *cert, *key;
    struct str err = STR_INIT;

    imap_settings(srv->conf);
    cert = conf_str(srv->conf, CONF_smtpd_tls_cert_file);
    key = conf_str(srv->conf, CONF_smtpd_tls_key_file);
    if (*cert != '\0') {
        imap_cf.tls = tls_server_ctx(cert, *key != '\0' ? key : cert, &err);
        if (imap_cf.tls == NULL)
            log_fatal("smtpd_tls_cert_file: %s", err.s);
    }
    if (imap_cf.wrapper && imap_cf.tls == NULL)
        log_fatal("imapd_tls_wrapper = yes needs smtpd_tls_cert_file");
    str_free(&err);
    conn_limit_setup(&imap_cf.limits, srv->conf, CONF_imapd_client_connection_count_limit,
                     CONF_imapd_client_connection_rate_limit,
                     CONF_imapd_client_event_limit_exceptions);
    /* Chrooted to login/, anvil is reached through its socket there. */
    anvil_clnt_init(PROTO_LOGIN_ANVIL, imap_cf.ipc_timeout_ms < ANVIL_CLNT_TIMEOUT_MS
                                       ? imap_cf.ipc_timeout_ms : ANVIL_CLNT_TIMEOUT_MS);
}

/* The refusals before a session starts, in IMAP's words (the client was told OK). */
static const char *imap_refusal(enum login_refusal why)
{
    switch (why) {
    case LOGIN_REFUSE_BUSY:
        return "* BYE [UNAVAILABLE] Server busy, try again later\r\n";
    case LOGIN_REFUSE_EXPIRED:
        return "* BYE [AUTHENTICATIONFAILED] Login expired, try again\r\n";
    case LOGIN_REFUSE_AUTH_TEMP:
        return "* BYE [UNAVAILABLE] Authentication unavailable, try again later\r\n";
    case LOGIN_REFUSE_NO_MAILBOX:
        return "* BYE [NONEXISTENT] No mailbox\r\n";
    case LOGIN_REFUSE_MAILBOX_TEMP:
        break;
    }
    return "* BYE [UNAVAILABLE] Cannot open the mailbox\r\n";
}

static struct login_service imap_login = {
    .command = "imapd",
    .path = PROTO_PATH_IMAP,
    .refusal = imap_refusal,
    .mux = imap_mux,
};

static void postlogin_pre_jail(struct server *srv)
{
    imap_settings(srv->conf);
    imap_login.ipc_timeout_ms = imap_cf.ipc_timeout_ms;
    imap_login.session_limit = (unsigned)conf_count(srv->conf, CONF_imapd_session_connection_limit);
    login_post_setup(srv, &imap_login);
}

static const struct server_opts preauth_opts = {
    .name = "imapd",
    .pre_jail = preauth_pre_jail,
    .service = imap_preauth_service,
    .jail_subdir = PROTO_LOGIN_DIR,
};

static const struct server_opts postlogin_opts = {
    .name = "imapd",
    .pre_jail = postlogin_pre_jail,
    .loop = login_post_loop,
};

int main(int argc, char **argv)
{
    login_daemon_main(argc, argv, &preauth_opts, &postlogin_opts);
}
