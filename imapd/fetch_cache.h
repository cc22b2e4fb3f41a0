/* The glue between FETCH (and SEARCH, which reads entries) and the selected folder's
 * index cache (imap_index.h): the cache is kept in this process while the same folder
 * (directory and UIDVALIDITY) is the one fetched from, and saved when it has grown by
 * an eighth (at least 64 entries), before another folder's is opened, and at the end
 * of the session. */
#ifndef IMAPD_FETCH_CACHE_H
#define IMAPD_FETCH_CACHE_H

#include "imap_index.h"
#include "str.h"

struct imap_session;
struct store_msg;
struct mime_msg;

/* What the cache holds for a message, made from its parse: e points into the strs. */
struct imap_cache_meta {
    struct imap_index_entry e;
    struct str env, body, bs;
};

/* Opens (or keeps) the cache of the selected folder; nothing when it is off. */
void imap_cache_open(struct imap_session *s);
/* The cached entry of a message of the selected folder, or NULL. */
const struct imap_index_entry *imap_cache_get(const struct store_msg *sm);
/* The SUBJECT of a message's cached envelope, as the envelope has it (unfolded, no
 * NUL): 1 with it in out, 0 when the envelope has none (NIL), -1 when the message has
 * no entry or its envelope does not parse (the file is to be read instead). */
int imap_cache_subject(const struct store_msg *sm, struct str *out);
/* Makes fm from the parse of sm's file and adds it to the cache. */
void imap_cache_make(struct imap_session *s, struct imap_cache_meta *fm,
                     const struct store_msg *sm, const struct mime_msg *mm);
void imap_cache_meta_free(struct imap_cache_meta *fm);
/* After a FETCH: saves the cache when it has grown enough. */
void imap_cache_command_end(struct imap_session *s);

#endif
