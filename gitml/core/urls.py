"""The grammar of the URLs gitml stores, records and shows: where credentials hide in them.

gitml meets URLs in three places: artifact remotes (``gitml.yaml``, committed, and git config,
personal), git remotes (recorded as a run's ``source.remote``) and error messages (from git and
from fsspec backends). A credential can hide in four parts of a URL:

- the user info before ``@``: ``https://TOKEN@host``, ``s3://KEY:SECRET@bucket``,
  ``sftp://user:PASSWORD@host``. For the login schemes (``ssh``, ``sftp``, ``git+ssh``, the
  scp-like ``user@host:path`` of git) the user name is a login, not a secret, and only a
  password is one; for every other scheme the whole user info is treated as a secret, since
  ``https://ghp_…@github.com`` and ``s3://AKIA…@bucket`` put the secret in the user name.
- query parameters whose names look like secrets (:func:`is_secret_name`): ``access_token``,
  ``sig``, ``X-Amz-Signature`` …, also percent-encoded (``access%5Ftoken``);
- the same parameters in the fragment (``#access_token=…``);
- nowhere else: the host, port and path are kept as they are.

:func:`parse_url` splits any text without losing a character (:func:`format_url` gives it back),
:func:`credentials` names what a URL carries without showing it, :func:`mask_url` replaces each
secret by ``***`` (for display), :func:`strip_url` removes them (for records), and
:func:`mask_text` masks every URL and secret parameter found in free text (error messages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import unquote, unquote_plus

MASK = "***"
LOGIN_SCHEMES = frozenset({"ssh", "sftp", "git+ssh", "ssh+git", "scp"})

# Matched against a name lowered with everything but letters and digits removed.
_SECRET_WORDS = ("secret", "password", "passwd", "passphrase", "token", "credential", "accesskey",
                 "apikey", "privatekey", "accountkey", "connectionstring")
_SECRET_NAMES = frozenset({"key", "keyid", "sig", "pwd", "pass", "pkey", "auth", "authorization", "sas"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_PARAM_IN_TEXT = re.compile(r"(?<=[?&;#])([^=&;#?\s'\"<>`]+)=([^&;#\s'\"<>`]*)")
_SEPARATORS = re.compile(r"([&;?])")


def is_secret_name(name: str) -> bool:
    """Whether a query parameter or storage option named ``name`` holds a credential.

    Case, ``-``, ``_`` and percent-encoding do not matter. Secret: the names ``key``, ``key_id``,
    ``sig``, ``pwd``, ``pass``, ``pkey``, ``auth``, ``authorization``, ``sas``; names ending in
    ``_key`` or ``signature``; names containing ``secret``, ``password``, ``passwd``,
    ``passphrase``, ``token``, ``credential``, ``access_key``, ``api_key``, ``private_key``,
    ``account_key`` or ``connection_string``.

    Args:
        name: the parameter's or option's name, as written.

    Returns:
        True when the name says its value is a credential.
    """
    text = unquote_plus(str(name)).lower()
    squeezed = re.sub(r"[^a-z0-9]", "", text)
    return (squeezed in _SECRET_NAMES or re.sub(r"[-.\s]", "_", text).endswith("_key")
            or squeezed.endswith("signature") or any(w in squeezed for w in _SECRET_WORDS))


@dataclass(frozen=True)
class Url:
    """A URL split into the parts credentials hide in; ``format_url`` joins it back exactly.

    ``scheme`` is empty for a plain path (all of it in ``path``) and for git's scp-like
    ``[user@]host:path`` (``scp`` true). ``userinfo``, ``query`` and ``fragment`` are None when
    absent (and ``""`` when present but empty, as in ``https://host/x?``).
    """

    scheme: str = ""
    userinfo: str | None = None
    host: str = ""
    path: str = ""
    query: str | None = None
    fragment: str | None = None
    scp: bool = False

    @property
    def user(self) -> str | None:
        """The user info up to its first ``:`` (None without user info)."""
        return None if self.userinfo is None else self.userinfo.split(":", 1)[0]

    @property
    def password(self) -> str | None:
        """The user info after its first ``:`` (None without one)."""
        if self.userinfo is None or ":" not in self.userinfo:
            return None
        return self.userinfo.split(":", 1)[1]

    @property
    def login(self) -> bool:
        """Whether the user name is a login name (ssh-like), not part of the secret."""
        return self.scp or self.scheme.lower() in LOGIN_SCHEMES


def parse_url(text: str) -> Url:
    """Split ``text`` (any string) into a :class:`Url`; never raises, never loses a character.

    Args:
        text: a URL, an scp-like ``[user@]host:path``, a path, or anything else.

    Returns:
        The parts; ``format_url(parse_url(text)) == text``.
    """
    match = _SCHEME.match(text)
    if match:
        return _parse_hierarchical(match.group(1), text[match.end():])
    head = text.split("/", 1)[0]
    if "@" in head:
        userinfo, _, after = head.rpartition("@")
        host_match = re.match(r"(\[[^\]]*\]|[^:\[]+):", after)
        if userinfo and host_match:
            return Url(userinfo=userinfo, host=host_match.group(1),
                       path=text[len(userinfo) + 1 + host_match.end():], scp=True)
    return Url(path=text)


def _parse_hierarchical(scheme: str, rest: str) -> Url:
    authority = re.match(r"[^/?#]*", rest).group(0)
    userinfo = None
    if "@" in authority:
        userinfo, _, _ = authority.rpartition("@")
    elif _hides_userinfo(authority) and "@" in rest:
        # A password with an unencoded '/', '?' or '#' (AWS secrets often have a '/'): the
        # authority then ends early and looks like "KEY:SEC", whose "port" is not a number.
        userinfo = rest[: rest.index("@")]
    if userinfo is not None:
        rest = rest[len(userinfo) + 1:]
    host = re.match(r"[^/?#]*", rest).group(0)
    rest = rest[len(host):]
    path = re.match(r"[^?#]*", rest).group(0)
    rest = rest[len(path):]
    query = fragment = None
    if rest.startswith("?"):
        query, _, tail = rest[1:].partition("#")
        fragment = tail if "#" in rest else None
    elif rest.startswith("#"):
        fragment = rest[1:]
    return Url(scheme, userinfo, host, path, query, fragment)


def _hides_userinfo(authority: str) -> bool:
    if authority.startswith("[") or ":" not in authority:
        return False
    port = authority.rsplit(":", 1)[1]
    return bool(port) and not port.isdigit()


def format_url(url: Url) -> str:
    """The text of ``url``: ``format_url(parse_url(text)) == text`` for every text.

    Args:
        url: the parts.

    Returns:
        The URL as text.
    """
    user = "" if url.userinfo is None else url.userinfo + "@"
    if url.scp:
        return f"{user}{url.host}:{url.path}"
    if not url.scheme:
        return url.path
    query = "" if url.query is None else "?" + url.query
    fragment = "" if url.fragment is None else "#" + url.fragment
    return f"{url.scheme}://{user}{url.host}{url.path}{query}{fragment}"


def _pieces(params: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` as ``[("", "a=1"), ("&", "b=2")]``: separators kept for an exact rebuild."""
    parts = _SEPARATORS.split(params)
    return [("", parts[0])] + [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]


def _secret_piece(piece: str) -> bool:
    return "=" in piece and is_secret_name(piece.split("=", 1)[0])


def _secret_params(params: str | None) -> list[str]:
    if not params or "=" not in params:
        return []
    return [unquote_plus(p.split("=", 1)[0]) for _, p in _pieces(params) if _secret_piece(p)]


def _masked_params(params: str | None) -> str | None:
    if not params or "=" not in params:
        return params
    return "".join(sep + (p.split("=", 1)[0] + "=" + MASK if _secret_piece(p) else p)
                   for sep, p in _pieces(params))


def _stripped_params(params: str | None) -> str | None:
    if not params or "=" not in params:
        return params
    kept = [(sep, p) for sep, p in _pieces(params) if not _secret_piece(p)]
    if not kept:
        return None
    return kept[0][1] + "".join(sep + p for sep, p in kept[1:])


def credentials(text: str) -> list[str]:
    """What in ``text`` (a URL) is a credential, described without showing it.

    Args:
        text: a URL.

    Returns:
        One description per credential (``"the secret query parameter 'sig' in the URL"``);
        ``[]`` if none.
    """
    url = parse_url(text)
    found = []
    if url.login and url.password is not None:
        found.append("a password in the URL")
    elif not url.login and url.userinfo:
        found.append("credentials in the URL (before '@')")
    found += [f"the secret query parameter {name!r} in the URL" for name in _secret_params(url.query)]
    found += [f"the secret parameter {name!r} in the URL's fragment" for name in _secret_params(url.fragment)]
    return found


def mask_url(text: str) -> str:
    """``text`` with every credential replaced by ``***``, for display.

    Args:
        text: a URL.

    Returns:
        The URL with its user info masked (only the password for ssh-like URLs) and the values
        of secret query and fragment parameters masked; ``text`` itself when it has none.
    """
    url = parse_url(text)
    if not (url.userinfo or url.query or url.fragment):
        return text
    userinfo = url.userinfo
    if url.login and url.password is not None:
        userinfo = f"{url.user}:{MASK}"
    elif not url.login and userinfo:
        userinfo = MASK
    return format_url(replace(url, userinfo=userinfo, query=_masked_params(url.query),
                              fragment=_masked_params(url.fragment)))


def strip_url(text: str) -> str:
    """``text`` without its credentials, for records.

    Args:
        text: a URL.

    Returns:
        The URL without its user info (only without the password for ssh-like URLs:
        ``git@github.com:org/repo`` stays as is) and without secret query and fragment
        parameters; a query or fragment left empty goes too.
    """
    url = parse_url(text)
    if not (url.userinfo is not None or url.query or url.fragment):
        return text
    userinfo = url.user if url.login else None
    return format_url(replace(url, userinfo=userinfo, query=_stripped_params(url.query),
                              fragment=_stripped_params(url.fragment)))


def secret_values(text: str) -> list[str]:
    """The secret substrings of a URL, to redact free text (a backend's message may quote them).

    Args:
        text: a URL.

    Returns:
        Each secret as written, percent-decoded and split at ``/?#@:``, without duplicates or
        empty strings, longest first.
    """
    url = parse_url(text)
    found = []
    if url.login:
        found.append(url.password or "")
    elif url.userinfo:
        found += [url.userinfo, url.user or "", url.password or ""]
    for params in (url.query, url.fragment):
        if params and "=" in params:
            found += [p.split("=", 1)[1] for _, p in _pieces(params) if _secret_piece(p)]
    found += [unquote(v) for v in found] + [unquote_plus(v) for v in found]
    # Backends split URLs at these characters and quote the pieces ("KEY:SEC" of "KEY:SEC/RET").
    found += [piece for v in found for piece in re.split(r"[/?#@:]", v)]
    return sorted({v for v in found if v}, key=len, reverse=True)


def mask_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Mask the credentials in free text (an error message).

    Args:
        text: any text.
        secrets: strings to replace wherever they occur (see :func:`secret_values`); those
            shorter than 4 characters are left alone, as they would mask ordinary words.

    Returns:
        The text with ``secrets`` replaced by ``***``, every URL masked by :func:`mask_url`, and
        the value of every secret ``name=value`` parameter masked.
    """
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    return _PARAM_IN_TEXT.sub(lambda m: f"{m.group(1)}={MASK}" if is_secret_name(m.group(1)) else m.group(0),
                              text)
