/* User lookup and password verification for auth(8).  The user name and password
 * come from a client through a login process: the name is bounded and checked before
 * it becomes a map key or a shadow lookup; the password only reaches libcrypt.
 * Every path through a login attempt spends one password hash, so that the reply
 * time does not tell whether the user exists. */
#include "auth_check.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <shadow.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "map.h"
#include "passwd_verify.h"
#include "router.h"
#include "xmalloc.h"

#define SYSUSER_MAX 32              /* longest system user name */

struct auth_check {
    struct maplist *passwd;
    struct router *router;
    char *home_mailbox;
};

struct auth_check *auth_check_open(const struct conf *conf, struct str *err)
{
    struct auth_check *ac = xcalloc(1, sizeof(*ac));

    ac->passwd = maplist_open(conf_str(conf, CONF_auth_password_maps), err);
    if (ac->passwd == NULL)
        goto fail;
    ac->router = router_open(conf, err);
    if (ac->router == NULL)
        goto fail;
    ac->home_mailbox = xstrdup(conf_str(conf, CONF_home_mailbox));
    return ac;
fail:
    auth_check_close(ac);
    return NULL;
}

void auth_check_close(struct auth_check *ac)
{
    if (ac == NULL)
        return;
    if (ac->passwd != NULL)
        maplist_close(ac->passwd);
    if (ac->router != NULL)
        router_close(ac->router);
    free(ac->home_mailbox);
    free(ac);
}

/* A system user name: letters, digits, '.', '_', '-', not starting with '-'. */
static bool sysuser_valid(const char *u)
{
    size_t n = strlen(u);

    if (n == 0 || n > SYSUSER_MAX || u[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (!(isascii(c) && (isalnum(c) || c == '.' || c == '_' || c == '-')))
            return false;
    }
    return true;
}

/* home_mailbox: relative, ends in '/', no empty, "." or ".." component. */
static bool relpath_ok(const char *p)
{
    size_t len = strlen(p);

    if (len < 2 || p[0] == '/' || p[len - 1] != '/')
        return false;
    while (*p != '\0') {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                return false;
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

static enum auth_verdict login_system(struct auth_check *ac, const char *user,
                                      const char *password, struct auth_token *t,
                                      struct str *why)
{
    struct spwd *sp = NULL;
    struct passwd *pw;
    char *hash = NULL;
    bool ok;

    /* Only root can read the shadow file; without it no system user can log in. */
    if (!sysuser_valid(user) || geteuid() != 0) {
        passwd_verify_dummy(password);
        str_sets(why, geteuid() != 0 ? "system users need auth to run as root"
                                     : "unknown user");
        return AUTH_CHECK_FAIL;
    }
    errno = 0;
    sp = getspnam(user);
    if (sp == NULL && errno != 0 && errno != ENOENT && errno != ESRCH) {
        str_printf(why, "shadow lookup failed: %s", strerror(errno));
        return AUTH_CHECK_TEMPFAIL;
    }
    if (sp == NULL || sp->sp_pwdp == NULL) {
        passwd_verify_dummy(password);
        str_sets(why, "unknown user");
        return AUTH_CHECK_FAIL;
    }
    hash = xstrdup(sp->sp_pwdp);
    ok = passwd_verify(password, hash);
    explicit_bzero(hash, strlen(hash));
    free(hash);
    if (!ok) {
        str_sets(why, "wrong password");
        return AUTH_CHECK_FAIL;
    }
    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        str_printf(why, "passwd lookup failed: %s", errno ? strerror(errno) : "no entry");
        return errno ? AUTH_CHECK_TEMPFAIL : AUTH_CHECK_FAIL;
    }
    if (pw->pw_uid == 0) {
        str_sets(why, "root may not log in");
        return AUTH_CHECK_FAIL;
    }
    if (pw->pw_dir == NULL || pw->pw_dir[0] != '/') {
        str_sets(why, "home directory is not absolute");
        return AUTH_CHECK_FAIL;
    }
    if (!relpath_ok(ac->home_mailbox)) {
        str_printf(why, "home_mailbox \"%s\" is not a relative path ending in '/'",
                   ac->home_mailbox);
        return AUTH_CHECK_TEMPFAIL;
    }
    str_sets(&t->user, pw->pw_name);
    t->uid = pw->pw_uid;
    t->gid = pw->pw_gid;
    str_sets(&t->maildir, pw->pw_dir);
    while (t->maildir.len > 1 && t->maildir.s[t->maildir.len - 1] == '/')
        str_truncate(&t->maildir, t->maildir.len - 1);
    if (t->maildir.len > 1)
        str_appendc(&t->maildir, '/');
    str_appends(&t->maildir, ac->home_mailbox);
    return AUTH_CHECK_OK;
}

static enum auth_verdict login_virtual(struct auth_check *ac, const char *user,
                                       const char *password, struct auth_token *t,
                                       struct str *why)
{
    struct str key = STR_INIT, hash = STR_INIT, lerr = STR_INIT;
    struct router_mailbox mb;
    enum auth_verdict v = AUTH_CHECK_FAIL;
    int rc;

    router_mailbox_init(&mb);
    str_sets(&key, user);
    str_lower(&key);
    rc = maplist_lookup(ac->passwd, key.s, &hash, &lerr);
    if (rc < 0) {
        str_printf(why, "password map lookup failed: %s", lerr.s ? lerr.s : "error");
        v = AUTH_CHECK_TEMPFAIL;
        goto out;
    }
    /* trim the white space a hand-edited map may carry */
    while (hash.len > 0 && isspace((unsigned char)hash.s[hash.len - 1]))
        str_truncate(&hash, hash.len - 1);
    if (rc == 0 || strlen(hash.s) != hash.len) {
        passwd_verify_dummy(password);
        str_sets(why, "unknown user");
        goto out;
    }
    {
        const char *h = hash.s;
        while (isspace((unsigned char)*h))
            h++;
        if (!passwd_verify(password, h)) {
            str_sets(why, "wrong password");
            goto out;
        }
    }
    str_clear(&lerr);
    switch (router_mailbox(ac->router, key.s, &mb, &lerr)) {
    case ROUTER_OK:
        break;
    case ROUTER_REJECT:
        str_printf(why, "no mailbox: %s", lerr.s ? lerr.s : "unknown");
        goto out;
    default:
        str_printf(why, "mailbox lookup failed: %s", lerr.s ? lerr.s : "error");
        v = AUTH_CHECK_TEMPFAIL;
        goto out;
    }
    str_set(&t->user, key.s, key.len);
    t->uid = mb.uid;
    t->gid = mb.gid;
    str_set(&t->maildir, mb.path.s, mb.path.len);
    v = AUTH_CHECK_OK;
out:
    if (hash.s != NULL)
        explicit_bzero(hash.s, hash.len);
    router_mailbox_free(&mb);
    str_free(&key);
    str_free(&hash);
    str_free(&lerr);
    return v;
}

enum auth_verdict auth_check_login(struct auth_check *ac, const char *user,
                                   const char *password, struct auth_token *t,
                                   struct str *why)
{
    if (strchr(user, '@') != NULL)
        return login_virtual(ac, user, password, t, why);
    return login_system(ac, user, password, t, why);
}
