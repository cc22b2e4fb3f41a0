/* "postern config [KEY | KEY=VALUE]...": shows keys (as written, before $expansion)
 * and changes postern.conf, only when every new value passes its key's check and the
 * result still loads.  Keys come from the command line: looked up by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "conf.h"
#include "postern.h"
#include "str.h"
#include "xmalloc.h"

static bool known_key(const char *key)
{
    return conf_key_find(key) >= 0;
}

/* Values as written (unexpanded, like postconf); a default that is computed at load
 * time (myhostname, mydomain: empty in the table) is shown as computed. */
static void show(const struct conf *c, enum conf_key k)
{
    const char *v = conf_raw(c, k);
    if (v[0] == '\0')
        v = conf_expanded(c, k);
    printf("%s =%s%s\n", conf_key_name(k), v[0] != '\0' ? " " : "", v);
}

/* For a key asked by name: what the word "host" in mynetworks stands for now. */
static void show_meaning(const struct conf *c, enum conf_key k)
{
    char **items;
    bool host = false;

    if (k != CONF_mynetworks)
        return;
    items = conf_list(c, k);
    for (size_t i = 0; items != NULL && items[i] != NULL; i++)
        host = host || strcmp(items[i], CIDR_HOST_WORD) == 0;
    strv_free(items);
    if (host) {
        struct str t = STR_INIT;
        if (cidr_host_text(&t) == 0)
            printf("# %s: %s = %s\n", conf_key_name(k), CIDR_HOST_WORD, t.s ? t.s : "");
        str_free(&t);
    }
}

int cmd_config(int argc, char **argv)
{
    struct str err = STR_INIT;
    bool setting = false;
    int nset = 0;

    for (int i = 1; i < argc; i++)
        setting = setting || strchr(argv[i], '=') != NULL;
    /* A file with bad values can be put right: each new value is checked, then the
     * whole configuration, and nothing is written unless all of it passes. */
    struct conf *c = setting ? cmd_conf_unchecked() : cmd_conf();

    str_init(&err);
    if (argc == 1) {
        for (size_t i = 0; i < conf_ndefaults; i++)
            show(c, (enum conf_key)i);
        conf_free(c);
        str_free(&err);
        return 0;
    }
    /* Check every argument, and that the changed file would load, before writing. */
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        char *key = eq ? xstrndup(argv[i], (size_t)(eq - argv[i])) : xstrdup(argv[i]);
        bool known = known_key(key);
        int r = known && eq != NULL ? conf_set(c, key, eq + 1, &err) : 0;
        if (!known)
            cmd_warn("unknown key \"%s\"", key);
        free(key);
        if (!known || r < 0) {
            if (r < 0)
                cmd_warn("%s", err.s);
            conf_free(c);
            str_free(&err);
            exit(1);
        }
        if (eq != NULL)
            nset++;
    }
    if (conf_check_all(c, &err) < 0)
        cmd_fail("%s", err.s);
    for (int i = 1; i < argc && nset > 0; i++) {
        const char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            continue;
        char *key = xstrndup(argv[i], (size_t)(eq - argv[i]));
        if (conf_edit(conf_dir(c), key, eq + 1, &err) < 0)
            cmd_fail("%s", err.s);
        free(key);
    }
    if (nset > 0) {
        conf_free(c);
        c = cmd_conf();
    }
    for (int i = 1; i < argc; i++)
        if (strchr(argv[i], '=') == NULL) {
            show(c, (enum conf_key)conf_key_find(argv[i]));
            show_meaning(c, (enum conf_key)conf_key_find(argv[i]));
        }
    conf_free(c);
    str_free(&err);
    return 0;
}
