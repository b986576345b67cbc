#!/usr/bin/env python3
"""hubs.py: the demo's local internet, one HTTPS server that plays several real hosts.

`ptb demo` runs it inside the sandbox's network (with the names below pointing at it and the
test CA of make-certs.sh trusted), so that the scripted agents of agent.py download, upload and
call model APIs exactly as a real agent would, and ptb records real DNS, TLS (SNI) and HTTP.
tests/integration/test_hubs.py runs it on an ephemeral port.

It routes on the request's Host header (port stripped, case folded):

  huggingface.co     the Hugging Face Hub's download layout, from local folders:
                       GET|HEAD /datasets/ORG/NAME/resolve/REV/PATH   a file of a dataset
                       GET|HEAD /ORG/NAME/resolve/REV/PATH            a file of a model
                       GET /api/datasets/ORG/NAME[/revision/REV]      {"id", "sha", "siblings"}
                       GET /api/models/ORG/NAME[/revision/REV]
                     Any REV is served (a folder has one revision). Files are streamed in 1 MiB
                     chunks with Content-Length, ETag (the SHA-256, as the Hub gives LFS files)
                     and X-Repo-Commit; a single "Range: bytes=A-B" is honoured. Unknown repos and
                     files are 404 with the Hub's JSON error and X-Error-Code; a path that leaves
                     its folder (.., symlinks) is 403.
  api.openai.com     POST /v1/chat/completions, with "Authorization: Bearer sk-..." (sk- and at
                     least 20 of [A-Za-z0-9_-]); 401 with OpenAI's error JSON otherwise.
  api.anthropic.com  POST /v1/messages, with "x-api-key: sk-ant-..."; 401 otherwise.
  localhost,         a fallback for tests, whose clients cannot make the real names point here:
  127.0.0.1, ::1     POST /v1/messages goes to the Anthropic API, other /v1/ paths to the OpenAI
                     API, everything else to the Hub.
  anything else      421 Misdirected Request.

Both APIs answer with training data for the demo task (two-number addition): N lines of JSONL
{"prompt":"Q: A+B=?\\nA: ","completion":"C"}, A and B in 0..99, where N is the first integer
of the last user message (clamped to 1..2000; 200 when there is none). The records are
deterministic: the generator is seeded with the SHA-256 of the request body.

Usage:
  hubs.py --cert server.pem --key server.key [--bind ADDR] [--port N] [--log FILE]
          [--dataset ORG/NAME=DIR]... [--model ORG/NAME=DIR]... [--avoid FILE]

--avoid FILE: the APIs never generate a record whose prompt is one of FILE's (JSONL).
--port 0 binds an ephemeral port. Once listening it prints "listening PORT" on stdout (one line,
flushed) and nothing else; --log appends one JSON line per request (time, client, sni, host,
method, path, status, bytes of the body sent, and "auth": the first 8 characters of the API key
given in Authorization or x-api-key, never more). SIGTERM or SIGINT stops it with status 0.
Python 3 standard library only.
"""

import argparse
import hashlib
import http.server
import json
import os
import random
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse

CHUNK = 1 << 20
MAX_BODY = 1 << 20  # the largest API request body read
OPENAI_KEY = re.compile(r"sk-[A-Za-z0-9_-]{20,}")
ANTHROPIC_KEY = re.compile(r"sk-ant-[A-Za-z0-9_-]{20,}")
REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class Repo:
    """One Hub repository: a local folder served as revision `sha` of repo `rid`."""

    def __init__(self, rid, root):
        self.rid = rid
        self.root = os.path.realpath(root)
        self.sha = hashlib.sha1(rid.encode()).hexdigest()  # a stable stand-in commit id
        self._etags = {}  # (path, size, mtime_ns) -> SHA-256 hex
        self._lock = threading.Lock()

    def file(self, rel):
        """The real path of file `rel` of the repo; None when there is none; PermissionError
        when `rel` leaves the folder."""
        if rel.startswith("/") or "\\" in rel or "\0" in rel:
            raise PermissionError(rel)
        parts = rel.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise PermissionError(rel)
        path = os.path.realpath(os.path.join(self.root, *parts))
        if not path.startswith(self.root + os.sep):
            raise PermissionError(rel)
        return path if os.path.isfile(path) else None

    def files(self):
        """Every regular file of the folder, relative, sorted (the API's siblings)."""
        out = []
        for d, dirs, names in os.walk(self.root):
            dirs[:] = sorted(x for x in dirs if not x.startswith("."))
            for n in names:
                p = os.path.join(d, n)
                if not n.startswith(".") and os.path.isfile(p):
                    out.append(os.path.relpath(p, self.root).replace(os.sep, "/"))
        return sorted(out)

    def etag(self, path, st):
        key = (path, st.st_size, st.st_mtime_ns)
        with self._lock:
            if key in self._etags:
                return self._etags[key]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for b in iter(lambda: f.read(CHUNK), b""):
                h.update(b)
        with self._lock:
            self._etags[key] = h.hexdigest()
        return h.hexdigest()


AVOID = set()  # prompts never generated (--avoid: the held-out test split)


def addition_jsonl(body, n):
    """n lines of demo-task training records, seeded from the request body."""
    rng = random.Random(hashlib.sha256(body).digest())
    lines = []
    while len(lines) < n:
        a, b = rng.randrange(100), rng.randrange(100)
        rec = {"prompt": "Q: %d+%d=?\nA: " % (a, b), "completion": str(a + b)}
        if rec["prompt"] in AVOID and len(AVOID) < 9000:
            continue
        lines.append(json.dumps(rec, separators=(",", ":")))
    return "\n".join(lines)


def last_user_text(messages):
    """The text of the last user message (content a string or a list of text parts)."""
    for m in reversed(messages if isinstance(messages, list) else []):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return "\n".join(p.get("text", "") for p in c
                                 if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def records_wanted(text):
    m = re.search(r"\d+", text)
    return 200 if not m else max(1, min(2000, int(m.group(0)[:9])))


def rand_id(n):
    return "".join(random.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
                   for _ in range(n))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ptb-hubs/1"
    timeout = 60  # an idle keep-alive connection is closed after this

    # -- plumbing ------------------------------------------------------------------------------

    def log_message(self, fmt, *args):  # quiet: the --log file is the record
        pass

    def version_string(self):
        return self.server_version

    def _start(self):
        self._status, self._sent, self._auth, self._read = 0, 0, "", False
        host = self.headers.get("Host", "").strip().lower()
        if host.startswith("["):  # [v6]:port
            host = host[1:].split("]", 1)[0]
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        self._host = host.rstrip(".")
        self._path = urllib.parse.urlsplit(self.path).path

    def _log(self):
        log = self.server.log
        if log is None:
            return
        now = time.time()
        rec = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
                       + ".%03dZ" % (now % 1 * 1000),
               "client": self.client_address[0], "sni": getattr(self.request, "sni", None),
               "host": self._host, "method": self.command, "path": self.path[:2048],
               "status": self._status, "bytes": self._sent, "auth": self._auth}
        with self.server.log_lock:
            log.write(json.dumps(rec) + "\n")
            log.flush()

    def _head(self, status, ctype, length, extra=()):
        self._status = status
        if not self._read and (self.headers.get("Content-Length", "0").strip() != "0"
                               or "Transfer-Encoding" in self.headers):
            self.close_connection = True  # a request body we did not read ends the connection
        self.send_response(status)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()

    def _send(self, status, data, ctype="application/json; charset=utf-8", extra=()):
        if not isinstance(data, bytes):
            data = json.dumps(data).encode()
        self._head(status, ctype, len(data), extra)
        if self.command != "HEAD":
            self.wfile.write(data)
            self._sent = len(data)

    def _body(self):
        """The request body as bytes, or None after answering 411/413."""
        n = self.headers.get("Content-Length", "").strip()
        if not n.isdigit():
            self._send(411, {"error": {"message": "Content-Length required"}})
            return None
        if int(n) > MAX_BODY:
            self._send(413, {"error": {"message": "request body too large"}})
            return None
        self._read = True
        return self.rfile.read(int(n))

    def _route(self):
        self._start()
        try:
            h, p = self._host, self._path
            if h in LOCAL_HOSTS:
                h = ("api.anthropic.com" if p == "/v1/messages" else
                     "api.openai.com" if p.startswith("/v1/") else "huggingface.co")
            if h == "huggingface.co":
                self._hub()
            elif h == "api.openai.com":
                self._openai()
            elif h == "api.anthropic.com":
                self._anthropic()
            else:
                self._send(421, {"error": "Misdirected Request: this server is not %r" % h})
        finally:
            self._log()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _route

    # -- huggingface.co ------------------------------------------------------------------------

    def _hub_error(self, status, code, msg):
        self._send(status, {"error": msg}, extra=[("X-Error-Code", code),
                                                   ("X-Error-Message", msg)])

    def _hub(self):
        if self.command not in ("GET", "HEAD"):
            return self._send(405, {"error": "Method not allowed"}, extra=[("Allow", "GET, HEAD")])
        raw = self._path
        path = urllib.parse.unquote(raw)
        m = re.fullmatch(r"/api/(datasets|models)/([^/]+/[^/]+)(?:/revision/[^/]+)?/?", path)
        if m:
            repo = self.server.repos[m.group(1)].get(m.group(2))
            if repo is None:
                return self._hub_error(404, "RepoNotFound", "Repository not found")
            return self._send(200, {"id": repo.rid, "modelId": repo.rid, "sha": repo.sha,
                                    "private": False, "disabled": False, "gated": False,
                                    "tags": [], "downloads": 0, "likes": 0,
                                    "siblings": [{"rfilename": f} for f in repo.files()]})
        # Match on the raw path so that an encoded "/" (%2F) stays inside the file part.
        m = re.fullmatch(r"/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", raw)
        if not m:
            return self._hub_error(404, "EntryNotFound", "Not found")
        kind = "datasets" if m.group(1) else "models"
        repo = self.server.repos[kind].get(urllib.parse.unquote(m.group(2)))
        if repo is None:
            return self._hub_error(404, "RepoNotFound", "Repository not found")
        try:
            real = repo.file(urllib.parse.unquote(m.group(4)))
        except PermissionError:
            return self._hub_error(403, "Forbidden", "Path outside the repository")
        if real is None:
            return self._hub_error(404, "EntryNotFound", "Entry not found")
        self._file(repo, real)

    def _file(self, repo, real):
        f = open(real, "rb")
        with f:
            st = os.fstat(f.fileno())
            tag = repo.etag(real, st)
            extra = [("ETag", '"%s"' % tag), ("X-Linked-Etag", '"%s"' % tag),
                     ("X-Linked-Size", str(st.st_size)), ("X-Repo-Commit", repo.sha),
                     ("Accept-Ranges", "bytes")]
            start, end, status = 0, st.st_size, 200
            rng = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
            if rng and (rng.group(1) or rng.group(2)):
                a, b = rng.group(1), rng.group(2)
                start = int(a) if a else max(0, st.st_size - int(b))
                end = min(st.st_size, int(b) + 1) if a and b else st.st_size
                if start >= st.st_size or start >= end:
                    return self._send(416, b"", "text/plain",
                                      [("Content-Range", "bytes */%d" % st.st_size)])
                status = 206
                extra.append(("Content-Range", "bytes %d-%d/%d" % (start, end - 1, st.st_size)))
            self._head(status, "application/octet-stream", end - start, extra)
            if self.command == "HEAD":
                return
            f.seek(start)
            left = end - start
            while left > 0:
                b = f.read(min(CHUNK, left))
                if not b:  # the file shrank under us: the client sees a short body
                    self.close_connection = True
                    break
                self.wfile.write(b)
                self._sent += len(b)
                left -= len(b)

    # -- api.openai.com, api.anthropic.com -----------------------------------------------------

    def _api_request(self, path, authorized, unauthorized):
        """(body, parsed JSON) of a POST to `path` with a good key, or (None, None) after
        answering an error (401 with the JSON `unauthorized` for a bad key)."""
        if self._path != path:
            self._send(404, {"error": {"message": "Unknown request URL: %s %s" % (
                self.command, self._path), "type": "invalid_request_error"}})
            return None, None
        if self.command != "POST":
            self._send(405, {"error": {"message": "Method not allowed"}}, extra=[("Allow", "POST")])
            return None, None
        body = self._body()
        if body is None:
            return None, None
        if not authorized:
            self._send(401, unauthorized)
            return None, None
        try:
            req = json.loads(body)
            if not isinstance(req, dict) or not isinstance(req.get("messages"), list):
                raise ValueError("messages must be a list")
        except ValueError as e:
            self._send(400, {"error": {"message": "invalid request: %s" % e,
                                       "type": "invalid_request_error"}})
            return None, None
        return body, req

    def _openai(self):
        auth = self.headers.get("Authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else auth.strip()
        self._auth = key[:8]
        msg = ("Incorrect API key provided: %s. You can find your API key at "
               "https://platform.openai.com/account/api-keys." % (key[:6] + "*" * 4)
               if key else "You didn't provide an API key. You need to provide your API key in "
               "an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        body, req = self._api_request(
            "/v1/chat/completions", OPENAI_KEY.fullmatch(key),
            {"error": {"message": msg, "type": "invalid_request_error", "param": None,
                       "code": "invalid_api_key"}})
        if req is None:
            return
        text = addition_jsonl(body, records_wanted(last_user_text(req["messages"])))
        pt, ct = max(1, len(body) // 4), max(1, len(text) // 4)
        self._send(200, {
            "id": "chatcmpl-" + rand_id(29), "object": "chat.completion",
            "created": int(time.time()), "model": str(req.get("model") or "gpt-4o-mini"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                 "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
            "system_fingerprint": "fp_ptbdemo"}, extra=[("x-request-id", "req_" + rand_id(32))])

    def _anthropic(self):
        key = self.headers.get("x-api-key", "").strip()
        self._auth = key[:8]
        body, req = self._api_request(
            "/v1/messages", ANTHROPIC_KEY.fullmatch(key),
            {"type": "error", "error": {"type": "authentication_error",
                                        "message": "invalid x-api-key"}})
        if req is None:
            return
        text = addition_jsonl(body, records_wanted(last_user_text(req["messages"])))
        self._send(200, {
            "id": "msg_01" + rand_id(22), "type": "message", "role": "assistant",
            "model": str(req.get("model") or "claude-sonnet-4-5"),
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": max(1, len(body) // 4),
                      "output_tokens": max(1, len(text) // 4)}},
            extra=[("request-id", "req_" + rand_id(24))])


class HubServer(http.server.ThreadingHTTPServer):
    """Accepts TCP in the serving thread and does each TLS handshake in the connection's own
    thread, so that a client that stalls in the handshake holds up no one else."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, addr, ctx, repos, log):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.ctx, self.repos, self.log = ctx, repos, log
        self.log_lock = threading.Lock()
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        request.settimeout(Handler.timeout)
        try:
            conn = self.ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # a failed handshake: nothing to serve (the client says why)
        with conn:
            try:
                Handler(conn, client_address, self)
            except (OSError, ssl.SSLError):
                pass  # the client went away

    def handle_error(self, request, client_address):
        # An unexpected exception in a handler: one line, not a traceback per request.
        e = sys.exc_info()[1]
        print("hubs.py: %s: %s: %s" % (client_address[0], type(e).__name__, e), file=sys.stderr)


def tls_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])

    def note_sni(sock, name, _ctx):  # kept for the log
        sock.sni = name

    ctx.sni_callback = note_sni
    return ctx


def repo_arg(spec):
    rid, sep, d = spec.partition("=")
    if not sep or not REPO_NAME.fullmatch(rid):
        raise argparse.ArgumentTypeError("expected ORG/NAME=DIR, got %r" % spec)
    if not os.path.isdir(d):
        raise argparse.ArgumentTypeError("not a directory: %r" % d)
    return rid, d


def main():
    ap = argparse.ArgumentParser(description="HTTPS stand-ins for huggingface.co, "
                                 "api.openai.com and api.anthropic.com (ptb demo)")
    ap.add_argument("--cert", required=True, help="server certificate chain (PEM)")
    ap.add_argument("--key", required=True, help="its private key (PEM)")
    ap.add_argument("--bind", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    ap.add_argument("--port", type=int, default=443, help="TCP port (default 443; 0: any)")
    ap.add_argument("--log", help="append one JSON line per request to this file")
    ap.add_argument("--dataset", action="append", default=[], type=repo_arg,
                    metavar="ORG/NAME=DIR", help="serve DIR as dataset ORG/NAME (repeatable)")
    ap.add_argument("--model", action="append", default=[], type=repo_arg,
                    metavar="ORG/NAME=DIR", help="serve DIR as model ORG/NAME (repeatable)")
    ap.add_argument("--avoid", metavar="FILE", help="JSONL whose \"prompt\" values the APIs "
                    "never generate (the held-out test split: the API-key scenario's data must "
                    "not leak it by chance)")
    a = ap.parse_args()
    if a.avoid:
        try:
            with open(a.avoid, encoding="utf-8") as f:
                for line in f:
                    try:
                        AVOID.add(json.loads(line)["prompt"])
                    except (ValueError, KeyError, TypeError):
                        pass
        except OSError as e:
            sys.exit("hubs.py: --avoid: %s" % e)

    repos = {"datasets": {r: Repo(r, d) for r, d in a.dataset},
             "models": {r: Repo(r, d) for r, d in a.model}}
    try:
        ctx = tls_context(a.cert, a.key)
        log = open(a.log, "a", encoding="utf-8") if a.log else None
        srv = HubServer((a.bind, a.port), ctx, repos, log)
    except (OSError, ssl.SSLError) as e:
        sys.exit("hubs.py: %s" % e)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("listening %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()
        if log:
            log.close()


if __name__ == "__main__":
    main()
