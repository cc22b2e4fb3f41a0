/* DNS lookups for the SMTP client: MX records, and A/AAAA addresses, through the
 * system resolver library (res_ninit/res_nquery, libresolv).  dns_servers in
 * postern.conf ("addr" or "[addr]:port", IPv4 or IPv6) replaces /etc/resolv.conf.
 * Answers are parsed strictly (ns_initparse/ns_parserr); anything malformed is a
 * temporary failure.  RFC 5321 section 5 and RFC 7505 (null MX). */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stddef.h>

struct conf;
struct str;

enum dns_status {
    DNS_OK = 0,
    DNS_NOTFOUND = 1,       /* NXDOMAIN, or no records of that type: permanent */
    DNS_TEMPFAIL = 2,       /* SERVFAIL, timeout, malformed answer: try again later */
    DNS_NULLMX = 3,         /* the domain publishes "MX 0 ." : accepts no mail */
};

struct dns_mx {
    char host[256];
    unsigned pref;
};

struct dns_addr {
    int family;             /* AF_INET or AF_INET6 */
    char text[64];          /* numeric address */
};

struct dns;

/* Reads resolver settings (dns_servers) once; NULL with err. */
struct dns *dns_open(const struct conf *conf, struct str *err);
void dns_close(struct dns *d);

/* MX records of domain sorted by preference, equal preferences shuffled; at most max.
 * *n set to the count.  DNS_NOTFOUND when the domain exists but has no MX (the caller
 * then uses the domain's own addresses), or does not exist (see *nxdomain). */
enum dns_status dns_mx(struct dns *d, const char *domain, struct dns_mx *mx, size_t max,
                       size_t *n, int *nxdomain, struct str *err);
/* A and AAAA records of host, IPv6 first when both exist... (order documented in
 * smtp(8)); at most max. */
enum dns_status dns_addrs(struct dns *d, const char *host, struct dns_addr *a, size_t max,
                          size_t *n, struct str *err);

/* The same interpretation applied to an answer packet already received (pure: no
 * network; for tests).  The question section names what was asked; CNAME chains in
 * the answer section are followed.  dns_parse_mx sorts by preference but does not
 * shuffle; dns_parse_addrs takes the records of the type asked (A or AAAA). */
enum dns_status dns_parse_mx(const unsigned char *pkt, size_t len, struct dns_mx *mx,
                             size_t max, size_t *n, int *nxdomain, struct str *err);
enum dns_status dns_parse_addrs(const unsigned char *pkt, size_t len, struct dns_addr *a,
                                size_t max, size_t *n, struct str *err);

/* Many questions at once, for DNS blocklists: each (name, type) is sent over UDP to
 * the configured servers (the first, then the next on each retry) without waiting
 * for the others; the answers are taken as they come, each matched by id, server
 * address, name and type, until all are in or timeout_ms has passed.  An answered
 * question has status DNS_OK and its packet in ans/len (parse it with dns_parse_*);
 * one without an answer has DNS_TEMPFAIL.  Free the packets with dns_q_free. */
struct dns_q {
    char name[256];             /* asked */
    int type;                   /* ns_t_a, ns_t_txt... */
    enum dns_status status;     /* set */
    unsigned char *ans;
    size_t len;
    unsigned id;                /* internal */
    _Bool done;                 /* internal */
};
void dns_query_many(struct dns *d, struct dns_q *q, size_t n, int timeout_ms);
void dns_q_free(struct dns_q *q, size_t n);
/* The first TXT record of the answer (its strings joined, non-printable bytes as '?',
 * at most a few hundred bytes). */
enum dns_status dns_parse_txt(const unsigned char *pkt, size_t len, struct str *txt,
                              struct str *err);

#endif
