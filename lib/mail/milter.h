/* Milter client: the Sendmail mail filter protocol, version 6, as Postfix speaks it to
 * filters such as rspamd, spamass-milter, clamav-milter and opendkim.
 *
 * Frames are a 4-byte big-endian length, then a command or reply letter and its data.
 * Every frame from a filter is hostile: its length is bounded (MILTER_FRAME_MAX), its
 * strings must be NUL-terminated inside it, and a reply that the current stage does
 * not allow is a protocol error.  Any error (connect failure, timeout, EOF, garbage)
 * marks the filter failed for the rest of the session: the caller applies
 * milter_default_action.
 *
 * One struct milter is one filter's connection for one SMTP session.  Stages are
 * sent in the protocol's order; those the filter asked to skip at negotiation are not
 * sent, and for those it said it will not answer no reply is awaited. */
#ifndef POSTERN_MILTER_H
#define POSTERN_MILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

#define MILTER_FRAME_MAX (1u << 20)     /* largest frame accepted from a filter */
#define MILTER_CHUNK 65535u             /* body bytes sent in one frame */
#define MILTER_MODS_MAX (64u << 20)     /* bytes of all changes to one message */
#define MILTER_MODS_COUNT 10000         /* changes to one message */
#define MILTER_ENV_MAX 1000             /* envelope changes to one message */
#define MILTER_VERSION 6

/* What a stage's reply asks for. */
enum milter_verdict {
    MILTER_CONTINUE,        /* go on with this filter */
    MILTER_ACCEPT,          /* accept; this filter is done for the message */
    MILTER_REJECT,          /* 5xx: the reply text is in the result (default 5.7.1) */
    MILTER_TEMPFAIL,        /* 4xx, likewise */
    MILTER_DISCARD,         /* accept and throw away */
    MILTER_FAILED,          /* the filter is unusable: apply the default action */
};

/* A change asked for at the end of the message. */
enum milter_mod_type {
    MILTER_MOD_ADDHDR,      /* name, value: appended to the header */
    MILTER_MOD_INSHDR,      /* index, name, value: inserted before field index */
    MILTER_MOD_CHGHDR,      /* index (1-based among fields of that name), name,
                             * value (empty: delete the field) */
    MILTER_MOD_BODY,        /* value: a piece of the new body (CRLF line ends) */
    /* Envelope changes (each only when the filter asked for it at negotiation):
     * value is the address as the filter sent it ("<a@b>" or bare), name its ESMTP
     * parameters or NULL. */
    MILTER_MOD_CHGFROM,     /* SMFIR_CHGFROM: a new sender */
    MILTER_MOD_ADDRCPT,     /* SMFIR_ADDRCPT, SMFIR_ADDRCPT_PAR: a recipient added */
    MILTER_MOD_DELRCPT,     /* SMFIR_DELRCPT: a recipient removed */
};

struct milter_mod {
    enum milter_mod_type type;
    unsigned long index;
    char *name;
    struct str value;
};

struct milter_result {
    enum milter_verdict verdict;
    struct str reply;       /* "CODE D.D.D text" for REJECT and TEMPFAIL from a
                             * replycode, else empty */
    bool quarantine;        /* put the message on hold */
    struct str reason;      /* the quarantine reason */
    struct milter_mod *mods;
    size_t nmods;
};

/* init allocates nothing; free releases everything and leaves r initialised. */
void milter_result_init(struct milter_result *r);
void milter_result_free(struct milter_result *r);

struct milter_timeouts {
    int connect_ms;         /* connect and negotiation */
    int command_ms;         /* each reply before the content */
    int content_ms;         /* each reply to header, body and end of message */
};

struct milter;

/* A filter named "inet:host:port" or "unix:/path": 0 and *m, or -1 with err (a bad
 * name).  Nothing is connected yet. */
int milter_new(const char *spec, const struct milter_timeouts *t, struct milter **m,
               struct str *err);
void milter_free(struct milter *m);        /* says QUIT when connected */
const char *milter_name(const struct milter *m);
/* true once the filter has failed (it stays so for the session). */
bool milter_failed(const struct milter *m);
/* true when the filter accepted or rejected the current message already: nothing
 * more is sent to it until milter_abort or the next message. */
bool milter_done(const struct milter *m);

/* Macros for the next command (name and value pairs, NULL-terminated), sent as
 * SMFIC_MACRO for the stage letter ('C', 'H', 'M', 'R', 'T', 'L', 'N', 'E'). */
void milter_macros(struct milter *m, char stage, const char *const *pairs);

/* The stages.  Each connects and negotiates first when needed, and fills r (which
 * the caller initialised) with the verdict. */
void milter_connect(struct milter *m, const char *hostname, const char *addr,
                    unsigned port, struct milter_result *r);
void milter_helo(struct milter *m, const char *helo, struct milter_result *r);
/* args: "<sender>" then ESMTP parameters, NULL-terminated. */
void milter_mail(struct milter *m, const char *const *args, struct milter_result *r);
void milter_rcpt(struct milter *m, const char *const *args, struct milter_result *r);
void milter_data(struct milter *m, struct milter_result *r);
void milter_header(struct milter *m, const char *name, const char *value,
                   struct milter_result *r);
void milter_eoh(struct milter *m, struct milter_result *r);
void milter_body(struct milter *m, const char *data, size_t len, struct milter_result *r);
/* End of message: the modifications are gathered into r. */
void milter_eom(struct milter *m, struct milter_result *r);
/* The message is over (after EOM, or given up): the filter forgets it. */
void milter_abort(struct milter *m);

/* "tempfail" or "accept": what a failed filter means. */
enum milter_verdict milter_default_verdict(const char *action);

#endif
