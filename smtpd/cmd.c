/* smtpd commands: the dispatch table and the commands that need no queue file
 * (HELO, EHLO, MAIL, RSET, NOOP, QUIT, VRFY, HELP; STARTTLS and AUTH are in tls.c
 * and auth.c).  The command line is untrusted: it is one line without its line end and
 * without NUL bytes, at most line_length_limit bytes. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "smtpd.h"
#include "stream.h"

#define HELO_MAX 255

bool smtpd_word_is(const char *arg, const char *word)
{
    size_t n = strlen(word);

    return strncasecmp(arg, word, n) == 0 && (arg[n] == '\0' || arg[n] == ' ');
}

void smtpd_txn_free(struct smtpd_txn *t)
{
    if (t->qw != NULL)
        qw_abort(t->qw);
    t->qw = NULL;
    if (t->data != NULL)
        smtpd_data_free(t->data);
    t->data = NULL;
    str_free(&t->sender);
    str_free(&t->envid);
    str_free(&t->first_rcpt);
    smtpd_addrset_free(&t->seen);
    smtpd_policy_txn_free(&t->policy);
    memset(t, 0, sizeof(*t));
    t->declared_size = -1;
}

void smtpd_txn_reset(struct smtpd_session *s)
{
    smtpd_txn_free(&s->txn);
    /* a DATA or BDAT phase ends with its transaction */
    s->phase_deadline = 0;
    s->phase = NULL;
    stream_set_deadline(s->st, 0);
}

bool smtpd_junk(struct smtpd_session *s)
{
    if (++s->junk <= s->cf->junk_command_limit)
        return true;
    log_info("too many junk commands after %s from [%s]",
             s->lost_after ? s->lost_after : "CONNECT", s->addr);
    smtpd_reply(s, 421, "4.7.0 %s Error: too many errors/junk commands", s->cf->myhostname);
    smtpd_flush(s);
    s->done = true;
    return false;
}

bool smtpd_input_waiting(struct smtpd_session *s, int wait_ms)
{
    struct pollfd pfd;
    int r;

    if (stream_pending(s->st) > 0)
        return true;
    pfd.fd = stream_fd(s->st);
    pfd.events = POLLIN;
    do {
        r = poll(&pfd, 1, wait_ms);
    } while (r < 0 && errno == EINTR);
    return r > 0;
}

void smtpd_improper_pipelining(struct smtpd_session *s, const char *after)
{
    log_info("improper command pipelining after %s from [%s]", after, s->addr);
    smtpd_reply(s, 554, "5.5.0 Error: improper command pipelining");
    smtpd_flush(s);
    s->done = true;
}

/* HELO/EHLO argument: one word of printable characters (UTF-8 allowed). */
static int helo_arg(struct smtpd_session *s, const char *arg, const char *cmd)
{
    size_t n = 0;

    while (*arg == ' ')
        arg++;
    while (arg[n] != '\0' && arg[n] != ' ')
        n++;
    if (n == 0) {
        smtpd_reply(s, 501, "5.5.4 Syntax: %s hostname", cmd);
        return -1;
    }
    if (n > HELO_MAX) {
        smtpd_reply(s, 501, "5.5.4 Error: hostname too long");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)arg[i];
        if (c < 0x21 || c == 0x7f || c == '<' || c == '>' || c == '(' || c == ')'
            || ((c == '[' || c == ']') && arg[0] != '[')) {
            smtpd_reply(s, 501, "5.5.2 Error: bad character in hostname");
            return -1;
        }
    }
    if (!addr_utf8_valid(arg, n)) {
        smtpd_reply(s, 501, "5.5.2 Error: invalid UTF-8 in hostname");
        return -1;
    }
    if (arg[0] == '[') {
        /* an address literal: "[1.2.3.4]" or "[IPv6:...]", nothing else */
        char lit[HELO_MAX + 1];
        memcpy(lit, arg, n);
        lit[n] = '\0';
        if (!addr_domain_valid(lit, false)) {
            smtpd_reply(s, 501, "5.5.2 Error: invalid address literal in hostname");
            return -1;
        }
    }
    str_set(&s->helo, arg, n);
    return 0;
}

static void cmd_helo(struct smtpd_session *s, char *arg)
{
    if (helo_arg(s, arg, "HELO") < 0)
        return;
    smtpd_txn_reset(s);
    s->esmtp = false;
    smtpd_reply(s, 250, "%s", s->cf->myhostname);
    s->oks[CMD_HELO]++;
}

static void cmd_ehlo(struct smtpd_session *s, char *arg)
{
    const struct smtpd_conf *cf = s->cf;

    if (helo_arg(s, arg, "EHLO") < 0)
        return;
    smtpd_txn_reset(s);
    s->esmtp = true;
    smtpd_reply_cont(s, 250, "%s", cf->myhostname);
    smtpd_reply_cont(s, 250, "PIPELINING");
    if (cf->message_size_limit > 0)
        smtpd_reply_cont(s, 250, "SIZE %lld", cf->message_size_limit);
    else
        smtpd_reply_cont(s, 250, "SIZE");
    if (smtpd_tls_offer(s))
        smtpd_reply_cont(s, 250, "STARTTLS");
    if (smtpd_auth_offer(s))
        smtpd_reply_cont(s, 250, "AUTH PLAIN LOGIN");
    smtpd_reply_cont(s, 250, "ENHANCEDSTATUSCODES");
    smtpd_reply_cont(s, 250, "8BITMIME");
    if (cf->smtputf8)
        smtpd_reply_cont(s, 250, "SMTPUTF8");
    smtpd_reply_cont(s, 250, "CHUNKING");
    smtpd_reply(s, 250, "DSN");
    s->oks[CMD_EHLO]++;
}

static bool has_8bit(const char *p)
{
    for (; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            return true;
    return false;
}

/* Whether the queue file system (the cwd is the queue directory) keeps
 * queue_minfree bytes free after the declared size of this message.  When it cannot
 * be told, the message is taken: a full disk still fails its write and gets 452. */
static bool queue_space(struct smtpd_session *s)
{
    struct statvfs sv;
    unsigned long long avail, need;

    if (s->cf->queue_minfree == 0 && s->txn.declared_size <= 0)
        return true;
    if (statvfs("tmp", &sv) < 0) {
        log_warn("statvfs tmp: %m");
        return true;
    }
    avail = (unsigned long long)sv.f_bavail * (unsigned long long)sv.f_frsize;
    need = (unsigned long long)s->cf->queue_minfree;
    if (s->txn.declared_size > 0)
        need += (unsigned long long)s->txn.declared_size;
    return avail >= need;
}

static void cmd_mail(struct smtpd_session *s, char *arg)
{
    const struct smtpd_conf *cf = s->cf;
    struct smtpd_txn *t = &s->txn;
    const char *rest, *why;
    int flags = ADDR_ALLOW_NULL | (cf->smtputf8 ? ADDR_SMTPUTF8 : 0);

    if (t->active) {
        smtpd_reply(s, 503, "5.5.1 Error: nested MAIL command");
        return;
    }
    if (cf->auth_required && !s->authenticated) {
        smtpd_reply(s, 530, "5.7.0 Authentication required");
        return;
    }
    if (strncasecmp(arg, "FROM:", 5) != 0) {
        smtpd_reply(s, 501, "5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    smtpd_txn_reset(s);
    str_init(&t->sender);
    str_init(&t->envid);
    str_init(&t->first_rcpt);
    if (addr_parse_path(arg + 5, flags, &t->sender, &rest, &why) < 0) {
        smtpd_reply(s, 501, "5.1.7 Bad sender address syntax (%s)", why);
        smtpd_txn_reset(s);
        return;
    }
    if (smtpd_mail_params(s, rest) < 0) {
        smtpd_txn_reset(s);
        return;
    }
    if (!t->smtputf8 && has_8bit(t->sender.s)) {
        smtpd_reply(s, 553, "5.6.7 Must declare SMTPUTF8 to send a UTF-8 address");
        smtpd_txn_reset(s);
        return;
    }
    /* "<postmaster>" and other bare local parts get this host's domain */
    if (t->sender.len > 0 && strchr(t->sender.s, '@') == NULL) {
        str_appendc(&t->sender, '@');
        str_appends(&t->sender, cf->myorigin);
    }
    addr_fold_domain(t->sender.s);
    if (smtpd_sender_login_check(s, t->sender.s) < 0) {
        smtpd_txn_reset(s);
        return;
    }
    if (!queue_space(s)) {
        smtpd_reject(s, "MAIL", NULL, 452, "4.3.1", "Insufficient system storage");
        smtpd_txn_reset(s);
        return;
    }
    if (smtpd_milter_mail(s) < 0) {
        smtpd_txn_reset(s);
        return;
    }
    t->active = true;
    smtpd_reply(s, 250, "2.1.0 Ok");
    s->oks[CMD_MAIL]++;
}

static void cmd_rset(struct smtpd_session *s, char *arg)
{
    if (*arg != '\0') {
        smtpd_reply(s, 501, "5.5.4 Syntax: RSET");
        return;
    }
    smtpd_txn_reset(s);
    smtpd_reply(s, 250, "2.0.0 Ok");
    s->oks[CMD_RSET]++;
}

static void cmd_noop(struct smtpd_session *s, char *arg)
{
    smtpd_reply(s, 250, "2.0.0 Ok");
    s->oks[CMD_NOOP]++;
}

static void cmd_quit(struct smtpd_session *s, char *arg)
{
    smtpd_reply(s, 221, "2.0.0 Bye");
    s->oks[CMD_QUIT]++;
    smtpd_flush(s);
    s->done = true;
}

static void cmd_vrfy(struct smtpd_session *s, char *arg)
{
    if (*arg == '\0') {
        smtpd_reply(s, 501, "5.5.4 Syntax: VRFY address");
        return;
    }
    /* never tells whether a user exists */
    smtpd_reply(s, 252, "2.0.0 Send some mail, I'll try my best");
    s->oks[CMD_VRFY]++;
}

static void cmd_help(struct smtpd_session *s, char *arg)
{
    smtpd_reply(s, 214, "2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT");
    s->oks[CMD_HELP]++;
}

/* Commands allowed before STARTTLS when TLS is required. */
static bool tls_may_skip(enum smtpd_cmd_id id)
{
    return id == CMD_EHLO || id == CMD_HELO || id == CMD_STARTTLS || id == CMD_NOOP
           || id == CMD_RSET || id == CMD_QUIT;
}

/* Commands that move no mail: past smtpd_junk_command_limit the session ends. */
static bool is_junk(enum smtpd_cmd_id id)
{
    return id == CMD_NOOP || id == CMD_RSET || id == CMD_VRFY || id == CMD_HELP;
}

struct cmd_entry {
    const char *name;
    enum smtpd_cmd_id id;
    void (*fn)(struct smtpd_session *s, char *arg);
};

static const struct cmd_entry commands[] = {
    { "HELO", CMD_HELO, cmd_helo },
    { "EHLO", CMD_EHLO, cmd_ehlo },
    { "STARTTLS", CMD_STARTTLS, smtpd_cmd_starttls },
    { "AUTH", CMD_AUTH, smtpd_cmd_auth },
    { "MAIL", CMD_MAIL, cmd_mail },
    { "RCPT", CMD_RCPT, smtpd_cmd_rcpt },
    { "DATA", CMD_DATA, smtpd_cmd_data },
    { "BDAT", CMD_BDAT, smtpd_cmd_bdat },
    { "RSET", CMD_RSET, cmd_rset },
    { "NOOP", CMD_NOOP, cmd_noop },
    { "VRFY", CMD_VRFY, cmd_vrfy },
    { "HELP", CMD_HELP, cmd_help },
    { "QUIT", CMD_QUIT, cmd_quit },
};

void smtpd_command(struct smtpd_session *s, char *line)
{
    size_t n = 0;
    char *arg;

    while (*line == ' ')
        line++;
    while (line[n] != '\0' && line[n] != ' ')
        n++;
    arg = line + n;
    while (*arg == ' ')
        arg++;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strlen(commands[i].name) == n && strncasecmp(line, commands[i].name, n) == 0) {
            s->counts[commands[i].id]++;
            s->lost_after = commands[i].name;
            if (!tls_may_skip(commands[i].id) && s->cf->tls_level == SMTPD_TLS_ENCRYPT
                && !s->tls) {
                smtpd_reply(s, 530, "5.7.0 Must issue a STARTTLS command first");
                return;
            }
            /* A repeated HELO/EHLO (not the one after STARTTLS, which forgets the
             * first) moves no mail either: a client cannot idle on it for ever. */
            bool again = (commands[i].id == CMD_EHLO || commands[i].id == CMD_HELO)
                         && s->helo.len > 0;
            if ((is_junk(commands[i].id) || again) && !smtpd_junk(s))
                return;
            /* Without PIPELINING offered (no EHLO yet, or HELO), a client waits for
             * each reply; input already there means it does not (RFC 2920).  EHLO,
             * whose reply offers PIPELINING, may be followed at once; QUIT by the
             * client's close; BDAT by its chunk. */
            if (s->cf->forbid_unauth_pipelining && !s->esmtp && commands[i].id != CMD_EHLO
                && commands[i].id != CMD_QUIT && commands[i].id != CMD_BDAT
                && smtpd_input_waiting(s, 0)) {
                smtpd_improper_pipelining(s, commands[i].name);
                return;
            }
            commands[i].fn(s, arg);
            return;
        }
    }
    s->counts[CMD_UNKNOWN]++;
    s->lost_after = "UNKNOWN";
    if (smtpd_junk(s))
        smtpd_reply(s, 500, "5.5.2 Error: command not recognized");
}
