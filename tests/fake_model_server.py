"""A fake OpenAI-compatible chat server on 127.0.0.1, for tests and benchmarks.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length requests, chunked responses) to
serve ``POST /v1/chat/completions`` through litellm's real client, both as plain JSON and as
SSE streaming. Answers are deterministic: ``"Reply to: <last user message>"``, unless a test
sets ``responder`` (a function of the request body returning the answer's text, or a list
of strings: the exact chunks to stream, joined for a plain answer).

Use in-process (a background thread with its own event loop, so tests in the pytest process
and `coevo` subprocesses can both reach it)::

    server = FakeModelServer().start()
    server.url                        # "http://127.0.0.1:PORT/v1", for --api-base
    server.set_fault("429", count=2, retry_after=0.01)   # the next 2 requests fail
    server.request_count, server.requests                # what arrived (parsed JSON bodies)
    server.streams_closed_by_client                      # request numbers the client hung up on
    server.hold_streams(after_chunks=2)   # streams send 2 chunks of the answer, then wait...
    server.held_streams                   # (how many are waiting now)
    server.release_streams()              # ...until this
    server.refused_formats = {"json_schema"}   # such a response_format type (None: a
                                          # request without one) gets HTTP 400
    server.stop()

or as its own process (the benchmark does this, so the server's CPU does not share the
command's GIL)::

    python tests/fake_model_server.py --ttft 0.15 --chunks 20 --chunk-gap 0.005

which prints ``PORT <n>`` on its first line and serves ``GET /stats`` (counts, first request
received and last answer sent, on time.time(), faults served by kind), ``POST /reset`` and
``POST /config`` (a JSON object: ``ttft``, ``chunks``, ``chunk_gap``, ``fault`` (one
`set_fault`: ``{"kind", "count", "retry_after", "slow_s", "variant"}``) and ``fault_rates``
with ``seed`` (`set_fault_rates`)) until killed.

Faults, each for the next `count` requests (then the server answers normally again):
    "429"        status 429 with ``Retry-After: <retry_after>`` (seconds, may be fractional)
    "500"        status 500
    "401"        status 401 whose message echoes the bearer token sent (as some providers
                 do), to prove keys are redacted before anything is stored
    "drop"       the connection is closed mid-answer (after a few chunks when streaming)
    "malformed"  status 200 with a body (or, streaming, one chunk) that is not a completion;
                 `variant` says how: "not_json", "cut_json" (a completion cut in half),
                 "bad_utf8" (bytes that are not UTF-8), "not_completion" (JSON of another
                 shape); by default "not_json" for a body and "cut_json" for a chunk
    "slow"       the first token waits `slow_s` seconds (to trip the client's timeout)
Faults set with `set_fault` come first; otherwise, with `set_fault_rates`, each request fails
at random with a kind's probability (`{"429": 0.1, "500": 0.1, "drop": 0.05, "malformed":
0.05}`; a malformed one takes a random variant). The draw is SEEDED and depends only on the
seed, the request body and how often that same body arrived before, not on the order in
which concurrent requests arrive: a run of distinct cases meets the same faults every time.
`stats.faults` counts the faults served, by kind.
`shape_answer`, if set, rewrites each plain (non-streaming) completion body before it is
sent, to mimic servers whose answers differ in shape (extra or missing fields, ...).
Latency: `ttft` seconds before the first chunk, then `chunks` chunks `chunk_gap` apart and
the closing chunk one gap later (ttft + chunks * chunk_gap in all); a non-streaming answer
is sent after the same total time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("429", "500", "401", "drop", "malformed", "slow")
MALFORMED_VARIANTS = ("not_json", "cut_json", "bad_utf8", "not_completion")


@dataclass
class Fault:
    kind: str
    count: int
    retry_after: float = 0.0
    slow_s: float = 5.0
    variant: str | None = None  # of "malformed"; None: the classic one (see _malformed_body)


@dataclass
class ServerStats:
    """What the server saw; `first_request_at`/`last_answer_at` are time.time() values."""

    request_count: int = 0
    answered: int = 0
    first_request_at: float | None = None
    last_answer_at: float | None = None
    streams_closed_by_client: list[int] = field(default_factory=list)
    streams_finished: list[int] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)


def default_answer(body: dict[str, Any]) -> str:
    """The deterministic answer: derived from the last user message."""
    user = ""
    for message in body.get("messages", []):
        if message.get("role") == "user":
            content = message.get("content")
            user = content if isinstance(content, str) else json.dumps(content)
    return f"Reply to: {user}"


def _split(text: str, parts: int) -> list[str]:
    """Cut `text` into `parts` consecutive pieces (some may be empty for short text)."""
    parts = max(parts, 1)
    size = len(text) / parts
    return [text[round(i * size): round((i + 1) * size)] for i in range(parts)]


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


class FakeModelServer:
    """The server. Settings are plain attributes; change them between (or during) calls."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, ttft: float = 0.0,
                 chunks: int = 4, chunk_gap: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.ttft = ttft
        self.chunks = chunks
        self.chunk_gap = chunk_gap
        self.responder: Callable[[dict[str, Any]], str | list[str]] = default_answer
        self.shape_answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.stats = ServerStats()
        self._faults: list[Fault] = []
        self._fault_rates: dict[str, float] = {}
        self._fault_seed = 0
        self._fault_retry_after = 0.0
        self._seen_bodies: dict[str, int] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._started = threading.Event()
        self._hold_after: int | None = None
        self._hold_gate = threading.Event()
        self.held_streams = 0
        self.refused_formats: set[str | None] = set()

    # ------------------------------------------------------------------ control
    @property
    def url(self) -> str:
        """The api_base for litellm (`--api-base`)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def request_count(self) -> int:
        return self.stats.request_count

    @property
    def streams_closed_by_client(self) -> list[int]:
        return list(self.stats.streams_closed_by_client)

    def set_fault(self, kind: str, count: int = 1, *, retry_after: float = 0.0,
                  slow_s: float = 5.0, variant: str | None = None) -> None:
        """Fail the next `count` requests with `kind` (queued after faults already set)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        if variant is not None and variant not in MALFORMED_VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; one of {MALFORMED_VARIANTS}")
        with self._lock:
            self._faults.append(Fault(kind, count, retry_after, slow_s, variant))

    def set_fault_rates(self, rates: Mapping[str, float] | None, *, seed: int = 0,
                        retry_after: float = 0.0) -> None:
        """Fail each request at random: with probability `rates[kind]` as `kind` (at most
        one kind a request; the rates must sum to at most 1). Seeded and independent of
        arrival order (see the module docstring). None or {} stops random faults."""
        rates = {str(k): float(v) for k, v in (rates or {}).items() if float(v) > 0}
        unknown = set(rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; each one of {FAULT_KINDS}")
        if sum(rates.values()) > 1 + 1e-9:
            raise ValueError("fault rates sum to more than 1")
        with self._lock:
            self._fault_rates = rates
            self._fault_seed = seed
            self._fault_retry_after = retry_after
            self._seen_bodies.clear()

    def hold_streams(self, after_chunks: int) -> None:
        """Make each stream stop after `after_chunks` chunks of its answer until
        `release_streams()` (a test sees what arrived before the rest without timing)."""
        self._hold_gate.clear()
        self._hold_after = max(0, after_chunks)

    def release_streams(self) -> None:
        self._hold_after = None
        self._hold_gate.set()

    async def _wait_hold(self, hung_up: asyncio.Future[bytes]) -> bool:
        """Wait while streams are held; False if the client hung up meanwhile. Polls the
        threading.Event (set from the test's thread) at a short interval."""
        self.held_streams += 1
        try:
            while not self._hold_gate.is_set():
                done, _ = await asyncio.wait({hung_up}, timeout=0.01)
                if done:
                    return False
            return True
        finally:
            self.held_streams -= 1

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._fault_rates = {}

    def reset(self) -> None:
        """Forget requests, stats and faults, random ones too (latency settings stay)."""
        with self._lock:
            self._faults.clear()
            self._fault_rates = {}
            self._seen_bodies.clear()
            self.requests.clear()
            self.request_headers.clear()
            self.stats = ServerStats()

    def configure(self, **settings: Any) -> None:
        for name in ("ttft", "chunks", "chunk_gap"):
            if name in settings:
                setattr(self, name, type(getattr(self, name))(settings[name]))

    def _take_fault(self, raw: bytes) -> Fault | None:
        with self._lock:
            fault = self._next_set_fault() or self._random_fault(raw)
            if fault is not None:
                self.stats.faults[fault.kind] = self.stats.faults.get(fault.kind, 0) + 1
            return fault

    def _next_set_fault(self) -> Fault | None:
        while self._faults:
            fault = self._faults[0]
            if fault.count <= 0:
                self._faults.pop(0)
                continue
            fault.count -= 1
            return fault
        return None

    def _random_fault(self, raw: bytes) -> Fault | None:
        if not self._fault_rates:
            return None
        # Keyed on the body and its repetition, so that concurrent requests arriving in
        # another order meet the same faults (a case's nth attempt always draws the same).
        digest = hashlib.sha256(raw).hexdigest()
        seen = self._seen_bodies.get(digest, 0)
        self._seen_bodies[digest] = seen + 1
        rng = random.Random(f"{self._fault_seed}:{digest}:{seen}")
        draw = rng.random()
        for kind in FAULT_KINDS:  # a fixed order, so a seed means the same thing every time
            rate = self._fault_rates.get(kind, 0.0)
            if draw < rate:
                return Fault(kind, 0, self._fault_retry_after,
                             variant=rng.choice(MALFORMED_VARIANTS))
            draw -= rate
        return None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeModelServer:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        self._thread = threading.Thread(target=self._run_thread, name="fake-model-server",
                                        daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("fake model server did not start")
        return self

    def _run_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self.serve())
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def serve(self) -> None:
        """Start listening on the current loop (sets `port` when it was 0)."""
        self._server = await asyncio.start_server(self._connection, self.host, self.port,
                                                  backlog=512)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP
    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, path, headers, body = request
                keep_open = await self._route(method, path, headers, body, reader, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def _route(self, method: str, path: str, headers: dict[str, str], body: bytes,
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if method == "GET" and path == "/stats":
            s = self.stats
            await _send_json(writer, 200, {
                "request_count": s.request_count, "answered": s.answered,
                "first_request_at": s.first_request_at, "last_answer_at": s.last_answer_at,
                "streams_closed_by_client": len(s.streams_closed_by_client),
                "faults": dict(s.faults),
            })
            return True
        if method == "POST" and path == "/reset":
            self.reset()
            await _send_json(writer, 200, {"ok": True})
            return True
        if method == "POST" and path == "/config":
            settings = json.loads(body or b"{}")
            self.configure(**settings)
            if "fault" in settings:
                f = settings["fault"]
                self.set_fault(f["kind"], f.get("count", 1), retry_after=f.get("retry_after", 0),
                               slow_s=f.get("slow_s", 5.0),
                               variant=f.get("variant"))
            if "fault_rates" in settings:
                self.set_fault_rates(settings["fault_rates"], seed=settings.get("seed", 0),
                                     retry_after=settings.get("retry_after", 0.0))
            await _send_json(writer, 200, {"ok": True})
            return True
        if method != "POST" or not path.endswith("/chat/completions"):
            await _send_json(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        return await self._chat(headers, body, reader, writer)

    async def _chat(self, headers: dict[str, str], raw: bytes, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> bool:
        now = time.time()
        with self._lock:
            self.stats.request_count += 1
            number = self.stats.request_count
            if self.stats.first_request_at is None:
                self.stats.first_request_at = now
        body = json.loads(raw or b"{}")
        self.requests.append(body)
        self.request_headers.append(headers)
        fault = self._take_fault(raw)
        if fault is not None and fault.kind == "429":
            await _send_json(writer, 429, {"error": {"message": "rate limited",
                                                     "type": "rate_limit_error"}},
                             extra={"Retry-After": f"{fault.retry_after:g}"})
            return True
        if fault is not None and fault.kind == "401":
            token = headers.get("authorization", "").removeprefix("Bearer ").strip()
            await _send_json(writer, 401, {"error": {
                "message": f"Incorrect API key provided: {token}", "type": "invalid_request_error",
                "code": "invalid_api_key"}})
            return True
        response_format = body.get("response_format")
        format_type = response_format.get("type") if isinstance(response_format, dict) else None
        if format_type in self.refused_formats:
            await _send_json(writer, 400, {"error": {
                "message": f"response_format type {format_type!r} is not supported",
                "type": "invalid_request_error"}})
            return True
        if fault is not None and fault.kind == "500":
            await _send_json(writer, 500, {"error": {"message": "internal error",
                                                     "type": "server_error"}})
            return True
        answer_given = self.responder(body)
        text = answer_given if isinstance(answer_given, str) else "".join(answer_given)
        pieces = None if isinstance(answer_given, str) else list(answer_given)
        model = body.get("model", "fake")
        ttft = fault.slow_s if fault is not None and fault.kind == "slow" else self.ttft
        if body.get("stream"):
            return await self._stream(number, body, text, model, ttft, fault, reader, writer,
                                      pieces)
        await asyncio.sleep(ttft + self.chunk_gap * self.chunks)
        if fault is not None and fault.kind == "drop":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 500\r\n\r\n{\"id\": ")
            await writer.drain()
            return False
        prompt_tokens = sum(_tokens(str(m.get("content", ""))) for m in body.get("messages", []))
        answer = {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": int(now),
            "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": _tokens(text),
                      "total_tokens": prompt_tokens + _tokens(text)},
        }
        if fault is not None and fault.kind == "malformed":
            data = _malformed_body(fault.variant, answer)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
            await writer.drain()
            self._answered()
            return True
        if self.shape_answer is not None:
            answer = self.shape_answer(answer)
        await _send_json(writer, 200, answer)
        self._answered()
        return True

    def _answered(self) -> None:
        with self._lock:
            self.stats.answered += 1
            self.stats.last_answer_at = time.time()

    async def _stream(self, number: int, body: dict[str, Any], text: str, model: str,
                      ttft: float, fault: Fault | None, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, pieces: list[str] | None = None) -> bool:
        # "Connection: close": the hang-up watcher below reads from the connection, so it must
        # not be reused for a next request whose first byte the watcher could swallow.
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-cache\r\nConnection: close\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        # The client sends nothing more during a stream, so EOF on the reader means it hung up.
        hung_up = asyncio.ensure_future(reader.read(1))
        try:
            if pieces is None:
                pieces = _split(text, self.chunks)
            for index, piece in enumerate(pieces):
                if index and index == self._hold_after and not await self._wait_hold(hung_up):
                    self.stats.streams_closed_by_client.append(number)
                    return False
                delay = ttft if index == 0 else self.chunk_gap
                if delay > 0:
                    done, _ = await asyncio.wait({hung_up}, timeout=delay)
                    if done:
                        self.stats.streams_closed_by_client.append(number)
                        return False
                elif hung_up.done():
                    self.stats.streams_closed_by_client.append(number)
                    return False
                if fault is not None and fault.kind == "drop" and index == min(2, len(pieces) - 1):
                    return False  # closes the connection with the chunked body unfinished
                if fault is not None and fault.kind == "malformed" and index == 1:
                    await _chunk(writer, _malformed_chunk(fault.variant, number, model))
                    continue
                delta: dict[str, Any] = {"content": piece}
                if index == 0:
                    delta["role"] = "assistant"
                await _chunk(writer, _sse({
                    "id": f"chatcmpl-fake-{number}", "object": "chat.completion.chunk",
                    "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }))
            if self.chunk_gap > 0:
                done, _ = await asyncio.wait({hung_up}, timeout=self.chunk_gap)
                if done:
                    self.stats.streams_closed_by_client.append(number)
                    return False
            prompt_tokens = sum(_tokens(str(m.get("content", "")))
                                for m in body.get("messages", []))
            await _chunk(writer, _sse({
                "id": f"chatcmpl-fake-{number}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": _tokens(text),
                          "total_tokens": prompt_tokens + _tokens(text)},
            }))
            await _chunk(writer, b"data: [DONE]\n\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            self.stats.streams_finished.append(number)
            self._answered()
            return False
        except ConnectionError:
            self.stats.streams_closed_by_client.append(number)
            return False
        finally:
            if not hung_up.done():
                hung_up.cancel()


def _malformed_body(variant: str | None, answer: dict[str, Any]) -> bytes:
    """A status-200 body that is not a chat completion, in one of MALFORMED_VARIANTS
    (None: "not_json")."""
    if variant == "cut_json":
        data = json.dumps(answer).encode()
        return data[: len(data) // 2]
    if variant == "bad_utf8":
        return json.dumps(answer).encode().replace(b"Reply to", b"Reply \xff\xfe to", 1)
    if variant == "not_completion":
        return json.dumps({"object": "list", "data": [], "note": "not a completion"}).encode()
    return b"{this is not json"


def _malformed_chunk(variant: str | None, number: int, model: str) -> bytes:
    """An SSE event that is not a completion chunk, in one of MALFORMED_VARIANTS
    (None: "cut_json")."""
    if variant == "bad_utf8":
        return (b"data: {\"id\": \"chatcmpl-fake-%d\", \"object\": \"chat.completion.chunk\","
                b" \"choices\": [{\"index\": 0, \"delta\": {\"content\": \"\xff\xfe\"}}]}\n\n"
                % number)
    if variant == "not_completion":
        return b"data: " + json.dumps({"unexpected": True, "model": model}).encode() + b"\n\n"
    if variant == "not_json":
        return b"data: {this is not json\n\n"
    return b"data: {\"id\": \"broken\", \"choices\": [{\n\n"  # cut_json, or None


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


async def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


async def _send_json(writer: asyncio.StreamWriter, status: int, obj: Any,
                     extra: dict[str, str] | None = None) -> None:
    data = json.dumps(obj).encode()
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
              429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "Status")
    head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json",
            f"Content-Length: {len(data)}"]
    head += [f"{k}: {v}" for k, v in (extra or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    await writer.drain()


async def _read_request(reader: asyncio.StreamReader
                        ) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, path.split("?", 1)[0], headers, body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to first token")
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--chunk-gap", type=float, default=0.0, help="seconds between chunks")
    args = parser.parse_args(argv)
    server = FakeModelServer(port=args.port, ttft=args.ttft, chunks=args.chunks,
                             chunk_gap=args.chunk_gap)
    return serve_until_interrupted(server)


def serve_until_interrupted(server: FakeModelServer) -> int:
    """Serve `server` as its own process: print "PORT n" once listening, stop on Ctrl-C
    (for benchmarks that keep the server's work out of the measured process)."""

    async def run() -> None:
        await server.serve()
        print(f"PORT {server.port}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
