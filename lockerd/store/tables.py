"""The row repositories that the operations over them (custody, access, technicians) share."""

from __future__ import annotations

from dataclasses import dataclass

from lockerd.store.compartments import CompartmentRepo
from lockerd.store.credentials import Throttles
from lockerd.store.intents import IntentRepo
from lockerd.store.outbound import OutboundRepo
from lockerd.store.parcels import ParcelRepo


@dataclass(frozen=True)
class Tables:
    compartments: CompartmentRepo
    intents: IntentRepo
    parcels: ParcelRepo
    throttles: Throttles
    outbound: OutboundRepo
