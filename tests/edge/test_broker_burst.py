"""A burst from the devices reaches the agent whole on either broker.

With an external Mosquitto the devices' publishes are acknowledged by the broker, not the agent:
if the agent falls behind, Mosquitto queues for it and, past `max_queued_messages` (1,000 by
default), silently drops. The generated mosquitto.conf raises that bound; this burst of QoS 1
readings, far beyond the default, sent by a separate process (`mosquitto_pub -l`, as fast as the
broker acknowledges), must all be counted.
"""

from __future__ import annotations

import asyncio
import sqlite3

from shared.topics import DeviceKind, device_topics
from tests.edge.conftest import RigFactory

BURST = 1_500  # beyond Mosquitto's default queue of 1,000


def _counted(path: str, device_id: str) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute("SELECT sum(count) FROM telemetry WHERE device_id = ?", [device_id]).fetchone()
    return int(row[0] or 0)


async def test_a_burst_of_qos1_readings_is_counted_whole(rig_factory: RigFactory) -> None:
    rig = await rig_factory()
    sensor = rig.devices["hall-env"]
    assert rig.agent.store is not None
    store_path = str(rig.agent.store.path)
    topic = device_topics(DeviceKind.ENV, sensor.topic_prefix)["humidity"]
    before = _counted(store_path, sensor.id)
    readings = "".join(f"{40 + n % 20}.0\n" for n in range(BURST)).encode()
    publisher = await asyncio.create_subprocess_exec(
        "mosquitto_pub", "-h", rig.host, "-p", str(rig.port), "-u", sensor.username, "-P", sensor.password,
        "-i", "burst-hall-env", "-t", topic, "-q", "1", "-l",
        stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, errors = await publisher.communicate(readings)
    assert publisher.returncode == 0, errors.decode()
    async with asyncio.timeout(60):
        while _counted(store_path, sensor.id) < before + BURST:  # noqa: ASYNC110 (another thread writes)
            await asyncio.sleep(0.05)
