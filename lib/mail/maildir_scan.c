/* A snapshot of a Maildir's messages (see maildir_scan.h).  Trusts nothing in the
 * directory: names are bounded by the file system (NAME_MAX), sizes in names are
 * parsed strictly with overflow checks, and a file that vanishes while we look is
 * simply not listed. */
#include "maildir_scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "str.h"
#include "xmalloc.h"

void maildir_list_init(struct maildir_list *ml)
{
    memset(ml, 0, sizeof(*ml));
}

void maildir_list_free(struct maildir_list *ml)
{
    free(ml->dir);
    free(ml->v);
    free(ml->names);
    memset(ml, 0, sizeof(*ml));
}

const char *maildir_msg_path(const struct maildir_list *ml, size_t i)
{
    return ml->names + ml->v[i].name;
}

/* The base name: after "cur/" or "new/", up to ':' (its length in *len). */
static const char *base_name(const char *path, size_t *len)
{
    const char *b = strchr(path, '/');
    const char *colon;

    b = b != NULL ? b + 1 : path;
    colon = strchr(b, ':');
    *len = colon != NULL ? (size_t)(colon - b) : strlen(b);
    return b;
}

void maildir_msg_uid(const struct maildir_list *ml, size_t i, char *buf)
{
    size_t len;
    const char *b = base_name(maildir_msg_path(ml, i), &len);
    bool plain = len > 0 && len <= MAILDIR_UID_MAX;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";

    for (size_t k = 0; plain && k < len; k++)
        if ((unsigned char)b[k] < 0x21 || (unsigned char)b[k] > 0x7e)
            plain = false;
    if (plain) {
        memcpy(buf, b, len);
        buf[len] = '\0';
        return;
    }
    if (EVP_Digest(b, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen * 2 > MAILDIR_UID_MAX)
        mdlen = 0;              /* cannot happen with SHA-256 */
    for (unsigned int k = 0; k < mdlen; k++) {
        buf[2 * k] = hex[md[k] >> 4];
        buf[2 * k + 1] = hex[md[k] & 15];
    }
    buf[2 * mdlen] = '\0';
}

bool maildir_name_size(const char *name, char key, uint64_t *out)
{
    size_t len;
    const char *b = base_name(name, &len);

    return maildir_base_size(b, len, key, out);
}

bool maildir_base_size(const char *b, size_t len, char key, uint64_t *out)
{
    const char *comma = memchr(b, ',', len);     /* the sizes come after the unique part */

    if (comma == NULL)
        return false;
    for (size_t i = (size_t)(comma - b); i + 3 <= len; i++) {
        uint64_t v = 0;
        size_t k;

        if (b[i] != ',' || b[i + 1] != key || b[i + 2] != '=')
            continue;
        for (k = i + 3; k < len && b[k] >= '0' && b[k] <= '9'; k++) {
            if (v > (UINT64_MAX - (uint64_t)(b[k] - '0')) / 10)
                return false;
            v = v * 10 + (uint64_t)(b[k] - '0');
        }
        if (k == i + 3 || (k < len && b[k] != ','))
            return false;
        *out = v;
        return true;
    }
    return false;
}

int maildir_crlf_size(int fd, uint64_t *size, uint64_t *disk_size)
{
    char buf[16384];
    uint64_t n = 0, extra = 0;
    char prev = '\0';

    if (lseek(fd, 0, SEEK_SET) < 0)
        return -1;
    for (;;) {
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (got == 0)
            break;
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] == '\n' && prev != '\r')
                extra++;
            prev = buf[i];
        }
        n += (uint64_t)got;
    }
    *size = n + extra;
    if (disk_size != NULL)
        *disk_size = n;
    return 0;
}

/* Appends "sub/name" to the names buffer and a new entry; returns the entry. */
static struct maildir_msg *list_add(struct maildir_list *ml, const char *sub, const char *name)
{
    size_t need = strlen(sub) + 1 + strlen(name) + 1;
    struct maildir_msg *m;

    if (ml->names_len + need > UINT32_MAX)
        return NULL;
    if (ml->names_len + need > ml->names_cap) {
        size_t cap = ml->names_cap ? ml->names_cap : 4096;
        while (cap < ml->names_len + need)
            cap *= 2;
        ml->names = xrealloc(ml->names, cap);
        ml->names_cap = cap;
    }
    if (ml->n == ml->cap) {
        ml->cap = ml->cap ? ml->cap * 2 : 64;
        ml->v = xreallocarray(ml->v, ml->cap, sizeof(*ml->v));
    }
    m = &ml->v[ml->n++];
    memset(m, 0, sizeof(*m));
    m->name = (uint32_t)ml->names_len;
    {
        size_t sl = strlen(sub), nl = strlen(name);
        char *p = ml->names + ml->names_len;
        memcpy(p, sub, sl);
        p[sl] = '/';
        memcpy(p + sl + 1, name, nl + 1);
    }
    ml->names_len += need;
    return m;
}

/* Fills in the sizes of the last entry; false when the file has gone. */
static bool entry_sizes(struct maildir_list *ml, int dirfd, struct maildir_msg *m)
{
    const char *path = ml->names + m->name;
    bool has_w, has_s;
    int fd;

    has_w = maildir_name_size(path, 'W', &m->size);
    has_s = maildir_name_size(path, 'S', &m->disk_size);
    if (has_w && has_s)
        return true;
    fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno != ENOENT;
    {
        struct stat sb;
        uint64_t size, disk;
        if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
            close(fd);
            return false;
        }
        if (!has_w) {
            if (maildir_crlf_size(fd, &size, &disk) == 0) {
                m->size = size;
                if (!has_s)
                    m->disk_size = disk;
            } else {
                m->size = (uint64_t)sb.st_size;
            }
        }
        if (!has_s && has_w)
            m->disk_size = (uint64_t)sb.st_size;
    }
    close(fd);
    return true;
}

static int scan_sub(struct maildir_list *ml, int dirfd, const char *sub, unsigned flags,
                    size_t max_msgs, struct str *err)
{
    DIR *d;
    struct dirent *e;
    int sfd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool move = strcmp(sub, "new") == 0 && (flags & MAILDIR_SCAN_MOVE_NEW);
    struct str to = STR_INIT, from = STR_INIT;

    if (sfd < 0 || (d = fdopendir(sfd)) == NULL) {
        int en = errno;
        if (sfd >= 0)
            close(sfd);
        str_printf(err, "open %s/%s: %s", ml->dir, sub, strerror(en));
        errno = en;
        return -1;
    }
    while ((errno = 0, e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        const char *where = sub;
        struct maildir_msg *m;

        if (name[0] == '.' || (e->d_type != DT_REG && e->d_type != DT_UNKNOWN))
            continue;
        if (max_msgs > 0 && ml->n >= max_msgs) {
            closedir(d);
            str_free(&to);
            str_free(&from);
            str_printf(err, "%s: more than %zu messages", ml->dir, max_msgs);
            errno = EFBIG;
            return -1;
        }
        if (move) {
            str_clear(&from);
            str_clear(&to);
            str_printf(&from, "new/%s", name);
            str_printf(&to, "cur/%s%s", name, strchr(name, ':') ? "" : ":2,");
            if (renameat(dirfd, from.s, dirfd, to.s) == 0) {
                where = "cur";
                name = to.s + 4;
            } else if (errno == ENOENT) {
                continue;       /* taken by another reader */
            }
        }
        m = list_add(ml, where, name);
        if (m == NULL) {
            closedir(d);
            str_free(&to);
            str_free(&from);
            str_printf(err, "%s: too many names", ml->dir);
            errno = EFBIG;
            return -1;
        }
        if (!entry_sizes(ml, dirfd, m)) {
            ml->names_len = m->name;
            ml->n--;
        }
    }
    if (errno != 0) {
        int en = errno;
        closedir(d);
        str_free(&to);
        str_free(&from);
        str_printf(err, "read %s/%s: %s", ml->dir, sub, strerror(en));
        errno = en;
        return -1;
    }
    closedir(d);
    str_free(&to);
    str_free(&from);
    return 0;
}

/* Delivery time at the start of a name, for ordering. */
static uint64_t name_time(const char *b)
{
    uint64_t v = 0;

    for (; *b >= '0' && *b <= '9'; b++) {
        if (v > (UINT64_MAX - 9) / 10)
            break;
        v = v * 10 + (uint64_t)(*b - '0');
    }
    return v;
}

/* Sort keys: the delivery time parsed once per message, not once per comparison. */
struct sort_key {
    uint64_t time;
    const char *base;           /* the name after "cur/" or "new/" */
    size_t idx;
};

static int key_cmp(const void *a, const void *b)
{
    const struct sort_key *ka = a, *kb = b;

    if (ka->time != kb->time)
        return ka->time < kb->time ? -1 : 1;
    return strcmp(ka->base, kb->base);
}

static void list_sort(struct maildir_list *ml)
{
    struct sort_key *k = xreallocarray(NULL, ml->n, sizeof(*k));
    struct maildir_msg *v = xreallocarray(NULL, ml->n, sizeof(*v));

    for (size_t i = 0; i < ml->n; i++) {
        k[i].base = strchr(ml->names + ml->v[i].name, '/') + 1;
        k[i].time = name_time(k[i].base);
        k[i].idx = i;
    }
    qsort(k, ml->n, sizeof(*k), key_cmp);
    for (size_t i = 0; i < ml->n; i++)
        v[i] = ml->v[k[i].idx];
    free(ml->v);
    ml->v = v;
    ml->cap = ml->n;
    free(k);
}

int maildir_scan(const char *dir, unsigned flags, size_t max_msgs, struct maildir_list *ml,
                 struct str *err)
{
    int dirfd;

    maildir_list_free(ml);
    ml->dir = xstrdup(dir);
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        int en = errno;
        str_printf(err, "open %s: %s", dir, strerror(en));
        errno = en;
        return -1;
    }
    /* cur/ first: what the scan of new/ moves into cur/ must not be seen twice. */
    if (scan_sub(ml, dirfd, "cur", flags, max_msgs, err) < 0
        || scan_sub(ml, dirfd, "new", flags, max_msgs, err) < 0) {
        int en = errno;
        close(dirfd);
        errno = en;
        return -1;
    }
    close(dirfd);
    if (ml->n > 1)
        list_sort(ml);
    ml->total = 0;
    for (size_t i = 0; i < ml->n; i++)
        ml->total += ml->v[i].size;
    return 0;
}
