"""Run one board family's twin in its own process (as a real board is another machine).

    python benchmarks/twin.py FAMILY BAUD ADDRESS[,ADDRESS...]

prints the pty path, then serves until its standard input closes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.generic8a.sim import Generic8aSimulator, SimGeneric8aBoard
from drivers.kerong.sim import Cu16Simulator, Cu48Simulator, SimCu16, SimCu48
from drivers.modbus.sim import ModbusSimulator, SimRelayBoard

TWINS = {
    "kerong-cu16": (Cu16Simulator, SimCu16),
    "kerong-cu48": (Cu48Simulator, SimCu48),
    "generic-8a": (Generic8aSimulator, SimGeneric8aBoard),
    "modbus-rtu": (ModbusSimulator, SimRelayBoard),
}


def main() -> None:
    family, baud, addresses = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    simulator, board = TWINS[family]
    sim = simulator([board(int(a)) for a in addresses.split(",")], baud=baud).start()
    print(sim.port, flush=True)
    sys.stdin.read()
    sim.close()


if __name__ == "__main__":
    main()
