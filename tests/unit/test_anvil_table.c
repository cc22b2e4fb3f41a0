/* Unit tests for lib/mail/anvil_table.c: connection counts and their release with the
 * owner, rates and login failures in fixed windows, forgetting on a good login, the
 * once-a-minute limit report, bounded size and bad keys. */
#include "unit.h"

#include <errno.h>

#include "anvil_table.h"

TEST(connections_count_and_release_with_owner)
{
    struct anvil_table *t = anvil_table_new(100, 60000);
    struct anvil_owner *a = anvil_owner_new(t), *b = anvil_owner_new(t);
    unsigned conns = 0, rate = 0;

    CHECK(anvil_table_connect(t, a, "smtp", "127.0.0.3", 0, &conns, &rate) == 0);
    CHECK(conns == 1 && rate == 1);
    CHECK(anvil_table_connect(t, a, "smtp", "127.0.0.3", 10, &conns, &rate) == 0);
    CHECK(anvil_table_connect(t, b, "smtp", "127.0.0.3", 20, &conns, &rate) == 0);
    CHECK(conns == 3 && rate == 3);
    /* another service and another client count apart */
    CHECK(anvil_table_connect(t, b, "pop3", "127.0.0.3", 20, &conns, &rate) == 0);
    CHECK(conns == 1 && rate == 1);
    CHECK(anvil_table_connect(t, b, "smtp", "127.0.0.4", 20, &conns, &rate) == 0);
    CHECK(conns == 1 && rate == 1);
    /* b disconnects one it holds, and one it does not */
    CHECK(anvil_table_disconnect(t, b, "smtp", "127.0.0.3") == 0);
    CHECK(anvil_table_disconnect(t, b, "smtp", "127.0.0.3") < 0);
    anvil_table_conn_query(t, "smtp", "127.0.0.3", 30, &conns, &rate);
    CHECK(conns == 2 && rate == 3);
    /* a dies: both of its slots go; the rate stays */
    CHECK(anvil_owner_slots(a) == 2);
    anvil_owner_free(a);
    anvil_table_conn_query(t, "smtp", "127.0.0.3", 40, &conns, &rate);
    CHECK(conns == 0 && rate == 3);
    anvil_table_conn_query(t, "pop3", "127.0.0.3", 40, &conns, &rate);
    CHECK(conns == 1);
    anvil_owner_free(b);
    anvil_table_conn_query(t, "pop3", "127.0.0.3", 40, &conns, &rate);
    CHECK(conns == 0);
    anvil_table_free(t);
}

TEST(rate_window_expires)
{
    struct anvil_table *t = anvil_table_new(100, 1000);
    struct anvil_owner *o = anvil_owner_new(t);
    unsigned conns = 0, rate = 0;

    for (int i = 0; i < 5; i++)
        CHECK(anvil_table_connect(t, o, "smtp", "10.0.0.1", 100 + i, &conns, &rate) == 0);
    CHECK(rate == 5 && conns == 5);
    anvil_table_conn_query(t, "smtp", "10.0.0.1", 1099, &conns, &rate);
    CHECK(rate == 5);
    anvil_table_conn_query(t, "smtp", "10.0.0.1", 1100, &conns, &rate);
    CHECK(rate == 0 && conns == 5);
    CHECK(anvil_table_connect(t, o, "smtp", "10.0.0.1", 1200, &conns, &rate) == 0);
    CHECK(rate == 1 && conns == 6);
    anvil_owner_free(o);
    anvil_table_free(t);
}

TEST(login_failures_per_client_and_account)
{
    struct anvil_table *t = anvil_table_new(100, 60000);
    unsigned c = 9, a = 9;

    CHECK(anvil_table_login_query(t, "10.0.0.1", "joe@example.test", 0, &c, &a) == 0);
    CHECK(c == 0 && a == 0);
    CHECK(anvil_table_login_fail(t, "10.0.0.1", "joe@example.test", 0, &c, &a) == 0);
    CHECK(c == 1 && a == 1);
    /* the account as typed, lower-cased */
    CHECK(anvil_table_login_fail(t, "10.0.0.1", "Joe@Example.TEST", 1, &c, &a) == 0);
    CHECK(c == 2 && a == 2);
    /* the same account from elsewhere; another account from here */
    CHECK(anvil_table_login_fail(t, "10.0.0.2", "joe@example.test", 2, &c, &a) == 0);
    CHECK(c == 1 && a == 3);
    CHECK(anvil_table_login_fail(t, "10.0.0.1", "ann@example.test", 3, &c, &a) == 0);
    CHECK(c == 3 && a == 1);
    /* a query changes nothing */
    CHECK(anvil_table_login_query(t, "10.0.0.1", "joe@example.test", 4, &c, &a) == 0);
    CHECK(c == 3 && a == 3);
    CHECK(anvil_table_login_query(t, "10.0.0.1", "joe@example.test", 4, &c, &a) == 0);
    CHECK(c == 3 && a == 3);
    /* joe logs in from 10.0.0.1: his two failures from there are forgotten */
    CHECK(anvil_table_login_ok(t, "10.0.0.1", "JOE@example.test", 5) == 0);
    CHECK(anvil_table_login_query(t, "10.0.0.1", "joe@example.test", 6, &c, &a) == 0);
    CHECK(c == 1 && a == 1);
    CHECK(anvil_table_login_query(t, "10.0.0.2", "ann@example.test", 6, &c, &a) == 0);
    CHECK(c == 1 && a == 1);
    /* a second login_ok has nothing more to forget */
    CHECK(anvil_table_login_ok(t, "10.0.0.1", "joe@example.test", 7) == 0);
    CHECK(anvil_table_login_query(t, "10.0.0.1", "joe@example.test", 8, &c, &a) == 0);
    CHECK(c == 1 && a == 1);
    anvil_table_free(t);
}

TEST(login_window_expires)
{
    struct anvil_table *t = anvil_table_new(100, 2000);
    unsigned c = 0, a = 0;

    for (int i = 0; i < 4; i++)
        CHECK(anvil_table_login_fail(t, "10.0.0.1", "x", 1000 + i, &c, &a) == 0);
    CHECK(c == 4 && a == 4);
    CHECK(anvil_table_login_query(t, "10.0.0.1", "x", 2999, &c, &a) == 0);
    CHECK(c == 4 && a == 4);
    CHECK(anvil_table_login_query(t, "10.0.0.1", "x", 3000, &c, &a) == 0);
    CHECK(c == 0 && a == 0);
    CHECK(anvil_table_login_fail(t, "10.0.0.1", "x", 3001, &c, &a) == 0);
    CHECK(c == 1 && a == 1);
    anvil_table_free(t);
}

TEST(limit_reported_once_a_minute)
{
    struct anvil_table *t = anvil_table_new(100, 1000);

    CHECK(anvil_table_limit(t, "smtp", "127.0.0.3", 5000) == 1);
    CHECK(anvil_table_limit(t, "smtp", "127.0.0.3", 5001) == 0);
    CHECK(anvil_table_limit(t, "smtp", "127.0.0.3", 5000 + ANVIL_LOG_INTERVAL_MS - 1) == 0);
    CHECK(anvil_table_limit(t, "pop3", "127.0.0.3", 5002) == 1);
    CHECK(anvil_table_limit(t, "smtp", "127.0.0.4", 5002) == 1);
    CHECK(anvil_table_limit(t, "smtp", "127.0.0.3", 5000 + ANVIL_LOG_INTERVAL_MS) == 1);
    CHECK(anvil_table_limit(t, "smtp", "127.0.0.3", 5001 + ANVIL_LOG_INTERVAL_MS) == 0);
    anvil_table_free(t);
}

TEST(table_is_bounded_and_keeps_open_connections)
{
    struct anvil_table *t = anvil_table_new(8, 60000);
    struct anvil_owner *o = anvil_owner_new(t);
    unsigned conns = 0, rate = 0, c = 0, a = 0;
    char client[32];

    CHECK(anvil_table_connect(t, o, "smtp", "10.9.9.9", 0, &conns, &rate) == 0);
    for (int i = 0; i < 100; i++) {
        snprintf(client, sizeof(client), "10.0.0.%d", i);
        CHECK(anvil_table_login_fail(t, client, "acct", i, &c, &a) == 0);
        CHECK(anvil_table_size(t) <= 8);
    }
    /* the newest are there, the oldest are gone, the open connection stayed */
    CHECK(anvil_table_login_query(t, "10.0.0.99", "acct", 200, &c, &a) == 0);
    CHECK(c == 1);
    CHECK(anvil_table_login_query(t, "10.0.0.1", "acct", 200, &c, &a) == 0);
    CHECK(c == 0);
    anvil_table_conn_query(t, "smtp", "10.9.9.9", 300, &conns, &rate);
    CHECK(conns == 1);
    /* a table full of open connections refuses new ones */
    for (int i = 0; i < 7; i++) {
        snprintf(client, sizeof(client), "10.1.0.%d", i);
        CHECK(anvil_table_connect(t, o, "smtp", client, 400, &conns, &rate) == 0);
    }
    errno = 0;
    CHECK(anvil_table_connect(t, o, "smtp", "10.2.0.1", 400, &conns, &rate) < 0);
    CHECK(errno == ENOSPC);
    errno = 0;
    CHECK(anvil_table_login_fail(t, "10.2.0.1", "x", 400, &c, &a) < 0);
    CHECK(errno == ENOSPC);
    CHECK(anvil_table_size(t) == 8);
    /* released, they may go again */
    anvil_owner_free(o);
    CHECK(anvil_table_login_fail(t, "10.2.0.1", "x", 500, &c, &a) == 0);
    CHECK(c == 1 && a == 1);
    CHECK(anvil_table_size(t) == 8);
    anvil_table_free(t);
}

TEST(owner_slots_are_bounded)
{
    struct anvil_table *t = anvil_table_new(1000, 60000);
    struct anvil_owner *o = anvil_owner_new(t);
    unsigned conns = 0, rate = 0;

    for (int i = 0; i < ANVIL_OWNER_SLOTS; i++)
        CHECK(anvil_table_connect(t, o, "smtp", "10.0.0.1", i, &conns, &rate) == 0);
    CHECK(conns == ANVIL_OWNER_SLOTS);
    errno = 0;
    CHECK(anvil_table_connect(t, o, "smtp", "10.0.0.1", 0, &conns, &rate) < 0);
    CHECK(errno == EMFILE);
    anvil_owner_free(o);
    anvil_table_conn_query(t, "smtp", "10.0.0.1", 0, &conns, &rate);
    CHECK(conns == 0);
    anvil_table_free(t);
}

TEST(bad_keys)
{
    struct anvil_table *t = anvil_table_new(100, 60000);
    struct anvil_owner *o = anvil_owner_new(t);
    unsigned conns = 0, rate = 0, c = 0, a = 0;
    char longkey[ANVIL_KEY_MAX + 2];

    memset(longkey, 'a', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    CHECK(anvil_table_connect(t, o, "", "10.0.0.1", 0, &conns, &rate) < 0);
    CHECK(anvil_table_connect(t, o, "smtp", "", 0, &conns, &rate) < 0);
    CHECK(anvil_table_connect(t, o, "smtp", longkey, 0, &conns, &rate) < 0);
    CHECK(anvil_table_login_fail(t, "10.0.0.1", longkey, 0, &c, &a) < 0);
    CHECK(anvil_table_login_fail(t, "10.0.0.1", "", 0, &c, &a) < 0);
    longkey[ANVIL_KEY_MAX] = '\0';
    CHECK(anvil_table_login_fail(t, longkey, longkey, 0, &c, &a) == 0);
    CHECK(c == 1 && a == 1);
    CHECK(anvil_owner_slots(o) == 0);
    anvil_owner_free(o);
    anvil_table_free(t);
}
