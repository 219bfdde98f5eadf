"""Solutions to the exercises of notebook 04_video (a CNN on every frame, an RNN across frames).

    python notebooks/solutions/04_video.py                    # full size (several minutes: it trains 7 models)
    MMKERAS_SMOKE=1 python notebooks/solutions/04_video.py    # a few seconds

Each function does the exercise for real and checks its result with an assertion.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

import mmkeras
from mmkeras.data import SCHEMA, MultimodalData, attribute_accuracy
from mmkeras.encoders.image import build_conv_stack
from mmkeras.training import predict_classes, train_and_evaluate

SMOKE = mmkeras.config.is_smoke()
SIZES = mmkeras.config.by_mode(full=(3000, 500, 1000), smoke=(128, 32, 64))  # the notebook's splits
EPOCHS = mmkeras.config.by_mode(full=8, smoke=1)
NUM_FRAMES, IMAGE_SIZE, _, CHANNELS = SCHEMA.modality("video").shape  # (8, 32, 32, 1)


def exercise_1():
    """Weight sharing: the encoder's size does not depend on the number of frames."""
    counts = {}
    for frames in (4, 8, 16):
        encoder = mmkeras.encoders.build_video_encoder(input_shape=(frames, IMAGE_SIZE, IMAGE_SIZE, CHANNELS))
        counts[frames] = encoder.count_params()
    frame_cnn = encoder.get_layer("per_frame_cnn").layer  # the one CNN that TimeDistributed applies to every frame
    lstm = encoder.get_layer("lstm").count_params()
    unshared = NUM_FRAMES * frame_cnn.count_params() + lstm  # 8 separate frame CNNs + the LSTM
    print(f"    parameters for 4 / 8 / 16 frames: {counts[4]} / {counts[8]} / {counts[16]}; "
          f"8 unshared frame CNNs would need {unshared}")
    assert counts[4] == counts[8] == counts[16], counts
    assert counts[8] == frame_cnn.count_params() + lstm  # shared: one CNN, whatever the number of frames
    return counts


def frame_differences(data: MultimodalData) -> MultimodalData:
    """The same split with `"video"` replaced by `v_{t+1} - v_t`: `(n, frames - 1, h, w, 1)` in [-1, 1]."""
    return MultimodalData({"video": np.diff(data.features["video"], axis=1)}, data.labels, data.meta)


def build_gap_video_encoder(frames: int, name: str) -> keras.Model:
    """TimeDistributed(a frame CNN ending in global average pooling) -> LSTM: position-blind frame features."""
    video = keras.Input(shape=(frames, IMAGE_SIZE, IMAGE_SIZE, CHANNELS), name="video")  # (batch, T, 32, 32, 1)
    cnn = build_conv_stack((8, 16), name="gap_frame_cnn", input_shape=(IMAGE_SIZE, IMAGE_SIZE, CHANNELS))
    x = layers.TimeDistributed(cnn, name="per_frame_cnn")(video)  # (batch, T, 16)
    return keras.Model(video, layers.LSTM(32, name="lstm")(x), name=name)  # (batch, 32)


def direction_accuracy(model, data: MultimodalData) -> float:
    logits = model.predict({"video": data.features["video"]}, verbose=0, batch_size=256)  # (n, 2)
    return float(np.mean(logits.argmax(-1) == data.labels["direction"]))


def exercise_2():
    """Motion as a local pattern: frame differences let a position-blind (GAP) model see the direction."""
    splits = mmkeras.load_splits(*SIZES)
    test = splits["test"]
    diff_test = frame_differences(test)
    # A NumPy check first: the toy's leading edge is bright, its trailing edge dark, so the x-weighted sum of the
    # differences moves with the toy: > 0 when it goes right.
    columns = np.arange(IMAGE_SIZE, dtype=np.float32)
    moment = (diff_test.features["video"][..., 0] * columns).sum(axis=(1, 2, 3))  # (n,)
    working = ~test.meta["video_failed"]
    rule = np.mean((moment > 0)[working] == test.labels["direction"][working])
    assert rule > 0.95, f"the x-moment of the differences should give the direction away, got {rule:.3f}"

    results = {}
    for name, transform, frames in (("frames", lambda d: d, NUM_FRAMES),
                                    ("differences", frame_differences, NUM_FRAMES - 1)):
        mmkeras.seed_everything(0)
        model = mmkeras.build_fusion_classifier({"video": build_gap_video_encoder(frames, f"gap_{name}")},
                                                num_classes=2, name=f"gap_on_{name}")
        mmkeras.fit_classifier(model, transform(splits["train"]), transform(splits["val"]), epochs=EPOCHS,
                               label_keys="direction")
        results[name] = direction_accuracy(model, transform(test))
    print(f"    NumPy rule on working cameras: {rule:.3f}; GAP model direction accuracy on frames "
          f"{results['frames']:.3f}, on frame differences {results['differences']:.3f}")
    if not SMOKE:
        assert results["differences"] > results["frames"] + 0.2, results
    return results


def build_recurrent_video_encoder(cell: str) -> keras.Model:
    """TimeDistributed(Flatten + Dense frame CNN) -> LSTM or GRU, like `build_video_encoder`."""
    video = keras.Input(shape=(NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, CHANNELS), name="video")  # (batch, 8, 32, 32, 1)
    cnn = build_conv_stack((8, 16), name="frame_cnn", input_shape=(IMAGE_SIZE, IMAGE_SIZE, CHANNELS), output_dim=32)
    x = layers.TimeDistributed(cnn, name="per_frame_cnn")(video)  # (batch, 8, 32)
    recurrent = layers.LSTM(32, name="rnn") if cell == "lstm" else layers.GRU(32, name="rnn")
    return keras.Model(video, recurrent(x), name=f"video_{cell}_encoder")  # (batch, 32)


def exercise_3():
    """GRU instead of LSTM: parameter counts against the formulas, and a training comparison."""
    splits = mmkeras.load_splits(*SIZES)
    d = h = 32
    expected = {"lstm": 4 * (h * (d + h) + h), "gru": 3 * (h * (d + h) + 2 * h)}  # GRU: reset_after=True
    results = {}
    for cell in ("lstm", "gru"):
        counted = build_recurrent_video_encoder(cell).get_layer("rnn").count_params()
        assert counted == expected[cell], (cell, counted, expected[cell])
        run = train_and_evaluate(
            lambda cell=cell: mmkeras.build_fusion_classifier({"video": build_recurrent_video_encoder(cell)},
                                                              name=f"video_{cell}", num_classes=8),
            splits["train"], splits["test"], val=splits["val"], epochs=EPOCHS)
        results[cell] = run.report["accuracy"]
        print(f"    {cell.upper()}: {counted} recurrent weights = formula, trained in {run.seconds:.1f} s, "
              f"test accuracy {results[cell]:.3f}")
    return results


def exercise_4():
    """How much training the shape needs: 2000 clips for 8 and for 15 epochs, against 3000 clips for 8."""
    few_clips = mmkeras.config.by_mode(full=2000, smoke=96)
    runs = {"more": (SIZES[0], EPOCHS), "few": (few_clips, EPOCHS),  # (training clips, epochs)
            "few, longer": (few_clips, mmkeras.config.by_mode(full=15, smoke=2))}
    results = {}
    for name, (clips, epochs) in runs.items():
        splits = mmkeras.load_splits(clips, *SIZES[1:])  # the same validation and test splits every time
        test = splits["test"]
        run = train_and_evaluate(["video"], splits["train"], test, epochs=epochs)
        attributes = attribute_accuracy(test.labels["label"], predict_classes(run.model, test))
        results[name] = {"accuracy": run.report["accuracy"], **attributes}
        print(f"    {clips} clips, {epochs:>2} epochs: test accuracy {run.report['accuracy']:.3f}, "
              f"shape {attributes['shape']:.3f}, direction {attributes['direction']:.3f} ({run.seconds:.0f} s)")
    if not SMOKE:
        few, longer, more = results["few"], results["few, longer"], results["more"]
        assert few["shape"] < more["shape"] - 0.1 and few["shape"] < longer["shape"] - 0.1, results
        assert few["direction"] > 0.9, results  # the direction is learned early; the shape is the slow part
    return results


if __name__ == "__main__":
    mmkeras.seed_everything(0)
    for number, exercise in enumerate((exercise_1, exercise_2, exercise_3, exercise_4), start=1):
        exercise()
        print(f"exercise {number}: ok")
