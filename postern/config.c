/* "postern config [-d | -n | -x] [KEY | KEY=VALUE]... | config -X KEY...": shows keys
 * (as written, before $expansion, unless -x) and changes postern.conf, only when
 * every new value passes its key's check and the result still loads.  Keys come
 * from the command line: looked up by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "conf.h"
#include "postern.h"
#include "str.h"
#include "xmalloc.h"

enum show_mode { SHOW_RAW, SHOW_DEFAULT, SHOW_EXPANDED };

/* Values as written (unexpanded, like postconf); a default that is computed at load
 * time (myhostname, mydomain: empty in the table) is shown as computed. */
static void show(const struct conf *c, enum conf_key k, enum show_mode mode)
{
    const char *v;
    if (mode == SHOW_DEFAULT) {
        v = conf_defaults[k].value;
    } else if (mode == SHOW_EXPANDED) {
        v = conf_expanded(c, k);
    } else {
        v = conf_raw(c, k);
        if (v[0] == '\0')
            v = conf_expanded(c, k);
    }
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

static enum conf_key key_or_fail(const char *key)
{
    int k = conf_key_find(key);
    if (k < 0)
        cmd_fail("unknown key \"%s\"", key);
    return (enum conf_key)k;
}

/* -X KEY...: every setting of the keys goes from postern.conf (the defaults apply),
 * when the result still loads. */
static int config_remove(int argc, char **argv)
{
    struct str err = STR_INIT;

    if (argc == 0)
        cmd_usage("config");
    str_init(&err);
    struct conf *c = cmd_conf_unchecked();
    for (int i = 0; i < argc; i++) {
        enum conf_key k = key_or_fail(argv[i]);
        if (k == CONF_config_directory)
            cmd_fail("config_directory cannot be set or removed");
    }
    for (int i = 0; i < argc; i++)
        if (conf_edit(conf_dir(c), argv[i], NULL, &err) < 0)
            cmd_fail("%s", err.s);
    conf_free(c);
    c = cmd_conf_unchecked();
    if (conf_check_all(c, &err) < 0)
        cmd_warn("removed, but postern.conf still has a bad value: %s", err.s);
    for (int i = 0; i < argc; i++)
        printf("%s: removed (default: %s)\n", argv[i],
               conf_defaults[conf_key_find(argv[i])].value);
    conf_free(c);
    str_free(&err);
    return 0;
}

int cmd_config(int argc, char **argv)
{
    struct str err = STR_INIT;
    bool setting = false;
    int nset = 0;
    enum show_mode mode = SHOW_RAW;
    bool only_set = false;
    int i = 1;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-d") == 0)
            mode = SHOW_DEFAULT;
        else if (strcmp(argv[i], "-x") == 0)
            mode = SHOW_EXPANDED;
        else if (strcmp(argv[i], "-n") == 0)
            only_set = true;
        else if (strcmp(argv[i], "-X") == 0)
            return config_remove(argc - i - 1, argv + i + 1);
        else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else
            cmd_usage("config");
    }
    argc -= i - 1;
    argv += i - 1;
    for (i = 1; i < argc; i++)
        setting = setting || strchr(argv[i], '=') != NULL;
    if (setting && (mode != SHOW_RAW || only_set))
        cmd_usage("config");

    /* -d needs no instance: the compiled-in table */
    if (mode == SHOW_DEFAULT) {
        if (argc == 1)
            for (size_t k = 0; k < conf_ndefaults; k++)
                show(NULL, (enum conf_key)k, mode);
        for (i = 1; i < argc; i++) {
            enum conf_key k = key_or_fail(argv[i]);
            if (k == CONF_config_directory)
                cmd_fail("config_directory has no default");
            show(NULL, k, mode);
        }
        return 0;
    }

    /* A file with bad values can be put right: each new value is checked, then the
     * whole configuration, and nothing is written unless all of it passes. */
    struct conf *c = setting ? cmd_conf_unchecked() : cmd_conf();

    str_init(&err);
    if (argc == 1) {
        for (size_t k = 0; k < conf_ndefaults; k++)
            if (!only_set || conf_is_set(c, (enum conf_key)k))
                show(c, (enum conf_key)k, mode);
        conf_free(c);
        str_free(&err);
        return 0;
    }
    /* Check every argument, and that the changed file would load, before writing. */
    for (i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        char *key = eq ? xstrndup(argv[i], (size_t)(eq - argv[i])) : xstrdup(argv[i]);
        bool known = conf_key_find(key) >= 0;
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
    for (i = 1; i < argc && nset > 0; i++) {
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
    for (i = 1; i < argc; i++) {
        if (strchr(argv[i], '=') != NULL)
            continue;
        enum conf_key k = key_or_fail(argv[i]);
        if (!only_set || conf_is_set(c, k)) {
            show(c, k, mode);
            show_meaning(c, k);
        }
    }
    conf_free(c);
    str_free(&err);
    return 0;
}
