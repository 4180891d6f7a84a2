"""Run every benchmark and time the command line's start-up, then write docs/performance.md and its chart.

Run: python bench/run_all.py                  (pip install -e '.[bench]' first, for Apprise; a few minutes)
     python bench/run_all.py --quick          (smaller sizes, fewer runs: to check the script, not for figures)

It makes a fresh venv with a normal (non-editable) install of this checkout and of Apprise, as a user would have
them, then runs bench/warn.py (its fresh-process figures with that venv's Python), page.py, review.py and bulk.py (a
missing one is skipped with a note), each in its own process, and keeps what each prints. Start-up is measured with
the venv: `broadcast --help` beside `python -c pass`, `broadcast --version` beside `apprise --version`, and
`broadcast warn ... --dry-run` on the example workspace. It uses hyperfine when it is installed (Debian's
`hyperfine` package), else a timed loop, and reports the median. It measures; it asserts nothing. The figures go
into docs/performance.md (a table: figure, value, target, floor, value over floor, Apprise, Apprise over value,
command) and docs/performance.svg.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOC, CHART = REPO / "docs" / "performance.md", REPO / "docs" / "performance.svg"
DRY_RUN = ["warn", "school-closure", "--set", "school=Ysgol Bro Lliw", "--set", "date=today", "--set", "reason=snow",
           "--set", "next_update=15:00", "--dry-run"]
HELP_TARGET, DRY_RUN_TARGET = 4.0, 0.400  # `--help` over `python -c pass`; seconds, on 2 cores
# Issue 17: a whole warning within these multiples of the floor (a thread per request), by N; with faults, of the
# honest floor; a fresh-process `warn` to one webhook within this much besides the network.
WARN_TARGETS = {1: 1.3, 10: 1.3, 50: 1.5, 200: 1.5}
FAULTS_TARGET, FIXED_TARGET = 1.3, 0.150


@dataclass
class Figure:
    name: str
    value: float
    unit: str  # "s", "ms", "µs", "bytes", "/s", "MiB"
    command: str
    target: float | None = None  # the value must stay below it
    apprise: float | None = None  # Apprise's figure for the same work, same unit
    floor: float | None = None  # the least the same work costs (a bare client, `python -c pass`), same unit
    floor_target: float | None = None  # the value over the floor must stay at or below it
    rounds: str | None = None  # the ratio to the floor round by round, median (range), where the benchmark gives it

    def shown(self, value: float | None = None) -> str:
        value = self.value if value is None else value
        if self.unit == "ms":
            return f"{value * 1000:.0f} ms"
        if self.unit == "µs":
            return f"{value * 1e6:.0f} µs"
        if self.unit == "s":
            return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
        if self.unit == "bytes":
            return f"{value:,.0f} bytes"
        return f"{value:,.0f} {self.unit}" if self.unit != "MiB" else f"{value:.1f} MiB"

    def row(self) -> str:
        target = f"< {self.shown(self.target)}" if self.target is not None else ""
        if self.target is not None:
            target += " (met)" if self.value < self.target else " (**missed**)"
        if self.floor_target is not None and self.floor:
            met = self.value / self.floor <= self.floor_target
            target = f"<= {self.floor_target:g}x floor" + (" (met)" if met else " (**missed**)")
        floor = self.shown(self.floor) if self.floor is not None else ""
        over = f"{self.value / self.floor:.2f}x" if self.floor else ""
        over += f"; by round {self.rounds}" if self.rounds else ""
        apprise = self.shown(self.apprise) if self.apprise is not None else ""
        ratio = f"{self.apprise / self.value:.2f}x" if self.apprise else ""
        return (f"| {self.name} | {self.shown()} | {target} | {floor} | {over} | {apprise} | {ratio} | "
                f"`{self.command}` |")


@dataclass
class Run:
    figures: list[Figure] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- the benchmarks in bench/ ------------------------------------------------------------------------------------
def bench(run: Run, script: str, args: list[str]) -> str | None:
    path = HERE / script
    command = " ".join(["python", f"bench/{script}", *(a if "/" not in a else "VENV/bin/python" for a in args)])
    if not path.exists():
        run.notes.append(f"bench/{script} is not in this checkout: skipped.")
        print(f"-- {command}: skipped (no such file)", flush=True)
        return None
    print(f"-- {command}", flush=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(path), *args], cwd=REPO, capture_output=True, text=True, check=False)
    output = done.stdout + (f"\n[stderr]\n{done.stderr}" if done.returncode else "")
    print(output, flush=True)
    run.outputs[command] = output.rstrip() + f"\n({time.perf_counter() - started:.0f} s)"
    if done.returncode:
        run.notes.append(f"`{command}` exited {done.returncode}; its figures are missing (output below).")
        return None
    return done.stdout


def number(text: str) -> float:
    return float(text.replace(",", ""))


def warn(run: Run, output: str) -> None:
    command = "python bench/warn.py"
    row = r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+|nan)\s+([\d.]+)\s+[\d.]+x.*?(?:; ([\d.]+x \([\d.-]+x\)))?$"
    for n, floor, _, apprise, ours, rounds in re.findall(row, output, re.M):
        run.figures.append(Figure(f"Whole warning to {n} webhook{'s' if n != '1' else ''} (floor: a thread per "
                                  "request)", float(ours), "s", command, apprise=_number_or_none(apprise),
                                  floor=float(floor), floor_target=WARN_TARGETS.get(int(n)), rounds=rounds or None))
    honest = re.search(r"^honest floor .*: ([\d.]+) s", output, re.M)
    ours = re.search(r"^broadcast: ([\d.]+) s = .*delivered (\d+)/(\d+), duplicates (\d+)", output, re.M)
    other = re.search(r"^Apprise, the caller retrying .*: ([\d.]+) s; delivered (\d+)/", output, re.M)
    if honest and ours:
        run.figures.append(Figure(f"Whole warning to {ours[3]} webhooks with faults (10% 429 Retry-After: 1 once, "
                                  f"20% 500 once): delivered {ours[2]}, duplicates {ours[4]} (floor: one "
                                  "Retry-After plus two round trips)", float(ours[1]), "s", command,
                                  apprise=float(other[1]) if other else None, floor=float(honest[1]),
                                  floor_target=FAULTS_TARGET))
    if found := re.search(r"^SQLite statements for one whole warning to (\d+) webhooks: ([\d,]+)", output, re.M):
        run.figures.append(Figure(f"SQLite statements for one whole warning to {found[1]} webhooks",
                                  number(found[2]), "statements", command))
    past = r"^N=1 with a past \((\d+) incidents x (\d+) alerts in the log, (\d+) files .*: floor ([\d.]+) s, " \
        r"broadcast ([\d.]+) s"
    if found := re.search(past, output, re.M):
        run.figures.append(Figure(f"Whole warning to 1 webhook in a workspace with a past ({found[1]} incidents x "
                                  f"{found[2]} alerts, {found[3]} files published; floor: a thread per request)",
                                  float(found[5]), "s", command, floor=float(found[4])))
    overheads = re.findall(r"^fixed overhead .*: (\d+) ms", output, re.M)
    beside = {name: float(found) / 1000 for name, found in
              re.findall(r"^(floor \(one POST|floor \(the imports|Apprise).* fixed overhead: (\d+) ms", output, re.M)}
    for label, found, target in zip(("", " in a workspace with a past"), overheads, (FIXED_TARGET, None),
                                    strict=False):
        first = not label
        run.figures.append(Figure(f"`broadcast warn` to one webhook, fresh process: fixed overhead{label} (all but "
                                  "the network's 100 ms" + ("; floor: a bare `python` posting it once" if first and
                                                            "floor (one POST" in beside else "") + ")",
                                  float(found) / 1000, "ms", command, target=target,
                                  floor=beside.get("floor (one POST") if first else None,
                                  apprise=beside.get("Apprise") if first else None))
    if "floor (the imports" in beside:
        run.figures.append(Figure("Fresh process, the design's floor: imports, then one POST (a bare `python` that "
                                  "imports click, jinja2, asyncio, sqlite3 and lxml first: the least any warning "
                                  "built on them costs; fixed overhead)",
                                  beside["floor (the imports"], "ms", command))


def _number_or_none(text: str) -> float | None:
    return None if text == "nan" else float(text)


def page(run: Run, output: str) -> None:
    command = "python bench/page.py"
    floor = re.search(r"floor: plain Jinja2 render of every page .*?\s([\d.]+) s", output)
    every_page = float(floor[1]) if floor else None
    for pattern, name, unit, target, floor_target in (
            (r"  build \(median of \d+\)\s+([\d.]+) s", "Site build, 50 incidents x 10 updates (500 CAP), from "
             "scratch (floor: a plain Jinja2 render of every page)", "s", None, 2.0),
            (r"incremental build after one more alert, as a new process \(median of \d+\)\s+([\d.]+) s", "Site "
             "build after one more alert, incremental, as a new process (floor: a plain Jinja2 render of every "
             "page)", "s", None, 2.0),
            (r"the same, in the process that built the last time \(median of \d+\)\s+([\d.]+) s", "Site build "
             "after one more alert, incremental, in the process that built last (floor: the same)", "s", None, 2.0),
            (r"index.html\s+([\d,]+) bytes", "index.html with 50 current alerts", "bytes", 14_000, None),
            (r"cy/index.html\s+([\d,]+) bytes", "cy/index.html with 50 current alerts", "bytes", 14_000, None),
            (r"feed.atom\s+([\d,]+) bytes", "feed.atom, 50 entries", "bytes", 100_000, None),
            (r"whole site\s+([\d,]+) bytes", "Whole site", "bytes", None, None)):
        if found := re.search(pattern, output):
            run.figures.append(Figure(name, number(found[1]), unit, command, target=target,
                                      floor=every_page if floor_target else None, floor_target=floor_target))


def review(run: Run, output: str) -> None:
    events = 0
    for line in output.splitlines():
        if found := re.match(r"^([\d,]+) events in the log", line):
            events = int(number(found[1]))
        elif (found := re.match(r"^  (\S.*?)\s{2,}([\d.]+) s\s+peak\s+([\d.]+) MiB$", line)) and events:
            label = re.sub(r" \(\d+ MB\)$", "", found[1])
            run.figures.append(Figure(f"Review, {events:,} events: {label}", float(found[2]), "s",
                                      "python bench/review.py"))
        elif (found := re.match(r"^ratio ([^:]+): ([\d.]+) s / floor ([\d.]+) s \((.*)\) = [\d.]+x "
                                r"\(target <= ([\d.]+)x\)", line)) and events:
            run.figures.append(Figure(f"Review, {events:,} events: {found[1]} (floor: {found[4]})",
                                      float(found[2]), "s", "python bench/review.py", floor=float(found[3]),
                                      floor_target=float(found[5])))


BULK_TARGET, BULK_STORE_TARGET = 1.2, 1.3  # issue 17: over a plain aiohttp client; issue 18: PostgreSQL over SQLite


def bulk(run: Run, output: str) -> None:
    found = re.search(r"^json: (.*)$", output, re.M)
    if not found:
        return
    command = "python bench/bulk.py --store postgresql"
    results = json.loads(found[1])
    floors = {r["recipients"]: r for r in results if r["run"] == "floor"}
    lite = {r["recipients"]: r for r in results if r["run"] == "broadcast-sqlite"}
    for r in results:
        if not r["run"].startswith("broadcast-"):
            continue
        size, store = f"{r['recipients']:,}", "SQLite" if r["run"].endswith("sqlite") else "PostgreSQL"
        floor = floors.get(r["recipients"])
        run.figures += [
            Figure(f"SMS to {size} recipients, log on {store}: send (floor: a plain aiohttp client)", r["send_s"],
                   "s", command, floor=floor["send_s"] if floor else None, floor_target=BULK_TARGET),
            Figure(f"SMS to {size} recipients, log on {store}: whole warn (floor: the plain client's send)",
                   r["warn_s"], "s", command, floor=floor["send_s"] if floor else None),
            Figure(f"SMS to {size} recipients, log on {store}: CPU per delivery (floor: the plain client's)",
                   r["send_cpu_s"] / r["recipients"], "µs", command,
                   floor=floor["send_cpu_s"] / floor["recipients"] if floor else None),
            Figure(f"SMS to {size} recipients, log on {store}: peak memory", r["peak_rss_mb"], "MiB", command)]
        if store == "PostgreSQL" and r["recipients"] in lite:
            base = lite[r["recipients"]]
            run.figures += [
                Figure(f"SMS to {size} recipients: whole warn, log on PostgreSQL (floor: the same on SQLite)",
                       r["warn_s"], "s", command, floor=base["warn_s"], floor_target=BULK_STORE_TARGET),
                Figure(f"SMS to {size} recipients: send, log on PostgreSQL (floor: the same on SQLite)",
                       r["send_s"], "s", command, floor=base["send_s"], floor_target=BULK_STORE_TARGET)]


# -- start-up, in a fresh venv ------------------------------------------------------------------------------------
def fresh_venv(folder: Path) -> Path:
    """A venv with this checkout installed as a user would (not editable) and Apprise beside it."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print("-- pip install . apprise (into a fresh venv)", flush=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(REPO), "apprise"],
                          cwd=folder, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"pip install failed:\n{done.stdout}{done.stderr}")
    return venv / "bin"


def time_commands(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median wall time of each command: hyperfine if installed, else a timed loop."""
    for name, argv in commands.items():  # each must work before it is timed
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"{name}: {shlex.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    if shutil.which("hyperfine"):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(["hyperfine", "-N", "--warmup", "5", "--runs", str(runs), "--style", "basic",
                            "--export-json", out.name, *[shlex.join(argv) for argv in commands.values()]],
                           check=True)
            results = json.loads(Path(out.name).read_text())["results"]
        return {name: result["median"] for name, result in zip(commands, results, strict=True)}
    medians = {}
    for name, argv in commands.items():
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=False)
            times.append(time.perf_counter() - started)
        medians[name] = statistics.median(times)
        print(f"  {name}: median {medians[name] * 1000:.1f} ms of {runs}", flush=True)
    return medians


def startup(run: Run, bin_: Path, runs: int) -> None:
    dev = Path(sys.executable).parent / "broadcast"
    commands = {"help": [str(bin_ / "broadcast"), "--help"], "pass": [str(bin_ / "python"), "-c", "pass"],
                "version": [str(bin_ / "broadcast"), "--version"], "apprise": [str(bin_ / "apprise"), "--version"],
                "dry-run": [str(bin_ / "broadcast"), "--workspace", str(REPO), *DRY_RUN]}
    if dev.exists():
        commands["dev help"] = [str(dev), "--help"]
    tool = "hyperfine" if shutil.which("hyperfine") else f"a timed loop of {runs} runs"
    print(f"-- start-up, median of {runs} runs with {tool}", flush=True)
    medians = time_commands(commands, runs)
    run.notes.append(f"Start-up: median of {runs} runs after 5 warm-up runs, measured with {tool}.")
    run.figures += [
        Figure("Start-up: `broadcast --help` (floor: `python -c pass`)", medians["help"], "ms", "broadcast --help",
               floor=medians["pass"], floor_target=HELP_TARGET, apprise=medians["apprise"]),
        Figure("Start-up: `broadcast --version` (Apprise: `apprise --version`)", medians["version"], "ms",
               "broadcast --version", apprise=medians["apprise"]),
        Figure("End to end: `broadcast warn school-closure ... --dry-run` (example workspace)", medians["dry-run"],
               "ms", shlex.join(["broadcast", *DRY_RUN]), target=DRY_RUN_TARGET)]
    if "dev help" in medians:
        run.notes.append(f"For comparison, `broadcast --help` from the editable install in the interpreter that ran "
                         f"this script took {medians['dev help'] * 1000:.0f} ms: the editable finder and that "
                         "interpreter's larger site-packages cost start-up time a user's install does not pay.")


# -- the page ---------------------------------------------------------------------------------------------------
def machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    memory = next((int(line.split()[1]) / 2**20 for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0.0)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip() or "unknown"
    return [f"- CPU: {cpu}, {os.cpu_count()} cores" + (f"; memory {memory:.0f} GiB" if memory else ""),
            f"- System: {platform.platform()}", f"- Python {platform.python_version()}; commit {commit}",
            f"- Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"]


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


def chart(figures: list[Figure]) -> str:
    """Two panels of horizontal bars: start-up and fixed overhead against their targets, floors and Apprise, and
    the whole warning beside its floor and Apprise."""
    Row = tuple[str, list[tuple[float, str]], float | None]  # label, (value, colour) per bar, target
    blue, grey, green = "#1d70b8", "#b1b4b6", "#00703c"
    start: list[Row] = []
    for f in (f for f in figures if f.unit == "ms"):
        label = re.sub(r" \(.*|`", "", f.name.split(": ", 1)[-1]).replace("warn school-closure ...", "warn ...")
        bars = ([(f.value * 1000, blue)] + ([(f.floor * 1000, green)] if f.floor is not None else [])
                + ([(f.apprise * 1000, grey)] if f.apprise is not None else []))
        start.append((label, bars, f.target * 1000 if f.target else None))
    fan: list[Row] = [(re.sub(r" \(.*", "", f.name.replace("Whole warning to ", "")).replace(" with faults", "")
                       + (", with faults" if "faults" in f.name else ""),
                       [(f.value, blue), (f.floor or 0.0, green), (f.apprise or 0.0, grey)], None)
                      for f in figures if f.name.startswith("Whole warning") and f.apprise is not None]
    width, left, bar, gap = 900, 260, 14, 10
    fan_title = "A whole warning to webhooks answering in 100 ms (s), beside its floor and Apprise"
    panels = [(p, rows, unit) for p, rows, unit in (("Start-up and a dry run, median of runs (ms)", start, "ms"),
                                                    (fan_title, fan, "s")) if rows]
    height = 60 + sum(30 + sum(len(bars) * bar + gap for _, bars, _ in rows) for _, rows, _ in panels)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             '<text x="10" y="22" font-size="15" font-weight="bold">broadcast beside Apprise</text>',
             f'<rect x="10" y="34" width="12" height="12" fill="{blue}"/><text x="27" y="45">broadcast</text>',
             f'<rect x="110" y="34" width="12" height="12" fill="{grey}"/><text x="127" y="45">Apprise</text>',
             f'<rect x="190" y="34" width="12" height="12" fill="{green}"/><text x="207" y="45">floor</text>',
             '<line x1="260" y1="40" x2="280" y2="40" stroke="#d4351c" stroke-width="2" stroke-dasharray="4 2"/>',
             '<text x="285" y="45">target</text>']
    y = 60
    for title, rows, unit in panels:
        parts.append(f'<text x="10" y="{y + 14}" font-weight="bold">{_esc(title)}</text>')
        y += 30
        top = max([v for _, bars, _ in rows for v, _ in bars] + [t for _, _, t in rows if t]) * 1.2
        scale = (width - left - 80) / top
        for label, bars, target in rows:
            block = len(bars) * bar
            parts.append(f'<text x="{left - 8}" y="{y + block / 2 + 4:.0f}" text-anchor="end">{_esc(label)}</text>')
            for n, (value, colour) in enumerate(bars):
                top_y, shown = y + n * bar, f"{value:.0f} ms" if unit == "ms" else f"{value:.2f} s"
                parts.append(f'<rect x="{left}" y="{top_y}" width="{max(value * scale, 1):.1f}" height="{bar - 2}" '
                             f'fill="{colour}"/><text x="{left + value * scale + 4:.1f}" y="{top_y + bar - 4}">'
                             f'{shown}</text>')
            if target:
                x = left + target * scale
                parts.append(f'<line x1="{x:.1f}" y1="{y - 2}" x2="{x:.1f}" y2="{y + block}" stroke="#d4351c" '
                             f'stroke-width="2" stroke-dasharray="4 2"/><text x="{x + 4:.1f}" y="{y + block - 2}" '
                             f'fill="#d4351c">{target:.0f} ms</text>')
            y += block + gap
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def page_text(run: Run) -> str:
    lines = ["# Performance", "",
             "Written by `python bench/run_all.py`, which runs every benchmark in `bench/` and times the command "
             "line; run it again to reproduce these figures on your machine. Benchmarks measure and assert nothing; "
             "the tests assert behaviour.", "", "## Machine", "", *machine(), "",
             "## Figures", "",
             "Targets are for 2 cores (issue 17's, for the warning and start-up). Floor is the least the same work "
             "costs, measured in the same run: for a warning, a thread per request doing the same POSTs to the same "
             "server (in its own process, answering in 100 ms); with faults, one Retry-After plus two round trips; "
             "for `--help`, `python -c pass`. x floor is the value over it (the target is judged on it); for a warning "
             "without faults, \"by round\" is the ratio in each round of the benchmark (broadcast and the floor run "
             "a moment apart), its median and range: the range is how much of a ratio is this machine's noise. "
             "Apprise / value is Apprise's figure over broadcast's: above 1, broadcast is faster. The fresh-process "
             "figures and start-up use a fresh venv with a normal (non-editable) `pip install .` and Apprise beside "
             "it, as a user would have them.", "",
             "| Figure | Value | Target | Floor | x floor | Apprise | Apprise / value | Command |",
             "|---|---|---|---|---|---|---|---|",
             *[f.row() for f in run.figures], "", "![The figures as a chart](performance.svg)", ""]
    if run.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in run.notes], ""]
    lines += ["## What each benchmark printed", ""]
    for command, output in run.outputs.items():
        lines += [f"<details><summary><code>{_esc(command)}</code></summary>", "", "```", output, "```", "",
                  "</details>", ""]
    return "\n".join(lines)


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    run = Run()
    with tempfile.TemporaryDirectory(prefix="broadcast-bench-") as folder:
        bin_ = fresh_venv(Path(folder))
        if output := bench(run, "warn.py", ["--parts", "clean,faults,fresh", "--python", str(bin_ / "python"),
                                            *(["--quick"] if quick else [])]):
            warn(run, output)
        if output := bench(run, "page.py", []):
            page(run, output)
        if output := bench(run, "review.py", ["2000"] if quick else []):
            review(run, output)
        if output := bench(run, "bulk.py", ["--store", "postgresql", "--sizes",
                                            "2000" if quick else "10000,100000"]):
            bulk(run, output)
        startup(run, bin_, runs=10 if quick else 40)
    DOC.write_text(page_text(run), encoding="utf-8")
    CHART.write_text(chart(run.figures), encoding="utf-8")
    print(f"\nWrote {DOC.relative_to(REPO)} and {CHART.relative_to(REPO)}:\n")
    for figure in run.figures:
        print(f"  {figure.name}: {figure.shown()}" + (f" (target < {figure.shown(figure.target)})"
                                                      if figure.target is not None else ""))


if __name__ == "__main__":
    main()
