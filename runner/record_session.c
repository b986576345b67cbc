/* One recorded command (record_session.h): GPU receiver, capture, tracer, in that order, then
 * stopped in reverse. */
#include "record_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptb_cli.h"
#include "record_gpu.h"
#include "redact.h"

extern char **environ;

void record_session_options_default(record_session_options *o)
{
    memset(o, 0, sizeof *o);
    tracer_options_default(&o->to);
    record_net_options_default(&o->net);
    o->gpu = true;
}

/* Both on_exec callbacks: the GPU recorder's and the caller's. */
typedef struct exec_fanout {
    void (*fn[2])(void *, int, uint64_t, uint64_t, bool);
    void *arg[2];
} exec_fanout;

static void fan_exec(void *arg, int pid, uint64_t exec_id, uint64_t parent_exec_id, bool execve)
{
    exec_fanout *f = arg;
    for (int i = 0; i < 2; i++)
        if (f->fn[i])
            f->fn[i](f->arg[i], pid, exec_id, parent_exec_id, execve);
}

int record_session_run(store *s, record_session_options *o, char *const argv[],
                       int (*on_ready)(store *s, void *arg), void *arg, record_session_result *res)
{
    memset(res, 0, sizeof *res);
    /* the GPU library's variables go into the environment first: the command inherits them,
     * and what on_ready records (proc.env) is what the command starts with */
    record_gpu rg;
    int code = record_gpu_start(&rg, s, o->gpu, o->gpu_lib, &o->to, o->quiet);
    if (code)
        return code;
    exec_fanout fan = {{o->to.on_exec, o->on_exec}, {o->to.on_exec_arg, o->on_exec_arg}};
    if (o->on_exec) {
        o->to.on_exec = fan_exec;
        o->to.on_exec_arg = &fan;
    }
    int rc = on_ready ? on_ready(s, arg) : 0;
    if (rc) {
        snprintf(res->error, sizeof res->error, "%s", ptb_strerror(rc));
        record_gpu_stop(&rg, NULL);
        return rc;
    }
    record_net rn;
    if ((code = record_net_start(&rn, s, &o->net, &o->to, o->quiet)) != 0) {
        record_gpu_stop(&rg, NULL);
        return code;
    }
    ptb_errbuf eb = {{0}};
    int trc =
        o->prepare ? o->prepare(o->prepare_arg, rn.ns ? net_ns_host_addr(rn.ns) : NULL, &o->to) : 0;
    if (trc)
        snprintf(eb.msg, sizeof eb.msg, "preparing the command: %s", ptb_strerror(trc));
    else
        trc = tracer_run(s, &o->to, argv, &res->r, &eb);
    int nrc = record_net_stop(&rn, &res->net);
    if (nrc && !trc) {
        trc = nrc;
        snprintf(eb.msg, sizeof eb.msg, "packet capture: %s", ptb_strerror(nrc));
    }
    int grc = record_gpu_stop(&rg, &res->gpu);
    if (grc && !trc) {
        trc = grc;
        snprintf(eb.msg, sizeof eb.msg, "GPU recording: %s", ptb_strerror(grc));
    }
    res->net_active = rn.active;
    res->gpu_active = rg.active;
    snprintf(res->net_desc, sizeof res->net_desc, "%s", rn.desc);
    res->other_events = res->net.flows.events + res->net.gap_events + res->gpu.kernels +
                        res->gpu.memcpys + res->gpu.memsets + res->gpu.contexts + res->gpu.gaps;
    if (trc)
        snprintf(res->error, sizeof res->error, "%s", eb.msg[0] ? eb.msg : ptb_strerror(trc));
    return trc;
}

int record_session_append_env(store *s)
{
    int rc;
    size_t len = 0;
    for (char **e = environ; *e; e++)
        len += strlen(*e) + 1;
    char *block = malloc(len + 1), *p = block;
    if (!block)
        return PTB_ENOMEM;
    for (char **e = environ; *e; e++) {
        size_t l = strlen(*e) + 1;
        memcpy(p, *e, l);
        p += l;
    }
    redact_env *re = NULL;
    rc = redact_env_block(block, len, &re);
    free(block);
    if (rc)
        return rc;
    ptb_event ev2 = PTB__V1__EVENT__INIT;
    Ptb__V1__ProcEnv pe = PTB__V1__PROC_ENV__INIT;
    pe.pid = (int32_t)getpid();
    pe.env = re->env;
    pe.n_env = re->n_env;
    ev2.source = PTB__V1__SOURCE__SOURCE_RUNNER;
    ev2.body_case = PTB__V1__EVENT__BODY_PROC_ENV;
    ev2.proc_env = &pe;
    rc = store_append(s, &ev2, 0, NULL);
    redact_env_free(re);
    return rc;
}
