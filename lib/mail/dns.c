/* DNS lookups for the SMTP client (dns.h): MX, A and AAAA records through the system
 * resolver library.  The resolver state is built once by dns_open (res_ninit reads
 * /etc/resolv.conf, so call it before chroot); dns_servers replaces its name servers.
 * Answers come from the network and are trusted for nothing: every packet is parsed
 * with ns_initparse/ns_parserr, names are expanded with dn_expand and must be
 * well-formed host names, counts are bounded, and anything malformed is a temporary
 * failure. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns.h"
#include "clock.h"
#include "conf.h"
#include "str.h"
#include "xmalloc.h"

#define DNS_ANSWER_MAX 65536    /* largest answer packet accepted */
#define DNS_RR_MAX 100          /* answer records examined */
#define DNS_CNAME_MAX 8         /* CNAME hops followed */
#define DNS_TXT_MAX 450         /* bytes of a TXT record kept (a reply line's share) */

struct dns {
    struct __res_state res;
};

/* ---- settings ---- */

/* "addr", "[addr]" or "[addr]:port" into a socket address.  0 or -1. */
static int server_parse(const char *s, struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN + 1];
    unsigned long port = NS_DEFAULTPORT;
    const char *h = s;
    size_t hlen;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL)
            return -1;
        h = s + 1;
        hlen = (size_t)(close - h);
        if (close[1] == ':') {
            char *end;

            if (close[2] < '0' || close[2] > '9')
                return -1;
            errno = 0;
            port = strtoul(close + 2, &end, 10);
            if (errno != 0 || *end != '\0' || port == 0 || port > 65535)
                return -1;
        } else if (close[1] != '\0') {
            return -1;
        }
    } else {
        hlen = strlen(s);
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memset(ss, 0, sizeof(*ss));
    {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s4->sin_port = htons((unsigned short)port);
            return 0;
        }
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((unsigned short)port);
            return 0;
        }
    }
    return -1;
}

/* Replaces the name servers res_ninit found by the configured ones.  IPv4 servers go
 * in nsaddr_list, IPv6 ones in the extension array (allocated: res_nclose frees it). */
static int servers_set(struct dns *d, char **list, struct str *err)
{
    struct sockaddr_storage ss[MAXNS];
    size_t n = 0;

    for (size_t i = 0; list[i] != NULL; i++) {
        if (n == MAXNS) {
            str_printf(err, "dns_servers: at most %d servers", MAXNS);
            return -1;
        }
        if (server_parse(list[i], &ss[n]) < 0) {
            str_printf(err, "dns_servers: bad server address \"%s\" "
                            "(expected ADDRESS or [ADDRESS]:PORT)", list[i]);
            return -1;
        }
        n++;
    }
    if (n == 0)
        return 0;
    for (size_t i = 0; i < MAXNS; i++) {
        free(d->res._u._ext.nsaddrs[i]);
        d->res._u._ext.nsaddrs[i] = NULL;
        memset(&d->res.nsaddr_list[i], 0, sizeof(d->res.nsaddr_list[i]));
    }
    for (size_t i = 0; i < n; i++) {
        if (ss[i].ss_family == AF_INET) {
            memcpy(&d->res.nsaddr_list[i], &ss[i], sizeof(struct sockaddr_in));
        } else {
            struct sockaddr_in6 *s6 = xmalloc(sizeof(*s6));

            memcpy(s6, &ss[i], sizeof(*s6));
            d->res.nsaddr_list[i].sin_family = 0;
            d->res._u._ext.nsaddrs[i] = s6;
        }
    }
    d->res.nscount = (int)n;
    d->res._u._ext.nscount = 0;
    /* a test or local server answers at once or not at all */
    d->res.retrans = 2;
    d->res.retry = 2;
    return 0;
}

struct dns *dns_open(const struct conf *conf, struct str *err)
{
    struct dns *d = xcalloc(1, sizeof(*d));
    char **servers;
    int rc;

    if (res_ninit(&d->res) < 0) {
        str_sets(err, "cannot initialise the DNS resolver");
        free(d);
        return NULL;
    }
    /* names are always fully qualified: no search list, no default domain */
    d->res.options &= ~(unsigned long)(RES_DEFNAMES | RES_DNSRCH);
    servers = conf_list(conf, CONF_dns_servers);
    rc = servers_set(d, servers, err);
    for (size_t i = 0; servers[i] != NULL; i++)
        free(servers[i]);
    free(servers);
    if (rc < 0) {
        dns_close(d);
        return NULL;
    }
    return d;
}

void dns_close(struct dns *d)
{
    if (d == NULL)
        return;
    res_nclose(&d->res);
    for (size_t i = 0; i < MAXNS; i++) {
        free(d->res._u._ext.nsaddrs[i]);
        d->res._u._ext.nsaddrs[i] = NULL;
    }
    free(d);
}

/* ---- parsing ---- */

/* A host name as a mail exchanger may carry: LDH labels (and '_'), 1..63 bytes each,
 * at most 253 in all, no empty label.  Presentation-format escapes are refused. */
static bool host_valid(const char *s)
{
    size_t n = strlen(s), label = 0;

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_'))
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0;
}

/* The header checks shared by every answer: a response to one question, not
 * truncated; the rcode sorted into OK, NOTFOUND (NXDOMAIN) and TEMPFAIL.  The question's
 * name and type are returned. */
static enum dns_status answer_open(const unsigned char *pkt, size_t len, ns_msg *msg,
                                   char qname[NS_MAXDNAME], int *qtype, int *nxdomain,
                                   struct str *err)
{
    ns_rr rr;
    int rcode;

    *nxdomain = 0;
    if (len < NS_HFIXEDSZ || len > DNS_ANSWER_MAX || ns_initparse(pkt, (int)len, msg) < 0) {
        str_sets(err, "malformed DNS answer");
        return DNS_TEMPFAIL;
    }
    if (!ns_msg_getflag(*msg, ns_f_qr) || ns_msg_getflag(*msg, ns_f_opcode) != ns_o_query) {
        str_sets(err, "malformed DNS answer (not a query response)");
        return DNS_TEMPFAIL;
    }
    if (ns_msg_getflag(*msg, ns_f_tc)) {
        str_sets(err, "truncated DNS answer");
        return DNS_TEMPFAIL;
    }
    if (ns_msg_count(*msg, ns_s_qd) != 1 || ns_parserr(msg, ns_s_qd, 0, &rr) < 0) {
        str_sets(err, "malformed DNS answer (question section)");
        return DNS_TEMPFAIL;
    }
    if (strlen(ns_rr_name(rr)) >= NS_MAXDNAME) {
        str_sets(err, "malformed DNS answer (question name)");
        return DNS_TEMPFAIL;
    }
    strcpy(qname, ns_rr_name(rr));
    *qtype = ns_rr_type(rr);
    rcode = ns_msg_getflag(*msg, ns_f_rcode);
    if (rcode == ns_r_nxdomain) {
        *nxdomain = 1;
        str_printf(err, "domain %s does not exist", qname);
        return DNS_NOTFOUND;
    }
    if (rcode != ns_r_noerror) {
        str_printf(err, "DNS server failure (rcode %d) for %s", rcode, qname);
        return DNS_TEMPFAIL;
    }
    return DNS_OK;
}

/* Follows the CNAME chain from qname through the answer section; the name the
 * records of interest belong to is left in name.  0, or -1 (malformed). */
static int chain_follow(ns_msg *msg, const char *qname, char name[NS_MAXDNAME])
{
    size_t count = ns_msg_count(*msg, ns_s_an);

    if (count > DNS_RR_MAX)
        count = DNS_RR_MAX;
    strcpy(name, qname);
    for (int hop = 0; hop < DNS_CNAME_MAX; hop++) {
        bool moved = false;

        for (size_t i = 0; i < count && !moved; i++) {
            ns_rr rr;
            char target[NS_MAXDNAME];
            int used;

            if (ns_parserr(msg, ns_s_an, (int)i, &rr) < 0)
                return -1;
            if (ns_rr_type(rr) != ns_t_cname || ns_rr_class(rr) != ns_c_in
                || strcasecmp(ns_rr_name(rr), name) != 0)
                continue;
            used = dn_expand(ns_msg_base(*msg), ns_msg_end(*msg), ns_rr_rdata(rr), target,
                             sizeof(target));
            if (used < 0 || (size_t)used != ns_rr_rdlen(rr) || !host_valid(target))
                return -1;
            strcpy(name, target);
            moved = true;
        }
        if (!moved)
            return 0;
    }
    return -1;      /* a chain that long is a loop */
}

/* answer_open, a check that the question was of type want1 or want2 (what names
 * them), then the CNAME chain: owner is the name the records of interest belong to,
 * *count the number of answer records to look at (at most DNS_RR_MAX). */
static enum dns_status answer_records(const unsigned char *pkt, size_t len, ns_msg *msg,
                                      int want1, int want2, const char *what,
                                      char qname[NS_MAXDNAME], int *qtype, int *nxdomain,
                                      char owner[NS_MAXDNAME], size_t *count,
                                      struct str *err)
{
    enum dns_status st = answer_open(pkt, len, msg, qname, qtype, nxdomain, err);

    if (st != DNS_OK)
        return st;
    if (*qtype != want1 && *qtype != want2) {
        str_printf(err, "malformed DNS answer (not %s question)", what);
        return DNS_TEMPFAIL;
    }
    if (chain_follow(msg, qname, owner) < 0) {
        str_printf(err, "malformed DNS answer (CNAME) for %s", qname);
        return DNS_TEMPFAIL;
    }
    *count = ns_msg_count(*msg, ns_s_an);
    if (*count > DNS_RR_MAX)
        *count = DNS_RR_MAX;
    return DNS_OK;
}

enum dns_status dns_parse_mx(const unsigned char *pkt, size_t len, struct dns_mx *mx,
                             size_t max, size_t *n, int *nxdomain, struct str *err)
{
    ns_msg msg;
    char qname[NS_MAXDNAME], owner[NS_MAXDNAME];
    int qtype;
    size_t count, found = 0, bad = 0;
    bool nullmx = false;
    struct dns_mx *all;
    enum dns_status st;

    *n = 0;
    st = answer_records(pkt, len, &msg, ns_t_mx, ns_t_mx, "an MX", qname, &qtype, nxdomain,
                        owner, &count, err);
    if (st != DNS_OK)
        return st;
    all = xcalloc(count ? count : 1, sizeof(*all));
    for (size_t i = 0; i < count; i++) {
        ns_rr rr;
        char host[NS_MAXDNAME];
        int used;

        if (ns_parserr(&msg, ns_s_an, (int)i, &rr) < 0) {
            free(all);
            str_printf(err, "malformed DNS answer (record) for %s", qname);
            return DNS_TEMPFAIL;
        }
        if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) != ns_c_in
            || strcasecmp(ns_rr_name(rr), owner) != 0)
            continue;
        if (ns_rr_rdlen(rr) < 3) {
            bad++;
            continue;
        }
        used = dn_expand(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr) + 2, host,
                         sizeof(host));
        if (used < 0 || (size_t)used != ns_rr_rdlen(rr) - 2u) {
            bad++;
            continue;
        }
        if (host[0] == '\0' || strcmp(host, ".") == 0) {
            nullmx = true;
            continue;
        }
        if (!host_valid(host) || strlen(host) >= sizeof(all[0].host)) {
            bad++;
            continue;
        }
        strcpy(all[found].host, host);
        all[found].pref = ns_get16(ns_rr_rdata(rr));
        found++;
    }
    if (nullmx) {
        free(all);
        str_printf(err, "domain %s publishes a null MX record", qname);
        return DNS_NULLMX;
    }
    if (found == 0) {
        free(all);
        if (bad > 0) {
            str_printf(err, "malformed MX record for %s", qname);
            return DNS_TEMPFAIL;
        }
        str_printf(err, "no MX record for %s", qname);
        return DNS_NOTFOUND;
    }
    /* stable insertion sort by preference (found <= DNS_RR_MAX) */
    for (size_t i = 1; i < found; i++) {
        struct dns_mx t = all[i];
        size_t j = i;

        while (j > 0 && all[j - 1].pref > t.pref) {
            all[j] = all[j - 1];
            j--;
        }
        all[j] = t;
    }
    for (size_t i = 0; i < found && i < max; i++)
        mx[(*n)++] = all[i];
    free(all);
    return *n > 0 ? DNS_OK : DNS_NOTFOUND;
}

enum dns_status dns_parse_addrs(const unsigned char *pkt, size_t len, struct dns_addr *a,
                                size_t max, size_t *n, struct str *err)
{
    ns_msg msg;
    char qname[NS_MAXDNAME], owner[NS_MAXDNAME];
    int qtype, nxdomain;
    size_t count, bad = 0;
    enum dns_status st;

    *n = 0;
    st = answer_records(pkt, len, &msg, ns_t_a, ns_t_aaaa, "an address", qname, &qtype,
                        &nxdomain, owner, &count, err);
    if (st != DNS_OK)
        return st;
    for (size_t i = 0; i < count && *n < max; i++) {
        ns_rr rr;
        int family = qtype == ns_t_a ? AF_INET : AF_INET6;
        size_t want = qtype == ns_t_a ? 4 : 16;

        if (ns_parserr(&msg, ns_s_an, (int)i, &rr) < 0) {
            str_printf(err, "malformed DNS answer (record) for %s", qname);
            return DNS_TEMPFAIL;
        }
        if ((int)ns_rr_type(rr) != qtype || ns_rr_class(rr) != ns_c_in
            || strcasecmp(ns_rr_name(rr), owner) != 0)
            continue;
        if (ns_rr_rdlen(rr) != want
            || inet_ntop(family, ns_rr_rdata(rr), a[*n].text, sizeof(a[*n].text)) == NULL) {
            bad++;
            continue;
        }
        a[*n].family = family;
        (*n)++;
    }
    if (*n > 0)
        return DNS_OK;
    if (bad > 0) {
        str_printf(err, "malformed address record for %s", qname);
        return DNS_TEMPFAIL;
    }
    str_printf(err, "no %s record for %s", qtype == ns_t_a ? "A" : "AAAA", qname);
    return DNS_NOTFOUND;
}

/* ---- lookups ---- */

/* Sends one question; the answer's length, or -1 with err (temporary). */
static int dns_query(struct dns *d, const char *name, int type, unsigned char *ans,
                     struct str *err)
{
    unsigned char q[NS_PACKETSZ];
    int qlen, alen;

    if (!host_valid(name)) {
        str_printf(err, "invalid domain name for a DNS lookup");
        return -2;
    }
    qlen = res_nmkquery(&d->res, ns_o_query, name, ns_c_in, type, NULL, 0, NULL, q,
                        sizeof(q));
    if (qlen < 0) {
        str_printf(err, "cannot make a DNS query for %s", name);
        return -2;
    }
    alen = res_nsend(&d->res, q, qlen, ans, DNS_ANSWER_MAX);
    if (alen < 0) {
        str_printf(err, "no usable answer from the DNS servers for %s (%s)", name,
                   errno == ECONNREFUSED ? "connection refused"
                   : errno == ETIMEDOUT ? "timed out" : "server failure");
        return -1;
    }
    if (alen > DNS_ANSWER_MAX) {
        str_printf(err, "DNS answer for %s too large", name);
        return -1;
    }
    return alen;
}

enum dns_status dns_mx(struct dns *d, const char *domain, struct dns_mx *mx, size_t max,
                       size_t *n, int *nxdomain, struct str *err)
{
    unsigned char *ans = xmalloc(DNS_ANSWER_MAX);
    enum dns_status st;
    int alen;

    *n = 0;
    *nxdomain = 0;
    alen = dns_query(d, domain, ns_t_mx, ans, err);
    if (alen < 0) {
        free(ans);
        if (alen == -2) {
            *nxdomain = 1;
            return DNS_NOTFOUND;
        }
        return DNS_TEMPFAIL;
    }
    st = dns_parse_mx(ans, (size_t)alen, mx, max, n, nxdomain, err);
    free(ans);
    /* equal preferences in random order, spreading load over equal hosts */
    for (size_t i = 0; st == DNS_OK && i < *n;) {
        size_t j = i + 1;

        while (j < *n && mx[j].pref == mx[i].pref)
            j++;
        for (size_t k = j - 1; k > i; k--) {
            size_t r = i + arc4random_uniform((uint32_t)(k - i + 1));
            struct dns_mx t = mx[k];

            mx[k] = mx[r];
            mx[r] = t;
        }
        i = j;
    }
    return st;
}

enum dns_status dns_addrs(struct dns *d, const char *host, struct dns_addr *a, size_t max,
                          size_t *n, struct str *err)
{
    static const int types[2] = { ns_t_aaaa, ns_t_a };
    unsigned char *ans = xmalloc(DNS_ANSWER_MAX);
    enum dns_status st[2] = { DNS_NOTFOUND, DNS_NOTFOUND };
    struct str why[2] = { STR_INIT, STR_INIT };
    enum dns_status result;

    *n = 0;
    for (int t = 0; t < 2; t++) {
        size_t got = 0;
        int alen = dns_query(d, host, types[t], ans, &why[t]);

        if (alen == -2)
            st[t] = DNS_NOTFOUND;
        else if (alen < 0)
            st[t] = DNS_TEMPFAIL;
        else
            st[t] = dns_parse_addrs(ans, (size_t)alen, a + *n, max - *n, &got, &why[t]);
        *n += got;
        if (*n == max)
            break;
    }
    free(ans);
    if (*n > 0)
        result = DNS_OK;
    else if (st[0] == DNS_TEMPFAIL || st[1] == DNS_TEMPFAIL)
        result = DNS_TEMPFAIL;
    else
        result = DNS_NOTFOUND;
    if (result != DNS_OK) {
        int t = st[1] == DNS_TEMPFAIL || st[0] != DNS_TEMPFAIL ? 1 : 0;

        if (why[t].len > 0)
            str_append(err, why[t].s, why[t].len);
        else
            str_printf(err, "no address for %s", host);
    }
    str_free(&why[0]);
    str_free(&why[1]);
    return result;
}

/* ---- TXT records ---- */

enum dns_status dns_parse_txt(const unsigned char *pkt, size_t len, struct str *txt,
                              struct str *err)
{
    ns_msg msg;
    char qname[NS_MAXDNAME], owner[NS_MAXDNAME];
    int qtype, nxdomain;
    size_t count;
    enum dns_status st;

    str_clear(txt);
    st = answer_records(pkt, len, &msg, ns_t_txt, ns_t_txt, "a TXT", qname, &qtype,
                        &nxdomain, owner, &count, err);
    if (st != DNS_OK)
        return st;
    for (size_t i = 0; i < count; i++) {
        ns_rr rr;

        if (ns_parserr(&msg, ns_s_an, (int)i, &rr) < 0) {
            str_printf(err, "malformed DNS answer (record) for %s", qname);
            return DNS_TEMPFAIL;
        }
        if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in
            || strcasecmp(ns_rr_name(rr), owner) != 0)
            continue;
        /* the first record: its character-strings, each a length byte and text */
        const unsigned char *p = ns_rr_rdata(rr), *end = p + ns_rr_rdlen(rr);
        while (p < end) {
            size_t n = *p++;
            if (n > (size_t)(end - p)) {
                str_printf(err, "malformed TXT record for %s", qname);
                str_clear(txt);
                return DNS_TEMPFAIL;
            }
            for (size_t k = 0; k < n && txt->len < DNS_TXT_MAX; k++)
                str_appendc(txt, (p[k] < 0x20 || p[k] >= 0x7f) ? '?' : (char)p[k]);
            p += n;
        }
        return DNS_OK;
    }
    str_printf(err, "no TXT record for %s", qname);
    return DNS_NOTFOUND;
}

/* ---- many questions at once ---- */

/* The configured server i as a socket address; its length, or 0. */
static socklen_t server_addr(const struct dns *d, int i, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (d->res._u._ext.nsaddrs[i] != NULL
        && d->res._u._ext.nsaddrs[i]->sin6_family == AF_INET6) {
        memcpy(ss, d->res._u._ext.nsaddrs[i], sizeof(struct sockaddr_in6));
        return sizeof(struct sockaddr_in6);
    }
    if (d->res.nsaddr_list[i].sin_family == AF_INET) {
        memcpy(ss, &d->res.nsaddr_list[i], sizeof(struct sockaddr_in));
        return sizeof(struct sockaddr_in);
    }
    return 0;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port
           && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* An answer from server to one of the questions still open: the one whose id, name
 * and type it carries, or -1. */
static int answer_match(struct dns_q *q, size_t n, const unsigned char *pkt, size_t len)
{
    ns_msg msg;
    ns_rr rr;

    if (len < NS_HFIXEDSZ || ns_initparse(pkt, (int)len, &msg) < 0
        || !ns_msg_getflag(msg, ns_f_qr) || ns_msg_count(msg, ns_s_qd) != 1
        || ns_parserr(&msg, ns_s_qd, 0, &rr) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (q[i].done || q[i].id != ns_msg_id(msg))
            continue;
        if ((int)ns_rr_type(rr) != q[i].type || ns_rr_class(rr) != ns_c_in
            || strcasecmp(ns_rr_name(rr), q[i].name) != 0)
            return -1;
        return (int)i;
    }
    return -1;
}

void dns_query_many(struct dns *d, struct dns_q *q, size_t n, int timeout_ms)
{
    struct sockaddr_storage srv[MAXNS];
    socklen_t srvlen[MAXNS];
    int nsrv = 0, fd4 = -1, fd6 = -1;
    unsigned char (*pkt)[NS_PACKETSZ] = xcalloc(n ? n : 1, sizeof(*pkt));
    int *plen = xcalloc(n ? n : 1, sizeof(*plen));
    unsigned char *buf = xmalloc(DNS_ANSWER_MAX);
    size_t open = 0;

    for (int i = 0; i < d->res.nscount && i < MAXNS; i++) {
        srvlen[nsrv] = server_addr(d, i, &srv[nsrv]);
        if (srvlen[nsrv] > 0)
            nsrv++;
    }
    for (size_t i = 0; i < n; i++) {
        q[i].status = DNS_TEMPFAIL;
        q[i].done = false;
        q[i].ans = NULL;
        q[i].len = 0;
        if (!host_valid(q[i].name)) {
            q[i].done = true;
            continue;
        }
        plen[i] = res_nmkquery(&d->res, ns_o_query, q[i].name, ns_c_in, q[i].type, NULL,
                               0, NULL, pkt[i], sizeof(pkt[i]));
        if (plen[i] < NS_HFIXEDSZ) {
            q[i].done = true;
            continue;
        }
        q[i].id = (unsigned)arc4random_uniform(65536);
        pkt[i][0] = (unsigned char)(q[i].id >> 8);
        pkt[i][1] = (unsigned char)(q[i].id & 0xff);
        open++;
    }
    if (nsrv == 0)
        open = 0;
    for (int i = 0; i < nsrv && open > 0; i++) {
        if (srv[i].ss_family == AF_INET && fd4 < 0)
            fd4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (srv[i].ss_family == AF_INET6 && fd6 < 0)
            fd6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    }

    /* Each round sends every open question to the next server and waits a share of
     * the time; the answers of earlier rounds are still taken. */
    long long deadline = clock_ms() + timeout_ms;
    int rounds = nsrv > 0 ? (nsrv < 2 ? 2 : nsrv) : 0;
    for (int round = 0; round < rounds && open > 0; round++) {
        int s = round % nsrv;
        int fd = srv[s].ss_family == AF_INET ? fd4 : fd6;
        long long left = deadline - clock_ms();
        long long round_end = clock_ms() + left / (rounds - round);

        if (fd < 0 || left <= 0)
            break;
        for (size_t i = 0; i < n; i++)
            if (!q[i].done)
                (void)sendto(fd, pkt[i], (size_t)plen[i], 0, (struct sockaddr *)&srv[s],
                             srvlen[s]);
        while (open > 0) {
            long long wait = round_end - clock_ms();
            struct pollfd pfd[2] = { { fd4, POLLIN, 0 }, { fd6, POLLIN, 0 } };

            if (wait <= 0)
                break;
            if (poll(pfd, 2, (int)wait) <= 0)
                continue;
            for (int k = 0; k < 2; k++) {
                if (pfd[k].fd < 0 || !(pfd[k].revents & POLLIN))
                    continue;
                for (int burst = 0; burst < 64; burst++) {
                    struct sockaddr_storage from;
                    socklen_t flen = sizeof(from);
                    ssize_t r = recvfrom(pfd[k].fd, buf, DNS_ANSWER_MAX, 0,
                                         (struct sockaddr *)&from, &flen);
                    bool known = false;

                    if (r < 0)
                        break;
                    for (int j = 0; j < nsrv && !known; j++)
                        known = same_addr(&from, &srv[j]);
                    int i = known ? answer_match(q, n, buf, (size_t)r) : -1;
                    if (i < 0)
                        continue;
                    q[i].ans = xmalloc((size_t)r);
                    memcpy(q[i].ans, buf, (size_t)r);
                    q[i].len = (size_t)r;
                    q[i].status = DNS_OK;
                    q[i].done = true;
                    open--;
                }
            }
        }
    }
    if (fd4 >= 0)
        close(fd4);
    if (fd6 >= 0)
        close(fd6);
    free(buf);
    free(plen);
    free(pkt);
}

void dns_q_free(struct dns_q *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(q[i].ans);
        q[i].ans = NULL;
        q[i].len = 0;
    }
}
