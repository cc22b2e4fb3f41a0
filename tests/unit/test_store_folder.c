/* Unit tests for lib/mail/mutf7.c, store_folder.c and store_list.c: modified UTF-7
 * round trips (RFC 3501's examples), hostile folder names, wildcards, folder create,
 * rename (INBOX too), delete, LIST attributes and Dovecot's subscriptions file. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir.h"
#include "mutf7.h"
#include "store_folder.h"
#include "str.h"
#include "xmalloc.h"

static const char *to_utf8(const char *m, struct str *out)
{
    str_clear(out);
    if (mutf7_to_utf8(m, strlen(m), out) < 0)
        return NULL;
    return out->s != NULL ? out->s : "";
}

static const char *to_mutf7(const char *u, struct str *out)
{
    str_clear(out);
    if (utf8_to_mutf7(u, strlen(u), out) < 0)
        return NULL;
    return out->s != NULL ? out->s : "";
}

TEST(mutf7_rfc_examples)
{
    struct str s = STR_INIT;

    /* RFC 3501 5.1.3: "~peter/mail/&U,BTFw-/&ZeVnLIqe-" is 台北/日本語. */
    CHECK_STR(to_utf8("~peter/mail/&U,BTFw-/&ZeVnLIqe-", &s),
              "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
    CHECK_STR(to_mutf7("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                       &s), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
    CHECK_STR(to_utf8("&-", &s), "&");
    CHECK_STR(to_mutf7("a&b", &s), "a&-b");
    CHECK_STR(to_mutf7("Entw\xc3\xbcrfe", &s), "Entw&APw-rfe");
    CHECK_STR(to_utf8("Entw&APw-rfe", &s), "Entw\xc3\xbcrfe");
    /* A character beyond the BMP: a surrogate pair (U+1F600). */
    CHECK_STR(to_mutf7("\xf0\x9f\x98\x80", &s), "&2D3eAA-");
    CHECK_STR(to_utf8("&2D3eAA-", &s), "\xf0\x9f\x98\x80");
    CHECK_STR(to_utf8("", &s), "");
    str_free(&s);
}

TEST(mutf7_refuses_bad_forms)
{
    struct str s = STR_INIT;
    /* RFC 3501's bad examples and more: ASCII in base64, unterminated shift, 8-bit
     * bytes, a lone surrogate, bad padding, two adjacent shifts, an empty shift. */
    static const char *const bad[] = {
        "&Jjo!", "&U,BTFw-&ZeVnLIqe-", "&AGE-", "&U,BTF", "caf\xc3\xa9", "&2D0-",
        "&AOR-", "&", "&,-", "a\tb", "&AAk-",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (to_utf8(bad[i], &s) != NULL)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK(to_utf8(bad[i], &s) == NULL);
        CHECK(!mutf7_valid(bad[i], strlen(bad[i])));
    }
    CHECK(to_mutf7("\xc0\xaf", &s) == NULL);         /* overlong '/' */
    CHECK(to_mutf7("\xed\xa0\x80", &s) == NULL);     /* a surrogate in UTF-8 */
    CHECK(to_mutf7("\xf4\x90\x80\x80", &s) == NULL); /* beyond U+10FFFF */
    CHECK(to_mutf7("a\x01", &s) == NULL);
    CHECK(to_mutf7("\xe6\x97", &s) == NULL);         /* truncated */
    str_free(&s);
}

TEST(mutf7_round_trip_many)
{
    struct str m = STR_INIT, u = STR_INIT;
    unsigned seed = 12345;

    for (int round = 0; round < 500; round++) {
        struct str in = STR_INIT;
        int len = (int)(seed % 12) + 1;

        for (int k = 0; k < len; k++) {
            uint32_t cp;
            seed = seed * 1103515245u + 12345u;
            switch ((seed >> 16) % 4) {
            case 0: cp = 0x20 + (seed >> 20) % 0x5f; break;
            case 1: cp = 0xa0 + (seed >> 20) % 0x700; break;
            case 2: cp = 0x3000 + (seed >> 20) % 0x5000; break;
            default: cp = 0x10000 + (seed >> 12) % 0x10000; break;
            }
            char b[4];
            if (cp < 0x80) {
                str_appendc(&in, (char)cp);
            } else if (cp < 0x800) {
                b[0] = (char)(0xc0 | (cp >> 6)); b[1] = (char)(0x80 | (cp & 0x3f));
                str_append(&in, b, 2);
            } else if (cp < 0x10000) {
                b[0] = (char)(0xe0 | (cp >> 12)); b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                b[2] = (char)(0x80 | (cp & 0x3f));
                str_append(&in, b, 3);
            } else {
                b[0] = (char)(0xf0 | (cp >> 18)); b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); b[3] = (char)(0x80 | (cp & 0x3f));
                str_append(&in, b, 4);
            }
        }
        str_clear(&m);
        str_clear(&u);
        CHECK(utf8_to_mutf7(in.s, in.len, &m) == 0);
        CHECK(mutf7_to_utf8(m.s, m.len, &u) == 0);
        CHECK(u.len == in.len && memcmp(u.s, in.s, in.len) == 0);
        str_free(&in);
    }
    str_free(&m);
    str_free(&u);
}

TEST(hostile_names)
{
    struct str err = STR_INIT, path = STR_INIT;
    static const char *const bad[] = {
        "", "..", ".", ".hidden", "a..b", "a.", "a/b", "../etc", "a/../../b", "x\ny",
        "tab\there", "del\x7f", "caf\xc3\xa9", "a*", "b%", "&Jjo!",
    };
    char longname[STORE_NAME_MAX + 2];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(store_name_check(bad[i], &err) < 0);
        CHECK(store_folder_path("/m", bad[i], &path, &err) < 0);
    }
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK(store_name_check(longname, &err) < 0);
    CHECK(store_name_check("INBOX", &err) == 0);
    CHECK(store_name_check("Lists.postern", &err) == 0);
    CHECK(store_name_check("Entw&APw-rfe", &err) == 0);
    CHECK(store_folder_path("/m", "inbox", &path, &err) == 0);
    CHECK_STR(path.s, "/m");
    CHECK(store_folder_path("/m", "Lists.postern", &path, &err) == 0);
    CHECK_STR(path.s, "/m/.Lists.postern");
    str_free(&err);
    str_free(&path);
}

TEST(wildcards)
{
    CHECK(store_wildmatch("*", "INBOX"));
    CHECK(store_wildmatch("*", "a.b.c"));
    CHECK(store_wildmatch("%", "a"));
    CHECK(!store_wildmatch("%", "a.b"));
    CHECK(store_wildmatch("a.%", "a.b"));
    CHECK(!store_wildmatch("a.%", "a.b.c"));
    CHECK(store_wildmatch("a.*", "a.b.c"));
    CHECK(store_wildmatch("%.%.c", "a.b.c"));
    CHECK(store_wildmatch("*c", "a.b.c"));
    CHECK(!store_wildmatch("*d", "a.b.c"));
    CHECK(store_wildmatch("inbox", "INBOX"));
    CHECK(store_wildmatch("InBoX.%", "INBOX.x"));
    CHECK(!store_wildmatch("sent", "Sent"));        /* only INBOX folds case */
    CHECK(store_wildmatch("%*%", "x.y"));
    CHECK(store_wildmatch("", "") && !store_wildmatch("", "a"));
    /* Hostile: a long run of wildcards stays polynomial and answers. */
    char pat[1001];
    memset(pat, '*', 999);
    pat[999] = 'z';
    pat[1000] = '\0';
    CHECK(!store_wildmatch(pat, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static bool listed(const struct store_list *l, const char *name, unsigned *attrs)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0) {
            *attrs = l->v[i].attrs;
            return true;
        }
    return false;
}

static void put(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(content, f);
        fclose(f);
    }
}

TEST(create_list_rename_delete)
{
    char md[600], p[800];
    struct str err = STR_INIT;
    struct store_list l;
    unsigned a = 0;
    char **subs;

    snprintf(md, sizeof(md), "%s/m1", unit_tmpdir());
    CHECK(store_folders_init(md, &err) == 0);
    snprintf(p, sizeof(p), "%s/.Sent/maildirfolder", md);
    CHECK(access(p, F_OK) == 0);
    snprintf(p, sizeof(p), "%s/.Drafts/cur", md);
    CHECK(access(p, F_OK) == 0);
    CHECK(store_folder_create(md, "Lists.postern", &err) == 0);
    CHECK(store_folder_create(md, "Lists.postern", &err) == 1);
    CHECK(store_folder_create(md, "INBOX", &err) < 0);
    CHECK(store_folder_create(md, "../evil", &err) < 0);

    CHECK(store_folder_list(md, "*", false, 0, &l, &err) == 0);
    CHECK(l.n == 8);                /* INBOX, 5 special, Lists (\Noselect), Lists.postern */
    CHECK_STR(l.n > 0 ? l.v[0].name : NULL, "INBOX");
    CHECK(listed(&l, "Lists", &a) && (a & STORE_LIST_NOSELECT) && (a & STORE_LIST_HASCHILDREN));
    CHECK(listed(&l, "Lists.postern", &a) && (a & STORE_LIST_HASNOCHILDREN));
    CHECK(listed(&l, "Sent", &a) && (a & STORE_LIST_SENT) && (a & STORE_LIST_SUBSCRIBED));
    CHECK(listed(&l, "Trash", &a) && (a & STORE_LIST_TRASH));
    store_list_free(&l);
    CHECK(store_folder_list(md, "%", false, 0, &l, &err) == 0);
    CHECK(l.n == 7 && listed(&l, "Lists", &a) && !listed(&l, "Lists.postern", &a));
    store_list_free(&l);

    /* Special use by CREATE-SPECIAL-USE overrides the name. */
    CHECK(store_folder_create(md, "Outbox", &err) == 0);
    CHECK(store_special_use_set(md, "Outbox", STORE_LIST_SENT, &err) == 0);
    CHECK(store_special_use(md, "Outbox") == STORE_LIST_SENT);
    CHECK(store_special_use(md, "Lists.postern") == 0);

    /* Rename with children, subscriptions follow. */
    CHECK(store_subscribe(md, "Lists.postern", true, &err) == 0);
    CHECK(store_folder_rename(md, "Lists", "Groups", &err) == 0);
    snprintf(p, sizeof(p), "%s/.Groups.postern/cur", md);
    CHECK(access(p, F_OK) == 0);
    CHECK(store_subs_read(md, &subs, &err) == 0);
    CHECK(store_subs_has(subs, "Groups.postern") && !store_subs_has(subs, "Lists.postern"));
    strv_free(subs);
    CHECK(store_folder_rename(md, "Groups.postern", "Sent", &err) < 0);     /* exists */
    CHECK(store_folder_rename(md, "Nope", "Other", &err) < 0);
    CHECK(store_folder_rename(md, "Groups", "Groups.sub", &err) < 0);
    CHECK(store_folder_rename(md, "Sent", "../x", &err) < 0);

    /* INBOX rename moves its messages and leaves INBOX there, empty. */
    snprintf(p, sizeof(p), "%s/new/1.M1P1.h", md);
    put(p, "Subject: a\n\nx\n");
    snprintf(p, sizeof(p), "%s/cur/2.M1P1.h:2,S", md);
    put(p, "Subject: b\n\nx\n");
    CHECK(store_folder_rename(md, "INBOX", "Old", &err) == 0);
    snprintf(p, sizeof(p), "%s/.Old/new/1.M1P1.h", md);
    CHECK(access(p, F_OK) == 0);
    snprintf(p, sizeof(p), "%s/.Old/cur/2.M1P1.h:2,S", md);
    CHECK(access(p, F_OK) == 0);
    snprintf(p, sizeof(p), "%s/cur/2.M1P1.h:2,S", md);
    CHECK(access(p, F_OK) != 0);
    CHECK(store_folder_rename(md, "INBOX", "Old", &err) < 0);

    /* Delete: gone from the listing, INBOX refused. */
    CHECK(store_folder_delete(md, "Old", &err) == 0);
    snprintf(p, sizeof(p), "%s/.Old", md);
    CHECK(access(p, F_OK) != 0);
    CHECK(store_folder_delete(md, "Old", &err) < 0);
    CHECK(store_folder_delete(md, "INBOX", &err) < 0);
    CHECK(store_folder_delete(md, "..", &err) < 0);
    str_free(&err);
}

TEST(subscriptions_file_format)
{
    char md[600], p[800], buf[256];
    struct str err = STR_INIT;
    char **subs;
    struct store_list l;
    unsigned a = 0;
    int fd;
    ssize_t n;

    snprintf(md, sizeof(md), "%s/m2", unit_tmpdir());
    CHECK(maildir_create(md, 0700, &err) == 0);
    CHECK(store_subscribe(md, "Lists.postern", true, &err) == 0);
    CHECK(store_subscribe(md, "Sent", true, &err) == 0);
    CHECK(store_subscribe(md, "Sent", true, &err) == 0);
    snprintf(p, sizeof(p), "%s/subscriptions", md);
    fd = open(p, O_RDONLY);
    n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    CHECK_STR(buf, "V\t2\n\nLists\tpostern\nSent\n");
    CHECK(store_subscribe(md, "Sent", false, &err) == 0);
    CHECK(store_subscribe(md, "a..b", true, &err) < 0);
    /* Version 1 files (plain names) are read; hostile lines skipped. */
    put(p, "Archive\nLists.x\n../../etc\n.hidden\n\nok\r\n");
    CHECK(store_subs_read(md, &subs, &err) == 0);
    CHECK(strv_len(subs) == 3 && store_subs_has(subs, "ok") && store_subs_has(subs, "Lists.x"));
    strv_free(subs);
    /* LSUB: subscribed only, missing ones \NonExistent. */
    CHECK(store_folder_create(md, "Archive", &err) == 0);
    CHECK(store_folder_list(md, "*", true, 0, &l, &err) == 0);
    CHECK(l.n == 3);
    CHECK(listed(&l, "Archive", &a) && !(a & STORE_LIST_NONEXISTENT) && (a & STORE_LIST_SUBSCRIBED));
    CHECK(listed(&l, "ok", &a) && (a & STORE_LIST_NONEXISTENT));
    store_list_free(&l);
    str_free(&err);
}
