/* postern.conf: "key = value" lines, '#' comments, lines that start with white space
 * continue the previous one, "$key" and "${key}" expand (after the whole file is read,
 * recursion bounded).  Unknown keys are an error naming file:line.  Every key and its
 * default lives in one table (conf_defaults.c), printed by "postern config" and
 * documented in postern.conf(5).
 *
 * Besides the table's keys, the reader defines config_directory (the directory the
 * file was read from). */
#ifndef POSTERN_CONF_H
#define POSTERN_CONF_H

#include <stdbool.h>
#include <stddef.h>

struct str;

enum conf_type {
    CONF_STR,
    CONF_INT,       /* decimal integer */
    CONF_BOOL,      /* yes/no */
    CONF_TIME,      /* integer with optional unit s, m, h, d, w (default s) */
    CONF_SIZE,      /* integer with optional unit k, m, g (bytes) */
    CONF_LIST,      /* comma or white space separated */
};

struct conf_default {
    const char *name;
    enum conf_type type;
    const char *value;      /* default, may contain $key */
    const char *doc;        /* one line */
};

extern const struct conf_default conf_defaults[];
extern const size_t conf_ndefaults;

struct conf;

/* Reads DIR/postern.conf (a missing file means all defaults).  NULL on error, with
 * "path:line: message" in err. */
struct conf *conf_load(const char *config_dir, struct str *err);
void conf_free(struct conf *c);

/* Overrides one key, as master.conf's "-o key=value" does: 0, or -1 (unknown key or
 * a value that does not parse as the key's type) with a message in err. */
int conf_set(struct conf *c, const char *key, const char *value, struct str *err);

/* Typed getters on the expanded value.  Asking for a key not in the table is a
 * programming error and fatal.  Values were checked against their types at load. */
const char *conf_str(const struct conf *c, const char *key);
long long conf_int(const struct conf *c, const char *key);
bool conf_bool(const struct conf *c, const char *key);
long long conf_time(const struct conf *c, const char *key);     /* seconds */
/* The same in milliseconds for poll() and stream timeouts: 0 for values <= 0, and at
 * most INT_MAX (about 24 days) however large the setting, so no product overflows. */
int conf_time_ms(const struct conf *c, const char *key);
long long conf_size(const struct conf *c, const char *key);     /* bytes */
/* NULL-terminated vector of the list's items; free with strv_free(). */
char **conf_list(const struct conf *c, const char *key);
/* true when the key was set in the file or by conf_set (not a default). */
bool conf_is_set(const struct conf *c, const char *key);
const char *conf_dir(const struct conf *c);
/* The value as written (in the file, by conf_set, or the table's default), before
 * $expansion: what "postern config" prints. */
const char *conf_raw(const struct conf *c, const char *key);

/* The config directory to use when none is given with -c: $POSTERN_CONFIG_DIR, else
 * the compiled-in default (POSTERN_SYSCONFDIR). */
const char *conf_default_dir(void);

/* Rewrites DIR/postern.conf so that key = value (replacing an existing setting, or
 * appending), atomically (temporary file + rename).  0, or -1 with err. */
int conf_edit(const char *config_dir, const char *key, const char *value, struct str *err);

#endif
