/* smtpd policy at the door (policy.c): access tables for client, HELO, sender and
 * recipient, the non-FQDN and unknown sender domain checks, and DNS blocklists, all
 * applied at RCPT (as Postfix does with smtpd_delay_reject = yes) to clients that
 * are neither in mynetworks nor authenticated. */
#ifndef POSTERN_SMTPD_POLICY_H
#define POSTERN_SMTPD_POLICY_H

#include <stdbool.h>

#include "str.h"

struct smtpd_conf;
struct smtpd_session;
struct conf;

/* What a connection remembers between RCPT commands. */
struct smtpd_policy_session {
    int dnsbl;                  /* 0 not asked, 1 not listed, 2 listed */
    struct str dnsbl_reply;     /* the 554 text when listed */
};

/* What a transaction remembers: a cached sender domain verdict, HOLD and DISCARD,
 * and the content checks' REDIRECT and FILTER. */
struct smtpd_policy_txn {
    int sender_domain;          /* 0 not asked, 1 exists, 2 unknown, 3 DNS failure,
                                 * 5 null MX */
    bool hold;
    bool discard;
    struct str redirect;        /* a content check's REDIRECT address, or empty */
    struct str filter;          /* a content check's FILTER transport:nexthop, or empty */
    struct str why;             /* "RCPT from [ip]: <what>: text" for the log */
};

/* Reads the settings and opens the tables and the resolver (before chroot); a
 * table that cannot be opened is fatal, with its file:line. */
void smtpd_policy_setup(struct smtpd_conf *cf, const struct conf *c);
/* RCPT of rcpt (internal form): 0 to go on, or -1 after a reply. */
int smtpd_policy_rcpt(struct smtpd_session *s, const char *rcpt);
void smtpd_policy_txn_free(struct smtpd_policy_txn *p);
void smtpd_policy_session_free(struct smtpd_policy_session *p);

#endif
