"""The offline CLAP-surrogate's own machinery (the model itself, its interface and loading live in
bimodal.embedding and bimodal.backends):

- settings: its training fields of the `embedding` config section and the CLI's defaults;
- corpus, batches, objectives, training: training it on the embedding corpus;
- zeroshot, figures: zero-shot evaluation on SynthMUSIC-21 test clips;
- cards: shipping a checkpoint as a package asset with its model card; replay: retraining a shipped one stage by
  stage from its records; cli: `bimodal embedding`.
"""

from bimodal.surrogate.cards import ship, write_card
from bimodal.surrogate.corpus import PROMPT, Corpus, load_corpus
from bimodal.surrogate.figures import plot_confusion, plot_prompt_similarity, prompt_similarity
from bimodal.surrogate.replay import replay, training_chain
from bimodal.surrogate.settings import default_out
from bimodal.surrogate.training import train_surrogate
from bimodal.surrogate.zeroshot import compare_shipped, evaluate, zero_shot_eval

__all__ = [
    "ship",
    "write_card",
    "PROMPT",
    "Corpus",
    "load_corpus",
    "plot_confusion",
    "plot_prompt_similarity",
    "prompt_similarity",
    "replay",
    "training_chain",
    "default_out",
    "train_surrogate",
    "compare_shipped",
    "evaluate",
    "zero_shot_eval",
]
