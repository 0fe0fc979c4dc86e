"""Artifact remotes: where content-addressed objects live beside the local cache.

A remote is a name, an fsspec URL and storage options. Team remotes are written to
``gitml.yaml`` (committed); personal ones, and personal overrides of a team remote's options
(an endpoint, a profile), go to the repository's git config::

    # gitml.yaml
    remotes:
      storage:
        url: s3://ml-artifacts/churn
        options: {endpoint_url: "http://127.0.0.1:9000"}
    default_remote: storage

    # .git/config (gitml remote add --local)
    [gitml "remote.scratch"]
        url = /mnt/scratch/gitml
        option = anon=false
    [gitml]
        defaultremote = scratch

Credentials never belong in ``gitml.yaml``: fsspec backends read their usual environment
variables and credential files. :func:`add_remote` refuses to write one there (in the URL, in an
option named like a secret, or in an option's value), and :func:`masked` is what every display
shows: credentials as ``***`` (:mod:`gitml.core.urls` owns the URL grammar).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path

from gitml.core import urls
from gitml.core.config import CONFIG_FILE, load_config, parse_config
from gitml.core.errors import BadInputError
from gitml.core.gitrepo import GitRepo

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CREDENTIAL_HINT = ("keep it personal: `gitml remote add --local` writes git config; or let the backend "
                   "read it from the environment: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                   "GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*, your SSH agent")


def is_secret_option(name: str) -> bool:
    """Whether a storage option looks like a credential (never written to gitml.yaml, masked).

    The rule is :func:`gitml.core.urls.is_secret_name`, shared with URL query parameters.

    Args:
        name: the option's name (``secret_access_key``).

    Returns:
        True when it names a credential.
    """
    return urls.is_secret_name(name)


def option_value(text: str) -> object:
    """A storage option typed as text (CLI, git config), as the fsspec backend should get it.

    Args:
        text: the value as typed.

    Returns:
        True or False for ``true``/``false`` (any case), an int for a plain decimal integer
        (not ``007``), else the text unchanged.
    """
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if re.fullmatch(r"-?(?:0|[1-9][0-9]*)", text.strip()):
        return int(text)  # only plain integers: "007" or "1.10" stay text (profiles, versions)
    return text


@dataclass(repr=False)
class Remote:
    """One artifact remote, merged from gitml.yaml and git config.

    ``url`` is an fsspec URL or a folder (a relative one is made absolute from the work tree's
    root); ``options`` are fsspec storage options; ``scope`` is ``"team"`` (gitml.yaml) or
    ``"local"`` (git config only); ``default`` says whether it is the default remote. Its
    fields hold the real values (backends need them); its ``repr`` is masked, so a log line or
    a traceback does not show a credential.
    """

    name: str
    url: str
    options: dict[str, object] = field(default_factory=dict)
    scope: str = "team"  # "team" (gitml.yaml) or "local" (git config)
    default: bool = False
    #: What :func:`add_remote` found worth saying (a machine-local folder in gitml.yaml); not
    #: part of the remote's value: left out of its repr and of comparisons.
    warnings: list[str] = field(default_factory=list, repr=False, compare=False)

    def __repr__(self) -> str:
        shown = masked(self)
        return "Remote(" + ", ".join(f"{f.name}={getattr(shown, f.name)!r}" for f in fields(self) if f.repr) + ")"


def machine_local_warnings(name: str, url: str) -> list[str]:
    """Why a team remote's URL may not reach the same place on a teammate's machine.

    An absolute folder (``/mnt/x``, ``C:/x``, ``file:///x``, fsspec's ``local:///x``) or one in the home directory
    (``~/x``) names a place on this machine, yet gitml.yaml is committed and every clone reads
    it. A relative folder is anchored at the work tree root on every machine (``../store``
    beside the repository is a layout a team can share) and is not warned about.

    Args:
        name: the remote's name.
        url: its URL as given.

    Returns:
        One sentence per problem (empty for a URL every clone can use).
    """
    lowered = url.lower()
    if url.startswith("~"):
        what = "a folder in your home directory"
    elif url.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", url) or lowered.startswith(("file:", "local:")):
        what = "a folder on this machine"
    else:
        return []
    return [f"remote {name!r} is {what} ({url}), and {CONFIG_FILE} is committed: other clones will look "
            f"for it on their own machine; keep it personal with --local (local=True), or use a shared "
            f"URL (s3://…, a mount every machine has)"]


def masked(remote: Remote) -> Remote:
    """A copy of ``remote`` fit to show: credentials in its URL and options replaced by ``***``.

    An option named like a secret (:func:`is_secret_option`) is masked whole, at any depth of
    nested mappings; a text value elsewhere has the URLs and secret parameters in it masked.

    Args:
        remote: the remote, with its real values.

    Returns:
        A new :class:`Remote`; ``remote`` is not changed.
    """
    return Remote(remote.name, urls.mask_url(remote.url), _masked_value(remote.options),
                  remote.scope, remote.default, list(remote.warnings))


def _masked_value(value: object) -> object:
    if isinstance(value, dict):
        return {k: urls.MASK if is_secret_option(str(k)) else _masked_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked_value(v) for v in value]
    return urls.mask_text(value) if isinstance(value, str) else value


def remote_secrets(remote: Remote) -> list[str]:
    """Every secret string of ``remote`` (from its URL and options), to redact backend messages.

    Args:
        remote: the remote, with its real values.

    Returns:
        The secrets as written and in the forms a backend may quote them (see
        :func:`gitml.core.urls.secret_values`); pass them to :func:`gitml.core.urls.mask_text`.
    """
    found = urls.secret_values(remote.url)

    def walk(value: object, secret: bool) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, secret or is_secret_option(str(key)))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, secret)
        elif secret and value is not None and not isinstance(value, bool):
            found.append(str(value))
        elif isinstance(value, str):
            found.extend(urls.secret_values(value))

    walk(remote.options, False)
    return found


def committed_credentials(url: str, options: dict[str, object]) -> list[str]:
    """What of a remote must not be committed, described without showing it.

    Args:
        url: the remote's URL.
        options: its storage options, nested mappings included.

    Returns:
        One description per credential (``"credential-like option 'key'"``); ``[]`` if none.
    """
    found = urls.credentials(url)

    def walk(value: object, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                name = f"{where}.{key}" if where else str(key)
                if is_secret_option(str(key)):
                    found.append(f"credential-like option {name!r}")
                else:
                    walk(item, name)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, where)
        elif isinstance(value, str):
            found.extend(f"{what} of option {where!r}" for what in urls.credentials(value))

    walk(options, "")
    return found


def check_remote_name(name: str) -> str:
    """Validate an artifact remote's name.

    Args:
        name: 1 to 64 characters: letters, digits, ``.``, ``_`` or ``-``, starting with a
            letter or digit.

    Returns:
        ``name`` unchanged.

    Raises:
        BadInputError: it does not fit.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadInputError(f"invalid remote name {name!r}", hint="use letters, digits, '.', '_' or '-'")
    return name


def _team_remotes(root: Path) -> tuple[dict[str, Remote], str | None]:
    raw = load_config(root).raw
    found: dict[str, Remote] = {}
    remotes = raw.get("remotes") or {}
    if not isinstance(remotes, dict):
        raise BadInputError(f"{root / CONFIG_FILE}: 'remotes' must be a mapping of names")
    for name, spec in remotes.items():
        try:
            check_remote_name(str(name))
        except BadInputError as exc:
            raise BadInputError(f"{root / CONFIG_FILE}: {exc.message}", hint=exc.hint) from None
        if isinstance(spec, str):
            spec = {"url": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
            raise BadInputError(f"{root / CONFIG_FILE}: remote {name!r} needs a 'url'")
        options = spec.get("options") or {}
        if not isinstance(options, dict):
            raise BadInputError(f"{root / CONFIG_FILE}: options of remote {name!r} must be a mapping")
        found[str(name)] = Remote(str(name), spec["url"], {str(k): v for k, v in options.items()})
    default = raw.get("default_remote")
    return found, str(default) if default is not None else None


def _local_remotes(repo: GitRepo) -> tuple[dict[str, Remote], str | None]:
    found: dict[str, Remote] = {}
    for subsection, values in repo.config_sections("gitml").items():
        if not subsection.startswith("remote."):
            continue
        name = subsection[len("remote.") :]
        if not NAME_RE.match(name):
            continue  # not one gitml wrote: `gitml remote add` validates names
        options = {k: option_value(v) for k, v in (o.split("=", 1) for o in values.get("option", []) if "=" in o)}
        url = values.get("url", [""])[-1]
        found[name] = Remote(name, url, options, scope="local")
    default = repo.config_sections("gitml").get("", {}).get("defaultremote", [None])[-1]
    return found, default


def list_remotes(repo: GitRepo) -> list[Remote]:
    """Every configured remote: gitml.yaml's, then git config's on top (options merged).

    The default is git config's ``gitml.defaultRemote``, else gitml.yaml's ``default_remote``,
    else the only remote.

    Args:
        repo: the open repository.

    Returns:
        The remotes, by name.

    Raises:
        BadInputError: gitml.yaml is invalid or names a remote badly.
    """
    team, team_default = _team_remotes(repo.root)
    local, local_default = _local_remotes(repo)
    merged = dict(team)
    for name, remote in local.items():
        if name in merged:
            base = merged[name]
            merged[name] = Remote(name, remote.url or base.url, {**base.options, **remote.options}, base.scope)
        elif remote.url:
            merged[name] = remote
    default = local_default or team_default
    if default is None and len(merged) == 1:
        default = next(iter(merged))
    for remote in merged.values():
        remote.default = remote.name == default
        remote.url = _anchor(repo, remote.url)
    return sorted(merged.values(), key=lambda r: r.name)


def _anchor(repo: GitRepo, url: str) -> str:
    """A relative folder remote means relative to the work tree root, wherever gitml runs."""
    if "://" in url or url.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", url):
        return url
    return str(repo.root / url)


def get_remote(repo: GitRepo, name: str | None = None) -> Remote:
    """The named remote, or the default one.

    Args:
        repo: the open repository.
        name: the remote's name (default: the default remote).

    Returns:
        The remote, with its real values.

    Raises:
        BadInputError: no such remote, or no default when ``name`` is None.
    """
    remotes = {r.name: r for r in list_remotes(repo)}
    if name is not None:
        if name not in remotes:
            known = f"known: {', '.join(remotes)}" if remotes else "none is configured"
            raise BadInputError(f"no artifact remote named {name!r} ({known})",
                                hint="add one with `gitml remote add NAME URL`")
        return remotes[name]
    default = [r for r in remotes.values() if r.default]
    if not default:
        if not remotes:
            raise BadInputError("no artifact remote configured", hint="add one with `gitml remote add NAME URL`")
        raise BadInputError("several artifact remotes and no default", hint="pass -r NAME or use --default")
    return default[0]


def add_remote(
    repo: GitRepo, name: str, url: str, options: dict[str, str] | None = None,
    default: bool = False, local: bool = False,
) -> Remote:
    """Add (or replace) a remote in gitml.yaml, or with ``local`` in the repository's git config.

    gitml.yaml is edited in place: comments, order and every other line stay as written.

    Args:
        repo: the open repository.
        name: the remote's name (see :func:`check_remote_name`).
        url: an fsspec URL (``s3://bucket/prefix``) or a folder.
        options: fsspec storage options; text values are typed by :func:`option_value`.
        default: make it the default remote.
        local: write it to git config (personal) instead of gitml.yaml (committed).

    Returns:
        The remote as :func:`list_remotes` now reads it, with ``warnings`` set for a
        machine-local folder written to gitml.yaml (:func:`machine_local_warnings`).

    Raises:
        BadInputError: a bad name or empty URL; or, for gitml.yaml, a credential in the URL
            (user info, a secret query parameter) or in the options (:func:`committed_credentials`).
            Nothing is written then.
    """
    check_remote_name(name)
    if not isinstance(url, str) or not url.strip():
        raise BadInputError("remote URL is empty")
    options = {k: option_value(v) if isinstance(v, str) else v for k, v in (options or {}).items()}
    if not local:
        secret = committed_credentials(url, options)
        if secret:
            raise BadInputError(f"refusing to write {secret[0]} to {CONFIG_FILE}, which is committed",
                                hint=CREDENTIAL_HINT)
    if local:
        section = f"gitml.remote.{name}"
        repo.config_remove_section(section)
        repo.config_set(f"{section}.url", url)
        for key, value in options.items():
            repo.config_set(f"{section}.option", f"{key}={value}", add=True)
        if default:
            repo.config_set("gitml.defaultRemote", name)
    else:
        spec = {"url": url, **({"options": options} if options else {})}
        _edit_team_config(repo.root, name, spec, make_default=default)
    added = next(r for r in list_remotes(repo) if r.name == name)
    added.warnings = [] if local else machine_local_warnings(name, url)
    return added


def remove_remote(repo: GitRepo, name: str) -> None:
    """Remove a remote from gitml.yaml and git config (wherever it is).

    When it was the default, the default setting goes with it.

    Args:
        repo: the open repository.
        name: the remote's name.

    Raises:
        BadInputError: no remote of that name.
    """
    in_team = name in (load_config(repo.root).raw.get("remotes") or {})
    local = repo.config_sections("gitml").get(f"remote.{name}")
    if not in_team and local is None:
        raise BadInputError(f"no artifact remote named {name!r}")
    if in_team:
        _edit_team_config(repo.root, name, None)
    if local is not None:
        repo.config_remove_section(f"gitml.remote.{name}")
    if repo.config_sections("gitml").get("", {}).get("defaultremote", [None])[-1] == name:
        repo.config_unset("gitml.defaultRemote")


# -- editing gitml.yaml ----------------------------------------------------------------------------
# A person wrote gitml.yaml, with comments, blank lines and an order of their own. ruamel.yaml's
# round-trip loader tells where each key and each remote sits; the edit replaces only the lines
# of the remote (and the `default_remote:` line) it changes, so every other byte stays as written.
# Dumping the whole round-trip document would not: it re-indents the file, moves comment columns
# and can hand a comment that precedes the next key to the entry being removed.


def _edit_team_config(root: Path, name: str, spec: dict | None, make_default: bool = False) -> None:
    """Add or replace (``spec``) or remove (``spec`` None) remote ``name`` in gitml.yaml.

    ``make_default`` also sets ``default_remote: name``; removing the default remote drops that
    line. The new text must pass the schema (:func:`gitml.core.config.parse_config`) and mean what
    ruamel.yaml's own edit of the document means, else nothing is written.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    path = root / CONFIG_FILE
    old = load_config(root).raw  # a file gitml refuses to read is not one to edit either
    text = path.read_bytes().decode("utf-8") if path.exists() else ""
    doc = YAML().load(text) if text.strip() else None  # round-trip: positions, comments, order
    doc = doc if isinstance(doc, CommentedMap) else CommentedMap()
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    edits = _remote_edits(doc, lines, name, spec, dict(old.get("remotes") or {}))
    clear = spec is None and old.get("default_remote") == name
    if make_default or clear:
        edits.append(_top_edit(doc, lines, "default_remote", None if clear else name))
    # bottom-up, so the line numbers of the edits above still hold; two appends keep their order
    for _, (start, end, new) in sorted(enumerate(edits), key=lambda e: (e[1][0], e[0]), reverse=True):
        lines[start:end] = new
    new_text = "".join(lines)
    if new_text.endswith("\n\n") and not text.endswith("\n\n"):
        new_text = new_text.rstrip("\n") + "\n"  # the blank line before a block now removed
    expected = _dump_edited(doc, name, spec, make_default, clear)
    if parse_config(new_text).raw != parse_config(expected).raw:
        new_text = expected  # the file had a shape the line edit does not know: ruamel's dump
    parse_config(new_text)
    tmp = path.with_name(f".{CONFIG_FILE}.{os.getpid()}.tmp")
    try:
        tmp.write_text(new_text, encoding="utf-8")
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _remote_edits(doc, lines: list[str], name: str, spec: dict | None,
                  current: dict) -> list[tuple[int, int, list[str]]]:
    """Line edits ``(start, end, new lines)`` that put ``spec`` under ``remotes.name`` (or drop it).

    ``current`` is the remotes as gitml read them (plain values).
    """
    from ruamel.yaml.comments import CommentedMap

    remotes = doc.get("remotes")
    block = isinstance(remotes, CommentedMap) and len(remotes) > 0 and not remotes.fa.flow_style()
    if not block:  # absent, empty or written inline: the whole top-level key is rewritten
        merged = {str(k): v for k, v in current.items() if str(k) != name}
        if spec is not None:
            merged[name] = spec
        return [_top_edit(doc, lines, "remotes", merged or None)]
    names = list(remotes)
    if spec is None and names == [name]:
        return [_top_edit(doc, lines, "remotes", None)]
    col = remotes.lc.key(names[0])[1]
    _, block_end = _top_span(doc, lines, "remotes")
    if name not in remotes:
        return [(block_end, block_end, _render({name: spec}, col))]
    at = names.index(name)
    start = remotes.lc.key(name)[0]
    stop = remotes.lc.key(names[at + 1])[0] if at + 1 < len(names) else block_end
    return [(start, _content_end(lines, start, stop), [] if spec is None else _render({name: spec}, col))]


def _top_edit(doc, lines: list[str], key: str, value: object) -> tuple[int, int, list[str]]:
    """The line edit that sets top-level ``key`` to ``value`` (None: removes the key)."""
    new = [] if value is None else _render({key: value}, 0)
    if key in doc:
        start, end = _top_span(doc, lines, key)
        return start, end, new
    gap = ["\n"] if new and lines and lines[-1].strip() else []
    return len(lines), len(lines), gap + new


def _top_span(doc, lines: list[str], key: str) -> tuple[int, int]:
    """The lines of top-level ``key``: its own line to its last line of content.

    Comments and blank lines after it belong to what follows.
    """
    keys = list(doc)
    start = doc.lc.key(key)[0]
    at = keys.index(key)
    stop = doc.lc.key(keys[at + 1])[0] if at + 1 < len(keys) else len(lines)
    return start, _content_end(lines, start, stop)


def _content_end(lines: list[str], start: int, stop: int) -> int:
    end = stop
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return end


def _render(mapping: dict, indent: int) -> list[str]:
    """``mapping`` as block-style YAML lines, each indented by ``indent`` spaces."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # url first, options as given
    yaml.width = 4096  # one line per value: a long URL is not folded
    buffer = io.StringIO()
    yaml.dump(mapping, buffer)
    return [" " * indent + line for line in buffer.getvalue().splitlines(keepends=True)]


def _dump_edited(doc, name: str, spec: dict | None, make_default: bool, clear: bool) -> str:
    """The same edit made by ruamel.yaml on the round-trip document (comments kept where it can)."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(doc.get("remotes"), dict):
        doc["remotes"] = CommentedMap()
    if spec is None:
        doc["remotes"].pop(name, None)
    else:
        doc["remotes"][name] = spec
    if not doc["remotes"]:
        del doc["remotes"]
    if clear:
        doc.pop("default_remote", None)
    elif make_default:
        doc["default_remote"] = name
    yaml = YAML()
    yaml.width = 4096
    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    return buffer.getvalue() if doc else ""
