"""Benchmark harness: runs every `bench/bench_*.py`, prints a table and rewrites bench/RESULTS.md.

Each benchmark module exposes `run() -> list[BenchResult]`. Figures are medians and 99th percentiles
of repeated measurements; the machine and date are recorded with them so runs can be compared.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "RESULTS.md"


@dataclass(frozen=True)
class BenchResult:
    figure: str
    median: float
    p99: float
    unit: str
    goal: str = ""


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def measure(fn: Callable[[], object], n: int, warmup: int = 10) -> tuple[float, float]:
    """Call `fn` n times; return (median, p99) seconds per call."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), percentile(samples, 0.99)


def summarize(samples: list[float]) -> tuple[float, float]:
    """(median, p99) of already collected samples."""
    return statistics.median(samples), percentile(samples, 0.99)


def cpu_seconds(*pids: int) -> float:
    """User + system CPU time the processes have used so far (another process's: a cloud worker's,
    the agent's), to report CPU per operation next to its latency."""
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def _format_number(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def render_table(rows: Iterable[tuple[str, BenchResult]], machine: str, date: str) -> str:
    lines = [
        "| benchmark | figure | median | p99 | unit | goal | machine | date |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for module, result in rows:
        lines.append(
            f"| {module} | {result.figure} | {_format_number(result.median)} | "
            f"{_format_number(result.p99)} | {result.unit} | {result.goal} | {machine} | {date} |"
        )
    return "\n".join(lines)


def discover(selected: list[str]) -> list[str]:
    names = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    return names


def main(argv: list[str]) -> int:
    machine = machine_description()
    load_before = os.getloadavg()[0]
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows: list[tuple[str, BenchResult]] = []
    failures: list[str] = []
    for name in discover(argv):
        print(f"running {name} ...", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            results = module.run()
        except Exception as exc:  # a broken benchmark must not hide the others
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"  FAILED: {exc}", flush=True)
            continue
        rows.extend((name.removeprefix("bench_"), r) for r in results)
    table = render_table(rows, machine, date)
    print(table)
    body = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench.harness`). Median and p99 over repeated runs;",
        "rates are derived from per-operation times. Re-run on the same machine to compare.",
        "",
        f"Machine: {machine}  ",
        f"Date: {date}  ",
        f"Load average (1 min) when the run started: {load_before:.2f} — other work on the machine "
        "inflates latencies and deflates rates; compare runs made at a similar load.",
        "",
        table,
        "",
    ]
    if failures:
        body += ["## Failed benchmarks", "", *[f"- {f}" for f in failures], ""]
    if not argv:
        RESULTS_FILE.write_text("\n".join(body))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
