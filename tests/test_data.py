"""bimodal.datasets on the smoke profile, in temporary folders (never the repo's data/)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from bimodal import datasets as D
from bimodal.datasets import build, melodies, render, soundfonts, styles
from bimodal.datasets.cli import cli as data_cli
from bimodal.datasets.instruments import instrument_for
from bimodal.audio import is_silent
from bimodal.config import get_config

SR = 11025


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def smoke_cfg(smoke_root):
    return get_config("smoke", {"data.root": str(smoke_root)}).data


@pytest.fixture(scope="module")
def manifest(smoke_cfg):
    torch.set_num_threads(1)
    return D.build_synthmusic21(smoke_cfg, "smoke", verbose=False)


# ---------------------------------------------------------------------------------------------------------------
# prompts, classes


def test_classes_and_prompts():
    assert len(D.CLASSES) == 21 and len(set(D.CLASSES)) == 21
    assert "acoustic guitar" in D.CLASSES and "electric bass" in D.CLASSES
    assert all(c == c.lower() and "_" not in c for c in D.CLASSES)
    assert D.single_prompt("violin") == "The sound of violin"
    assert D.mixture_prompt(["guitar", "piano"]) == "The sound mixture of guitar and piano"
    assert D.mixture_prompt(["guitar", "piano", "violin"]) == "The sound mixture of guitar, piano, and violin"
    assert D.mixture_prompt(["cello"]) == "The sound of cello"
    with pytest.raises(ValueError):
        D.mixture_prompt([])


# ---------------------------------------------------------------------------------------------------------------
# SynthMUSIC-21


def test_manifest_complete_and_clips_valid(manifest, smoke_cfg):
    cfg = smoke_cfg
    assert len(manifest) == 21 * cfg.clips_per_class
    assert set(manifest["cls"]) == set(D.CLASSES)
    assert {"path", "cls", "melody_id", "split", "sha256"} <= set(manifest.columns)
    for row in manifest.itertuples():
        wave, sr = sf.read(row.path, dtype="float32")
        assert sr == SR and wave.ndim == 1 and len(wave) == cfg.clip_samples, row.path
        assert not is_silent(wave), row.path
        assert render.gap_fraction(wave, SR) <= 0.3, row.path  # no long rests
        assert hashlib.sha256(open(row.path, "rb").read()).hexdigest() == row.sha256


def test_splits_disjoint_by_melody_source(manifest):
    groups = {s: set(manifest.loc[manifest["split"] == s, "group"]) for s in ("train", "val", "test")}
    assert all(groups.values()), "every split has clips"
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]
    for cls, rows in manifest.groupby("cls"):  # every class in every split
        assert set(rows["split"]) == {"train", "val", "test"}, cls


def test_build_is_idempotent_and_deterministic(manifest, smoke_cfg, tmp_path):
    again = D.build_synthmusic21(smoke_cfg, verbose=False)
    pd.testing.assert_frame_equal(again[["path", "sha256"]], manifest[["path", "sha256"]])
    # a fresh root, a subset of classes rendered in another order: identical bytes
    cfg2 = get_config("smoke", {"data.root": str(tmp_path)}).data
    cfg2.clips_per_class = 2
    other = D.build_synthmusic21(cfg2, verbose=False, classes=("violin", "drum"))
    ref = manifest.set_index(manifest["path"].str.split("/clips/").str[1])["sha256"]
    for row in other.itertuples():
        assert row.sha256 == ref[row.path.split("/clips/")[1]], row.path
    # worker processes give the same bytes; another seed gives other clips
    cfg3 = get_config("smoke", {"data.root": str(tmp_path / "w"), "data.clips_per_class": 3}).data
    par = D.build_synthmusic21(cfg3, verbose=False, classes=("pipa", "tuba"), workers=2)
    assert list(par["sha256"]) == [ref[p.split("/clips/")[1]] for p in par["path"]]
    cfg4 = get_config("smoke", {"data.root": str(tmp_path / "s"), "data.seed": 1}).data
    cfg4.clips_per_class = 1
    assert D.build_synthmusic21(cfg4, verbose=False, classes=("pipa",))["sha256"][0] != ref["pipa/pipa_00000.wav"]


def test_incremental_build_renders_only_missing(smoke_cfg, tmp_path, monkeypatch):
    cfg = get_config("smoke", {"data.root": str(tmp_path)}).data
    cfg.clips_per_class = 1
    D.build_synthmusic21(cfg, verbose=False, classes=("flute",))
    calls = []
    real = build.render_clip
    monkeypatch.setattr(build, "render_clip", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    cfg.clips_per_class = 2
    df = D.build_synthmusic21(cfg, verbose=False, classes=("flute",))
    assert calls == ["flute"] and len(df) == 2


def test_melody_pools_disjoint():
    sep = {m.group for m in melodies.melody_pool("separation")}
    emb = {m.group for m in melodies.melody_pool("embedding")}
    assert len(sep) > 500 and len(emb) > 100 and not sep & emb


def test_repeated_pitch_is_not_cut_by_late_note_off():
    score = styles.Score()
    score.note(0.0, 0.5, 60, 100)
    score.note(0.45, 0.5, 60, 100)  # the first note is still held when the second starts
    ev = [(round(e.t, 3), e.kind) for e in score.timeline()]
    assert ev == [(0.0, "on"), (0.45, "off"), (0.45, "on"), (0.95, "off")]
    wave = render.get_renderer(str(soundfonts.fluidr3_path())).render(score, 22050, 0)
    late = wave[int(0.6 * 22050) : int(0.9 * 22050)]
    assert np.sqrt(np.mean(late**2)) > 0.1 * np.sqrt(np.mean(wave[:9000] ** 2))


def test_erhu_is_not_violin_again():
    """Same melody and seed: erhu's glides/vibrato make it differ from the violin preset it proxies."""
    mel = melodies.melody_pool("separation")[:5]
    erhu, info = render.render_clip("erhu", mel, [1, 2, 3], n_samples=8192)
    events = styles.Score()
    rng = np.random.default_rng(0)
    ctx = styles.Ctx(rng, 0.5, 2.0, [(0.0, 1.0, 70), (1.0, 1.0, 74)], 0, False, 4.0, 62, 88)
    styles.style_erhu(events, ctx, 80)
    bends = [e for e in events.events if e.kind == "bend"]
    assert len(bends) > 50 and len({e.a for e in bends}) > 20  # continuous pitch gestures
    assert instrument_for("erhu").program == 110 and not is_silent(erhu)


# ---------------------------------------------------------------------------------------------------------------
# embedding corpus


def test_embedding_corpus(smoke_root, manifest):
    emb = D.build_embedding_corpus("smoke", smoke_root, verbose=False)
    labels = set(emb["label"])
    assert set(D.CLASSES) <= labels and len(labels - set(D.CLASSES)) >= 20
    assert {"path", "label", "caption", "captions", "melody_id", "split"} <= set(emb.columns)
    assert set(emb["split"]) == {"train", "val"}
    assert not set(emb.loc[emb["split"] == "val", "group"]) & set(emb.loc[emb["split"] == "train", "group"])
    assert not set(emb["group"]) & set(manifest["group"])
    for row in emb.itertuples():
        assert row.caption in row.captions.split("|") and len(row.captions.split("|")) >= 3
    assert emb["caption"].nunique() > 40  # varied
    wave, sr = sf.read(emb["path"].iloc[0], dtype="float32")
    assert sr == SR and not is_silent(wave)
    again = D.build_embedding_corpus("smoke", smoke_root, verbose=False)
    assert list(again["sha256"]) == list(emb["sha256"])


def test_embedding_corpus_second_soundfont_renders_the_same_scores(smoke_root, monkeypatch):
    labels = ("violin", "piano", "drum")
    tim = D.build_embedding_corpus("smoke", smoke_root, verbose=False, labels=labels)
    cs = D.build_embedding_corpus("smoke", smoke_root, verbose=False, labels=labels, soundfont="csound")
    assert Path(cs["path"].iloc[0]).parent.parent.parent.name.endswith("-csound")
    # same melodies, tempi, captions and splits; other bytes (another timbre)
    for col in ("label", "melody_id", "tempo", "caption", "split"):
        assert list(cs[col]) == list(tim[col]), col
    assert not set(cs["sha256"]) & set(tim["sha256"])
    for path in cs["path"]:
        wave, sr = sf.read(path, dtype="float32")
        assert sr == SR and not is_silent(wave)
    # labels a SoundFont cannot sound are left out of its corpus (opl3 has no triangle or castanets)
    monkeypatch.setitem(soundfonts.SOUNDFONT_SILENT_LABELS, "csound", ("piano",))
    assert set(
        D.build_embedding_corpus("smoke", smoke_root, verbose=False, labels=labels, soundfont="csound")["label"]
    ) == {"violin", "drum"}
    with pytest.raises(ValueError, match="unknown corpus SoundFont 'fluidr3'"):
        D.build_embedding_corpus("smoke", smoke_root, verbose=False, labels=labels, soundfont="fluidr3")


# ---------------------------------------------------------------------------------------------------------------
# mixtures


def test_mixture_dataset_shapes_scaling_and_classes(manifest, smoke_cfg):
    ds = D.MixtureDataset(smoke_cfg, manifest, "train", k_sources=2, n_mix=2, seed=3, items=12)
    assert len(ds) == 12
    for i in range(len(ds)):
        item = ds[i]
        src = item["sources"]
        assert src.shape == (2, 2, smoke_cfg.segment_samples) and src.dtype == torch.float32
        assert src.abs().max() <= 1.0 / 4 + 1e-6 and src.sum((0, 1)).abs().max() <= 1.0
        flat = [c for mix in item["classes"] for c in mix]
        assert len(flat) == 4 and len(set(flat)) == 4  # no class shared within or across mixtures
        assert item["mixture_prompts"][0] == D.mixture_prompt(item["classes"][0])
        assert item["source_prompts"][1][0] == f"The sound of {item['classes'][1][0]}"
        for mix, paths in zip(item["classes"], item["paths"]):
            for c, p in zip(mix, paths):
                assert manifest.set_index("path").loc[p, "cls"] == c
                assert manifest.set_index("path").loc[p, "split"] == "train"
    batch = D.collate_mixtures([ds[0], ds[1], ds[2]])
    assert batch["sources"].shape == (3, 2, 2, smoke_cfg.segment_samples)
    assert len(batch["classes"]) == 3 and len(batch["mixture_prompts"][0]) == 2


def test_mixture_dataset_resumable(manifest, smoke_cfg):
    a = D.MixtureDataset(smoke_cfg, manifest, seed=5, items=4)
    b = D.MixtureDataset(smoke_cfg, manifest, seed=5, items=4)
    a.set_epoch(3)
    b.set_epoch(3)
    x = [a[i] for i in range(4)]
    assert torch.equal(b[2]["sources"], x[2]["sources"]) and b[2]["classes"] == x[2]["classes"]
    b.set_epoch(4)
    assert not torch.equal(b[2]["sources"], x[2]["sources"])
    assert torch.equal(a[2]["sources"], x[2]["sources"])  # reading other items in between changes nothing


def test_supervised_single_sources(manifest, smoke_cfg):
    ds = D.MixtureDataset(smoke_cfg, manifest, k_sources=1, n_mix=3, seed=0, items=2)
    item = ds[0]
    assert item["sources"].shape == (3, 1, smoke_cfg.segment_samples)
    assert item["mixture_prompts"] == [p[0] for p in item["source_prompts"]]


def test_semi_supervised_partition(smoke_cfg, manifest):
    cfg = get_config("smoke", {"data.root": smoke_cfg.root, "data.single_source_fraction": 0.4}).data
    m = D.load_manifest(cfg)
    train = m[m["split"] == "train"]
    assert set(train["subset"]) == {"single", "mixture"} and set(m.loc[m["split"] != "train", "subset"]) == {""}
    for _, rows in train.groupby("cls"):  # stratified: both partitions keep every class
        assert set(rows["subset"]) == {"single", "mixture"}
    single = D.MixtureDataset(cfg, m, subset="single", k_sources=1, items=3)
    mixture = D.MixtureDataset(cfg, m, subset="mixture", items=3)
    used_single = {p for i in range(3) for ps in single[i]["paths"] for p in ps}
    assert used_single <= set(train.loc[train["subset"] == "single", "path"])
    assert not {p for i in range(3) for ps in mixture[i]["paths"] for p in ps} & set(
        train.loc[train["subset"] == "single", "path"]
    )
    assert list(D.load_manifest(cfg)["subset"]) == list(m["subset"])  # seeded
    with pytest.raises(ValueError, match="single_source_fraction"):
        D.MixtureDataset(smoke_cfg, D.load_manifest(smoke_cfg), subset="single")


def test_too_many_sources_for_classes(manifest, smoke_cfg):
    with pytest.raises(ValueError, match="distinct classes"):
        D.MixtureDataset(smoke_cfg, manifest[manifest["cls"].isin(D.CLASSES[:3])], k_sources=2, n_mix=2)


# ---------------------------------------------------------------------------------------------------------------
# evaluation compositions


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_shipped_compositions_match_code(profile):
    cfg = get_config(profile).data
    for name in ("val2", "test2", "test3"):
        shipped = pd.read_csv(D.composition_path(cfg, name), keep_default_na=False)
        pd.testing.assert_frame_equal(shipped, D.make_composition(cfg, name), check_dtype=False)
    val = pd.read_csv(D.composition_path(cfg, "val2"), keep_default_na=False).iloc[: cfg.val_mixtures]
    assert val["cls_1"].nunique() >= min(21, cfg.val_mixtures // 2)  # a truncated set still spans the classes


def test_eval_dataset(manifest, smoke_cfg):
    for name, split, n_src in (("val2", "val", 2), ("test2", "test", 2), ("test3", "test", 3)):
        ds = D.EvalMixtureDataset(smoke_cfg, name, manifest)
        limit = smoke_cfg.val_mixtures if name == "val2" else smoke_cfg.test_mixtures
        assert len(ds) == min(limit, len(D.make_composition(smoke_cfg, name)))
        by_path = manifest.set_index(manifest["path"].str.split("/clips/").str[1])
        comp = D.make_composition(smoke_cfg, name)
        for s in range(1, n_src + 1):
            assert set(by_path.loc[[p.split("clips/")[1] for p in comp[f"path_{s}"]], "split"]) == {split}
        for i in range(len(ds)):
            item = ds[i]
            assert item["sources"].shape == (n_src, smoke_cfg.segment_samples)
            assert len(set(item["classes"])) == n_src
            assert item["source_prompts"] == [D.single_prompt(c) for c in item["classes"]]
            assert item["sources"].abs().max() <= 1.0 / n_src + 1e-6
        # the centre crop of the stored clip, scaled by 1/S
        row = comp.iloc[0]
        clip, _ = sf.read(D.synthmusic21_dir(smoke_cfg) / row["path_1"], dtype="float32")
        start = (smoke_cfg.clip_samples - smoke_cfg.segment_samples) // 2
        np.testing.assert_allclose(
            ds[0]["sources"][0].numpy(), clip[start : start + smoke_cfg.segment_samples] / n_src, atol=1e-7
        )
    with pytest.raises(ValueError):
        D.EvalMixtureDataset(smoke_cfg, "test9")


# ---------------------------------------------------------------------------------------------------------------
# captions (Table 5)

TABLE5 = [
    (
        "A young female speaks, followed by spraying and a female screaming",
        ["A young female speaks", "Spraying and a female screaming"],
    ),
    (
        "Motor noise is followed by a horn honking and a siren wailing",
        ["Motor noise", "A horn honking", "A siren wailing"],
    ),
    (
        "Rustling occurs, ducks quack and water splashes, followed by an adult female and adult male speaking and duck "
        "calls being blown",
        [
            "Rustling occurs",
            "Ducks quack and water splashes",
            "An adult female and adult male speaking",
            "Duck calls being blown",
        ],
    ),
    (
        "An audience gives applause as a man yells and a group sings",
        ["An audience gives applause", "A man yells", "A group sings"],
    ),
    ("A man speaks over intermittent keyboard taps", ["A man speaks", "Intermittent keyboard taps"]),
    ("An airplane engine runs", ["An airplane engine"]),
]


@pytest.mark.parametrize("caption,phrases", TABLE5)
def test_split_caption_table5(caption, phrases):
    assert D.split_caption(caption) == phrases


def test_split_caption_edge_cases():
    assert D.split_caption("") == []
    assert D.split_caption("A dog barks while birds chirp.") == ["A dog barks", "Birds chirp"]


# ---------------------------------------------------------------------------------------------------------------
# real-dataset indexes: tiny fixture folders made here


def _tone(seconds, sr, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.stack([x] * channels, 1) if channels > 1 else x


def _music_folder(root):
    (root / "violin").mkdir(parents=True)
    (root / "acoustic_guitar").mkdir()
    sf.write(root / "violin" / "good.wav", _tone(2.0, 16000), 16000)
    sf.write(root / "violin" / "stereo.wav", _tone(2.0, 44100, 2), 44100)
    sf.write(root / "acoustic_guitar" / "oddrate.flac", _tone(2.0, 8000), 8000)
    sf.write(root / "acoustic_guitar" / "short.wav", _tone(0.2, 16000), 16000)
    (root / "acoustic_guitar" / "corrupt.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    return root


def test_index_music21_bad_files(tmp_path, capsys):
    folder = _music_folder(tmp_path / "MUSIC")
    index, skipped = D.index_music21(folder, tmp_path / "music.csv")
    assert sorted(index["path"].map(lambda p: p.split("/")[-1])) == ["good.wav", "oddrate.flac", "stereo.wav"]
    assert set(index["cls"]) == {"violin", "acoustic guitar"}
    assert sorted(skipped["path"].map(lambda p: p.split("/")[-1])) == ["corrupt.wav", "short.wav"]
    err = capsys.readouterr().err
    assert "corrupt.wav" in err and "short.wav" in err and "too short" in err
    assert len(pd.read_csv(tmp_path / "music.skipped.csv")) == 2
    # the json variant names a missing id: reported, skipped
    spec = tmp_path / "music.json"
    spec.write_text(json.dumps({"videos": {"violin": ["good", "gone"]}}))
    index, skipped = D.index_music21(folder, tmp_path / "music2.csv", json_path=spec, verbose=False)
    assert len(index) == 1 and skipped["reason"].str.contains("no such").all()
    # an index works as a dataset: stereo / odd-rate files are converted on reading
    cfg = get_config("smoke", {"data.dataset": str(tmp_path / "music.csv")}).data
    m = D.load_manifest(cfg)
    m["split"] = "train"
    item = D.MixtureDataset(cfg, m, k_sources=1, n_mix=2, items=1)[0]
    assert item["sources"].shape == (2, 1, cfg.segment_samples) and item["sources"].abs().sum() > 0
    m["split"] = "test"  # evaluation mixtures over an index's test rows
    ev = D.EvalMixtureDataset(cfg, "test2", m)
    assert len(ev) == 3 and all(set(ev[i]["classes"]) == {"violin", "acoustic guitar"} for i in range(3))
    assert ev[0]["sources"].shape == (2, cfg.segment_samples) and ev[0]["sources"].abs().max() <= 0.5


def test_index_vggsound_and_audiocaps(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(clips / "abc_000030.wav", _tone(1.5, 16000), 16000)
    sf.write(clips / "def_000010.wav", _tone(0.1, 16000), 16000)
    (tmp_path / "vgg.csv").write_text('abc,30,dog barking,train\ndef,10,"cat, meowing",test\nzzz,0,owl,test\n')
    index, skipped = D.index_vggsound(tmp_path / "vgg.csv", clips, tmp_path / "vgg_index.csv", verbose=False)
    assert list(index["cls"]) == ["dog barking"] and len(skipped) == 2
    sf.write(clips / "Yxyz.wav", _tone(1.5, 32000, 2), 32000)
    (tmp_path / "ac.csv").write_text(
        "audiocap_id,youtube_id,start_time,caption\n"
        "1,xyz,0,A man speaks over intermittent keyboard taps\n2,nope,0,Rain falls\n"
    )
    index, skipped = D.index_audiocaps(
        tmp_path / "ac.csv", clips, tmp_path / "ac_index.csv", split="test", verbose=False
    )
    assert index["phrases"].tolist() == ["A man speaks|Intermittent keyboard taps"] and len(skipped) == 1
    assert index["split"].tolist() == ["test"]


def test_cli_build_smoke(smoke_root, manifest, capsys):
    assert (
        data_cli(["build", "--profile", "smoke", "--what", "separation", "--root", str(smoke_root), "--no-record"]) == 0
    )
    assert f"{len(manifest)} clips, 0 rendered" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        data_cli(["build", "--profile", "nope"])


def test_loading_never_renders_a_missing_dataset(tmp_path, smoke_root, manifest, monkeypatch):
    from bimodal.datasets.manifest import build_command
    from bimodal.surrogate.corpus import load_corpus

    monkeypatch.setattr(build, "render_clip", lambda *a, **k: pytest.fail("loading rendered a clip"))
    cfg = get_config("smoke", {"data.root": str(tmp_path)}).data
    command = f"bimodal data build --profile smoke --what separation --root {tmp_path}"
    with pytest.raises(D.DatasetNotBuilt, match=f"manifest.csv does not exist; run `{command}`"):
        D.load_manifest(cfg)
    with pytest.raises(D.DatasetNotBuilt, match="evaluation set 'test2' needs .* run `bimodal data build"):
        D.EvalMixtureDataset(cfg, "test2")
    with pytest.raises(
        D.DatasetNotBuilt, match="embedding corpus in csound .* --what embedding --set embedding.soundfonts=csound"
    ):
        load_corpus("smoke", tmp_path, ("csound",))
    # a size no profile has: the command says which fields to set
    big = get_config("smoke", {"data.clips_per_class": 7}).data
    assert build_command(big) == (
        "bimodal data build --profile quick --what separation --set data.clip_samples=16383 "
        "--set data.clips_per_class=7 --set data.embedding_clips_per_label=2"
    )
    # a built dataset with a clip gone names the clip; the complete one loads as built
    complete = get_config("smoke", {"data.root": str(smoke_root)}).data
    assert list(D.load_manifest(complete)["sha256"]) == list(manifest["sha256"])
    gone = Path(manifest["path"].iloc[3])
    moved = gone.rename(gone.with_suffix(".bak"))
    try:
        with pytest.raises(
            D.DatasetNotBuilt, match=f"lacks 1 of its 126 clips \\(e.g. clips/{gone.parent.name}/{gone.name}\\)"
        ):
            D.load_manifest(complete)
    finally:
        moved.rename(gone)


def test_cli_build_takes_config_overrides(smoke_root, manifest, capsys):
    assert (
        data_cli(
            [
                "build",
                "--profile",
                "smoke",
                "--what",
                "separation",
                "--root",
                str(smoke_root),
                "--set",
                "data.clips_per_class=3",
                "--no-record",
            ]
        )
        == 0
    )
    assert f"{21 * 3} clips, 0 rendered" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        data_cli(["build", "--profile", "smoke", "--set", "data.nope=1"])
