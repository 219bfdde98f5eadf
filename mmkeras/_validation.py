"""Argument checks shared by the whole package: each raises a `ValueError` that names the argument, says what
was expected and quotes what was received.

NumPy scalars count as the Python number they hold (`np.int64(16000)` is an int), booleans never count as
numbers (`True` is not a size), and every helper returns the value as a plain Python object.
"""

from __future__ import annotations

import numbers
import re
import unicodedata

import numpy as np


def _is_int(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value, minimum: int = 1) -> int:
    """`value` as an `int`, checked to be an integer `>= minimum` (positive by default).

    Example:
    >>> check_int("units", np.int64(3))
    3
    >>> check_int("units", 0)
    Traceback (most recent call last):
    ...
    ValueError: `units` must be an int >= 1. Received: units=0
    """
    if not _is_int(value) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")
    return int(value)


def check_optional_int(name: str, value, minimum: int = 1) -> int | None:
    """Like `check_int`, but `None` passes through."""
    return None if value is None else check_int(name, value, minimum)


def check_number(name: str, value, low=None, high=None, low_inclusive: bool = True, high_inclusive: bool = True):
    """`value` as a `float`, checked to lie in the interval given by `low` and `high` (either may be open).

    Example:
    >>> check_number("learning_rate", 1e-3, low=0, low_inclusive=False)
    0.001
    """
    ok = _is_number(value) and np.isfinite(value)
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if not ok:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        interval = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"`{name}` must be a number in {interval}. Received: {name}={value!r}")
    return float(value)


def check_fraction(name: str, value) -> float:
    """A rate in `[0, 1)`, such as a dropout rate.

    Example:
    >>> check_fraction("dropout", 1.0)
    Traceback (most recent call last):
    ...
    ValueError: `dropout` must be a number in [0, 1). Received: dropout=1.0
    """
    return check_number(name, value, low=0, high=1, high_inclusive=False)


def check_choice(name: str, value, options):
    """`value`, checked to be one of `options`."""
    if not isinstance(value, (str, type(None), bool, int)) or value not in tuple(options):
        raise ValueError(f"`{name}` must be one of {tuple(options)}. Received: {name}={value!r}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


NAME_PATTERN = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.-]*")
"""What `check_name` accepts: TensorFlow's scope-name pattern (`^[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*$`) without
`/`, `\\` and `>`, so that a name is also a file name part on every system."""


def _ascii_suggestion(value: str) -> str | None:
    """`value` made valid: accents dropped (`é -> e`), other characters replaced by `_`; `None` if nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    suggestion = re.sub(r"[^A-Za-z0-9_.-]+", "_", ascii_text).strip("_-")
    return suggestion if NAME_PATTERN.fullmatch(suggestion) and re.search(r"[A-Za-z0-9]", suggestion) else None


def check_name(name: str, value) -> str:
    """A non-empty ASCII name usable as a key, a Keras layer name, a TensorFlow scope name and a file name part.

    Allowed: letters `A-Z a-z`, digits, `_`, `.` and `-`, not starting with `_` or `-` (TensorFlow refuses
    such scope names, and `fit` would fail far from where the name was chosen).

    Example:
    >>> check_name("name", "left_cam")
    'left_cam'
    >>> check_name("name", "left cam")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `name` must be an ASCII name: ... Try 'left_cam'. Received: name='left cam'
    """
    if isinstance(value, str) and NAME_PATTERN.fullmatch(value):
        return value
    hint = ""
    if isinstance(value, str) and value:
        suggestion = _ascii_suggestion(value)
        hint = (f" Try {suggestion!r}." if suggestion else
                " Use an ASCII word for it, a translation or a transliteration (e.g. 'depth' or 'shendu' for '深度').")
    raise ValueError(f"`{name}` must be an ASCII name: letters, digits, '_', '.' or '-', not starting with '_' or '-' "
                     f"(it becomes a Keras layer name and a TensorFlow scope name).{hint} Received: {name}={value!r}")


def check_shape(name: str, value, rank: int | None = None) -> tuple:
    """A per-sample shape: a tuple of positive ints (`None` allowed for a variable length), of `rank` entries.

    Example:
    >>> check_shape("input_shape", [32, np.int64(32), 3], rank=3)
    (32, 32, 3)
    """
    try:
        shape = tuple(value)
    except TypeError:
        shape = None
    if shape is None or isinstance(value, str) or (rank is not None and len(shape) != rank) or not all(
        d is None or (_is_int(d) and d > 0) for d in shape
    ):
        what = f"a tuple of {rank} positive ints" if rank is not None else "a tuple of positive ints"
        raise ValueError(f"`{name}` must be {what}. Received: {name}={value!r}")
    return tuple(None if d is None else int(d) for d in shape)


def check_positive_ints(name: str, value) -> tuple[int, ...]:
    """A non-empty sequence of positive ints, e.g. the filters of conv blocks."""
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if isinstance(value, str) or not items or not all(_is_int(v) and v > 0 for v in items):
        raise ValueError(f"`{name}` must be a non-empty list of positive ints. Received: {name}={value!r}")
    return tuple(int(v) for v in items)


def check_words(name: str, value) -> list[str]:
    """A non-empty list of distinct strings (a vocabulary); NumPy arrays of strings are accepted.

    Example:
    >>> check_words("vocabulary", np.array(["a", "b"]))
    ['a', 'b']
    """
    if isinstance(value, str):
        items = None
    else:
        try:
            items = [str(w) if isinstance(w, (str, np.str_)) else w for w in list(value)]
        except TypeError:
            items = None
    if not items or not all(isinstance(w, str) and w for w in items) or len(set(items)) != len(items):
        shown = value if not isinstance(value, np.ndarray) else value.tolist()
        shown = shown if len(repr(shown)) < 200 else f"{repr(shown)[:200]}..."
        raise ValueError(f"`{name}` must be a non-empty list of distinct, non-empty strings. "
                         f"Received: {name}={shown!r}")
    return items
