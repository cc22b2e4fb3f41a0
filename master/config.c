/* master: turns postern.conf and master.conf into the list of services to run
 * (argument vectors, addresses to bind, limits), checking everything that can be
 * checked before anything is bound: users, -o overrides (conf_load has checked every
 * value of postern.conf against its type).  The
 * configuration files are the administrator's; they are still checked, not trusted. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "str.h"
#include "xmalloc.h"

struct strv {
    char **v;
    size_t n;
};

static void strv_add(struct strv *sv, const char *s)
{
    sv->v = xreallocarray(sv->v, sv->n + 2, sizeof(char *));
    sv->v[sv->n++] = xstrdup(s);
    sv->v[sv->n] = NULL;
}

static void addr_add(struct service *s, const char *host, bool optional)
{
    s->addrs = xreallocarray(s->addrs, s->naddrs + 1, sizeof(*s->addrs));
    s->addrs[s->naddrs].host = xstrdup(host);
    s->addrs[s->naddrs].optional = optional;
    s->naddrs++;
}

void service_free(struct service *s)
{
    if (s == NULL)
        return;
    svc_unbind(s);
    if (s->status_rd >= 0)
        close(s->status_rd);
    if (s->status_wr >= 0)
        close(s->status_wr);
    free(s->name);
    free(s->exe);
    if (s->argv)
        strv_free(s->argv);
    for (size_t i = 0; i < s->naddrs; i++)
        free(s->addrs[i].host);
    free(s->addrs);
    free(s->bindkey);
    free(s->fds);
    free(s->child);
    free(s);
}

static void inet_addrs(struct service *s, const struct master_service *def,
                       const struct conf *conf)
{
    char **v;

    if (def->host != NULL) {
        addr_add(s, def->host, false);
        return;
    }
    v = conf_list(conf, CONF_inet_interfaces);
    for (size_t i = 0; v[i] != NULL; i++) {
        if (strcmp(v[i], "all") == 0) {
            addr_add(s, "0.0.0.0", false);
            addr_add(s, "::", true);
        } else if (strcmp(v[i], "loopback-only") == 0) {
            addr_add(s, "127.0.0.1", false);
            addr_add(s, "::1", true);
        } else {
            addr_add(s, v[i], false);
        }
    }
    strv_free(v);
}

/* Checks the service's "-o key=value" arguments against a scratch copy of the
 * configuration, so a bad override is reported now and not by a crashing child. */
static int overrides_check(const struct master_conf *mc, const struct master_service *def,
                           struct conf *scratch, struct str *err)
{
    for (size_t i = 0; i + 1 < def->nargs; i++) {
        const char *kv, *eq;
        char *key;
        struct str why = STR_INIT;
        int rc;

        if (strcmp(def->args[i], "-o") != 0)
            continue;
        kv = def->args[++i];
        eq = strchr(kv, '=');
        key = xstrndup(kv, (size_t)(eq - kv));
        rc = conf_set(scratch, key, eq + 1, &why);
        if (rc < 0)
            str_printf(err, "%s:%u: -o %s", mc->path, def->line, why.s ? why.s : key);
        free(key);
        str_free(&why);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static struct service *service_make(const struct master_conf *mc,
                                    const struct master_service *def,
                                    const struct conf *conf, const char *daemon_dir,
                                    struct str *err)
{
    struct service *s = xcalloc(1, sizeof(*s));
    struct strv argv = { NULL, 0 };
    struct str tmp = STR_INIT;
    const char *user = def->user ? def->user : conf_str(conf, CONF_mail_owner);
    long long deflimit = conf_count(conf, CONF_default_process_limit);

    s->status_rd = s->status_wr = -1;
    s->name = xstrdup(def->name);
    s->type = def->type;
    s->line = def->line;
    s->backoff_s = THROTTLE_FIRST_S;
    s->state = SVC_UNBOUND;

    if (def->limit > 0) {
        s->limit = def->limit;
    } else {
        s->limit = (int)deflimit;
    }

    if (master.root && getpwnam(user) == NULL) {
        str_printf(err, "%s:%u: unknown user \"%s\"", mc->path, def->line, user);
        goto fail;
    }

    str_printf(&tmp, "%s/%s", daemon_dir, def->command);
    s->exe = str_detach(&tmp);
    if (access(s->exe, X_OK) < 0)
        log_warn("%s:%u: service %s: %s: %s", mc->path, def->line, def->name, s->exe,
                 strerror(errno));
    strv_add(&argv, def->command);
    strv_add(&argv, "-c");
    strv_add(&argv, master.config_dir);
    strv_add(&argv, "-s");
    strv_add(&argv, def->name);
    if (master.root) {
        strv_add(&argv, "-u");
        strv_add(&argv, user);
        if (def->chroot)
            strv_add(&argv, "-j");
    }
    if (master.foreground)
        strv_add(&argv, "-f");
    for (size_t i = 0; i < def->nargs; i++)
        strv_add(&argv, def->args[i]);
    s->argv = argv.v;

    str_printf(&tmp, "%s", master_type_name(def->type));
    if (def->type == MASTER_INET) {
        inet_addrs(s, def, conf);
        s->port = def->port;
        for (size_t i = 0; i < s->naddrs; i++)
            str_printf(&tmp, " [%s]:%u", s->addrs[i].host, s->port);
    } else {
        for (size_t i = 0; i < def->npaths; i++) {
            addr_add(s, def->paths[i], false);
            str_printf(&tmp, " %s", def->paths[i]);
        }
    }
    s->bindkey = str_detach(&tmp);
    s->child = xcalloc((size_t)s->limit, sizeof(*s->child));
    svc_busy_setup(s, def, conf);
    return s;

fail:
    str_free(&tmp);
    if (argv.v)
        strv_free(argv.v);
    service_free(s);
    return NULL;
}

/* daemon_directory, or else the directory this program was started from. */
static char *daemon_dir_find(const struct conf *conf, struct str *err)
{
    const char *d = conf_str(conf, CONF_daemon_directory);
    char exe[PATH_MAX];
    ssize_t n;

    if (d[0] != '\0')
        return xstrdup(d);
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        str_printf(err, "cannot find the daemon directory (/proc/self/exe: %s); "
                   "set daemon_directory", n < 0 ? strerror(errno) : "empty");
        return NULL;
    }
    exe[n] = '\0';
    if (strrchr(exe, '/') == NULL) {
        str_printf(err, "cannot find the daemon directory; set daemon_directory");
        return NULL;
    }
    *strrchr(exe, '/') = '\0';
    return xstrdup(exe[0] ? exe : "/");
}

static void services_free(struct service **svc, size_t n)
{
    for (size_t i = 0; i < n; i++)
        service_free(svc[i]);
    free(svc);
}

int master_config_load(const char *config_dir, struct conf **confp,
                       struct service ***svcp, size_t *nsvcp, struct str *err)
{
    struct conf *conf, *scratch = NULL;
    struct master_conf mc;
    struct service **svc = NULL;
    struct str path = STR_INIT;
    char *daemon_dir = NULL;
    size_t n = 0;
    int rc = -1;

    str_clear(err);
    conf = conf_load(config_dir, err);
    if (conf == NULL)
        return -1;
    str_printf(&path, "%s/master.conf", config_dir);
    if (master_conf_load(path.s, &mc, err) < 0) {
        str_free(&path);
        conf_free(conf);
        return -1;
    }
    str_free(&path);
    if (master.root && getpwnam(conf_str(conf, CONF_mail_owner)) == NULL) {
        str_printf(err, "%s/postern.conf: mail_owner: unknown user \"%s\"", config_dir,
                   conf_str(conf, CONF_mail_owner));
        goto out;
    }
    daemon_dir = daemon_dir_find(conf, err);
    if (daemon_dir == NULL)
        goto out;
    scratch = conf_load(config_dir, err);
    if (scratch == NULL)
        goto out;
    svc = xcalloc(mc.nsvc + 1, sizeof(*svc));
    for (size_t i = 0; i < mc.nsvc; i++) {
        if (overrides_check(&mc, &mc.svc[i], scratch, err) < 0)
            goto out;
        svc[n] = service_make(&mc, &mc.svc[i], conf, daemon_dir, err);
        if (svc[n] == NULL)
            goto out;
        n++;
    }
    rc = 0;
out:
    conf_free(scratch);
    master_conf_free(&mc);
    if (rc < 0) {
        free(daemon_dir);
        services_free(svc, n);
        conf_free(conf);
        return -1;
    }
    free(master.daemon_dir);
    master.daemon_dir = daemon_dir;
    *confp = conf;
    *svcp = svc;
    *nsvcp = n;
    return 0;
}

int master_conf_snapshot(const struct conf *conf, struct str *err)
{
    size_t len, off = 0;
    const char *text = conf_text(conf, &len);
    int fd = memfd_create("postern.conf", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0) {
        str_printf(err, "cannot keep a copy of postern.conf: memfd_create: %s",
                   strerror(errno));
        return -1;
    }
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            str_printf(err, "cannot keep a copy of postern.conf: write: %s",
                       n < 0 ? strerror(errno) : "no progress");
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        str_printf(err, "cannot keep a copy of postern.conf: seal: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}
