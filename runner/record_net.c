/* The network part of `ptb record` (issue 4): the run's own network namespace with NAT
 * (net_ns.h), the capture inside it (net_capture.h), and the owner table that the tracer fills at
 * connect/accept/bind/sendto so that every flow gets its exec_id (net_flow.h).
 *
 * Modes (--net): "ns" (default) the namespace; "iface:NAME" capture on a host interface, with
 * --net-filter, for machines where a namespace cannot be made (the command then shares the
 * host's network, so packets of other programs are captured too, with exec_id 0); "off".
 * When the default mode cannot make a namespace (no CAP_NET_ADMIN), it falls back to capturing
 * the host's interfaces ("any") where CAP_NET_RAW allows, with a `gap` (reason "no_namespace");
 * with neither, the run goes on without packets, says so on stderr, and a `gap` (reason
 * "no_capture") puts it on record. A mode asked for explicitly that cannot be set up is an
 * error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_type.h"
#include "net_capture.h"
#include "net_ns.h"
#include "ptb_cli.h"
#include "record_gap.h"
#include "record_net.h"

void record_net_options_default(record_net_options *o)
{
    memset(o, 0, sizeof *o);
    o->mode = "ns";
    o->nat = true;
    o->snaplen = 256;
}

static void on_socket(void *arg, uint64_t exec_id, const char *proto, const char *local_ip,
                      uint16_t local_port, const char *remote_ip, uint16_t remote_port)
{
    net_owners_add(arg, proto, local_ip, local_port, remote_ip, remote_port, exec_id);
}

/* The host's resolver on a loopback address (systemd-resolved's 127.0.0.53): unreachable from
 * inside the namespace. Returns the address or NULL. */
static const char *loopback_resolver(char *buf, size_t cap)
{
    FILE *f = fopen("/etc/resolv.conf", "r");
    if (!f)
        return NULL;
    char line[512];
    const char *found = NULL;
    while (!found && fgets(line, sizeof line, f)) {
        char ip[128];
        if (sscanf(line, " nameserver %127s", ip) == 1 &&
            (!strncmp(ip, "127.", 4) || !strcmp(ip, "::1"))) {
            snprintf(buf, cap, "%s", ip);
            found = buf;
        }
    }
    fclose(f);
    return found;
}

int record_net_start(record_net *rn, store *s, const record_net_options *o, tracer_options *to,
                     bool quiet)
{
    memset(rn, 0, sizeof *rn);
    if (!strcmp(o->mode, "off"))
        return 0;
    bool ns_mode = !strcmp(o->mode, "ns");
    bool iface_mode = !strncmp(o->mode, "iface:", 6) && o->mode[6];
    if (!ns_mode && !iface_mode) {
        fprintf(stderr, "ptb record: --net: '%s' is not ns, off or iface:NAME\n", o->mode);
        return PTB_EXIT_USAGE;
    }
    int rc = net_owners_new(&rn->owners);
    if (rc) {
        fprintf(stderr, "ptb record: out of memory\n");
        return PTB_EXIT_ERROR;
    }
    ptb_errbuf eb = {{0}};
    net_capture_options co;
    net_capture_options_default(&co);
    co.flows.snaplen = o->snaplen;
    co.flows.keep_hosts = o->keep_hosts;
    co.flows.n_keep_hosts = o->n_keep_hosts;
    co.flows.owners = rn->owners;
    co.filter = o->filter;
    if (o->buffer)
        co.buffer_bytes = o->buffer;
    if (ns_mode) {
        net_ns_sweep();
        net_ns_options nso;
        net_ns_options_default(&nso);
        nso.nat = o->nat;
        rc = net_ns_create(&nso, &rn->ns, &eb);
        if (rc && o->nat && rc != -EPERM) {
            /* NAT could not be set up (no nftables?): a namespace without a way out, said so */
            char why[sizeof eb.msg];
            snprintf(why, sizeof why, "%s", eb.msg);
            nso.nat = false;
            ptb_errbuf eb2 = {{0}};
            if (net_ns_create(&nso, &rn->ns, &eb2) == 0) {
                rc = 0;
                char d[sizeof why + 96];
                snprintf(d, sizeof d, "no NAT: the command reaches only this host (%s)", why);
                if (!quiet)
                    fprintf(stderr, "ptb record: %s\n", d);
                record_gap(s, PTB__V1__SOURCE__SOURCE_PCAP, "pcap", "no_nat", d);
            }
        }
        if (rc) {
            if (o->explicit_mode) {
                fprintf(stderr, "ptb record: --net ns: %s\n", eb.msg);
                record_net_stop(rn, NULL);
                return PTB_EXIT_ERROR;
            }
            /* no namespace: capture the host's interfaces instead, where that is allowed
             * (CAP_NET_RAW without CAP_NET_ADMIN), as --net iface:any would */
            ptb_errbuf eb2 = {{0}};
            co.device = "any";
            if (net_capture_start(s, &co, &rn->cap, &eb2) == 0) {
                char d[sizeof eb.msg + 200];
                snprintf(d, sizeof d,
                         "no network namespace (%s): capturing on the host's interfaces instead; "
                         "packets of other programs are captured too (--net-filter narrows it)",
                         eb.msg);
                if (!quiet)
                    fprintf(stderr, "ptb record: %s\n", d);
                record_gap(s, PTB__V1__SOURCE__SOURCE_PCAP, "pcap", "no_namespace", d);
                snprintf(rn->desc, sizeof rn->desc, "host interfaces, no namespace");
                store_meta_set(s, "net.mode", "iface:any (no namespace)");
                to->on_socket = on_socket;
                to->on_socket_arg = rn->owners;
                rn->active = true;
                return 0;
            }
            char d[sizeof eb.msg + sizeof eb2.msg + 160];
            snprintf(d, sizeof d,
                     "no packet capture: %s; and %s; the command shares the host's network, "
                     "unrecorded (run as root, or --net off)",
                     eb.msg, eb2.msg);
            if (!quiet)
                fprintf(stderr, "ptb record: %s\n", d);
            record_gap(s, PTB__V1__SOURCE__SOURCE_PCAP, "pcap", "no_capture", d);
            return 0;
        }
        co.netns_fd = net_ns_fd(rn->ns);
        to->netns_fd = co.netns_fd;
        const char *host_if = net_ns_host_ifname(rn->ns);
        char table[64] = "";
        if (nso.nat) /* net_ns.h: the table is ptb_<recorder pid>_<N> for the link ptbh<N> */
            snprintf(table, sizeof table, ", NAT table ptb_%d_%s", (int)getpid(),
                     host_if + strspn(host_if, "ptbh"));
        snprintf(rn->desc, sizeof rn->desc, "namespace: %s %s <-> %s %s%s",
                 net_ns_inner_ifname(rn->ns), net_ns_inner_addr(rn->ns), host_if,
                 net_ns_host_addr(rn->ns), table);
        store_meta_set(s, "net.mode", rn->desc);
        char rbuf[128];
        const char *lr = loopback_resolver(rbuf, sizeof rbuf);
        if (lr && !quiet)
            fprintf(stderr,
                    "ptb record: note: /etc/resolv.conf names %s, a loopback resolver that the "
                    "command's network namespace cannot reach: name lookups inside will fail\n",
                    lr);
    } else {
        co.device = o->mode + 6;
        snprintf(rn->desc, sizeof rn->desc, "interface %s", co.device);
        store_meta_set(s, "net.mode", o->mode);
    }
    rc = net_capture_start(s, &co, &rn->cap, &eb);
    if (rc) {
        fprintf(stderr, "ptb record: %s\n", eb.msg);
        record_net_stop(rn, NULL);
        return rc == PTB_EINVAL ? PTB_EXIT_USAGE : PTB_EXIT_ERROR;
    }
    to->on_socket = on_socket;
    to->on_socket_arg = rn->owners;
    rn->active = true;
    return 0;
}

int record_net_stop(record_net *rn, net_capture_stats *st)
{
    if (st)
        memset(st, 0, sizeof *st);
    int rc = net_capture_stop(rn->cap, st);
    rn->cap = NULL;
    net_ns_destroy(rn->ns);
    rn->ns = NULL;
    net_owners_free(rn->owners);
    rn->owners = NULL;
    return rc;
}
