"""The environment and energy panels: numbers plus geometry for inline SVG charts (the desk has no
internet, so no charting library is fetched; the page draws polylines and bars from these)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from edge.kiosk.seatmap import day_bounds
from edge.store import Store, iso

CHART_WIDTH, CHART_HEIGHT = 288, 72
MAX_CHART_POINTS = 288  # one per 5 minutes of a day at most
ENV_METRICS = ("co2", "temperature")
UNITS = {"co2": "ppm", "temperature": "°C"}
DAY_SECONDS = 24 * 3600


def day_chart(samples: list[tuple[float, float]]) -> str:
    """SVG polyline points for (fraction of the day 0..1, value) samples: x by time of day, y scaled
    between the lowest and highest value (empty when fewer than 2 samples)."""
    if len(samples) < 2:
        return ""
    step = max(1, -(-len(samples) // MAX_CHART_POINTS))  # ceiling: never more than MAX_CHART_POINTS
    sampled = samples[::step]
    values = [value for _, value in sampled]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return " ".join(
        f"{fraction * CHART_WIDTH:.1f},{CHART_HEIGHT - (value - low) * CHART_HEIGHT / span:.1f}"
        for fraction, value in sampled
    )


def environment_panel(store: Store, zone: ZoneInfo, now: datetime) -> list[dict[str, Any]]:
    """Per sensor and metric: today's per-minute averages as a chart, the latest reading, the range."""
    midnight, _ = day_bounds(now, zone)
    sensors = store.db.query("SELECT id FROM devices WHERE kind = 'env' ORDER BY id")
    panel = []
    for sensor in sensors:
        for metric in ENV_METRICS:
            rows = list(
                store.db.query(
                    "SELECT minute, total, count, last FROM telemetry WHERE device_id = ? AND metric = ?"
                    " AND minute >= ? ORDER BY minute",
                    [sensor["id"], metric, iso(midnight)],
                )
            )
            samples = [
                ((datetime.fromisoformat(row["minute"]) - midnight).total_seconds() / DAY_SECONDS,
                 row["total"] / row["count"])
                for row in rows
                if row["count"]
            ]  # fmt: skip
            values = [value for _, value in samples]
            panel.append(
                {
                    "device_id": sensor["id"],
                    "metric": metric,
                    "unit": UNITS[metric],
                    "latest": rows[-1]["last"] if rows else None,
                    "points": day_chart(samples),
                    "low": min(values) if values else None,
                    "high": max(values) if values else None,
                }
            )
    return panel


def energy_panel(store: Store, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    """kWh so far today and all of yesterday, per energy meter and in total, with bar lengths."""
    today_start, _ = day_bounds(now, zone)
    yesterday_start, _ = day_bounds(now, zone, days_back=1)
    meters = [
        {
            "id": row["id"],
            "today_kwh": round(
                store.energy_since(row["id"], today_start, until=now + timedelta(minutes=1)), 2
            ),
            "yesterday_kwh": round(store.energy_since(row["id"], yesterday_start, until=today_start), 2),
        }
        for row in store.db.query("SELECT id FROM devices WHERE kind = 'energy' ORDER BY id")
    ]
    today = round(sum(meter["today_kwh"] for meter in meters), 2)
    yesterday = round(sum(meter["yesterday_kwh"] for meter in meters), 2)
    scale = max(today, yesterday) or 1.0
    return {
        "meters": meters,
        "today_kwh": today,
        "yesterday_kwh": yesterday,
        "today_bar": round(today / scale * CHART_WIDTH, 1),
        "yesterday_bar": round(yesterday / scale * CHART_WIDTH, 1),
    }
