/* The post-login side of pop3d and imapd, shared: the root service that receives
 * logged-in clients from the pre-auth processes (login.h), asks auth who each token
 * belongs to and gives the client to a session process running as the mailbox owner,
 * chrooted into the user's Maildir (login_post.c, login_worker.c).  The daemon says
 * what differs in a struct login_service: its name, its socket, its session code and
 * the wording of its refusals. */
#ifndef POSTERN_LOGIN_SERVE_H
#define POSTERN_LOGIN_SERVE_H

#include <sys/types.h>

#include "login.h"

struct server;
struct auth_result;

/* Why a client is turned away before its session starts. */
enum login_refusal {
    LOGIN_REFUSE_BUSY,          /* no session process could be had */
    LOGIN_REFUSE_EXPIRED,       /* auth does not know the token (any more) */
    LOGIN_REFUSE_AUTH_TEMP,     /* auth could not be asked */
    LOGIN_REFUSE_NO_MAILBOX,    /* the account has no usable Maildir path */
    LOGIN_REFUSE_MAILBOX_TEMP,  /* the Maildir could not be entered */
};

struct login_service {
    const char *command;        /* the daemon's program name: its "-l" services call */
    const char *path;           /* the socket (proto.h), for logs and peer checks */
    int ipc_timeout_ms;
    /* One session, in a process that runs as the user inside the Maildir: the exit
     * status, or < 0 to end the process. */
    int (*session)(struct login_handoff *h, const struct auth_result *who);
    /* The line (CRLF included) that tells the client why, in the protocol's words. */
    const char *(*refusal)(enum login_refusal why);
    /* Connections of one user that one session process serves at once; 0 or 1: one
     * at a time, through session.  More: every connection of the user goes to the
     * same process while it has fewer, which serves them all in mux. */
    unsigned session_limit;
    /* With session_limit > 1: the process's loop, given its first client; further
     * clients of the same user come on ctl (login_worker_next), and each that ends
     * is reported (login_worker_done).  Returns when all are over and ctl is closed
     * (or -1). */
    void (*mux)(int ctl, struct login_handoff *h, const struct auth_result *who);
};

/* Before the privilege drop: who may hand clients over (master.conf).  ls must stay
 * valid for the life of the process. */
void login_post_setup(struct server *srv, const struct login_service *ls);
/* The service's loop (server_opts.loop). */
int login_post_loop(struct server *srv);

/* Passes h's client and who's session to an idle session process over ctl (the
 * post-login side's end of its socket pair).  0, or -1 (errno). */
int login_worker_send(int ctl, const struct login_handoff *h, const struct auth_result *who);
/* In a child just forked as root: enters who's Maildir (checked, then chroot there),
 * drops to who's uid and gid, serves h, then, with ctl >= 0, further sessions of the
 * same user and Maildir received on ctl, up to max_use in all (<= 0: no limit). */
_Noreturn void login_worker_main(const struct login_service *ls, int ctl,
                                 struct login_handoff *h, struct auth_result *who,
                                 pid_t parent, long long max_use);
/* In a session process's mux: the next client from the post-login process, when ctl
 * is readable: 1 (h and who filled; the same user and Maildir as the first), 0 when
 * ctl is closed (no more will come), -1 when the message was malformed or not this
 * process's (logged; the client, if any, refused). */
int login_worker_next(int ctl, struct login_handoff *h, struct auth_result *who);
/* In a session process's mux: one client's session is over (tells the post-login
 * process, which counts the process's clients). */
void login_worker_done(int ctl);
/* The main of pop3d and imapd: "-l" among the arguments (not as an "-o" value) picks
 * the pre-auth mode, preauth; otherwise the post-login service, postlogin.  The
 * server skeleton (server.h) sees the other arguments. */
struct server_opts;
_Noreturn void login_daemon_main(int argc, char **argv, const struct server_opts *preauth,
                                 const struct server_opts *postlogin);
/* Sends line to h's client, then closes it. */
void login_refuse(struct login_handoff *h, const char *line);

#endif
