"""Run-time switches shared by the package, the notebooks and the tests.

`MMKERAS_SMOKE=1` shrinks data and epochs so that every notebook runs in seconds (the test suite sets it);
`seed_everything` makes Python, NumPy and Keras draw the same numbers on every run.
"""

from __future__ import annotations

import os

SMOKE_ENV = "MMKERAS_SMOKE"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def is_smoke() -> bool:
    """Tells whether smoke mode is on (`MMKERAS_SMOKE=1`): tiny data, one or two epochs, and the course's
    training helpers (`fit_classifier` and the other functions that compile a model) run eagerly, because
    tracing a graph costs more than the few batches a smoke run trains.

    Returns:
        `True` when the environment variable `MMKERAS_SMOKE` is one of `1/true/yes/on`.

    Raises:
        ValueError: when the variable holds something else, e.g. `MMKERAS_SMOKE=maybe`.

    Example:
    >>> import os
    >>> os.environ["MMKERAS_SMOKE"] = "1"
    >>> is_smoke()
    True
    """
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{SMOKE_ENV} must be one of 1/true/yes/on or 0/false/no/off (or unset). "
        f"Received: {SMOKE_ENV}={os.environ[SMOKE_ENV]!r}"
    )


def seed_everything(seed: int = 0) -> None:
    """Seeds Python's `random`, NumPy and the Keras backend in one call.

    Args:
        seed: int. The seed. Defaults to `0`.

    Example:
    >>> seed_everything(42)
    """
    import keras  # imported here so that `import mmkeras` stays light

    from mmkeras._validation import check_int

    keras.utils.set_random_seed(check_int("seed", seed, minimum=0))


def by_mode(full, smoke):
    """`smoke` in smoke mode (`MMKERAS_SMOKE=1`), else `full`: one line for every size and epoch count.

    Example:
    >>> import os
    >>> os.environ["MMKERAS_SMOKE"] = "1"
    >>> by_mode(full=3000, smoke=128)
    128
    """
    return smoke if is_smoke() else full
