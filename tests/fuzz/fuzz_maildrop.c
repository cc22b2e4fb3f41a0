/* libFuzzer harness: maildrop_read() (lib/mail/maildrop.c) on arbitrary bytes, as
 * pickup(8) reads a file any local user may have crafted.
 * Build and run: make fuzz (build/fuzz/fuzz_maildrop), make fuzz-smoke-fuzz_maildrop.
 *
 * Checked beyond "no crash": an accepted file is written again with the writer
 * (mdw_*) and reads back the same envelope and content; the envelope callback runs
 * exactly once, before any content; the content is all bytes of the C records;
 * a refusal is EINVAL (the bound on the content is not set here). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildrop.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    int envelopes;
    bool content_before_envelope;
    struct str content;
};

static int on_env(void *arg, const struct maildrop_env *env)
{
    struct seen *s = arg;
    (void)env;
    s->envelopes++;
    return 0;
}

static int on_content(void *arg, const char *p, size_t len)
{
    struct seen *s = arg;
    if (s->envelopes == 0)
        s->content_before_envelope = true;
    str_append(&s->content, p, len);
    return 0;
}

static int make_file(const char *path, const void *data, size_t size)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
    return open(path, O_RDONLY);
}

/* The file the writer makes of env and content, in out. */
static void rewrite(const char *path, const struct maildrop_env *env, const struct str *content,
                    struct str *out)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    struct maildrop_writer *w;
    char buf[4096];
    ssize_t n;

    if (fd < 0)
        abort();
    w = mdw_open(fd);
    if (mdw_header(w, env->uid, env->login, env->when) < 0
        || (env->sender != NULL && mdw_sender(w, env->sender) < 0)
        || (env->ret != NULL && mdw_attr(w, "ret", env->ret) < 0)
        || (env->envid != NULL && mdw_attr(w, "envid", env->envid) < 0))
        abort();
    for (size_t i = 0; i < env->nrcpt; i++)
        if (mdw_recipient(w, env->rcpt[i].addr, env->rcpt[i].notify) < 0)
            abort();
    if (content->len > 0 && mdw_content(w, content->s, content->len) < 0)
        abort();
    if (mdw_finish(w) < 0)
        abort();
    fd = open(path, O_RDONLY);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        str_append(out, buf, (size_t)n);
    close(fd);
}

static bool str_eq(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static bool same(const struct maildrop_env *a, const struct maildrop_env *b)
{
    if (a->uid != b->uid || a->when != b->when || a->nrcpt != b->nrcpt
        || !str_eq(a->login, b->login) || !str_eq(a->sender, b->sender)
        || !str_eq(a->ret, b->ret) || !str_eq(a->envid, b->envid))
        return false;
    for (size_t i = 0; i < a->nrcpt; i++)
        if (!str_eq(a->rcpt[i].addr, b->rcpt[i].addr)
            || !str_eq(a->rcpt[i].notify, b->rcpt[i].notify))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64], path2[64];
    const struct maildrop_reader_ops ops = { on_env, on_content };
    struct seen s = { 0 };
    struct maildrop_env env;
    struct str err = STR_INIT, again = STR_INIT;
    int fd, rc;

    if (path[0] == '\0') {
        snprintf(path, sizeof(path), "/tmp/fuzz_maildrop.%ld", (long)getpid());
        snprintf(path2, sizeof(path2), "/tmp/fuzz_maildrop2.%ld", (long)getpid());
    }
    fd = make_file(path, data, size);
    rc = maildrop_read(fd, 0, &ops, &s, &env, &err);
    close(fd);
    if (s.content_before_envelope || s.envelopes > 1)
        abort();
    if (rc == 0) {
        if (s.envelopes != 1 || env.nrcpt == 0 || env.login == NULL)
            abort();
        /* Written again by the writer, the file reads back the same. */
        rewrite(path2, &env, &s.content, &again);
        struct seen s2 = { 0 };
        struct maildrop_env env2;
        fd = make_file(path2, again.s, again.len);
        if (maildrop_read(fd, 0, &ops, &s2, &env2, &err) != 0 || !same(&env, &env2)
            || s2.content.len != s.content.len
            || (s.content.len > 0 && memcmp(s2.content.s, s.content.s, s.content.len) != 0))
            abort();
        close(fd);
        maildrop_env_free(&env2);
        str_free(&s2.content);
    } else if (errno != EINVAL) {
        abort();
    }
    maildrop_env_free(&env);
    str_free(&s.content);
    str_free(&again);
    str_free(&err);
    return 0;
}
