/* Lookup tables, named "type:name":
 *   cdb:/path/file      tinycdb file /path/file.cdb, built by "postern map build /path/file"
 *   static:VALUE        every key finds VALUE
 *   inline:{k1=v1, k2=v2}
 *   unix:passwd         the system's users: value "name:uid:gid:home"
 *   pcre:/path/file     PCRE2 patterns (when built in; see postern-maps(5))
 * Keys are looked up in lower case except for unix:passwd.  A failed lookup (I/O
 * error, unreadable or corrupt map) returns -1 and is never "not found": the caller
 * answers with a temporary error.  A cdb map notices when its file was replaced and
 * reopens it. */
#ifndef POSTERN_MAP_H
#define POSTERN_MAP_H

#include <stdbool.h>
#include <stddef.h>

struct str;
struct map;

/* NULL on a malformed spec or unknown type, with the reason in err. */
struct map *map_open(const char *spec, struct str *err);
void map_close(struct map *m);
/* 1 found (value set), 0 not found, -1 lookup failed (errno; message in err if not NULL). */
int map_lookup(struct map *m, const char *key, struct str *value, struct str *err);

/* A list of maps, searched in order, as config keys name them ("cdb:a, cdb:b";
 * white space or commas between specs, inline:{...} kept whole).  An empty spec
 * string gives an empty list (every lookup: not found). */
struct maplist;
struct maplist *maplist_open(const char *specs, struct str *err);
void maplist_close(struct maplist *ml);
int maplist_lookup(struct maplist *ml, const char *key, struct str *value, struct str *err);
size_t maplist_count(const struct maplist *ml);
/* The specs of such a list, each whole: a NULL-terminated vector (free with
 * strv_free), or NULL with err on a missing '}'. */
char **map_specs_split(const char *specs, struct str *err);
/* Checks one spec as a configuration value, opening nothing: a known type, a name
 * where the type needs one (an absolute path for cdb: and pcre:), inline:{...} well
 * formed.  0, or -1 with the reason in err. */
int map_spec_check(const char *spec, struct str *err);
/* For a process about to chroot away from the maps' paths: from now on each cdb map
 * keeps reading the file it has open and no longer looks for a newer one (a rebuilt
 * map is seen when the process restarts), and unix:passwd answers from a copy of the
 * user database taken now (a user added later is seen when the process restarts;
 * when no copy could be taken, every lookup fails). */
void maplist_pin(struct maplist *ml);
void map_pin(struct map *m);
/* For a pinned map: true when the file it reads was replaced or written since (a
 * rebuilt cdb file; a new /etc/passwd, when the user database comes from it).  The
 * process should then end and leave the work to a new one, which reads them anew. */
bool map_changed(const struct map *m);
bool maplist_changed(const struct maplist *ml);

/* Text source format ("key value", '#' comments, continuation lines starting with
 * white space) compiled into FILE.cdb through a temporary file and rename(2).
 * Returns the number of entries, or -1 with "file:line: message" in err. */
long map_build(const char *textfile, struct str *err);

#endif
