"""The board contract on every family's twin."""

from tests.contract import capabilities


class TestReadInputs(capabilities.ReadInputs):
    pass


class TestPulse(capabilities.Pulse):
    pass


class TestDetectSilence(capabilities.DetectSilence):
    pass


class TestRecover(capabilities.Recover):
    pass
