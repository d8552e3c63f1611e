"""The codec, and every order/account message the sim encodes as ib_async's own
decoder reads it (field order at server version 178)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from ib_async.decoder import Decoder

from breakoutd.core.bars import MINUTE, NS, Bar
from breakoutd.sim import outgoing as out
from breakoutd.sim.contracts import con_id_for, contract_details_message
from breakoutd.sim.market import AggBar
from breakoutd.sim.matching.values import ExecutionEvent, OrderStatusEvent, SimOrder
from breakoutd.sim.wire import (
    MAX_FRAME,
    FieldReader,
    FrameBuffer,
    FrameError,
    MessageError,
    encode,
    field_text,
    parse_version_range,
)
from tests.sim.simkit import at, px


class Recorder:
    """A wrapper stand-in that records every call ib_async's decoder makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any) -> None:
            self.calls.append((name, args))
        return record


def decode(fields: list[object]) -> tuple[str, tuple[Any, ...]]:
    """Encode with the sim, frame-split, and decode with ib_async's Decoder."""
    [msg] = FrameBuffer().feed(encode(fields))
    rec = Recorder()
    decoder = Decoder(rec, 178)  # type: ignore[arg-type]
    decoder.interpret(msg)
    assert len(rec.calls) >= 1, f"ib_async did not decode {msg}"
    return rec.calls[0]


ORDER = SimOrder(client_id=3, order_id=17, perm_id=900, symbol="ABC", con_id=con_id_for("ABC"),
                 action="SELL", total_qty=100, order_type="STP LMT", lmt_price=px("49.98"),
                 aux_price=px("50.00"), tif="GTC", outside_rth=True, order_ref="w1@50",
                 parent_id=16, transmit=True, oca_group="oca-1", oca_type=3, account="DU1")


def test_frames_split_across_reads_and_batched() -> None:
    data = encode([1, "a", None, True]) + encode([2, 3.5, False])
    buf = FrameBuffer()
    assert buf.feed(data[:3]) == []
    assert buf.feed(data[3:9]) == []
    assert buf.feed(data[9:]) == [["1", "a", "", "1"], ["2", "3.5", "0"]]
    assert len(buf) == 0


def test_oversized_frame_is_refused() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        FrameBuffer().feed((MAX_FRAME + 1).to_bytes(4, "big") + b"x")


def test_field_reader_names_the_bad_field() -> None:
    reader = FieldReader(["3", "12", "abc"])
    assert reader.integer("orderId") == 12
    with pytest.raises(MessageError, match=r"field 2 \(conId\): 'abc' is not an integer"):
        reader.integer("conId")
    with pytest.raises(MessageError, match="missing field 3"):
        reader.text("symbol")


def test_field_text_and_version_range() -> None:
    assert [field_text(v) for v in (None, True, False, 7, "x")] == ["", "1", "0", "7", "x"]
    assert parse_version_range(["v157..178"]) == (157, 178)
    assert parse_version_range(["v100..176 +PACEAPI"]) == (100, 176)
    with pytest.raises(MessageError):
        parse_version_range(["hello"])


def test_open_order_decodes_with_every_term() -> None:
    name, (order_id, contract, order, state) = decode(out.open_order(ORDER, "PreSubmitted"))
    assert name == "openOrder" and order_id == 17
    assert (contract.symbol, contract.conId, contract.secType) == ("ABC", con_id_for("ABC"), "STK")
    assert (order.action, order.totalQuantity, order.orderType) == ("SELL", 100.0, "STP LMT")
    assert (order.lmtPrice, order.auxPrice, order.tif) == (49.98, 50.0, "GTC")
    assert (order.clientId, order.permId, order.parentId) == (3, 900, 16)
    assert (order.ocaGroup, order.ocaType, order.orderRef) == ("oca-1", 3, "w1@50")
    assert order.outsideRth is True and order.account == "DU1"
    assert state.status == "PreSubmitted"


def test_completed_order_decodes() -> None:
    name, (contract, order, state) = decode(out.completed_order(ORDER, "Filled", 100,
                                                                at("10:00:01")))
    assert name == "completedOrder"
    assert contract.symbol == "ABC" and order.permId == 900 and order.ocaType == 3
    assert order.filledQuantity == 100.0 and order.orderRef == "w1@50"
    assert (state.status, state.completedStatus) == ("Filled", "Filled")
    assert state.completedTime == "20260309 10:00:01 US/Eastern"


def test_order_status_decodes() -> None:
    ev = OrderStatusEvent(3, 17, "Filled", 100, 0, px("50.015"), 900, 16, px("50.01"), "")
    name, args = decode(out.order_status(ev))
    assert name == "orderStatus"
    assert args[:9] == (17, "Filled", 100.0, 0.0, 50.015, 900, 16, 50.01, 3)


def test_exec_details_and_commission_decode() -> None:
    ev = ExecutionEvent(3, 17, "0001.01", at("10:00:01"), "ABC", "SLD", 100, px("50.01"), 900,
                        100, px("50.01"), "w1@50", "DU1")
    rec = Recorder()
    rec.ib = type("FakeIB", (), {"TimezoneTWS": None})()
    rec.defaultTimezone = dt.UTC
    decoder = Decoder(rec, 178)  # type: ignore[arg-type]
    decoder.interpret(FrameBuffer().feed(encode(out.exec_details(-1, ev)))[0])
    decoder.interpret(FrameBuffer().feed(encode(out.commission_report("0001.01", 1.0, "USD",
                                                                      None)))[0])
    (n1, (req_id, contract, ex)), (n2, (report,)) = rec.calls
    assert (n1, req_id, contract.symbol) == ("execDetails", -1, "ABC")
    assert (ex.orderId, ex.execId, ex.side, ex.shares, ex.price) == (17, "0001.01", "SLD",
                                                                     100.0, 50.01)
    assert (ex.permId, ex.clientId, ex.cumQty, ex.orderRef) == (900, 3, 100.0, "w1@50")
    assert ex.time == dt.datetime(2026, 3, 9, 14, 0, 1, tzinfo=dt.UTC)
    assert n2 == "commissionReport" and report.commission == 1.0
    assert report.realizedPNL > 1e300  # UNSET_DOUBLE on an opening fill, as IB sends it


def test_contract_details_decode_with_hours() -> None:
    name, (req_id, cd) = decode(contract_details_message(4, "SPY", dt.date(2026, 3, 9),
                                                         px("500.00")))
    assert name == "contractDetails" and req_id == 4
    assert (cd.contract.symbol, cd.contract.conId, cd.minTick) == ("SPY", 756733, 0.01)
    assert cd.contract.primaryExchange == "ARCA" and cd.timeZoneId == "US/Eastern"
    assert cd.tradingHours.startswith("20260309:0400-20260309:2000;20260310:0400")
    assert cd.liquidHours.startswith("20260309:0930-20260309:1600;")
    assert "20260314:CLOSED" in cd.liquidHours  # Saturday


def test_position_portfolio_and_account_decode() -> None:
    name, args = decode(out.position("DU1", "ABC", -200, px("50.125")))
    assert name == "position" and args[0] == "DU1" and args[2:] == (-200.0, 50.125)
    name, args = decode(out.portfolio_value("DU1", "ABC", 100, px("51.00"), px("5100.00"),
                                            px("50.00"), px("100.00"), px("0.00")))
    assert name == "updatePortfolio" and args[1:] == (100.0, 51.0, 5100.0, 50.0, 100.0, 0.0,
                                                      "DU1")
    assert decode(out.account_value("NetLiquidation", "1000.00", "USD", "DU1")) == (
        "updateAccountValue", ("NetLiquidation", "1000.00", "USD", "DU1"))


def test_bar_messages_decode() -> None:
    bar = AggBar(Bar(at("09:31:00"), MINUTE, px("50.00"), px("50.20"), px("49.90"),
                     px("50.10"), 1200), px("50.05"), 7)
    name, (req_id, update) = decode(out.historical_update(9, bar, 1))
    assert name == "historicalDataUpdate" and req_id == 9
    assert (update.open, update.high, update.low, update.close) == (50.0, 50.2, 49.9, 50.1)
    assert (update.volume, update.average, update.barCount) == (1200, 50.05, 7)
    assert update.date == "20260309 09:31:00 US/Eastern"
    name, args = decode(out.realtime_bar(5, bar))
    assert name == "realtimeBar" and args == (5, at("09:31:00") // NS, 50.0, 50.2, 49.9,
                                              50.1, 1200.0, 50.05, 7)
