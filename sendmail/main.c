/* sendmail(1): the command line of the traditional injector (mailq and newaliases
 * are this program under those names).  Parses options as other MTAs do, ignoring
 * the traditional ones that mean nothing here with a warning, loads the config
 * (-C DIR, else $POSTERN_CONFIG_DIR, else the default) and runs one mode: send a
 * message (default), an SMTP session (-bs), list the queue (-bp), rebuild the
 * aliases (-bi) or flush the queue (-q).  See sendmail(1). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "fd.h"
#include "map.h"
#include "dsn_notify.h"
#include "maildrop.h"
#include "proto.h"
#include "queue.h"
#include "sendmail.h"
#include "xmalloc.h"
#include "xtext.h"

enum mode { MODE_SEND, MODE_SMTP, MODE_LIST, MODE_ALIASES, MODE_FLUSH };

/* A SANITIZE=1 build: installed setgid, the process is not dumpable, and the leak
 * checker, which must inspect it through /proc, fails at exit (and cannot read
 * ASAN_OPTIONS either); it is off for such runs only. */
#if defined(__SANITIZE_ADDRESS__)
#define SM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SM_ASAN 1
#endif
#endif
#ifdef SM_ASAN
#include <sys/auxv.h>
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return getauxval(AT_SECURE) ? "detect_leaks=0" : "";
}
#endif

static void warn(const char *fmt, const char *arg)
{
    fputs("sendmail: warning: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
}

static _Noreturn void fail(int ex, const char *fmt, const char *arg)
{
    fputs("sendmail: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(ex);
}

static _Noreturn void usage(void)
{
    fputs("usage: sendmail [-t] [-i] [-f sender] [-F fullname] [-N dsn] [-R ret] [-V envid]\n"
          "                [-C dir] [-v] [recipient ...]\n"
          "       sendmail -bs | -bp | -bi | -q   (mailq = -bp, newaliases = -bi)\n",
          stderr);
    exit(EX_USAGE);
}

/* Gives up the setgid group for good (before running anything as the user). */
static void priv_forget(const struct sm *sm)
{
    if (setresgid(sm->user_gid, sm->user_gid, sm->user_gid) < 0)
        fail(EX_OSERR, "setresgid: %s", strerror(errno));
}

/* xtext (RFC 3461 4) of a -V value. */
static char *xtext_encode(const char *s)
{
    struct str out = STR_INIT;

    str_sets(&out, "");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= '!' && *p <= '~' && *p != '+' && *p != '=')
            str_appendc(&out, (char)*p);
        else
            str_printf(&out, "+%02X", *p);
    }
    return str_detach(&out);
}

/* -bp: "postern queue list", run as the user; postern is next to this program
 * (sbin/) or in ../sbin/ (the built tree's bin/). */
static _Noreturn void run_mailq(struct sm *sm)
{
    char exe[PATH_MAX];
    ssize_t n;
    struct str path = STR_INIT;

    priv_forget(sm);
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        fail(EX_OSERR, "cannot find this program's path: %s", strerror(errno));
    exe[n] = '\0';
    const char *dir = dirname(exe);
    const char *const tries[] = { "%s/postern", "%s/../sbin/postern" };
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
        str_clear(&path);
        str_printf(&path, tries[i], dir);
        if (access(path.s, X_OK) == 0) {
            char *argv[] = { "postern", "-c", (char *)sm->config_dir, "queue", "list", NULL };
            fflush(NULL);
            execv(path.s, argv);
            fail(EX_OSERR, "cannot run postern: %s", strerror(errno));
        }
    }
    fail(EX_UNAVAILABLE, "cannot find the postern command next to %s", dir);
}

/* -bi: every cdb: table of alias_maps compiled again from its text file. */
static int run_newaliases(struct sm *sm)
{
    struct str err = STR_INIT;
    char **specs;
    int ex = EX_OK;

    priv_forget(sm);
    specs = map_specs_split(conf_str(sm->conf, CONF_alias_maps), &err);
    if (specs == NULL)
        fail(EX_CONFIG, "alias_maps: %s", err.s);
    for (size_t i = 0; specs[i] != NULL; i++) {
        if (strncmp(specs[i], "cdb:", 4) != 0) {
            if (sm->verbose)
                warn("%s: not a cdb table, nothing to build", specs[i]);
            continue;
        }
        long n = map_build(specs[i] + 4, &err);
        if (n < 0) {
            fprintf(stderr, "sendmail: %s\n", err.s);
            ex = EX_CANTCREAT;
            str_clear(&err);
        } else if (sm->verbose) {
            fprintf(stderr, "sendmail: %s.cdb: %ld entries\n", specs[i] + 4, n);
        }
    }
    strv_free(specs);
    str_free(&err);
    return ex;
}

/* Who runs us, from getuid() alone (never the environment). */
static void who(struct sm *sm)
{
    struct passwd *pw = getpwuid(sm->uid);

    if (pw == NULL) {
        char num[32];
        snprintf(num, sizeof(num), "%lu", (unsigned long)sm->uid);
        fail(EX_NOUSER, "cannot find the name of uid %s in the password file", num);
    }
    if (!maildrop_login_valid(pw->pw_name))
        fail(EX_NOUSER, "user name \"%s\" cannot be a mail address", pw->pw_name);
    sm->login = xstrdup(pw->pw_name);
    if (pw->pw_gecos != NULL && *pw->pw_gecos != '\0') {
        size_t n = strcspn(pw->pw_gecos, ",");
        if (n > 0) {
            sm->gecos = xmalloc(n + 1);
            memcpy(sm->gecos, pw->pw_gecos, n);
            sm->gecos[n] = '\0';
        }
    }
}

/* The value of an option: attached ("-fjoe") or the next argument. */
static const char *optval(int argc, char **argv, int *i, const char *rest)
{
    if (*rest != '\0')
        return rest;
    if (*i + 1 >= argc)
        fail(EX_USAGE, "option %s needs a value", argv[*i]);
    return argv[++*i];
}

int main(int argc, char **argv)
{
    struct sm sm = { 0 };
    struct sm_envelope env = { 0 };
    struct str err = STR_INIT, addr = STR_INIT;
    const char *config_dir = NULL, *sender = NULL, *notify = NULL;
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    enum mode mode = MODE_SEND;
    bool extract = false, ignore_dots = false;
    char id[QUEUE_ID_SIZE];
    int i, ex;

    fd_std_ensure();
    /* Run with the user's own group; the setgid one only around maildrop/ and public/. */
    sm.uid = getuid();
    sm.user_gid = getgid();
    sm.drop_gid = getegid();
    sm_priv_off(&sm);

    if (strcmp(base, "mailq") == 0)
        mode = MODE_LIST;
    else if (strcmp(base, "newaliases") == 0)
        mode = MODE_ALIASES;

    for (i = 1; i < argc; i++) {
        char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "--help") == 0)
            usage();
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        for (char *p = a + 1; *p != '\0'; p++) {
            const char *v;
            switch (*p) {
            case 't': extract = true; continue;
            case 'i': ignore_dots = true; continue;
            case 'v': sm.verbose = true; continue;
            case 'm': case 'n': case 'U': case 'G': case 'x':
                warn("option -%s ignored", (char[2]){ *p, 0 });
                continue;
            case 'f': case 'r':
                sender = optval(argc, argv, &i, p + 1);
                break;
            case 'F':
                env.fullname = optval(argc, argv, &i, p + 1);
                break;
            case 'C':
                config_dir = optval(argc, argv, &i, p + 1);
                break;
            case 'N':
                v = optval(argc, argv, &i, p + 1);
                if (dsn_notify_parse(v, &addr) < 0)
                    fail(EX_USAGE, "-N %s: expected NEVER, or SUCCESS, FAILURE, DELAY "
                                   "separated by commas", v);
                env.dsn_notify = notify = xstrdup(addr.s);
                break;
            case 'R':
                v = optval(argc, argv, &i, p + 1);
                if (strcasecmp(v, "full") == 0)
                    env.ret = "FULL";
                else if (strcasecmp(v, "hdrs") == 0)
                    env.ret = "HDRS";
                else
                    fail(EX_USAGE, "-R %s: expected full or hdrs", v);
                break;
            case 'V':
                v = optval(argc, argv, &i, p + 1);
                env.envid = xtext_encode(v);
                if (!xtext_valid(env.envid, MAILDROP_ENVID_MAX))
                    fail(EX_USAGE, "-V %s: envelope id too long", v);
                break;
            case 'b':
                v = optval(argc, argv, &i, p + 1);
                if (strcmp(v, "s") == 0)
                    mode = MODE_SMTP;
                else if (strcmp(v, "p") == 0)
                    mode = MODE_LIST;
                else if (strcmp(v, "i") == 0)
                    mode = MODE_ALIASES;
                else if (strcmp(v, "m") == 0)
                    mode = MODE_SEND;
                else
                    fail(EX_USAGE, "-b%s: mode not supported", v);
                break;
            case 'q':
                if (p[1] != '\0')
                    warn("-q%s: queue run options are ignored; flushing the queue", p + 1);
                mode = MODE_FLUSH;
                break;
            case 'o':
                v = optval(argc, argv, &i, p + 1);
                if (strcmp(v, "i") == 0)
                    ignore_dots = true;
                else
                    warn("option -o%s ignored", v);
                break;
            case 'B': case 'e': case 'h': case 'L': case 'O': case 'X': case 'A':
                v = optval(argc, argv, &i, p + 1);
                {
                    struct str o = STR_INIT;
                    str_printf(&o, "-%c%s", *p, v);
                    warn("option %s ignored", o.s);
                    str_free(&o);
                }
                break;
            default:
                warn("unknown option -%s ignored", (char[2]){ *p, 0 });
                continue;
            }
            break;          /* the option took the rest of this argument */
        }
    }

    sm.config_dir = config_dir ? config_dir : conf_default_dir();
    sm.conf = conf_load(sm.config_dir, &err);
    if (sm.conf == NULL)
        fail(EX_CONFIG, "%s", err.s);
    sm.qdir = conf_str(sm.conf, CONF_queue_directory);
    sm.myorigin = conf_str(sm.conf, CONF_myorigin);
    sm.myhostname = conf_str(sm.conf, CONF_myhostname);
    sm.size_limit = conf_size(sm.conf, CONF_message_size_limit);

    switch (mode) {
    case MODE_LIST:
        run_mailq(&sm);
    case MODE_ALIASES:
        ex = run_newaliases(&sm);
        goto done;
    case MODE_FLUSH:
        if (drop_notify(&sm, PROTO_REQ_FLUSH) < 0)
            fail(EX_UNAVAILABLE, "cannot reach pickup to flush the queue: %s",
                 strerror(errno));
        if (sm.verbose)
            fputs("sendmail: queue flush requested\n", stderr);
        ex = EX_OK;
        goto done;
    case MODE_SMTP:
        who(&sm);
        ex = sm_smtp(&sm);
        goto done;
    case MODE_SEND:
        break;
    }

    who(&sm);
    if (sender != NULL) {
        if (sm_addr(&sm, sender, true, &addr, &err) < 0)
            fail(EX_DATAERR, "-f %s", err.s);
        env.sender = xstrdup(addr.s);
    }
    for (; i < argc; i++)
        if (sm_addr_list(&sm, argv[i], &env, &err) < 0)
            fail(EX_DATAERR, "%s", err.s);
    if (!extract && env.nrcpt == 0)
        fail(EX_USAGE, "%s", "no recipients: give them as arguments or use -t");
    ex = sm_message(&sm, stdin, ignore_dots ? SM_INPUT_EOF : SM_INPUT_DOT, extract, &env, id,
                    &err);
    if (ex != EX_OK)
        fail(ex, "%s", err.s);
    if (drop_notify(&sm, PROTO_REQ_SCAN) < 0 && sm.verbose)
        fprintf(stderr, "sendmail: pickup not reached (%s): it will find the message "
                        "on its next scan\n", strerror(errno));
    if (sm.verbose)
        fprintf(stderr, "sendmail: message left in maildrop/ as %s\n", id);
    ex = EX_OK;
done:
    env_free_rcpts(&env);
    free((char *)env.sender);
    free((char *)env.envid);
    free((char *)notify);
    free(sm.login);
    free(sm.gecos);
    conf_free(sm.conf);
    str_free(&err);
    str_free(&addr);
    return ex;
}
