"""A callback that draws the same noise through the generator after every epoch: sample grids over epochs.

The noise is fixed (drawn once from the callback's own seed), so the grids differ only because the generator
learned: a learner sees the same "slots" turn from blobs into shapes.
"""

from __future__ import annotations

import pathlib

import keras
import numpy as np

from mmkeras._validation import check_int


def tile_images(images, columns: int = 8, border: int = 1) -> np.ndarray:
    """Tiles images `(n, h, w, c)` in [0, 1] into one image `(rows * (h + b) + b, columns * (w + b) + b, c)`
    with white borders of `border` pixels.

    Example:
    >>> tile_images(np.zeros((3, 32, 32, 3)), columns=2).shape
    (67, 67, 3)
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4 or not len(images):
        raise ValueError(f"`images` must be (n, h, w, c) with n > 0. Received: shape={images.shape}")
    columns = max(1, min(check_int("columns", columns), len(images)))
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.ones((rows * (h + border) + border, columns * (w + border) + border, c), dtype="float32")
    for i, image in enumerate(images):
        top, left = border + (i // columns) * (h + border), border + (i % columns) * (w + border)
        grid[top:top + h, left:left + w] = image
    return grid


class SampleGrid(keras.callbacks.Callback):
    """Generates images from fixed noise at the end of every epoch; keeps them and optionally saves a PNG.

    `grids[k]` holds the images `(num_samples, h, w, c)` in [0, 1] after `epochs[k]` epochs (epoch 0: before
    training, when `include_start=True`); with a `folder`, each grid is also written as
    `folder/epoch_{epoch:03d}.png`.

    Args:
        num_samples: int. Images per grid. Defaults to `16`.
        conditions: array `(num_samples, condition_dim)` or None. The conditions for a `ConditionalGAN`
            (e.g. `caption_to_condition(captions)`); `None` for an unconditional `GAN`. Defaults to `None`.
        folder: str, Path or None. Where to save the PNGs; `None`: keep them in memory only. Defaults to `None`.
        columns: int. Images per row in the PNG. Defaults to `8`.
        seed: int. Seeds the fixed noise (NumPy, independent of the model's seed). Defaults to `0`.
        include_start: bool. Also record the untrained generator's grid (epoch 0). Defaults to `True`.

    Example:
    >>> from mmkeras.generative.gan import GAN, build_discriminator, build_generator
    >>> gan = GAN(build_generator(8, filters=4), build_discriminator(filters=4))
    >>> grids = SampleGrid(num_samples=4)
    >>> grids.set_model(gan); grids.on_train_begin(); grids.on_epoch_end(0)
    >>> grids.epochs, grids.grids[-1].shape
    ([0, 1], (4, 32, 32, 3))
    """

    def __init__(self, num_samples: int = 16, conditions=None, folder=None, columns: int = 8, seed: int = 0,
                 include_start: bool = True):
        super().__init__()
        self.num_samples = check_int("num_samples", num_samples)
        self.conditions = None if conditions is None else np.asarray(conditions, dtype="float32")
        if self.conditions is not None and (self.conditions.ndim != 2 or len(self.conditions) != self.num_samples):
            raise ValueError(f"`conditions` must be (num_samples={self.num_samples}, condition_dim). "
                             f"Received: shape={self.conditions.shape}")
        self.folder = None if folder is None else pathlib.Path(folder)
        self.columns = check_int("columns", columns)
        self.seed = check_int("seed", seed, minimum=0)
        self.include_start = bool(include_start)
        self.noise = None
        self.grids = []
        self.epochs = []

    def _record(self, epoch: int) -> None:
        if self.noise is None:  # drawn once, the first time: the same noise for every grid
            rng = np.random.default_rng(self.seed)
            self.noise = rng.standard_normal((self.num_samples, self.model.latent_dim)).astype("float32")
        images = self.model.generate(self.noise, self.conditions)  # (num_samples, h, w, c) in [0, 1]
        self.grids.append(images)
        self.epochs.append(epoch)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            keras.utils.save_img(self.folder / f"epoch_{epoch:03d}.png", tile_images(images, self.columns),
                                 scale=True)

    def on_train_begin(self, logs=None):
        if self.include_start and not self.epochs:
            self._record(0)

    def on_epoch_end(self, epoch, logs=None):
        self._record(self.epochs[-1] + 1 if self.epochs else 1)  # counts on across several fit() calls
