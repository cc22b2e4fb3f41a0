/* The DSN NOTIFY parameter: see dsn_notify.h. */
#include "dsn_notify.h"

#include <string.h>
#include <strings.h>

int dsn_notify_parse(const char *v, struct str *out)
{
    unsigned seen = 0;

    str_clear(out);
    if (strcasecmp(v, "NEVER") == 0) {
        str_sets(out, "NEVER");
        return 0;
    }
    while (*v != '\0') {
        size_t n = strcspn(v, ",");
        unsigned bit;
        const char *word;

        if (n == 7 && strncasecmp(v, "SUCCESS", 7) == 0)
            bit = 1, word = "SUCCESS";
        else if (n == 7 && strncasecmp(v, "FAILURE", 7) == 0)
            bit = 2, word = "FAILURE";
        else if (n == 5 && strncasecmp(v, "DELAY", 5) == 0)
            bit = 4, word = "DELAY";
        else
            return -1;
        if (seen & bit)
            return -1;
        seen |= bit;
        if (out->len > 0)
            str_appendc(out, ',');
        str_appends(out, word);
        v += n;
        if (*v == ',' && *++v == '\0')
            return -1;
    }
    return out->len > 0 ? 0 : -1;
}
