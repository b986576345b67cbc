/* Fields of the filter language: names, types, and the values each takes on an event.
 *
 * Named fields (the table below) cover what forensic questions start from. Any other scalar of
 * an event body is reachable generically as <type>.<field>[.<sub>...], e.g. gap.reason,
 * proc.exit.exit_code, net.flow.dst.port, checkpoint.files.sha256; a repeated field gives one
 * value per element.
 *
 * Presence: text and bytes fields are absent when empty; numbers are present whenever the
 * message holding them is; proc.exec_id and proc.tid are absent when 0 (events of no process).
 * proc.exe, proc.cmdline, proc.cwd, proc.ppid, proc.parent_exe and proc.parent_exec_id describe
 * the process of ANY event (through the process table built from proc.exec events); proc.pid is
 * the pid field of the body where the body has one, else the process table's. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter_ast.h"
#include "ptb_error.h"

#define C(x) PTB__V1__EVENT__BODY_##x
#define ALL 0xffffffffu

typedef struct field_def {
    const char *name;
    filter_field_id id;
    filter_ftype type;
    bool procs;
    uint32_t cases[12]; /* body cases with a value, 0-terminated; {ALL} for every event */
    const char *doc;
} field_def;

#define NETC C(NET_CONNECT), C(NET_ACCEPT), C(NET_BIND), C(NET_SEND)

static const field_def field_defs[] = {
    {"evt.seq", FF_EVT_SEQ, FT_UINT, false, {ALL}, "sequence number (dense, from 1)"},
    {"evt.sub",
     FF_EVT_SUB,
     FT_UINT,
     false,
     {ALL},
     "a GPU launch's place in its stored batch (1..), shown with the batch's seq; 0 otherwise"},
    {"evt.time",
     FF_EVT_TIME,
     FT_TIME,
     false,
     {ALL},
     "wall-clock time in ns since the epoch; literals may be ISO-8601 times"},
    {"evt.mono", FF_EVT_MONO, FT_INT, false, {ALL}, "monotonic clock in ns"},
    {"evt.type", FF_EVT_TYPE, FT_TYPE, false, {ALL}, "dotted event type (file.write)"},
    {"evt.source",
     FF_EVT_SOURCE,
     FT_SOURCE,
     false,
     {ALL},
     "tracer, pcap, gpu, agent, runner, eval, import or store"},
    {"proc.exec_id",
     FF_PROC_EXEC_ID,
     FT_UINT,
     false,
     {ALL},
     "run-local process id of the event (absent when 0)"},
    {"proc.tid", FF_PROC_TID, FT_UINT, false, {ALL}, "thread id (absent when 0)"},
    {"proc.pid",
     FF_PROC_PID,
     FT_INT,
     true,
     {ALL},
     "pid field of the body (proc.*, net.connect..., gpu.context), else the process's pid"},
    {"proc.ppid", FF_PROC_PPID, FT_INT, true, {ALL}, "parent pid of the event's process"},
    {"proc.exe", FF_PROC_EXE, FT_STR, true, {ALL}, "executable of the event's process"},
    {"proc.cmdline",
     FF_PROC_CMDLINE,
     FT_STR,
     true,
     {ALL},
     "argv of the event's process joined by spaces"},
    {"proc.cwd", FF_PROC_CWD, FT_STR, true, {ALL}, "working directory at exec"},
    {"proc.parent_exe",
     FF_PROC_PARENT_EXE,
     FT_STR,
     true,
     {ALL},
     "executable of the parent process"},
    {"proc.parent_exec_id",
     FF_PROC_PARENT_EXEC_ID,
     FT_UINT,
     true,
     {ALL},
     "exec_id of the parent process"},
    {"file.path",
     FF_FILE_PATH,
     FT_STR,
     false,
     {C(FILE_OPEN), C(FILE_WRITE), C(FILE_READ), C(FILE_RENAME), C(FILE_UNLINK), C(FILE_MKDIR),
      C(FILE_LINK), C(FILE_TRUNCATE), C(FILE_CHMOD), C(FILE_STATE), C(CHECKPOINT)},
     "path of file.* events (rename: old and new path; link: path and target), checkpoint "
     "folder"},
    {"file.sha256",
     FF_FILE_SHA256,
     FT_HEX,
     false,
     {C(FILE_WRITE), C(FILE_READ), C(FILE_STATE)},
     "content hash (hex) of file.write / file.read / file.state"},
    {"file.bytes",
     FF_FILE_BYTES,
     FT_UINT,
     false,
     {C(FILE_WRITE), C(FILE_READ)},
     "bytes written / read"},
    {"file.size",
     FF_FILE_SIZE,
     FT_UINT,
     false,
     {C(FILE_WRITE), C(FILE_STATE)},
     "final size of a written file, size in a snapshot"},
    {"net.host",
     FF_NET_HOST,
     FT_STR,
     false,
     {NETC, C(NET_FLOW), C(NET_DNS), C(NET_TLS), C(NET_HTTP)},
     "host name: connect (from DNS), flow, DNS query, TLS SNI, HTTP Host"},
    {"net.ip",
     FF_NET_IP,
     FT_STR,
     false,
     {NETC, C(NET_FLOW)},
     "local and remote (connect...) or src and dst (flow) address"},
    {"net.port",
     FF_NET_PORT,
     FT_UINT,
     false,
     {NETC, C(NET_FLOW)},
     "local and remote / src and dst port"},
    {"net.proto", FF_NET_PROTO, FT_STR, false, {NETC, C(NET_FLOW)}, "tcp, udp, unix ..."},
    {"tool.name", FF_TOOL_NAME, FT_STR, false, {C(TOOL_CALL)}, "tool of a tool.call (Bash ...)"},
    {"tool.input", FF_TOOL_INPUT, FT_STR, false, {C(TOOL_CALL)}, "tool input (JSON text)"},
    {"tool.call_id",
     FF_TOOL_CALL_ID,
     FT_STR,
     false,
     {C(TOOL_CALL), C(TOOL_RESULT)},
     "call id of tool.call / tool.result"},
    {"gpu.kernel", FF_GPU_KERNEL, FT_STR, false, {C(GPU_KERNEL)}, "kernel name (demangled)"},
    {"gpu.device",
     FF_GPU_DEVICE,
     FT_UINT,
     false,
     {C(GPU_CONTEXT), C(GPU_KERNEL), C(GPU_MEMCPY), C(GPU_MEMSET)},
     "device index"},
};

static const char *const source_names[] = {"unspecified", "tracer", "pcap",   "gpu",  "agent",
                                           "runner",      "eval",   "import", "store"};

const char *filter_source_name(int source)
{
    if (source < 0 || (size_t)source >= sizeof source_names / sizeof source_names[0])
        return "unknown";
    return source_names[source];
}

int filter_source_from_name(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof source_names / sizeof source_names[0]; i++)
        if (strlen(source_names[i]) == len && strncasecmp(source_names[i], s, len) == 0)
            return (int)i;
    return -1;
}

static const char *ftype_word(filter_ftype t)
{
    switch (t) {
    case FT_UINT:
    case FT_INT: return "number";
    case FT_DOUBLE: return "decimal";
    case FT_BOOL: return "bool";
    case FT_STR: return "text";
    case FT_HEX: return "hex";
    case FT_TIME: return "time";
    case FT_TYPE: return "type";
    case FT_SOURCE: return "source";
    }
    return "?";
}

void filter_field_foreach(void (*fn)(void *arg, const char *name, const char *type,
                                     const char *doc),
                          void *arg)
{
    for (size_t i = 0; i < sizeof field_defs / sizeof field_defs[0]; i++)
        fn(arg, field_defs[i].name, ftype_word(field_defs[i].type), field_defs[i].doc);
}

static void mask_set(uint64_t mask[2], uint32_t c)
{
    if (c < 128)
        mask[c / 64] |= (uint64_t)1 << (c % 64);
}

static filter_ftype generic_type(const ProtobufCFieldDescriptor *fd, bool *ok)
{
    *ok = true;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_ENUM: return FT_INT;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return FT_UINT;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: return FT_DOUBLE;
    case PROTOBUF_C_TYPE_BOOL: return FT_BOOL;
    case PROTOBUF_C_TYPE_STRING: return FT_STR;
    case PROTOBUF_C_TYPE_BYTES: return FT_HEX;
    default: *ok = false; return FT_STR;
    }
}

/* Resolve the components of rest (dot-separated) below the body of case bc. */
static int generic_resolve(uint32_t bc, const char *rest, size_t len, filter_field *out)
{
    const ProtobufCFieldDescriptor *bf = event_type_field(bc);
    if (!bf || bf->type != PROTOBUF_C_TYPE_MESSAGE)
        return PTB_ENOTFOUND;
    const ProtobufCMessageDescriptor *md = bf->descriptor;
    unsigned depth = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && rest[j] != '.')
            j++;
        char comp[64];
        if (j - i == 0 || j - i >= sizeof comp || depth == FILTER_PATH_MAX || !md)
            return PTB_ENOTFOUND;
        memcpy(comp, rest + i, j - i);
        comp[j - i] = '\0';
        size_t cl = j - i;
        if (cl > 4 && strcmp(comp + cl - 4, "_sid") == 0)
            return PTB_ENOTFOUND; /* store-internal */
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field_by_name(md, comp);
        if (!fd)
            return PTB_ENOTFOUND;
        out->path[depth++] = fd;
        md = fd->type == PROTOBUF_C_TYPE_MESSAGE ? fd->descriptor : NULL;
        i = j + 1;
        if (j == len)
            break;
        if (j + 1 == len)
            return PTB_ENOTFOUND; /* trailing dot */
    }
    if (depth == 0 || md != NULL) /* ends on a message: not a value */
        return PTB_ENOTFOUND;
    bool ok;
    out->type = generic_type(out->path[depth - 1], &ok);
    if (!ok)
        return PTB_ENOTFOUND;
    out->depth = depth;
    out->body_case = bc;
    return 0;
}

int filter_field_lookup(const char *name, size_t len, filter_field *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0 || len >= sizeof out->name)
        return PTB_ENOTFOUND;
    memcpy(out->name, name, len);
    out->name[len] = '\0';
    for (size_t i = 0; i < sizeof field_defs / sizeof field_defs[0]; i++) {
        const field_def *d = &field_defs[i];
        if (strcmp(d->name, out->name) != 0)
            continue;
        out->id = d->id;
        out->type = d->type;
        out->procs = d->procs;
        if (d->cases[0] == ALL) {
            out->mask[0] = out->mask[1] = ~(uint64_t)0;
        } else {
            for (size_t k = 0; k < 12 && d->cases[k]; k++)
                mask_set(out->mask, d->cases[k]);
        }
        return 0;
    }
    /* generic: the longest dotted prefix that names an event type, then proto fields */
    for (size_t k = len; k > 0; k--) {
        if (k < len && name[k] != '.')
            continue;
        if (k == len)
            continue;
        uint32_t bc = event_type_from_name(name, k);
        if (!bc)
            continue;
        filter_field tmp = *out;
        if (generic_resolve(bc, name + k + 1, len - k - 1, &tmp) == 0) {
            *out = tmp;
            out->id = FF_GENERIC;
            mask_set(out->mask, bc);
            return 0;
        }
    }
    return PTB_ENOTFOUND;
}

/* ------------------------------------------------------------------ values */

typedef struct visit {
    const filter_field *f;
    filter_ctx *cx;
    filter_val_fn fn;
    void *arg;
    size_t count;
    bool stopped;
} visit;

static char *scratch_get(filter_ctx *cx, size_t n)
{
    if (n > cx->scratch_cap) {
        size_t cap = cx->scratch_cap ? cx->scratch_cap : 256;
        while (cap < n)
            cap *= 2;
        char *nb = realloc(cx->scratch, cap);
        if (!nb) {
            cx->oom = true;
            return NULL;
        }
        cx->scratch = nb;
        cx->scratch_cap = cap;
    }
    return cx->scratch;
}

static void emit(visit *v, const filter_val *val)
{
    if (v->stopped)
        return;
    v->count++;
    if (v->fn(v->arg, v->f, val))
        v->stopped = true;
}

static void emit_str(visit *v, const char *s)
{
    if (!s || !*s)
        return;
    filter_val val = {.s = s, .n = strlen(s)};
    emit(v, &val);
}

static void emit_strn(visit *v, const char *s, size_t n)
{
    if (n == 0)
        return;
    filter_val val = {.s = s, .n = n};
    emit(v, &val);
}

static void emit_int(visit *v, __int128 i)
{
    filter_val val = {.i = i, .d = (double)i};
    emit(v, &val);
}

static void emit_hex(visit *v, const uint8_t *b, size_t n)
{
    if (n == 0)
        return;
    static const char hx[] = "0123456789abcdef";
    char *s = scratch_get(v->cx, 2 * n + 1);
    if (!s)
        return;
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = hx[b[i] >> 4];
        s[2 * i + 1] = hx[b[i] & 15];
    }
    s[2 * n] = '\0';
    emit_strn(v, s, 2 * n);
}

static void emit_addr(visit *v, const Ptb__V1__SockAddr *a, bool port)
{
    if (!a)
        return;
    if (port)
        emit_int(v, a->port);
    else
        emit_str(v, a->ip);
}

size_t filter_cmdline_join(const Ptb__V1__ProcExec *pe, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < pe->n_argv; i++) {
        const char *a = pe->argv[i] ? pe->argv[i] : "";
        size_t al = strlen(a);
        if (i) {
            if (k < cap)
                out[k] = ' ';
            k++;
        }
        if (k < cap)
            memcpy(out + k, a, al < cap - k ? al : cap - k);
        k += al;
    }
    if (cap)
        out[k < cap ? k : cap - 1] = '\0';
    return k;
}

/* The process of ev: from the table, or from ev's own proc.exec body. *unknown when a light
 * proc.exec event would be needed. tmp is storage for the second case. */
static const filter_proc *proc_of(const ptb_event *ev, filter_ctx *cx, filter_proc *tmp,
                                  bool *unknown)
{
    if (cx->proc)
        return ev->exec_id ? cx->proc(cx->proc_arg, ev->exec_id) : NULL;
    if (ev->body_case != C(PROC_EXEC))
        return NULL;
    const Ptb__V1__ProcExec *pe = ev->proc_exec;
    if (!pe) {
        *unknown = true;
        return NULL;
    }
    size_t n = filter_cmdline_join(pe, NULL, 0) + 1;
    char *s = scratch_get(cx, n);
    if (!s)
        return NULL;
    filter_cmdline_join(pe, s, n);
    memset(tmp, 0, sizeof *tmp);
    tmp->exec_id = ev->exec_id;
    tmp->parent_exec_id = pe->parent_exec_id;
    tmp->pid = pe->pid;
    tmp->ppid = pe->ppid;
    tmp->exe = pe->exe;
    tmp->cmdline = s;
    tmp->cwd = pe->cwd;
    return tmp;
}

static bool body_has_pid(uint32_t bc)
{
    switch (bc) {
    case C(PROC_EXEC):
    case C(PROC_EXIT):
    case C(PROC_DENIED):
    case C(PROC_ENV):
    case C(NET_CONNECT):
    case C(NET_ACCEPT):
    case C(NET_BIND):
    case C(NET_SEND):
    case C(GPU_CONTEXT): return true;
    default: return false;
    }
}

static int32_t body_pid(const ptb_event *ev)
{
    switch (ev->body_case) {
    case C(PROC_EXEC): return ev->proc_exec->pid;
    case C(PROC_EXIT): return ev->proc_exit->pid;
    case C(PROC_DENIED): return ev->proc_denied->pid;
    case C(PROC_ENV): return ev->proc_env->pid;
    case C(GPU_CONTEXT): return ev->gpu_context->pid;
    default: return ev->net_connect->pid; /* the NetConnect cases */
    }
}

static void visit_generic_value(visit *v, const ProtobufCFieldDescriptor *fd, const void *p)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM: emit_int(v, *(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: emit_int(v, *(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: emit_int(v, *(const int64_t *)p); break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: emit_int(v, *(const uint64_t *)p); break;
    case PROTOBUF_C_TYPE_BOOL: emit_int(v, *(const protobuf_c_boolean *)p ? 1 : 0); break;
    case PROTOBUF_C_TYPE_FLOAT: {
        filter_val val = {.d = *(const float *)p};
        emit(v, &val);
        break;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        filter_val val = {.d = *(const double *)p};
        emit(v, &val);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: emit_str(v, *(char *const *)p); break;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        emit_hex(v, b->data, b->len);
        break;
    }
    default: break;
    }
}

static size_t generic_elem_size(const ProtobufCFieldDescriptor *fd)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    default: return 4;
    }
}

static void visit_generic(visit *v, const ProtobufCMessage *m, unsigned depth)
{
    if (!m || v->stopped)
        return;
    const ProtobufCFieldDescriptor *fd = v->f->path[depth];
    const char *base = (const char *)m;
    bool last = depth + 1 == v->f->depth;
    /* oneof members other than the one set hold garbage */
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t set = *(const uint32_t *)(base + fd->quantifier_offset);
        if (set != fd->id)
            return;
    }
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)(base + fd->quantifier_offset);
        const char *arr = *(const char *const *)(base + fd->offset);
        size_t es = generic_elem_size(fd);
        for (size_t i = 0; arr && i < n && !v->stopped; i++) {
            const void *p = arr + i * es;
            if (last)
                visit_generic_value(v, fd, p);
            else
                visit_generic(v, *(const ProtobufCMessage *const *)p, depth + 1);
        }
        return;
    }
    if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->quantifier_offset &&
        fd->type != PROTOBUF_C_TYPE_MESSAGE && fd->type != PROTOBUF_C_TYPE_STRING &&
        !(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
        if (!*(const protobuf_c_boolean *)(base + fd->quantifier_offset))
            return;
    }
    const void *p = base + fd->offset;
    if (last)
        visit_generic_value(v, fd, p);
    else
        visit_generic(v, *(const ProtobufCMessage *const *)p, depth + 1);
}

int filter_field_visit(const filter_field *f, const ptb_event *ev, filter_ctx *cx, filter_val_fn fn,
                       void *arg, size_t *count)
{
    visit v = {.f = f, .cx = cx, .fn = fn, .arg = arg};
    uint32_t bc = ev->body_case;
    *count = 0;
    if (!filter_mask_has(f->mask, bc))
        return FILTER_VISIT_DONE;
    /* Every member of the body union is a message pointer at the same place, so any of them
     * reads the body of any case (event_body() finds the same pointer through the descriptor). */
    const ProtobufCMessage *body = bc != PTB__V1__EVENT__BODY__NOT_SET
                                       ? (const ProtobufCMessage *)(void *)ev->run_start
                                       : NULL;
    /* fields that need the body of a light event */
    bool need_body = !filter_mask_all(f->mask) || (f->id == FF_PROC_PID && body_has_pid(bc));
    if (need_body && !body)
        return bc != PTB__V1__EVENT__BODY__NOT_SET ? FILTER_VISIT_UNKNOWN : FILTER_VISIT_DONE;
    filter_proc tmp;
    const filter_proc *pr;
    bool unknown = false;
    switch (f->id) {
    case FF_GENERIC: visit_generic(&v, body, 0); break;
    case FF_EVT_SEQ: emit_int(&v, ev->seq); break;
    case FF_EVT_SUB: emit_int(&v, ev->sub); break;
    case FF_EVT_TIME: emit_int(&v, ev->ts_ns); break;
    case FF_EVT_MONO: emit_int(&v, ev->mono_ns); break;
    case FF_EVT_TYPE: {
        const char *n = event_type_name(bc);
        filter_val val = {.s = n ? n : "", .n = n ? strlen(n) : 0, .i = bc};
        emit(&v, &val);
        break;
    }
    case FF_EVT_SOURCE: {
        const char *n = filter_source_name((int)ev->source);
        filter_val val = {.s = n, .n = strlen(n), .i = ev->source};
        emit(&v, &val);
        break;
    }
    case FF_PROC_EXEC_ID:
        if (ev->exec_id)
            emit_int(&v, ev->exec_id);
        break;
    case FF_PROC_TID:
        if (ev->tid)
            emit_int(&v, ev->tid);
        break;
    case FF_PROC_PID:
        if (body_has_pid(bc)) {
            emit_int(&v, body_pid(ev));
            break;
        }
        /* the process's pid */
        __attribute__((fallthrough));
    case FF_PROC_PPID:
    case FF_PROC_EXE:
    case FF_PROC_CMDLINE:
    case FF_PROC_CWD:
    case FF_PROC_PARENT_EXEC_ID:
    case FF_PROC_PARENT_EXE:
        pr = proc_of(ev, cx, &tmp, &unknown);
        if (unknown)
            return FILTER_VISIT_UNKNOWN;
        if (!pr)
            break;
        if (f->id == FF_PROC_PID)
            emit_int(&v, pr->pid);
        else if (f->id == FF_PROC_PPID)
            emit_int(&v, pr->ppid);
        else if (f->id == FF_PROC_EXE)
            emit_str(&v, pr->exe);
        else if (f->id == FF_PROC_CMDLINE)
            emit_str(&v, pr->cmdline);
        else if (f->id == FF_PROC_CWD)
            emit_str(&v, pr->cwd);
        else if (f->id == FF_PROC_PARENT_EXEC_ID) {
            if (pr->parent_exec_id)
                emit_int(&v, pr->parent_exec_id);
        } else if (cx->proc && pr->parent_exec_id) {
            const filter_proc *pp = cx->proc(cx->proc_arg, pr->parent_exec_id);
            if (pp)
                emit_str(&v, pp->exe);
        }
        break;
    case FF_FILE_PATH:
        switch (bc) {
        case C(FILE_OPEN): emit_str(&v, ev->file_open->path); break;
        case C(FILE_WRITE): emit_str(&v, ev->file_write->path); break;
        case C(FILE_READ): emit_str(&v, ev->file_read->path); break;
        case C(FILE_RENAME):
            emit_str(&v, ev->file_rename->path);
            emit_str(&v, ev->file_rename->new_path);
            break;
        case C(FILE_UNLINK): emit_str(&v, ev->file_unlink->path); break;
        case C(FILE_MKDIR): emit_str(&v, ev->file_mkdir->path); break;
        case C(FILE_LINK):
            emit_str(&v, ev->file_link->path);
            emit_str(&v, ev->file_link->target);
            break;
        case C(FILE_TRUNCATE): emit_str(&v, ev->file_truncate->path); break;
        case C(FILE_CHMOD): emit_str(&v, ev->file_chmod->path); break;
        case C(FILE_STATE): emit_str(&v, ev->file_state->path); break;
        case C(CHECKPOINT): emit_str(&v, ev->checkpoint->path); break;
        }
        break;
    case FF_FILE_SHA256:
        if (bc == C(FILE_WRITE))
            emit_hex(&v, ev->file_write->sha256.data, ev->file_write->sha256.len);
        else if (bc == C(FILE_STATE))
            emit_hex(&v, ev->file_state->sha256.data, ev->file_state->sha256.len);
        else
            emit_hex(&v, ev->file_read->sha256.data, ev->file_read->sha256.len);
        break;
    case FF_FILE_BYTES:
        emit_int(&v, bc == C(FILE_WRITE) ? ev->file_write->bytes : ev->file_read->bytes);
        break;
    case FF_FILE_SIZE:
        emit_int(&v, bc == C(FILE_STATE) ? ev->file_state->size : ev->file_write->size);
        break;
    case FF_NET_HOST:
        switch (bc) {
        case C(NET_FLOW): emit_str(&v, ev->net_flow->host); break;
        case C(NET_DNS): emit_str(&v, ev->net_dns->host); break;
        case C(NET_TLS): emit_str(&v, ev->net_tls->host); break;
        case C(NET_HTTP): emit_str(&v, ev->net_http->host); break;
        default: emit_str(&v, ev->net_connect->host); break;
        }
        break;
    case FF_NET_IP:
    case FF_NET_PORT:
    case FF_NET_PROTO:
        if (bc == C(NET_FLOW)) {
            if (f->id == FF_NET_PROTO) {
                emit_str(&v, ev->net_flow->proto);
                break;
            }
            emit_addr(&v, ev->net_flow->src, f->id == FF_NET_PORT);
            emit_addr(&v, ev->net_flow->dst, f->id == FF_NET_PORT);
        } else {
            if (f->id == FF_NET_PROTO) {
                emit_str(&v, ev->net_connect->proto);
                break;
            }
            emit_addr(&v, ev->net_connect->local, f->id == FF_NET_PORT);
            emit_addr(&v, ev->net_connect->remote, f->id == FF_NET_PORT);
        }
        break;
    case FF_TOOL_NAME: emit_str(&v, ev->tool_call->name); break;
    case FF_TOOL_INPUT: emit_str(&v, ev->tool_call->input); break;
    case FF_TOOL_CALL_ID:
        emit_str(&v, bc == C(TOOL_CALL) ? ev->tool_call->call_id : ev->tool_result->call_id);
        break;
    case FF_GPU_KERNEL: emit_str(&v, ev->gpu_kernel->name); break;
    case FF_GPU_DEVICE:
        switch (bc) {
        case C(GPU_CONTEXT): emit_int(&v, ev->gpu_context->device); break;
        case C(GPU_KERNEL): emit_int(&v, ev->gpu_kernel->device); break;
        default: emit_int(&v, ev->gpu_memcpy->device); break;
        }
        break;
    }
    *count = v.count;
    return v.stopped ? FILTER_VISIT_STOPPED : FILTER_VISIT_DONE;
}
