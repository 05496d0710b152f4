"""[sync] keys: every mistake named with its key path."""

from __future__ import annotations

import pytest

from lockerd.config import parse
from tests.test_config import problems, text

KEY = "oRBizOAgXkx+ixLV6MVVcaCzMxpSI58/mDaK4azkQhw="


def with_sync(tmp_path, body: str) -> str:
    return text(tmp_path).replace("[demo]", f"[sync]\n{body}\n[demo]")


def test_a_valid_sync_section(tmp_path) -> None:
    body = f'url = "https://bo.example.com/api"\ntoken_file = "t"\ncommand_keys = ["{KEY}"]'
    config = parse(with_sync(tmp_path, body), tmp_path / "bank.toml")
    assert config.sync.batch == 500 and config.sync.command_keys == (KEY,)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('url = "http://bo.example.com"\ntoken_file = "t"', "sync.url: must be https://"),
        ('url = "ftp://bo.example.com"\ntoken_file = "t"', "sync.url: must be https://"),
        ('url = "https://bo.example.com?x=1"\ntoken_file = "t"', "is not a base URL"),
        ('url = "https://bo.example.com"', "sync.token_file: a back office needs"),
        (
            'url = "https://bo.example.com"\ntoken_file = "t"\nclient_cert = "c.pem"',
            "sync: client_cert and client_key go together",
        ),
        ('command_keys = ["nope"]', "sync.command_keys[0]: not a base64 Ed25519 public key"),
        ("batch = 10", "sync.batch: 10 is outside 100..5000"),
        ("batch_bytes = 131072", "sync.batch_bytes: 131072 is outside 4096..98304"),
        ('url = "http://128.0.0.1"\ntoken_file = "t"', "sync.url: must be https://"),
        ("interval = 5", "sync.interval: unknown key"),
    ],
)
def test_each_sync_problem_names_its_key(tmp_path, body, expected) -> None:
    found = problems(with_sync(tmp_path, body), tmp_path)
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.2", "127.255.0.9", "localhost", "LOCALHOST", "[::1]"]
)
def test_plain_http_is_allowed_to_loopback_only(tmp_path, host) -> None:
    body = f'url = "http://{host}:8090"\ntoken_file = "t"'
    assert parse(with_sync(tmp_path, body), tmp_path / "bank.toml").sync.url
