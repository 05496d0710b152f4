"""Durable state in SQLite: custody, journal, credentials."""

from lockerd.store._db import Database
from lockerd.store.intents import Reservation
from lockerd.store.store import Store

__all__ = ["Database", "Reservation", "Store"]
