/* The junk_headers tests and junk_folder names of local(8)'s Junk folder delivery:
 * parsed and checked here for local and for "postern check". */
#ifndef POSTERN_JUNK_H
#define POSTERN_JUNK_H

#include <stdbool.h>
#include <stddef.h>

struct str;

/* A message with a field name[i] whose value is value[i] is spam. */
struct junk_tests {
    char **name;
    char **value;
    size_t n;
};

/* Parses junk_headers ("Name: value" items, commas between; empty: no test): 0, or
 * -1 with err naming the bad item. */
int junk_parse(const char *spec, struct junk_tests *jt, struct str *err);
void junk_free(struct junk_tests *jt);
/* A folder name for junk_folder: no '/', no control character, no empty part
 * between dots, at most 200 bytes. */
bool junk_folder_name_ok(const char *name);
/* true when the header section at the start of head passes one of the tests. */
bool junk_match(const struct junk_tests *jt, const char *head, size_t len);

#endif
