/* Socket syscalls: connect, accept/accept4, bind, and sendto with a destination, recorded at
 * their exit with the address the program gave and the socket's 5-tuple as the kernel has it
 * (sock_diag, sockdiag.h): the local port of a connect, the peer of an accept. The 5-tuple is
 * what ties a captured flow to the exec_id that opened it. The ends are read from a copy of the
 * socket (pidfd_getfd) when the kernel allows, else from sock_diag.
 *
 * sendmsg/sendmmsg with a destination are not stopped on (the filter cannot look inside the
 * msghdr, and stopping on every sendmsg would stop every unix-socket and netlink message);
 * their packets are in the packet capture. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockdiag.h"
#include "tracer_int.h"

/* The sockaddr at addr (len bytes) in the tracee, as text. */
typedef struct net_addr {
    int family;
    char ip[INET6_ADDRSTRLEN];
    uint16_t port;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
} net_addr;

static bool read_addr(pid_t tid, uint64_t addr, uint64_t len, net_addr *out)
{
    memset(out, 0, sizeof *out);
    struct sockaddr_storage ss;
    if (!addr || len < sizeof(sa_family_t))
        return false;
    if (len > sizeof ss)
        len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (tracer_mem_read(tid, addr, &ss, (size_t)len))
        return false;
    out->family = ss.ss_family;
    if (ss.ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, out->ip, sizeof out->ip);
        out->port = ntohs(s4->sin_port);
    } else if (ss.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, out->ip, sizeof out->ip);
        out->port = ntohs(s6->sin6_port);
    } else if (ss.ss_family == AF_UNIX) {
        const struct sockaddr_un *su = (const struct sockaddr_un *)&ss;
        size_t n = (size_t)len - offsetof(struct sockaddr_un, sun_path);
        if (n > sizeof su->sun_path)
            n = sizeof su->sun_path;
        if (n && su->sun_path[0] == 0) { /* abstract: "@name", NULs as '@' (as ss does) */
            out->unix_path[0] = '@';
            for (size_t i = 1; i < n; i++)
                out->unix_path[i] = su->sun_path[i] ? su->sun_path[i] : '@';
            out->unix_path[n] = 0;
        } else {
            memcpy(out->unix_path, su->sun_path, n);
            out->unix_path[n] = 0;
        }
    } else {
        return false;
    }
    return true;
}

bool tracer_net_is(int nr)
{
    return nr == SYS_connect || nr == SYS_bind || nr == SYS_sendto || nr == SYS_accept ||
           nr == SYS_accept4;
}

bool tracer_net_enter(tracer *t, tracer_thread *th, int nr, const uint64_t args[6])
{
    (void)t;
    th->in_sys = true;
    th->nr = nr;
    memcpy(th->args, args, sizeof th->args);
    return true;
}

/* The socket's ends, from a copy of the descriptor taken with pidfd_getfd (Linux 5.6; the
 * tracer holds the ptrace rights it needs): getsockname/getpeername answer in microseconds,
 * where sock_diag must list a whole TCP table (about 1 ms). Falls back to sock_diag when the
 * kernel has no pidfd_getfd. */
static int socket_info(pid_t pid, int fd, sockdiag_info *out)
{
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd < 0)
        return -errno;
    int s = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
    int e = errno;
    close(pfd);
    if (s < 0)
        return -e;
    memset(out, 0, sizeof *out);
    socklen_t l = sizeof out->family;
    int rc = getsockopt(s, SOL_SOCKET, SO_DOMAIN, &out->family, &l);
    l = sizeof out->type;
    rc = rc ? rc : getsockopt(s, SOL_SOCKET, SO_TYPE, &out->type, &l);
    l = sizeof out->protocol;
    rc = rc ? rc : getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &out->protocol, &l);
    if (rc || (out->family != AF_INET && out->family != AF_INET6 && out->family != AF_UNIX)) {
        close(s);
        return rc ? -errno : -EAFNOSUPPORT;
    }
    struct sockaddr_storage a;
    for (int end = 0; end < 2; end++) {
        socklen_t al = sizeof a;
        memset(&a, 0, sizeof a);
        int r = end ? getpeername(s, (struct sockaddr *)&a, &al)
                    : getsockname(s, (struct sockaddr *)&a, &al);
        char *ip = end ? out->remote_ip : out->local_ip;
        uint16_t *port = end ? &out->remote_port : &out->local_port;
        if (r != 0 || al < sizeof(sa_family_t)) {
            if (out->family != AF_UNIX)
                strcpy(ip, out->family == AF_INET6 ? "::" : "0.0.0.0");
            continue;
        }
        if (a.ss_family == AF_INET) {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a;
            inet_ntop(AF_INET, &s4->sin_addr, ip, 46);
            *port = ntohs(s4->sin_port);
        } else if (a.ss_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a;
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, 46);
            *port = ntohs(s6->sin6_port);
        } else if (a.ss_family == AF_UNIX && !out->unix_path[0]) {
            /* its own name, else (a client) the name of the peer it connected to */
            const struct sockaddr_un *su = (const struct sockaddr_un *)&a;
            size_t n = al - offsetof(struct sockaddr_un, sun_path);
            if (n > sizeof su->sun_path)
                n = sizeof su->sun_path;
            if (n && su->sun_path[0] == 0) {
                out->unix_path[0] = '@';
                for (size_t i = 1; i < n && i < sizeof out->unix_path - 1; i++)
                    out->unix_path[i] = su->sun_path[i] ? su->sun_path[i] : '@';
            } else {
                memcpy(out->unix_path, su->sun_path, strnlen(su->sun_path, n));
            }
        }
    }
    close(s);
    return 0;
#else
    (void)pid, (void)fd, (void)out;
    return -ENOSYS;
#endif
}

static sockdiag *diag(tracer *t)
{
    if (!t->diag && !t->diag_failed) {
        if (sockdiag_open(t->root, &t->diag) != 0 && sockdiag_open(0, &t->diag) != 0) {
            t->diag_failed = true;
            tracer_gap(t, NULL, 0, "no_sock_diag", NULL,
                       "sock_diag netlink unavailable: sockets recorded without their 5-tuple", 1,
                       0, NULL);
        }
    }
    return t->diag;
}

void tracer_net_exit(tracer *t, tracer_thread *th, int64_t ret)
{
    th->in_sys = false;
    int nr = th->nr;
    bool acc = nr == SYS_accept || nr == SYS_accept4;
    /* an accept that failed, or a connect interrupted before anything happened, says little;
     * failures of connect/bind/sendto are recorded (a refused connection is evidence too) */
    if (acc && ret < 0)
        return;
    int fd = acc ? (int)ret : (int)th->args[0];
    net_addr given;
    bool have_given = false;
    if (nr == SYS_connect || nr == SYS_bind)
        have_given = read_addr(th->tid, th->args[1], th->args[2], &given);
    else if (nr == SYS_sendto)
        have_given = read_addr(th->tid, th->args[4], th->args[5], &given);
    sockdiag_info si;
    bool have_diag = fd >= 0 && socket_info(th->p->pid, fd, &si) == 0;
    uint64_t ino;
    if (!have_diag && fd >= 0 && sockdiag_inode_of(th->p->pid, fd, &ino) == 0 && diag(t))
        have_diag = sockdiag_lookup_hint(t->diag, ino, have_given ? given.family : 0, 0, &si) == 0;
    ptb_event ev = PTB__V1__EVENT__INIT;
    Ptb__V1__NetConnect nc = PTB__V1__NET_CONNECT__INIT;
    Ptb__V1__SockAddr local = PTB__V1__SOCK_ADDR__INIT, remote = PTB__V1__SOCK_ADDR__INIT;
    nc.pid = th->p->pid;
    nc.fd = fd;
    nc.result = ret < 0 ? (int32_t)ret : 0;
    nc.proto = (char *)(have_diag ? sockdiag_proto_name(&si) : "");
    if (have_diag && si.family != AF_UNIX) {
        local.ip = si.local_ip;
        local.port = si.local_port;
        nc.local = &local;
        if (si.remote_port || (strcmp(si.remote_ip, "0.0.0.0") && strcmp(si.remote_ip, "::"))) {
            remote.ip = si.remote_ip;
            remote.port = si.remote_port;
            nc.remote = &remote;
        }
    }
    if (have_diag && si.family == AF_UNIX)
        nc.unix_path = si.unix_path;
    if (have_given && given.family == AF_UNIX) {
        nc.unix_path = given.unix_path; /* the name the program gave: the server's, on connect */
        if (!nc.proto[0])
            nc.proto = (char *)"unix";
    } else if (have_given) {
        /* the address given: the destination of connect/sendto, the address of bind */
        Ptb__V1__SockAddr *a = nr == SYS_bind ? &local : &remote;
        if (nr == SYS_bind ? !nc.local : !nc.remote) {
            a->ip = given.ip;
            a->port = given.port;
            if (nr == SYS_bind)
                nc.local = a;
            else
                nc.remote = a;
        }
    }
    if (!nc.proto[0] && have_given)
        nc.proto = (char *)(given.family == AF_INET6 ? "ip6" : "ip");
    switch (nr) {
    case SYS_connect:
        ev.body_case = PTB__V1__EVENT__BODY_NET_CONNECT;
        ev.net_connect = &nc;
        break;
    case SYS_bind:
        ev.body_case = PTB__V1__EVENT__BODY_NET_BIND;
        ev.net_bind = &nc;
        break;
    case SYS_sendto:
        ev.body_case = PTB__V1__EVENT__BODY_NET_SEND;
        ev.net_send = &nc;
        break;
    default:
        ev.body_case = PTB__V1__EVENT__BODY_NET_ACCEPT;
        ev.net_accept = &nc;
        break;
    }
    tracer_emit(t, th, &ev);
    /* the ends as the kernel has them: what ties captured flows to this process */
    if (t->o.on_socket && have_diag && si.family != AF_UNIX && nc.local && nc.local->port &&
        (si.protocol == IPPROTO_TCP || si.protocol == IPPROTO_UDP))
        t->o.on_socket(t->o.on_socket_arg, tracer_proc_id(t, th->p), nc.proto, nc.local->ip,
                       (uint16_t)nc.local->port, nc.remote ? nc.remote->ip : NULL,
                       nc.remote ? (uint16_t)nc.remote->port : 0);
}
