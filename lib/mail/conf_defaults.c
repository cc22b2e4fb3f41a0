/* The table of postern.conf keys, made from the rows of conf_keys.h: conf.c checks
 * values against it, "postern config" prints it, postern.conf(5) documents it.  An
 * empty myhostname means "the system's host name" (filled in by conf_load); an empty
 * mydomain means myhostname without its first label. */
#include "conf.h"

const struct conf_default conf_defaults[] = {
#define CONF_KEY(name, type, def, min, max, words, zero, doc) \
    { #name, CONF_##type, def, min, max, words, zero, doc },
#include "conf_keys.h"
#undef CONF_KEY
};

/* The table and the enum come from the same rows: they cannot disagree in length. */
_Static_assert(sizeof(conf_defaults) / sizeof(conf_defaults[0]) == CONF_config_directory,
               "conf_defaults and enum conf_key differ");
