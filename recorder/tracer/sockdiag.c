/* sockdiag: socket inode -> 5-tuple or unix path, through NETLINK_SOCK_DIAG (see sockdiag.h).
 *
 * Wire format (linux/sock_diag.h, inet_diag.h, unix_diag.h). Every request is one netlink message
 * of type SOCK_DIAG_BY_FAMILY whose payload starts with the family byte:
 *
 *   unix:  nlmsghdr | unix_diag_req { family=AF_UNIX, protocol=0, pad, states, ino, show, cookie }
 *          sent without NLM_F_DUMP: the kernel finds the socket by ino (unix_lookup_by_ino) and
 *          answers one unix_diag_msg { family, type, state, pad, ino, cookie } + attributes
 *          (UNIX_DIAG_NAME: sun_path bytes, UNIX_DIAG_PEER: u32 inode), or NLMSG_ERROR -ENOENT.
 *   inet:  nlmsghdr | inet_diag_req_v2 { family, protocol, ext=0, pad, states, id=0 } with
 *          NLM_F_DUMP: the kernel answers with multipart messages, each an inet_diag_msg
 *          { family, state, timer, retrans, id { sport, dport (big endian), src[4], dst[4], if,
 *          cookie }, expires, rqueue, wqueue, uid, inode } + attributes, ending with NLMSG_DONE
 *          (payload: int error). inet_diag has no lookup by inode, hence the dump.
 *
 * Stopping early. The kernel fills the next batch of a dump only when the previous one has been
 * read, so what it spends is bounded by where the match is plus one batch; but a dump cannot be
 * cancelled, and a new request on a socket whose dump still runs fails with EBUSY. So once the
 * inode is found, the rest of that read is skipped (headers only, looking for NLMSG_DONE) and, if
 * the dump is not over, the netlink socket is replaced (sd_reset: a new socket in the handle's
 * namespace) rather than drained: a new socket costs ~8 us (~65 us with the thread entering
 * another namespace), draining makes the kernel walk the rest of its tables (up to ~1 ms, see
 * sd_tables). An error or a reply that fails a check also ends in a reset, so the handle is
 * always ready for the next request.
 *
 * Which dumps, in what order, and what they cost: see sd_tables. A dump refused at its start
 * (NLMSG_ERROR: no such protocol handler, no IPv6) marks that table absent in the handle, so that
 * the kernel is not asked again (each such request may make it run modprobe).
 *
 * Everything from the kernel is checked: sender (nl_pid 0), sequence, message and attribute
 * lengths (mnl_nlmsg_ok, mnl_attr_parse, mnl_attr_validate), family and inode of the matched
 * entry, the length of a unix name; a failure is PTB_ECORRUPT, never a crash or a truncation. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sockdiag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* The kernel sizes each dump batch to the reader's buffer (netlink_dump: max_recvmsg_len, at
 * most 32 KiB). 8 KiB is ~70 inet entries: the kernel fills at most that many past a match, and
 * measured full dumps took no longer than with 32 KiB reads. */
#define SD_BUF_SIZE 8192
#define SD_MAX_ENTRIES_DEFAULT (1u << 20)
#define SD_RECV_TIMEOUT_S 2    /* the kernel answers at once; this only bounds a broken kernel */
#define SD_FOREIGN_DROP_MAX 64 /* datagrams not from the kernel dropped per read */
#define SD_ABSENT 1            /* sd_query: the kernel has no handler for that table */

/* TCP state bits for idiag_states (include/net/tcp_states.h numbers). */
#define SD_TCPF_TIME_WAIT (1u << 6)
#define SD_TCPF_LISTEN (1u << 10)
#define SD_TCPF_NEW_SYN_RECV (1u << 12)

/* The inet dumps, in the order sockdiag_lookup tries them: cheapest first. What a dump costs is
 * mostly the kernel walking hash tables bucket by bucket, empty buckets included, whatever the
 * number of sockets: measured on a 2-core VM with 262144 TCP ehash buckets (sized from RAM at
 * boot, shared by all namespaces unless net.ipv4.tcp_child_ehash_entries is set), a UDP dump
 * ~15 us, TCP LISTEN only ~10 us (the listening hash is small, and a dump of that state alone
 * skips the others), the rest of TCP ~1.2 ms (the bind hash, walked for state bit 13
 * BOUND_INACTIVE that finds sockets only bound (6.8+), then ehash). So TCP is split in two:
 * listeners are found without the big walk. TIME_WAIT entries have no inode and are never asked
 * for (they can be most of a busy server's table); the kernel adds request
 * sockets (NEW_SYN_RECV, no inode either) back whenever SYN_RECV is asked for, and SYN_RECV
 * itself stays: a fast-open child is a real socket in that state. Index + 1 is the bit of a
 * dump in sd->absent (bit 0 is unix). */
static const struct {
    uint8_t family, protocol;
    uint32_t states;
} sd_tables[] = {
    {AF_INET, IPPROTO_UDP, ~0u},
    {AF_INET6, IPPROTO_UDP, ~0u},
    {AF_INET, IPPROTO_TCP, SD_TCPF_LISTEN},
    {AF_INET6, IPPROTO_TCP, SD_TCPF_LISTEN},
    {AF_INET, IPPROTO_TCP, ~(SD_TCPF_LISTEN | SD_TCPF_TIME_WAIT | SD_TCPF_NEW_SYN_RECV)},
    {AF_INET6, IPPROTO_TCP, ~(SD_TCPF_LISTEN | SD_TCPF_TIME_WAIT | SD_TCPF_NEW_SYN_RECV)},
    {AF_INET, IPPROTO_UDPLITE, ~0u},
    {AF_INET6, IPPROTO_UDPLITE, ~0u},
    {AF_INET, IPPROTO_RAW, ~0u},
    {AF_INET6, IPPROTO_RAW, ~0u},
};
#define SD_NTABLES (sizeof sd_tables / sizeof sd_tables[0])

struct sockdiag {
    struct mnl_socket *nl; /* NULL only after a failed sd_reset; then every call returns broken */
    int broken;
    int nsfd;        /* -1: the socket lives in the opener's namespace; else /proc/PID/ns/net */
    uint32_t portid; /* of nl */
    uint32_t seq;    /* of the last request */
    uint32_t max_entries;
    uint32_t absent; /* tables without a kernel handler, see sd_tables */
    ptb_errbuf err;
    _Alignas(8) char buf[SD_BUF_SIZE];
};

/* ------------------------------------------------------------------ the netlink socket */

static int sd_nl_create(struct mnl_socket **out)
{
    struct mnl_socket *nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
    if (!nl)
        return -errno;
    struct timeval tv = {.tv_sec = SD_RECV_TIMEOUT_S};
    if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) != 0) {
        int rc = -errno;
        mnl_socket_close(nl);
        return rc;
    }
    *out = nl;
    return 0;
}

struct sd_ns_job {
    int nsfd;
    struct mnl_socket *nl;
    int rc;
};

/* Runs on its own thread: setns(CLONE_NEWNET) moves only the calling thread, and a socket keeps
 * the namespace it was created in, so the thread can end right after. */
static void *sd_ns_thread(void *arg)
{
    struct sd_ns_job *j = arg;
    if (setns(j->nsfd, CLONE_NEWNET) != 0) /* EPERM: no CAP_SYS_ADMIN over that netns */
        j->rc = errno == EACCES ? -EPERM : -errno;
    else
        j->rc = sd_nl_create(&j->nl);
    return NULL;
}

static int sd_nl_create_in(int nsfd, struct mnl_socket **out)
{
    if (nsfd < 0)
        return sd_nl_create(out);
    struct sd_ns_job j = {.nsfd = nsfd, .nl = NULL, .rc = 0};
    pthread_t t;
    int e = pthread_create(&t, NULL, sd_ns_thread, &j);
    if (e != 0)
        return -e;
    pthread_join(t, NULL);
    if (j.rc == 0)
        *out = j.nl;
    return j.rc;
}

/* Replace the netlink socket (after an error or an abandoned dump). */
static void sd_reset(sockdiag *sd)
{
    if (sd->nl)
        mnl_socket_close(sd->nl);
    sd->nl = NULL;
    int rc = sd_nl_create_in(sd->nsfd, &sd->nl); /* leaves nl NULL on failure */
    if (rc != 0)
        sd->broken = rc;
    else
        sd->portid = mnl_socket_get_portid(sd->nl);
}

static int sd_fail(sockdiag *sd, int rc, const char *what)
{
    sd_reset(sd);
    return ptb_errf(&sd->err, rc, "sock_diag: %s: %s", what, ptb_strerror(rc));
}

/* One datagram from the kernel into sd->buf: its length, or an error. */
static ssize_t sd_recv(sockdiag *sd)
{
    for (int dropped = 0; dropped < SD_FOREIGN_DROP_MAX; dropped++) {
        struct sockaddr_nl addr;
        struct iovec iov = {.iov_base = sd->buf, .iov_len = sizeof sd->buf};
        struct msghdr msg = {
            .msg_name = &addr, .msg_namelen = sizeof addr, .msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = recvmsg(mnl_socket_get_fd(sd->nl), &msg, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        if (n == 0)
            return PTB_ECORRUPT; /* would loop for ever on a dump */
        if (msg.msg_flags & MSG_TRUNC)
            return PTB_ECORRUPT; /* the kernel never sends more than we read */
        if (msg.msg_namelen != sizeof addr || addr.nl_family != AF_NETLINK || addr.nl_pid != 0)
            continue; /* another process writing to our port: not an answer */
        return n;
    }
    return PTB_ECORRUPT;
}

/* ------------------------------------------------------------------ parsing one entry */

struct sd_attrs {
    const struct nlattr *name, *peer, *proto;
};

static int sd_unix_attr(const struct nlattr *a, void *data)
{
    struct sd_attrs *at = data;
    switch (mnl_attr_get_type(a)) {
    case UNIX_DIAG_NAME:
        if (mnl_attr_get_payload_len(a) > sizeof(((struct sockaddr_un *)0)->sun_path))
            return MNL_CB_ERROR;
        at->name = a;
        break;
    case UNIX_DIAG_PEER:
        if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
            return MNL_CB_ERROR;
        at->peer = a;
        break;
    default: break; /* attributes we did not ask for or do not know: ignored */
    }
    return MNL_CB_OK;
}

static int sd_inet_attr(const struct nlattr *a, void *data)
{
    struct sd_attrs *at = data;
    if (mnl_attr_get_type(a) == INET_DIAG_PROTOCOL) {
        if (mnl_attr_validate(a, MNL_TYPE_U8) < 0)
            return MNL_CB_ERROR;
        at->proto = a;
    }
    return MNL_CB_OK;
}

/* sun_path bytes as text: a path up to its first NUL, an abstract name as '@' + its bytes with
 * NULs also written '@'. n <= 108, so it fits sizeof unix_path with its NUL. */
static void sd_unix_name(const char *p, size_t n, char *dst)
{
    if (n > 0 && p[0] == '\0') {
        dst[0] = '@';
        for (size_t i = 1; i < n; i++)
            dst[i] = p[i] ? p[i] : '@';
        dst[n] = '\0';
    } else {
        size_t k = strnlen(p, n);
        memcpy(dst, p, k);
        dst[k] = '\0';
    }
}

/* 1 and *out filled when nlh describes inode, 0 when it is another socket, PTB_ECORRUPT. */
static int sd_parse_unix(const struct nlmsghdr *nlh, uint32_t inode, sockdiag_info *out)
{
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct unix_diag_msg))
        return PTB_ECORRUPT;
    const struct unix_diag_msg *m = mnl_nlmsg_get_payload(nlh);
    if (m->udiag_ino != inode)
        return 0;
    struct sd_attrs at = {0};
    if (m->udiag_family != AF_UNIX ||
        mnl_attr_parse(nlh, sizeof *m, sd_unix_attr, &at) != MNL_CB_OK)
        return PTB_ECORRUPT;
    memset(out, 0, sizeof *out);
    out->family = AF_UNIX;
    out->type = m->udiag_type;
    out->state = m->udiag_state;
    if (at.name)
        sd_unix_name(mnl_attr_get_payload(at.name), mnl_attr_get_payload_len(at.name),
                     out->unix_path);
    if (at.peer)
        out->unix_peer_inode = mnl_attr_get_u32(at.peer);
    return 1;
}

static int sd_parse_inet(const struct nlmsghdr *nlh, uint32_t inode, int family, int protocol,
                         sockdiag_info *out)
{
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct inet_diag_msg))
        return PTB_ECORRUPT;
    const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
    if (m->idiag_inode != inode)
        return 0;
    struct sd_attrs at = {0};
    if (m->idiag_family != family || mnl_attr_parse(nlh, sizeof *m, sd_inet_attr, &at) != MNL_CB_OK)
        return PTB_ECORRUPT;
    memset(out, 0, sizeof *out);
    out->family = family;
    out->protocol = protocol;
    out->type = protocol == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
    if (protocol == IPPROTO_RAW) {
        /* raw sockets report the protocol given to socket() */
        out->type = SOCK_RAW;
        out->protocol = at.proto ? mnl_attr_get_u8(at.proto) : IPPROTO_RAW;
    }
    out->state = m->idiag_state;
    if (!inet_ntop(family, m->id.idiag_src, out->local_ip, sizeof out->local_ip) ||
        !inet_ntop(family, m->id.idiag_dst, out->remote_ip, sizeof out->remote_ip))
        return PTB_ECORRUPT;
    out->local_port = ntohs(m->id.idiag_sport);
    out->remote_port = ntohs(m->id.idiag_dport);
    return 1;
}

/* ------------------------------------------------------------------ one request */

/* Send req (a unix_diag_req or inet_diag_req_v2) and read the answer, looking for inode.
 * dump: a multipart answer ending in NLMSG_DONE; else one message. Returns 0 with *out filled,
 * -ENOENT, SD_ABSENT (a dump the kernel has no handler for), or an error (the socket is then
 * reset). On every return the socket has no answer pending. */
static int sd_query(sockdiag *sd, const void *req, size_t reqlen, bool dump, uint32_t inode,
                    int family, int protocol, sockdiag_info *out)
{
    if (!sd->nl)
        return ptb_errf(&sd->err, sd->broken, "sock_diag: handle unusable after a failed reset");
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(sd->buf);
    nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    nlh->nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
    nlh->nlmsg_seq = ++sd->seq;
    memcpy(mnl_nlmsg_put_extra_header(nlh, reqlen), req, reqlen);
    if (mnl_socket_sendto(sd->nl, nlh, nlh->nlmsg_len) < 0)
        return sd_fail(sd, -errno, "send");

    uint32_t entries = 0;
    bool found = false;
    for (;;) {
        ssize_t n = sd_recv(sd);
        if (n < 0)
            return sd_fail(sd, (int)n, "receive");
        int left = (int)n;
        for (nlh = (struct nlmsghdr *)sd->buf; mnl_nlmsg_ok(nlh, left);
             nlh = mnl_nlmsg_next(nlh, &left)) {
            if (!mnl_nlmsg_seq_ok(nlh, sd->seq) || !mnl_nlmsg_portid_ok(nlh, sd->portid))
                return sd_fail(sd, PTB_ECORRUPT, "reply to another request");
            if (nlh->nlmsg_type == NLMSG_DONE) {
                /* end of dump; its payload is an int error (0, or -EINTR etc.) */
                if (found)
                    return 0;
                if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int) &&
                    *(const int *)mnl_nlmsg_get_payload(nlh) < 0)
                    return ptb_errf(&sd->err, *(const int *)mnl_nlmsg_get_payload(nlh),
                                    "sock_diag: dump failed");
                return -ENOENT;
            }
            if (nlh->nlmsg_type == NLMSG_ERROR) {
                /* ends a request: an error before any entry, or the unix lookup's answer */
                if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nlmsgerr))
                    return sd_fail(sd, PTB_ECORRUPT, "short error message");
                int e = ((const struct nlmsgerr *)mnl_nlmsg_get_payload(nlh))->error;
                if (found)
                    return 0;
                if (e == 0) /* an acknowledgement without an answer */
                    return -ENOENT;
                if (e == -ENOENT) /* no such inode, or (dump) no such protocol handler */
                    return dump ? SD_ABSENT : -ENOENT;
                if (dump && (e == -EINVAL || e == -EOPNOTSUPP || e == -EAFNOSUPPORT))
                    return SD_ABSENT;
                return e > 0 ? sd_fail(sd, PTB_ECORRUPT, "positive error code")
                             : ptb_errf(&sd->err, e, "sock_diag: %s", ptb_strerror(e));
            }
            if (nlh->nlmsg_type == NLMSG_NOOP)
                continue;
            if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
                return sd_fail(sd, PTB_ECORRUPT, "unexpected message type");
            if (found)
                continue; /* the rest of this read: headers only, for NLMSG_DONE */
            if (++entries > sd->max_entries) {
                sd_reset(sd);
                return ptb_errf(&sd->err, PTB_ETOOBIG,
                                "sock_diag: dump of family %d protocol %d over %u entries", family,
                                protocol, sd->max_entries);
            }
            int rc = family == AF_UNIX ? sd_parse_unix(nlh, inode, out)
                                       : sd_parse_inet(nlh, inode, family, protocol, out);
            if (rc < 0)
                return sd_fail(sd, rc, "malformed socket entry");
            if (rc == 1 && !dump)
                return 0; /* a single answer: nothing follows */
            found = rc == 1;
        }
        if (left != 0)
            return sd_fail(sd, PTB_ECORRUPT, "truncated message");
        if (!dump) /* the single answer was not about our inode, or was missing */
            return sd_fail(sd, PTB_ECORRUPT, "answer about another socket");
        if (found) {
            sd_reset(sd); /* the dump goes on: abandon it (see the top of the file) */
            return 0;
        }
    }
}

static int sd_query_unix(sockdiag *sd, uint32_t inode, bool probe, sockdiag_info *out)
{
    struct unix_diag_req r = {
        .sdiag_family = AF_UNIX,
        .udiag_states = probe ? 0 : ~0u,
        .udiag_ino = inode,
        .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER,
        .udiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE},
    };
    return sd_query(sd, &r, sizeof r, probe, inode, AF_UNIX, 0, out);
}

static int sd_query_inet(sockdiag *sd, size_t t, uint32_t inode, sockdiag_info *out)
{
    struct inet_diag_req_v2 r = {
        .sdiag_family = sd_tables[t].family,
        .sdiag_protocol = sd_tables[t].protocol,
        .idiag_states = sd_tables[t].states,
    };
    return sd_query(sd, &r, sizeof r, true, inode, r.sdiag_family, r.sdiag_protocol, out);
}

/* ------------------------------------------------------------------ API */

/* The fd of /proc/PID/ns/net in *nsfd, or -1 when it is the calling thread's namespace already
 * (so that no privilege is needed then). */
static int sd_ns_open(pid_t pid, int *nsfd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return e == ENOENT ? -ESRCH : e == EACCES || e == EPERM ? -EPERM : -e;
    }
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat("/proc/thread-self/ns/net", &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        close(fd);
        fd = -1;
    }
    *nsfd = fd;
    return 0;
}

int sockdiag_open(pid_t netns_of, sockdiag **out)
{
    if (!out || netns_of < 0)
        return PTB_EINVAL;
    *out = NULL;
    int nsfd = -1;
    if (netns_of > 0) {
        int rc = sd_ns_open(netns_of, &nsfd);
        if (rc != 0)
            return rc;
    }
    sockdiag *sd = calloc(1, sizeof *sd);
    if (!sd) {
        if (nsfd >= 0)
            close(nsfd);
        return PTB_ENOMEM;
    }
    sd->nsfd = nsfd;
    sd->max_entries = SD_MAX_ENTRIES_DEFAULT;
    int rc = sd_nl_create_in(nsfd, &sd->nl);
    if (rc != 0) {
        sockdiag_close(sd);
        return rc;
    }
    sd->portid = mnl_socket_get_portid(sd->nl);
    /* Is unix_diag there? Without it every unix lookup would ask the kernel to load it. A dump
     * for no state returns nothing, but tells. */
    sockdiag_info dummy;
    rc = sd_query_unix(sd, 0, true, &dummy);
    if (rc == SD_ABSENT)
        sd->absent |= 1;
    else if (rc != -ENOENT) {
        sockdiag_close(sd);
        return rc;
    }
    sd->err.msg[0] = '\0';
    *out = sd;
    return 0;
}

void sockdiag_close(sockdiag *sd)
{
    if (!sd)
        return;
    if (sd->nl)
        mnl_socket_close(sd->nl);
    if (sd->nsfd >= 0)
        close(sd->nsfd);
    free(sd);
}

const char *sockdiag_errmsg(const sockdiag *sd)
{
    return sd ? sd->err.msg : "";
}

void sockdiag_set_max_entries(sockdiag *sd, uint32_t max_entries)
{
    if (sd)
        sd->max_entries = max_entries ? max_entries : SD_MAX_ENTRIES_DEFAULT;
}

int sockdiag_inode_of(pid_t pid, int fd, uint64_t *inode)
{
    if (pid <= 0 || fd < 0 || !inode)
        return PTB_EINVAL;
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
    ssize_t n = readlink(path, link, sizeof link);
    if (n < 0)
        return -errno;
    /* A file's link is an absolute path ("/..."), so a file named "socket:[1]" cannot match. */
    static const char pre[] = "socket:[";
    if ((size_t)n >= sizeof link || (size_t)n < sizeof pre || memcmp(link, pre, sizeof pre - 1))
        return -ENOTSOCK;
    uint64_t v = 0;
    for (ssize_t i = sizeof pre - 1; i < n - 1; i++) {
        unsigned d = (unsigned char)link[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return PTB_ECORRUPT;
        v = v * 10 + d;
    }
    if (link[n - 1] != ']' || v == 0)
        return PTB_ECORRUPT;
    *inode = v;
    return 0;
}

/* The tables the hint allows, in order; 0 with *out filled, -ENOENT, or an error. */
static int sd_search(sockdiag *sd, uint32_t inode, int family, int protocol, sockdiag_info *out)
{
    if ((family == 0 || family == AF_UNIX) && !(sd->absent & 1)) {
        int rc = sd_query_unix(sd, inode, false, out);
        if (rc != -ENOENT || family == AF_UNIX)
            return rc;
    }
    bool known = protocol == IPPROTO_TCP || protocol == IPPROTO_UDP ||
                 protocol == IPPROTO_UDPLITE || protocol == IPPROTO_RAW;
    for (size_t t = 0; t < SD_NTABLES && family != AF_UNIX; t++) {
        if ((family != 0 && sd_tables[t].family != family) ||
            (family != 0 && known && sd_tables[t].protocol != protocol) || (sd->absent & (2u << t)))
            continue;
        int rc = sd_query_inet(sd, t, inode, out);
        if (rc == SD_ABSENT)
            sd->absent |= 2u << t;
        else if (rc != -ENOENT)
            return rc;
    }
    return -ENOENT;
}

int sockdiag_lookup_hint(sockdiag *sd, uint64_t inode, int family, int protocol, sockdiag_info *out)
{
    if (!sd || !out || inode == 0)
        return PTB_EINVAL;
    if (family != 0 && family != AF_UNIX && family != AF_INET && family != AF_INET6)
        return ptb_errf(&sd->err, -EAFNOSUPPORT, "sock_diag: family %d not supported", family);
    if (inode > UINT32_MAX)
        return -ENOENT; /* the kernel's socket inodes and diag fields are 32-bit */
    sockdiag_info tmp;
    int rc = sd_search(sd, (uint32_t)inode, family, protocol, &tmp);
    if (rc == 0)
        *out = tmp;
    return rc;
}

int sockdiag_lookup(sockdiag *sd, uint64_t inode, sockdiag_info *out)
{
    return sockdiag_lookup_hint(sd, inode, 0, 0, out);
}

const char *sockdiag_proto_name(const sockdiag_info *i)
{
    if (!i)
        return "?";
    if (i->family == AF_UNIX)
        return "unix";
    if (i->type == SOCK_RAW)
        return "raw";
    switch (i->protocol) {
    case IPPROTO_TCP: return "tcp";
    case IPPROTO_UDP: return "udp";
    case IPPROTO_UDPLITE: return "udplite";
    default: return "?";
    }
}

const char *sockdiag_state_name(uint8_t state)
{
    /* include/net/tcp_states.h */
    static const char *const names[] = {
        "?",         "ESTABLISHED", "SYN_SENT",     "SYN_RECV",       "FIN_WAIT1",
        "FIN_WAIT2", "TIME_WAIT",   "CLOSE",        "CLOSE_WAIT",     "LAST_ACK",
        "LISTEN",    "CLOSING",     "NEW_SYN_RECV", "BOUND_INACTIVE",
    };
    return state < sizeof names / sizeof names[0] ? names[state] : "?";
}
