"""Preprocessing out of the model graph, the keras-hub way: raw inputs -> numbers, in TensorFlow, in `tf.data`.

    audio.py        LogMelSpectrogram: waveform -> log-mel in dB, floored per example
    image.py        PixelRescaling: 0-255 pixels -> float32 in [0, 1]
    multimodal.py   MultimodalPreprocessor: {modality: raw} -> {modality: model input}, one step per modality
    build.py        build_preprocessor(data): the preprocessor matching build_encoders(data, preprocessed=True);
                    image_text_preprocessor: the captioned scenes' chapter models (CLIP, the matcher)

A `FusionClassifier` built from data (`FusionClassifier.from_data`, `build_fusion_classifier`) holds such a
preprocessor (`model.preprocessor`) and numeric encoders. Its `fit`, `evaluate` and `predict` (keras-hub's
`Task`) map the preprocessor over the data; `model(x)` takes the preprocessed numbers; an export's serving
signature takes the raw inputs (`mmkeras.export.export_saved_model`).
"""

from mmkeras.preprocessing.audio import LogMelSpectrogram, spectrogram_frames
from mmkeras.preprocessing.build import build_preprocessor, image_text_preprocessor, modality_step
from mmkeras.preprocessing.image import PixelRescaling
from mmkeras.preprocessing.multimodal import MultimodalPreprocessor, check_preprocessor

__all__ = ["LogMelSpectrogram", "MultimodalPreprocessor", "PixelRescaling", "build_preprocessor", "check_preprocessor",
           "image_text_preprocessor", "modality_step", "spectrogram_frames"]
