/* Folder commands of the authenticated state (RFC 3501 6.3.3-6.3.11; RFC 6154
 * SPECIAL-USE and RFC 3348 CHILDREN attributes in LIST; RFC 4315 APPENDUID): CREATE,
 * DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS and APPEND, over the
 * store's folders (store_folder.h), whose name rules keep every name inside the
 * Maildir.  Names and message data come from the client. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imapd.h"
#include "log.h"
#include "session.h"
#include "store.h"
#include "store_folder.h"
#include "stream.h"

#define IMAP_LIST_MAX 100000        /* folders in one LIST answer */

bool imap_p_mailbox(struct imap_session *s, struct imap_parser *ip, struct str *name)
{
    struct str err = STR_INIT;
    bool ok;

    if (!imap_p_astring(ip, name)) {
        imap_bad(&s->c, "Mailbox name expected");
        return false;
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

/* Reports a store error as NO: what does not exist, what is refused, what failed. */
static void folder_no(struct imap_session *s, const char *what, const struct str *err, int e)
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

static void cmd_create(struct imap_session *s, struct imap_parser *ip)
{
    struct str name = STR_INIT, err = STR_INIT;
    int r;

    if (!imap_p_sp(ip) || !imap_p_mailbox(s, ip, &name))
        goto out;
    /* a trailing separator only says the client means a parent (RFC 3501 6.3.3) */
    if (!imap_p_eol(ip)) {
        imap_bad(&s->c, "Unexpected arguments");
        goto out;
    }
    if (strcmp(name.s, "INBOX") == 0) {
        imap_no(&s->c, "[ALREADYEXISTS] INBOX always exists");
        goto out;
    }
    r = store_folder_create(IMAP_MAILDIR, name.s, &err);
    if (r < 0)
        folder_no(s, "CREATE", &err, errno);
    else if (r == 1)
        imap_no(&s->c, "[ALREADYEXISTS] Mailbox exists");
    else
        imap_ok(&s->c, "CREATE completed");
out:
    str_free(&name);
    str_free(&err);
}

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
    if (store_folder_delete(IMAP_MAILDIR, name.s, &err) < 0)
        folder_no(s, "DELETE", &err, errno);
    else
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
        folder_no(s, "RENAME", &err, errno);
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
        folder_no(s, on ? "SUBSCRIBE" : "UNSUBSCRIBE", &err, errno);
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

static void list_common(struct imap_session *s, struct imap_parser *ip, bool lsub)
{
    struct str ref = STR_INIT, pat = STR_INIT, full = STR_INIT, err = STR_INIT;
    struct store_list l = { NULL, 0, 0 };
    const char *what = lsub ? "LSUB" : "LIST";

    if (!imap_p_sp(ip) || !imap_p_astring(ip, &ref) || !imap_p_sp(ip)
        || !imap_p_list_mailbox(ip, &pat) || !imap_p_eol(ip)) {
        imap_bad(&s->c, "%s needs a reference and a pattern", what);
        goto out;
    }
    if (pat.len == 0) {
        if (!lsub)
            stream_puts(s->c.st, "* LIST (\\Noselect) \".\" \"\"\r\n");
        imap_ok(&s->c, "%s completed", what);
        goto out;
    }
    str_set(&full, ref.s, ref.len);
    str_append(&full, pat.s, pat.len);
    if (store_folder_list(IMAP_MAILDIR, full.s, lsub, IMAP_LIST_MAX, &l, &err) < 0) {
        log_warn("user=<%s>: %s: %s", s->c.user, what, err.s);
        imap_no(&s->c, "[SERVERBUG] %s failed", what);
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        unsigned a = l.v[i].attrs;
        bool first = true;

        stream_printf(s->c.st, "* %s (", what);
        if (a & (STORE_LIST_NOSELECT | STORE_LIST_NONEXISTENT)) {
            stream_puts(s->c.st, "\\Noselect");
            first = false;
        }
        if (!lsub && (a & (STORE_LIST_HASCHILDREN | STORE_LIST_HASNOCHILDREN))) {
            stream_printf(s->c.st, "%s%s", first ? "" : " ",
                          a & STORE_LIST_HASCHILDREN ? "\\HasChildren" : "\\HasNoChildren");
            first = false;
        }
        if (!lsub && (a & STORE_LIST_SPECIAL_MASK)) {
            const char *u = store_special_use_name(a & STORE_LIST_SPECIAL_MASK);
            if (u != NULL)
                stream_printf(s->c.st, "%s%s", first ? "" : " ", u);
        }
        stream_puts(s->c.st, ") \".\" ");
        imap_put_string(s->c.st, l.v[i].name, strlen(l.v[i].name));
        stream_puts(s->c.st, "\r\n");
    }
    imap_ok(&s->c, "%s completed", what);
out:
    store_list_free(&l);
    str_free(&ref);
    str_free(&pat);
    str_free(&full);
    str_free(&err);
}

static void cmd_list(struct imap_session *s, struct imap_parser *ip)
{
    list_common(s, ip, false);
}

static void cmd_lsub(struct imap_session *s, struct imap_parser *ip)
{
    list_common(s, ip, true);
}

#define ST_MESSAGES 0x1
#define ST_RECENT 0x2
#define ST_UIDNEXT 0x4
#define ST_UIDVALIDITY 0x8
#define ST_UNSEEN 0x10

static void cmd_status(struct imap_session *s, struct imap_parser *ip)
{
    static const char *const names[] = { "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY",
                                         "UNSEEN" };
    struct str name = STR_INIT, item = STR_INIT, path = STR_INIT, err = STR_INIT;
    struct store_box *b = NULL;
    unsigned want = 0;
    size_t n, recent = 0, unseen = 0;
    bool first = true;

    if (!imap_p_sp(ip) || !imap_p_mailbox(s, ip, &name))
        goto out;
    if (!imap_p_sp(ip) || !imap_p_char(ip, '(')) {
        imap_bad(&s->c, "STATUS needs a list of items");
        goto out;
    }
    do {
        unsigned i;
        if (!imap_p_atom(ip, &item, 16)) {
            imap_bad(&s->c, "Invalid STATUS item");
            goto out;
        }
        for (i = 0; i < 5 && strcasecmp(item.s, names[i]) != 0; i++)
            ;
        if (i == 5) {
            imap_bad(&s->c, "Unknown STATUS item");
            goto out;
        }
        want |= 1u << i;
    } while (imap_p_sp(ip));
    if (!imap_p_char(ip, ')') || !imap_p_eol(ip)) {
        imap_bad(&s->c, "Invalid STATUS arguments");
        goto out;
    }
    if (!imap_folder_path(s, name.s, &path))
        goto out;
    if (store_open(path.s, STORE_RDONLY, IMAP_FOLDER_MSGS_MAX, &b, &err) < 0) {
        b = NULL;
        folder_no(s, "STATUS", &err, errno);
        goto out;
    }
    n = store_count(b);
    for (size_t i = 0; i < n; i++) {
        const struct store_msg *m = store_msg(b, i);
        if (m->flags & STORE_F_RECENT)
            recent++;
        if (!(m->flags & STORE_F_SEEN))
            unseen++;
    }
    stream_puts(s->c.st, "* STATUS ");
    imap_put_string(s->c.st, name.s, name.len);
    stream_puts(s->c.st, " (");
    for (unsigned i = 0; i < 5; i++) {
        unsigned long long v;
        if (!(want & (1u << i)))
            continue;
        v = i == 0 ? n : i == 1 ? recent : i == 2 ? store_uidnext(b)
            : i == 3 ? store_uidvalidity(b) : unseen;
        stream_printf(s->c.st, "%s%s %llu", first ? "" : " ", names[i], v);
        first = false;
    }
    stream_puts(s->c.st, ")\r\n");
    imap_ok(&s->c, "STATUS completed");
out:
    if (b != NULL)
        store_close(b);
    str_free(&name);
    str_free(&item);
    str_free(&path);
    str_free(&err);
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
    if (!(imap_p_peek(ip, '{') || imap_p_peek(ip, '~')) || !imap_p_string8(ip, &msg)
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
    { "LIST", cmd_list, 0 },
    { "LSUB", cmd_lsub, 0 },
    { "STATUS", cmd_status, 0 },
    { "APPEND", cmd_append, 0 },
};
const size_t imap_mailbox_ncommands = sizeof(imap_mailbox_commands)
                                      / sizeof(imap_mailbox_commands[0]);
