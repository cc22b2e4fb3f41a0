/* Unit tests of password verification (lib/mail/passwd_verify.c) and login tokens
 * (lib/mail/auth_token.c). */
#include <crypt.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth_token.h"
#include "passwd_verify.h"
#include "str.h"
#include "unit.h"

static char *make_hash(const char *prefix, const char *password)
{
    char *salt = crypt_gensalt_ra(prefix, 0, NULL, 0);
    void *data = NULL;
    int size = 0;
    char *h, *copy = NULL;

    if (salt == NULL)
        return NULL;
    h = crypt_ra(password, salt, &data, &size);
    if (h != NULL && h[0] != '*')
        copy = strdup(h);
    free(salt);
    free(data);
    return copy;
}

static void check_method(const char *prefix)
{
    char *h = make_hash(prefix, "correct horse");

    CHECK(h != NULL);
    if (h == NULL)
        return;
    CHECK(strncmp(h, prefix, strlen(prefix)) == 0);
    CHECK(passwd_verify("correct horse", h));
    CHECK(!passwd_verify("correct hors", h));
    CHECK(!passwd_verify("correct horse ", h));
    CHECK(!passwd_verify("", h));
    CHECK(!passwd_verify("Correct horse", h));
    /* a truncated or altered hash never matches */
    {
        char *t = strdup(h);
        t[strlen(t) - 1] = t[strlen(t) - 1] == 'A' ? 'B' : 'A';
        CHECK(!passwd_verify("correct horse", t));
        t[strlen(t) - 5] = '\0';
        CHECK(!passwd_verify("correct horse", t));
        free(t);
    }
    free(h);
}

TEST(verify_yescrypt) { check_method("$y$"); }
TEST(verify_sha512) { check_method("$6$"); }
TEST(verify_bcrypt) { check_method("$2b$"); }

TEST(verify_malformed)
{
    static const char *const bad[] = {
        "", "*", "!", "!!", "*LK*", "$y$", "$y$j9T$", "$6$", "$6$salt", "$2b$",
        "$2b$12$", "$", "$$$", "x", "!$6$abc$def", "$9$unknown$method",
        "$y$j9T$Vb2rMcyUc8Lh4vPH0Q9qC/",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(!passwd_verify("", bad[i]));
        CHECK(!passwd_verify("password", bad[i]));
        CHECK(!passwd_verify(bad[i], bad[i]));
    }
    CHECK(!passwd_verify(NULL, "$y$"));
    CHECK(!passwd_verify("x", NULL));
    /* a locked account: the valid hash after '!' must not match */
    {
        char *h = make_hash("$6$", "pw");
        struct str locked = STR_INIT;
        CHECK(h != NULL);
        if (h != NULL) {
            str_printf(&locked, "!%s", h);
            CHECK(passwd_verify("pw", h));
            CHECK(!passwd_verify("pw", locked.s));
        }
        str_free(&locked);
        free(h);
    }
    passwd_verify_dummy("whatever");
    passwd_verify_dummy(NULL);
}

static const unsigned char key1[AUTH_TOKEN_KEY_SIZE] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[AUTH_TOKEN_KEY_SIZE] = "0123456789abcdef0123456789abcdeF";

static void token_fill(struct auth_token *t, const char *user, const char *maildir,
                       long long expiry)
{
    str_sets(&t->user, user);
    str_sets(&t->maildir, maildir);
    t->uid = 1001;
    t->gid = 1002;
    t->expiry = expiry;
}

TEST(token_roundtrip)
{
    struct auth_token t, got;
    struct str tok = STR_INIT;

    auth_token_init(&t);
    auth_token_init(&got);
    token_fill(&t, "alice@example.test", "/srv/mail/example.test/alice|x/", 1000060);
    CHECK(auth_token_mint(key1, &t, &tok) == 0);
    CHECK(tok.len > 64 && strchr(tok.s, '.') != NULL);
    for (size_t i = 0; i < tok.len; i++)
        CHECK(tok.s[i] > ' ' && tok.s[i] < 0x7f && tok.s[i] != '=' && tok.s[i] != '+'
              && tok.s[i] != '/');
    CHECK(auth_token_verify(key1, tok.s, 1000000, &got) == 1);
    CHECK_STR(got.user.s, "alice@example.test");
    CHECK_STR(got.maildir.s, "/srv/mail/example.test/alice|x/");
    CHECK(got.uid == 1001);
    CHECK(got.gid == 1002);
    CHECK(got.expiry == 1000060);
    /* the last valid second, and one after */
    CHECK(auth_token_verify(key1, tok.s, 1000060, &got) == 1);
    CHECK(auth_token_verify(key1, tok.s, 1000061, &got) == 0);
    /* an expiry too far in the future is not believed */
    CHECK(auth_token_verify(key1, tok.s, 1000060 - AUTH_TOKEN_LIFETIME - 100, &got) == 0);
    /* another key */
    CHECK(auth_token_verify(key2, tok.s, 1000000, &got) == 0);
    str_free(&tok);
    auth_token_free(&t);
    auth_token_free(&got);
}

TEST(token_tamper)
{
    struct auth_token t, got;
    struct str tok = STR_INIT, bad = STR_INIT;
    static const char alphabet[] = "Aa0-_f.x=";

    auth_token_init(&t);
    auth_token_init(&got);
    token_fill(&t, "bob@example.test", "/m/bob/", 500);
    CHECK(auth_token_mint(key1, &t, &tok) == 0);
    /* every single-character change is refused */
    for (size_t i = 0; i < tok.len; i++) {
        for (const char *a = alphabet; *a; a++) {
            if (tok.s[i] == *a)
                continue;
            str_set(&bad, tok.s, tok.len);
            bad.s[i] = *a;
            CHECK(auth_token_verify(key1, bad.s, 480, &got) == 0);
        }
    }
    /* truncations and extensions */
    for (size_t n = 0; n < tok.len; n++) {
        str_set(&bad, tok.s, n);
        CHECK(auth_token_verify(key1, bad.s, 480, &got) == 0);
    }
    str_set(&bad, tok.s, tok.len);
    str_appends(&bad, "0");
    CHECK(auth_token_verify(key1, bad.s, 480, &got) == 0);
    CHECK(auth_token_verify(key1, "", 480, &got) == 0);
    CHECK(auth_token_verify(key1, NULL, 480, &got) == 0);
    CHECK(auth_token_verify(key1, ".", 480, &got) == 0);
    /* a different user or path under the same MAC */
    {
        struct auth_token t2;
        struct str tok2 = STR_INIT;
        const char *dot1 = strchr(tok.s, '.'), *dot2;

        auth_token_init(&t2);
        token_fill(&t2, "bob@example.tesu", "/m/bob/", 500);
        CHECK(auth_token_mint(key1, &t2, &tok2) == 0);
        dot2 = strchr(tok2.s, '.');
        str_set(&bad, tok2.s, (size_t)(dot2 - tok2.s));
        str_appends(&bad, dot1);
        CHECK(auth_token_verify(key1, bad.s, 480, &got) == 0);
        str_free(&tok2);
        auth_token_free(&t2);
    }
    CHECK(auth_token_verify(key1, tok.s, 480, &got) == 1);
    str_free(&tok);
    str_free(&bad);
    auth_token_free(&t);
    auth_token_free(&got);
}

TEST(token_refuses_bad_fields)
{
    struct auth_token t;
    struct str tok = STR_INIT;

    auth_token_init(&t);
    token_fill(&t, "a|b@example.test", "/m/", 10);
    CHECK(auth_token_mint(key1, &t, &tok) == -1);
    token_fill(&t, "", "/m/", 10);
    CHECK(auth_token_mint(key1, &t, &tok) == -1);
    token_fill(&t, "a\nb", "/m/", 10);
    CHECK(auth_token_mint(key1, &t, &tok) == -1);
    token_fill(&t, "ab", "/m/\r", 10);
    CHECK(auth_token_mint(key1, &t, &tok) == -1);
    str_free(&tok);
    auth_token_free(&t);
}

TEST(token_key_file)
{
    struct str path = STR_INIT, err = STR_INIT;
    unsigned char k1[AUTH_TOKEN_KEY_SIZE], k2[AUTH_TOKEN_KEY_SIZE];
    struct stat st;
    int fd;

    str_printf(&path, "%s/auth.key", unit_tmpdir());
    CHECK(auth_token_key_load(path.s, k1, &err) == 0);
    CHECK(stat(path.s, &st) == 0 && st.st_size == AUTH_TOKEN_KEY_SIZE
          && (st.st_mode & 0777) == 0600);
    CHECK(auth_token_key_load(path.s, k2, &err) == 0);
    CHECK(memcmp(k1, k2, sizeof(k1)) == 0);
    /* a key file that others can read is refused */
    CHECK(chmod(path.s, 0644) == 0);
    CHECK(auth_token_key_load(path.s, k2, &err) == -1);
    CHECK(chmod(path.s, 0600) == 0);
    /* and one of the wrong size */
    fd = open(path.s, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1);
    if (fd >= 0)
        close(fd);
    CHECK(auth_token_key_load(path.s, k2, &err) == -1);
    str_free(&path);
    str_free(&err);
}
