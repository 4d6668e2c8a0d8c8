"""The in-process runner the demo uses: real uvicorn on a free port, seeded demo data."""

from __future__ import annotations

import httpx

from cloud.config import CloudSettings
from cloud.runner import start_cloud_thread
from cloud.seed import issue_demo_pass, seed_demo


def test_runner_serves_the_seeded_demo(cloud_settings: CloudSettings) -> None:
    seeded = seed_demo(cloud_settings)
    cloud = start_cloud_thread(cloud_settings, port=0)
    try:
        assert httpx.get(f"{cloud.url}/health", timeout=5).status_code == 200
        student = seeded["accounts"]["student"]
        login = httpx.post(
            f"{cloud.url}/api/v1/auth/login",
            json={"email": student["email"], "password": student["password"]},
            timeout=5,
        )
        assert login.status_code == 200
        assert issue_demo_pass(cloud_settings, seeded).startswith("SS1:")
    finally:
        cloud.stop()
    assert not cloud.thread.is_alive()
