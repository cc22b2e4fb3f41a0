/* A self-signed certificate for a new instance ("postern init"): EC P-256 key,
 * subject CN=hostname with subjectAltName DNS:hostname, valid 10 years, SHA-256.
 * Trusts its caller's host name only after checking it is a plain DNS name.  Both
 * files are written under a temporary name created with O_EXCL, synced, then renamed
 * into place, so a reader never sees half a key and the key is never world-readable. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "str.h"
#include "tls.h"

#define TLS_CERT_DAYS 3650

static void tls_cert_error(struct str *err, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    if (err == NULL) {
        ERR_clear_error();
        return;
    }
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        str_printf(err, "%s: %s", what, buf);
    } else {
        str_printf(err, "%s: failed", what);
    }
    ERR_clear_error();
}

/* A host name usable in a certificate: letters, digits, '-', '.', 1..253 bytes. */
static int tls_cert_name_ok(const char *name)
{
    size_t n = strlen(name), i;

    if (n == 0 || n > 253 || name[0] == '.' || name[0] == '-')
        return 0;
    for (i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
            return 0;
    }
    return 1;
}

static int tls_cert_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    int ok;

    if (ext == NULL)
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static X509 *tls_cert_build(EVP_PKEY *key, const char *hostname, struct str *err)
{
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX v3;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    struct str san = STR_INIT;
    int ok = 0;

    if (x == NULL)
        goto fail;
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto fail;
    serial[0] &= 0x7f;                  /* positive */
    serial[0] |= 0x01;                  /* and 16 bytes long */
    if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        goto fail;
    if (X509_set_version(x, X509_VERSION_3) != 1
        || X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), TLS_CERT_DAYS, 0, NULL) == NULL
        || X509_set_pubkey(x, key) != 1)
        goto fail;
    name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)hostname, -1, -1, 0) != 1
        || X509_set_issuer_name(x, name) != 1)
        goto fail;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    str_printf(&san, "DNS:%s", hostname);
    if (!tls_cert_add_ext(x, &v3, NID_subject_alt_name, san.s)
        || !tls_cert_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE")
        || !tls_cert_add_ext(x, &v3, NID_key_usage, "critical,digitalSignature,keyEncipherment")
        || !tls_cert_add_ext(x, &v3, NID_ext_key_usage, "serverAuth")
        || !tls_cert_add_ext(x, &v3, NID_subject_key_identifier, "hash"))
        goto fail;
    if (X509_sign(x, key, EVP_sha256()) <= 0)
        goto fail;
    ok = 1;
fail:
    if (!ok) {
        tls_cert_error(err, "certificate");
        X509_free(x);
        x = NULL;
    }
    BN_free(bn);
    str_free(&san);
    return x;
}

/* Writes one PEM file at path with exactly mode: tmp file with O_EXCL, fsync, rename. */
static int tls_cert_write(const char *path, mode_t mode, X509 *cert, EVP_PKEY *key,
                          struct str *err)
{
    struct str tmp = STR_INIT;
    FILE *fp = NULL;
    int fd, ok = 0;

    str_printf(&tmp, "%s.tmp%ld", path, (long)getpid());
    (void)unlink(tmp.s);
    fd = open(tmp.s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        if (err != NULL)
            str_printf(err, "%s: %s", tmp.s, strerror(errno));
        str_free(&tmp);
        return -1;
    }
    if (fchmod(fd, mode) < 0 || (fp = fdopen(fd, "w")) == NULL) {
        if (err != NULL)
            str_printf(err, "%s: %s", tmp.s, strerror(errno));
        close(fd);
        goto out;
    }
    if (cert != NULL ? PEM_write_X509(fp, cert) != 1
                     : PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) != 1) {
        tls_cert_error(err, tmp.s);
        fclose(fp);
        goto out;
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) < 0) {
        if (err != NULL)
            str_printf(err, "%s: %s", tmp.s, strerror(errno));
        fclose(fp);
        goto out;
    }
    if (fclose(fp) != 0) {
        if (err != NULL)
            str_printf(err, "%s: %s", tmp.s, strerror(errno));
        goto out;
    }
    if (rename(tmp.s, path) < 0) {
        if (err != NULL)
            str_printf(err, "rename %s: %s", path, strerror(errno));
        goto out;
    }
    ok = 1;
out:
    if (!ok)
        (void)unlink(tmp.s);
    str_free(&tmp);
    return ok ? 0 : -1;
}

int tls_make_self_signed(const char *hostname, const char *cert_file, const char *key_file,
                         struct str *err)
{
    EVP_PKEY *key;
    X509 *cert;
    int rc = -1;

    if (hostname == NULL || !tls_cert_name_ok(hostname)) {
        if (err != NULL)
            str_printf(err, "not a usable host name for a certificate: \"%s\"",
                       hostname != NULL ? hostname : "");
        return -1;
    }
    ERR_clear_error();
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL) {
        tls_cert_error(err, "key generation");
        return -1;
    }
    if ((cert = tls_cert_build(key, hostname, err)) == NULL) {
        EVP_PKEY_free(key);
        return -1;
    }
    if (tls_cert_write(key_file, 0600, NULL, key, err) == 0
        && tls_cert_write(cert_file, 0644, cert, NULL, err) == 0)
        rc = 0;
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}
