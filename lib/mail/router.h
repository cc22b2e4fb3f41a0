/* Address classes, alias expansion and routing: the rules that decide what happens
 * to a recipient.  Used by the resolve daemon (which answers smtpd and qmgr) and by
 * local (mailbox lookup).  Opens its maps from the config; a chrooted process calls
 * router_pin before its chroot.
 *
 * Classes, by the recipient's domain:
 *   local    mydestination (and myhostname, localhost): system users, alias_maps
 *   virtual  virtual_mailbox_domains: virtual_mailbox_maps
 *   relay    relay_domains: accepted from anyone, passed on by smtp
 *   remote   everything else: accepted only from trusted or authenticated clients
 * virtual_alias_maps apply to every class; alias_maps to the local class.  Lookups try
 * the full address, the address less its extension, then "@domain" (catch-all). */
#ifndef POSTERN_ROUTER_H
#define POSTERN_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

struct conf;
struct router;

enum router_class {
    ROUTER_LOCAL,
    ROUTER_VIRTUAL,
    ROUTER_RELAY,
    ROUTER_REMOTE,
};

enum router_status {
    ROUTER_OK = 0,          /* recipient exists / route found */
    ROUTER_REJECT = 1,      /* permanent: code, dsn, text set */
    ROUTER_TEMPFAIL = 2,    /* a map failed: try again later (4xx) */
};

struct router_verdict {
    enum router_status status;
    enum router_class class;        /* of the address as given */
    int code;                       /* SMTP code for REJECT/TEMPFAIL: 550, 451... */
    char dsn[16];                   /* enhanced status code: "5.1.1" */
    struct str text;                /* human text for the reply */
    char **expanded;                /* final recipients (NULL-terminated, >= 1 when OK) */
    size_t nexpanded;
};

struct router_mailbox {
    struct str path;                /* absolute Maildir path, ends in '/' */
    uid_t uid;
    gid_t gid;
    struct str user;                /* the owning user's name */
    bool create;                    /* missing Maildir may be created (virtual) */
};

struct router *router_open(const struct conf *conf, struct str *err);
void router_close(struct router *r);
/* Before a chroot: the maps keep the files they have open, and the system users are
 * copied (see maplist_pin); a change is seen when the process restarts.  For
 * verify and route only: router_mailbox still needs the real user database. */
void router_pin(struct router *r);
/* After router_pin: true when a map or the user database changed since (map_changed). */
bool router_changed(const struct router *r);

const char *router_class_name(enum router_class c);
/* Class of a domain (lower-cased ASCII expected): never fails. */
enum router_class router_domain_class(struct router *r, const char *domain);

/* RCPT-time check and alias expansion of one recipient (internal form).  Fills v
 * (call router_verdict_free after).  Relay permission is not decided here: the
 * caller checks v->class against the client's rights. */
void router_verify(struct router *r, const char *addr, struct router_verdict *v);
void router_verdict_init(struct router_verdict *v);
void router_verdict_free(struct router_verdict *v);

/* Delivery-time route of a final recipient: transport ("local", "smtp", "error",
 * "defer") and nexthop (domain, "[host]:port", or the error text).  ROUTER_OK, or
 * ROUTER_TEMPFAIL with err. */
enum router_status router_route(struct router *r, const char *addr, struct str *transport,
                                struct str *nexthop, struct str *err);

/* Mailbox of a local or virtual final recipient, for local: ROUTER_OK (mb filled),
 * ROUTER_REJECT (no such user: err says why), ROUTER_TEMPFAIL.  Never returns a path
 * outside the mail store: local parts and map values are checked (no "..", NUL,
 * control characters; virtual paths relative to virtual_mailbox_base). */
enum router_status router_mailbox(struct router *r, const char *addr,
                                  struct router_mailbox *mb, struct str *err);
void router_mailbox_init(struct router_mailbox *mb);
void router_mailbox_free(struct router_mailbox *mb);

#endif
