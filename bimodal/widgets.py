"""Listening widgets for the notebooks (ipywidgets). The logic lives in plain methods (`separate`, `answer`,
`table`) that the tests call directly; the widgets only wire buttons to them, so "driven from code" and "clicked in
JupyterLab" run the same path."""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

CHOICES = ("A", "B", "Both", "None")  # Table 16: "Which sound do you hear?"


def _audio(wave: np.ndarray, rate: int):
    from IPython.display import Audio

    # normalize=False keeps the loudness relations between mixture, estimate and ground truth audible
    return Audio(np.clip(np.asarray(wave, dtype=np.float32), -1, 1), rate=rate, normalize=False)


class SeparationPlayer:
    """Pick a test mixture (or load a file), type any prompt, hear mixture / estimate / ground truth for one or two
    models side by side, and see their spectrograms."""

    def __init__(self, models: dict, embedding, dataset, sample_rate: int):
        self.models, self.embedding, self.dataset, self.sample_rate = models, embedding, dataset, sample_rate
        self.mixture: np.ndarray | None = None
        self.references: dict[str, np.ndarray] = {}

    def load_item(self, index: int) -> list[str]:
        item = self.dataset[index]
        sources = item["sources"].numpy()
        self.mixture = sources.sum(0)
        self.references = dict(zip(item["classes"], sources))
        return list(item["classes"])

    def load_file(self, path: str | Path) -> None:
        from bimodal.audio import load_audio

        self.mixture, self.references = load_audio(path, self.sample_rate), {}

    def separate(self, prompt: str) -> dict[str, np.ndarray]:
        """{model name: estimate [T]} for the current mixture and prompt."""
        if self.mixture is None:
            raise ValueError("no mixture loaded: call load_item(i) or load_file(path) first")
        wave = torch.from_numpy(self.mixture)
        return {name: m.separate(wave, [prompt], self.embedding)[0].numpy() for name, m in self.models.items()}

    def figure(self, prompt: str, estimates: dict[str, np.ndarray]):
        from bimodal.plots import spectrogram_grid

        cols = {"mixture": self.mixture}
        cols.update({f"{name}: estimate": est for name, est in estimates.items()})
        truth = [c for c in self.references if c in prompt.lower()]
        if truth:
            cols[f"ground truth ({truth[0]})"] = self.references[truth[0]]
        return spectrogram_grid({prompt: cols}, self.sample_rate)

    def widget(self):
        import ipywidgets as w
        from IPython.display import display

        picker = w.IntSlider(0, 0, len(self.dataset) - 1, description="mixture")
        prompt = w.Text("The sound of piano", description="prompt")
        path = w.Text("", placeholder="or a file path", description="file")
        go = w.Button(description="Separate")
        out = w.Output()

        def on_click(_):
            out.clear_output()
            with out:
                if path.value:
                    self.load_file(path.value)
                else:
                    print("classes in this mixture:", ", ".join(self.load_item(picker.value)))
                estimates = self.separate(prompt.value)
                display(w.Label("mixture"), _audio(self.mixture, self.sample_rate))
                for name, est in estimates.items():
                    display(w.Label(f"{name}: estimate"), _audio(est, self.sample_rate))
                display(self.figure(prompt.value, estimates))

        go.on_click(on_click)
        return w.VBox([w.HBox([picker, path]), w.HBox([prompt, go]), out])


class ListeningTest:
    """Table 16 protocol: blind, shuffled trials of 2-source predictions by several models; the listener answers
    "Which sound do you hear? A / B / Both / None" where A and B are the two sources of the mixture and the query
    was A. Answers append to a CSV; `table()` computes Correct / Wrong / Both / None per model."""

    def __init__(
        self,
        models: dict,
        embedding,
        dataset,
        sample_rate: int,
        answers_csv: str | Path,
        n_trials: int = 20,
        seed: int = 0,
    ):
        self.models, self.embedding, self.dataset = models, embedding, dataset
        self.sample_rate, self.answers_csv = sample_rate, Path(answers_csv)
        rng = random.Random(seed)
        pairs = [(m, i) for m in models for i in rng.sample(range(len(dataset)), min(n_trials, len(dataset)))]
        rng.shuffle(pairs)  # blind and shuffled: model names never shown
        self.trials = pairs
        self.position = 0

    def trial(self, k: int | None = None) -> dict:
        """The k-th trial: the estimate to play and the two candidate classes (A = the queried one)."""
        k = self.position if k is None else k
        model, idx = self.trials[k]
        item = self.dataset[idx]
        a, b = item["classes"][0], item["classes"][1]
        mixture = item["sources"].sum(0)
        est = self.models[model].separate(mixture, [f"The sound of {a}"], self.embedding)[0].numpy()
        return {"trial": k, "model": model, "mixture_id": item["mixture_id"], "A": a, "B": b, "estimate": est}

    def answer(self, choice: str, listener: str = "anonymous", k: int | None = None) -> None:
        if choice not in CHOICES:
            raise ValueError(f"answer must be one of {CHOICES}, got {choice!r}")
        k = self.position if k is None else k
        model, idx = self.trials[k]
        self.answers_csv.parent.mkdir(parents=True, exist_ok=True)
        new = not self.answers_csv.exists()
        with open(self.answers_csv, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["time", "listener", "trial", "model", "dataset_index", "answer"])
            writer.writerow([time.strftime("%Y-%m-%dT%H:%M:%S"), listener, k, model, idx, choice])
        self.position = k + 1

    def table(self) -> pd.DataFrame:
        """Percent Correct (A) / Wrong (B) / Both / None per model, from every answer in the CSV."""
        if not self.answers_csv.exists():
            return pd.DataFrame()
        # keep_default_na=False: pandas would read the answer "None" as a missing value and drop it from the table
        return answers_table(pd.read_csv(self.answers_csv, keep_default_na=False))

    def proxy_table(self, margin: float = 0.05, floor: float = 0.0) -> pd.DataFrame:
        """An AUTOMATIC PROXY of the listening test, not a listening test: the embedding model "hears" each
        estimate and answers A or B by which prompt is more similar, Both when the two similarities are within
        `margin`, None when both are below `floor`."""
        rows = []
        for k in range(len(self.trials)):
            t = self.trial(k)
            with torch.no_grad():
                audio = self.embedding.embed_audio(torch.from_numpy(t["estimate"])[None], self.sample_rate)
                text = self.embedding.embed_text([f"The sound of {t['A']}", f"The sound of {t['B']}"])[0]
            sa, sb = (audio @ text.T)[0].tolist()
            choice = "None" if max(sa, sb) < floor else "Both" if abs(sa - sb) < margin else "A" if sa > sb else "B"
            rows.append({"model": t["model"], "answer": choice})
        return answers_table(pd.DataFrame(rows))

    def widget(self, listener: str = "anonymous"):
        import ipywidgets as w
        from IPython.display import display

        out = w.Output()
        buttons = [w.Button(description=c, disabled=True) for c in CHOICES]
        start = w.Button(description="Start", button_style="primary")

        def show():
            out.clear_output()
            with out:
                if self.position >= len(self.trials):
                    print("done — thank you")
                    display(self.table())
                    return
                t = self.trial()
                print(
                    f"trial {self.position + 1}/{len(self.trials)}: A = {t['A']}, B = {t['B']}. "
                    "Which sound do you hear?"
                )
                display(_audio(t["estimate"], self.sample_rate))

        def begin(_):
            start.disabled = True
            for b in buttons:
                b.disabled = False
            show()

        for b in buttons:
            b.on_click(lambda btn: (self.answer(btn.description, listener), show()))
        # The first trial plays on "Start", not when the cell runs: the listener is ready, and a batch run of the
        # notebook (papermill, no one listening) never separates into an output widget.
        start.on_click(begin)
        return w.VBox([w.HBox([start, *buttons]), out])


def answers_table(answers: pd.DataFrame) -> pd.DataFrame:
    """answers with columns model, answer (A/B/Both/None) -> percentages as in Table 16."""
    names = {"A": "Correct (%)", "B": "Wrong (%)", "Both": "Both (%)", "None": "None (%)"}
    counts = pd.crosstab(answers["model"], answers["answer"]).reindex(columns=list(CHOICES), fill_value=0)
    pct = (100 * counts.div(counts.sum(1), axis=0)).round(1).rename(columns=names)
    pct["n"] = counts.sum(1)
    return pct.reset_index()
