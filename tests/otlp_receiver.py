"""A loopback OTLP/HTTP trace receiver, as a collector would run, for tests of span export.

It accepts `POST /v1/traces` with a protobuf ExportTraceServiceRequest (gzip or not),
keeps every span it is sent with its resource's attributes, and answers 200 with an empty
ExportTraceServiceResponse. Anything else (another path, JSON) is refused, as a collector
would refuse it, and counted in `refused`.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["OtlpReceiver", "ReceivedSpan", "running_otlp_receiver"]

PROTOBUF = "application/x-protobuf"
STATUS_ERROR = 2
"""opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR."""


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    """32 hex digits, as the API's `trace_id`."""
    span_id: str
    parent_span_id: str
    """"" for a trace's root span."""
    attributes: dict[str, Any]
    resource: dict[str, Any]
    """The attributes of the resource that sent it (service.name, ...)."""
    failed: bool


@dataclass
class OtlpReceiver:
    url: str
    """The base URL, as VOICEGRAPH_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_ENDPOINT) takes it."""
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: ExportTraceServiceRequest) -> None:
        received: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                            resource=resource,
                            failed=span.status.code == STATUS_ERROR,
                        )
                    )
        with self._lock:
            self.requests += 1
            self.spans.extend(received)

    def refuse(self) -> None:
        with self._lock:
            self.refused += 1

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def wait_for(self, ready: Callable[[OtlpReceiver], bool], timeout_s: float = 15.0, poll_s: float = 0.05) -> bool:
        """Poll until `ready(self)` holds; False when the deadline passes first."""
        deadline = time.monotonic() + timeout_s
        while not ready(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(poll_s)
        return True


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code: int, body: bytes = b"", content_type: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, code: int, message: str) -> None:
            receiver.refuse()
            self._answer(code, message.encode())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/v1/traces":
                return self._refuse(404, "only /v1/traces is served")
            if (self.headers.get("Content-Type") or "").split(";")[0].strip() != PROTOBUF:
                return self._refuse(415, f"send {PROTOBUF}")
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            try:
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
            except Exception as error:  # a malformed body is the sender's fault
                return self._refuse(400, f"not an ExportTraceServiceRequest: {error}")
            receiver.add(request)
            self._answer(200, ExportTraceServiceResponse().SerializeToString(), PROTOBUF)

        def log_message(self, format: str, *args: Any) -> None:  # quiet, like the other test servers
            pass

    return Handler


@contextmanager
def running_otlp_receiver() -> Iterator[OtlpReceiver]:
    """Serve a receiver on a loopback port chosen by the OS; yields it and stops it on exit."""
    receiver = OtlpReceiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
