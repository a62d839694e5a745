"""The listening widgets' logic (answers, table, proxy) and their buttons, driven from code with stand-in models."""

import pandas as pd
import pytest
import torch

from bimodal.widgets import CHOICES, ListeningTest, SeparationPlayer, answers_table

RATE = 8000


class HalfModel:
    """Stands in for a Separator: returns half the mixture whatever the prompt."""

    def separate(self, wave, prompts, embedding):
        return 0.5 * wave[None]


class PromptEmbedding:
    """Audio is 'heard' as the first class of the test mixture; text embeds one-hot by class name."""

    names = ["piano", "violin"]

    def embed_text(self, prompts, padding_states=False):
        return torch.stack([torch.eye(2)[[n in p for n in self.names].index(True)] for p in prompts])[None]

    def embed_audio(self, audio, rate):
        return torch.eye(2)[:1]


def dataset(n=4):
    return [{"sources": torch.randn(2, RATE), "classes": ["piano", "violin"], "mixture_id": f"m{i}"} for i in range(n)]


def test_answers_append_to_the_csv_and_make_the_table(tmp_path):
    test = ListeningTest(
        {"x": HalfModel(), "y": HalfModel()},
        PromptEmbedding(),
        dataset(),
        RATE,
        tmp_path / "answers.csv",
        n_trials=2,
        seed=0,
    )
    assert len(test.trials) == 4 and {m for m, _ in test.trials} == {"x", "y"}
    first = test.trial()
    assert first["A"] == "piano" and first["estimate"].shape == (RATE,)
    for choice in ("A", "A", "B", "None"):
        test.answer(choice)
    with pytest.raises(ValueError, match="Both"):
        test.answer("maybe")
    table = test.table().set_index("model")
    assert table["n"].sum() == 4  # the answer "None" counts (pandas reads it as missing by default)
    rows = pd.read_csv(tmp_path / "answers.csv", keep_default_na=False)
    assert list(rows["trial"]) == [0, 1, 2, 3] and list(rows["answer"]) == ["A", "A", "B", "None"]
    expected = answers_table(rows)
    assert table.reset_index().equals(expected)


def test_answers_table_percentages():
    table = answers_table(pd.DataFrame({"model": ["m"] * 4, "answer": ["A", "A", "B", "Both"]})).iloc[0]
    assert (table["Correct (%)"], table["Wrong (%)"], table["Both (%)"], table["None (%)"], table["n"]) == (
        50.0,
        25.0,
        25.0,
        0.0,
        4,
    )


def test_proxy_answers_by_the_closer_prompt(tmp_path):
    test = ListeningTest({"x": HalfModel()}, PromptEmbedding(), dataset(), RATE, tmp_path / "a.csv", n_trials=3)
    proxy = test.proxy_table().iloc[0]
    assert proxy["Correct (%)"] == 100.0 and proxy["n"] == 3


def test_widget_plays_nothing_before_start_then_records_clicks(tmp_path):
    pytest.importorskip("ipywidgets")
    test = ListeningTest({"x": HalfModel()}, PromptEmbedding(), dataset(), RATE, tmp_path / "a.csv", n_trials=2)
    box = test.widget("tester")
    start, *choices = box.children[0].children
    assert [b.description for b in choices] == list(CHOICES) and all(b.disabled for b in choices)
    start.click()
    assert start.disabled and not any(b.disabled for b in choices)
    choices[2].click()  # "Both"
    rows = pd.read_csv(tmp_path / "a.csv")
    assert list(rows["answer"]) == ["Both"] and list(rows["listener"]) == ["tester"] and test.position == 1


def test_player_needs_a_mixture_first():
    player = SeparationPlayer({"x": HalfModel()}, PromptEmbedding(), dataset(), RATE)
    with pytest.raises(ValueError, match="load_item"):
        player.separate("The sound of piano")
    assert player.load_item(0) == ["piano", "violin"]
    estimate = player.separate("The sound of piano")["x"]
    assert estimate.shape == (RATE,) and abs(estimate - 0.5 * player.mixture).max() < 1e-6


def test_player_button_shows_audio_and_a_figure(monkeypatch):
    # what a click in JupyterLab does, driven from code: the "Separate" callback displays audio and spectrograms
    pytest.importorskip("ipywidgets")
    import IPython.display
    import matplotlib
    from IPython.display import Audio

    matplotlib.use("Agg")
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    player = SeparationPlayer({"x": HalfModel(), "y": HalfModel()}, PromptEmbedding(), dataset(), RATE)
    box = player.widget()
    (picker, _), (prompt, go) = box.children[0].children, box.children[1].children
    picker.value, prompt.value = 1, "The sound of violin"
    go.click()
    audio = [o for o in shown if isinstance(o, Audio)]
    figures = [o for o in shown if isinstance(o, matplotlib.figure.Figure)]
    assert len(audio) == 3 and len(figures) == 1  # mixture and two estimates; one spectrogram grid
    # the grid has the mixture, both estimates and the ground truth of the prompted class
    titles = " | ".join(ax.get_title() for ax in figures[0].axes)
    assert "ground truth (violin)" in titles and "y: estimate" in titles, titles
