/* "postern queue ...": looks at and acts on the queue directories.
 *
 *   list [--json]            messages in incoming/ active/ deferred/ hold/ (Postfix's
 *                            mailq layout, or one JSON object a line)
 *   show ID                  envelope, defer reasons and content
 *   hold | release | delete | requeue  ID... | ALL | -
 *   flush [ID... | ALL | -]  retry now
 *
 * Queue files and defer records are read with lib/queue (which treats them as
 * untrusted); text from them is printed with control characters as '?'.  Ids from
 * the command line or standard input must be valid queue ids, so they cannot name a
 * path outside the queue.  A message moves only by rename(2), so an action that
 * races with qmgr either happens whole or finds the message gone; a message in
 * active/ (being delivered) is never touched.  Every change is logged ("ID: placed
 * on hold", "ID: removed by admin"...). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "log_conf.h"
#include "postern.h"
#include "proto.h"
#include "queue.h"
#include "str.h"
#include "wakeup.h"
#include "xmalloc.h"

#define ID_LINE_MAX 256

/* Queues listed, in the order a message passes through them. */
static const char *const list_dirs[] = { "incoming", "active", "deferred", "hold" };
#define NLIST (sizeof(list_dirs) / sizeof(list_dirs[0]))
/* Every directory a message may be in, for show. */
static const char *const all_dirs[] = { "maildrop", "incoming", "active", "deferred", "hold",
                                        "corrupt" };
#define NALL (sizeof(all_dirs) / sizeof(all_dirs[0]))

/* Text from a queue file, with control characters shown as '?'. */
static const char *safe(const char *s, struct str *buf)
{
    str_clear(buf);
    for (; s != NULL && *s != '\0'; s++)
        str_appendc(buf, ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s);
    return buf->s ? buf->s : "";
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The queue ids in qdir/dir, sorted (oldest first); NULL-terminated. */
static char **dir_ids(const char *qdir, const char *dir, size_t *n)
{
    struct str path = STR_INIT;
    char **names = xcalloc(1, sizeof(*names));

    *n = 0;
    str_init(&path);
    str_printf(&path, "%s/%s", qdir, dir);
    DIR *dp = opendir(path.s);
    if (dp == NULL) {
        if (errno != ENOENT)
            cmd_warn("%s: %s", path.s, strerror(errno));
        str_free(&path);
        return names;
    }
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (!queue_id_valid(de->d_name))
            continue;
        names = xreallocarray(names, *n + 2, sizeof(*names));
        names[(*n)++] = xstrdup(de->d_name);
        names[*n] = NULL;
    }
    closedir(dp);
    qsort(names, *n, sizeof(*names), compare_names);
    str_free(&path);
    return names;
}

/* ---- list ---- */

struct list_totals {
    size_t messages;
    unsigned long long bytes;
};

static void print_mailq(const char *dir, const char *id, const struct queue_file *qf,
                        const struct queue_defer *d, struct list_totals *t)
{
    struct str b = STR_INIT;
    char when[64] = "?";
    struct tm tm;
    char mark = strcmp(dir, "active") == 0 ? '*' : strcmp(dir, "hold") == 0 ? '!' : ' ';

    str_init(&b);
    if (localtime_r(&qf->arrival, &tm) != NULL)
        strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
    if (t->messages == 0)
        printf("%-21s  %8s %-20s  %s\n", "-Queue ID------------", "--Size--",
               "----Arrival Time----", "-Sender/Recipient-------");
    printf("%s%c %8zu %-20s  %s\n", id, mark, qf->content_size, when,
           qf->sender[0] != '\0' ? safe(qf->sender, &b) : "MAILER-DAEMON");
    const char *last = NULL;
    for (size_t i = 0; i < qf->nrcpt; i++) {
        if (qf->rcpt[i].done)
            continue;
        const struct queue_defer_rcpt *r = d != NULL ? queue_defer_find(d, qf->rcpt[i].addr)
                                                     : NULL;
        if (r != NULL && r->reason != NULL && (last == NULL || strcmp(last, r->reason) != 0)) {
            printf("(%s)\n", safe(r->reason, &b));
            last = r->reason;
        }
        printf("%54s%s\n", "", safe(qf->rcpt[i].addr, &b));
    }
    printf("\n");
    str_free(&b);
    t->messages++;
    t->bytes += qf->content_size;
}

static void print_json(const char *dir, const char *id, const struct queue_file *qf,
                       const struct queue_defer *d)
{
    printf("{\"queue_name\":\"%s\",\"queue_id\":\"%s\",\"arrival_time\":%lld,"
           "\"message_size\":%zu,\"sender\":", dir, id, (long long)qf->arrival,
           qf->content_size);
    json_str(stdout, qf->sender);
    printf(",\"recipients\":[");
    bool first = true;
    for (size_t i = 0; i < qf->nrcpt; i++) {
        if (qf->rcpt[i].done)
            continue;
        const struct queue_defer_rcpt *r = d != NULL ? queue_defer_find(d, qf->rcpt[i].addr)
                                                     : NULL;
        printf("%s{\"address\":", first ? "" : ",");
        json_str(stdout, qf->rcpt[i].addr);
        if (r != NULL) {
            printf(",\"delay_reason\":");
            json_str(stdout, r->reason);
            printf(",\"last_attempt\":%lld,\"next_attempt\":%lld", (long long)r->attempt,
                   (long long)r->next);
        }
        printf("}");
        first = false;
    }
    printf("]}\n");
}

static int queue_list(const char *qdir, bool json)
{
    struct list_totals t = { 0, 0 };
    struct str path = STR_INIT, err = STR_INIT;

    str_init(&path);
    str_init(&err);
    for (size_t k = 0; k < NLIST; k++) {
        size_t n;
        char **ids = dir_ids(qdir, list_dirs[k], &n);
        for (size_t i = 0; i < n; i++) {
            struct queue_file qf;
            struct queue_defer d;
            str_clear(&path);
            str_clear(&err);
            str_printf(&path, "%s/%s/%s", qdir, list_dirs[k], ids[i]);
            if (queue_file_open(path.s, O_RDONLY, &qf, &err) < 0) {
                if (errno != ENOENT)        /* gone meanwhile: delivered */
                    cmd_warn("%s: %s", path.s, err.s ? err.s : strerror(errno));
                continue;
            }
            bool have_d = queue_defer_read(qdir, ids[i], &d, &err) == 0;
            if (json)
                print_json(list_dirs[k], ids[i], &qf, have_d ? &d : NULL);
            else
                print_mailq(list_dirs[k], ids[i], &qf, have_d ? &d : NULL, &t);
            if (have_d)
                queue_defer_free(&d);
            queue_file_close(&qf);
        }
        strv_free(ids);
    }
    if (!json) {
        if (t.messages == 0)
            printf("Mail queue is empty\n");
        else
            printf("-- %llu Kbytes in %zu Request%s.\n", (t.bytes + 1023) / 1024, t.messages,
                   t.messages == 1 ? "" : "s");
    }
    str_free(&path);
    str_free(&err);
    return 0;
}

/* ---- show ---- */

/* The queue directory holding id among dirs, or NULL. */
static const char *find_id(const char *qdir, const char *id, const char *const *dirs,
                           size_t ndirs)
{
    for (size_t i = 0; i < ndirs; i++) {
        struct str path = STR_INIT;
        struct stat sb;
        str_init(&path);
        str_printf(&path, "%s/%s/%s", qdir, dirs[i], id);
        int ok = lstat(path.s, &sb) == 0;
        str_free(&path);
        if (ok)
            return dirs[i];
    }
    return NULL;
}

static int write_chunk(void *arg, const char *data, size_t len)
{
    (void)arg;
    return fwrite(data, 1, len, stdout) == len ? 0 : -1;
}

static int queue_show(const char *qdir, const char *id)
{
    struct str path = STR_INIT, err = STR_INIT;
    struct queue_file qf;
    struct queue_defer d;

    if (!queue_id_valid(id))
        cmd_fail("%s: not a queue id", id);
    const char *dir = find_id(qdir, id, all_dirs, NALL);
    if (dir == NULL)
        cmd_fail("%s: no such message", id);
    str_init(&path);
    str_init(&err);
    str_printf(&path, "%s/%s/%s", qdir, dir, id);
    if (queue_file_open(path.s, O_RDONLY, &qf, &err) < 0)
        cmd_fail("%s: %s", path.s, err.s ? err.s : strerror(errno));
    bool have_d = queue_defer_read(qdir, id, &d, &err) == 0;
    struct str b = STR_INIT, b2 = STR_INIT;
    str_init(&b);
    str_init(&b2);
    printf("queue: %s\nsender: <%s>\narrival: %lld\n", dir, safe(qf.sender, &b),
           (long long)qf.arrival);
    for (size_t i = 0; i < qf.attrs.n; i++)
        printf("attribute: %s=%s\n", safe(qf.attrs.v[i].name, &b),
               safe(qf.attrs.v[i].value, &b2));
    for (size_t i = 0; i < qf.nrcpt; i++) {
        printf("recipient: <%s>%s\n", safe(qf.rcpt[i].addr, &b),
               qf.rcpt[i].done ? " (done)" : "");
        const struct queue_defer_rcpt *r = have_d && !qf.rcpt[i].done
                                           ? queue_defer_find(&d, qf.rcpt[i].addr) : NULL;
        if (r != NULL) {
            char at[64] = "?", next[64] = "?";
            struct tm tm;
            if (localtime_r(&r->attempt, &tm) != NULL)
                strftime(at, sizeof(at), "%Y-%m-%d %H:%M:%S", &tm);
            if (localtime_r(&r->next, &tm) != NULL)
                strftime(next, sizeof(next), "%Y-%m-%d %H:%M:%S", &tm);
            printf("  reason: %s\n  last attempt: %s\n  next attempt: %s\n",
                   safe(r->reason, &b), at, next);
        }
    }
    str_free(&b);
    str_free(&b2);
    if (have_d)
        queue_defer_free(&d);
    printf("\n");
    fflush(stdout);
    if (queue_file_content(&qf, write_chunk, NULL) != 0)
        cmd_fail("%s: cannot read the message content", path.s);
    queue_file_close(&qf);
    str_free(&path);
    str_free(&err);
    return 0;
}

/* ---- actions on several messages ---- */

struct action {
    const char *name;
    const char *const *from;        /* directories the message may be taken from */
    size_t nfrom;
    int (*act)(const char *qdir, const char *dir, const char *id);
    const char *done;               /* printed and logged: "ID: <done>" */
};

static void wake_qmgr(const char *qdir, const char *req)
{
    struct str path = STR_INIT;
    str_init(&path);
    str_printf(&path, "%s/%s", qdir, PROTO_PATH_QMGR);
    if (wakeup_send(path.s, req) < 0)
        cmd_warn("could not reach qmgr (%s): the queue is looked at again at its next run",
                 path.s);
    str_free(&path);
}

/* Sets the file's times to now (its retry time: due at once), not through a link. */
static void touch(const char *qdir, const char *dir, const char *id)
{
    struct str path = STR_INIT;
    str_init(&path);
    str_printf(&path, "%s/%s/%s", qdir, dir, id);
    (void)utimensat(AT_FDCWD, path.s, NULL, AT_SYMLINK_NOFOLLOW);
    str_free(&path);
}

static int act_hold(const char *qdir, const char *dir, const char *id)
{
    return queue_move(qdir, dir, "hold", id);
}

static int act_release(const char *qdir, const char *dir, const char *id)
{
    touch(qdir, dir, id);
    return queue_move(qdir, dir, "incoming", id);
}

static int act_requeue(const char *qdir, const char *dir, const char *id)
{
    touch(qdir, dir, id);
    if (strcmp(dir, "incoming") != 0 && queue_move(qdir, dir, "incoming", id) < 0)
        return -1;
    (void)queue_defer_remove(qdir, id);     /* the next attempt starts afresh */
    return 0;
}

static int act_flush(const char *qdir, const char *dir, const char *id)
{
    touch(qdir, dir, id);
    return queue_move(qdir, dir, "incoming", id);
}

static int act_delete(const char *qdir, const char *dir, const char *id)
{
    struct str path = STR_INIT;
    str_init(&path);
    str_printf(&path, "%s/%s/%s", qdir, dir, id);
    int rc = unlink(path.s);
    int saved = errno;
    if (rc == 0) {
        str_clear(&path);
        str_printf(&path, "%s/%s", qdir, dir);
        (void)fsync_dir(path.s);
        (void)queue_defer_remove(qdir, id);
    }
    str_free(&path);
    errno = saved;
    return rc;
}

static const char *const from_hold[] = { "incoming", "deferred" };
static const char *const from_release[] = { "hold" };
static const char *const from_delete[] = { "maildrop", "incoming", "deferred", "hold",
                                           "corrupt" };
static const char *const from_requeue[] = { "incoming", "deferred", "hold" };
static const char *const from_flush[] = { "deferred" };

static const struct action actions[] = {
    { "hold", from_hold, 2, act_hold, "placed on hold" },
    { "release", from_release, 1, act_release, "released from hold" },
    { "delete", from_delete, 5, act_delete, "removed by admin" },
    { "requeue", from_requeue, 3, act_requeue, "requeued" },
    { "flush", from_flush, 1, act_flush, "scheduled for delivery now" },
};

/* One message: 0 done, -1 not (a message printed). */
static int act_one(const char *qdir, const struct action *a, const char *id)
{
    if (!queue_id_valid(id)) {
        cmd_warn("%s: not a queue id", id);
        return -1;
    }
    /* Up to a few tries: qmgr may move the message between our look and our act. */
    for (int attempt = 0; attempt < 3; attempt++) {
        const char *dir = find_id(qdir, id, a->from, a->nfrom);
        if (dir == NULL)
            break;
        if (a->act(qdir, dir, id) == 0) {
            printf("%s: %s\n", id, a->done);
            log_info("%s: %s", id, a->done);
            return 0;
        }
        if (errno != ENOENT) {
            cmd_warn("%s: %s", id, strerror(errno));
            return -1;
        }
    }
    static const char *const active[] = { "active" };
    if (find_id(qdir, id, active, 1) != NULL)
        cmd_warn("%s: being delivered now; try again in a moment", id);
    else if (find_id(qdir, id, all_dirs, NALL) != NULL)
        cmd_warn("%s: not in %s%s", id, a->from[0], a->nfrom > 1 ? " or the like" : "");
    else
        cmd_warn("%s: no such message", id);
    return -1;
}

/* Ids from standard input, one a line (blank lines skipped). */
static char **stdin_ids(size_t *n)
{
    char line[ID_LINE_MAX];
    char **ids = xcalloc(1, sizeof(*ids));

    *n = 0;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n')
            cmd_fail("standard input: line too long for a queue id");
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'
                           || line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            continue;
        ids = xreallocarray(ids, *n + 2, sizeof(*ids));
        ids[(*n)++] = xstrdup(p);
        ids[*n] = NULL;
    }
    return ids;
}

static int queue_act(const char *qdir, const struct action *a, int argc, char **argv)
{
    char **ids = NULL;
    size_t n = 0;
    int failed = 0, done = 0;

    if (argc == 1 && strcmp(argv[0], "ALL") == 0) {
        for (size_t k = 0; k < a->nfrom; k++) {
            size_t m;
            char **some = dir_ids(qdir, a->from[k], &m);
            ids = xreallocarray(ids, n + m + 1, sizeof(*ids));
            for (size_t i = 0; i < m; i++)
                ids[n++] = some[i];
            ids[n] = NULL;
            free(some);
        }
    } else if (argc == 1 && strcmp(argv[0], "-") == 0) {
        ids = stdin_ids(&n);
    } else {
        ids = xcalloc((size_t)argc + 1, sizeof(*ids));
        for (int i = 0; i < argc; i++) {
            if (strcmp(argv[i], "ALL") == 0 || strcmp(argv[i], "-") == 0)
                cmd_usage("queue");
            ids[n++] = xstrdup(argv[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (act_one(qdir, a, ids[i]) == 0)
            done++;
        else
            failed++;
    }
    strv_free(ids);
    if (done > 0 && a->act != act_hold && a->act != act_delete)
        wake_qmgr(qdir, PROTO_REQ_WAKEUP);
    return failed > 0 ? 1 : 0;
}

/* flush without ids: every deferred message due now, and qmgr told to look. */
static int queue_flush_all(const char *qdir)
{
    size_t n, k = 0;
    char **ids = dir_ids(qdir, "deferred", &n);
    for (size_t i = 0; i < n; i++) {
        struct str path = STR_INIT;
        str_init(&path);
        str_printf(&path, "%s/deferred/%s", qdir, ids[i]);
        if (utimensat(AT_FDCWD, path.s, NULL, AT_SYMLINK_NOFOLLOW) == 0)
            k++;
        str_free(&path);
    }
    strv_free(ids);
    wake_qmgr(qdir, PROTO_REQ_FLUSH);
    printf("%zu deferred message%s scheduled now\n", k, k == 1 ? "" : "s");
    if (k > 0)
        log_info("%zu deferred message%s scheduled for delivery now by admin", k,
                 k == 1 ? "" : "s");
    return 0;
}

int cmd_queue(int argc, char **argv)
{
    if (argc < 2)
        cmd_usage("queue");
    struct conf *c = cmd_conf();
    char *qdir = xstrdup(conf_str(c, CONF_queue_directory));
    const char *sub = argv[1];
    int rc = -1;

    if (strcmp(sub, "list") == 0 && argc == 2) {
        rc = queue_list(qdir, false);
    } else if (strcmp(sub, "list") == 0 && argc == 3 && strcmp(argv[2], "--json") == 0) {
        rc = queue_list(qdir, true);
    } else if (strcmp(sub, "show") == 0 && argc == 3) {
        rc = queue_show(qdir, argv[2]);
    } else {
        for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
            if (strcmp(sub, actions[i].name) != 0)
                continue;
            /* changes are logged where the daemons log */
            if (log_conf_prepare(c, 0) < 0)
                cmd_fail("%s/log: %s", conf_dir(c), strerror(errno));
            log_open_conf("queue", c, 0);
            if (argc == 2 && actions[i].act == act_flush)
                rc = queue_flush_all(qdir);
            else if (argc >= 3)
                rc = queue_act(qdir, &actions[i], argc - 2, argv + 2);
            break;
        }
    }
    if (rc < 0)
        cmd_usage("queue");
    conf_free(c);
    free(qdir);
    return rc;
}
