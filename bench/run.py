"""ecrd against the reference registry, side by side: ``python bench/run.py [--quick | --long] [--json OUT]``.

Starts ecrd (authentication and at-rest encryption on, as it always runs) and CNCF distribution on free
loopback ports, runs every workload against both — repetitions interleaved, the order alternating — and
prints medians (min–max), the ratio ecrd ÷ distribution and each goal of the performance issue; the full
record, every run included, goes to JSON. ``--profile`` instead runs ecrd alone under py-spy.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from cluster import balanced_distribution, ecrd_cluster, postgres_database
from measure import MB, Summary, UsageMeter
from profiles import Profiler, summarize
from s3 import SeaweedFS
from servers import Distribution, Ecrd, Process, Target
from tools import Tools, ensure_tools
from workloads import MODES, Context, Metric, Outcome, Sizes, SkopeoPush, Workload, all_workloads

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DEFAULT_WORKERS = 2
GB = 1e9
REFERENCE = "distribution"
COST_KEYS = ("cpu_s_per_gb", "cpu_ms_per_request", "cpu_ms_per_blob")
HELPER_ROLES = {"store": "object store", "proxy": "nginx"}
COST_METRICS = (
    *COST_KEYS,
    *(f"{role}_{key}" for role in HELPER_ROLES for key in COST_KEYS),
    "peak_rss_mb",
)
OBJECT_STORE_WORKLOADS = ("push_", "pull", "manifest_get", "blob_head", "tags_list", "memory")
"""What the S3 and cluster modes run unless --only says otherwise: blob transfers, small requests, memory."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, 2 repetitions: a few minutes")
    size.add_argument("--long", action="store_true", help="5 repetitions, longer wrk runs, a 5 GiB memory check")
    parser.add_argument("--json", type=Path, help="also write the JSON record here (always: bench/results/)")
    parser.add_argument("--only", help="comma-separated workload names or prefixes (e.g. push,pull,manifest)")
    parser.add_argument("--reps", type=int, help="repetitions (default: 2 quick, 3 default, 5 long)")
    parser.add_argument(
        "--workers",
        type=workers_option,
        default=DEFAULT_WORKERS,
        help="ecrd --workers, or 'default' to run ecrd at its own default (one per usable CPU) (default: %(default)s)",
    )
    parser.add_argument("--ecrd-src", type=Path, help="measure the ecrd of this src/ folder instead of the installed")
    parser.add_argument("--label", default="", help="free text recorded with the results (e.g. a commit)")
    parser.add_argument("--no-reference", action="store_true", help="run ecrd alone")
    storage = parser.add_mutually_exclusive_group()
    storage.add_argument(
        "--s3",
        action="store_true",
        help="blobs in SeaweedFS started by the benchmark: ecrd's S3 driver against distribution's, one bucket each",
    )
    storage.add_argument(
        "--cluster",
        action="store_true",
        help="through nginx: ecrd as --nodes clusters on PostgreSQL + SeaweedFS, distribution on its S3 driver",
    )
    parser.add_argument(
        "--nodes", default="1,2", help="ecrd cluster sizes measured side by side with --cluster (default: %(default)s)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="ecrd alone, one repetition, under py-spy: profiles in bench/results/profile-*/",
    )
    parser.add_argument(
        "--profile-mode",
        choices=("cpu", "gil", "wall"),
        default="cpu",
        help="py-spy's view: running threads (cpu), the GIL holder (gil), all threads (wall)",
    )
    parser.add_argument("--no-install", action="store_true", help="do not apt-get/pip install missing tools")
    parser.add_argument("--workdir", type=Path, help="where to make the run's temporary folder (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=120.0,
        help="stop starting workloads after this long (default: %(default)s)",
    )
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    return parser.parse_args(argv)


def workers_option(text: str) -> int | None:
    """``--workers N``, or ``default``: no --workers flag, so ecrd picks (None)."""
    return None if text == "default" else int(text)


def _selected(workloads: list[Workload], only: str | None) -> list[Workload]:
    if not only:
        return workloads
    wanted = [part.strip() for part in only.split(",") if part.strip()]
    return [w for w in workloads if any(w.name == p or w.name.startswith(p) for p in wanted)]


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# -- machine and versions -------------------------------------------------------------------------------------


def _command(argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def machine_facts(workdir: Path) -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        memory = int(fh.readline().split()[1]) * 1024
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory / (1 << 30), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "disk": _command(["df", "-h", "--output=source,fstype,size,avail", str(workdir)]).splitlines()[-1:],
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
    }


def ecrd_version(source: Path | None) -> dict[str, str]:
    where = (source or ROOT / "src").resolve()
    commit = _command(["git", "rev-parse", "HEAD"], cwd=where)
    dirty = _command(["git", "status", "--porcelain", "--", str(where)], cwd=where) if commit else ""
    versions = {
        "source": str(where),
        "commit": commit or "unknown (not a git checkout)",
        "dirty": "yes" if dirty else "no",
    }
    for package in ("granian", "starlette", "cryptography", "SQLAlchemy"):
        versions[package] = _command(
            [sys.executable, "-c", f"import importlib.metadata as m; print(m.version({package!r}))"]
        )
    return versions


# -- running --------------------------------------------------------------------------------------------------


def run_workload(
    workload: Workload,
    targets: list[Target],
    ctx: Context,
    reps: int,
    profile_dir: Path | None,
    py_spy: str | None,
    profile_mode: str = "cpu",
    shared: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Every repetition of ``workload`` against every target; ``shared`` are processes serving all targets (the
    object store), by role, whose CPU is counted for whichever target runs."""
    record: dict[str, Any] = {"name": workload.name, "title": workload.title, "runs": {t.name: [] for t in targets}}
    missing = [tool for tool in workload.needs if not ctx.tools.has(tool)]
    if missing:
        record["skipped"] = "; ".join(f"{tool} missing ({ctx.tools.missing.get(tool, '')})" for tool in missing)
        log(f"SKIP {workload.name}: {record['skipped']}")
        return record
    log(f"{workload.name}: {workload.title}")
    for target in targets:
        workload.setup(target, ctx)
    reps = workload.reps_override or reps
    for rep in range(reps):
        workload.prepare(rep, ctx)
        order = targets if rep % 2 == 0 else list(reversed(targets))
        for target in order:
            profiler = None
            if profile_dir is not None and py_spy is not None:
                profiler = Profiler(py_spy, target.pid, profile_dir / f"{workload.name}.txt", mode=profile_mode)
                profiler.__enter__()
                time.sleep(0.5)  # let py-spy attach to every process before the work starts
            try:
                with ExitStack() as stack:
                    meter = stack.enter_context(target.meter())
                    helpers = {
                        role: stack.enter_context(UsageMeter(pid))
                        for role, pid in {**(shared or {}), **target.helpers()}.items()
                    }
                    outcome = workload.run(target, rep, ctx)
            finally:
                if profiler is not None:
                    profiler.__exit__(None, None, None)
            usage = meter.usage
            run: dict[str, Any] = {
                "rep": rep,
                "figures": outcome.figures,
                "bytes": outcome.bytes,
                "requests": outcome.requests,
                "cpu_seconds": round(usage.cpu_seconds, 3),
                "peak_rss_mb": round(usage.peak_rss / MB, 1),
                "start_rss_mb": round(usage.start_rss / MB, 1),
                "cpu_by_thread": usage.threads,
            }
            if len(meter.node_peaks) > 1:
                run["peak_rss_mb_by_node"] = [round(peak / MB, 1) for peak in meter.node_peaks]
            run["figures"].update(_cost_figures("", usage.cpu_seconds, outcome))
            for role, helper in helpers.items():
                run[f"{role}_cpu_seconds"] = round(helper.usage.cpu_seconds, 3)
                run["figures"].update(_cost_figures(f"{role}_", helper.usage.cpu_seconds, outcome))
            run["figures"]["peak_rss_mb"] = usage.peak_rss / MB
            if outcome.notes:
                run["notes"] = outcome.notes
            record["runs"][target.name].append(run)
            shown = ", ".join(f"{key}={value:.4g}" for key, value in outcome.figures.items())
            log(
                f"  rep {rep + 1}/{reps} {target.name:<12} {shown}  cpu={usage.cpu_seconds:.2f}s "
                f"rss={usage.peak_rss / MB:.0f}MB"
            )
        workload.cleanup(rep, ctx)
    return record


def _cost_figures(prefix: str, cpu: float, outcome: Outcome) -> dict[str, float]:
    """CPU seconds per unit of work: per GB moved, else per request answered, else per blob pushed."""
    if outcome.bytes:
        return {f"{prefix}cpu_s_per_gb": cpu / (outcome.bytes / GB)}
    if outcome.requests:
        return {f"{prefix}cpu_ms_per_request": cpu * 1000 / outcome.requests}
    if outcome.blobs:
        return {f"{prefix}cpu_ms_per_blob": cpu * 1000 / outcome.blobs}
    return {}


_COSTS = (
    ("cpu_s_per_gb", "CPU per GB", "s/GB"),
    ("cpu_ms_per_request", "CPU per request", "ms"),
    ("cpu_ms_per_blob", "CPU per blob pushed", "ms"),
)


def _metrics(workload: Workload) -> list[Metric]:
    extra = [Metric(key, f"server {label}", unit, False, 1.0, "lower") for key, label, unit in _COSTS]
    extra += [
        Metric(f"{role}_{key}", f"{who} {label}", unit, False)
        for role, who in HELPER_ROLES.items()
        for key, label, unit in _COSTS
    ]
    extra.append(Metric("peak_rss_mb", "server peak RSS (per node)", "MB", False))
    return [*workload.metrics, *extra]


def _object_store_goals(workloads: list[Workload]) -> None:
    """Issue 14's goals on an object store: pushes at least as fast as the reference on the same store (the
    filesystem goal of 2× assumed a disk ecrd could outpace); pulls and small requests keep theirs."""
    for workload in workloads:
        if workload.name.startswith("push_"):
            workload.metrics = tuple(
                dataclasses.replace(metric, goal=1.0, goal_text="≥ 1×") if metric.key == "throughput" else metric
                for metric in workload.metrics
            )


def _compared(record: dict[str, Any]) -> list[str]:
    """The targets compared with the reference: every one but the reference, in the order they ran."""
    return [name for name in record["runs"] if name != REFERENCE]


def summarize_record(record: dict[str, Any], workload: Workload) -> None:
    summary: dict[str, dict[str, Any]] = {}
    for target, runs in record["runs"].items():
        keys = {key for run in runs for key in run["figures"]}
        summary[target] = {
            key: Summary.of([run["figures"][key] for run in runs if key in run["figures"]]).as_json()
            for key in sorted(keys)
        }
    record["summary"] = summary
    reference = summary.get(REFERENCE, {})
    comparisons: dict[str, dict[str, Any]] = {}
    for name in _compared(record):
        comparisons[name] = _comparison(summary[name], reference, workload)
    # "comparison" is the first compared target's (ecrd's), as in the JSON of the single-target modes.
    record["comparison"] = next(iter(comparisons.values()), {})
    record["comparisons"] = comparisons


def _comparison(ecrd: dict[str, Any], reference: dict[str, Any], workload: Workload) -> dict[str, Any]:
    comparisons: dict[str, Any] = {}
    for metric in _metrics(workload):
        if metric.key not in ecrd or metric.key not in reference or not reference[metric.key]["median"]:
            continue
        ratio = ecrd[metric.key]["median"] / reference[metric.key]["median"]
        entry: dict[str, Any] = {"ratio": ratio}
        if metric.goal is not None:
            met = (
                ratio >= metric.goal
                if metric.higher_is_better
                else (ratio < metric.goal if metric.goal_text == "lower" else ratio <= metric.goal)
            )
            entry.update(goal=metric.goal_text, met=met)
        comparisons[metric.key] = entry
    return comparisons


# -- reporting ------------------------------------------------------------------------------------------------


def _figure(summary: dict[str, Any] | None, unit: str) -> str:
    if summary is None:
        return "—"
    digits = 0 if summary["median"] >= 100 else 1 if summary["median"] >= 10 else 2
    return f"{summary['median']:.{digits}f} ({summary['min']:.{digits}f}–{summary['max']:.{digits}f}) {unit}"


def table(records: list[dict[str, Any]], workloads: dict[str, Workload], names: list[str]) -> str:
    """Markdown: one column per target (``names``, the reference last) and one ratio per compared target."""
    compared = [name for name in names if name != REFERENCE]
    short = {name: "dist" if name == REFERENCE else name for name in names}
    header = ["workload", "figure", *(f"{name} median (min–max)" for name in names)]
    if REFERENCE in names:
        header += [f"{short[name]} ÷ dist" for name in compared]
    header += ["goal", ""]
    rows: list[list[str]] = []
    cost_rows: list[list[str]] = []
    for record in records:
        workload = workloads[record["name"]]
        if "skipped" in record:
            rows.append([record["title"], "skipped", record["skipped"], *[""] * (len(header) - 3)])
            continue
        summary, comparisons = record.get("summary", {}), record.get("comparisons", {})
        for metric in _metrics(workload):
            figures = [summary.get(name, {}).get(metric.key) for name in names]
            if all(figure is None for figure in figures):
                continue
            row = [record["title"], metric.label, *(_figure(figure, metric.unit) for figure in figures)]
            verdicts = []
            if REFERENCE in names:
                for name in compared:
                    entry = comparisons.get(name, {}).get(metric.key, {})
                    row.append(f"{entry['ratio']:.2f}×" if "ratio" in entry else "")
                    if "met" in entry:
                        verdicts.append("met" if entry["met"] else "GAP")
            row += [metric.goal_text, " / ".join(verdicts)]
            (cost_rows if metric.key in COST_METRICS else rows).append(row)
    return _markdown(header, rows) + "\n\nServer cost (process tree, from /proc):\n\n" + _markdown(header, cost_rows)


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------------------


# Modes with their own harness and options: ``python bench/run.py --scale …`` runs ``bench/scale.py``'s main with
# the rest of the command line, ``--moto`` runs ``bench/moto_compare.py``'s, ``--footprint`` ``bench/footprint.py``'s.
SEPARATE_MODES = {"--scale": "scale", "--moto": "moto_compare", "--footprint": "footprint"}


def main(argv: list[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    for flag, module in SEPARATE_MODES.items():
        if flag in arguments:
            arguments.remove(flag)
            mode = __import__(module)
            return int(mode.main(arguments))
    args = parse_args(arguments)
    mode = "quick" if args.quick else "long" if args.long else "default"
    sizes = MODES[mode]
    if args.reps:
        sizes = dataclasses.replace(sizes, reps=args.reps)
    if args.profile:
        sizes = dataclasses.replace(sizes, reps=1)
    storage = "cluster" if args.cluster else "s3" if args.s3 else "filesystem"
    workloads = _selected(
        all_workloads(sizes), args.only or (",".join(OBJECT_STORE_WORKLOADS) if storage != "filesystem" else None)
    )
    if storage != "filesystem":
        _object_store_goals(workloads)
    if args.list or not workloads:
        for workload in all_workloads(sizes):
            print(f"{workload.name:<22} {workload.title}")
        return 0 if args.list else 2

    signal.signal(signal.SIGTERM, _interrupt)
    tools = ensure_tools(
        install=not args.no_install, want_profiler=args.profile, want_object_store=storage != "filesystem"
    )
    if "boto3" in tools.missing:
        log(f"cannot log in to ecrd: {tools.missing['boto3']}")
        return 2
    if args.profile and "py-spy" in tools.missing:
        log(tools.missing["py-spy"])
        return 2
    for tool in ("weed", "nginx") if args.cluster else ("weed",) if args.s3 else ():
        if tool in tools.missing:
            log(tools.missing[tool])
            return 2

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ecrd-bench-", dir=args.workdir))
    profile_dir = RESULTS / f"profile-{stamp}-{args.profile_mode}" if args.profile else None
    targets: list[Target] = []
    records: list[dict[str, Any]] = []
    started = time.monotonic()
    result: dict[str, Any] = {
        "format": 1,
        "started": stamp,
        "mode": mode,
        "storage": storage,
        "argv": sys.argv[1:],
        "label": args.label,
        "profiled": args.profile,
        "sizes": dataclasses.asdict(sizes),
        "machine": machine_facts(workdir),
        "ecrd": ecrd_version(args.ecrd_src),
        "tools_missing": tools.missing,
    }
    status = 0
    stack = ExitStack()
    store: SeaweedFS | None = None
    try:
        store = start_targets(args, storage, tools, workdir, stack, targets)
        shared = {"store": store.pid} if store is not None else {}
        result["targets"] = {target.name: target.describe() for target in targets}
        if store is not None:
            result["store"] = store.describe()
        ctx = Context(sizes, tools, workdir)
        for workload in workloads:
            if time.monotonic() - started > args.max_minutes * 60:
                records.append(
                    {
                        "name": workload.name,
                        "title": workload.title,
                        "skipped": f"--max-minutes {args.max_minutes:g} reached",
                    }
                )
                continue
            try:
                record = run_workload(
                    workload,
                    targets,
                    ctx,
                    sizes.reps,
                    profile_dir,
                    tools.paths.get("py-spy"),
                    args.profile_mode,
                    shared,
                )
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                status = 1
                log(f"FAILED {workload.name}: {exc}")
                record = {
                    "name": workload.name,
                    "title": workload.title,
                    "skipped": f"failed: {exc}",
                    "traceback": traceback.format_exc(),
                }
            if "skipped" not in record:
                summarize_record(record, workload)
            records.append(record)
        if (
            storage == "filesystem"
            and not args.profile
            and any(r["name"] == "skopeo_push_small" and "skipped" not in r for r in records)
        ):
            floor = client_floor(sizes, tools, workdir)
            if floor is not None:
                result["client_floor"] = floor
        if store is not None:
            result["buckets"] = store.contents()
            log(f"object store: {result['buckets']}")
    except KeyboardInterrupt:
        log("interrupted: stopping the servers and cleaning up")
        status = 130
    finally:
        stack.close()
        if status and targets:
            for target in targets:
                log(f"--- {target.name} log tail ---\n{target.log_tail(15)}")
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    result["workloads"] = records
    result["seconds"] = round(time.monotonic() - started, 1)
    by_name = {w.name: w for w in workloads}
    report = table([r for r in records if r["name"] in by_name], by_name, [target.name for target in targets])
    result["table"] = report
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = ("" if storage == "filesystem" else f"-{storage}") + ("-profile" if args.profile else "")
    out = RESULTS / f"{stamp}-{mode}{suffix}.json"
    for path in filter(None, [out, args.json]):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, default=str))
    print(report)
    floor = result.get("client_floor")
    if floor is not None and "seconds" in floor:
        print(
            f"\nclient floor: {floor['title']} into distribution with in-memory storage (no disk, no auth): "
            f"{floor['seconds']['median']:.2f} ({floor['seconds']['min']:.2f}–{floor['seconds']['max']:.2f}) s — "
            "the least any registry can take with this client here"
        )
    print(
        f"\n{mode} run ({storage}), {sizes.reps} repetitions, ecrd --workers {args.workers or 'default'}, "
        f"{result['seconds']:.0f} s; "
        f"JSON: {out}" + (f" and {args.json}" if args.json else "")
    )
    if profile_dir is not None and profile_dir.exists():
        for raw in sorted(profile_dir.glob("*.txt")):
            text = summarize(raw, keep_waits=args.profile_mode == "wall")
            raw.with_suffix(".summary").write_text(text)
        print(f"profiles (collapsed stacks, open in speedscope) and their summaries: {profile_dir}")
    return status


def start_targets(
    args: argparse.Namespace, storage: str, tools: Tools, workdir: Path, stack: ExitStack, targets: list[Target]
) -> SeaweedFS | None:
    """Start the registries of the run into ``targets`` (each stopped by ``stack``); return the object store
    they share, if any."""

    def started(process: Process) -> None:
        stack.callback(process.stop)
        log(f"starting {process.name} in {process.workdir}")
        process.start()

    source = args.ecrd_src.resolve() if args.ecrd_src else None
    reference = not (args.no_reference or args.profile) and tools.has("docker-registry")
    if not (args.no_reference or args.profile or reference):
        log(f"no reference registry: {tools.missing['docker-registry']}")
    distribution = Path(tools.path("docker-registry")) if reference else None
    if storage == "filesystem":
        targets.append(Ecrd(workdir / "ecrd", workers=args.workers, source=source))
        if distribution is not None:
            targets.append(Distribution(workdir / "distribution", binary=distribution))
        for target in targets:
            started(target)
        return None

    store = SeaweedFS(workdir / "seaweedfs", binary=tools.path("weed"))
    started(store)
    if storage == "s3":
        targets.append(Ecrd(workdir / "ecrd", workers=args.workers, source=source, bucket=store.bucket("ecrd")))
        if distribution is not None:
            targets.append(
                Distribution(workdir / "distribution", binary=distribution, bucket=store.bucket("distribution"))
            )
    else:
        for nodes in sorted({int(count) for count in args.nodes.split(",")}):
            database = stack.enter_context(postgres_database(f"{nodes}nodes"))
            targets.append(
                ecrd_cluster(
                    workdir / f"ecrd-{nodes}",
                    nodes=nodes,
                    workers=args.workers,
                    bucket=store.bucket(f"ecrd-{nodes}-nodes"),
                    database_url=database,
                    nginx=tools.path("nginx"),
                    source=source,
                )
            )
        if distribution is not None:
            targets.append(
                balanced_distribution(
                    workdir / "distribution",
                    binary=distribution,
                    bucket=store.bucket("distribution"),
                    nginx=tools.path("nginx"),
                )
            )
    for target in targets:
        started(target)
    return store


def client_floor(sizes: Sizes, tools: Any, workdir: Path) -> dict[str, Any] | None:
    """skopeo's small-layer push into distribution with in-memory storage: what the client alone costs, so a
    goal below it can be told apart from a registry's cost. Runs after the measured workloads, on its own."""
    if not (tools.has("docker-registry") and tools.has("skopeo")):
        return None
    floor = Distribution(workdir / "floor", binary=Path(tools.path("docker-registry")), in_memory=True)
    workload = SkopeoPush("small", sizes)
    ctx = Context(sizes, tools, workdir)
    seconds: list[float] = []
    log(f"client floor: {workload.title} into distribution with in-memory storage")
    try:
        floor.start()
        for rep in range(sizes.reps):
            workload.prepare(100 + rep, ctx)
            try:
                seconds.append(workload.run(floor, 100 + rep, ctx).figures["seconds"])
            finally:
                workload.cleanup(100 + rep, ctx)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        log(f"client floor not measured: {exc}")
        return {"title": workload.title, "skipped": str(exc)}
    finally:
        floor.stop()
    ordered = sorted(seconds)
    return {
        "title": workload.title,
        "target": floor.describe(),
        "seconds": {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1], "values": seconds},
    }


if __name__ == "__main__":
    sys.exit(main())
