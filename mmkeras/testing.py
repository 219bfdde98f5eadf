"""Checks that every mmkeras layer and model must pass, in the spirit of keras-hub's `run_layer_test`.

The tests call these on each encoder, fusion layer and classifier:

* `check_shapes`: the symbolic (functional) and the eager call agree on the output shape, batch size 1 included;
* `check_config_round_trip`: `from_config(get_config())` rebuilds an equivalent object;
* `check_save_load`: a `.keras` file written by `model.save` loads back *without* `custom_objects` and gives
  the same outputs;
* `check_gradients`: every trainable weight receives a non-zero gradient;
* `check_loss_decreases`: a few optimizer steps on one small batch lower the loss;
* `check_mixed_precision`: a layer built with `dtype="mixed_float16"` computes and returns float16.

`save_tiny_preset` writes a tiny, randomly initialised keras-hub preset folder (BERT, ResNet or ViT) exactly
as `save_to_preset` writes a real one, so that preset loading is tested offline; the notebooks use it too.

They run on the TensorFlow backend (the course's) and on JAX: `check_gradients` differentiates with
`tf.GradientTape` or `jax.grad` over `model.stateless_call`, whichever backend Keras runs on.
"""

from __future__ import annotations

import copy
import pathlib
import tempfile

import keras
import numpy as np


def _first(outputs):
    return next(iter(outputs.values())) if isinstance(outputs, dict) else outputs


def _as_numpy(outputs):
    if isinstance(outputs, dict):
        return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
    return keras.ops.convert_to_numpy(outputs)


def _slice_batch(inputs, size):
    if isinstance(inputs, dict):
        return {k: v[:size] for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [v[:size] for v in inputs]
    return inputs[:size]


def _symbolic_like(inputs):
    """`keras.Input`s with the shapes (batch `None`) and dtypes of concrete inputs."""
    def one(x):
        return keras.Input(shape=tuple(x.shape[1:]), dtype=keras.backend.standardize_dtype(x.dtype))
    if isinstance(inputs, dict):
        return {k: one(v) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [one(v) for v in inputs]
    return one(inputs)


def model_inputs(model, inputs):
    """What `model(x)` takes for raw `inputs`: them through `model.preprocessor` when the model has one, as NumPy.

    A task model with a `MultimodalPreprocessor` reads numbers (token ids, log-mel spectrograms) in a direct
    call; its `fit`/`predict` preprocess raw data themselves.
    """
    from mmkeras.preprocessing import MultimodalPreprocessor

    preprocessor = getattr(model, "preprocessor", None)  # a BertTextEncoder's own keras-hub preprocessor is inside it
    if not isinstance(preprocessor, MultimodalPreprocessor):
        return inputs
    return _as_numpy(preprocessor(inputs))


def check_shapes(model, inputs, expected_shape) -> None:
    """Calling `model` on symbolic `keras.Input`s (batch `None`) and eagerly on `inputs` (and on a batch of one)
    gives `expected_shape` (batch first)."""
    expected_shape = tuple(expected_shape)
    symbolic = _first(model(_symbolic_like(inputs))).shape
    assert tuple(symbolic[1:]) == expected_shape[1:], f"symbolic shape {symbolic} != {expected_shape}"
    eager = _first(model(inputs, training=False))
    assert tuple(eager.shape) == expected_shape, f"eager shape {tuple(eager.shape)} != {expected_shape}"
    one = _first(model(_slice_batch(inputs, 1), training=False))
    assert tuple(one.shape) == (1,) + expected_shape[1:], f"batch-of-one shape {tuple(one.shape)}"


def check_config_round_trip(obj) -> None:
    """`type(obj).from_config(obj.get_config())` gives an object with the same config."""
    config = obj.get_config()
    clone = type(obj).from_config(copy.deepcopy(config))  # from_config may consume the dict it is given
    assert clone.get_config() == config, "get_config() of the clone differs"


def infer(model, inputs):
    """The model's outputs in inference mode for what `predict` takes (raw data through its preprocessor)."""
    return model(model_inputs(model, inputs), training=False)


def check_save_load(model: keras.Model, inputs, directory=None, atol: float = 1e-5) -> keras.Model:
    """Saves `model` to a `.keras` file, loads it with no `custom_objects`, and compares outputs.

    `inputs` are what `predict` takes: raw data for a model with a preprocessor (saved and loaded with it).

    This loads in the same process; `check_loads_in_fresh_process` checks what a user's script or service
    does, loading with nothing but `import mmkeras`.
    """
    directory = pathlib.Path(directory or tempfile.mkdtemp())
    path = directory / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    _assert_same_outputs(_as_numpy(infer(model, inputs)), _as_numpy(infer(loaded, inputs)), atol)
    return loaded


def _assert_same_outputs(expected, received, atol):
    if isinstance(expected, dict):
        for key in expected:
            np.testing.assert_allclose(received[key], expected[key], atol=atol, err_msg=f"output {key!r}")
    else:
        np.testing.assert_allclose(received, expected, atol=atol)


_FRESH_LOADER = """
import sys, pickle
import numpy as np
import mmkeras
import mmkeras.testing
cases = pickle.load(open(sys.argv[1], "rb"))
results = {}
for name, (path, inputs) in cases.items():
    model = mmkeras.load_model(path)
    outputs = mmkeras.testing.infer(model, inputs)
    if isinstance(outputs, dict):
        results[name] = {k: np.asarray(v) for k, v in outputs.items()}
    else:
        results[name] = np.asarray(outputs)
pickle.dump(results, open(sys.argv[2], "wb"))
"""


def check_loads_in_fresh_process(models: dict, inputs: dict, directory=None, atol: float = 1e-5) -> None:
    """Saves each model, loads them all in a new Python process that runs only `import mmkeras` and
    `mmkeras.load_model(path)`, and compares its outputs there with the outputs here.

    One process for all the models, so that TensorFlow starts once.

    Args:
        models: dict `{name: keras.Model}`.
        inputs: dict `{name: inputs}`, what `predict` takes for each model (NumPy arrays or dicts of them; raw
            data for a model with a preprocessor).
        directory: where the `.keras` files go. Defaults to a new temporary folder.
        atol: float. Largest absolute difference allowed.
    """
    import pickle
    import subprocess
    import sys

    directory = pathlib.Path(directory or tempfile.mkdtemp())
    cases, expected = {}, {}
    for name, model in models.items():
        path = directory / f"{name}.keras"
        model.save(path)
        cases[name] = (str(path), inputs[name])
        expected[name] = _as_numpy(infer(model, inputs[name]))
    (directory / "cases.pkl").write_bytes(pickle.dumps(cases))
    process = subprocess.run([sys.executable, "-c", _FRESH_LOADER, str(directory / "cases.pkl"),
                              str(directory / "results.pkl")], capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, f"loading in a fresh process failed:\n{process.stderr[-3000:]}"
    received = pickle.loads((directory / "results.pkl").read_bytes())
    for name in models:
        _assert_same_outputs(expected[name], received[name], atol)


def _projection_loss(outputs, projections):
    flat = outputs.values() if isinstance(outputs, dict) else [outputs]
    floats = [keras.ops.cast(o, "float32") for o in flat if "float" in keras.backend.standardize_dtype(o.dtype)]
    return sum(keras.ops.sum(o * p) for o, p in zip(floats, projections))  # a padding mask has no gradient


def _gradients(model, inputs, projections) -> list:
    """The gradient of `_projection_loss` with respect to every trainable weight, on the current backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = _projection_loss(model(inputs, training=True), projections)
        return tape.gradient(loss, model.trainable_weights)
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_of(weights):
            outputs, _ = model.stateless_call(weights, non_trainable, inputs, training=True)
            return _projection_loss(outputs, projections)

        return jax.grad(loss_of)(trainable)
    raise NotImplementedError(f"check_gradients supports the tensorflow and jax backends. Received: {backend!r}")


def check_gradients(model: keras.Model, inputs, seed: int = 0, unused=()) -> None:
    """Every trainable weight receives a non-zero gradient of a random projection of the outputs.

    `unused` lists path fragments of weights that the outputs do not depend on by design (e.g. BERT's pooler
    when the encoder returns the token sequence).
    """
    rng = np.random.default_rng(seed)
    outputs = model(inputs, training=False)
    flat = outputs.values() if isinstance(outputs, dict) else [outputs]
    projections = [rng.normal(size=tuple(o.shape)).astype("float32") for o in flat
                   if "float" in keras.backend.standardize_dtype(o.dtype)]
    weights = model.trainable_weights
    assert weights, f"{model.name} has no trainable weights"
    grads = _gradients(model, inputs, projections)
    missing = [w.path for w, g in zip(weights, grads)
               if (g is None or not np.any(keras.ops.convert_to_numpy(g)))
               and not any(fragment in w.path for fragment in unused)]
    assert not missing, f"weights without gradient: {missing}"


def check_loss_decreases(model: keras.Model, inputs, targets, steps: int = 8, learning_rate: float = 1e-2) -> tuple:
    """Trains on one batch for `steps` steps; the loss after must be below the loss before.

    The model returns logits (one tensor, or a dict of them with `targets` a dict too). `inputs` are what
    `fit` takes: raw data for a model with a preprocessor (its `evaluate` and `train_on_batch` preprocess them).
    Returns `(loss_before, loss_after)`.
    """
    def loss():
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    losses = {k: loss() for k in model.output} if isinstance(model.output, dict) else loss()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=losses)
    def total():
        value = model.evaluate(inputs, targets, verbose=0)
        return float(value[0] if isinstance(value, list) else value)

    before = total()
    for _ in range(steps):
        model.train_on_batch(inputs, targets)
    after = total()
    assert after < before, f"loss did not decrease: {before:.4f} -> {after:.4f}"
    return before, after


def check_mixed_precision(make_layer, inputs) -> None:
    """A layer made with `dtype="mixed_float16"` computes in float16 and returns float16, as Keras layers do.

    Args:
        make_layer: function `dtype -> layer`.
        inputs: what the layer is called on (float32 tensors; the layer casts them itself).
    """
    layer = make_layer("mixed_float16")
    outputs = layer(inputs)
    flat = outputs.values() if isinstance(outputs, dict) else [outputs]
    dtypes = [keras.backend.standardize_dtype(o.dtype) for o in flat]
    assert all(d == "float16" for d in dtypes), f"outputs under mixed_float16 are {dtypes}, not float16"
    variables = [keras.backend.standardize_dtype(w.dtype) for w in layer.weights]
    assert all(d == "float32" for d in variables), f"variables under mixed_float16 are {variables}, not float32"


TINY_PRESETS = ("bert", "resnet", "vit")


def save_tiny_preset(kind: str, folder, vocabulary=None):
    """Saves a tiny, randomly initialised keras-hub model as a preset folder; returns its backbone.

    The folder has the same layout as a downloaded preset (`config.json`, weights, tokenizer or image
    converter), so `from_preset(folder)` loads it offline: a stand-in for `"bert_tiny_en_uncased"`,
    `"resnet_18_imagenet"` or `"vit_base_patch16_224_imagenet"` while learning the plumbing.

    Args:
        kind: str. `"bert"`, `"resnet"` or `"vit"`.
        folder: str or Path. Where to write the preset.
        vocabulary: list of str. The words of the tiny BERT (required for `"bert"`).

    Example:
    >>> import tempfile
    >>> backbone = save_tiny_preset("vit", tempfile.mkdtemp())
    >>> backbone.hidden_dim
    16
    """
    import keras_hub

    from mmkeras._validation import check_choice

    check_choice("kind", kind, TINY_PRESETS)
    folder = str(folder)
    if kind == "bert":
        from mmkeras.encoders.text import build_bert_text_encoder

        encoder = build_bert_text_encoder(vocabulary=vocabulary, sequence_length=16)
        backbone, preprocessor = encoder.backbone, encoder.preprocessor
        backbone.save_to_preset(folder)
        preprocessor.save_to_preset(folder)
        return backbone
    if kind == "resnet":
        backbone = keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16],
            stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
            use_pre_activation=False, image_shape=(None, None, 3),
        )
        converter = keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=1 / 255.0)
    else:
        backbone = keras_hub.models.ViTBackbone(
            image_shape=(32, 32, 3), patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32
        )
        converter = keras_hub.layers.ViTImageConverter(image_size=(32, 32), scale=1 / 255.0)
    backbone.save_to_preset(folder)
    converter.save_to_preset(folder)
    return backbone
