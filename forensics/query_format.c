/* Table rows and one-line summaries of events (query_format.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "filter_ast.h"
#include "query_format.h"

#define C(x) PTB__V1__EVENT__BODY_##x
#define TEXT_MAX 80 /* longest free text (tool input, message) shown in a summary */

typedef struct sbuf {
    char *buf;
    size_t cap, len;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->len + 1 >= b->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len = b->len + (size_t)n < b->cap ? b->len + (size_t)n : b->cap - 1;
}

/* Add text s, at most max bytes, control characters as spaces. */
static void sb_text(sbuf *b, const char *s, size_t max)
{
    if (!s)
        return;
    size_t n = strlen(s);
    bool cut = n > max;
    for (size_t i = 0; i < n && i < max && b->len + 1 < b->cap; i++) {
        unsigned char c = (unsigned char)s[i];
        b->buf[b->len++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    b->buf[b->len < b->cap ? b->len : b->cap - 1] = '\0';
    if (cut)
        sb_add(b, "...");
}

static void sb_hex(sbuf *b, const ProtobufCBinaryData *d, size_t max)
{
    for (size_t i = 0; i < d->len && i < max; i++)
        sb_add(b, "%02x", d->data[i]);
}

static void sb_addr(sbuf *b, const Ptb__V1__SockAddr *a)
{
    if (!a || !a->ip || !*a->ip) {
        sb_add(b, "-");
        return;
    }
    if (strchr(a->ip, ':'))
        sb_add(b, "[%s]:%u", a->ip, a->port);
    else
        sb_add(b, "%s:%u", a->ip, a->port);
}

static void sum_proc_exec(sbuf *b, const Ptb__V1__ProcExec *p)
{
    sb_text(b, p->exe, 200);
    for (size_t i = 1; i < p->n_argv; i++) {
        sb_add(b, " ");
        sb_text(b, p->argv[i], TEXT_MAX);
    }
    sb_add(b, "  (pid %d, parent exec %" PRIu64 ")", p->pid, p->parent_exec_id);
}

static void sum_net_connect(sbuf *b, const Ptb__V1__NetConnect *n)
{
    sb_add(b, "%s ", n->proto && *n->proto ? n->proto : "?");
    if (n->unix_path && *n->unix_path) {
        sb_text(b, n->unix_path, 200);
    } else {
        sb_addr(b, n->local);
        sb_add(b, " -> ");
        sb_addr(b, n->remote);
    }
    if (n->host && *n->host)
        sb_add(b, " (%s)", n->host);
    if (n->result < 0)
        sb_add(b, " = %d", n->result);
}

/* Generic: the first few non-default scalar fields as name=value. */
static void sum_generic(sbuf *b, const ProtobufCMessage *m)
{
    if (!m)
        return;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int shown = 0;
    for (unsigned i = 0; i < d->n_fields && shown < 6; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
        size_t nl = strlen(f->name);
        if (nl > 4 && strcmp(f->name + nl - 4, "_sid") == 0)
            continue;
        const char *p = (const char *)m + f->offset;
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: {
            const char *s = *(char *const *)p;
            if (!s || !*s)
                continue;
            sb_add(b, "%s%s=", shown ? " " : "", f->name);
            sb_text(b, s, TEXT_MAX);
            break;
        }
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_ENUM:
            if (!*(const int32_t *)p)
                continue;
            sb_add(b, "%s%s=%d", shown ? " " : "", f->name, *(const int32_t *)p);
            break;
        case PROTOBUF_C_TYPE_UINT32:
            if (!*(const uint32_t *)p)
                continue;
            sb_add(b, "%s%s=%u", shown ? " " : "", f->name, *(const uint32_t *)p);
            break;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
            if (!*(const int64_t *)p)
                continue;
            sb_add(b, "%s%s=%" PRId64, shown ? " " : "", f->name, *(const int64_t *)p);
            break;
        case PROTOBUF_C_TYPE_UINT64:
            if (!*(const uint64_t *)p)
                continue;
            sb_add(b, "%s%s=%" PRIu64, shown ? " " : "", f->name, *(const uint64_t *)p);
            break;
        case PROTOBUF_C_TYPE_DOUBLE:
            if (*(const double *)p == 0)
                continue;
            sb_add(b, "%s%s=%g", shown ? " " : "", f->name, *(const double *)p);
            break;
        case PROTOBUF_C_TYPE_BOOL:
            if (!*(const protobuf_c_boolean *)p)
                continue;
            sb_add(b, "%s%s", shown ? " " : "", f->name);
            break;
        default: continue;
        }
        shown++;
    }
}

void query_format_summary(const ptb_event *ev, char *buf, size_t cap)
{
    sbuf b = {buf, cap, 0};
    if (!cap)
        return;
    buf[0] = '\0';
    if (!event_body(ev))
        return;
    switch (ev->body_case) {
    case C(PROC_EXEC): sum_proc_exec(&b, ev->proc_exec); break;
    case C(PROC_EXIT):
        if (ev->proc_exit->signal)
            sb_add(&b, "pid %d killed by signal %d%s", ev->proc_exit->pid, ev->proc_exit->signal,
                   ev->proc_exit->core_dumped ? " (core dumped)" : "");
        else
            sb_add(&b, "pid %d exit %d", ev->proc_exit->pid, ev->proc_exit->exit_code);
        break;
    case C(FILE_OPEN):
        sb_text(&b, ev->file_open->path, 300);
        sb_add(&b, " flags 0x%x = %d", (unsigned)ev->file_open->flags, ev->file_open->result);
        break;
    case C(FILE_WRITE): {
        const Ptb__V1__FileWrite *w = ev->file_write;
        sb_text(&b, w->path, 300);
        sb_add(&b, " %" PRIu64 " bytes, size %" PRIu64, w->bytes, w->size);
        if (w->sha256.len) {
            sb_add(&b, " sha256 ");
            sb_hex(&b, &w->sha256, 6);
        }
        if (w->captured)
            sb_add(&b, " (captured)");
        break;
    }
    case C(FILE_READ): {
        const Ptb__V1__FileRead *r = ev->file_read;
        sb_text(&b, r->path, 300);
        sb_add(&b, " %" PRIu64 " bytes in %" PRIu64 " reads", r->bytes, r->reads);
        if (r->sha256.len) {
            sb_add(&b, " sha256 ");
            sb_hex(&b, &r->sha256, 6);
        }
        break;
    }
    case C(FILE_RENAME):
        sb_text(&b, ev->file_rename->path, 300);
        sb_add(&b, " -> ");
        sb_text(&b, ev->file_rename->new_path, 300);
        break;
    case C(FILE_LINK):
        sb_text(&b, ev->file_link->path, 300);
        sb_add(&b, " -> ");
        sb_text(&b, ev->file_link->target, 300);
        sb_add(&b, ev->file_link->symbolic ? " (symlink)" : " (hard link)");
        break;
    case C(NET_CONNECT):
    case C(NET_ACCEPT):
    case C(NET_BIND):
    case C(NET_SEND): sum_net_connect(&b, ev->net_connect); break;
    case C(NET_FLOW): {
        const Ptb__V1__NetFlow *f = ev->net_flow;
        sb_add(&b, "%s ", f->proto && *f->proto ? f->proto : "?");
        sb_addr(&b, f->src);
        sb_add(&b, " -> ");
        sb_addr(&b, f->dst);
        if (f->host && *f->host)
            sb_add(&b, " (%s)", f->host);
        sb_add(&b, " out %" PRIu64 " in %" PRIu64 " bytes", f->bytes_out, f->bytes_in);
        break;
    }
    case C(NET_DNS): {
        const Ptb__V1__NetDns *d = ev->net_dns;
        sb_add(&b, "%s %s %s", d->response ? "answer" : "query", d->qtype ? d->qtype : "",
               d->host ? d->host : "");
        for (size_t i = 0; i < d->n_answers && i < 4; i++)
            if (d->answers[i])
                sb_add(&b, "%s%s", i ? ", " : " -> ",
                       d->answers[i]->data ? d->answers[i]->data : "");
        break;
    }
    case C(NET_TLS): sb_add(&b, "SNI %s", ev->net_tls->host ? ev->net_tls->host : ""); break;
    case C(NET_HTTP): {
        const Ptb__V1__NetHttp *h = ev->net_http;
        if (h->response)
            sb_add(&b, "response %u %s", h->status, h->host ? h->host : "");
        else {
            sb_add(&b, "%s %s", h->method ? h->method : "?", h->host ? h->host : "");
            sb_text(&b, h->path, 200);
        }
        if (h->body_bytes)
            sb_add(&b, " body %" PRIu64 " bytes", h->body_bytes);
        break;
    }
    case C(TOOL_CALL):
        sb_text(&b, ev->tool_call->name, 40);
        sb_add(&b, " ");
        sb_text(&b, ev->tool_call->input, TEXT_MAX);
        break;
    case C(TOOL_RESULT):
        sb_add(&b, "%s%s ", ev->tool_result->call_id ? ev->tool_result->call_id : "",
               ev->tool_result->is_error ? " ERROR" : "");
        sb_text(&b, ev->tool_result->output, TEXT_MAX);
        break;
    case C(AGENT_MESSAGE):
        sb_add(&b, "%s: ", ev->agent_message->role ? ev->agent_message->role : "");
        sb_text(&b, ev->agent_message->text, TEXT_MAX);
        break;
    case C(AGENT_USAGE): {
        const Ptb__V1__AgentUsage *u = ev->agent_usage;
        sb_add(&b, "%s in %" PRIu64 " out %" PRIu64 " tokens, $%.4f", u->model ? u->model : "",
               u->input_tokens, u->output_tokens, u->cost_usd);
        break;
    }
    case C(GPU_KERNEL): {
        const Ptb__V1__GpuKernel *k = ev->gpu_kernel;
        sb_text(&b, k->name, TEXT_MAX);
        sb_add(&b, " grid %ux%ux%u block %ux%ux%u dev %u %.3f ms", k->grid_x, k->grid_y, k->grid_z,
               k->block_x, k->block_y, k->block_z, k->device,
               (double)(k->end_ns - k->start_ns) / 1e6);
        break;
    }
    case C(GPU_MEMCPY):
    case C(GPU_MEMSET):
        sb_add(&b, "%s %" PRIu64 " bytes dev %u", ev->gpu_memcpy->kind ? ev->gpu_memcpy->kind : "",
               ev->gpu_memcpy->bytes, ev->gpu_memcpy->device);
        break;
    case C(GAP):
        sb_add(&b, "%s %s count %" PRIu64, ev->gap->origin ? ev->gap->origin : "",
               ev->gap->reason ? ev->gap->reason : "", ev->gap->count);
        if (ev->gap->path && *ev->gap->path) {
            sb_add(&b, " ");
            sb_text(&b, ev->gap->path, 200);
        }
        break;
    case C(CHECKPOINT):
        sb_text(&b, ev->checkpoint->path, 300);
        sb_add(&b, " %zu files, %zu tensors", ev->checkpoint->n_files, ev->checkpoint->n_tensors);
        break;
    default: sum_generic(&b, event_body(ev)); break;
    }
}

void query_table_init(query_table *tb, uint64_t last_seq)
{
    int w = 1;
    for (uint64_t v = last_seq; v >= 10; v /= 10)
        w++;
    tb->seq_w = w < 3 ? 3 : w;
    tb->exec_w = 5;
}

void query_table_header(const query_table *tb, FILE *out)
{
    fprintf(out, "%*s  %-24s  %-13s  %*s  %s\n", tb->seq_w, "SEQ", "TIME (UTC)", "TYPE", tb->exec_w,
            "EXEC", "SUMMARY");
}

void query_table_row(const query_table *tb, const ptb_event *ev, FILE *out)
{
    char t[48], sum[1024];
    query_time_format(ev->ts_ns, 3, t, sizeof t);
    query_format_summary(ev, sum, sizeof sum);
    const char *type = event_type_name(ev->body_case);
    char ex[24] = "-";
    if (ev->exec_id)
        snprintf(ex, sizeof ex, "%" PRIu64, ev->exec_id);
    char seq[40]; /* a launch from a kernel batch: seq.sub */
    if (ev->sub)
        snprintf(seq, sizeof seq, "%" PRIu64 ".%" PRIu32, ev->seq, ev->sub);
    else
        snprintf(seq, sizeof seq, "%" PRIu64, ev->seq);
    fprintf(out, "%*s  %-24s  %-13s  %*s  %s\n", tb->seq_w, seq, t, type ? type : "?", tb->exec_w,
            ex, sum);
}
