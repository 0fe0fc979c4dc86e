"""Where ``gitml export mlflow`` writes: DEST told apart and checked before anything is written.

DEST is an MLflow file store's folder (a path or ``file://``), a database URI (``sqlite:///…``,
``postgresql://…``) or a tracking server (``http(s)://``). A folder or sqlite file must be new,
empty or MLflow's own: anything else is refused (exit 2) before MLflow opens it, since MLflow
would write its folders into any folder and its tables into any database.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from gitml.core.errors import BadInputError

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def kind(dest: str) -> str:
    """``"server"``, ``"sql"`` or ``"file"`` for DEST.

    Raises:
        BadInputError: a blank DEST, or a scheme MLflow has no store for.
    """
    if not dest.strip():
        raise BadInputError("give DEST: an MLflow file store's folder (mlruns), a database URI "
                            "(sqlite:///mlflow.db) or a tracking server (http://host:port)")
    scheme = urlparse(dest).scheme
    if scheme in ("http", "https"):
        return "server"
    if scheme.split("+")[0] in SQL_SCHEMES:
        return "sql"
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        return "file"
    raise BadInputError(f"cannot export to {dest!r}: give an MLflow file store path, a database URI "
                        "(sqlite:///mlflow.db) or a tracking server (http://host:port)")


def reach(url: str) -> None:
    """Fail early, in one line, when the tracking server does not answer its health check."""
    import urllib.request

    from gitml.core.errors import RemoteError

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=15):
            pass
    except OSError as exc:
        raise RemoteError(f"cannot reach the MLflow server at {url}: {getattr(exc, 'reason', exc)}") from None


def artifact_root(dest: str, given: str | None) -> str:
    """Where a database store's runs keep their artifacts: ``given``, or ``mlartifacts/`` beside a sqlite file.

    Raises:
        BadInputError: another database and no ``given``.
    """
    if given:
        return Path(given).expanduser().resolve().as_uri() if "://" not in given else given
    if dest.startswith("sqlite:///"):
        return (sqlite_path(dest).resolve().parent / "mlartifacts").as_uri()
    raise BadInputError(f"exporting to {dest.split('://')[0]}: give --artifact-root (where MLflow keeps the "
                        "artifacts of this database's runs: a folder, s3://…)")


def fresh(dest: str, kind: str) -> bool:
    """Whether DEST holds nothing yet; refuses a DEST that holds something other than an MLflow store.

    A file store's folder may be new, empty or MLflow's; a sqlite file new, empty or a database
    with MLflow's tables (other databases and servers are taken as they are).

    Raises:
        BadInputError: a file for a file store, a folder that is not empty and not MLflow's, a
            sqlite path that is a folder, in a folder that does not exist, or a file that is not
            MLflow's database.
    """
    if kind == "file":
        where = folder(dest)
        if not where.exists():
            return True
        if not where.is_dir():
            raise BadInputError(f"{dest!r} is a file, not an MLflow store's folder")
        if not any(where.iterdir()):
            return True
        if not _is_file_store(where):
            raise BadInputError(f"{dest!r} is not empty and not an MLflow file store (no experiment folder, "
                                "no .trash/): give a new or empty folder, or an mlruns/ folder MLflow made")
        return False
    if dest.startswith("sqlite:"):
        return _fresh_sqlite(dest)
    return False


def folder(dest: str) -> Path:
    """The folder of a file store given as a path or a ``file:`` URI."""
    if dest.startswith("file:"):
        from urllib.request import url2pathname

        return Path(url2pathname(urlparse(dest).path))
    return Path(dest).expanduser()


def _is_file_store(folder: Path) -> bool:
    """A folder MLflow's FileStore made: its ``.trash/``, an experiment's ``meta.yaml`` or a model's."""
    if (folder / ".trash").is_dir():
        return True
    children = [child for child in folder.iterdir() if child.is_dir()]
    if (folder / "models").is_dir():
        children += [child for child in (folder / "models").iterdir() if child.is_dir()]
    return any((child / "meta.yaml").is_file() for child in children)


def sqlite_path(dest: str) -> Path:
    """The database file of ``sqlite:///rel/path`` or ``sqlite:////abs/path`` (SQLAlchemy's reading)."""
    path = dest[len("sqlite:///"):].split("?")[0] if dest.startswith("sqlite:///") else ""
    if not path or path == ":memory:":
        raise BadInputError(f"{dest!r}: give a database file, sqlite:///path/to/mlflow.db")
    return Path(path).expanduser()


def _fresh_sqlite(dest: str) -> bool:
    """`fresh` for ``sqlite:///…``, read with :mod:`sqlite3` (read-only) before MLflow opens it.

    MLflow retries a path it cannot open for minutes, and adds its tables to any database.
    """
    import sqlite3

    path = sqlite_path(dest)
    if path.is_dir():
        raise BadInputError(f"{path} is a folder, not a database file", hint="give sqlite:///path/to/mlflow.db")
    if not path.exists():
        if not path.parent.is_dir():
            raise BadInputError(f"{path.parent}: no such folder for the database {path.name}")
        return True
    if path.stat().st_size == 0:
        return True  # MLflow makes its tables in an empty file
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as exc:
        raise BadInputError(f"{path} is not an MLflow sqlite store ({exc})") from None
    if not tables:
        return True
    if not {"alembic_version", "experiments", "runs"} <= tables:
        raise BadInputError(f"{path} is a database but not an MLflow store (no MLflow tables)",
                            hint="give a new file, or a database MLflow made")
    return False
