"""Audit log hardening: detail retention under a chain of detail digests, the migration that
re-links v1 chains, and external anchors that catch a chain rewritten from the database."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cloud import migrations
from cloud.audit.anchor import (
    AnchorLogError,
    anchor_path,
    latest_anchor,
    take_anchor,
    verify_with_anchor,
)
from cloud.audit.jobs import run_audit_anchor_job
from cloud.audit.service import verify_chain
from cloud.cli import app as cli_app
from cloud.db import platform_scope
from cloud.identity.privacy import purge_expired
from cloud.identity.roles import Role
from cloud.jobs import run_periodic_jobs

# What someone with the database owner's rights would do to hide an edit: recompute every hash of
# the chain after changing a row, so the chain alone verifies again.
REWRITE_CHAIN = """
DO $$
DECLARE r record; v_prev text := repeat('0', 64); v_new text;
BEGIN
  UPDATE audit_log SET target = 'email:nobody'
    WHERE id = (SELECT min(id) FROM audit_log WHERE chain = :chain);
  FOR r IN SELECT * FROM audit_log WHERE chain = :chain ORDER BY id LOOP
    v_new := audit_digest_v2(v_prev, r.chain, r.tenant_id, r.actor_id, r.action, r.target, r.ip,
                             r.detail_sha256, r.occurred_at);
    UPDATE audit_log SET prev_hash = v_prev, hash = v_new WHERE id = r.id;
    v_prev := v_new;
  END LOOP;
END $$;
"""


def _rewrite_chain(session: Session, chain: str) -> None:
    session.execute(text(REWRITE_CHAIN.replace(":chain", f"'{chain}'")))


async def _tenant_with_trail(cloud_client: httpx.AsyncClient, make_account: Any, invites: int = 4) -> Any:
    owner = await make_account(Role.LIBRARY_OWNER)
    for i in range(invites):
        response = await cloud_client.post(
            "/api/v1/tenant/invitations", json={"email": f"staff{i}@example.com"}, headers=owner.headers
        )
        assert response.status_code == 201, response.text
    return owner


def _rows(session: Session, chain: str) -> list[Any]:
    return list(
        session.execute(
            text("SELECT id, occurred_at, detail FROM audit_log WHERE chain = :c ORDER BY id"), {"c": chain}
        ).all()
    )


async def test_retention_drops_old_details_and_the_chain_still_verifies(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, make_account: Any, owner_session: Session
) -> None:
    owner = await _tenant_with_trail(cloud_client, make_account)
    chain = str(owner.tenant_id)
    rows = _rows(owner_session, chain)
    assert len(rows) >= 5 and all(row.detail is not None for row in rows)
    cutoff_row = rows[3]
    with cloud_app.state.session_factory() as session:
        platform_scope(session)
        counts = purge_expired(
            session,
            cutoff_row.occurred_at + dt.timedelta(days=30),
            audit_detail_retention=dt.timedelta(days=30),
        )
    older = [row.id for row in rows if row.occurred_at < cutoff_row.occurred_at]
    assert counts["audit_details"] >= len(older) > 0
    after = {row.id: row.detail for row in _rows(owner_session, chain)}
    assert all(after[row_id] is None for row_id in older)
    assert all(after[row.id] is not None for row in rows if row.id not in older)
    verification = verify_chain(owner_session)
    assert verification.ok, verification.problems
    assert verification.purged_details >= len(older)
    purge_row = owner_session.execute(
        text("SELECT detail FROM audit_log WHERE action = 'audit.purge_detail' AND chain = 'platform'")
    ).scalar_one()
    assert purge_row["rows"] == counts["audit_details"]

    trail = (await cloud_client.get("/api/v1/tenant/audit?limit=1000", headers=owner.headers)).json()
    assert {entry["id"]: entry["detail"] for entry in trail}[older[0]] is None

    kept = rows[-1].id
    tampering = {
        'UPDATE audit_log SET detail = \'{"email": "x"}\' WHERE id = :purged': (older[0], "detail"),
        'UPDATE audit_log SET detail = \'{"role": "library_owner"}\' WHERE id = :kept': (kept, "detail"),
        "UPDATE audit_log SET detail_sha256 = repeat('a', 64) WHERE id = :purged": (older[0], "row hash"),
        "UPDATE audit_log SET target = 'email:x' WHERE id = :purged": (older[0], "row hash"),
        "UPDATE audit_log SET actor_id = NULL WHERE id = :kept": (kept, "row hash"),
    }
    for statement, (row_id, what) in tampering.items():
        owner_session.execute(text(statement), {"purged": older[0], "kept": kept})
        problems = verify_chain(owner_session).problems
        assert [(p.row_id, what in p.problem) for p in problems] == [(row_id, True)], statement
        owner_session.rollback()


def test_app_role_may_only_null_old_details(cloud_app: FastAPI) -> None:
    with cloud_app.state.engine.connect() as conn:
        for statement in ("UPDATE audit_log SET detail = NULL", "DELETE FROM audit_log WHERE detail IS NULL"):
            with pytest.raises(DBAPIError, match="permission denied"):
                conn.execute(text(statement))
            conn.rollback()
        with pytest.raises(DBAPIError, match="must not be in the future"):
            conn.execute(text("SELECT audit_purge_detail(now() + interval '1 day')"))
        conn.rollback()
        with pytest.raises(DBAPIError, match="permission denied"):  # the v1 writer the migration kept
            conn.execute(text("SELECT audit_append_v1(NULL, NULL, 'x', '', '', '{}')"))
        conn.rollback()
        conn.execute(text("SELECT audit_purge_detail(now())"))  # granted: the retention path


def _append_v1_rows(session: Session) -> None:
    tenant = "00000000-0000-4000-8000-000000000001"
    for i in range(3):
        session.execute(
            text("SELECT audit_append(CAST(:t AS uuid), NULL, 'staff.invite', :target, '1.2.3.4', :d)"),
            {"t": tenant, "target": f"email:s{i}@example.com", "d": json.dumps({"n": i})},
        )
        session.execute(text("SELECT audit_append(NULL, NULL, 'tenant.create', '', '', '{}')"))
    session.commit()


def test_migration_relinks_verified_v1_chains_and_refuses_broken_ones(
    database_url: str, owner_session: Session
) -> None:
    migrations.downgrade(database_url, "0950_audit_detail_digest@-1")
    _append_v1_rows(owner_session)
    old_heads = dict(
        owner_session.execute(
            text("SELECT DISTINCT ON (chain) chain, hash FROM audit_log ORDER BY chain, id DESC")
        ).all()
    )
    owner_session.commit()  # no open transaction may hold a lock the migration needs
    migrations.upgrade(database_url, "heads")
    verification = verify_chain(owner_session)
    assert verification.ok and verification.rows_checked == 7, verification.problems
    rehash = owner_session.execute(
        text("SELECT detail FROM audit_log WHERE action = 'audit.rehash'")
    ).scalar_one()
    assert rehash["previous_heads"] == old_heads
    owner_session.commit()

    migrations.downgrade(database_url, "0950_audit_detail_digest@-1")
    assert owner_session.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 7
    owner_session.execute(
        text("UPDATE audit_log SET ip = '6.6.6.6' WHERE id = (SELECT min(id) FROM audit_log)")
    )
    owner_session.commit()
    before = owner_session.execute(text("SELECT id, hash FROM audit_log ORDER BY id")).all()
    owner_session.commit()
    with pytest.raises(DBAPIError, match="fails verification"):
        migrations.upgrade(database_url, "heads")
    assert owner_session.execute(text("SELECT id, hash FROM audit_log ORDER BY id")).all() == before


async def test_anchor_catches_a_chain_rewritten_in_the_database(
    cloud_app: FastAPI,
    cloud_client: httpx.AsyncClient,
    make_account: Any,
    owner_session: Session,
    tmp_path: Path,
) -> None:
    owner = await _tenant_with_trail(cloud_client, make_account, invites=2)
    path = tmp_path / "anchors" / "audit-anchors.jsonl"
    first, delivered = take_anchor(owner_session, path)
    await _tenant_with_trail(cloud_client, make_account, invites=1)
    second, _ = take_anchor(owner_session, path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert delivered is None and lines == [first.to_json(), second.to_json()]
    assert latest_anchor(path) == second and str(owner.tenant_id) in second.heads
    assert verify_with_anchor(owner_session, path).ok

    _rewrite_chain(owner_session, str(owner.tenant_id))
    assert verify_chain(owner_session).ok  # the chain alone cannot tell
    problems = verify_with_anchor(owner_session, path).problems
    assert [(p.chain, "anchor" in p.problem) for p in problems] == [(str(owner.tenant_id), True)]
    with pytest.raises(AnchorLogError, match="not anchoring"):
        take_anchor(owner_session, path)
    owner_session.rollback()

    chain = str(owner.tenant_id)
    head_id = second.heads[chain][0]
    owner_session.execute(
        text("DELETE FROM audit_log WHERE chain = :c AND id >= :h"), {"c": chain, "h": head_id}
    )
    assert verify_chain(owner_session).ok  # a cut-off tail leaves a valid (shorter) chain
    problems = verify_with_anchor(owner_session, path).problems
    assert [(p.chain, "missing" in p.problem) for p in problems] == [(chain, True)]
    owner_session.rollback()

    with path.open("a") as handle:
        handle.write("{not json\n")
    assert [p.chain for p in verify_with_anchor(owner_session, path).problems] == ["anchor-log"]


async def test_admin_verify_route_compares_with_the_latest_anchor(
    cloud_app: FastAPI, cloud_client: httpx.AsyncClient, make_account: Any, owner_session: Session
) -> None:
    admin = await make_account(Role.SUPER_ADMIN)
    owner = await _tenant_with_trail(cloud_client, make_account, invites=1)
    assert run_audit_anchor_job(cloud_app.state) is True
    assert run_audit_anchor_job(cloud_app.state) is False  # not due again within the interval
    later = dt.datetime.now(dt.UTC) + dt.timedelta(
        minutes=cloud_app.state.settings.audit_anchor_interval_minutes
    )
    assert run_audit_anchor_job(cloud_app.state, later) is True
    path = anchor_path(cloud_app.state.settings.data_dir)
    assert len(path.read_text().splitlines()) == 2
    fine = (await cloud_client.get("/api/v1/admin/audit/verify", headers=admin.headers)).json()
    assert fine["ok"] is True and fine["purged_details"] == 0
    _rewrite_chain(owner_session, str(owner.tenant_id))
    owner_session.commit()
    rewritten = (await cloud_client.get("/api/v1/admin/audit/verify", headers=admin.headers)).json()
    assert rewritten["ok"] is False
    assert [p["chain"] for p in rewritten["problems"]] == [str(owner.tenant_id)]


class _Witness(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def witness_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Witness)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Witness.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/anchors"
    server.shutdown()
    server.server_close()


async def test_cli_anchor_posts_to_the_witness_and_verify_fails_after_a_rewrite(
    database_url: str,
    master_key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cloud_client: httpx.AsyncClient,
    make_account: Any,
    owner_session: Session,
    witness_url: str,
) -> None:
    owner = await _tenant_with_trail(cloud_client, make_account, invites=1)
    for name, value in {
        "DATABASE_URL": database_url,
        "MASTER_KEY": master_key,
        "STUDYSPOT_DATA_DIR": str(tmp_path),
        "AUDIT_ANCHOR_URL": witness_url,
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    anchored = runner.invoke(cli_app, ["audit-anchor"])
    assert anchored.exit_code == 0, anchored.output
    printed = json.loads(anchored.output)
    assert printed["witness_delivered"] is True
    line = json.loads((tmp_path / "audit-anchors.jsonl").read_text())
    assert _Witness.received == [line] and str(owner.tenant_id) in line["chains"]
    assert runner.invoke(cli_app, ["audit-verify"]).exit_code == 0

    _rewrite_chain(owner_session, str(owner.tenant_id))
    owner_session.commit()
    verified = runner.invoke(cli_app, ["audit-verify"])
    assert verified.exit_code == 1 and "external anchor" in verified.output
    refused = runner.invoke(cli_app, ["audit-anchor"])
    assert refused.exit_code == 1 and len(_Witness.received) == 1


async def test_unreachable_witness_does_not_lose_the_anchor(
    cloud_client: httpx.AsyncClient, make_account: Any, owner_session: Session, tmp_path: Path
) -> None:
    await _tenant_with_trail(cloud_client, make_account, invites=1)
    path = tmp_path / "audit-anchors.jsonl"
    with ThreadingHTTPServer(("127.0.0.1", 0), _Witness) as closed:
        url = f"http://127.0.0.1:{closed.server_address[1]}/anchors"  # closed below: refused
    anchor, delivered = take_anchor(owner_session, path, url)
    assert delivered is False and latest_anchor(path) == anchor


def _delete_and_reappend_chain(session: Session, chain: str) -> None:
    """A rewrite from the database owner that keeps every hash valid: drop the chain's rows and
    append the same entries again through `audit_append` (new ids, new times, a fresh chain)."""
    rows = session.execute(
        text(
            "SELECT tenant_id AS tenant, actor_id AS actor, action, target, ip, detail "
            "FROM audit_log WHERE chain = :c ORDER BY id"
        ),
        {"c": chain},
    ).all()
    session.execute(text("DELETE FROM audit_log WHERE chain = :c"), {"c": chain})
    for row in rows:
        session.execute(
            text("SELECT audit_append(:tenant, :actor, :action, :target, :ip, CAST(:detail AS jsonb))"),
            {**row._asdict(), "detail": json.dumps(row.detail)},
        )
    session.commit()


async def test_worker_anchors_logs_a_failure_and_the_anchor_catches_a_reappended_chain(
    cloud_app: FastAPI,
    cloud_client: httpx.AsyncClient,
    make_account: Any,
    owner_session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = await _tenant_with_trail(cloud_client, make_account, invites=2)
    chain = str(owner.tenant_id)
    path = anchor_path(cloud_app.state.settings.data_dir)
    first_id, first_ip = _rows_ip(owner_session, chain)[0]
    owner_session.execute(text("UPDATE audit_log SET ip = '6.6.6.6' WHERE id = :id"), {"id": first_id})
    owner_session.commit()

    run_periodic_jobs(cloud_app.state)  # the anchor job fails (chain broken); the worker goes on
    assert "periodic job run_audit_anchor_job failed" in caplog.text
    assert not path.exists()

    owner_session.execute(
        text("UPDATE audit_log SET ip = :ip WHERE id = :id"), {"ip": first_ip, "id": first_id}
    )
    owner_session.commit()
    run_periodic_jobs(cloud_app.state)
    anchored = latest_anchor(path)
    assert anchored is not None and anchored.heads[chain] == verify_chain(owner_session).heads[chain]
    owner_session.rollback()

    _delete_and_reappend_chain(owner_session, chain)
    assert verify_chain(owner_session).ok  # the chain alone cannot tell
    problems = verify_with_anchor(owner_session, path).problems
    assert [(p.chain, p.row_id, "missing" in p.problem) for p in problems] == [
        (chain, anchored.heads[chain][0], True)
    ]


def _rows_ip(session: Session, chain: str) -> list[tuple[int, str]]:
    query = text("SELECT id, ip FROM audit_log WHERE chain = :c ORDER BY id")
    return [(row.id, row.ip) for row in session.execute(query, {"c": chain})]
