#!/usr/bin/env python3
"""A stand-in for an OpenAI-compatible completions server (vLLM), for the tests of ptb eval's
openai backend (tests/unit/runner/test_eval_openai.c). Standard library only.

POST /v1/completions with {"model", "prompt", "max_tokens", "temperature"} answers
{"choices": [{"index": 0, "text": ANSWER, "finish_reason": "stop"}], ...} where ANSWER is the
answer of the exact prompt in --answers (else ""). Flags make chosen prompts misbehave:

  --fail-first N              the first N requests of each prompt get 503 with Retry-After: 0
  --garbage-for SUBSTRING     200 with a body that is not JSON (it echoes the Authorization
                              header, so that tests can check clients do not print it)
  --no-choices-for SUBSTRING  200 with JSON that has no choices
  --big-for SUBSTRING         200 with a 9 MiB JSON body
  --slow-for SUBSTRING        sleep --slow-seconds (5) before answering
  --status-for SUBSTRING:CODE reply with that status and a JSON error body (echoing the
                              Authorization header too)
  --delay-ms MS               every request waits this long (so that requests overlap)

--port 0 picks a free port; the port is printed as the first line of stdout. With --stats FILE,
each request rewrites FILE (atomically, before its reply is sent) with
{"requests": {prompt: count}, "total": n, "max_in_flight": n, "authorization": [values seen]}.
"""
import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_REQUEST = 1 << 20


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.requests = {}
        self.total = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.auth = []
        self.answers = {}
        if args.answers:
            with open(args.answers, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        rec = json.loads(line)
                        self.answers[rec["prompt"]] = rec["answer"]
        self.status_for = []
        for spec in args.status_for:
            sub, _, code = spec.rpartition(":")
            self.status_for.append((sub, int(code)))

    def write_stats(self):
        """Called with the lock held."""
        path = self.args.stats
        if not path:
            return
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"requests": self.requests, "total": self.total,
                       "max_in_flight": self.max_in_flight, "authorization": self.auth}, f)
        os.replace(tmp, path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as vLLM's server does

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def send(self, code, body, ctype="application/json", headers=()):
        data = body.encode("utf-8") if isinstance(body, str) else body
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def do_POST(self):
        st = self.server.state
        if self.path.rstrip("/") != "/v1/completions":
            self.send(404, json.dumps({"error": {"message": "no such path " + self.path}}))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST:
            self.send(413, json.dumps({"error": {"message": "bad Content-Length"}}))
            self.close_connection = True
            return
        raw = self.rfile.read(length)
        try:
            req = json.loads(raw)
            prompt = req["prompt"]
            if not isinstance(prompt, str):
                raise ValueError("prompt is not a string")
        except (ValueError, KeyError, TypeError) as e:
            self.send(400, json.dumps({"error": {"message": "bad request: %s" % e}}))
            return
        auth = self.headers.get("Authorization")
        with st.lock:
            n = st.requests.get(prompt, 0) + 1
            st.requests[prompt] = n
            st.total += 1
            st.in_flight += 1
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
            if auth is not None and auth not in st.auth:
                st.auth.append(auth)
            st.write_stats()
        try:
            self.answer(st, req, prompt, n, auth)
        finally:
            with st.lock:
                st.in_flight -= 1

    def answer(self, st, req, prompt, n, auth):
        a = st.args
        if a.delay_ms:
            time.sleep(a.delay_ms / 1000.0)
        if any(s in prompt for s in a.slow_for):
            time.sleep(a.slow_seconds)
        if n <= a.fail_first:
            self.send(503, json.dumps({"error": {"message": "warming up"}}),
                      headers=[("Retry-After", "0")])
            return
        for sub, code in st.status_for:
            if sub in prompt:
                self.send(code, json.dumps({"error": {"message": "status %d for you" % code,
                                                      "authorization": auth}}))
                return
        if any(s in prompt for s in a.garbage_for):
            self.send(200, "<html>this is not JSON; Authorization: %s</html>" % auth,
                      ctype="text/html")
            return
        if any(s in prompt for s in a.no_choices_for):
            self.send(200, json.dumps({"object": "text_completion", "choices": []}))
            return
        text = st.answers.get(prompt, "")
        if any(s in prompt for s in a.big_for):
            text = "x" * (9 << 20)
        self.send(200, json.dumps({
            "id": "cmpl-test", "object": "text_completion", "created": int(time.time()),
            "model": req.get("model"),
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(text),
                      "total_tokens": len(prompt) + len(text)}}))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that hung up (timeouts, the body cap): expected in these tests
        super().handle_error(request, client_address)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: pick a free port (printed)")
    p.add_argument("--answers", metavar="FILE.jsonl", help='lines {"prompt": P, "answer": A}')
    p.add_argument("--fail-first", type=int, default=0, metavar="N")
    p.add_argument("--garbage-for", action="append", default=[], metavar="SUBSTRING")
    p.add_argument("--no-choices-for", action="append", default=[], metavar="SUBSTRING")
    p.add_argument("--big-for", action="append", default=[], metavar="SUBSTRING")
    p.add_argument("--slow-for", action="append", default=[], metavar="SUBSTRING")
    p.add_argument("--slow-seconds", type=float, default=5.0)
    p.add_argument("--status-for", action="append", default=[], metavar="SUBSTRING:CODE")
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--stats", metavar="FILE")
    args = p.parse_args(argv)
    server = Server((args.host, args.port), Handler)
    server.state = State(args)
    with server.state.lock:
        server.state.write_stats()
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
