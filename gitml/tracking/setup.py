"""Preparing a repository for gitml: ``gitml init``."""

from __future__ import annotations

from gitml.core.config import CONFIG_FILE, TEMPLATE
from gitml.core.gitrepo import RepoLike, open_repo
from gitml.core.runsref import RUNS_REF


def fetch_refspec(remote: str) -> str:
    """The non-forced refspec that lets plain ``git fetch`` bring a remote's runs ref.

    A pattern, not the exact ref: git refuses a fetch whose exact source ref is missing, and a
    fresh remote has no runs yet. The pattern matches nothing there and ``git fetch`` goes on.
    """
    return f"{RUNS_REF}*:refs/gitml/remotes/{remote}/runs*"


def init(repo: RepoLike = None) -> list[str]:
    """Write a commented ``gitml.yaml`` (if absent) and add fetch refspecs; idempotent.

    Returns:
        One line per thing done (empty when everything was already in place).
    """
    done = []
    with open_repo(repo) as git:
        config = git.root / CONFIG_FILE
        if not config.exists():
            config.write_text(TEMPLATE, encoding="utf-8")
            done.append(f"wrote {CONFIG_FILE}")
        (git.gitml_dir / "active").mkdir(parents=True, exist_ok=True)
        for remote in sorted(git.remotes()):
            spec = fetch_refspec(remote)
            existing = git.git("config", "--get-all", f"remote.{remote}.fetch", check=False)
            if spec not in existing.decode().split():
                # Non-forced on purpose: a diverged remote runs ref must never overwrite ours.
                git.git("config", "--add", f"remote.{remote}.fetch", spec)
                done.append(f"added fetch refspec {spec} to remote {remote}")
    return done
