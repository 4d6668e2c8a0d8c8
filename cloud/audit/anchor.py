"""External anchors of the audit chains: each chain's head (row id + hash) appended as one JSON
line to a file outside the database (fsynced), and optionally POSTed to a witness URL.

The chain alone detects an edited or deleted row, but not someone with database access who
rewrites a whole chain and recomputes every hash. An anchor taken before that rewrite names a head
row whose hash then no longer matches (or that no longer exists), which `verify_with_anchor` reports.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import AnyHttpUrl
from sqlalchemy.orm import Session

from cloud.audit.service import AuditVerification, ChainProblem, verify_chain
from cloud.models_common import utcnow

log = logging.getLogger(__name__)

ANCHOR_FILE_NAME = "audit-anchors.jsonl"
_TAIL_BLOCK = 4096


@dataclass(frozen=True)
class Anchor:
    anchored_at: dt.datetime
    heads: dict[str, tuple[int, str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "anchored_at": self.anchored_at.isoformat(),
            "chains": {
                chain: {"id": row_id, "hash": digest} for chain, (row_id, digest) in self.heads.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Anchor:
        heads = {chain: (int(head["id"]), str(head["hash"])) for chain, head in data["chains"].items()}
        return cls(dt.datetime.fromisoformat(data["anchored_at"]), heads)


class AnchorLogError(Exception):
    """No anchor can be read or taken: the log's last line is not an anchor, or the chain does not
    verify (anchoring a tampered head would bless it)."""


def anchor_path(data_dir: Path) -> Path:
    return data_dir / ANCHOR_FILE_NAME


def append_anchor(path: Path, anchor: Anchor) -> None:
    """One line, one write with O_APPEND, fsynced (and the directory too when the file is new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    is_new = not path.exists()
    line = (json.dumps(anchor.to_json(), sort_keys=True, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    if is_new:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _last_line(path: Path) -> bytes:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = position = handle.tell()
        tail = b""
        while position > 0:
            position = max(0, position - _TAIL_BLOCK)
            handle.seek(position)
            tail = handle.read(end - position)
            lines = tail.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or position == 0:
                return lines[-1]
        return tail


def latest_anchor(path: Path) -> Anchor | None:
    """The newest anchor, None when nothing was anchored yet."""
    if not path.exists():
        return None
    line = _last_line(path).strip()
    if not line:
        return None
    try:
        return Anchor.from_json(json.loads(line))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AnchorLogError(f"last line of {path} is not an anchor: {exc}") from exc


def post_anchor(url: AnyHttpUrl | str, anchor: Anchor, timeout: float = 5.0) -> bool:
    """Best effort: the local file is the record; a witness that is down is logged, not fatal."""
    try:
        response = httpx.post(str(url), json=anchor.to_json(), timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError:
        log.warning("audit anchor not delivered to %s", url, exc_info=True)
        return False
    return True


def take_anchor(
    session: Session, path: Path, witness_url: AnyHttpUrl | str | None = None
) -> tuple[Anchor, bool | None]:
    """Anchor the current head of every chain (session: owner or platform scope). Returns the anchor
    and whether the witness accepted it (None when no URL is configured). Refuses to anchor a chain
    that does not verify: anchoring a tampered head would bless it."""
    result = verify_with_anchor(session, path)
    if not result.ok:
        raise AnchorLogError(f"audit chain does not verify ({len(result.problems)} problems); not anchoring")
    anchor = Anchor(utcnow(), dict(result.heads))
    append_anchor(path, anchor)
    delivered = post_anchor(witness_url, anchor) if witness_url else None
    return anchor, delivered


def verify_with_anchor(session: Session, path: Path) -> AuditVerification:
    """`verify_chain` plus the newest anchor in `path` (if any); an unreadable anchor log is a problem."""
    try:
        anchor = latest_anchor(path)
    except AnchorLogError as exc:
        result = verify_chain(session)
        result.problems.append(ChainProblem("anchor-log", 0, str(exc)))
        return result
    return verify_chain(session, anchor.heads if anchor else None)


def anchor_due(path: Path, interval: dt.timedelta, now: dt.datetime) -> bool:
    try:
        anchor = latest_anchor(path)
    except AnchorLogError:
        return True
    return anchor is None or now - anchor.anchored_at >= interval
