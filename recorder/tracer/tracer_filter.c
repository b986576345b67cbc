/* The seccomp-bpf filter of the recorded tree: SECCOMP_RET_TRACE (a ptrace stop) for the
 * syscalls the tracer records or refuses, SECCOMP_RET_ALLOW for everything else, so a process
 * that only computes runs at native speed.
 *
 * Stops on:
 * - any syscall of a foreign architecture (i386 `int 0x80`) or of the x32 ABI: refused with
 *   ENOSYS and recorded (proc.denied), since the tracer decodes x86_64 arguments only;
 * - the syscalls of tracer_syscalls[] (files, processes, sockets, and the refused io_uring and
 *   ptrace);
 * - mmap only when it makes a shared writable mapping of a file (prot & PROT_WRITE, flags &
 *   MAP_SHARED, fd != -1): such writes bypass write(2) and are hashed at exit;
 * - fcntl only for F_DUPFD / F_DUPFD_CLOEXEC (a new descriptor for a tracked file);
 * - sendto only with a destination address (args[4] != NULL).
 * A process cannot remove the filter; filters it adds itself can only restrict further. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tracer_int.h"

#if defined(__x86_64__)
#define TRACER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TRACER_ARCH AUDIT_ARCH_AARCH64
#else
#error "the tracer supports x86_64 and aarch64"
#endif

/* Syscalls that always stop (the ones with argument conditions are handled below). */
static const int tracer_syscalls[] = {
    SYS_execve,
    SYS_execveat,
    SYS_openat,
    SYS_openat2,
    SYS_close,
    SYS_close_range,
    SYS_dup,
    SYS_dup3,
    SYS_renameat,
    SYS_renameat2,
    SYS_unlinkat,
    SYS_mkdirat,
    SYS_linkat,
    SYS_symlinkat,
    SYS_truncate,
    SYS_ftruncate,
    SYS_fchmod,
    SYS_fchmodat,
    SYS_fchmodat2,
    SYS_connect,
    SYS_accept,
    SYS_accept4,
    SYS_bind,
    SYS_io_uring_setup,
    SYS_io_uring_enter,
    SYS_io_uring_register,
    SYS_ptrace,
    SYS_process_vm_writev,
#ifdef SYS_open
    SYS_open,
    SYS_creat,
    SYS_dup2,
    SYS_rename,
    SYS_unlink,
    SYS_rmdir,
    SYS_mkdir,
    SYS_link,
    SYS_symlink,
    SYS_chmod,
#endif
};

#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define ARG_HI(i) (ARG_LO(i) + 4)
#define LD(off) (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define JEQ(k, t, f) (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define JSET(k, t, f) (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (k), (t), (f))
#define JGE(k, t, f) (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (k), (t), (f))
#define RET(k) (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, (k))

bool tracer_filter_traces(int nr)
{
    for (size_t i = 0; i < sizeof tracer_syscalls / sizeof tracer_syscalls[0]; i++)
        if (tracer_syscalls[i] == nr)
            return true;
    return nr == SYS_mmap || nr == SYS_fcntl || nr == SYS_sendto;
}

int tracer_filter_install(void)
{
    enum { N = sizeof tracer_syscalls / sizeof tracer_syscalls[0] };
    struct sock_filter prog[16 + 2 * N + 32];
    size_t n = 0;
    const uint32_t TRACE = SECCOMP_RET_TRACE, ALLOW = SECCOMP_RET_ALLOW;
    /* foreign architecture: trace (refused by the tracer) */
    prog[n++] = LD(offsetof(struct seccomp_data, arch));
    prog[n++] = JEQ(TRACER_ARCH, 1, 0);
    prog[n++] = RET(TRACE);
    prog[n++] = LD(offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
    prog[n++] = JGE(0x40000000u, 0, 1); /* __X32_SYSCALL_BIT */
    prog[n++] = RET(TRACE);
#endif
    for (size_t i = 0; i < N; i++) {
        prog[n++] = JEQ((uint32_t)tracer_syscalls[i], 0, 1);
        prog[n++] = RET(TRACE);
    }
    /* mmap(addr, len, prot, flags, fd, off): shared, writable, of a file */
    prog[n++] = JEQ(SYS_mmap, 0, 8);
    prog[n++] = LD(ARG_LO(2));
    prog[n++] = JSET(PROT_WRITE, 0, 5);
    prog[n++] = LD(ARG_LO(3));
    prog[n++] = JSET(MAP_SHARED, 0, 3);
    prog[n++] = LD(ARG_LO(4));
    prog[n++] = JEQ(0xffffffffu, 1, 0);
    prog[n++] = RET(TRACE);
    prog[n++] = RET(ALLOW);
    /* fcntl(fd, F_DUPFD | F_DUPFD_CLOEXEC, ...) (A still holds nr when the mmap test failed) */
    prog[n++] = JEQ(SYS_fcntl, 0, 5);
    prog[n++] = LD(ARG_LO(1));
    prog[n++] = JEQ(F_DUPFD, 2, 0);
    prog[n++] = JEQ(F_DUPFD_CLOEXEC, 1, 0);
    prog[n++] = RET(ALLOW);
    prog[n++] = RET(TRACE);
    /* sendto(fd, buf, len, flags, dest_addr, addrlen) with a destination */
    prog[n++] = JEQ(SYS_sendto, 0, 5);
    prog[n++] = LD(ARG_LO(4));
    prog[n++] = JEQ(0, 0, 2);
    prog[n++] = LD(ARG_HI(4));
    prog[n++] = JEQ(0, 1, 0);
    prog[n++] = RET(TRACE);
    prog[n++] = RET(ALLOW);
    struct sock_fprog fp = {.len = (unsigned short)n, .filter = prog};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) != 0)
        return -errno;
    return 0;
}
