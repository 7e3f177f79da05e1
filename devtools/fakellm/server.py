"""A deterministic OpenAI-compatible server (``/v1/chat/completions``, ``/v1/models``) for tests.

It reads the sentences (or the text) out of the prompt's input block, looks the gold answer up,
applies the personas named by the request's ``model`` (see ``personas``) and answers like the
real API: ``choices`` (``n`` of them), ``finish_reason``, ``usage`` (about 4 characters per
token, the usual BPE rule of thumb) and ``logprobs`` when asked. Only listens on loopback;
bodies over 2 MB, ``n`` over 16 and malformed JSON are rejected.
"""
from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from model.llm.prompts import MAX_TEXT_CHARS, REASK_MARKER, SENTENCES_MARKER, TEXT_MARKER
from devtools.fakellm import personas as P
from devtools.fakellm.answers import HABITS, GoldIndex, habit_content, logprobs, ner_content
from devtools.fakellm.systematic import Calibrator

MAX_BODY = 2_000_000
MAX_N = 16


class _Reply(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None,
                 kind: str = "fake") -> None:
        super().__init__(message)
        self.status, self.message, self.headers, self.kind = status, message, headers or {}, kind


class _Raw(Exception):
    """A body that is not an API reply at all (an HTML page on HTTP 200)."""

    def __init__(self, status: int, body: str, ctype: str) -> None:
        super().__init__(body[:60])
        self.status, self.body, self.ctype = status, body, ctype


HTML_PAGE = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Open WebUI"
             "</title></head>\n<body><div id=\"app\">Loading...</div><script src=\"/static/app.js"
             "\"></script></body></html>\n")
# what llama_cpp.server answers for response_format {"type": "json_schema"}: its RouteErrorHandler
# wraps the request-validation error of ChatCompletionRequestResponseFormat (type: Literal["text",
# "json_object"]) as a 500 "internal_server_error" whose message is the error list
LLAMACPP_FORMAT_ERROR = ("[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                         "'msg': \"Input should be 'text' or 'json_object'\", 'input': '{fmt}', "
                         "'ctx': {'expected': \"'text' or 'json_object'\"}}]")


class FakeLLM:
    def __init__(self, gold: dict) -> None:
        self.ner_gold = GoldIndex({k: v for k, v in gold.items() if isinstance(k, tuple)})
        self.calibrator = Calibrator(self.ner_gold.sentences)  # systematic-<F> personas
        self.cls_gold = {k[:MAX_TEXT_CHARS]: ([v] if isinstance(v, str) else list(v))
                         for k, v in gold.items() if isinstance(k, str)}
        self.lock = threading.Lock()
        self.slot = threading.Lock()  # llamacpp persona: one generation at a time
        self.stop_event = threading.Event()
        self.attempts: Counter = Counter()
        self.stats = {"requests": 0, "status": Counter(), "prompt_tokens": 0,
                      "completion_tokens": 0, "in_flight": 0, "max_in_flight": 0,
                      "sentences": 0}

    def _count(self, key) -> int:
        with self.lock:
            self.attempts[key] += 1
            return self.attempts[key]

    def _first_sight(self, model: str, user: str, seed: int) -> bool:
        """True when some sentence (or text) of this request was never seen before (any seed)."""
        block = re.split(f"\n(?:{SENTENCES_MARKER}|{TEXT_MARKER})\n", user)[-1]
        keys = []
        for line in block.splitlines():
            try:
                keys.append(("seen", model, json.dumps(json.loads(line)["tokens"])))
            except (ValueError, KeyError, TypeError):
                keys.append(("seen", model, line))
        with self.lock:
            new = [k for k in keys if k not in self.attempts]
            for k in keys:
                self.attempts[k] += 1
        return bool(new)

    def complete(self, body: dict) -> dict:
        model = body.get("model") or "perfect"
        try:
            personas = P.parse_model(model)
        except ValueError as exc:
            raise _Reply(404, str(exc)) from None
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Reply(400, "messages must be a non-empty list")
        n = body.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= MAX_N:
            raise _Reply(400, f"n must be an integer in 1..{MAX_N}")
        rf = body.get("response_format")
        fmt = rf.get("type") if isinstance(rf, dict) else None
        if "badkey" in personas:
            raise _Reply(401, "Incorrect API key provided: sk-te***cret. You can find your API key "
                              "at https://platform.openai.com/account/api-keys.",
                         kind="invalid_request_error")
        if "html" in personas:
            raise _Raw(200, HTML_PAGE, "text/html; charset=utf-8")
        if "llamacpp" in personas:
            if rf is not None and fmt not in ("text", "json_object"):
                raise _Reply(500, LLAMACPP_FORMAT_ERROR.replace("{fmt}", str(fmt)),
                             kind="internal_server_error")
            n = 1  # "ignored or currently unsupported"
        if "no-logprobs" in personas and body.get("logprobs"):
            raise _Reply(400, "logprobs is not supported by this model")
        if "no-schema" in personas and fmt == "json_schema":
            raise _Reply(400, "response_format json_schema is not supported")
        template = body.get("chat_template_kwargs")
        if "reasoning" in personas and isinstance(template, dict) \
                and template.get("enable_thinking") is False:
            # Qwen3's chat template (vLLM, llama.cpp) answers without thinking when asked so
            personas = {k: v for k, v in personas.items() if k != "reasoning"}
        user = next((m.get("content") or "" for m in reversed(messages)
                     if m.get("role") == "user"), "")
        req_key = (model, user, body.get("seed"))
        if "slow" in personas and "llamacpp" in personas:
            with self.slot:
                self.stop_event.wait(personas["slow"] / 1000)
        elif "slow" in personas:
            self.stop_event.wait(personas["slow"] / 1000)
        if "timeout" in personas:
            self.stop_event.wait(30)
        if "error500" in personas:
            raise _Reply(500, "internal server error (persona error500)")
        if "ratelimit" in personas and self._count(("rl",) + req_key) <= personas["ratelimit"]:
            raise _Reply(429, "rate limit reached (persona ratelimit)", {"Retry-After": "1"})
        seed = int(body.get("seed") or 0)
        choices, t_out = [], 0
        first_try = self._first_sight(model, user, seed) if "truncated" in personas else False
        for k in range(1 if "no-n" in personas else n):
            content, low, reasoning = self._answer(user, personas, seed + k)
            finish = "stop"
            if "truncated" in personas and first_try:
                content, finish = content[: int(len(content) * 0.6)], "length"
            limit = body.get("max_tokens")
            if isinstance(limit, int) and math.ceil(len(content) / 4) > limit:
                content, finish = content[: limit * 4], "length"
            t_out += math.ceil(len(content) / 4) + math.ceil(len(reasoning or "") / 4)
            message = {"role": "assistant", "content": content}
            if reasoning is not None:
                message["reasoning_content"] = reasoning
            if "refusal" in personas:
                message = {"role": "assistant", "content": None,
                           "refusal": "I'm sorry, I can't help with labelling this text."}
            if "content-filter" in personas:
                message, finish = {"role": "assistant", "content": None}, "content_filter"
            choices.append({"index": k, "message": message, "finish_reason": finish,
                            "logprobs": logprobs(content, low) if body.get("logprobs") else None})
        t_in = sum(math.ceil(len(m.get("content") or "") / 4) + 4 for m in messages)
        with self.lock:
            self.stats["prompt_tokens"] += t_in
            self.stats["completion_tokens"] += t_out
        reply = {"id": f"chatcmpl-fake-{seed}", "object": "chat.completion",
                 "created": int(time.time()), "model": model, "choices": choices,
                 "usage": {"prompt_tokens": t_in, "completion_tokens": t_out,
                           "total_tokens": t_in + t_out}}
        if "no-usage" in personas:
            del reply["usage"]
        return reply

    def _answer(self, user: str, personas: dict, seed: int) -> tuple[str, list, str | None]:
        if "garbage" in personas:
            return "I am sorry, I cannot label that. <<<tags: ???>>>", [], None
        reasoning = None
        reask = REASK_MARKER in user
        if "\n" + SENTENCES_MARKER + "\n" in user:
            block = user.rsplit("\n" + SENTENCES_MARKER + "\n", 1)[1]
            sents = []
            for line in block.splitlines():
                d = json.loads(line)
                sents.append((d["id"], [t for _, t in d["tokens"]]))
            m = re.search(r"Allowed BIO tags: ([^\n]*?)\. ", user)
            labels = [t[2:] for t in m.group(1).split(", ") if t.startswith("B-")] if m else []
            with self.lock:
                self.stats["sentences"] += len(sents)
            profile = self.calibrator.profile(personas, labels)  # None unless systematic-*
            if HABITS & personas.keys():
                (content, reasoning), low = habit_content(sents, self.ner_gold, labels, personas,
                                                          seed, profile), []
            else:
                content, low = ner_content(sents, self.ner_gold, labels, personas, seed, reask,
                                           profile)
        elif "\n" + TEXT_MARKER + "\n" in user:
            text = user.rsplit("\n" + TEXT_MARKER + "\n", 1)[1]
            m = re.search(r"Allowed labels: (\[.*?\])\.?\n", user)
            choices = json.loads(m.group(1)) if m else ["unknown"]
            picked = P.pick_choice(text, choices, self.cls_gold.get(text), personas, seed)
            if "unknown-tags" in personas:
                picked = [c.upper() for c in picked]
            multi = '"labels": [' in user
            content = json.dumps({"labels": picked} if multi else {"label": picked[0]},
                                 ensure_ascii=False)
            low = []
        else:
            content, low = json.dumps({"answer": "ok"}), []
        if "prose" in personas:
            content = f"Sure! Here is the JSON you asked for:\n```json\n{content}\n```\nHope this helps."
            low = []
        return content, low, reasoning


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeLLM/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API (no TCP set-up per request)
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    fake: FakeLLM

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        with self.fake.lock:
            self.fake.stats["status"][status] += 1
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout persona)

    def _send_raw(self, status: int, data: bytes, ctype: str) -> None:
        with self.fake.lock:
            self.fake.stats["status"][status] += 1
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            names = sorted(P.KNOWN)
            self._send(200, {"object": "list", "data": [{"id": n, "object": "model",
                                                        "owned_by": "fakellm"} for n in names]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        fake = self.fake
        with fake.lock:
            fake.stats["requests"] += 1
            fake.stats["in_flight"] += 1
            fake.stats["max_in_flight"] = max(fake.stats["max_in_flight"], fake.stats["in_flight"])
        try:
            if not self.path.rstrip("/").endswith("/chat/completions"):
                raise _Reply(404, "not found")
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                raise _Reply(401, "missing API key")
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                raise _Reply(413, f"body must be 1..{MAX_BODY} bytes")
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                raise _Reply(400, "body is not JSON") from None
            self._send(200, fake.complete(body))
        except _Raw as r:
            self._send_raw(r.status, r.body.encode("utf-8"), r.ctype)
        except _Reply as r:
            headers = dict(r.headers)
            if r.status in (401, 404, 413):
                # the body may be unread: close the socket, and say so ("Connection: close" also
                # sets close_connection), or a keep-alive client sends its next request down a
                # socket the server is closing ("Server disconnected without sending a response")
                headers["Connection"] = "close"
            self._send(r.status, {"error": {"message": r.message, "type": r.kind,
                                            "param": None, "code": r.status}}, headers)
        finally:
            with fake.lock:
                fake.stats["in_flight"] -= 1


class ServerHandle:
    def __init__(self, httpd: ThreadingHTTPServer, fake: FakeLLM, thread: threading.Thread):
        self._httpd, self._fake, self._thread = httpd, fake, thread
        host, port = httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}/v1"

    @property
    def stats(self) -> dict:
        with self._fake.lock:
            return {**self._fake.stats, "status": dict(self._fake.stats["status"])}

    def stop(self) -> None:
        self._fake.stop_event.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(gold: dict, host: str = "127.0.0.1", port: int = 0) -> ServerHandle:
    """Serve in a daemon thread. ``gold``: ``{tuple(tokens): tags}`` for NER and
    ``{text: label or [labels]}`` for classification."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the fake LLM server only listens on loopback")
    fake = FakeLLM(gold)
    handler = type("Handler", (_Handler,), {"fake": fake})
    httpd = ThreadingHTTPServer((host, port), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="fakellm", daemon=True)
    thread.start()
    return ServerHandle(httpd, fake, thread)


def load_gold(conll: str | None = None, news: str | None = None) -> dict:
    from model.conll import read_conll, read_news_tsv
    gold: dict = {}
    if conll:
        for toks, tags in read_conll(conll):
            gold[tuple(toks)] = tags
    if news:
        texts, labels = read_news_tsv(news)
        gold.update(zip(texts, labels))
    return gold
