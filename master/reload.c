/* master: SIGHUP.  Re-reads both configuration files; on error the running
 * configuration stays.  A new service whose type and addresses equal those of a
 * running one takes over its listening sockets, so no connection is refused during
 * the reload.  Every running child gets SIGHUP (it finishes its work and exits);
 * the old services stay as RETIRED until their last child is reaped. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "log_conf.h"
#include "master.h"
#include "str.h"
#include "xmalloc.h"

/* A new service that can take over old's sockets: the same name first, else any
 * with the same type and addresses that has none yet. */
static struct service *heir_find(struct service **nsvc, size_t nn, const struct service *old)
{
    for (size_t i = 0; i < nn; i++)
        if (strcmp(nsvc[i]->name, old->name) == 0) {
            if (nsvc[i]->fds == NULL && strcmp(nsvc[i]->bindkey, old->bindkey) == 0)
                return nsvc[i];
            break;
        }
    for (size_t i = 0; i < nn; i++)
        if (nsvc[i]->fds == NULL && strcmp(nsvc[i]->bindkey, old->bindkey) == 0)
            return nsvc[i];
    return NULL;
}

void master_reload(void)
{
    struct conf *conf;
    struct service **nsvc, **all;
    size_t nn, nall = 0;
    struct str err = STR_INIT;

    master.reloads++;
    master.reload_error[0] = '\0';
    log_info("reload -- configuration %s", master.config_dir);
    if (master_config_load(master.config_dir, &conf, &nsvc, &nn, &err) < 0) {
        log_error("reload failed, keeping the running configuration: %s", err.s);
        snprintf(master.reload_error, sizeof(master.reload_error), "%s", err.s);
        str_free(&err);
        return;
    }
    str_free(&err);
    /* log_open_conf() treats a log file it cannot open as fatal: right at start, but
     * a reload must not kill a running master.  Try the file first. */
    {
        const char *file = conf_str(conf, CONF_maillog_file);
        int fd = file[0] == '\0' ? -2
                 : open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW,
                        0640);
        if (fd == -1) {
            log_error("reload failed, keeping the running configuration: "
                      "cannot open maillog_file %s: %s", file, strerror(errno));
            snprintf(master.reload_error, sizeof(master.reload_error),
                     "cannot open maillog_file %s: %s", file, strerror(errno));
            for (size_t i = 0; i < nn; i++)
                service_free(nsvc[i]);
            free(nsvc);
            conf_free(conf);
            return;
        }
        if (fd >= 0)
            close(fd);
    }
    {
        int fd = master_conf_snapshot(conf, &err);
        if (fd < 0) {
            log_error("reload failed, keeping the running configuration: %s", err.s);
            snprintf(master.reload_error, sizeof(master.reload_error), "%s", err.s);
            str_free(&err);
            for (size_t i = 0; i < nn; i++)
                service_free(nsvc[i]);
            free(nsvc);
            conf_free(conf);
            return;
        }
        close(master.conf_fd);
        master.conf_fd = fd;
    }
    if (strcmp(conf_str(conf, CONF_queue_directory), master.queue_dir) != 0)
        log_warn("queue_directory changed: takes effect at the next start; "
                 "still using %s", master.queue_dir);
    log_open_conf("master", conf, master.foreground);

    all = xcalloc(master.nsvc + nn + 1, sizeof(*all));
    for (size_t i = 0; i < master.nsvc; i++) {
        struct service *s = master.svc[i];

        if (s->state != SVC_RETIRED) {
            struct service *heir = heir_find(nsvc, nn, s);
            svc_signal(s, SIGHUP);
            if (heir != NULL && s->fds != NULL) {
                heir->fds = s->fds;
                heir->nfds = s->nfds;
                s->fds = NULL;
                s->nfds = 0;
            } else if (s->fds != NULL && s->type != MASTER_INET) {
                for (size_t k = 0; k < s->naddrs; k++)
                    unlink(s->addrs[k].host);
            }
            svc_unbind(s);
            s->state = SVC_RETIRED;
        }
        if (s->nchild == 0)
            service_free(s);
        else
            all[nall++] = s;
    }
    for (size_t i = 0; i < nn; i++)
        all[nall++] = nsvc[i];
    free(nsvc);
    free(master.svc);
    master.svc = all;
    master.nsvc = nall;
    conf_free(master.conf);
    master.conf = conf;
}
