"""Command-line entry points: ``breakoutd`` and ``breakoutctl``."""
