"""Instructions per upstream event, counted by valgrind: a yardstick that does not move.

CPU seconds on a shared VM vary 10-20% from minute to minute; instruction counts do not
(two runs agree within about 0.5%). This runs each target under ``valgrind
--tool=callgrind`` with counting switched on only while a fixed load runs: streams whose
every Poe event arrives in its own network read (30 ms apart, far slower than the
target runs under valgrind, so nothing coalesces). It prints the target's user-space
instructions per upstream event, and each as a ratio to the reference converter's.

What it leaves out: the kernel's share (a socket read and write per event, the same for
every target), and what instructions do not show: cache misses, memory. It is a
companion to ``bench/run.py``, not a replacement.

    python bench/instructions.py                       # the three faces, about 3 minutes
    python bench/instructions.py --kinds openai --requests 8

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


def load(port: int, kind: str, requests: int, concurrency: int, delay_ms: float) -> None:
    subprocess.run([PY, str(HERE / "load.py"), "--url", f"http://127.0.0.1:{port}", "--kind",
                    kind, "--count", str(EVENTS), "--size", "20", "--delay-ms", str(delay_ms),
                    "--concurrency", str(concurrency), "--requests", str(requests),
                    "--warmup", "0"], check=True, stdout=subprocess.DEVNULL)


def count(target: str, kind: str, args: argparse.Namespace) -> float:
    """The target's instructions per upstream event for one face."""
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
                             f"--callgrind-out-file={out}", *cmd], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        load(port, kind, 8, 4, 3)  # warm-up: imports, caches, the tokenizer

        def control(*flags: str) -> None:
            subprocess.run(["callgrind_control", *flags, str(proc.pid)], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        control("-i", "on")
        load(port, kind, args.requests, args.concurrency, args.delay_ms)
        control("-i", "off")
        control("-d")
        dumps = sorted(work.glob("callgrind.out*"))
        total = 0
        for dump in dumps:
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith("totals:"):
                    total += int(line.split()[1])
        return total / (args.requests * EVENTS)
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
    p.add_argument("--delay-ms", type=float, default=30.0)
    args = p.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    print("| face | reference instr/event | product instr/event | product vs reference |")
    print("|---|--:|--:|--:|")
    for kind in args.kinds.split(","):
        ref = count("reference", kind, args)
        product = count("product", kind, args)
        print(f"| {kind} | {ref:,.0f} | {product:,.0f} | {product / ref:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
