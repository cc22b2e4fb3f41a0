/* smtpd: the SMTP server (see smtpd(8)).  main() hands its settings to the server
 * skeleton; each accepted connection is one session run to its end here: greeting,
 * command lines, disconnect log.  Everything read from the socket is untrusted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_clnt.h"
#include "checks.h"
#include "cidr.h"
#include "conf.h"
#include "conn_limit.h"
#include "log.h"
#include "proto.h"
#include "resolve_clnt.h"
#include "server.h"
#include "smtpd.h"
#include "sock.h"
#include "stream.h"
#include "xmalloc.h"

static struct smtpd_conf smtpd_cf;

static void smtpd_pre_jail(struct server *srv)
{
    struct smtpd_conf *cf = &smtpd_cf;
    const struct conf *c = srv->conf;
    struct str err = STR_INIT;
    char **nets;

    cf->conf = c;
    cf->myhostname = conf_str(c, CONF_myhostname);
    cf->banner = conf_str(c, CONF_smtpd_banner);
    cf->myorigin = conf_str(c, CONF_myorigin);
    cf->message_size_limit = conf_size(c, CONF_message_size_limit);
    cf->recipient_limit = conf_count(c, CONF_smtpd_recipient_limit);
    cf->timeout_ms = (int)conf_time_ms(c, CONF_smtpd_timeout);
    cf->command_deadline_ms = conf_time_ms(c, CONF_smtpd_command_deadline);
    cf->data_deadline_ms = conf_time_ms(c, CONF_smtpd_data_deadline);
    cf->header_size_limit = conf_size(c, CONF_header_size_limit);
    cf->junk_command_limit = conf_count(c, CONF_smtpd_junk_command_limit);
    cf->greet_wait_ms = conf_time_ms(c, CONF_smtpd_greet_wait);
    cf->forbid_unauth_pipelining = conf_bool(c, CONF_smtpd_forbid_unauth_pipelining);
    cf->queue_minfree = conf_size(c, CONF_queue_minfree);
    if (cf->queue_minfree == 0)
        cf->queue_minfree = cf->message_size_limit / 2 * 3;
    cf->hard_error_limit = conf_count(c, CONF_smtpd_hard_error_limit);
    cf->soft_error_limit = conf_count(c, CONF_smtpd_soft_error_limit);
    cf->error_sleep_ms = conf_time_ms(c, CONF_smtpd_error_sleep_time);
    cf->line_length_limit = (size_t)conf_count(c, CONF_line_length_limit);
    cf->smtputf8 = conf_bool(c, CONF_smtputf8_enable);
    cf->hopcount_limit = conf_count(c, CONF_hopcount_limit);
    nets = conf_list(c, CONF_mynetworks);
    if (cidr_list_parse(nets, &cf->mynetworks, &err) < 0)
        log_fatal("mynetworks: %s", err.s);
    strv_free(nets);
    str_free(&err);
    conn_limit_setup(&cf->limits, c, CONF_smtpd_client_connection_count_limit,
                     CONF_smtpd_client_connection_rate_limit,
                     CONF_smtpd_client_event_limit_exceptions);
    smtpd_tls_setup(cf, c);
    smtpd_auth_setup(cf, c);
    smtpd_policy_setup(cf, c);
    smtpd_checks_setup(c);
    smtpd_milter_setup(cf, c);
}

static void smtpd_post_jail(struct server *srv)
{
    int ipc_ms = (int)conf_time_ms(srv->conf, CONF_ipc_timeout);

    smtpd_cf.resolve = resolve_clnt_open(PROTO_PATH_RESOLVE, ipc_ms);
    /* a connection to auth per login, given a few seconds: when auth is saturated
     * the client is told to come back rather than kept waiting */
    if (smtpd_cf.sasl_enable)
        smtpd_cf.auth = auth_clnt_open(PROTO_PATH_AUTH,
                                       (int)conf_time_ms(srv->conf, CONF_auth_request_timeout));
}

static const char *const cmd_names[CMD_COUNT] = {
    "helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset",
    "noop", "vrfy", "help", "quit", "unknown",
};

/* "disconnect from [IP] ehlo=1 mail=1 rcpt=0/1 ... commands=N[/M]" */
static void log_disconnect(const struct smtpd_session *s)
{
    struct str msg = STR_INIT;
    unsigned ok = 0, all = 0;

    str_printf(&msg, "disconnect from [%s]", s->addr);
    for (int i = 0; i < CMD_COUNT; i++) {
        if (s->counts[i] == 0)
            continue;
        if (s->oks[i] == s->counts[i])
            str_printf(&msg, " %s=%u", cmd_names[i], s->counts[i]);
        else
            str_printf(&msg, " %s=%u/%u", cmd_names[i], s->oks[i], s->counts[i]);
        ok += s->oks[i];
        all += s->counts[i];
    }
    if (ok == all)
        str_printf(&msg, " commands=%u", all);
    else
        str_printf(&msg, " commands=%u/%u", ok, all);
    log_info("%s", msg.s);
    str_free(&msg);
}

/* Reads one command line into s->line without its line end: 1, 2 when the line
 * was overlong (read to its end and answered here), or 0 when the session is over. */
static int read_command(struct smtpd_session *s)
{
    size_t max = s->cf->line_length_limit;
    int r = smtpd_read_line(s, &s->line, max);

    if (r <= 0)
        return 0;
    if (r == STREAM_PARTIAL && s->line.len < max) {
        /* the last bytes before EOF: not a command */
        log_info("lost connection after %s from [%s]",
                 s->lost_after ? s->lost_after : "CONNECT", s->addr);
        s->done = true;
        return 0;
    }
    if (r == STREAM_PARTIAL) {
        do {
            r = smtpd_read_line(s, &s->line, max);
            if (r <= 0)
                return 0;
        } while (r == STREAM_PARTIAL && s->line.len == max);
        str_clear(&s->line);
        s->counts[CMD_UNKNOWN]++;
        if (smtpd_junk(s))
            smtpd_reply(s, 500, "5.5.2 Error: Line too long");
        return 2;
    }
    /* strip the line end (CRLF or bare LF) and trailing blanks */
    while (s->line.len > 0 && (s->line.s[s->line.len - 1] == '\n'
                               || s->line.s[s->line.len - 1] == '\r'
                               || s->line.s[s->line.len - 1] == ' '
                               || s->line.s[s->line.len - 1] == '\t'))
        s->line.len--;
    s->line.s[s->line.len] = '\0';
    return 1;
}

static bool line_has_control(const struct str *line)
{
    for (size_t i = 0; i < line->len; i++) {
        unsigned char c = (unsigned char)line->s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

static void smtpd_session_free(struct smtpd_session *s)
{
    smtpd_milter_end(s);
    stream_close(s->st);
    str_free(&s->helo);
    str_free(&s->line);
    str_free(&s->sasl_user);
    smtpd_policy_session_free(&s->policy);
    smtpd_txn_free(&s->txn);
}

static void smtpd_service(struct server *srv, int *fd)
{
    struct smtpd_session sess, *s = &sess;
    struct conn_limit_state limit;

    memset(s, 0, sizeof(*s));
    s->cf = &smtpd_cf;
    s->txn.declared_size = -1;
    str_init(&s->helo);
    str_init(&s->line);
    str_init(&s->sasl_user);
    if (sock_peer(*fd, s->addr, sizeof(s->addr), &s->port) < 0) {
        snprintf(s->addr, sizeof(s->addr), "unknown");
        s->port = 0;
    }
    s->st = stream_fdopen(*fd);
    *fd = -1;
    stream_set_timeout(s->st, smtpd_cf.timeout_ms);
    s->trusted = cidr_list_match(&smtpd_cf.mynetworks, s->addr);
    if (!conn_limit_check(&smtpd_cf.limits, srv->service, s->addr, &limit)) {
        /* Over a limit: told so (after the handshake in wrapper mode) and gone,
         * without a line in the log for each (conn_limit.h logs once a minute). */
        if (!smtpd_cf.tls_wrapper || smtpd_tls_wrap(s) == 0) {
            stream_printf(s->st, "421 4.7.0 %s Error: too many connections from %s\r\n",
                          smtpd_cf.myhostname, s->addr);
            stream_flush(s->st);
        }
        smtpd_session_free(s);
        conn_limit_end(&limit);
        return;
    }
    log_info("connect from [%s]", s->addr);

    if (!smtpd_cf.tls_wrapper || smtpd_tls_wrap(s) == 0) {
        /* A client that talks before the greeting is not waiting for replies; those
         * of mynetworks are not made to wait (as postscreen permits them). */
        if (smtpd_input_waiting(s, s->trusted ? 0 : (int)smtpd_cf.greet_wait_ms))
            smtpd_improper_pipelining(s, "CONNECT");
        else
            smtpd_reply(s, 220, "%s", smtpd_cf.banner);
    }
    while (!s->done) {
        int r = read_command(s);

        if (r == 0)
            break;
        if (r == 2)
            continue;
        if (memchr(s->line.s, '\0', s->line.len) != NULL || line_has_control(&s->line)) {
            s->counts[CMD_UNKNOWN]++;
            if (smtpd_junk(s))
                smtpd_reply(s, 500, "5.5.2 Error: bad character in command");
            continue;
        }
        smtpd_command(s, s->line.s);
    }
    if (!s->done)
        smtpd_flush(s);
    smtpd_txn_reset(s);
    log_disconnect(s);
    smtpd_session_free(s);
    conn_limit_end(&limit);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .name = "smtpd",
        .pre_jail = smtpd_pre_jail,
        .post_jail = smtpd_post_jail,
        .service = smtpd_service,
    };

    server_main(argc, argv, &opts);
}
