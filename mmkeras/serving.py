r"""An HTTP inference service (推理服务) for an exported model: FastAPI + uvicorn, started by
`mmkeras serve MODEL_DIR`.

It loads a *model directory* written by `mmkeras.export.export_saved_model` (a SavedModel plus
`metadata.json`, optionally `examples.npz`) and answers:

| method, path          | answer                                                                        |
|-----------------------|-------------------------------------------------------------------------------|
| `POST /predict`       | the prediction for one example or a batch (below)                             |
| `GET /`               | a web page to try it: pick a bundled example or upload a file, see the bars   |
| `GET /health`         | `{"status": "ok", "model": name}`                                             |
| `GET /metadata`       | the model's `metadata.json`: input names, shapes, dtypes, label, class names  |
| `GET /examples`       | the bundled examples: `[{"index": i, "label": class name}, ...]`             |
| `GET /examples/{i}`   | one of them as a ready request body `{"inputs": {...}}`, plus its `label`     |

**Request.** `{"inputs": {name: value, ...}}` with every input of the model and no other. A value is one
example, nested lists shaped like `metadata["inputs"][name]["shape"]` (AV-MNIST: `image` 28 x 28 x 1 numbers,
`audio` 8,000 numbers; a caption is a string), or a batch: a list of such examples, the same number for every
input (at most `max_batch`).

**Answer.** For one example `{"label": "7", "class_id": 7, "probabilities": {"0": 0.01, ..., "9": 0.93}}`,
where `probabilities = softmax(logits)` of the main head, `p_k = exp(z_k) / sum_j exp(z_j)`, and the label is the
most probable class; for a batch `{"predictions": [answer, ...]}`.

**Errors** (the service keeps serving after each): `400` the body is not JSON, or not an object with an
`"inputs"` object; `413` the body is over `max_body_bytes` (checked on `Content-Length` and while reading);
`422` an unknown or missing input, a wrong shape, a wrong type (a string for numbers, a number for a caption,
`NaN`), or batches of different sizes. The body is `{"detail": message}`; the message names the input, says what
was expected and quotes what was received.

Example:
>>> import numpy as np
>>> softmax_dict(np.array([0.0, 0.0]), ["a", "b"])
{'a': 0.5, 'b': 0.5}
"""

import json
import pathlib

import numpy as np

from mmkeras._validation import check_int

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
"""8 MiB: about 40 AV-MNIST examples as JSON numbers (one is ~0.2 MB)."""
DEFAULT_MAX_BATCH = 64
STATIC_DIR = pathlib.Path(__file__).parent / "static"


class RequestError(ValueError):
    """A client mistake: `status` is the HTTP status to answer with, the message says what was wrong."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def softmax_dict(logits, class_names) -> dict:
    """`{class name: softmax(logits)_k}`, rounded to 6 digits, for one example's logits `(k,)`."""
    z = np.asarray(logits, np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    return {str(name): round(float(v), 6) for name, v in zip(class_names, p)}


def _nested_shape(value, depth_limit: int = 8) -> tuple | None:
    """The shape of a nested list (None if it is ragged or too deep), without converting it."""
    shape, level = [], value
    while isinstance(level, list):
        if len(shape) > depth_limit:
            return None
        shape.append(len(level))
        if not level:
            break
        level = level[0]
    return tuple(shape)


def _describe(value) -> str:
    shape = _nested_shape(value)
    if isinstance(value, list):
        return f"a nested list of shape {list(shape)}" if shape is not None else "a deeply nested list"
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def parse_inputs(body, metadata: dict, max_batch: int = DEFAULT_MAX_BATCH) -> tuple[dict, bool]:
    """Checks a decoded request body against the model's inputs; returns `({name: batch array}, is_batch)`.

    Raises:
        RequestError: 400 for a body that is not `{"inputs": {...}}`, 422 for anything wrong with the inputs
            (see the module docstring).

    Example:
    >>> meta = {"inputs": {"x": {"shape": [2], "dtype": "float32"}}}
    >>> arrays, is_batch = parse_inputs({"inputs": {"x": [1, 2]}}, meta)
    >>> arrays["x"].shape, is_batch
    ((1, 2), False)
    >>> parse_inputs({"inputs": {"x": [1, 2, 3]}}, meta)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mmkeras.serving.RequestError: Input 'x' has the wrong shape: expected one example of shape [2] or a batch ...
    """
    specs = metadata["inputs"]
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), dict):
        got = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise RequestError(400, f'The body must be a JSON object {{"inputs": {{name: value}}}} with the inputs '
                                f"{sorted(specs)}. Received: {got}")
    inputs = body["inputs"]
    unknown, missing = sorted(set(inputs) - set(specs)), sorted(set(specs) - set(inputs))
    if unknown:
        raise RequestError(422, f"Unknown input(s) {unknown}: this model takes exactly {sorted(specs)}.")
    if missing:
        raise RequestError(422, f"Missing input(s) {missing}: this model takes exactly {sorted(specs)}. "
                                f"Received: {sorted(inputs)}")
    arrays, batch_flags = {}, {}
    for name, spec in specs.items():
        value, shape = inputs[name], list(spec["shape"])
        if spec["dtype"] == "string":
            arrays[name], batch_flags[name] = _parse_strings(name, value, max_batch)
            continue
        got = _nested_shape(value) if isinstance(value, list) else ()
        if got is None or (list(got) != shape and list(got[1:]) != shape):
            raise RequestError(422, f"Input {name!r} has the wrong shape: expected one example of shape {shape} "
                                    f"or a batch of shape [n, {', '.join(map(str, shape))}]. "
                                    f"Received: {_describe(value)}")
        try:
            array = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise RequestError(422, f"Input {name!r} must hold only numbers ({spec['dtype']}) in nested lists of "
                                    f"shape {shape}. Received: a ragged list or a non-number inside") from None
        if array.dtype == object or list(array.shape) not in (shape, [len(value), *shape] if got else shape):
            raise RequestError(422, f"Input {name!r} has the wrong shape: expected {shape} or [n, *{shape}]. "
                                    f"Received: a ragged list")
        if _contains_non_numbers(value):
            raise RequestError(422, f"Input {name!r} must hold numbers ({spec['dtype']}), not strings, booleans "
                                    f"or null. Received: {_describe(value)} with a non-number inside")
        if not np.all(np.isfinite(array)):
            raise RequestError(422, f"Input {name!r} must hold finite numbers. Received: NaN or infinity")
        is_batch = list(array.shape) != shape
        if is_batch and not 1 <= len(array) <= max_batch:
            raise RequestError(422, f"Input {name!r}: a batch holds 1 to {max_batch} examples. "
                                    f"Received: {len(array)}")
        arrays[name] = (array if is_batch else array[None]).astype(spec["dtype"])
        batch_flags[name] = is_batch
    sizes = {name: len(a) for name, a in arrays.items()}
    if len(set(batch_flags.values())) > 1 or len(set(sizes.values())) > 1:
        received = {n: (s if batch_flags[n] else "single") for n, s in sizes.items()}
        raise RequestError(422, f"Send one example of every input, or a batch of the same size for every input. "
                                f"Received batch sizes: {received}")
    return arrays, next(iter(batch_flags.values()))


def _contains_non_numbers(value) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            return True
    return False


def _parse_strings(name, value, max_batch):
    if isinstance(value, str):
        return np.array([value], dtype=object), False
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value) and len(value) <= max_batch:
        return np.array(value, dtype=object), True
    raise RequestError(422, f"Input {name!r} must be a string (one caption) or a list of 1 to {max_batch} strings. "
                            f"Received: {_describe(value)}")


class Predictor:
    """The model of a model directory, with its metadata and examples: `predictor(arrays) -> answers`.

    Args:
        model_dir: a directory written by `mmkeras.export.export_saved_model`.
    """

    def __init__(self, model_dir):
        from mmkeras.export import EXAMPLES_FILE, SavedModelRunner

        self.model_dir = pathlib.Path(model_dir)
        self.runner = SavedModelRunner(self.model_dir)
        self.metadata = self.runner.metadata
        self.examples = {}
        if (self.model_dir / EXAMPLES_FILE).is_file():
            with np.load(self.model_dir / EXAMPLES_FILE) as archive:
                self.examples = {key: archive[key] for key in archive.files}

    @property
    def num_examples(self) -> int:
        names = [n for n in self.metadata["inputs"] if n in self.examples]
        return len(self.examples[names[0]]) if names else 0

    def example(self, index: int) -> dict:
        """Bundled example `index` as a request body, plus its `label` (a class name) when known."""
        inputs = {name: self.examples[name][index].tolist() for name in self.metadata["inputs"]}
        answer = {"inputs": inputs}
        if "label" in self.examples:
            answer["label"] = self.metadata["class_names"][int(self.examples["label"][index])]
        return answer

    def __call__(self, arrays: dict) -> list[dict]:
        logits = self.runner(arrays)[self.metadata["label"]]  # (batch, num_classes)
        names = self.metadata["class_names"]
        return [{"label": names[int(z.argmax())], "class_id": int(z.argmax()), "probabilities": softmax_dict(z, names)}
                for z in logits]


def create_app(model_dir, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, max_batch: int = DEFAULT_MAX_BATCH):
    """The FastAPI application serving one model directory (see the module docstring for the routes).

    The model is loaded once, here. Predictions run in FastAPI's thread pool (TensorFlow releases the GIL
    while it computes), so a slow request does not block `/health`.

    Args:
        model_dir: str or Path. A model directory from `mmkeras.export.export_saved_model`.
        max_body_bytes: int. Larger request bodies are refused with 413. Defaults to 8 MiB.
        max_batch: int. Most examples in one request. Defaults to `64`.

    Returns:
        A `fastapi.FastAPI`; run it with uvicorn (`serve`) or test it with `fastapi.testclient.TestClient`.
    """
    # No `from __future__ import annotations` in this module: FastAPI reads `request: Request` at run time.
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import HTMLResponse

    max_body_bytes, max_batch = check_int("max_body_bytes", max_body_bytes), check_int("max_batch", max_batch)
    predictor = Predictor(model_dir)
    app = FastAPI(title=f"mmkeras: {predictor.metadata['model_name']}",
                  description="Multimodal classifier exported by mmkeras.export")
    app.state.predictor = predictor

    @app.get("/health")
    def health():
        return {"status": "ok", "model": predictor.metadata["model_name"]}

    @app.get("/metadata")
    def metadata():
        return predictor.metadata

    @app.get("/examples")
    def examples():
        labels = [predictor.example(i).get("label") for i in range(predictor.num_examples)]
        return [{"index": i, "label": label} for i, label in enumerate(labels)]

    @app.get("/examples/{index}")
    def example(index: int):
        if not 0 <= index < predictor.num_examples:
            raise HTTPException(404, f"Example index must be in [0, {predictor.num_examples}). Received: {index}")
        return predictor.example(index)

    @app.get("/", response_class=HTMLResponse)
    def page():
        return (STATIC_DIR / "serve.html").read_text(encoding="utf-8")

    @app.post("/predict")
    async def predict(request: Request):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise HTTPException(413, f"The body is {int(declared)} bytes; the limit is {max_body_bytes} bytes "
                                     f"(max_body_bytes). Send fewer examples per request.")
        chunks, size = [], 0
        async for chunk in request.stream():  # also bounds bodies sent without Content-Length (chunked)
            size += len(chunk)
            if size > max_body_bytes:
                raise HTTPException(413, f"The body is over the limit of {max_body_bytes} bytes (max_body_bytes). "
                                         f"Send fewer examples per request.")
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks), parse_constant=lambda c: float("nan"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HTTPException(400, f'The body is not valid JSON ({error}). Expected {{"inputs": {{name: value}}}} '
                                     f"with the inputs {sorted(predictor.metadata['inputs'])}.") from None
        try:
            arrays, is_batch = parse_inputs(body, predictor.metadata, max_batch)
        except RequestError as error:
            raise HTTPException(error.status, str(error)) from None
        answers = await run_in_threadpool(predictor, arrays)
        return {"predictions": answers} if is_batch else answers[0]

    return app


def serve(model_dir, host: str = "127.0.0.1", port: int = 8000, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
          log_level: str = "info") -> None:
    """Serves a model directory over HTTP with uvicorn until interrupted (Ctrl-C): `mmkeras serve MODEL_DIR`.

    Args:
        model_dir: str or Path. A model directory from `mmkeras.export.export_saved_model`.
        host: str. Interface to listen on. Defaults to `"127.0.0.1"` (this machine only); `"0.0.0.0"` listens
            on every interface.
        port: int. Defaults to `8000`; `0` picks a free port.
        max_body_bytes: int. Request body limit. Defaults to 8 MiB.
        log_level: str. uvicorn's log level. Defaults to `"info"`.
    """
    import uvicorn

    port = check_int("port", port, minimum=0)
    uvicorn.run(create_app(model_dir, max_body_bytes=max_body_bytes), host=host, port=port, log_level=log_level)

