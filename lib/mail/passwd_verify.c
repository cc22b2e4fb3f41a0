/* Password checks against crypt(3) hashes.  Trusts neither the password (client
 * bytes) nor the hash (map or shadow file): both are only handed to libcrypt, whose
 * answer is compared with the stored hash in constant time. */
#include "passwd_verify.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

/* A valid yescrypt setting at libcrypt's default cost; its salt is fixed and
 * public, the result is thrown away. */
#define DUMMY_SETTING "$y$j9T$Vb2rMcyUc8Lh4vPH0Q9qC/"

/* Hashes longer than this are not real crypt(3) output. */
#define HASH_MAX (CRYPT_OUTPUT_SIZE - 1)

static bool hash_usable(const char *hash)
{
    size_t len = strlen(hash);

    if (len == 0 || len > HASH_MAX || hash[0] == '!' || hash[0] == '*')
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)hash[i] <= ' ' || (unsigned char)hash[i] >= 0x7f)
            return false;
#ifdef CRYPT_CHECKSALT_AVAILABLE
    {
        int cs = crypt_checksalt(hash);
        if (cs != CRYPT_SALT_OK && cs != CRYPT_SALT_METHOD_LEGACY)
            return false;
    }
#endif
    return true;
}

/* Runs crypt_rn; the result (or NULL) lives in *data. */
static const char *hash_with(const char *password, const char *setting,
                             struct crypt_data *data)
{
    memset(data, 0, sizeof(*data));
    return crypt_rn(password, setting, data, (int)sizeof(*data));
}

bool passwd_verify(const char *password, const char *hash)
{
    struct crypt_data *data;
    const char *out;
    bool ok = false;

    if (password == NULL || hash == NULL)
        return false;
    data = xmalloc(sizeof(*data));
    if (!hash_usable(hash)) {
        /* still spend the time a real check would take */
        hash_with(password, DUMMY_SETTING, data);
        goto out;
    }
    out = hash_with(password, hash, data);
    /* libcrypt's failure tokens start with '*'; a usable hash never does */
    if (out != NULL && out[0] != '*') {
        size_t n = strlen(out);
        ok = n == strlen(hash) && CRYPTO_memcmp(out, hash, n) == 0;
    }
out:
    OPENSSL_cleanse(data, sizeof(*data));
    free(data);
    return ok;
}

void passwd_verify_dummy(const char *password)
{
    struct crypt_data *data = xmalloc(sizeof(*data));

    hash_with(password != NULL ? password : "", DUMMY_SETTING, data);
    OPENSSL_cleanse(data, sizeof(*data));
    free(data);
}
