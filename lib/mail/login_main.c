/* The main of pop3d and imapd, which differ only in the two modes they pass: "-l"
 * picks the pre-auth (login) mode, its absence the post-login service. */
#include <stdbool.h>
#include <string.h>

#include "login_serve.h"
#include "server.h"

_Noreturn void login_daemon_main(int argc, char **argv, const struct server_opts *preauth,
                                 const struct server_opts *postlogin)
{
    bool is_preauth = false;
    int n = 0;

    /* "-l" is ours; the skeleton sees the rest. */
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "-l") == 0 && strcmp(argv[i - 1], "-o") != 0) {
            is_preauth = true;
            continue;
        }
        argv[n++] = argv[i];
    }
    argv[n] = NULL;
    server_main(n, argv, is_preauth ? preauth : postlogin);
}
