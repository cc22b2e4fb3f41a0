/* What imapd offers (CAPABILITY, before and after login) and the ID command
 * (RFC 2971), which both states answer alike.  Only what is implemented is named. */
#include <string.h>

#include "imapd.h"
#include "log.h"
#include "stream.h"

#define ID_PAIRS_MAX 30             /* RFC 2971 */
#define ID_FIELD_MAX 30
#define ID_VALUE_MAX 1024

void imap_capa_preauth(struct str *out, bool login_ok, bool tls_offer)
{
    str_sets(out, "IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE LITERAL+");
    if (tls_offer)
        str_appends(out, " STARTTLS");
    if (login_ok)
        str_appends(out, " AUTH=PLAIN AUTH=LOGIN");
    else
        str_appends(out, " LOGINDISABLED");
}

void imap_capa_session(struct str *out)
{
    str_sets(out, "IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE LITERAL+ NAMESPACE IDLE UIDPLUS "
                  "MOVE UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE ESEARCH SEARCHRES "
                  "LIST-EXTENDED LIST-STATUS STATUS=SIZE UTF8=ACCEPT CONDSTORE QRESYNC");
    /* compress.c; BINARY: fetch.c and APPEND's literal8 */
    str_appends(out, " COMPRESS=DEFLATE BINARY");
    /* RFC 7889: the server-wide limit; none is said when there is none */
    if (imap_cf.append_limit > 0)
        str_printf(out, " APPENDLIMIT=%llu", imap_cf.append_limit);
}

/* ID: "(" *(string SP nstring) ")" or NIL; logged (printable ASCII only), answered
 * with our name. */
void imap_cmd_id(struct imap_conn *c, struct imap_parser *ip)
{
    struct str field = STR_INIT, value = STR_INIT, logged = STR_INIT;
    bool ok = true;
    int pairs = 0;

    if (!imap_p_sp(ip)) {
        ok = false;
    } else if (imap_p_peek(ip, 'N') || imap_p_peek(ip, 'n')) {
        ok = imap_p_atom(ip, &field, 3) && strcasecmp(field.s, "NIL") == 0;
    } else if (imap_p_char(ip, '(')) {
        while (ok && !imap_p_char(ip, ')')) {
            if (pairs > 0 && !imap_p_sp(ip)) {
                ok = false;
                break;
            }
            ok = imap_p_string(ip, &field) && imap_p_sp(ip) && field.len <= ID_FIELD_MAX
                 && ++pairs <= ID_PAIRS_MAX;
            if (!ok)
                break;
            if (imap_p_peek(ip, '"') || imap_p_peek(ip, '{')) {
                ok = imap_p_string(ip, &value) && value.len <= ID_VALUE_MAX;
            } else {
                ok = imap_p_atom(ip, &value, 3) && strcasecmp(value.s, "NIL") == 0;
                str_clear(&value);
            }
            if (ok && logged.len < 512) {
                str_appends(&logged, logged.len ? ", " : "");
                for (size_t i = 0; i < field.len + 1 + value.len; i++) {
                    char ch = i < field.len ? field.s[i] : i == field.len ? '='
                              : value.s[i - field.len - 1];
                    str_appendc(&logged, ch >= 0x20 && ch < 0x7f && ch != ',' ? ch : '?');
                }
            }
        }
    } else {
        ok = false;
    }
    if (!ok || !imap_p_eol(ip)) {
        imap_bad(c, "invalid ID arguments");
    } else {
        if (logged.len > 0)
            log_info("id: client=[%s]: %s", c->client, logged.s);
        stream_puts(c->st, "* ID (\"name\" \"Postern\")\r\n");
        imap_ok(c, "ID completed");
    }
    str_free(&field);
    str_free(&value);
    str_free(&logged);
}
