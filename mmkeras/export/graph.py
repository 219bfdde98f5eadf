"""What every exporter reads off a model: its named inputs, its heads, and every layer inside it.

Example:
>>> describe_inputs({"image": ((None, 28, 28, 1), "float32")})
{'image': {'shape': [28, 28, 1], 'dtype': 'float32'}}
"""

from __future__ import annotations


def describe_inputs(specs: dict) -> dict:
    """`{name: (shape with batch, dtype)}` -> the JSON form of `metadata.json`: `{name: {"shape", "dtype"}}`.

    The batch axis is dropped: `shape` is the shape of one example (`[]` for one caption string).
    """
    return {name: {"shape": [int(d) for d in shape[1:]], "dtype": str(dtype)} for name, (shape, dtype) in specs.items()}


def preprocessor_of(model):
    """The `MultimodalPreprocessor` a model holds (`model.preprocessor`), the argument itself if it is one, or None."""
    from mmkeras.preprocessing import MultimodalPreprocessor

    if isinstance(model, MultimodalPreprocessor):
        return model
    preprocessor = getattr(model, "preprocessor", None)
    return preprocessor if isinstance(preprocessor, MultimodalPreprocessor) else None


def input_specs(model) -> dict:
    """The model's named inputs as a user gives them: `{name: (shape, dtype)}`, shape with its batch axis (`None`).

    For a model with a preprocessor (or a `MultimodalPreprocessor` itself) these are the raw inputs the
    preprocessor takes (captions, waveforms, pixels); otherwise the model's own symbolic inputs.
    """
    preprocessor = preprocessor_of(model)
    if preprocessor is not None:
        return {name: ((None, *spec["shape"]), spec["dtype"]) for name, spec in preprocessor.input_specs.items()}
    inputs = getattr(model, "input", None)
    if not isinstance(inputs, dict):
        raise ValueError(f"The model must take a dict of named inputs (as FusionClassifier does). "
                         f"Received: {type(model).__name__} with inputs {inputs!r}")
    return {name: (tuple(t.shape), str(t.dtype)) for name, t in inputs.items()}


def run_inference(model, inputs: dict):
    """`model(inputs, training=False)` on raw named inputs: through the model's preprocessor when it has one."""
    preprocessor = preprocessor_of(model)
    return model(inputs if preprocessor is None else preprocessor(inputs), training=False)


def tensor_specs(specs: dict, batch_size: int | None = None) -> dict:
    """`input_specs` as the `tf.TensorSpec`s of a traced signature, with a fixed `batch_size` or `None`."""
    import tensorflow as tf

    return {name: tf.TensorSpec((batch_size, *shape[1:]), tf.as_dtype(dtype), name=name)
            for name, (shape, dtype) in specs.items()}


def head_names(model) -> tuple:
    """The model's head names, main head first (`FusionClassifier.head_names`, or its output dict's keys)."""
    if hasattr(model, "head_names"):
        return tuple(model.head_names)
    outputs = model.output
    return tuple(outputs) if isinstance(outputs, dict) else ("label",)


def as_output_dict(outputs, heads) -> dict:
    """A model's outputs as `{head: logits}`: one key per head, also for a single head (named `heads[0]`).

    Example:
    >>> as_output_dict([[0.5, 1.5]], heads=("digit",))
    {'digit': [[0.5, 1.5]]}
    """
    if isinstance(outputs, dict):
        return dict(outputs)
    return {tuple(heads)[0]: outputs}


def all_layers(model) -> list:
    """Every layer of `model`, nested models' layers and wrapped layers (`Bidirectional`, ...) included, once each,
    outermost first.

    Example:
    >>> import keras
    >>> inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="inner_dense")], name="inner")
    >>> outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(1, name="outer_dense")])
    >>> [layer.name for layer in all_layers(outer)]
    ['inner', 'outer_dense', 'inner_dense']
    """
    seen, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        if any(layer is s for s in seen):
            continue
        seen.append(layer)
        stack.extend(getattr(layer, "layers", []) or [])
        if hasattr(layer, "layer") and not isinstance(layer.layer, (list, tuple)):  # Bidirectional ...
            stack.append(layer.layer)
    return seen
