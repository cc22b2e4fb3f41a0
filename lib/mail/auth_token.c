/* Login tokens: minting, verification, and the key file.  A token to verify comes
 * from a client that may have forged or altered it: its length and alphabet are
 * checked, the MAC is compared in constant time before any field is parsed.  The key
 * file is ours (made by auth) but still checked for type, size, owner and mode. */
#include "auth_token.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAC_SIZE 32
#define TOKEN_VERSION "1"
/* Tolerated clock difference for an expiry in the future. */
#define EXPIRY_SLACK 5

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void auth_token_init(struct auth_token *t)
{
    memset(t, 0, sizeof(*t));
    str_init(&t->user);
    str_init(&t->maildir);
}

void auth_token_free(struct auth_token *t)
{
    str_free(&t->user);
    str_free(&t->maildir);
    memset(t, 0, sizeof(*t));
}

static void b64url_encode(const unsigned char *p, size_t n, struct str *out)
{
    size_t i = 0;

    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        str_appendc(out, b64url[v >> 18 & 63]);
        str_appendc(out, b64url[v >> 12 & 63]);
        str_appendc(out, b64url[v >> 6 & 63]);
        str_appendc(out, b64url[v & 63]);
    }
    if (n - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        str_appendc(out, b64url[v >> 18 & 63]);
        str_appendc(out, b64url[v >> 12 & 63]);
    } else if (n - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        str_appendc(out, b64url[v >> 18 & 63]);
        str_appendc(out, b64url[v >> 12 & 63]);
        str_appendc(out, b64url[v >> 6 & 63]);
    }
}

static int b64url_value(char c)
{
    const char *p = c != '\0' ? strchr(b64url, c) : NULL;
    return p != NULL ? (int)(p - b64url) : -1;
}

/* Unpadded base64url; the unused low bits of the last character must be zero, so
 * each payload has exactly one encoding.  0, or -1. */
static int b64url_decode(const char *s, size_t n, struct str *out)
{
    unsigned acc = 0;
    int bits = 0;

    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            str_appendc(out, (char)(acc >> bits & 0xff));
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return 0;
}

static int hex_decode(const char *s, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i += 2) {
        int hi, lo;
        char c1 = s[i], c2 = s[i + 1];

        hi = c1 >= '0' && c1 <= '9' ? c1 - '0' : c1 >= 'a' && c1 <= 'f' ? c1 - 'a' + 10 : -1;
        lo = c2 >= '0' && c2 <= '9' ? c2 - '0' : c2 >= 'a' && c2 <= 'f' ? c2 - 'a' + 10 : -1;
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int mac_compute(const unsigned char *key, const void *data, size_t n,
                       unsigned char mac[MAC_SIZE])
{
    unsigned int len = 0;

    if (HMAC(EVP_sha256(), key, AUTH_TOKEN_KEY_SIZE, data, n, mac, &len) == NULL
        || len != MAC_SIZE)
        return -1;
    return 0;
}

static bool has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

int auth_token_mint(const unsigned char key[AUTH_TOKEN_KEY_SIZE], const struct auth_token *t,
                    struct str *out)
{
    struct str payload = STR_INIT;
    unsigned char mac[MAC_SIZE];
    const char *user = t->user.s != NULL ? t->user.s : "";
    const char *maildir = t->maildir.s != NULL ? t->maildir.s : "";
    int rc = -1;

    str_clear(out);
    if (t->user.len == 0 || strlen(user) != t->user.len || strchr(user, '|') != NULL
        || has_ctl(user, t->user.len) || strlen(maildir) != t->maildir.len
        || has_ctl(maildir, t->maildir.len) || t->expiry < 0)
        return -1;
    str_printf(&payload, TOKEN_VERSION "|%lld|%lu|%lu|%s|%s", t->expiry,
               (unsigned long)t->uid, (unsigned long)t->gid, user, maildir);
    if (mac_compute(key, payload.s, payload.len, mac) < 0)
        goto out;
    b64url_encode((const unsigned char *)payload.s, payload.len, out);
    str_appendc(out, '.');
    for (size_t i = 0; i < MAC_SIZE; i++)
        str_printf(out, "%02x", mac[i]);
    if (out->len > AUTH_TOKEN_MAX) {
        str_clear(out);
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(mac, sizeof(mac));
    str_free(&payload);
    return rc;
}

/* A decimal number without sign or leading zeros, at most max: 0, or -1. */
static int parse_num(const char *s, size_t n, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;

    if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (max - (unsigned)(s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Splits the authenticated payload into t: 0, or -1. */
static int payload_parse(const struct str *p, struct auth_token *t)
{
    const char *s = p->s, *end = p->s + p->len, *field[5];
    size_t flen[5];
    unsigned long long v;

    if (strlen(s) != p->len || p->len < 2 || memcmp(s, TOKEN_VERSION "|", 2) != 0)
        return -1;
    s += 2;
    for (int i = 0; i < 4; i++) {
        const char *bar = memchr(s, '|', (size_t)(end - s));
        if (bar == NULL)
            return -1;
        field[i] = s;
        flen[i] = (size_t)(bar - s);
        s = bar + 1;
    }
    field[4] = s;
    flen[4] = (size_t)(end - s);
    if (parse_num(field[0], flen[0], (unsigned long long)LLONG_MAX, &v) < 0)
        return -1;
    t->expiry = (long long)v;
    if (parse_num(field[1], flen[1], (uid_t)-1, &v) < 0)
        return -1;
    t->uid = (uid_t)v;
    if (parse_num(field[2], flen[2], (gid_t)-1, &v) < 0)
        return -1;
    t->gid = (gid_t)v;
    if (flen[3] == 0)
        return -1;
    str_set(&t->user, field[3], flen[3]);
    str_set(&t->maildir, field[4], flen[4]);
    return 0;
}

int auth_token_verify(const unsigned char key[AUTH_TOKEN_KEY_SIZE], const char *token,
                      long long now, struct auth_token *t)
{
    struct str payload = STR_INIT;
    unsigned char mac[MAC_SIZE], want[MAC_SIZE];
    const char *dot;
    size_t n, enc;
    int ok = 0;

    if (token == NULL || (n = strnlen(token, AUTH_TOKEN_MAX + 1)) > AUTH_TOKEN_MAX)
        return 0;
    dot = strchr(token, '.');
    if (dot == NULL || n - (size_t)(dot - token) - 1 != 2 * MAC_SIZE)
        return 0;
    enc = (size_t)(dot - token);
    if (b64url_decode(token, enc, &payload) < 0 || payload.len == 0
        || hex_decode(dot + 1, 2 * MAC_SIZE, mac) < 0)
        goto out;
    if (mac_compute(key, payload.s, payload.len, want) < 0)
        goto out;
    if (CRYPTO_memcmp(mac, want, MAC_SIZE) != 0)
        goto out;
    if (payload_parse(&payload, t) < 0)
        goto out;
    if (now > t->expiry || t->expiry > now + AUTH_TOKEN_LIFETIME + EXPIRY_SLACK)
        goto out;
    ok = 1;
out:
    OPENSSL_cleanse(want, sizeof(want));
    if (payload.s != NULL)
        OPENSSL_cleanse(payload.s, payload.len);
    str_free(&payload);
    return ok;
}

/* Reads an existing key file: 1 read, 0 absent, -1 error. */
static int key_read(const char *path, unsigned char *key, struct str *err)
{
    struct stat st;
    ssize_t got;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        str_printf(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        str_printf(err, "fstat %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || st.st_size != AUTH_TOKEN_KEY_SIZE) {
        str_printf(err, "%s: not a regular file of %d bytes", path, AUTH_TOKEN_KEY_SIZE);
        goto fail;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        str_printf(err, "%s: must be owned by uid %lu with mode 0600", path,
                   (unsigned long)geteuid());
        goto fail;
    }
    do
        got = read(fd, key, AUTH_TOKEN_KEY_SIZE);
    while (got < 0 && errno == EINTR);
    if (got != AUTH_TOKEN_KEY_SIZE) {
        str_printf(err, "read %s: %s", path, got < 0 ? strerror(errno) : "short read");
        goto fail;
    }
    close(fd);
    return 1;
fail:
    close(fd);
    return -1;
}

/* Makes a new key under a temporary name and links it into place; losing the race
 * to another process is fine (EEXIST): its key is then the one. */
static int key_create(const char *path, struct str *err)
{
    unsigned char key[AUTH_TOKEN_KEY_SIZE];
    struct str tmp = STR_INIT;
    int fd = -1, rc = -1;
    ssize_t put;

    str_printf(&tmp, "%s.%ld.tmp", path, (long)getpid());
    unlink(tmp.s);
    if (RAND_bytes(key, sizeof(key)) != 1) {
        str_sets(err, "RAND_bytes failed");
        goto out;
    }
    fd = open(tmp.s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        str_printf(err, "create %s: %s", tmp.s, strerror(errno));
        goto out;
    }
    do
        put = write(fd, key, sizeof(key));
    while (put < 0 && errno == EINTR);
    if (put != (ssize_t)sizeof(key) || fsync(fd) < 0) {
        str_printf(err, "write %s: %s", tmp.s, put < 0 ? strerror(errno) : "short write");
        goto out;
    }
    if (link(tmp.s, path) < 0 && errno != EEXIST) {
        str_printf(err, "link %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp.s);
    }
    OPENSSL_cleanse(key, sizeof(key));
    str_free(&tmp);
    return rc;
}

int auth_token_key_load(const char *path, unsigned char key[AUTH_TOKEN_KEY_SIZE],
                        struct str *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = key_read(path, key, err);

        if (rc != 0)
            return rc > 0 ? 0 : -1;
        if (key_create(path, err) < 0)
            return -1;
    }
    str_printf(err, "%s: key file vanished", path);
    return -1;
}
