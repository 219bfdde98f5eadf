"""The HTTP inference service: FastAPI's TestClient for the validation rules, a real uvicorn server on
127.0.0.1 for a valid request and a burst of concurrent ones, and the web page in headless Chromium.

The model is an AV-MNIST-shaped fused classifier (image 28x28x1 + audio 8000 samples, 10 digits) trained for one
epoch on 32 random examples and exported once per session with `export_saved_model` and bundled examples.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import shutil
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest


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
def app(model_dir):
    from mmkeras.serving import create_app

    return create_app(model_dir, max_body_bytes=1_000_000, max_batch=8)


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def example(client):
    return client.get("/examples/0").json()


@pytest.fixture(scope="session")
def server(app):
    """uvicorn serving the app on 127.0.0.1, a free port, in a thread of this process."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", limit_concurrency=64)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert instance.started, "uvicorn did not start within 20 s"
    port = instance.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


def _post(url: str, body, timeout: float = 30):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + "/predict", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# ------------------------------------------------------------------------------------------ valid requests


def test_health_and_metadata(client):
    assert client.get("/health").json() == {"status": "ok", "model": "image_audio"}
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
    answer = client.post("/predict", content=b'{"inputs": {"image": [1, 2',
                         headers={"Content-Type": "application/json"})
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
    answer = client.post("/predict", content=json.dumps(_inputs(example, audio=[0.0] * 7999 + [float("nan")])),
                         headers={"Content-Type": "application/json"})
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
    answer = client.post("/predict", content=big, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "limit is 1000000 bytes" in answer.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(30):
            yield b" " * 50_000

    answer = client.post("/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "over the limit of 1000000 bytes" in answer.json()["detail"]


def test_keeps_serving_after_bad_requests(client, example):
    for body in (b"not json", b"{}", json.dumps(_inputs(example, image=None)).encode()):
        assert client.post("/predict", content=body).status_code in (400, 422)
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


def test_a_burst_of_concurrent_requests_is_all_answered(server, client):
    bodies = [client.get(f"/examples/{i % 4}").json() for i in range(4)]
    expected = [client.post("/predict", json={"inputs": b["inputs"]}).json()["label"] for b in bodies]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(_post, server, {"inputs": bodies[i % 4]["inputs"]}) for i in range(32)]
        results = [f.result(timeout=60) for f in futures]
    assert [status for status, _ in results] == [200] * 32
    assert [answer["label"] for _, answer in results] == [expected[i % 4] for i in range(32)]


# ------------------------------------------------------------------------------------------ the web page


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def _page(url):
    """A headless Chromium page opened at `url`, closed afterwards; skips when no Chromium is installed."""
    from playwright import sync_api as playwright  # a test dependency: missing it fails, it does not skip

    executable = _chromium()
    if executable is None:
        pytest.skip("No Chromium installed: `apt-get install -y chromium` (Debian) runs this browser test")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url)
            yield page
        finally:
            browser.close()


def test_web_page_shows_a_prediction_in_headless_chromium(server, client):
    expected = client.post("/predict", json={"inputs": client.get("/examples/2").json()["inputs"]}).json()
    with _page(server + "/") as page:
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
    with _page(server + "/") as page:
        page.wait_for_selector("#file-image", state="attached")
        page.set_input_files("#file-image", str(picture))
        page.wait_for_function("document.querySelector('#input-status').textContent.includes('digit.png')")
        page.set_input_files("#file-audio", str(sound))
        page.wait_for_function("document.querySelector('#input-status').textContent.includes('digit.wav')")
        page.click("#predict")
        page.wait_for_function("document.querySelector('#prediction').textContent.startsWith('Prediction')")
        assert page.text_content("#error") == ""
        assert page.locator("#bars .bar-row").count() == 10


def test_cli_serve_refuses_a_folder_that_is_not_a_model(tmp_path, capsys):
    from mmkeras.cli import main

    assert main(["serve", str(tmp_path)]) == 2
    assert "mmkeras serve: error:" in capsys.readouterr().err
