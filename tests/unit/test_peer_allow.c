/* peer_allow: the users allowed on a login socket, from master.conf, and the
 * SO_PEERCRED check of a connection. */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "master_conf.h"
#include "peer_allow.h"
#include "str.h"
#include "unit.h"

static bool has(const struct peer_allow *pa, uid_t uid)
{
    for (size_t i = 0; i < pa->n; i++)
        if (pa->uid[i] == uid)
            return true;
    return false;
}

static bool calls_pop3_login(const struct master_service *svc)
{
    return strcmp(svc->command, "pop3d") == 0 && svc->nargs > 0
           && strcmp(svc->args[0], "-l") == 0;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    struct str path = STR_INIT;
    FILE *f;

    str_printf(&path, "%s/%s", dir, name);
    f = fopen(path.s, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
    str_free(&path);
}

TEST(check_peer_uid)
{
    struct peer_allow pa = { .n = 0 };
    int sv[2];

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    pa.uid[pa.n++] = geteuid() + 1;
    CHECK(!peer_allow_check(&pa, sv[0], "test"));
    pa.uid[pa.n++] = geteuid();
    CHECK(peer_allow_check(&pa, sv[0], "test"));
    close(sv[0]);
    close(sv[1]);
    /* not a socket: the kernel cannot say, so no */
    CHECK(!peer_allow_check(&pa, -1, "test"));
}

TEST(load_from_master_conf)
{
    const char *dir = unit_tmpdir();
    struct peer_allow pa;
    struct str err = STR_INIT;
    struct conf *c;
    struct passwd *pw;
    long nobody = (pw = getpwnam("nobody")) != NULL ? (long)pw->pw_uid : -1;
    long daemon_uid = (pw = getpwnam("daemon")) != NULL ? (long)pw->pw_uid : -1;

    write_file(dir, "postern.conf", "mail_owner = daemon\n");
    write_file(dir, "master.conf",
               "smtp   inet 2525 -      n 4 smtpd\n"
               "pop3   inet 2110 nobody n 4 pop3d -l\n"
               "pop3d  unix login/pop3 root n - pop3d\n");
    c = conf_load(dir, &err);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(peer_allow_load(c, calls_pop3_login, &pa, &err) == 0);
    if (geteuid() != 0) {
        /* an ordinary user's instance: that user alone */
        CHECK(pa.n == 1 && pa.uid[0] == geteuid());
    } else {
        CHECK(has(&pa, 0));
        CHECK(nobody < 0 || has(&pa, (uid_t)nobody));
        CHECK(daemon_uid < 0 || !has(&pa, (uid_t)daemon_uid));      /* smtpd's: not a caller */
        CHECK(pa.n == 2);
        /* a caller running as a user that does not exist is a configuration error */
        write_file(dir, "master.conf", "pop3 inet 2110 no-such-user-x n 4 pop3d -l\n");
        CHECK(peer_allow_load(c, calls_pop3_login, &pa, &err) == -1);
        CHECK(err.s != NULL && strstr(err.s, "unknown user \"no-such-user-x\"") != NULL);
        /* no service calls the socket: root alone */
        write_file(dir, "master.conf", "");
        CHECK(peer_allow_load(c, calls_pop3_login, &pa, &err) == 0);
        CHECK(pa.n == 1 && pa.uid[0] == 0);
    }
    conf_free(c);
    str_free(&err);
}
