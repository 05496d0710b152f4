"""The flows: the flow record and its states (``record``), and the pure state machines
the locker drives (``machine``)."""

from lockerd.flows.record import (
    BARCODE,
    COURIER_CODE,
    MORE_TIME,
    Flow,
    Kind,
    State,
    check_barcode,
    check_courier_code,
    check_size,
    next_size,
)

__all__ = [
    "BARCODE",
    "COURIER_CODE",
    "MORE_TIME",
    "Flow",
    "Kind",
    "State",
    "check_barcode",
    "check_courier_code",
    "check_size",
    "next_size",
]
