/* sockdiag: real sockets of this process, looked up by inode through the kernel, must read back
 * as getsockname/getpeername say (TCP and UDP over 127.0.0.1 and ::1, IPv4-mapped, unix with a
 * path, an abstract name and none, raw); misses give -ENOENT, a pipe -ENOTSOCK; a socket in
 * another network namespace is seen only through a handle opened there; a dump over its entry
 * bound fails with PTB_ETOOBIG and leaves the handle usable. Ends with a timing print. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sockdiag.h"

enum { ST_ESTABLISHED = 1, ST_CLOSE = 7, ST_LISTEN = 10 };

static sockdiag *sd; /* the caller's namespace, for every test */

static uint64_t ino_of(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint64_t via_proc = 0;
    assert_int_equal(sockdiag_inode_of(getpid(), fd, &via_proc), 0);
    assert_true(via_proc == (uint64_t)st.st_ino);
    return via_proc;
}

/* ip text and host-order port of a sockaddr; an unconnected end reads as the any address. */
static void addr_text(int family, const struct sockaddr_storage *ss, bool ok, char *ip,
                      uint16_t *port)
{
    static const struct in6_addr any6 = IN6ADDR_ANY_INIT;
    struct in_addr any4 = {0};
    const struct sockaddr_in *a4 = (const void *)ss;
    const struct sockaddr_in6 *a6 = (const void *)ss;
    const void *a = family == AF_INET ? (ok ? (const void *)&a4->sin_addr : &any4)
                                      : (ok ? (const void *)&a6->sin6_addr : &any6);
    assert_non_null(inet_ntop(family, a, ip, 46));
    *port = !ok ? 0 : ntohs(family == AF_INET ? a4->sin_port : a6->sin6_port);
}

/* Look fd up (plainly and with the right hint) and compare with what the socket says itself. */
static void check_inet(int fd, int family, int protocol, uint8_t state)
{
    uint64_t ino = ino_of(fd);
    sockdiag_info si, sh;
    int rc = sockdiag_lookup(sd, ino, &si);
    if (rc != 0)
        fprintf(stderr, "lookup: %s (%s)\n", ptb_strerror(rc), sockdiag_errmsg(sd));
    assert_int_equal(rc, 0);
    assert_int_equal(sockdiag_lookup_hint(sd, ino, family, protocol, &sh), 0);
    assert_memory_equal(&si, &sh, sizeof si);

    struct sockaddr_storage l, r;
    socklen_t ll = sizeof l, rl = sizeof r;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&l, &ll), 0);
    bool connected = getpeername(fd, (struct sockaddr *)&r, &rl) == 0;
    char lip[46], rip[46];
    uint16_t lport, rport;
    addr_text(family, &l, true, lip, &lport);
    addr_text(family, &r, connected, rip, &rport);

    assert_int_equal(si.family, family);
    assert_int_equal(si.protocol, protocol);
    assert_int_equal(si.type, protocol == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM);
    assert_string_equal(si.local_ip, lip);
    assert_string_equal(si.remote_ip, rip);
    assert_int_equal(si.local_port, lport);
    assert_int_equal(si.remote_port, rport);
    assert_int_equal(si.state, state);
    assert_string_equal(si.unix_path, "");
    assert_string_equal(sockdiag_proto_name(&si), protocol == IPPROTO_TCP ? "tcp" : "udp");
}

/* A listener on addr port 0, a client connected to it, the accepted socket. -errno of a failed
 * socket/bind (to skip when the family is missing). */
static int tcp_trio(int family, const char *addr, int fds[3])
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (void *)&ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, addr, &a->sin_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (void *)&ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, addr, &a->sin6_addr);
        len = sizeof *a;
    }
    fds[0] = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[0] < 0)
        return -errno;
    if (bind(fds[0], (struct sockaddr *)&ss, len) != 0) {
        int e = errno;
        close(fds[0]);
        return -e;
    }
    assert_int_equal(listen(fds[0], 512), 0);
    assert_int_equal(getsockname(fds[0], (struct sockaddr *)&ss, &len), 0);
    fds[1] = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fds[1] >= 0);
    assert_int_equal(connect(fds[1], (struct sockaddr *)&ss, len), 0);
    fds[2] = accept4(fds[0], NULL, NULL, SOCK_CLOEXEC);
    assert_true(fds[2] >= 0);
    return 0;
}

static void test_tcp(int family, const char *addr)
{
    int fds[3];
    int rc = tcp_trio(family, addr, fds);
    if (family == AF_INET6 && rc != 0) {
        fprintf(stderr, "IPv6 unavailable (%s): skipped\n", strerror(-rc));
        skip();
    }
    assert_int_equal(rc, 0);
    check_inet(fds[0], family, IPPROTO_TCP, ST_LISTEN);
    check_inet(fds[1], family, IPPROTO_TCP, ST_ESTABLISHED);
    check_inet(fds[2], family, IPPROTO_TCP, ST_ESTABLISHED);
    assert_string_equal(sockdiag_state_name(ST_LISTEN), "LISTEN");
    for (int i = 0; i < 3; i++)
        close(fds[i]);
}

static void test_tcp4(void **state)
{
    (void)state;
    test_tcp(AF_INET, "127.0.0.1");
}

static void test_tcp6(void **state)
{
    (void)state;
    test_tcp(AF_INET6, "::1");
}

/* An IPv4 client to a dual-stack IPv6 listener: the accepted socket is AF_INET6 and the kernel
 * shows its ends IPv4-mapped, as getsockname does. */
static void test_tcp_v4mapped(void **state)
{
    (void)state;
    int l = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), off = 0;
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
    socklen_t len = sizeof a6;
    if (l < 0 || setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0 ||
        bind(l, (struct sockaddr *)&a6, len) != 0) {
        fprintf(stderr, "dual-stack IPv6 unavailable (%s): skipped\n", strerror(errno));
        if (l >= 0)
            close(l);
        skip();
    }
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a6, &len), 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = a6.sin6_port, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    assert_true(s >= 0);
    check_inet(s, AF_INET6, IPPROTO_TCP, ST_ESTABLISHED);
    check_inet(c, AF_INET, IPPROTO_TCP, ST_ESTABLISHED);
    sockdiag_info si;
    assert_int_equal(sockdiag_lookup(sd, ino_of(s), &si), 0);
    assert_string_equal(si.local_ip, "::ffff:127.0.0.1");
    close(s);
    close(c);
    close(l);
}

static int udp_bound(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void test_udp(void **state)
{
    (void)state;
    int a = udp_bound(), b = udp_bound();
    struct sockaddr_in aa;
    socklen_t len = sizeof aa;
    assert_int_equal(getsockname(a, (struct sockaddr *)&aa, &len), 0);
    assert_int_equal(connect(b, (struct sockaddr *)&aa, len), 0);
    check_inet(a, AF_INET, IPPROTO_UDP, ST_CLOSE);
    check_inet(b, AF_INET, IPPROTO_UDP, ST_ESTABLISHED);
    close(a);
    close(b);
}

static void lookup_unix(int fd, sockdiag_info *si)
{
    assert_int_equal(sockdiag_lookup(sd, ino_of(fd), si), 0);
    assert_int_equal(si->family, AF_UNIX);
    assert_int_equal(si->protocol, 0);
    assert_string_equal(si->local_ip, "");
    assert_string_equal(sockdiag_proto_name(si), "unix");
}

/* Listener bound to name (len bytes of sun_path), client, accepted; checks all three. */
static void unix_trio(const char *name, size_t len, const char *want)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, name, len);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, alen), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, alen), 0);
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    assert_true(s >= 0);

    sockdiag_info si;
    lookup_unix(l, &si);
    assert_string_equal(si.unix_path, want);
    assert_int_equal(si.type, SOCK_STREAM);
    assert_int_equal(si.state, ST_LISTEN);
    assert_true(si.unix_peer_inode == 0);
    lookup_unix(c, &si);
    assert_string_equal(si.unix_path, ""); /* the client is not bound ... */
    assert_int_equal(si.state, ST_ESTABLISHED);
    assert_true(si.unix_peer_inode == ino_of(s));
    sockdiag_info peer;
    assert_int_equal(sockdiag_lookup_hint(sd, si.unix_peer_inode, AF_UNIX, 0, &peer), 0);
    assert_string_equal(peer.unix_path, want); /* ... its peer carries the listener's name */
    assert_true(peer.unix_peer_inode == ino_of(c));
    close(s);
    close(c);
    close(l);
}

static void test_unix_path(void **state)
{
    (void)state;
    char dir[] = "/tmp/ptb-sockdiag.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/s", dir);
    unix_trio(path, strlen(path) + 1, path);
    unlink(path);
    rmdir(dir);
}

static void test_unix_abstract(void **state)
{
    (void)state;
    char name[64], want[64];
    int n = snprintf(name, sizeof name, "%cptb-sockdiag-%d", 0, (int)getpid());
    snprintf(want, sizeof want, "@ptb-sockdiag-%d", (int)getpid());
    unix_trio(name, (size_t)n, want);
}

static void test_socketpair(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p), 0);
    sockdiag_info si;
    lookup_unix(p[0], &si);
    assert_int_equal(si.type, SOCK_SEQPACKET);
    assert_string_equal(si.unix_path, "");
    assert_true(si.unix_peer_inode == ino_of(p[1]));
    close(p[0]);
    close(p[1]);
}

static void test_raw(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (fd < 0) {
        fprintf(stderr, "raw socket: %s: skipped\n", strerror(errno));
        skip();
    }
    sockdiag_info si;
    int rc = sockdiag_lookup(sd, ino_of(fd), &si);
    close(fd);
    if (rc == -ENOENT) {
        fprintf(stderr, "raw sockets not in sock_diag here (no raw_diag): skipped\n");
        skip();
    }
    assert_int_equal(rc, 0);
    assert_int_equal(si.type, SOCK_RAW);
    assert_int_equal(si.protocol, IPPROTO_ICMP);
    assert_string_equal(sockdiag_proto_name(&si), "raw");
}

static void test_not_found(void **state)
{
    (void)state;
    sockdiag_info si;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(sockdiag_lookup(sd, ino_of(fd), &si), -ENOENT); /* in no table yet */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, len), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    int rc = sockdiag_lookup_hint(sd, ino_of(fd), AF_INET, IPPROTO_TCP, &si);
    if (rc == -ENOENT) {
        fprintf(stderr, "bound TCP socket not dumped (kernel before 6.8)\n");
    } else { /* bound only: dumped from the bind hash (6.8+), its state is CLOSE */
        assert_int_equal(rc, 0);
        assert_int_equal(si.state, ST_CLOSE);
        assert_int_equal(si.local_port, ntohs(a.sin_port));
    }
    close(fd);
    fd = udp_bound();
    uint64_t ino = ino_of(fd);
    assert_int_equal(sockdiag_lookup(sd, ino, &si), 0);
    assert_int_equal(sockdiag_lookup_hint(sd, ino, AF_INET, IPPROTO_TCP, &si), -ENOENT);
    assert_int_equal(sockdiag_lookup_hint(sd, ino, AF_INET6, 0, &si), -ENOENT);
    assert_int_equal(sockdiag_lookup_hint(sd, ino, AF_UNIX, 0, &si), -ENOENT);
    assert_int_equal(sockdiag_lookup_hint(sd, ino, AF_PACKET, 0, &si), -EAFNOSUPPORT);
    close(fd);
    assert_int_equal(sockdiag_lookup(sd, ino, &si), -ENOENT); /* closed */
    assert_int_equal(sockdiag_lookup(sd, UINT32_MAX - 7, &si), -ENOENT);
    assert_int_equal(sockdiag_lookup(sd, 1ull << 40, &si), -ENOENT);
    assert_int_equal(sockdiag_lookup(sd, 0, &si), PTB_EINVAL);
    assert_int_equal(sockdiag_lookup(NULL, ino, &si), PTB_EINVAL);
}

static void test_inode_of(void **state)
{
    (void)state;
    int p[2];
    uint64_t ino;
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(sockdiag_inode_of(getpid(), p[0], &ino), -ENOTSOCK);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_int_equal(sockdiag_inode_of(getpid(), null, &ino), -ENOTSOCK);
    close(null);
    close(p[1]);
    assert_int_equal(sockdiag_inode_of(getpid(), p[1], &ino), -ENOENT); /* closed fd */
    assert_int_equal(sockdiag_inode_of(0x3ffffff0, 0, &ino), -ENOENT);  /* no such pid */
    assert_int_equal(sockdiag_inode_of(getpid(), -1, &ino), PTB_EINVAL);
    assert_int_equal(sockdiag_inode_of(0, 0, &ino), PTB_EINVAL);
    close(p[0]);
}

static void test_open_self(void **state)
{
    (void)state;
    sockdiag *me = NULL;
    assert_int_equal(sockdiag_open(getpid(), &me), 0);
    int fd = udp_bound();
    sockdiag_info si;
    assert_int_equal(sockdiag_lookup(me, ino_of(fd), &si), 0);
    assert_string_equal(si.local_ip, "127.0.0.1");
    close(fd);
    sockdiag_close(me);
    assert_int_equal(sockdiag_open(-1, &me), PTB_EINVAL);
    assert_int_equal(sockdiag_open(0x3ffffff0, &me), -ESRCH);
    assert_null(me);
}

/* The child of test_netns, in its own network namespace: lo up, a TCP listener on 127.0.0.1. */
struct ns_msg {
    int err; /* errno of the step that failed, 0 if none */
    int fd;
    uint64_t ino;
    uint16_t port;
};

static void ns_child(int up, int down)
{
    struct ns_msg m = {0};
    struct ifreq ifr = {0};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    struct stat st;
    int s = -1;
    if (unshare(CLONE_NEWNET) != 0 || (s = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
        m.err = errno;
    strcpy(ifr.ifr_name, "lo");
    if (!m.err && (ioctl(s, SIOCGIFFLAGS, &ifr) != 0 ||
                   (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) != 0)))
        m.err = errno;
    if (!m.err && ((m.fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
                   bind(m.fd, (struct sockaddr *)&a, len) != 0 || listen(m.fd, 1) != 0 ||
                   getsockname(m.fd, (struct sockaddr *)&a, &len) != 0 || fstat(m.fd, &st) != 0))
        m.err = errno;
    m.ino = st.st_ino;
    m.port = ntohs(a.sin_port);
    if (write(up, &m, sizeof m) != sizeof m)
        _exit(1);
    char c;
    while (read(down, &c, 1) > 0) /* until the parent closes its end */
        ;
    _exit(0);
}

static void test_netns(void **state)
{
    (void)state;
    int up[2], down[2];
    assert_int_equal(pipe2(up, O_CLOEXEC), 0);
    assert_int_equal(pipe2(down, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        ns_child(up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    struct ns_msg m;
    assert_int_equal(read(up[0], &m, sizeof m), sizeof m);
    if (m.err != 0) {
        close(down[1]);
        waitpid(pid, NULL, 0);
        close(up[0]);
        assert_int_equal(m.err, EPERM); /* anything else is a failure */
        fprintf(stderr, "unshare(CLONE_NEWNET): EPERM: netns test skipped\n");
        skip();
    }
    uint64_t ino;
    assert_int_equal(sockdiag_inode_of(pid, m.fd, &ino), 0);
    assert_true(ino == m.ino);

    sockdiag *in = NULL;
    assert_int_equal(sockdiag_open(pid, &in), 0);
    sockdiag_info si;
    assert_int_equal(sockdiag_lookup(in, ino, &si), 0);
    assert_string_equal(si.local_ip, "127.0.0.1");
    assert_int_equal(si.local_port, m.port);
    assert_int_equal(si.state, ST_LISTEN);
    assert_int_equal(sockdiag_lookup_hint(in, ino, AF_INET, IPPROTO_TCP, &si), 0);
    assert_int_equal(sockdiag_lookup(sd, ino, &si), -ENOENT); /* not in the caller's netns */
    int mine = udp_bound();
    assert_int_equal(sockdiag_lookup(in, ino_of(mine), &si), -ENOENT); /* and vice versa */
    close(mine);

    /* Without privilege: -EPERM, so that the tracer can fall back. */
    pid_t un = fork();
    assert_true(un >= 0);
    if (un == 0) {
        sockdiag *x = NULL;
        if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0)
            _exit(100);
        _exit(-sockdiag_open(pid, &x));
    }
    int status;
    assert_int_equal(waitpid(un, &status, 0), un);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 100)
        fprintf(stderr, "cannot drop privileges: EPERM case not checked\n");
    else
        assert_int_equal(WEXITSTATUS(status), EPERM);

    sockdiag_close(in);
    close(down[1]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(up[0]);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ~1000 sockets: 400 bound UDP, 300 TCP connections (client + accepted), one listener. Every one
 * is found with the right family; an entry bound too small gives PTB_ETOOBIG and the handle
 * still works; then the timing print. */
static void test_many(void **state)
{
    (void)state;
    enum { NUDP = 400, NTCP = 300, N = NUDP + 2 * NTCP };
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < N + 100 && rl.rlim_max >= N + 100) {
        rl.rlim_cur = N + 100;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur < N + 100) {
        fprintf(stderr, "RLIMIT_NOFILE %lu too low: skipped\n", (unsigned long)rl.rlim_cur);
        skip();
    }
    static int fd[N];
    static uint64_t ino[N];
    int trio[3];
    assert_int_equal(tcp_trio(AF_INET, "127.0.0.1", trio), 0);
    fd[0] = trio[1];
    fd[1] = trio[2];
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(trio[0], (struct sockaddr *)&a, &len), 0);
    for (int i = 2; i < 2 * NTCP; i += 2) {
        fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(fd[i], (struct sockaddr *)&a, len), 0);
        fd[i + 1] = accept4(trio[0], NULL, NULL, SOCK_CLOEXEC);
        assert_true(fd[i + 1] >= 0);
    }
    for (int i = 2 * NTCP; i < N; i++)
        fd[i] = udp_bound();
    for (int i = 0; i < N; i++)
        ino[i] = ino_of(fd[i]);

    sockdiag_info si;
    sockdiag_set_max_entries(sd, 50);
    assert_int_equal(sockdiag_lookup(sd, UINT32_MAX - 7, &si), PTB_ETOOBIG);
    sockdiag_set_max_entries(sd, 0);
    assert_int_equal(sockdiag_lookup(sd, ino[N - 1], &si), 0);

    srand(42);
    static int order[N];
    for (int i = 0; i < N; i++)
        order[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int pass = 0; pass < 2; pass++) {
        double t[2] = {0, 0}; /* TCP, UDP */
        for (int k = 0; k < N; k++) {
            int i = order[k], tcp = i < 2 * NTCP, proto = tcp ? IPPROTO_TCP : IPPROTO_UDP;
            double t0 = now();
            int rc = pass == 0 ? sockdiag_lookup(sd, ino[i], &si)
                               : sockdiag_lookup_hint(sd, ino[i], AF_INET, proto, &si);
            t[!tcp] += now() - t0;
            assert_int_equal(rc, 0);
            assert_int_equal(si.protocol, proto);
        }
        fprintf(
            stderr,
            "sockdiag: %d sockets open, %-20s %6.0f lookups/s; TCP %7.1f us, UDP %6.1f us each\n",
            N + 1, pass == 0 ? "no hint:" : "family+protocol hint:", N / (t[0] + t[1]),
            t[0] / (2 * NTCP) * 1e6, t[1] / NUDP * 1e6);
    }
    for (int i = 0; i < N; i++)
        close(fd[i]);
    close(trio[0]);
}

static int setup(void **state)
{
    (void)state;
    return sockdiag_open(0, &sd);
}

static int teardown(void **state)
{
    (void)state;
    sockdiag_close(sd);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp4),         cmocka_unit_test(test_tcp6),
        cmocka_unit_test(test_tcp_v4mapped), cmocka_unit_test(test_udp),
        cmocka_unit_test(test_unix_path),    cmocka_unit_test(test_unix_abstract),
        cmocka_unit_test(test_socketpair),   cmocka_unit_test(test_raw),
        cmocka_unit_test(test_not_found),    cmocka_unit_test(test_inode_of),
        cmocka_unit_test(test_open_self),    cmocka_unit_test(test_netns),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
