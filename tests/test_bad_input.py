"""Bad input and damaged state (issue 21): outputs namespaced by profile, run folders that keep their word,
validation before work is spent, one-line expected errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bimodal import utils


# ---------------------------------------------------------------------------------------------------------------
# Namespaced outputs


@pytest.fixture()
def fake_repo(tmp_path, monkeypatch):
    """utils.REPO_ROOT pointed at an empty folder, the output variables unset."""
    import bimodal.experiments  # noqa: F401  (imported first: its modules copy REPO_ROOT at import time)

    for name in ("BIMODAL_RESULTS", "BIMODAL_FIGURES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(utils, "REPO_ROOT", tmp_path)
    return tmp_path


def test_results_and_figures_are_namespaced_by_profile(fake_repo):
    assert utils.results_root() == fake_repo / "results"
    assert utils.results_root("quick") == fake_repo / "results"
    assert utils.results_root("smoke") == fake_repo / "outputs" / "results-smoke"
    assert utils.figures_root("paper") == fake_repo / "outputs" / "figures-paper"
    assert utils.figures_root("smoke").is_dir()  # created on first use


def test_an_output_variable_naming_a_missing_folder_is_created(fake_repo, monkeypatch):
    target = fake_repo / "not" / "there"
    monkeypatch.setenv("BIMODAL_RESULTS", str(target))
    assert utils.results_root("smoke") == target and target.is_dir()


def test_a_smoke_table_never_touches_the_committed_results(fake_repo, monkeypatch):
    from bimodal import experiments as X

    monkeypatch.setenv("BIMODAL_RUNS", str(fake_repo / "runs"))
    committed = fake_repo / "results" / "table1.csv"
    committed.parent.mkdir()
    committed.write_text("quick rows\n")
    X.collect_table("table1", "smoke", [0], write=True)
    assert committed.read_text() == "quick rows\n"
    smoke = fake_repo / "outputs" / "results-smoke" / "table1.csv"
    assert set(__import__("pandas").read_csv(smoke)["profile"]) == {"smoke"}


def test_notebooks_write_results_and_figures_under_their_profile():
    # every results_root()/figures_root() call in a notebook names the notebook's profile parameter
    for path in sorted((utils.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        assert "results_root()" not in code and "figures_root()" not in code, path.name


# ---------------------------------------------------------------------------------------------------------------
# Run folders that keep their word (smoke runs of 2 epochs, a few seconds each)


def _smoke(**over):
    from bimodal.config import get_config

    return get_config("smoke", {"train.num_threads": 1, **{k.replace("__", "."): v for k, v in over.items()}})


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """An uninterrupted smoke run: the reference the damaged runs must end at."""
    from bimodal.train import train_run

    run_dir = tmp_path_factory.mktemp("runs") / "clean"
    return run_dir, train_run(_smoke(), run_dir, progress=False)


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


def test_a_finished_run_folder_refuses_another_config(clean_run):
    from bimodal.config import ConfigError
    from bimodal.train import train_run

    run_dir, _ = clean_run
    with pytest.raises(ConfigError, match=r"train\.method: 'proposed' -> 'supervised'"):
        train_run(_smoke(train__method="supervised"), run_dir, progress=False)


def test_a_run_folder_that_is_a_file_is_refused(tmp_path):
    from bimodal.config import ConfigError
    from bimodal.train import train_run

    (tmp_path / "run").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        train_run(_smoke(), tmp_path / "run", progress=False)


def test_no_resume_moves_the_old_run_aside_and_appends_nothing(clean_run, tmp_path, capsys):
    import pandas as pd

    from bimodal.train import train_run

    run_dir = _copy_run(clean_run[0], tmp_path / "run")
    summary = train_run(_smoke(), run_dir, resume=False, progress=False)
    epochs = pd.read_csv(run_dir / "epochs.csv")
    assert list(epochs["epoch"]) == [0, 1]
    assert list(pd.read_csv(run_dir / "steps.csv")["epoch"].unique()) == [0, 1]
    assert summary["train_seconds"] == pytest.approx(epochs["seconds"].sum())
    (aside,) = (tmp_path / ".replaced").glob("run-*")
    assert (aside / "summary.json").is_file() and "moved the previous contents" in capsys.readouterr().err
    assert summary["test2"] == clean_run[1]["test2"]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_damaged_last_checkpoint_is_named_and_the_run_ends_as_an_uninterrupted_one(clean_run, tmp_path, capsys):
    import pandas as pd

    from bimodal.train import train_run

    run_dir = tmp_path / "run"
    assert train_run(_smoke(), run_dir, progress=False, max_epochs=1)["finished"] is False
    _truncate(run_dir / "last.pt")
    _truncate(run_dir / "best.pt")  # both damaged: the run starts again and writes a new best.pt
    summary = train_run(_smoke(), run_dir, progress=False)
    err = capsys.readouterr().err
    assert "last.pt: damaged checkpoint" in err and (run_dir / "last.pt.damaged").is_file()
    assert summary["test2"] == clean_run[1]["test2"] and summary["best_epoch"] == clean_run[1]["best_epoch"]
    assert list(pd.read_csv(run_dir / "epochs.csv")["epoch"]) == [0, 1]


def test_a_damaged_best_checkpoint_is_rebuilt_without_retraining(clean_run, tmp_path, capsys):
    import pandas as pd

    from bimodal.train import train_run

    run_dir = _copy_run(clean_run[0], tmp_path / "run")
    (run_dir / "summary.json").unlink()  # the run was stopped before its test
    _truncate(run_dir / "best.pt")
    logged = pd.read_csv(run_dir / "epochs.csv")
    summary = train_run(_smoke(), run_dir, progress=False)
    assert "best.pt: damaged" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "epochs.csv"), logged)  # no epoch trained again (seconds)
    assert summary["test2"] == clean_run[1]["test2"]


def test_a_damaged_best_checkpoint_without_a_copy_is_an_error_naming_it(clean_run, tmp_path):
    import torch

    from bimodal.model import CheckpointError
    from bimodal.train import train_run

    run_dir = _copy_run(clean_run[0], tmp_path / "run")
    (run_dir / "summary.json").unlink()
    state = torch.load(run_dir / "last.pt", weights_only=False)
    del state["best_model"], state["best_extra"]  # a last.pt written before best weights were kept in it
    torch.save(state, run_dir / "last.pt")
    _truncate(run_dir / "best.pt")
    with pytest.raises(CheckpointError, match=r"best\.pt.*--no-resume"):
        train_run(_smoke(), run_dir, progress=False)


def test_a_cached_run_says_it_was_reused(clean_run, capsys):
    from bimodal.train import train_run

    run_dir, summary = clean_run
    assert train_run(_smoke(), run_dir, progress=False) == summary
    out, err = capsys.readouterr()
    assert "finished earlier; returning its summary" in err and out == ""


def test_the_lock_waiting_line_goes_to_stderr(tmp_path, capsys, monkeypatch):
    import fcntl

    from bimodal import train

    real = fcntl.flock

    def busy_once(fd, op):  # another process holds the lock: the non-blocking attempt fails
        if op & fcntl.LOCK_NB:
            raise BlockingIOError
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", busy_once)
    with train._run_lock(tmp_path / "run"):
        pass
    out, err = capsys.readouterr()
    assert "waiting for it" in err and out == ""


# ---------------------------------------------------------------------------------------------------------------
# Validate before spending work; one-line expected errors (the CLI in this process: no training starts in any case)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"train.epochs": 0}, "train.epochs"),
        ({"train.epochs": -3}, "train.epochs"),
        ({"train.lr": "nan"}, "train.lr"),
        ({"train.lr": -1e-3}, "train.lr"),
        ({"train.lr": "inf"}, "train.lr"),
        ({"train.batch_size": 0}, "train.batch_size"),
        ({"train.eval_every": 0}, "train.eval_every"),
        ({"train.alpha": "nan"}, "train.alpha"),
        ({"embedding.lr": "nan"}, "embedding.lr"),
        ({"data.train_items_per_epoch": 3}, "data.train_items_per_epoch"),  # < smoke batch size 4: no batch
    ],
)
def test_values_that_do_not_fit_are_refused_naming_the_field(overrides, field):
    from bimodal.config import ConfigError, get_config

    with pytest.raises(ConfigError, match=f"'{field}'"):
        get_config("smoke", overrides)


def test_every_profile_passes_the_range_checks():
    from bimodal.config import PROFILES, get_config

    assert [get_config(p).profile for p in PROFILES] == list(PROFILES)


def _cli(argv, capsys) -> tuple[int, str, str]:
    from bimodal.cli import main

    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture()
def index_csvs(tmp_path):
    """Index CSVs in the common format: one lacking the split column, one naming a file that does not exist."""
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "a.wav", np.zeros(100, dtype=np.float32), 11025)
    (tmp_path / "no_split.csv").write_text("path,cls\na.wav,violin\n")
    (tmp_path / "missing.csv").write_text("path,cls,split\na.wav,violin,train\ngone.wav,violin,val\n")
    (tmp_path / "a_file").write_text("")
    (tmp_path / "garbage.wav").write_bytes(b"not audio at all" * 8)
    (tmp_path / "garbage.csv").write_text("path,cls,split\na.wav,violin,train\ngarbage.wav,violin,val\n")
    return tmp_path


CLI_CASES = {  # name: (argv with {tmp} for the fixture's folder, exit code, text the one-line error contains)
    "epochs 0": (["train", "--profile", "smoke", "--set", "train.epochs=0"], 2, "'train.epochs' must be ≥ 1"),
    "lr nan": (["train", "--profile", "smoke", "--set", "train.lr=nan"], 2, "'train.lr' must be a finite"),
    "lr negative": (["train", "--profile", "smoke", "--set", "train.lr=-1"], 2, "'train.lr' must be > 0"),
    "batch 0": (["train", "--profile", "smoke", "--set", "train.batch_size=0"], 2, "'train.batch_size'"),
    "test set": (
        ["train", "--profile", "smoke", "--run-dir", "{tmp}/run", "--test-sets", "test9"],
        2,
        "unknown test set(s) 'test9'; choose from test2, test3",
    ),
    "run dir is a file": (["train", "--profile", "smoke", "--run-dir", "{tmp}/a_file"], 2, "is a file"),
    "index lacks columns": (
        ["train", "--profile", "smoke", "--run-dir", "{tmp}/run", "--set", "data.dataset={tmp}/no_split.csv"],
        2,
        "index lacks columns ['split']",
    ),
    "index file missing": (
        ["train", "--profile", "smoke", "--run-dir", "{tmp}/run", "--set", "data.dataset={tmp}/missing.csv"],
        2,
        "1 of 2 indexed audio files do not exist",
    ),
    "index file not audio": (
        ["train", "--profile", "smoke", "--run-dir", "{tmp}/run", "--set", "data.dataset={tmp}/garbage.csv"],
        2,
        "1 of 2 indexed audio files do not open as audio, e.g.",
    ),
    "reproduce 99": (["reproduce", "--only", "99"], 2, "no notebook 99; notebooks: 00_data"),
    "data root not writable": (
        ["data", "build", "--profile", "smoke", "--no-record", "--root", "{tmp}/a_file/data"],
        2,
        "is not a writable folder",
    ),
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_bad_input_is_one_line_naming_the_problem(case, index_csvs, capsys):
    argv, code, text = CLI_CASES[case]
    rc, out, err = _cli([a.replace("{tmp}", str(index_csvs)) for a in argv], capsys)
    assert rc == code, err
    assert text in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("bimodal")]) == 1, err
    assert not (index_csvs / "run" / "last.pt").exists()  # nothing was trained


def test_debug_shows_the_traceback_of_an_expected_error(index_csvs, monkeypatch):
    from bimodal.cli import main
    from bimodal.config import ConfigError

    monkeypatch.setenv("BIMODAL_DEBUG", "1")
    with pytest.raises(ConfigError, match="is a file"):
        main(["train", "--profile", "smoke", "--run-dir", str(index_csvs / "a_file")])


def test_versions_has_help(capsys):
    rc, out, _ = _cli(["versions", "--help"], capsys)
    assert rc == 0 and out.startswith("usage: bimodal versions")


def test_train_profile_help_shows_the_choices_and_the_default(capsys):
    rc, out, _ = _cli(["train", "--help"], capsys)
    assert rc == 0 and "{smoke,quick,paper}" in out and "quick (the default" in out


# ---------------------------------------------------------------------------------------------------------------
# bimodal separate: the output path and the options are checked before any separation work


class _FakeEmbedding:
    """Deterministic per-prompt token states of width 24 (tests/test_model.py's stand-in; no model loaded)."""

    token_dim = 24

    def embed_text(self, prompts, padding_states=False):
        import zlib

        import torch

        tokens = torch.stack(
            [torch.randn(5, 24, generator=torch.Generator().manual_seed(zlib.crc32(p.encode()))) for p in prompts]
        )
        return tokens.mean(1), tokens, torch.ones(len(prompts), 5, dtype=torch.bool)


@pytest.fixture()
def separation(tmp_path, monkeypatch):
    """(folder, a 1 s float mixture peaking at `peak`, a smoke separator checkpoint) with the embedding faked."""
    import sys
    import types

    import numpy as np
    import soundfile as sf

    from bimodal.config import get_config
    from bimodal.model import Separator

    cfg = get_config("smoke")
    torch_ckpt = tmp_path / "best.pt"
    Separator(cfg.model, 24).save(torch_ckpt, config=cfg.to_dict())
    monkeypatch.setitem(
        sys.modules, "bimodal.backends", types.SimpleNamespace(load_embedding=lambda _cfg: _FakeEmbedding())
    )

    def mixture(peak: float = 0.5) -> Path:
        t = np.arange(11025) / 11025
        wave = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 97 * t)
        path = tmp_path / f"mix_{peak}.wav"
        sf.write(path, (peak * wave / np.abs(wave).max()).astype(np.float32), 11025, subtype="FLOAT")
        return path

    (tmp_path / "a_file").write_text("")
    (tmp_path / "garbage.wav").write_bytes(b"not audio at all" * 8)
    (tmp_path / "garbage.csv").write_text("path,cls,split\na.wav,violin,train\ngarbage.wav,violin,val\n")
    return tmp_path, mixture, torch_ckpt


SEPARATE_CASES = {  # name: (output, prompt, extra options, text of the usage error)
    "output is the input": ("{mix}", "the sound of violin", [], "is the input file"),
    "no extension": ("{tmp}/out", "the sound of violin", [], "no extension is not an audio format"),
    "unknown extension": ("{tmp}/out.xyz", "the sound of violin", [], ".xyz is not an audio format"),
    "output is a folder": ("{tmp}", "the sound of violin", [], "is a folder"),
    "unwritable folder": ("{tmp}/a_file/out.wav", "the sound of violin", [], "is not a writable folder"),
    "empty prompt": ("{tmp}/out.wav", "", [], "the prompt is empty"),
    "blank prompt": ("{tmp}/out.wav", "   ", [], "the prompt is empty"),
    "negative chunk": ("{tmp}/out.wav", "the sound of violin", ["--chunk-seconds", "-5"], "--chunk-seconds must"),
    "nan chunk": ("{tmp}/out.wav", "the sound of violin", ["--chunk-seconds", "nan"], "--chunk-seconds must"),
    "negative threads": ("{tmp}/out.wav", "the sound of violin", ["--threads", "-3"], "--threads must be ≥ 1"),
}


@pytest.mark.parametrize("case", SEPARATE_CASES)
def test_separate_refuses_bad_options_before_separating(case, separation, capsys, monkeypatch):
    from bimodal.model import Separator

    folder, mixture, ckpt = separation
    mix = mixture()
    before = mix.read_bytes()
    monkeypatch.setattr(Separator, "from_pretrained", lambda *a, **k: pytest.fail("separation work started"))
    output, prompt, extra, text = SEPARATE_CASES[case]
    output = output.replace("{mix}", str(mix)).replace("{tmp}", str(folder))
    rc, out, err = _cli(["separate", str(mix), prompt, "-o", output, "--checkpoint", str(ckpt), *extra], capsys)
    assert rc == 2 and text in err and "Traceback" not in err, err
    assert mix.read_bytes() == before


def test_separate_given_a_resume_file_names_best_pt(separation, clean_run, capsys):
    folder, mixture, _ = separation
    rc, _, err = _cli(
        [
            "separate",
            str(mixture()),
            "the sound of violin",
            "-o",
            str(folder / "o.wav"),
            "--checkpoint",
            str(clean_run[0] / "last.pt"),
        ],
        capsys,
    )
    assert rc == 1 and "pass the run's best.pt" in err and "Weights only" not in err


@pytest.mark.parametrize(
    "suffix, subtype, warned",
    [(".wav", "FLOAT", "saved as 32-bit float"), (".ogg", "VORBIS", "peak-normalised to 0.99")],
)
def test_a_loud_separation_is_not_clipped_silently(separation, capsys, suffix, subtype, warned):
    import numpy as np
    import soundfile as sf

    folder, mixture, ckpt = separation
    out = folder / f"loud{suffix}"
    rc, _, err = _cli(
        ["separate", str(mixture(peak=50.0)), "the sound of violin", "-o", str(out), "--checkpoint", str(ckpt)], capsys
    )
    assert rc == 0, err
    assert warned in err and sf.info(out).subtype == subtype
    data, _ = sf.read(out)
    peak = np.abs(data).max()
    assert peak > 1.0 if subtype == "FLOAT" else peak <= 1.0  # kept whole, or scaled under full scale


def test_separate_writes_the_formats_soundfile_knows(separation, capsys):
    import soundfile as sf

    folder, mixture, ckpt = separation
    for suffix in (".flac", ".mp3"):
        out = folder / f"quiet{suffix}"
        rc, _, err = _cli(
            ["separate", str(mixture()), "the sound of violin", "-o", str(out), "--checkpoint", str(ckpt)], capsys
        )
        assert rc == 0 and "warning" not in err, err
        assert sf.info(out).samplerate == 11025


def test_a_prompt_outside_the_surrogates_vocabulary_is_warned_about(separation, capsys):
    folder, mixture, ckpt = separation
    rc, _, err = _cli(
        [
            "separate",
            str(mixture()),
            "a dog barking in the rain",
            "-o",
            str(folder / "dog.wav"),
            "--checkpoint",
            str(ckpt),
        ],
        capsys,
    )
    assert rc == 0 and "names none of the" in err


def test_a_long_separation_shows_a_bar_over_its_windows(separation, capsys):
    import numpy as np
    import soundfile as sf

    folder, _, ckpt = separation
    mix = folder / "long.wav"
    sf.write(mix, (0.3 * np.sin(np.arange(3 * 11025) * 0.05)).astype(np.float32), 11025)
    rc, _, err = _cli(
        [
            "separate",
            str(mix),
            "the sound of violin",
            "-o",
            str(folder / "o.wav"),
            "--checkpoint",
            str(ckpt),
            "--chunk-seconds",
            "1",
        ],
        capsys,
    )
    assert rc == 0 and "separating" in err and "/6 " in err  # 3 s in 1 s windows at 0.5 s steps: 6 windows


def test_a_bare_train_says_it_trains_the_quick_profile(capsys, monkeypatch):
    from bimodal import train

    asked = []
    monkeypatch.setattr(train, "train_run", lambda cfg, *a, **k: asked.append(cfg.profile) or {"finished": True})
    rc, out, err = _cli(["train"], capsys)
    assert rc == 0 and asked == ["quick"] and "no --profile given: training the quick profile" in err
    assert json.loads(out) == {"finished": True}  # stdout: the JSON summary alone


def test_a_finished_run_with_a_damaged_best_checkpoint_is_rebuilt_when_a_notebook_loads_it(
    clean_run, tmp_path, monkeypatch, capsys
):
    import torch

    from bimodal import experiments as X
    from bimodal.train import run_dir_for

    monkeypatch.setenv("BIMODAL_RUNS", str(tmp_path / "runs"))
    run_dir = _copy_run(clean_run[0], run_dir_for(_smoke()))
    good = torch.load(run_dir / "best.pt", weights_only=True)["state_dict"]
    _truncate(run_dir / "best.pt")
    separator, _, _ = X.load_model("smoke", {"train.num_threads": 1}, progress=False)
    assert "best.pt: damaged" in capsys.readouterr().err
    assert all(torch.equal(separator.state_dict()[k], good[k]) for k in good)
