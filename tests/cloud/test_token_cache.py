"""The verified-token cache of TokenService: a token checked once is not checked again, but it is
still refused once it expired or once its signing key is no longer trusted."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.identity.roles import Role, permissions_of
from cloud.identity.tokens import TokenInvalid, TokenService


def _student_token(tokens: TokenService) -> str:
    return tokens.issue(uuid.uuid4(), None, Role.STUDENT, permissions_of(Role.STUDENT))


async def test_a_cached_token_is_refused_once_it_expired(cloud_app: FastAPI) -> None:
    app_tokens: TokenService = cloud_app.state.tokens
    settings = app_tokens.settings.model_copy(update={"jwt_access_ttl_seconds": 1})
    tokens = TokenService(settings, app_tokens.session_factory, app_tokens.master_key)
    token = _student_token(tokens)
    first = tokens.verify(token)
    assert tokens.verify(token) is first  # served from the cache
    await asyncio.sleep(max(0.0, first.expires_at.timestamp() - time.time()) + 0.05)
    with pytest.raises(TokenInvalid, match="expired"):
        tokens.verify(token)


async def test_a_cached_token_is_refused_once_its_key_is_gone(
    cloud_app: FastAPI, owner_session: Session
) -> None:
    tokens: TokenService = cloud_app.state.tokens
    token = _student_token(tokens)
    tokens.verify(token)
    owner_session.execute(text("DELETE FROM jwt_signing_keys"))
    owner_session.commit()
    tokens.reload()  # a new key is made; the deleted one no longer verifies anything
    with pytest.raises(TokenInvalid, match="unknown key"):
        tokens.verify(token)
    assert tokens.verify(_student_token(tokens)).role == Role.STUDENT


async def test_a_tampered_copy_of_a_cached_token_is_refused(cloud_app: FastAPI) -> None:
    tokens: TokenService = cloud_app.state.tokens
    token = _student_token(tokens)
    tokens.verify(token)
    header, payload, signature = token.split(".")
    other = "AA" if signature[-2:] != "AA" else "BA"
    with pytest.raises(TokenInvalid):
        tokens.verify(f"{header}.{payload}.{signature[:-2]}{other}")
