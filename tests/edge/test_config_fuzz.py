"""Any config file either loads or fails with a ConfigError that names the problem; never a crash.

Three kinds of input: arbitrary bytes, arbitrary text, and the shipped example with one line's value
replaced by an arbitrary TOML value (the realistic typo: a wrong type, range or shape for one key).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import ConfigError, EdgeConfig, load_config, parse_config

EXAMPLE = (Path(__file__).resolve().parents[2] / "edge" / "example-config.toml").read_text(encoding="utf-8")
ASSIGNMENT_LINES = [
    number for number, line in enumerate(EXAMPLE.splitlines()) if "=" in line and not line.startswith("#")
]
TOML_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.booleans().map(lambda flag: str(flag).lower()),
    st.text(max_size=40).map(lambda text: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.just("[]"),
    st.just("{}"),
    st.just('"' + "x" * 5000 + '"'),
)


def _outcome(text: str) -> EdgeConfig | ConfigError:
    try:
        return parse_config(text, "fuzz.toml")
    except ConfigError as error:
        assert str(error), "a ConfigError must say what is wrong"
        return error


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_on_disk_load_or_fail_with_a_config_error(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "edge.toml"
        path.write_bytes(raw)
        try:
            load_config(path)
        except ConfigError as error:
            assert str(error)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=400))
def test_arbitrary_text_parses_or_fails_with_a_config_error(text: str) -> None:
    _outcome(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.sampled_from(ASSIGNMENT_LINES), value=TOML_VALUES)
def test_one_bad_value_in_the_example_is_named_in_the_error(line: int, value: str) -> None:
    lines = EXAMPLE.splitlines()
    key = lines[line].split("=", 1)[0].strip()
    lines[line] = f"{key} = {value}"
    outcome = _outcome("\n".join(lines))
    if isinstance(outcome, ConfigError):
        assert key in str(outcome) or "line" in str(outcome), str(outcome)


def test_a_time_zone_too_long_for_a_file_name_is_a_config_error() -> None:
    """hypothesis found it: zoneinfo raised OSError (file name too long), not a ConfigError."""
    lines = [
        f'timezone = "{"x" * 5000}"' if line.startswith("timezone") else line for line in EXAMPLE.splitlines()
    ]
    outcome = _outcome("\n".join(lines))
    assert isinstance(outcome, ConfigError) and "timezone" in str(outcome)
