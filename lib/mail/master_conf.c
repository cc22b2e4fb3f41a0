/* master.conf reader (format in master_conf.h and master.conf(5)).  The file comes
 * from the administrator, but it is still parsed defensively: bounded sizes and
 * counts, every field checked against a strict grammar, messages "file:line: ...". */
#include "master_conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "str.h"
#include "xmalloc.h"

#define FIELDS_MIN 7    /* name type listen user chroot limit command */

struct parser {
    const char *name;
    struct master_conf *mc;
    struct str *err;
};

static int parse_error(struct parser *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int parse_error(struct parser *p, unsigned line, const char *fmt, ...)
{
    va_list ap;

    str_clear(p->err);
    str_printf(p->err, "%s:%u: ", p->name, line);
    va_start(ap, fmt);
    str_vprintf(p->err, fmt, ap);
    va_end(ap);
    return -1;
}

const char *master_type_name(enum master_type type)
{
    switch (type) {
    case MASTER_INET: return "inet";
    case MASTER_UNIX: return "unix";
    case MASTER_DAEMON: return "daemon";
    }
    return "?";
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '.' || c == '_' || c == '-';
}

/* Service, command and user names: [A-Za-z0-9._-], not starting with '-' or '.'. */
static bool name_valid(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max || s[0] == '-' || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_name_char(s[i]))
            return false;
    return true;
}

/* A socket path under queue_directory: relative, no empty component, none that
 * starts with '.' (so no ".." either) or '-'. */
static bool path_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MASTER_PATH_MAX || s[0] == '/' || s[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_name_char(s[i]) && s[i] != '/')
            return false;
    for (const char *c = s; c != NULL; ) {
        const char *slash = strchr(c, '/');
        size_t len = slash ? (size_t)(slash - c) : strlen(c);
        if (len == 0 || c[0] == '.' || c[0] == '-')
            return false;
        c = slash ? slash + 1 : NULL;
    }
    return true;
}

/* Decimal number in [min, max]; false on anything else. */
static bool number_parse(const char *s, long min, long max, long *out)
{
    long v = 0;

    if (*s == '\0' || strlen(s) > 9)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* inet listen column: PORT, HOST:PORT (IPv4 literal) or [HOST]:PORT (IPv6). */
static int listen_inet(struct parser *p, unsigned line, struct master_service *s)
{
    const char *l = s->listen, *portstr = l;
    char host[INET6_ADDRSTRLEN + 1];
    unsigned char bin[sizeof(struct in6_addr)];
    long port;

    host[0] = '\0';
    if (l[0] == '[') {
        const char *end = strchr(l, ']');
        size_t n = end ? (size_t)(end - l - 1) : 0;
        if (end == NULL || end[1] != ':' || n == 0 || n >= sizeof(host))
            return parse_error(p, line, "bad inet listen address \"%s\"", l);
        memcpy(host, l + 1, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, bin) != 1)
            return parse_error(p, line, "bad IPv6 address \"%s\"", host);
        portstr = end + 2;
    } else if (strchr(l, ':') != NULL) {
        const char *colon = strchr(l, ':');
        size_t n = (size_t)(colon - l);
        if (n == 0 || n >= sizeof(host) || strchr(colon + 1, ':') != NULL)
            return parse_error(p, line, "bad inet listen address \"%s\" (IPv6: [addr]:port)", l);
        memcpy(host, l, n);
        host[n] = '\0';
        if (inet_pton(AF_INET, host, bin) != 1)
            return parse_error(p, line, "bad IPv4 address \"%s\"", host);
        portstr = colon + 1;
    }
    if (!number_parse(portstr, 1, 65535, &port))
        return parse_error(p, line, "bad port \"%s\"", portstr);
    s->port = (unsigned)port;
    s->host = host[0] ? xstrdup(host) : NULL;
    return 0;
}

static void service_free(struct master_service *s)
{
    free(s->name);
    free(s->listen);
    free(s->host);
    free(s->path);
    if (s->paths)
        strv_free(s->paths);
    free(s->user);
    free(s->command);
    if (s->args)
        strv_free(s->args);
    memset(s, 0, sizeof(*s));
}

/* Two services may not listen on the same thing. */
static bool listen_clash(const struct master_service *a, const struct master_service *b)
{
    if ((a->type == MASTER_INET) != (b->type == MASTER_INET))
        return false;
    if (a->type == MASTER_INET) {
        if (a->port != b->port)
            return false;
        return a->host == NULL || b->host == NULL || strcmp(a->host, b->host) == 0;
    }
    for (size_t i = 0; i < a->npaths; i++)
        for (size_t k = 0; k < b->npaths; k++)
            if (strcmp(a->paths[i], b->paths[k]) == 0)
                return true;
    return false;
}

/* unix and daemon listen column: PATH, or up to MASTER_PATHS_MAX of them separated
 * by commas (one service reached through several directories). */
static int listen_paths(struct parser *p, unsigned line, struct master_service *s)
{
    char *copy = xstrdup(s->listen), *c = copy;

    s->paths = xcalloc(MASTER_PATHS_MAX + 1, sizeof(char *));
    for (;;) {
        char *comma = strchr(c, ',');

        if (comma != NULL)
            *comma = '\0';
        if (!path_valid(c)) {
            parse_error(p, line, "bad socket path \"%s\" (relative to queue_directory)", c);
            break;
        }
        if (s->npaths == MASTER_PATHS_MAX) {
            parse_error(p, line, "more than %d socket paths", MASTER_PATHS_MAX);
            break;
        }
        for (size_t i = 0; i < s->npaths; i++)
            if (strcmp(s->paths[i], c) == 0) {
                parse_error(p, line, "socket path \"%s\" given twice", c);
                goto fail;
            }
        s->paths[s->npaths++] = xstrdup(c);
        if (comma == NULL) {
            s->path = xstrdup(s->paths[0]);
            free(copy);
            return 0;
        }
        c = comma + 1;
    }
fail:
    free(copy);
    return -1;
}

/* One logical line split into fields (the fields point into a scratch buffer). */
static int service_add(struct parser *p, unsigned line, char **f, size_t nf)
{
    struct master_conf *mc = p->mc;
    struct master_service s;
    long limit;

    if (nf < FIELDS_MIN)
        return parse_error(p, line, "%zu fields, want at least %d "
                           "(service type listen user chroot limit command)", nf, FIELDS_MIN);
    if (nf - FIELDS_MIN > MASTER_ARGS_MAX)
        return parse_error(p, line, "more than %d arguments", MASTER_ARGS_MAX);
    if (mc->nsvc >= MASTER_SERVICES_MAX)
        return parse_error(p, line, "more than %d services", MASTER_SERVICES_MAX);
    if (!name_valid(f[0], MASTER_NAME_MAX))
        return parse_error(p, line, "bad service name \"%s\"", f[0]);
    if (master_conf_find(mc, f[0]) != NULL)
        return parse_error(p, line, "duplicate service \"%s\" (first at line %u)", f[0],
                           master_conf_find(mc, f[0])->line);

    memset(&s, 0, sizeof(s));
    s.line = line;
    if (strcmp(f[1], "inet") == 0)
        s.type = MASTER_INET;
    else if (strcmp(f[1], "unix") == 0)
        s.type = MASTER_UNIX;
    else if (strcmp(f[1], "daemon") == 0)
        s.type = MASTER_DAEMON;
    else
        return parse_error(p, line, "bad service type \"%s\" (inet, unix or daemon)", f[1]);

    s.listen = xstrdup(f[2]);
    if (s.type == MASTER_INET) {
        if (listen_inet(p, line, &s) < 0)
            goto fail;
    } else if (s.type == MASTER_DAEMON && strcmp(f[2], "-") == 0) {
        s.path = NULL;
    } else if (listen_paths(p, line, &s) < 0) {
        goto fail;
    }

    if (strcmp(f[3], "-") != 0) {
        if (!name_valid(f[3], 32)) {
            parse_error(p, line, "bad user name \"%s\"", f[3]);
            goto fail;
        }
        s.user = xstrdup(f[3]);
    }

    if (strcmp(f[4], "y") == 0)
        s.chroot = true;
    else if (strcmp(f[4], "n") == 0)
        s.chroot = false;
    else {
        parse_error(p, line, "bad chroot \"%s\" (y or n)", f[4]);
        goto fail;
    }

    if (strcmp(f[5], "-") == 0)
        s.limit = 0;
    else if (number_parse(f[5], 1, MASTER_LIMIT_MAX, &limit))
        s.limit = (int)limit;
    else {
        parse_error(p, line, "bad process limit \"%s\" (1..%d or -)", f[5], MASTER_LIMIT_MAX);
        goto fail;
    }

    if (!name_valid(f[6], MASTER_NAME_MAX)) {
        parse_error(p, line, "bad command \"%s\" (a program name in the daemon directory)", f[6]);
        goto fail;
    }
    s.command = xstrdup(f[6]);

    s.nargs = nf - FIELDS_MIN;
    s.args = xcalloc(s.nargs + 1, sizeof(char *));
    for (size_t i = 0; i < s.nargs; i++) {
        const char *a = f[FIELDS_MIN + i];
        s.args[i] = xstrdup(a);
        if (strcmp(a, "-o") == 0) {
            const char *kv = i + 1 < s.nargs ? f[FIELDS_MIN + i + 1] : NULL;
            if (kv == NULL || kv[0] == '=' || strchr(kv, '=') == NULL) {
                parse_error(p, line, "-o wants key=value");
                goto fail;
            }
        }
    }

    for (size_t i = 0; i < mc->nsvc; i++)
        if (listen_clash(&mc->svc[i], &s)) {
            parse_error(p, line, "service \"%s\" listens on \"%s\" as service \"%s\" does "
                        "(line %u)", f[0], s.listen, mc->svc[i].name,
                        mc->svc[i].line);
            goto fail;
        }

    s.name = xstrdup(f[0]);
    mc->svc = xreallocarray(mc->svc, mc->nsvc + 1, sizeof(*mc->svc));
    mc->svc[mc->nsvc++] = s;
    return 0;

fail:
    service_free(&s);
    return -1;
}

/* Splits buf (modified in place) on blanks; at most max fields, count in *nf. */
static int fields_split(char *buf, char **f, size_t max, size_t *nf)
{
    size_t n = 0;
    char *c = buf;

    for (;;) {
        while (*c == ' ' || *c == '\t')
            c++;
        if (*c == '\0')
            break;
        if (n == max)
            return -1;
        f[n++] = c;
        while (*c != '\0' && *c != ' ' && *c != '\t')
            c++;
        if (*c != '\0')
            *c++ = '\0';
    }
    *nf = n;
    return 0;
}

static int entry_finish(struct parser *p, unsigned line, struct str *entry)
{
    char *f[FIELDS_MIN + MASTER_ARGS_MAX + 1];
    size_t nf;

    if (entry->len == 0)
        return 0;
    if (fields_split(entry->s, f, sizeof(f) / sizeof(f[0]), &nf) < 0)
        return parse_error(p, line, "more than %d arguments", MASTER_ARGS_MAX);
    if (service_add(p, line, f, nf) < 0)
        return -1;
    str_clear(entry);
    return 0;
}

int master_conf_parse(const char *name, const char *text, size_t len,
                      struct master_conf *mc, struct str *err)
{
    struct parser p = { name, mc, err };
    struct str entry = STR_INIT;
    unsigned lineno = 0, entry_line = 0;
    size_t pos = 0;
    int rc = -1;

    memset(mc, 0, sizeof(*mc));
    mc->path = xstrdup(name);
    if (len > MASTER_CONF_SIZE_MAX) {
        parse_error(&p, 0, "file larger than %u bytes", MASTER_CONF_SIZE_MAX);
        goto out;
    }
    while (pos < len) {
        const char *l = text + pos, *nl = memchr(l, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - l) : len - pos;
        size_t i = 0;

        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && l[n - 1] == '\r')
            n--;
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)l[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                parse_error(&p, lineno, "control character in line");
                goto out;
            }
        }
        while (i < n && (l[i] == ' ' || l[i] == '\t'))
            i++;
        if (i == n || l[i] == '#')
            continue;
        if (i > 0) {
            if (entry.len == 0) {
                parse_error(&p, lineno, "continuation line without a service before it");
                goto out;
            }
            str_appendc(&entry, ' ');
            str_append(&entry, l + i, n - i);
            continue;
        }
        if (entry_finish(&p, entry_line, &entry) < 0)
            goto out;
        str_append(&entry, l, n);
        entry_line = lineno;
    }
    if (entry_finish(&p, entry_line, &entry) < 0)
        goto out;
    rc = 0;
out:
    str_free(&entry);
    if (rc < 0) {
        master_conf_free(mc);
    }
    return rc;
}

int master_conf_load(const char *path, struct master_conf *mc, struct str *err)
{
    struct stat st;
    struct str buf = STR_INIT;
    int fd, rc;

    memset(mc, 0, sizeof(*mc));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        str_clear(err);
        str_printf(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        str_clear(err);
        str_printf(err, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t r;
        if (buf.len > MASTER_CONF_SIZE_MAX)
            break;
        str_reserve(&buf, 8192);
        r = read(fd, buf.s + buf.len, 8192);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            str_clear(err);
            str_printf(err, "%s: read: %s", path, strerror(errno));
            close(fd);
            str_free(&buf);
            return -1;
        }
        if (r == 0)
            break;
        buf.len += (size_t)r;
        buf.s[buf.len] = '\0';
    }
    close(fd);
    rc = master_conf_parse(path, buf.s ? buf.s : "", buf.len, mc, err);
    str_free(&buf);
    return rc;
}

void master_conf_free(struct master_conf *mc)
{
    for (size_t i = 0; i < mc->nsvc; i++)
        service_free(&mc->svc[i]);
    free(mc->svc);
    free(mc->path);
    memset(mc, 0, sizeof(*mc));
}

const struct master_service *master_conf_find(const struct master_conf *mc, const char *name)
{
    for (size_t i = 0; i < mc->nsvc; i++)
        if (strcmp(mc->svc[i].name, name) == 0)
            return &mc->svc[i];
    return NULL;
}
