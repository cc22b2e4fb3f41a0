/* The word "host" in a network list (mynetworks = host, as Postfix's
 * mynetworks_style = host): this machine's own addresses, one /32 or /128 block for
 * every address of every interface that getifaddrs(3) reports when the list is
 * parsed (the loopback interface's 127.0.0.1 and ::1 among them). */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"
#include "str.h"
#include "xmalloc.h"

/* Calls fn for each interface address: 0, or -1 when getifaddrs fails. */
static int host_each(void (*fn)(void *arg, const struct cidr *c), void *arg)
{
    struct ifaddrs *all, *ifa;

    if (getifaddrs(&all) < 0)
        return -1;
    for (ifa = all; ifa != NULL; ifa = ifa->ifa_next) {
        struct cidr c;

        if (ifa->ifa_addr == NULL)
            continue;
        memset(&c, 0, sizeof(c));
        if (ifa->ifa_addr->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)ifa->ifa_addr;
            c.family = AF_INET;
            memcpy(c.addr, &sin->sin_addr, 4);
            c.prefix = 32;
        } else if (ifa->ifa_addr->sa_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ifa->ifa_addr;
            c.family = AF_INET6;
            memcpy(c.addr, &sin6->sin6_addr, 16);
            c.prefix = 128;
        } else {
            continue;
        }
        fn(arg, &c);
    }
    freeifaddrs(all);
    return 0;
}

static void host_add(void *arg, const struct cidr *c)
{
    struct cidr_list *cl = arg;

    for (size_t i = 0; i < cl->n; i++)
        if (memcmp(&cl->v[i], c, sizeof(*c)) == 0)
            return;
    cl->v = xreallocarray(cl->v, cl->n + 1, sizeof(*cl->v));
    cl->v[cl->n++] = *c;
}

int cidr_host_append(struct cidr_list *cl)
{
    return host_each(host_add, cl);
}

int cidr_host_text(struct str *out)
{
    struct cidr_list cl = { NULL, 0 };

    if (cidr_host_append(&cl) < 0)
        return -1;
    for (size_t i = 0; i < cl.n; i++) {
        char buf[INET6_ADDRSTRLEN];

        if (inet_ntop(cl.v[i].family, cl.v[i].addr, buf, sizeof(buf)) == NULL)
            continue;
        if (out->len > 0)
            str_appends(out, ", ");
        if (cl.v[i].family == AF_INET6)
            str_printf(out, "[%s]/128", buf);
        else
            str_printf(out, "%s/32", buf);
    }
    cidr_list_free(&cl);
    return 0;
}
