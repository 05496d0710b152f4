"""A Modbus RTU relay board whose relays switch lock supplies, pulsed by the board itself.

The pulse is Waveshare's "flash on": FC05 (write single coil) to
``pulse_base + relay`` with the on-time as the value, in ``pulse_unit_ms``
units (0x0200 and 100 ms on Waveshare boards; the map is configuration).
The board switches the relay off itself, so a crash of the daemon can
never leave a coil energized; its FC05 reply is an echo of the request, and
an echo naming another coil or value is a board error. Door switches, where
the board has opto inputs, are read with FC02 (read discrete inputs) from
``inputs_base``.

pymodbus owns the port (any pyserial URL). Its own retries are off: a
status read is retried here, an unlock never is.
"""

from __future__ import annotations

import struct
import time
from typing import Any

from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from drivers.base import MAX_PULSE_MS, Inputs, check_pulse, read_with_retries
from drivers.errors import BoardTimeout, DriverError, FrameError, LinkError


class FlashRequest(ModbusPDU):
    """FC05 with a raw value: the Waveshare timed pulse ("flash on"), and its echo.

    pymodbus decodes every FC05 reply as a WriteSingleCoilResponse, which
    keeps only ``bool(value)``; :class:`ModbusRelayBoard` registers this class
    on its client's decoder so the echo keeps the raw 16-bit value.
    """

    function_code = 5
    rtu_frame_size = 8

    def __init__(self, value: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.value = value

    def encode(self) -> bytes:
        self.verifyAddress()
        return struct.pack(">HH", self.address, self.value)

    def decode(self, data: bytes) -> None:
        self.address, self.value = struct.unpack(">HH", data[:4])


class RtuClient(ModbusSerialClient):
    """pymodbus's serial client, handing over bytes as soon as they arrive.

    The stock client waits until the line has been quiet for a few character
    times before it passes what it read to the RTU framer: 4-8 ms on every
    exchange at 9600 baud, half the wire time of a status read. pymodbus's
    sync transaction already keeps reading until the framer has a whole
    frame (the framer knows each reply's length from its function code), so
    waiting for silence adds nothing but latency.
    """

    def _wait_for_data(self) -> int:
        deadline = time.monotonic() + self.comm_params.timeout_connect
        assert self.socket is not None
        while not (available := self.socket.in_waiting):
            if time.monotonic() >= deadline:
                return 0
            time.sleep(self._t0)  # one character time
        return available


def open_client(url: str, baudrate: int, timeout: float) -> ModbusSerialClient:
    """A connected RTU client on ``url``; raises LinkError with the reason otherwise."""
    client = RtuClient(url, baudrate=baudrate, timeout=timeout, retries=0)
    if not client.connect():
        raise LinkError(f"cannot open {url} for Modbus RTU")
    return client


class ModbusRelayBoard:
    def __init__(
        self,
        client: ModbusSerialClient,
        unit: int,
        relays: int,
        *,
        pulse_base: int = 0x0200,
        pulse_unit_ms: int = 100,
        inputs: int = 0,
        inputs_base: int = 0,
        status_retries: int = 2,
        max_pulse_ms: int = MAX_PULSE_MS,
    ):
        self.channels = relays
        self.max_pulse_ms = max_pulse_ms
        self.unit = unit
        self._client = client
        self._pulse_base = pulse_base
        self._unit_ms = pulse_unit_ms
        self._inputs = inputs
        self._inputs_base = inputs_base
        self._retries = status_retries
        # Only this client's decoder changes; every FC05 this driver sends is a flash.
        client.register(FlashRequest)

    def pulse(self, channel: int, milliseconds: int) -> None:
        """Send the timed pulse and check the board's echo of it.

        Raises:
            BoardTimeout: no reply.
            DriverError: an exception reply, or an echo of another coil or value.
        """
        check_pulse("Modbus relay board", channel, self.channels, milliseconds, self.max_pulse_ms)
        units = max(1, milliseconds // self._unit_ms)
        request = FlashRequest(
            value=units, dev_id=self.unit, address=self._pulse_base + channel - 1
        )
        echo = self._call(self._client.execute, False, request)
        if _written(echo) != _written(request):
            raise DriverError(
                f"Modbus unit {self.unit} relay {channel}: pulse not confirmed: "
                f"sent {_written(request)}, the echo was {_written(echo)}"
            )

    def release_now(self) -> None:
        """Nothing to release: the board ends every flash itself."""

    def read_inputs(self, *, probe: float | None = None) -> Inputs:
        return read_with_retries(self._read, self._retries if probe is None else 0)

    def _read(self, again: bool = False) -> Inputs:
        if self._inputs:
            function, count = 2, self._inputs
            reply = self._call(
                self._client.read_discrete_inputs,
                self._inputs_base,
                count=count,
                device_id=self.unit,
            )
        else:  # no inputs: read the relays, to know the board is there
            function, count = 1, self.channels
            reply = self._call(self._client.read_coils, 0, count=count, device_id=self.unit)
        # pymodbus hands back whatever well-formed frame came from the unit: a reply of
        # another function or with too few bits would read as every input 0.
        if reply.function_code != function or len(reply.bits) != (count + 7) // 8 * 8:
            raise FrameError(
                f"Modbus unit {self.unit}: a read of {count} bits (function {function}) was "
                f"answered by function {reply.function_code} with {len(reply.bits)} bits"
            )
        bits = sum(1 << i for i, on in enumerate(reply.bits[: self._inputs]) if on)
        return Inputs(locks=0, sensors=bits)

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            reply = method(*args, **kwargs)
        except ModbusException as exc:
            raise BoardTimeout(f"Modbus unit {self.unit}: {exc}") from exc
        if reply.isError():
            raise DriverError(f"Modbus unit {self.unit} refused: exception {reply.exception_code}")
        return reply

    def close(self) -> None:
        """Nothing to release: the board ends every pulse itself (the bus closes the port)."""


def _written(pdu: ModbusPDU) -> str:
    """What an FC05 frame says was written, for comparing a request with its echo."""
    if not isinstance(pdu, FlashRequest):
        return f"function code {pdu.function_code}"
    return f"coil 0x{pdu.address:04X} value 0x{pdu.value:04X}"
