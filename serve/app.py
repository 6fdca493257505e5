"""The HTTP service: ``create_app(settings)`` builds the FastAPI app.

Every error is a JSON ``{"error": {code, message, fields}}`` with a 4xx naming the field and the
problem; a 500 would be a bug. Keys, rate limits and the audit trail wrap every ``/v1`` route;
``/healthz``, ``/readyz`` and ``/metrics`` are open for probes and scrapers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retrieval.index import set_search_threads
from sentencing.config import Settings, load_settings
from serve import recommender as rec
from serve.audit import AuditEvent, AuditLog, audit_path
from serve.auth import (
    KeyRole,
    KeyStore,
    Principal,
    RateLimiter,
    keys_path,
    raw_key_from_headers,
    retry_after_header,
)
from serve.charges import charge_out, tier_errors
from serve.metrics import CONTENT_TYPE, MetricsMiddleware, ServiceMetrics
from serve.schemas import (
    API_VERSION,
    BatchItem,
    BatchRequest,
    BatchResponse,
    CaseInput,
    CaseView,
    ChargeOut,
    DecisionRequest,
    DecisionResponse,
    ErrorBody,
    ErrorResponse,
    FieldError,
    HealthResponse,
    ReadyResponse,
    RecommendationResponse,
    ReloadRequest,
    ReloadResponse,
    SimilarCasesRequest,
    SimilarCasesResponse,
)
from serve.workers import RATE_LIMIT_FILE, SERVING_FILE, FollowReloads, ServingPointer, SharedRateLimiter

log = logging.getLogger("liangxing.serve")
STATIC_DIR = Path(__file__).parent / "static"


class ApiError(Exception):
    """An error the API reports as it is: status, machine code, message and the fields concerned."""

    def __init__(self, status: int, code: str, message: str, fields: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []
        self.headers = headers


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if len(parts) > 1 else parts
    return ".".join(parts) or "body"


def field_errors(errors: list[dict[str, Any]], prefix: str = "") -> list[FieldError]:
    out = []
    for e in errors:
        field = _field_path(tuple(e.get("loc", ())))
        message = str(e.get("msg", "invalid"))
        if e.get("type") == "json_invalid":
            field, message = "body", f"malformed JSON: {e.get('ctx', {}).get('error', message)}"
        out.append(FieldError(field=f"{prefix}{field}" if prefix else field, message=message))
    return out


def _error_response(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorResponse(error=body).model_dump(mode="json"), status_code=status, headers=headers)


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
                 429: "rate_limited", 503: "not_ready"}


class BodyLimitMiddleware:
    """413 before parsing: a declared Content-Length over the limit is refused unread, and a streamed
    body is cut off as soon as it passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = ErrorBody(code="payload_too_large", message=f"request body exceeds {self.max_bytes} bytes",
                         fields=[FieldError(field="body", message=f"larger than {self.max_bytes} bytes")])
        await _error_response(413, body, {"Connection": "close"})(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._too_large(scope, receive, send)


class _BodyTooLarge(StarletteHTTPException):
    """Raised from the body stream; an HTTPException so that FastAPI's body parser passes it on."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body exceeds {max_bytes} bytes")


def configured_dirs(settings: Settings) -> tuple[Path, Path]:
    """The model and index to serve: the registry's CURRENT version when a registry is configured."""
    if settings.registry is not None and settings.model_dir is None:
        from training.registry import ModelRegistry, RegistryError

        registry = ModelRegistry(settings.registry)
        try:
            model_dir = registry.model_dir()
            index_dir = registry.index_dir() or settings.index_path
        except RegistryError as exc:
            raise rec.BundleError(f"registry {str(settings.registry)!r}: {exc}") from exc
        return model_dir, settings.index_dir or index_dir
    return settings.model_path, settings.index_path


class Service:
    """What the routes share: settings, keys, rate limiter, audit trail, metrics and the bundle.

    With several worker processes (``settings.workers``) the rate limits and the served bundle are
    shared through files in the home folder (:mod:`serve.workers`).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeyStore(keys_path(settings))
        self.audit = AuditLog(audit_path(settings))
        self.metrics = ServiceMetrics()
        self.holder = rec.BundleHolder()
        self._store: Any = None
        self.pointer: ServingPointer | None = None
        self.follower: FollowReloads | None = None
        if settings.workers > 1:
            home = Path(settings.home)
            self.limiter: RateLimiter | SharedRateLimiter = SharedRateLimiter(
                home / RATE_LIMIT_FILE, settings.rate_limit_per_minute, settings.rate_limit_burst)
            self.pointer = ServingPointer(home / SERVING_FILE)
            self.follower = FollowReloads(self.pointer, self.holder.reload, self._followed)
        else:
            self.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)

    def configured_dirs(self) -> tuple[Path, Path]:
        return configured_dirs(self.settings)

    def load_initial_bundle(self) -> None:
        try:
            dirs = self.pointer.changed() if self.pointer is not None else None
            bundle, _ = self.holder.reload(*(dirs or self.configured_dirs()))
        except rec.BundleError as exc:
            self.holder.last_error = str(exc)
            log.warning("no model bundle loaded: %s", exc)
            return
        self.metrics.set_model(bundle.model_version, bundle.ruleset_version)

    def _followed(self, ok: bool, model_dir: Path, index_dir: Path, error: str | None) -> None:
        """A reload another worker published, done (or refused) here."""
        self.metrics.reloads.labels("followed" if ok else "follow_failed").inc()
        bundle = self.holder.bundle
        if ok and bundle is not None:
            self.metrics.set_model(bundle.model_version, bundle.ruleset_version)

    def published(self, model_dir: Path, index_dir: Path) -> None:
        """This worker reloaded: the other workers follow."""
        if self.pointer is not None:
            self.pointer.publish(model_dir, index_dir)

    def current(self) -> rec.Bundle | None:
        """The bundle in service now (after checking whether another worker published a new one)."""
        if self.follower is not None:
            self.follower.poll()
        return self.holder.bundle

    def bundle(self) -> rec.Bundle:
        bundle = self.current()
        if bundle is None:
            raise ApiError(503, "not_ready", f"no model bundle is loaded: {self.holder.last_error or 'not yet'}")
        return bundle

    @property
    def store(self) -> Any:
        if self._store is None:
            from sentencing.store import CaseStore

            path = self.settings.store_path
            if not Path(path).is_file():
                raise ApiError(503, "not_ready", f"the case store {str(path)!r} does not exist")
            self._store = CaseStore(path)
        return self._store


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")


def _service(request: Request) -> Service:
    return request.app.state.service


def authenticated(
    request: Request,
    authorization: Annotated[Any, Depends(_bearer)] = None,
    x_api_key: Annotated[str | None, Depends(_api_key_header)] = None,
) -> Principal:
    """The caller's key, checked, and a token taken from its rate limit. Sync, so in the thread pool:
    with several workers the limit is a SQLite write that may wait for another worker's."""
    service = _service(request)
    raw = raw_key_from_headers(request.headers.get("authorization"), x_api_key)
    if raw is None:
        raise ApiError(401, "unauthorized", "an API key is required: 'Authorization: Bearer <key>' or 'X-API-Key'",
                       headers={"WWW-Authenticate": "Bearer"})
    principal = service.keys.verify(raw)
    if principal is None:
        raise ApiError(401, "unauthorized", "the API key is not valid or has been revoked",
                       headers={"WWW-Authenticate": "Bearer"})
    wait = service.limiter.take(principal.key_id)
    if wait > 0:
        raise ApiError(429, "rate_limited", f"rate limit of {service.settings.rate_limit_per_minute}/minute "
                       "exceeded for this key", headers={"Retry-After": retry_after_header(wait)})
    return principal


def require(*roles: KeyRole):
    async def check(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        # async: a comparison, which as a sync dependency would cost a thread-pool round trip
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise ApiError(403, "forbidden", f"this needs a key with role {allowed}; yours is {principal.role.value}")
        return principal

    return check


AnyKey = Annotated[Principal, Depends(require(KeyRole.PROSECUTOR, KeyRole.INTEGRATION, KeyRole.ADMIN))]
DecisionKey = Annotated[Principal, Depends(require(KeyRole.PROSECUTOR, KeyRole.INTEGRATION))]
AdminKey = Annotated[Principal, Depends(require(KeyRole.ADMIN))]

_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse} for s in (401, 403, 422, 429, 413, 503)
}


def _check_defendants(service: Service, case: CaseInput, prefix: str = "") -> None:
    limit = service.settings.max_defendants
    if len(case.defendants) > limit:
        raise ApiError(422, "validation_error", f"too many defendants: {len(case.defendants)} > {limit}",
                       [FieldError(field=f"{prefix}defendants", message=f"at most {limit} defendants per case")])
    if any(d.tiers for d in case.defendants):  # a stated tier must be one of its charge's in the served rule set
        if errors := tier_errors(service.bundle().predictor.catalogue, case):
            raise ApiError(422, "validation_error", "; ".join(f"{f}: {m}" for f, m in errors[:5]),
                           [FieldError(field=prefix + f, message=m) for f, m in errors])


def _recommend(service: Service, principal: Principal, case: CaseInput) -> RecommendationResponse:
    bundle = service.bundle()  # read once: a reload during this request does not affect it
    request_id = uuid.uuid4().hex
    response = rec.recommend(bundle, case, request_id, k=service.settings.similar_cases)
    service.audit.append(
        AuditEvent.RECOMMENDATION, principal, request_id=request_id, input_hash=rec.input_hash(case),
        model_version=bundle.model_version, ruleset_version=bundle.ruleset_version,
        outputs=rec.audit_summary(response),
    )
    service.metrics.recommendations.inc(len(response.defendants))
    return response


def _json(body: Any) -> Response:
    """A response model serialised once: returned as a model, FastAPI would dump it, validate the
    dump against the same model and dump it again (a third of the cost of a recommendation's JSON)."""
    return Response(body.model_dump_json(), media_type="application/json")


def create_app(settings: Settings | None = None, *, load_model: bool = True) -> FastAPI:
    """The app; with ``load_model`` the bundle at Settings.model_path/index_path is loaded on startup."""
    settings = settings or load_settings()
    set_search_threads(settings.retrieval_search_threads)
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # the thread pool of this event loop, where sync endpoints and dependencies run
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        if load_model and service.holder.bundle is None:
            await run_in_threadpool(service.load_initial_bundle)
        yield
        service.audit.close()

    app = FastAPI(
        title="liangxing 量刑",
        version=API_VERSION,
        description="Per-defendant sentencing recommendations (量刑建议) with the guideline arithmetic, a learned "
        "range and similar judgments. Every /v1 route needs an API key.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.state.service = service
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    _install_error_handlers(app)
    _install_pages(app)

    @app.get("/healthz", response_model=HealthResponse, tags=["ops"])
    async def healthz() -> HealthResponse:
        return HealthResponse()

    @app.get("/readyz", response_model=ReadyResponse, tags=["ops"], responses={503: {"model": ReadyResponse}})
    async def readyz() -> Response:
        bundle = service.current()
        if bundle is None:
            body = ReadyResponse(ready=False, reason=service.holder.last_error or "no model bundle loaded yet")
            return JSONResponse(body.model_dump(mode="json"), status_code=503)
        body = ReadyResponse(ready=True, model_version=bundle.model_version, ruleset_version=bundle.ruleset_version,
                             index_size=bundle.index_size, loaded_at=bundle.loaded_at)
        return JSONResponse(body.model_dump(mode="json"))

    @app.get("/metrics", tags=["ops"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    async def metrics() -> Response:
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.post("/v1/recommendations", response_model=RecommendationResponse, tags=["recommendations"])
    def recommend(case: CaseInput, principal: AnyKey) -> Response:
        """One case → a recommendation per defendant (range, form, guideline steps, similar cases)."""
        _check_defendants(service, case)
        return _json(_recommend(service, principal, case))

    @app.post("/v1/recommendations/batch", response_model=BatchResponse, tags=["recommendations"])
    def recommend_batch(batch: BatchRequest, principal: AnyKey) -> Response:
        """Several cases; each item succeeds or fails on its own (``ok`` and ``error`` per item)."""
        if len(batch.cases) > settings.max_batch:
            raise ApiError(422, "validation_error", f"too many cases: {len(batch.cases)} > {settings.max_batch}",
                           [FieldError(field="cases", message=f"at most {settings.max_batch} cases per batch")])
        service.bundle()
        items: list[BatchItem] = []
        for i, raw in enumerate(batch.cases):
            try:
                case = CaseInput.model_validate(raw)
                _check_defendants(service, case, prefix=f"cases.{i}.")
                items.append(BatchItem(index=i, ok=True, result=_recommend(service, principal, case)))
            except ValidationError as exc:
                body = ErrorBody(code="validation_error", message=f"case {i} is not valid",
                                 fields=field_errors(exc.errors(), prefix=f"cases.{i}."))
                items.append(BatchItem(index=i, ok=False, error=body))
            except ApiError as exc:
                items.append(BatchItem(index=i, ok=False,
                                       error=ErrorBody(code=exc.code, message=exc.message, fields=exc.fields)))
        return _json(BatchResponse(items=items))

    @app.post("/v1/similar-cases", response_model=SimilarCasesResponse, tags=["retrieval"])
    def similar_cases(body: SimilarCasesRequest, principal: AnyKey) -> Response:
        """Similar judgments for one defendant of a case, and the comparable cohort's statistics."""
        _check_defendants(service, body.case, prefix="case.")
        bundle = service.bundle()
        names = [d.name for d in body.case.defendants]
        name = body.defendant or names[0]
        if name not in names:
            raise ApiError(422, "validation_error", f"no defendant named {name!r} in the case",
                           [FieldError(field="defendant", message=f"must be one of {names}")])
        return _json(rec.similar(bundle, body.case, name, k=body.k, scope=body.province_scope))

    @app.get("/v1/charges/{name}", response_model=ChargeOut, tags=["catalogue"],
             responses={404: {"model": ErrorResponse}})
    def get_charge(name: str, principal: AnyKey) -> ChargeOut:
        """A charge of the served rule set and its statutory tiers (法定刑幅度): the labels ``tiers`` takes."""
        if len(name) > 60:
            raise ApiError(422, "validation_error", "charge name too long",
                           [FieldError(field="name", message="at most 60 characters")])
        charge = charge_out(service.bundle().predictor.catalogue, name)
        if charge is None:
            raise ApiError(404, "not_found", f"no charge {name!r} in the rule set")
        return charge

    @app.get("/v1/cases/{case_id}", response_model=CaseView, tags=["cases"])
    def get_case(case_id: str, principal: AnyKey) -> CaseView:
        """A stored judgment, party names masked (张三 → 张某)."""
        if len(case_id) > 200:
            raise ApiError(422, "validation_error", "case id too long",
                           [FieldError(field="case_id", message="at most 200 characters")])
        case = service.store.get(case_id)
        if case is None:
            raise ApiError(404, "not_found", f"no case {case_id!r} in the case store")
        return rec.case_view(case)

    @app.post("/v1/recommendations/{request_id}/decision", response_model=DecisionResponse, tags=["decisions"])
    def decide(request_id: str, body: DecisionRequest, principal: DecisionKey) -> DecisionResponse:
        """Record the prosecutor's final recommendation; a departure from the recommended range or form needs
        a ``reason``. Another office's request ids answer 404."""
        record = service.audit.recommendation(request_id) if len(request_id) <= 64 else None
        if record is None or not _same_office(record.office, record.key_id, principal):
            raise ApiError(404, "not_found", f"no recommendation {request_id!r} for your office")
        assert record.outputs is not None
        decision = rec.assess_decision(record.outputs, body)
        if decision.departure and not (body.reason and body.reason.strip()):
            raise ApiError(422, "validation_error",
                           f"the decision departs from the recommendation ({decision.departure}): a reason is required",
                           [FieldError(field="reason", message="required for a departure")])
        stored = service.audit.append(
            AuditEvent.DECISION, principal, request_id=request_id, input_hash=record.input_hash,
            model_version=record.model_version, ruleset_version=record.ruleset_version,
            decision={"defendant": body.defendant, "sentence": body.sentence.model_dump(mode="json"),
                      "sentence_text": decision.sentence_text, "departure": decision.departure},
            override_reason=body.reason,
        )
        return DecisionResponse(request_id=request_id, defendant=body.defendant, sentence_text=decision.sentence_text,
                                departs_from_recommendation=decision.departure is not None,
                                departure=decision.departure, recorded_at=stored.at)

    @app.post("/v1/admin/reload", response_model=ReloadResponse, tags=["admin"],
              responses={409: {"model": ErrorResponse}})
    async def reload(principal: AdminKey, body: ReloadRequest | None = None) -> ReloadResponse:
        """Switch to another model/index directory atomically; a broken one is refused (409) and the old
        bundle keeps serving."""
        body = body or ReloadRequest()
        current = service.holder.bundle
        start = time.perf_counter()
        model_dir = index_dir = settings.registry  # named in the audit if resolving the registry fails
        try:
            if settings.registry is not None and not (body.model_dir or body.index_dir):
                model_dir, index_dir = service.configured_dirs()  # what the registry serves now
            else:
                model_dir = Path(body.model_dir) if body.model_dir else (
                    current.model_dir if current else settings.model_path)
                index_dir = Path(body.index_dir) if body.index_dir else (
                    current.index_dir if current else settings.index_path)
            new, previous = await run_in_threadpool(service.holder.reload, model_dir, index_dir)
        except rec.BundleError as exc:
            service.metrics.reloads.labels("refused").inc()
            service.audit.append(AuditEvent.RELOAD, principal, outputs={"refused": str(exc),
                                 "model_dir": str(model_dir), "index_dir": str(index_dir)})
            raise ApiError(409, "reload_refused", f"reload refused, still serving the previous bundle: {exc}") from exc
        await run_in_threadpool(service.published, model_dir, index_dir)
        seconds = time.perf_counter() - start
        service.metrics.reloads.labels("ok").inc()
        service.metrics.set_model(new.model_version, new.ruleset_version)
        service.audit.append(AuditEvent.RELOAD, principal, model_version=new.model_version,
                             ruleset_version=new.ruleset_version,
                             outputs={"model_dir": str(model_dir), "index_dir": str(index_dir),
                                      "previous_model_version": previous.model_version if previous else None})
        return ReloadResponse(model_version=new.model_version, ruleset_version=new.ruleset_version,
                              model_dir=str(model_dir), index_dir=str(index_dir),
                              previous_model_version=previous.model_version if previous else None, seconds=seconds)

    @app.get("/v1/admin/audit", tags=["admin"], response_class=StreamingResponse,
             responses={200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines"}})
    def audit_export(principal: AdminKey,
                     since: Annotated[dt.datetime | None, Query(description="ISO time, inclusive")] = None
                     ) -> StreamingResponse:
        """The audit trail as JSON lines, oldest first."""

        def lines() -> Iterator[bytes]:
            for event in service.audit.events(since):
                yield (json.dumps(event.to_json(), ensure_ascii=False) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


def create_app_from_env() -> FastAPI:
    """The app of one worker of ``sentencing serve --workers N`` (settings from the environment)."""
    return create_app(load_settings())


def _same_office(office: str | None, key_id: str | None, principal: Principal) -> bool:
    """Decisions stay within an office; keys without an office see only their own requests."""
    if office is None or principal.office is None:
        return key_id == principal.key_id
    return office == principal.office


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc.status, ErrorBody(code=exc.code, message=exc.message, fields=exc.fields),
                               exc.headers)

    @app.exception_handler(rec.QueryError)
    async def query_error(request: Request, exc: rec.QueryError) -> JSONResponse:
        return _error_response(422, ErrorBody(code="validation_error", message=exc.message,
                                              fields=[FieldError(field=exc.field, message=exc.message)]))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = field_errors(list(exc.errors()))
        message = "; ".join(f"{f.field}: {f.message}" for f in fields[:5]) or "invalid request"
        return _error_response(422, ErrorBody(code="validation_error", message=message, fields=fields))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        return _error_response(exc.status_code, ErrorBody(code=code, message=str(exc.detail)),
                               getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error_response(500, ErrorBody(code="internal_error", message="internal error; it has been logged"))


def _install_pages(app: FastAPI) -> None:
    import swagger_ui_bundle

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        # Everything the page loads comes from this server; the policy makes a stray CDN link fail loudly.
        headers = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' "
                   "'unsafe-inline'; frame-ancestors 'none'", "X-Content-Type-Options": "nosniff"}
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=headers)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="liangxing API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")
