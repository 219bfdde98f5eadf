"""The FastAPI application: routes, the order of the checks on `POST /predict`, and what runs where.

The event loop only moves bytes. Decoding and validating a body (`decode_body`, `parse_inputs`) and calling the
model run in FastAPI's thread pool; `/health` is an `async def` that touches neither the pool nor the model, so
it answers while every worker thread is busy.

`POST /predict`, cheapest check first:

    415  Content-Type is not application/json        (a cross-site form or text/plain POST stops here)
    413  Content-Length over max_body_bytes           (before reading a byte)
    408  the body is not received within read_timeout (a stalled upload and what it sent are then dropped)
    413  the body grows over max_body_bytes while read (chunked bodies have no Content-Length)
    400  not JSON, nested too deeply, a 5,000-digit integer, or not {"inputs": {...}}   (worker thread)
    422  unknown, missing, misshapen or out-of-range inputs, captions that are not UTF-8  (worker thread)
    200  the answers                                                                  (worker thread)

415, 413 and 408 answers close the connection (`Connection: close`): the rest of the body is never read. A client
that disconnects mid-body is logged on one INFO line, without a traceback.
"""

# No `from __future__ import annotations` in this module: FastAPI reads `request: Request` at run time.
import asyncio
import html
import logging
import pathlib

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect

from mmkeras._validation import check_int, check_number
from mmkeras.serving.inputs import RequestError, decode_body, parse_inputs
from mmkeras.serving.predictor import ModelOutputError, Predictor

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
"""8 MiB: about 40 AV-MNIST examples as JSON numbers (one is ~0.2 MB)."""
DEFAULT_MAX_BATCH = 64
DEFAULT_READ_TIMEOUT = 30.0
"""Seconds a client has to send its request head, and again its body (TF Serving's REST deadline is 30 s)."""
PAGE_PATH = pathlib.Path(__file__).parent / "serve.html"
"""The web page at `/` (package data)."""

logger = logging.getLogger("uvicorn.error")  # uvicorn configures this logger: its lines land in the server log


def create_app(model, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, max_batch: int = DEFAULT_MAX_BATCH,
               read_timeout: float = DEFAULT_READ_TIMEOUT, allowed_hosts=None, docs: bool = False):
    """The FastAPI application serving one model directory (see `mmkeras.serving` for the routes).

    The model is loaded once, here; its `metadata.json` is checked against the SavedModel first (`Predictor`).
    `serve` and `mmkeras serve` build the app through `make_server_config`, which also sets `allowed_hosts`;
    without it (`None`, the default) the app answers any Host header, which suits `TestClient` and a server on
    127.0.0.1 in a notebook, not a socket other machines can reach.

    Args:
        model: str, Path or `Predictor`. A model directory from `mmkeras.export.export_saved_model`, or a
            `Predictor` already loaded from one (to share one loaded model between apps).
        max_body_bytes: int. Larger request bodies are refused with 413. Defaults to 8 MiB.
        max_batch: int. Most examples in one request. Defaults to `64`.
        read_timeout: float. Seconds allowed to receive a request body, else 408. Defaults to `30.0`.
        allowed_hosts: list of str or None. Host header values to answer (`"127.0.0.1"`, `"localhost"`,
            `"[::1]"`, `"*.example.org"`); any other gets 400 `Invalid host header`, which stops DNS-rebinding
            pages from reading `/examples` and `/predict`. Defaults to `None`: no check.
        docs: bool. Serve FastAPI's `/docs`, `/redoc` and `/openapi.json`. Defaults to `False`: those pages load
            Swagger UI, ReDoc and fonts from CDNs, which an offline course and a private service do not want.

    Returns:
        A `fastapi.FastAPI`; run it with `make_server_config` (what `serve` does) or test it with
        `fastapi.testclient.TestClient`.
    """
    max_body_bytes, max_batch = check_int("max_body_bytes", max_body_bytes), check_int("max_batch", max_batch)
    read_timeout = check_number("read_timeout", read_timeout, low=0, low_inclusive=False)
    predictor = model if isinstance(model, Predictor) else Predictor(model)
    metadata, page_html = predictor.metadata, PAGE_PATH.read_text(encoding="utf-8")
    input_names = sorted(metadata["inputs"])
    routes = {"docs_url": "/docs", "redoc_url": "/redoc", "openapi_url": "/openapi.json"} if docs else \
        {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title=f"mmkeras: {html.escape(metadata['model_name'])}",  # the /docs <title> is not escaped
                  description="Multimodal classifier exported by mmkeras.export", **routes)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts), www_redirect=False)
    app.state.predictor = predictor

    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health():
        return {"status": "ok", "model": metadata["model_name"]}

    @app.get("/metadata")
    async def get_metadata():
        return metadata

    @app.get("/examples")
    async def examples():
        return [{"index": i, "label": predictor.example_label(i)} for i in range(predictor.num_examples)]

    @app.get("/examples/{index}")
    def example(index: int):  # a thread: 8,000 samples to a list
        if not 0 <= index < predictor.num_examples:
            raise HTTPException(404, f"Example index must be in [0, {predictor.num_examples}). Received: {index}")
        return predictor.example(index)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return page_html

    def decode_and_parse(body: bytes):
        return parse_inputs(decode_body(body, input_names), metadata, max_batch)

    async def read_body(request: Request) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():  # also bounds bodies sent without Content-Length (chunked)
            size += len(chunk)
            if size > max_body_bytes:
                raise HTTPException(413, f"The body is over the limit of {max_body_bytes} bytes (max_body_bytes). "
                                         f"Send fewer examples per request.", headers={"Connection": "close"})
            chunks.append(chunk)
        return b"".join(chunks)

    @app.post("/predict")
    async def predict(request: Request):
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise HTTPException(415, f"Send the body as JSON with the header Content-Type: application/json. "
                                     f"Received: Content-Type {media_type[:40]!r}", headers={"Connection": "close"})
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise HTTPException(413, f"The body is {int(declared)} bytes; the limit is {max_body_bytes} bytes "
                                     f"(max_body_bytes). Send fewer examples per request.",
                                headers={"Connection": "close"})
        try:
            body = await asyncio.wait_for(read_body(request), read_timeout)
        except (asyncio.TimeoutError, TimeoutError):
            raise HTTPException(408, f"The body was not received within {read_timeout:g} s (read_timeout).",
                                headers={"Connection": "close"}) from None
        except ClientDisconnect:
            logger.info("%s disconnected before sending its whole request body", _client(request))
            return Response(status_code=400)  # nobody is there to read it
        except asyncio.CancelledError:  # the server stops and its graceful-shutdown deadline has passed
            logger.info("%s: request cancelled while its body was read: the server is shutting down",
                        _client(request))
            return Response(status_code=503, headers={"Connection": "close"})
        try:
            arrays, is_batch = await run_in_threadpool(decode_and_parse, body)
            answers = await run_in_threadpool(predictor, arrays)
        except RequestError as error:
            raise HTTPException(error.status, str(error)) from None
        except ModelOutputError as error:
            logger.warning("%s", error)
            return JSONResponse({"detail": str(error)}, status_code=500)
        return {"predictions": answers} if is_batch else answers[0]

    return app


def _client(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else "a client"
