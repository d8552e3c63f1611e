"""The fence around ib_async's internals: the only code of breakoutd that uses them.

The daemon's hot paths (market data framed off the socket, brackets written
from templates) and a few repairs (ib_async's verdicts on errors, its cached
tickers) need more than ib_async's public ``IB`` methods and events: private
members of its ``Client``, the ``Wrapper``'s dicts, raw ``Client`` requests.
They live here, behind small named functions, written for one ib_async version
(:mod:`.version` checks it at start-up); :data:`.members.USED` lists every one
and why it is needed, and a contract test checks each exists on the installed
ib_async. Nothing else in breakoutd touches ``ib.client``, ``ib.wrapper`` or an
ib_async object's private member (a test greps for it).
"""
