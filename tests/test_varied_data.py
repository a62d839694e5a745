"""The varied rendering of SynthMUSIC-21 (data.variety): deterministic, different from the basic rendering, which it
leaves unchanged, recorded per clip, in a folder and a run identity of its own."""

import numpy as np
import pytest

from bimodal.config import get_config
from bimodal.datasets.build import _melodies_by_split
from bimodal.datasets.render import VARIED_COLUMNS, VARIED_PRESETS, microphone_eq, render_clip, varied_params


@pytest.fixture(scope="module")
def melodies():
    return _melodies_by_split("separation", 0)["train"]


def test_varied_clip_is_deterministic_and_differs_from_basic(melodies):
    kw = dict(n_samples=16383, sample_rate=11025)
    basic, _ = render_clip("violin", melodies, [0, 0, 19, 3], **kw)
    again, _ = render_clip("violin", melodies, [0, 0, 19, 3], **kw)
    varied, info = render_clip("violin", melodies, [0, 0, 19, 3], variety="varied", **kw)
    varied2, info2 = render_clip("violin", melodies, [0, 0, 19, 3], variety="varied", **kw)
    assert np.array_equal(basic, again) and np.array_equal(varied, varied2) and info == info2
    assert not np.allclose(basic, varied, atol=1e-3)
    assert set(VARIED_COLUMNS) <= set(info)
    assert info["melody_id"] == render_clip("violin", melodies, [0, 0, 19, 3], **kw)[1]["melody_id"]  # same score


def test_varied_presets_are_drawn_from_the_class_variants():
    rng = np.random.default_rng(0)
    drawn = {(p["bank"], p["program"]) for p in (varied_params("accordion", rng, 21) for _ in range(60))}
    assert drawn == set(VARIED_PRESETS["accordion"])
    assert {(p["bank"], p["program"]) for p in (varied_params("flute", rng, 73) for _ in range(10))} == {(0, 73)}
    kits = {varied_params("drum", rng, -1)["kit"] for _ in range(60)}
    assert len(kits) > 2


def test_microphone_eq_boosts_and_cuts_at_its_centre_frequency():
    sr, f0 = 11025, 1000.0
    t = np.arange(sr) / sr
    tone = np.sin(2 * np.pi * f0 * t).astype(np.float32)
    up = microphone_eq(tone, [(f0, 6.0, 1.0)], sr)
    down = microphone_eq(tone, [(f0, -6.0, 1.0)], sr)
    gain = lambda y: 20 * np.log10(np.sqrt(np.mean(y[sr // 2 :] ** 2)) / np.sqrt(np.mean(tone[sr // 2 :] ** 2)))
    assert gain(up) == pytest.approx(6.0, abs=0.2) and gain(down) == pytest.approx(-6.0, abs=0.2)


def test_variety_has_its_folder_and_basic_runs_keep_their_identity():
    from bimodal.datasets.layout import synthmusic21_dir

    varied, basic = get_config("quick"), get_config("quick", {"data.variety": "basic"})
    assert varied.data.variety == "varied"  # the default (docs/DATA_CARD.md)
    assert synthmusic21_dir(varied.data) != synthmusic21_dir(basic.data)
    assert synthmusic21_dir(basic.data).name.endswith("_v2")  # the basic rendering keeps the folder it had
    assert "variety" not in basic.identity()["data"] and varied.identity()["data"]["variety"] == "varied"
    assert varied.hash() != basic.hash()
    with pytest.raises(Exception, match="data.variety"):
        get_config("quick", {"data.variety": "noisy"})
