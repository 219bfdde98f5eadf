"""One feature extractor per modality, each a functional `keras.Model` from its named input to features.

Every builder returns a model whose input is named after its modality (`"text"`, `"image"`, `"audio"`,
`"video"`) and whose output is a feature vector `(batch, output_dim)`; with `sequence_output=True` the
RNN/Transformer encoders return the feature sequence `(batch, steps, features)` instead, for the attention
notebooks that follow.
"""

from mmkeras.encoders.audio import build_audio_encoder
from mmkeras.encoders.image import build_image_encoder, build_pretrained_image_encoder
from mmkeras.encoders.text import BertTextEncoder, build_bert_text_encoder, build_text_encoder
from mmkeras.encoders.video import build_video_encoder

BUILDERS = {
    "text": build_text_encoder,
    "image": build_image_encoder,
    "audio": build_audio_encoder,
    "video": build_video_encoder,
}


def build_encoder(modality: str, **kwargs):
    """Builds the default encoder of a modality: `build_encoder("audio")` is `build_audio_encoder()`.

    Raises:
        ValueError: for a modality other than `"text"`, `"image"`, `"audio"` or `"video"`.
    """
    if modality not in BUILDERS:
        raise ValueError(f"`modality` must be one of {tuple(BUILDERS)}. Received: modality={modality!r}")
    return BUILDERS[modality](**kwargs)


__all__ = [
    "BertTextEncoder",
    "BUILDERS",
    "build_audio_encoder",
    "build_bert_text_encoder",
    "build_encoder",
    "build_image_encoder",
    "build_pretrained_image_encoder",
    "build_text_encoder",
    "build_video_encoder",
]
