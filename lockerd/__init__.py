"""lockerd: the on-site controller daemon of a smart parcel locker bank."""

__version__ = "0.1.0"
