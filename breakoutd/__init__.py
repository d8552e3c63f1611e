"""breakoutd: trades price breakouts on Interactive Brokers."""

__version__ = "0.1.0"
