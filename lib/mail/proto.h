/* Every name spoken between daemons: the sockets, the protocols and their versions,
 * the request names, the attribute names and the fixed values.  Nothing else in the
 * tree spells them out, so that a typo fails the build and a grep finds every user.
 *
 * A frame is a list of named attributes (lib/util/attr.h).  Every request and every
 * reply begins with "proto=NAME/VERSION"; the receiver checks it before anything
 * else (ipc_proto.h), so that a peer of another release is told, and logged, instead
 * of misread.  A frame without it is version 1, the unversioned frames of earlier
 * releases.  The frames of each protocol are described in the man page of the daemon
 * that serves it, and the readers' rules in lib/util/attr_scan.h. */
#ifndef POSTERN_PROTO_H
#define POSTERN_PROTO_H

/* ---- sockets, relative to the queue directory ---- */
#define PROTO_PRIVATE_DIR   "private"       /* daemons only (mode 0700) */
#define PROTO_LOGIN_DIR     "login"         /* also the chroot of pre-auth processes */
#define PROTO_PUBLIC_DIR    "public"        /* reachable by group setgid_group (0710) */
#define PROTO_PATH_PICKUP   PROTO_PUBLIC_DIR "/pickup"
#define PROTO_PATH_QMGR     PROTO_PRIVATE_DIR "/qmgr"
#define PROTO_PATH_RESOLVE  PROTO_PRIVATE_DIR "/resolve"
/* A delivery agent listens on private/TRANSPORT: */
#define PROTO_PATH_AGENT    PROTO_PRIVATE_DIR "/"
#define PROTO_PATH_LOCAL    PROTO_PATH_AGENT "local"
#define PROTO_PATH_SMTP     PROTO_PATH_AGENT "smtp"
/* In login/, as seen from the queue directory and from inside login/: */
#define PROTO_LOGIN_AUTH    "auth"
#define PROTO_LOGIN_POP3    "pop3"
#define PROTO_PATH_AUTH     PROTO_LOGIN_DIR "/" PROTO_LOGIN_AUTH
#define PROTO_PATH_POP3     PROTO_LOGIN_DIR "/" PROTO_LOGIN_POP3
#define PROTO_LOGIN_IMAP    "imap"
#define PROTO_PATH_IMAP     PROTO_LOGIN_DIR "/" PROTO_LOGIN_IMAP
/* anvil: the daemons' socket, and a second one in login/ for the pre-auth processes
 * (connection counts only, see anvil(8)). */
#define PROTO_PATH_ANVIL    PROTO_PRIVATE_DIR "/anvil"
#define PROTO_LOGIN_ANVIL   "anvil"
#define PROTO_PATH_ANVIL_LOGIN PROTO_LOGIN_DIR "/" PROTO_LOGIN_ANVIL
/* tlsproxy: TLS for the pre-auth processes, in login/ only */
#define PROTO_LOGIN_TLSPROXY "tlsproxy"
#define PROTO_PATH_TLSPROXY PROTO_LOGIN_DIR "/" PROTO_LOGIN_TLSPROXY

/* ---- master's status file, relative to the queue directory (master(8)) ---- */
#define PROTO_MASTER_STATUS         "pid/master.status"
#define PROTO_MASTER_STATUS_VERSION "postern-master-status 1"

/* ---- protocols and their versions ---- */
#define PROTO_RESOLVE       "resolve"       /* smtpd, qmgr -> resolve */
#define PROTO_RESOLVE_VERSION 2
#define PROTO_AUTH          "auth"          /* smtpd, pop3d -> auth */
#define PROTO_AUTH_VERSION  3
#define PROTO_DELIVER       "deliver"       /* qmgr -> local, smtp */
#define PROTO_DELIVER_VERSION 2
#define PROTO_QMGR          "qmgr"          /* wake-ups: smtpd, postern -> qmgr */
#define PROTO_QMGR_VERSION  2
#define PROTO_LOGIN         "login"         /* pop3d -l -> pop3d: a logged-in client */
#define PROTO_LOGIN_VERSION 2
#define PROTO_SESSION       "session"       /* pop3d -> its session process */
#define PROTO_SESSION_VERSION 2
#define PROTO_ANVIL         "anvil"         /* smtpd, pop3d, auth -> anvil */
#define PROTO_ANVIL_VERSION 2
#define PROTO_PICKUP        "pickup"        /* sendmail -> pickup: wake-ups, flush */
#define PROTO_PICKUP_VERSION 1
#define PROTO_TLSPROXY      "tlsproxy"      /* pop3d -l, imapd -l -> tlsproxy */
#define PROTO_TLSPROXY_VERSION 1

/* ---- attributes every frame may carry ---- */
#define PROTO_A_PROTO       "proto"         /* NAME/VERSION, first in every frame */
#define PROTO_A_REQ         "req"           /* the request name */
#define PROTO_A_ERROR       "error"         /* a reply: the request was not served */

/* ---- requests ---- */
#define PROTO_REQ_VERIFY    "verify"        /* resolve */
#define PROTO_REQ_ROUTE     "route"         /* resolve */
#define PROTO_REQ_AUTH      "auth"          /* auth */
#define PROTO_REQ_LOOKUP    "lookup"        /* auth */
#define PROTO_REQ_DELIVER   "deliver"       /* a delivery agent */
#define PROTO_REQ_WAKEUP    "wakeup"        /* qmgr: new mail in incoming/ */
#define PROTO_REQ_FLUSH     "flush"         /* qmgr: try the deferred mail now;
                                             * pickup: pass that on to qmgr */
#define PROTO_REQ_SCAN      "scan"          /* pickup: new files in maildrop/ */
/* anvil */
#define PROTO_REQ_CONNECT   "connect"       /* a client connected to a service */
#define PROTO_REQ_DISCONNECT "disconnect"   /* that connection ended */
#define PROTO_REQ_LIMIT     "limit"         /* a client hit a limit: log it now? */
#define PROTO_REQ_LOGIN_QUERY "login_query" /* login failures, unchanged */
#define PROTO_REQ_LOGIN_FAIL "login_fail"   /* one more login failure */
#define PROTO_REQ_LOGIN_OK  "login_ok"      /* a login: forget its failures */

/* ---- the other attributes ---- */
#define PROTO_A_ACCOUNT     "account"
#define PROTO_A_ACCOUNT_FAILS "account_fails"
#define PROTO_A_CLIENT_FAILS "client_fails"
#define PROTO_A_CONNS       "conns"
#define PROTO_A_LOG         "log"
#define PROTO_A_RATE        "rate"
#define PROTO_A_ADDR        "addr"
#define PROTO_A_CLASS       "class"
#define PROTO_A_CLIENT      "client"
#define PROTO_A_CODE        "code"
#define PROTO_A_DEAD        "dead"
#define PROTO_A_DELAY       "delay"
#define PROTO_A_DSN         "dsn"
#define PROTO_A_GID         "gid"
#define PROTO_A_HANDSHAKE   "handshake"     /* tlsproxy: ms for the TLS handshake */
#define PROTO_A_ID          "id"
#define PROTO_A_IDLE        "idle"          /* tlsproxy: ms without a byte, then close */
#define PROTO_A_MAILDIR     "maildir"
#define PROTO_A_NEXTHOP     "nexthop"
#define PROTO_A_NOTIFIED    "notified"
#define PROTO_A_PASSWORD    "password"
#define PROTO_A_PENDING     "pending"
#define PROTO_A_QUEUE       "queue"
#define PROTO_A_RCPT        "rcpt"
#define PROTO_A_ROUTE       "route"
#define PROTO_A_SERVICE     "service"
#define PROTO_A_STATUS      "status"
#define PROTO_A_TEXT        "text"
#define PROTO_A_TLS         "tls"
#define PROTO_A_TOKEN       "token"
#define PROTO_A_TRANSPORT   "transport"
#define PROTO_A_UID         "uid"
#define PROTO_A_USER        "user"

/* ---- fixed values ---- */
#define PROTO_OK            "ok"            /* status: resolve, auth, login, deliver */
#define PROTO_REJECT        "reject"        /* status: resolve */
#define PROTO_TEMPFAIL      "tempfail"      /* status: resolve, auth; route transport */
#define PROTO_FAIL          "fail"          /* status: auth */
#define PROTO_DEFER         "defer"         /* status: deliver */
#define PROTO_BOUNCE        "bounce"        /* status: deliver */
#define PROTO_YES           "yes"           /* tls */
#define PROTO_NO            "no"
#define PROTO_SERVICE_POP3  "pop3"          /* auth's service */
#define PROTO_SERVICE_IMAP  "imap"
#define PROTO_SERVICE_SMTP  "smtp"

#endif
