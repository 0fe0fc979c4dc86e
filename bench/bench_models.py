#!/usr/bin/env python
"""Models (issue 13): save, load and serve one scikit-learn model, gitml against MLflow 3.x.

The model is a ``LogisticRegression(max_iter=500)`` fitted on iris (150 rows, 4 columns) in
each tool's own process from the same data, so both save and serve the same coefficients; a
linear model keeps the scikit-learn predict itself small (about a millisecond on a one-row
DataFrame, most of it scikit-learn checking the frame), so the serving figures measure the servers. Each measurement runs in a fresh process per tool:

- **save**: ``gitml.save_model(model, dir, input_example=X[:3])`` against
  ``mlflow.sklearn.save_model(model, dir, input_example=X[:3])`` with MLflow's defaults (it
  infers requirements in a subprocess) and, as a second MLflow row, with
  ``pip_requirements=["scikit-learn"]`` given (no inference). ``serialization_format`` is
  ``cloudpickle`` on the MLflow side (its default, skops, needs trusted types named for some
  models; for this one it works, but pickle formats are what both tools load the same way).
  First save in the process, and the median of ``--reps`` more;
- **load**: ``gitml.load_model(dir)`` and ``mlflow.pyfunc.load_model(dir)``, median of ``--reps``;
- **serve** (unless ``--no-serve``): ``gitml models serve -m dir`` and ``mlflow models serve -m dir
  --env-manager local`` on free loopback ports, 1 worker each: seconds from start to the first
  ``GET /ping`` 200; ``--requests`` sequential one-row ``POST /invocations``
  (``{"dataframe_split": …}``, one keep-alive connection, the raw client described next) p50 and p99 in ms,
  from sending the request to reading the whole answer; requests per second
  with 8 concurrent keep-alive connections for ``--seconds`` (a raw asyncio client, so the load
  generator takes little of the 2 cores the servers share with it). Both servers run at once and
  are measured in ``--rounds`` alternating rounds (see ``serve_both``); requests/s is the median
  round.

Run from the repository root (MLflow in its own virtualenv, as ``.ci/run`` installs it)::

    python bench/bench_models.py --mlflow-python /tmp/gitml-ci-mlflow/bin/python

It prints one Markdown report (``--out FILE`` writes it too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_model

HERE = Path(__file__).resolve().parent
RESULT = "BENCH_RESULT "

WORKER = r'''
import json, os, statistics, sys, time
spec = json.loads(sys.argv[1])
t_import = time.perf_counter()
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True, as_frame=True)
model = LogisticRegression(max_iter=500).fit(X, y)
out = {}
folder = spec["folder"]
if spec["tool"] == "gitml":
    import gitml
    def save(path):
        gitml.save_model(model, path, input_example=X[:3])
    def load(path):
        return gitml.load_model(path)
else:
    import mlflow.pyfunc, mlflow.sklearn
    extra = {"pip_requirements": ["scikit-learn"]} if spec["tool"] == "mlflow-given" else {}
    def save(path):
        mlflow.sklearn.save_model(model, path, input_example=X[:3], serialization_format="cloudpickle", **extra)
    def load(path):
        return mlflow.pyfunc.load_model(path)
t0 = time.perf_counter()
save(folder)
out["first_save_s"] = time.perf_counter() - t0
times = []
for i in range(spec["reps"]):
    t0 = time.perf_counter()
    save(folder + f"-{i}")
    times.append(time.perf_counter() - t0)
out["save_s"] = statistics.median(times)
load(folder)
times = []
for i in range(spec["reps"]):
    t0 = time.perf_counter()
    m = load(folder)
    times.append(time.perf_counter() - t0)
out["load_s"] = statistics.median(times)
out["predictions"] = [int(v) for v in m.predict(X[:5])]
print("BENCH_RESULT " + json.dumps(out))
'''


def worker(python: str, spec: dict) -> dict:
    proc = subprocess.run([python, "-c", WORKER, json.dumps(spec)], capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    raise SystemExit(f"{spec['tool']} worker failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port: int, body: bytes) -> bytes:
    return (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bytes:
    """Send one request on a keep-alive connection and read its answer (by its Content-Length)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"server answered {head[:40]!r}")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return await reader.readexactly(length)


async def _sequential(port: int, body: bytes, n: int) -> list[float]:
    """Milliseconds of each of ``n`` requests sent one after another on one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request, times = _request(port, body), []
    for _ in range(n):
        t0 = time.perf_counter()
        await _exchange(reader, writer, request)
        times.append((time.perf_counter() - t0) * 1e3)
    writer.close()
    return times


async def _hammer(port: int, body: bytes, seconds: float, clients: int = 8) -> float:
    """Requests per second from ``clients`` keep-alive connections for ``seconds``.

    A raw HTTP/1.1 client on asyncio streams (a request is bytes built once, an answer read by
    its Content-Length): it costs tens of microseconds a request, so that on a 2-core machine
    the load generator takes little of the CPU the servers need (a ``requests`` client took
    about as much as the servers themselves, and added about 2 ms to each request's latency).
    """
    request = _request(port, body)
    stop_at = time.perf_counter() + seconds
    counts = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        count = 0
        while time.perf_counter() < stop_at:
            await _exchange(reader, writer, request)
            count += 1
        writer.close()
        counts.append(count)

    begun = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return sum(counts) / (time.perf_counter() - begun)


def start(argv: list[str], port: int, env: dict) -> tuple[subprocess.Popen, float]:
    """A server process and the seconds from its start to its first ``GET /ping`` 200."""
    import requests

    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    begun = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{argv[0]} serve exited {proc.returncode}: {proc.stderr.read()[-500:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return proc, time.perf_counter() - begun
        except requests.RequestException:
            pass
        if time.perf_counter() - begun > 120:
            proc.kill()
            raise SystemExit(f"{argv[0]} serve did not answer /ping in 120 s")
        time.sleep(0.02)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def serve_both(commands: dict[str, tuple[list[str], int, dict]], rows: list, requests_n: int, seconds: float,
               rounds: int) -> dict[str, dict]:
    """Start each server, then measure them in alternation: ``rounds`` rounds, each giving every
    server ``requests_n / rounds`` sequential requests and ``seconds / rounds`` of 8-client load.

    Alternating (rather than one tool's whole measurement, then the other's) puts both through
    the same moments of a shared machine whose speed drifts by a third within minutes; each
    round's ratio is kept, so the report can say how much the ratio itself moved.
    """
    import requests

    body = json.dumps({"dataframe_split": {"columns": rows[0], "data": [rows[1]]}})
    headers = {"Content-Type": "application/json"}
    procs, out = {}, {}
    try:
        for tool, (argv, port, env) in commands.items():
            procs[tool], started = start(argv, port, env)
            out[tool] = {"start_s": started, "latencies": [], "rates": []}
        for tool, (_, port, _) in commands.items():
            answer = requests.post(f"http://127.0.0.1:{port}/invocations", data=body, headers=headers, timeout=30)
            answer.raise_for_status()
            out[tool]["answer"] = answer.json()
            asyncio.run(_hammer(port, body.encode(), 0.5))  # warm: the first requests of a process cost more
        for _ in range(rounds):
            for tool, (_, port, _) in commands.items():
                out[tool]["latencies"] += asyncio.run(_sequential(port, body.encode(), max(1, requests_n // rounds)))
                out[tool]["rates"].append(asyncio.run(_hammer(port, body.encode(), seconds / rounds)))
    finally:
        for proc in procs.values():
            stop(proc)
    for result in out.values():
        latencies = sorted(result.pop("latencies"))
        result.update(p50_ms=statistics.median(latencies),
                      p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
                      rps=statistics.median(result["rates"]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mlflow-python", default=os.environ.get("GITML_MLFLOW", "/tmp/gitml-ci-mlflow/bin/python"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=5, help="alternating serve rounds (requests and seconds are split)")
    ap.add_argument("--no-serve", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="gitml-bench-models-"))
    load0 = os.getloadavg()[0]
    results = {}
    for tool, python in (("gitml", sys.executable), ("mlflow", args.mlflow_python), ("mlflow-given", args.mlflow_python)):
        results[tool] = worker(python, {"tool": tool, "folder": str(scratch / tool), "reps": args.reps})
    assert results["gitml"]["predictions"] == results["mlflow"]["predictions"], "the two models differ"
    lines = [
        "# Models: gitml against MLflow", "",
        f"`python bench/bench_models.py --reps {args.reps} --requests {args.requests} --seconds {args.seconds} "
        f"--rounds {args.rounds}`; "
        f"{cpu_model()}, {os.cpu_count()} cores, load {load0:.1f} at the start. Model: LogisticRegression on iris.", "",
        "| measure | gitml | MLflow | MLflow / gitml |", "|---|---:|---:|---:|",
    ]

    def row(label: str, key: str, scale: float, unit: str, other: str = "mlflow") -> None:
        g, m = results["gitml"][key] * scale, results[other][key] * scale
        lines.append(f"| {label} ({unit}) | {g:.1f} | {m:.1f} | {m / g:.1f}× |")

    row("save, first in the process, requirements captured", "first_save_s", 1e3, "ms")
    row("save, median", "save_s", 1e3, "ms")
    row("save, median, MLflow given pip_requirements (no inference)", "save_s", 1e3, "ms", "mlflow-given")
    row("load, median", "load_s", 1e3, "ms")
    if not args.no_serve:
        import pandas as pd  # noqa: F401 - requests and pandas are in the dev environment
        from sklearn.datasets import load_iris

        X, _ = load_iris(return_X_y=True, as_frame=True)
        rows = [list(X.columns), [float(v) for v in X.iloc[0]]]
        env = {**os.environ, "PATH": f"{Path(args.mlflow_python).parent}{os.pathsep}{os.environ['PATH']}"}
        port = free_port()
        gitml_cmd = [sys.executable, "-m", "gitml", "models", "serve", "-m", str(scratch / "gitml"),
                     "--port", str(port)]
        commands = {"gitml": (gitml_cmd, port, dict(os.environ))}
        port = free_port()
        mlflow_cmd = [str(Path(args.mlflow_python).parent / "mlflow"), "models", "serve", "-m", str(scratch / "mlflow"),
                      "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"]
        commands["mlflow"] = (mlflow_cmd, port, env)
        served = serve_both(commands, rows, args.requests, args.seconds, args.rounds)
        assert served["gitml"]["answer"] == served["mlflow"]["answer"], (served["gitml"]["answer"], served["mlflow"]["answer"])
        for label, key, better in (("serve: start to first /ping 200 (s)", "start_s", "low"),
                                   ("one-row /invocations p50 (ms)", "p50_ms", "low"),
                                   ("one-row /invocations p99 (ms)", "p99_ms", "low"),
                                   ("requests/s, 8 concurrent clients, 1 worker", "rps", "high")):
            g, m = served["gitml"][key], served["mlflow"][key]
            ratio = m / g if better == "low" else g / m
            lines.append(f"| {label} | {g:.2f} | {m:.2f} | {ratio:.1f}×{' (gitml / MLflow)' if better == 'high' else ''} |")
        each = sorted(g / m for g, m in zip(served["gitml"]["rates"], served["mlflow"]["rates"], strict=True))
        lines += ["", f"Requests/s are the median of {args.rounds} alternating rounds of {args.seconds / args.rounds:g} s; "
                  f"the rounds' own ratios ran from {each[0]:.1f}× to {each[-1]:.1f}×."]
    lines += ["", f"Load {os.getloadavg()[0]:.1f} at the end. Goals (issue 13): save ≤ 50 ms, start ≤ 2 s, "
              "p50 ≤ 5 ms, throughput ≥ 3× MLflow's with the same number of workers.", ""]
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
