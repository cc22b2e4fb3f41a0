/* Where an attribute frame (attr.h) ends in bytes that arrive piece by piece: for a
 * reader that must not block on a slow or stalled peer (anvil serves many at once),
 * it reads what is there and asks here whether a whole frame has come. */
#ifndef POSTERN_ATTR_FRAME_H
#define POSTERN_ATTR_FRAME_H

#include <stddef.h>

/* Looks at buf[0..len): 1 with *frame_len set when it begins with a whole frame
 * (attr_decode() reads buf[0..*frame_len)), 0 when the frame is not complete yet
 * and fits in max_frame so far, -1 when it is malformed (errno EPROTO) or longer
 * than max_frame (EMSGSIZE).  Only the netstring structure is checked here; the
 * names are checked by attr_decode(). */
int attr_frame_end(const void *buf, size_t len, size_t max_frame, size_t *frame_len);

#endif
