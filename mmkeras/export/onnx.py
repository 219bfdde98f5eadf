"""ONNX export with tf2onnx: a numeric model, inputs under their names, a dynamic batch axis, outputs named after
the heads. The mel spectrogram's DFT is traced as matrix products (`mmkeras.export.spectrogram`), since tf2onnx
converts `RFFT` only in narrow cases; the GRU loop keeps a dynamic batch.
"""

from __future__ import annotations

import pathlib

from mmkeras._validation import check_int
from mmkeras.export.graph import as_output_dict, head_names, input_specs, tensor_specs


def export_onnx(model, path, opset: int = 17) -> pathlib.Path:
    """Converts a numeric model to ONNX with tf2onnx; inputs keep their names, the batch axis stays dynamic.

    The outputs are named after the heads (`digit`, `label`, ...). Opset 17 is the first with a `DFT`
    operator.

    Args:
        model: keras.Model with named numeric inputs (split a string model first).
        path: str or Path. The `.onnx` file to write.
        opset: int. ONNX opset. Defaults to `17`.

    Returns:
        The path written.
    """
    import tensorflow as tf
    import tf2onnx

    from mmkeras.export.spectrogram import with_portable_spectrograms  # imports Keras: only when converting

    opset = check_int("opset", opset, minimum=13)
    specs = input_specs(model)
    strings = [name for name, (_, dtype) in specs.items() if dtype == "string"]
    if strings:
        raise ValueError(f"ONNX has no TensorFlow string ops: convert `split_preprocessing(model).core` instead. "
                         f"Received string inputs: {strings}")
    names = list(specs)
    signature = tensor_specs(specs)
    heads = head_names(model)
    portable = with_portable_spectrograms(model, dft_as_matmul=True)

    @tf.function
    def serve(*tensors):
        outputs = as_output_dict(portable(dict(zip(names, tensors)), training=False), heads)
        return {head: tf.identity(logits, name=head) for head, logits in outputs.items()}

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    proto, _ = tf2onnx.convert.from_function(serve, input_signature=[signature[n] for n in names], opset=opset)
    for output, head in zip(proto.graph.output, heads):  # keep the head names (tf2onnx numbers them)
        rename_output(proto, output.name, head)
    path.write_bytes(proto.SerializeToString())
    return path


def rename_output(proto, old: str, new: str) -> None:
    """Renames the graph output `old` of an ONNX `ModelProto` to `new`, in every node that reads or writes it."""
    if old == new:
        return
    for node in proto.graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
        node.input[:] = [new if name == old else name for name in node.input]
    for output in proto.graph.output:
        if output.name == old:
            output.name = new
