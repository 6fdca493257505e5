"""The service's envelope over real HTTP: keys and roles, rate limits, bad input, CORS, metrics, audit.

These need no trained model: the app starts without a bundle (``/readyz`` says why), which is
itself a state the service must handle.
"""

from __future__ import annotations

import io
import json
import sqlite3
from contextlib import redirect_stdout
from pathlib import Path

import httpx
import pytest

from sentencing.cli import main as cli_main
from sentencing.config import Settings
from serve.app import create_app
from serve.audit import AuditEvent, AuditLog
from serve.auth import KeyRole, KeyStore, Principal, RateLimiter
from serve.masking import mask_name, mask_text
from serve.server import BackgroundServer

CASE = {"facts": "被告人张三盗窃他人手机一部，价值人民币4000元。",
        "defendants": [{"name": "张三", "charges": ["盗窃"]}]}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("service-home")
    settings = Settings(home=home, max_defendants=50, max_body_bytes=200_000, rate_limit_per_minute=6000,
                        rate_limit_burst=1000)
    app = create_app(settings)
    keys = app.state.service.keys
    raw = {role: keys.create(role, office="鼓楼区人民检察院")[0] for role in KeyRole}
    with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, raw, app


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_health_open_and_ready_false_without_bundle(service) -> None:
    client, keys, _ = service
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["ready"] is False and ready.json()["reason"]
    res = client.post("/v1/recommendations", json=CASE, headers=_auth(keys[KeyRole.PROSECUTOR]))
    assert res.status_code == 503
    assert res.json()["error"]["code"] == "not_ready"


def test_keys_required_and_roles_enforced(service) -> None:
    client, keys, _ = service
    res = client.post("/v1/recommendations", json=CASE)
    assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer"
    assert client.post("/v1/recommendations", json=CASE, headers=_auth("lx_nothere_secret")).status_code == 401
    assert client.post("/v1/recommendations", json=CASE, headers=_auth("garbage")).status_code == 401
    # X-API-Key works as well as Bearer; a wrong role is 403, not 401.
    admin_only = client.post("/v1/admin/reload", json={}, headers={"X-API-Key": keys[KeyRole.PROSECUTOR]})
    assert admin_only.status_code == 403
    assert "admin" in admin_only.json()["error"]["message"]
    assert client.get("/v1/admin/audit", headers=_auth(keys[KeyRole.INTEGRATION])).status_code == 403
    decision = {"defendant": "张三", "sentence": {"kind": "fixed_term", "months": 8}}
    as_admin = client.post("/v1/recommendations/abc/decision", json=decision, headers=_auth(keys[KeyRole.ADMIN]))
    assert as_admin.status_code == 403
    unknown = client.post("/v1/recommendations/abc/decision", json=decision, headers=_auth(keys[KeyRole.PROSECUTOR]))
    assert unknown.status_code == 404
    assert client.get("/v1/admin/audit", headers=_auth(keys[KeyRole.ADMIN])).status_code == 200


def test_revoked_key_is_refused(service) -> None:
    client, _, app = service
    store: KeyStore = app.state.service.keys
    raw, record = store.create(KeyRole.INTEGRATION, office="x")
    assert client.get("/v1/admin/audit", headers=_auth(raw)).status_code == 403  # valid key, wrong role
    store.revoke(record.key_id)
    assert client.get("/v1/admin/audit", headers=_auth(raw)).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"facts": "x", "defendants": [', "body"),
        (json.dumps({"facts": 12, "defendants": [{"name": "张三", "charges": ["盗窃"]}]}).encode(), "facts"),
        (json.dumps({"facts": "   ", "defendants": [{"name": "张三", "charges": ["盗窃"]}]}).encode(), "facts"),
        (json.dumps({"facts": "案情", "defendants": [{"name": "张三", "charges": "盗窃"}]}).encode(),
         "defendants.0.charges"),
        (json.dumps({"facts": "案情", "defendants": []}).encode(), "defendants"),
        (json.dumps({"facts": "案情\x00", "defendants": [{"name": "张三", "charges": ["盗窃"]}]}).encode(), "facts"),
        (json.dumps({"facts": "案情", "defendants": [{"name": "张\x07三", "charges": ["盗窃"]}]}).encode(),
         "defendants.0.name"),
        (json.dumps({"facts": "案情", "province": "火星",
                     "defendants": [{"name": "张三", "charges": ["盗窃"]}]}).encode(),
         "province"),
        (json.dumps({"facts": "案情", "defendants": [{"name": "张三", "charges": ["盗窃"], "circumstances": ["bribe"]}]}
                    ).encode(), "defendants.0.circumstances.0"),
        (json.dumps({"facts": "案情", "defendants": [{"name": "张三", "charges": ["盗窃"]}], "verdict": "x"}).encode(),
         "verdict"),
        (json.dumps({"facts": "案情", "defendants": [{"name": "张三", "charges": ["盗窃"]}, {"name": "张三",
                     "charges": ["盗窃"]}]}).encode(), "defendants"),
    ],
    ids=["malformed-json", "wrong-type", "empty-facts", "charges-not-list", "no-defendants", "nul-in-facts",
         "bell-in-name", "unknown-province", "unknown-circumstance", "unknown-field", "duplicate-defendant"],
)
def test_bad_input_is_422_naming_the_field(service, body: bytes, field: str) -> None:
    client, keys, _ = service
    res = client.post("/v1/recommendations", content=body,
                      headers={**_auth(keys[KeyRole.PROSECUTOR]), "Content-Type": "application/json"})
    assert res.status_code == 422, res.text
    error = res.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]], error


def test_too_many_defendants_is_422(service) -> None:
    client, keys, _ = service
    case = {"facts": "案情", "defendants": [{"name": f"被告人{i}", "charges": ["盗窃"]} for i in range(500)]}
    res = client.post("/v1/recommendations", json=case, headers=_auth(keys[KeyRole.PROSECUTOR]))
    assert res.status_code == 422
    assert res.json()["error"]["fields"][0]["field"] == "defendants"
    assert "50" in res.json()["error"]["message"]


def test_large_body_is_413_before_parsing(service) -> None:
    client, keys, _ = service
    body = b'{"facts": "' + b"a" * 10_000_000 + b'"}'
    res = client.post("/v1/recommendations", content=body,
                      headers={**_auth(keys[KeyRole.PROSECUTOR]), "Content-Type": "application/json"})
    assert res.status_code == 413
    assert res.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit applies while the body streams in
        for _ in range(100):
            yield b"a" * 100_000

    res = client.post("/v1/recommendations", content=chunks(),
                      headers={**_auth(keys[KeyRole.PROSECUTOR]), "Content-Type": "application/json"})
    assert res.status_code == 413


def test_batch_limits(service) -> None:
    client, keys, app = service
    too_many = {"cases": [CASE] * (app.state.service.settings.max_batch + 1)}
    res = client.post("/v1/recommendations/batch", json=too_many, headers=_auth(keys[KeyRole.INTEGRATION]))
    assert res.status_code == 422 and res.json()["error"]["fields"][0]["field"] == "cases"
    assert client.post("/v1/recommendations/batch", json={"cases": []},
                       headers=_auth(keys[KeyRole.INTEGRATION])).status_code == 422


def test_cors_closed_by_default(service) -> None:
    client, _, _ = service
    res = client.options("/v1/recommendations", headers={"Origin": "https://evil.example",
                                                          "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in res.headers


def test_cors_open_for_configured_origin(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, cors_origins=["https://case.example"]), load_model=False)
    with BackgroundServer(app) as url:
        res = httpx.options(f"{url}/v1/recommendations", headers={"Origin": "https://case.example",
                                                                  "Access-Control-Request-Method": "POST"})
        assert res.headers["access-control-allow-origin"] == "https://case.example"
        other = httpx.options(f"{url}/v1/recommendations", headers={"Origin": "https://evil.example",
                                                                    "Access-Control-Request-Method": "POST"})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


def test_rate_limit_429_with_retry_after(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, rate_limit_per_minute=6, rate_limit_burst=2), load_model=False)
    raw, _ = app.state.service.keys.create(KeyRole.ADMIN)
    with BackgroundServer(app) as url:
        statuses = [httpx.get(f"{url}/v1/admin/audit", headers=_auth(raw)).status_code for _ in range(3)]
        assert statuses[:2] == [200, 200]
        assert statuses[2] == 429
        res = httpx.get(f"{url}/v1/admin/audit", headers=_auth(raw))
        assert res.status_code == 429 and int(res.headers["retry-after"]) >= 1


def test_rate_limiter_refills_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=1, clock=lambda: now[0])
    assert limiter.take("k") == 0
    assert limiter.take("k") == pytest.approx(1.0)
    now[0] = 1.0
    assert limiter.take("k") == 0
    assert limiter.take("other") == 0  # buckets are per key


def test_metrics_by_route_and_status(service) -> None:
    client, _, _ = service
    client.get("/healthz")
    client.post("/v1/recommendations", json=CASE)  # 401
    text = client.get("/metrics").text
    assert 'liangxing_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/v1/recommendations",status="401"' in text
    assert "liangxing_http_request_duration_seconds_bucket" in text
    assert "liangxing_model_reloads_total" in text or "liangxing_model_reloads" in text


def test_pages_and_docs_are_local(service) -> None:
    client, _, _ = service
    page = client.get("/")
    assert page.status_code == 200 and '<meta charset="utf-8">' in page.text
    docs = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/v1/recommendations"]
    static = Path(__file__).resolve().parents[1] / "serve" / "static"
    for asset in static.iterdir():
        text = asset.read_text(encoding="utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, asset


def test_audit_is_append_only_and_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    who = Principal("k1", KeyRole.PROSECUTOR, "鼓楼区人民检察院")
    log.append(AuditEvent.RECOMMENDATION, who, request_id="r1", input_hash="h", model_version="m1",
               ruleset_version="r", outputs={"defendants": []})
    log.append(AuditEvent.DECISION, who, request_id="r1", decision={"defendant": "张三"}, override_reason="理由")
    log.close()
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit_events SET office = 'other'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit_events")
    conn.close()
    reopened = AuditLog(path)
    events = list(reopened.events())
    assert [e.event for e in events] == [AuditEvent.RECOMMENDATION, AuditEvent.DECISION]
    assert events[1].override_reason == "理由" and events[0].office == "鼓楼区人民检察院"
    assert reopened.recommendation("r1").model_version == "m1"
    source = (Path(__file__).resolve().parents[1] / "serve" / "audit.py").read_text()
    statements = [line for line in source.splitlines() if "execute" in line]
    assert not any("UPDATE " in s or "DELETE " in s for s in statements)


def test_keys_and_audit_commands(tmp_path: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        args = ["keys", "create", "--role", "admin", "--office", "鼓楼区人民检察院", "--home", str(tmp_path)]
        assert cli_main(args) == 0
    raw = out.getvalue().strip()
    assert raw.startswith("lx_")
    store = KeyStore(tmp_path / "keys.sqlite")
    principal = store.verify(raw)
    assert principal is not None and principal.role is KeyRole.ADMIN
    stored = sqlite3.connect(tmp_path / "keys.sqlite").execute("SELECT digest, salt FROM api_keys").fetchone()
    assert raw.split("_", 2)[2].encode() not in stored[0] + stored[1]  # only a salted hash is kept
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["keys", "list", "--home", str(tmp_path)]) == 0
    assert principal.key_id in out.getvalue() and raw not in out.getvalue()
    with redirect_stdout(io.StringIO()):
        assert cli_main(["keys", "revoke", principal.key_id, "--home", str(tmp_path)]) == 0
        assert cli_main(["keys", "revoke", "nosuchkey", "--home", str(tmp_path)]) == 2
    assert store.verify(raw) is None

    log = AuditLog(tmp_path / "audit.sqlite")
    log.append(AuditEvent.RELOAD, principal, outputs={"model_dir": "m"})
    log.close()
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["audit", "export", "--home", str(tmp_path)]) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["event"] == "reload" and lines[0]["key_id"] == principal.key_id
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["audit", "export", "--since", "2999-01-01", "--home", str(tmp_path)]) == 0
    assert out.getvalue() == ""


def test_party_names_masked() -> None:
    assert mask_name("张三") == "张某"
    assert mask_name("欧阳明华") == "欧阳某"
    assert mask_name("张某某") == "张某某"
    assert mask_text("被告人张三伙同李四盗窃，张三望风。", ["张三", "李四"]) == "被告人张某伙同李某盗窃，张某望风。"


def test_bootstrap_never_loses_what_is_there(tmp_path: Path) -> None:
    from serve.bootstrap import BootstrapError, ensure_default

    settings = Settings(home=tmp_path)
    settings.store_path.write_bytes(b"not a sqlite file")  # an existing store the build cannot read
    (settings.index_path).mkdir()
    (settings.index_path / "part").write_text("half an index")
    with pytest.raises(BootstrapError, match="failed"):
        ensure_default(settings)
    assert settings.store_path.read_bytes() == b"not a sqlite file"  # untouched
    aside = list(tmp_path.glob("index.incomplete-*"))
    assert len(aside) == 1 and (aside[0] / "part").read_text() == "half an index"
    assert not settings.model_path.exists() and not settings.index_path.exists()
    assert not list(tmp_path.glob(".bootstrap-*"))


@pytest.mark.parametrize(("file", "field", "old"), [
    ("manifest.json", "ruleset_version", "liangxing-guideline-1999.1.1"),
    ("feature_spec.json", "version", "0"),
])
def test_bootstrap_rebuilds_a_default_this_code_cannot_serve(tmp_path: Path, file: str, field: str, old: str) -> None:
    """An upgrade that changes the rule set or the feature spec: the embedded default is built again, not left
    unloadable (a service that never gets ready), and the old one is set aside, not deleted."""
    import hashlib

    from serve.bootstrap import ensure_default
    from training.predictor import RangePredictor
    from training.train import TrainConfig

    settings = Settings(home=tmp_path, demo_cases=120, retrieval_epochs=0)
    small = TrainConfig(n_estimators=10, calibration_folds=2)
    assert ensure_default(settings, train_config=small)
    assert not ensure_default(settings, train_config=small)  # built, current: nothing to do
    store = hashlib.sha256(settings.store_path.read_bytes()).hexdigest()
    path = settings.model_path / file
    written = json.loads(path.read_text(encoding="utf-8"))
    current = written[field]
    path.write_text(json.dumps({**written, field: old}), encoding="utf-8")
    messages: list[str] = []
    assert ensure_default(settings, messages.append, train_config=small)
    assert any("cannot serve" in m and old in m for m in messages), messages
    assert json.loads(path.read_text(encoding="utf-8"))[field] == current
    RangePredictor.load(settings.model_path)
    (old_model,) = tmp_path.glob("model.stale-*")
    assert json.loads((old_model / file).read_text(encoding="utf-8"))[field] == old  # set aside, not deleted
    assert len(list(tmp_path.glob("index.stale-*"))) == 1
    assert hashlib.sha256(settings.store_path.read_bytes()).hexdigest() == store  # the store is kept as it was
    assert not ensure_default(settings, train_config=small)  # and now it serves


def test_every_warning_code_is_documented_for_integrators() -> None:
    """A case-management system switches on ``warnings[].code``: each code the guideline or the service
    emits is in serve.schemas.WARNING_CODES (the OpenAPI description of WarningOut.code), and no other."""
    import re

    from serve.schemas import WARNING_CODES, WarningOut

    root = Path(__file__).resolve().parents[1]
    guideline = (root / "sentencing" / "guideline.py").read_text(encoding="utf-8")
    service = (root / "serve" / "defendant_warnings.py").read_text(encoding="utf-8")
    made = r'(?:_warn\(\s*warnings,|warnings\.append\(|_warning =|\[)\s*\(\s*"([a-z_]+)",'  # (code, field, message)
    emitted = set(re.findall(made, guideline))
    emitted |= set(re.findall(r'WarningOut\(code="([a-z_]+)"', service))
    assert {"missing_quantity", "unknown_tier", "tier_undetermined", "model"} <= emitted  # the scan finds them
    assert emitted == set(WARNING_CODES)
    assert all(code in WarningOut.model_fields["code"].description for code in WARNING_CODES)
