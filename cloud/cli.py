"""`studyspot cloud ...`: serve, worker, migrate, audit-verify, audit-anchor, rotate-jwt-key,
purge-expired, seed-demo."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="StudySpot cloud service.", no_args_is_help=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(
        1, min=1, max=64, help="API processes, each on its own SO_REUSEPORT socket (> 1 needs REDIS_URL)."
    ),
    log_level: str = typer.Option("info", help="uvicorn's log level: critical, error, warning, info, debug."),
    seed_demo: bool = typer.Option(False, "--seed-demo", help="Create the demo tenant first."),
) -> None:
    """Run the API with uvicorn (embedded PostgreSQL when DATABASE_URL is unset)."""
    from cloud.bootstrap import ensure_database
    from cloud.config import CloudSettings
    from cloud.serving import serve_one, serve_workers

    settings = CloudSettings()
    if workers > 1 and not settings.redis_url:
        # live events, replay nonces, rate limits and caches would each stay inside one worker
        raise typer.BadParameter("more than one worker needs REDIS_URL", param_hint="--workers")
    settings, pg = ensure_database(settings)
    try:
        if seed_demo:
            from cloud.seed import seed_demo as run_seed

            typer.echo(json.dumps(run_seed(settings), indent=2))
        if workers == 1:
            serve_one(settings, host, port, log_level)
        else:
            serve_workers(settings, host, port, workers, log_level)
    finally:
        if pg is not None:
            pg.stop()


@app.command()
def worker(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit."),
    batch_size: int = typer.Option(20, min=1, max=500, help="Rows claimed per transaction."),
) -> None:
    """Deliver queued notifications and run the booking jobs each minute; stops on SIGINT/SIGTERM."""
    import asyncio

    from cloud.bootstrap import ensure_database
    from cloud.config import CloudSettings
    from cloud.notifications.worker import serve as serve_worker

    settings, pg = ensure_database(CloudSettings())
    try:
        asyncio.run(serve_worker(settings, once=once, batch_size=batch_size))
    finally:
        if pg is not None:
            pg.stop()


@app.command()
def migrate() -> None:
    """Apply every migration (embedded PostgreSQL when DATABASE_URL is unset)."""
    from cloud.bootstrap import ensure_database
    from cloud.config import CloudSettings

    _, pg = ensure_database(CloudSettings())
    if pg is not None:
        pg.stop()
    typer.echo("migrations applied")


@app.command("audit-verify")
def audit_verify() -> None:
    """Check the hash chain of the audit log against the latest external anchor; exit 1 when a row
    was edited or deleted or a chain no longer holds its anchored head."""
    from cloud.audit.anchor import anchor_path, verify_with_anchor
    from cloud.bootstrap import ensure_database
    from cloud.config import CloudSettings
    from cloud.db import make_engine, make_session_factory, owner_url

    settings, pg = ensure_database(CloudSettings(), migrate=False)
    engine = make_engine(owner_url(settings), pool_size=1)
    try:
        with make_session_factory(engine)() as session:
            result = verify_with_anchor(session, anchor_path(settings.data_dir))
    finally:
        engine.dispose()
        if pg is not None:
            pg.stop()
    typer.echo(
        f"checked {result.rows_checked} rows in {result.chains} chains "
        f"({result.purged_details} details purged by retention)"
    )
    for problem in result.problems:
        typer.echo(f"  chain {problem.chain} row {problem.row_id}: {problem.problem}")
    raise typer.Exit(0 if result.ok else 1)


@app.command("audit-anchor")
def audit_anchor() -> None:
    """Append every audit chain's head to <data dir>/audit-anchors.jsonl (and POST it to
    AUDIT_ANCHOR_URL when set); exit 1 when the chain does not verify (nothing is anchored)."""
    from cloud.audit.anchor import AnchorLogError, anchor_path, take_anchor
    from cloud.bootstrap import ensure_database
    from cloud.config import CloudSettings
    from cloud.db import make_engine, make_session_factory, owner_url

    settings, pg = ensure_database(CloudSettings(), migrate=False)
    engine = make_engine(owner_url(settings), pool_size=1)
    path = anchor_path(settings.data_dir)
    try:
        with make_session_factory(engine)() as session:
            anchor, delivered = take_anchor(session, path, settings.audit_anchor_url)
    except AnchorLogError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
        if pg is not None:
            pg.stop()
    typer.echo(json.dumps({"file": str(path), "witness_delivered": delivered, **anchor.to_json()}))


@app.command("rotate-jwt-key")
def rotate_jwt_key() -> None:
    """Start signing access tokens with a new key; old tokens stay valid until they expire."""
    from cloud import crypto
    from cloud.bootstrap import ensure_database
    from cloud.config import CloudSettings
    from cloud.db import make_engine, make_session_factory, owner_url
    from cloud.identity.tokens import rotate_signing_key

    settings, pg = ensure_database(CloudSettings(), migrate=False)
    engine = make_engine(owner_url(settings), pool_size=1)
    try:
        with make_session_factory(engine)() as session, session.begin():
            kid = rotate_signing_key(session, crypto.load_master_key(settings))
    finally:
        engine.dispose()
        if pg is not None:
            pg.stop()
    typer.echo(f"new signing key {kid}")


@app.command("purge-expired")
def purge_expired_command() -> None:
    """Retention job: delete long-expired refresh tokens, OTP codes and stale invitations; drop the
    detail of audit rows older than AUDIT_DETAIL_RETENTION_DAYS."""
    import datetime as dt

    from cloud.bootstrap import ensure_database
    from cloud.config import CloudSettings
    from cloud.db import app_url, make_engine, make_session_factory, platform_scope
    from cloud.identity.privacy import purge_expired

    settings, pg = ensure_database(CloudSettings())
    engine = make_engine(app_url(settings), pool_size=1)
    try:
        with make_session_factory(engine)() as session:
            platform_scope(session)
            retention = dt.timedelta(days=settings.audit_detail_retention_days)
            counts = purge_expired(session, audit_detail_retention=retention)
    finally:
        engine.dispose()
        if pg is not None:
            pg.stop()
    typer.echo(json.dumps(counts))


@app.command("seed-demo")
def seed_demo_command() -> None:
    """Create the demo tenant, library, seats and accounts; print them as JSON."""
    from cloud.bootstrap import ensure_database
    from cloud.config import CloudSettings
    from cloud.seed import seed_demo

    settings, pg = ensure_database(CloudSettings())
    try:
        typer.echo(json.dumps(seed_demo(settings), indent=2))
    finally:
        if pg is not None:
            pg.stop()
