"""The embedded amqtt broker refuses strangers and confines devices to their own topics."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError
from amqtt.contexts import Action

from edge.broker import (
    FLOOD_WINDOW_SECONDS,
    BrokerListen,
    ClientRateLimiter,
    CredentialAuthority,
    EmbeddedBroker,
    FloodLimit,
)
from edge.devices import enroll_device
from edge.store import Store
from tests.edge.conftest import AGENT, AGENT_PASSWORD


def client(port: int, username: str | None, password: str | None, name: str) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, username=username, password=password, identifier=name, timeout=5)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (None, None),  # anonymous
        ("nobody", "whatever"),  # unknown user
        ("dev-door-a", "wrong-password"),  # wrong password
        ("dev-door-a", None),  # username without password
        ("dev-door-a", ""),  # username with an empty password
        (AGENT, "not-the-agent-password"),
    ],
)
async def test_refuses_bad_credentials(broker, username: str | None, password: str | None) -> None:
    embedded, _ = broker
    with pytest.raises(MqttConnectError) as refused:
        async with client(embedded.bound_port(), username, password, "intruder"):
            pass
    assert str(refused.value.rc) in ("Not authorized", "Bad user name or password")


async def test_admits_device_and_agent(broker) -> None:
    embedded, devices = broker
    door = devices["door-a"]
    async with client(embedded.bound_port(), door.record.username, door.password, "door-a"):
        pass
    async with client(embedded.bound_port(), AGENT, AGENT_PASSWORD, "agent"):
        pass


async def _collect(messages: aiomqtt.client.MessagesIterator, seconds: float) -> list[str]:
    seen: list[str] = []
    try:
        async with asyncio.timeout(seconds):
            async for message in messages:
                seen.append(str(message.topic))
                if str(message.topic).endswith("/done"):
                    return seen
    except TimeoutError:
        pass
    return seen


async def test_device_publishes_only_under_its_prefix(broker) -> None:
    embedded, devices = broker
    door = devices["door-a"]
    port = embedded.bound_port()
    async with (
        client(port, AGENT, AGENT_PASSWORD, "agent") as agent,
        client(port, door.record.username, door.password, "door-a") as device,
    ):
        await agent.subscribe("#", qos=1)
        await device.publish("lib/door-b/lock/door_lock/state", "UNLOCKED", qos=1)
        await device.publish("studyspot/lib/events/checkin", "{}", qos=1)
        await device.publish("lib/door-a/lock/door_lock/state", "LOCKED", qos=1)
        await device.publish("lib/door-a/done", "x", qos=1)
        seen = await _collect(agent.messages, 5)
    assert seen == ["lib/door-a/lock/door_lock/state", "lib/door-a/done"]


async def test_device_subscribes_only_to_its_command_topics(broker) -> None:
    embedded, devices = broker
    door = devices["door-a"]
    async with client(embedded.bound_port(), door.record.username, door.password, "door-a") as device:
        own = await device.subscribe("lib/door-a/lock/door_lock/command", qos=1)
        wildcard = await device.subscribe("lib/door-a/+/+/command", qos=1)
        other = await device.subscribe("lib/door-b/lock/door_lock/command", qos=1)
        everything = await device.subscribe("#", qos=1)
        own_state = await device.subscribe("lib/door-a/lock/door_lock/state", qos=1)
    assert _granted(own) and _granted(wildcard)
    assert not _granted(other) and not _granted(everything) and not _granted(own_state)


def _granted(result: object) -> bool:
    codes = result if isinstance(result, list | tuple) else [result]
    return all(getattr(code, "value", code) in (0, 1, 2) for code in codes)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "broker.crt", directory / "broker.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certfile, keyfile


async def test_tls_listener_admits_devices_over_tls_only_with_credentials(tmp_path: Path) -> None:
    from tests.edge.conftest import free_port

    certfile, keyfile = _self_signed(tmp_path)
    store = Store(tmp_path / "edge.sqlite3")
    door = enroll_device(store, device_id="door-a", kind="door")
    tls_port = free_port()
    embedded = EmbeddedBroker(
        BrokerListen("127.0.0.1", 0, tls_port, certfile, keyfile),
        CredentialAuthority(store, AGENT, AGENT_PASSWORD),
    )
    await embedded.start()
    tls = aiomqtt.TLSParameters(ca_certs=str(certfile))
    try:
        async with aiomqtt.Client(
            "localhost",
            tls_port,
            username=door.record.username,
            password=door.password,
            tls_params=tls,
            timeout=5,
        ):
            pass
        with pytest.raises(MqttConnectError):
            async with aiomqtt.Client("localhost", tls_port, username="nobody", password="x", tls_params=tls):
                pass
    finally:
        await embedded.stop()
        store.close()


async def test_a_connecting_device_gets_no_retained_message_but_its_own_commands(broker) -> None:
    """amqtt replays retained messages of every subscription in the broker (the agent's `#`) to each
    new client; ours must not leak other devices' state to a device."""
    embedded, devices = broker
    port = embedded.bound_port()
    door_a, door_b = devices["door-a"], devices["door-b"]
    async with (
        client(port, AGENT, AGENT_PASSWORD, "agent") as agent,
        client(port, door_b.record.username, door_b.password, "door-b") as other,
    ):
        await agent.subscribe("#", qos=1)
        await other.publish("lib/door-b/lock/door_lock/state", "LOCKED", qos=1, retain=True)
        await agent.publish("lib/door-a/lock/door_lock/command", "LOCK", qos=1, retain=True)
        await _collect(agent.messages, 2)
        async with client(port, door_a.record.username, door_a.password, "door-a") as device:
            await device.subscribe("lib/door-a/lock/door_lock/command", qos=1)
            await agent.publish("lib/door-a/lock/door_lock/command", "UNLOCK", qos=1)
            seen = [(str(m.topic), m.payload) for m in await _collect_messages(device.messages, 2)]
    assert seen == [
        ("lib/door-a/lock/door_lock/command", b"LOCK"),
        ("lib/door-a/lock/door_lock/command", b"UNLOCK"),
    ]


async def test_publish_then_disconnect_at_qos0_is_delivered(broker) -> None:
    """mosquitto_pub (and a scanner waking up) sends PUBLISH and DISCONNECT back to back at QoS 0."""
    embedded, devices = broker
    door = devices["door-a"]
    port = embedded.bound_port()
    sends = 20
    async with client(port, AGENT, AGENT_PASSWORD, "agent") as agent:
        await agent.subscribe("lib/door-a/#", qos=0)
        for index in range(sends):
            process = await asyncio.create_subprocess_exec(
                "mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-u", door.record.username,
                "-P", door.password, "-q", "0", "-t", "lib/door-a/text_sensor/qr_scan/state",
                "-m", f"scan-{index}",
            )  # fmt: skip
            assert await process.wait() == 0
        received = [m.payload for m in await _collect_messages(agent.messages, sends)]
    assert sorted(received) == sorted(f"scan-{index}".encode() for index in range(sends))


async def _collect_messages(messages: AsyncIterator[aiomqtt.Message], count: int) -> list[aiomqtt.Message]:
    collected: list[aiomqtt.Message] = []
    async with asyncio.timeout(10):
        async for message in messages:
            collected.append(message)
            if len(collected) == count:
                break
    return collected


def test_topic_acl_follows_registry_changes_here_and_from_another_process(tmp_path: Path) -> None:
    """The ACL caches device lookups; a device removed or moved, by this store or by another
    connection (`studyspot edge device ...`), is judged by its new record at its next publish."""
    path = tmp_path / "edge.sqlite3"
    store = Store(path)
    enroll_device(store, device_id="door-a", kind="door", topic_prefix="lib/door-a")
    enroll_device(store, device_id="door-b", kind="door", topic_prefix="lib/door-b")
    authority = CredentialAuthority(store, AGENT, AGENT_PASSWORD)
    assert authority.allows("dev-door-a", "lib/door-a/lock/lock/state", Action.PUBLISH)
    assert authority.allows("dev-door-b", "lib/door-b/lock/lock/state", Action.PUBLISH)

    assert store.remove_device("door-a")
    assert not authority.allows("dev-door-a", "lib/door-a/lock/lock/state", Action.PUBLISH)
    assert authority.allows("dev-door-b", "lib/door-b/lock/lock/state", Action.PUBLISH)

    other = Store(path)
    other.db.execute("UPDATE devices SET topic_prefix = 'lib/moved' WHERE id = 'door-b'")
    other.close()
    assert not authority.allows("dev-door-b", "lib/door-b/lock/lock/state", Action.PUBLISH)
    assert authority.allows("dev-door-b", "lib/moved/lock/lock/state", Action.PUBLISH)
    store.close()


async def test_the_agent_gets_no_echo_of_its_own_publishes_but_other_sessions_do(broker) -> None:
    """The agent subscribes to `#` and ignores its own commands and events: the broker does not send
    them back to the session that published them (an observer with the agent's login still sees them)."""
    embedded, devices = broker
    door = devices["door-a"]
    port = embedded.bound_port()
    async with (
        client(port, AGENT, AGENT_PASSWORD, "agent") as agent,
        client(port, AGENT, AGENT_PASSWORD, "observer") as observer,
        client(port, door.record.username, door.password, "door-a") as device,
    ):
        for session in (agent, observer):
            await session.subscribe("#", qos=1)
        await device.subscribe("lib/door-a/lock/door_lock/command", qos=1)
        await agent.publish("lib/door-a/lock/door_lock/command", "UNLOCK", qos=1)
        await agent.publish("studyspot/lib/events/checkin", "{}", qos=1)
        await device.publish("lib/door-a/lock/door_lock/state", "UNLOCKED", qos=1)
        observed = [str(m.topic) for m in await _collect_messages(observer.messages, 3)]
        commanded = [m.payload for m in await _collect_messages(device.messages, 1)]
        echoed = await _collect(agent.messages, 1)
    assert observed == [
        "lib/door-a/lock/door_lock/command",
        "studyspot/lib/events/checkin",
        "lib/door-a/lock/door_lock/state",
    ]
    assert commanded == [b"UNLOCK"]
    assert echoed == ["lib/door-a/lock/door_lock/state"]


def test_flood_limiter_counts_without_a_thread_per_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    """`limits`' MemoryStorage starts a Timer thread whenever the last one ran out (~one per PUBLISH);
    ours sweeps expired counters itself, and still refuses a client over its limit."""
    limiter = ClientRateLimiter(FloodLimit(messages_per_second=5))
    started: list[object] = []
    monkeypatch.setattr(threading.Timer, "start", lambda timer: started.append(timer))
    allowed = []
    for index in range(60):
        if index % 20 == 0:
            time.sleep(0.015)  # outlive the storage's 10 ms timer, so `limits` would start another
        allowed.append(limiter.allows("dev-door-a"))
    limiter._swept_at -= FLOOD_WINDOW_SECONDS  # the next publish sweeps
    assert limiter.allows("dev-door-b")
    assert started == []
    assert allowed.count(True) == 5 * FLOOD_WINDOW_SECONDS
    assert not limiter.allows("dev-door-a")
