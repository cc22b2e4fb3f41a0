/* libFuzzer harness for what anvil(8) reads and keeps.  The first byte picks:
 *  - even: the input is request bytes as they arrive on one of anvil's sockets:
 *    attr_frame_end() on growing prefixes must agree with itself and with
 *    attr_decode() (a whole frame is found exactly where one ends);
 *  - odd: the input is a script of table operations (connect, disconnect, owner
 *    death, login fail/ok/query, limit, time passing) on a small anvil_table,
 *    checked against a model of the open connections: a held connection is never
 *    lost, a released one never stays, the table never grows past its bound.
 * Build and run: make fuzz (build/fuzz/fuzz_anvil), make fuzz-smoke-fuzz_anvil. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_table.h"
#include "attr.h"
#include "attr_frame.h"

#define FUZZ_INPUT_MAX 65536
#define TABLE_MAX 16
#define OWNERS 4
#define SERVICES 2
#define CLIENTS 6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void frames(const uint8_t *data, size_t size)
{
    struct attr_list al = ATTR_LIST_INIT;
    size_t max = size % 3 == 0 ? 64 : ATTR_FRAME_MAX;
    size_t off = 0;

    while (off < size) {
        size_t n = 0, m = 0;
        int rc = attr_frame_end(data + off, size - off, max, &n);

        if (rc <= 0) {
            /* no whole frame: no prefix holds one either */
            if (rc == 0 && attr_frame_end(data + off, (size - off) / 2, max, &m) != 0)
                abort();
            break;
        }
        if (n == 0 || n > size - off || n > max)
            abort();
        /* every shorter prefix is incomplete */
        if (attr_frame_end(data + off, n - 1, max, &m) != 0)
            abort();
        if (attr_frame_end(data + off, n / 2, max, &m) != 0)
            abort();
        /* the frame decodes unless a name is bad: then not as anything longer either */
        if (attr_decode(data + off, n, &al, max) < 0 && errno != EPROTO)
            abort();
        off += n;
    }
    attr_free(&al);
}

struct model {
    unsigned open[OWNERS][SERVICES][CLIENTS];
};

static unsigned model_conns(const struct model *m, int s, int c)
{
    unsigned n = 0;

    for (int o = 0; o < OWNERS; o++)
        n += m->open[o][s][c];
    return n;
}

static void table_script(const uint8_t *data, size_t size)
{
    static const char *const services[SERVICES] = { "smtp", "pop3" };
    static const char *const clients[CLIENTS] = {
        "127.0.0.1", "127.0.0.2", "::1", "10.0.0.1", "a", "A",
    };
    static const char *const accounts[CLIENTS] = {
        "joe", "JOE", "ann@example.test", "x", "Ann@Example.TEST", "\xff",
    };
    struct anvil_table *t = anvil_table_new(TABLE_MAX, 1000);
    struct anvil_owner *owner[OWNERS];
    struct model m;
    long long now = 0;

    memset(&m, 0, sizeof(m));
    for (int o = 0; o < OWNERS; o++)
        owner[o] = anvil_owner_new(t);
    for (size_t i = 0; i + 1 < size; i += 2) {
        int op = data[i] % 8, o = (data[i] >> 3) % OWNERS;
        int s = data[i + 1] % SERVICES, c = (data[i + 1] >> 1) % CLIENTS;
        unsigned a = 0, b = 0;

        switch (op) {
        case 0:
        case 1:
            if (anvil_table_connect(t, owner[o], services[s], clients[c], now, &a, &b) == 0) {
                m.open[o][s][c]++;
                if (a != model_conns(&m, s, c) || b == 0)
                    abort();
            } else if (errno != ENOSPC && errno != EMFILE) {
                abort();
            }
            break;
        case 2:
            if (anvil_table_disconnect(t, owner[o], services[s], clients[c]) == 0) {
                if (m.open[o][s][c] == 0)
                    abort();
                m.open[o][s][c]--;
            } else if (m.open[o][s][c] != 0) {
                abort();
            }
            break;
        case 3:                     /* the owner's process dies; another takes its place */
            anvil_owner_free(owner[o]);
            owner[o] = anvil_owner_new(t);
            memset(m.open[o], 0, sizeof(m.open[o]));
            break;
        case 4:
            (void)anvil_table_login_fail(t, clients[c], accounts[(c + s) % CLIENTS], now, &a, &b);
            break;
        case 5:
            if (anvil_table_login_ok(t, clients[c], accounts[(c + s) % CLIENTS], now) < 0)
                abort();
            break;
        case 6:
            if (anvil_table_login_query(t, clients[c], accounts[c], now, &a, &b) < 0)
                abort();
            if (anvil_table_limit(t, services[s], clients[c], now) < 0)
                abort();
            break;
        case 7:
            now += data[i + 1] * 10;
            break;
        }
        if (anvil_table_size(t) > TABLE_MAX)
            abort();
        for (int ss = 0; ss < SERVICES; ss++)
            for (int cc = 0; cc < CLIENTS; cc++) {
                anvil_table_conn_query(t, services[ss], clients[cc], now, &a, &b);
                if (a != model_conns(&m, ss, cc))
                    abort();
            }
    }
    for (int o = 0; o < OWNERS; o++)
        anvil_owner_free(owner[o]);
    for (int ss = 0; ss < SERVICES; ss++)
        for (int cc = 0; cc < CLIENTS; cc++) {
            unsigned a = 0, b = 0;
            anvil_table_conn_query(t, services[ss], clients[cc], now, &a, &b);
            if (a != 0)
                abort();
        }
    anvil_table_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > FUZZ_INPUT_MAX)
        return 0;
    if (data[0] % 2 == 0)
        frames(data + 1, size - 1);
    else
        table_script(data + 1, size - 1);
    return 0;
}
