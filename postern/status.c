/* "postern status [--json]": whether master runs, each service's state from master's
 * status file (QUEUE/pid/master.status, see master(8)), the number of messages in
 * each queue directory and the age of the oldest deferred message.  Works while
 * postern.conf holds a bad value.  The status file is master's, read as untrusted
 * text: lines of unknown form are skipped, fields are bounded. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "file_read.h"
#include "postern.h"
#include "proto.h"
#include "queue.h"
#include "str.h"
#include "xmalloc.h"

#define STATUS_FILE_MAX (1u << 20)
#define SERVICES_MAX 1000

static const char *const count_dirs[] = { "maildrop", "incoming", "active", "deferred",
                                          "hold", "corrupt" };
#define NDIRS (sizeof(count_dirs) / sizeof(count_dirs[0]))

struct svc_status {
    char name[64];
    char state[16];
    unsigned long failures;
    long long until;
    char last[64];
};

struct status {
    pid_t pid;
    struct svc_status *svc;
    size_t nsvc;
    bool have_services;
    bool have_reloads;              /* the two lines below were there */
    unsigned long reloads;
    char reload_error[256];         /* empty: the last reload worked */
    long long count[NDIRS];         /* -1: unreadable */
    long long oldest_deferred;      /* arrival, unix seconds; 0: none */
};

/* Messages in qdir/dir; for deferred/ also the oldest one's arrival (from its id). */
static long long count_dir(const char *qdir, const char *dir, long long *oldest)
{
    struct str path = STR_INIT;
    long long n = 0;

    str_init(&path);
    str_printf(&path, "%s/%s", qdir, dir);
    DIR *dp = opendir(path.s);
    str_free(&path);
    if (dp == NULL)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        /* maildrop/ holds what sendmail(1) wrote, named by it; elsewhere queue ids */
        if (!queue_id_valid(de->d_name) && strcmp(dir, "maildrop") != 0)
            continue;
        n++;
        if (oldest != NULL && queue_id_valid(de->d_name)) {
            long long t = (long long)queue_id_time(de->d_name);
            if (*oldest == 0 || t < *oldest)
                *oldest = t;
        }
    }
    closedir(dp);
    return n;
}

/* Copies word (up to a space) into out, bounded; returns what follows the space. */
static const char *take_word(const char *p, char *out, size_t size)
{
    size_t n = strcspn(p, " ");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
    return p[n] == ' ' ? p + n + 1 : p + n;
}

/* master's status file, when it belongs to the running master (pid). */
static void read_services(const char *qdir, pid_t pid, struct status *st)
{
    struct str path = STR_INIT, text = STR_INIT, err = STR_INIT;

    str_init(&path);
    str_init(&text);
    str_init(&err);
    str_printf(&path, "%s/%s", qdir, PROTO_MASTER_STATUS);
    int fd = open(path.s, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        goto out;
    int r = file_read_fd(fd, path.s, STATUS_FILE_MAX, &text, &err);
    close(fd);
    if (r < 0 || text.s == NULL)
        goto out;
    char *save = NULL;
    bool ours = false;
    size_t line = 0;
    for (char *l = strtok_r(text.s, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        if (line++ == 0) {
            if (strcmp(l, PROTO_MASTER_STATUS_VERSION) != 0)
                goto out;
            continue;
        }
        if (strncmp(l, "pid ", 4) == 0) {
            ours = strtol(l + 4, NULL, 10) == (long)pid;
            continue;
        }
        if (strncmp(l, "reloads ", 8) == 0 && ours) {
            st->reloads = strtoul(l + 8, NULL, 10);
            st->have_reloads = true;
            continue;
        }
        if (strncmp(l, "reload_error ", 13) == 0 && ours) {
            snprintf(st->reload_error, sizeof(st->reload_error), "%s",
                     strcmp(l + 13, "-") == 0 ? "" : l + 13);
            continue;
        }
        if (strncmp(l, "service ", 8) != 0 || !ours || st->nsvc == SERVICES_MAX)
            continue;
        struct svc_status s;
        char num[32];
        const char *p = l + 8;
        memset(&s, 0, sizeof(s));
        p = take_word(p, s.name, sizeof(s.name));
        p = take_word(p, s.state, sizeof(s.state));
        p = take_word(p, num, sizeof(num));
        s.failures = strtoul(num, NULL, 10);
        p = take_word(p, num, sizeof(num));
        s.until = strtoll(num, NULL, 10);
        snprintf(s.last, sizeof(s.last), "%s", strcmp(p, "-") == 0 ? "" : p);
        st->svc = xreallocarray(st->svc, st->nsvc + 1, sizeof(*st->svc));
        st->svc[st->nsvc++] = s;
    }
    st->have_services = ours;
out:
    str_free(&path);
    str_free(&text);
    str_free(&err);
}

static void age_text(long long secs, char *buf, size_t size)
{
    if (secs < 0)
        secs = 0;
    if (secs < 60)
        snprintf(buf, size, "%llds", secs);
    else if (secs < 3600)
        snprintf(buf, size, "%lldm %llds", secs / 60, secs % 60);
    else if (secs < 86400)
        snprintf(buf, size, "%lldh %lldm", secs / 3600, secs % 3600 / 60);
    else
        snprintf(buf, size, "%lldd %lldh", secs / 86400, secs % 86400 / 3600);
}

static void print_text(const struct status *st, long long now)
{
    char age[64];

    if (st->pid > 0)
        printf("postern is running (pid %ld)\n", (long)st->pid);
    else
        printf("postern is not running\n");
    if (st->reload_error[0] != '\0') {
        struct str b = STR_INIT;
        str_init(&b);
        for (const char *p = st->reload_error; *p != '\0'; p++)
            str_appendc(&b, (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
        printf("last reload failed (the running configuration stays): %s\n", b.s);
        str_free(&b);
    }
    if (st->have_services) {
        printf("services:\n");
        for (size_t i = 0; i < st->nsvc; i++) {
            const struct svc_status *s = &st->svc[i];
            printf("  %-14s %s", s->name, s->state);
            if (s->failures > 0) {
                printf(" (%lu failed process%s, last: %s", s->failures,
                       s->failures == 1 ? "" : "es", s->last[0] ? s->last : "?");
                if (s->until > now)
                    printf("; next try in %llds", s->until - now);
                printf(")");
            }
            printf("\n");
        }
    }
    printf("queue:\n");
    for (size_t d = 0; d < NDIRS; d++) {
        if (st->count[d] < 0) {
            printf("  %-14s unreadable\n", count_dirs[d]);
            continue;
        }
        printf("  %-14s %lld", count_dirs[d], st->count[d]);
        if (strcmp(count_dirs[d], "deferred") == 0 && st->oldest_deferred > 0) {
            age_text(now - st->oldest_deferred, age, sizeof(age));
            printf(" (oldest %s)", age);
        }
        printf("\n");
    }
}

static void print_json(const struct status *st, long long now)
{
    printf("{\"running\":%s,\"pid\":%ld", st->pid > 0 ? "true" : "false",
           (long)(st->pid > 0 ? st->pid : 0));
    printf(",\"reload_error\":");
    if (st->reload_error[0] != '\0')
        json_str(stdout, st->reload_error);
    else
        printf("null");
    printf(",\"services\":[");
    for (size_t i = 0; st->have_services && i < st->nsvc; i++) {
        const struct svc_status *s = &st->svc[i];
        printf("%s{\"name\":", i ? "," : "");
        json_str(stdout, s->name);
        printf(",\"state\":");
        json_str(stdout, s->state);
        printf(",\"failures\":%lu,\"last_failure\":", s->failures);
        if (s->last[0] != '\0')
            json_str(stdout, s->last);
        else
            printf("null");
        printf(",\"next_try\":%lld}", s->until > now ? s->until : 0);
    }
    printf("],\"queue\":{");
    for (size_t d = 0; d < NDIRS; d++) {
        printf("%s\"%s\":", d ? "," : "", count_dirs[d]);
        if (st->count[d] < 0)
            printf("null");
        else
            printf("%lld", st->count[d]);
    }
    printf("},\"oldest_deferred_age\":");
    if (st->oldest_deferred > 0)
        printf("%lld", now - st->oldest_deferred > 0 ? now - st->oldest_deferred : 0);
    else
        printf("null");
    printf("}\n");
}

int cmd_status(int argc, char **argv)
{
    bool json = false;
    struct status st;
    struct str err = STR_INIT;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            cmd_usage("status");
    }
    memset(&st, 0, sizeof(st));
    str_init(&err);
    char *qdir = cmd_queue_dir_lenient();
    st.pid = master_running(qdir, &err);
    if (st.pid < 0)
        cmd_fail("%s", err.s);
    if (st.pid > 0)
        read_services(qdir, st.pid, &st);
    for (size_t d = 0; d < NDIRS; d++)
        st.count[d] = count_dir(qdir, count_dirs[d],
                                strcmp(count_dirs[d], "deferred") == 0
                                ? &st.oldest_deferred : NULL);
    long long now = (long long)time(NULL);
    if (json)
        print_json(&st, now);
    else
        print_text(&st, now);
    free(st.svc);
    free(qdir);
    str_free(&err);
    return st.pid > 0 ? 0 : 1;
}

int master_reload_state(const char *qdir, pid_t pid, unsigned long *reloads, char *why,
                        size_t size)
{
    struct status st;

    memset(&st, 0, sizeof(st));
    read_services(qdir, pid, &st);
    free(st.svc);
    if (!st.have_reloads)
        return 0;
    *reloads = st.reloads;
    snprintf(why, size, "%s", st.reload_error);
    return 1;
}
