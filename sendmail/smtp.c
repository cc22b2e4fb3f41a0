/* sendmail -bs: an SMTP session on standard input and output, as Postfix's
 * "sendmail -bs" speaks it for local clients.  Each message accepted with DATA
 * becomes one maildrop file, exactly as a message given on the command line; the
 * sender of MAIL FROM is what -f would be (pickup(8) decides whether it stands).
 * Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT; lines are bounded. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "dsn_notify.h"
#include "maildrop.h"
#include "proto.h"
#include "queue.h"
#include "sendmail.h"
#include "xmalloc.h"
#include "xtext.h"

#define SMTP_LINE_MAX 4096
#define SMTP_ERRORS_MAX 20          /* errors before the session is closed */

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputs("\r\n", stdout);
    fflush(stdout);
}

/* A command line without its line end: 1, 0 at end of input, -1 when too long (the
 * rest of it is skipped). */
static int command(struct str *line)
{
    int c;
    bool over = false;

    str_clear(line);
    str_sets(line, "");
    while ((c = getc_unlocked(stdin)) != EOF) {
        if (c == '\n') {
            if (line->len > 0 && line->s[line->len - 1] == '\r')
                str_truncate(line, line->len - 1);
            return over ? -1 : 1;
        }
        if (line->len < SMTP_LINE_MAX)
            str_appendc(line, (char)c);
        else
            over = true;
    }
    return line->len > 0 ? (over ? -1 : 1) : 0;
}

/* "KEYWORD:" at the start of arg, case-insensitive: the text after it. */
static const char *after(const char *arg, const char *kw)
{
    size_t n = strlen(kw);
    return strncasecmp(arg, kw, n) == 0 ? arg + n : NULL;
}

/* The path "<...>" at the start of s: copied to path, the parameters after it
 * returned.  NULL when there is no such path. */
static const char *split_path(const char *s, struct str *path)
{
    const char *end;

    while (*s == ' ')
        s++;
    if (*s != '<' || (end = strchr(s, '>')) == NULL)
        return NULL;
    str_set(path, s, (size_t)(end - s + 1));
    end++;
    while (*end == ' ')
        end++;
    return end;
}

struct txn {
    bool have_mail;
    char *sender;
    char *ret;
    char *envid;
    struct sm_envelope env;
};

static void txn_reset(struct txn *t)
{
    free(t->sender);
    free(t->ret);
    free(t->envid);
    env_free_rcpts(&t->env);
    memset(t, 0, sizeof(*t));
}

/* MAIL FROM parameters: SIZE, BODY (accepted), RET, ENVID.  0 or -1 (replied). */
static int mail_params(struct sm *sm, struct txn *t, const char *p)
{
    char *copy = xstrdup(p), *save = NULL;
    int rc = 0;

    for (char *w = strtok_r(copy, " ", &save); w != NULL && rc == 0;
         w = strtok_r(NULL, " ", &save)) {
        const char *v = strchr(w, '=');
        size_t kl = v ? (size_t)(v - w) : strlen(w);
        v = v ? v + 1 : "";
        if (kl == 4 && strncasecmp(w, "SIZE", 4) == 0) {
            char *end;
            long long n = strtoll(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < 0) {
                reply("501 5.5.4 Bad SIZE parameter");
                rc = -1;
            } else if (sm->size_limit > 0 && n > sm->size_limit) {
                reply("552 5.3.4 Message size exceeds fixed limit");
                rc = -1;
            }
        } else if (kl == 4 && strncasecmp(w, "BODY", 4) == 0) {
            if (strcasecmp(v, "7BIT") != 0 && strcasecmp(v, "8BITMIME") != 0) {
                reply("501 5.5.4 Unsupported BODY type");
                rc = -1;
            }
        } else if (kl == 3 && strncasecmp(w, "RET", 3) == 0 && t->ret == NULL) {
            if (strcasecmp(v, "FULL") == 0)
                t->ret = xstrdup("FULL");
            else if (strcasecmp(v, "HDRS") == 0)
                t->ret = xstrdup("HDRS");
            else {
                reply("501 5.5.4 Bad RET parameter");
                rc = -1;
            }
        } else if (kl == 5 && strncasecmp(w, "ENVID", 5) == 0 && t->envid == NULL) {
            if (!xtext_valid(v, MAILDROP_ENVID_MAX)) {
                reply("501 5.5.4 Bad ENVID parameter");
                rc = -1;
            } else {
                t->envid = xstrdup(v);
            }
        } else {
            reply("555 5.5.4 Unsupported option: %.*s", (int)kl, w);
            rc = -1;
        }
    }
    free(copy);
    return rc;
}

/* RCPT TO parameters: NOTIFY; ORCPT is accepted and not kept.  0 or -1 (replied). */
static int rcpt_params(const char *p, struct str *notify)
{
    char *copy = xstrdup(p), *save = NULL;
    int rc = 0;

    str_clear(notify);
    for (char *w = strtok_r(copy, " ", &save); w != NULL && rc == 0;
         w = strtok_r(NULL, " ", &save)) {
        const char *v = strchr(w, '=');
        size_t kl = v ? (size_t)(v - w) : strlen(w);
        v = v ? v + 1 : "";
        if (kl == 6 && strncasecmp(w, "NOTIFY", 6) == 0) {
            if (dsn_notify_parse(v, notify) < 0) {
                reply("501 5.5.4 Bad NOTIFY parameter");
                rc = -1;
            }
        } else if (!(kl == 5 && strncasecmp(w, "ORCPT", 5) == 0)) {
            reply("555 5.5.4 Unsupported option: %.*s", (int)kl, w);
            rc = -1;
        }
    }
    free(copy);
    return rc;
}

static void do_data(struct sm *sm, struct txn *t)
{
    struct str why = STR_INIT;
    char id[QUEUE_ID_SIZE];
    int ex;

    if (!t->have_mail) {
        reply("503 5.5.1 Error: need MAIL command");
        return;
    }
    if (t->env.nrcpt == 0) {
        reply("554 5.5.1 Error: no valid recipients");
        return;
    }
    reply("354 End data with <CR><LF>.<CR><LF>");
    t->env.sender = t->sender;
    t->env.ret = t->ret;
    t->env.envid = t->envid;
    ex = sm_message(sm, stdin, SM_INPUT_SMTP, false, &t->env, id, &why);
    if (ex == EX_OK) {
        if (drop_notify(sm, PROTO_REQ_SCAN) < 0 && sm->verbose)
            fprintf(stderr, "sendmail: pickup not reached: %s\n", strerror(errno));
        reply("250 2.0.0 Ok: queued as %s", id);
    } else if (ex == EX_DATAERR && strstr(why.s, "too big") != NULL) {
        reply("552 5.3.4 Message size exceeds fixed limit");
    } else if (ex == EX_DATAERR && strstr(why.s, "input ended") != NULL) {
        /* the client has gone: nobody to answer */
    } else {
        reply("451 4.3.0 Error: %s", why.s);
    }
    str_free(&why);
    txn_reset(t);
}

int sm_smtp(struct sm *sm)
{
    struct str line = STR_INIT, path = STR_INIT, addr = STR_INIT, why = STR_INIT,
               notify = STR_INIT;
    struct txn t = { 0 };
    int errors = 0;

    reply("220 %s ESMTP %s", sm->myhostname, conf_str(sm->conf, CONF_mail_name));
    for (;;) {
        const char *arg, *params;
        int rc = command(&line);

        if (rc == 0)
            break;
        if (errors >= SMTP_ERRORS_MAX) {
            reply("421 4.7.0 %s Error: too many errors", sm->myhostname);
            break;
        }
        if (rc < 0) {
            reply("500 5.5.2 Error: line too long");
            errors++;
            continue;
        }
        str_clear(&why);
        if ((arg = after(line.s, "EHLO")) != NULL && (*arg == ' ' || *arg == '\0')) {
            printf("250-%s\r\n250-PIPELINING\r\n", sm->myhostname);
            if (sm->size_limit > 0)
                printf("250-SIZE %lld\r\n", sm->size_limit);
            reply("250-8BITMIME\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES");
        } else if ((arg = after(line.s, "HELO")) != NULL && (*arg == ' ' || *arg == '\0')) {
            reply("250 %s", sm->myhostname);
        } else if ((arg = after(line.s, "MAIL FROM:")) != NULL) {
            if (t.have_mail) {
                reply("503 5.5.1 Error: nested MAIL command");
                errors++;
            } else if ((params = split_path(arg, &path)) == NULL
                       || sm_addr(sm, path.s, true, &addr, &why) < 0) {
                reply("501 5.1.7 Bad sender address syntax");
                errors++;
            } else if (mail_params(sm, &t, params) < 0) {
                free(t.ret);
                free(t.envid);
                t.ret = t.envid = NULL;
                errors++;
            } else {
                t.sender = xstrdup(addr.s);
                t.have_mail = true;
                reply("250 2.1.0 Ok");
            }
        } else if ((arg = after(line.s, "RCPT TO:")) != NULL) {
            if (!t.have_mail) {
                reply("503 5.5.1 Error: need MAIL command");
                errors++;
            } else if ((params = split_path(arg, &path)) == NULL || strcmp(path.s, "<>") == 0
                       || sm_addr(sm, path.s, false, &addr, &why) < 0) {
                reply("501 5.1.3 Bad recipient address syntax");
                errors++;
            } else if (rcpt_params(params, &notify) < 0) {
                errors++;
            } else if (t.env.nrcpt >= MAILDROP_RCPT_MAX) {
                reply("452 4.5.3 Error: too many recipients");
            } else {
                env_add_rcpt(&t.env, addr.s, notify.len > 0 ? notify.s : NULL);
                reply("250 2.1.5 Ok");
            }
        } else if (strcasecmp(line.s, "DATA") == 0) {
            do_data(sm, &t);
        } else if (strcasecmp(line.s, "RSET") == 0) {
            txn_reset(&t);
            reply("250 2.0.0 Ok");
        } else if (strncasecmp(line.s, "NOOP", 4) == 0
                   && (line.s[4] == ' ' || line.s[4] == '\0')) {
            reply("250 2.0.0 Ok");
        } else if (strncasecmp(line.s, "VRFY", 4) == 0) {
            reply("252 2.0.0 Send some mail, I'll try my best");
        } else if (strncasecmp(line.s, "HELP", 4) == 0) {
            reply("214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY QUIT");
        } else if (strcasecmp(line.s, "QUIT") == 0) {
            reply("221 2.0.0 Bye");
            break;
        } else {
            reply("502 5.5.2 Error: command not recognized");
            errors++;
        }
        if (ferror(stdout))
            break;
    }
    txn_reset(&t);
    str_free(&line);
    str_free(&path);
    str_free(&addr);
    str_free(&why);
    str_free(&notify);
    return EX_OK;
}
