/* The message a delivery request names: its queue file under active/, its content
 * held in memory when small (so that many recipients cost one read), and the
 * Delivered-To values of its header for loop detection.  The queue file is hostile:
 * the queue reader checks its records; here every size is bounded. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "headers.h"
#include "local.h"
#include "str.h"
#include "xmalloc.h"

struct collect {
    struct str *buf;
    size_t max;
};

static int collect_chunk(void *arg, const char *data, size_t len)
{
    struct collect *c = arg;
    size_t room = c->max - c->buf->len;

    str_append(c->buf, data, len < room ? len : room);
    return c->buf->len >= c->max ? 1 : 0;
}

static bool ascii_eq_nocase(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);

    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

/* Collects the Delivered-To values of the header at the start of the content. */
static void find_delivered_to(struct local_msg *m)
{
    struct header_reader hr;
    struct header_field f;
    size_t n = 0, cap = 4;
    size_t len = m->content.len < LOCAL_HEAD_MAX ? m->content.len : LOCAL_HEAD_MAX;

    m->delivered_to = xreallocarray(NULL, cap, sizeof(char *));
    header_reader_init(&hr, m->content.s, len);
    while (header_next(&hr, &f) == 1) {
        const char *v = f.value;
        size_t vlen = f.value_len;

        if (!header_name_is(&f, "Delivered-To"))
            continue;
        if (vlen >= 2 && v[0] == '<' && v[vlen - 1] == '>') {
            v++;
            vlen -= 2;
        }
        if (n + 1 >= cap) {
            cap *= 2;
            m->delivered_to = xreallocarray(m->delivered_to, cap, sizeof(char *));
        }
        m->delivered_to[n++] = xstrndup(v, vlen);
    }
    m->delivered_to[n] = NULL;
    header_reader_free(&hr);
}

int local_msg_open(struct local_msg *m, const char *id, bool *corrupt, struct str *err)
{
    char path[sizeof("active/") + QUEUE_ID_SIZE];
    struct collect c;
    int rc;

    memset(m, 0, sizeof(*m));
    str_init(&m->content);
    *corrupt = false;
    snprintf(path, sizeof(path), "active/%s", id);
    if (queue_file_open(path, O_RDONLY, &m->qf, err) < 0) {
        int e = errno;

        if (e == EINVAL)
            *corrupt = true;
        else if (err->len == 0)
            str_printf(err, "open %s: %s", path, strerror(e));
        str_free(&m->content);
        errno = e;
        return -1;
    }
    m->open = true;
    m->whole = m->qf.content_size <= LOCAL_MEM_MAX;
    c.buf = &m->content;
    c.max = m->whole ? m->qf.content_size : LOCAL_HEAD_MAX;
    str_reserve(&m->content, c.max);
    rc = c.max == 0 ? 0 : queue_file_content(&m->qf, collect_chunk, &c);
    if (rc < 0 || (m->whole && m->content.len != m->qf.content_size)) {
        int e = rc < 0 ? errno : EINVAL;
        *corrupt = e == EINVAL;
        str_printf(err, "read %s: %s", path,
                   e == EINVAL ? "content records do not match the file" : strerror(e));
        local_msg_close(m);
        errno = e;
        return -1;
    }
    find_delivered_to(m);
    return 0;
}

void local_msg_close(struct local_msg *m)
{
    if (m->open)
        queue_file_close(&m->qf);
    m->open = false;
    str_free(&m->content);
    if (m->delivered_to != NULL)
        strv_free(m->delivered_to);
    m->delivered_to = NULL;
}

bool local_msg_delivered_to(const struct local_msg *m, const char *addr)
{
    if (m->delivered_to == NULL)
        return false;
    for (char **v = m->delivered_to; *v != NULL; v++)
        if (ascii_eq_nocase(*v, strlen(*v), addr))
            return true;
    return false;
}

int local_msg_content(struct local_msg *m, int (*fn)(void *arg, const char *data, size_t len),
                      void *arg)
{
    if (m->whole)
        return m->content.len == 0 ? 0 : fn(arg, m->content.s, m->content.len);
    return queue_file_content(&m->qf, fn, arg);
}
