/* smtpd TLS: the server context (made before chroot from smtpd_tls_cert_file and
 * smtpd_tls_key_file), STARTTLS (RFC 3207), wrapper mode (port 465), and the TLS
 * part of the Received: header.  What the client sent before its handshake is
 * dropped unread (the STARTTLS injection class) and logged. */
#include <string.h>

#include "conf.h"
#include "log.h"
#include "smtpd.h"
#include "stream.h"
#include "tls.h"

void smtpd_tls_setup(struct smtpd_conf *cf, const struct conf *c)
{
    const char *cert = conf_str(c, CONF_smtpd_tls_cert_file);
    const char *key = conf_str(c, CONF_smtpd_tls_key_file);
    const char *level = conf_str(c, CONF_smtpd_tls_security_level);
    struct str err = STR_INIT;

    cf->tls = NULL;
    cf->tls_wrapper = conf_bool(c, CONF_smtpd_tls_wrappermode);
    cf->tls_timeout_ms = (int)conf_time_ms(c, CONF_smtpd_starttls_timeout);
    if (*level == '\0')
        cf->tls_level = *cert != '\0' ? SMTPD_TLS_MAY : SMTPD_TLS_NONE;
    else if (strcmp(level, "none") == 0)
        cf->tls_level = SMTPD_TLS_NONE;
    else if (strcmp(level, "may") == 0)
        cf->tls_level = SMTPD_TLS_MAY;
    else if (strcmp(level, "encrypt") == 0)
        cf->tls_level = SMTPD_TLS_ENCRYPT;
    else
        log_panic("smtpd_tls_security_level \"%s\" is in the table but not handled", level);
    if (cf->tls_wrapper && cf->tls_level == SMTPD_TLS_NONE)
        cf->tls_level = SMTPD_TLS_ENCRYPT;
    if (cf->tls_level == SMTPD_TLS_NONE)
        return;
    cf->tls = tls_server_ctx(cert, *key != '\0' ? key : cert, &err);
    if (cf->tls == NULL) {
        if (cf->tls_level == SMTPD_TLS_ENCRYPT)
            log_fatal("TLS is required but unavailable: %s", err.s);
        log_warn("TLS disabled: %s", err.s);
        cf->tls_level = SMTPD_TLS_NONE;
    }
    str_free(&err);
}

/* The handshake on the session's stream: 0, or -1 after logging (session over). */
static int smtpd_tls_start(struct smtpd_session *s)
{
    struct str err = STR_INIT;
    size_t discarded = 0;
    int rc = tls_server_start(s->cf->tls, s->st, s->cf->tls_timeout_ms, &discarded, &err);

    if (discarded > 0)
        log_warn("[%s]: %zu byte(s) sent before the TLS handshake discarded "
                 "(possible command injection)", s->addr, discarded);
    if (rc < 0) {
        log_warn("[%s]: %s", s->addr, err.s);
        s->done = true;
        s->lost_after = "STARTTLS";
        str_free(&err);
        return -1;
    }
    s->tls = true;
    log_info("%s TLS connection established from [%s]: %s with cipher %s (%d/%d bits)",
             "Anonymous", s->addr, tls_version(s->st), tls_cipher(s->st),
             tls_cipher_bits(s->st), tls_cipher_bits(s->st));
    str_free(&err);
    return 0;
}

int smtpd_tls_wrap(struct smtpd_session *s)
{
    if (s->cf->tls == NULL) {
        log_warn("[%s]: wrapper mode without a TLS certificate", s->addr);
        s->done = true;
        return -1;
    }
    return smtpd_tls_start(s);
}

bool smtpd_tls_offer(const struct smtpd_session *s)
{
    return !s->tls && s->cf->tls != NULL && s->cf->tls_level != SMTPD_TLS_NONE;
}

void smtpd_cmd_starttls(struct smtpd_session *s, char *arg)
{
    if (s->tls) {
        smtpd_reply(s, 554, "5.5.1 Error: TLS already active");
        return;
    }
    if (!smtpd_tls_offer(s)) {
        smtpd_reply(s, 502, "5.5.1 Error: command not implemented");
        return;
    }
    if (*arg != '\0') {
        smtpd_reply(s, 501, "5.5.4 Syntax: STARTTLS");
        return;
    }
    smtpd_reply(s, 220, "2.0.0 Ready to start TLS");
    if (smtpd_flush(s) < 0)
        return;
    if (smtpd_tls_start(s) < 0)
        return;
    /* RFC 3207 4.2: forget everything learnt from the client before TLS */
    smtpd_txn_reset(s);
    str_clear(&s->helo);
    s->esmtp = false;
    s->authenticated = false;
    str_clear(&s->sasl_user);
    s->sasl_method = NULL;
    s->oks[CMD_STARTTLS]++;
}

void smtpd_tls_received(const struct smtpd_session *s, struct str *out)
{
    if (!s->tls || !tls_active(s->st))
        return;
    str_printf(out, "\t(using %s with cipher %s (%d/%d bits))\n", tls_version(s->st),
               tls_cipher(s->st), tls_cipher_bits(s->st), tls_cipher_bits(s->st));
}
