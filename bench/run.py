"""Benchmark: poe2openai against a minimal reference converter and against Poe itself.

    python bench/run.py                      # full run (~5 min), writes bench/results/latest.md/.json
    python bench/run.py --quick              # ~1 min, small numbers
    python bench/run.py --scenarios a,b --targets reference,product --out /tmp/x.md
    python bench/run.py --profile            # scenario i against the product under py-spy

Every (scenario, target) pair gets fresh processes: a fake Poe (bench/upstream.py), the
target (the fake itself for "direct", bench/reference.py, or ``python -m poe2openai`` from
this checkout's src/), and the load generator (bench/load.py). CPU time and memory are read
from /proc for the target alone, so the load generator's and the upstream's CPU (they share
the machine) do not count against it. See docs-notes.md for what each column means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from benchlib import (
    cpu_seconds,
    listen_overflows,
    machine_cpu_seconds,
    percentile,
    raise_nofile,
    reset_peak_rss,
    status_kb,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PY = sys.executable
TARGETS = ("direct", "reference", "baseline", "product")


@dataclass
class Scenario:
    key: str
    title: str
    count: int = 100
    size: int = 20
    delay_ms: float = 0.0
    concurrency: int = 1
    requests: int = 1_000_000
    duration: float = 10.0
    stream: bool = True
    tools: bool = False
    think: bool = False
    hold: int = 0  # streams held open at once (scenario c)
    ramp: float = 1000.0
    #: the API face: "openai" (Chat Completions), "responses" or "messages" (the product
    #: and the reference answer it; direct reads Poe)
    face: str = "openai"

    def load_args(self) -> list[str]:
        args = ["--count", str(self.count), "--size", str(self.size),
                "--delay-ms", f"{self.delay_ms:g}", "--duration", f"{self.duration:g}"]
        if self.hold:
            args += ["--hold", str(self.hold), "--ramp", f"{self.ramp:g}"]
        else:
            args += ["--concurrency", str(self.concurrency), "--requests", str(self.requests),
                     "--warmup", str(min(100, max(20, 2 * self.concurrency)))]
        if not self.stream:
            args.append("--no-stream")
        if self.tools:
            args.append("--tools")
        if self.think:
            args.append("--think")
        return args

    @property
    def events(self) -> int:
        from benchlib import Spec

        return Spec(self.count, self.size, self.delay_ms, self.think).n_events


def scenarios(quick: bool, duration: float | None) -> dict[str, Scenario]:
    d = duration or (2.0 if quick else 10.0)
    return {s.key: s for s in (
        Scenario("a", "100 chunks × 20 B, no delay, 1 client", concurrency=1,
                 requests=2_000 if quick else 20_000, duration=d),
        Scenario("b", "100 chunks × 20 B, no delay, 50 clients", concurrency=50,
                 requests=10_000 if quick else 100_000, duration=d),
        # Streams start at `ramp` per second and last longer than the ramp, so that all are
        # open together for a few seconds; a faster ramp would measure the accept queue.
        Scenario("c", ("300" if quick else "2,000") + " slow streams open at once, 1 chunk / 100 ms",
                 count=30 if quick else 150, delay_ms=100, hold=300 if quick else 2000,
                 ramp=300 if quick else 200, duration=60),
        Scenario("d", "non-streaming, 100 chunks × 20 B, 20 clients", concurrency=20,
                 stream=False, requests=10_000 if quick else 100_000, duration=d),
        Scenario("e", "as b, with tools + a thinking block", concurrency=50, tools=True,
                 think=True, requests=10_000 if quick else 100_000, duration=d),
        # Not in the issue: (c) at 10 chunks/s per stream saturates a 2-core machine, so
        # its RSS includes backlog; this one holds as many streams nearly idle.
        Scenario("f", ("300" if quick else "2,000") + " open streams, 1 chunk / s "
                 "(memory per stream without CPU saturation)", count=5 if quick else 15,
                 delay_ms=1000, hold=300 if quick else 2000, ramp=300 if quick else 200,
                 duration=60),
        # The other two API faces, as b.
        Scenario("g", "as b, the Responses API (POST /v1/responses, store: false)",
                 concurrency=50, requests=10_000 if quick else 100_000, duration=d,
                 face="responses"),
        Scenario("h", "as b, the Anthropic Messages API (POST /v1/messages)", concurrency=50,
                 requests=10_000 if quick else 100_000, duration=d, face="messages"),
        # One Poe event per network read, as real token pacing arrives (50 ms apart), on
        # many streams at once: coalescing cannot hide the cost per event. One per face.
        *(Scenario(key, f"{'150' if quick else '500'} streams, one event per read "
                   f"(1 chunk / 50 ms), {title}", count=40 if quick else 100, delay_ms=50,
                   hold=150 if quick else 500, ramp=150 if quick else 250, duration=60,
                   face=face)
          for key, face, title in (("i", "openai", "Chat Completions"),
                                   ("j", "responses", "Responses"),
                                   ("k", "messages", "Messages"))),
        Scenario("z", "tmp", count=2, delay_ms=50, hold=500, ramp=250, duration=60),
        Scenario("y", "tmp", count=1, concurrency=50, requests=100_000, duration=d),
    )}


# ---- processes -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    proc: asyncio.subprocess.Process
    log: Path
    port: int = 0
    startup_ms: float | None = None
    idle_rss_kb: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()


async def http_get(port: int, path: str, limit: float = 2.0) -> tuple[int, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), limit)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                     .encode())
        raw = await asyncio.wait_for(reader.read(), limit)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    if b"chunked" in head.lower():
        body = _unchunk(body)
    return status, body


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


async def start_server(name: str, argv: list[str], port: int, env: dict[str, str],
                       logdir: Path, limit: float = 30.0) -> Proc:
    """Start a server and time it from exec to its /healthz answering 200."""
    log = logdir / f"{name}.log"
    with _open_log(log) as out:
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=str(ROOT), preexec_fn=_die_with_parent)
    p = Proc(name, proc, log, port)
    deadline = t0 + limit
    while True:
        if proc.returncode is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{p.log_tail()}")
        try:
            status, _ = await http_get(port, "/healthz", 1.0)
            if status == 200:
                break
        except (OSError, TimeoutError, ValueError, IndexError):
            pass
        if time.perf_counter() > deadline:
            await p.stop()
            raise RuntimeError(f"{name} did not answer /healthz within {limit:g} s:\n"
                               f"{p.log_tail()}")
        await asyncio.sleep(0.003)
    p.startup_ms = (time.perf_counter() - t0) * 1000
    p.idle_rss_kb = status_kb(proc.pid, "VmRSS")
    return p


def _die_with_parent() -> None:
    """In a child before exec: get SIGTERM if the driver dies, so no server is left behind."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _open_log(path: Path) -> Any:
    return open(path, "wb")


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POE_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def start_target(target: str, upstream: Proc, logdir: Path,
                       baseline_src: str | None = None) -> Proc:
    """``product`` runs this checkout's src/; ``baseline`` runs the product from
    ``--baseline-src`` (e.g. a git worktree of an older commit), to compare two versions."""
    if target == "direct":
        return upstream
    port = free_port()
    env = base_env()
    env["POE_BASE_URL"] = f"http://127.0.0.1:{upstream.port}"
    if target == "reference":
        return await start_server("reference", [PY, str(HERE / "reference.py"), "--port",
                                                str(port)], port, env, logdir)
    config = logdir / "config"
    config.mkdir(exist_ok=True)
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [
            baseline_src if target == "baseline" else str(ROOT / "src"), env.get("PYTHONPATH")])),
        "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "warning",
        "CONFIG_DIR": str(config), "ADMIN_PASSWORD": "bench-admin-password",
        "POE_FILE_UPLOAD_URL": f"http://127.0.0.1:{upstream.port}/upload",
    })
    return await start_server(target, [PY, "-m", "poe2openai"], port, env, logdir)


class LoadProc:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def expect(self, prefix: str, limit: float) -> str:
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), limit)
            if not line:
                raise RuntimeError(f"load generator ended before {prefix}")
            text = line.decode().rstrip("\n")
            if text.startswith(prefix):
                return text[len(prefix):].strip()


# ---- one measurement ------------------------------------------------------------------

async def measure(scn: Scenario, target: str, args: argparse.Namespace, logdir: Path
                  ) -> dict[str, Any]:
    rec: dict[str, Any] = {"scenario": scn.key, "target": target}
    up_port = free_port()
    upstream = await start_server("upstream", [PY, str(HERE / "upstream.py"), "--port",
                                               str(up_port)], up_port, base_env(), logdir)
    procs = [upstream]
    loads: list[LoadProc] = []
    profilers: list[asyncio.subprocess.Process] = []
    try:
        tgt = await start_target(target, upstream, logdir, args.baseline_src)
        if tgt is not upstream:
            procs.append(tgt)
        rec["startup_ms"] = tgt.startup_ms
        rec["idle_rss_kb"] = tgt.idle_rss_kb
        url = f"http://127.0.0.1:{tgt.port}"
        kind = "direct" if target == "direct" else scn.face
        n = max(1, args.load_procs)
        for i in range(n):
            extra = scn.load_args()
            if scn.hold:
                extra[extra.index("--hold") + 1] = str(scn.hold // n + (i < scn.hold % n))
                extra[extra.index("--ramp") + 1] = f"{scn.ramp / n:g}"  # same total rate
            else:
                c = scn.concurrency // n + (i < scn.concurrency % n)
                extra[extra.index("--concurrency") + 1] = str(max(1, c))
                extra[extra.index("--requests") + 1] = str(scn.requests // n)
            with _open_log(logdir / f"load{i}.log") as err:
                proc = await asyncio.create_subprocess_exec(
                    PY, str(HERE / "load.py"), "--url", url, "--kind", kind, "--wait-go", *extra,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=base_env(),
                    cwd=str(ROOT), limit=1 << 28,  # RESULT lines carry every latency
                    preexec_fn=_die_with_parent)
            loads.append(LoadProc(proc))
        for lp in loads:
            await lp.expect("READY", 120)

        _, stats0 = await http_get(up_port, "/stats")
        cpu0 = cpu_seconds(tgt.pid)
        up_cpu0 = cpu_seconds(upstream.pid)
        rec["base_rss_kb"] = status_kb(tgt.pid, "VmRSS")
        rec["peak_reset"] = reset_peak_rss(tgt.pid)
        overflows0 = listen_overflows()
        busy0, steal0 = machine_cpu_seconds()
        if args.profile:
            profilers = await start_profilers(tgt.pid, scn, args)
        for lp in loads:
            assert lp.proc.stdin is not None
            lp.proc.stdin.write(b"GO\n")
            await lp.proc.stdin.drain()
        if scn.hold:
            opened = [await lp.expect("OPEN", scn.duration + 60) for lp in loads]
            rss = []
            for _ in range(5):  # all streams are open now; they stay open for seconds
                rss.append(status_kb(tgt.pid, "VmRSS"))
                await asyncio.sleep(0.1)
            rec["open_rss_kb"] = max(rss)
            rec["opened"] = sum(int(o.split()[0]) for o in opened)
            rec["open_after_s"] = max(float(o.split()[1]) for o in opened)
        results = [orjson.loads(await lp.expect("RESULT", scn.duration + 600)) for lp in loads]
        rec["cpu_s"] = cpu_seconds(tgt.pid) - cpu0
        rec["upstream_cpu_s"] = cpu_seconds(upstream.pid) - up_cpu0
        busy1, steal1 = machine_cpu_seconds()
        rec["machine_busy_s"], rec["steal_s"] = busy1 - busy0, steal1 - steal0
        rec["peak_rss_kb"] = status_kb(tgt.pid, "VmHWM")
        rec["listen_overflows"] = listen_overflows() - overflows0
        _, stats1 = await http_get(up_port, "/stats")
        s0, s1 = orjson.loads(stats0), orjson.loads(stats1)
        rec["upstream_connections"] = s1["connections"] - s0["connections"] - 1
        rec["upstream_requests"] = s1["requests"] - s0["requests"] - 1
        if profilers:
            for p in profilers:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGINT)
            await asyncio.gather(*(p.wait() for p in profilers))
        merge(rec, results)
        if tgt.proc.returncode is not None:
            rec["target_exit"] = tgt.proc.returncode
    finally:
        for lp in loads:
            if lp.proc.returncode is None:
                lp.proc.kill()
            await lp.proc.wait()
        for p in reversed(procs):
            await p.stop()
        for p in procs:
            tail = p.log_tail()
            if tail and (p.name != "upstream" or "Traceback" in tail):
                rec.setdefault("logs", {})[p.name] = tail
    return rec


def merge(rec: dict[str, Any], results: list[dict[str, Any]]) -> None:
    ttfc = [v for r in results for v in r["ttfc_ms"]]
    total = [v for r in results for v in r["total_ms"]]
    errors: dict[str, int] = defaultdict(int)
    modes: dict[str, int] = defaultdict(int)
    for r in results:
        for k, v in r["error_kinds"].items():
            errors[k] += v
        for k, v in r["modes"].items():
            modes[k] += v
    elapsed = max(r["elapsed"] for r in results)
    ok = sum(r["ok"] for r in results)
    events = sum(r["events"] for r in results)
    rec.update({
        "elapsed_s": elapsed,
        "requests": sum(r["requests"] for r in results),
        "ok": ok,
        "errors": sum(r["errors"] for r in results),
        "error_kinds": dict(errors),
        "modes": dict(modes),
        "events": events,
        "frames": sum(r["frames"] for r in results),
        "content_bytes": sum(r["content_bytes"] for r in results),
        "load_cpu_s": sum(r["cpu_s"] for r in results),
        "rps": ok / elapsed if elapsed else 0.0,
        "chunks_per_s": events / elapsed if elapsed else 0.0,
        "ttfc_p50_ms": percentile(ttfc, 50), "ttfc_p95_ms": percentile(ttfc, 95),
        "ttfc_p99_ms": percentile(ttfc, 99),
        "total_p50_ms": percentile(total, 50), "total_p99_ms": percentile(total, 99),
        "ttfc_ms": _dist(ttfc), "total_ms": _dist(total),
        "cpu_per_1k_chunks_s": rec["cpu_s"] / (events / 1000) if events else None,
        # The same, in units of the fake Poe's own CPU time in this measurement: the fake
        # sends the same events to every target, so its CPU time is a yardstick of how fast
        # the machine ran meanwhile (a shared VM drifts by 10-20% from minute to minute).
        "cpu_vs_fake": (rec["cpu_s"] / rec["upstream_cpu_s"]
                        if rec["target"] != "direct" and rec["upstream_cpu_s"] > 0 else None),
        "cpu_util": rec["cpu_s"] / elapsed if elapsed else None,
        # CPU of the rest of the machine: the load generator, and the fake Poe unless it
        # is the target itself ("direct").
        "others_cpu_util": (sum(r["cpu_s"] for r in results)
                            + (rec["upstream_cpu_s"] if rec["target"] != "direct" else 0)
                            ) / elapsed if elapsed else None,
    })
    # Whatever else ran on the machine meanwhile (other users, other jobs): machine-wide
    # busy time minus our own processes'. Large values make the run unreliable.
    ours = rec["cpu_s"] + rec["load_cpu_s"] + (
        rec["upstream_cpu_s"] if rec["target"] != "direct" else 0)
    rec["background_cpu_util"] = max(0.0, rec["machine_busy_s"] - ours) / elapsed
    if "open_rss_kb" in rec and rec.get("opened"):
        rec["rss_per_stream_kb"] = (rec["open_rss_kb"] - rec["base_rss_kb"]) / rec["opened"]


def _dist(values: list[float]) -> dict[str, float | None]:
    """The shape of a latency sample (ms) for the JSON file."""
    if not values:
        return {}
    return {"n": len(values), "min": min(values), "mean": sum(values) / len(values),
            **{f"p{q:g}": percentile(values, q) for q in (10, 50, 90, 95, 99, 99.9)},
            "max": max(values)}


async def start_profilers(pid: int, scn: Scenario, args: argparse.Namespace
                          ) -> list[asyncio.subprocess.Process]:
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    out = Path(args.out).with_suffix("")
    procs = []
    for fmt, path in (("flamegraph", out.with_suffix(".svg")),
                      ("raw", out.with_suffix(".stacks.txt"))):
        procs.append(await asyncio.create_subprocess_exec(
            spy, "record", "--pid", str(pid), "--rate", str(args.profile_rate), "--format", fmt,
            "--duration", str(int(scn.duration + 30)), "-o", str(path),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent))
    await asyncio.sleep(0.5)  # let py-spy attach before the load starts
    return procs


# ---- report -----------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    info: dict[str, Any] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    info["cores"] = os.cpu_count()
    with contextlib.suppress(AttributeError):
        info["cores_usable"] = len(os.sched_getaffinity(0))
    info["kernel"] = platform.release()
    info["python"] = platform.python_version()
    import aiohttp

    info["aiohttp"] = aiohttp.__version__
    info["orjson"] = orjson.__version__
    try:
        import uvloop

        info["uvloop"] = f"on ({uvloop.__version__})"
    except ImportError:
        info["uvloop"] = "off (not installed)"
    sys.path.insert(0, str(ROOT / "src"))
    try:
        import poe2openai

        info["poe2openai"] = poe2openai.__version__
    except ImportError:
        info["poe2openai"] = "?"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        info["commit"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True,
            capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"],
                               capture_output=True, text=True).stdout.strip()
        if dirty:
            info["commit"] += " (src modified)"
    return info


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    return str(v)


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "–"
    return f"{a / b:.2f}×"


FACES = {"openai": "Chat", "responses": "Responses", "messages": "Messages"}


def added_ttfc(x: dict[str, Any] | None, d: dict[str, Any] | None, q: str) -> float | None:
    """Time to first chunk at quantile ``q`` over reading Poe directly, ms."""
    if not x or not d or x[f"ttfc_{q}_ms"] is None or d[f"ttfc_{q}_ms"] is None:
        return None
    return float(x[f"ttfc_{q}_ms"] - d[f"ttfc_{q}_ms"])


def signed(v: float | None) -> str:
    return "–" if v is None else f"{v:+.2f}"


def added_ratio(p: float | None, ref: float | None) -> str:
    """The product's added time over the reference's (both ≥ 0.05 ms, or it says so)."""
    if p is None or ref is None:
        return "–"
    if ref < 0.05:
        return "ref +0"
    return f"{max(p, 0.0) / ref:.2f}×"


#: The performance targets, checked over one run: (what, measured, limit, unit) rows.
def targets(data: dict[str, Any], by: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    rows: list[tuple[str, float | None, float, str]] = []

    def rel(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    for key, scn in data["scenarios"].items():
        p, ref = by.get((key, "product")), by.get((key, "reference"))
        if not p or not ref or scn["delay_ms"] < 20:
            continue  # only paced streams arrive one event per read
        face = FACES.get(scn.get("face", "openai"), "?")
        rows.append((f"{key} ({face}): CPU per upstream event vs reference, in units of the "
                     "fake Poe's CPU (raw ratio: "
                     f"{ratio(p['cpu_per_1k_chunks_s'], ref['cpu_per_1k_chunks_s'])})",
                     rel(p.get("cpu_vs_fake"), ref.get("cpu_vs_fake")), 1.0, "×"))
        if p.get("rss_per_stream_kb") is not None:
            rows.append((f"{key} ({face}): RSS per open stream vs reference",
                         rel(p["rss_per_stream_kb"], ref.get("rss_per_stream_kb")), 1.0, "×"))
        if scn["hold"] >= 2000:
            rows.append((f"{key}: {scn['hold']:,} streams, errors", float(p["errors"]), 0, ""))
            rows.append((f"{key}: {scn['hold']:,} streams, TTFC p50 vs reference",
                         rel(p["ttfc_p50_ms"], ref["ttfc_p50_ms"]), 2.0, "×"))
    recs = [r for r in data["results"] if r["target"] == "product"]
    starts = [r["startup_ms"] for r in recs if r.get("startup_ms")]
    idle = [r["idle_rss_kb"] for r in recs if r.get("idle_rss_kb")]
    if starts:
        rows.append(("start-up to /healthz (s)", percentile(starts, 50) / 1000, 0.5, " s"))
    if idle:
        rows.append(("idle RSS (MB)", percentile(idle, 50) / 1024, 50.0, " MB"))
    if not rows:
        return []
    out = ["", "Targets (product, this run):", "", "| target | measured | limit | met |",
           "|---|--:|--:|---|"]
    for what, value, limit, unit in rows:
        shown = "–" if value is None else (f"{value:.2f}{unit}" if unit else f"{value:g}")
        met = "–" if value is None else ("yes" if value <= limit else "**no**")
        out.append(f"| {what} | {shown} | {limit:g}{unit} | {met} |")
    return out


def report(data: dict[str, Any]) -> str:
    m = data["machine"]
    recs = data["results"]
    lines = [
        f"# poe2openai benchmark — {data['date']}" + (" (quick)" if data["quick"] else ""),
        "",
        f"Machine: {m.get('cpu', '?')}, {m.get('cores')} cores ({m.get('cores_usable')} usable), "
        f"Linux {m.get('kernel')}; Python {m['python']}, aiohttp {m['aiohttp']}, "
        f"orjson {m['orjson']}, uvloop {m['uvloop']}; poe2openai {m.get('poe2openai')} "
        f"at {m.get('commit', '?')}.",
        "",
        f"Command: `{data['command']}`. Load generator processes: {data['load_procs']}. "
        "Everything runs on this machine over 127.0.0.1, so the target shares the CPU with "
        "the load generator and the fake Poe; CPU and memory are the target process's own "
        "(from /proc).",
        "",
        "Scenarios:",
        "",
    ]
    for key, s in data["scenarios"].items():
        lines.append(f"- **{key}**: {s['title']} ({s['events']} upstream text events per "
                     f"answer; " + (f"{s['hold']} streams" if s["hold"] else
                                    f"cap {s['duration']:g} s / {s['requests']:,} requests")
                     + ")")
    lines += [
        "",
        "| scn | target | req/s | chunks/s | content MB | TTFC p50 | p95 | p99 (ms) | total p50 "
        "| p99 (ms) "
        "| CPU s / 1k upstream events | CPU % | gen+fake CPU % | bg CPU % | peak RSS MB "
        "| RSS / stream KB | frames / answer | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in recs:
        if "error" in r:
            lines.append(f"| {r['scenario']} | {r['target']} | failed: {r['error'][:120]} "
                         "||||||||||||||||")
            continue
        lines.append(
            f"| {r['scenario']} | {r['target']} | {fmt(r['rps'])} | {fmt(r['chunks_per_s'], 0)} "
            f"| {fmt(r['content_bytes'] / 1e6)} "
            f"| {fmt(r['ttfc_p50_ms'], 2)} | {fmt(r['ttfc_p95_ms'], 2)} "
            f"| {fmt(r['ttfc_p99_ms'], 2)} | {fmt(r['total_p50_ms'], 2)} "
            f"| {fmt(r['total_p99_ms'], 2)} | {fmt(r['cpu_per_1k_chunks_s'], 3)} "
            f"| {fmt(100 * r['cpu_util'] if r['cpu_util'] is not None else None, 0)} "
            f"| {fmt(100 * r['others_cpu_util'] if r['others_cpu_util'] is not None else None, 0)} "
            f"| {fmt(100 * r['background_cpu_util'], 0)} "
            f"| {fmt(r['peak_rss_kb'] / 1024)} | {fmt(r.get('rss_per_stream_kb'))} "
            f"| {fmt(r['frames'] / r['ok'] if r['ok'] else None)} "
            f"| {r['errors']}{' ' + str(r['error_kinds']) if r['errors'] else ''} |")
    drops = [f"{r['scenario']}/{r['target']} {r['listen_overflows']}" for r in recs
             if r.get("listen_overflows")]
    if drops:
        lines += ["", "Listen-queue overflows (the kernel dropped a new connection's SYN because "
                  "the server's accept backlog was full; that client retried 1 s later): "
                  + ", ".join(drops) + "."]
    lines += ["", "Product compared with the reference converter and with Poe direct. "
              "\"Added\" is the time to first chunk over reading Poe directly in the same "
              "scenario; its ratio is the product's added time over the reference's:", "",
              "| scn | face | req/s vs ref | vs direct | CPU / upstream event vs ref "
              "| same, in fake-Poe CPU units | RSS / stream vs ref | TTFC p50 added (ms) "
              "| vs ref | TTFC p99 added (ms) | vs ref | peak RSS vs ref | reasoning parsed |",
              "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    by = {(r["scenario"], r["target"]): r for r in recs if "error" not in r}
    for key in data["scenarios"]:
        p, ref, d = by.get((key, "product")), by.get((key, "reference")), by.get((key, "direct"))
        if not p:
            continue
        scn = data["scenarios"][key]
        parsed = f"{p['modes'].get('parsed', 0)} of {p['ok']}"
        p50, p99 = added_ttfc(p, d, "p50"), added_ttfc(p, d, "p99")
        r50, r99 = added_ttfc(ref, d, "p50"), added_ttfc(ref, d, "p99")
        lines.append(
            f"| {key} | {FACES.get(scn.get('face', 'openai'), '?')} "
            f"| {ratio(p['rps'], ref and ref['rps'])} | {ratio(p['rps'], d and d['rps'])} "
            f"| {ratio(p['cpu_per_1k_chunks_s'], ref and ref['cpu_per_1k_chunks_s'])} "
            f"| {ratio(p.get('cpu_vs_fake'), ref and ref.get('cpu_vs_fake'))} "
            f"| {ratio(p.get('rss_per_stream_kb'), ref and ref.get('rss_per_stream_kb'))} "
            f"| {signed(p50)} | {added_ratio(p50, r50)} | {signed(p99)} | {added_ratio(p99, r99)} "
            f"| {ratio(p['peak_rss_kb'], ref and ref['peak_rss_kb'])} "
            f"| {parsed if scn['think'] else '–'} |")
    lines += targets(data, by)
    if any(r["target"] == "baseline" for r in recs):
        lines += ["", f"Product (this checkout) compared with the baseline (the product from "
                  f"`{data.get('baseline_src')}`), same run:", "",
                  "| scn | req/s vs baseline | TTFC p50 added (ms) | CPU / chunk vs baseline "
                  "| peak RSS vs baseline | RSS / stream vs baseline |",
                  "|---|--:|--:|--:|--:|--:|"]
        for key in data["scenarios"]:
            p, b = by.get((key, "product")), by.get((key, "baseline"))
            if not p or not b:
                continue
            gap = ("–" if p["ttfc_p50_ms"] is None or b["ttfc_p50_ms"] is None
                   else f"{p['ttfc_p50_ms'] - b['ttfc_p50_ms']:+.2f}")
            lines.append(
                f"| {key} | {ratio(p['rps'], b['rps'])} | {gap} "
                f"| {ratio(p['cpu_per_1k_chunks_s'], b['cpu_per_1k_chunks_s'])} "
                f"| {ratio(p['peak_rss_kb'], b['peak_rss_kb'])} "
                f"| {ratio(p.get('rss_per_stream_kb'), b.get('rss_per_stream_kb'))} |")
    lines += ["", "Startup and footprint (median over every start in this run):", "",
              "| target | start → /healthz (ms) | idle RSS MB | starts |", "|---|--:|--:|--:|"]
    for target in data["targets"]:
        starts = [r["startup_ms"] for r in recs if r["target"] == target and r.get("startup_ms")]
        rss = [r["idle_rss_kb"] for r in recs if r["target"] == target and r.get("idle_rss_kb")]
        if starts:
            lines.append(f"| {target}{' (fake Poe)' if target == 'direct' else ''} "
                         f"| {fmt(percentile(starts, 50), 0)} "
                         f"| {fmt(percentile(rss, 50) / 1024)} | {len(starts)} |")
    for r in recs:
        if r.get("logs"):
            lines += ["", f"Log tail of {r['scenario']}/{r['target']}:", "", "```"]
            for name, tail in r["logs"].items():
                lines += [f"[{name}]", tail]
            lines.append("```")
    if data.get("profile"):
        lines += ["", "## Profile", "", "```", data["profile"], "```"]
    return "\n".join(lines) + "\n"


def profile_summary(raw: Path, top: int = 25) -> str:
    """Top functions of a py-spy raw (collapsed-stack) file: self and inclusive share."""
    own: dict[str, int] = defaultdict(int)
    incl: dict[str, int] = defaultdict(int)
    areas: dict[str, int] = defaultdict(int)
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        if frames[-1].startswith("_worker (") and "thread.py" in frames[-1]:
            idle += n  # a thread-pool worker waiting for work: py-spy counts it, it is no CPU
            continue
        total += n
        areas[_area(frames)] += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        return "no samples"
    out = [f"{total} samples of the target's busy time (py-spy leaves out the event loop's "
           f"idle waits; {idle} more samples of thread-pool workers waiting for work are left "
           "out here too)", "", "by area:"]
    out += [f"  {100 * n / total:5.1f}%  {a}" for a, n in
            sorted(areas.items(), key=lambda kv: -kv[1])]
    out += ["", f"self time (top {top}):"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in
            sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    out += ["", f"inclusive time (top {top}):"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in
            sorted(incl.items(), key=lambda kv: -kv[1])[:top]]
    out += ["", "inclusive time of poe2openai's functions (with what they call):"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in
            sorted(incl.items(), key=lambda kv: -kv[1]) if "(poe2openai/" in f
            and not f.startswith(("<module> ", "main "))][:top]
    return "\n".join(out)


def _area(frames: list[str]) -> str:
    """Where a sample's time goes, for the summary's first table."""
    if any(f.startswith(("netrc_from_env ", "get_env_proxy_for_url ", "_get_netrc_auth "))
           for f in frames):
        return "proxy / netrc lookups per upstream request (ClientSession trust_env)"
    if any(f.startswith(("ThreadPoolExecutor.submit", "_chain_future", "run_in_executor"))
           for f in frames):
        return "handing work to the thread pool"
    leaf = frames[-1]
    if leaf.startswith(("run_app ", "Runner.run ", "run ", "run_forever ")):
        return "event loop and socket I/O in C (uvloop), below Python"
    if "(poe2openai/" in leaf:
        return "poe2openai's own code"
    if "(aiohttp/" in leaf:
        return "aiohttp (HTTP server, client, streams)"
    if "(asyncio/" in leaf:
        return "asyncio (Python part)"
    if "orjson" in leaf or leaf.startswith(("loads ", "dumps ")):
        return "JSON"
    return "other (stdlib, ...)"


def _frame(f: str) -> str:
    """``func (path/to/file.py:123)`` → ``func (file.py)``, keeping the package for ours."""
    name, _, where = f.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    if "poe2openai" in path:
        path = "poe2openai/" + path.split("poe2openai/", 1)[-1]
    else:
        parts = path.split("/")
        path = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({path})"


# ---- main ------------------------------------------------------------------------------

async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    all_scn = scenarios(args.quick, args.duration)
    keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for k in keys:
        if k not in all_scn:
            raise SystemExit(f"unknown scenario {k!r}; choose from {', '.join(all_scn)}")
    for t in targets:
        if t not in TARGETS:
            raise SystemExit(f"unknown target {t!r}; choose from {', '.join(TARGETS)}")
    if "baseline" in targets and not args.baseline_src:
        raise SystemExit("target 'baseline' needs --baseline-src DIR (another checkout's src/)")
    data: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "command": "python bench/run.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "load_procs": args.load_procs,
        "baseline_src": args.baseline_src,
        "targets": targets,
        "scenarios": {k: {**vars(all_scn[k]), "events": all_scn[k].events} for k in keys},
        "results": [],
    }
    started = time.perf_counter()
    attempts: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="poe2openai-bench-") as tmp:
        # Repeats go round every pair in turn (not one pair N times), so that a slower
        # stretch of the machine falls on every target alike.
        for i in range(max(1, args.repeat)):
            for k in keys:
                for t in targets:
                    logdir = Path(tmp) / f"{k}-{t}-{i}"
                    logdir.mkdir()
                    print(f"[{time.perf_counter() - started:6.1f}s] scenario {k} → {t}"
                          f"{f' (round {i + 1})' if args.repeat > 1 else ''} …",
                          end="", flush=True)
                    try:
                        rec = await measure(all_scn[k], t, args, logdir)
                    except Exception as exc:  # a failed pair is reported, the run goes on
                        rec = {"scenario": k, "target": t,
                               "error": f"{type(exc).__name__}: {exc}"}
                        print(" FAILED:", rec["error"], flush=True)
                    else:
                        print(f" {rec['rps']:.0f} req/s, {rec['chunks_per_s']:.0f} chunks/s, "
                              f"TTFC p50 {fmt(rec['ttfc_p50_ms'], 2)} ms, "
                              f"{fmt(rec['cpu_per_1k_chunks_s'], 3)} CPU s/1k events, "
                              f"bg {100 * rec['background_cpu_util']:.0f}%, "
                              f"{rec['errors']} errors", flush=True)
                    attempts[k, t].append(rec)
    for k in keys:
        for t in targets:
            data["results"].append(pick(attempts[k, t]))
    data["wall_s"] = time.perf_counter() - started
    return data


def pick(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """Of repeated attempts at one pair, the one with the median CPU per upstream event in
    units of the fake Poe's CPU (the lower middle of an even count); any failed attempt is
    reported instead."""
    failed = [r for r in attempts if "error" in r or r.get("errors")]
    if failed or len(attempts) == 1:
        best = failed[0] if failed else attempts[0]
    else:
        ranked = sorted(attempts, key=lambda r: r.get("cpu_vs_fake")
                        or r["cpu_per_1k_chunks_s"] or 0.0)
        best = ranked[(len(ranked) - 1) // 2]
    if len(attempts) > 1:
        best = {**best, "attempts": attempts}
    return best


def write_report(data: dict[str, Any], args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.profile:
        raw = out.with_suffix(".stacks.txt")
        if raw.exists():
            data["profile"] = profile_summary(raw)
            out.with_suffix(".top.txt").write_text(data["profile"] + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = report(data)
    out.write_text(text)
    out.with_suffix(".json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    print()
    print(text)
    print(f"Wrote {out} and {out.with_suffix('.json')} in {data['wall_s']:.0f} s.")
    return 1 if any("error" in r or r.get("errors") for r in data["results"]) else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small numbers, about a minute")
    p.add_argument("--scenarios", default="a,b,c,d,e,f,g,h,i,j,k",
                   help="comma-separated, from a,b,c,d,e,f,g,h,i,j,k")
    p.add_argument("--targets", default="direct,reference,product",
                   help="from direct,reference,baseline,product")
    p.add_argument("--baseline-src", metavar="DIR",
                   help="the 'baseline' target runs the product from this src/ folder "
                        "(e.g. a git worktree of an older commit) for a version comparison")
    p.add_argument("--duration", type=float, help="time cap per closed-loop scenario, s")
    p.add_argument("--load-procs", type=int, default=1, help="load generator processes")
    p.add_argument("--repeat", type=int, default=1,
                   help="measure each pair N times, round by round, and report the attempt "
                        "with the median CPU per upstream event")
    p.add_argument("--out", default=str(HERE / "results" / "latest.md"),
                   help="markdown report; the raw numbers go next to it as .json")
    p.add_argument("--profile", action="store_true",
                   help="attach py-spy to the target during the load: writes <out>.svg "
                        "(flame graph), <out>.stacks.txt (collapsed stacks) and "
                        "<out>.top.txt (summary); defaults to scenario i, the product, "
                        "and --out bench/results/profile.md")
    p.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--render", metavar="JSON",
                   help="run nothing: rewrite the markdown report of an earlier run's .json")
    args = p.parse_args()
    if args.render:
        path = Path(args.render)
        path.with_suffix(".md").write_text(report(orjson.loads(path.read_bytes())))
        print(f"Wrote {path.with_suffix('.md')}")
        return 0
    if args.profile and "--scenarios" not in " ".join(sys.argv):
        args.scenarios = "i"
    if args.profile and "--targets" not in " ".join(sys.argv):
        args.targets = "product"
    if args.profile and "--out" not in " ".join(sys.argv):
        args.out = str(HERE / "results" / "profile.md")
    raise_nofile()
    return write_report(asyncio.run(main_async(args)), args)


if __name__ == "__main__":
    sys.exit(main())
