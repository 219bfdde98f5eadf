"""The HTTP inference service: FastAPI's TestClient for the validation rules, real uvicorn servers on 127.0.0.1
for what only a socket shows (Host headers, stalled clients, the connection cap, shutdown), and the web page in
headless Chromium.

Every server here is built by `make_server_config`, the function `serve()` and `mmkeras serve` run, with its
defaults except where a test says why (a short `read_timeout` so that deadlines expire within the test).
`test_serve_and_the_cli_run_make_server_config` checks that `serve()` and the CLI get those defaults.

The model is an AV-MNIST-shaped fused classifier (image 28x28x1 + audio 8000 samples, 10 digits) trained for one
epoch on 32 random examples, exported once per session with `export_saved_model` and bundled examples, and loaded
once (`Predictor`) for every app and server of the module.

Section names give the finding of review 05 (S1 to S14) that the tests below them cover.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import http.client
import json
import logging
import pathlib
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from live_server import browser_page, running

ROOT = pathlib.Path(__file__).resolve().parents[1]
READ_TIMEOUT = 1.5
"""The test server's `read_timeout` (30 s in `serve()`): stalled heads and bodies expire within the test."""


@pytest.fixture(autouse=True)
def _seed():
    """Replaces conftest's `_seed` here: no test of this module builds a Keras model (`model_dir` trains the one
    model, seeded, once), and its `keras.backend.clear_session()` runs a full `gc.collect()` after every test,
    0.6 to 0.9 s each once TensorFlow and a model are loaded."""
    yield


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    import keras

    from mmkeras.data import MultimodalData
    from mmkeras.data.avmnist import AVMNIST_SCHEMA
    from mmkeras.export import export_saved_model
    from mmkeras.models import build_fusion_classifier
    from mmkeras.training import fit_classifier

    rng = np.random.default_rng(0)
    data = MultimodalData({"image": rng.uniform(size=(32, 28, 28, 1)).astype("float32"),
                           "audio": rng.normal(scale=0.3, size=(32, 8000)).astype("float32")},
                          {"digit": rng.integers(0, 10, 32)}, schema=AVMNIST_SCHEMA)
    keras.utils.set_random_seed(0)
    model = build_fusion_classifier(data)
    fit_classifier(model, data, epochs=1, batch_size=16)
    return export_saved_model(model, tmp_path_factory.mktemp("served") / "model", schema=AVMNIST_SCHEMA,
                              examples=data, num_examples=4)


@pytest.fixture(scope="session")
def predictor(model_dir):
    from mmkeras.serving import Predictor

    return Predictor(model_dir)


def _settings(**changes) -> dict:
    """The test server's settings: `serve()`'s defaults, a 1 MB body limit, batches of 8, a short read_timeout."""
    return {"port": 0, "max_body_bytes": 1_000_000, "max_batch": 8, "read_timeout": READ_TIMEOUT,
            "log_level": "warning"} | changes


@pytest.fixture(scope="session")
def served(predictor):
    """`(config, url)`: the app of `make_server_config(...)` served by uvicorn on 127.0.0.1, a free port."""
    from mmkeras.serving import make_server_config

    config = make_server_config(predictor, **_settings())
    with running(config) as (_, url, _):
        yield config, url


@pytest.fixture(scope="session")
def server(served):
    return served[1]


@pytest.fixture(scope="session")
def client(served):
    """TestClient on the served app (the same object), sending `Host: 127.0.0.1` like a local browser."""
    from fastapi.testclient import TestClient

    with TestClient(served[0].app, base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture(scope="session")
def example(client):
    return client.get("/examples/0").json()


def _post(url: str, body, timeout: float = 30, content_type: str = "application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + "/predict", data=data, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text.startswith(b"{") else text.decode()


def _json_post(client, body: bytes):
    return client.post("/predict", content=body, headers={"Content-Type": "application/json"})


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """What the server sent on `sock` until it closed the connection (True) or `timeout` passed (False)."""
    received, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk
    return received, False


def _closed_within(socks: list, timeout: float) -> list[bool]:
    """For each socket, whether the server closed it within `timeout` seconds (all are watched at once)."""
    deadline, closed = time.monotonic() + timeout, [False] * len(socks)
    while time.monotonic() < deadline:
        readable, _, _ = select.select([s for s, c in zip(socks, closed) if not c], [], [],
                                       max(deadline - time.monotonic(), 0))
        for sock in readable:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            closed[socks.index(sock)] = closed[socks.index(sock)] or not chunk
    return closed


def _stalled_post(url: str) -> socket.socket:
    """A connection that sends the head of a 100-byte POST /predict, then one byte of its body, then nothing."""
    sock = _connect(url)
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{")
    return sock


@contextlib.contextmanager
def _server_log():
    """The records of uvicorn's "uvicorn.error" logger (where the service logs) at INFO and above."""
    records, logger = [], logging.getLogger("uvicorn.error")

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler, level = Collect(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _wait_until_healthy(url: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------ valid requests


def test_health_and_metadata(client):
    assert client.get("/health").json() == {"status": "ok", "model": "image_audio"}
    assert client.head("/health").status_code == 200
    metadata = client.get("/metadata").json()
    assert metadata["inputs"]["audio"] == {"shape": [8000], "dtype": "float32", "kind": "audio", "sample_rate": 8000}
    assert metadata["label"] == "digit" and len(metadata["class_names"]) == 10


def test_examples_are_ready_request_bodies(client, example):
    listing = client.get("/examples").json()
    assert [e["index"] for e in listing] == [0, 1, 2, 3] and all(e["label"] in "0123456789" for e in listing)
    assert np.array(example["inputs"]["image"]).shape == (28, 28, 1)
    assert np.array(example["inputs"]["audio"]).shape == (8000,)
    missing = client.get("/examples/4")
    assert missing.status_code == 404 and "[0, 4)" in missing.json()["detail"]


def test_one_example_gives_a_label_and_probabilities(client, example, model_dir):
    from mmkeras.export import SavedModelRunner

    answer = client.post("/predict", json={"inputs": example["inputs"]})
    assert answer.status_code == 200, answer.text
    answer = answer.json()
    probabilities = answer["probabilities"]
    assert list(probabilities) == [str(d) for d in range(10)]
    assert abs(sum(probabilities.values()) - 1) < 1e-4
    assert answer["label"] == max(probabilities, key=probabilities.get) == str(answer["class_id"])
    logits = SavedModelRunner(model_dir)({k: np.array(v)[None] for k, v in example["inputs"].items()})["digit"][0]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose([probabilities[str(d)] for d in range(10)], expected, atol=1e-5)


def test_a_batch_gives_one_answer_per_example(client, example):
    single = client.post("/predict", json={"inputs": example["inputs"]}).json()
    batch = {name: [value, value, value] for name, value in example["inputs"].items()}
    answer = client.post("/predict", json={"inputs": batch})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert len(predictions) == 3 and all(p["label"] == single["label"] for p in predictions)


def test_an_example_is_answered_the_same_whatever_else_is_in_its_batch(client):
    """Review 05, S6: a loud clip in the batch used to change the other examples' answers (the audio's dB
    floor was taken over the batch); now each example's features are its own."""
    examples = [client.get(f"/examples/{i}").json()["inputs"] for i in range(3)]
    alone = [client.post("/predict", json={"inputs": e}).json()["probabilities"] for e in examples]
    loud = dict(examples[0], audio=(1000 * np.asarray(examples[0]["audio"])).tolist())
    batch = {name: [e[name] for e in [*examples, loud]] for name in examples[0]}
    answer = client.post("/predict", json={"inputs": batch})
    assert answer.status_code == 200, answer.text
    for single, together in zip(alone, answer.json()["predictions"][:3]):
        np.testing.assert_allclose([together["probabilities"][k] for k in single], list(single.values()), atol=1e-5)


# ------------------------------------------------------------------------------------------ bad requests


def _inputs(example, **changes):
    inputs = dict(example["inputs"])
    for name, value in changes.items():
        if value is None:
            inputs.pop(name)
        else:
            inputs[name] = value
    return {"inputs": inputs}


def test_malformed_json_is_a_400(client):
    answer = _json_post(client, b'{"inputs": {"image": [1, 2')
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["detail"] and "['audio', 'image']" in answer.json()["detail"]


def test_a_body_without_inputs_is_a_400(client):
    answer = client.post("/predict", json=[1, 2, 3])
    assert answer.status_code == 400 and 'JSON object {"inputs"' in answer.json()["detail"]


def test_missing_modality_is_named(client, example):
    answer = client.post("/predict", json=_inputs(example, audio=None))
    assert answer.status_code == 422
    assert answer.json()["detail"] == ("Missing input(s) ['audio']: this model takes exactly ['audio', 'image']. "
                                       "Received: ['image']")


def test_unknown_modality_is_named(client, example):
    answer = client.post("/predict", json=_inputs(example, text="a red toy"))
    assert answer.status_code == 422 and "Unknown input(s) ['text']" in answer.json()["detail"]


def test_wrong_shape_says_what_was_expected(client, example):
    answer = client.post("/predict", json=_inputs(example, image=np.zeros((28, 28)).tolist()))
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "'image' has the wrong shape: expected one example of shape [28, 28, 1]" in detail
    assert "Received: a nested list of shape [28, 28]" in detail


def test_wrong_dtype_is_refused(client, example):
    for bad in (["x"] * 8000, [True] * 8000, [None] * 8000, "a caption"):
        answer = client.post("/predict", json=_inputs(example, audio=bad))
        assert answer.status_code == 422, bad[:1]
        assert "'audio'" in answer.json()["detail"]
    answer = _json_post(client, json.dumps(_inputs(example, audio=[0.0] * 7999 + [float("nan")])).encode())
    assert answer.status_code == 422 and "finite numbers" in answer.json()["detail"]


def test_batches_of_different_sizes_are_refused(client, example):
    body = {"inputs": {"image": [example["inputs"]["image"]] * 2, "audio": [example["inputs"]["audio"]] * 3}}
    answer = client.post("/predict", json=body)
    assert answer.status_code == 422 and "batch of the same size" in answer.json()["detail"]
    too_many = {"image": np.zeros((9, 28, 28, 1)).tolist(), "audio": np.zeros((9, 8000)).tolist()}  # < 1 MB
    answer = client.post("/predict", json={"inputs": too_many})
    assert answer.status_code == 422 and "1 to 8 examples. Received: 9" in answer.json()["detail"]


def test_oversized_body_is_a_413(client):
    big = b'{"inputs": {"audio": [' + b"0.0, " * 300_000 + b"0.0]}}"  # 1.5 MB > the 1 MB limit
    answer = _json_post(client, big)
    assert answer.status_code == 413 and "limit is 1000000 bytes" in answer.json()["detail"]
    assert answer.headers["connection"] == "close"  # the rest of the body is never read

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(30):
            yield b" " * 50_000

    answer = client.post("/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "over the limit of 1000000 bytes" in answer.json()["detail"]


def test_keeps_serving_after_bad_requests(client, example):
    for body in (b"not json", b"{}", json.dumps(_inputs(example, image=None)).encode()):
        assert _json_post(client, body).status_code in (400, 422)
    assert client.get("/health").status_code == 200
    assert client.post("/predict", json={"inputs": example["inputs"]}).status_code == 200


def test_captions_are_strings_one_or_a_batch():
    from mmkeras.serving import RequestError, parse_inputs

    metadata = {"inputs": {"text": {"shape": [], "dtype": "string"}, "x": {"shape": [2], "dtype": "float32"}}}
    arrays, is_batch = parse_inputs({"inputs": {"text": "a red toy", "x": [0, 1]}}, metadata)
    assert not is_batch and arrays["text"].tolist() == ["a red toy"] and arrays["x"].dtype == np.float32
    arrays, is_batch = parse_inputs({"inputs": {"text": ["a", "b"], "x": [[0, 1], [2, 3]]}}, metadata)
    assert is_batch and arrays["text"].shape == (2,) and arrays["x"].shape == (2, 2)
    with pytest.raises(RequestError, match=r"'text' must be a string \(one caption\) or a list of 1 to 64 strings"):
        parse_inputs({"inputs": {"text": 3, "x": [0, 1]}}, metadata)


# ------------------------------------------------------------------------------------------ S5: 400/422, never 500


def _image_with(example, pixel_json: str) -> bytes:
    """The example as a request body whose first pixel is the JSON number `pixel_json`, written verbatim."""
    body = json.dumps({"inputs": example["inputs"]})
    first = json.dumps(example["inputs"]["image"][0][0][0])
    head, tail = body.split('"image": [[[', 1)
    assert tail.startswith(first)
    return (head + '"image": [[[' + pixel_json + tail[len(first):]).encode()


def test_bodies_json_cannot_read_are_a_400(client, example):
    """Review 05 S5: these gave 500 (RecursionError, and ValueError for over 4,300 digits)."""
    bodies = {"nested arrays": b"[" * 2000 + b"]" * 2000,
              "nested inside an input": b'{"inputs": {"image": ' + b"[" * 2000 + b"]" * 2000 + b"}}",
              "nested objects": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
              "a 5,001-digit integer": b'{"inputs": {"image": ' + b"1" * 5001 + b"}}",
              "not UTF-8": b'{"inputs": "\xff\xfe\xfa"}'}
    for what, body in bodies.items():
        answer = _json_post(client, body)
        assert answer.status_code == 400, what
        assert answer.json()["detail"].startswith("The body is not valid JSON"), what
    assert "nested too deeply" in _json_post(client, bodies["nested arrays"]).json()["detail"]


def test_numbers_beyond_float64_and_lone_surrogates_are_a_422(client, example):
    """Review 05 S5: an integer beyond float64 gave 500 (OverflowError); a lone surrogate crashed the model call."""
    answer = _json_post(client, _image_with(example, "1" + "0" * 400))
    assert answer.status_code == 422 and "integer too large" in answer.json()["detail"]
    surrogate_key = _json_post(client, json.dumps(_inputs(example, **{"\ud800": 1})).encode())  # ensure_ascii
    assert surrogate_key.status_code == 422 and "Unknown input(s) ['\\ud800']" in surrogate_key.json()["detail"]


def test_captions_must_be_valid_utf8():
    """Review 05 S5: `"\\ud800"` is valid JSON but not UTF-8; the SavedModel call raised (500) on the toys model."""
    from mmkeras.serving import RequestError, decode_body, parse_inputs

    metadata = {"inputs": {"text": {"shape": [], "dtype": "string"}}}
    body = decode_body(b'{"inputs": {"text": ["a red toy", "a blue \\ud800 ball"]}}', ["text"])
    with pytest.raises(RequestError, match=r"'text' must be valid UTF-8 text. Received: 'a blue \\ud800 ball'") as e:
        parse_inputs(body, metadata)
    assert e.value.status == 422


# ------------------------------------------------------------------------------------------ S10: the model dtype


def test_numbers_that_overflow_the_model_dtype_are_a_422(client, example):
    """Review 05 S10: 1e39 is finite in float64 and inf in float32; it was served (200) as an infinite pixel."""
    for pixel in ("1e39", "-1e39", "1e308", str(2**130)):
        answer = _json_post(client, _image_with(example, pixel))
        assert answer.status_code == 422, pixel
        assert "finite numbers within the range of float32" in answer.json()["detail"]
    assert _json_post(client, _image_with(example, "3.4e38")).status_code == 200  # the largest float32 is 3.40e38


def test_integer_inputs_refuse_fractions_and_out_of_range_values():
    from mmkeras.serving import RequestError, parse_inputs

    metadata = {"inputs": {"ids": {"shape": [2], "dtype": "int32"}}}
    arrays, _ = parse_inputs({"inputs": {"ids": [1, 2_000_000_000]}}, metadata)
    assert arrays["ids"].dtype == np.int32 and arrays["ids"].tolist() == [[1, 2_000_000_000]]
    for bad in ([1.5, 2], [2**31, 0], [-(2**31) - 1, 0]):
        with pytest.raises(RequestError, match=r"'ids' must hold whole numbers from -2147483648 to 2147483647"):
            parse_inputs({"inputs": {"ids": bad}}, metadata)


def test_non_finite_logits_are_a_clear_server_error(client, example, predictor, monkeypatch):
    """A model whose logits reach +-inf made softmax NaN, which JSON cannot hold: a bare 500 from Starlette."""
    real = predictor.runner
    monkeypatch.setattr(predictor, "runner", lambda arrays: {"digit": np.array([[np.inf] + [0.0] * 9])})
    answer = client.post("/predict", json={"inputs": example["inputs"]})
    assert answer.status_code == 500 and "NaN or infinite logits" in answer.json()["detail"]
    monkeypatch.setattr(predictor, "runner", real)
    assert client.post("/predict", json={"inputs": example["inputs"]}).status_code == 200


# ------------------------------------------------------------------------------------------ S11: bounded echoes


def test_error_messages_echo_a_bounded_part_of_the_input(client, example):
    """Review 05 S11: a 7 MB unknown key came back whole (7 MB), 400,000 keys as a 4 MB message."""
    long_key = _json_post(client, json.dumps(_inputs(example, **{"X" * 300_000: 1})).encode())
    assert long_key.status_code == 422 and len(long_key.content) < 500
    assert f"Unknown input(s) ['{'X' * 40}'...]" in long_key.json()["detail"]
    many = json.dumps({"inputs": {f"key{i:05d}": 0 for i in range(20_000)}}).encode()
    answer = _json_post(client, many)
    assert answer.status_code == 422 and len(answer.content) < 500
    assert "['key00000', 'key00001', 'key00002', 'key00003', 'key00004'] ... (19995 more)" in answer.json()["detail"]
    not_inputs = _json_post(client, json.dumps({f"top{i}": 0 for i in range(1000)}).encode())
    assert not_inputs.status_code == 400 and "(995 more)" in not_inputs.json()["detail"]
    assert len(not_inputs.content) < 500


# ------------------------------------------------------------------------------------------ S2: off the event loop


def test_health_answers_while_a_body_is_being_parsed(server, example, monkeypatch):
    """Review 05 S2: `/predict` parsed JSON on the event loop, so one slow body froze `/health` (up to 18 s).

    Here the parsing of one request is held until `/health` has answered over the same server: it can only
    answer if parsing runs off the loop.
    """
    from mmkeras.serving import app as app_module

    entered, release, real_parse = threading.Event(), threading.Event(), app_module.parse_inputs

    def held_parse(*args, **kwargs):
        entered.set()
        release.wait(timeout=20)
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(app_module, "parse_inputs", held_parse)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_post, server, {"inputs": example["inputs"]})
        assert entered.wait(timeout=10), "the request never reached parse_inputs"
        try:
            start = time.monotonic()
            with urllib.request.urlopen(server + "/health", timeout=10) as health:
                assert health.status == 200
            waited = time.monotonic() - start
        finally:
            release.set()
        status, answer = pending.result(timeout=30)
    assert status == 200 and answer["label"] in "0123456789"
    assert waited < 5, f"/health waited {waited:.1f} s behind a request being parsed"


# ------------------------------------------------------------------------------------------ S3: deadlines


def test_a_stalled_body_gets_a_408_and_is_closed(server):
    """Review 05 S3: an upload that stalls held its connection (and up to max_body_bytes of memory) for ever."""
    with _stalled_post(server) as sock:
        received, closed = _read_until_closed(sock, READ_TIMEOUT + 8)
    assert received.startswith(b"HTTP/1.1 408 "), received[:100]
    assert b"not received within 1.5 s (read_timeout)" in received and closed


def test_stalled_request_heads_and_silent_connections_are_closed(server):
    """Review 05 S3 (slowloris): uvicorn has no deadline for request heads; 1,000 such connections stayed open."""
    silent, partial, second = _connect(server), _connect(server), _connect(server)
    partial.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # a head never finished
    second.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # one request, then half of another
    answer = second.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ")
    second.sendall(b"GET /health HTTP/1.1\r\n")
    start = time.monotonic()
    try:
        results = [_read_until_closed(sock, READ_TIMEOUT + 8) for sock in (silent, partial, second)]
    finally:
        for sock in (silent, partial, second):
            sock.close()
    assert [closed for _, closed in results] == [True, True, True]
    assert time.monotonic() - start < READ_TIMEOUT + 5


# ------------------------------------------------------------------------------------------ S4: load shedding


def test_over_the_concurrency_limit_new_requests_get_503_and_connections_are_capped(predictor, example):
    """Review 05 S4/S3: 1,000 clients were all queued (22 s); idle connections used up the file descriptors.

    With `limit_concurrency=4`, a request arriving while 4 connections are open gets 503; beyond
    `connection_cap(4)` = 16 open connections a new one is closed at once. Afterwards the server serves normally.
    """
    from mmkeras.serving import connection_cap, make_server_config

    config = make_server_config(predictor, **_settings(limit_concurrency=4, read_timeout=30))
    cap = connection_cap(4)
    assert cap == config.http.max_connections == 16
    with running(config) as (_, url, _):
        idle = [_connect(url) for _ in range(4)]
        try:
            time.sleep(0.2)  # the server registers them
            status, text = _post(url, {"inputs": example["inputs"]})
            assert status == 503 and text == "Service Unavailable"
            time.sleep(0.2)  # the server closes that connection (Connection: close)
            idle += [_connect(url) for _ in range(cap - 4 + 2)]  # the last 2 are over the cap
            assert _closed_within(idle, 0.5) == [False] * cap + [True] * 2
        finally:
            for sock in idle:
                sock.close()
        _wait_until_healthy(url)
        assert _post(url, {"inputs": example["inputs"]})[0] == 200


def test_a_burst_of_concurrent_requests_is_all_answered(server, client):
    """16 clients at once, under `serve()`'s default `limit_concurrency` (64): every answer is 200 and right."""
    bodies = [client.get(f"/examples/{i % 4}").json() for i in range(4)]
    expected = [client.post("/predict", json={"inputs": b["inputs"]}).json()["label"] for b in bodies]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(_post, server, {"inputs": bodies[i % 4]["inputs"]}) for i in range(32)]
        results = [f.result(timeout=60) for f in futures]
    assert [status for status, _ in results] == [200] * 32
    assert [answer["label"] for _, answer in results] == [expected[i % 4] for i in range(32)]


# ------------------------------------------------------------------------------------------ S9: shutdown, disconnects


def test_a_client_that_disconnects_mid_body_is_one_info_line(server, client):
    """Review 05 S9: every aborted upload logged `ERROR: Exception in ASGI application` and a 56-line traceback."""
    with _server_log() as records:
        sock = _stalled_post(server)
        time.sleep(0.3)  # the app is reading the body
        sock.close()
        deadline = time.monotonic() + 10
        while not any("disconnected" in r.getMessage() for r in records) and time.monotonic() < deadline:
            time.sleep(0.05)
    disconnects = [r for r in records if "disconnected before sending its whole request body" in r.getMessage()]
    assert len(disconnects) == 1 and disconnects[0].levelno == logging.INFO and disconnects[0].exc_info is None
    assert not [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
    assert client.get("/health").status_code == 200


def test_shutdown_is_bounded_while_a_client_stalls(predictor):
    """Review 05 S9: with one upload stalled, the server was still running 60 s after SIGTERM.

    `should_exit` is what uvicorn's SIGTERM handler sets. With `graceful_timeout=1` (10 s in `serve()`) and a
    30 s read deadline, the server exits after about 1 s, and the cancelled request logs no traceback.
    """
    from mmkeras.serving import make_server_config

    config = make_server_config(predictor, **_settings(read_timeout=30, graceful_timeout=1))
    with running(config) as (server, url, thread), _server_log() as records:
        sock = _stalled_post(url)
        time.sleep(0.3)  # the app is reading the body
        start = time.monotonic()
        server.should_exit = True
        thread.join(timeout=10)
        stopped_after = time.monotonic() - start
        sock.close()
    assert not thread.is_alive() and stopped_after < 5, f"the server took {stopped_after:.1f} s to stop"
    assert not [r for r in records if r.exc_info], [r.getMessage() for r in records if r.exc_info]


# ------------------------------------------------------------------------------------------ S8: Host, Content-Type


def _get_with_host(url: str, path: str, host: str) -> tuple[int, bytes]:
    address, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(address, int(port), timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_unknown_host_headers_are_refused(server):
    """Review 05 S8: `Host: attacker.example` was served, so a DNS-rebinding page could read /examples."""
    port = server.rsplit(":", 1)[1]
    for path in ("/examples/0", "/metadata", "/"):
        assert _get_with_host(server, path, f"attacker.example:{port}") == (400, b"Invalid host header")
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert _get_with_host(server, "/health", host)[0] == 200, host


def test_predict_takes_only_json_content(client, example):
    """Review 05 S8: text/plain and form posts, which any web page can send cross-site, got predictions (200)."""
    body = json.dumps({"inputs": example["inputs"]}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        answer = client.post("/predict", content=body, headers=headers)
        assert answer.status_code == 415 and answer.headers["connection"] == "close", content_type
        assert "Content-Type: application/json" in answer.json()["detail"]
    answer = client.post("/predict", content=body, headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert answer.status_code == 200


def test_trusted_hosts_and_the_exposure_warning():
    from mmkeras.serving import exposure_warning, is_loopback, trusted_hosts

    assert trusted_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert trusted_hosts("192.168.1.20", ["ml.example.org"])[-2:] == ["192.168.1.20", "ml.example.org"]
    assert trusted_hosts("::1") == ["127.0.0.1", "localhost", "[::1]"]
    assert socket.gethostname().lower() in trusted_hosts("0.0.0.0")
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert is_loopback(host) and exposure_warning(host) is None
    warning = exposure_warning("0.0.0.0")
    assert "not a loopback address" in warning and "serve only one you trust" in warning


# ------------------------------------------------------------------------------------------ S13: metadata, /docs


def _edited_copy(model_dir, tmp_path, **changes):
    copy_dir = tmp_path / "model"
    shutil.copytree(model_dir, copy_dir)
    metadata = json.loads((copy_dir / "metadata.json").read_text())
    for key, value in changes.items():
        if key in ("image_dtype",):
            metadata["inputs"]["image"]["dtype"] = value
        else:
            metadata[key] = value
    (copy_dir / "metadata.json").write_text(json.dumps(metadata))
    return copy_dir


@pytest.mark.parametrize(("changes", "message"), [
    ({"class_names": ["a", "b", "c"]}, "class_names has 3 names, but output 'digit' has 10 classes"),
    ({"label": "nope"}, "label 'nope' is not an output of the signature (outputs: ['digit'])"),
    ({"image_dtype": "int64"}, "inputs['image'].dtype is 'int64', but the signature takes 'float32'"),
    ({"image_dtype": "object"}, "inputs['image'].dtype must be one of"),
    ({"signature": "nope"}, "has no signature 'nope' (the \"signature\" of metadata.json). It has: "),
])
def test_metadata_is_checked_against_the_signature_at_start_up(model_dir, tmp_path, changes, message):
    """Review 05 S13: such edits started fine and then answered 500 (or 200 with 3 of 10 probabilities)."""
    from mmkeras.serving import Predictor

    with pytest.raises(ValueError) as error:
        Predictor(_edited_copy(model_dir, tmp_path, **changes))
    assert message in str(error.value)


def test_cli_refuses_metadata_that_does_not_match(model_dir, tmp_path, capsys, monkeypatch):
    import uvicorn

    from mmkeras.apps.cli import main

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: pytest.fail("the server started"))
    assert main(["serve", str(_edited_copy(model_dir, tmp_path, class_names=["a", "b", "c"]))]) == 2
    error = capsys.readouterr().err
    assert error.startswith("mmkeras serve: error: ") and error.count("\n") == 1
    assert "does not match the SavedModel's signature 'serving_default'" in error


def test_docs_are_off_by_default_and_escape_the_model_name(client, predictor):
    """Review 05 S13: /docs, /redoc and /openapi.json loaded CDN scripts, and put `model_name` unescaped in a title."""
    from fastapi.testclient import TestClient

    from mmkeras.serving import create_app

    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404, path
    hostile = copy.copy(predictor)
    hostile.metadata = dict(predictor.metadata, model_name="</title><script>alert(1)</script>")
    with TestClient(create_app(hostile, docs=True)) as docs_client:
        page = docs_client.get("/docs").text
    assert "<script>alert(1)</script>" not in page and "&lt;/title&gt;&lt;script&gt;" in page


# ------------------------------------------------------------------------------------------ S1, S14: CLI and docs


def test_a_model_directory_is_called_a_program_in_help_and_docs(capsys):
    """Review 05 S1: nothing said that serving a model directory runs its code."""
    import mmkeras.serving
    from mmkeras.apps.cli import main

    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert done.value.code == 0
    assert "TensorFlow models are programs" in help_text and "SECURITY.md" in help_text
    for flag in ("--max-batch", "--limit-concurrency", "--read-timeout", "--allowed-host", "--docs"):
        assert flag in help_text
    docstring = " ".join(mmkeras.serving.__doc__.split())
    assert "TensorFlow models are programs" in docstring and "tensorflow/blob/master/SECURITY.md" in docstring
    notebook = json.loads((ROOT / "notebooks" / "14_deployment.ipynb").read_text(encoding="utf-8"))
    markdown = " ".join(" ".join("".join(cell["source"]).split())
                        for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    assert "TensorFlow models are programs" in markdown and "SECURITY.md" in markdown


@pytest.mark.parametrize("argv", [
    ["--max-body-mb", "inf"], ["--max-body-mb", "1e400"], ["--max-body-mb", "1e-9"], ["--max-body-mb", "nan"],
    ["--max-body-mb", "0"], ["--max-body-mb", "2000"], ["--max-batch", "0"], ["--max-batch", "4097"],
    ["--max-batch", "1.5"], ["--limit-concurrency", "0"], ["--read-timeout", "0"], ["--read-timeout", "inf"],
    ["--port", "70000"], ["--allowed-host", "a*b"], ["--allowed-host", "évil"],
])
def test_bad_serve_flags_are_usage_errors(argv, tmp_path, capsys):
    """Review 05 S14: `--max-body-mb inf` or `1e-9` ended in a traceback after TensorFlow had started (exit 1)."""
    from mmkeras.apps.cli import main

    with pytest.raises(SystemExit) as error:
        main(["serve", str(tmp_path), *argv])
    assert error.value.code == 2
    assert f"mmkeras serve: error: argument {argv[0]}: expected" in capsys.readouterr().err


def test_bad_serve_flags_fail_before_tensorflow_is_imported(tmp_path):
    code = ("import sys\nfrom mmkeras.apps.cli import main\n"
            "try:\n    main(['serve', sys.argv[1], '--max-body-mb', 'inf'])\n"
            "except SystemExit as done:\n    print(done.code, 'tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert "argument --max-body-mb: expected a number of MiB" in result.stderr


def test_cli_flag_ranges_are_the_library_limits(tmp_path):
    from mmkeras.apps.cli import build_parser
    from mmkeras.serving import LIMITS

    parse = build_parser().parse_args
    args = parse(["serve", str(tmp_path), "--max-body-mb", str(LIMITS["max_body_bytes"][1] / 2**20),
                  "--max-batch", str(LIMITS["max_batch"][1]), "--limit-concurrency",
                  str(LIMITS["limit_concurrency"][1]), "--read-timeout", str(LIMITS["read_timeout"][1])])
    assert int(args.max_body_mb * 2**20) == LIMITS["max_body_bytes"][1]
    assert parse(["serve", str(tmp_path), "--max-body-mb", str(LIMITS["max_body_bytes"][0] / 2**20)]).max_body_mb
    for flag, too_big in (("--max-batch", LIMITS["max_batch"][1] + 1),
                          ("--limit-concurrency", LIMITS["limit_concurrency"][1] + 1)):
        with pytest.raises(SystemExit):
            parse(["serve", str(tmp_path), flag, str(too_big)])


def test_serve_and_the_cli_run_make_server_config(model_dir, predictor, served, monkeypatch, capsys):
    """`serve()` and `mmkeras serve` run `make_server_config` with its defaults: what the tests above serve."""
    import uvicorn

    from mmkeras.apps.cli import main
    from mmkeras.serving import DeadlineH11Protocol, connection_cap, serve

    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append(self.config))
    serve(predictor, port=0)
    assert main(["serve", str(model_dir), "--host", "0.0.0.0", "--port", "0", "--allowed-host", "ml.example.org",
                 "--read-timeout", "20"]) == 0
    warning = capsys.readouterr().err
    assert "mmkeras serve: warning: --host 0.0.0.0 is not a loopback address" in warning
    default, cli = started
    for config in (default, cli, served[0]):
        assert issubclass(config.http, DeadlineH11Protocol) and config.app.docs_url is None
        assert config.timeout_graceful_shutdown == 10 and config.limit_concurrency == 64
        assert config.http.max_connections == connection_cap(64) == min(256, _descriptors() // 2)
    assert default.http.head_timeout == 30 and cli.http.head_timeout == 20 and default.host == "127.0.0.1"
    hosts = [m.kwargs["allowed_hosts"] for m in cli.app.user_middleware]
    assert hosts and "ml.example.org" in hosts[0] and "[::1]" in hosts[0]


def _descriptors() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_cli_serve_refuses_a_folder_that_is_not_a_model(tmp_path, capsys):
    from mmkeras.apps.cli import main

    assert main(["serve", str(tmp_path)]) == 2
    assert "mmkeras serve: error:" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ over a real socket


def test_real_socket_valid_and_invalid_requests(server, example):
    status, answer = _post(server, {"inputs": example["inputs"]})
    assert status == 200 and set(answer) == {"label", "class_id", "probabilities"}
    status, error = _post(server, b"{broken")
    assert status == 400 and "not valid JSON" in error["detail"]
    status, error = _post(server, {"inputs": {"image": example["inputs"]["image"]}})
    assert status == 422 and "Missing input(s) ['audio']" in error["detail"]
    status, again = _post(server, {"inputs": example["inputs"]})
    assert status == 200 and again == answer  # still serving, and the same answer
    with urllib.request.urlopen(server + "/", timeout=10) as page:
        assert page.status == 200 and b'id="predict"' in page.read()


# ------------------------------------------------------------------------------------------ the web page


def test_web_page_shows_a_prediction_in_headless_chromium(server, client):
    expected = client.post("/predict", json={"inputs": client.get("/examples/2").json()["inputs"]}).json()
    with browser_page(server + "/") as page:
        page.wait_for_selector("#example-select option", state="attached")
        assert page.locator("#predict").is_disabled()
        page.select_option("#example-select", "2")
        page.click("#load-example")
        page.wait_for_selector("#predict:not([disabled])")
        page.click("#predict")
        page.wait_for_function("document.querySelector('#prediction').textContent.startsWith('Prediction')")
        assert page.text_content("#prediction") == f"Prediction: {expected['label']}"
        assert page.locator("#bars .bar-row").count() == 10
        assert page.locator("#bars .bar.top").count() == 1
        assert page.text_content("#error") == ""


def test_web_page_predicts_from_uploaded_picture_and_sound(server, tmp_path):
    """The page turns an uploaded PNG into the 28x28x1 image and a WAV into 8,000 samples at 8 kHz itself."""
    import wave

    import matplotlib.image

    picture = tmp_path / "digit.png"
    matplotlib.image.imsave(picture, np.eye(56), cmap="gray")  # a diagonal stroke, 56x56: the page resizes it
    sound = tmp_path / "digit.wav"
    with wave.open(str(sound), "wb") as out:  # 0.5 s of a 440 Hz tone at 16 kHz: the page resamples to 8 kHz
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes((8000 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)).astype("<i2").tobytes())
    with browser_page(server + "/") as page:
        page.wait_for_selector("#file-image", state="attached")
        page.set_input_files("#file-image", str(picture))
        page.wait_for_function("document.querySelector('#input-status').textContent.includes('digit.png')")
        page.set_input_files("#file-audio", str(sound))
        page.wait_for_function("document.querySelector('#input-status').textContent.includes('digit.wav')")
        page.click("#predict")
        page.wait_for_function("document.querySelector('#prediction').textContent.startsWith('Prediction')")
        assert page.text_content("#error") == ""
        assert page.locator("#bars .bar-row").count() == 10
