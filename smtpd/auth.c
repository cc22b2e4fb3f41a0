/* smtpd AUTH (RFC 4954), mechanisms PLAIN and LOGIN, checked by the auth service
 * over "login/auth" in the queue directory (a connection per login, the client's
 * connection passed along).  Everything
 * the client sends here is untrusted: each response line is bounded, base64 is
 * decoded strictly, and the decoded credentials are checked for shape before they
 * leave the process.  Passwords are wiped from memory after use. */
#include <string.h>
#include <strings.h>

#include "auth_clnt.h"
#include "auth_decode.h"
#include "conf.h"
#include "log.h"
#include "map.h"
#include "proto.h"
#include "server.h"
#include "smtpd.h"
#include "stream.h"

#define AUTH_LINE_MAX 12288         /* RFC 4954 4: a response line, CRLF included */
#define AUTH_USER_MAX 255
#define AUTH_PASS_MAX 1024

static void str_wipe(struct str *sb)
{
    if (sb->s != NULL)
        explicit_bzero(sb->s, sb->cap > 0 ? sb->cap : sb->len);
    str_free(sb);
}

void smtpd_auth_setup(struct smtpd_conf *cf, const struct conf *c)
{
    const char *maps = conf_str(c, CONF_smtpd_sender_login_maps);
    struct str err = STR_INIT;

    cf->sasl_enable = conf_bool(c, CONF_smtpd_sasl_auth_enable);
    cf->tls_auth_only = conf_bool(c, CONF_smtpd_tls_auth_only);
    cf->auth_required = conf_bool(c, CONF_smtpd_client_auth_required);
    cf->sender_login_mismatch_allowed = conf_bool(c, CONF_smtpd_sender_login_mismatch_allowed);
    cf->recipient_delimiter = conf_str(c, CONF_recipient_delimiter);
    cf->sender_login_maps = NULL;
    cf->auth = NULL;
    if (*maps != '\0') {
        cf->sender_login_maps = maplist_open(maps, &err);
        if (cf->sender_login_maps == NULL)
            log_fatal("smtpd_sender_login_maps: %s", err.s);
        /* smtpd chroots away from the maps: keep the files opened here */
        maplist_pin(cf->sender_login_maps);
    }
    if (cf->auth_required && !cf->sasl_enable)
        log_fatal("smtpd_client_auth_required = yes needs smtpd_sasl_auth_enable = yes");
    str_free(&err);
}

bool smtpd_auth_offer(const struct smtpd_session *s)
{
    const struct smtpd_conf *cf = s->cf;

    return cf->sasl_enable && !s->authenticated && (s->tls || !cf->tls_auth_only);
}

enum resp { RESP_OK, RESP_CANCEL, RESP_BAD, RESP_LOST };

/* Sends a 334 challenge and reads the client's response, decoded into out. */
static enum resp auth_response(struct smtpd_session *s, const char *challenge,
                               struct str *out)
{
    struct str line = STR_INIT;
    enum resp rc = RESP_OK;
    int r;

    stream_printf(s->st, "334 %s\r\n", challenge);
    r = smtpd_read_line(s, &line, AUTH_LINE_MAX);
    if (r <= 0) {
        str_wipe(&line);
        return RESP_LOST;
    }
    if (r == STREAM_PARTIAL) {
        /* overlong: skip the rest of it */
        while (r == STREAM_PARTIAL && line.len == AUTH_LINE_MAX)
            r = smtpd_read_line(s, &line, AUTH_LINE_MAX);
        str_wipe(&line);
        if (r <= 0)
            return RESP_LOST;
        smtpd_reply(s, 500, "5.5.6 Authentication Exchange line is too long");
        return RESP_CANCEL;
    }
    while (line.len > 0 && (line.s[line.len - 1] == '\n' || line.s[line.len - 1] == '\r'))
        line.len--;
    line.s[line.len] = '\0';
    if (line.len == 1 && line.s[0] == '*')
        rc = RESP_CANCEL;
    else if (smtpd_b64_decode(line.s, line.len, out) < 0)
        rc = RESP_BAD;
    if (rc == RESP_CANCEL)
        smtpd_reply(s, 501, "5.7.0 Authentication aborted");
    str_wipe(&line);
    return rc;
}

/* The initial response from the command line: "=" is an empty one. */
static int initial_response(const char *ir, struct str *out)
{
    if (strcmp(ir, "=") == 0) {
        str_clear(out);
        return 0;
    }
    return smtpd_b64_decode(ir, strlen(ir), out);
}

void smtpd_cmd_auth(struct smtpd_session *s, char *arg)
{
    const struct smtpd_conf *cf = s->cf;
    struct str user = STR_INIT, pass = STR_INIT, buf = STR_INIT;
    struct auth_result res;
    enum auth_status st;
    const char *mech, *why;
    char *ir = NULL;
    enum resp r = RESP_OK;

    if (s->authenticated) {
        smtpd_reply(s, 503, "5.5.1 Error: already authenticated");
        return;
    }
    if (!smtpd_auth_offer(s)) {
        smtpd_reply(s, 503, "5.5.1 Error: authentication not enabled");
        return;
    }
    if (!s->esmtp) {
        smtpd_reply(s, 503, "5.5.1 Error: send EHLO first");
        return;
    }
    if (s->txn.active) {
        smtpd_reply(s, 503, "5.5.1 Error: MAIL transaction in progress");
        return;
    }
    if (smtpd_auth_args(arg, &ir, &why) < 0) {
        smtpd_reply(s, 501, "%s", why);
        return;
    }
    if (strcasecmp(arg, "PLAIN") == 0) {
        mech = "PLAIN";
        if (ir != NULL)
            r = initial_response(ir, &buf) < 0 ? RESP_BAD : RESP_OK;
        else
            r = auth_response(s, "", &buf);
        if (r == RESP_OK && smtpd_plain_split(&buf, &user, &pass) < 0)
            r = RESP_BAD;
    } else if (strcasecmp(arg, "LOGIN") == 0) {
        mech = "LOGIN";
        if (ir != NULL)
            r = initial_response(ir, &user) < 0 ? RESP_BAD : RESP_OK;
        else
            r = auth_response(s, "VXNlcm5hbWU6", &user);           /* "Username:" */
        if (r == RESP_OK)
            r = auth_response(s, "UGFzc3dvcmQ6", &pass);           /* "Password:" */
    } else {
        smtpd_reply(s, 504, "5.5.4 Unsupported authentication mechanism");
        return;
    }
    if (r == RESP_OK && (!smtpd_cred_ok(user.s, user.len, AUTH_USER_MAX)
                         || !smtpd_cred_ok(pass.s, pass.len, AUTH_PASS_MAX)))
        r = RESP_BAD;
    if (r == RESP_BAD)
        smtpd_reply(s, 501, "5.5.2 Invalid authentication response");
    if (r != RESP_OK)
        goto out;

    auth_result_init(&res);
    st = cf->auth != NULL ? auth_login(cf->auth, PROTO_SERVICE_SMTP, user.s, pass.s,
                                       stream_fd(s->st), &res)
                          : AUTH_TEMPFAIL;
    /* auth's penalty for recent failures: this process waits, not auth */
    auth_delay_wait(res.delay_ms, &server_stop);
    switch (st) {
    case AUTH_OK:
        s->authenticated = true;
        s->sasl_method = mech;
        str_set(&s->sasl_user, res.user.s, res.user.len);
        smtpd_reply(s, 235, "2.7.0 Authentication successful");
        s->oks[CMD_AUTH]++;
        break;
    case AUTH_FAIL:
        log_warn("[%s]: SASL %s authentication failed: %s", s->addr, mech,
                 res.text.len > 0 ? res.text.s : "authentication failure");
        smtpd_reply(s, 535, "5.7.8 Error: authentication failed");
        break;
    default:
        log_warn("[%s]: SASL %s authentication unavailable: %s", s->addr, mech,
                 res.text.len > 0 ? res.text.s : "auth service not reachable");
        smtpd_reply(s, 454, "4.7.0 Temporary authentication failure");
        break;
    }
    auth_result_free(&res);
out:
    str_wipe(&pass);
    str_wipe(&buf);
    str_free(&user);
}
