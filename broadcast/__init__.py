"""broadcast: warn and inform the public in an emergency."""

__version__ = "0.1.0"
