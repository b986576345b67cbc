/* net_ns: the recorded tree's own network namespace (see net_ns.h).
 *
 * What net_ns_create() makes, in this order; a failure at any step undoes the steps before it
 * (net_ns_destroy on the half-made handle):
 *
 *   1. The namespace. A short-lived thread calls unshare(CLONE_NEWNET), opens
 *      /proc/thread-self/ns/net (the fd keeps the namespace alive once the thread is gone) and an
 *      rtnetlink socket, which stays bound to the namespace it was made in. So every later step
 *      inside the namespace is done from the caller's thread, which never moves.
 *   2. The veth pair, one RTM_NEWLINK in the host namespace with NLM_F_CREATE | NLM_F_EXCL:
 *        ifinfomsg | IFLA_IFNAME "ptbh<N>"
 *                  | IFLA_LINKINFO { IFLA_INFO_KIND "veth",
 *                                    IFLA_INFO_DATA { VETH_INFO_PEER: ifinfomsg
 *                                                       | IFLA_IFNAME "eth0"
 *                                                       | IFLA_NET_NS_FD fd } }
 *      The peer is born inside the namespace. EEXIST means another link (another recorder's)
 *      holds ptbh<N>: N + 1 is tried, so two recorders never share a name (N starts where
 *      the recorder's pid says, so a freed name is seldom reused at once).
 *   3. IPv6 address generation off on both ends (IFLA_AF_SPEC { AF_INET6 {
 *      IFLA_INET6_ADDR_GEN_MODE none } }, best effort): without a link-local address the kernel
 *      sends no DAD, router solicitation or MLD packet of its own on the pair, so what a capture
 *      sees there is the run's. Loopback keeps ::1.
 *   4. A /30 of 100.64.0.0/10 (RFC 6598, shared address space: not routed on the internet and
 *      rarely on a LAN). There are 2^20 of them; the first tried is a hash of the recorder's pid
 *      (multiplying by an odd constant is a bijection on 20 bits, so recorders whose pids differ
 *      in their low 20 bits start on different subnets), then the next ones. A subnet is skipped
 *      when an IPv4 address of the host (RTM_GETADDR dump, local or point-to-point peer) lies in
 *      it. The check and the RTM_NEWADDR of X.1/30 on the host end are one step under a lock
 *      (ns_lock: an abstract unix socket name, per network namespace), so two recorders, or two
 *      threads of one, never take the same subnet: without it both could find it free.
 *   5. X.1/30 on the host end, X.2/30 on eth0, both up, lo up, default route inside via X.1.
 *   6. NAT (options.nat): the nft program is fed a script on its stdin that replaces the table
 *      ptb_<pid>_<N> (add, delete, add again: one transaction, so a stale table of the same name
 *      goes), then net.ipv4.ip_forward is set to 1 if it was 0. nft runs first so that a machine
 *      without nftables is left exactly as it was.
 *
 * nft is run with posix_spawn (no shell; posix_spawn is safe in a multi-threaded process where
 * fork + exec is not), searched in PATH then in /usr/sbin and /sbin (root's PATH has them, a
 * sudo'd or cron environment may not). Its stdin is a pipe whose read end the parent keeps open
 * until the script is written: the script is far under the pipe's capacity, so the write neither
 * blocks nor raises SIGPIPE when nft dies first. Its stdout and stderr are read with poll under a
 * deadline (NS_NFT_TIMEOUT_MS, then SIGKILL), stdout up to NS_NFT_OUT_MAX.
 *
 * Everything read from the kernel is checked (sequence, port, message and attribute lengths); a
 * kernel error comes with its extended ack text when the kernel gives one. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "net_ns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define NS_NL_BUF 32768          /* MNL_SOCKET_DUMP_SIZE: the kernel's largest dump batch */
#define NS_NL_TIMEOUT_S 2        /* the kernel answers at once; this bounds a broken one */
#define NS_LINK_TRIES 4096       /* ptbh0 .. ptbh4095 */
#define NS_SUBNET_TRIES 256      /* /30s tried from the pid's own */
#define NS_CGNAT_BASE 0x64400000 /* 100.64.0.0 */
#define NS_SUBNET_BITS 20        /* 100.64.0.0/10 holds 2^20 /30s */
#define NS_LOCK_TRIES 5000       /* 1 ms apart: 5 s; the lock is held for ~1 ms */
#define NS_NFT_TIMEOUT_MS 10000
#define NS_NFT_OUT_MAX (256u << 10) /* `nft list tables`: ~25 bytes a table, 10k tables */
#define NS_INNER_IFNAME "eth0"
#define NS_NFT_MISSING                                                                             \
    "NAT needs nftables (the nft program, package nftables), which is not installed; record "      \
    "with --no-nat (the command then reaches only this host) or --net off"

/* ------------------------------------------------------------------ rtnetlink */

typedef struct ns_nl {
    struct mnl_socket *sock;
    uint32_t portid, seq;
    char extack[160]; /* the kernel's text for the last error, "" if none */
    _Alignas(8) char buf[NS_NL_BUF];
} ns_nl;

static void ns_nl_close(ns_nl *nl)
{
    if (!nl)
        return;
    if (nl->sock)
        mnl_socket_close(nl->sock);
    free(nl);
}

/* A NETLINK_ROUTE socket in the calling thread's namespace; caller frees with ns_nl_close. */
static int ns_nl_open(ns_nl **out)
{
    ns_nl *nl = calloc(1, sizeof *nl);
    if (!nl)
        return PTB_ENOMEM;
    nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (!nl->sock) {
        int rc = -errno;
        free(nl);
        return rc;
    }
    int one = 1;
    struct timeval tv = {.tv_sec = NS_NL_TIMEOUT_S};
    /* extended acks (4.12+) give the kernel's reason; capped acks keep error replies short */
    (void)mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof one);
    (void)mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof one);
    if (setsockopt(mnl_socket_get_fd(nl->sock), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) != 0) {
        int rc = -errno;
        ns_nl_close(nl);
        return rc;
    }
    nl->portid = mnl_socket_get_portid(nl->sock);
    nl->seq = (uint32_t)time(NULL);
    *out = nl;
    return 0;
}

/* A request header in nl->buf; the payload follows with mnl_nlmsg_put_extra_header. */
static struct nlmsghdr *ns_nl_msg(ns_nl *nl, uint16_t type, uint16_t flags)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    nlh->nlmsg_seq = ++nl->seq;
    return nlh;
}

static int ns_extack_attr(const struct nlattr *a, void *data)
{
    ns_nl *nl = data;
    if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
        snprintf(nl->extack, sizeof nl->extack, "%s", mnl_attr_get_str(a));
    return MNL_CB_OK;
}

/* An NLMSG_ERROR: 0 for an ack, else the (negative) error, its text in nl->extack. */
static int ns_nl_error(ns_nl *nl, const struct nlmsghdr *nlh)
{
    size_t len = mnl_nlmsg_get_payload_len(nlh);
    if (len < sizeof(struct nlmsgerr))
        return PTB_ECORRUPT;
    const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
    if (e->error > 0 || e->error < -4095)
        return PTB_ECORRUPT;
    if (e->error == 0)
        return 0;
    if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
        /* the attributes follow the request as echoed: its header alone when capped */
        size_t off = sizeof *e;
        if (!(nlh->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len >= sizeof(struct nlmsghdr))
            off += MNL_ALIGN(e->msg.nlmsg_len - sizeof(struct nlmsghdr));
        if (off <= len)
            (void)mnl_attr_parse(nlh, (unsigned)off, ns_extack_attr, nl);
    }
    return e->error;
}

/* Send the request in nl->buf and read its answer: with NLM_F_DUMP every message until
 * NLMSG_DONE, else the reply (if any) and the ack. cb (may be NULL) sees each data message and
 * returns 0 or a negative code; after an error it sees no more, but the answer is still read to
 * its end. Returns 0 or a negative code. */
static int ns_nl_talk(ns_nl *nl, struct nlmsghdr *req, int (*cb)(const struct nlmsghdr *, void *),
                      void *arg)
{
    uint32_t seq = req->nlmsg_seq;
    bool dump = (req->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
    if (!dump)
        req->nlmsg_flags |= NLM_F_ACK;
    nl->extack[0] = '\0';
    if (mnl_socket_sendto(nl->sock, req, req->nlmsg_len) < 0)
        return -errno;
    int rc = 0; /* a callback's error: the rest of the answer is still read */
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof nl->buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        int left = (int)n;
        const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->buf;
        if (!mnl_nlmsg_ok(nlh, left))
            return PTB_ECORRUPT;
        for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
            if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != nl->portid)
                continue; /* an answer to an earlier request that timed out */
            switch (nlh->nlmsg_type) {
            case NLMSG_NOOP: break;
            case NLMSG_ERROR: {
                int e = ns_nl_error(nl, nlh);
                return e ? e : rc;
            }
            case NLMSG_DONE:
                if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int) &&
                    *(const int *)mnl_nlmsg_get_payload(nlh) < 0)
                    return *(const int *)mnl_nlmsg_get_payload(nlh);
                return rc;
            case NLMSG_OVERRUN: return PTB_ECORRUPT;
            default:
                if (cb && rc == 0)
                    rc = cb(nlh, arg);
            }
        }
    }
}

static int ns_link_index_cb(const struct nlmsghdr *nlh, void *arg)
{
    if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(struct ifinfomsg))
        return PTB_ECORRUPT;
    const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    if (ifi->ifi_index <= 0)
        return PTB_ECORRUPT;
    *(int *)arg = ifi->ifi_index;
    return 0;
}

/* ifindex of the link called name in nl's namespace: 0 or -ENODEV. */
static int ns_link_index(ns_nl *nl, const char *name, int *index)
{
    struct nlmsghdr *nlh = ns_nl_msg(nl, RTM_GETLINK, 0);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    *index = 0;
    int rc = ns_nl_talk(nl, nlh, ns_link_index_cb, index);
    return rc == 0 && *index == 0 ? PTB_ECORRUPT : rc;
}

static int ns_link_up(ns_nl *nl, int index)
{
    struct nlmsghdr *nlh = ns_nl_msg(nl, RTM_NEWLINK, 0);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
    ifi->ifi_change = IFF_UP;
    ifi->ifi_flags = IFF_UP;
    return ns_nl_talk(nl, nlh, NULL, NULL);
}

/* No IPv6 link-local address on the link (see step 3); errors are the caller's to ignore. */
static int ns_link_no_ipv6ll(ns_nl *nl, int index)
{
    struct nlmsghdr *nlh = ns_nl_msg(nl, RTM_NEWLINK, 0);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
    struct nlattr *spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
    struct nlattr *in6 = mnl_attr_nest_start(nlh, AF_INET6);
    mnl_attr_put_u8(nlh, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
    mnl_attr_nest_end(nlh, in6);
    mnl_attr_nest_end(nlh, spec);
    return ns_nl_talk(nl, nlh, NULL, NULL);
}

/* Delete a link by index, or by name when index is 0. */
static int ns_link_del(ns_nl *nl, int index, const char *name)
{
    struct nlmsghdr *nlh = ns_nl_msg(nl, RTM_DELLINK, 0);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
    if (index == 0)
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    return ns_nl_talk(nl, nlh, NULL, NULL);
}

/* The veth pair: name in nl's namespace, peer in the namespace of nsfd (step 2). */
static int ns_veth_add(ns_nl *nl, const char *name, const char *peer, int nsfd)
{
    struct nlmsghdr *nlh = ns_nl_msg(nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    struct nlattr *p = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
    struct ifinfomsg *pifi = mnl_nlmsg_put_extra_header(nlh, sizeof *pifi); /* zeroed */
    pifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)nsfd);
    mnl_attr_nest_end(nlh, p);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, info);
    return ns_nl_talk(nl, nlh, NULL, NULL);
}

/* RTM_NEWADDR or RTM_DELADDR of addr/plen (host order) on index. */
static int ns_addr(ns_nl *nl, uint16_t type, int index, uint32_t addr, uint8_t plen)
{
    struct nlmsghdr *nlh = ns_nl_msg(nl, type, type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0);
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = plen;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (uint32_t)index;
    uint32_t be = htonl(addr);
    mnl_attr_put(nlh, IFA_LOCAL, sizeof be, &be);
    mnl_attr_put(nlh, IFA_ADDRESS, sizeof be, &be);
    return ns_nl_talk(nl, nlh, NULL, NULL);
}

/* Default route via gw (host order) out of index. */
static int ns_route_default(ns_nl *nl, int index, uint32_t gw)
{
    struct nlmsghdr *nlh = ns_nl_msg(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = AF_INET;
    rtm->rtm_dst_len = 0;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_STATIC;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
    uint32_t be = htonl(gw);
    mnl_attr_put(nlh, RTA_GATEWAY, sizeof be, &be);
    mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)index);
    return ns_nl_talk(nl, nlh, NULL, NULL);
}

struct ns_used {
    uint32_t net; /* the /30, host order */
    bool used;    /* an IPv4 address of some interface lies in it */
    const struct nlattr *tb[IFA_MAX + 1];
};

static int ns_addr_attr(const struct nlattr *a, void *data)
{
    struct ns_used *u = data;
    uint16_t t = mnl_attr_get_type(a);
    if (t == IFA_LOCAL || t == IFA_ADDRESS) {
        if (mnl_attr_get_payload_len(a) != sizeof(uint32_t))
            return MNL_CB_ERROR;
        u->tb[t] = a;
    }
    return MNL_CB_OK;
}

static int ns_addr_used_cb(const struct nlmsghdr *nlh, void *arg)
{
    struct ns_used *u = arg;
    if (nlh->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(nlh) < sizeof(struct ifaddrmsg))
        return PTB_ECORRUPT;
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    if (ifa->ifa_family != AF_INET)
        return 0;
    memset(u->tb, 0, sizeof u->tb);
    if (mnl_attr_parse(nlh, sizeof *ifa, ns_addr_attr, u) != MNL_CB_OK)
        return PTB_ECORRUPT;
    for (int t = IFA_ADDRESS; t <= IFA_LOCAL; t++) { /* local, and a point-to-point peer */
        uint32_t a;
        if (u->tb[t]) {
            memcpy(&a, mnl_attr_get_payload(u->tb[t]), sizeof a);
            u->used |= (ntohl(a) & ~3u) == u->net;
        }
    }
    return 0;
}

/* *used: some interface of nl's namespace has an IPv4 address in the /30 net (host order). */
static int ns_addr_used(ns_nl *nl, uint32_t net, bool *used)
{
    struct nlmsghdr *nlh = ns_nl_msg(nl, RTM_GETADDR, NLM_F_DUMP);
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    struct ns_used u = {.net = net, .used = false};
    int rc = ns_nl_talk(nl, nlh, ns_addr_used_cb, &u);
    *used = u.used;
    return rc;
}

/* ------------------------------------------------------------------ nft */

/* Spawn nft with args (NULL-terminated, without argv[0]); in (may be NULL) goes to its stdin.
 * stdout goes to *out (NUL-terminated, caller frees; NULL: discarded), the first line of stderr
 * to err (NULL: discarded). Returns nft's exit status (0..255), -ENOENT when nft is not
 * installed, -ETIMEDOUT, PTB_ETOOBIG (stdout over NS_NFT_OUT_MAX), PTB_EIO (killed by a signal)
 * or -errno. */
static int ns_nft(const char *const *args, const char *in, char **out, char *err, size_t errcap)
{
    const char *argv[8] = {"nft"};
    size_t na = 1;
    for (; args[na - 1]; na++) {
        if (na + 1 >= sizeof argv / sizeof argv[0])
            return PTB_EINVAL;
        argv[na] = args[na - 1];
    }
    argv[na] = NULL;
    size_t inlen = in ? strlen(in) : 0;
    if (inlen >= 4096) /* POSIX's least pipe capacity: the write below must not block */
        return PTB_EINVAL;
    if (out)
        *out = NULL;
    char ebuf[512], *obuf = out ? malloc(NS_NFT_OUT_MAX) : NULL;
    size_t len[2] = {0, 0}, cap[2] = {out ? NS_NFT_OUT_MAX - 1 : 0, sizeof ebuf - 1};
    char *dst[2] = {obuf, ebuf};
    int pin[2] = {-1, -1}, pio[2][2] = {{-1, -1}, {-1, -1}}, rc = 0; /* stdout, stderr */
    posix_spawn_file_actions_t fa;
    if ((out && !obuf) || posix_spawn_file_actions_init(&fa) != 0) {
        free(obuf);
        return PTB_ENOMEM;
    }
    if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pio[0], O_CLOEXEC) != 0 ||
        pipe2(pio[1], O_CLOEXEC) != 0) {
        rc = -errno;
        goto done;
    }
    if ((rc = -posix_spawn_file_actions_adddup2(&fa, pin[0], 0)) != 0 ||
        (rc = -posix_spawn_file_actions_adddup2(&fa, pio[0][1], 1)) != 0 ||
        (rc = -posix_spawn_file_actions_adddup2(&fa, pio[1][1], 2)) != 0)
        goto done;
    pid_t pid;
    int e = posix_spawnp(&pid, "nft", &fa, NULL, (char *const *)argv, environ);
    static const char *const paths[] = {"/usr/sbin/nft", "/sbin/nft"};
    for (size_t i = 0; e == ENOENT && i < sizeof paths / sizeof paths[0]; i++)
        e = posix_spawn(&pid, paths[i], &fa, NULL, (char *const *)argv, environ);
    if (e != 0) {
        rc = -e;
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        close(pio[i][1]);
        pio[i][1] = -1;
    }
    /* pin[0] stays open here until the script is in: no EPIPE, no SIGPIPE */
    if (inlen && write(pin[1], in, inlen) != (ssize_t)inlen)
        rc = errno ? -errno : PTB_EIO;
    close(pin[1]);
    close(pin[0]);
    pin[0] = pin[1] = -1;

    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct pollfd pf[2] = {{.fd = pio[0][0], .events = POLLIN},
                           {.fd = pio[1][0], .events = POLLIN}};
    while (rc == 0 && (pf[0].fd >= 0 || pf[1].fd >= 0)) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        int n = ms < NS_NFT_TIMEOUT_MS ? poll(pf, 2, (int)(NS_NFT_TIMEOUT_MS - ms)) : 0;
        if (n == 0)
            rc = -ETIMEDOUT;
        else if (n < 0 && errno != EINTR)
            rc = -errno;
        for (int i = 0; n > 0 && rc == 0 && i < 2; i++) {
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            char sink[1024]; /* what is not kept: stdout discarded, stderr past its first bytes */
            bool keep = dst[i] && len[i] < cap[i];
            ssize_t r =
                read(pf[i].fd, keep ? dst[i] + len[i] : sink, keep ? cap[i] - len[i] : sizeof sink);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                pf[i].fd = -1; /* EOF (or an error): closed at done */
            else if (keep)
                len[i] += (size_t)r;
            else if (i == 0 && dst[0])
                rc = PTB_ETOOBIG;
        }
    }
    if (rc != 0)
        kill(pid, SIGKILL);
    int st = 0, w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
        ;
    if (rc == 0)
        rc = w < 0 ? -errno : WIFEXITED(st) ? WEXITSTATUS(st) : PTB_EIO;

done:
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 2; i++) {
        int *fds[] = {&pin[i], &pio[0][i], &pio[1][i]};
        for (int k = 0; k < 3; k++)
            if (*fds[k] >= 0)
                close(*fds[k]);
    }
    if (err && errcap) {
        ebuf[len[1]] = '\0';
        size_t k = strcspn(ebuf, "\n");
        k = k < errcap ? k : errcap - 1;
        memcpy(err, ebuf, k);
        err[k] = '\0';
    }
    if (out && rc >= 0) {
        obuf[len[0]] = '\0';
        *out = obuf;
    } else {
        free(obuf);
    }
    return rc;
}

static int ns_nft_delete(const char *table)
{
    const char *args[] = {"delete", "table", "ip", table, NULL};
    return ns_nft(args, NULL, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ the namespace */

struct net_ns {
    int fd;           /* the namespace; -1 before it exists */
    ns_nl *host;      /* rtnetlink in the creator's namespace, kept for net_ns_destroy */
    int host_index;   /* ifindex of ptbh<N>; 0 before it exists */
    unsigned n;       /* the N of ptbh<N> and ptb_<pid>_<N> */
    uint32_t subnet;  /* the /30, host order */
    bool table;       /* the nftables table exists */
    bool forward_set; /* net.ipv4.ip_forward was 0 and was set to 1 for this namespace */
    char host_if[IFNAMSIZ];
    char host_addr[INET_ADDRSTRLEN], inner_addr[INET_ADDRSTRLEN];
    char table_name[48];
};

void net_ns_options_default(net_ns_options *o)
{
    memset(o, 0, sizeof *o);
    o->nat = true;
}

struct ns_birth {
    int fd;
    ns_nl *nl;
    int rc;
    const char *step;
};

/* Step 1, on its own thread: unshare moves only this thread, which then ends. */
static void *ns_birth_thread(void *arg)
{
    struct ns_birth *b = arg;
    b->step = "unshare(CLONE_NEWNET)";
    if (unshare(CLONE_NEWNET) != 0) {
        b->rc = -errno;
        return NULL;
    }
    b->step = "open /proc/thread-self/ns/net";
    b->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (b->fd < 0) {
        b->rc = -errno;
        return NULL;
    }
    b->step = "rtnetlink socket in the namespace";
    b->rc = ns_nl_open(&b->nl);
    return NULL;
}

static int ns_perm(ptb_errbuf *eb, const char *what)
{
    return ptb_errf(eb, -EPERM,
                    "network namespace needs root or CAP_NET_ADMIN and CAP_SYS_ADMIN (%s: %s)",
                    what, ptb_strerror(-EPERM));
}

static int ns_nlerr(ptb_errbuf *eb, const ns_nl *nl, int rc, const char *what)
{
    if (rc == -EPERM || rc == -EACCES)
        return ns_perm(eb, what);
    return ptb_errf(eb, rc, "network namespace: %s: %s%s%s", what, ptb_strerror(rc),
                    nl->extack[0] ? ": " : "", nl->extack);
}

static int ns_birth(net_ns *ns, ns_nl **inner, ptb_errbuf *eb)
{
    struct ns_birth b = {.fd = -1, .nl = NULL, .rc = 0, .step = "thread"};
    pthread_t t;
    int e = pthread_create(&t, NULL, ns_birth_thread, &b);
    if (e != 0)
        return ptb_errf(eb, -e, "network namespace: thread: %s", ptb_strerror(-e));
    pthread_join(t, NULL);
    ns->fd = b.fd;
    *inner = b.nl;
    if (b.rc == 0)
        return 0;
    if (b.rc == -EPERM || b.rc == -EACCES)
        return ns_perm(eb, b.step);
    if (b.rc == -EINVAL && !strncmp(b.step, "unshare", 7))
        return ptb_errf(eb, -EINVAL,
                        "network namespace: %s: kernel without network namespaces "
                        "(CONFIG_NET_NS)",
                        b.step);
    if (b.rc == -ENOSPC)
        return ptb_errf(eb, -ENOSPC,
                        "network namespace: %s: too many namespaces "
                        "(user.max_net_namespaces)",
                        b.step);
    return ptb_errf(eb, b.rc, "network namespace: %s: %s", b.step, ptb_strerror(b.rc));
}

/* Step 2: ptbh<N> for the first free N, starting from one that this recorder's pid picks: a
 * name freed by one recorder is then seldom taken at once by the next, so a name seen in a
 * listing most likely still means the recorder that made it. */
static int ns_make_veth(net_ns *ns, ptb_errbuf *eb)
{
    int rc = -EEXIST;
    unsigned first = ((unsigned)getpid() * 2654435761u) % NS_LINK_TRIES;
    for (unsigned i = 0; i < NS_LINK_TRIES && rc == -EEXIST; i++) {
        unsigned n = (first + i) % NS_LINK_TRIES;
        snprintf(ns->host_if, sizeof ns->host_if, "ptbh%u", n);
        if (if_nametoindex(ns->host_if) != 0)
            continue; /* taken: skip without asking the kernel to fail */
        rc = ns_veth_add(ns->host, ns->host_if, NS_INNER_IFNAME, ns->fd);
        ns->n = n;
    }
    if (rc == -EOPNOTSUPP)
        return ptb_errf(eb, rc, "network namespace: creating a veth pair: %s (kernel module veth)",
                        ptb_strerror(rc));
    if (rc != 0)
        return ns_nlerr(eb, ns->host, rc, "creating a veth pair");
    rc = ns_link_index(ns->host, ns->host_if, &ns->host_index);
    if (rc != 0) {
        ns_nlerr(eb, ns->host, rc, "finding the new veth link");
        (void)ns_link_del(ns->host, 0, ns->host_if);
        return rc;
    }
    return 0;
}

static uint32_t ns_subnet_start(void)
{
    return ((uint32_t)getpid() * 0x9E3779B1u) & ((1u << NS_SUBNET_BITS) - 1);
}

/* The lock over step 4 among the recorders (and threads) of one network namespace: a name in
 * the abstract unix socket namespace, which is per network namespace; one socket at a time can be
 * bound to it, and the kernel frees it when the holder closes it or dies. Without it, two
 * recorders could both find a subnet free and both take it. Returns the socket, or -errno. */
static int ns_lock(void)
{
    static const char name[] = "\0ptb-net-ns-subnet-lock";
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, name, sizeof name - 1);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + sizeof name - 1);
    for (int i = 0; i < NS_LOCK_TRIES; i++) {
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        if (bind(fd, (struct sockaddr *)&a, len) == 0)
            return fd;
        int e = errno;
        close(fd);
        if (e != EADDRINUSE)
            return -e;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    return -ETIMEDOUT;
}

/* Step 4: a /30 no host interface uses, X.1/30 on the host end; under ns_lock. */
static int ns_pick_subnet(net_ns *ns, ptb_errbuf *eb)
{
    int lock = ns_lock();
    if (lock < 0)
        return ptb_errf(eb, lock, "network namespace: taking the subnet lock (@%s): %s",
                        "ptb-net-ns-subnet-lock", ptb_strerror(lock));
    uint32_t start = ns_subnet_start();
    int rc = -EADDRINUSE;
    for (uint32_t t = 0; t < NS_SUBNET_TRIES && rc == -EADDRINUSE; t++) {
        uint32_t net = NS_CGNAT_BASE + (((start + t) & ((1u << NS_SUBNET_BITS) - 1)) << 2);
        bool used;
        if ((rc = ns_addr_used(ns->host, net, &used)) != 0) {
            ns_nlerr(eb, ns->host, rc, "listing the host's addresses");
            break;
        }
        if (used) {
            rc = -EADDRINUSE;
            continue;
        }
        if ((rc = ns_addr(ns->host, RTM_NEWADDR, ns->host_index, net + 1, 30)) != 0) {
            ns_nlerr(eb, ns->host, rc, "adding the host end's address");
            break;
        }
        ns->subnet = net;
        struct in_addr a1 = {htonl(net + 1)}, a2 = {htonl(net + 2)};
        inet_ntop(AF_INET, &a1, ns->host_addr, sizeof ns->host_addr);
        inet_ntop(AF_INET, &a2, ns->inner_addr, sizeof ns->inner_addr);
    }
    close(lock);
    if (rc == -EADDRINUSE)
        ptb_errf(eb, rc, "network namespace: no free /30 in 100.64.0.0/10 after %d tries",
                 NS_SUBNET_TRIES);
    return rc;
}

/* Step 5, the rest: links up, X.2/30 inside, lo up, the default route. */
static int ns_configure(net_ns *ns, ns_nl *in, ptb_errbuf *eb)
{
    int rc = ns_link_up(ns->host, ns->host_index);
    if (rc != 0)
        return ns_nlerr(eb, ns->host, rc, "bringing the host end up");
    int eth = 0, lo = 0;
    if ((rc = ns_link_index(in, NS_INNER_IFNAME, &eth)) != 0)
        return ns_nlerr(eb, in, rc, "finding " NS_INNER_IFNAME " in the namespace");
    (void)ns_link_no_ipv6ll(in, eth);
    if ((rc = ns_addr(in, RTM_NEWADDR, eth, ns->subnet + 2, 30)) != 0)
        return ns_nlerr(eb, in, rc, "adding " NS_INNER_IFNAME "'s address");
    if ((rc = ns_link_up(in, eth)) != 0)
        return ns_nlerr(eb, in, rc, "bringing " NS_INNER_IFNAME " up");
    if ((rc = ns_link_index(in, "lo", &lo)) != 0 || (rc = ns_link_up(in, lo)) != 0)
        return ns_nlerr(eb, in, rc, "bringing lo up in the namespace");
    if ((rc = ns_route_default(in, eth, ns->subnet + 1)) != 0)
        return ns_nlerr(eb, in, rc, "adding the default route in the namespace");
    return 0;
}

/* net.ipv4.ip_forward of the caller's namespace to 1; *changed when it was 0. */
static int ns_forward_on(bool *changed)
{
    const char *path = "/proc/sys/net/ipv4/ip_forward";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char c = 0;
    ssize_t n = read(fd, &c, 1);
    int rc = n == 1 ? 0 : n < 0 ? -errno : PTB_EIO;
    close(fd);
    if (rc != 0 || c != '0')
        return rc;
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    rc = write(fd, "1\n", 2) == 2 ? 0 : -errno;
    close(fd);
    *changed = rc == 0;
    return rc;
}

/* Step 6. */
static int ns_nat(net_ns *ns, ptb_errbuf *eb)
{
    snprintf(ns->table_name, sizeof ns->table_name, "ptb_%ld_%u", (long)getpid(), ns->n);
    struct in_addr net = {htonl(ns->subnet)};
    char netbuf[INET_ADDRSTRLEN], script[1024];
    inet_ntop(AF_INET, &net, netbuf, sizeof netbuf);
    const char *t = ns->table_name, *i = ns->host_if;
    snprintf(script, sizeof script,
             "table ip %s\n"
             "delete table ip %s\n"
             "table ip %s {\n"
             "\tchain postrouting {\n"
             "\t\ttype nat hook postrouting priority 100; policy accept;\n"
             "\t\tip saddr %s/30 masquerade\n"
             "\t}\n"
             "\tchain forward {\n"
             "\t\ttype filter hook forward priority 0; policy accept;\n"
             "\t\tiifname \"%s\" accept\n"
             "\t\toifname \"%s\" accept\n"
             "\t}\n"
             "}\n",
             t, t, t, netbuf, i, i);
    static const char *const args[] = {"-f", "-", NULL};
    char err[256];
    int rc = ns_nft(args, script, NULL, err, sizeof err);
    if (rc == -ENOENT)
        return ptb_errf(eb, -ENOENT, NS_NFT_MISSING);
    if (rc < 0)
        return ptb_errf(eb, rc, "NAT: running nft: %s", ptb_strerror(rc));
    if (rc > 0) /* one transaction: a failed script added nothing */
        return ptb_errf(eb, PTB_EIO, "NAT: nft could not add table %s (exit %d): %s", t, rc,
                        err[0] ? err : "no message");
    ns->table = true;
    rc = ns_forward_on(&ns->forward_set);
    if (rc != 0)
        return ptb_errf(eb, rc, "NAT: enabling net.ipv4.ip_forward: %s", ptb_strerror(rc));
    return 0;
}

int net_ns_create(const net_ns_options *o, net_ns **out, ptb_errbuf *eb)
{
    if (!out)
        return ptb_errf(eb, PTB_EINVAL, "net_ns_create: out is NULL");
    *out = NULL;
    net_ns_options def;
    if (!o) {
        net_ns_options_default(&def);
        o = &def;
    }
    net_ns *ns = calloc(1, sizeof *ns);
    if (!ns)
        return ptb_errf(eb, PTB_ENOMEM, "network namespace: out of memory");
    ns->fd = -1;
    ns_nl *in = NULL;
    int rc = ns_nl_open(&ns->host);
    if (rc != 0) {
        ptb_errf(eb, rc, "network namespace: rtnetlink socket: %s", ptb_strerror(rc));
        goto fail;
    }
    if ((rc = ns_birth(ns, &in, eb)) != 0 || (rc = ns_make_veth(ns, eb)) != 0)
        goto fail;
    (void)ns_link_no_ipv6ll(ns->host, ns->host_index);
    if ((rc = ns_pick_subnet(ns, eb)) != 0 || (rc = ns_configure(ns, in, eb)) != 0)
        goto fail;
    if (o->nat && (rc = ns_nat(ns, eb)) != 0)
        goto fail;
    ns_nl_close(in);
    *out = ns;
    return 0;
fail:
    ns_nl_close(in);
    net_ns_destroy(ns);
    return rc;
}

int net_ns_fd(const net_ns *ns)
{
    return ns ? ns->fd : -1;
}

const char *net_ns_host_ifname(const net_ns *ns)
{
    return ns->host_if;
}

const char *net_ns_inner_ifname(const net_ns *ns)
{
    (void)ns;
    return NS_INNER_IFNAME;
}

const char *net_ns_host_addr(const net_ns *ns)
{
    return ns->host_addr;
}

const char *net_ns_inner_addr(const net_ns *ns)
{
    return ns->inner_addr;
}

int net_ns_enter(const net_ns *ns, int *saved)
{
    if (!ns || ns->fd < 0 || !saved)
        return PTB_EINVAL;
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (setns(ns->fd, CLONE_NEWNET) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *saved = fd;
    return 0;
}

int net_ns_leave(int saved)
{
    if (saved < 0)
        return PTB_EINVAL;
    int rc = setns(saved, CLONE_NEWNET) == 0 ? 0 : -errno;
    close(saved);
    return rc;
}

void net_ns_destroy(net_ns *ns)
{
    if (!ns)
        return;
    if (ns->host && ns->host_index > 0)
        (void)ns_link_del(ns->host, ns->host_index, NULL); /* takes eth0 with it */
    if (ns->table)
        (void)ns_nft_delete(ns->table_name);
    ns_nl_close(ns->host);
    if (ns->fd >= 0)
        close(ns->fd);
    free(ns);
}

/* "ptb_<pid>_<n>" with decimal numbers and nothing else: its pid, else 0. */
static long ns_table_pid(const char *name)
{
    if (strncmp(name, "ptb_", 4) != 0)
        return 0;
    const char *p = name + 4;
    char *end;
    if (*p < '1' || *p > '9')
        return 0;
    long pid = strtol(p, &end, 10);
    if (*end != '_' || pid <= 0 || pid > INT32_MAX || end[1] < '0' || end[1] > '9')
        return 0;
    for (p = end + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return end - (name + 4) <= 10 && p - end <= 11 ? pid : 0;
}

int net_ns_sweep(void)
{
    static const char *const args[] = {"list", "tables", "ip", NULL};
    char *out = NULL;
    int rc = ns_nft(args, NULL, &out, NULL, 0);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0) {
        free(out);
        return rc < 0 ? rc : PTB_EIO;
    }
    int removed = 0;
    for (char *line = out, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char name[64];
        if (sscanf(line, "table ip %63s", name) != 1)
            continue;
        long pid = ns_table_pid(name);
        if (pid == 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        if (ns_nft_delete(name) == 0)
            removed++;
    }
    free(out);
    return removed;
}
