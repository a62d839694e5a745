"""Datasets: the embedded SynthMUSIC-21 and the disjoint joint-embedding corpus (rendered by `bimodal data build`),
real-dataset indexes and the mixture samplers of Sections 3.2–3.4 / Algorithm 1 / Table 6.

- labels, soundfonts, melodies, styles, instruments, render: what one synthetic clip is made of;
- layout: where the datasets live, how clips are named and split; build: rendering them;
- manifest: loading a rendered dataset or an index (never rendering it);
- mixtures: training mixtures-of-mixtures and the fixed evaluation sets;
- captions, index: AudioCaps phrases and the real-data indexes; cli: `bimodal data`.
"""

from bimodal.datasets.build import build_embedding_corpus, build_synthmusic21
from bimodal.datasets.captions import split_caption
from bimodal.datasets.index import index_audiocaps, index_music21, index_vggsound
from bimodal.datasets.labels import CLASSES, mixture_prompt, single_prompt
from bimodal.datasets.layout import embedding_dir, synthmusic21_dir
from bimodal.datasets.manifest import DatasetNotBuilt, load_manifest, splits_share_no_melody
from bimodal.datasets.mixtures import (
    EVAL_SETS,
    EvalMixtureDataset,
    MixtureDataset,
    collate_mixtures,
    composition_path,
    make_composition,
)

__all__ = [
    "CLASSES",
    "single_prompt",
    "mixture_prompt",
    "build_synthmusic21",
    "build_embedding_corpus",
    "load_manifest",
    "DatasetNotBuilt",
    "splits_share_no_melody",
    "synthmusic21_dir",
    "embedding_dir",
    "MixtureDataset",
    "collate_mixtures",
    "EvalMixtureDataset",
    "EVAL_SETS",
    "composition_path",
    "make_composition",
    "split_caption",
    "index_music21",
    "index_vggsound",
    "index_audiocaps",
]
