/* "postern check", as "postfix check": the whole configuration (postern.conf with
 * every value checked, master.conf through "master -t"), settings that are valid one
 * by one but not together, every table a key names (it must exist and open), the
 * files and directories keys name, and the queue tree's owners and modes.  Every
 * problem is printed, one line each; "start" and "reload" run the same checks and
 * refuse to go on after any error.  Reads the instance's files only. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "dnsbl.h"
#include "junk.h"
#include "milter.h"
#include "map.h"
#include "postern.h"
#include "proto.h"
#include "queue.h"
#include "str.h"
#include "xmalloc.h"

struct checker {
    const struct conf *c;
    int errors;
};

static void problem(struct checker *ck, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(struct checker *ck, const char *fmt, ...)
{
    va_list ap;
    fputs("postern: check: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ck->errors++;
}

/* Every table of every key that names tables exists and opens. */
static void check_maps(struct checker *ck)
{
    struct str err = STR_INIT;
    str_init(&err);
    for (size_t k = 0; k < conf_ndefaults; k++) {
        if (conf_defaults[k].type != CONF_MAPS)
            continue;
        char **specs = map_specs_split(conf_str(ck->c, (enum conf_key)k), &err);
        if (specs == NULL) {
            problem(ck, "%s: %s", conf_key_name((enum conf_key)k), err.s);
            str_clear(&err);
            continue;
        }
        for (size_t i = 0; specs[i] != NULL; i++) {
            str_clear(&err);
            struct map *m = map_open(specs[i], &err);
            if (m == NULL) {
                problem(ck, "%s: %s: %s", conf_key_name((enum conf_key)k), specs[i],
                        err.s ? err.s : "cannot open");
                continue;
            }
            map_close(m);
        }
        strv_free(specs);
    }
    str_free(&err);
}

/* Each dnsbl_sites item parses (smtpd would refuse to start). */
static void check_dnsbl(struct checker *ck)
{
    struct str err = STR_INIT;
    char **sites = conf_list(ck->c, CONF_dnsbl_sites);

    for (size_t i = 0; sites != NULL && sites[i] != NULL; i++) {
        str_clear(&err);
        if (dnsbl_site_check(sites[i], &err) < 0)
            problem(ck, "%s", err.s);
    }
    strv_free(sites);
    str_free(&err);
}

/* Run by root: the tables the unprivileged daemons read (all but the password
 * tables, which auth reads as root) must open for mail_owner too, or those daemons
 * fail at start.  Tried in a child that takes mail_owner's ids; it prints each
 * problem and exits with their number. */
static void check_maps_as_owner(struct checker *ck)
{
    if (geteuid() != 0)
        return;
    struct passwd *pw = getpwnam(conf_str(ck->c, CONF_mail_owner));
    if (pw == NULL || pw->pw_uid == 0)
        return;             /* reported by check_queue */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        cmd_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        struct checker child = { ck->c, 0 };
        struct str err = STR_INIT;
        if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
            _exit(100);
        str_init(&err);
        for (size_t k = 0; k < conf_ndefaults; k++) {
            if (conf_defaults[k].type != CONF_MAPS || k == CONF_auth_password_maps)
                continue;
            char **specs = map_specs_split(conf_str(ck->c, (enum conf_key)k), &err);
            for (size_t i = 0; specs != NULL && specs[i] != NULL; i++) {
                str_clear(&err);
                struct map *m = map_open(specs[i], &err);
                if (m == NULL)
                    problem(&child, "%s: %s: not readable by mail_owner %s: %s",
                            conf_key_name((enum conf_key)k), specs[i], pw->pw_name,
                            err.s ? err.s : "cannot open");
                else
                    map_close(m);
            }
            strv_free(specs);
        }
        fflush(NULL);
        _exit(child.errors > 99 ? 99 : child.errors);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            cmd_fail("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 100)
        problem(ck, "cannot check the tables as mail_owner %s", pw->pw_name);
    else
        ck->errors += WEXITSTATUS(status);
}

/* Files and directories the settings name. */
static void check_paths(struct checker *ck)
{
    static const enum conf_key files[] = { CONF_smtpd_tls_cert_file, CONF_smtpd_tls_key_file,
                                           CONF_smtp_tls_CAfile };
    struct stat sb;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const char *p = conf_str(ck->c, files[i]);
        if (p[0] != '\0' && access(p, R_OK) < 0)
            problem(ck, "%s = %s: %s", conf_key_name(files[i]), p, strerror(errno));
    }
    const char *base = conf_str(ck->c, CONF_virtual_mailbox_base);
    if (conf_expanded(ck->c, CONF_virtual_mailbox_domains)[0] != '\0') {
        if (stat(base, &sb) < 0)
            problem(ck, "virtual_mailbox_base = %s: %s", base, strerror(errno));
        else if (!S_ISDIR(sb.st_mode))
            problem(ck, "virtual_mailbox_base = %s: not a directory", base);
    }
    const char *log = conf_str(ck->c, CONF_maillog_file);
    if (log[0] != '\0') {
        char *dir = xstrdup(log);
        char *slash = strrchr(dir, '/');
        if (slash != NULL)
            slash[slash == dir ? 1 : 0] = '\0';
        if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
            problem(ck, "maillog_file = %s: its directory %s does not exist", log, dir);
        free(dir);
    }
    char *dd = cmd_daemon_dir(ck->c);
    struct str prog = STR_INIT;
    str_init(&prog);
    str_printf(&prog, "%s/master", dd);
    if (access(prog.s, X_OK) < 0)
        problem(ck, "daemon_directory: %s: %s", prog.s, strerror(errno));
    str_free(&prog);
    free(dd);
}

/* The content filtering keys whose syntax is more than a string or a list:
 * content_filter ("transport:nexthop", the transport a master.conf service name qmgr
 * can use), junk_headers, junk_folder and the names in smtpd_milters and
 * non_smtpd_milters. */
static void check_filtering(struct checker *ck)
{
    const char *cf = conf_str(ck->c, CONF_content_filter);
    const char *folder = conf_str(ck->c, CONF_junk_folder);
    struct junk_tests jt;
    struct str err = STR_INIT;

    if (cf[0] != '\0') {
        size_t n = strcspn(cf, ":");
        bool ok = cf[n] == ':' && n > 0 && n < 32
                  && strspn(cf, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;

        for (const char *p = cf; *p && ok; p++)
            ok = (unsigned char)*p > 0x20 && *p != 0x7f;
        if (!ok)
            problem(ck, "content_filter = %s: not transport:nexthop", cf);
    }
    if (junk_parse(conf_str(ck->c, CONF_junk_headers), &jt, &err) < 0)
        problem(ck, "%s", err.s);
    else
        junk_free(&jt);
    if (folder[0] != '\0' && !junk_folder_name_ok(folder))
        problem(ck, "junk_folder = %s: not a Maildir++ folder name", folder);
    for (int k = 0; k < 2; k++) {
        enum conf_key key = k == 0 ? CONF_smtpd_milters : CONF_non_smtpd_milters;
        char **specs = conf_list(ck->c, key);
        struct milter_timeouts t = { 1, 1, 1 };

        for (size_t i = 0; specs[i] != NULL; i++) {
            struct milter *m;

            str_clear(&err);
            if (milter_new(specs[i], &t, &m, &err) < 0)
                problem(ck, "%s: %s", conf_key_name(key), err.s);
            else
                milter_free(m);
        }
        strv_free(specs);
    }
    str_free(&err);
}

/* Settings that are valid alone but not together. */
static void check_combinations(struct checker *ck)
{
    if (conf_time_ms(ck->c, CONF_minimal_backoff_time)
        > conf_time_ms(ck->c, CONF_maximal_backoff_time))
        problem(ck, "minimal_backoff_time = %s is longer than maximal_backoff_time = %s",
                conf_expanded(ck->c, CONF_minimal_backoff_time),
                conf_expanded(ck->c, CONF_maximal_backoff_time));
    if (conf_time_ms(ck->c, CONF_queue_run_delay)
        > conf_time_ms(ck->c, CONF_maximal_backoff_time))
        problem(ck, "queue_run_delay = %s is longer than maximal_backoff_time = %s: "
                "retries would come later than the backoff says",
                conf_expanded(ck->c, CONF_queue_run_delay),
                conf_expanded(ck->c, CONF_maximal_backoff_time));
    if (conf_count(ck->c, CONF_smtpd_soft_error_limit)
        > conf_count(ck->c, CONF_smtpd_hard_error_limit))
        problem(ck, "smtpd_soft_error_limit = %lld is above smtpd_hard_error_limit = %lld",
                conf_count(ck->c, CONF_smtpd_soft_error_limit),
                conf_count(ck->c, CONF_smtpd_hard_error_limit));
    if (conf_bool(ck->c, CONF_smtpd_client_auth_required)
        && !conf_bool(ck->c, CONF_smtpd_sasl_auth_enable))
        problem(ck, "smtpd_client_auth_required = yes needs smtpd_sasl_auth_enable = yes");
    const char *cert = conf_str(ck->c, CONF_smtpd_tls_cert_file);
    const char *level = conf_str(ck->c, CONF_smtpd_tls_security_level);
    if (cert[0] == '\0' && strcmp(level, "encrypt") == 0)
        problem(ck, "smtpd_tls_security_level = encrypt needs smtpd_tls_cert_file");
}

/* The queue tree: what master makes at start (postern-queue(5)).  Run by root, the
 * directories the daemons write belong to mail_owner; otherwise to the caller. */
static void check_queue(struct checker *ck)
{
    static const struct {
        const char *name;
        mode_t mode;
        bool daemon_owned;
    } dirs[] = {
        { "tmp", 0700, true },      { "maildrop", 01730, true }, { "incoming", 0700, true },
        { "active", 0700, true },   { "deferred", 0700, true },  { "hold", 0700, true },
        { "corrupt", 0700, true },  { QUEUE_DEFER_DIR, 0700, true },
        { PROTO_PRIVATE_DIR, 0700, true },
        { "public", 0710, true },   { "pid", 0755, false },      { PROTO_LOGIN_DIR, 0711, false },
    };
    const char *qdir = conf_str(ck->c, CONF_queue_directory);
    bool root = geteuid() == 0;
    uid_t owner = geteuid();
    struct stat sb;

    if (lstat(qdir, &sb) < 0) {
        if (errno != ENOENT)
            problem(ck, "queue_directory = %s: %s", qdir, strerror(errno));
        return;         /* master makes it at start */
    }
    if (!S_ISDIR(sb.st_mode)) {
        problem(ck, "queue_directory = %s: not a directory", qdir);
        return;
    }
    if (sb.st_mode & (S_IWGRP | S_IWOTH))
        problem(ck, "%s: writable by group or others (mode %04o)", qdir,
                (unsigned)(sb.st_mode & 07777));
    if (root) {
        struct passwd *pw = getpwnam(conf_str(ck->c, CONF_mail_owner));
        if (pw == NULL) {
            problem(ck, "mail_owner = %s: no such user", conf_str(ck->c, CONF_mail_owner));
            return;
        }
        owner = pw->pw_uid;
        if (pw->pw_uid == 0)
            problem(ck, "mail_owner = %s: must not be root", pw->pw_name);
        if (getgrnam(conf_str(ck->c, CONF_setgid_group)) == NULL)
            problem(ck, "setgid_group = %s: no such group", conf_str(ck->c, CONF_setgid_group));
    }
    struct str p = STR_INIT;
    str_init(&p);
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        str_clear(&p);
        str_printf(&p, "%s/%s", qdir, dirs[i].name);
        if (lstat(p.s, &sb) < 0) {
            if (errno != ENOENT)
                problem(ck, "%s: %s", p.s, strerror(errno));
            continue;       /* made by master at start */
        }
        if (!S_ISDIR(sb.st_mode)) {
            problem(ck, "%s: not a directory", p.s);
            continue;
        }
        uid_t want = dirs[i].daemon_owned ? owner : geteuid();
        if (sb.st_uid != want)
            problem(ck, "%s: owned by uid %lu, expected %lu", p.s, (unsigned long)sb.st_uid,
                    (unsigned long)want);
        if ((sb.st_mode & 07777) != dirs[i].mode)
            problem(ck, "%s: mode %04o, expected %04o", p.s, (unsigned)(sb.st_mode & 07777),
                    (unsigned)dirs[i].mode);
    }
    str_free(&p);
}

/* master.conf and its -o overrides, through "master -t". */
static void check_master_conf(struct checker *ck)
{
    char *dd = cmd_daemon_dir(ck->c);
    struct str prog = STR_INIT;
    int status;
    pid_t pid;

    str_init(&prog);
    str_printf(&prog, "%s/master", dd);
    free(dd);
    if (access(prog.s, X_OK) < 0) {
        str_free(&prog);
        return;         /* reported by check_paths */
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        cmd_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        char *args[] = { "master", "-c", (char *)conf_dir(ck->c), "-t", NULL };
        execv(prog.s, args);
        fprintf(stderr, "postern: %s: %s\n", prog.s, strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            cmd_fail("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        problem(ck, "master.conf does not load (see above)");
    str_free(&prog);
}

int check_run(const struct conf *c)
{
    struct checker ck = { c, 0 };
    check_combinations(&ck);
    check_filtering(&ck);
    check_paths(&ck);
    check_maps(&ck);
    check_dnsbl(&ck);
    if (ck.errors == 0)
        check_maps_as_owner(&ck);
    check_queue(&ck);
    check_master_conf(&ck);
    return ck.errors;
}

int cmd_check(int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        cmd_usage("check");
    struct str err = STR_INIT;
    str_init(&err);
    /* every bad value, not only the first: load unchecked, then check key by key */
    struct conf *c = cmd_conf_unchecked();
    if (conf_check_all(c, &err) < 0) {
        fprintf(stderr, "postern: check: %s\n", err.s);
        cmd_fail("%s: not checked further until its values are right",
                 "postern.conf");
    }
    int n = check_run(c);
    conf_free(c);
    str_free(&err);
    if (n > 0) {
        fprintf(stderr, "postern: check: %d error%s\n", n, n == 1 ? "" : "s");
        return 1;
    }
    return 0;
}
