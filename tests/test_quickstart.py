"""The main job: `mmkeras quickstart` end to end, its JSON, its determinism, and the fusion claim itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mmkeras.apps.quickstart import QuickstartConfig, format_table, run_quickstart, save_outputs

NAMES = ["text", "image", "audio", "video", "concat"]
SMALL = QuickstartConfig(train_size=64, val_size=8, test_size=32, epochs=1, seed=0)


def _cli(*args, env_extra=None, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "mmkeras", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def test_cli_smoke_run_writes_json_and_plot_and_is_deterministic(tmp_path):
    out = tmp_path / "r.json"
    done = _cli("quickstart", "--json", str(out), "--out-dir", str(tmp_path / "plots"), "--quiet",
                env_extra={"MMKERAS_SMOKE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert sorted(result["accuracy"]) == sorted(NAMES)
    assert result["seconds"] > 0
    assert (tmp_path / "plots" / "quickstart_accuracy.png").stat().st_size > 1000
    assert "concat" in done.stdout and "test acc" in done.stdout
    # The same seed in another process gives the same numbers.
    again = run_quickstart(QuickstartConfig.smoke(seed=0), progress=False)
    assert again["accuracy"] == result["accuracy"]


def test_format_table_and_save_outputs(tmp_path):
    result = {"accuracy": dict.fromkeys(NAMES, 0.5), "params": dict.fromkeys(NAMES, 10),
              "train_seconds": dict.fromkeys(NAMES, 1.0), "seconds": 5.0, "config": {}}
    table = format_table(result)
    assert table.count("\n") == 6 and "text+image+audio+video" in table
    written = save_outputs(result, tmp_path / "out", tmp_path / "r.json")
    assert json.loads(written["json"].read_text())["accuracy"]["concat"] == 0.5
    assert not list(tmp_path.glob("*.tmp")), "no temporary file left behind"


def test_json_into_a_missing_folder_is_a_clear_error(tmp_path):
    result = {"accuracy": {}, "seconds": 0.0}
    with pytest.raises(ValueError, match="folder of --json does not exist"):
        save_outputs(result, None, tmp_path / "missing" / "r.json")


@pytest.mark.parametrize(
    "args,message",
    [
        (["quickstart", "--epochs", "0"], "expected a positive integer, received '0'"),
        (["quickstart", "--train-size", "many"], "expected a positive integer, received 'many'"),
        (["quickstart", "--seed", "-1"], "seed=-1"),
        (["download", "no-such-dataset"], "Received: 'no-such-dataset'"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_cli_bad_arguments(args, message, tmp_path):
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.parametrize("field,value", [("epochs", 0), ("train_size", -1), ("learning_rate", 0.0), ("seed", -2)])
def test_config_bad_values(field, value):
    with pytest.raises(ValueError, match=f"{field}="):
        QuickstartConfig(**{field: value})


def test_full_quickstart_fusion_beats_every_single_modality():
    """The course's first claim, on the real default settings (about 90 s on 2 cores)."""
    if os.environ.get("MMKERAS_SKIP_FULL") == "1":
        pytest.skip("MMKERAS_SKIP_FULL=1")
    result = run_quickstart(QuickstartConfig(), progress=False)
    single = {k: v for k, v in result["accuracy"].items() if k != "concat"}
    assert result["accuracy"]["concat"] >= 0.95, result["accuracy"]
    assert max(single.values()) <= 0.75, result["accuracy"]


def test_cli_rejects_a_bad_smoke_switch(tmp_path):
    done = _cli("quickstart", cwd=tmp_path, env_extra={"MMKERAS_SMOKE": "maybe"})
    assert done.returncode == 2
    assert "MMKERAS_SMOKE='maybe'" in done.stderr


def test_import_and_download_list_never_load_tensorflow(tmp_path):
    """`import mmkeras`, `mmkeras --help` and `mmkeras download --list` stay light and print no TensorFlow line."""
    check = ("import mmkeras, sys; mmkeras.data; mmkeras.config; from mmkeras.apps.cli import main; main(['download', "
             "'--list']); assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF loaded'")
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    for args in (["--help"], ["download", "--list"]):
        done = subprocess.run([sys.executable, "-m", "mmkeras", *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        assert not any(word in done.stdout + done.stderr for word in ("oneDNN", "cuda", "absl")), done


def test_compare_fusions_smoke_run_writes_every_strategy_and_every_seed(tmp_path):
    out = tmp_path / "fusions.json"
    done = _cli("compare-fusions", "--strategies", "concat,gated,cross_attention", "--seeds", "0,1", "--json",
                str(out), "--out-dir", str(tmp_path), "--quiet", env_extra={"MMKERAS_SMOKE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    written = json.loads(out.read_text())
    assert written["seeds"] == [0, 1] and written["config"]["seeds"] == [0, 1]
    result = written["strategies"]
    assert list(result) == ["concat", "gated", "cross_attention"]
    for row in result.values():
        assert set(row) == {"accuracy", "params", "seconds", "missing", "spread", "per_seed", "verdict"}
        assert sorted(row["missing"]) == ["audio", "image", "text", "video"]
        per_seed = row["per_seed"]
        assert per_seed["seed"] == [0, 1] and len(per_seed["accuracy"]) == 2
        assert all(len(values) == 2 for values in per_seed["missing"].values())
        spread = row["spread"]["accuracy"]
        assert spread["n"] == 2 and spread["min"] <= row["accuracy"] <= spread["max"]
        assert spread["min"] == min(per_seed["accuracy"]) and spread["max"] == max(per_seed["accuracy"])
        assert row["spread"]["missing"]["video"]["max"] == max(per_seed["missing"]["video"])
    # Two seeds are too few to rank: the best mean is named, the others stay unranked.
    assert sorted(row["verdict"] for row in result.values()) == ["best mean", "unranked", "unranked"]
    assert (tmp_path / "fusion_comparison.png").stat().st_size > 1000
    assert "-video" in done.stdout and "seeds 0, 1" in done.stdout and "unranked" in done.stdout
    # Seed 0 of this run is the single-seed run of before: the same numbers.
    from mmkeras.apps.compare import compare_fusions

    single = compare_fusions(["gated"], QuickstartConfig.smoke(seed=0), progress=False)["strategies"]["gated"]
    assert single["accuracy"] == result["gated"]["per_seed"]["accuracy"][0]
    assert single["missing"] == {m: v[0] for m, v in result["gated"]["per_seed"]["missing"].items()}


def test_compare_fusions_summary_ranks_from_three_seeds():
    """The table and verdicts on constructed runs (no training): mean (min–max), tied, clearly worse."""
    from mmkeras.apps.compare import format_comparison, summarise_runs

    def run(accuracy, without_text):
        return {"accuracy": accuracy, "params": 1000, "seconds": 2.0,
                "missing": {"text": without_text, "image": accuracy}}

    runs = {"concat": [run(0.96, 0.5), run(0.97, 0.6), run(0.98, 0.7)],
            "gated": [run(0.95, 0.8), run(0.96, 0.8), run(0.97, 0.8)],
            "sum": [run(0.90, 0.4), run(0.91, 0.4), run(0.92, 0.4)]}
    summary = summarise_runs(runs, [0, 1, 2])
    rows = summary["strategies"]
    assert {n: r["verdict"] for n, r in rows.items()} == {"concat": "best mean", "gated": "tied within noise",
                                                          "sum": "clearly worse"}
    assert rows["concat"]["accuracy"] == 0.97 and rows["concat"]["missing"]["text"] == 0.6
    assert rows["concat"]["spread"]["missing"]["text"] | {"std": 0} == {"mean": 0.6, "min": 0.5, "max": 0.7,
                                                                         "std": 0, "n": 3}
    table = format_comparison(summary | {"seconds": 1.0})
    assert "0.970 (0.960–0.980)  best mean" in table and "0.960 (0.950–0.970)  tied within noise" in table
    assert "clearly worse" in table and "0.600 (0.500–0.700)" in table and "over seeds 0, 1, 2" in table
    with pytest.raises(ValueError, match="one run per seed. Received: seeds=\\[0, 1\\]"):
        summarise_runs(runs, [0, 1])


@pytest.mark.parametrize("seeds", ["a,b", "", "0,,1", "-1", "0,0", "1.5"])
def test_compare_fusions_refuses_bad_seeds(seeds, tmp_path):
    done = _cli("compare-fusions", "--seeds", seeds, cwd=tmp_path, env_extra={"MMKERAS_SMOKE": "1"})
    assert done.returncode == 2
    assert f"argument --seeds: expected comma-separated distinct integers >= 0 such as 0,1,2, received {seeds!r}" \
        in done.stderr


def test_compare_fusions_refuses_an_unknown_strategy(tmp_path):
    done = _cli("compare-fusions", "--strategies", "concat,magic", cwd=tmp_path, env_extra={"MMKERAS_SMOKE": "1"})
    assert done.returncode == 2 and "Received: ['concat', 'magic']" in done.stderr


def test_bench_generative_smoke_run_writes_every_part(tmp_path):
    out = tmp_path / "generative.json"
    done = _cli("bench-generative", "--json", str(out), "--quiet", env_extra={"MMKERAS_SMOKE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["gan"]) >= {"conditional_accuracy", "frechet_distance", "diversity", "seconds"}
    assert set(result["retrieval"]) >= {"i2t_recall@1", "t2i_recall@1", "chance", "seconds"}
    assert set(result["captioning"]) >= {"token_accuracy", "bleu", "seconds"}
    for part in ("gan", "retrieval", "captioning"):
        assert all(isinstance(v, (int, float)) for v in result[part].values()), result[part]
    assert 0 < result["retrieval"]["chance"] < 1 and 0 <= result["captioning"]["bleu"] <= 1
    assert "total wall-clock time" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--parts", "gan,magic"], "--parts must name parts from"),
    (["--json", "no/such/folder/g.json"], "the folder of --json does not exist"),
])
def test_bench_generative_bad_arguments(args, message, tmp_path):
    done = _cli("bench-generative", *args, cwd=tmp_path, env_extra={"MMKERAS_SMOKE": "1"})
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not list(tmp_path.iterdir())  # nothing written
