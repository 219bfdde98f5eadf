"""A newcomer's own data, end to end (issue 14, "Done when"): a `(600, 128, 4)` float signal plus free-text notes,
5 classes that need both, trained through `build_fusion_classifier` without a hand-written encoder, then saved,
loaded in a new process, exported, served, and tried on the served page with a CSV upload."""

import json

import numpy as np
import pytest
from live_server import browser_page, running

import mmkeras
from mmkeras import testing
from mmkeras.data import MultimodalData
from mmkeras.export import export_saved_model


def _eeg_and_notes(n=600, seed=0):
    rng = np.random.default_rng(seed)
    state, agitated = rng.integers(0, 5, size=n), rng.integers(0, 2, size=n)
    t = np.arange(128) / 128
    eeg = rng.normal(scale=0.5, size=(n, 128, 4)).astype("float32")  # (samples, steps, channels)
    eeg[:, :, 1] += np.sin(2 * np.pi * (2 + 2 * state[:, None]) * t)  # the state is a rhythm on channel 1
    openers = np.array(["patient seems", "the patient looks", "observed:"])
    notes = np.char.add(np.char.add(openers[rng.integers(0, 3, size=n)], " "),
                        np.where(agitated == 1, "agitated", "calm")).astype(object)
    return MultimodalData({"eeg": eeg, "notes": notes}, {"label": (state + agitated) % 5})


@pytest.fixture(scope="module")
def trained():
    data = _eeg_and_notes()
    train, test = data.select(slice(0, 500)), data.select(slice(500, None))
    mmkeras.seed_everything(0)
    model = mmkeras.build_fusion_classifier(train)
    mmkeras.fit_classifier(model, train, epochs=12, batch_size=32)
    return model, train, test


def test_the_schema_reads_a_time_series_and_a_text(trained):
    _, train, _ = trained
    assert train.schema.modality("eeg").kind == "timeseries" and train.schema.modality("notes").kind == "text"
    assert train.schema.labels[0].num_classes == 5


def test_it_learns_what_neither_modality_tells_alone(trained):
    """Chance is 0.2; the EEG alone can be right at most half of the time (the notes' bit is missing)."""
    model, _, test = trained
    assert mmkeras.evaluate_classifier(model, test)["accuracy"] > 0.8


def test_it_loads_in_a_fresh_process(trained, tmp_path):
    model, _, test = trained
    testing.check_loads_in_fresh_process({"own": model}, {"own": test.inputs()}, tmp_path)


def test_it_exports_and_is_served(trained, tmp_path):
    from mmkeras.serving import make_server_config

    model, train, test = trained
    directory = export_saved_model(model, tmp_path / "own", schema=train.schema, examples=test)
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata["inputs"]["eeg"] == {"shape": [128, 4], "dtype": "float32", "kind": "timeseries"}
    assert metadata["inputs"]["notes"]["dtype"] == "string" and len(metadata["class_names"]) == 5
    expected = mmkeras.predict_classes(model, test)

    config = make_server_config(directory, port=0, log_level="warning")
    with running(config) as (_, url, _):
        import urllib.request

        body = {"inputs": {"eeg": test.features["eeg"][:3].tolist(), "notes": list(test.features["notes"][:3])}}
        request = urllib.request.Request(url + "/predict", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        answers = json.loads(urllib.request.urlopen(request, timeout=30).read())["predictions"]
        assert [a["class_id"] for a in answers] == expected[:3].tolist()

        csv = tmp_path / "recording.csv"  # what a user exports from a sensor: a header, then one row per step
        np.savetxt(csv, test.features["eeg"][0], delimiter=",", header="c0,c1,c2,c3", comments="")
        with browser_page(url + "/") as page:
            page.wait_for_selector("#file-eeg", state="attached")
            assert "eeg (timeseries) float32 [128, 4]" in page.text_content("#inputs-info")
            page.fill("#text-notes", str(test.features["notes"][0]))
            page.set_input_files("#file-eeg", str(csv))
            page.wait_for_function("document.querySelector('#input-status').textContent.includes('recording.csv')")
            page.click("#predict")
            page.wait_for_function("document.querySelector('#prediction').textContent.startsWith('Prediction')")
            assert page.text_content("#error") == ""
            assert page.text_content("#prediction") == f"Prediction: {answers[0]['label']}"
