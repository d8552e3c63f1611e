"""Every message the sim writes or reads whose layout changed between API
versions 157 and 178, checked at every version against the decoders and
encoders of the official ibapi client, ib_insync 0.9.86 and ib_async."""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from breakoutd.sim import outgoing as out
from breakoutd.sim.contracts import contract_details_message
from breakoutd.sim.matching.values import ExecutionEvent, OrderStatusEvent, SimOrder
from breakoutd.sim.requests_orders import _Terms
from breakoutd.sim.versions import for_version
from breakoutd.sim.wire import SERVER_VERSION, FieldReader, FrameBuffer, field_text
from tests.sim.simkit import at, px

VERSIONS = range(157, SERVER_VERSION + 1)
INSYNC_MAX = 176  # ib_insync 0.9.86 offers 157..176

ORDER = SimOrder(client_id=3, order_id=42, perm_id=9001, symbol="ABC", con_id=0,
                 action="SELL", total_qty=300, order_type="LMT", lmt_price=px("51.25"),
                 tif="GTC", outside_rth=True, order_ref="brk-1", parent_id=41,
                 oca_group="oca-41", oca_type=3, account="DU0000001")
EXECUTION = ExecutionEvent(client_id=3, order_id=42, exec_id="0001.01", time_ns=at("10:00:05"),
                           symbol="ABC", side="SLD", shares=300, price=px("51.25"),
                           perm_id=9001, cum_qty=300, avg_price=px("51.25"),
                           order_ref="brk-1", account="DU0000001")
STATUS = OrderStatusEvent(client_id=3, order_id=42, status="Submitted", filled=100,
                          remaining=200, avg_fill_price=px("51.25"), perm_id=9001,
                          parent_id=41, last_fill_price=px("51.25"))


def texts(fields: list[object]) -> list[str]:
    return [field_text(f) for f in fields]


def at_version(fields: list[object], version: int) -> list[str]:
    return texts(for_version(fields, version))


# --- the official client's decoder -------------------------------------------

class Recorder:
    """Records every wrapper callback a decoder makes, by name."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[Any, ...]] = {}
        self.ib = types.SimpleNamespace(TimezoneTWS=None)
        self.defaultTimezone = dt.UTC

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.calls.__setitem__(name, args)


def ibapi_decode(fields: list[str], version: int) -> dict[str, tuple[Any, ...]]:
    """Decode with ibapi's Decoder at ``version``; every field must be consumed."""
    from ibapi.decoder import Decoder
    from ibapi.wrapper import EWrapper

    calls: dict[str, tuple[Any, ...]] = {}

    class Wrapper(EWrapper):
        def __getattribute__(self, name: str) -> Any:
            if name[0].islower() and not name.startswith("_") and name != "logAnswer":
                return lambda *args: calls.__setitem__(name, args)
            return super().__getattribute__(name)

    decoder = Decoder(Wrapper(), version)
    info = decoder.msgId2handleInfo[int(fields[0])]
    rest: Iterator[bytes] = iter([f.encode() for f in fields[1:]])
    if info.processMeth is not None:
        info.processMeth(decoder, rest)
        left = list(rest)
        assert left == [], f"ibapi left {len(left)} fields unread at v{version}: {left}"
    else:
        decoder.interpretWithSignature([f.encode() for f in fields], info)
    return calls


def async_decode(fields: list[str], version: int, package: str) -> dict[str, tuple[Any, ...]]:
    """Decode with ib_async's or ib_insync's Decoder at ``version``."""
    decoder_module = __import__(f"{package}.decoder", fromlist=["Decoder"])
    wrapper = Recorder()
    decoder = decoder_module.Decoder(wrapper, version)
    decoder.handlers[int(fields[0])](list(fields))
    return wrapper.calls


def decoders(version: int) -> list[str]:
    return ["ib_async", "ib_insync"] if version <= INSYNC_MAX else ["ib_async"]


# --- messages the sim writes ---------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_open_order_decodes_at_every_version(version: int) -> None:
    fields = at_version(out.open_order(ORDER, "Submitted"), version)
    order_id, contract, order, state = ibapi_decode(fields, version)["openOrder"]
    assert order_id == 42 and contract.symbol == "ABC" and state.status == "Submitted"
    assert (order.action, order.totalQuantity, order.orderType) == ("SELL", Decimal(300), "LMT")
    assert (order.lmtPrice, order.tif, order.outsideRth) == (51.25, "GTC", True)
    assert (order.orderRef, order.parentId, order.ocaGroup, order.ocaType) == (
        "brk-1", 41, "oca-41", 3)
    assert (order.clientId, order.permId, order.account) == (3, 9001, "DU0000001")
    for package in decoders(version):
        _, contract, order, state = async_decode(fields, version, package)["openOrder"]
        assert (order.orderRef, order.parentId, order.ocaType, order.outsideRth) == (
            "brk-1", 41, 3, True), package
        assert (order.lmtPrice, state.status, contract.conId) == (51.25, "Submitted",
                                                                   contract.conId), package


@pytest.mark.parametrize("version", VERSIONS)
def test_completed_order_decodes_at_every_version(version: int) -> None:
    fields = at_version(out.completed_order(ORDER, "Filled", 300, at("10:00:05")), version)
    contract, order, state = ibapi_decode(fields, version)["completedOrder"]
    assert contract.symbol == "ABC" and state.status == "Filled"
    assert (order.orderRef, order.ocaType, order.permId, order.filledQuantity) == (
        "brk-1", 3, 9001, Decimal(300))
    assert state.completedStatus == "Filled"
    for package in decoders(version):
        _, order, state = async_decode(fields, version, package)["completedOrder"]
        assert (order.orderRef, order.ocaType, state.status) == ("brk-1", 3, "Filled"), package
        assert order.filledQuantity == 300 and state.completedStatus == "Filled", package


@pytest.mark.parametrize("version", VERSIONS)
def test_exec_details_and_commission_decode_at_every_version(version: int) -> None:
    fields = at_version(out.exec_details(-1, EXECUTION), version)
    req_id, contract, execution = ibapi_decode(fields, version)["execDetails"]
    assert (req_id, contract.symbol, execution.execId, execution.orderId) == (
        -1, "ABC", "0001.01", 42)
    assert (execution.side, execution.shares, execution.price) == ("SLD", Decimal(300), 51.25)
    assert (execution.cumQty, execution.orderRef, execution.clientId) == (
        Decimal(300), "brk-1", 3)
    for package in decoders(version):
        _, contract, execution = async_decode(fields, version, package)["execDetails"]
        assert (execution.execId, execution.shares, execution.orderRef) == (
            "0001.01", 300, "brk-1"), package
    report = at_version(out.commission_report("0001.01", 1.5, "USD", None), version)
    [fee] = ibapi_decode(report, version)["commissionAndFeesReport"]
    assert (fee.execId, fee.commissionAndFees, fee.currency) == ("0001.01", 1.5, "USD")
    for package in decoders(version):
        [fee] = async_decode(report, version, package)["commissionReport"]
        assert (fee.execId, fee.commission) == ("0001.01", 1.5), package


@pytest.mark.parametrize("version", VERSIONS)
def test_order_status_and_error_decode_at_every_version(version: int) -> None:
    status = at_version(out.order_status(STATUS), version)
    args = ibapi_decode(status, version)["orderStatus"]
    assert args[:4] == (42, "Submitted", Decimal(100), Decimal(200)) and args[6] == 41
    for package in decoders(version):
        args = async_decode(status, version, package)["orderStatus"]
        assert args[:4] == (42, "Submitted", 100, 200), package
    error = at_version(out.error(42, 201, "Order rejected"), version)
    req_id, _time, code, text, advanced = ibapi_decode(error, version)["error"]
    assert (req_id, code, text, advanced) == (42, 201, "Order rejected", "")
    for package in decoders(version):
        assert async_decode(error, version, package)["error"][:3] == (
            42, 201, "Order rejected"), package


@pytest.mark.parametrize("version", VERSIONS)
def test_contract_details_decode_at_every_version(version: int) -> None:
    fields = at_version(contract_details_message(7, "SPY", dt.date(2026, 3, 9), px("600")),
                        version)
    req_id, details = ibapi_decode(fields, version)["contractDetails"]
    assert req_id == 7 and details.contract.symbol == "SPY"
    assert (details.contract.conId, details.minTick, details.timeZoneId) == (
        756733, 0.01, "US/Eastern")
    assert details.contract.primaryExchange == "ARCA" and details.stockType == "ETF"
    assert details.tradingHours.startswith("20260309:0400-20260309:2000")
    for package in decoders(version):
        req_id, details = async_decode(fields, version, package)["contractDetails"]
        assert (req_id, details.contract.conId, details.timeZoneId) == (
            7, 756733, "US/Eastern"), package
        assert details.stockType == "ETF", package


# --- the placeOrder the sim reads ------------------------------------------------

def ibapi_place_order(version: int, contract: Any, order: Any) -> list[str]:
    """The fields the official client sends for a placeOrder at ``version``."""
    from ibapi.client import EClient
    from ibapi.wrapper import EWrapper

    sent: list[bytes] = []
    client = EClient(EWrapper())
    client.serverVersion_ = version
    client.connState = EClient.CONNECTED
    client.conn = types.SimpleNamespace(isConnected=lambda: True, sendMsg=sent.append)
    client.placeOrder(order.orderId, contract, order)
    [msg] = FrameBuffer().feed(b"".join(sent))
    return msg


def async_place_order(version: int, contract: Any, order: Any, package: str) -> list[str]:
    """The fields ib_async's or ib_insync's Client sends for a placeOrder at ``version``."""
    client_module = __import__(f"{package}.client", fromlist=["Client"])
    wrapper_module = __import__(f"{package}.wrapper", fromlist=["Wrapper"])
    sent: list[str] = []
    client = client_module.Client(wrapper_module.Wrapper(None))
    client.connState = client_module.Client.CONNECTED
    client._serverVersion = version
    client.sendMsg = sent.append
    client.placeOrder(order.orderId, contract, order)
    [msg] = sent
    return list(msg.split("\0")[:-1])


def ibapi_bracket_child() -> tuple[Any, Any]:
    from ibapi.contract import Contract
    from ibapi.order import Order

    contract = Contract()
    contract.symbol, contract.secType, contract.exchange, contract.currency = (
        "ABC", "STK", "SMART", "USD")
    order = Order()
    order.orderId, order.action, order.totalQuantity, order.orderType = 42, "SELL", 300, "LMT"
    order.lmtPrice, order.tif, order.outsideRth, order.orderRef = 51.25, "GTC", True, "brk-1"
    order.parentId, order.transmit, order.ocaGroup, order.ocaType = 41, False, "oca-41", 3
    return contract, order


def async_bracket_child(package: str) -> tuple[Any, Any]:
    module = __import__(package, fromlist=["Stock", "LimitOrder"])
    contract = module.Stock("ABC", "SMART", "USD")
    order = module.LimitOrder("SELL", 300, 51.25, orderId=42, tif="GTC", outsideRth=True,
                              orderRef="brk-1", parentId=41, transmit=False,
                              ocaGroup="oca-41", ocaType=3)
    return contract, order


def assert_bracket_child(fields: list[str], version: int, who: str) -> None:
    reader = FieldReader(fields)
    terms = _Terms(reader, version)
    assert reader.remaining == 0, who
    assert (terms.order_id, terms.spec.symbol, terms.action, terms.qty) == (
        42, "ABC", "SELL", 300), who
    assert (terms.order_type, terms.lmt, terms.tif, terms.outside_rth) == (
        "LMT", px("51.25"), "GTC", True), who
    assert (terms.order_ref, terms.parent_id, terms.transmit) == ("brk-1", 41, False), who
    assert (terms.oca_group, terms.oca_type, terms.what_if) == ("oca-41", 3, False), who


@pytest.mark.parametrize("version", VERSIONS)
def test_place_order_of_every_client_is_read_whole_at_every_version(version: int) -> None:
    assert_bracket_child(ibapi_place_order(version, *ibapi_bracket_child()), version, "ibapi")
    for package in decoders(version):
        fields = async_place_order(version, *async_bracket_child(package), package)
        assert_bracket_child(fields, version, package)


def test_a_place_order_read_at_another_version_than_its_own_is_misread() -> None:
    # Why the version matters: ib_insync's 176 layout read as 178 shifts every
    # field from exemptCode on (the ocaType read is exemptCode's -1).
    fields = async_place_order(176, *async_bracket_child("ib_insync"), "ib_insync")
    assert _Terms(FieldReader(fields), 176).oca_type == 3
    assert _Terms(FieldReader(fields), 178).oca_type == -1
