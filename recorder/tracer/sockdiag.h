/* sockdiag: what a socket of a traced process is, by inode, through NETLINK_SOCK_DIAG.
 *
 * At the exit of connect/accept/bind/sendto the tracer knows a pid and an fd. It turns them into
 * the socket's inode (readlink /proc/PID/fd/FD = "socket:[INODE]", sockdiag_inode_of) and asks
 * the kernel for that socket (sockdiag_lookup): protocol, local and remote address and port,
 * state, or for AF_UNIX the bound path and the peer's inode. Packet flows in a capture are tied
 * to processes through these 5-tuples.
 *
 *   sockdiag *sd;
 *   int rc = sockdiag_open(tracee_pid, &sd);        // or 0: the recorder's own netns
 *   uint64_t ino; sockdiag_info si;
 *   if (rc == 0 && sockdiag_inode_of(pid, fd, &ino) == 0 &&
 *       sockdiag_lookup_hint(sd, ino, AF_INET, IPPROTO_TCP, &si) == 0)
 *       ... si.local_ip, si.local_port, si.remote_ip, si.remote_port ...
 *   sockdiag_close(sd);
 *
 * Mechanism (sockdiag.c has the details):
 *   - AF_UNIX: one exact request by inode (unix_diag supports it): one round trip, whatever the
 *     number of sockets.
 *   - TCP/UDP/UDP-Lite/raw over IPv4 and IPv6: inet_diag has no lookup by inode, so each is a
 *     dump of one protocol's table in the namespace (every state but TCP TIME_WAIT). The reply is
 *     scanned, only the matching entry is parsed, and the dump is abandoned once it is found.
 *   Cost: a dump's time goes mostly to the kernel walking its hash tables bucket by bucket, empty
 *   ones included. Measured on a 2-core VM (262144 TCP ehash buckets): unix ~10 us, a UDP dump
 *   ~15 us, TCP listeners ~10 us, any other TCP socket ~1.2 ms per family, plus ~110 bytes of
 *   netlink data per socket before the match (with 100k sockets, ~11 MB and some ms more). A
 *   miss pays every table: ~2.5 ms here. The TCP walk grows with the ehash size (RAM at boot, or
 *   net.ipv4.tcp_child_ehash_entries for a new netns), not with the number of sockets. Use
 *   sockdiag_lookup_hint whenever socket()'s arguments are known. A dump may return at most
 *   sockdiag_set_max_entries() entries (default 1M); over that the lookup fails with PTB_ETOOBIG
 *   instead of running on.
 *   Only sockets in the kernel's tables are found: a TCP or UDP socket neither bound nor
 *   connected yet (right after socket()) gives -ENOENT, and a TCP socket bound but neither
 *   listening nor connected is found only on Linux 6.8+ (state CLOSE). A dump is not a
 *   snapshot: a socket can be missed when others of its hash chain close during the dump (rare;
 *   asking again finds it).
 *
 * Namespaces: the sockets seen are those of the network namespace the handle was opened in
 * (sockdiag_open(pid) creates its netlink socket inside /proc/PID/ns/net; it stays there for the
 * life of the handle, even after that process exits).
 *
 * Errors: 0 or a negative code: -errno (-ENOENT not found, -ENOTSOCK, -EPERM, ...), PTB_EINVAL
 * for bad arguments, PTB_ECORRUPT for a kernel reply that fails a check, PTB_ENOMEM, PTB_ETOOBIG;
 * ptb_strerror() names them all. A handle keeps the message of its last error (sockdiag_errmsg).
 *
 * Threads: a handle is used by one thread at a time. sockdiag_inode_of and the name functions are
 * thread-safe. */
#ifndef PTB_SOCKDIAG_H
#define PTB_SOCKDIAG_H

#include <stdint.h>
#include <sys/types.h>

#include "ptb_error.h"

typedef struct sockdiag sockdiag;

/* What the kernel says about one socket. Strings are NUL-terminated; fields that do not apply to
 * the family are zero / empty. */
typedef struct sockdiag_info {
    int family;   /* AF_INET, AF_INET6, AF_UNIX */
    int type;     /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET (unix), SOCK_RAW */
    int protocol; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE; for raw sockets the protocol given
                     to socket() (IPPROTO_ICMP, ...); 0 for unix */
    /* inet_ntop text. An AF_INET6 socket talking to IPv4 shows the IPv4-mapped form the kernel
     * keeps ("::ffff:127.0.0.1"); it is not converted to dotted IPv4. Unbound / unconnected
     * ends are "0.0.0.0" / "::" with port 0. */
    char local_ip[46], remote_ip[46];
    uint16_t local_port, remote_port; /* host byte order */
    /* the kernel's sk_state: TCP_* numbers of <netinet/tcp.h> (1 ESTABLISHED ... 10 LISTEN; 7
     * CLOSE for a TCP socket only bound), also for UDP (1 connected, 7 not) and unix (10
     * listening, 1 connected, 7 not); sockdiag_state_name() spells them */
    uint8_t state;
    /* AF_UNIX: the bound name; "" for an unbound socket (socketpair, a connecting client). An
     * abstract name is written "@name", with every NUL byte inside it also written '@' (as ss
     * does). An accepted socket carries its listener's name. */
    char unix_path[110];
    uint64_t unix_peer_inode; /* AF_UNIX: inode of the connected peer, 0 when none; look it up to
                                 learn the server's path of a connecting client */
} sockdiag_info;

/* Open a handle on the network namespace of process netns_of (0: the calling thread's own).
 * When that namespace is not the caller's, the netlink socket is created on a short-lived thread
 * that enters /proc/PID/ns/net (setns changes only the calling thread): this needs CAP_SYS_ADMIN
 * over that namespace, and fails with -EPERM without it (also when /proc/PID/ns/net may not be
 * opened), so the caller can fall back to its own namespace. -ESRCH: no such process.
 * *out: caller frees with sockdiag_close(). */
int sockdiag_open(pid_t netns_of, sockdiag **out);

/* Close the handle (NULL is fine). */
void sockdiag_close(sockdiag *sd);

/* Message of the last error on sd (borrowed, valid until the next call on sd); "" if none. */
const char *sockdiag_errmsg(const sockdiag *sd);

/* Bound on the entries one dump may return before a lookup gives up with PTB_ETOOBIG (and the
 * dump is abandoned). 0 restores the default (1M). */
void sockdiag_set_max_entries(sockdiag *sd, uint32_t max_entries);

/* The inode of the socket open as fd in process pid (a thread id works too), from
 * readlink("/proc/PID/fd/FD"). -ENOENT: the process or the fd is gone; -ENOTSOCK: the fd is
 * not a socket; -EACCES: no right to look (ptrace access mode); PTB_EINVAL: pid <= 0 or fd < 0.
 * The answer may be stale by the time it is used: the tracer asks while the tracee is stopped. */
int sockdiag_inode_of(pid_t pid, int fd, uint64_t *inode);

/* Find the socket with that inode in sd's namespace and describe it in *out (written only on
 * success). Tries the cheap tables first: unix (exact), UDP v4, v6, TCP listeners v4, v6, other
 * TCP v4, v6, then UDP-Lite v4/v6 and raw v4/v6; a table the kernel does not support is skipped.
 * -ENOENT: no such socket (it may be closed already; socket inodes are 32-bit numbers, larger
 * ones are never found); -EAFNOSUPPORT (from the hint variant): a family sock_diag is not asked
 * about here; -ETIMEDOUT: the kernel did not answer within 2 s; PTB_ETOOBIG: see
 * sockdiag_set_max_entries. */
int sockdiag_lookup(sockdiag *sd, uint64_t inode, sockdiag_info *out);

/* The same, skipping what the caller already knows (typically the arguments of socket()):
 * family 0 = unknown (same as sockdiag_lookup); AF_UNIX: the unix request only; AF_INET or
 * AF_INET6: that family only, and with protocol IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE or
 * IPPROTO_RAW (any raw socket) only that table; another protocol (0 included) tries every table
 * of the family. A wrong hint gives -ENOENT, not a wider search. */
int sockdiag_lookup_hint(sockdiag *sd, uint64_t inode, int family, int protocol,
                         sockdiag_info *out);

/* "tcp", "udp", "udplite", "raw", "unix", or "?" (static storage). The family is separate. */
const char *sockdiag_proto_name(const sockdiag_info *i);

/* "ESTABLISHED", "LISTEN", "CLOSE", ... for a state number, "?" if unknown (static storage). */
const char *sockdiag_state_name(uint8_t state);

#endif
