"""The runs ref at 100,000 runs: git reads it clean, and what a fresh clone pays (issue 12, proof).

Writes ``--runs`` runs (10 params, 10 metrics, 3 tags each; default 100,000) onto the runs ref
of a new repository with ``--commits`` code commits, the way an import or a long sweep does
(``write_runs``, ``--chunk`` runs per commit of the runs ref), plus ``--single`` runs one commit
each through the fluent API (a user's ordinary path). Then, with the real git CLI:

1. ``git gc`` and ``git fsck --strict`` on the repository: the exit codes, and fsck's output
   (it must be empty);
2. in a fresh ``git clone`` with the runs ref fetched: ``gitml runs list`` (newest 50, through
   the lookup maps, no index), then ``gitml index rebuild`` (the full index), timed.

Run from the repository root::

    python bench/scale_fsck.py                 # 100,000 runs: about 10 minutes here
    python bench/scale_fsck.py --runs 10000    # quicker

It prints one Markdown report (``--out FILE`` writes it too). Nothing here is asserted by
pytest; the script exits 1 when git finds a problem.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_model

BASE_TIME = 1_700_000_000


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check)


def timed(cwd: Path, *argv: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc


def build(repo: Path, runs: int, commits: int, chunk: int, single: int) -> dict:
    import gitml
    from gitml.core import formats
    from gitml.core.gitrepo import GitRepo
    from gitml.core.ids import new_run_id
    from gitml.tracking.commit import write_runs

    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Bench User")
    git(repo, "config", "user.email", "bench@example.com")
    shas = []
    for c in range(commits):
        (repo / "train.py").write_text(f"# version {c}\n")
        git(repo, "add", "train.py")
        git(repo, "commit", "-qm", f"version {c}")
        shas.append(git(repo, "rev-parse", "HEAD").stdout.strip())
    rnd = random.Random(12)
    t0 = time.perf_counter()
    with GitRepo(repo) as g:
        for start in range(0, runs, chunk):
            batch = []
            for i in range(start, min(start + chunk, runs)):
                begin, end = formats.iso_time(BASE_TIME + i), formats.iso_time(BASE_TIME + i + 30)
                metrics = {f"m{j}": round(rnd.random(), 6) for j in range(10)}
                batch.append((formats.Run(
                    id=new_run_id(), name=f"run-{i}", experiment="bench", status="FINISHED",
                    start_time=begin, end_time=end, updated=end, user="Bench User",
                    source={"commit": shas[i % commits], "branch": "main", "dirty": False, "remote": None},
                    command="python train.py", gitml_version=gitml.__version__,
                    params={f"p{j}": rnd.choice([0.1, 0.01, 32, "adam", "sgd"]) for j in range(10)},
                    metrics=metrics, metric_info={k: {"step": 0, "timestamp": end} for k in metrics},
                    tags={"team": "bench", "stage": rnd.choice(["dev", "prod"]), "note": f"n{i % 7}"},
                ), []))
            write_runs(g, batch, f"import {len(batch)} runs")
    bulk = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(single):
        with gitml.start_run(name=f"single-{i}", repo=repo):
            gitml.log_params({f"p{j}": j for j in range(10)})
            gitml.log_metrics({f"m{j}": j / 10 for j in range(10)})
            gitml.set_tags({"team": "bench", "stage": "dev", "note": "single"})
    return {"bulk_s": bulk, "single_s": time.perf_counter() - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--commits", type=int, default=1_000)
    ap.add_argument("--chunk", type=int, default=1_000)
    ap.add_argument("--single", type=int, default=100)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder and print its path")
    args = ap.parse_args()
    gitml_cmd = [sys.executable, "-m", "gitml.cli"] if shutil.which("gitml") is None else ["gitml"]
    scratch = Path(tempfile.mkdtemp(prefix="gitml-scale-"))
    repo = scratch / "repo"
    repo.mkdir()
    lines = [f"# The runs ref at {args.runs + args.single:,} runs", "",
             f"`python bench/scale_fsck.py --runs {args.runs} --commits {args.commits} --chunk {args.chunk} "
             f"--single {args.single}`; {cpu_model()}, {os.cpu_count()} cores, "
             f"load {os.getloadavg()[0]:.1f} at the start; {git(repo, '--version').stdout.strip()}.", ""]
    made = build(repo, args.runs, args.commits, args.chunk, args.single)
    listed = git(repo, "ls-tree", "-r", "-d", "--name-only", "refs/gitml/runs", "runs").stdout.split()
    n_runs = sum(1 for path in listed if path.count("/") == 2)
    maps = git(repo, "ls-tree", "--name-only", "refs/gitml/runs:maps", check=False).stdout.split()
    gc_s, gc = timed(repo, "git", "gc", "--quiet")
    fsck_s, fsck = timed(repo, "git", "fsck", "--strict", "--no-progress")
    fresh = scratch / "fresh"
    git(scratch, "clone", "-q", str(repo), str(fresh))
    git(fresh, "fetch", "-q", "origin", "refs/gitml/runs:refs/gitml/runs")
    list_s, listing = timed(fresh, *gitml_cmd, "runs", "list", "--limit", "50")
    rebuild_s, rebuild = timed(fresh, *gitml_cmd, "index", "rebuild")
    indexed = int(rebuild.stdout.strip() or 0) if rebuild.returncode == 0 else 0
    lines += [
        "| step | result | seconds |",
        "|---|---|---:|",
        f"| {args.runs:,} runs by `write_runs`, {args.chunk:,} per commit | done | {made['bulk_s']:.1f} |",
        f"| {args.single} runs through `start_run`, one commit each | done | {made['single_s']:.1f} |",
        f"| runs on the ref (`git ls-tree`) | {n_runs:,}; maps: {', '.join(m.split('-')[0] for m in maps)} | |",
        f"| `git gc` | exit {gc.returncode} | {gc_s:.1f} |",
        f"| `git fsck --strict` | exit {fsck.returncode}, "
        f"{'no output' if not (fsck.stdout + fsck.stderr).strip() else repr((fsck.stdout + fsck.stderr)[:200])} "
        f"| {fsck_s:.1f} |",
        f"| fresh clone: `gitml runs list --limit 50` (maps, no index) | exit {listing.returncode}, "
        f"{max(0, len(listing.stdout.splitlines()) - 2)} rows | {list_s:.2f} |",
        f"| fresh clone: `gitml index rebuild` | {indexed:,} runs, {indexed / rebuild_s:,.0f} runs/s | {rebuild_s:.1f} |",
        "", f"Load {os.getloadavg()[0]:.1f} at the end.", "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report)
    if args.keep:
        print(f"kept: {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    problems = gc.returncode or fsck.returncode or (fsck.stdout + fsck.stderr).strip() or n_runs != args.runs + args.single
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
