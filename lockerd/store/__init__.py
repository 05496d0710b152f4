"""Durable state in SQLite: custody, journal, credentials."""

from lockerd.store._db import Database
from lockerd.store.store import Reservation, Store

__all__ = ["Database", "Reservation", "Store"]
