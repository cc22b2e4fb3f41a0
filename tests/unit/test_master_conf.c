/* Unit tests for lib/mail/master_conf.c: the master.conf service table reader. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master_conf.h"
#include "str.h"

static int parse(const char *text, struct master_conf *mc, struct str *err)
{
    str_clear(err);
    return master_conf_parse("master.conf", text, strlen(text), mc, err);
}

/* Expects a parse error whose message contains want. */
static void check_error(const char *text, const char *want)
{
    struct master_conf mc;
    struct str err = STR_INIT;

    CHECK(parse(text, &mc, &err) == -1);
    CHECK(mc.nsvc == 0 && mc.svc == NULL);
    CHECK(err.s != NULL && strstr(err.s, want) != NULL);
    if (err.s == NULL || strstr(err.s, want) == NULL)
        fprintf(stderr, "  input: %s  got: %s  want: %s\n", text, err.s ? err.s : "", want);
    str_free(&err);
}

TEST(example_table)
{
    struct master_conf mc;
    struct str err = STR_INIT;
    const char *text =
        "# service    type    listen            user     chroot  limit  command [arguments]\n"
        "smtp         inet    25                -        y       100    smtpd\n"
        "\n"
        "   # indented comment\n"
        "submission   inet    127.0.0.1:587     -        y       -      smtpd\n"
        "    -o smtpd_timeout=60s\n"
        "qmgr         daemon  private/qmgr      -        y       1      qmgr\n"
        "resolve      unix    private/resolve   -        n       -      resolve\n"
        "local\tunix\tprivate/local\troot\tn\t-\tlocal\r\n"
        "v6           inet    [::1]:2525        -        n       3      smtpd -o a=b -v\n"
        "tick         daemon  -                 -        n       2      ticker";
    const struct master_service *s;

    CHECK(parse(text, &mc, &err) == 0);
    CHECK(mc.nsvc == 7);
    s = master_conf_find(&mc, "smtp");
    CHECK(s != NULL && s->type == MASTER_INET && s->port == 25 && s->host == NULL);
    CHECK(s != NULL && s->user == NULL && s->chroot && s->limit == 100);
    CHECK(s != NULL && s->nargs == 0 && s->args[0] == NULL && s->line == 2);
    CHECK_STR(s ? s->command : NULL, "smtpd");
    s = master_conf_find(&mc, "submission");
    CHECK(s != NULL && s->port == 587 && s->limit == 0 && s->nargs == 2);
    CHECK_STR(s ? s->host : NULL, "127.0.0.1");
    CHECK_STR(s ? s->args[0] : NULL, "-o");
    CHECK_STR(s ? s->args[1] : NULL, "smtpd_timeout=60s");
    CHECK(s != NULL && s->line == 5);
    s = master_conf_find(&mc, "qmgr");
    CHECK(s != NULL && s->type == MASTER_DAEMON && s->limit == 1);
    CHECK_STR(s ? s->path : NULL, "private/qmgr");
    s = master_conf_find(&mc, "local");
    CHECK(s != NULL && s->type == MASTER_UNIX && !s->chroot);
    CHECK_STR(s ? s->user : NULL, "root");
    CHECK_STR(s ? s->command : NULL, "local");
    s = master_conf_find(&mc, "v6");
    CHECK_STR(s ? s->host : NULL, "::1");
    CHECK(s != NULL && s->port == 2525 && s->nargs == 3);
    s = master_conf_find(&mc, "tick");
    CHECK(s != NULL && s->path == NULL && s->type == MASTER_DAEMON);
    CHECK(master_conf_find(&mc, "nope") == NULL);
    CHECK_STR(master_type_name(MASTER_DAEMON), "daemon");
    master_conf_free(&mc);
    str_free(&err);
}

TEST(empty_file)
{
    struct master_conf mc;
    struct str err = STR_INIT;

    CHECK(parse("", &mc, &err) == 0);
    CHECK(mc.nsvc == 0);
    master_conf_free(&mc);
    CHECK(parse("# only a comment\n\n", &mc, &err) == 0);
    CHECK(mc.nsvc == 0);
    master_conf_free(&mc);
    str_free(&err);
}

TEST(errors)
{
    check_error("smtp inet 25 - y 100\n", "master.conf:1: 6 fields");
    check_error("\n\nsmtp bogus 25 - y 100 smtpd\n", "master.conf:3: bad service type");
    check_error("smtp inet 0 - y 100 smtpd\n", "bad port");
    check_error("smtp inet 65536 - y 100 smtpd\n", "bad port");
    check_error("smtp inet 25x - y 100 smtpd\n", "bad port");
    check_error("smtp inet 1.2.3:25 - y 100 smtpd\n", "bad IPv4");
    check_error("smtp inet ::1:25 - y 100 smtpd\n", "bad inet listen");
    check_error("smtp inet [::1]25 - y 100 smtpd\n", "bad inet listen");
    check_error("smtp inet [zz]:25 - y 100 smtpd\n", "bad IPv6");
    check_error("smtp inet 25 - yes 100 smtpd\n", "bad chroot");
    check_error("smtp inet 25 - y 0 smtpd\n", "bad process limit");
    check_error("smtp inet 25 - y 1001 smtpd\n", "bad process limit");
    check_error("smtp inet 25 - y -3 smtpd\n", "bad process limit");
    check_error("smtp inet 25 - y 1 ../bin/sh\n", "bad command");
    check_error("smtp inet 25 - y 1 /bin/sh\n", "bad command");
    check_error("smtp inet 25 bad:user y 1 smtpd\n", "bad user");
    check_error("-x inet 25 - y 1 smtpd\n", "bad service name");
    check_error("a unix /var/sock - n 1 x\n", "bad socket path");
    check_error("a unix private/../x - n 1 x\n", "bad socket path");
    check_error("a unix private//x - n 1 x\n", "bad socket path");
    check_error("a unix private/x/ - n 1 x\n", "bad socket path");
    check_error("a unix - - n 1 x\n", "bad socket path");
    check_error("a unix private/x - n 1 x -o\n", "-o wants key=value");
    check_error("a unix private/x - n 1 x -o novalue\n", "-o wants key=value");
    check_error("  a unix private/x - n 1 x\n", "master.conf:1: continuation");
    check_error("a unix private/x - n 1 x\na unix private/y - n 1 x\n",
                "master.conf:2: duplicate service \"a\" (first at line 1)");
    check_error("a unix private/x - n 1 x\nb unix private/x - n 1 x\n",
                "master.conf:2: service \"b\" listens on");
    check_error("a inet 25 - n 1 x\nb inet 127.0.0.1:25 - n 1 x\n", "listens on");
    check_error("a inet 25 - n 1 x\nb unix private/x - n 1 x\nc unix\x01 p - n 1 x\n",
                "master.conf:3: control character");
}

TEST(bounds)
{
    struct master_conf mc;
    struct str err = STR_INIT, text = STR_INIT;

    /* Too many arguments. */
    str_appends(&text, "a unix private/x - n 1 x");
    for (int i = 0; i < MASTER_ARGS_MAX + 1; i++)
        str_appends(&text, " -v");
    str_appends(&text, "\n");
    CHECK(parse(text.s, &mc, &err) == -1);
    CHECK(strstr(err.s, "more than") != NULL);

    /* The largest argument count is fine. */
    str_clear(&text);
    str_appends(&text, "a unix private/x - n 1 x");
    for (int i = 0; i < MASTER_ARGS_MAX; i++)
        str_appends(&text, " -v");
    CHECK(parse(text.s, &mc, &err) == 0);
    CHECK(mc.nsvc == 1 && mc.svc[0].nargs == MASTER_ARGS_MAX);
    master_conf_free(&mc);

    /* Too many services. */
    str_clear(&text);
    for (int i = 0; i < MASTER_SERVICES_MAX + 1; i++)
        str_printf(&text, "s%d unix private/s%d - n 1 x\n", i, i);
    CHECK(parse(text.s, &mc, &err) == -1);
    CHECK(strstr(err.s, "more than 256 services") != NULL);

    /* Embedded NUL. */
    CHECK(master_conf_parse("m", "a unix p\0 - n 1 x\n", 18, &mc, &err) == -1);
    CHECK(strstr(err.s, "m:1: control character") != NULL);

    str_free(&text);
    str_free(&err);
}

TEST(load_file)
{
    struct master_conf mc;
    struct str err = STR_INIT, path = STR_INIT;
    FILE *f;

    str_printf(&path, "%s/master.conf", unit_tmpdir());
    CHECK(master_conf_load(path.s, &mc, &err) == -1);
    CHECK(strstr(err.s, "No such file") != NULL);
    f = fopen(path.s, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs("smtp inet 2525 - n 4 smtpd\nqmgr daemon private/qmgr - n 1 qmgr\n"
          "bad inet x - n 1 smtpd\n", f);
    fclose(f);
    CHECK(master_conf_load(path.s, &mc, &err) == -1);
    CHECK(strstr(err.s, "/master.conf:3: bad port") != NULL);
    f = fopen(path.s, "w");
    fputs("smtp inet 2525 - n 4 smtpd\nqmgr daemon private/qmgr - n 1 qmgr\n", f);
    fclose(f);
    CHECK(master_conf_load(path.s, &mc, &err) == 0);
    CHECK(mc.nsvc == 2);
    master_conf_free(&mc);
    str_free(&path);
    str_free(&err);
}

TEST(several_socket_paths)
{
    struct master_conf mc;
    struct str err = STR_INIT;
    const struct master_service *s;

    CHECK(parse("anvil unix private/anvil,login/anvil - y 1 anvil\n"
                "resolve unix private/resolve - n - resolve\n", &mc, &err) == 0);
    s = master_conf_find(&mc, "anvil");
    CHECK(s != NULL && s->npaths == 2);
    CHECK_STR(s ? s->path : NULL, "private/anvil");
    CHECK_STR(s ? s->paths[0] : NULL, "private/anvil");
    CHECK_STR(s ? s->paths[1] : NULL, "login/anvil");
    CHECK(s != NULL && s->paths[2] == NULL);
    s = master_conf_find(&mc, "resolve");
    CHECK(s != NULL && s->npaths == 1);
    CHECK_STR(s ? s->paths[0] : NULL, "private/resolve");
    master_conf_free(&mc);
    str_free(&err);

    check_error("a unix private/a,,private/b - n 1 x\n", "bad socket path \"\"");
    check_error("a unix private/a, - n 1 x\n", "bad socket path");
    check_error("a unix private/a,/tmp/b - n 1 x\n", "bad socket path \"/tmp/b\"");
    check_error("a unix private/a,private/a - n 1 x\n", "given twice");
    check_error("a unix p/a,p/b,p/c,p/d,p/e - n 1 x\n", "more than 4 socket paths");
    check_error("a unix private/x - n 1 x\nb unix private/y,private/x - n 1 x\n",
                "master.conf:2: service \"b\" listens on");
}
