"""Data: a schema for any multimodal dataset, the embedded "moving toys", its story, tf.data, downloads.

    schema.py     DataSchema / ModalitySpec / LabelSpec and the MultimodalData container
    synthetic.py  the moving-toys generator (make_synthetic, load_splits) and its SCHEMA
    scenes.py     the captioned scenes (make_scenes, load_scene_splits): captions that describe the image
    story.py      which modality sees what, and the accuracy ceilings that follow
    pipeline.py   to_dataset: MultimodalData -> tf.data (TensorFlow is imported on first use)
    registry.py, download.py   real datasets: checksummed, atomic downloads
"""

from mmkeras.data.pipeline import as_multimodal, to_dataset
from mmkeras.data.scenes import SCENE_SCHEMA, load_scene_splits, make_scenes, retrieval_ceiling
from mmkeras.data.schema import KINDS, DataSchema, LabelSpec, ModalitySpec, MultimodalData
from mmkeras.data.story import (
    OBSERVES,
    attribute_accuracy,
    attributes_of,
    caption_reader_accuracy,
    delivered,
    story_ceiling,
)
from mmkeras.data.synthetic import (
    ATTRIBUTES,
    CLASS_NAMES,
    LABEL_KEYS,
    MODALITIES,
    NUM_CLASSES,
    SCHEMA,
    VOCABULARY,
    load_splits,
    make_synthetic,
)

__all__ = [
    "ATTRIBUTES",
    "CLASS_NAMES",
    "KINDS",
    "LABEL_KEYS",
    "MODALITIES",
    "NUM_CLASSES",
    "OBSERVES",
    "SCENE_SCHEMA",
    "SCHEMA",
    "VOCABULARY",
    "DataSchema",
    "LabelSpec",
    "ModalitySpec",
    "MultimodalData",
    "as_multimodal",
    "attribute_accuracy",
    "attributes_of",
    "caption_reader_accuracy",
    "delivered",
    "load_scene_splits",
    "load_splits",
    "make_scenes",
    "make_synthetic",
    "retrieval_ceiling",
    "story_ceiling",
    "to_dataset",
]
