"""Generative models for the captioned scenes: DCGAN, a conditional GAN (caption -> image), and their metrics.

    gan.py          discriminator_loss / generator_loss (non-saturating), auxiliary_loss (AC-GAN), build_generator /
                    build_discriminator (DCGAN), GAN and ConditionalGAN (`fit` trains both players),
                    caption_to_condition ("a large blue circle in the center" -> the 22-d condition)
    callbacks.py    SampleGrid: the same noise through the generator after every epoch (arrays + PNGs)
    evaluation.py   attribute classifier, conditional accuracy, Fréchet distance, diversity, bench()

Importing `mmkeras` does not import this package (it loads Keras); `import mmkeras.generative` does.
Training (`GAN.train_step`) uses `tf.GradientTape`: TensorFlow backend only.
"""

from __future__ import annotations

from mmkeras.generative.callbacks import SampleGrid, tile_images
from mmkeras.generative.evaluation import (
    RECIPE,
    attribute_accuracy,
    bench,
    build_attribute_classifier,
    conditional_accuracy,
    diversity,
    evaluate_generator,
    feature_extractor,
    frechet_distance,
    frechet_distance_from_moments,
    mean_pairwise_distance,
    train_attribute_classifier,
)
from mmkeras.generative.gan import (
    CONDITION_BLOCKS,
    CONDITION_DIM,
    CONDITION_OFFSETS,
    CONDITION_SIZES,
    GAN,
    ConditionalGAN,
    attributes_to_condition,
    auxiliary_loss,
    build_conditional_gan,
    build_discriminator,
    build_generator,
    caption_to_condition,
    condition_to_attributes,
    discriminator_loss,
    generator_loss,
    labels_to_condition,
    saturating_generator_loss,
    to_tanh_range,
    to_unit_range,
)

__all__ = [
    "CONDITION_BLOCKS", "CONDITION_DIM", "CONDITION_OFFSETS", "CONDITION_SIZES", "GAN", "RECIPE", "ConditionalGAN",
    "SampleGrid",
    "attribute_accuracy", "attributes_to_condition", "auxiliary_loss", "bench", "build_attribute_classifier",
    "build_conditional_gan",
    "build_discriminator", "build_generator", "caption_to_condition", "condition_to_attributes",
    "conditional_accuracy", "discriminator_loss", "diversity", "evaluate_generator", "feature_extractor",
    "frechet_distance", "frechet_distance_from_moments", "generator_loss", "labels_to_condition",
    "mean_pairwise_distance", "saturating_generator_loss", "tile_images", "to_tanh_range", "to_unit_range",
    "train_attribute_classifier",
]
