"""`bimodal data`: build SynthMUSIC-21 and the embedding corpus, rewrite the shipped compositions and melodies,
index real datasets."""

from __future__ import annotations

import argparse
import sys

import torch

from bimodal.config import ConfigError, get_config


def _overrides(parser: argparse.ArgumentParser, items: list[str], root: str | None) -> dict:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected SECTION.FIELD=VALUE")
        overrides[key] = value
    if root:
        overrides["data.root"] = root
    return overrides


def cli(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="bimodal data",
        description="Build SynthMUSIC-21 and the embedding corpus "
        "(incremental, deterministic), rewrite the shipped compositions, index real datasets.",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="render SynthMUSIC-21 and/or the embedding corpus (incremental)")
    b.add_argument(
        "--profile",
        default="quick",
        choices=["smoke", "quick", "paper"],
        help="smoke (seconds), quick (default: minutes to an hour on a CPU) or paper (the paper's sizes)",
    )
    b.add_argument("--what", default="all", choices=["separation", "embedding", "all"])
    b.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="config override, repeatable, e.g. data.clips_per_class=100 or "
        "embedding.soundfonts=timgm6mb,csound (the corpus SoundFonts to render)",
    )
    b.add_argument("--root", default=None, help="data root (default: $BIMODAL_DATA or <repo>/data)")
    b.add_argument("--no-record", action="store_true", help="do not append the build time to outputs/data_build.csv")
    b.add_argument("--workers", type=int, default=1, help="render in this many processes (same bytes)")
    c = sub.add_parser("compositions", help="rewrite the shipped val/test composition CSVs of a profile")
    c.add_argument(
        "--profile",
        default="quick",
        choices=["smoke", "quick", "paper"],
        help="smoke (seconds), quick (default: minutes to an hour on a CPU) or paper (the paper's sizes)",
    )
    m = sub.add_parser("melodies", help="re-extract the shipped melody table from the music21 corpus (minutes)")
    m.add_argument("--out", default=None)
    ix = sub.add_parser("index", help="index a real dataset from local files into the common CSV format")
    ix.add_argument("dataset", choices=["music21", "vggsound", "audiocaps"])
    ix.add_argument("--folder", required=True, help="folder with the audio files")
    ix.add_argument("--csv", default=None, help="the dataset's CSV (vggsound, audiocaps) or MUSIC json (music21)")
    ix.add_argument("--out", required=True, help="index CSV to write")
    ix.add_argument("--split", default="train", help="audiocaps: which split the CSV is")
    ix.add_argument("--min-seconds", type=float, default=1.0)
    args = ap.parse_args(argv)
    if args.cmd == "build":
        from bimodal.datasets.build import timed_build

        try:
            cfg = get_config(args.profile, _overrides(b, args.set, args.root))
        except ConfigError as exc:
            b.error(str(exc))
        from bimodal.utils import NotWritable, data_root, ensure_writable_dir

        try:
            ensure_writable_dir(data_root(cfg.data.root), "the data root (--root, $BIMODAL_DATA)")
        except NotWritable as exc:
            b.error(str(exc))
        torch.set_num_threads(1)
        if args.what in ("separation", "all"):
            timed_build("separation", cfg, not args.no_record, args.workers)
        if args.what in ("embedding", "all"):
            # in every SoundFont the profile's surrogate trains on (config embedding.soundfonts)
            for sf in cfg.embedding.soundfont_list:
                timed_build("embedding", cfg, not args.no_record, args.workers, sf)
        return 0
    if args.cmd == "compositions":
        from bimodal.datasets.mixtures import write_compositions

        for p in write_compositions(get_config(args.profile).data):
            print(f"wrote {p}")
        return 0
    if args.cmd == "melodies":
        from bimodal.datasets.melodies import MELODIES_CSV, extract_melodies

        extract_melodies(args.out or MELODIES_CSV)
        return 0
    from bimodal.datasets.index import index_audiocaps, index_music21, index_vggsound

    if args.dataset == "music21":
        index_music21(args.folder, args.out, json_path=args.csv, min_seconds=args.min_seconds)
    elif args.dataset == "vggsound":
        if not args.csv:
            ap.error("vggsound needs --csv (vggsound.csv)")
        index_vggsound(args.csv, args.folder, args.out, min_seconds=args.min_seconds)
    else:
        if not args.csv:
            ap.error("audiocaps needs --csv (train.csv / val.csv / test.csv)")
        index_audiocaps(args.csv, args.folder, args.out, split=args.split, min_seconds=args.min_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
