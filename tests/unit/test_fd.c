/* Unit tests for lib/util/fd.c: descriptor flags, the standard descriptors, whole
 * writes, descriptor passing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "fd.h"
#include "unit.h"

TEST(fd_flags)
{
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(fd_cloexec(p[0], true) == 0);
    CHECK(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
    CHECK(fd_cloexec(p[0], false) == 0);
    CHECK(!(fcntl(p[0], F_GETFD) & FD_CLOEXEC));
    CHECK(fd_nonblock(p[0], true) == 0);
    CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    char c;
    CHECK(read(p[0], &c, 1) == -1 && errno == EAGAIN);
    CHECK(fd_nonblock(p[0], false) == 0);
    CHECK(!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
    close(p[0]);
    close(p[1]);
    CHECK(fd_cloexec(p[0], true) == -1);
    CHECK(fd_nonblock(p[0], true) == -1);
}

TEST(write_all_through_a_pipe)
{
    char big[200000], back[sizeof(big)];
    size_t got = 0;
    int p[2];
    pid_t pid;

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    CHECK(pipe(p) == 0);
    /* More than a pipe holds: the loop must go on after partial writes. */
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        _exit(fd_write_all(p[1], big, sizeof(big)) == 0 ? 0 : 1);
    }
    close(p[1]);
    for (;;) {
        ssize_t n = read(p[0], back + got, sizeof(back) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(p[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(got == sizeof(big));
    CHECK(memcmp(big, back, sizeof(big)) == 0);
    CHECK(fd_write_all(-1, "x", 1) == -1 && errno == EBADF);
}

TEST(std_ensure_fills_closed_descriptors)
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        close(0);
        close(2);
        if (fd_std_ensure() != 0)
            _exit(1);
        if (fcntl(0, F_GETFD) < 0 || fcntl(2, F_GETFD) < 0)
            _exit(2);
        /* The next descriptor opened is above the standard three. */
        int fd = open("/dev/null", O_RDONLY);
        _exit(fd > 2 ? 0 : 3);
    }
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(fd_passing)
{
    int sv[2], p[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(p) == 0);
    CHECK(fd_send(sv[0], p[1], "req", 3) == 0);
    int got = -1;
    char buf[8];
    CHECK(fd_recv(sv[1], &got, buf, sizeof(buf)) == 3);
    CHECK(memcmp(buf, "req", 3) == 0);
    CHECK(got >= 0 && got != p[1]);
    CHECK(fcntl(got, F_GETFD) & FD_CLOEXEC);
    CHECK(write(got, "x", 1) == 1);
    CHECK(read(p[0], buf, 1) == 1 && buf[0] == 'x');
    close(got);
    /* Empty data still carries the descriptor. */
    CHECK(fd_send(sv[0], p[0], NULL, 0) == 0);
    CHECK(fd_recv(sv[1], &got, buf, sizeof(buf)) == 1);
    CHECK(got >= 0);
    close(got);
    /* Plain data: no descriptor. */
    CHECK(write(sv[0], "zz", 2) == 2);
    CHECK(fd_recv(sv[1], &got, buf, sizeof(buf)) == 2);
    CHECK(got == -1);
    close(sv[0]);
    CHECK(fd_recv(sv[1], &got, buf, sizeof(buf)) == 0);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

TEST(wait_ready_and_deadline)
{
    int p[2];

    CHECK(pipe(p) == 0);
    /* Nothing to read: the deadline ends the wait. */
    CHECK(fd_wait(p[0], POLLIN, clock_deadline(30)) == -1 && errno == ETIMEDOUT);
    CHECK(fd_wait(p[0], POLLIN, clock_deadline(0)) == -1 && errno == ETIMEDOUT);
    CHECK(fd_wait(p[1], POLLOUT, -1) == 0);
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(fd_wait(p[0], POLLIN, clock_deadline(1000)) == 0);
    close(p[0]);
    close(p[1]);
}
