/* "postern queue list | show ID | flush | hold ID | release ID | delete ID": looks at
 * and acts on the queue directories.  Queue files are read with lib/queue (which
 * treats them as untrusted); ids from the command line must be valid queue ids, so
 * they cannot name a path outside the queue. */
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
#include "postern.h"
#include "proto.h"
#include "queue.h"
#include "str.h"
#include "wakeup.h"
#include "xmalloc.h"

/* Queues listed, in the order a message passes through them. */
static const char *const list_dirs[] = { "maildrop", "incoming", "active", "deferred",
                                         "hold", "corrupt" };

/* Text from a queue file, with control characters shown as '?'. */
static const char *safe(const char *s, struct str *buf)
{
    str_clear(buf);
    for (; s != NULL && *s != '\0'; s++)
        str_appendc(buf, ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s);
    return buf->s ? buf->s : "";
}

static void print_message(const char *qdir, const char *dir, const char *id)
{
    struct str path = STR_INIT, err = STR_INIT;
    struct queue_file qf;
    char when[64] = "?";

    str_init(&path);
    str_init(&err);
    str_printf(&path, "%s/%s/%s", qdir, dir, id);
    if (queue_file_open(path.s, O_RDONLY, &qf, &err) < 0) {
        if (errno != ENOENT)
            printf("%-22s %-9s (unreadable: %s)\n", id, dir, err.s ? err.s : strerror(errno));
        str_free(&path);
        str_free(&err);
        return;
    }
    struct tm tm;
    if (localtime_r(&qf.arrival, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    struct str b = STR_INIT;
    str_init(&b);
    printf("%-22s %-9s %9zu  %s  <%s>\n", id, dir, qf.content_size, when, safe(qf.sender, &b));
    for (size_t i = 0; i < qf.nrcpt; i++)
        if (!qf.rcpt[i].done)
            printf("%65s<%s>\n", "", safe(qf.rcpt[i].addr, &b));
    str_free(&b);
    queue_file_close(&qf);
    str_free(&path);
    str_free(&err);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int queue_list(const char *qdir)
{
    size_t total = 0;
    for (size_t d = 0; d < sizeof(list_dirs) / sizeof(list_dirs[0]); d++) {
        struct str path = STR_INIT;
        str_init(&path);
        str_printf(&path, "%s/%s", qdir, list_dirs[d]);
        DIR *dp = opendir(path.s);
        if (dp == NULL) {
            if (errno != ENOENT)
                cmd_warn("%s: %s", path.s, strerror(errno));
            str_free(&path);
            continue;
        }
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(dp)) != NULL) {
            if (!queue_id_valid(de->d_name))
                continue;
            names = xreallocarray(names, n + 1, sizeof(*names));
            names[n++] = xstrdup(de->d_name);
        }
        closedir(dp);
        if (n > 0)
            qsort(names, n, sizeof(*names), compare_names);
        for (size_t i = 0; i < n; i++) {
            if (total == 0)
                printf("%-22s %-9s %9s  %-19s  %s\n", "ID", "QUEUE", "SIZE", "ARRIVAL",
                       "SENDER / RECIPIENTS");
            print_message(qdir, list_dirs[d], names[i]);
            free(names[i]);
            total++;
        }
        free(names);
        str_free(&path);
    }
    if (total == 0)
        printf("queue is empty\n");
    else
        printf("-- %zu message%s\n", total, total == 1 ? "" : "s");
    return 0;
}

/* The queue directory holding id among dirs, or NULL. */
static const char *find_id(const char *qdir, const char *id, const char *const *dirs,
                           size_t ndirs)
{
    for (size_t i = 0; i < ndirs; i++) {
        struct str path = STR_INIT;
        str_init(&path);
        str_printf(&path, "%s/%s/%s", qdir, dirs[i], id);
        int ok = access(path.s, F_OK) == 0;
        str_free(&path);
        if (ok)
            return dirs[i];
    }
    return NULL;
}

static void check_id(const char *id)
{
    if (!queue_id_valid(id))
        cmd_fail("%s: not a queue id", id);
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

    check_id(id);
    const char *dir = find_id(qdir, id, list_dirs, sizeof(list_dirs) / sizeof(list_dirs[0]));
    if (dir == NULL)
        cmd_fail("%s: no such message", id);
    str_init(&path);
    str_init(&err);
    str_printf(&path, "%s/%s/%s", qdir, dir, id);
    if (queue_file_open(path.s, O_RDONLY, &qf, &err) < 0)
        cmd_fail("%s: %s", path.s, err.s ? err.s : strerror(errno));
    struct str b = STR_INIT, b2 = STR_INIT;
    str_init(&b);
    str_init(&b2);
    printf("queue: %s\nsender: <%s>\narrival: %lld\n", dir, safe(qf.sender, &b),
           (long long)qf.arrival);
    for (size_t i = 0; i < qf.attrs.n; i++)
        printf("attribute: %s=%s\n", safe(qf.attrs.v[i].name, &b),
               safe(qf.attrs.v[i].value, &b2));
    for (size_t i = 0; i < qf.nrcpt; i++)
        printf("recipient: <%s>%s\n", safe(qf.rcpt[i].addr, &b),
               qf.rcpt[i].done ? " (done)" : "");
    str_free(&b);
    str_free(&b2);
    printf("\n");
    fflush(stdout);
    if (queue_file_content(&qf, write_chunk, NULL) != 0)
        cmd_fail("%s: cannot read the message content", path.s);
    queue_file_close(&qf);
    str_free(&path);
    str_free(&err);
    return 0;
}

static int queue_flush(const char *qdir)
{
    struct str path = STR_INIT;
    size_t n = 0;

    str_init(&path);
    str_printf(&path, "%s/deferred", qdir);
    int dfd = open(path.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        cmd_fail("%s: %s", path.s, strerror(errno));
    DIR *dp = fdopendir(dfd);
    if (dp == NULL)
        cmd_fail("%s: %s", path.s, strerror(errno));
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (!queue_id_valid(de->d_name))
            continue;
        /* Not through a symbolic link: the directory is mail_owner's, we may be root. */
        if (utimensat(dfd, de->d_name, NULL, AT_SYMLINK_NOFOLLOW) == 0)
            n++;
    }
    closedir(dp);
    str_clear(&path);
    str_printf(&path, "%s/%s", qdir, PROTO_PATH_QMGR);
    if (wakeup_send(path.s, PROTO_REQ_FLUSH) < 0)
        cmd_warn("could not reach qmgr (%s); the deferred messages will be tried at the next queue run",
                 path.s);
    printf("%zu deferred message%s scheduled now\n", n, n == 1 ? "" : "s");
    str_free(&path);
    return 0;
}

static int queue_hold(const char *qdir, const char *id)
{
    static const char *const from[] = { "incoming", "deferred" };
    check_id(id);
    const char *dir = find_id(qdir, id, from, 2);
    if (dir == NULL) {
        static const char *const active[] = { "active" };
        if (find_id(qdir, id, active, 1) != NULL)
            cmd_fail("%s: being delivered now; try again in a moment", id);
        cmd_fail("%s: not in incoming/ or deferred/", id);
    }
    if (queue_move(qdir, dir, "hold", id) < 0)
        cmd_fail("%s: %s", id, strerror(errno));
    printf("%s: on hold\n", id);
    return 0;
}

static int queue_release(const char *qdir, const char *id)
{
    struct str path = STR_INIT;
    check_id(id);
    str_init(&path);
    str_printf(&path, "%s/hold/%s", qdir, id);
    if (access(path.s, F_OK) < 0)
        cmd_fail("%s: not on hold", id);
    (void)utimensat(AT_FDCWD, path.s, NULL, AT_SYMLINK_NOFOLLOW);
    if (queue_move(qdir, "hold", "incoming", id) < 0)
        cmd_fail("%s: %s", id, strerror(errno));
    str_clear(&path);
    str_printf(&path, "%s/%s", qdir, PROTO_PATH_QMGR);
    (void)wakeup_send(path.s, PROTO_REQ_WAKEUP);
    printf("%s: released\n", id);
    str_free(&path);
    return 0;
}

static int queue_delete(const char *qdir, const char *id)
{
    static const char *const from[] = { "maildrop", "incoming", "deferred", "hold", "corrupt" };
    struct str path = STR_INIT;
    check_id(id);
    const char *dir = find_id(qdir, id, from, sizeof(from) / sizeof(from[0]));
    if (dir == NULL) {
        static const char *const active[] = { "active" };
        if (find_id(qdir, id, active, 1) != NULL)
            cmd_fail("%s: being delivered now; hold it or try again in a moment", id);
        cmd_fail("%s: no such message", id);
    }
    str_init(&path);
    str_printf(&path, "%s/%s/%s", qdir, dir, id);
    if (unlink(path.s) < 0)
        cmd_fail("%s: %s", path.s, strerror(errno));
    str_clear(&path);
    str_printf(&path, "%s/%s", qdir, dir);
    (void)fsync_dir(path.s);
    printf("%s: deleted\n", id);
    str_free(&path);
    return 0;
}

int cmd_queue(int argc, char **argv)
{
    if (argc < 2)
        cmd_usage("queue");
    struct conf *c = cmd_conf();
    char *qdir = xstrdup(conf_str(c, CONF_queue_directory));
    const char *sub = argv[1];
    int rc;

    conf_free(c);
    if (strcmp(sub, "list") == 0 && argc == 2)
        rc = queue_list(qdir);
    else if (strcmp(sub, "flush") == 0 && argc == 2)
        rc = queue_flush(qdir);
    else if (strcmp(sub, "show") == 0 && argc == 3)
        rc = queue_show(qdir, argv[2]);
    else if (strcmp(sub, "hold") == 0 && argc == 3)
        rc = queue_hold(qdir, argv[2]);
    else if (strcmp(sub, "release") == 0 && argc == 3)
        rc = queue_release(qdir, argv[2]);
    else if (strcmp(sub, "delete") == 0 && argc == 3)
        rc = queue_delete(qdir, argv[2]);
    else
        cmd_usage("queue");
    free(qdir);
    return rc;
}
