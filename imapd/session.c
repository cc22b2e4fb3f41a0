/* The authenticated and selected states (RFC 3501 6.3-6.4) in a process that already
 * runs as the mailbox owner with the Maildir as its working directory (and root, when
 * started by root): a session's start and end, the commands valid in any state after
 * login, and the dispatch to the folder commands (select.c, mailbox.c).  The reading
 * of commands is mux_read.c's, for mux.c.  Commands are untrusted. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth_clnt.h"
#include "imapd.h"
#include "log.h"
#include "login.h"
#include "server.h"
#include "session.h"
#include "store_folder.h"
#include "stream.h"
#include "xmalloc.h"

static void cmd_capability(struct imap_session *s, struct imap_parser *ip)
{
    struct str capa = STR_INIT;

    (void)ip;
    imap_capa_session(&capa);
    stream_printf(s->c.st, "* CAPABILITY %s\r\n", capa.s);
    imap_ok(&s->c, "CAPABILITY completed");
    str_free(&capa);
}

static void cmd_noop(struct imap_session *s, struct imap_parser *ip)
{
    (void)ip;
    imap_report_changes(s, true);
    imap_ok(&s->c, "NOOP completed");
}

static void cmd_logout(struct imap_session *s, struct imap_parser *ip)
{
    (void)ip;
    stream_puts(s->c.st, "* BYE Logging out\r\n");
    imap_ok(&s->c, "LOGOUT completed");
    s->logout = true;
    s->c.closing = true;
}

static void cmd_id(struct imap_session *s, struct imap_parser *ip)
{
    imap_cmd_id(&s->c, ip);
}

/* ENABLE (RFC 5161): the extensions that change what the server says, each a bit in
 * s->enabled: UTF8=ACCEPT and IMAP4rev2 here, CONDSTORE and QRESYNC in condstore.c;
 * other names are checked for form and left alone.  Nothing is enabled unless the
 * whole command is valid.  "* ENABLED" names only what this command turned on. */
#define ENABLE_NAMES_MAX 16
#define ENABLE_NAME_MAX 64

static const struct {
    const char *name;
    unsigned bit;
} enables[] = {
    { "UTF8=ACCEPT", IMAP_EN_UTF8 },
    { "IMAP4rev2", IMAP_EN_REV2 },
};

static bool enable_one(struct imap_session *s, const char *name)
{
    for (size_t i = 0; i < sizeof(enables) / sizeof(enables[0]); i++) {
        if (strcasecmp(name, enables[i].name) == 0) {
            if (s->enabled & enables[i].bit)
                return false;
            s->enabled |= enables[i].bit;
            return true;
        }
    }
    return imap_ext_enable(s, name);
}

static void cmd_enable(struct imap_session *s, struct imap_parser *ip)
{
    struct str names[ENABLE_NAMES_MAX], done = STR_INIT;
    int n = 0;
    bool ok = true;

    while (ok && imap_p_sp(ip)) {
        if (n == ENABLE_NAMES_MAX) {
            ok = false;
            break;
        }
        str_init(&names[n]);
        ok = imap_p_atom(ip, &names[n], ENABLE_NAME_MAX);
        n++;
    }
    if (!ok || n == 0 || !imap_p_eol(ip)) {
        imap_bad(&s->c, "ENABLE needs up to %d capability names", ENABLE_NAMES_MAX);
    } else {
        for (int i = 0; i < n; i++) {
            if (enable_one(s, names[i].s)) {
                str_appendc(&done, ' ');
                str_appends(&done, names[i].s);
            }
        }
        stream_printf(s->c.st, "* ENABLED%s\r\n", done.len > 0 ? done.s : "");
        if (done.len > 0)
            log_info("enable: user=<%s>:%s", s->c.user, done.s);
        imap_ok(&s->c, "ENABLE completed");
    }
    for (int i = 0; i < n; i++)
        str_free(&names[i]);
    str_free(&done);
}

/* NAMESPACE (RFC 2342): one personal namespace, "" with "." as the hierarchy
 * separator (Maildir++), no others. */
static void cmd_namespace(struct imap_session *s, struct imap_parser *ip)
{
    (void)ip;
    stream_puts(s->c.st, "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
    imap_ok(&s->c, "NAMESPACE completed");
}

static void cmd_already(struct imap_session *s, struct imap_parser *ip)
{
    (void)ip;
    imap_bad(&s->c, "Already logged in");
}

static const struct imap_command commands[] = {
    { "CAPABILITY", cmd_capability, IMAP_CMD_NOARGS },
    { "NOOP", cmd_noop, IMAP_CMD_NOARGS },
    { "LOGOUT", cmd_logout, IMAP_CMD_NOARGS },
    { "ID", cmd_id, 0 },
    { "ENABLE", cmd_enable, 0 },
    { "NAMESPACE", cmd_namespace, IMAP_CMD_NOARGS },
    { "COMPRESS", imap_cmd_compress, 0 },
    { "LOGIN", cmd_already, 0 },
    { "AUTHENTICATE", cmd_already, 0 },
    { "STARTTLS", cmd_already, 0 },
};

static const struct imap_command *find(const struct imap_command *t, size_t n,
                                       const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

void imap_session_command(struct imap_session *s, const struct str *cmd)
{
    struct imap_parser ip;
    struct str tag = STR_INIT, name = STR_INIT;
    const struct imap_command *c;

    imap_parser_init(&ip, cmd);
    if (!imap_p_tag(&ip, &tag) || !imap_p_sp(&ip) || !imap_p_atom(&ip, &name, 32)) {
        imap_bad(&s->c, "Invalid tag or command");
        goto out;
    }
    c = find(commands, sizeof(commands) / sizeof(commands[0]), name.s);
    if (c == NULL)
        c = imap_mailbox_command(name.s);
    if (c == NULL) {
        imap_bad(&s->c, "Unknown command");
    } else if ((c->flags & IMAP_CMD_NOARGS) && !imap_p_eol(&ip)) {
        imap_bad(&s->c, "%s takes no arguments", c->name);
    } else if ((c->flags & IMAP_CMD_SELECTED) && s->box == NULL) {
        imap_bad(&s->c, "%s needs a selected mailbox", c->name);
    } else {
        c->fn(s, &ip);
    }
out:
    str_free(&tag);
    str_free(&name);
}

/* A Maildir IMAP has never seen (no subscriptions file yet) gets the special-use
 * folders Drafts, Sent, Trash, Junk and Archive, subscribed. */
static void first_login(struct imap_session *s)
{
    struct str err = STR_INIT;

    if (access(IMAP_MAILDIR "/subscriptions", F_OK) == 0 || errno != ENOENT)
        return;
    if (store_folders_init(IMAP_MAILDIR, &err) < 0)
        log_warn("user=<%s>: making the special-use folders: %s", s->c.user, err.s);
    else
        log_info("user=<%s>: special-use folders made", s->c.user);
    str_free(&err);
}

struct imap_session *imap_session_start(struct login_handoff *h, const struct auth_result *who)
{
    struct imap_session *s = xcalloc(1, sizeof(*s));

    s->own_client = xstrdup(h->client.len > 0 ? h->client.s : "unknown");
    s->own_user = xstrdup(who->user.s);
    s->c.client = s->own_client;
    s->c.user = s->own_user;
    s->c.st = login_stream(h);
    log_info("session: user=<%s>, client=[%s]%s", s->c.user, s->c.client,
             h->tls ? ", tls" : "");
    first_login(s);
    return s;
}

void imap_session_end(struct imap_session *s, const char *how)
{
    if (server_stop && !s->c.closing)
        stream_puts(s->c.st, "* BYE Server shutting down\r\n");
    log_info("logout: user=<%s>, client=[%s], %s", s->c.user, s->c.client,
             s->logout ? "logout" : how);
    imap_fetch_cache_done(s);
    imap_unselect(s);
    free(s->view);
    free(s->exp_pending);
    free(s->saved);
    str_free(&s->box_name);
    (void)stream_flush_nowait(s->c.st);
    stream_close(s->c.st);
    free(s->own_client);
    free(s->own_user);
    free(s);
}
