/* postern.conf: "key = value" lines, '#' comments, lines that start with white space
 * continue the previous one, "$key" and "${key}" expand (after the whole file is read,
 * recursion bounded).  Unknown keys are an error naming file:line.  Every key, its
 * type, bounds, default and what 0 or empty means lives in one table (conf_keys.h),
 * printed by "postern config" and documented in postern.conf(5).
 *
 * Every value is checked against its key's type and bounds after expansion, whenever
 * it is set: when the file is read and by conf_set.  A refusal is one line naming the
 * place, key, value and rule: "DIR/postern.conf:12: ipc_timeout = 0: must be at
 * least 1s".
 *
 * Code names keys through enum conf_key (CONF_ipc_timeout), so a misspelt key fails
 * the build; only text typed by a person (master.conf's -o, "postern config KEY")
 * is looked up by name.  Each type is read through one accessor; reading a key
 * through another type's accessor is a bug and panics.
 *
 * Besides the table's keys, the reader defines config_directory (the directory the
 * file was read from). */
#ifndef POSTERN_CONF_H
#define POSTERN_CONF_H

#include <stdbool.h>
#include <stddef.h>

struct str;

enum conf_type {
    /* read with conf_str() */
    CONF_STR,       /* any text */
    CONF_ENUM,      /* one of the key's words */
    CONF_HOST,      /* a host name: letter-digit-hyphen labels (and '_'), dots between */
    CONF_HOSTPORT,  /* host, host:port, [host] or [host]:port; [] may hold an address */
    CONF_PATH,      /* an absolute path */
    CONF_RELPATH,   /* a relative path without ".." */
    CONF_MAPS,      /* lookup tables type:name (map.h), for maplist_open() */
    CONF_USER,      /* a user name (it need not exist when the value is checked) */
    CONF_GROUP,     /* a group name (likewise) */
    /* read with conf_list(); items separated by commas and/or white space */
    CONF_LIST,      /* any items */
    CONF_DOMAINS,   /* domain names, ".domain" for its subdomains */
    CONF_CIDRS,     /* IP addresses and networks address/bits (cidr.h) */
    CONF_ADDRS,     /* IP address literals, or the key's words */
    CONF_ADDRPORTS, /* address or [address]:port */
    /* one accessor each */
    CONF_COUNT,     /* conf_count(): a whole number */
    CONF_TIME,      /* conf_time_ms(): a number with unit s, m, h, d or w (default s) */
    CONF_SIZE,      /* conf_size(): a number of bytes with unit k, m or g */
    CONF_BOOL,      /* conf_bool(): yes or no */
};

/* enum conf_key: CONF_<name> for each row of conf_keys.h, in table order, then the
 * read-only config_directory. */
enum conf_key {
#define CONF_KEY(name, type, def, min, max, words, zero, doc) CONF_##name,
#include "conf_keys.h"
#undef CONF_KEY
    CONF_config_directory,
    CONF_NKEYS
};

struct conf_default {
    const char *name;
    enum conf_type type;
    const char *value;      /* default, may contain $key */
    long long min, max;     /* in the type's unit; see conf_keys.h */
    const char *words;      /* ENUM and ADDRS: '|' between words; else NULL */
    const char *zero;       /* what 0 or empty means; NULL: nothing special */
    const char *doc;        /* one line */
};

/* Indexed by enum conf_key, up to (not including) CONF_config_directory. */
extern const struct conf_default conf_defaults[];
#define conf_ndefaults ((size_t)CONF_config_directory)

/* The key called name (a table key or config_directory), or -1. */
int conf_key_find(const char *name);
const char *conf_key_name(enum conf_key k);
/* The type's name as documentation and messages say it ("time", "host name"). */
const char *conf_type_name(enum conf_type t);

struct conf;

/* The environment variable through which master names the descriptor of its
 * configuration snapshot to the daemons it starts (see conf_load_fd). */
#define CONF_SNAPSHOT_ENV "POSTERN_CONF_FD"

/* Reads DIR/postern.conf (a missing file means all defaults).  NULL on error, with
 * "path:line: key = value: rule" (or another one-line message) in err. */
struct conf *conf_load(const char *config_dir, struct str *err);
/* The same without checking values against their types (syntax, unknown keys and
 * $expansion are still errors), for the admin command to stop an instance or repair
 * a file that holds a bad value.  On such a configuration conf_set checks only the
 * value it sets, and only text and list accessors may be used until conf_check_all
 * has passed. */
struct conf *conf_load_unchecked(const char *config_dir, struct str *err);
/* Checks every value of a configuration loaded unchecked, as conf_load would have:
 * 0 (it is checked from now on), or -1 with the first refusal in err. */
int conf_check_all(struct conf *c, struct str *err);
/* The same as conf_load, with the file's text read from fd instead (from its start, with pread,
 * so processes sharing the descriptor do not disturb each other): the snapshot
 * master hands its children.  Messages still name DIR/postern.conf. */
struct conf *conf_load_fd(const char *config_dir, int fd, struct str *err);
void conf_free(struct conf *c);
/* The text the configuration was read from, and its length (empty when there was no
 * file). */
const char *conf_text(const struct conf *c, size_t *len);

/* Overrides one key by name, as master.conf's "-o key=value" and "postern config
 * KEY=VALUE" do: 0, or -1 (unknown key, or a value that the key's type or bounds
 * refuse, after expansion) with "key = value: rule" in err; c is then unchanged. */
int conf_set(struct conf *c, const char *key, const char *value, struct str *err);

/* Checks value as key's value without any $expansion: 0, or -1 with the rule it
 * breaks ("must be at least 1s") appended to why. */
int conf_check(enum conf_key k, const char *value, struct str *why);
/* The same against a table row; a number's value (seconds for TIME, 1/0 for BOOL)
 * goes to *num when num is not NULL. */
int conf_value_check(const struct conf_default *d, const char *value, long long *num,
                     struct str *why);
/* Splits a list value at commas and white space: NULL-terminated, free with
 * strv_free(). */
char **conf_list_split(const char *value);

/* Typed accessors of expanded, checked values. */
/* STR ENUM HOST HOSTPORT PATH RELPATH MAPS USER GROUP, and config_directory. */
const char *conf_str(const struct conf *c, enum conf_key k);
/* LIST DOMAINS CIDRS ADDRS ADDRPORTS: NULL-terminated vector of the items; free
 * with strv_free(). */
char **conf_list(const struct conf *c, enum conf_key k);
long long conf_count(const struct conf *c, enum conf_key k);
bool conf_bool(const struct conf *c, enum conf_key k);
/* Milliseconds.  Every timeout key's maximum is at most a day, so its value fits
 * an int. */
long long conf_time_ms(const struct conf *c, enum conf_key k);
long long conf_size(const struct conf *c, enum conf_key k);     /* bytes */

/* Any key, for showing rather than using: */
/* true when the key was set in the file or by conf_set (not a default). */
bool conf_is_set(const struct conf *c, enum conf_key k);
/* The value as written (in the file, by conf_set, or the table's default), before
 * $expansion: what "postern config" prints. */
const char *conf_raw(const struct conf *c, enum conf_key k);
/* The value after expansion (and after the computed defaults of myhostname and
 * mydomain). */
const char *conf_expanded(const struct conf *c, enum conf_key k);
const char *conf_dir(const struct conf *c);

/* The config directory to use when none is given with -c: $POSTERN_CONFIG_DIR, else
 * the compiled-in default (POSTERN_SYSCONFDIR). */
const char *conf_default_dir(void);

/* Rewrites DIR/postern.conf so that key = value (replacing an existing setting, or
 * appending), atomically (temporary file + rename).  The value is not checked here:
 * check it with conf_set first.  With value NULL, every setting of key is removed
 * instead (with its continuation lines), so that the default applies.  0, or -1
 * with err. */
int conf_edit(const char *config_dir, const char *key, const char *value, struct str *err);

#endif
