/* "postern init DIR": makes a complete, self-contained instance (config, service
 * table, queue tree, maps, mail store).  Run by root it also creates the system
 * accounts, with fixed arguments to groupadd/useradd (no shell), and sets owners. */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "map.h"
#include "postern.h"
#include "proto.h"
#include "queue.h"
#include "str.h"
#include "tls.h"
#include "xmalloc.h"

#define MAX_DOMAINS 100

static bool valid_domain(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 253 || d[0] == '.' || d[0] == '-' || d[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (!(isascii(c) && (isalnum(c) || c == '-' || c == '.')))
            return false;
        if (c == '.' && d[i + 1] == '.')
            return false;
    }
    return true;
}

/* A directory name that can stand in postern.conf values and map lists. */
static bool plain_path(const char *p)
{
    for (; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f || strchr("$,{}#=\\", c) != NULL)
            return false;
    }
    return true;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Run as root, init creates, chowns and chmods paths by name under DIR: safe only when
 * no other user can change what those names point to.  So DIR (already resolved by
 * realpath) and every directory above it must belong to root, DIR must be writable by
 * root alone, and an ancestor writable by others must be sticky (others then cannot
 * rename or remove root's entries in it).  Fails with a message naming the culprit. */
static void tree_check_root_only(const char *abs)
{
    struct str p = STR_INIT;
    size_t n = strlen(abs);

    for (size_t i = 0; i <= n; i++) {
        struct stat sb;
        bool last = i == n;

        if (i != 0 && !last && abs[i] != '/')
            continue;
        str_set(&p, abs, i == 0 ? 1 : i);      /* "/", then each prefix, then DIR */
        if (lstat(p.s, &sb) < 0)
            cmd_fail("%s: %s", p.s, strerror(errno));
        if (!S_ISDIR(sb.st_mode))
            cmd_fail("%s: not a directory", p.s);
        if (sb.st_uid != 0)
            cmd_fail("%s: owned by uid %lu, not root: refusing to make an instance as root "
                     "where another user controls the path", p.s, (unsigned long)sb.st_uid);
        bool others_write = (sb.st_mode & S_IWOTH) || ((sb.st_mode & S_IWGRP) && sb.st_gid != 0);
        if (others_write && (last || !(sb.st_mode & S_ISVTX)))
            cmd_fail("%s: writable by other users: refusing to make an instance as root there",
                     p.s);
    }
    str_free(&p);
}

/* Runs a program with fixed arguments; 0 when it exits 0. */
static int run(const char *prog, char *const argv[])
{
    pid_t pid = fork();
    int status;

    if (pid < 0)
        return -1;
    if (pid == 0) {
        char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
        execve(prog, argv, envp);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void ensure_group(const char *name)
{
    if (getgrnam(name) != NULL)
        return;
    char *const argv[] = { "groupadd", "--system", (char *)name, NULL };
    if (run("/usr/sbin/groupadd", argv) < 0)
        cmd_fail("groupadd %s failed", name);
}

static void ensure_user(const char *name)
{
    ensure_group(name);
    if (getpwnam(name) != NULL)
        return;
    char *const argv[] = { "useradd", "--system", "--no-create-home",
                           "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                           "--gid", (char *)name, (char *)name, NULL };
    if (run("/usr/sbin/useradd", argv) < 0)
        cmd_fail("useradd %s failed", name);
}

static void set_owner(const char *path, const char *user, const char *group, mode_t mode)
{
    struct passwd *pw = user ? getpwnam(user) : NULL;
    struct group *gr = group ? getgrnam(group) : NULL;
    uid_t uid = pw ? pw->pw_uid : 0;
    gid_t gid = gr ? gr->gr_gid : (pw ? pw->pw_gid : 0);

    if ((user && pw == NULL) || (group && gr == NULL))
        cmd_fail("%s: unknown user or group", path);
    if (chown(path, uid, gid) < 0 || chmod(path, mode) < 0)
        cmd_fail("%s: %s", path, strerror(errno));
}

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    struct str path = STR_INIT, err = STR_INIT;
    str_init(&path);
    str_init(&err);
    str_printf(&path, "%s/%s", dir, name);
    if (file_write_atomic(path.s, text, strlen(text), mode, &err) < 0)
        cmd_fail("%s", err.s);
    str_free(&path);
    str_free(&err);
}

static const struct {
    const char *name;
    const char *text;
} init_maps[] = {
    { "vmailbox",
      "# Virtual mailboxes: ADDRESS  DOMAIN/LOCALPART/  (a Maildir under\n"
      "# virtual_mailbox_base).  \"postern user add\" keeps this file up to date;\n"
      "# after editing by hand run \"postern map build\" on it.  See postern-maps(5).\n" },
    { "aliases",
      "# Aliases of local-class domains: NAME  ADDRESS, ADDRESS...\n"
      "# For example:\n"
      "#   postmaster  root\n"
      "#   abuse       postmaster\n"
      "# After editing run \"postern map build\" on this file.  See postern-maps(5).\n" },
    { "virtual",
      "# Virtual aliases, any domain: ADDRESS or @DOMAIN  ADDRESS, ADDRESS...\n"
      "# For example:\n"
      "#   info@example.com  alice@example.com, bob@example.com\n"
      "# After editing run \"postern map build\" on this file.  See postern-maps(5).\n" },
    { "passwd",
      "# Passwords of virtual users: ADDRESS  HASH (crypt(3) format).\n"
      "# Kept by \"postern user add\" and \"postern user del\".  See postern-maps(5).\n" },
};

static void init_usage(void)
{
    cmd_usage("init");
}

/* The option a names ("--domain" for "--domain" and "--domain=..."), or NULL. */
static const char *init_option(const char *a)
{
    static const char *const opts[] = { "--domain", "--port-base", "--hostname",
                                        "--postmaster", "--queue-directory",
                                        "--mail-directory" };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        size_t n = strlen(opts[i]);
        if (strncmp(a, opts[i], n) == 0 && (a[n] == '\0' || a[n] == '='))
            return opts[i];
    }
    return NULL;
}

/* An address for the aliases map: local@domain, or a bare local part, without white
 * space, control characters or the map's separators. */
static bool alias_target_ok(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n > 254 || a[0] == '@' || a[n - 1] == '@' || a[0] == '|' || a[0] == '/'
        || a[0] == ':' || a[0] == '#')
        return false;
    for (; *a != '\0'; a++) {
        unsigned char c = (unsigned char)*a;
        if (c <= ' ' || c >= 0x7f || c == ',' || c == '"' || c == '\\')
            return false;
    }
    return true;
}

/* A directory given for the queue or the mail store: absolute (made when missing),
 * resolved, and writable into postern.conf.  Caller frees. */
static char *init_place(const char *opt, const char *path)
{
    if (path[0] != '/')
        cmd_fail("%s %s: expected an absolute path", opt, path);
    if (mkdir_p(path, 0755) < 0)
        cmd_fail("%s: %s", path, strerror(errno));
    char *abs = realpath(path, NULL);
    if (abs == NULL)
        cmd_fail("%s: %s", path, strerror(errno));
    if (!plain_path(abs))
        cmd_fail("%s: the path may not hold white space or any of $,{}#=\\", abs);
    return abs;
}

int cmd_init(int argc, char **argv)
{
    const char *dir = NULL, *hostname = NULL, *postmaster = NULL;
    const char *queue_opt = NULL, *mail_opt = NULL;
    const char *domains[MAX_DOMAINS];
    size_t ndomains = 0;
    long port_base = -1;
    struct str s = STR_INIT, err = STR_INIT;
    bool root = geteuid() == 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        const char *opt = init_option(a);
        if (opt != NULL && a[strlen(opt)] == '\0') {
            if (i + 1 >= argc)
                init_usage();
            val = argv[++i];
        } else if (opt != NULL) {
            val = a + strlen(opt) + 1;
        } else if (a[0] == '-') {
            cmd_warn("unknown option %s", a);
            init_usage();
        } else if (dir == NULL) {
            dir = a;
            continue;
        } else {
            init_usage();
        }
        if (strcmp(opt, "--domain") == 0) {
            if (ndomains == MAX_DOMAINS)
                cmd_fail("too many domains");
            domains[ndomains++] = val;
        } else if (strcmp(opt, "--hostname") == 0) {
            hostname = val;
        } else if (strcmp(opt, "--postmaster") == 0) {
            postmaster = val;
        } else if (strcmp(opt, "--queue-directory") == 0) {
            queue_opt = val;
        } else if (strcmp(opt, "--mail-directory") == 0) {
            mail_opt = val;
        } else {
            char *end;
            errno = 0;
            port_base = strtol(val, &end, 10);
            if (errno != 0 || *end != '\0' || end == val || port_base < 0
                || port_base + 995 > 65535)
                cmd_fail("--port-base %s: expected a number from 0 to %d", val, 65535 - 995);
        }
    }
    if (dir == NULL)
        init_usage();

    str_init(&s);
    str_init(&err);
    for (size_t i = 0; i < ndomains; i++) {
        if (!valid_domain(domains[i]))
            cmd_fail("--domain %s: not a valid domain name", domains[i]);
        char *d = xstrdup(domains[i]);
        for (char *p = d; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        domains[i] = d;
    }
    if (hostname != NULL && !valid_domain(hostname))
        cmd_fail("--hostname %s: not a valid host name", hostname);
    if (postmaster != NULL && !alias_target_ok(postmaster))
        cmd_fail("--postmaster %s: not a usable address", postmaster);

    if (mkdir_p(dir, 0755) < 0)
        cmd_fail("%s: %s", dir, strerror(errno));
    char *abs = realpath(dir, NULL);
    if (abs == NULL)
        cmd_fail("%s: %s", dir, strerror(errno));
    if (!plain_path(abs))
        cmd_fail("%s: the instance's path may not hold white space or any of $,{}#=\\", abs);
    if (root)
        tree_check_root_only(abs);
    str_printf(&s, "%s/postern.conf", abs);
    if (access(s.s, F_OK) == 0)
        cmd_fail("%s already holds an instance (%s exists)", abs, s.s);

    if (root) {
        ensure_user("postern");
        ensure_group("posterndrop");
        ensure_user("vmail");
    }

    /* Queue. */
    char *qdir, *mdir;
    if (queue_opt != NULL) {
        qdir = init_place("--queue-directory", queue_opt);
    } else {
        struct str q = STR_INIT;
        str_init(&q);
        str_printf(&q, "%s/queue", abs);
        qdir = str_detach(&q);
    }
    if (mail_opt != NULL) {
        mdir = init_place("--mail-directory", mail_opt);
    } else {
        struct str m = STR_INIT;
        str_init(&m);
        str_printf(&m, "%s/mail", abs);
        mdir = str_detach(&m);
    }
    if (root && queue_opt != NULL)
        tree_check_root_only(qdir);
    if (root && mail_opt != NULL)
        tree_check_root_only(mdir);
    str_clear(&s);
    str_sets(&s, qdir);
    if (queue_tree_create(s.s, &err) < 0)
        cmd_fail("%s", err.s);
    if (root) {
        static const char *const subdirs[] = { "tmp", "incoming", "active", "deferred",
                                               "hold", "corrupt", QUEUE_DEFER_DIR };
        struct str p = STR_INIT;
        str_init(&p);
        for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
            struct stat sb;
            str_clear(&p);
            str_printf(&p, "%s/%s", s.s, subdirs[i]);
            if (stat(p.s, &sb) < 0)
                cmd_fail("%s: %s", p.s, strerror(errno));
            set_owner(p.s, "postern", "postern", sb.st_mode & 07777);
        }
        str_clear(&p);
        str_printf(&p, "%s/maildrop", s.s);
        set_owner(p.s, "postern", "posterndrop", 01730);
        str_clear(&p);
        str_printf(&p, "%s/%s", s.s, PROTO_PRIVATE_DIR);
        set_owner(p.s, "postern", "postern", 0700);
        str_clear(&p);
        str_printf(&p, "%s/public", s.s);
        set_owner(p.s, "postern", "posterndrop", 0710);
        str_free(&p);
    }

    /* Maps. */
    str_clear(&s);
    str_printf(&s, "%s/maps", abs);
    if (mkdir(s.s, 0755) < 0 && errno != EEXIST)
        cmd_fail("%s: %s", s.s, strerror(errno));
    for (size_t i = 0; i < sizeof(init_maps) / sizeof(init_maps[0]); i++) {
        bool secret = strcmp(init_maps[i].name, "passwd") == 0;
        struct str p = STR_INIT;
        str_init(&p);
        str_printf(&p, "%s/%s", s.s, init_maps[i].name);
        struct str text = STR_INIT;
        str_init(&text);
        str_sets(&text, init_maps[i].text);
        if (strcmp(init_maps[i].name, "aliases") == 0) {
            /* RFC 5321 4.5.1 and the habit of every Unix host: the postmaster's and
             * root's mail reaches a person. */
            str_appends(&text, "postmaster root\n");
            if (postmaster != NULL)
                str_printf(&text, "root %s\n", postmaster);
        }
        /* The password table: root's alone (auth, its only reader, runs as root). */
        if (file_write_atomic(p.s, text.s, text.len,
                              secret ? 0600 : 0644, &err) < 0)
            cmd_fail("%s", err.s);
        str_free(&text);
        if (secret && root)
            set_owner(p.s, "root", "root", 0600);
        if (map_build(p.s, &err) < 0)
            cmd_fail("%s", err.s);
        if (secret && root) {
            str_appends(&p, ".cdb");
            set_owner(p.s, "root", "root", 0600);
        }
        str_free(&p);
    }

    /* Mail store. */
    str_clear(&s);
    str_sets(&s, mdir);
    if (mkdir(s.s, 0750) < 0 && errno != EEXIST)
        cmd_fail("%s: %s", s.s, strerror(errno));
    if (root)
        set_owner(s.s, "vmail", "vmail", 0750);

    /* TLS: a self-signed certificate for the host name until a real one replaces it;
     * smtpd, pop3d and imapd all read this pair (before they chroot, as root). */
    {
        char sysname[256] = "localhost";
        const char *cn = hostname;
        struct str cert = STR_INIT, key = STR_INIT;
        if (cn == NULL) {
            if (gethostname(sysname, sizeof(sysname) - 1) < 0 || !valid_domain(sysname))
                strcpy(sysname, "localhost");
            cn = sysname;
        }
        str_clear(&s);
        str_printf(&s, "%s/tls", abs);
        if (mkdir(s.s, 0755) < 0 && errno != EEXIST)
            cmd_fail("%s: %s", s.s, strerror(errno));
        str_printf(&cert, "%s/cert.pem", s.s);
        str_printf(&key, "%s/key.pem", s.s);
        if (tls_make_self_signed(cn, cert.s, key.s, &err) < 0)
            cmd_fail("%s", err.s);
        if (root)
            set_owner(key.s, "root", "root", 0600);
        str_free(&cert);
        str_free(&key);
    }

    /* Service table. */
    str_clear(&s);
    str_printf(&s,
        "# master.conf: the services master(8) runs; see master(8).\n"
        "# service    type    listen            user     chroot  limit  command [arguments]\n"
        "smtp         inet    %-17ld -        y       100    smtpd\n"
        "qmgr         daemon  %-17s -        y       1      qmgr\n"
        "pickup       daemon  %-17s -        y       1      pickup\n"
        "resolve      unix    %-17s -        y       -      resolve\n"
        "local        unix    %-17s root     n       -      local\n"
        "relay        unix    %-17s -        y       -      smtp\n"
        "auth         unix    %-17s root     n       -      auth\n"
        "anvil        unix    %s,%s -  y       1      anvil\n",
        port_base >= 0 ? port_base + 25 : 25L, PROTO_PATH_QMGR, PROTO_PATH_PICKUP,
        PROTO_PATH_RESOLVE, PROTO_PATH_LOCAL, PROTO_PATH_SMTP, PROTO_PATH_AUTH,
        PROTO_PATH_ANVIL, PROTO_PATH_ANVIL_LOGIN);
    str_printf(&s,
        "submission   inet    %-17ld -        y       100    smtpd -o smtpd_sasl_auth_enable=yes"
        " -o smtpd_tls_security_level=encrypt -o smtpd_client_auth_required=yes"
        " -o smtpd_greet_wait=0s\n"
        "submissions  inet    %-17ld -        y       100    smtpd -o smtpd_sasl_auth_enable=yes"
        " -o smtpd_tls_wrappermode=yes -o smtpd_client_auth_required=yes"
        " -o smtpd_greet_wait=0s\n",
        port_base >= 0 ? port_base + 587 : 587L, port_base >= 0 ? port_base + 465 : 465L);
    str_printf(&s,
        "pop3         inet    %-17ld nobody   y       100    pop3d -l\n"
        "pop3s        inet    %-17ld nobody   y       100    pop3d -l -o pop3d_tls_wrapper=yes\n"
        "pop3d        unix    %-17s root     n       100    pop3d\n",
        port_base >= 0 ? port_base + 110 : 110L, port_base >= 0 ? port_base + 995 : 995L,
        PROTO_PATH_POP3);
    /* imapd's post-login service is one process, so that it can send all the
     * connections of a user to the same session process (imapd(8)). */
    str_printf(&s,
        "imap         inet    %-17ld nobody   y       100    imapd -l\n"
        "imaps        inet    %-17ld nobody   y       100    imapd -l -o imapd_tls_wrapper=yes\n"
        "imapd        unix    %-17s root     n       1      imapd\n",
        port_base >= 0 ? port_base + 143 : 143L, port_base >= 0 ? port_base + 993 : 993L,
        PROTO_PATH_IMAP);
    /* TLS for the pre-auth processes of both: one process relays every TLS client,
     * so that none keeps a process of its own after login (tlsproxy(8)). */
    str_printf(&s,
        "tlsproxy     unix    %-17s nobody   y       1      tlsproxy\n",
        PROTO_PATH_TLSPROXY);
    write_file(abs, "master.conf", s.s, 0644);

    /* postern.conf, last: its presence marks a finished instance. */
    str_clear(&s);
    str_printf(&s,
        "# postern.conf: this instance's settings; see postern.conf(5).\n"
        "# \"postern config\" shows every key with its value or default.\n"
        "queue_directory = %s\n"
        "virtual_mailbox_base = %s\n"
        "virtual_mailbox_domains =", qdir, mdir);
    for (size_t i = 0; i < ndomains; i++)
        str_printf(&s, "%s %s", i == 0 ? "" : ",", domains[i]);
    str_printf(&s,
        "\n"
        "virtual_mailbox_maps = cdb:%s/maps/vmailbox\n"
        "alias_maps = cdb:%s/maps/aliases\n"
        "virtual_alias_maps = cdb:%s/maps/virtual\n"
        "auth_password_maps = cdb:%s/maps/passwd\n", abs, abs, abs, abs);
    str_printf(&s, "smtpd_tls_cert_file = %s/tls/cert.pem\n"
                   "smtpd_tls_key_file = %s/tls/key.pem\n", abs, abs);
    if (hostname != NULL)
        str_printf(&s, "myhostname = %s\n", hostname);
    if (port_base >= 0)
        str_printf(&s, "inet_interfaces = 127.0.0.1, ::1\n");
    write_file(abs, "postern.conf", s.s, 0644);

    struct conf *c = conf_load(abs, &err);
    if (c == NULL)
        cmd_fail("%s", err.s);
    conf_free(c);
    printf("instance created in %s\nstart it with: postern -c %s start\n", abs, abs);
    if (postmaster == NULL)
        printf("mail to postmaster and root goes to the system user root until the first "
               "\"postern user add\" (or an alias \"root\" in the aliases map)\n");
    free(abs);
    free(qdir);
    free(mdir);
    for (size_t i = 0; i < ndomains; i++)
        free((char *)domains[i]);
    str_free(&s);
    str_free(&err);
    return 0;
}
