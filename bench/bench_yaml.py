#!/usr/bin/env python
"""YAML benchmark: gitml's canonical-subset parser against libyaml, PyYAML and ruamel.yaml (issue 10).

Run ``python bench/bench_yaml.py`` (45 s on 2 cores) or ``--quick`` (a smoke run of
about 10 seconds). It prints a Markdown report: time per document for each reader and writer, and
ratios against gitml's own (above 1 means the other one is slower).

The documents are the files of a run directory exactly as gitml writes them: runs built as
:class:`gitml.core.formats.Run` and turned into bytes by :func:`gitml.core.formats.run_files`
(which calls :func:`gitml.core.yamlfmt.dump`), in three sizes:

* small: 10 params, 5 metrics, 3 tags, 1 artifact entry (a quick experiment);
* medium: 100 params, 50 metrics, 10 tags, 5 artifact entries (a tuned training run);
* large: 2,000 params, 1,000 metrics, 50 tags, 200 artifact entries (a flattened sweep config
  with per-class metrics).

Every size holds several different runs, so a reader never sees the same text twice in a row.
Readers, each on the same ``str`` documents:

* ``yamlfmt.load``: the fast path (the script checks that every document takes it);
* ``yaml.load(text, Loader=yaml.CSafeLoader)``: PyYAML on libyaml;
* ``yamlfmt.load_untrusted``: what ``yamlfmt.load`` falls back to for text outside the subset
  (libyaml twice: an event pass that refuses aliases, merge keys, repeated keys and deep nesting,
  then the load), i.e. what gitml would pay per file without the fast path;
* ``yaml.safe_load``: PyYAML in pure Python;
* ``ruamel.yaml.YAML(typ="safe")``: ruamel.yaml's safe loader (on its C extension when
  ``ruamel.yaml.clib`` is installed, else pure Python; the report says which).

All readers must return equal data (and equal to the values the run was built from) before
anything is timed. Writers: ``yamlfmt.dump`` against ``yaml.dump(data, Dumper=yaml.CSafeDumper)`` and
``yaml.safe_dump`` (pure); each writer's text must read back as the same data.

Timing is in one process, warm (a first pass of every function runs before timing, so regexes are
compiled and modules imported), with the garbage collector on, as in an index rebuild. Each round
times one pass over all documents of one kind per function, the functions taking turns in a
rotating order; the figure kept is the best round (noise from other processes only ever adds
time) and the median is shown beside it. A last case times a cold start in fresh processes:
importing the module and reading one medium run's five files, which is what a one-shot
command such as ``gitml runs show`` pays (yamlfmt compiles its regexes on first use).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from _common import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this working tree's gitml, whatever is installed

import gitml  # noqa: E402
from gitml.core import formats, yamlfmt  # noqa: E402

BASE_TIME = 1_700_000_000
FILES = formats.RUN_FILES  # run.yaml, params.yaml, metrics.yaml, tags.yaml, artifacts.yaml
# size -> (params, metrics, tags, artifact entries, runs of that size)
SIZES = {
    "small": (10, 5, 3, 1, 60),
    "medium": (100, 50, 10, 5, 12),
    "large": (2_000, 1_000, 50, 200, 2),
}
MODES = {"full": {"rounds": 5, "cold": 9, "scale": 1}, "quick": {"rounds": 2, "cold": 2, "scale": 6}}
READERS = ("yamlfmt.load", "PyYAML CSafeLoader", "yamlfmt.load_untrusted", "PyYAML safe_load",
           "ruamel.yaml safe")
WRITERS = ("yamlfmt.dump", "PyYAML CSafeDumper", "PyYAML safe_dump")


# ------------------------------------------------------------------------------------------------
# Realistic runs
# ------------------------------------------------------------------------------------------------
_WORDS = ("encoder", "decoder", "optim", "data", "train", "eval", "model", "head", "aug", "sched")
_LEAVES = ("lr", "dropout", "hidden_size", "num_layers", "batch_size", "warmup_steps", "seed",
           "name", "path", "enabled", "momentum", "weight_decay", "betas", "activation", "max_len")


def _param(rnd: random.Random, leaf: str) -> object:
    """A value of the kind a config holds under ``leaf``, normalised as gitml stores it."""
    if leaf in ("lr", "dropout", "momentum", "weight_decay"):
        value: object = round(10 ** rnd.uniform(-6, -0.5), rnd.choice([3, 6, 9]))
    elif leaf in ("hidden_size", "num_layers", "batch_size", "warmup_steps", "seed", "max_len"):
        value = rnd.choice([1, 2, 8, 64, 128, 512, 4096, rnd.randint(0, 2**31)])
    elif leaf == "enabled":
        value = rnd.choice([True, False, None])
    elif leaf == "betas":
        value = [0.9, round(rnd.uniform(0.98, 0.9999), 4)]  # stored as JSON text by param_value
    elif leaf == "path":
        value = rnd.choice(["data/train.parquet", "s3://bucket/ds/v3/", "/mnt/ckpt/épreuve-2.pt",
                            'C:\\runs\\"quoted"\\x.bin'])
    elif leaf == "activation":
        value = rnd.choice(["gelu", "relu", "silu", "yes", "1e-3", "null"])  # YAML-looking text
    else:
        value = rnd.choice(["resnet50", "vit-b16", "bert-base-uncased", "gbm", "Mélange α/β"])
    return formats.param_value(leaf, value)


def make_run(size: str, i: int) -> formats.Run:
    """Run number ``i`` of a size, deterministic."""
    n_params, n_metrics, n_tags, n_artifacts, _ = SIZES[size]
    rnd = random.Random(f"{size}-{i}")
    params: dict = {}
    while len(params) < n_params:
        path = [rnd.choice(_WORDS) for _ in range(rnd.randint(0, 3))]
        leaf = rnd.choice(_LEAVES)
        params[".".join([*path, leaf, str(len(params))]) if path else f"{leaf}_{len(params)}"] = _param(rnd, leaf)
    metrics: dict = {}
    info: dict = {}
    for k in range(n_metrics):
        split = rnd.choice(["train", "val", "test"])
        key = f"{split}/{rnd.choice(['loss', 'accuracy', 'f1', 'auc', 'recall'])}_{k}"
        roll = rnd.random()
        value = math.nan if roll < 0.01 else math.inf if roll < 0.02 else rnd.random() * 10 ** rnd.randint(-4, 3)
        metrics[key] = formats.metric_value(key, value)
        step = rnd.randint(0, 100_000)
        info[key] = {"step": step, "timestamp": formats.iso_time(BASE_TIME + i * 3600 + step / 10)}
    tags = {f"tag.{t}": rnd.choice(["vision", "nlp", "baseline", "ablation: no aug", "日本語"])
            for t in range(n_tags)}
    artifacts = {}
    for a in range(n_artifacts):
        kind = "dir" if a % 7 == 3 else "file"
        entry = {"kind": kind, "sha256": hashlib.sha256(f"{size}-{i}-{a}".encode()).hexdigest(),
                 "size": rnd.randint(10, 10**10)}
        if kind == "dir":
            entry["files"] = rnd.randint(2, 5000)
        artifacts[f"outputs/{size}/part-{a:04d}.bin"] = entry
    begin = BASE_TIME + i * 3600
    return formats.Run(
        id=hashlib.sha256(f"run-{size}-{i}".encode()).hexdigest()[:32],
        name=f"{size}-sweep-{i}",
        experiment="bench",
        status=rnd.choice(formats.FINAL_STATUSES),
        start_time=formats.iso_time(begin),
        end_time=formats.iso_time(begin + 1800.5),
        updated=formats.iso_time(begin + 1800.5),
        user="Bench User <bench@example.com>",
        source={"commit": hashlib.sha1(str(i).encode()).hexdigest(), "branch": "main",
                "dirty": bool(i % 2), "remote": "git@github.com:org/repo.git"},
        command="python train.py --config configs/sweep.yaml lr=0.001",
        description="Line one\nline two: with a colon, a # hash and a tab\t." if i % 3 == 0 else None,
        gitml_version=gitml.__version__,
        params=params,
        metrics=metrics,
        metric_info=info,
        tags=tags,
        artifacts=artifacts,
    )


def expected_data(run: formats.Run) -> dict[str, dict]:
    """What each file must read back as (the mappings :func:`formats.run_files` dumps)."""
    formats.parse_run(run.id, formats.run_files(run))  # raises unless gitml reads the run back
    return {
        "params.yaml": run.params,
        "metrics.yaml": {k: {"value": v, **run.metric_info[k]} for k, v in run.metrics.items()},
        "tags.yaml": run.tags,
        "artifacts.yaml": run.artifacts,
    }


def _same(a: object, b: object) -> bool:
    """Equal data, NaN equal to NaN, bool never equal to int, and dict/list types exact."""
    if isinstance(a, dict) and isinstance(b, dict):
        return type(a) is dict and type(b) is dict and a.keys() == b.keys() and all(
            _same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


# ------------------------------------------------------------------------------------------------
# The functions measured
# ------------------------------------------------------------------------------------------------
def ruamel_loader() -> tuple[Callable[[str], object], str]:
    """ruamel.yaml's safe loader, on its C extension when there is one, and which it is."""
    from ruamel.yaml import YAML

    try:
        import _ruamel_yaml  # noqa: F401 - ruamel.yaml.clib: present means the C loader is used
    except ImportError:
        kind = "pure Python (ruamel.yaml.clib not installed)"
        reader = YAML(typ="safe", pure=True)
    else:
        kind = "C (ruamel.yaml.clib)"
        reader = YAML(typ="safe", pure=False)
    return reader.load, kind


def readers() -> tuple[dict[str, Callable[[str], object]], str]:
    ruamel_load, kind = ruamel_loader()
    funcs = {
        "yamlfmt.load": yamlfmt.load,
        "PyYAML CSafeLoader": lambda text: yaml.load(text, Loader=yaml.CSafeLoader),  # noqa: S506
        "yamlfmt.load_untrusted": yamlfmt.load_untrusted,
        "PyYAML safe_load": yaml.safe_load,
        "ruamel.yaml safe": ruamel_load,
    }
    return funcs, kind


WRITER_FUNCS: dict[str, Callable[[dict], str]] = {
    "yamlfmt.dump": yamlfmt.dump,
    "PyYAML CSafeDumper": lambda data: yaml.dump(data, Dumper=yaml.CSafeDumper),
    "PyYAML safe_dump": yaml.safe_dump,
}


def best_rounds(funcs: dict[str, Callable], docs: list, rounds: int) -> dict[str, list[float]]:
    """Seconds per document of each function, one figure per round, the order rotating."""
    names = list(funcs)
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            fn = funcs[name]
            t0 = time.perf_counter()
            for doc in docs:
                fn(doc)
            out[name].append((time.perf_counter() - t0) / len(docs))
    return out


# ------------------------------------------------------------------------------------------------
# Cold start: a fresh process reads one run
# ------------------------------------------------------------------------------------------------
COLD = {
    "yamlfmt.load": "from gitml.core import yamlfmt\nload = yamlfmt.load\n",
    "PyYAML CSafeLoader": "import yaml\nload = lambda t: yaml.load(t, Loader=yaml.CSafeLoader)\n",
}
COLD_TEMPLATE = """import json, sys, time
texts = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
{setup}t1 = time.perf_counter()
for text in texts:
    load(text)
print(t1 - t0, time.perf_counter() - t1)
"""


def cold_start(texts: list[str], reps: int, workdir: Path) -> dict[str, list[tuple[float, float]]]:
    """Per reader and process: seconds to import the module, then to read ``texts`` once."""
    path = workdir / "run-files.json"
    path.write_text(json.dumps(texts))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in COLD}
    for r in range(reps + 1):  # the first round only warms the bytecode caches
        for name in (list(COLD) if r % 2 else list(COLD)[::-1]):
            code = COLD_TEMPLATE.format(setup=COLD[name])
            p = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                               check=True, env=env, cwd=workdir)
            if r:
                imported, read = map(float, p.stdout.split())
                out[name].append((imported, read))
    return out


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------
def log(t_start: float, msg: str) -> None:
    print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)


def build_docs(scale: int) -> tuple[dict, dict]:
    """``texts[size][file]`` and ``data[size][file]``: every run's file text and its data."""
    texts: dict = {}
    data: dict = {}
    for size, (*_, n_runs) in SIZES.items():
        runs = [make_run(size, i) for i in range(max(1, n_runs // scale))]
        texts[size] = {name: [] for name in FILES}
        data[size] = {name: [] for name in FILES}
        for run in runs:
            files = formats.run_files(run)
            want = expected_data(run)
            for name in FILES:
                text = files[name].decode()
                texts[size][name].append(text)
                data[size][name].append(want.get(name))
    return texts, data


def check(texts: dict, data: dict, funcs: dict) -> list[str]:
    """Every reader returns the same data; the fast path is taken; writers' text reads back."""
    problems = []
    for size in texts:
        for name in FILES:
            for text, want in zip(texts[size][name], data[size][name], strict=True):
                if text != "{}\n" and yamlfmt._parse_fast(text) is None:
                    problems.append(f"{size} {name}: not in the canonical subset (fallback taken)")
                got = {reader: fn(text) for reader, fn in funcs.items()}
                ours = got["yamlfmt.load"]
                if want is not None and not _same(ours, want):
                    problems.append(f"{size} {name}: yamlfmt.load differs from the data dumped")
                for reader, value in got.items():
                    if not _same(value, ours):
                        problems.append(f"{size} {name}: {reader} differs from yamlfmt.load")
                if yamlfmt.dump(ours) != text:
                    problems.append(f"{size} {name}: yamlfmt.dump(load(text)) is not the text")
                for writer, fn in WRITER_FUNCS.items():
                    if not _same(yaml.load(fn(ours), Loader=yaml.CSafeLoader), ours):  # noqa: S506
                        problems.append(f"{size} {name}: {writer}'s text reads back differently")
    return problems


def versions() -> str:
    names = ("PyYAML", "ruamel.yaml", "ruamel.yaml.clib")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found) + f", libyaml {yaml.__with_libyaml__ and _libyaml_version()}"


def _libyaml_version() -> str:
    from yaml import _yaml

    return _yaml.get_version_string()


def git_state() -> tuple[str, list[str]]:
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False).stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "?"
    measured = ("gitml/core/yamlfmt.py", "gitml/core/formats.py")
    dirty = [line[3:] for line in git("status", "--porcelain", "--", *measured).splitlines()]
    return head, dirty


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.1f}" if us < 100 else f"{us:,.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: 1/10 of the runs, 2 rounds")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    cfg = MODES[mode]
    t_start = time.perf_counter()
    head, dirty = git_state()
    load_start = os.getloadavg()[0]

    texts, data = build_docs(cfg["scale"])
    funcs, ruamel_kind = readers()
    log(t_start, "documents built; checking that every reader agrees")
    problems = check(texts, data, funcs)
    if problems:
        print("\n".join(["the readers disagree; nothing timed:", *problems[:20]]), file=sys.stderr)
        return 1

    read: dict = {}
    write: dict = {}
    for size in SIZES:
        for name in FILES:
            docs = texts[size][name]
            objs = [funcs["yamlfmt.load"](t) for t in docs]
            best_rounds(funcs, docs[:2], 1)  # warm-up: compile, import, fill caches
            best_rounds(WRITER_FUNCS, objs[:2], 1)
            read[size, name] = best_rounds(funcs, docs, cfg["rounds"])
            write[size, name] = best_rounds(WRITER_FUNCS, objs, cfg["rounds"])
        log(t_start, f"{size} timed")
    with tempfile.TemporaryDirectory(prefix="gitml-yamlbench-") as tmp:
        medium_run = [texts["medium"][name][0] for name in FILES]
        cold = cold_start(medium_run, cfg["cold"], Path(tmp))
    log(t_start, "cold start timed")

    res = {"elapsed": time.perf_counter() - t_start, "head": head, "dirty": dirty,
           "after": git_state(), "ruamel": ruamel_kind, "load": (load_start, os.getloadavg()[0])}
    text = report(args, cfg, texts, read, write, cold, res)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
SHORT = {"yamlfmt.load": "yamlfmt", "PyYAML CSafeLoader": "libyaml", "yamlfmt.load_untrusted": "untrusted",
         "PyYAML safe_load": "PyYAML", "ruamel.yaml safe": "ruamel", "yamlfmt.dump": "yamlfmt",
         "PyYAML CSafeDumper": "libyaml", "PyYAML safe_dump": "PyYAML"}


def cell(samples: list[float]) -> str:
    return f"{fmt_us(min(samples))} ({fmt_us(statistics.median(samples))})"


def whole_run(table: dict, size: str, fn: str) -> list[float]:
    """Per round, the sum over a run's five files: what reading (or writing) one run costs."""
    rounds = len(table[size, FILES[0]][fn])
    return [sum(table[size, name][fn][r] for name in FILES) for r in range(rounds)]


def timing_table(table: dict, funcs: tuple[str, ...], texts: dict | None) -> tuple[list[str], dict]:
    """Markdown rows per size and file plus a whole-run row; and the whole-run ratios per size."""
    ours_name, others = funcs[0], funcs[1:]
    head = ["size", "file", *(["bytes", "lines"] if texts else []), *(SHORT[f] for f in funcs),
            *(f"{SHORT[f]} / yamlfmt" for f in others)]
    out = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    headline: dict = {}
    for size in SIZES:
        rows = [(name, table[size, name], [name]) for name in FILES]
        rows.append(("all 5 files", {fn: whole_run(table, size, fn) for fn in funcs}, list(FILES)))
        for name, timing, names in rows:
            ours = min(timing[ours_name])
            ratios = {fn: min(timing[fn]) / ours for fn in others}
            if name == "all 5 files":
                headline[size] = ratios
            cells = [size, name]
            if texts:
                docs = [t for n in names for t in texts[size][n]]
                runs = len(texts[size][FILES[0]])
                cells += [f"{sum(len(t.encode()) for t in docs) / runs:,.0f}",
                          f"{sum(t.count(chr(10)) for t in docs) / runs:,.0f}"]
            cells += [cell(timing[fn]) for fn in funcs] + [f"{ratios[fn]:.1f}×" for fn in others]
            out.append("| " + " | ".join(cells) + " |")
    return out, headline


def report(args, cfg: dict, texts: dict, read: dict, write: dict, cold: dict, res: dict) -> str:
    cmd = "python bench/bench_yaml.py" + (" --quick" if args.quick else "") + (
        f" --out {args.out}" if args.out else "")
    mode = "quick" if args.quick else "full"
    head, dirty = res["head"], res["dirty"]
    lines = [
        "# Canonical YAML parser vs libyaml (issue 10)",
        "",
        f"Command: `{cmd}` ({mode} mode, {res['elapsed']:.0f} s in all).",
        "",
        f"Machine: {_dt.date.today().isoformat()}, {os.cpu_count()} cores ({cpu_model()}), "
        f"Linux {platform.release()}, Python {platform.python_version()}, {versions()}; "
        f"ruamel.yaml's safe loader ran in {res['ruamel']}.",
        "",
        f"gitml at `{head}`"
        + (f" with uncommitted changes to {', '.join(dirty)}" if dirty
           else ", `gitml/core/yamlfmt.py` and `formats.py` as committed")
        + f" (imported from {gitml.__file__}).",
        "",
    ]
    if res["after"] != (head, dirty):
        lines += [f"Note: the tree moved during the run, to `{res['after'][0]}` {res['after'][1]}.", ""]
    sizes_line = "; ".join(
        f"{size}: {p:,} params, {m:,} metrics, {t} tags, {a} artifact entries, "
        f"{len(texts[size][FILES[0]])} runs" for size, (p, m, t, a, _) in SIZES.items()
    )
    read_rows, read_head = timing_table(read, READERS, texts)
    write_rows, write_head = timing_table(write, WRITERS, None)
    slower = [f"{size} {name}" for (size, name), t in read.items()
              if min(t["yamlfmt.load"]) >= min(t["PyYAML CSafeLoader"])]
    lines += [
        f"Documents: the five files of runs written by `formats.run_files` ({sizes_line}). Every "
        "reader returned equal data for every document (equal to what was dumped; NaN equal to "
        "NaN, types exact), every document took `yamlfmt.load`'s fast path, and every writer's "
        "text read back as the same data.",
        "",
        "Readers: yamlfmt = `yamlfmt.load` (the fast path); libyaml = `yaml.load(text, "
        "Loader=yaml.CSafeLoader)`; untrusted = `yamlfmt.load_untrusted` (libyaml twice: an event "
        "pass refusing aliases, merge keys, repeated keys and deep nesting, then the load; what "
        "`yamlfmt.load` does with text outside the subset); PyYAML = `yaml.safe_load` (pure "
        "Python); ruamel = `ruamel.yaml.YAML(typ=\"safe\").load`.",
        "",
        f"Reading, warm, in one process: µs per document, best of {cfg['rounds']} rounds (median in "
        "brackets); bytes and lines per document; ratio = that reader's best / yamlfmt's best "
        "(above 1: yamlfmt is faster).",
        "",
        *read_rows,
        "",
        "Per run (all 5 files), libyaml / yamlfmt: "
        + ", ".join(f"{size} {r['PyYAML CSafeLoader']:.1f}×" for size, r in read_head.items())
        + "; untrusted / yamlfmt: "
        + ", ".join(f"{size} {r['yamlfmt.load_untrusted']:.1f}×" for size, r in read_head.items())
        + ". " + ("`yamlfmt.load` was faster than libyaml on every document." if not slower else
                  "`yamlfmt.load` was NOT faster than libyaml on: " + ", ".join(slower) + "."),
        "",
        "Writers: yamlfmt = `yamlfmt.dump`; libyaml = `yaml.dump(data, Dumper=yaml.CSafeDumper)`; "
        f"PyYAML = `yaml.safe_dump` (pure Python). µs per document, best of {cfg['rounds']} rounds "
        "(median in brackets); ratio = that writer's best / yamlfmt's best.",
        "",
        *write_rows,
        "",
        "Per run (all 5 files), libyaml / yamlfmt: "
        + ", ".join(f"{size} {r['PyYAML CSafeDumper']:.1f}×" for size, r in write_head.items()) + ".",
        "",
        "Cold start: a fresh process imports the reader's module, then reads the five files of one "
        "medium run once (interpreter start excluded; for yamlfmt the read includes compiling its "
        f"regexes on first use). ms, median of {cfg['cold']} processes each, the two alternating "
        "(min–max in brackets):",
        "",
        "| reader | import | first read of 5 files | total | total / yamlfmt |",
        "|---|---:|---:|---:|---:|",
    ]
    ours = statistics.median(a + b for a, b in cold["yamlfmt.load"])
    for name, vals in cold.items():
        parts = [[v[k] * 1e3 for v in vals] for k in (0, 1)] + [[(a + b) * 1e3 for a, b in vals]]
        cells = [f"{statistics.median(p):.1f} ({min(p):.1f}–{max(p):.1f})" for p in parts]
        total = statistics.median(a + b for a, b in vals)
        lines.append(f"| {SHORT[name]} | " + " | ".join(cells) + f" | {total / ours:.2f}× |")
    lines += ["", f"Load average (1 min): {res['load'][0]:.2f} at the start, {res['load'][1]:.2f} at the end."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
