"""Faults the sim can inject: their texts, their state, and the ``--fault`` syntax."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from breakoutd.calendar import exchange_ns

NOTICES = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    2157: "Sec-def data farm connection is broken:secdefnj",
    2158: "Sec-def data farm connection is OK:secdefnj",
}

FAULT_HELP = """\
fault SPEC is KIND[=ARG][@HH:MM[:SS]] (exchange time on the sim's date;
without @ it fires at the start):
  drop              drop every client connection
  refuse=SECONDS    refuse new connections for SECONDS (real seconds)
  restart[=clean]   restart the gateway, keeping orders and account state
                    (the nightly restart); =clean starts from an empty account
  notice=CODE       send IB notice CODE to every client: 1100 (connection lost:
                    market data stops), 1101 (restored, data lost: market data
                    subscriptions are dropped), 1102 (restored, data kept),
                    2103/2104 (market data farm down/OK), 2105/2106, 2157/2158
  reject[=CODE]     reject the next new order (error 201 by default)
  delay=MS          delay order acknowledgements by MS milliseconds; delay=0
                    sends the held ones at once and stops delaying
  duplicate[=off]   send every orderStatus twice (off stops)
  stall=SYMBOL      stop sending market data for SYMBOL
  resume=SYMBOL     send market data for SYMBOL again
examples: --fault drop@09:40:00 --fault notice=1101@09:41 --fault stall=SPY@10:00"""

KINDS = ("drop", "refuse", "restart", "notice", "reject", "delay", "duplicate", "stall",
         "resume")


class FaultSpecError(ValueError):
    """A ``--fault`` spec that cannot be understood."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One scheduled fault: what, with which argument, at which virtual instant."""

    kind: str
    arg: str = ""
    at_ns: int | None = None
    text: str = ""


@dataclass(slots=True)
class FaultState:
    """Faults that stay in force until changed."""

    ack_delay_ms: float = 0.0
    duplicate_status: bool = False
    refusing: bool = False
    fired: list[str] = field(default_factory=list)


def parse_fault(text: str, day: dt.date) -> FaultSpec:
    """Parse ``KIND[=ARG][@HH:MM[:SS]]`` (see FAULT_HELP)."""
    body, _, when = text.strip().partition("@")
    kind, _, arg = body.partition("=")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise FaultSpecError(f"fault {text!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    _check_arg(text, kind, arg.strip())
    at_ns = None
    if when:
        try:
            at_ns = exchange_ns(day, dt.time.fromisoformat(when.strip()))
        except ValueError as exc:
            raise FaultSpecError(f"fault {text!r}: {when!r} is not HH:MM[:SS]") from exc
    return FaultSpec(kind, arg.strip(), at_ns, text.strip())


def _check_arg(text: str, kind: str, arg: str) -> None:
    numeric = {"refuse": "SECONDS", "notice": "CODE", "reject": "CODE", "delay": "MS"}
    if kind in numeric and (arg or kind in ("refuse", "notice", "delay")):
        try:
            value = float(arg)
        except ValueError:
            raise FaultSpecError(f"fault {text!r}: {kind} needs a number "
                                 f"({numeric[kind]}), got {arg!r}") from None
        if kind == "notice" and int(value) not in NOTICES:
            raise FaultSpecError(f"fault {text!r}: notice code {arg} is not one of "
                                 f"{', '.join(map(str, NOTICES))}")
    if kind in ("stall", "resume") and not arg:
        raise FaultSpecError(f"fault {text!r}: {kind} needs a SYMBOL")
    if kind == "restart" and arg not in ("", "keep", "clean"):
        raise FaultSpecError(f"fault {text!r}: restart takes =clean or nothing")
    if kind == "duplicate" and arg not in ("", "on", "off"):
        raise FaultSpecError(f"fault {text!r}: duplicate takes =on or =off")
