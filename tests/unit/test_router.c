/* Unit tests for lib/mail/router.c: classes, alias expansion, existence checks, routes
 * and mailboxes, against a config and cdb maps built in a temporary directory. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "map.h"
#include "router.h"
#include "str.h"
#include "unit.h"

static char confdir[512];
static char me[64];             /* the user running the tests: a system user */

static void write_file(const char *name, const char *text)
{
    char path[700];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", confdir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static void build_map(const char *name, const char *text)
{
    char path[700];
    struct str err = STR_INIT;

    write_file(name, text);
    snprintf(path, sizeof(path), "%s/%s", confdir, name);
    if (map_build(path, &err) < 0) {
        fprintf(stderr, "map_build %s: %s\n", path, err.s);
        exit(2);
    }
    str_free(&err);
}

/* A router over an instance with local domain example.org (and host mx.example.org),
 * virtual domain v.test, relay domain relay.test. */
static struct router *setup(const char *extra)
{
    static int n;
    struct str text = STR_INIT, err = STR_INIT;
    struct passwd *pw = getpwuid(getuid());
    struct conf *conf;
    struct router *r;

    snprintf(confdir, sizeof(confdir), "%s/c%d", unit_tmpdir(), n++);
    if (mkdir(confdir, 0700) < 0) {
        perror(confdir);
        exit(2);
    }
    snprintf(me, sizeof(me), "%s", pw ? pw->pw_name : "root");
    str_printf(&text, "postmaster %s\nmix %s, ext+tag@remote.test\n"
                      "self self, %s\nloop1 loop2\nloop2 loop1\n"
                      "pipe |/bin/true\nonlypipe |/bin/true, /tmp/x\n"
                      "nobody-here ghost\nmany a1 a2 a3 a4 a5\n",
               me, me, me);
    build_map("aliases", text.s);
    str_clear(&text);
    str_printf(&text, "alias@v.test bob@v.test, %s@example.org\n"
                      "@catch.v.test carol@v.test\ndeep1@v.test deep2@v.test\n"
                      "deep2@v.test deep3@v.test\n", me);
    build_map("valias", text.s);
    build_map("vmailbox", "bob@v.test v.test/bob/\ncarol@v.test v.test/carol/\n"
                          "evil@v.test ../../etc/\nabs@v.test /etc/\n");
    build_map("transport", "special.test smtp:[10.0.0.1]:2525\n.sub.test relay:gw.test\n"
                           "bad.test error:5.7.1 no mail for you\nlater.test defer:busy\n");
    str_clear(&text);
    str_printf(&text,
               "myhostname = mx.example.org\nmydestination = example.org\n"
               "virtual_mailbox_domains = v.test, catch.v.test\nrelay_domains = relay.test\n"
               "alias_maps = cdb:%s/aliases\nvirtual_alias_maps = cdb:%s/valias\n"
               "virtual_mailbox_maps = cdb:%s/vmailbox\ntransport_maps = cdb:%s/transport\n"
               "virtual_mailbox_base = /srv/mail\nexpansion_limit = 4\nvmail_user = nobody\n%s",
               confdir, confdir, confdir, confdir, extra ? extra : "");
    write_file("postern.conf", text.s);
    conf = conf_load(confdir, &err);
    if (conf == NULL) {
        fprintf(stderr, "conf_load: %s\n", err.s);
        exit(2);
    }
    r = router_open(conf, &err);
    if (r == NULL) {
        fprintf(stderr, "router_open: %s\n", err.s);
        exit(2);
    }
    conf_free(conf);
    str_free(&text);
    str_free(&err);
    return r;
}

static bool has(const struct router_verdict *v, const char *addr)
{
    for (size_t i = 0; i < v->nexpanded; i++)
        if (strcmp(v->expanded[i], addr) == 0)
            return true;
    return false;
}

TEST(classes)
{
    struct router *r = setup(NULL);

    CHECK(router_domain_class(r, "example.org") == ROUTER_LOCAL);
    CHECK(router_domain_class(r, "EXAMPLE.org") == ROUTER_LOCAL);
    CHECK(router_domain_class(r, "mx.example.org") == ROUTER_LOCAL);
    CHECK(router_domain_class(r, "localhost") == ROUTER_LOCAL);
    CHECK(router_domain_class(r, "v.test") == ROUTER_VIRTUAL);
    CHECK(router_domain_class(r, "relay.test") == ROUTER_RELAY);
    CHECK(router_domain_class(r, "other.test") == ROUTER_REMOTE);
    CHECK_STR(router_class_name(ROUTER_VIRTUAL), "virtual");
    router_close(r);
}

TEST(verify_local)
{
    struct router *r = setup(NULL);
    struct router_verdict v;
    struct str addr = STR_INIT;

    router_verdict_init(&v);
    str_printf(&addr, "%s@example.org", me);
    router_verify(r, addr.s, &v);
    CHECK(v.status == ROUTER_OK);
    CHECK(v.class == ROUTER_LOCAL);
    CHECK(v.nexpanded == 1 && has(&v, addr.s));

    /* extension: the user exists less its extension */
    str_clear(&addr);
    str_printf(&addr, "%s+box@Example.ORG", me);
    router_verify(r, addr.s, &v);
    CHECK(v.status == ROUTER_OK);

    router_verify(r, "no-such-user-xyz@example.org", &v);
    CHECK(v.status == ROUTER_REJECT);
    CHECK(v.code == 550);
    CHECK_STR(v.dsn, "5.1.1");
    CHECK(strstr(v.text.s, "User unknown in local recipient table") != NULL);

    /* bare postmaster: postmaster@myhostname, aliased to the test user */
    router_verify(r, "postmaster", &v);
    CHECK(v.status == ROUTER_OK);
    str_clear(&addr);
    str_printf(&addr, "%s@mx.example.org", me);
    CHECK(has(&v, addr.s));
    router_verdict_free(&v);
    str_free(&addr);
    router_close(r);
}

/* RFC 5321 4.5.1: postmaster@ every local and virtual domain is accepted, aliased or
 * not. */
TEST(verify_postmaster_always)
{
    struct router *r = setup(NULL);
    struct router_verdict v;
    struct str addr = STR_INIT;

    router_verdict_init(&v);
    str_printf(&addr, "%s@mx.example.org", me);
    /* a virtual domain without a postmaster mailbox: the host's postmaster alias */
    router_verify(r, "postmaster@v.test", &v);
    CHECK(v.status == ROUTER_OK);
    CHECK(has(&v, addr.s));
    router_verify(r, "PostMaster+x@example.org", &v);
    CHECK(v.status == ROUTER_OK);
    CHECK(has(&v, addr.s));
    /* other names stay unknown; remote domains are not ours to answer for */
    router_verify(r, "postmaster2@v.test", &v);
    CHECK(v.status == ROUTER_REJECT);
    router_verify(r, "postmaster@other.test", &v);
    CHECK(v.status == ROUTER_OK && v.class == ROUTER_REMOTE);
    CHECK(has(&v, "postmaster@other.test"));
    router_verdict_free(&v);
    router_close(r);

    /* no postmaster alias: the root alias */
    r = setup("alias_maps = inline:{root=bob@v.test}\n");
    router_verdict_init(&v);
    router_verify(r, "postmaster@v.test", &v);
    CHECK(v.status == ROUTER_OK);
    CHECK(v.nexpanded == 1 && has(&v, "bob@v.test"));
    router_verdict_free(&v);
    router_close(r);

    /* neither alias: the system user root */
    r = setup("alias_maps =\n");
    router_verdict_init(&v);
    router_verify(r, "postmaster@example.org", &v);
    CHECK(v.status == ROUTER_OK);
    CHECK(v.nexpanded == 1 && has(&v, "root@mx.example.org"));
    router_verdict_free(&v);
    router_close(r);
    str_free(&addr);
}

TEST(verify_aliases)
{
    struct router *r = setup(NULL);
    struct router_verdict v;
    struct str addr = STR_INIT;

    router_verdict_init(&v);
    router_verify(r, "mix@example.org", &v);
    CHECK(v.status == ROUTER_OK);
    CHECK(v.nexpanded == 2);
    CHECK(has(&v, "ext+tag@remote.test"));

    /* an alias naming itself is final */
    router_verify(r, "self@example.org", &v);
    CHECK(v.status == ROUTER_OK);
    CHECK(has(&v, "self@mx.example.org"));
    CHECK(v.nexpanded == 2);

    /* a loop ends; the looping name is not a user: rejected */
    router_verify(r, "loop1@example.org", &v);
    CHECK(v.status == ROUTER_REJECT);

    /* commands are refused; an alias of only commands has nothing to deliver */
    router_verify(r, "onlypipe@example.org", &v);
    CHECK(v.status == ROUTER_REJECT);
    router_verify(r, "pipe@example.org", &v);
    CHECK(v.status == ROUTER_REJECT);

    /* an alias to an unknown user */
    router_verify(r, "nobody-here@example.org", &v);
    CHECK(v.status == ROUTER_REJECT);
    CHECK(strstr(v.text.s, "ghost@mx.example.org") != NULL);

    /* over expansion_limit */
    router_verify(r, "many@example.org", &v);
    CHECK(v.status == ROUTER_REJECT);
    CHECK(v.code == 554);
    CHECK_STR(v.dsn, "5.4.6");

    /* virtual aliases apply to every class */
    router_verify(r, "alias@v.test", &v);
    CHECK(v.status == ROUTER_OK);
    CHECK(v.class == ROUTER_VIRTUAL);
    str_printf(&addr, "%s@example.org", me);
    CHECK(has(&v, "bob@v.test") && has(&v, addr.s));
    router_verify(r, "anyone@catch.v.test", &v);
    CHECK(v.status == ROUTER_OK && has(&v, "carol@v.test"));
    router_verify(r, "deep1@v.test", &v);
    CHECK(v.status == ROUTER_REJECT);
    CHECK(strstr(v.text.s, "virtual mailbox table") != NULL);
    router_verdict_free(&v);
    str_free(&addr);
    router_close(r);
}

TEST(verify_virtual_and_remote)
{
    struct router *r = setup(NULL);
    struct router_verdict v;

    router_verdict_init(&v);
    router_verify(r, "bob@v.test", &v);
    CHECK(v.status == ROUTER_OK && v.class == ROUTER_VIRTUAL);
    router_verify(r, "bob+x@V.Test", &v);
    CHECK(v.status == ROUTER_OK);
    router_verify(r, "nobody@v.test", &v);
    CHECK(v.status == ROUTER_REJECT && v.code == 550);
    router_verify(r, "x@relay.test", &v);
    CHECK(v.status == ROUTER_OK && v.class == ROUTER_RELAY);
    router_verify(r, "x@far.test", &v);
    CHECK(v.status == ROUTER_OK && v.class == ROUTER_REMOTE);
    CHECK(has(&v, "x@far.test"));
    router_verdict_free(&v);
    router_close(r);
}

TEST(tempfail)
{
    struct router *r = setup(NULL);
    struct router_verdict v;
    char path[700];

    /* a map that goes away after opening: lookups fail, never "not found" */
    snprintf(path, sizeof(path), "%s/aliases.cdb", confdir);
    CHECK(unlink(path) == 0);
    sleep(1);
    router_verdict_init(&v);
    router_verify(r, "someone@example.org", &v);
    CHECK(v.status == ROUTER_TEMPFAIL);
    CHECK(v.code == 451);
    CHECK_STR(v.dsn, "4.3.0");
    router_verify(r, "bob@v.test", &v);
    CHECK(v.status == ROUTER_OK);
    router_verdict_free(&v);
    router_close(r);
}

static void check_route(struct router *r, const char *addr, const char *t, const char *h)
{
    struct str tr = STR_INIT, nh = STR_INIT, err = STR_INIT;

    CHECK(router_route(r, addr, &tr, &nh, &err) == ROUTER_OK);
    CHECK_STR(tr.s, t);
    CHECK_STR(nh.s, h);
    str_free(&tr);
    str_free(&nh);
    str_free(&err);
}

TEST(route)
{
    struct router *r = setup(NULL);

    check_route(r, "a@example.org", "local", "example.org");
    check_route(r, "bob@v.test", "local", "v.test");
    check_route(r, "a@far.test", "smtp", "far.test");
    check_route(r, "a@special.test", "smtp", "[10.0.0.1]:2525");
    check_route(r, "a@x.sub.test", "relay", "gw.test");
    check_route(r, "a@bad.test", "error", "5.7.1 no mail for you");
    check_route(r, "a@later.test", "defer", "busy");
    router_close(r);

    r = setup("relayhost = [smart.test]:587\n");
    check_route(r, "a@far.test", "smtp", "[smart.test]:587");
    check_route(r, "a@special.test", "smtp", "[10.0.0.1]:2525");
    router_close(r);
}

TEST(mailbox)
{
    struct router *r = setup(NULL);
    struct router_mailbox mb;
    struct str err = STR_INIT, addr = STR_INIT;
    struct passwd *pw = getpwuid(getuid());

    router_mailbox_init(&mb);
    CHECK(router_mailbox(r, "bob+x@v.test", &mb, &err) == ROUTER_OK);
    CHECK_STR(mb.path.s, "/srv/mail/v.test/bob/");
    CHECK(mb.create);
    if (getuid() == 0) {
        struct passwd *nb = getpwnam("nobody");

        CHECK(nb == NULL || mb.uid == nb->pw_uid);
    } else {
        CHECK(mb.uid == getuid());
    }

    CHECK(router_mailbox(r, "evil@v.test", &mb, &err) != ROUTER_OK);
    CHECK(router_mailbox(r, "abs@v.test", &mb, &err) != ROUTER_OK);
    CHECK(router_mailbox(r, "nobody@v.test", &mb, &err) == ROUTER_REJECT);
    CHECK(router_mailbox(r, "x@far.test", &mb, &err) == ROUTER_REJECT);
    CHECK(router_mailbox(r, "../etc@example.org", &mb, &err) == ROUTER_REJECT);
    CHECK(router_mailbox(r, "no-such-user-xyz@example.org", &mb, &err) == ROUTER_REJECT);

    str_printf(&addr, "%s+tag@example.org", me);
    CHECK(router_mailbox(r, addr.s, &mb, &err) == ROUTER_OK);
    if (pw != NULL && pw->pw_uid != 0) {
        struct str want = STR_INIT;

        str_printf(&want, "%s/Maildir/", strcmp(pw->pw_dir, "/") == 0 ? "" : pw->pw_dir);
        CHECK_STR(mb.path.s, want.s);
        CHECK(mb.uid == pw->pw_uid);
        str_free(&want);
    }
    CHECK(!mb.create);
    CHECK_STR(mb.user.s, me);
    router_mailbox_free(&mb);
    str_free(&err);
    str_free(&addr);
    router_close(r);
}
