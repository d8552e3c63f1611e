"""The daemon's wiring: journal, state store, status, scheduling, reload."""
