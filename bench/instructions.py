"""Instructions per upstream event, counted by valgrind: a yardstick that does not move.

CPU seconds on a shared VM vary 10-20% from minute to minute; instruction counts do not
(two runs agree within about 0.5%). This runs each target under ``valgrind
--tool=callgrind`` with counting switched on only while a fixed load runs: streams whose
every Poe event arrives in its own network read (30 ms apart, far slower than the
target runs under valgrind, so nothing coalesces). It prints the target's user-space
instructions per upstream event, and each as a ratio to the reference converter's.

What it leaves out: the kernel's share (a socket read and write per event, the same for
every target), and what instructions do not show: memory, and cache misses unless asked
for. ``--cache`` simulates the caches too (32 KB L1, and a 512 KB last level standing for
one core's L2) with 60 streams open at once, each event 1 s after the last, so that the
streams' memory does not fit: misses per event are what instructions do not count. It is
a companion to ``bench/run.py``, not a replacement.

    python bench/instructions.py                       # the three faces, about 3 minutes
    python bench/instructions.py --kinds openai --requests 8
    python bench/instructions.py --cache               # with cache misses, about 15 minutes
    python bench/instructions.py --kinds openai --events 15   # scenario f's answers

Needs valgrind (``apt-get install valgrind``); Linux only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = os.path.realpath(sys.executable)  # not a shim script: valgrind must run Python itself
EVENTS = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], limit: float = 120.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("the target exited while starting")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the target did not start")


def load(port: int, kind: str, requests: int, concurrency: int, delay_ms: float,
         events: int = EVENTS) -> None:
    subprocess.run([PY, str(HERE / "load.py"), "--url", f"http://127.0.0.1:{port}", "--kind",
                    kind, "--count", str(events), "--size", "20", "--delay-ms", str(delay_ms),
                    "--concurrency", str(concurrency), "--requests", str(requests),
                    "--warmup", "0"], check=True, stdout=subprocess.DEVNULL)


#: Cache simulation (``--cache``): L1 and, as the last level, one core's L2.
CACHE_SIM = ["--cache-sim=yes", "--D1=32768,8,64", "--I1=32768,8,64", "--LL=524288,8,64"]


def count(target: str, kind: str, args: argparse.Namespace) -> dict[str, float]:
    """The target's instructions (``Ir``) per upstream event for one face; with ``--cache``
    also its L1 and last-level misses per event (``L1m``, ``LLm``)."""
    up_port, port = free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="bench-instr-"))
    upstream = subprocess.Popen([PY, str(HERE / "upstream.py"), "--port", str(up_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # valgrind's control pipe is named after $HOST; the product reads HOST too, so it is the
    # same for the target and for callgrind_control.
    env = {**os.environ, "POE_BASE_URL": f"http://127.0.0.1:{up_port}", "HOST": "127.0.0.1",
           "PYTHONUNBUFFERED": "1"}
    if target == "reference":
        cmd = [PY, str(HERE / "reference.py"), "--port", str(port)]
    else:
        env.update({"PYTHONPATH": str(ROOT / "src"), "PORT": str(port), "LOG_LEVEL": "warning",
                    "CONFIG_DIR": str(work), "ADMIN_PASSWORD": "bench-admin-password"})
        cmd = [PY, "-m", "poe2openai"]
    out = work / "callgrind.out"
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                             *(CACHE_SIM if args.cache else []),
                             f"--callgrind-out-file={out}", *cmd], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        load(port, kind, 8, 4, 3)  # warm-up: imports, caches, the tokenizer

        def control(*flags: str) -> None:
            subprocess.run(["callgrind_control", *flags, str(proc.pid)], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        control("-i", "on")
        load(port, kind, args.requests, args.concurrency, args.delay_ms, args.events)
        control("-i", "off")
        control("-d")
        totals: dict[str, int] = {}
        for dump in sorted(work.glob("callgrind.out*")):
            names: list[str] = []
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith("events:"):
                    names = line.split()[1:]
                elif line.startswith("totals:"):
                    for name, value in zip(names, line.split()[1:], strict=False):
                        totals[name] = totals.get(name, 0) + int(value)
        events = args.requests * args.events
        result = {"Ir": totals.get("Ir", 0) / events}
        if args.cache:
            result["L1m"] = sum(totals.get(n, 0) for n in ("I1mr", "D1mr", "D1mw")) / events
            result["LLm"] = sum(totals.get(n, 0) for n in ("ILmr", "DLmr", "DLmw")) / events
        return result
    finally:
        proc.terminate()
        proc.wait()
        upstream.terminate()
        upstream.wait()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kinds", default="openai,responses,messages")
    p.add_argument("--requests", type=int, default=16, help="measured answers per face")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--delay-ms", type=float, default=None,
                   help="between one stream's events (30 ms; 1000 ms with --cache)")
    p.add_argument("--events", type=int, default=EVENTS,
                   help="Poe events per answer (100; fewer weigh the work per request more: "
                        "15 is scenario f's, 1 counts a request)")
    p.add_argument("--cache", action="store_true",
                   help="simulate the caches too (misses per event); 60 streams at once")
    args = p.parse_args()
    if args.cache and "--concurrency" not in sys.argv:
        args.concurrency = args.requests = 60
    if args.delay_ms is None:
        args.delay_ms = 1000.0 if args.cache else 30.0
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    if not args.cache:
        print("| face | reference instr/event | product instr/event | product vs reference |")
        print("|---|--:|--:|--:|")
    else:
        print("| face | target | instr/event | L1 misses/event | L2 misses/event | "
              "instr vs ref | L2 misses vs ref |")
        print("|---|---|--:|--:|--:|--:|--:|")
    for kind in args.kinds.split(","):
        ref = count("reference", kind, args)
        product = count("product", kind, args)
        if not args.cache:
            print(f"| {kind} | {ref['Ir']:,.0f} | {product['Ir']:,.0f} "
                  f"| {product['Ir'] / ref['Ir']:.2f}× |", flush=True)
            continue
        for name, got in (("reference", ref), ("product", product)):
            print(f"| {kind} | {name} | {got['Ir']:,.0f} | {got['L1m']:,.0f} | {got['LLm']:,.0f} "
                  f"| {got['Ir'] / ref['Ir']:.2f}× | {got['LLm'] / ref['LLm']:.2f}× |",
                  flush=True)


if __name__ == "__main__":
    main()
