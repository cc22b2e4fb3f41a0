/* "postern user add | del | list": virtual users.  A user is one line in the
 * password map (ADDRESS HASH) and one in the mailbox map (ADDRESS DOMAIN/LOCAL/).
 * The password map, text and table, is kept readable by its owner alone: root:root
 * mode 0600 when run as root (auth, its only reader, runs as root).
 * The address comes from the command line and becomes a path under the mail store,
 * so its local part is checked to be a safe file name. */
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "map.h"
#include "postern.h"
#include "str.h"
#include "xmalloc.h"

#define LOCAL_MAX 64
#define PASSWORD_MAX 1024

struct user_addr {
    char *addr;         /* lower-cased local@domain */
    char *local;
    char *domain;
};

static void addr_parse(const struct conf *c, const char *arg, struct user_addr *ua)
{
    const char *at = strrchr(arg, '@');
    if (at == NULL || at == arg || at[1] == '\0')
        cmd_fail("%s: expected local-part@domain", arg);
    ua->local = xstrndup(arg, (size_t)(at - arg));
    ua->domain = xstrdup(at + 1);
    for (char *p = ua->local; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (char *p = ua->domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);

    if (strlen(ua->local) > LOCAL_MAX)
        cmd_fail("%s: local part longer than %d characters", arg, LOCAL_MAX);
    if (ua->local[0] == '.')
        cmd_fail("%s: local part may not start with '.'", arg);
    for (const char *p = ua->local; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= ' ' || ch == 0x7f || ch == '/' || ch == '@' || ch == '"' || ch == '\\'
            || ch == '#' || ch == ',')
            cmd_fail("%s: local part holds a character not allowed here", arg);
    }
    char **domains = conf_list(c, CONF_virtual_mailbox_domains);
    bool ok = false;
    for (size_t i = 0; domains[i] != NULL; i++)
        if (strcasecmp(domains[i], ua->domain) == 0)
            ok = true;
    strv_free(domains);
    if (!ok)
        cmd_fail("%s: domain %s is not in virtual_mailbox_domains", arg, ua->domain);
    struct str a = STR_INIT;
    str_init(&a);
    str_printf(&a, "%s@%s", ua->local, ua->domain);
    ua->addr = str_detach(&a);
}

static void addr_free(struct user_addr *ua)
{
    free(ua->addr);
    free(ua->local);
    free(ua->domain);
}

/* One line of at most PASSWORD_MAX bytes from f, checked; NULL at end of input. */
static char *password_line(FILE *f)
{
    char buf[PASSWORD_MAX + 2];
    if (fgets(buf, sizeof(buf), f) == NULL)
        return NULL;
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (n > PASSWORD_MAX)
        cmd_fail("password longer than %d bytes", PASSWORD_MAX);
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    if (n == 0)
        cmd_fail("empty password");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            cmd_fail("password holds a control character");
    char *p = xstrdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return p;
}

static struct termios tty_saved;
static bool tty_echo_off;

static void tty_restore(void)
{
    if (tty_echo_off) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
        tty_echo_off = false;
    }
}

static void tty_signal(int sig)
{
    tty_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Prompts on standard error and reads a line from the terminal without echo. */
static char *tty_read(const char *prompt)
{
    struct termios t;
    if (tcgetattr(STDIN_FILENO, &tty_saved) < 0)
        cmd_fail("terminal: %s", strerror(errno));
    t = tty_saved;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    t.c_lflag |= ICANON;
    signal(SIGINT, tty_signal);
    signal(SIGTERM, tty_signal);
    signal(SIGQUIT, tty_signal);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0)
        cmd_fail("terminal: %s", strerror(errno));
    tty_echo_off = true;
    /* the prompt only once echo is off: what is typed after it is never shown */
    fputs(prompt, stderr);
    fflush(stderr);
    char *p = password_line(stdin);
    tty_restore();
    fputc('\n', stderr);
    if (p == NULL)
        cmd_fail("no password given");
    return p;
}

/* From a terminal: asked twice without echo, the two must match.  Otherwise one
 * line from standard input, for scripts. */
static char *read_password(void)
{
    if (!isatty(STDIN_FILENO)) {
        char *p = password_line(stdin);
        if (p == NULL)
            cmd_fail("no password on standard input");
        return p;
    }
    atexit(tty_restore);
    char *p1 = tty_read("Password: ");
    char *p2 = tty_read("Password again: ");
    bool same = strcmp(p1, p2) == 0;
    explicit_bzero(p2, strlen(p2));
    free(p2);
    if (!same) {
        explicit_bzero(p1, strlen(p1));
        cmd_fail("the passwords differ: nothing changed");
    }
    return p1;
}

static char *hash_password(const char *password)
{
    char *salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
    void *data = NULL;
    int size = 0;

    if (salt == NULL)
        cmd_fail("cannot make a yescrypt salt: %s", strerror(errno));
    char *h = crypt_ra(password, salt, &data, &size);
    free(salt);
    if (h == NULL || h[0] == '*')
        cmd_fail("cannot hash the password: %s", strerror(errno));
    char *copy = xstrdup(h);
    explicit_bzero(data, (size_t)size);
    free(data);
    return copy;
}

static void rebuild(const char *path)
{
    struct str err = STR_INIT;
    str_init(&err);
    if (map_build(path, &err) < 0)
        cmd_fail("%s", err.s);
    str_free(&err);
}

/* Makes one file of the password map private: mode 0600, and root's when run as
 * root.  Opened without following a symbolic link, changed through the descriptor. */
static void make_private(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat sb;

    if (fd < 0)
        cmd_fail("%s: %s", path, strerror(errno));
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
        cmd_fail("%s: not a regular file", path);
    if ((geteuid() == 0 && (sb.st_uid != 0 || sb.st_gid != 0) && fchown(fd, 0, 0) < 0)
        || fchmod(fd, 0600) < 0)
        cmd_fail("%s: %s", path, strerror(errno));
    close(fd);
}

static void passwd_private(const char *pw_file)
{
    struct str cdb = STR_INIT;

    str_init(&cdb);
    str_printf(&cdb, "%s.cdb", pw_file);
    make_private(pw_file);
    make_private(cdb.s);
    str_free(&cdb);
}

/* 1 when the text map at path has addr, else 0; fails on a read error. */
static int user_in_map(const char *path, const char *addr)
{
    struct str err = STR_INIT;
    int r;

    str_init(&err);
    r = textmap_has(path, addr, &err);
    if (r < 0)
        cmd_fail("%s", err.s);
    str_free(&err);
    return r;
}

/* The first user becomes the mail recipient of root (and so of postmaster, which
 * "postern init" aliases to root) unless the aliases map names someone already. */
static void root_alias_default(const struct conf *c, const char *addr)
{
    struct str err = STR_INIT, line = STR_INIT;
    char *file = cmd_map_file(c, CONF_alias_maps, "aliases");

    str_init(&err);
    str_init(&line);
    if (conf_str(c, CONF_alias_maps)[0] == '\0' || access(file, F_OK) < 0) {
        free(file);         /* an instance without the aliases map of "postern init" */
        str_free(&err);
        str_free(&line);
        return;
    }
    int r = textmap_has(file, "root", &err);
    if (r < 0)
        cmd_fail("%s", err.s);
    if (r == 0) {
        str_printf(&line, "root %s", addr);
        if (textmap_rewrite(file, NULL, line.s, 0644, &err) < 0)
            cmd_fail("%s", err.s);
        rebuild(file);
        printf("%s: receives the mail of root and postmaster (alias in %s)\n", addr, file);
    }
    free(file);
    str_free(&err);
    str_free(&line);
}

static int user_add(const struct conf *c, const char *arg)
{
    struct user_addr ua;
    struct str err = STR_INIT, line = STR_INIT;
    char *pw_file = cmd_map_file(c, CONF_auth_password_maps, "passwd");
    char *mb_file = cmd_map_file(c, CONF_virtual_mailbox_maps, "vmailbox");

    str_init(&err);
    str_init(&line);
    addr_parse(c, arg, &ua);
    int r1 = user_in_map(pw_file, ua.addr);
    int r2 = user_in_map(mb_file, ua.addr);
    if (r1 > 0 || r2 > 0)
        cmd_fail("%s: user exists", ua.addr);

    char *password = read_password();
    char *hash = hash_password(password);
    explicit_bzero(password, strlen(password));
    free(password);

    str_printf(&line, "%s %s", ua.addr, hash);
    if (textmap_rewrite(pw_file, NULL, line.s, 0600, &err) < 0)
        cmd_fail("%s", err.s);
    str_clear(&line);
    str_printf(&line, "%s %s/%s/", ua.addr, ua.domain, ua.local);
    if (textmap_rewrite(mb_file, NULL, line.s, 0644, &err) < 0)
        cmd_fail("%s", err.s);
    rebuild(pw_file);
    rebuild(mb_file);
    passwd_private(pw_file);
    printf("%s: added\n", ua.addr);
    root_alias_default(c, ua.addr);
    free(hash);
    free(pw_file);
    free(mb_file);
    addr_free(&ua);
    str_free(&err);
    str_free(&line);
    return 0;
}

static int user_passwd(const struct conf *c, const char *arg)
{
    struct user_addr ua;
    struct str err = STR_INIT, line = STR_INIT;
    char *pw_file = cmd_map_file(c, CONF_auth_password_maps, "passwd");

    str_init(&err);
    str_init(&line);
    addr_parse(c, arg, &ua);
    if (user_in_map(pw_file, ua.addr) == 0)
        cmd_fail("%s: no such user", ua.addr);
    char *password = read_password();
    char *hash = hash_password(password);
    explicit_bzero(password, strlen(password));
    free(password);
    str_printf(&line, "%s %s", ua.addr, hash);
    if (textmap_rewrite(pw_file, ua.addr, line.s, 0600, &err) < 0)
        cmd_fail("%s", err.s);
    rebuild(pw_file);
    printf("%s: password changed\n", ua.addr);
    free(hash);
    free(pw_file);
    addr_free(&ua);
    str_free(&err);
    str_free(&line);
    return 0;
}

static int user_del(const struct conf *c, const char *arg)
{
    struct user_addr ua;
    struct str err = STR_INIT;
    char *pw_file = cmd_map_file(c, CONF_auth_password_maps, "passwd");
    char *mb_file = cmd_map_file(c, CONF_virtual_mailbox_maps, "vmailbox");

    str_init(&err);
    addr_parse(c, arg, &ua);
    int r1 = user_in_map(pw_file, ua.addr);
    int r2 = user_in_map(mb_file, ua.addr);
    if (r1 == 0 && r2 == 0)
        cmd_fail("%s: no such user", ua.addr);
    if (r1 > 0 && textmap_rewrite(pw_file, ua.addr, NULL, 0600, &err) < 0)
        cmd_fail("%s", err.s);
    if (r2 > 0 && textmap_rewrite(mb_file, ua.addr, NULL, 0644, &err) < 0)
        cmd_fail("%s", err.s);
    rebuild(pw_file);
    rebuild(mb_file);
    passwd_private(pw_file);
    printf("%s: removed (its mail is kept)\n", ua.addr);
    free(pw_file);
    free(mb_file);
    addr_free(&ua);
    str_free(&err);
    return 0;
}

static void print_key(const char *key, void *arg)
{
    (void)arg;
    puts(key);
}

static int user_list(const struct conf *c)
{
    struct str err = STR_INIT;
    char *pw_file = cmd_map_file(c, CONF_auth_password_maps, "passwd");

    str_init(&err);
    if (textmap_keys(pw_file, print_key, NULL, &err) < 0)
        cmd_fail("%s", err.s);
    free(pw_file);
    str_free(&err);
    return 0;
}

int cmd_user(int argc, char **argv)
{
    if (argc < 2)
        cmd_usage("user");
    struct conf *c = cmd_conf();
    int rc;
    if (strcmp(argv[1], "add") == 0 && argc == 3)
        rc = user_add(c, argv[2]);
    else if (strcmp(argv[1], "passwd") == 0 && argc == 3)
        rc = user_passwd(c, argv[2]);
    else if (strcmp(argv[1], "del") == 0 && argc == 3)
        rc = user_del(c, argv[2]);
    else if (strcmp(argv[1], "list") == 0 && argc == 2)
        rc = user_list(c);
    else
        cmd_usage("user");
    conf_free(c);
    return rc;
}
