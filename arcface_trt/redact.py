"""One redaction of secrets for everything the tool prints, logs or writes as a record.

Credentials written into a URL (``http://user:secret@host``, ``user:secret@host:9000``,
``http:/user@host``, even a malformed ``http://u:p@[::1:5077``) and the values of the AWS
credential variables are replaced by ``***``. The CLI passes every error line, every
``--debug`` traceback, every log line and every JSON record through :func:`redact`, so a
message built anywhere (ours, botocore's, urllib's) cannot carry a secret out.

The rule works on text, not on parsed URLs, so it also covers URLs that no parser accepts:

- a token with a scheme (``word:`` and at least one slash, anywhere in the token) loses
  everything between the slashes and its last ``@`` (a password may itself hold ``@`` or ``/``);
- a token without a scheme loses what precedes its last ``@`` when that part holds a ``:``
  (``user:secret@host``) or when the host carries a port (``user@host:9000``), and holds no
  ``/`` (``/models/arc@face.onnx`` is a path, not a credential).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

#: What replaces a secret.
MASK = "***"
#: Environment variables whose values are credentials (never printed, whatever the message).
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ACCESS_KEY_ID")
#: Shorter values are not scrubbed (they would mask ordinary words).
_MIN_SECRET = 4

# A run of characters a URL can hold inside a message: spaces, quotes and angle brackets end it.
_TOKEN = re.compile(r"""[^\s'"`<>]+""")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:/+")
_PORT = re.compile(r"[^@]*:\d+(?:[/?#]|$)")


def _redact_token(match: re.Match[str]) -> str:
    token = match.group(0)
    at = token.rfind("@")
    if at < 0:
        return token
    scheme = _SCHEME.search(token)  # also inside a token: --endpoint-url=http://u:p@host
    if scheme is not None:
        return token[: scheme.end()] + MASK + token[at:] if at > scheme.end() else token
    userinfo, host = token[:at], token[at + 1 :]
    if userinfo and "/" not in userinfo and (":" in userinfo or _PORT.match(host)):
        return MASK + token[at:]
    return token


def environment_secrets() -> list[str]:
    """The credential values set in the environment right now."""
    return [value for value in (os.environ.get(name, "").strip() for name in SECRET_ENV) if value]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without URL credentials, the given ``secrets`` or the environment's AWS credential values."""
    text = _TOKEN.sub(_redact_token, str(text))
    for secret in sorted({*secrets, *environment_secrets()}, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET:
            text = text.replace(secret, MASK)
    return text
