"""`bimodal embedding`: train, evaluate, ship and replay the offline CLAP-surrogate."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bimodal.config import get_config
from bimodal.embedding import ASSET
from bimodal.surrogate.cards import ship
from bimodal.surrogate.replay import replay, training_chain
from bimodal.surrogate.settings import TRAIN_EVALS, TRAIN_THREADS, default_out, non_default_fields
from bimodal.surrogate.training import train_surrogate
from bimodal.surrogate.zeroshot import evaluate


def cli(argv: list[str]) -> int:
    if argv[:1] == ["cnt-reference"]:  # its own parser (bimodal.cnt_reference); listed below for --help
        from bimodal import cnt_reference

        return cnt_reference.cli(argv[1:])
    p = argparse.ArgumentParser(prog="bimodal embedding", description="train / evaluate the offline CLAP-surrogate")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser(
        "cnt-reference",
        help="L_CNT the teacher charges clean sources, component mixtures and the MoM on training batches, per K "
        "-> results/cnt_reference.csv",
    )
    for name, text in (
        ("train", "train the surrogate on the TimGM6mb corpus"),
        ("eval", "zero-shot scores on SynthMUSIC-21 test clips -> results/, figures/"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument(
            "--profile",
            default="quick",
            choices=["smoke", "quick", "paper"],
            help="smoke (seconds), quick (default: minutes to an hour on a CPU) or paper (the paper's sizes)",
        )
        s.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="SECTION.FIELD=VALUE",
            help="config override, e.g. embedding.steps=800 (repeatable)",
        )
        if name == "train":
            s.add_argument(
                "--out",
                default=None,
                help="checkpoint path (default runs/embedding/<key>/surrogate.pt, "
                "keyed by the profile, data and embedding settings)",
            )
            s.add_argument(
                "--threads",
                type=int,
                default=TRAIN_THREADS,
                help="torch threads (default 1: the machine is shared; recorded in the checkpoint)",
            )
            s.add_argument(
                "--evals",
                type=int,
                default=TRAIN_EVALS,
                help="evaluations on the corpus validation split, which select the checkpoint",
            )
            s.add_argument(
                "--ship",
                nargs="?",
                const=ASSET.stem,
                default=None,
                metavar="NAME",
                help="also copy to bimodal/assets/NAME.pt (default: the default surrogate, surrogate_1sf_600), "
                "evaluate, and write the model card NAME_CARD.md",
            )
        else:
            s.add_argument("--checkpoint", default=None, help="a surrogate checkpoint (default: the config's)")
    sh = sub.add_parser("ship", help="ship a trained checkpoint as bimodal/assets/NAME.pt, evaluate it, write its card")
    sh.add_argument("--checkpoint", required=True, help="a checkpoint written by `bimodal embedding train`")
    sh.add_argument("--name", default=ASSET.stem, help="asset name (default: the default surrogate, surrogate_1sf_600)")
    sh.add_argument(
        "--profile",
        default="quick",
        choices=["smoke", "quick", "paper"],
        help="smoke (seconds), quick (default: minutes to an hour on a CPU) or paper (the paper's sizes)",
    )
    sh.set_defaults(set=[])
    rp = sub.add_parser(
        "replay",
        help="retrain a surrogate stage by stage as its checkpoints record (warm starts "
        "included), then evaluate the last stage",
    )
    rp.add_argument("--checkpoint", default="", help="a shipped name or a path (default: the default surrogate)")
    rp.add_argument("--out-dir", default=None, help="stage checkpoints (default runs/embedding/replay-<name>)")
    rp.add_argument("--dry-run", action="store_true", help="list the stages, do not train")
    rp.set_defaults(set=[], profile="quick")
    args = p.parse_args(argv)
    if args.cmd == "replay":
        stages = training_chain(args.checkpoint)
        for k, stage in enumerate(stages, 1):
            over = " ".join(
                f"--set embedding.{f}={v}" for f, v in non_default_fields(stage["config"], stage["profile"])
            )
            print(
                f"stage {k}: {stage['file']} ({stage['profile']} profile, {stage['threads']} threads, "
                f"{stage['evals']} evaluations) {over}"
            )
        if args.dry_run:
            return 0
        outs = replay(args.checkpoint, args.out_dir)
        result = evaluate(get_config(stages[-1]["profile"]), outs[-1])
        print(result["metrics"].to_string(index=False))
        return 0
    overrides = dict(kv.split("=", 1) for kv in args.set)
    cfg = get_config(args.profile, overrides)
    if args.cmd == "train" and (args.threads < 1 or args.evals < 1):
        p.error("--threads and --evals must be ≥ 1")
    torch.set_num_threads(getattr(args, "threads", TRAIN_THREADS))  # eval and ship: the default budget too
    if args.cmd == "train":
        out = Path(args.out) if args.out else default_out(cfg)
        summary = train_surrogate(cfg, out, evals=args.evals)
        print(f"saved {out} after {summary['seconds']} s; selected {summary['selected']}")
        if args.ship:
            ship(out, args.ship, cfg)
        return 0
    if args.cmd == "ship":
        ship(Path(args.checkpoint), args.name, cfg)
        return 0
    result = evaluate(cfg, args.checkpoint)
    print(result["metrics"].to_string(index=False))
    for path in result["paths"].values():
        print(f"wrote {path}")
    return 0
