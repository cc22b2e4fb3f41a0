/* Folder names and folder operations on a Maildir++ tree (see store_folder.h).
 * Names come from clients: each is checked by store_name_check before it becomes a
 * path, and every directory below the Maildir is opened relative to the Maildir's
 * descriptor with O_NOFOLLOW, so no name and no planted link leads outside it. */
#include "store_folder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "maildir.h"
#include "mutf7.h"
#include "str.h"
#include "xmalloc.h"

static const char *const subdirs[] = { "tmp", "new", "cur" };

/* Sets err from errno ("what NAME: reason") and returns -1, errno kept. */
static int fail(struct str *err, const char *what, const char *name)
{
    int e = errno;

    str_clear(err);
    str_printf(err, "%s %s: %s", what, name, strerror(e));
    errno = e;
    return -1;
}

static int refuse(struct str *err, int e, const char *why)
{
    str_sets(err, why);
    errno = e;
    return -1;
}

bool store_name_is_inbox(const char *name)
{
    return strcasecmp(name, "INBOX") == 0;
}

int store_name_check(const char *name, struct str *err)
{
    size_t len = strlen(name);

    if (len == 0)
        return refuse(err, EINVAL, "empty folder name");
    if (len > STORE_NAME_MAX)
        return refuse(err, ENAMETOOLONG, "folder name too long");
    if (store_name_is_inbox(name))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c < 0x20 || c == 0x7f)
            return refuse(err, EINVAL, "control character in folder name");
        if (c >= 0x80)
            return refuse(err, EINVAL, "8-bit byte in folder name (not modified UTF-7)");
        if (c == '/')
            return refuse(err, EINVAL, "'/' in folder name");
        if (c == '*' || c == '%')
            return refuse(err, EINVAL, "wildcard in folder name");
        if (c == STORE_SEP && (i == 0 || i + 1 == len || name[i + 1] == STORE_SEP))
            return refuse(err, EINVAL, "empty component in folder name");
    }
    if (!mutf7_valid(name, len))
        return refuse(err, EINVAL, "folder name is not valid modified UTF-7");
    return 0;
}

int store_folder_path(const char *maildir, const char *name, struct str *path,
                      struct str *err)
{
    if (store_name_check(name, err) < 0)
        return -1;
    str_sets(path, maildir);
    if (!store_name_is_inbox(name)) {
        str_append(path, "/.", 2);
        str_appends(path, name);
    }
    return 0;
}

static int open_dir(const char *path, struct str *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        fail(err, "open", path);
    return fd;
}

int store_folder_create(const char *maildir, const char *name, struct str *err)
{
    struct str dname = STR_INIT;
    int top, fd = -1, rc = 0;

    if (store_name_check(name, err) < 0)
        return -1;
    if (store_name_is_inbox(name))
        return refuse(err, EEXIST, "INBOX always exists");
    if ((top = open_dir(maildir, err)) < 0)
        return -1;
    str_printf(&dname, ".%s", name);
    if (mkdirat(top, dname.s, 0700) < 0) {
        if (errno != EEXIST)
            rc = fail(err, "mkdir", dname.s);
        else
            rc = 1;
    }
    if (rc >= 0) {
        fd = openat(top, dname.s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            rc = fail(err, "open", dname.s);
    }
    for (size_t i = 0; rc >= 0 && i < 3; i++)
        if (mkdirat(fd, subdirs[i], 0700) < 0 && errno != EEXIST)
            rc = fail(err, "mkdir", subdirs[i]);
    if (rc >= 0) {
        int f = openat(fd, "maildirfolder", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (f < 0)
            rc = fail(err, "create", "maildirfolder");
        else
            close(f);
    }
    if (rc >= 0 && (fsync(fd) < 0 || fsync(top) < 0))
        rc = fail(err, "fsync", dname.s);
    if (fd >= 0)
        close(fd);
    close(top);
    str_free(&dname);
    return rc;
}

/* Removes dirfd/name and what it holds, at most depth levels of directories, never
 * following a link.  0, or -1 (errno). */
static int remove_tree(int dfd, const char *name, int depth)
{
    int fd;
    DIR *d;
    struct dirent *de;
    int rc = 0;

    if (unlinkat(dfd, name, 0) == 0)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return errno == ENOENT ? 0 : -1;
    if (depth <= 0) {
        errno = ENOTEMPTY;
        return -1;
    }
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if ((d = fdopendir(fd)) == NULL) {
        close(fd);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (remove_tree(dirfd(d), de->d_name, depth - 1) < 0)
            rc = -1;
    }
    closedir(d);
    if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0)
        rc = -1;
    return rc;
}

int store_folder_delete(const char *maildir, const char *name, struct str *err)
{
    struct str from = STR_INIT, tmp = STR_INIT;
    int top, rc = 0;
    struct stat st;

    if (store_name_check(name, err) < 0)
        return -1;
    if (store_name_is_inbox(name))
        return refuse(err, EPERM, "INBOX cannot be deleted");
    if ((top = open_dir(maildir, err)) < 0)
        return -1;
    str_printf(&from, ".%s", name);
    /* Out of sight first (a name no listing accepts), then removed. */
    str_printf(&tmp, "..postern-deleting.%ld.%s", (long)getpid(), name);
    if (fstatat(top, from.s, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)) {
        if (errno == 0 || !S_ISDIR(st.st_mode))
            errno = ENOENT;
        rc = fail(err, "no such folder", name);
    } else if (renameat(top, from.s, top, tmp.s) < 0) {
        rc = fail(err, "rename", from.s);
    } else {
        if (remove_tree(top, tmp.s, 2) < 0)
            rc = fail(err, "remove", tmp.s);
        fsync(top);
    }
    close(top);
    str_free(&from);
    str_free(&tmp);
    return rc;
}

/* Moves every message of INBOX (dir) into the folder dir/.to (RFC 3501 6.3.5). */
static int rename_inbox(const char *maildir, const char *to, struct str *err)
{
    struct str dst = STR_INIT;
    int rc, top = -1, dfd = -1;

    rc = store_folder_create(maildir, to, err);
    if (rc == 1)
        return refuse(err, EEXIST, "destination folder exists");
    if (rc < 0)
        return -1;
    rc = 0;
    str_printf(&dst, ".%s", to);
    if ((top = open_dir(maildir, err)) < 0 ||
        (dfd = openat(top, dst.s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        rc = top < 0 ? -1 : fail(err, "open", dst.s);
    for (size_t i = 1; rc == 0 && i < 3; i++) {
        int sfd = openat(top, subdirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int tfd = openat(dfd, subdirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *d = sfd >= 0 ? fdopendir(sfd) : NULL;
        struct dirent *de;

        if (d == NULL || tfd < 0) {
            rc = fail(err, "open", subdirs[i]);
        } else {
            while ((de = readdir(d)) != NULL) {
                if (de->d_name[0] == '.')
                    continue;
                if (renameat(sfd, de->d_name, tfd, de->d_name) < 0 && errno != ENOENT) {
                    rc = fail(err, "rename", de->d_name);
                    break;
                }
            }
            if (rc == 0 && (fsync(tfd) < 0 || fsync(sfd) < 0))
                rc = fail(err, "fsync", subdirs[i]);
        }
        if (d != NULL)
            closedir(d);
        else if (sfd >= 0)
            close(sfd);
        if (tfd >= 0)
            close(tfd);
    }
    if (dfd >= 0)
        close(dfd);
    if (top >= 0)
        close(top);
    str_free(&dst);
    return rc;
}

static bool is_self_or_child(const char *name, const char *parent, size_t plen)
{
    return strncmp(name, parent, plen) == 0 && (name[plen] == '\0' || name[plen] == STORE_SEP);
}

/* Renames the subscriptions of from and its children. */
static int rename_subs(const char *maildir, const char *from, const char *to,
                       struct str *err)
{
    char **subs = NULL;
    size_t flen = strlen(from);
    int rc = 0;

    if (store_subs_read(maildir, &subs, err) < 0)
        return -1;
    for (size_t i = 0; rc == 0 && subs[i] != NULL; i++) {
        struct str nn = STR_INIT;

        if (!is_self_or_child(subs[i], from, flen))
            continue;
        str_printf(&nn, "%s%s", to, subs[i] + flen);
        if (store_name_check(nn.s, err) == 0)
            rc = store_subscribe(maildir, subs[i], false, err) < 0 ||
                 store_subscribe(maildir, nn.s, true, err) < 0 ? -1 : 0;
        str_free(&nn);
    }
    strv_free(subs);
    return rc;
}

int store_folder_rename(const char *maildir, const char *from, const char *to,
                        struct str *err)
{
    size_t flen = strlen(from), n = 0, cap = 0;
    char **old = NULL;
    int top, rc = 0;
    DIR *d;
    struct dirent *de;

    if (store_name_check(from, err) < 0 || store_name_check(to, err) < 0)
        return -1;
    if (store_name_is_inbox(to))
        return refuse(err, EEXIST, "INBOX already exists");
    if (store_name_is_inbox(from))
        return rename_inbox(maildir, to, err);
    if (is_self_or_child(to, from, flen))
        return refuse(err, EINVAL, "cannot rename a folder into itself");
    if ((top = open_dir(maildir, err)) < 0)
        return -1;
    if ((d = fdopendir(dup(top))) == NULL) {
        close(top);
        return fail(err, "read", maildir);
    }
    /* Every directory of from and its children, and their new names checked first. */
    while ((de = readdir(d)) != NULL) {
        struct stat st;

        if (de->d_name[0] != '.' || !is_self_or_child(de->d_name + 1, from, flen))
            continue;
        if (fstatat(top, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 8;
            old = xreallocarray(old, cap, sizeof(*old));
        }
        old[n++] = xstrdup(de->d_name + 1);
        old[n] = NULL;
    }
    closedir(d);
    if (n == 0)
        rc = refuse(err, ENOENT, "no such folder");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct str nn = STR_INIT;
        struct stat st;

        str_printf(&nn, ".%s%s", to, old[i] + flen);
        if (store_name_check(nn.s + 1, err) < 0)
            rc = -1;
        else if (fstatat(top, nn.s, &st, AT_SYMLINK_NOFOLLOW) == 0)
            rc = refuse(err, EEXIST, "destination folder exists");
        str_free(&nn);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct str on = STR_INIT, nn = STR_INIT;

        str_printf(&on, ".%s", old[i]);
        str_printf(&nn, ".%s%s", to, old[i] + flen);
        if (renameat2(top, on.s, top, nn.s, RENAME_NOREPLACE) < 0)
            rc = fail(err, "rename", on.s);
        str_free(&on);
        str_free(&nn);
    }
    if (rc == 0 && fsync(top) < 0)
        rc = fail(err, "fsync", maildir);
    close(top);
    if (old != NULL)
        strv_free(old);
    if (rc == 0)
        rc = rename_subs(maildir, from, to, err);
    return rc;
}

static const struct {
    const char *name;
    const char *attr;
    unsigned bit;
} special[] = {
    { "Drafts", "\\Drafts", STORE_LIST_DRAFTS },
    { "Sent", "\\Sent", STORE_LIST_SENT },
    { "Trash", "\\Trash", STORE_LIST_TRASH },
    { "Junk", "\\Junk", STORE_LIST_JUNK },
    { "Archive", "\\Archive", STORE_LIST_ARCHIVE },
};
#define NSPECIAL (sizeof(special) / sizeof(special[0]))

const char *store_special_use_name(unsigned use)
{
    for (size_t i = 0; i < NSPECIAL; i++)
        if (special[i].bit == use)
            return special[i].attr;
    return NULL;
}

unsigned store_special_use(const char *maildir, const char *name)
{
    struct str path = STR_INIT, err = STR_INIT;
    unsigned use = 0;
    char buf[32];
    int fd = -1;

    if (store_name_check(name, &err) == 0 && !store_name_is_inbox(name)) {
        str_printf(&path, "%s/.%s/postern-special-use", maildir, name);
        fd = open(path.s, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t got = read(fd, buf, sizeof(buf) - 1);

            close(fd);
            if (got > 0) {
                buf[got] = '\0';
                buf[strcspn(buf, "\r\n")] = '\0';
                for (size_t i = 0; i < NSPECIAL; i++)
                    if (strcasecmp(buf, special[i].attr) == 0)
                        use = special[i].bit;
            }
        }
        for (size_t i = 0; use == 0 && fd < 0 && i < NSPECIAL; i++)
            if (strcmp(name, special[i].name) == 0)
                use = special[i].bit;
    }
    str_free(&path);
    str_free(&err);
    return use;
}

int store_special_use_set(const char *maildir, const char *name, unsigned use,
                          struct str *err)
{
    struct str path = STR_INIT, text = STR_INIT;
    const char *attr = store_special_use_name(use);
    int rc;

    if (attr == NULL)
        return refuse(err, EINVAL, "unknown special use");
    if (store_name_check(name, err) < 0)
        return -1;
    if (store_name_is_inbox(name))
        return refuse(err, EINVAL, "INBOX has no special use");
    str_printf(&path, "%s/.%s/postern-special-use", maildir, name);
    str_printf(&text, "%s\n", attr);
    rc = atomic_file_write(path.s, text.s, text.len, 0600, NULL, err);
    str_free(&path);
    str_free(&text);
    return rc;
}

int store_folders_init(const char *maildir, struct str *err)
{
    if (maildir_create(maildir, 0700, err) < 0)
        return -1;
    for (size_t i = 0; i < NSPECIAL; i++) {
        int rc = store_folder_create(maildir, special[i].name, err);

        if (rc < 0)
            return -1;
        if (rc == 0 && store_subscribe(maildir, special[i].name, true, err) < 0)
            return -1;
    }
    return 0;
}
