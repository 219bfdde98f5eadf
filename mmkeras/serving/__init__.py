r"""An HTTP inference service (推理服务) for an exported model: FastAPI + uvicorn, started by
`mmkeras serve MODEL_DIR`.

It loads a *model directory* written by `mmkeras.export.export_saved_model` (a SavedModel plus
`metadata.json`, optionally `examples.npz`) and answers:

| method, path          | answer                                                                        |
|-----------------------|-------------------------------------------------------------------------------|
| `POST /predict`       | the prediction for one example or a batch (below)                             |
| `GET /`               | a web page to try it: pick a bundled example or upload a file, see the bars   |
| `GET /health`         | `{"status": "ok", "model": name}` (also `HEAD`); never waits behind `/predict` |
| `GET /metadata`       | the model's `metadata.json`: input names, shapes, dtypes, label, class names  |
| `GET /examples`       | the bundled examples: `[{"index": i, "label": class name}, ...]`             |
| `GET /examples/{i}`   | one of them as a ready request body `{"inputs": {...}}`, plus its `label`     |

FastAPI's `/docs`, `/redoc` and `/openapi.json` are off unless asked for (`docs=True`, `mmkeras serve --docs`):
they load Swagger UI, ReDoc and fonts from CDNs.

**A model directory is a program (模型即程序).** TensorFlow's security policy says it plainly: "TensorFlow models are
programs" (https://github.com/tensorflow/tensorflow/blob/master/SECURITY.md): while it runs a graph, TensorFlow "may
read and write files, send and receive data over the network, and even spawn additional processes", with the rights
of the process. Part of a SavedModel's graph runs as soon as it is loaded, before any request, and SavedModels have
no safe mode (Keras's `safe_mode` covers `.keras` files only). `mmkeras serve`, `create_app` and `SavedModelRunner`
therefore run whatever the directory contains. Serve only model directories you exported yourself or otherwise
trust, and run any other one in a sandbox (SECURITY.md suggests nsjail), or a container or VM without your files and
credentials. The service checks `metadata.json` against the SavedModel's signature at start-up, which catches a
stale or edited file, not a hostile graph.

**On a network.** `serve` (`mmkeras serve`) listens on 127.0.0.1 by default. On any other address (`--host 0.0.0.0`)
it warns: it has no authentication and no TLS, so put it behind a reverse proxy that has them. It answers only Host
headers it knows (127.0.0.1, localhost, [::1], the `--host` value, `--allowed-host` names: others get 400), which
stops DNS-rebinding pages, and only `Content-Type: application/json` bodies (415), which stops the cross-site form
and text posts a browser sends without asking. Its limits are in `mmkeras.serving.server`.

**Request.** `{"inputs": {name: value, ...}}` with every input of the model and no other. A value is one
example, nested lists shaped like `metadata["inputs"][name]["shape"]` (AV-MNIST: `image` 28 x 28 x 1 numbers,
`audio` 8,000 numbers; a caption is a string), or a batch: a list of such examples, the same number for every
input (at most `max_batch`).

**Answer.** For one example `{"label": "7", "class_id": 7, "probabilities": {"0": 0.01, ..., "9": 0.93}}`,
where `probabilities = softmax(logits)` of the main head, `p_k = exp(z_k) / sum_j exp(z_j)`, and the label is the
most probable class; for a batch `{"predictions": [answer, ...]}`.

**Errors** (the service keeps serving after each; the body is `{"detail": message}`, and the message names the
input, says what was expected and quotes at most 40 characters of what was received):

    400  the body is not JSON (including nesting deeper than ~1,000 levels and integers over 4,300 digits),
         or not an object with an "inputs" object
    408  the body was not received within read_timeout (30 s)
    413  the body is over max_body_bytes (checked on Content-Length and while reading)
    415  the Content-Type is not application/json
    422  an unknown or missing input, a wrong shape, a wrong type (a string for numbers, a number for a caption),
         a number that is NaN, infinite or out of the input dtype's range once cast (1e39 for float32), a
         caption that is not valid UTF-8, or batches of different sizes
    503  the server is at its concurrency limit (limit_concurrency): retry later

Example:
>>> import numpy as np
>>> softmax_dict(np.array([0.0, 0.0]), ["a", "b"])
{'a': 0.5, 'b': 0.5}
"""

from mmkeras.serving.app import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_READ_TIMEOUT,
    PAGE_PATH,
    create_app,
)
from mmkeras.serving.inputs import RequestError, decode_body, format_keys, parse_inputs
from mmkeras.serving.predictor import ModelOutputError, Predictor, check_metadata, read_signature, softmax_dict
from mmkeras.serving.server import (
    DEFAULT_GRACEFUL_TIMEOUT,
    DEFAULT_LIMIT_CONCURRENCY,
    LIMITS,
    DeadlineH11Protocol,
    connection_cap,
    exposure_warning,
    is_loopback,
    make_server_config,
    serve,
    trusted_hosts,
)

__all__ = ["DEFAULT_GRACEFUL_TIMEOUT", "DEFAULT_LIMIT_CONCURRENCY", "DEFAULT_MAX_BATCH", "DEFAULT_MAX_BODY_BYTES",
           "DEFAULT_READ_TIMEOUT", "LIMITS", "PAGE_PATH", "DeadlineH11Protocol", "ModelOutputError", "Predictor",
           "RequestError", "check_metadata", "connection_cap", "create_app", "decode_body", "exposure_warning",
           "format_keys", "is_loopback", "make_server_config", "parse_inputs", "read_signature", "serve",
           "softmax_dict", "trusted_hosts"]
