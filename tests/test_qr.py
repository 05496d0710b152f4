"""Pickup by signed QR token: verified offline, for this locker only, before expiry, once."""

import base64
import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lockerd import qrtoken
from lockerd.config import ConfigError, parse
from lockerd.errors import BadRequest, FlowError
from lockerd.qrtoken import Claims
from tests.rig import Rig, bank_config, bank_text

KEY = Ed25519PrivateKey.generate()


def b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@pytest.fixture
async def qr_rig(tmp_path):
    config = bank_config(tmp_path)
    pickup = dataclasses.replace(config.pickup, qr_keys=(b64(KEY),))
    rig = await Rig(dataclasses.replace(config, pickup=pickup)).start()
    yield rig
    await rig.stop()


def token(rig, parcel="PCL1", *, key=KEY, locker=None, ttl=3600, jti="t-1") -> str:
    claims = Claims(locker or rig.config.locker.id, parcel, rig.clock.time() + ttl, jti)
    return qrtoken.issue(claims, key)


async def test_a_genuine_token_opens_once(qr_rig) -> None:
    rig = qr_rig
    comp = await rig.stored("PCL1", "S")
    flow = await rig.api.pickups.token(token(rig))
    assert flow.compartment == comp
    await rig.person_opens(comp)
    await rig.person_closes(comp)
    assert flow.state == "collected"
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.token(token(rig))
    assert info.value.code == "token_used"


async def test_a_token_cannot_be_spent_twice_even_before_the_door_opens(qr_rig) -> None:
    rig = qr_rig
    await rig.stored("PCL1", "S")
    await rig.api.pickups.token(token(rig))
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.token(token(rig))
    assert info.value.code == "token_used"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda rig: token(rig, key=Ed25519PrivateKey.generate()), "token_invalid"),
        (lambda rig: token(rig, locker="another-locker"), "token_wrong_locker"),
        (lambda rig: token(rig, ttl=-1), "token_expired"),
        (lambda rig: token(rig, parcel="NOTHERE1"), "parcel_not_here"),
    ],
)
async def test_refused_with_a_reason_and_no_door_moves(qr_rig, make, code) -> None:
    rig = qr_rig
    await rig.stored("PCL1", "S")
    pulses = rig.unlocks_of("S1")
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.token(make(rig))
    assert info.value.code == code
    assert rig.unlocks_of("S1") == pulses


async def test_a_forged_token_counts_as_a_wrong_code(qr_rig) -> None:
    rig = qr_rig
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.token(token(rig, key=Ed25519PrivateKey.generate()))
    assert info.value.details["attempts_left"] == rig.config.pickup.throttle.lockout_after - 1
    assert rig.store.access.throttle_state("pickup").failures == 1


async def test_a_tampered_payload_is_forged(qr_rig) -> None:
    rig = qr_rig
    prefix, _, signature = token(rig).split(".")
    other = token(rig, parcel="PCL9").split(".")[1]
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.token(f"{prefix}.{other}.{signature}")
    assert info.value.code == "token_invalid"


@pytest.mark.parametrize(
    "text", ["", "hello", "LKR1.x", "LKR2.a.b", "LKR1.!!.??", 42, "LKR1." + "a" * 2000]
)
async def test_not_a_token(qr_rig, text) -> None:
    with pytest.raises(BadRequest) as info:
        await qr_rig.api.pickups.token(text)
    assert info.value.code == "invalid_token"


async def test_qr_pickup_off_without_keys(rig) -> None:
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.token(token(rig))
    assert info.value.code == "qr_not_enabled"


def test_a_bad_key_in_config_is_named(tmp_path) -> None:
    text = bank_text(tmp_path)
    text = text.replace("code_length = 8", 'code_length = 8\nqr_keys = ["not-a-key"]')
    with pytest.raises(ConfigError, match=r"pickup\.qr_keys\[0\]: not a base64 Ed25519 public key"):
        parse(text, tmp_path / "x.toml")


async def test_a_refusal_is_journalled_once(qr_rig) -> None:
    rig = qr_rig
    await rig.stored("PCL1", "S")
    await rig.jump(72 * 3600 + 61)
    with pytest.raises(FlowError) as info:
        await rig.api.pickups.token(token(rig, ttl=3600))
    assert info.value.code == "parcel_expired"
    assert rig.event_types().count("pickup.denied") == 1
