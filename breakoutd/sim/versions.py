"""Message layouts of the API versions below the sim's newest (157..177).

The builders in outgoing.py write every message at server version 178. A
client that negotiated a lower version (ib_insync 0.9.86 offers 157..176)
decodes by the layout of its version, so each message whose fields changed
between 157 and 178 is rewritten here for that version. The version gates
are IB's own (``ibapi/server_versions.py``, checked against ibapi's
``decoder.py``/``orderdecoder.py`` and ib_insync's and ib_async's decoders):

- 158 DURATION: openOrder carries ``duration``.
- 160 POST_TO_ATS: openOrder carries ``postToAts``.
- 162 AUTO_CANCEL_PARENT: openOrder carries ``autoCancelParent``.
- 163 FRACTIONAL_SIZE_SUPPORT: contractDetails carries ``sizeMinTick`` (163 only).
- 164 SIZE_RULES: contractDetails loses its version field and
  ``mdSizeMultiplier`` and gains minSize, sizeIncrement, suggestedSizeIncrement.
- 166 ADVANCED_ORDER_REJECT: error carries ``advancedOrderRejectJson``.
- 158, 160, 162, 166, 169 MANUAL_ORDER_TIME, 170: placeOrder carries duration,
  postToAts, autoCancelParent, advancedErrorOverride, manualOrderTime and the
  peg offsets; 177: it loses faProfile (requests_orders.py reads them).
- 170 PEGBEST_PEGMID_OFFSETS: openOrder and completedOrder carry five peg fields.
- 177 FA_PROFILE_DESUPPORT: openOrder and completedOrder lose ``faProfile``.
- 178 PENDING_PRICE_REVISION: execDetails carries ``pendingPriceRevision``.

ib_insync and ib_async read ``duration`` from 159 rather than IB's 158; the
sim follows IB (no client offers a range that ends at 158).
"""

from __future__ import annotations

from collections.abc import Callable

Fields = list[object]

DURATION = 158
POST_TO_ATS = 160
AUTO_CANCEL_PARENT = 162
FRACTIONAL_SIZE_SUPPORT = 163
SIZE_RULES = 164
ADVANCED_ORDER_REJECT = 166
MANUAL_ORDER_TIME = 169
PEGBEST_PEGMID_OFFSETS = 170
FA_PROFILE_DESUPPORT = 177
PENDING_PRICE_REVISION = 178

_PEG_FIELDS = 5
# Where faProfile went, before 177: after faPercentage. openOrder: id, orderId,
# 11 contract fields, 11 order terms, clientId, permId, outsideRth, hidden,
# discretionaryAmt, goodAfterTime, sharesAllocation, faGroup, faMethod,
# faPercentage. completedOrder: no orderId, clientId or sharesAllocation.
_OPEN_ORDER_FA_PROFILE_AT = 34
_COMPLETED_ORDER_FA_PROFILE_AT = 31
# contractDetails at 178: id, reqId, symbol .. tradingClass (10), conId, minTick.
_CONTRACT_DETAILS_MIN_TICK_AT = 13
_CONTRACT_DETAILS_VERSION = 8
_SIZE_RULE_FIELDS = 3


def _error(fields: Fields, version: int) -> Fields:
    if version < ADVANCED_ORDER_REJECT:
        return fields[:-1]
    return fields


def _open_order(fields: Fields, version: int) -> Fields:
    # The tail at 178: ... usePriceMgmtAlgo, duration, postToAts, autoCancelParent, 5 peg fields.
    tail = fields[-(_PEG_FIELDS + 3):]
    head = fields[:-(_PEG_FIELDS + 3)]
    duration, post_to_ats, auto_cancel_parent = tail[:3]
    kept: Fields = []
    if version >= DURATION:
        kept.append(duration)
    if version >= POST_TO_ATS:
        kept.append(post_to_ats)
    if version >= AUTO_CANCEL_PARENT:
        kept.append(auto_cancel_parent)
    if version >= PEGBEST_PEGMID_OFFSETS:
        kept += tail[3:]
    return _with_fa_profile(head, version, _OPEN_ORDER_FA_PROFILE_AT) + kept


def _completed_order(fields: Fields, version: int) -> Fields:
    if version < PEGBEST_PEGMID_OFFSETS:
        fields = fields[:-_PEG_FIELDS]
    return _with_fa_profile(fields, version, _COMPLETED_ORDER_FA_PROFILE_AT)


def _with_fa_profile(fields: Fields, version: int, at: int) -> Fields:
    if version >= FA_PROFILE_DESUPPORT:
        return fields
    return [*fields[:at], "", *fields[at:]]


def _exec_details(fields: Fields, version: int) -> Fields:
    if version < PENDING_PRICE_REVISION:
        return fields[:-1]
    return fields


def _contract_details(fields: Fields, version: int) -> Fields:
    if version >= SIZE_RULES:
        return fields
    body = fields[:-_SIZE_RULE_FIELDS]
    if version == FRACTIONAL_SIZE_SUPPORT:
        body.append(fields[-2])  # sizeMinTick: the size increment, 1 share
    at = _CONTRACT_DETAILS_MIN_TICK_AT + 1
    # Sizes are in shares at every version the sim serves: a multiplier of 1.
    return [body[0], _CONTRACT_DETAILS_VERSION, *body[1:at], 1, *body[at:]]


_REWRITES: dict[int, Callable[[Fields, int], Fields]] = {
    4: _error,
    5: _open_order,
    10: _contract_details,
    11: _exec_details,
    101: _completed_order,
}


def for_version(fields: Fields, version: int) -> Fields:
    """A message built at the newest version, in the layout of ``version``."""
    rewrite = _REWRITES.get(fields[0]) if fields and isinstance(fields[0], int) else None
    return rewrite(fields, version) if rewrite is not None else fields
