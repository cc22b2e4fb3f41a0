/* Network blocks in CIDR notation, IPv4 and IPv6, and lists of them, as mynetworks
 * names them: "127.0.0.0/8", "10.1.2.3" (one host), "[::1]/128", "2001:db8::/32",
 * "[2001:db8::1]".  An IPv4-mapped IPv6 address ("::ffff:1.2.3.4") matches as the
 * IPv4 address it carries.  A block with bits set past its prefix length is refused
 * (it is almost always a typing mistake).  Inputs are untrusted text. */
#ifndef POSTERN_CIDR_H
#define POSTERN_CIDR_H

#include <stdbool.h>
#include <stddef.h>

struct str;

struct cidr {
    int family;                 /* AF_INET or AF_INET6 */
    unsigned char addr[16];     /* network byte order; 4 bytes used for AF_INET */
    unsigned prefix;            /* 0..32 or 0..128 */
};

/* Parses one block: 0, or -1 with the reason in err (may be NULL). */
int cidr_parse(const char *spec, struct cidr *c, struct str *err);
/* Parses a textual address (IPv4, IPv6, brackets allowed) into family and bytes;
 * an IPv4-mapped IPv6 address becomes AF_INET.  0, or -1. */
int cidr_addr_parse(const char *text, int *family, unsigned char addr[16]);

struct cidr_list {
    struct cidr *v;
    size_t n;
};

/* Parses every item of a NULL-terminated vector (as conf_list gives): 0, or -1
 * with "item: reason" in err.  The word CIDR_HOST_WORD stands for this host's own
 * addresses (cidr_host_append).  Free with cidr_list_free. */
#define CIDR_HOST_WORD "host"
int cidr_list_parse(char *const *items, struct cidr_list *cl, struct str *err);
void cidr_list_free(struct cidr_list *cl);
/* Appends a /32 or /128 block for every address of every interface of this host
 * (getifaddrs(3)): 0, or -1 with errno. */
int cidr_host_append(struct cidr_list *cl);
/* The same blocks as text ("127.0.0.1/32, [::1]/128"), appended to out: 0 or -1. */
int cidr_host_text(struct str *out);
/* true when the textual address lies in one of the blocks (false when it does not
 * parse). */
bool cidr_list_match(const struct cidr_list *cl, const char *addr);

#endif
