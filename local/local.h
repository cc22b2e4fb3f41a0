/* The local delivery agent's parts: the message being delivered (read once from its
 * queue file) and the delivery of a request's recipients into Maildirs. */
#ifndef POSTERN_LOCAL_H
#define POSTERN_LOCAL_H

#include <stdbool.h>
#include <stddef.h>

#include "deliver.h"
#include "junk.h"
#include "queue.h"

struct router;
struct str;

#define LOCAL_MEM_MAX (4u << 20)     /* content up to this size is held in memory */
#define LOCAL_HEAD_MAX (1u << 20)    /* header bytes examined (Delivered-To) */
#define LOCAL_OUTBUF 65536u          /* write buffer in front of the Maildir file */
#define LOCAL_BATCH_FILES 64u        /* copies made durable together, at most */
#define LOCAL_BATCH_REQUESTS 16u     /* requests read before their replies, at most */

struct local_file;

struct local_ctx {
    struct router *router;
    struct junk_tests junk;          /* none: everything goes to the inbox */
    const char *junk_folder;         /* Maildir++ name without its dot, or NULL */
    char *outbuf;                    /* LOCAL_OUTBUF bytes */
    struct local_file *files;        /* copies written, not yet durable */
    size_t nfiles;
};

/* One message: the open queue file, and its content (whole when whole is true, else
 * the first LOCAL_HEAD_MAX bytes), and the Delivered-To values of its header. */
struct local_msg {
    struct queue_file qf;
    bool open;
    struct str content;
    bool whole;
    char **delivered_to;             /* NULL-terminated, "<>" removed */
    bool junk;                       /* its header passed a junk_headers test */
};

/* Opens active/ID and reads its header.  0, or -1 with err; *corrupt is set when
 * the file failed to parse (and not merely to open). */
int local_msg_open(struct local_msg *m, const char *id, bool *corrupt, struct str *err);
void local_msg_close(struct local_msg *m);
/* true when the header carries "Delivered-To: addr" (ASCII case ignored). */
bool local_msg_delivered_to(const struct local_msg *m, const char *addr);
/* Calls fn over the whole content, from memory or from the queue file: 0, fn's
 * non-zero value, or -1 (read error or corruption, errno). */
int local_msg_content(struct local_msg *m, int (*fn)(void *arg, const char *data, size_t len),
                      void *arg);

/* Delivers every recipient of dr and sets its result.  A copy written is only
 * durable, and its recipient only "delivered", after local_flush(): call it before
 * sending the reply of any request given to local_deliver(). */
void local_deliver(struct local_ctx *ctx, struct deliver_request *dr);
/* fsyncs and links every copy written since the last call, then fsyncs each new/
 * directory once, and sets the results of their recipients. */
void local_flush(struct local_ctx *ctx);

/* junk.c.  Makes the Maildir++ folder ".folder" (tmp/, new/, cur/, maildirfolder)
 * inside the existing Maildir, with the effective ids; the Maildir is opened as
 * maildir_open does (no link, owned by the effective uid).  0, or -1 with err and
 * errno. */
int junk_folder_make(const char *maildir, const char *folder, struct str *err);

#endif
