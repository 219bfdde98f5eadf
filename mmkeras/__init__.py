"""mmkeras: the helper package of a Keras 3 course on multimodal deep learning.

The course notebooks import from here; every reusable piece lives in one small module:

    mmkeras.config      is_smoke(), by_mode(), seed_everything()
    mmkeras.data        DataSchema / MultimodalData for any dataset, the embedded "moving toys", tf.data,
                        checksummed downloads
    mmkeras.encoders    one feature extractor per kind of modality (text, image, audio, video, vector)
    mmkeras.fusion      fusion layers, their contract and the FUSIONS registry (concat, product, tensor, gated,
                        attention, multimodal Transformer, ...)
    mmkeras.models      FusionClassifier: encoders + fusion + logits heads; build_fusion_classifier
    mmkeras.training    fit_classifier / evaluate_classifier / train_and_evaluate
    mmkeras.optimizers  the course's one optimizer recipe (Adam, cosine-decayed step size), count_batches
    mmkeras.saving      load_model(path): loads a saved model in any process (registers every mmkeras class)
    mmkeras.task        TaskModel, the base of the task models (compile defaults restored on loading)
    mmkeras.metrics     confusion matrix, precision, recall, F1
    mmkeras.evidence    how sure a comparison is: Wilson and bootstrap intervals, spreads over seeds, rankings
    mmkeras.viz         the plots the notebooks show
    mmkeras.testing     the checks every layer and model must pass
    mmkeras.losses      multi-task losses: learned uncertainty weighting, the full binary cross-entropy
    mmkeras.ensemble    decision-level fusion and ensembles: averaging, voting, learned weights
    mmkeras.missing     modality dropout and the accuracy with a modality removed
    mmkeras.generative  GANs: DCGAN, a text-conditioned GAN, sample grids, conditional accuracy, Fréchet distance
    mmkeras.contrastive CLIP-style dual encoder (CLIPModel), clip_loss, retrieval recall@k, zero-shot by captions
    mmkeras.matching    image-text matching with cross-modal attention and hard negatives
    mmkeras.captioning  a caption model (image -> Transformer decoder), greedy decoding, BLEU
    mmkeras.export      SavedModel / TFLite (float32, float16, int8) / ONNX export, pruning, parity checks
    mmkeras.serving     the HTTP inference service behind `mmkeras serve MODEL_DIR` (FastAPI + uvicorn)
    mmkeras.pretrain    the course's own pretrained presets (MLM BERT, pretext CNN); freeze / unfreeze / fine-tune
    mmkeras.distribute  tf.distribute: one training under no strategy, MirroredStrategy and
                        MultiWorkerMirroredStrategy; keras.distribution on JAX

The command-line jobs behind `mmkeras quickstart`, `compare-fusions`, `bench-generative` and the notebook
tooling live in `mmkeras.apps`: they use the library, they are not part of it.

`import mmkeras` is light: TensorFlow, Keras, keras-hub and matplotlib are imported the first time a name
that needs them is used (`mmkeras.models`, `mmkeras.build_fusion_classifier`, ...), so `mmkeras --help` and
`mmkeras download --list` start at once and print nothing from TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time the names below are imported on first use
    from mmkeras import (  # noqa: F401
        captioning,
        config,
        contrastive,
        data,
        distribute,
        encoders,
        ensemble,
        evidence,
        export,
        fusion,
        generative,
        losses,
        matching,
        metrics,
        missing,
        models,
        optimizers,
        pretrain,
        saving,
        serving,
        task,
        testing,
        training,
        viz,
    )
    from mmkeras.config import by_mode, is_smoke, seed_everything  # noqa: F401
    from mmkeras.contrastive import CLIPModel  # noqa: F401
    from mmkeras.data import (  # noqa: F401
        DataSchema,
        LabelSpec,
        ModalitySpec,
        MultimodalData,
        load_scene_splits,
        load_splits,
        make_scenes,
        make_synthetic,
        to_dataset,
    )
    from mmkeras.fusion import ConcatenationFusion  # noqa: F401
    from mmkeras.models import FusionClassifier, build_fusion_classifier  # noqa: F401
    from mmkeras.saving import load_model  # noqa: F401
    from mmkeras.training import (  # noqa: F401
        evaluate_classifier,
        fit_classifier,
        predict_classes,
        predict_proba,
        train_and_evaluate,
    )

__version__ = "0.2.0"

_SUBMODULES = ("captioning", "config", "contrastive", "data", "distribute", "encoders", "ensemble", "evidence",
               "export", "fusion", "generative", "losses", "matching", "metrics", "missing", "models", "optimizers",
               "pretrain", "saving", "serving", "task", "testing", "training", "viz")
_NAMES = {
    "is_smoke": "config",
    "by_mode": "config",
    "seed_everything": "config",
    "DataSchema": "data",
    "LabelSpec": "data",
    "ModalitySpec": "data",
    "MultimodalData": "data",
    "load_scene_splits": "data",
    "load_splits": "data",
    "make_scenes": "data",
    "make_synthetic": "data",
    "to_dataset": "data",
    "CLIPModel": "contrastive",
    "ConcatenationFusion": "fusion",
    "FusionClassifier": "models",
    "load_model": "saving",
    "build_fusion_classifier": "models",
    "evaluate_classifier": "training",
    "fit_classifier": "training",
    "predict_classes": "training",
    "predict_proba": "training",
    "train_and_evaluate": "training",
}

__all__ = sorted(_SUBMODULES + tuple(_NAMES))


def __getattr__(name):
    """Imports a submodule, or the module that defines a top-level name, on first use (PEP 562)."""
    if name in _SUBMODULES:
        module = importlib.import_module(f"mmkeras.{name}")
    elif name in _NAMES:
        module = getattr(importlib.import_module(f"mmkeras.{_NAMES[name]}"), name)
    else:
        raise AttributeError(f"module 'mmkeras' has no attribute {name!r}")
    globals()[name] = module
    return module


def __dir__():
    return __all__ + ["__version__"]
