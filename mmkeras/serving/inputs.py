"""From request bytes to checked model inputs: `decode_body` (JSON) and `parse_inputs` (names, shapes, types,
ranges). Both raise `RequestError`, whose `status` is the HTTP answer (400 or 422), and never anything else for
any body: a body the service cannot read is the client's mistake, never a 500.

Both run in a worker thread (`create_app` calls them through `run_in_threadpool`): decoding 8 MiB of JSON
takes about a second of CPU, and on the event loop it would stall every other request, `/health` included.

Every message is bounded: a value is quoted in at most `ECHO_CHARS` characters and a list of keys shows its
first `ECHO_KEYS` entries, so a 7 MB key or 400,000 unknown keys give an answer of a few hundred bytes.

Example:
>>> decode_body(b'{"inputs": {"x": [1, 2]}}', ["x"])
{'inputs': {'x': [1, 2]}}
>>> format_keys([f"k{i}" for i in range(8)])
"['k0', 'k1', 'k2', 'k3', 'k4'] ... (3 more)"
"""

from __future__ import annotations

import json

import numpy as np

ECHO_CHARS = 40
"""Longest quotation of a received value (or key) in an error message."""
ECHO_KEYS = 5
"""Most keys listed in an error message; the rest are counted."""


class RequestError(ValueError):
    """A client mistake: `status` is the HTTP status to answer with, the message says what was wrong."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _quote(text: str) -> str:
    """`repr(text)`, cut at `ECHO_CHARS` characters (repr escapes lone surrogates, so the answer stays UTF-8)."""
    return repr(text[:ECHO_CHARS]) + ("..." if len(text) > ECHO_CHARS else "")


def format_keys(keys) -> str:
    """The first `ECHO_KEYS` of `keys` (sorted), each quoted in at most `ECHO_CHARS` characters, then how many more."""
    keys = sorted(str(k) for k in keys)
    shown = "[" + ", ".join(_quote(k) for k in keys[:ECHO_KEYS]) + "]"
    return shown + (f" ... ({len(keys) - ECHO_KEYS} more)" if len(keys) > ECHO_KEYS else "")


def decode_body(body: bytes, input_names) -> object:
    """The JSON value of a request body; `RequestError(400)` for anything `json.loads` cannot read.

    Besides syntax errors and bytes that are not UTF-8, `json.loads` raises `RecursionError` for arrays nested
    about 1,000 deep and `ValueError` for integers of more than 4,300 digits: all of them are a 400. `NaN` and
    `Infinity` decode (to NaN) so that `parse_inputs` can refuse them with a message that names the input.
    """
    try:
        return json.loads(body, parse_constant=lambda constant: float("nan"))
    except RecursionError:
        reason = "nested too deeply"
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, integers over 4,300 digits
        reason = str(error)[:200]
    raise RequestError(400, f'The body is not valid JSON ({reason}). Expected {{"inputs": {{name: value}}}} '
                            f"with the inputs {sorted(input_names)}.")


def _nested_shape(value, depth_limit: int = 8) -> tuple | None:
    """The shape of a nested list (None if it is too deep), read along the first elements, without converting it."""
    shape, level = [], value
    while isinstance(level, list):
        if len(shape) > depth_limit:
            return None
        shape.append(len(level))
        if not level:
            break
        level = level[0]
    return tuple(shape)


def _describe(value) -> str:
    """What was received, in a few words: never more than about `ECHO_CHARS` characters of the value itself."""
    if isinstance(value, list):
        shape = _nested_shape(value)
        return f"a nested list of shape {list(shape)}" if shape is not None else "a deeply nested list"
    if isinstance(value, dict):
        return f"an object with the keys {format_keys(value)}"
    if isinstance(value, str):
        return f"str {_quote(value)}"
    text = repr(value)
    return f"{type(value).__name__} {text[:ECHO_CHARS] + '...' if len(text) > ECHO_CHARS else text}"


def parse_inputs(body, metadata: dict, max_batch: int = 64) -> tuple[dict, bool]:
    """Checks a decoded request body against the model's inputs; returns `({name: batch array}, is_batch)`.

    Numbers are checked *after* the cast to the input's dtype: `1e39` is a finite float64 but `inf` in float32,
    so it is refused, as are integers beyond float64 and, for integer inputs, fractions and values outside the
    dtype's range. Captions must be valid UTF-8 (JSON can spell a lone surrogate, `"\\ud800"`, which is not).

    Raises:
        RequestError: 400 for a body that is not `{"inputs": {...}}`, 422 for anything wrong with the inputs
            (see `mmkeras.serving`).

    Example:
    >>> meta = {"inputs": {"x": {"shape": [2], "dtype": "float32"}}}
    >>> arrays, is_batch = parse_inputs({"inputs": {"x": [1, 2]}}, meta)
    >>> arrays["x"].shape, is_batch
    ((1, 2), False)
    >>> parse_inputs({"inputs": {"x": [1, 2, 3]}}, meta)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mmkeras.serving.inputs.RequestError: Input 'x' has the wrong shape: expected one example of shape [2] or ...
    >>> parse_inputs({"inputs": {"x": [1e39, 0]}}, meta)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mmkeras.serving.inputs.RequestError: Input 'x' must hold finite numbers within the range of float32 ...
    """
    specs = metadata["inputs"]
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), dict):
        got = f"an object with the keys {format_keys(body)}" if isinstance(body, dict) else type(body).__name__
        raise RequestError(400, f'The body must be a JSON object {{"inputs": {{name: value}}}} with the inputs '
                                f"{sorted(specs)}. Received: {got}")
    inputs = body["inputs"]
    unknown, missing = set(inputs) - set(specs), set(specs) - set(inputs)
    if unknown:
        raise RequestError(422, f"Unknown input(s) {format_keys(unknown)}: this model takes exactly {sorted(specs)}.")
    if missing:
        raise RequestError(422, f"Missing input(s) {sorted(missing)}: this model takes exactly {sorted(specs)}. "
                                f"Received: {format_keys(inputs)}")
    arrays, batch_flags = {}, {}
    for name, spec in specs.items():
        if spec["dtype"] == "string":
            arrays[name], batch_flags[name] = _parse_strings(name, inputs[name], max_batch)
        else:
            arrays[name], batch_flags[name] = _parse_numbers(name, inputs[name], spec, max_batch)
    sizes = {name: len(a) for name, a in arrays.items()}
    if len(set(batch_flags.values())) > 1 or len(set(sizes.values())) > 1:
        received = {n: (s if batch_flags[n] else "single") for n, s in sizes.items()}
        raise RequestError(422, f"Send one example of every input, or a batch of the same size for every input. "
                                f"Received batch sizes: {received}")
    return arrays, next(iter(batch_flags.values()))


def _parse_numbers(name: str, value, spec: dict, max_batch: int) -> tuple[np.ndarray, bool]:
    """One numeric input as a `(batch, *shape)` array of its dtype, and whether it was sent as a batch."""
    shape, dtype = list(spec["shape"]), np.dtype(spec["dtype"])
    got = _nested_shape(value) if isinstance(value, list) else ()
    if got is None or (list(got) != shape and list(got[1:]) != shape):
        raise RequestError(422, f"Input {name!r} has the wrong shape: expected one example of shape {shape} "
                                f"or a batch of shape [n, {', '.join(map(str, shape))}]. "
                                f"Received: {_describe(value)}")
    try:
        array = np.array(value, dtype=np.float64)
    except OverflowError:  # an integer beyond float64 (about 1.8e308)
        raise RequestError(422, f"Input {name!r} must hold finite numbers within the range of {dtype}. "
                                f"Received: an integer too large for a float") from None
    except (TypeError, ValueError):
        raise RequestError(422, f"Input {name!r} must hold only numbers ({dtype}) in nested lists of "
                                f"shape {shape}. Received: a ragged list or a non-number inside") from None
    if list(array.shape) not in (shape, [len(value), *shape] if got else shape):
        raise RequestError(422, f"Input {name!r} has the wrong shape: expected {shape} or [n, *{shape}]. "
                                f"Received: a ragged list")
    if _contains_non_numbers(value):
        raise RequestError(422, f"Input {name!r} must hold numbers ({dtype}), not strings, booleans "
                                f"or null. Received: {_describe(value)} with a non-number inside")
    is_batch = list(array.shape) != shape
    if is_batch and not 1 <= len(array) <= max_batch:
        raise RequestError(422, f"Input {name!r}: a batch holds 1 to {max_batch} examples. Received: {len(array)}")
    return _cast(name, array if is_batch else array[None], dtype), is_batch


def _cast(name: str, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`array` (float64) in `dtype`, refusing what the cast would turn into infinity or change."""
    if np.issubdtype(dtype, np.floating):
        with np.errstate(over="ignore"):  # 1e39 -> inf in float32: refused just below
            cast = array.astype(dtype)
        if not np.all(np.isfinite(cast)):
            raise RequestError(422, f"Input {name!r} must hold finite numbers within the range of {dtype} "
                                    f"(|x| <= {float(np.finfo(dtype).max):.4g}). Received: NaN, infinity or a "
                                    f"number that overflows {dtype}")
        return cast
    info = np.iinfo(dtype)
    if not np.all(np.isfinite(array)) or np.any(array != np.round(array)) or \
            np.any(array < info.min) or np.any(array > info.max):
        raise RequestError(422, f"Input {name!r} must hold whole numbers from {info.min} to {info.max} ({dtype}). "
                                f"Received: a fraction, NaN, infinity or a number out of that range")
    return array.astype(dtype)


def _contains_non_numbers(value) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            return True
    return False


def _parse_strings(name: str, value, max_batch: int) -> tuple[np.ndarray, bool]:
    """One caption input as a `(batch,)` object array of valid UTF-8 strings, and whether it was a batch."""
    if isinstance(value, str):
        texts, is_batch = [value], False
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value) and len(value) <= max_batch:
        texts, is_batch = value, True
    else:
        raise RequestError(422, f"Input {name!r} must be a string (one caption) or a list of 1 to {max_batch} "
                                f"strings. Received: {_describe(value)}")
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate such as "\ud800": valid JSON, not valid UTF-8
            raise RequestError(422, f"Input {name!r} must be valid UTF-8 text. Received: {_quote(text)}, which "
                                    f"holds a lone surrogate") from None
    return np.array(texts, dtype=object), is_batch
