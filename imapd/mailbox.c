/* Folder commands of the authenticated state (RFC 3501 6.3.3-6.3.11): CREATE (with
 * RFC 6154 CREATE-SPECIAL-USE), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE and APPEND
 * (RFC 4315 APPENDUID, RFC 6855 UTF8 literals), over the store's folders
 * (store_folder.h), whose name rules keep every name inside the Maildir; folder names
 * on the wire (modified UTF-7, or UTF-8 after ENABLE UTF8=ACCEPT or IMAP4rev2).  LIST,
 * LSUB and STATUS are in list.c and status.c.  Names and message data come from the
 * client. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imapd.h"
#include "log.h"
#include "mutf7.h"
#include "session.h"
#include "store.h"
#include "store_folder.h"
#include "stream.h"

bool imap_p_mailbox(struct imap_session *s, struct imap_parser *ip, struct str *name)
{
    struct str err = STR_INIT;
    bool ok;

    if (!imap_p_astring(ip, name)) {
        imap_bad(&s->c, "Mailbox name expected");
        return false;
    }
    if (IMAP_UTF8_NAMES(s)) {
        /* RFC 6855 3: UTF-8 on the wire, the store's modified UTF-7 on disk */
        struct str m = STR_INIT;

        if (utf8_to_mutf7(name->s, name->len, &m) < 0) {
            str_free(&m);
            imap_no(&s->c, "[CANNOT] Invalid mailbox name: not UTF-8");
            return false;
        }
        str_set(name, m.s, m.len);
        str_free(&m);
    }
    if (store_name_is_inbox(name->s))
        str_sets(name, "INBOX");
    ok = store_name_check(name->s, &err) == 0;
    if (!ok)
        imap_no(&s->c, "[CANNOT] Invalid mailbox name: %s", err.s);
    str_free(&err);
    return ok;
}

bool imap_folder_path(struct imap_session *s, const char *name, struct str *path)
{
    struct str err = STR_INIT;
    bool ok = store_folder_path(IMAP_MAILDIR, name, path, &err) == 0;

    if (!ok)
        imap_no(&s->c, "[CANNOT] %s", err.s);
    str_free(&err);
    return ok;
}

void imap_folder_no(struct imap_session *s, const char *what, const struct str *err, int e)
{
    if (e == ENOENT) {
        imap_no(&s->c, "[NONEXISTENT] %s: %s", what, err->s ? err->s : "no such mailbox");
    } else if (e == EEXIST) {
        imap_no(&s->c, "[ALREADYEXISTS] %s: %s", what, err->s ? err->s : "mailbox exists");
    } else {
        log_warn("user=<%s>: %s: %s", s->c.user, what, err->s ? err->s : "failed");
        imap_no(&s->c, "[CANNOT] %s: %s", what, err->s ? err->s : "failed");
    }
}

void imap_put_mailbox(struct imap_session *s, const char *name)
{
    struct str u = STR_INIT;

    if (!IMAP_UTF8_NAMES(s) || mutf7_to_utf8(name, strlen(name), &u) < 0) {
        imap_put_string(s->c.st, name, strlen(name));
    } else {
        /* a quoted string with UTF-8 in it (RFC 6855 3, RFC 9051 4.3): the store's
         * names hold no CR, LF or NUL */
        stream_puts(s->c.st, "\"");
        for (size_t i = 0; i < u.len; i++) {
            if (u.s[i] == '"' || u.s[i] == '\\')
                stream_write(s->c.st, "\\", 1);
            stream_write(s->c.st, u.s + i, 1);
        }
        stream_puts(s->c.st, "\"");
    }
    str_free(&u);
}

/* One mailbox argument and the end of the command. */
static bool one_mailbox(struct imap_session *s, struct imap_parser *ip, struct str *name)
{
    if (!imap_p_sp(ip) || !imap_p_mailbox(s, ip, name))
        return false;
    if (!imap_p_eol(ip)) {
        imap_bad(&s->c, "Unexpected arguments");
        return false;
    }
    return true;
}

/* CREATE-SPECIAL-USE (RFC 6154 3): " (USE (\\Sent ...))" after the name.  *use gets
 * the one special use named (0 for none); false with BAD or NO [USEATTR] sent. */
static bool create_params(struct imap_session *s, struct imap_parser *ip, unsigned *use)
{
    struct str w = STR_INIT;
    bool ok = false;
    int n = 0;

    *use = 0;
    if (!imap_p_sp(ip) || !imap_p_char(ip, '(') || !imap_p_atom(ip, &w, 16)
        || strcasecmp(w.s, "USE") != 0 || !imap_p_sp(ip) || !imap_p_char(ip, '(')) {
        imap_bad(&s->c, "CREATE takes only (USE (attributes))");
        goto out;
    }
    while (!imap_p_char(ip, ')')) {
        unsigned bit = 0;

        if ((n++ > 0 && !imap_p_sp(ip)) || !imap_p_char(ip, '\\')
            || !imap_p_atom(ip, &w, 32)) {
            imap_bad(&s->c, "Invalid special-use attribute list");
            goto out;
        }
        for (unsigned b = STORE_LIST_DRAFTS; b & STORE_LIST_SPECIAL_MASK; b <<= 1) {
            const char *u = store_special_use_name(b);
            if (u != NULL && strcasecmp(u + 1, w.s) == 0)
                bit = b;
        }
        if (bit == 0) {
            imap_no(&s->c, "[USEATTR] \\%s is not a special use this server keeps", w.s);
            goto out;
        }
        if (*use != 0 && *use != bit) {
            imap_no(&s->c, "[USEATTR] One special use per mailbox");
            goto out;
        }
        *use = bit;
    }
    if (!imap_p_char(ip, ')') || !imap_p_eol(ip)) {
        imap_bad(&s->c, "Unexpected arguments");
        goto out;
    }
    ok = true;
out:
    str_free(&w);
    return ok;
}

static void cmd_create(struct imap_session *s, struct imap_parser *ip)
{
    struct str name = STR_INIT, err = STR_INIT;
    unsigned use = 0;
    int r;

    if (!imap_p_sp(ip) || !imap_p_mailbox(s, ip, &name))
        goto out;
    if (!imap_p_eol(ip) && !create_params(s, ip, &use))
        goto out;
    if (strcmp(name.s, "INBOX") == 0) {
        imap_no(&s->c, "[ALREADYEXISTS] INBOX always exists");
        goto out;
    }
    r = store_folder_create(IMAP_MAILDIR, name.s, &err);
    if (r < 0) {
        imap_folder_no(s, "CREATE", &err, errno);
    } else if (r == 1) {
        imap_no(&s->c, "[ALREADYEXISTS] Mailbox exists");
    } else if (use != 0 && store_special_use_set(IMAP_MAILDIR, name.s, use, &err) < 0) {
        /* RFC 6154 3: the mailbox is not created when its use cannot be kept */
        struct str err2 = STR_INIT;

        log_warn("user=<%s>: special use of %s: %s", s->c.user, name.s, err.s);
        if (store_folder_delete(IMAP_MAILDIR, name.s, &err2) < 0)
            log_warn("user=<%s>: removing %s again: %s", s->c.user, name.s, err2.s);
        str_free(&err2);
        imap_no(&s->c, "[SERVERBUG] Cannot record the special use");
    } else {
        if (use != 0)
            log_info("create: user=<%s>, mailbox=%s, use=%s", s->c.user, name.s,
                     store_special_use_name(use));
        imap_ok(&s->c, "CREATE completed");
    }
out:
    str_free(&name);
    str_free(&err);
}

/* Whether the folder has a child folder (one with a directory, or a \Noselect
 * parent of one).  Names hold no wildcard (store_name_check), so "name.%" matches
 * the children only. */
static bool has_children(const char *name)
{
    struct str pat = STR_INIT, err = STR_INIT;
    struct store_list l = { NULL, 0, 0 };
    bool yes;

    str_printf(&pat, "%s%c%%", name, STORE_SEP);
    yes = store_folder_list(IMAP_MAILDIR, pat.s, false, 0, &l, &err) == 0 && l.n > 0;
    store_list_free(&l);
    str_free(&pat);
    str_free(&err);
    return yes;
}

/* DELETE (RFC 9051 6.3.4): a folder with children loses its messages and directory
 * and lists as \Noselect from then on, as RFC 3501 allows; deleting a \Noselect
 * name that has children is an error, NO [HASCHILDREN]. */
static void cmd_delete(struct imap_session *s, struct imap_parser *ip)
{
    struct str name = STR_INIT, err = STR_INIT;

    if (!one_mailbox(s, ip, &name))
        goto out;
    if (strcmp(name.s, "INBOX") == 0) {
        imap_no(&s->c, "[CANNOT] INBOX cannot be deleted");
        goto out;
    }
    if (s->box != NULL && strcmp(s->box_name.s, name.s) == 0) {
        imap_unselect(s);
        stream_puts(s->c.st, "* OK [CLOSED] Mailbox deleted\r\n");
    }
    if (store_folder_delete(IMAP_MAILDIR, name.s, &err) < 0) {
        int e = errno;
        if (e == ENOENT && has_children(name.s))
            imap_no(&s->c, "[HASCHILDREN] Name has child folders and is not a mailbox");
        else
            imap_folder_no(s, "DELETE", &err, e);
    } else
        imap_ok(&s->c, "DELETE completed");
out:
    str_free(&name);
    str_free(&err);
}

static void cmd_rename(struct imap_session *s, struct imap_parser *ip)
{
    struct str from = STR_INIT, to = STR_INIT, err = STR_INIT;

    if (!imap_p_sp(ip) || !imap_p_mailbox(s, ip, &from) || !imap_p_sp(ip)
        || !imap_p_mailbox(s, ip, &to))
        goto out;
    if (!imap_p_eol(ip)) {
        imap_bad(&s->c, "Unexpected arguments");
        goto out;
    }
    if (strcmp(to.s, "INBOX") == 0) {
        imap_no(&s->c, "[ALREADYEXISTS] INBOX always exists");
        goto out;
    }
    if (s->box != NULL && strcmp(s->box_name.s, from.s) == 0) {
        imap_unselect(s);
        stream_puts(s->c.st, "* OK [CLOSED] Mailbox renamed\r\n");
    }
    if (store_folder_rename(IMAP_MAILDIR, from.s, to.s, &err) < 0)
        imap_folder_no(s, "RENAME", &err, errno);
    else
        imap_ok(&s->c, "RENAME completed");
out:
    str_free(&from);
    str_free(&to);
    str_free(&err);
}

static void subscribe(struct imap_session *s, struct imap_parser *ip, bool on)
{
    struct str name = STR_INIT, err = STR_INIT;

    if (!one_mailbox(s, ip, &name))
        goto out;
    if (store_subscribe(IMAP_MAILDIR, name.s, on, &err) < 0)
        imap_folder_no(s, on ? "SUBSCRIBE" : "UNSUBSCRIBE", &err, errno);
    else
        imap_ok(&s->c, "%s completed", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
out:
    str_free(&name);
    str_free(&err);
}

static void cmd_subscribe(struct imap_session *s, struct imap_parser *ip)
{
    subscribe(s, ip, true);
}

static void cmd_unsubscribe(struct imap_session *s, struct imap_parser *ip)
{
    subscribe(s, ip, false);
}

/* date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be " d"). */
static bool parse_date_time(const char *s, size_t len, time_t *out)
{
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                       "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    char m[4];
    int d, y, hh, mm, ss, z, k;
    char sign;
    time_t t;

    if (len != 26)
        return false;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%2d-%3s-%4d %2d:%2d:%2d %c%4d", &d, m, &y, &hh, &mm, &ss, &sign, &z) != 8
        || (sign != '+' && sign != '-') || d < 1 || d > 31 || y < 1970 || y > 9999
        || hh > 23 || mm > 59 || ss > 60 || hh < 0 || mm < 0 || ss < 0 || z < 0
        || z % 100 > 59 || z > 2400)
        return false;
    for (k = 0; k < 12 && strcasecmp(m, mon[k]) != 0; k++)
        ;
    if (k == 12)
        return false;
    tm.tm_mday = d;
    tm.tm_mon = k;
    tm.tm_year = y - 1900;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    t -= (sign == '+' ? 1 : -1) * ((z / 100) * 3600 + (z % 100) * 60);
    *out = t;
    return true;
}

static void cmd_append(struct imap_session *s, struct imap_parser *ip)
{
    struct str name = STR_INIT, path = STR_INIT, err = STR_INIT, date = STR_INIT,
               msg = STR_INIT;
    struct store_box *b = NULL;
    struct store_append *a = NULL;
    unsigned flags = 0;
    uint32_t keywords = 0, uid = 0;
    time_t when = 0;
    const char *why;

    if (!imap_p_sp(ip) || !imap_p_mailbox(s, ip, &name))
        goto out;
    if (!imap_p_sp(ip)) {
        imap_bad(&s->c, "APPEND needs a message");
        goto out;
    }
    if (!imap_folder_path(s, name.s, &path))
        goto out;
    if (store_open(path.s, 0, 0, &b, &err) < 0) {
        b = NULL;
        imap_no(&s->c, "[TRYCREATE] No such mailbox");
        goto out;
    }
    if (imap_p_peek(ip, '(')) {
        if (!imap_p_flags(b, ip, false, true, &flags, &keywords, &why) || !imap_p_sp(ip)) {
            imap_bad(&s->c, "%s", why);
            goto out;
        }
    }
    if (imap_p_peek(ip, '"')) {
        if (!imap_p_string(ip, &date) || !parse_date_time(date.s, date.len, &when)
            || !imap_p_sp(ip)) {
            imap_bad(&s->c, "Invalid date-time");
            goto out;
        }
    }
    if (ip->end - ip->p > 7 && strncasecmp(ip->p, "UTF8 (~{", 8) == 0) {
        /* RFC 6855 4: "UTF8 (" literal8 ")", a message with UTF-8 headers */
        if (!(s->enabled & IMAP_EN_UTF8)) {
            imap_bad(&s->c, "UTF8 needs ENABLE UTF8=ACCEPT");
            goto out;
        }
        ip->p += 6;                 /* to the literal8's "~" */
        if (!imap_p_string8(ip, &msg) || !imap_p_char(ip, ')') || !imap_p_eol(ip)) {
            imap_bad(&s->c, "APPEND UTF8 needs the message as a literal8");
            goto out;
        }
    } else if (!(imap_p_peek(ip, '{') || imap_p_peek(ip, '~')) || !imap_p_string8(ip, &msg)
               || !imap_p_eol(ip)) {
        imap_bad(&s->c, "APPEND needs the message as a literal");
        goto out;
    }
    if (msg.len == 0) {
        imap_no(&s->c, "Empty message");
        goto out;
    }
    if (store_append_begin(b, imap_cf.append_limit, &a, &err) < 0
        || store_append_write(a, msg.s, msg.len, &err) < 0
        || store_append_commit(a, flags, keywords, when, &uid, &err) < 0) {
        bool big = errno == EFBIG;
        log_warn("user=<%s>: append to %s: %s", s->c.user, name.s, err.s);
        if (big)
            imap_no(&s->c, "[TOOBIG] Message too large");
        else
            imap_no(&s->c, "[SERVERBUG] APPEND failed");
        goto out;
    }
    log_info("append: user=<%s>, mailbox=%s, uid=%u, size=%zu", s->c.user, name.s, uid,
             msg.len);
    imap_report_changes(s, true);
    imap_ok(&s->c, "[APPENDUID %u %u] APPEND completed", store_uidvalidity(b), uid);
out:
    if (b != NULL)
        store_close(b);
    str_free(&name);
    str_free(&path);
    str_free(&err);
    str_free(&date);
    str_free(&msg);
}

const struct imap_command imap_mailbox_commands[] = {
    { "CREATE", cmd_create, 0 },
    { "DELETE", cmd_delete, 0 },
    { "RENAME", cmd_rename, 0 },
    { "SUBSCRIBE", cmd_subscribe, 0 },
    { "UNSUBSCRIBE", cmd_unsubscribe, 0 },
    { "LIST", imap_cmd_list, 0 },
    { "LSUB", imap_cmd_lsub, 0 },
    { "STATUS", imap_cmd_status, 0 },
    { "APPEND", cmd_append, 0 },
};
const size_t imap_mailbox_ncommands = sizeof(imap_mailbox_commands)
                                      / sizeof(imap_mailbox_commands[0]);
