"""The benchmark: the standard workload through the whole graph, and the figures it gives.

    python bench/run.py                      # 20 clients x 90 days into PostgreSQL
    python bench/run.py --smoke              # 2 clients x 5 days: every figure, no target

Prints, from one run: (1) the end-to-end backfill, (2) the floor (the bare loop with
orjson) and the ratio of the two, (3) one Dagster run per partition against one ranged run,
(4) the current-week cache refresh over 30 and 365 days of history, (5) dashboard read
latency, (6) peak memory, (8) calls per stored row when Meta refuses big result pages.
Writes the figures as JSON and a Markdown table to --out. It runs by hand, never as a
timed test: the figures depend on the machine. The targets hold for the standard workload;
a smoke run (`--smoke`) only shows that every figure is produced, so it judges none.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from calls import calls_per_row
from floor import run_floor
from profile_top import SAMPLES_PER_SECOND
from workload import SandboxProcess, Workload

from metrics_pipeline.cli.main import RANGED_RUN_EVENT_SETTINGS
from metrics_pipeline.meta.resource import DEFAULT_API_VERSION
from metrics_pipeline.sandbox.ecb_rates import FEED_PATH

ROOT = Path(__file__).parents[1]
TOKEN = "sandbox-access-token"  # noqa: S105 - the bundled sandbox's own, not a credential
API_VERSION = DEFAULT_API_VERSION
COLLECTION_STAGE = "meta_insights + daily_kpi_data"

# The sizes of the standard workload, and of a smoke run (`--smoke`): a toy workload whose
# fixed costs (process start, one run per layer) dwarf its rows, so no target is judged on it.
STANDARD = {
    "clients": 20, "days": 90, "sample_days": 30, "reads": 1000, "cache_history": (30, 365),
    "repeat": 3,
}  # fmt: skip
SMOKE = {
    "clients": 2, "days": 5, "sample_days": 2, "reads": 50, "cache_history": (3, 10), "repeat": 1,
}  # fmt: skip
TARGETS = {
    "backfill_over_floor_orjson": ("<=", 1.2),
    "per_partition_over_range": (">=", 10.0),
    "cache_refresh_ratio": ("<=", 1.2),
    "cache_read_p99_ms": ("<", 5.0),
    "daily_read_p99_ms": ("<", 50.0),
    "peak_rss_mib": ("<", 512.0),
    "scaling_per_day_ratio": ("<=", 1.1),  # and >= 0.9: see _verdicts
    "scaling_peak_rss_mib": ("<", 512.0),
    "client_scaling_ratio": ("<=", 1.1),  # and >= 0.9: see _verdicts
    "scaling_collection_per_day_ratio": ("<=", 1.1),  # and >= 0.9
    "client_scaling_collection_ratio": ("<=", 1.1),  # and >= 0.9
}
# Ratios that must stay within 10 % either way (a linear cost).
FLAT = (
    "scaling_per_day_ratio",
    "client_scaling_ratio",
    "scaling_collection_per_day_ratio",
    "client_scaling_collection_ratio",
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _drop_database(admin_url: str, name: str) -> None:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _fresh_database(admin_url: str, name: str) -> str:
    _drop_database(admin_url, name)
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _schema_url(url: str, schema: str) -> str:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    engine.dispose()
    return f"{url}?options=-csearch_path%3D{schema}"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User and system CPU a running process has used so far (`/proc/PID/stat`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def postgres_cpu_seconds() -> float:
    """CPU used so far by the local PostgreSQL server: its live processes, and the backends
    that ended (counted in the postmaster's children's time). Other databases' work on the
    same server counts too: run the bench alone. Told by the executable's name, not the
    command line, which the bench's own `--postgres-url` would match."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while being read
            continue
        total += sum(int(f) for f in fields[11:15]) / CLOCK_TICKS
    return total


class CpuShares:
    """The CPU the sandbox (Meta's side) and PostgreSQL use while a block runs: where a
    second of the backfill or of the floor went, since both share the machine's cores."""

    def __init__(self, sandbox_pid: int) -> None:
        self._sandbox_pid = sandbox_pid
        self.seconds: dict[str, float] = {}

    def __enter__(self) -> CpuShares:
        self._began = (cpu_seconds(self._sandbox_pid), postgres_cpu_seconds(), time.process_time())
        return self

    def __exit__(self, *exc: object) -> None:
        sandbox, postgres, own = self._began
        self.seconds = {
            "sandbox": round(cpu_seconds(self._sandbox_pid) - sandbox, 2),
            "postgres": round(postgres_cpu_seconds() - postgres, 2),
            "bench_process": round(time.process_time() - own, 2),
        }


def storage_figures(url: str) -> dict[str, float]:
    """Of Dagster's database at `url`: the connections opened to it since it was created, by
    PostgreSQL's own count (the one this query opens included), and the size of its event
    log in MiB (table, indexes and out-of-line values)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            sessions = connection.execute(
                sa.text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            ).scalar()
            size = connection.execute(
                sa.text("SELECT pg_total_relation_size('event_logs')")
            ).scalar()
    finally:
        engine.dispose()
    return {"sessions": int(sessions or 0), "event_log_mib": round((size or 0) / 2**20, 1)}


def step_seconds(env: dict[str, str]) -> list[tuple[str, float]]:
    """Each step of the backfill's runs and its wall time, from Dagster's own step stats,
    in the order the runs ran."""
    os.environ.update(env)
    from dagster import DagsterInstance

    instance = DagsterInstance.get()
    steps = []
    for run in reversed(instance.get_runs()):
        for stat in sorted(instance.get_run_step_stats(run.run_id), key=lambda s: s.start_time):
            if stat.start_time is not None and stat.end_time is not None:
                steps.append((stat.step_key, round(stat.end_time - stat.start_time, 2)))
    return steps


class _PeakRss:
    """The high-water RSS of a process (`VmHWM`), read every 0.1 s while it runs. Not the
    child's `ru_maxrss`: a forked child starts with its parent's high-water mark, so every
    backfill after the bench process itself grew would report the bench's size."""

    def __init__(self, pid: int) -> None:
        self.mib = 0.0
        self._path = Path(f"/proc/{pid}/status")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            try:
                line = next(x for x in self._path.read_text().splitlines() if x.startswith("VmHWM"))
            except (OSError, StopIteration):  # gone, or a zombie without memory
                return
            self.mib = max(self.mib, int(line.split()[1]) / 1024)
            self._done.wait(0.1)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def backfill(
    env: dict[str, str], start: date, end: date, profile: Path | None = None, wall: bool = False
) -> dict:
    """`metrics-pipeline materialize` as a user runs it: wall time, stages, peak RSS. With
    `profile`, under py-spy (installed by hand: a measuring tool, not a dependency), whose
    samples land there (raw, collapsed stacks); its peak RSS is then py-spy's own. `wall`
    samples waiting threads too (py-spy's --idle): where the time goes, not only the CPU."""
    command = [
        sys.executable, "-m", "metrics_pipeline.cli.main", "materialize",
        "--start", str(start), "--end", str(end),
    ]  # fmt: skip
    if profile is not None:
        spy = Path(sys.executable).with_name("py-spy")
        command = [str(spy), "record", "--subprocesses", "--format", "raw",
                   "--rate", str(SAMPLES_PER_SECOND), "--nonblocking",
                   *(["--idle"] if wall else []), "-o", str(profile), "--", *command]  # fmt: skip
    began = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = _PeakRss(process.pid)
    stages, output = [], []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line.rstrip())
        if ": " in line and not line.startswith(("checks:", "note:", "Dagster")):
            stages.append((round(time.perf_counter() - began, 2), line.split(":")[0]))
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    peak.stop()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the backfill failed:\n" + "\n".join(output[-40:]))
    return {
        "seconds": round(wall, 2),
        "stage_starts": stages,
        "peak_rss_mib": round(peak.mib, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "output_tail": output[-3:],
    }


def _in_process(env: dict[str, str]):
    """Definitions and instance of the bench's environment, in this process."""
    os.environ.update(env)
    from dagster import BetaWarning, DagsterInstance, PreviewWarning

    for category in (BetaWarning, PreviewWarning):
        warnings.filterwarnings("ignore", category=category)

    from metrics_pipeline.catalog import build_catalog
    from metrics_pipeline.definitions import build_definitions, default_resources

    catalog = build_catalog()
    # As in production: the runs read their settings from this process's environment.
    return catalog, build_definitions(catalog, default_resources()), DagsterInstance.get()


def per_partition_vs_range(env: dict[str, str], workload: Workload, days: list[date]) -> dict:
    """The collection layer for the same partitions of the first client: one run each, then
    one ranged run, which reads from a sandbox of its own (the first one has computed those
    days already)."""
    from metrics_pipeline.runner import RAW_AND_DAILY, run_stage

    client_id = workload.client_ids()[0]
    _, defs, instance = _in_process(env)
    runs = []
    for day in days:
        key = f"{client_id}|{day}"
        began = time.perf_counter()
        outcome = run_stage(defs, instance, "per partition", RAW_AND_DAILY, key, key, {}, "ERROR")
        runs.append(time.perf_counter() - began)
        assert outcome.success, outcome.errors
    first, last = f"{client_id}|{days[0]}", f"{client_id}|{days[-1]}"
    anchor = datetime.fromisoformat(env["METRICS_AS_OF"])
    with SandboxProcess(workload, anchor.date(), anchor) as sandbox_url:
        os.environ.update(_sandbox_urls(sandbox_url))  # the runs read their settings here
        try:
            began = time.perf_counter()
            outcome = run_stage(defs, instance, "range", RAW_AND_DAILY, first, last, {}, "ERROR")
            ranged = time.perf_counter() - began
        finally:
            os.environ.update(_sandbox_urls(env["META_API_BASE_URL"]))
    assert outcome.success, outcome.errors
    return {
        "sample_partitions": len(days),
        "sample_per_partition_seconds": round(sum(runs), 2),
        "sample_range_seconds": round(ranged, 2),
        "sample_per_partition_over_range": round(sum(runs) / ranged, 1),
        "per_partition_run_median_seconds": round(statistics.median(runs), 3),
    }


def _stage_seconds(stage_starts: list[tuple[float, str]], total: float, name: str) -> float:
    """How long one stage of the backfill took, from the times the stages started."""
    ends = [began for began, _ in stage_starts[1:]] + [total]
    for (began, stage), ended in zip(stage_starts, ends, strict=True):
        if stage == name:
            return ended - began
    raise KeyError(name)


def timed_backfill(
    env: dict[str, str], workload: Workload, now: datetime, start: date, end: date,
    profile: Path | None, wall: bool = False,
) -> dict:  # fmt: skip
    """`backfill` against a sandbox of its own (the sandbox keeps what it computed, so a
    run after another on the same sandbox would be served from the first one's work), with
    the sandbox's and PostgreSQL's CPU, the stored rows and Dagster's step times."""
    sandbox = SandboxProcess(workload, now.date(), now)
    with sandbox as sandbox_url:
        env = {**env, **_sandbox_urls(sandbox_url)}
        with CpuShares(sandbox.pid) as shares:
            result = backfill(env, start, end, profile, wall)
    engine = sa.create_engine(env["METRICS_WAREHOUSE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT count(*) FROM meta_insights")).scalar()
    engine.dispose()
    return {
        **result,
        "cpu": shares.seconds,
        "insight_rows": rows,
        "steps": step_seconds(env),
        "dagster_storage": storage_figures(env["DAGSTER_PG_URL"]),
    }


def timed_floor(
    workload: Workload, now: datetime, floor_url: str, start: date, end: date, fast_json: bool
) -> dict:
    """The floor against a sandbox of its own: its time, rows and CPU shares."""
    sandbox = SandboxProcess(workload, now.date(), now)
    accounts = [spec.account_id for spec in workload.accounts()]
    with sandbox as sandbox_url:
        began = time.perf_counter()
        with CpuShares(sandbox.pid) as shares:
            rows = run_floor(
                sandbox_url, API_VERSION, TOKEN, floor_url, accounts, start, end, fast_json
            )
        seconds = round(time.perf_counter() - began, 2)
    return {"seconds": seconds, "rows": rows, "cpu": shares.seconds}


def _cpu_figures(run: dict) -> list[float]:
    """CPU seconds of a `timed_backfill`: the backfill's own process, the sandbox, PostgreSQL."""
    return [run["cpu_seconds"], run["cpu"]["sandbox"], run["cpu"]["postgres"]]


def _median_run(runs: list[dict]) -> dict:
    """The run whose time is the median (the lower middle one of an even count)."""
    return sorted(runs, key=lambda run: run["seconds"])[(len(runs) - 1) // 2]


def _collection_ms(result: dict, client_days: int) -> float:
    """The collection stage's wall time (raw insights, daily KPIs and their checks: the
    work that grows with clients x days) per client-day, without the backfill's fixed
    costs (process start, ad objects, one run per later layer)."""
    seconds = _stage_seconds(result["stage_starts"], result["seconds"], COLLECTION_STAGE)
    return round(1000 * seconds / client_days, 1)


def cache_refresh(env: dict[str, str], client_id: str, end: date, history: int, repeat: int):
    """Median time of the current-week cache step once `history` days are stored."""
    from metrics_pipeline.runner import SERVING, materialize_window, run_stage

    catalog, defs, instance = _in_process(env)
    start = end - timedelta(days=history - 1)
    outcome = materialize_window(
        defs, catalog, instance, start, end, [client_id], log_level="ERROR"
    )
    assert outcome.success, outcome.errors
    step_seconds, run_seconds = [], []
    for _ in range(repeat):
        began = time.perf_counter()
        result = run_stage(defs, instance, "cache", SERVING[:1], client_id, client_id, {}, "ERROR")
        run_seconds.append(time.perf_counter() - began)
        assert result.success, result.errors
        (step,) = [
            s
            for s in instance.get_run_step_stats(result.run_id)
            if s.step_key == SERVING[0].path[-1]
        ]
        step_seconds.append(step.end_time - step.start_time)
    return statistics.median(step_seconds), statistics.median(run_seconds)


def read_latency(warehouse_url: str, client_id: str, end: date, reads: int) -> dict:
    """What a dashboard pays: the cache row of a client, and its last 90 days of KPIs."""
    engine = sa.create_engine(warehouse_url)
    cache = sa.text("SELECT * FROM current_week_cache WHERE client_id = :client")
    daily = sa.text(
        "SELECT * FROM daily_kpi_data WHERE client_id = :client AND date BETWEEN :a AND :b "
        "ORDER BY date"
    )
    params = {"client": client_id, "a": end - timedelta(days=89), "b": end}
    figures = {}
    with engine.connect() as connection:
        for name, query in (("cache_read", cache), ("daily_read", daily)):
            connection.execute(query, params).fetchall()  # warm the plan cache once
            timings = []
            for _ in range(reads):
                began = time.perf_counter()
                rows = connection.execute(query, params).fetchall()
                timings.append((time.perf_counter() - began) * 1000)
            assert rows, f"{name}: no rows"
            figures[f"{name}_rows"] = len(rows)
            figures[f"{name}_median_ms"] = round(statistics.median(timings), 3)
            figures[f"{name}_p99_ms"] = round(_percentile(timings, 0.99), 3)
    engine.dispose()
    return figures


def _verdicts(figures: dict) -> dict[str, bool]:
    verdicts = {}
    for name, (op, bound) in TARGETS.items():
        if name not in figures:
            continue
        value = figures[name]
        verdicts[name] = {"<=": value <= bound, ">=": value >= bound, "<": value < bound}[op]
    for name in FLAT:  # linear within 10 % either way
        if name in verdicts:
            verdicts[name] &= figures[name] >= 0.9
    return verdicts


def _run_and_read_rows(figures: dict) -> list[tuple[str, object, str]]:
    """Figures 3-5: runs per partition against a range, cache refresh, dashboard reads."""
    short, long = figures["cache_history_days"]
    return [
        (
            f"3. Run per partition, {figures['sample_partitions']} partitions of one client",
            f"{figures['sample_per_partition_seconds']} s",
            "",
        ),
        ("   one ranged run, same partitions", f"{figures['sample_range_seconds']} s", ""),
        (
            "   per partition / range, same partitions",
            figures["sample_per_partition_over_range"],
            "",
        ),
        (
            f"   whole workload per partition ({figures['clients'] * figures['days']} runs x "
            f"median {figures['per_partition_run_median_seconds']} s)",
            f"{figures['per_partition_seconds']} s",
            "",
        ),
        ("   whole workload ranged (collection stage of 1.)", f"{figures['range_seconds']} s", ""),
        (
            "   per partition / range, whole workload",
            figures["per_partition_over_range"],
            "per_partition_over_range",
        ),
        (
            f"4. Cache refresh, {short} days of history",
            f"{figures['cache_refresh_short_ms']} ms",
            "",
        ),
        (f"   cache refresh, {long} days of history", f"{figures['cache_refresh_long_ms']} ms", ""),
        (f"   {long} / {short}", figures["cache_refresh_ratio"], "cache_refresh_ratio"),
        ("5. Cache read, median", f"{figures['cache_read_median_ms']} ms", ""),
        ("   cache read, p99", f"{figures['cache_read_p99_ms']} ms", "cache_read_p99_ms"),
        ("   90-day KPI read, median", f"{figures['daily_read_median_ms']} ms", ""),
        ("   90-day KPI read, p99", f"{figures['daily_read_p99_ms']} ms", "daily_read_p99_ms"),
    ]


def _listed(values: list[float], between: str = ", ") -> str:
    return between.join(f"{value:g}" for value in values)


def markdown(figures: dict, verdicts: dict[str, bool] | None) -> str:
    """The figures as a table; `verdicts` None: a smoke run, whose targets are not judged."""
    rows = [
        (
            f"1. End-to-end backfill, median of {figures['repeat']}",
            f"{figures['backfill_seconds']} s ({_listed(figures['backfill_runs_seconds'])})",
            "",
        ),
        (
            "   per client-day",
            f"{figures['backfill_ms_per_client_day']} ms",
            "",
        ),
        (
            f"2. Floor: bare fetch + COPY, JSON with orjson, median of {figures['repeat']}",
            f"{figures['floor_orjson_seconds']} s "
            f"({_listed(figures['floor_orjson_runs_seconds'])})",
            "",
        ),
        (
            "   backfill / floor",
            figures["backfill_over_floor_orjson"],
            "backfill_over_floor_orjson",
        ),
        ("   the same floor with the stdlib json", f"{figures['floor_seconds']} s", ""),
        ("   backfill / that floor", figures["backfill_over_floor"], ""),
        (
            "   CPU during the backfill: pipeline / sandbox / PostgreSQL",
            f"{figures['backfill_cpu_seconds']} / {figures['backfill_sandbox_cpu_seconds']} / "
            f"{figures['backfill_postgres_cpu_seconds']} s",
            "",
        ),
        (
            "   CPU during the orjson floor: floor / sandbox / PostgreSQL",
            f"{figures['floor_orjson_cpu_seconds']} / {figures['floor_orjson_sandbox_cpu_seconds']}"
            f" / {figures['floor_orjson_postgres_cpu_seconds']} s",
            "",
        ),
        (
            "   collection stage per client-day",
            f"{figures['collection_ms_per_client_day']} ms",
            "",
        ),
        (
            "   connections opened to Dagster's storage during the backfill",
            figures["backfill_dagster_sessions"],
            "",
        ),
        (
            "   Dagster's event log after the backfill",
            f"{figures['backfill_event_log_mib']} MiB",
            "",
        ),
    ]
    if "sample_partitions" in figures:
        rows += _run_and_read_rows(figures)
    rows.append(("6. Peak RSS of the backfill", f"{figures['peak_rss_mib']} MiB", "peak_rss_mib"))
    if "scaling_days" in figures:
        rows += [
            (
                f"7. {figures['scaling_days']}-day backfill",
                f"{figures['scaling_backfill_seconds']} s",
                "",
            ),
            (
                f"   cost per day, {figures['scaling_days']} / {figures['days']} days",
                figures["scaling_per_day_ratio"],
                "scaling_per_day_ratio",
            ),
            (
                f"   collection stage per client-day, {figures['scaling_days']}-day backfill",
                f"{figures['scaling_collection_ms_per_client_day']} ms",
                "",
            ),
            (
                f"   collection cost per day, {figures['scaling_days']} / {figures['days']} days",
                figures["scaling_collection_per_day_ratio"],
                "scaling_collection_per_day_ratio",
            ),
            (
                f"   CPU of the {figures['scaling_days']}-day backfill: pipeline / sandbox / "
                "PostgreSQL",
                f"{_listed(figures['scaling_cpu_seconds'], ' / ')} s",
                "",
            ),
            (
                f"   peak RSS of the {figures['scaling_days']}-day backfill",
                f"{figures['scaling_peak_rss_mib']} MiB",
                "scaling_peak_rss_mib",
            ),
        ]
    rows += [
        (
            f"8. Calls per stored row, {figures['calls_rows']} rows: clean (pages of 500)",
            figures["calls_per_row_clean"],
            "",
        ),
        (
            "   every result page above 100 rows refused (reduce the amount of data)",
            figures["calls_per_row_refused_pages"],
            "",
        ),
        (
            "   ideal: pages of 62 rows (the accepted size) from the start",
            figures["calls_per_row_ideal"],
            "",
        ),
        (
            "   calls beyond the ideal with pages refused",
            figures["calls_refused_pages"] - figures["calls_ideal"],
            "",
        ),
    ]
    if "client_scaling_clients" in figures:
        few, many = figures["client_scaling_clients"]
        days = figures["client_scaling_days"]
        rows += [
            (
                f"9. Backfill, {few} clients x {days} days, per client-day",
                f"{figures['client_scaling_few_ms']} ms "
                f"({figures['client_scaling_few_seconds']} s)",
                "",
            ),
            (
                f"   {many} clients x {days} days, per client-day",
                f"{figures['client_scaling_many_ms']} ms "
                f"({figures['client_scaling_many_seconds']} s)",
                "",
            ),
            (
                f"   cost per client-day, {many} / {few} clients",
                figures["client_scaling_ratio"],
                "client_scaling_ratio",
            ),
            (
                f"   collection stage per client-day, {few} / {many} clients",
                f"{figures['client_scaling_few_collection_ms']} / "
                f"{figures['client_scaling_many_collection_ms']} ms",
                "",
            ),
            (
                f"   collection cost per client-day, {many} / {few} clients",
                figures["client_scaling_collection_ratio"],
                "client_scaling_collection_ratio",
            ),
            (
                f"   CPU, {few} / {many} clients: pipeline / sandbox / PostgreSQL",
                f"{_listed(figures['client_scaling_few_cpu_seconds'], ' / ')} s; "
                f"{_listed(figures['client_scaling_many_cpu_seconds'], ' / ')} s",
                "",
            ),
            (f"   peak RSS, {many} clients", f"{figures['client_scaling_many_rss_mib']} MiB", ""),
        ]
    lines = ["| Figure | Value | Target |", "|---|---|---|"]
    for label, value, target in rows:
        mark = ""
        if target:
            op, bound = TARGETS[target]
            judged = (
                "not judged (smoke run)"
                if verdicts is None
                else ("met" if verdicts[target] else "MISSED")
            )
            mark = f"{op} {bound}: {judged}"
        lines.append(f"| {label} | {value} | {mark} |")
    lines += ["", "Steps of the backfill (1.), in the order the runs ran:", ""]
    lines += ["| step | seconds |", "|---|---|"]
    lines += [f"| `{step}` | {seconds} |" for step, seconds in figures["steps"]]
    return "\n".join(lines)


def _environment(sandbox_url: str, warehouse_db: str, dagster_db: str, clients_file: Path,
                 home: Path, now: datetime, oldest: date) -> dict[str, str]:  # fmt: skip
    """What `metrics-pipeline materialize` reads: the bench's sandbox, databases, clients."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": dagster_db,
        "METRICS_WAREHOUSE_URL": warehouse_db,
        "METRICS_CLIENTS_FILE": str(clients_file),
        "METRICS_AS_OF": now.isoformat(),
        "METRICS_HISTORY_START": str(oldest),
        "METRICS_AUTOMATION": "off",
        **_sandbox_urls(sandbox_url),
        "META_API_VERSION": API_VERSION,
        "META_ACCESS_TOKEN": TOKEN,
        "DAGSTER_DISABLE_TELEMETRY": "1",
        **RANGED_RUN_EVENT_SETTINGS,  # as docs/deployment.md sets them in production
    }


def _sandbox_urls(sandbox_url: str) -> dict[str, str]:
    """Where the pipeline finds Meta and the rates feed: both in the sandbox."""
    return {"META_API_BASE_URL": sandbox_url, "METRICS_FX_RATES_URL": sandbox_url + FEED_PATH}


def _fresh_pair(args: argparse.Namespace) -> tuple[str, str]:
    """Empty warehouse and Dagster databases."""
    return (
        _fresh_database(args.postgres_url, args.database_prefix),
        _fresh_database(args.postgres_url, f"{args.database_prefix}_dagster"),
    )


def client_scaling(args: argparse.Namespace, work: Path, now: datetime, end: date) -> dict:
    """The same days for `args.clients` and for `args.scaling_clients` clients, each on
    fresh databases and a sandbox of its own: cost per client-day."""
    days = args.scaling_clients_days
    start = end - timedelta(days=days - 1)
    figures: dict = {"client_scaling_clients": [args.clients, args.scaling_clients]}
    figures["client_scaling_days"] = days
    for label, clients in (("few", args.clients), ("many", args.scaling_clients)):
        home = work / f"home_{clients}"
        home.mkdir()
        shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
        workload = Workload(clients, days)
        clients_file = workload.write_clients_file(work / f"c{clients}.yaml")
        env = _environment(
            "", *_fresh_pair(args), clients_file, home, now, start - timedelta(days=7)
        )
        result = timed_backfill(env, workload, now, start, end, None)
        figures[f"client_scaling_{label}_cpu_seconds"] = _cpu_figures(result)
        figures[f"client_scaling_{label}_seconds"] = result["seconds"]
        figures[f"client_scaling_{label}_ms"] = round(
            1000 * result["seconds"] / (clients * days), 1
        )
        figures[f"client_scaling_{label}_rss_mib"] = result["peak_rss_mib"]
        figures[f"client_scaling_{label}_collection_ms"] = _collection_ms(result, clients * days)
        print(f"(9) {clients} clients x {days} days: {result['seconds']} s", flush=True)
    figures["client_scaling_ratio"] = round(
        figures["client_scaling_many_ms"] / figures["client_scaling_few_ms"], 2
    )
    figures["client_scaling_collection_ratio"] = round(
        figures["client_scaling_many_collection_ms"] / figures["client_scaling_few_collection_ms"],
        2,
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a toy workload (2 clients x 5 days, 2 sample days, 50 reads, cache history 3 "
        "and 10 days) in about a minute: prints every figure, judges no target, exits 0",
    )
    parser.add_argument("--clients", type=int, help="default 20 (smoke: 2)")
    parser.add_argument("--days", type=int, help="default 90 (smoke: 5)")
    parser.add_argument("--sample-days", type=int, help="partitions in figure 3; default 30")
    parser.add_argument("--cache-history", type=int, nargs=2, help="default 30 365")
    parser.add_argument("--reads", type=int, help="default 1000 (smoke: 50)")
    parser.add_argument(
        "--repeat",
        type=int,
        help="backfills and floors of figures 1 and 2, in turn; their medians are reported "
        "(default 3, smoke: 1)",
    )
    parser.add_argument(
        "--backfill-only",
        action="store_true",
        help="figures 1, 2, 6-9 only: no runs per partition, cache refresh or reads",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "METRICS_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
        ),
        help="an admin connection; the bench creates and drops its own databases",
    )
    parser.add_argument("--database-prefix", default="metrics_bench")
    parser.add_argument(
        "--scaling-days",
        type=int,
        default=0,
        help="also time a backfill this long (e.g. 365) and compare its cost per day",
    )
    parser.add_argument(
        "--scaling-clients",
        type=int,
        default=0,
        help="also time --clients and this many clients (e.g. 100) over --scaling-clients-days "
        "and compare their cost per client-day",
    )
    parser.add_argument("--scaling-clients-days", type=int, default=30)
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the backfill of figure 1 with py-spy into this file (collapsed stacks)",
    )
    parser.add_argument(
        "--profile-wall",
        action="store_true",
        help="with --profile: sample waiting threads too, for where the wall time goes",
    )
    parser.add_argument("--keep-databases", action="store_true", help="for a look afterwards")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if args.profile is not None and args.repeat is None:
        args.repeat = 1  # one profiled backfill: the profiler's times are not a median's
    for name, size in (SMOKE if args.smoke else STANDARD).items():
        if getattr(args, name) is None:
            setattr(args, name, size)

    workload = Workload(args.clients, args.days)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    end = now.date() - timedelta(days=1)
    start = end - timedelta(days=args.days - 1)
    oldest = end - timedelta(days=max(args.days, args.scaling_days, *args.cache_history) + 7)
    work = Path(tempfile.mkdtemp(prefix="metrics-bench-"))
    home = work / "dagster_home"
    home.mkdir()
    # The production storage settings.
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    warehouse_db, dagster_db = _fresh_pair(args)
    clients_file = workload.write_clients_file(work / "clients.yaml")
    print(f"workload: {args.clients} clients x {args.days} days ({start} .. {end})", flush=True)

    figures: dict = {"clients": args.clients, "days": args.days, "repeat": args.repeat}
    # Figures 1 and 2, `--repeat` times in turn, each backfill on fresh databases: their
    # medians, since one run on a shared machine moves with its load. The warehouse of the
    # last backfill serves figures 3-5.
    timings: dict[str, list[dict]] = {"backfill": [], "_orjson": [], "": []}
    for attempt in range(args.repeat):
        if attempt:
            warehouse_db, dagster_db = _fresh_pair(args)
        env = _environment("", warehouse_db, dagster_db, clients_file, home, now, oldest)
        timings["backfill"].append(
            timed_backfill(env, workload, now, start, end, args.profile, args.profile_wall)
        )
        rows = timings["backfill"][-1]["insight_rows"]
        seconds = timings["backfill"][-1]["seconds"]
        print(f"(1) backfill: {seconds} s for {rows} insight rows", flush=True)
        floor_url = _schema_url(warehouse_db, "floor")
        # The floor: the same pages fetched and the same rows COPYed by a bare loop reading
        # and writing JSON with orjson, as the pipeline does; the stdlib `json` loop for
        # information (how much of a ratio is the JSON library, not the pipeline).
        for label, suffix, fast_json in (
            ("(2) floor with orjson", "_orjson", True),
            ("(2b) floor with the stdlib json", "", False),
        ):
            floor = timed_floor(workload, now, floor_url, start, end, fast_json)
            assert floor["rows"] == rows, (
                f"{label} loaded {floor['rows']} rows, the pipeline {rows}"
            )
            timings[suffix].append(floor)
            print(f"{label}: {floor['seconds']} s", flush=True)
    result = _median_run(timings["backfill"])
    figures.update(
        insight_rows=result["insight_rows"],
        backfill_runs_seconds=[run["seconds"] for run in timings["backfill"]],
        backfill_seconds=result["seconds"],
        backfill_ms_per_client_day=round(1000 * result["seconds"] / (args.clients * args.days), 1),
        backfill_cpu_seconds=result["cpu_seconds"],
        backfill_sandbox_cpu_seconds=result["cpu"]["sandbox"],
        backfill_postgres_cpu_seconds=result["cpu"]["postgres"],
        stage_starts=result["stage_starts"],
        collection_ms_per_client_day=_collection_ms(result, args.clients * args.days),
        backfill_dagster_sessions=result["dagster_storage"]["sessions"],
        backfill_event_log_mib=result["dagster_storage"]["event_log_mib"],
        steps=result["steps"],
        # The highest of the backfills: a bound, not a median.
        peak_rss_mib=max(run["peak_rss_mib"] for run in timings["backfill"]),
    )
    for suffix in ("_orjson", ""):
        floor = _median_run(timings[suffix])
        figures[f"floor{suffix}_runs_seconds"] = [run["seconds"] for run in timings[suffix]]
        figures[f"floor{suffix}_seconds"] = floor["seconds"]
        figures[f"floor{suffix}_cpu_seconds"] = floor["cpu"]["bench_process"]
        figures[f"floor{suffix}_sandbox_cpu_seconds"] = floor["cpu"]["sandbox"]
        figures[f"floor{suffix}_postgres_cpu_seconds"] = floor["cpu"]["postgres"]
        figures[f"backfill_over_floor{suffix}"] = round(result["seconds"] / floor["seconds"], 2)

    if not args.backfill_only:
        with SandboxProcess(workload, now.date(), now) as sandbox_url:
            env = _environment(
                sandbox_url, warehouse_db, dagster_db, clients_file, home, now, oldest
            )
            figures.update(runs_and_reads(args, env, workload, warehouse_db, end, result))

    if args.scaling_days:
        # The same clients over a longer window, on fresh databases: the cost per day
        # should stay what it was (a linear backfill).
        long_env = _environment("", *_fresh_pair(args), clients_file, home, now, oldest)
        long_start = end - timedelta(days=args.scaling_days - 1)
        long = timed_backfill(long_env, workload, now, long_start, end, None)
        figures["scaling_cpu_seconds"] = _cpu_figures(long)
        figures["scaling_days"] = args.scaling_days
        figures["scaling_backfill_seconds"] = long["seconds"]
        figures["scaling_peak_rss_mib"] = long["peak_rss_mib"]
        figures["scaling_per_day_ratio"] = round(
            (long["seconds"] / args.scaling_days) / (result["seconds"] / args.days), 2
        )
        figures["scaling_collection_ms_per_client_day"] = _collection_ms(
            long, args.clients * args.scaling_days
        )
        figures["scaling_collection_per_day_ratio"] = round(
            figures["scaling_collection_ms_per_client_day"]
            / figures["collection_ms_per_client_day"],
            2,
        )
        print(f"(7) {args.scaling_days}-day backfill: {long['seconds']} s", flush=True)

    sample = Workload(min(4, args.clients), args.days)
    figures.update(calls_per_row(sample, start, end, now))
    print(f"(8) calls per row: {figures['calls_per_row_refused_pages']}", flush=True)
    if args.scaling_clients:
        figures.update(client_scaling(args, work, now, end))
    figures["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
        "when": now.isoformat(),
    }
    verdicts = None if args.smoke else _verdicts(figures)
    figures["targets_met"] = verdicts if verdicts is not None else "not judged (smoke run)"
    table = markdown(figures, verdicts)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    (args.out / "latest.md").write_text(table + "\n")
    print(table)
    shutil.rmtree(work, ignore_errors=True)
    if not args.keep_databases:
        for name in (args.database_prefix, f"{args.database_prefix}_dagster"):
            _drop_database(args.postgres_url, name)
    return 0 if verdicts is None or all(verdicts.values()) else 1


def runs_and_reads(
    args: argparse.Namespace,
    env: dict[str, str],
    workload: Workload,
    warehouse_db: str,
    end: date,
    result: dict,
) -> dict:
    """Figures 3-5 on the backfilled warehouse."""
    found: dict = {}
    sample = [end - timedelta(days=n) for n in range(args.sample_days)][::-1]
    comparison = per_partition_vs_range(env, workload, sample)
    found.update(comparison)
    # The whole workload as one run per partition would take clients x days runs; each
    # costs about the median measured above (its work is one partition's).
    partitions = args.clients * args.days
    found["per_partition_seconds"] = round(
        comparison["per_partition_run_median_seconds"] * partitions, 1
    )
    found["range_seconds"] = round(
        _stage_seconds(result["stage_starts"], result["seconds"], COLLECTION_STAGE), 2
    )
    found["per_partition_over_range"] = round(
        found["per_partition_seconds"] / found["range_seconds"], 1
    )
    print(f"(3) per partition vs range: {comparison}", flush=True)

    found["cache_history_days"] = list(args.cache_history)
    refresh = []
    for label, history in zip(("short", "long"), args.cache_history, strict=True):
        schema_env = {**env, "METRICS_WAREHOUSE_URL": _schema_url(warehouse_db, f"h{history}")}
        step, run = cache_refresh(schema_env, workload.client_ids()[0], end, history, 21)
        refresh.append(step)
        found[f"cache_refresh_{label}_ms"] = round(step * 1000, 1)
        found[f"cache_refresh_{label}_run_ms"] = round(run * 1000, 1)
    found["cache_refresh_ratio"] = round(refresh[1] / refresh[0], 2)
    print(f"(4) cache refresh (step, s): {refresh}", flush=True)

    found.update(read_latency(warehouse_db, workload.client_ids()[0], end, args.reads))
    return found


if __name__ == "__main__":
    sys.exit(main())
