"""One redaction of secrets: URL credentials in every shape, and the credential values in the environment."""

from __future__ import annotations

import logging

import pytest

from arcface_trt.redact import MASK, redact

SECRET = "pa55wordX"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:pa55wordX@bad_host:5077", "http://***@bad_host:5077"),
        ("https://user:pa55wordX@host:9000/engines?x=1", "https://***@host:9000/engines?x=1"),
        ("user:pa55wordX@host:5077", "***@host:5077"),  # no scheme
        ("http:/user:pa55wordX@host:5077", "http:/***@host:5077"),  # one slash
        ("http://u:pa55wordX@[::1:5077", "http://***@[::1:5077"),  # malformed IPv6: no parser accepts it
        ("Custom endpoint `http://user:pa55wordX@host:99999` was not a valid URI",
         "Custom endpoint `http://***@host:99999` was not a valid URI"),  # botocore's own message
        ("got 'http://user:pa55wordX@h:1'", "got 'http://***@h:1'"),
        ("--endpoint-url=http://user:pa55wordX@h:1", "--endpoint-url=http://***@h:1"),
        ("http://user:pa55w@rdX@host/x", "http://***@host/x"),  # an '@' in the password
        ("http://pa55wordX@host", "http://***@host"),  # a token as the user
        ("pa55wordX@host:9000", "***@host:9000"),
        ('{"endpoint": "http://user:pa55wordX@h:1"}', '{"endpoint": "http://***@h:1"}'),
    ],
)  # fmt: skip
def test_url_credentials_in_every_shape(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert redact(shown) == shown  # idempotent


@pytest.mark.parametrize(
    "text",
    ["/models/arc@face.onnx", "arc@face.onnx", "s3://bucket/engines/trt10.16/m-fp16-sm90.plan", "http://host:9000/x",
     "error: no engine at s3://b/e/x.plan", "git@github.com:org/repo"],
)  # fmt: skip
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_environment_credentials_and_given_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-value-123")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token-value-456")
    text = "key env-secret-value-123 token env-token-value-456 other profile-secret-789"
    assert redact(text, ["profile-secret-789"]) == f"key {MASK} token {MASK} other {MASK}"


def test_cli_error_line_traceback_and_logs_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's one renderer: the error line, the --debug traceback, an unexpected error, a log line.

    Each also carries a terminal escape sequence, which is written out, never sent.
    """
    import typer

    from arcface_trt.cli import app as app_module
    from arcface_trt.errors import InputError
    from tests.support.cli import invoke

    def fail() -> None:
        raise InputError(f"cannot use http://user:{SECRET}@host:1 \x1b[2J")

    def crash() -> None:
        raise RuntimeError(f"bug near http://user:{SECRET}@host:1 \x1b[2J")

    def log() -> None:
        logging.getLogger("arcface_trt").warning("endpoint http://user:%s@host:1 is slow \x1b[2J", SECRET)

    app = typer.Typer(cls=app_module._Group, callback=app_module._root)
    for command in (fail, crash, log):
        app.command()(command)
    monkeypatch.setattr(app_module, "app", app)
    for name, code in (("fail", 2), ("crash", 1), ("log", 0)):
        for debug in ([], ["--debug"]):
            result = invoke(*debug, name)
            assert result.exit_code == code, (name, debug, result.output)
            assert SECRET not in result.output and "http://***@host:1" in result.stderr, result.stderr
            assert "\x1b" not in result.output and "\\x1b[2J" in result.stderr
            traceback_shown = name == "crash" or (bool(debug) and name == "fail")
            assert ("Traceback" in result.stderr) == traceback_shown, result.stderr
