"""``sentencing serve``, ``sentencing keys …`` and ``sentencing audit export``.

``serve`` with nothing configured is the embedded default: on first start it builds the synthetic
demo corpus, trains and indexes into ``<home>`` (see :mod:`serve.bootstrap`), creates a demo
prosecutor key, prints it and writes it to ``<home>/demo-key.txt`` (a demo convenience, not a
production practice), then serves on http://127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from sentencing.config import Settings, load_settings

DEMO_KEY_FILE = "demo-key.txt"
DEMO_OFFICE = "演示检察院"


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="run the HTTP service (builds the demo model on first start)")
    _home_option(serve)
    serve.add_argument("--host", help="bind address (Settings.host)")
    serve.add_argument("--port", type=int, help="port (Settings.port)")
    serve.add_argument("--model-dir", type=Path, help="trained model directory (Settings.model_dir)")
    serve.add_argument("--index-dir", type=Path, help="retrieval index directory (Settings.index_dir)")
    serve.add_argument("--workers", type=int, help="server processes, one per core (Settings.workers; default 1)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(func=cmd_serve)

    keys = subparsers.add_parser("keys", help="API keys: create, list, revoke")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", help="create a key and print it (shown only this once)")
    _home_option(create)
    create.add_argument("--role", required=True, choices=["prosecutor", "integration", "admin"])
    create.add_argument("--office", help="the office (检察院) the key belongs to; decisions are scoped to it")
    create.add_argument("--label", help="a note: who or what uses the key")
    create.set_defaults(func=cmd_keys_create)
    listing = keys_sub.add_parser("list", help="list keys (never the secrets)")
    _home_option(listing)
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    _home_option(revoke)
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys_revoke)

    audit = subparsers.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    export = audit_sub.add_parser("export", help="write the audit trail as JSON lines")
    _home_option(export)
    export.add_argument("--since", type=_iso_time, help="ISO date or time (UTC if no zone), inclusive")
    export.add_argument("--output", "-o", type=Path, help="file to write (default stdout)")
    export.set_defaults(func=cmd_audit_export)


def _home_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", type=Path, help="data folder (Settings.home, LIANGXING_HOME; default ./var)")


def _iso_time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since: not an ISO date or time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    overrides = {k: v for k, v in extra.items() if v is not None}
    if getattr(args, "home", None) is not None:
        overrides["home"] = args.home
    return load_settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from serve.app import create_app
    from serve.auth import KeyRole, KeyStore, keys_path
    from serve.bootstrap import BootstrapError, ensure_default

    settings = _settings(args, host=args.host, port=args.port, model_dir=args.model_dir, index_dir=args.index_dir,
                         workers=args.workers)
    # The embedded default only when nothing is configured: a configured store/model/index is never touched.
    embedded = (settings.store is None and settings.model_dir is None and settings.index_dir is None
                and settings.registry is None)
    if embedded:
        try:
            ensure_default(settings, log=lambda m: print(m, file=sys.stderr))
        except BootstrapError as exc:
            print(f"sentencing serve: {exc}", file=sys.stderr)
            return 1
        demo_key = Path(settings.home) / DEMO_KEY_FILE
        if not demo_key.exists():
            raw, _ = KeyStore(keys_path(settings)).create(
                KeyRole.PROSECUTOR, office=DEMO_OFFICE, label="demo key created by `sentencing serve`"
            )
            fd = os.open(demo_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(raw + "\n")
            print(f"Demo prosecutor key (a demo convenience; also in {demo_key}):\n  {raw}", file=sys.stderr)
        else:
            print(f"Demo prosecutor key: see {demo_key}", file=sys.stderr)
    from serve.server import server_options

    options = server_options()
    if settings.workers > 1:
        _start_workers(settings)
        print(f"Serving on http://{settings.host}:{settings.port} with {settings.workers} worker processes "
              "(API docs: /docs)", file=sys.stderr)
        from serve.supervisor import reuse_port_supported, run_workers

        app = {"app": "serve.app:create_app_from_env", "factory": True, "log_level": args.log_level,
               "access_log": False, **options}
        if not reuse_port_supported():  # uvicorn's workers on one shared socket (serve.supervisor says why not)
            uvicorn.run(workers=settings.workers, host=settings.host, port=settings.port, **app)
            return 0
        try:
            return run_workers(settings.workers, settings.host, settings.port, app)
        except OSError as exc:
            print(f"sentencing serve: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
            return 1
    print(f"Serving on http://{settings.host}:{settings.port}  (API docs: /docs)", file=sys.stderr)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=args.log_level,
                access_log=False, **options)
    return 0


def _start_workers(settings: Settings) -> None:
    """Hand the settings to the worker processes (they read the environment) and point them all at
    the configured bundle: a reload published by an earlier run does not outlive it."""
    from serve.app import configured_dirs
    from serve.recommender import BundleError
    from serve.workers import SERVING_FILE, ServingPointer

    for name in ("home", "store", "model_dir", "index_dir", "registry", "workers"):
        value = getattr(settings, name)
        if value is not None:
            os.environ[f"LIANGXING_{name.upper()}"] = str(value)
    pointer = ServingPointer(Path(settings.home) / SERVING_FILE)
    try:
        pointer.publish(*configured_dirs(settings))
    except BundleError:
        pointer.path.unlink(missing_ok=True)  # each worker reports the problem on /readyz


def cmd_keys_create(args: argparse.Namespace) -> int:
    from serve.auth import KeyStore, keys_path

    settings = _settings(args)
    raw, record = KeyStore(keys_path(settings)).create(args.role, office=args.office, label=args.label)
    print(raw)
    print(f"key id {record.key_id}, role {record.role.value}, office {record.office or '-'}: store it now, "
          "it is not shown again", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from serve.auth import KeyStore, keys_path

    settings = _settings(args)
    for r in KeyStore(keys_path(settings)).list():
        state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
        print(f"{r.key_id}\t{r.role.value}\t{r.office or '-'}\t{r.created_at}\t{state}\t{r.label or ''}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from serve.auth import KeyStore, UnknownKey, keys_path

    settings = _settings(args)
    try:
        record = KeyStore(keys_path(settings)).revoke(args.key_id)
    except UnknownKey as exc:
        print(f"sentencing keys revoke: {exc.args[0]}", file=sys.stderr)
        return 2
    print(f"revoked {record.key_id} at {record.revoked_at}")
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    from serve.audit import AuditLog, audit_path

    settings = _settings(args)
    path = audit_path(settings)
    if not path.is_file():
        print(f"sentencing audit export: no audit trail at {path}", file=sys.stderr)
        return 2
    log = AuditLog(path)
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    try:
        for event in log.events(args.since):
            out.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
    finally:
        if args.output:
            out.close()
        log.close()
    return 0
