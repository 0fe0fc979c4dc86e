"""A run in progress read as it grows (gitml.core.active.load_more) and listed without reading its whole log.

``gitml ui``'s live page reads a run's file every few seconds: each look must read only what was
appended, and come to exactly what one whole read gives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import gitml
from gitml.core import active
from gitml.core.workspace import open_workspace


def _active_file(repo) -> os.PathLike:
    with open_workspace(repo) as ws:
        root = ws.gitml_dir / active.ACTIVE_DIR
    (path,) = [p for p in root.iterdir()]
    return path


def test_reading_a_growing_run_in_pieces_equals_one_whole_read(repo):
    gitml.start_run(name="growing", repo=repo)
    try:
        gitml.log_param("lr", 0.1)
        path = _active_file(repo)
        saved, offset = active.load_more(path)
        assert saved.log.params == {"lr": 0.1} and saved.log.metrics == []
        for step in range(500):
            gitml.log_metric("loss", 1 / (step + 1), step=step)
        gitml.set_tag("team", "ads")
        with open(path, "a", encoding="utf-8") as handle:  # a writer caught mid-line
            handle.write('["m", "loss", 0.5, 999')
        saved, offset = active.load_more(path, saved, offset)
        assert saved.torn and len(saved.log.metrics) == 500
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(", 1764583200.0]\n")
            # lines no writer makes are skipped, by either reader: a time as text, a step that is no number
            handle.write('["m", "loss", 0.5, 7, "2026-12-01T10:00:00.000Z"]\n["m", "loss", 0.5, "x", 1.0]\n[]\n7\n')
        gitml.log_input({"digest": "cd" * 32, "source_type": "s3", "source": "s3://x"}, "training", name="t")
        saved, offset = active.load_more(path, saved, offset)
        assert offset == os.path.getsize(path) and not saved.torn
        whole = active.load(path)
        assert saved.meta == whole.meta and saved.patch == whole.patch and saved.failed == whole.failed
        assert saved.log == whole.log and len(saved.log.metrics) == 501
        assert active.load_more(path, saved, offset)[0].log == whole.log  # nothing new: nothing changes
    finally:
        gitml.end_run()


def test_a_failed_commit_is_listed_from_the_end_of_a_long_log(repo):
    # a process that logged 20,000 points and vanished without ending its run
    writer = ("import os, gitml\nrun = gitml.start_run(name='long')\nfor step in range(20_000):\n"
              "    gitml.log_metric('loss', 1 / (step + 1), step=step)\nprint(run.id, flush=True)\nos._exit(0)\n")
    run_id = subprocess.run([sys.executable, "-c", writer], cwd=repo, capture_output=True, text=True,
                            check=True).stdout.strip()
    path = _active_file(repo)
    with open_workspace(repo) as ws:
        (listed,) = active.list_active(ws.gitml_dir)
        assert listed["id"] == run_id and listed["commit_failed"] is False and listed["alive"] is False
        active.mark_commit_failed(path, "KILLED")
        (listed,) = active.list_active(ws.gitml_dir)
        assert (listed["commit_failed"], listed["requested_status"], listed["alive"]) == (True, "KILLED", False)
        assert active.load(path).failed == "KILLED"
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(["x", "NONSENSE"]) + "\n")
        listed = active.list_active(ws.gitml_dir)[0]  # the last note counts: an unreadable status
        assert (listed["commit_failed"], listed["requested_status"]) == (True, None) and active.load(path).failed == ""
    active.remove(path)
