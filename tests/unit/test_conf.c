/* Unit tests for lib/mail/conf.c: syntax, continuation, expansion, types, conf_set and
 * conf_edit. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "str.h"
#include "xmalloc.h"

static int ndirs;

/* A new directory holding postern.conf with the given text (NULL: no file). */
static const char *conf_dir_with(const char *text)
{
    static char dir[512];
    snprintf(dir, sizeof(dir), "%s/c%d", unit_tmpdir(), ndirs++);
    mkdir(dir, 0700);
    if (text != NULL) {
        char path[600];
        snprintf(path, sizeof(path), "%s/postern.conf", dir);
        FILE *f = fopen(path, "w");
        fputs(text, f);
        fclose(f);
    }
    return dir;
}

static char *read_conf(const char *dir)
{
    char path[600];
    static char buf[8192];
    snprintf(path, sizeof(path), "%s/postern.conf", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Loads text and expects failure with an error containing want. */
static void expect_error(const char *text, const char *want)
{
    struct str err = STR_INIT;
    str_init(&err);
    struct conf *c = conf_load(conf_dir_with(text), &err);
    CHECK(c == NULL);
    if (err.s == NULL || strstr(err.s, want) == NULL) {
        fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err.s ? err.s : "", want);
        unit_failures_in_test++;
    }
    conf_free(c);
    str_free(&err);
}

TEST(missing_file_gives_defaults)
{
    struct str err = STR_INIT;
    struct conf *c = conf_load(conf_dir_with(NULL), &err);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK_STR(conf_str(c, "mail_name"), "Postern");
    CHECK(conf_int(c, "smtpd_recipient_limit") == 1000);
    CHECK(conf_bool(c, "smtputf8_enable"));
    CHECK(conf_time(c, "maximal_queue_lifetime") == 5 * 86400);
    CHECK(conf_size(c, "message_size_limit") == 10240000);
    CHECK(!conf_is_set(c, "mail_name"));
    CHECK(strlen(conf_str(c, "myhostname")) > 0);
    CHECK(strstr(conf_str(c, "smtpd_banner"), " ESMTP Postern") != NULL);
    str_free(&err);
    conf_free(c);
}

TEST(syntax_and_continuation)
{
    struct str err = STR_INIT;
    const char *dir = conf_dir_with(
        "# a comment\n"
        "\n"
        "mail_name   =   Test MTA  \n"
        "mydestination = a.example,\n"
        "    b.example\n"
        "  # comment inside\n"
        "\tc.example\n"
        "myhostname=mx.example.org\r\n"
        "relayhost =\n");
    struct conf *c = conf_load(dir, &err);
    CHECK(c != NULL);
    if (c == NULL) {
        fprintf(stderr, "  %s\n", err.s);
        return;
    }
    CHECK_STR(conf_str(c, "mail_name"), "Test MTA");
    CHECK_STR(conf_str(c, "mydestination"), "a.example, b.example c.example");
    char **v = conf_list(c, "mydestination");
    CHECK(strv_len(v) == 3);
    CHECK_STR(v[0], "a.example");
    CHECK_STR(v[2], "c.example");
    strv_free(v);
    CHECK_STR(conf_str(c, "myhostname"), "mx.example.org");
    CHECK_STR(conf_str(c, "mydomain"), "example.org");
    CHECK_STR(conf_str(c, "myorigin"), "mx.example.org");
    CHECK(conf_is_set(c, "relayhost"));
    CHECK_STR(conf_str(c, "relayhost"), "");
    CHECK_STR(conf_str(c, "config_directory"), dir);
    CHECK_STR(conf_dir(c), dir);
    v = conf_list(c, "relay_domains");
    CHECK(v[0] == NULL);
    strv_free(v);
    str_free(&err);
    conf_free(c);
}

TEST(expansion)
{
    struct str err = STR_INIT;
    struct conf *c = conf_load(conf_dir_with(
        "myhostname = host\n"
        "smtpd_banner = ${myhostname}x $mail_name $$5 $config_directory\n"
        "mail_name = M\n"), &err);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(strncmp(conf_str(c, "smtpd_banner"), "hostx M $5 /", 12) == 0);
    CHECK_STR(conf_str(c, "mydomain"), "host");
    CHECK_STR(conf_str(c, "mydestination"), "host, localhost.host, localhost");
    str_free(&err);
    conf_free(c);
}

TEST(expansion_errors)
{
    expect_error("mail_name = $nosuchkey\n", "postern.conf:1: mail_name: unknown $nosuchkey");
    expect_error("\nmail_name = $mail_name\n", "postern.conf:2:");
    expect_error("mail_name = a $ b\n", "postern.conf:1:");
    expect_error("mail_name = ${mail\n", "malformed");
    /* A chain of 12 references is deeper than allowed; a chain of 5 is fine. */
    expect_error("myhostname = $mydomain\nmydomain = $myhostname\n", "refers to itself");
    expect_error(
        "relayhost = $mail_name\nmail_name = $syslog_name\nsyslog_name = $myorigin\n"
        "myorigin = $smtpd_banner\nsmtpd_banner = $mydomain\nmydomain = $home_mailbox\n"
        "home_mailbox = $maillog_file\nmaillog_file = $dns_servers\n"
        "dns_servers = $transport_maps\ntransport_maps = $alias_maps\n"
        "alias_maps = $virtual_alias_maps\nvirtual_alias_maps = $relay_domains\n"
        "relay_domains = x\n", "nested too deeply");
    struct str err = STR_INIT;
    struct conf *c = conf_load(conf_dir_with(
        "relayhost = $mail_name\nmail_name = $syslog_name\nsyslog_name = $maillog_file\n"
        "maillog_file = $dns_servers\ndns_servers = ok\n"), &err);
    CHECK(c != NULL);
    if (c != NULL)
        CHECK_STR(conf_str(c, "relayhost"), "ok");
    conf_free(c);
    str_free(&err);
}

TEST(syntax_errors)
{
    expect_error("# x\nno_such_key = 1\n", "postern.conf:2: unknown key \"no_such_key\"");
    expect_error("  indented = 1\n", "postern.conf:1: continuation");
    expect_error("mail_name\n", "postern.conf:1: expected");
    expect_error("= x\n", "missing key");
    expect_error("mail name = x\n", "malformed key");
    expect_error("mail_name = a\x01" "b\n", "control character");
    expect_error("config_directory = /x\n", "cannot be set");
}

TEST(types)
{
    expect_error("smtpd_recipient_limit = 10x\n", "postern.conf:1: smtpd_recipient_limit = 10x: expected a decimal");
    expect_error("smtputf8_enable = maybe\n", "yes or no");
    expect_error("smtpd_timeout = 5y\n", "expected a time");
    expect_error("smtpd_timeout = -5\n", "expected a time");
    expect_error("message_size_limit = 1t\n", "expected a size");
    expect_error("message_size_limit = 99999999999999999999\n", "expected a size");
    expect_error("message_size_limit = 9999999999999g\n", "out of range");
    expect_error("line_length_limit = ${mail_name}\n", "postern.conf:1: line_length_limit = Postern");

    struct str err = STR_INIT;
    struct conf *c = conf_load(conf_dir_with(
        "smtpd_timeout = 2m\nmax_idle = 3h\nqueue_run_delay=1w\nipc_timeout = 7\n"
        "message_size_limit = 10k\nbounce_size_limit = 2M\nsmtputf8_enable = NO\n"
        "expansion_limit = -3\n"), &err);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(conf_time(c, "smtpd_timeout") == 120);
    CHECK(conf_time(c, "max_idle") == 3 * 3600);
    CHECK(conf_time(c, "queue_run_delay") == 7 * 86400);
    CHECK(conf_time(c, "ipc_timeout") == 7);
    CHECK(conf_time_ms(c, "ipc_timeout") == 7000);
    CHECK(conf_time_ms(c, "queue_run_delay") == 7 * 86400 * 1000);
    CHECK(conf_size(c, "message_size_limit") == 10240);
    CHECK(conf_size(c, "bounce_size_limit") == 2 * 1024 * 1024);
    CHECK(!conf_bool(c, "smtputf8_enable"));
    CHECK(conf_int(c, "expansion_limit") == -3);
    conf_free(c);
    str_free(&err);
}

TEST(conf_set)
{
    struct str err = STR_INIT;
    struct conf *c = conf_load(conf_dir_with("myhostname = a.b.c\n"), &err);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(conf_set(c, "myhostname", "x.y.z", &err) == 0);
    CHECK_STR(conf_str(c, "myorigin"), "x.y.z");
    CHECK_STR(conf_str(c, "mydomain"), "y.z");
    CHECK(conf_is_set(c, "myhostname"));
    str_clear(&err);
    CHECK(conf_set(c, "nokey", "1", &err) == -1);
    CHECK(strstr(err.s, "unknown key") != NULL);
    str_clear(&err);
    CHECK(conf_set(c, "max_use", "lots", &err) == -1);
    CHECK(conf_int(c, "max_use") == 100);
    CHECK(conf_set(c, "max_use", "5", &err) == 0);
    CHECK(conf_int(c, "max_use") == 5);
    CHECK(conf_set(c, "mail_name", "$nothing", &err) == -1);
    CHECK_STR(conf_str(c, "mail_name"), "Postern");
    conf_free(c);
    str_free(&err);
}

TEST(conf_edit)
{
    struct str err = STR_INIT;
    const char *dir = conf_dir_with(
        "# header\n"
        "mydestination = a,\n"
        "    b\n"
        "  # kept\n"
        "    c\n"
        "mail_name = X\n"
        "mydestination = second\n");
    char d[512];
    snprintf(d, sizeof(d), "%s", dir);
    CHECK(conf_edit(d, "mydestination", "new.example", &err) == 0);
    CHECK_STR(read_conf(d),
        "# header\n"
        "mydestination = new.example\n"
        "  # kept\n"
        "mail_name = X\n"
        "mydestination = second\n");
    CHECK(conf_edit(d, "relayhost", "[mx]:25", &err) == 0);
    CHECK(strstr(read_conf(d), "mydestination = second\nrelayhost = [mx]:25\n") != NULL);
    CHECK(conf_edit(d, "bogus", "1", &err) == -1);
    CHECK(conf_edit(d, "mail_name", "a\nb", &err) == -1);
    struct conf *c = conf_load(d, &err);
    CHECK(c != NULL);
    if (c != NULL)
        CHECK_STR(conf_str(c, "relayhost"), "[mx]:25");
    conf_free(c);

    /* A directory without postern.conf gets one. */
    const char *e = conf_dir_with(NULL);
    snprintf(d, sizeof(d), "%s", e);
    CHECK(conf_edit(d, "mail_name", "Y", &err) == 0);
    CHECK_STR(read_conf(d), "mail_name = Y\n");
    str_free(&err);
}

TEST(default_dir)
{
    setenv("POSTERN_CONFIG_DIR", "/some/where", 1);
    CHECK_STR(conf_default_dir(), "/some/where");
    unsetenv("POSTERN_CONFIG_DIR");
    CHECK(conf_default_dir()[0] == '/');
}

TEST(expansion_depth_limit_is_ten)
{
    struct str err = STR_INIT;
    /* relayhost reaches alias_maps through exactly 10 references. */
    struct conf *c = conf_load(conf_dir_with(
        "relayhost = $mail_name\nmail_name = $syslog_name\nsyslog_name = $myorigin\n"
        "myorigin = $smtpd_banner\nsmtpd_banner = $mydomain\nmydomain = $home_mailbox\n"
        "home_mailbox = $maillog_file\nmaillog_file = $dns_servers\n"
        "dns_servers = $transport_maps\ntransport_maps = $alias_maps\n"
        "alias_maps = end\n"), &err);
    CHECK(c != NULL);
    if (c == NULL)
        fprintf(stderr, "  %s\n", err.s);
    else
        CHECK_STR(conf_str(c, "relayhost"), "end");
    conf_free(c);
    str_free(&err);
}

TEST(conf_raw)
{
    struct str err = STR_INIT;
    const char *dir = conf_dir_with("mail_name = $myhostname!\nmyhostname = h\n");
    char d[512];
    snprintf(d, sizeof(d), "%s", dir);
    struct conf *c = conf_load(d, &err);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK_STR(conf_raw(c, "mail_name"), "$myhostname!");
    CHECK_STR(conf_str(c, "mail_name"), "h!");
    CHECK_STR(conf_raw(c, "myorigin"), "$myhostname");
    CHECK_STR(conf_raw(c, "config_directory"), d);
    conf_free(c);
    str_free(&err);
}
