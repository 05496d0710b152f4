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


def test_a_valid_mqtt_section_needs_no_token(tmp_path) -> None:
    body = (
        'transport = "mqtt"\nurl = "mqtts://a1b2c3-ats.iot.eu-west-1.amazonaws.com:443"\n'
        'mqtt_alpn = "x-amzn-mqtt-ca"\nmqtt_keepalive_s = 1200\nmqtt_version = "3.1.1"'
    )
    sync = parse(with_sync(tmp_path, body), tmp_path / "bank.toml").sync
    assert (sync.transport, sync.mqtt_first_retry_s, sync.token_file) == ("mqtt", 60.0, "")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('url = "https://bo.example.com"', "sync.url: with transport = mqtt: must be mqtts://"),
        ('url = "mqtt://broker.example.com"', "sync.url: must be mqtts:// or wss://"),
        ('url = "mqtts://broker.example.com/x"', "sync.url: with transport = mqtt: only a wss://"),
        ('url = "mqtts://b.example.com"\nmqtt_keepalive_s = 20', "mqtt_keepalive_s: 20 is outside"),
        ('url = "mqtts://b.example.com"\nmqtt_keepalive_s = 1201', "is outside 30..1200"),
        ('url = "mqtts://b.example.com"\nmqtt_version = "4"', "sync.mqtt_version: '4' is not one"),
        ('url = "ws://10.0.0.1/mqtt"\nmqtt_alpn = "x"', "sync.mqtt_alpn: ALPN needs TLS"),
        ('url = "mqtts://b.example.com"\nclient_key = "k"', "client_cert and client_key go"),
        ('url = "mqtts://b.example.com"\nmqtt_first_retry_s = -1', "mqtt_first_retry_s: -1"),
    ],
)
def test_each_mqtt_problem_names_its_key(tmp_path, body, expected) -> None:
    found = problems(with_sync(tmp_path, f'transport = "mqtt"\n{body}'), tmp_path)
    assert any(expected in line for line in found), found


def test_with_mqtt_the_locker_id_must_be_a_topic_level(tmp_path) -> None:
    config = with_sync(tmp_path, 'transport = "mqtt"\nurl = "mqtt://127.0.0.1:1883"')
    assert parse(config, tmp_path / "bank.toml").sync.transport == "mqtt"
    found = problems(config.replace('id = "test-locker"', 'id = "site/1"', 1), tmp_path)
    assert any(line.endswith("none of / + #") and "locker.id" in line for line in found), found
