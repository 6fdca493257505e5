"""Prometheus metrics of one app: requests and latency by route and status, reloads, model version.

Each app owns its registry (tests build several apps in one process). The middleware is plain
ASGI, not ``BaseHTTPMiddleware``, so it costs microseconds per request, and labels by the route
template (``/v1/cases/{case_id}``) so that paths with ids do not explode the label set.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "liangxing_http_requests", "HTTP requests by route, method and status", ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "liangxing_http_request_duration_seconds", "HTTP request latency by route", ("route", "method"),
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.reloads = Counter(
            "liangxing_model_reloads",
            "model reloads by outcome (ok, refused; followed, follow_failed: one another worker published)",
            ("outcome",), registry=self.registry,
        )
        self.model_info = Gauge(
            "liangxing_model_info", "the model bundle serving now (value 1)", ("model_version", "ruleset_version"),
            registry=self.registry,
        )
        self.model_loaded_at = Gauge(
            "liangxing_model_loaded_timestamp_seconds", "when the serving bundle was loaded", registry=self.registry
        )
        self.recommendations = Counter(
            "liangxing_defendant_recommendations", "per-defendant recommendations computed", registry=self.registry
        )

    def set_model(self, model_version: str, ruleset_version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(model_version, ruleset_version).set(1)
        self.model_loaded_at.set_to_current_time()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return path
    if scope.get("path", "").startswith("/static/"):
        return "/static"
    return "unmatched"


class MetricsMiddleware:
    """Counts every response (including 401/413/429 produced further in) and times it."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_label(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - start)
