/* Flows, TCP reassembly, application decoding and attribution: net_flow.h.
 *
 * A flow table (chained hash on the unordered pair of ends) with two lists: every open flow in
 * order of its last packet (the head is the longest idle, ended after idle_ns or when the table
 * is full) and every closed flow (FIN both ways or RST) in order of closing, kept a little longer
 * (CLOSED_LINGER_NS) so that the last ACKs still count, then ended. Ending a flow appends its
 * net.flow event and frees it.
 *
 * TCP reassembly per direction: next_seq is the next byte expected. A segment at next_seq is
 * delivered; one before it is trimmed (retransmission, overlap); one after it waits in a sorted
 * list (at most ooo_max bytes), and when the list is full, or the segment is far ahead, the hole
 * is given up: its size is added to missing_bytes and the direction's decoder stops, because
 * decoding across a hole would be a guess. Delivered bytes go to the direction's decoder through
 * a buffer of at most stream_max bytes; bytes a decoder does not need (HTTP bodies, everything
 * after a ClientHello) are counted and dropped without copying. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_type.h"
#include "net_app.h"
#include "net_decode.h"
#include "net_flow.h"
#include "ptb_error.h"

#define CLOSED_LINGER_NS (2 * 1000000000LL)
#define OOO_AHEAD_MAX (16u << 20) /* a segment further ahead than this gives up the hole */
#define DNS_MAP_MAX 65536         /* IP -> name entries from DNS answers */
#define CHUNK_LINE_MAX 1024       /* an HTTP chunk-size line */
#define HOST_MAX 256

enum { APP_UNKNOWN = 0, APP_TLS, APP_HTTP, APP_DNS, APP_NONE };
enum { CH_NONE = 0, CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };
enum { ST_OPEN = 0, ST_FIN, ST_RST };
enum { HOST_NONE = 0, HOST_DNS, HOST_HTTP, HOST_SNI };

typedef struct seg {
    struct seg *next;
    uint32_t seq, len;
    uint8_t data[];
} seg;

typedef struct dir_state {
    uint64_t bytes, packets; /* wire bytes of IP packets, packets */
    /* TCP */
    bool seq_known, fin;
    uint32_t next_seq;
    seg *ooo;
    size_t ooo_bytes;
    /* the decoder */
    int app;
    uint8_t *buf;
    size_t len, cap;
    uint64_t skip; /* bytes to drop before the decoder reads again (a body) */
    int chunk;     /* CH_*: walking a chunked body */
    uint64_t chunk_left;
    size_t chunk_line; /* bytes of the current chunk-size or trailer line */
    bool chunk_hex_done;
} dir_state;

typedef struct flow {
    struct flow *hnext;       /* hash chain */
    struct flow *prev, *next; /* the open list or the closed list */
    uint64_t id;
    uint8_t proto, family;
    uint8_t a[16], b[16]; /* a: the client, b: the server */
    uint16_t ap, bp;
    uint32_t iface;
    int64_t start, last, closed_at;
    int state;
    bool closed, rst;
    uint64_t missing;
    uint64_t exec_id;
    bool owner_final; /* exec_id came from a socket with both ends: no need to ask again */
    int host_src;
    bool keep;
    char host[HOST_MAX];
    dir_state d[2]; /* 0: client to server, 1: server to client */
} flow;

typedef struct flow_list {
    flow *head, *tail;
} flow_list;

typedef struct dns_ent {
    struct dns_ent *next;
    uint8_t family;
    uint8_t ip[16];
    char name[NET_DNS_NAME_MAX];
} dns_ent;

struct net_flows {
    store *s;
    net_flows_options o;
    flow **tab;
    size_t cap, n;
    flow_list open, closed;
    uint64_t next_id;
    dns_ent **dns;
    size_t dns_cap, dns_n;
    dns_ent *dns_fifo[DNS_MAP_MAX]; /* insertion order, for replacement when full */
    size_t dns_fifo_pos;
    net_flows_stats st;
    int err; /* the store's error, once it stopped */
};

/* ------------------------------------------------------------------ small helpers */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Hash of the unordered pair of ends, so that both directions land in one bucket. */
static uint64_t pair_hash(uint8_t proto, const uint8_t *x, uint16_t xp, const uint8_t *y,
                          uint16_t yp)
{
    uint64_t hx = hash_bytes(hash_bytes(1469598103934665603ull, x, 16), &xp, 2);
    uint64_t hy = hash_bytes(hash_bytes(1469598103934665603ull, y, 16), &yp, 2);
    uint64_t h = (hx ^ hy) + (hx < hy ? hx : hy) * 31 + proto;
    return h ^ (h >> 31);
}

static void list_remove(flow_list *l, flow *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        l->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        l->tail = f->prev;
    f->prev = f->next = NULL;
}

static void list_push(flow_list *l, flow *f)
{
    f->prev = l->tail;
    f->next = NULL;
    if (l->tail)
        l->tail->next = f;
    else
        l->head = f;
    l->tail = f;
}

static const char *ip_text(int family, const uint8_t *ip, char *buf)
{
    if (!inet_ntop(family, ip, buf, INET6_ADDRSTRLEN))
        strcpy(buf, "?");
    return buf;
}

static bool host_is_kept(const net_flows *fs, const char *host)
{
    size_t hl = strlen(host);
    for (size_t i = 0; i < fs->o.n_keep_hosts; i++) {
        const char *k = fs->o.keep_hosts[i];
        size_t kl = strlen(k);
        if (!kl || kl > hl)
            continue;
        if (!strcasecmp(host + hl - kl, k) && (kl == hl || host[hl - kl - 1] == '.'))
            return true;
    }
    return false;
}

static void flow_set_host(net_flows *fs, flow *f, const char *host, int src)
{
    if (src < f->host_src || !host || !*host)
        return;
    size_t n = strnlen(host, sizeof f->host - 1);
    memcpy(f->host, host, n);
    f->host[n] = 0;
    f->host_src = src;
    if (!f->keep && host_is_kept(fs, f->host))
        f->keep = true;
}

/* The exec_id of the flow. A match on both ends is final; one on a listening or unconnected
 * socket is used but asked again (the client's connect may not have been seen yet). */
static uint64_t flow_owner(net_flows *fs, flow *f)
{
    if (!f->owner_final && fs->o.owners) {
        uint64_t id = net_owners_find(fs->o.owners, f->proto, f->family, f->a, f->ap, f->b, f->bp,
                                      &f->owner_final);
        if (id)
            f->exec_id = id;
    }
    return f->exec_id;
}

static int emit(net_flows *fs, ptb_event *ev)
{
    if (fs->err)
        return fs->err;
    ev->source = (Ptb__V1__Source)fs->o.source;
    int rc = store_append(fs->s, ev, 0, NULL);
    if (rc == PTB_ETOOBIG)
        return 0; /* one event over the cap: the store could not take it; go on */
    if (rc)
        fs->err = rc;
    else
        fs->st.events++;
    return rc;
}

/* ------------------------------------------------------------------ DNS names of addresses */

static size_t dns_bucket(const net_flows *fs, int family, const uint8_t *ip)
{
    return hash_bytes(1469598103934665603ull + (unsigned)family, ip, 16) & (fs->dns_cap - 1);
}

static const char *dns_name_of(const net_flows *fs, int family, const uint8_t *ip16)
{
    for (const dns_ent *e = fs->dns[dns_bucket(fs, family, ip16)]; e; e = e->next)
        if (e->family == family && !memcmp(e->ip, ip16, 16))
            return e->name;
    return NULL;
}

static void dns_unlink(net_flows *fs, dns_ent *x)
{
    dns_ent **pp = &fs->dns[dns_bucket(fs, x->family, x->ip)];
    while (*pp && *pp != x)
        pp = &(*pp)->next;
    if (*pp)
        *pp = x->next;
}

static void dns_remember(net_flows *fs, int family, const char *ip_txt, const char *name)
{
    uint8_t ip[16] = {0};
    if (inet_pton(family, ip_txt, ip) != 1)
        return;
    size_t b = dns_bucket(fs, family, ip);
    for (dns_ent *e = fs->dns[b]; e; e = e->next)
        if (e->family == family && !memcmp(e->ip, ip, 16)) {
            snprintf(e->name, sizeof e->name, "%s", name);
            return;
        }
    dns_ent *e = fs->dns_fifo[fs->dns_fifo_pos];
    if (e) /* full: the oldest entry makes room */
        dns_unlink(fs, e);
    else if (!(e = malloc(sizeof *e)))
        return;
    else
        fs->dns_n++;
    fs->dns_fifo[fs->dns_fifo_pos] = e;
    fs->dns_fifo_pos = (fs->dns_fifo_pos + 1) % DNS_MAP_MAX;
    e->family = (uint8_t)family;
    memcpy(e->ip, ip, 16);
    snprintf(e->name, sizeof e->name, "%s", name);
    b = dns_bucket(fs, family, ip);
    e->next = fs->dns[b];
    fs->dns[b] = e;
}

/* ------------------------------------------------------------------ events */

static void envelope(ptb_event *ev, int64_t ts, uint64_t exec_id)
{
    ev->ts_ns = ts;
    ev->exec_id = exec_id;
}

static int emit_dns(net_flows *fs, flow *f, int64_t ts, const net_dns *d, int rc)
{
    if (d->n_q == 0)
        return 0; /* nothing worth an event: not even a question */
    Ptb__V1__NetDns nd = PTB__V1__NET_DNS__INIT;
    Ptb__V1__DnsAnswer ans[NET_DNS_MAX_ANSWERS], *ap[NET_DNS_MAX_ANSWERS];
    char types[NET_DNS_MAX_ANSWERS][12], qtype[12];
    nd.flow_id = f ? f->id : 0;
    nd.id = d->id;
    nd.response = d->qr;
    nd.host = (char *)d->q[0].name;
    nd.qtype = (char *)net_dns_type_str(d->q[0].qtype, qtype, sizeof qtype);
    nd.rcode = d->rcode;
    nd.tcp = f && f->proto == IPPROTO_TCP;
    nd.answers_dropped = (uint32_t)d->an_dropped;
    if (rc)
        nd.error = (char *)(d->reason ? d->reason : "malformed");
    for (size_t i = 0; i < d->n_an; i++) {
        Ptb__V1__DnsAnswer a = PTB__V1__DNS_ANSWER__INIT;
        a.name = (char *)d->an[i].name;
        a.type = (char *)net_dns_type_str(d->an[i].type, types[i], sizeof types[i]);
        a.data = (char *)d->an[i].data;
        a.ttl = d->an[i].ttl;
        ans[i] = a;
        ap[i] = &ans[i];
        if ((d->an[i].type == 1 || d->an[i].type == 28) && d->an[i].data[0])
            dns_remember(fs, d->an[i].type == 1 ? AF_INET : AF_INET6, d->an[i].data, d->q[0].name);
    }
    nd.n_answers = d->n_an;
    nd.answers = ap;
    ptb_event ev = PTB__V1__EVENT__INIT;
    envelope(&ev, ts, f ? flow_owner(fs, f) : 0);
    ev.body_case = PTB__V1__EVENT__BODY_NET_DNS;
    ev.net_dns = &nd;
    fs->st.dns++;
    return emit(fs, &ev);
}

static int emit_tls(net_flows *fs, flow *f, int64_t ts, const net_tls *t)
{
    Ptb__V1__NetTls nt = PTB__V1__NET_TLS__INIT;
    char *alpn[NET_TLS_ALPN_MAX];
    nt.flow_id = f->id;
    nt.host = (char *)(t->has_sni ? t->sni : "");
    for (size_t i = 0; i < t->n_alpn; i++)
        alpn[i] = (char *)t->alpn[i];
    nt.n_alpn = t->n_alpn;
    nt.alpn = alpn;
    /* the highest supported_versions entry that is not GREASE (0x?A?A), else legacy_version */
    nt.version = t->legacy_version;
    for (size_t i = 0; i < t->n_versions; i++) {
        uint16_t v = t->versions[i];
        if ((v & 0x0f0f) != 0x0a0a && v > nt.version)
            nt.version = v;
    }
    if (t->has_sni)
        flow_set_host(fs, f, t->sni, HOST_SNI);
    ptb_event ev = PTB__V1__EVENT__INIT;
    envelope(&ev, ts, flow_owner(fs, f));
    ev.body_case = PTB__V1__EVENT__BODY_NET_TLS;
    ev.net_tls = &nt;
    fs->st.tls++;
    return emit(fs, &ev);
}

static int emit_http(net_flows *fs, flow *f, int64_t ts, const net_http *h)
{
    Ptb__V1__NetHttp nh = PTB__V1__NET_HTTP__INIT;
    Ptb__V1__HttpHeader hdr[3 + NET_HTTP_CREDS_MAX], *hp[3 + NET_HTTP_CREDS_MAX];
    size_t nh_ = 0;
    nh.flow_id = f->id;
    nh.response = h->response;
    nh.method = (char *)h->method;
    nh.path = (char *)h->path;
    nh.status = h->status;
    nh.host = (char *)h->host;
    nh.body_bytes = h->has_content_length ? h->content_length : 0;
    const struct {
        const char *name, *value;
    } kept[] = {
        {"Host", h->host}, {"User-Agent", h->user_agent}, {"Content-Type", h->content_type}};
    for (size_t i = 0; i < 3; i++) {
        if (!kept[i].value[0])
            continue;
        Ptb__V1__HttpHeader x = PTB__V1__HTTP_HEADER__INIT;
        x.name = (char *)kept[i].name;
        x.value = (char *)kept[i].value;
        hdr[nh_] = x;
        hp[nh_] = &hdr[nh_];
        nh_++;
    }
    for (size_t i = 0; i < h->n_creds; i++) {
        Ptb__V1__HttpHeader x = PTB__V1__HTTP_HEADER__INIT;
        x.name = (char *)h->creds[i].name;
        x.value = (char *)"";
        x.redacted = (Ptb__V1__Fingerprint *)&h->creds[i].fp.pb;
        hdr[nh_] = x;
        hp[nh_] = &hdr[nh_];
        nh_++;
    }
    nh.n_headers = nh_;
    nh.headers = hp;
    if (!h->response && h->host[0]) {
        /* the Host header without a port */
        char host[NET_HTTP_TEXT_MAX];
        memcpy(host, h->host, sizeof host);
        char *colon = host[0] == '[' ? NULL : strrchr(host, ':');
        if (colon)
            *colon = 0;
        flow_set_host(fs, f, host, HOST_HTTP);
    }
    ptb_event ev = PTB__V1__EVENT__INIT;
    envelope(&ev, ts, flow_owner(fs, f));
    ev.body_case = PTB__V1__EVENT__BODY_NET_HTTP;
    ev.net_http = &nh;
    fs->st.http++;
    return emit(fs, &ev);
}

static int emit_flow(net_flows *fs, flow *f, const char *state)
{
    Ptb__V1__NetFlow nf = PTB__V1__NET_FLOW__INIT;
    Ptb__V1__SockAddr src = PTB__V1__SOCK_ADDR__INIT, dst = PTB__V1__SOCK_ADDR__INIT;
    char sip[INET6_ADDRSTRLEN], dip[INET6_ADDRSTRLEN];
    src.ip = (char *)ip_text(f->family, f->a, sip);
    src.port = f->ap;
    dst.ip = (char *)ip_text(f->family, f->b, dip);
    dst.port = f->bp;
    nf.flow_id = f->id;
    nf.proto = (char *)(f->proto == IPPROTO_TCP ? "tcp" : f->proto == IPPROTO_UDP ? "udp" : "ip");
    nf.src = &src;
    nf.dst = &dst;
    nf.bytes_out = f->d[0].bytes;
    nf.bytes_in = f->d[1].bytes;
    nf.packets_out = f->d[0].packets;
    nf.packets_in = f->d[1].packets;
    nf.start_ns = f->start;
    nf.end_ns = f->last;
    if (!f->host_src) {
        const char *n = dns_name_of(fs, f->family, f->b);
        if (n)
            flow_set_host(fs, f, n, HOST_DNS);
    }
    nf.host = f->host;
    nf.state = (char *)state;
    nf.missing_bytes = f->missing;
    nf.iface = f->iface;
    ptb_event ev = PTB__V1__EVENT__INIT;
    envelope(&ev, f->last, flow_owner(fs, f));
    ev.body_case = PTB__V1__EVENT__BODY_NET_FLOW;
    ev.net_flow = &nf;
    fs->st.flows++;
    return emit(fs, &ev);
}

/* ------------------------------------------------------------------ the flow table */

static void dir_free(dir_state *d)
{
    for (seg *s = d->ooo, *nx; s; s = nx) {
        nx = s->next;
        free(s);
    }
    d->ooo = NULL;
    d->ooo_bytes = 0;
    free(d->buf);
    d->buf = NULL;
    d->len = d->cap = 0;
}

/* The direction's decoder is done: drop what it held. */
static void dir_stop(dir_state *d)
{
    d->app = APP_NONE;
    free(d->buf);
    d->buf = NULL;
    d->len = d->cap = 0;
}

static void flow_unhash(net_flows *fs, flow *f)
{
    flow **pp = &fs->tab[pair_hash(f->proto, f->a, f->ap, f->b, f->bp) & (fs->cap - 1)];
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
    fs->n--;
}

static int flow_end(net_flows *fs, flow *f, const char *state)
{
    for (int i = 0; i < 2; i++) {
        /* segments still queued out of order wait behind a hole that was never filled */
        if (f->d[i].ooo)
            f->missing += (uint32_t)(f->d[i].ooo->seq - f->d[i].next_seq);
        dir_free(&f->d[i]);
    }
    int rc = emit_flow(fs, f, state);
    list_remove(f->closed ? &fs->closed : &fs->open, f);
    flow_unhash(fs, f);
    fs->st.missing_bytes += f->missing;
    free(f);
    return rc;
}

static const char *state_name(const flow *f)
{
    return f->state == ST_RST ? "rst" : f->state == ST_FIN ? "fin" : "open";
}

/* End flows idle since before now - idle_ns and closed ones past their linger time. */
static int flows_expire(net_flows *fs, int64_t now)
{
    int rc = 0;
    while (!rc && fs->closed.head && fs->closed.head->closed_at + CLOSED_LINGER_NS < now)
        rc = flow_end(fs, fs->closed.head, state_name(fs->closed.head));
    while (!rc && fs->open.head && fs->open.head->last + fs->o.idle_ns < now)
        rc = flow_end(fs, fs->open.head, "idle");
    return rc;
}

static int flows_grow(net_flows *fs)
{
    size_t cap = fs->cap * 2;
    flow **tab = calloc(cap, sizeof *tab);
    if (!tab)
        return PTB_ENOMEM;
    for (size_t i = 0; i < fs->cap; i++)
        for (flow *f = fs->tab[i], *nx; f; f = nx) {
            nx = f->hnext;
            size_t b = pair_hash(f->proto, f->a, f->ap, f->b, f->bp) & (cap - 1);
            f->hnext = tab[b];
            tab[b] = f;
        }
    free(fs->tab);
    fs->tab = tab;
    fs->cap = cap;
    return 0;
}

/* The flow of packet p, *dir set to 0 when p goes client to server; NULL when none. */
static flow *flow_find(net_flows *fs, const net_pkt *p, int *dir)
{
    size_t alen = p->family == AF_INET ? 4 : 16;
    uint8_t s[16] = {0}, d[16] = {0};
    memcpy(s, p->src, alen);
    memcpy(d, p->dst, alen);
    for (flow *f = fs->tab[pair_hash(p->ip_proto, s, p->sport, d, p->dport) & (fs->cap - 1)]; f;
         f = f->hnext) {
        if (f->proto != p->ip_proto || f->family != p->family)
            continue;
        if (f->ap == p->sport && f->bp == p->dport && !memcmp(f->a, s, 16) &&
            !memcmp(f->b, d, 16)) {
            *dir = 0;
            return f;
        }
        if (f->ap == p->dport && f->bp == p->sport && !memcmp(f->a, d, 16) &&
            !memcmp(f->b, s, 16)) {
            *dir = 1;
            return f;
        }
    }
    return NULL;
}

/* Which side of a first packet is the client. */
static bool src_is_client(const net_pkt *p)
{
    if (p->ip_proto == IPPROTO_TCP) {
        if ((p->tcp_flags & (NET_TCP_SYN | NET_TCP_ACK)) == NET_TCP_SYN)
            return true;
        if ((p->tcp_flags & (NET_TCP_SYN | NET_TCP_ACK)) == (NET_TCP_SYN | NET_TCP_ACK))
            return false;
    }
    /* seen mid-stream, or UDP: the side on a well-known port is the server */
    if (p->sport < 1024 && p->dport >= 1024)
        return false;
    return true;
}

static int flow_new(net_flows *fs, const net_pkt *p, int64_t ts, uint32_t iface, flow **out,
                    int *dir)
{
    int rc = 0;
    if (fs->n >= fs->o.flows_max) {
        /* full: end the longest idle (or the oldest closed) flow */
        flow *victim = fs->closed.head ? fs->closed.head : fs->open.head;
        if (victim && (rc = flow_end(fs, victim, victim->closed ? state_name(victim) : "evicted")))
            return rc;
    }
    if (fs->n >= fs->cap && (rc = flows_grow(fs)) != 0)
        return rc;
    flow *f = calloc(1, sizeof *f);
    if (!f)
        return PTB_ENOMEM;
    size_t alen = p->family == AF_INET ? 4 : 16;
    bool cli = src_is_client(p);
    f->proto = p->ip_proto;
    f->family = p->family;
    memcpy(f->a, cli ? p->src : p->dst, alen);
    memcpy(f->b, cli ? p->dst : p->src, alen);
    f->ap = cli ? p->sport : p->dport;
    f->bp = cli ? p->dport : p->sport;
    f->id = ++fs->next_id;
    f->start = f->last = ts;
    f->iface = iface;
    const char *n = dns_name_of(fs, f->family, f->b);
    if (n)
        flow_set_host(fs, f, n, HOST_DNS);
    size_t b = pair_hash(f->proto, f->a, f->ap, f->b, f->bp) & (fs->cap - 1);
    f->hnext = fs->tab[b];
    fs->tab[b] = f;
    fs->n++;
    list_push(&fs->open, f);
    *dir = cli ? 0 : 1;
    *out = f;
    return 0;
}

/* ------------------------------------------------------------------ decoders on a stream */

/* Walk a chunked body through n bytes at p; returns how many were consumed (all of them, or
 * fewer when the body ended there). A malformed size line stops the direction's decoder. */
static size_t chunk_walk(dir_state *d, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && d->chunk != CH_NONE) {
        uint8_t c = p[i];
        switch (d->chunk) {
        case CH_SIZE:
            i++;
            if (c == '\n') {
                if (!d->chunk_hex_done && d->chunk_line == 0) {
                    dir_stop(d);
                    return n;
                }
                d->chunk = d->chunk_left ? CH_DATA : CH_TRAILER;
                d->chunk_line = 0;
                d->chunk_hex_done = false;
                break;
            }
            if (++d->chunk_line > CHUNK_LINE_MAX) {
                dir_stop(d);
                return n;
            }
            if (d->chunk_hex_done || c == '\r')
                break;
            int v = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (v < 0 || d->chunk_left >> 56) { /* ';' extension, space, or an absurd size */
                if (v >= 0 || d->chunk_line == 1) {
                    dir_stop(d);
                    return n;
                }
                d->chunk_hex_done = true;
                break;
            }
            d->chunk_left = d->chunk_left * 16 + (unsigned)v;
            break;
        case CH_DATA: {
            size_t k = n - i < d->chunk_left ? n - i : (size_t)d->chunk_left;
            i += k;
            d->chunk_left -= k;
            if (!d->chunk_left)
                d->chunk = CH_DATA_END;
            break;
        }
        case CH_DATA_END: /* the CRLF after the data */
            i++;
            if (c == '\n')
                d->chunk = CH_SIZE;
            break;
        case CH_TRAILER: /* trailer lines until an empty one */
            i++;
            if (c == '\n') {
                if (d->chunk_line == 0)
                    d->chunk = CH_NONE;
                d->chunk_line = 0;
            } else if (c != '\r' && ++d->chunk_line > CHUNK_LINE_MAX) {
                dir_stop(d);
                return n;
            }
            break;
        }
    }
    return i;
}

static bool looks_http_request(const uint8_t *p, size_t n)
{
    static const char *const m[] = {"GET ",     "POST ",  "PUT ",   "HEAD ",   "DELETE ",
                                    "OPTIONS ", "PATCH ", "TRACE ", "CONNECT "};
    for (size_t i = 0; i < sizeof m / sizeof *m; i++) {
        size_t l = strlen(m[i]);
        if (!memcmp(p, m[i], n < l ? n : l))
            return true;
    }
    return false;
}

/* Decide what the direction carries from its first bytes. */
static int classify(const flow *f, int dir, const uint8_t *p, size_t n)
{
    if (f->ap == 53 || f->bp == 53 || f->ap == 5353 || f->bp == 5353)
        return APP_DNS;
    if (dir == 0 && p[0] == 0x16)
        return APP_TLS;
    if (dir == 0 && looks_http_request(p, n))
        return APP_HTTP;
    /* a response: the client spoke HTTP, or was seen only from here on */
    if (dir == 1 && (f->d[0].app == APP_HTTP || f->d[0].app == APP_UNKNOWN) &&
        !memcmp(p, "HTTP/", n < 5 ? n : 5))
        return APP_HTTP;
    return APP_NONE;
}

/* Run the direction's decoder over its buffer; consumed bytes leave the buffer. */
static int decode_buf(net_flows *fs, flow *f, int dir, int64_t ts)
{
    dir_state *d = &f->d[dir];
    int rc = 0;
    while (d->app != APP_NONE && d->len) {
        if (d->app == APP_UNKNOWN) {
            d->app = classify(f, dir, d->buf, d->len);
            continue;
        }
        size_t used = 0;
        if (d->app == APP_TLS) {
            net_tls t;
            int r = net_tls_client_hello(d->buf, d->len, &t);
            if (r == PTB_ENOTFOUND && t.need_more)
                break;
            if (r == 0)
                rc = emit_tls(fs, f, ts, &t);
            dir_stop(d); /* what follows the hello is encrypted; so is the server's side */
            if (f->d[1].app == APP_UNKNOWN)
                dir_stop(&f->d[1]);
            break;
        } else if (d->app == APP_DNS) {
            net_dns m;
            int r = net_dns_parse(d->buf, d->len, true, &m);
            if (r == PTB_ECORRUPT && m.truncated)
                break; /* the rest of the message is still to come */
            rc = emit_dns(fs, f, ts, &m, r);
            if (r) {
                dir_stop(d);
                break;
            }
            used = m.consumed;
        } else { /* APP_HTTP */
            net_http *h = malloc(sizeof *h);
            if (!h)
                return PTB_ENOMEM;
            int r = net_http_parse(d->buf, d->len, h);
            if (r == PTB_ENOTFOUND && h->need_more) {
                free(h);
                break;
            }
            if (r) {
                free(h);
                dir_stop(d);
                break;
            }
            rc = emit_http(fs, f, ts, h);
            used = h->head_len;
            /* the body: Content-Length, chunked, or (a response without either) until close */
            bool no_body = h->response && (h->status < 200 || h->status == 204 || h->status == 304);
            if (!no_body && h->transfer_chunked)
                d->chunk = CH_SIZE, d->chunk_left = 0, d->chunk_line = 0, d->chunk_hex_done = false;
            else if (!no_body && h->has_content_length)
                d->skip = h->content_length;
            else if (!no_body && h->response) {
                free(h);
                dir_stop(d);
                break;
            }
            free(h);
        }
        if (!used) { /* cannot happen with a successful parse; never loop on it */
            dir_stop(d);
            break;
        }
        memmove(d->buf, d->buf + used, d->len - used);
        d->len -= used;
        /* a body starts right after the head: drop what of it is already buffered */
        if (d->skip || d->chunk) {
            size_t k = d->len;
            if (d->skip) {
                k = d->skip < d->len ? (size_t)d->skip : d->len;
                d->skip -= k;
            } else {
                k = chunk_walk(d, d->buf, d->len);
                if (d->app == APP_NONE)
                    break;
            }
            memmove(d->buf, d->buf + k, d->len - k);
            d->len -= k;
        }
        if (rc)
            break;
    }
    return rc;
}

/* n in-order bytes of the direction's stream. */
static int deliver(net_flows *fs, flow *f, int dir, const uint8_t *p, size_t n, int64_t ts)
{
    dir_state *d = &f->d[dir];
    while (n && d->app != APP_NONE && (d->skip || d->chunk)) {
        size_t k;
        if (d->skip) {
            k = d->skip < n ? (size_t)d->skip : n;
            d->skip -= k;
        } else {
            k = chunk_walk(d, p, n);
        }
        p += k;
        n -= k;
    }
    if (!n || d->app == APP_NONE)
        return 0;
    if (d->len + n > fs->o.stream_max) {
        dir_stop(d); /* a decoder that needs more than the bound: give up, nothing guessed */
        return 0;
    }
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < d->len + n)
            cap *= 2;
        uint8_t *b = realloc(d->buf, cap);
        if (!b)
            return PTB_ENOMEM;
        d->buf = b;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, p, n);
    d->len += n;
    return decode_buf(fs, f, dir, ts);
}

/* Deliver the queued out-of-order segments that now follow next_seq. */
static int ooo_drain(net_flows *fs, flow *f, int dir, int64_t ts)
{
    dir_state *d = &f->d[dir];
    int rc = 0;
    while (!rc && d->ooo) {
        seg *s = d->ooo;
        int32_t rel = (int32_t)(s->seq - d->next_seq);
        if (rel > 0)
            break;
        d->ooo = s->next;
        d->ooo_bytes -= s->len;
        if ((uint32_t)-rel < s->len) {
            uint32_t skip = (uint32_t)-rel;
            d->next_seq += s->len - skip;
            rc = deliver(fs, f, dir, s->data + skip, s->len - skip, ts);
        }
        free(s);
    }
    return rc;
}

/* Give up the hole before the first queued segment or before seq, whichever comes first. */
static int hole_skip(net_flows *fs, flow *f, int dir, uint32_t seq, int64_t ts)
{
    dir_state *d = &f->d[dir];
    uint32_t to = d->ooo && (int32_t)(d->ooo->seq - seq) < 0 ? d->ooo->seq : seq;
    f->missing += (uint32_t)(to - d->next_seq);
    d->next_seq = to;
    if (d->app != APP_NONE)
        dir_stop(d);
    return ooo_drain(fs, f, dir, ts);
}

/* The payload of one segment: wire bytes at seq, of which the first len were captured. */
static int tcp_data(net_flows *fs, flow *f, int dir, uint32_t seq, const uint8_t *data, size_t len,
                    size_t wire, int64_t ts)
{
    dir_state *d = &f->d[dir];
    int rc = 0;
    int32_t rel = (int32_t)(seq - d->next_seq);
    if (rel > 0 && len == wire && (uint32_t)rel < OOO_AHEAD_MAX &&
        d->ooo_bytes + len <= fs->o.ooo_max) {
        seg *s = malloc(sizeof *s + len);
        if (!s)
            return PTB_ENOMEM;
        s->seq = seq;
        s->len = (uint32_t)len;
        memcpy(s->data, data, len);
        seg **pp = &d->ooo;
        while (*pp && (int32_t)((*pp)->seq - seq) < 0)
            pp = &(*pp)->next;
        s->next = *pp;
        *pp = s;
        d->ooo_bytes += len;
        return 0;
    }
    /* too far ahead, the queue is full, or cut by the snap length: give up the holes before */
    while (!rc && (int32_t)(seq - d->next_seq) > 0)
        rc = hole_skip(fs, f, dir, seq, ts);
    if (rc)
        return rc;
    rel = (int32_t)(seq - d->next_seq);
    if (rel < 0) { /* starts before what was delivered: trim */
        uint32_t over = (uint32_t)-rel;
        if (over >= wire)
            return 0; /* a retransmission */
        if (over >= len) {
            len = 0;
        } else {
            data += over;
            len -= over;
        }
        wire -= over;
    }
    d->next_seq += (uint32_t)wire;
    if (len)
        rc = deliver(fs, f, dir, data, len, ts);
    if (!rc && len < wire) { /* cut by the snap length: a hole at the end */
        f->missing += wire - len;
        if (d->app != APP_NONE)
            dir_stop(d);
    }
    return rc ? rc : ooo_drain(fs, f, dir, ts);
}

static int tcp_segment(net_flows *fs, flow *f, int dir, const net_pkt *p, int64_t ts)
{
    dir_state *d = &f->d[dir];
    uint32_t seq = p->tcp_seq;
    if (p->tcp_flags & NET_TCP_SYN) {
        d->next_seq = seq + 1;
        d->seq_known = true;
        seq++;
    } else if (!d->seq_known) {
        /* seen mid-stream: start here; the decoders accept only a message start */
        d->next_seq = seq;
        d->seq_known = true;
    }
    int rc = 0;
    if (p->payload_wirelen)
        rc = tcp_data(fs, f, dir, seq, p->payload, p->payload_len, p->payload_wirelen, ts);
    if (p->tcp_flags & NET_TCP_FIN)
        d->fin = true;
    if (p->tcp_flags & NET_TCP_RST)
        f->rst = true;
    return rc;
}

/* ------------------------------------------------------------------ the packet path */

/* Whether packet p of flow f carries bytes a decoder is about to read (a DNS message, a TLS
 * ClientHello, an HTTP head): such packets are stored whole, so that the evidence behind every
 * net.dns, net.tls and net.http event can be read again from the packets (ptb export --pcap). */
static bool feeds_decoder(const flow *f, int dir, const net_pkt *p)
{
    if (!p->payload_wirelen)
        return false;
    if (f->proto == IPPROTO_UDP)
        return f->ap == 53 || f->bp == 53 || f->ap == 5353 || f->bp == 5353;
    const dir_state *d = &f->d[dir];
    return d->app != APP_NONE && !d->skip && d->chunk == CH_NONE;
}

static int emit_packet(net_flows *fs, int64_t ts, uint32_t iface, int linktype, const uint8_t *data,
                       size_t caplen, size_t wirelen, const flow *f, bool whole)
{
    Ptb__V1__NetPacket np = PTB__V1__NET_PACKET__INIT;
    np.iface = iface;
    np.linktype = (uint32_t)linktype;
    np.caplen = caplen;
    np.origlen = wirelen;
    size_t keep = caplen;
    if (fs->o.snaplen && !whole && !(f && f->keep) && keep > fs->o.snaplen)
        keep = fs->o.snaplen;
    np.data.data = (uint8_t *)data;
    np.data.len = keep;
    np.flow_id = f ? f->id : 0;
    ptb_event ev = PTB__V1__EVENT__INIT;
    envelope(&ev, ts, f ? f->exec_id : 0);
    ev.body_case = PTB__V1__EVENT__BODY_NET_PACKET;
    ev.net_packet = &np;
    return emit(fs, &ev);
}

int net_flows_packet(net_flows *fs, int64_t ts_ns, uint32_t iface, int linktype,
                     const uint8_t *data, size_t caplen, size_t wirelen)
{
    if (!fs || (!data && caplen))
        return PTB_EINVAL;
    if (fs->err)
        return fs->err;
    /* a wire length below the captured length (crafted captures have them) is stored as it
     * came, so that an export gives back the same records; decoding takes the larger */
    size_t stored_wirelen = wirelen;
    if (wirelen < caplen)
        wirelen = caplen;
    fs->st.packets++;
    fs->st.bytes += wirelen;
    int rc = flows_expire(fs, ts_ns);
    if (rc)
        return rc;
    net_pkt p;
    bool ok = net_decode(linktype, data, caplen, wirelen, &p) == 0 && p.layer >= NET_LAYER_IP;
    if (!ok)
        fs->st.undecoded++;
    flow *f = NULL;
    int dir = 0;
    bool has_ports = ok && p.layer >= NET_LAYER_L4 && !p.frag_offset &&
                     (p.ip_proto == IPPROTO_TCP || p.ip_proto == IPPROTO_UDP);
    if (has_ports) {
        f = flow_find(fs, &p, &dir);
        /* a new SYN on the ends of a closed flow starts a new flow (port reuse) */
        if (f && f->closed && (p.tcp_flags & (NET_TCP_SYN | NET_TCP_ACK)) == NET_TCP_SYN) {
            if ((rc = flow_end(fs, f, state_name(f))))
                return rc;
            f = NULL;
        }
        if (!f && (rc = flow_new(fs, &p, ts_ns, iface, &f, &dir)))
            return rc;
        f->last = ts_ns;
        if (!f->closed) {
            list_remove(&fs->open, f);
            list_push(&fs->open, f);
        }
        /* bytes of the IP packet as the headers declare them */
        f->d[dir].bytes +=
            p.payload_wirelen + (p.payload ? (size_t)(p.payload - data) : 0) - p.ip_offset;
        f->d[dir].packets++;
        flow_owner(fs, f);
    }
    if (fs->o.packets && (rc = emit_packet(fs, ts_ns, iface, linktype, data, caplen, stored_wirelen,
                                           f, f && feeds_decoder(f, dir, &p))))
        return rc;
    if (!f)
        return 0;
    if (f->proto == IPPROTO_UDP) {
        if (f->ap == 53 || f->bp == 53 || f->ap == 5353 || f->bp == 5353) {
            net_dns m;
            int r = net_dns_parse(p.payload, p.payload_len, false, &m);
            if (r == 0 || r == PTB_ECORRUPT)
                rc = emit_dns(fs, f, ts_ns, &m, r);
        }
        return rc;
    }
    if ((rc = tcp_segment(fs, f, dir, &p, ts_ns)))
        return rc;
    if (!f->closed && (f->rst || (f->d[0].fin && f->d[1].fin))) {
        f->state = f->rst ? ST_RST : ST_FIN;
        f->closed = true;
        f->closed_at = ts_ns;
        list_remove(&fs->open, f);
        list_push(&fs->closed, f);
    }
    return 0;
}

/* ------------------------------------------------------------------ lifetime */

void net_flows_options_default(net_flows_options *o)
{
    memset(o, 0, sizeof *o);
    o->snaplen = 256;
    o->packets = true;
    o->source = PTB__V1__SOURCE__SOURCE_PCAP;
    o->stream_max = 64 << 10;
    o->ooo_max = 256 << 10;
    o->flows_max = 65536;
    o->idle_ns = 120 * 1000000000LL;
}

int net_flows_new(store *s, const net_flows_options *o, net_flows **out)
{
    if (!s || !out)
        return PTB_EINVAL;
    net_flows *fs = calloc(1, sizeof *fs);
    if (!fs)
        return PTB_ENOMEM;
    fs->s = s;
    if (o)
        fs->o = *o;
    else
        net_flows_options_default(&fs->o);
    if (!fs->o.flows_max)
        fs->o.flows_max = 65536;
    if (!fs->o.stream_max)
        fs->o.stream_max = 64 << 10;
    if (fs->o.idle_ns <= 0)
        fs->o.idle_ns = 120 * 1000000000LL;
    fs->cap = 1024;
    fs->dns_cap = 4096;
    fs->tab = calloc(fs->cap, sizeof *fs->tab);
    fs->dns = calloc(fs->dns_cap, sizeof *fs->dns);
    if (!fs->tab || !fs->dns) {
        net_flows_free(fs);
        return PTB_ENOMEM;
    }
    *out = fs;
    return 0;
}

int net_flows_finish(net_flows *fs)
{
    int rc = 0;
    while (!rc && fs->closed.head)
        rc = flow_end(fs, fs->closed.head, state_name(fs->closed.head));
    while (!rc && fs->open.head)
        rc = flow_end(fs, fs->open.head, "open");
    return rc;
}

void net_flows_stats_get(const net_flows *fs, net_flows_stats *out)
{
    *out = fs->st;
}

void net_flows_free(net_flows *fs)
{
    if (!fs)
        return;
    for (flow_list *l = &fs->open;; l = &fs->closed) {
        for (flow *f = l->head, *nx; f; f = nx) {
            nx = f->next;
            dir_free(&f->d[0]);
            dir_free(&f->d[1]);
            free(f);
        }
        if (l == &fs->closed)
            break;
    }
    for (size_t i = 0; i < DNS_MAP_MAX; i++)
        free(fs->dns_fifo[i]);
    free(fs->dns);
    free(fs->tab);
    free(fs);
}
