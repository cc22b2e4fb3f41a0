/* DNS blocklists for smtpd: dnsbl_sites in postscreen_dnsbl_sites syntax
 * ("domain[=filter][*weight]", filter an IPv4 pattern whose octets are a number,
 * [lo..hi] or [a;b;c]), every list asked at once through dns_query_many, the
 * weights of the lists that list the client summed, and the result kept per client
 * address for dnsbl_ttl.  A list that does not answer counts nothing (logged). */
#ifndef POSTERN_DNSBL_H
#define POSTERN_DNSBL_H

#include <stdbool.h>
#include <stdint.h>

#include "str.h"

struct dns;
struct dnsbl;

struct dnsbl_verdict {
    long score;                 /* sum of the weights of the lists that list the client */
    struct str site;            /* the first list (in dnsbl_sites order) with a positive
                                 * weight that lists it; empty when none */
    struct str txt;             /* that list's TXT record; empty when none */
};

/* NULL with err (naming the bad item) on a malformed list; an empty list is valid. */
struct dnsbl *dnsbl_open(char **sites, struct dns *dns, int timeout_ms, long long ttl_ms,
                         struct str *err);
void dnsbl_close(struct dnsbl *b);
size_t dnsbl_count(const struct dnsbl *b);
/* Checks one item's syntax alone (for the configuration check).  0 or -1 with err. */
int dnsbl_site_check(const char *item, struct str *err);
/* Looks ip (IPv4 or IPv6 text) up, or answers from the cache. */
void dnsbl_lookup(struct dnsbl *b, const char *ip, struct dnsbl_verdict *v);
/* The query name of ip under domain ("4.3.2.1.domain", IPv6 in nibbles); false when
 * ip is not an address or the name is too long. */
bool dnsbl_query_name(const char *ip, const char *domain, char *out, size_t size);

#endif
