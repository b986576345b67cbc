/* The owner table of net_flow.h: which exec_id holds the socket with given ends, as the tracer
 * saw it at connect, accept, bind and sendto. A chained hash table under one mutex: the tracer
 * thread adds, the capture thread finds, a few times per flow. Entries are never removed (a run
 * has at most a few hundred thousand sockets; each entry is 56 bytes); a later entry for the same
 * ends replaces the earlier, so a reused port goes to its newest owner. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "net_flow.h"
#include "ptb_error.h"

typedef struct owner_key {
    uint8_t proto;  /* IPPROTO_TCP / IPPROTO_UDP */
    uint8_t family; /* AF_INET / AF_INET6 */
    uint16_t lport, rport;
    uint8_t laddr[16], raddr[16]; /* raddr all zero and rport 0: any peer */
} owner_key;

typedef struct owner {
    struct owner *next;
    owner_key k;
    uint64_t exec_id;
} owner;

struct net_owners {
    pthread_mutex_t mu;
    owner **tab;
    size_t cap, n; /* cap: a power of two */
};

static uint64_t key_hash(const owner_key *k)
{
    const uint8_t *p = (const uint8_t *)k;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < sizeof *k; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

int net_owners_new(net_owners **out)
{
    net_owners *o = calloc(1, sizeof *o);
    if (!o)
        return PTB_ENOMEM;
    o->cap = 1024;
    o->tab = calloc(o->cap, sizeof *o->tab);
    if (!o->tab) {
        free(o);
        return PTB_ENOMEM;
    }
    pthread_mutex_init(&o->mu, NULL);
    *out = o;
    return 0;
}

void net_owners_free(net_owners *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->cap; i++)
        for (owner *e = o->tab[i], *nx; e; e = nx) {
            nx = e->next;
            free(e);
        }
    free(o->tab);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

/* Text address to 16 bytes; IPv4-mapped IPv6 becomes IPv4. Returns the family, 0 if unparsable.
 * NULL or empty text is the unspecified address of `like` (0: IPv4). */
static int parse_ip(const char *s, int like, uint8_t out[16])
{
    memset(out, 0, 16);
    if (!s || !*s)
        return like ? like : AF_INET;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, s, &a4) == 1) {
        memcpy(out, &a4, 4);
        return AF_INET;
    }
    if (inet_pton(AF_INET6, s, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            memcpy(out, a6.s6_addr + 12, 4);
            return AF_INET;
        }
        memcpy(out, &a6, 16);
        return AF_INET6;
    }
    return 0;
}

static const owner *find_locked(net_owners *o, const owner_key *k)
{
    for (const owner *e = o->tab[key_hash(k) & (o->cap - 1)]; e; e = e->next)
        if (!memcmp(&e->k, k, sizeof *k))
            return e;
    return NULL;
}

static int grow_locked(net_owners *o)
{
    size_t cap = o->cap * 2;
    owner **tab = calloc(cap, sizeof *tab);
    if (!tab)
        return PTB_ENOMEM;
    for (size_t i = 0; i < o->cap; i++)
        for (owner *e = o->tab[i], *nx; e; e = nx) {
            nx = e->next;
            size_t b = key_hash(&e->k) & (cap - 1);
            e->next = tab[b];
            tab[b] = e;
        }
    free(o->tab);
    o->tab = tab;
    o->cap = cap;
    return 0;
}

int net_owners_add(net_owners *o, const char *proto, const char *local_ip, uint16_t local_port,
                   const char *remote_ip, uint16_t remote_port, uint64_t exec_id)
{
    if (!o || !proto)
        return PTB_EINVAL;
    owner_key k;
    memset(&k, 0, sizeof k);
    if (!strcmp(proto, "tcp") || !strcmp(proto, "tcp6"))
        k.proto = IPPROTO_TCP;
    else if (!strcmp(proto, "udp") || !strcmp(proto, "udp6"))
        k.proto = IPPROTO_UDP;
    else
        return 0;
    int lf = parse_ip(local_ip, 0, k.laddr);
    int rf = parse_ip(remote_ip, lf, k.raddr);
    if (!lf || !rf)
        return 0;
    if (lf != rf) { /* one side unspecified "::" with an IPv4 peer: take the peer's family */
        static const uint8_t zero[16];
        if (!memcmp(k.laddr, zero, 16))
            lf = rf;
        else if (!memcmp(k.raddr, zero, 16))
            rf = lf;
        else
            return 0;
    }
    k.family = (uint8_t)lf;
    k.lport = local_port;
    k.rport = remote_port;
    if (!remote_port) /* an unconnected socket: any peer */
        memset(k.raddr, 0, sizeof k.raddr);
    int rc = 0;
    pthread_mutex_lock(&o->mu);
    owner *e = (owner *)find_locked(o, &k);
    if (e) {
        e->exec_id = exec_id;
    } else if (o->n >= o->cap && (rc = grow_locked(o)) != 0) {
        /* rc set */
    } else if (!(e = malloc(sizeof *e))) {
        rc = PTB_ENOMEM;
    } else {
        e->k = k;
        e->exec_id = exec_id;
        size_t b = key_hash(&k) & (o->cap - 1);
        e->next = o->tab[b];
        o->tab[b] = e;
        o->n++;
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

/* The entry for local end (l, lp) and peer (r, rp); exact: both ends, else the local end with
 * any peer, then the port on the unspecified address (a socket bound to 0.0.0.0). */
static uint64_t find_end(net_owners *o, owner_key *k, const uint8_t l[16], uint16_t lp,
                         const uint8_t r[16], uint16_t rp, bool exact)
{
    memcpy(k->laddr, l, 16);
    k->lport = lp;
    const owner *e;
    if (exact) {
        memcpy(k->raddr, r, 16);
        k->rport = rp;
        if ((e = find_locked(o, k)))
            return e->exec_id;
        /* sendto from a socket bound to 0.0.0.0: its local address is the unspecified one */
        memset(k->laddr, 0, 16);
        return (e = find_locked(o, k)) ? e->exec_id : 0;
    }
    memset(k->raddr, 0, 16);
    k->rport = 0;
    if ((e = find_locked(o, k)))
        return e->exec_id;
    memset(k->laddr, 0, 16);
    return (e = find_locked(o, k)) ? e->exec_id : 0;
}

uint64_t net_owners_find(net_owners *o, int ip_proto, int family, const uint8_t a[16],
                         uint16_t a_port, const uint8_t b[16], uint16_t b_port, bool *exact)
{
    if (exact)
        *exact = false;
    if (!o || (ip_proto != IPPROTO_TCP && ip_proto != IPPROTO_UDP))
        return 0;
    owner_key k;
    memset(&k, 0, sizeof k);
    k.proto = (uint8_t)ip_proto;
    k.family = (uint8_t)family;
    uint8_t aa[16] = {0}, bb[16] = {0};
    memcpy(aa, a, family == AF_INET ? 4 : 16);
    memcpy(bb, b, family == AF_INET ? 4 : 16);
    pthread_mutex_lock(&o->mu);
    /* a connected socket with both ends beats a listening or unconnected one, and end a (the
     * client) beats end b: on loopback both ends may belong to the recorded tree */
    uint64_t id = find_end(o, &k, aa, a_port, bb, b_port, true);
    if (!id)
        id = find_end(o, &k, bb, b_port, aa, a_port, true);
    if (id && exact)
        *exact = true;
    if (!id)
        id = find_end(o, &k, aa, a_port, bb, b_port, false);
    if (!id)
        id = find_end(o, &k, bb, b_port, aa, a_port, false);
    pthread_mutex_unlock(&o->mu);
    return id;
}
