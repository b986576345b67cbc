/* The recorded tree's own network namespace (issue 4, "Capture"; DESIGN.md "Recording").
 *
 * net_ns_create() makes a new network namespace and connects it to the host's with a veth pair:
 * the host end "ptbh<N>" holds X.1/30 and the namespace end "eth0" X.2/30, X.0/30 a subnet of
 * 100.64.0.0/10 that no host interface uses (chosen from the recorder's pid, see net_ns.c), with a
 * default route through the host end; loopback is up inside. IPv6 address generation is off on
 * both ends of the pair, so the kernel sends nothing of its own there. With NAT on, the host
 * forwards and masquerades the namespace's traffic (an nftables table "ptb_<recorder pid>_<N>" of
 * its own, so that removing the table removes every rule). Every packet of the recorded tree then
 * crosses interfaces that belong to the run alone, and a capture of "any" inside the namespace
 * sees them all, loopback included.
 *
 * Links and addresses are made with rtnetlink (libmnl), NAT with the nft program (spawned, no
 * shell). The namespace lives while its fd is open: net_ns_destroy() deletes the host end (which
 * takes the peer with it), the nftables table, and closes the fd. If the recorder is killed, the
 * kernel destroys the namespace and the veth pair with it when the last process in it dies; only
 * the nftables table is left, and net_ns_sweep() (run at the start of each `ptb record`) removes
 * the tables of recorders that no longer run.
 *
 * What NAT changes on the host besides its own table: net.ipv4.ip_forward is set to 1 when it was
 * 0, and is NOT set back by net_ns_destroy (other runs, or the admin, may rely on it by then). The
 * table's forward chain accepts the pair's traffic, but an accept in one nftables table does not
 * override a drop in another: a host whose forward policy drops (Docker's iptables rules, a
 * firewall) still drops the namespace's traffic to the outside.
 *
 * Threads and processes: net_ns_create, net_ns_destroy and net_ns_sweep act on the namespace of
 * the calling thread (the host's: not between net_ns_enter and net_ns_leave). net_ns_sweep, and
 * create and destroy with NAT, spawn nft and wait for it by pid, so they must not run while
 * another thread reaps with waitpid(-1). Several threads or recorders may create namespaces at
 * once: link names and subnets never collide (net_ns.c, steps 2 and 4).
 *
 * Needs root: CAP_SYS_ADMIN (unshare, setns) and CAP_NET_ADMIN (links, addresses, nftables).
 * Without them net_ns_create() fails with -EPERM and a message that says so; the caller falls back
 * (`--net iface:NAME`) or records without packets, with a gap. */
#ifndef NET_NS_H
#define NET_NS_H

#include <stdbool.h>

#include "ptb_error.h"

typedef struct net_ns net_ns;

typedef struct net_ns_options {
    bool nat; /* forward and masquerade the namespace's traffic to the host's routes (default) */
} net_ns_options;

void net_ns_options_default(net_ns_options *o);

/* Create the namespace, the veth pair, addresses, routes and (with o->nat) NAT. o NULL: the
 * defaults. The calling thread stays in its own namespace. *out: caller frees with
 * net_ns_destroy. Returns 0, -EPERM without the capabilities above, -ENOENT when NAT is asked for
 * and nft is not installed (the message names the package and the alternatives), another -errno
 * or PTB_E* code otherwise, always with a message in eb; on failure nothing is left behind (but
 * ip_forward, which is set only after the table was made). */
int net_ns_create(const net_ns_options *o, net_ns **out, ptb_errbuf *eb);

/* fd of the namespace (/proc/thread-self/ns/net of the short-lived thread that made it; O_CLOEXEC),
 * for setns(fd, CLONE_NEWNET) in the child that execs the command. Borrowed, valid until
 * net_ns_destroy. -1 for NULL. */
int net_ns_fd(const net_ns *ns);

/* Names and addresses, borrowed, valid until net_ns_destroy. */
const char *net_ns_host_ifname(const net_ns *ns);  /* "ptbh<N>" in the host namespace */
const char *net_ns_inner_ifname(const net_ns *ns); /* "eth0" in the namespace */
const char *net_ns_host_addr(const net_ns *ns);    /* "100.64.X.1" */
const char *net_ns_inner_addr(const net_ns *ns);   /* "100.64.X.2" */

/* Move the calling thread into the namespace: sockets (packet capture, netlink) made until
 * net_ns_leave belong to it, and stay there after. *saved receives the fd to go back with.
 * Returns 0, PTB_EINVAL or -errno. */
int net_ns_enter(const net_ns *ns, int *saved);
/* Go back to the namespace saved by net_ns_enter and close saved. Returns 0, PTB_EINVAL or
 * -errno. */
int net_ns_leave(int saved);

/* Remove the veth pair, the nftables table and the namespace (once no process is left in it).
 * NULL is a no-op. Errors (a link already gone) are ignored: this runs on every exit path.
 * ip_forward is left as it is (see above). */
void net_ns_destroy(net_ns *ns);

/* Remove nftables tables "ptb_<PID>_<N>" (family ip) whose recorder PID no longer runs (left by a
 * recorder that was killed): kill(PID, 0) fails with ESRCH. Returns the number of tables removed,
 * 0 when nft is not installed, a negative code when `nft list tables` fails (PTB_EIO: nft exited
 * non-zero, e.g. not root). Limits: a table outlives its recorder while the PID is reused by
 * another process (at worst it then forwards and masquerades a later namespace that gets the same
 * link name or subnet; the first sweep after that process ends removes it); and PIDs are read in
 * the caller's pid namespace, so recorders in different pid namespaces that share one network
 * namespace (containers on the host's network) may remove each other's live tables. */
int net_ns_sweep(void);

#endif
