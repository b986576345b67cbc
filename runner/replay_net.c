/* The recorded replies of a replayed step, served again (replay_net.h). */
#include "replay_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net_decode.h"

#define REQ_HEAD_MAX 65536
#define IO_TIMEOUT_MS 10000

typedef struct seg {
    uint32_t seq;
    uint8_t *data;
    size_t len;
} seg;

typedef struct stream {
    seg *s;
    size_t n, cap;
    uint8_t *bytes; /* reassembled */
    size_t len;
} stream;

typedef struct flowrec {
    uint64_t flow_id;
    bool udp;
    int family;
    uint8_t cip[16], sip[16]; /* client, server */
    uint16_t cport, sport;
    char desc[128];
    stream to_client, to_server;
    bool trunc, tls, served;
    char first_line[512];
} flowrec;

typedef struct dnsrec {
    char name[256];
    uint16_t qtype;
    uint8_t *msg;
    size_t len;
} dnsrec;

typedef struct endpoint {
    int family;
    uint8_t ip[16];
    uint16_t port;
    bool udp;
    int fd;
} endpoint;

struct replay_net {
    flowrec *f;
    size_t nf;
    dnsrec *d;
    size_t nd;
    endpoint *ep;
    size_t nep;
    char resolver[64];
};

static bool in_ids(const uint64_t *ids, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ids[mid] == id)
            return true;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static int parse_ip(const char *s, int *family, uint8_t ip[16])
{
    memset(ip, 0, 16);
    if (inet_pton(AF_INET, s, ip) == 1)
        return *family = AF_INET, 0;
    if (inet_pton(AF_INET6, s, ip) == 1)
        return *family = AF_INET6, 0;
    return -1;
}

static bool is_loopback(int family, const uint8_t *ip)
{
    static const uint8_t v6lo[16] = {[15] = 1};
    return family == AF_INET ? ip[0] == 127 : !memcmp(ip, v6lo, 16);
}

static flowrec *flow_of(replay_net *rn, uint64_t id)
{
    for (size_t i = 0; i < rn->nf; i++)
        if (rn->f[i].flow_id == id)
            return &rn->f[i];
    return NULL;
}

static int seg_add(stream *st, uint32_t seq, const uint8_t *p, size_t len)
{
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 32;
        seg *ns = realloc(st->s, nc * sizeof *ns);
        if (!ns)
            return PTB_ENOMEM;
        st->s = ns, st->cap = nc;
    }
    seg *s = &st->s[st->n];
    if (!(s->data = malloc(len)))
        return PTB_ENOMEM;
    memcpy(s->data, p, len);
    s->seq = seq, s->len = len;
    st->n++;
    return 0;
}

static uint32_t seq_base;
static int cmp_seg(const void *a, const void *b)
{
    uint32_t x = ((const seg *)a)->seq - seq_base, y = ((const seg *)b)->seq - seq_base;
    return x < y ? -1 : x > y;
}

/* The stream's bytes in order; false when a byte is missing. */
static bool reassemble(stream *st)
{
    if (!st->n)
        return true;
    seq_base = st->s[0].seq;
    for (size_t i = 1; i < st->n; i++) /* the lowest seq (mod 2^32, near the first seen) */
        if ((int32_t)(st->s[i].seq - seq_base) < 0)
            seq_base = st->s[i].seq;
    qsort(st->s, st->n, sizeof *st->s, cmp_seg);
    size_t total = 0;
    for (size_t i = 0; i < st->n; i++)
        total += st->s[i].len;
    if (!(st->bytes = malloc(total ? total : 1)))
        return false;
    uint32_t want = 0;
    for (size_t i = 0; i < st->n; i++) {
        uint32_t rel = st->s[i].seq - seq_base;
        if (rel > want)
            return false; /* a hole */
        if (rel + st->s[i].len <= want)
            continue; /* a retransmission */
        size_t skip = want - rel, add = st->s[i].len - skip;
        memcpy(st->bytes + st->len, st->s[i].data + skip, add);
        st->len += add;
        want += (uint32_t)add;
    }
    return true;
}

/* Question name (lower case, dotted) and type of a DNS message; false when unreadable. */
static bool dns_question(const uint8_t *m, size_t n, char *name, size_t cap, uint16_t *qtype,
                         size_t *end)
{
    if (n < 12 || ((m[4] << 8) | m[5]) < 1)
        return false;
    size_t i = 12, w = 0;
    while (i < n && m[i]) {
        size_t l = m[i];
        if (l > 63 || i + 1 + l > n || w + l + 2 > cap)
            return false;
        if (w)
            name[w++] = '.';
        for (size_t k = 0; k < l; k++) {
            char c = (char)m[i + 1 + k];
            name[w++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        i += 1 + l;
    }
    if (i + 5 > n)
        return false;
    name[w] = 0;
    *qtype = (uint16_t)((m[i + 1] << 8) | m[i + 2]);
    if (end)
        *end = i + 5;
    return true;
}

static int add_endpoint(replay_net *rn, int family, const uint8_t *ip, uint16_t port, bool udp)
{
    for (size_t i = 0; i < rn->nep; i++)
        if (rn->ep[i].family == family && !memcmp(rn->ep[i].ip, ip, 16) && rn->ep[i].port == port &&
            rn->ep[i].udp == udp)
            return 0;
    endpoint *ne = realloc(rn->ep, (rn->nep + 1) * sizeof *ne);
    if (!ne)
        return PTB_ENOMEM;
    rn->ep = ne;
    endpoint *e = &rn->ep[rn->nep++];
    memset(e, 0, sizeof *e);
    e->family = family;
    memcpy(e->ip, ip, 16);
    e->port = port;
    e->udp = udp;
    e->fd = -1;
    return 0;
}

#define FAIL(...) (snprintf(why, cap, __VA_ARGS__), rc = PTB_EINVAL)

int replay_net_plan(store_txn *t, const uint64_t *ids, size_t n, replay_net **out, char *why,
                    size_t cap)
{
    *out = NULL;
    replay_net *rn = calloc(1, sizeof *rn);
    if (!rn)
        return PTB_ENOMEM;
    int rc = 0;
    /* the step's flows */
    store_range r = {.by_index = true,
                     .index = STORE_IX_TYPE,
                     .key = store_type_key(PTB__V1__EVENT__BODY_NET_FLOW)};
    store_cursor *c;
    const ptb_event *ev;
    if ((rc = store_cursor_open(t, &r, &c)))
        goto out;
    while (!rc && (rc = store_cursor_next(c, &ev)) == 0) {
        const Ptb__V1__NetFlow *nf = ev->net_flow;
        if (!in_ids(ids, n, ev->exec_id) || !nf->src || !nf->dst)
            continue;
        flowrec x = {.flow_id = nf->flow_id, .udp = !strcmp(nf->proto, "udp")};
        int fam2;
        if (parse_ip(nf->dst->ip, &x.family, x.sip) || parse_ip(nf->src->ip, &fam2, x.cip))
            continue;
        x.sport = (uint16_t)nf->dst->port, x.cport = (uint16_t)nf->src->port;
        if (is_loopback(x.family, x.sip))
            continue; /* the step's own processes make it again */
        snprintf(x.desc, sizeof x.desc, "%s %s:%u%s%s", nf->proto, nf->dst->ip, nf->dst->port,
                 nf->host && nf->host[0] ? " " : "", nf->host ? nf->host : "");
        if (strcmp(nf->proto, "tcp") && !(x.udp && x.sport == 53)) {
            FAIL("a %s flow: only plain HTTP over TCP and DNS over UDP can be served again",
                 x.desc);
            break;
        }
        if (nf->missing_bytes) {
            FAIL("%s: %llu bytes of it were never captured", x.desc,
                 (unsigned long long)nf->missing_bytes);
            break;
        }
        flowrec *nv = realloc(rn->f, (rn->nf + 1) * sizeof *nv);
        if (!nv) {
            rc = PTB_ENOMEM;
            break;
        }
        rn->f = nv;
        rn->f[rn->nf++] = x;
    }
    store_cursor_close(c);
    if (rc && rc != PTB_ENOTFOUND)
        goto out;
    rc = 0;
    if (!rn->nf)
        goto out;
    /* TLS: the replies are encrypted for a key that is gone */
    r.key = store_type_key(PTB__V1__EVENT__BODY_NET_TLS);
    if ((rc = store_cursor_open(t, &r, &c)))
        goto out;
    while ((rc = store_cursor_next(c, &ev)) == 0) {
        flowrec *f = flow_of(rn, ev->net_tls->flow_id);
        if (f)
            f->tls = true;
    }
    store_cursor_close(c);
    rc = 0;
    /* their packets (tied to the same exec_ids) */
    for (size_t k = 0; !rc && k < n; k++) {
        store_range rx = {.by_index = true, .index = STORE_IX_EXEC, .key = ids[k]};
        if ((rc = store_cursor_open(t, &rx, &c)))
            break;
        while (!rc && (rc = store_cursor_next(c, &ev)) == 0) {
            if (ev->body_case != PTB__V1__EVENT__BODY_NET_PACKET)
                continue;
            const Ptb__V1__NetPacket *np = ev->net_packet;
            flowrec *f = flow_of(rn, np->flow_id);
            net_pkt p;
            if (!f ||
                net_decode((int)np->linktype, np->data.data, np->data.len,
                           np->origlen ? np->origlen : np->data.len, &p) ||
                p.layer < NET_LAYER_L4)
                continue;
            if (np->data.len < np->origlen || (p.flags & NET_PKT_TRUNC))
                f->trunc = true;
            bool from_server =
                !memcmp(p.src, f->sip, p.family == AF_INET ? 4 : 16) && p.sport == f->sport;
            if (f->udp) {
                char name[256];
                uint16_t qt;
                if (from_server &&
                    dns_question(p.payload, p.payload_len, name, sizeof name, &qt, NULL)) {
                    dnsrec *nd = realloc(rn->d, (rn->nd + 1) * sizeof *nd);
                    if (!nd || !(nd[rn->nd].msg = malloc(p.payload_len ? p.payload_len : 1))) {
                        if (nd)
                            rn->d = nd;
                        rc = PTB_ENOMEM;
                        break;
                    }
                    rn->d = nd;
                    memcpy(nd[rn->nd].name, name, sizeof name);
                    nd[rn->nd].qtype = qt;
                    memcpy(nd[rn->nd].msg, p.payload, p.payload_len);
                    nd[rn->nd].len = p.payload_len;
                    rn->nd++;
                }
            } else if (p.payload_len) {
                rc = seg_add(from_server ? &f->to_client : &f->to_server, p.tcp_seq, p.payload,
                             p.payload_len);
            }
        }
        store_cursor_close(c);
        rc = rc == PTB_ENOTFOUND ? 0 : rc;
    }
    if (rc)
        goto out;
    for (size_t i = 0; !rc && i < rn->nf; i++) {
        flowrec *f = &rn->f[i];
        if (f->tls) {
            FAIL("%s is TLS: its replies cannot be served again", f->desc);
            break;
        }
        if (f->trunc) {
            FAIL("%s: its packets were cut to the snap length (record with --keep-host to store "
                 "them whole)",
                 f->desc);
            break;
        }
        if (f->udp) {
            if ((rc = add_endpoint(rn, f->family, f->sip, 53, true)))
                break;
            if (!rn->resolver[0])
                inet_ntop(f->family, f->sip, rn->resolver, sizeof rn->resolver);
            continue;
        }
        if (!reassemble(&f->to_client) || !reassemble(&f->to_server)) {
            FAIL("%s: bytes are missing from its stored packets", f->desc);
            break;
        }
        if (f->to_client.len >= 2 && f->to_client.bytes[0] == 0x16 && f->to_client.bytes[1] == 3) {
            FAIL("%s is TLS: its replies cannot be served again", f->desc);
            break;
        }
        size_t l = 0;
        while (l < f->to_server.len && l < sizeof f->first_line - 1 &&
               f->to_server.bytes[l] != '\r' && f->to_server.bytes[l] != '\n')
            l++;
        memcpy(f->first_line, f->to_server.bytes ? (char *)f->to_server.bytes : "", l);
        f->first_line[l] = 0;
        rc = add_endpoint(rn, f->family, f->sip, f->sport, false);
    }
out:
    if (rc) {
        if (rc != PTB_EINVAL)
            snprintf(why, cap, "reading its packets: %s", ptb_strerror(rc));
        replay_net_free(rn);
        return rc;
    }
    *out = rn;
    return 0;
}

size_t replay_net_servers(const replay_net *rn)
{
    return rn ? rn->nep : 0;
}

const char *replay_net_resolver(const replay_net *rn)
{
    return rn && rn->resolver[0] ? rn->resolver : NULL;
}

void replay_net_free(replay_net *rn)
{
    if (!rn)
        return;
    for (size_t i = 0; i < rn->nf; i++) {
        stream *ss[2] = {&rn->f[i].to_client, &rn->f[i].to_server};
        for (int k = 0; k < 2; k++) {
            for (size_t j = 0; j < ss[k]->n; j++)
                free(ss[k]->s[j].data);
            free(ss[k]->s);
            free(ss[k]->bytes);
        }
    }
    for (size_t i = 0; i < rn->nd; i++)
        free(rn->d[i].msg);
    free(rn->f);
    free(rn->d);
    free(rn->ep);
    free(rn);
}

/* ------------------------------------------------------------------ the server process */

/* Put addr on loopback (an IPv4 alias "lo:N", or an IPv6 address). */
static int lo_addr(int family, const uint8_t *ip, int n)
{
    if (family == AF_INET) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo:%d", n);
        struct sockaddr_in *sa = (struct sockaddr_in *)&ifr.ifr_addr;
        sa->sin_family = AF_INET;
        memcpy(&sa->sin_addr, ip, 4);
        int rc = ioctl(fd, SIOCSIFADDR, &ifr) ? -errno : 0;
        sa->sin_addr.s_addr = htonl(0xffffffffu);
        if (!rc)
            ioctl(fd, SIOCSIFNETMASK, &ifr);
        close(fd);
        return rc;
    }
    struct in6_ifreq {
        struct in6_addr addr;
        uint32_t prefixlen;
        int ifindex;
    } r6;
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memcpy(&r6.addr, ip, 16);
    r6.prefixlen = 128;
    r6.ifindex = (int)if_nametoindex("lo");
    int rc = ioctl(fd, SIOCSIFADDR, &r6) ? -errno : 0;
    close(fd);
    return rc;
}

static int lo_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr) ? -errno : 0;
    ifr.ifr_flags |= IFF_UP;
    if (!rc && ioctl(fd, SIOCSIFFLAGS, &ifr))
        rc = -errno;
    close(fd);
    return rc;
}

static int listen_on(endpoint *e)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (e->family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(e->port);
        memcpy(&a->sin_addr, e->ip, 4);
        sl = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(e->port);
        memcpy(&a->sin6_addr, e->ip, 16);
        sl = sizeof *a;
    }
    e->fd = socket(e->family, (e->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    int one = 1;
    if (e->fd < 0)
        return -errno;
    setsockopt(e->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(e->fd, (struct sockaddr *)&ss, sl) || (!e->udp && listen(e->fd, 16)))
        return -errno;
    return 0;
}

static bool wait_fd(int fd, short ev)
{
    struct pollfd p = {.fd = fd, .events = ev};
    return poll(&p, 1, IO_TIMEOUT_MS) == 1;
}

/* One connection: its request head, then the recorded server bytes of the matching flow. */
static void serve_conn(replay_net *rn, const endpoint *e, int fd)
{
    static char req[REQ_HEAD_MAX];
    size_t got = 0;
    while (got < sizeof req - 1 && wait_fd(fd, POLLIN)) {
        ssize_t k = read(fd, req + got, sizeof req - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[got] = 0;
    size_t l = strcspn(req, "\r\n");
    flowrec *pick = NULL;
    for (int pass = 0; pass < 2 && !pick; pass++)
        for (size_t i = 0; i < rn->nf && !pick; i++) {
            flowrec *f = &rn->f[i];
            if (f->udp || f->served || f->family != e->family || f->sport != e->port ||
                memcmp(f->sip, e->ip, 16))
                continue;
            if (pass == 1 || (strlen(f->first_line) == l && !strncmp(f->first_line, req, l)))
                pick = f;
        }
    if (pick) {
        pick->served = true;
        const uint8_t *p = pick->to_client.bytes;
        size_t left = pick->to_client.len;
        while (left && wait_fd(fd, POLLOUT)) {
            ssize_t w = write(fd, p, left);
            if (w <= 0)
                break;
            p += w, left -= (size_t)w;
        }
    }
    shutdown(fd, SHUT_WR);
    char drain[4096];
    while (wait_fd(fd, POLLIN) && read(fd, drain, sizeof drain) > 0)
        ;
    close(fd);
}

static void serve_dns(replay_net *rn, int fd)
{
    uint8_t q[1500];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    char name[256];
    uint16_t qt;
    size_t qend;
    if (n < 12 || !dns_question(q, (size_t)n, name, sizeof name, &qt, &qend))
        return;
    for (size_t i = 0; i < rn->nd; i++)
        if (rn->d[i].qtype == qt && !strcmp(rn->d[i].name, name)) {
            uint8_t *m = malloc(rn->d[i].len);
            if (!m)
                return;
            memcpy(m, rn->d[i].msg, rn->d[i].len);
            m[0] = q[0], m[1] = q[1]; /* the new query's id */
            sendto(fd, m, rn->d[i].len, 0, (struct sockaddr *)&from, fl);
            free(m);
            return;
        }
    /* not asked when recorded: REFUSED at once, so that the client does not wait */
    q[2] |= 0x80;
    q[3] = (uint8_t)((q[3] & 0xf0) | 5);
    sendto(fd, q, qend, 0, (struct sockaddr *)&from, fl);
}

static void server_main(replay_net *rn, int ready, int life)
{
    char msg[256] = "";
    int32_t me = (int32_t)getpid();
    int rc = unshare(CLONE_NEWNET) ? -errno : 0;
    if (rc)
        snprintf(msg, sizeof msg, "unshare(CLONE_NEWNET): %s", strerror(-rc));
    if (!rc && (rc = lo_up()))
        snprintf(msg, sizeof msg, "loopback up: %s", strerror(-rc));
    int alias = 1;
    for (size_t i = 0; rn && !rc && i < rn->nep; i++) {
        bool seen = false; /* one address for several ports */
        for (size_t k = 0; k < i && !seen; k++)
            seen = rn->ep[k].family == rn->ep[i].family && !memcmp(rn->ep[k].ip, rn->ep[i].ip, 16);
        if (!seen && (rc = lo_addr(rn->ep[i].family, rn->ep[i].ip, alias++)))
            snprintf(msg, sizeof msg, "adding a recorded server's address: %s", strerror(-rc));
        if (!rc && (rc = listen_on(&rn->ep[i])))
            snprintf(msg, sizeof msg, "listening at a recorded server's port %u: %s",
                     rn->ep[i].port, strerror(-rc));
    }
    if (write(ready, &me, sizeof me) < 0 || write(ready, msg, strlen(msg) + 1) < 0 || rc)
        _exit(1);
    close(ready);
    size_t n = rn ? rn->nep : 0;
    struct pollfd *p = calloc(n + 1, sizeof *p);
    if (!p)
        _exit(1);
    for (;;) {
        for (size_t i = 0; i < n; i++)
            p[i] = (struct pollfd){.fd = rn->ep[i].fd, .events = POLLIN};
        p[n] = (struct pollfd){.fd = life, .events = POLLIN};
        if (poll(p, n + 1, -1) < 0 && errno != EINTR)
            _exit(1);
        if (p[n].revents) /* replay closed its end, or died */
            _exit(0);
        for (size_t i = 0; i < n; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            if (rn->ep[i].udp) {
                serve_dns(rn, rn->ep[i].fd);
                continue;
            }
            int c = accept4(rn->ep[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0)
                serve_conn(rn, &rn->ep[i], c);
        }
    }
}

int replay_net_start(const replay_net *rn, pid_t *pid, int *life, int *netns_fd, char *err,
                     size_t cap)
{
    /* the server is no child of this process: the tracer waits for every child it has. It
     * is a grandchild, and ends when `life` (its read end) sees this process close or die */
    int pp[2], lp[2];
    if (pipe2(pp, O_CLOEXEC))
        return -errno;
    if (pipe2(lp, O_CLOEXEC)) {
        close(pp[0]), close(pp[1]);
        return -errno;
    }
    pid_t a = fork();
    if (a < 0) {
        int e = errno;
        close(pp[0]), close(pp[1]), close(lp[0]), close(lp[1]);
        return -e;
    }
    if (a == 0) {
        close(pp[0]);
        close(lp[1]);
        pid_t b = fork();
        if (b == 0) {
            server_main((replay_net *)rn, pp[1], lp[0]);
            _exit(0);
        }
        _exit(b < 0 ? 1 : 0);
    }
    close(pp[1]);
    close(lp[0]);
    waitpid(a, NULL, 0);
    char msg[256] = "";
    int32_t spid = 0;
    ssize_t k = read(pp[0], &spid, sizeof spid);
    ssize_t m = k == (ssize_t)sizeof spid ? read(pp[0], msg, sizeof msg - 1) : -1;
    close(pp[0]);
    msg[m > 0 ? m : 0] = 0;
    if (k != (ssize_t)sizeof spid || m <= 0 || msg[0]) {
        snprintf(err, cap, "the step's network namespace: %s", msg[0] ? msg : "its server died");
        close(lp[1]);
        if (spid > 0)
            kill(spid, SIGKILL);
        return -EPERM;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)spid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, cap, "%s: %s", path, strerror(e));
        replay_net_stop(spid, lp[1]);
        return -e;
    }
    *pid = spid;
    *life = lp[1];
    *netns_fd = fd;
    return 0;
}

void replay_net_stop(pid_t pid, int life)
{
    if (life >= 0)
        close(life);
    if (pid > 0)
        kill(pid, SIGKILL);
}
