/* Unit tests for lib/mail/conf.c and conf_check.c: syntax, continuation, expansion,
 * every value type's parser and bounds with the exact refusal line, the key table's
 * own consistency, typed accessors, conf_set, the snapshot reader and conf_edit. */
#include "unit.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
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

/* Loads text and expects exactly "DIR/postern.conf:" + want. */
static void expect_line(const char *text, const char *want)
{
    struct str err = STR_INIT, full = STR_INIT;
    const char *dir = conf_dir_with(text);

    str_init(&err);
    str_init(&full);
    str_printf(&full, "%s/postern.conf:%s", dir, want);
    struct conf *c = conf_load(dir, &err);
    CHECK(c == NULL);
    CHECK_STR(err.s, full.s);
    conf_free(c);
    str_free(&err);
    str_free(&full);
}

/* A configuration with every default, to try values on. */
static struct conf *defaults(void)
{
    struct str err = STR_INIT;
    struct conf *c = conf_load(conf_dir_with(NULL), &err);
    if (c == NULL)
        fprintf(stderr, "  defaults do not load: %s\n", err.s);
    str_free(&err);
    return c;
}

/* conf_set(key, value) is refused with exactly "key = value: rule", and the key
 * keeps its value. */
static void refused(struct conf *c, const char *key, const char *value, const char *rule)
{
    struct str err = STR_INIT, want = STR_INIT;
    int k = conf_key_find(key);
    char *before;

    CHECK(k >= 0);
    if (k < 0)
        return;
    before = xstrdup(conf_raw(c, (enum conf_key)k));
    str_init(&err);
    str_init(&want);
    str_printf(&want, "%s = %s: %s", key, value, rule);
    CHECK(conf_set(c, key, value, &err) == -1);
    CHECK_STR(err.s, want.s);
    CHECK_STR(conf_raw(c, (enum conf_key)k), before);
    free(before);
    str_free(&err);
    str_free(&want);
}

/* conf_set(key, value) is accepted. */
static void accepted(struct conf *c, const char *key, const char *value)
{
    struct str err = STR_INIT;

    str_init(&err);
    if (conf_set(c, key, value, &err) != 0) {
        fprintf(stderr, "  %s = %s refused: %s\n", key, value, err.s);
        unit_failures_in_test++;
    }
    str_free(&err);
}

TEST(missing_file_gives_defaults)
{
    struct conf *c = defaults();
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK_STR(conf_str(c, CONF_mail_name), "Postern");
    CHECK(conf_count(c, CONF_smtpd_recipient_limit) == 1000);
    CHECK(conf_bool(c, CONF_smtputf8_enable));
    CHECK(conf_time_ms(c, CONF_maximal_queue_lifetime) == 5LL * 86400 * 1000);
    CHECK(conf_time_ms(c, CONF_ipc_timeout) == 60000);
    CHECK(conf_size(c, CONF_message_size_limit) == 10240000);
    CHECK(!conf_is_set(c, CONF_mail_name));
    CHECK(strlen(conf_str(c, CONF_myhostname)) > 0);
    CHECK(strstr(conf_str(c, CONF_smtpd_banner), " ESMTP Postern") != NULL);
    size_t len = 99;
    conf_text(c, &len);
    CHECK(len == 0);
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
    CHECK_STR(conf_str(c, CONF_mail_name), "Test MTA");
    CHECK_STR(conf_expanded(c, CONF_mydestination), "a.example, b.example c.example");
    char **v = conf_list(c, CONF_mydestination);
    CHECK(strv_len(v) == 3);
    CHECK_STR(v[0], "a.example");
    CHECK_STR(v[2], "c.example");
    strv_free(v);
    CHECK_STR(conf_str(c, CONF_myhostname), "mx.example.org");
    CHECK_STR(conf_str(c, CONF_mydomain), "example.org");
    CHECK_STR(conf_str(c, CONF_myorigin), "mx.example.org");
    CHECK(conf_is_set(c, CONF_relayhost));
    CHECK_STR(conf_str(c, CONF_relayhost), "");
    CHECK_STR(conf_str(c, CONF_config_directory), dir);
    CHECK_STR(conf_dir(c), dir);
    v = conf_list(c, CONF_relay_domains);
    CHECK(v[0] == NULL);
    strv_free(v);
    size_t len;
    CHECK(strncmp(conf_text(c, &len), "# a comment\n", 12) == 0);
    CHECK(len > 100);
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
    CHECK(strncmp(conf_str(c, CONF_smtpd_banner), "hostx M $5 /", 12) == 0);
    CHECK_STR(conf_str(c, CONF_mydomain), "host");
    CHECK_STR(conf_expanded(c, CONF_mydestination), "host, localhost.host, localhost");
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
        "myorigin = $smtpd_banner\nsmtpd_banner = $mydomain\nmydomain = $double_bounce_sender\n"
        "double_bounce_sender = $bounce_notice_recipient\n"
        "bounce_notice_recipient = $mail_owner\nmail_owner = $default_privs\n"
        "default_privs = $vmail_user\nvmail_user = $setgid_group\n"
        "setgid_group = $myhostname\nmyhostname = x\n", "nested too deeply");
    struct str err = STR_INIT;
    struct conf *c = conf_load(conf_dir_with(
        "relayhost = $mail_name\nmail_name = $syslog_name\nsyslog_name = $mail_owner\n"
        "mail_owner = $vmail_user\nvmail_user = ok\n"), &err);
    CHECK(c != NULL);
    if (c != NULL)
        CHECK_STR(conf_str(c, CONF_relayhost), "ok");
    conf_free(c);
    str_free(&err);
}

TEST(expansion_depth_limit_is_ten)
{
    struct str err = STR_INIT;
    /* relayhost reaches vmail_user through exactly 10 references. */
    struct conf *c = conf_load(conf_dir_with(
        "relayhost = $mail_name\nmail_name = $syslog_name\nsyslog_name = $myorigin\n"
        "myorigin = $smtpd_banner\nsmtpd_banner = $mydomain\nmydomain = $double_bounce_sender\n"
        "double_bounce_sender = $bounce_notice_recipient\n"
        "bounce_notice_recipient = $mail_owner\nmail_owner = $default_privs\n"
        "default_privs = $vmail_user\nvmail_user = end\n"), &err);
    CHECK(c != NULL);
    if (c == NULL)
        fprintf(stderr, "  %s\n", err.s);
    else
        CHECK_STR(conf_str(c, CONF_relayhost), "end");
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

/* A bad value in the file: one line with file, line, key, value and rule. */
TEST(bad_file_values)
{
    expect_line("# ok\nipc_timeout = 0s\n", "2: ipc_timeout = 0s: must be at least 1s");
    expect_line("max_use = 0\n", "1: max_use = 0: must be at least 1");
    expect_line("smtpd_recipient_limit = 10x\n",
                "1: smtpd_recipient_limit = 10x: must be a whole number");
    expect_line("line_length_limit = ${mail_name}\n",
                "1: line_length_limit = Postern: must be a whole number");
    expect_line("smtp_tls_security_level = secure\n",
                "1: smtp_tls_security_level = secure: must be one of none, may, encrypt or "
                "verify");
    /* checked after expansion, and named by the key whose value it is */
    expect_line("mail_name = a b\nmyorigin = $mail_name\n",
                "2: myorigin = a b: must be a host name (letters, digits, '-' and '_', dots "
                "between labels)");
    /* the last setting counts, and is the one named */
    expect_line("queue_run_delay = 5s\n\nqueue_run_delay = 2d\n",
                "3: queue_run_delay = 2d: must be at most 1d");
    /* a long value is cut short in the message */
    struct str text = STR_INIT;
    str_init(&text);
    str_appends(&text, "mail_name = ");
    for (int i = 0; i < 300; i++)
        str_appendc(&text, 'x');
    str_appendc(&text, '\n');
    expect_error(text.s, "...: must be at most 100 bytes long");
    str_free(&text);
}

TEST(time_values)
{
    struct conf *c = defaults();
    if (c == NULL)
        return;
    refused(c, "ipc_timeout", "0", "must be at least 1s");
    refused(c, "ipc_timeout", "2h", "must be at most 1h");
    refused(c, "ipc_timeout", "3601", "must be at most 1h");
    refused(c, "smtpd_timeout", "5y",
            "must be a time: a number with an optional unit s, m, h, d or w");
    refused(c, "smtpd_timeout", "-5",
            "must be a time: a number with an optional unit s, m, h, d or w");
    refused(c, "smtpd_timeout", "",
            "must be a time: a number with an optional unit s, m, h, d or w");
    refused(c, "smtpd_timeout", "5 m",
            "must be a time: a number with an optional unit s, m, h, d or w");
    refused(c, "smtpd_timeout", "99999999999999999999", "must be at most 1d");
    refused(c, "smtpd_timeout", "99999999999999w", "must be at most 1d");
    refused(c, "maximal_queue_lifetime", "101d", "must be at most 100d");
    refused(c, "smtpd_error_sleep_time", "301s", "must be at most 5m");
    accepted(c, "smtpd_timeout", "2m");
    CHECK(conf_time_ms(c, CONF_smtpd_timeout) == 120000);
    accepted(c, "max_idle", "3H");
    CHECK(conf_time_ms(c, CONF_max_idle) == 3 * 3600 * 1000);
    accepted(c, "ipc_timeout", "7");
    CHECK(conf_time_ms(c, CONF_ipc_timeout) == 7000);
    accepted(c, "ipc_timeout", "1h");
    CHECK(conf_time_ms(c, CONF_ipc_timeout) == 3600 * 1000);
    accepted(c, "maximal_queue_lifetime", "1w");
    CHECK(conf_time_ms(c, CONF_maximal_queue_lifetime) == 7LL * 86400 * 1000);
    /* 0 where 0 means something: never, at once, no delay */
    accepted(c, "delay_warning_time", "0");
    CHECK(conf_time_ms(c, CONF_delay_warning_time) == 0);
    accepted(c, "maximal_queue_lifetime", "0s");
    accepted(c, "smtpd_error_sleep_time", "0");
    conf_free(c);
}

TEST(size_values)
{
    struct conf *c = defaults();
    if (c == NULL)
        return;
    refused(c, "message_size_limit", "2g", "must be at most 1g");
    refused(c, "message_size_limit", "1t",
            "must be a size: a number of bytes with an optional unit k, m or g");
    refused(c, "message_size_limit", "9999999999999g", "must be at most 1g");
    refused(c, "bounce_size_limit", "0", "must be at least 1");
    refused(c, "bounce_size_limit", "17m", "must be at most 16m");
    accepted(c, "message_size_limit", "10k");
    CHECK(conf_size(c, CONF_message_size_limit) == 10240);
    accepted(c, "message_size_limit", "0");
    CHECK(conf_size(c, CONF_message_size_limit) == 0);
    accepted(c, "bounce_size_limit", "2M");
    CHECK(conf_size(c, CONF_bounce_size_limit) == 2 * 1024 * 1024);
    conf_free(c);
}

TEST(count_values)
{
    struct conf *c = defaults();
    if (c == NULL)
        return;
    refused(c, "smtp_destination_port", "0", "must be at least 1");
    refused(c, "smtp_destination_port", "65536", "must be at most 65535");
    refused(c, "smtp_destination_port", "-25", "must be a whole number");
    refused(c, "smtp_destination_port", "25k", "must be a whole number");
    refused(c, "default_process_limit", "0", "must be at least 1");
    refused(c, "default_process_limit", "1001", "must be at most 1000");
    refused(c, "line_length_limit", "999", "must be at least 1000");
    refused(c, "expansion_limit", "-3", "must be a whole number");
    accepted(c, "smtp_destination_port", "2525");
    CHECK(conf_count(c, CONF_smtp_destination_port) == 2525);
    accepted(c, "pop3d_error_limit", "0");
    CHECK(conf_count(c, CONF_pop3d_error_limit) == 0);
    accepted(c, "default_destination_failure_limit", "0");
    conf_free(c);
}

TEST(bool_and_enum_values)
{
    struct conf *c = defaults();
    if (c == NULL)
        return;
    refused(c, "smtputf8_enable", "maybe", "must be yes or no");
    refused(c, "smtputf8_enable", "1", "must be yes or no");
    accepted(c, "smtputf8_enable", "NO");
    CHECK(!conf_bool(c, CONF_smtputf8_enable));
    accepted(c, "smtputf8_enable", "Yes");
    CHECK(conf_bool(c, CONF_smtputf8_enable));
    refused(c, "smtp_tls_security_level", "",
            "must be one of none, may, encrypt or verify");
    refused(c, "smtp_tls_security_level", "MAY",
            "must be one of none, may, encrypt or verify");
    accepted(c, "smtp_tls_security_level", "verify");
    refused(c, "smtpd_tls_security_level", "verify",
            "must be empty or one of none, may or encrypt");
    accepted(c, "smtpd_tls_security_level", "");
    accepted(c, "smtpd_tls_security_level", "encrypt");
    CHECK_STR(conf_str(c, CONF_smtpd_tls_security_level), "encrypt");
    refused(c, "syslog_facility", "local8",
            "must be one of mail, daemon, user, auth, authpriv, local0, local1, local2, "
            "local3, local4, local5, local6 or local7");
    accepted(c, "syslog_facility", "local3");
    conf_free(c);
}

TEST(name_values)
{
    struct conf *c = defaults();
    if (c == NULL)
        return;
    const char *host_rule = "must be a host name (letters, digits, '-' and '_', dots between "
                            "labels)";
    refused(c, "myhostname", "bad..name", host_rule);
    refused(c, "myhostname", ".lead", host_rule);
    refused(c, "myhostname", "trail.", host_rule);
    refused(c, "myhostname", "sp ace", host_rule);
    refused(c, "myhostname", "[192.0.2.1]", host_rule);
    refused(c, "myhostname", "l1234567890123456789012345678901234567890123456789012345678901234.x",
            host_rule);
    refused(c, "myorigin", "", "must not be empty");
    accepted(c, "myhostname", "mx-1.under_score.example");
    accepted(c, "myhostname", "");              /* the system's */
    CHECK(conf_str(c, CONF_myhostname)[0] != '\0');

    const char *hp_rule = "must be host, host:port, [host] or [host]:port (port 1..65535)";
    refused(c, "relayhost", "mx:0", hp_rule);
    refused(c, "relayhost", "mx:smtp", hp_rule);
    refused(c, "relayhost", "[mx.example", hp_rule);
    refused(c, "relayhost", "[mx]:25x", hp_rule);
    refused(c, "relayhost", "2001:db8::1", hp_rule);
    refused(c, "relayhost", "mx example", hp_rule);
    accepted(c, "relayhost", "mx.example");
    accepted(c, "relayhost", "mx.example:587");
    accepted(c, "relayhost", "[mx.example]:587");
    accepted(c, "relayhost", "[192.0.2.1]");
    accepted(c, "relayhost", "[2001:db8::1]:25");
    accepted(c, "relayhost", "[ipv6:2001:db8::1]");
    accepted(c, "relayhost", "");

    refused(c, "mail_owner", "-x", "must be a user name (letters, digits, '.', '_', '-')");
    refused(c, "mail_owner", "a b", "must be a user name (letters, digits, '.', '_', '-')");
    refused(c, "vmail_user", "", "must not be empty");
    refused(c, "setgid_group", "a:b", "must be a group name (letters, digits, '.', '_', '-')");
    refused(c, "default_privs", "user567890123456789012345678901234",
            "must be at most 32 bytes long");
    accepted(c, "mail_owner", "no-such.user_1");  /* need not exist */

    refused(c, "mail_name", "", "must not be empty");
    refused(c, "recipient_delimiter", "+-_.=#~!x", "must be at most 8 bytes long");
    accepted(c, "recipient_delimiter", "");
    conf_free(c);
}

TEST(path_values)
{
    struct conf *c = defaults();
    if (c == NULL)
        return;
    refused(c, "queue_directory", "relative/queue", "must be an absolute path");
    refused(c, "queue_directory", "", "must not be empty");
    refused(c, "maillog_file", "log/maillog", "must be an absolute path");
    accepted(c, "maillog_file", "");
    accepted(c, "maillog_file", "/nonexistent/dir/maillog");   /* need not exist */
    refused(c, "home_mailbox", "/var/mail/x", "must be a relative path without \"..\"");
    refused(c, "home_mailbox", "../Maildir/", "must be a relative path without \"..\"");
    refused(c, "home_mailbox", "a/../../b", "must be a relative path without \"..\"");
    accepted(c, "home_mailbox", "Mail/box/");
    accepted(c, "home_mailbox", "..Maildir");
    conf_free(c);
}

TEST(list_values)
{
    struct conf *c = defaults();
    if (c == NULL)
        return;
    refused(c, "mydestination", "a.example, a..b", "\"a..b\" is not a domain name");
    refused(c, "relay_domains", "ok.example x/y", "\"x/y\" is not a domain name");
    accepted(c, "mydestination", "a.example, .sub.example, b\xc3\xbc" "cher.example");
    accepted(c, "mydestination", "");

    refused(c, "mynetworks", "10.0.0.0/33", "bad network 10.0.0.0/33: prefix length too large");
    refused(c, "mynetworks", "127.0.0.0/8 example.com",
            "bad network example.com: not an IPv4 or IPv6 address");
    accepted(c, "mynetworks", "10.0.0.0/8, [::1]/128 192.0.2.1 2001:db8::/32");
    char **v = conf_list(c, CONF_mynetworks);
    CHECK(strv_len(v) == 4);
    strv_free(v);
    accepted(c, "mynetworks", "");

    refused(c, "inet_interfaces", "", "must not be empty");
    refused(c, "inet_interfaces", "127.0.0.1, eth0",
            "\"eth0\" is not an IP address, all or loopback-only");
    refused(c, "inet_interfaces", "[::1]", "\"[::1]\" is not an IP address, all or loopback-only");
    accepted(c, "inet_interfaces", "127.0.0.1, ::1");
    accepted(c, "inet_interfaces", "loopback-only");

    refused(c, "dns_servers", "a, b, c, d", "must have at most 3 items");
    refused(c, "dns_servers", "host.test", "\"host.test\" is not an IP address or [address]:port");
    refused(c, "dns_servers", "[127.0.0.1]:99999",
            "\"[127.0.0.1]:99999\" is not an IP address or [address]:port");
    refused(c, "dns_servers", "127.0.0.1:53", "\"127.0.0.1:53\" is not an IP address or "
            "[address]:port");
    accepted(c, "dns_servers", "127.0.0.1, [::1]:5353, [192.0.2.1]:53");
    accepted(c, "dns_servers", "::1");
    conf_free(c);
}

TEST(map_values)
{
    struct conf *c = defaults();
    if (c == NULL)
        return;
    refused(c, "alias_maps", "hash:/etc/aliases",
            "\"hash:/etc/aliases\": unknown map type \"hash\" (cdb, pcre, static, inline, "
            "unix)");
    refused(c, "alias_maps", "cdb:aliases", "\"cdb:aliases\": the file needs an absolute path");
    refused(c, "alias_maps", "cdb:", "\"cdb:\": missing file name");
    refused(c, "transport_maps", "/etc/transport", "\"/etc/transport\": expected type:name");
    refused(c, "virtual_alias_maps", "inline:{a}",
            "inline:{a}: expected key=value in \"a\"");
    refused(c, "virtual_alias_maps", "inline:{a=b", "inline:{a=b: missing '}'");
    refused(c, "auth_password_maps", "unix:group", "\"unix:group\": only unix:passwd is supported");
    accepted(c, "alias_maps", "cdb:/x/aliases, inline:{a=b, c=d} static:{x y} unix:passwd "
                              "pcre:/etc/p.pcre");
    CHECK_STR(conf_str(c, CONF_alias_maps),
              "cdb:/x/aliases, inline:{a=b, c=d} static:{x y} unix:passwd pcre:/etc/p.pcre");
    accepted(c, "alias_maps", "");
    conf_free(c);
}

/* Every row of the table: a known type, sane bounds, a documented 0 where 0 is
 * allowed, and a default that passes its own check. */
TEST(table_is_consistent)
{
    for (size_t i = 0; i < conf_ndefaults; i++) {
        const struct conf_default *d = &conf_defaults[i];
        bool numeric = d->type == CONF_COUNT || d->type == CONF_TIME || d->type == CONF_SIZE;

        CHECK(conf_key_find(d->name) == (int)i);
        CHECK_STR(conf_key_name((enum conf_key)i), d->name);
        CHECK(strcmp(conf_type_name(d->type), "unknown") != 0);
        CHECK(d->min >= 0 && d->min <= d->max);
        CHECK(d->doc != NULL && d->doc[0] != '\0');
        CHECK((d->type == CONF_ENUM) == (d->words != NULL) || d->type == CONF_ADDRS
              || d->type == CONF_CIDRS);
        if (numeric && d->min == 0 && d->zero == NULL)
            fprintf(stderr, "  %s: 0 is allowed but its meaning is not given\n", d->name),
                unit_failures_in_test++;
        /* every timeout and poll fits an int of milliseconds */
        if (d->type == CONF_TIME && (strstr(d->name, "timeout") != NULL
                                     || strcmp(d->name, "max_idle") == 0))
            CHECK(d->max <= 86400);
        if (strchr(d->value, '$') == NULL) {
            struct str why = STR_INIT;
            str_init(&why);
            if (conf_check((enum conf_key)i, d->value, &why) < 0)
                fprintf(stderr, "  default of %s: %s\n", d->name, why.s),
                    unit_failures_in_test++;
            str_free(&why);
        }
    }
    CHECK(conf_key_find("config_directory") == CONF_config_directory);
    CHECK(conf_key_find("ipc_timeouts") == -1);
    CHECK(conf_key_find("") == -1);
}

/* Reading a key through another type's accessor is a bug: the process aborts. */
static bool aborts(void (*fn)(const struct conf *), const struct conf *c)
{
    int status;
    pid_t pid = fork();

    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);          /* the panic line */
        fn(c);
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return false;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void count_of_string(const struct conf *c) { (void)conf_count(c, CONF_mail_name); }
static void str_of_time(const struct conf *c) { (void)conf_str(c, CONF_ipc_timeout); }
static void list_of_maps(const struct conf *c) { strv_free(conf_list(c, CONF_alias_maps)); }
static void time_of_count(const struct conf *c) { (void)conf_time_ms(c, CONF_max_use); }
static void bool_of_size(const struct conf *c) { (void)conf_bool(c, CONF_bounce_size_limit); }
static void no_such_key(const struct conf *c) { (void)conf_str(c, (enum conf_key)CONF_NKEYS); }

TEST(wrong_accessor_panics)
{
    struct conf *c = defaults();
    if (c == NULL)
        return;
    CHECK(aborts(count_of_string, c));
    CHECK(aborts(str_of_time, c));
    CHECK(aborts(list_of_maps, c));
    CHECK(aborts(time_of_count, c));
    CHECK(aborts(bool_of_size, c));
    CHECK(aborts(no_such_key, c));
    conf_free(c);
}

TEST(conf_set)
{
    struct str err = STR_INIT;
    struct conf *c = conf_load(conf_dir_with("myhostname = a.b.c\n"), &err);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(conf_set(c, "myhostname", "x.y.z", &err) == 0);
    CHECK_STR(conf_str(c, CONF_myorigin), "x.y.z");
    CHECK_STR(conf_str(c, CONF_mydomain), "y.z");
    CHECK(conf_is_set(c, CONF_myhostname));
    str_clear(&err);
    CHECK(conf_set(c, "nokey", "1", &err) == -1);
    CHECK_STR(err.s, "unknown key \"nokey\"");
    str_clear(&err);
    CHECK(conf_set(c, "config_directory", "/x", &err) == -1);
    CHECK_STR(err.s, "config_directory cannot be set");
    refused(c, "max_use", "lots", "must be a whole number");
    CHECK(conf_count(c, CONF_max_use) == 100);
    CHECK(conf_set(c, "max_use", "5", &err) == 0);
    CHECK(conf_count(c, CONF_max_use) == 5);
    str_clear(&err);
    CHECK(conf_set(c, "mail_name", "$nothing", &err) == -1);
    CHECK_STR(conf_str(c, CONF_mail_name), "Postern");
    /* a value that breaks another key through $expansion is refused, naming that key */
    str_clear(&err);
    CHECK(conf_set(c, "myorigin", "$mail_name", &err) == 0);
    CHECK(conf_set(c, "mail_name", "two words", &err) == -1);
    CHECK(strstr(err.s, "myorigin = two words: must be a host name") != NULL);
    CHECK_STR(conf_str(c, CONF_mail_name), "Postern");
    conf_free(c);
    str_free(&err);
}

static void count_of_unchecked(const struct conf *c) { (void)conf_count(c, CONF_max_use); }

/* A file with bad values, loaded unchecked, can be read as text and put right. */
TEST(unchecked_load_and_repair)
{
    struct str err = STR_INIT;
    const char *dir = conf_dir_with("max_use = 0\nipc_timeout = 0\nmail_name = M\n");
    char d[512];

    snprintf(d, sizeof(d), "%s", dir);
    str_init(&err);
    CHECK(conf_load(d, &err) == NULL);
    struct conf *c = conf_load_unchecked(d, &err);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK_STR(conf_str(c, CONF_mail_name), "M");
    CHECK(conf_str(c, CONF_queue_directory)[0] == '/');
    CHECK_STR(conf_raw(c, CONF_max_use), "0");
    CHECK(aborts(count_of_unchecked, c));
    refused(c, "max_idle", "0", "must be at least 1s");
    accepted(c, "max_use", "5");
    str_clear(&err);
    CHECK(conf_check_all(c, &err) == -1);
    CHECK(strstr(err.s, "/postern.conf:2: ipc_timeout = 0: must be at least 1s") != NULL);
    accepted(c, "ipc_timeout", "5s");
    CHECK(conf_check_all(c, &err) == 0);
    CHECK(conf_count(c, CONF_max_use) == 5);
    CHECK(conf_time_ms(c, CONF_ipc_timeout) == 5000);
    conf_free(c);
    /* syntax errors stay errors */
    str_clear(&err);
    CHECK(conf_load_unchecked(conf_dir_with("nokey = 1\n"), &err) == NULL);
    str_free(&err);
}

TEST(conf_check)
{
    struct str why = STR_INIT;
    str_init(&why);
    CHECK(conf_check(CONF_ipc_timeout, "0", &why) == -1);
    CHECK_STR(why.s, "must be at least 1s");
    CHECK(conf_check(CONF_ipc_timeout, "10s", &why) == 0);
    str_clear(&why);
    CHECK(conf_check(CONF_config_directory, "/x", &why) == -1);
    str_free(&why);
}

TEST(load_fd)
{
    struct str err = STR_INIT;
    const char *dir = conf_dir_with(NULL);
    char d[512], path[600];
    const char *text = "mail_name = From the snapshot\nipc_timeout = 9s\n";

    snprintf(d, sizeof(d), "%s", dir);
    snprintf(path, sizeof(path), "%s/snapshot", d);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    /* the reader starts at 0 whatever the offset, and leaves the offset alone */
    CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)strlen(text));
    struct conf *c = conf_load_fd(d, fd, &err);
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK_STR(conf_str(c, CONF_mail_name), "From the snapshot");
        CHECK(conf_time_ms(c, CONF_ipc_timeout) == 9000);
        CHECK_STR(conf_dir(c), d);
        size_t len;
        CHECK_STR(conf_text(c, &len), text);
    }
    conf_free(c);
    CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)strlen(text));

    /* a bad value in a snapshot is refused as in a file, naming postern.conf */
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(pwrite(fd, "max_idle = 0\n", 13, 0) == 13);
    str_clear(&err);
    c = conf_load_fd(d, fd, &err);
    CHECK(c == NULL);
    CHECK(strstr(err.s, "/postern.conf:1: max_idle = 0: must be at least 1s") != NULL);
    close(fd);
    str_clear(&err);
    CHECK(conf_load_fd(d, fd, &err) == NULL);
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
    /* the last setting is the one that counts: it is the one replaced */
    CHECK(conf_edit(d, "mydestination", "new.example", &err) == 0);
    CHECK_STR(read_conf(d),
        "# header\n"
        "mydestination = a,\n"
        "    b\n"
        "  # kept\n"
        "    c\n"
        "mail_name = X\n"
        "mydestination = new.example\n");
    CHECK(conf_edit(d, "mail_name", "Y", &err) == 0);
    CHECK(strstr(read_conf(d), "    c\nmail_name = Y\nmydestination") != NULL);
    CHECK(conf_edit(d, "relayhost", "[mx]:25", &err) == 0);
    CHECK(strstr(read_conf(d), "mydestination = new.example\nrelayhost = [mx]:25\n") != NULL);
    CHECK(conf_edit(d, "bogus", "1", &err) == -1);
    CHECK(conf_edit(d, "mail_name", "a\nb", &err) == -1);
    CHECK(conf_edit(d, "config_directory", "/x", &err) == -1);
    struct conf *c = conf_load(d, &err);
    CHECK(c != NULL);
    if (c != NULL)
        CHECK_STR(conf_str(c, CONF_relayhost), "[mx]:25");
    conf_free(c);

    /* continuation lines of the setting replaced go with it */
    dir = conf_dir_with("relay_domains = a\nrelay_domains = p,\n  q\n# c\nmail_name = Z\n");
    snprintf(d, sizeof(d), "%s", dir);
    CHECK(conf_edit(d, "relay_domains", "r", &err) == 0);
    CHECK_STR(read_conf(d), "relay_domains = a\nrelay_domains = r\n# c\nmail_name = Z\n");

    /* value NULL: every setting goes, with its continuation lines */
    dir = conf_dir_with("relay_domains = a\nmail_name = Z\nrelay_domains = p,\n  q\n# c\n");
    snprintf(d, sizeof(d), "%s", dir);
    CHECK(conf_edit(d, "relay_domains", NULL, &err) == 0);
    CHECK_STR(read_conf(d), "mail_name = Z\n# c\n");
    CHECK(conf_edit(d, "relayhost", NULL, &err) == 0);
    CHECK_STR(read_conf(d), "mail_name = Z\n# c\n");

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
    CHECK_STR(conf_raw(c, CONF_mail_name), "$myhostname!");
    CHECK_STR(conf_str(c, CONF_mail_name), "h!");
    CHECK_STR(conf_raw(c, CONF_myorigin), "$myhostname");
    CHECK_STR(conf_raw(c, CONF_config_directory), d);
    CHECK_STR(conf_expanded(c, CONF_myorigin), "h");
    conf_free(c);
    str_free(&err);
}
