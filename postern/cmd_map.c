/* "postern map build FILE...": compiles text maps into FILE.cdb.
 * "postern map query MAP KEY": looks KEY up as the daemons do.  MAP is a config key
 * naming tables (virtual_alias_maps...) or one table spec (cdb:/path, inline:{...}).
 * The order of the lookups follows the map's use (router.h, postern-maps(5)):
 *   alias_maps               the local part, then the local part less its extension
 *   address tables           the address, less its extension, then @domain
 *   transport_maps           the address, the domain, then each parent .domain
 * A table spec given directly is looked up in the address order.  Prints the value
 * and the key that found it; exit 0 found, 1 not found, 3 lookup failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "conf.h"
#include "map.h"
#include "postern.h"
#include "str.h"
#include "xmalloc.h"

#define EXIT_NOTFOUND 1
#define EXIT_LOOKUP 3

enum order { ORDER_ADDRESS, ORDER_ALIAS, ORDER_TRANSPORT, ORDER_KEY };

static int map_build_all(int argc, char **argv)
{
    struct str err = STR_INIT;
    str_init(&err);
    for (int i = 0; i < argc; i++) {
        long n = map_build(argv[i], &err);
        if (n < 0)
            cmd_fail("%s", err.s);
        printf("%s.cdb: %ld entries\n", argv[i], n);
    }
    str_free(&err);
    return 0;
}

/* Adds a candidate key unless it is there already. */
static void add_key(char ***keys, size_t *n, const char *k)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*keys)[i], k) == 0)
            return;
    *keys = xreallocarray(*keys, *n + 2, sizeof(**keys));
    (*keys)[(*n)++] = xstrdup(k);
    (*keys)[*n] = NULL;
}

/* The keys tried, in order. */
static char **candidates(enum order order, const char *key, const char *delims)
{
    char **keys = NULL;
    size_t n = 0;
    struct str base = STR_INIT, ext = STR_INIT, k = STR_INIT;
    const char *at = strrchr(key, '@');

    str_init(&base);
    str_init(&ext);
    str_init(&k);
    str_sets(&k, key);
    str_lower(&k);
    switch (order) {
    case ORDER_KEY:
        add_key(&keys, &n, k.s);
        break;
    case ORDER_ALIAS: {
        size_t len = at != NULL ? (size_t)(at - key) : strlen(key);
        str_set(&base, k.s, len);
        add_key(&keys, &n, base.s);
        size_t cut = delims[0] != '\0' ? strcspn(base.s, delims) : base.len;
        if (cut > 0 && cut < base.len) {
            str_truncate(&base, cut);
            add_key(&keys, &n, base.s);
        }
        break;
    }
    case ORDER_ADDRESS:
        add_key(&keys, &n, k.s);
        if (delims[0] != '\0' && addr_strip_extension(k.s, delims, &base, &ext) == 1)
            add_key(&keys, &n, base.s);
        if (at != NULL) {
            str_clear(&base);
            str_printf(&base, "@%s", strrchr(k.s, '@') + 1);
            add_key(&keys, &n, base.s);
        }
        break;
    case ORDER_TRANSPORT: {
        add_key(&keys, &n, k.s);
        const char *dom = at != NULL ? strrchr(k.s, '@') + 1 : k.s;
        add_key(&keys, &n, dom);
        for (const char *p = strchr(dom, '.'); p != NULL; p = strchr(p + 1, '.'))
            add_key(&keys, &n, p);
        break;
    }
    }
    str_free(&base);
    str_free(&ext);
    str_free(&k);
    return keys;
}

static int map_query(const char *which, const char *key)
{
    struct str err = STR_INIT, value = STR_INIT;
    enum order order = ORDER_ADDRESS;
    const char *specs = which;
    const char *delims = "";
    struct conf *c = NULL;

    str_init(&err);
    str_init(&value);
    if (strchr(which, ':') == NULL) {
        int k = conf_key_find(which);
        if (k < 0 || k == CONF_config_directory || conf_defaults[k].type != CONF_MAPS)
            cmd_fail("%s: neither a table (type:name) nor a key that names tables", which);
        c = cmd_conf();
        specs = conf_str(c, (enum conf_key)k);
        delims = conf_str(c, CONF_recipient_delimiter);
        if (k == CONF_alias_maps)
            order = ORDER_ALIAS;
        else if (k == CONF_transport_maps || k == CONF_smtp_tls_policy_maps
                 || k == CONF_smtp_sasl_password_maps)
            order = ORDER_TRANSPORT;
        else if (k == CONF_auth_password_maps)
            order = ORDER_KEY;
    } else if (map_spec_check(which, &err) < 0) {
        cmd_fail("%s: %s", which, err.s);
    }
    struct maplist *ml = maplist_open(specs, &err);
    if (ml == NULL) {
        cmd_warn("%s", err.s);
        exit(EXIT_LOOKUP);
    }
    char **keys = candidates(order, key, delims);
    int rc = 0;
    for (size_t i = 0; keys[i] != NULL && rc == 0; i++) {
        rc = maplist_lookup(ml, keys[i], &value, &err);
        if (rc > 0)
            printf("%s\t(found as %s)\n", value.s ? value.s : "", keys[i]);
    }
    if (rc < 0) {
        cmd_warn("lookup failed: %s", err.s ? err.s : "unknown error");
        rc = EXIT_LOOKUP;
    } else if (rc == 0) {
        cmd_warn("%s: not found", key);
        rc = EXIT_NOTFOUND;
    } else {
        rc = 0;
    }
    strv_free(keys);
    maplist_close(ml);
    if (c != NULL)
        conf_free(c);
    str_free(&err);
    str_free(&value);
    return rc;
}

int cmd_map(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "build") == 0)
        return map_build_all(argc - 2, argv + 2);
    if (argc == 4 && strcmp(argv[1], "query") == 0)
        return map_query(argv[2], argv[3]);
    cmd_usage("map");
}
