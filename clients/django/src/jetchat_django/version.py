"""The package's version and the event contract's version it speaks."""

#: The contract version (``v`` of every payload; docs/events.md, "Versioning").
CONTRACT_VERSION = 1
#: This package's version: its major is the contract version it speaks.
__version__ = "1.0.0"
