"""/metrics in Prometheus format (behind the key unless configured open), the structured access log,
and OpenTelemetry traces exported over OTLP/HTTP to a loopback collector."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from tests.hardening.conftest import (
    KEY,
    Upstream,
    access_line,
    bearer,
    chat_body,
    server_with,
    stream_chat,
    upstream_model,
)
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    tmp = Path(tmp_path_factory.mktemp("obs"))
    dead = "http://127.0.0.1:9/v1"  # nothing listens there: provider errors
    models = [
        upstream_model("fast", upstream, "words-5-0"),
        upstream_model("mute", upstream, "words-0-0"),  # ends at once with nothing said
        {**upstream_model("broken", upstream, "words-5-0"), "base_url": dead, "retries": 1},
        {**upstream_model("rescued", upstream, "words-5-0"), "base_url": dead, "fallbacks": ["fast"]},
    ]
    with server_with(tmp, models, SLIPWAY_API_KEYS=KEY) as s:
        yield s


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def test_quality_signals_count_how_answers_end_empty_ones_and_their_length(server: SlipwayServer) -> None:
    before = samples(httpx.get(server.url + "/metrics", headers=bearer()).text)
    chat = server.url + "/v1/chat/completions"
    full = httpx.post(chat, json=chat_body(model="fast"), headers=bearer(), timeout=30)
    cut = httpx.post(chat, json=chat_body(model="fast", max_tokens=2), headers=bearer(), timeout=30)
    mute = httpx.post(chat, json=chat_body(model="mute"), headers=bearer(), timeout=30)
    assert [r.json()["choices"][0]["finish_reason"] for r in (full, cut, mute)] == ["stop", "length", "stop"]
    after = samples(httpx.get(server.url + "/metrics", headers=bearer()).text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("slipway_answers_total", model="fast", finish_reason="stop") == 1
    assert grew("slipway_answers_total", model="fast", finish_reason="length") == 1
    assert grew("slipway_answers_total", model="mute", finish_reason="stop") == 1
    assert grew("slipway_empty_answers_total", model="mute") == 1
    assert grew("slipway_empty_answers_total", model="fast") == 0
    # Answer lengths: 5 and 2 tokens from `fast`, so one at or below 2 and both at or below 16.
    assert grew("slipway_answer_tokens_count", model="fast") == 2
    assert grew("slipway_answer_tokens_sum", model="fast") == 7
    assert grew("slipway_answer_tokens_bucket", model="fast", le="4.0") == 1
    assert grew("slipway_answer_tokens_bucket", model="fast", le="16.0") == 2


def test_metrics_count_requests_tokens_latency_and_errors(server: SlipwayServer) -> None:
    assert httpx.get(server.url + "/metrics").status_code == 401, "metrics are behind the key by default"
    before = samples(httpx.get(server.url + "/metrics", headers=bearer()).text)
    chat = server.url + "/v1/chat/completions"
    assert httpx.post(chat, json=chat_body(model="fast"), headers=bearer()).status_code == 200
    assert stream_chat(server.url, chat_body(model="fast")).done
    assert httpx.post(chat, json=chat_body(model="broken"), headers=bearer()).status_code == 503
    assert httpx.post(chat, json=chat_body(model="fast"), headers=bearer("sk-slw-wrong")).status_code == 401
    rescued = httpx.post(chat, json=chat_body(model="rescued"), headers=bearer())
    assert rescued.status_code == 200 and rescued.headers["x-slipway-model"] == "fast"
    after = samples(httpx.get(server.url + "/metrics", headers=bearer()).text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/v1/chat/completions"
    assert delta("slipway_requests_total", route=route, method="POST", status="200", model="fast") == 3
    assert delta("slipway_requests_total", route=route, method="POST", status="401", model="") == 1
    assert delta("slipway_request_duration_seconds_count", route=route, method="POST") == 5
    assert delta("slipway_time_to_first_token_seconds_count", model="fast") == 3
    assert delta("slipway_tokens_total", model="fast", type="completion") == 15
    assert delta("slipway_tokens_total", model="fast", type="prompt") > 0
    assert delta("slipway_queue_wait_seconds_count", model="fast") == 3
    assert delta("slipway_provider_errors_total", model="broken", code="upstream_unreachable") == 2, "try + retry"
    assert delta("slipway_provider_retries_total", model="broken") == 1
    assert delta("slipway_provider_fallbacks_total", model="rescued", fallback="fast") == 1
    assert value(after, "slipway_queue_waiting", model="fast") == 0
    assert value(after, "slipway_queue_active", model="fast") == 0
    assert value(after, "slipway_active_streams") == 0
    assert ("slipway_queue_depth_limit", frozenset({("model", "fast")})) in after


def test_access_log_names_the_key_never_the_key(server: SlipwayServer) -> None:
    r = httpx.post(
        server.url + "/v1/chat/completions",
        json=chat_body(model="fast"),
        headers={**bearer(), "X-Request-ID": "trace-me-123"},
    )
    assert r.status_code == 200
    line = access_line(server, lambda entry: entry.get("request_id") == "trace-me-123")
    assert line["status"] == 200 and line["model"] == "fast" and line["route"] == "/v1/chat/completions"
    assert line["key_name"].startswith("static-") and KEY not in str(line)
    assert line["completion_tokens"] == 5 and line["prompt_tokens"] > 0
    assert line["latency_ms"] > 0 and line["ttft_ms"] > 0 and "queue_wait_ms" in line


def test_metrics_can_be_open(upstream: Upstream, tmp_path: Path) -> None:
    models = [upstream_model("fast", upstream, "words-5-0")]
    with server_with(tmp_path, models, SLIPWAY_API_KEYS=KEY, SLIPWAY_AUTH_METRICS="false") as s:
        assert httpx.get(s.url + "/metrics").status_code == 200
        assert httpx.get(s.url + "/v1/models").status_code == 401


class Collector:
    """A loopback OTLP/HTTP trace collector: decodes what it receives with the OTLP protobufs."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                message = ExportTraceServiceRequest()
                message.ParseFromString(body)
                collector.requests.append(message)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def spans(self) -> list:
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


def test_traces_are_exported_when_an_otlp_endpoint_is_set(upstream: Upstream, tmp_path: Path) -> None:
    collector = Collector()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        models = [upstream_model("fast", upstream, "words-5-0")]
        with server_with(tmp_path, models, SLIPWAY_API_KEYS=KEY, SLIPWAY_OTLP_ENDPOINT=collector.url) as s:
            headers = {**bearer(), "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
            assert httpx.post(s.url + "/v1/chat/completions", json=chat_body(model="fast"), headers=headers).is_success
            s.stop()  # shutdown flushes the batch
    finally:
        collector.httpd.shutdown()
    spans = [span for span in collector.spans() if span.name == "POST /v1/chat/completions"]
    assert len(spans) == 1
    span = spans[0]
    assert span.trace_id.hex() == trace_id, "the caller's trace is continued"
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["http.response.status_code"].int_value == 200
    assert attributes["gen_ai.request.model"].string_value == "fast"
    assert attributes["gen_ai.usage.output_tokens"].int_value == 5
    assert attributes["slipway.key_name"].string_value.startswith("static-")
