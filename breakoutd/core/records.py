"""Frozen records that cross a process boundary cheaply.

A ``@dataclass(frozen=True, slots=True)`` pickles through the ``__getstate__``
and ``__setstate__`` that dataclasses writes for it, which look the fields
up again for every object. A ``--jobs`` backtest sends tens of thousands of
watchers' results from the workers to the parent, and there that lookup was
most of the unpickling. :func:`pickled_by_fields` pickles a record as a call
of its constructor with its fields in order instead: the same object comes
back, made by the constructor the class already has.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any, TypeVar

_Record = TypeVar("_Record", bound=type)


def pickled_by_fields(cls: _Record) -> _Record:
    """Class decorator (above ``@dataclass``): pickle as ``cls(*fields)``.

    Only for dataclasses whose fields are all constructor arguments and whose
    constructor does nothing but set them."""
    fields = dataclasses.fields(cls)
    if len(fields) < 2 or not all(f.init for f in fields) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: not a record of two or more constructor fields")
    values = operator.attrgetter(*(f.name for f in fields))

    def __reduce__(self: Any) -> tuple[type, tuple[Any, ...]]:  # noqa: N807 - pickle's name
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign,assignment]
    return cls
