"""The seams of the package a user's workflow crosses (review 04, section 3): loading a saved model in a new
process, the training recipe on any dataset and on a second call, predictions that depend on their own input
only, and arguments that used to be silently ignored or to default to the toy dataset."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmkeras
from mmkeras import testing
from mmkeras.data import MultimodalData, load_splits
from mmkeras.encoders import (
    build_audio_encoder,
    build_image_encoder,
    build_text_encoder,
    build_vector_encoder,
    build_video_encoder,
)
from mmkeras.fusion import GatedFusion
from mmkeras.generative import ConditionalGAN, auxiliary_loss, build_discriminator, build_generator
from mmkeras.models import FusionClassifier, build_fusion_classifier
from mmkeras.training import fit_classifier


@pytest.fixture(scope="module")
def toys():
    return load_splits(96, 16, 32, seed=5)


# ------------------------------------------------------------------ loading where users load (3.1, K1)


def test_saved_models_load_in_a_fresh_process(toys, tmp_path):
    """`import mmkeras; mmkeras.load_model(path)` in a new process, for the task models a user saves."""
    keras.utils.set_random_seed(0)
    inputs = toys["test"].inputs()
    concat = build_fusion_classifier(toys["train"], modalities=["image", "audio"])
    gated = build_fusion_classifier(toys["train"], modalities=["text", "image"], fusion="gated",
                                    modality_dropout=0.2)
    uncertainty = FusionClassifier(mmkeras.encoders.build_encoders(toys["train"], ["audio", "video"]),
                                   heads={"label": 8, "direction": 2}, loss_weighting="uncertainty")
    uncertainty.compile()
    gan = mmkeras.generative.build_conditional_gan(8, filters=4)
    condition = mmkeras.generative.caption_to_condition("a small red cross at the top left")[None]
    models = {"concat": concat, "gated": gated, "uncertainty": uncertainty, "gan": gan}
    model_inputs = {
        "concat": {m: inputs[m] for m in ("image", "audio")},
        "gated": {m: inputs[m] for m in ("text", "image")},
        "uncertainty": {m: inputs[m] for m in ("audio", "video")},
        "gan": {"noise": np.zeros((1, 8), "float32"), "condition": condition.astype("float32")},
    }
    testing.check_loads_in_fresh_process(models, model_inputs, tmp_path)


def test_load_model_registers_every_mmkeras_class():
    """`mmkeras.saving.REGISTERING_MODULES` covers every module that registers a class: importing all of the
    package's modules afterwards registers nothing new."""
    script = textwrap.dedent("""
        import importlib, pkgutil, keras, mmkeras, mmkeras.saving
        mmkeras.saving.register_all()
        before = {k for k in keras.saving.get_custom_objects() if k.startswith("mmkeras>")}
        for info in pkgutil.walk_packages(mmkeras.__path__, "mmkeras."):
            if not info.name.endswith("__main__"):  # a program, not a module to import
                importlib.import_module(info.name)
        after = {k for k in keras.saving.get_custom_objects() if k.startswith("mmkeras>")}
        print(sorted(after - before))
        assert after == before, sorted(after - before)
    """)
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stdout[-500:] + process.stderr[-2000:]


# ------------------------------------------------------------------ the training recipe (3.2, 3.3, 3.4)


class _StepSizes(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.step_sizes = getattr(self.model, "step_sizes", []) + [float(self.model.optimizer.learning_rate)]


def test_the_schedule_spans_a_dataset_of_unknown_size(toys):
    """A filtered dataset has cardinality -2; the cosine must still run over all the updates of the run
    (it used to decay to 0 after one step)."""
    model = build_fusion_classifier(["audio"])
    ds = mmkeras.data.to_dataset(toys["train"], ["audio"], "label", batch_size=32).filter(lambda x, y: True)
    assert int(ds.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    recorder = _StepSizes()
    fit_classifier(model, ds, epochs=3, learning_rate=1e-2, callbacks=[recorder], run_eagerly=True)
    # 3 batches per epoch, 9 updates: after epoch 1 the step size is 1e-2 (1 + cos(pi/3)) / 2 = 7.5e-3
    np.testing.assert_allclose(model.step_sizes, [7.5e-3, 2.5e-3, 0.0], atol=1e-6)


def test_a_second_call_trains_again_with_its_own_schedule(toys):
    model = build_fusion_classifier(["audio"])
    fit_classifier(model, toys["train"], epochs=2, batch_size=32, run_eagerly=True)
    before = [w.copy() for w in model.get_weights()]
    recorder = _StepSizes()
    fit_classifier(model, toys["train"], epochs=2, batch_size=32, learning_rate=1e-3, callbacks=[recorder],
                   run_eagerly=True)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), before))
    assert moved > 1e-4, moved
    np.testing.assert_allclose(model.step_sizes, [5e-4, 0.0], atol=1e-7)  # the new call's cosine from 1e-3


def test_a_model_you_compiled_keeps_its_optimizer(toys):
    model = build_fusion_classifier(["audio"])
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    fit_classifier(model, toys["train"], epochs=1, batch_size=32, run_eagerly=True)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"compiled with your own optimizer.*Received: learning_rate=0.01"):
        fit_classifier(model, toys["train"], epochs=1, learning_rate=0.01)


def test_fit_classifier_under_two_replicas():
    """Built in a MirroredStrategy over two logical CPUs: `steps_per_execution` must be 1 there."""
    script = textwrap.dedent("""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from mmkeras.data import load_splits
        from mmkeras.models import build_fusion_classifier
        from mmkeras.training import fit_classifier
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            model = build_fusion_classifier(["audio"])
        result = fit_classifier(model, load_splits(64, 8, 8)["train"], epochs=1, batch_size=32, run_eagerly=False)
        assert strategy.num_replicas_in_sync == 2 and result.history["loss"][0] > 0
        print("ok", result.history["loss"])
    """)
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert process.returncode == 0 and "ok" in process.stdout, process.stderr[-2000:]


# ------------------------------------------------------------------ a prediction is its own (3.5, 3.6, K2)


def _encoders():
    vocabulary = ["a", "red", "blue", "circle", "square", "moves", "left", "right"]
    return {
        "text": (build_text_encoder("rnn", vocabulary=vocabulary),
                 np.array(["a red circle moves left", "blue square", "", "right right"], dtype=object)),
        "image": (build_image_encoder(), np.random.default_rng(0).random((4, 32, 32, 3), dtype="float32")),
        "audio": (build_audio_encoder(), None),
        "video": (build_video_encoder(), np.random.default_rng(1).random((4, 8, 32, 32, 1), dtype="float32")),
        "vector": (build_vector_encoder((6,)), np.random.default_rng(2).normal(size=(4, 6)).astype("float32")),
    }


def _clips():
    """Four clips of very different loudness: digital near-silence to full scale."""
    t = np.arange(4000) / 8000
    tone = np.sin(2 * np.pi * 440 * t).astype("float32")
    return np.stack([tone, 1e-4 * tone, 0.01 * tone + 1e-6 * np.random.default_rng(3).normal(size=4000), 0 * tone])


@pytest.mark.parametrize("kind", ["text", "image", "audio", "video", "vector"])
def test_an_example_is_encoded_the_same_alone_and_in_any_batch(kind):
    keras.utils.set_random_seed(0)
    encoder, x = _encoders()[kind]
    x = _clips().astype("float32") if kind == "audio" else x
    batched = keras.ops.convert_to_numpy(encoder(x))
    alone = np.concatenate([keras.ops.convert_to_numpy(encoder(x[i:i + 1])) for i in range(len(x))])
    np.testing.assert_allclose(alone, batched, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(encoder(x)), batched, atol=0)  # deterministic
    np.testing.assert_allclose(encoder.predict(x, verbose=0), batched, atol=1e-5)


def test_model_call_equals_predict_and_only_fit_augments(toys):
    keras.utils.set_random_seed(0)
    model = build_fusion_classifier(["image"])
    x = {"image": toys["test"].features["image"][:16]}
    first, second = keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(model(x))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(model.predict(x, verbose=0), first, atol=1e-5)
    augmented = keras.ops.convert_to_numpy(model(x, training=True))
    assert np.abs(augmented - first).max() > 1e-3  # fit still augments (and drops out)


# ------------------------------------------------------------------ no toy defaults in generic classes (K4, K5)


def test_heads_are_required():
    with pytest.raises(TypeError, match="heads"):
        FusionClassifier({"audio": build_audio_encoder()})
    with pytest.raises(ValueError, match=r"num_classes=\.\.\.\). Received: num_classes=None"):
        build_fusion_classifier({"audio": build_audio_encoder()})


def test_a_ten_class_dataset_gets_ten_logits():
    rng = np.random.default_rng(0)
    data = MultimodalData({"signal": rng.normal(size=(40, 6)).astype("float32")}, {"digit": np.arange(40) % 10})
    model = FusionClassifier.from_data(data)
    assert model.heads == {"digit": 10} and model.output.shape == (None, 10)


@pytest.mark.parametrize("fusion,size_attribute", [("concat", "output_dim"), ("gated", "width"),
                                                    ("transformer", "width"), ("low_rank_tensor", "output_dim")])
def test_hidden_dim_sizes_a_named_fusion(fusion, size_attribute):
    encoders = {"audio": build_audio_encoder(sequence_output=fusion == "transformer"),
                "vector": build_vector_encoder((6,))}
    if fusion == "transformer":
        encoders["vector"] = build_audio_encoder(sequence_output=True, name="vector_encoder", input_name="vector")
    model = FusionClassifier(encoders, heads={"label": 3}, fusion=fusion, hidden_dim=24)
    assert getattr(model.fusion, size_attribute) == 24
    assert model.get_layer("label").kernel.shape[0] == 24


def test_dropout_reaches_a_named_fusion_or_is_refused():
    encoders = {"audio": build_audio_encoder(), "vector": build_vector_encoder((6,))}
    assert FusionClassifier(encoders, heads={"label": 3}, fusion="gated", dropout=0.5).fusion.dropout == 0.5
    with pytest.raises(ValueError, match=r"'low_rank_tensor' fusion .* has no dropout.*Received: dropout=0.5"):
        FusionClassifier(encoders, heads={"label": 3}, fusion="low_rank_tensor", dropout=0.5)
    with pytest.raises(ValueError, match=r"set its size and dropout on the layer itself.*hidden_dim=32"):
        FusionClassifier(encoders, heads={"label": 3}, fusion=GatedFusion(width=16), hidden_dim=32)


def test_uncertainty_weighting_refuses_fixed_weights_and_takes_one_loss(toys):
    encoders = mmkeras.encoders.build_encoders(toys["train"], ["audio"])
    model = FusionClassifier(encoders, heads={"label": 8, "direction": 2}, loss_weighting="uncertainty")
    with pytest.raises(ValueError, match=r"learns the weight of every head.*Received: loss_weights="):
        model.compile(loss_weights={"label": 2.0})
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # one loss for both heads
    ds = mmkeras.data.to_dataset(toys["train"], ["audio"], ("label", "direction"), batch_size=32)
    history = model.fit(ds, epochs=3, verbose=0).history
    assert {"label_loss", "direction_loss"} <= set(history)
    assert history["loss"][-1] < history["loss"][0] and history["direction_loss"][-1] > 0


def test_an_ac_gan_with_a_ten_class_condition():
    """The auxiliary loss takes the condition's blocks: one 10-class label is one cross-entropy, log 10 at zero
    logits (it used to slice the scenes' 5/6/2/9 blocks and give log 5 + ...)."""
    condition = np.eye(10, dtype="float32")[[3, 7]]
    assert float(auxiliary_loss(np.zeros((2, 10)), condition, blocks=(10,))) == pytest.approx(np.log(10), rel=1e-6)
    generator, discriminator = build_generator(8, 10, filters=4), build_discriminator(10, filters=4, auxiliary=True)
    with pytest.raises(ValueError, match=r"pass condition_blocks.*\(10,\) for one 10-class label"):
        ConditionalGAN(generator, discriminator)
    with pytest.raises(ValueError, match=r"add up to the condition size 10.*\(5, 6\)"):
        ConditionalGAN(generator, discriminator, condition_blocks=(5, 6))
    gan = ConditionalGAN(generator, discriminator, condition_blocks=(10,), auxiliary_weight=1.0)
    gan.compile()
    images = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
    logs = gan.fit(images, np.eye(10, dtype="float32")[np.arange(8)], epochs=1, batch_size=8, verbose=0).history
    assert logs["aux_real"][0] == pytest.approx(np.log(10), abs=0.5)
