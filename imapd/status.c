/* STATUS (RFC 3501 6.3.10) with the items of later RFCs: SIZE (RFC 8438, the sum of
 * the messages' RFC822.SIZE), DELETED (RFC 9051, messages with \Deleted) and
 * APPENDLIMIT (RFC 7889, the server-wide message_size_limit, NIL for none) and
 * HIGHESTMODSEQ (RFC 7162, which also enables CONDSTORE); the same
 * answer serves LIST-STATUS (list.c).  The folder is opened read-only through the
 * store; names and items come from the client. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "imapd.h"
#include "log.h"
#include "session.h"
#include "store.h"
#include "store_folder.h"
#include "stream.h"

enum {
    ST_MESSAGES, ST_RECENT, ST_UIDNEXT, ST_UIDVALIDITY, ST_UNSEEN, ST_DELETED, ST_SIZE,
    ST_APPENDLIMIT, ST_HIGHESTMODSEQ, ST_N
};

static const char *const items[ST_N] = {
    "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE",
    "APPENDLIMIT", "HIGHESTMODSEQ",
};

bool imap_p_status_items(struct imap_parser *ip, bool rev2, unsigned *want, const char **why)
{
    struct str item = STR_INIT;
    bool ok = true;

    *want = 0;
    if (!imap_p_char(ip, '(')) {
        *why = "STATUS needs a list of items";
        return false;
    }
    do {
        unsigned i;

        if (!imap_p_atom(ip, &item, 16)) {
            *why = "Invalid STATUS item";
            ok = false;
            break;
        }
        for (i = 0; i < ST_N && strcasecmp(item.s, items[i]) != 0; i++)
            ;
        if (i == ST_N) {
            *why = "Unknown STATUS item";
            ok = false;
            break;
        }
        if (i == ST_RECENT && rev2) {
            *why = "RECENT is not an IMAP4rev2 STATUS item";    /* RFC 9051 has no \Recent */
            ok = false;
            break;
        }
        *want |= 1u << i;
    } while (imap_p_sp(ip));
    if (ok && !imap_p_char(ip, ')')) {
        *why = "Invalid STATUS arguments";
        ok = false;
    }
    str_free(&item);
    return ok;
}

int imap_status_put(struct imap_session *s, const char *name, unsigned want, struct str *err)
{
    struct str path = STR_INIT;
    struct store_box *b = NULL;
    unsigned long long v[ST_N] = { 0 };
    const char *sep = "";
    size_t n;

    if (store_folder_path(IMAP_MAILDIR, name, &path, err) < 0) {
        str_free(&path);
        errno = EINVAL;
        return -1;
    }
    if (store_open(path.s, STORE_RDONLY, IMAP_FOLDER_MSGS_MAX, &b, err) < 0) {
        int e = errno;

        str_free(&path);
        errno = e;
        return -1;
    }
    str_free(&path);
    if (want & (1u << ST_HIGHESTMODSEQ))
        imap_condstore_on(s);
    n = store_count(b);
    v[ST_MESSAGES] = n;
    v[ST_UIDNEXT] = store_uidnext(b);
    v[ST_UIDVALIDITY] = store_uidvalidity(b);
    v[ST_HIGHESTMODSEQ] = store_highestmodseq(b);
    for (size_t i = 0; i < n; i++) {
        const struct store_msg *m = store_msg(b, i);

        v[ST_RECENT] += store_recent(b, m->uid);
        v[ST_UNSEEN] += !(m->flags & STORE_F_SEEN);
        v[ST_DELETED] += (m->flags & STORE_F_DELETED) != 0;
        if ((want & (1u << ST_SIZE)) && m->size == 0)
            (void)store_stat(b, i);     /* a message gone meanwhile counts 0 */
        v[ST_SIZE] += store_msg(b, i)->size;
    }
    stream_puts(s->c.st, "* STATUS ");
    imap_put_mailbox(s, name);
    stream_puts(s->c.st, " (");
    for (unsigned i = 0; i < ST_N; i++) {
        if (!(want & (1u << i)))
            continue;
        if (i == ST_APPENDLIMIT && imap_cf.append_limit == 0)
            stream_printf(s->c.st, "%s%s NIL", sep, items[i]);
        else
            stream_printf(s->c.st, "%s%s %llu", sep, items[i],
                          i == ST_APPENDLIMIT ? imap_cf.append_limit : v[i]);
        sep = " ";
    }
    stream_puts(s->c.st, ")\r\n");
    store_close(b);
    return 0;
}

void imap_cmd_status(struct imap_session *s, struct imap_parser *ip)
{
    struct str name = STR_INIT, err = STR_INIT;
    unsigned want = 0;
    const char *why = "STATUS needs a list of items";

    if (!imap_p_sp(ip) || !imap_p_mailbox(s, ip, &name))
        goto out;
    if (!imap_p_sp(ip) || !imap_p_status_items(ip, IMAP_REV2(s), &want, &why)) {
        imap_bad(&s->c, "%s", why);
        goto out;
    }
    if (!imap_p_eol(ip)) {
        imap_bad(&s->c, "Invalid STATUS arguments");
        goto out;
    }
    if (imap_status_put(s, name.s, want, &err) < 0)
        imap_folder_no(s, "STATUS", &err, errno);
    else
        imap_ok(&s->c, "STATUS completed");
out:
    str_free(&name);
    str_free(&err);
}
