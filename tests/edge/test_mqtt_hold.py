"""Commands the agent issues while its broker link is down are held for the reconnect."""

from __future__ import annotations

import pytest

from edge.mqtt import HELD_COMMAND_TTL, HeldCommand, MqttLink, NotConnected


async def _ignore(_: object) -> None:
    return None


def offline_link() -> MqttLink:
    return MqttLink(host="127.0.0.1", port=1, username=None, password=None, subscriptions=[], handler=_ignore)


async def test_a_held_command_keeps_the_latest_per_topic_and_events_are_not_held() -> None:
    link = offline_link()
    await link.publish("door/lock/front/command", "UNLOCK", hold=True)
    await link.publish("scanner/switch/led/command", "ON", hold=True)
    await link.publish("door/lock/front/command", "LOCK", hold=True)
    assert [(topic, held.payload) for topic, held in link.held.items()] == [
        ("scanner/switch/led/command", "ON"),
        ("door/lock/front/command", "LOCK"),
    ]
    with pytest.raises(NotConnected):
        await link.publish("studyspot/lib/events/checkin", "{}")


def test_opening_commands_go_stale_and_safe_states_never_do() -> None:
    later = HELD_COMMAND_TTL + 1
    assert HeldCommand("UNLOCK", 1, held_at=0).stale(later)
    assert HeldCommand(b"ON", 1, held_at=0).stale(later)
    assert not HeldCommand("UNLOCK", 1, held_at=0).stale(HELD_COMMAND_TTL - 1)
    assert not HeldCommand("LOCK", 1, held_at=0).stale(later * 1000)
    assert not HeldCommand(b"off", 1, held_at=0).stale(later * 1000)
