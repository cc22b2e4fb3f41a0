/* The end of a message through a list of milters, shared by smtpd (smtpd_milters)
 * and pickup (non_smtpd_milters): the message, held in memory, goes to each filter in
 * turn (header fields, end of header, body in chunks, end of message), each filter's
 * header and body changes are applied before the next one sees it, and its envelope
 * changes are gathered for the caller to apply to the queue file (milter_env_apply).
 *
 * The message is ours (built by smtpd or pickup); what the filters send back is
 * hostile and was checked by milter.c; the changes here only copy it, with line ends
 * made safe so that a header value cannot end its field. */
#ifndef POSTERN_MILTER_MSG_H
#define POSTERN_MILTER_MSG_H

#include <stddef.h>

#include "milter.h"
#include "str.h"

struct queue_writer;
struct resolve_clnt;

/* Runs the content stages of the filters ms[0..n) over msg ('\n' line ends) and
 * leaves msg as they changed it.  id: the queue id (macro "i"); def: the verdict of
 * a failed filter (milter_default_verdict).  out, initialised by the caller, gets:
 *   CONTINUE  take the message; out->quarantine, out->reason, and the envelope
 *             changes of every filter in out->mods, in order
 *   DISCARD, REJECT, TEMPFAIL (with out->reply when the filter gave one)
 *   FAILED    a filter failed and def is tempfail
 * *who names the filter that decided (or quarantined), else NULL. */
void milter_msg_run(struct milter *const *ms, size_t n, const char *id,
                    enum milter_verdict def, struct str *msg, struct milter_result *out,
                    const char **who);

/* Applies the envelope changes of r to the queue file being written (before its
 * content): CHGFROM replaces the sender, DELRCPT removes every recipient whose
 * address or original address is the one named, ADDRCPT adds a recipient after
 * checking it as RCPT TO is checked (syntax, then the resolver, whose expansion is
 * added; one it refuses is logged and left out).  Returns 0; 1 when no recipient is
 * left (the caller discards the message, with a log line); -1 with why when the
 * message cannot be taken now (resolver down, write error): a temporary failure.
 * Every change is logged under id. */
int milter_env_apply(struct queue_writer *qw, struct resolve_clnt *rc, const char *id,
                     const struct milter_result *r, struct str *why);

#endif
