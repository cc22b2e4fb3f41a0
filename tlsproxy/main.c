/* tlsproxy(8): TLS for the pre-auth processes of imapd and pop3d, many connections
 * in one process.  A pre-auth process passes its client's socket (at connect on
 * ports 993 and 995, after its STARTTLS or STLS answer on 143 and 110) and gets back
 * a socket carrying the plaintext; this process does the handshake and relays both
 * ways for the life of the connection, so that neither the pre-auth process nor any
 * other stays with the client after login.  It reads the certificate and key while
 * privileged, then runs unprivileged, chrooted to login/, like the pre-auth
 * processes; it trusts nothing the TLS clients send. */
#include <string.h>
#include <sys/resource.h>

#include "conf.h"
#include "log.h"
#include "master_conf.h"
#include "proto.h"
#include "server.h"
#include "str.h"
#include "tls.h"
#include "tlsproxy.h"

#define TLSPROXY_FDS_SPARE 64       /* descriptors kept for requests, logs, listeners */

struct tlsproxy_conf tlsproxy_cf;

/* Who may call login/tlsproxy: root and the users of the pre-auth services. */
static bool calls_tlsproxy(const struct master_service *svc)
{
    return strcmp(svc->command, "imapd") == 0 || strcmp(svc->command, "pop3d") == 0;
}

/* Two descriptors a connection: as many as the open-file limit allows, raised to
 * its hard limit first. */
static size_t fd_room(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return (size_t)-1;
    return rl.rlim_cur > 2 * TLSPROXY_FDS_SPARE
           ? (size_t)(rl.rlim_cur - TLSPROXY_FDS_SPARE) / 2 : 1;
}

static void tlsproxy_pre_jail(struct server *srv)
{
    const struct conf *c = srv->conf;
    const char *cert = conf_str(c, CONF_smtpd_tls_cert_file);
    const char *key = conf_str(c, CONF_smtpd_tls_key_file);
    struct str err = STR_INIT;
    size_t room;

    tlsproxy_cf.conn_limit = (size_t)conf_count(c, CONF_tlsproxy_connection_limit);
    tlsproxy_cf.buf_size = (size_t)conf_size(c, CONF_tlsproxy_buffer_size);
    tlsproxy_cf.ipc_timeout_ms = (int)conf_time_ms(c, CONF_ipc_timeout);
    tlsproxy_cf.max_idle_ms = conf_time_ms(c, CONF_max_idle);
    if (*cert != '\0') {
        tlsproxy_cf.tls = tls_server_ctx(cert, *key != '\0' ? key : cert, &err);
        if (tlsproxy_cf.tls == NULL)
            log_fatal("smtpd_tls_cert_file: %s", err.s);
    }
    if (peer_allow_load(c, calls_tlsproxy, &tlsproxy_cf.callers, &err) < 0)
        log_fatal("callers of %s: %s", PROTO_PATH_TLSPROXY, err.s);
    room = fd_room();
    if (room < tlsproxy_cf.conn_limit) {
        log_warn("tlsproxy_connection_limit %zu lowered to %zu by the open-file limit",
                 tlsproxy_cf.conn_limit, room);
        tlsproxy_cf.conn_limit = room;
    }
    str_free(&err);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .name = "tlsproxy",
        .pre_jail = tlsproxy_pre_jail,
        .loop = tlsproxy_loop,
        .jail_subdir = PROTO_LOGIN_DIR,
    };

    server_main(argc, argv, &opts);
}
