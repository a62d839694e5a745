"""The training engine on the smoke profile: the loss falls, SIGKILL + restart ends where an uninterrupted run
ends, 2 gloo processes match one process on the combined batch, cached runs are not retrained."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from bimodal.config import ConfigError, get_config
from conftest import fit_fixed_batch, smoke_environment


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from smoke_environment(tmp_path_factory.mktemp("train"))


def _cfg(**over):
    base = {"train.num_threads": 1}
    base.update({k.replace("__", "."): v for k, v in over.items()})
    return get_config("smoke", base)


def _fixed_batch(cfg, manifest, n=4):
    from bimodal.datasets.mixtures import MixtureDataset, collate_mixtures
    from bimodal.train import _as_batch

    ds = MixtureDataset(cfg.data, manifest, "train", seed=0, items=n)
    ds.set_epoch(0)
    return _as_batch(collate_mixtures([ds[i] for i in range(n)]))


@pytest.mark.parametrize(
    "method, over",
    [
        ("proposed", {}),
        ("mix_and_separate", {}),
        ("proposed", {"train__single_source_input": "mom", "train__loss_domain": "waveform"}),
    ],
)
def test_loss_falls_on_a_fixed_batch(env, method, over):
    from bimodal.datasets.manifest import load_manifest
    from bimodal.backends import load_embedding
    from bimodal.train import Objective, build_separator

    cfg = _cfg(train__method=method, **over)
    torch.manual_seed(0)
    emb = load_embedding(cfg.embedding)
    sep = build_separator(cfg, emb)
    batch = _fixed_batch(cfg, load_manifest(cfg.data))
    objective = Objective(cfg, sep, emb)
    totals, logged = fit_fixed_batch(objective, sep, batch)
    expected = {"proposed": {"url", "cnt", "crl", "total"}, "mix_and_separate": {"url", "total"}}[method]
    assert set(logged) == expected
    assert sum(totals[-3:]) / 3 < 0.8 * sum(totals[:3]) / 3, totals


def test_semi_supervised_adds_the_supervised_term(env):
    from bimodal.datasets.manifest import load_manifest
    from bimodal.backends import load_embedding
    from bimodal.train import Objective, build_separator

    cfg = _cfg(train__method="semi_supervised", data__single_source_fraction=0.25)
    emb = load_embedding(cfg.embedding)
    sep = build_separator(cfg, emb)
    manifest = load_manifest(cfg.data)
    loss, logged = Objective(cfg, sep, emb)(_fixed_batch(cfg, manifest), _fixed_batch(cfg, manifest))
    t = cfg.train
    assert {"sup_url", "twl", "url", "cnt", "crl"} <= set(logged)
    assert logged["total"] == pytest.approx(t.lambda_s * logged["sup_url"] + t.lambda_u * logged["twl"], rel=1e-5)
    assert logged["twl"] == pytest.approx(
        t.alpha * logged["cnt"] + t.beta * logged["crl"] + t.gamma * logged["url"], rel=1e-5
    )


def test_supervised_cnt_term_has_the_configured_weight(env):
    # Table 13: supervised L_URL + w · L_CNT. On one fixed batch (the same separator, so the same predictions) the
    # loss with weight w minus the loss with weight 0 is w times L_CNT of the predictions, computed here directly
    from bimodal import losses as L
    from bimodal.backends import load_embedding
    from bimodal.datasets.manifest import load_manifest
    from bimodal.train import Objective, build_separator, uses_cnt

    w = 0.37
    plain = _cfg(train__method="supervised", data__k_sources=1)
    constrained = _cfg(train__method="supervised", data__k_sources=1, train__supervised_cnt_weight=w)
    assert not uses_cnt(plain) and uses_cnt(constrained)
    emb = load_embedding(plain.embedding)
    sep = build_separator(plain, emb).eval()
    batch = _fixed_batch(plain, load_manifest(plain.data))
    assert batch.sources.shape[2] == 1  # single sources
    loss0, logged0 = Objective(plain, sep, emb)(batch)
    loss_w, logged_w = Objective(constrained, sep, emb)(batch)
    assert set(logged0) == {"url", "total"} and set(logged_w) == {"url", "cnt", "total"}
    assert logged_w["url"] == pytest.approx(logged0["url"], rel=1e-6)

    with torch.no_grad():
        tokens, mask = Objective(plain, sep, emb)._tokens(batch.mixture_prompts)
        wave = sep(batch.mom, tokens, mask)["wave"]  # [B, N, T]
        B, N, T = wave.shape
        audio = emb.embed_audio(wave.reshape(B * N, T), plain.data.sample_rate).reshape(B, N, 1, -1)
        prompts = [p for rows in batch.source_prompts for row in rows for p in row]
        text = emb.embed_text(prompts)[0].reshape(B, N, 1, -1)
        ids = torch.tensor([hash(p) % 1000003 for p in prompts]).reshape(B, N, 1)  # equal text -> equal id
        cnt = float(L.cnt_loss(audio, text, emb.logit_scale, text_ids=ids))
    assert cnt > 0.1  # an untrained separator: far from zero, so the check below can fail
    assert logged_w["cnt"] == pytest.approx(cnt, rel=1e-4)
    assert float((loss_w - loss0).detach()) == pytest.approx(w * cnt, rel=1e-4)
    loss_w.backward()  # the L_CNT term reaches the separator
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in sep.parameters())


def test_a_prompt_tuned_run_scores_l_cnt_against_its_tuned_prompts(env, tmp_path, monkeypatch):
    # Table 15: the run fits its prompts first (prompts.pt), then every L_CNT of training reads those embeddings
    from bimodal import losses as L
    from bimodal.train import train_run

    seen = []
    real = L.cnt_loss

    def recording(audio, text, *args, **kwargs):
        seen.append(text.detach().reshape(-1, text.shape[-1]).clone())
        return real(audio, text, *args, **kwargs)

    monkeypatch.setattr(L, "cnt_loss", recording)
    cfg = _cfg(train__epochs=1, train__cnt_prompt_length=2, train__cnt_prompt_clips=1, train__cnt_prompt_steps=3)
    train_run(cfg, tmp_path / "run", progress=False)
    saved = torch.load(tmp_path / "run" / "prompts.pt", weights_only=True)
    assert len(saved["embeddings"]) == 21 and len(saved["loss"]) == 3
    tuned = torch.stack(list(saved["embeddings"].values()))  # [21, D]
    assert seen
    for text in seen:  # every text embedding L_CNT saw is one of the tuned prompts
        assert torch.cdist(text, tuned).min(dim=1).values.max() < 1e-5


def _train_cmd(run_dir, epochs=3):
    return [
        sys.executable,
        "-m",
        "bimodal",
        "train",
        "--profile",
        "smoke",
        "--run-dir",
        str(run_dir),
        "--set",
        f"train.epochs={epochs}",
        "--set",
        "train.num_threads=1",
    ]


@pytest.mark.slow
def test_sigkill_then_restart_matches_an_uninterrupted_run(env):
    clean, killed = env / "clean", env / "killed"
    subprocess.run(_train_cmd(clean), check=True, env=os.environ.copy(), capture_output=True, timeout=600)
    proc = subprocess.Popen(
        _train_cmd(killed), env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline:  # kill it as soon as the first epoch's checkpoint is on disk
        epochs = killed / "epochs.csv"
        if epochs.exists() and len(pd.read_csv(epochs)) >= 1 and (killed / "last.pt").exists():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "the run finished before it could be killed"
    subprocess.run(_train_cmd(killed), check=True, env=os.environ.copy(), capture_output=True, timeout=600)
    a = json.loads((clean / "summary.json").read_text())
    b = json.loads((killed / "summary.json").read_text())
    assert a["test2"] == b["test2"] and a["best_epoch"] == b["best_epoch"]
    sa = torch.load(clean / "best.pt", weights_only=True)["state_dict"]
    sb = torch.load(killed / "best.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert len(pd.read_csv(killed / "epochs.csv")) == 3  # the interrupted epoch is not logged twice


def test_finished_run_is_cached(env):
    from bimodal.train import train_run

    cfg = _cfg(train__epochs=1, train__method="mix_and_separate")
    first = train_run(cfg, progress=False)
    mtime = (Path(first["run_dir"]) / "summary.json").stat().st_mtime_ns
    again = train_run(cfg, progress=False)
    assert again == first and (Path(first["run_dir"]) / "summary.json").stat().st_mtime_ns == mtime
    assert {"sdr", "sir", "sar", "si_sdr", "sdri"} <= set(first["test2"])
    assert first["test2"]["sdr"]["n"] + first["test2"]["sdr"]["n_skipped"] == 6  # smoke: data.test_mixtures


def test_a_run_being_trained_elsewhere_is_waited_for_not_trained_twice(env, tmp_path):
    """Two notebooks of a parallel batch that need one run: the second waits for the first's lock, then returns the
    first's summary instead of training (here a hand-written summary stands for the other process's result)."""
    import threading

    from bimodal.train import _run_lock, train_run

    run_dir = tmp_path / "shared-run"
    cfg = _cfg(train__epochs=1, train__method="mix_and_separate")
    result = {}
    with _run_lock(run_dir):  # "the other process" holds the run
        waiter = threading.Thread(
            target=lambda: result.update(train_run(cfg, run_dir, progress=False)), daemon=True
        )  # a waiter stuck on a broken lock must not keep pytest alive
        waiter.start()
        waiter.join(timeout=2.0)
        assert waiter.is_alive(), "train_run did not wait for the lock"
        (run_dir / "summary.json").write_text(json.dumps({"finished": True, "by": "other process"}))
    waiter.join(timeout=60)
    assert not waiter.is_alive()
    assert result == {"finished": True, "by": "other process"}
    assert not (run_dir / "last.pt").exists()  # nothing was trained by the waiter


def _ddp_worker(rank, world, init_file, cfg_dict, out_dir):
    import torch.distributed as dist

    from bimodal.config import from_dict
    from bimodal.datasets.manifest import load_manifest
    from bimodal.backends import load_embedding
    from bimodal.train import Objective, build_separator

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    cfg = from_dict(cfg_dict)
    emb = load_embedding(cfg.embedding)  # before seeding: a first load draws random numbers
    torch.manual_seed(0)
    sep = build_separator(cfg, emb)
    _freeze_batchnorm(sep)
    model = torch.nn.parallel.DistributedDataParallel(sep)
    batch = _fixed_batch(cfg, load_manifest(cfg.data), n=4)
    local = type(batch)(
        batch.sources[rank * 2 : (rank + 1) * 2],
        batch.mixture_prompts[rank * 2 : (rank + 1) * 2],
        batch.source_prompts[rank * 2 : (rank + 1) * 2],
    )
    opt = torch.optim.SGD(sep.parameters(), lr=0.1)
    loss, _ = Objective(cfg, model, emb)(local)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if rank == 0:
        torch.save(sep.state_dict(), Path(out_dir) / "ddp.pt")
    # both ranks leave together: a rank that tears gloo down while the other still holds the group aborted
    # ("terminate called without an active exception", SIGABRT) once in CI
    dist.barrier()
    dist.destroy_process_group()


def _freeze_batchnorm(module):
    # BatchNorm statistics are per process under DDP on the CPU (SyncBatchNorm needs a GPU; train_run converts to
    # it on GPUs). Using running statistics on both sides isolates what DDP must guarantee: averaged gradients and
    # contrastive negatives gathered across processes.
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_combined_batch(env, tmp_path):
    import torch.multiprocessing as mp

    from bimodal.datasets.manifest import load_manifest
    from bimodal.backends import load_embedding
    from bimodal.train import Objective, build_separator

    cfg = _cfg(train__gather_negatives=True)
    load_manifest(cfg.data)  # build the data once, before the workers start
    workers = mp.spawn(
        _ddp_worker, args=(2, str(tmp_path / "init"), cfg.to_dict(), str(tmp_path)), nprocs=2, join=False
    )
    deadline = time.monotonic() + 300  # seconds here; a gloo rendezvous that never completes must fail, not hang
    while not workers.join(timeout=5):
        if time.monotonic() > deadline:
            for proc in workers.processes:
                proc.kill()
            pytest.fail("the two gloo processes did not finish within 300 s")
    emb = load_embedding(cfg.embedding)
    torch.manual_seed(0)
    sep = build_separator(cfg, emb)
    _freeze_batchnorm(sep)
    opt = torch.optim.SGD(sep.parameters(), lr=0.1)
    loss, _ = Objective(cfg, sep, emb)(_fixed_batch(cfg, load_manifest(cfg.data), n=4))
    opt.zero_grad()
    loss.backward()
    opt.step()
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    single = sep.state_dict()
    worst = max((ddp[k].float() - single[k].float()).abs().max().item() for k in single)
    assert worst < 1e-5, worst


def test_runs_the_cache_treats_as_equal_give_the_same_metrics(env, tmp_path):
    """Issue: the same run id once gave 6.41 and 6.70 dB. What changes a run's rounding (threads, compute path, CPU
    instruction set, torch) is part of its id, so two trainings under one id agree; here to 0.01 dB (bit-identical
    in fact), and a thread count or compute path that differs gives another id."""
    from bimodal import compute
    from bimodal.train import run_id, train_run

    cfg = _cfg(train__epochs=2, train__method="proposed")
    a = train_run(cfg, tmp_path / "a", progress=False)
    b = train_run(cfg, tmp_path / "b", progress=False)
    for metric in ("sdr", "sir", "sar"):
        assert abs(a["test2"][metric]["mean"] - b["test2"][metric]["mean"]) < 0.01
    assert a["execution"] == b["execution"] and a["execution"]["threads"] == "1"
    assert {"path", "torch", "cpu", "threads", "device", "processes"} <= set(a["execution"])
    assert run_id(_cfg(train__num_threads=2)) != run_id(_cfg())
    with compute.reference_impl():
        reference_id = run_id(_cfg())
    assert reference_id != run_id(_cfg())


def test_the_same_embedding_weights_under_two_names_are_one_run():
    from bimodal.train import run_id

    assert run_id(_cfg(embedding__checkpoint="")) == run_id(_cfg(embedding__checkpoint="surrogate_1sf_600"))
    assert run_id(_cfg(embedding__checkpoint="surrogate")) != run_id(_cfg())  # other weights, other run


def test_cnt_reference_orders_clean_below_unseparated_and_matches_the_objective(env):
    # the teacher charges the true single sources less than their component mixture, and that less than the MoM;
    # each number is the objective's own L_CNT of that prediction on the run's first training batch
    from bimodal.backends import load_embedding
    from bimodal.cnt_reference import cnt_reference
    from bimodal.datasets.manifest import load_manifest
    from bimodal.train import Objective, build_separator

    cfg = _cfg(train__method="proposed")
    emb = load_embedding(cfg.embedding)
    ref = cnt_reference(cfg, batches=1, embedding=emb)
    assert ref["clean"] < ref["component"] < ref["mom"]
    batch = _fixed_batch(cfg, load_manifest(cfg.data), n=cfg.train.batch_size)  # the engine's batch 0 of epoch 0
    objective = Objective(cfg, build_separator(cfg, emb), emb)
    with torch.no_grad():
        assert float(objective.cnt(batch.sources, batch.source_prompts)) == pytest.approx(ref["clean"], rel=1e-5)


def test_cnt_floor_hinges_l_cnt_in_the_total_and_keeps_it_in_the_log(env):
    # train.cnt_floor=clean: total = α·max(L_CNT − c, 0) + β·L_CRL + γ·L_URL; the log keeps the raw L_CNT. Above
    # the floor the total is the plain one minus α·c; with the floor above L_CNT, L_CNT's gradient is gone
    from bimodal.backends import load_embedding
    from bimodal.datasets.manifest import load_manifest
    from bimodal.train import Objective, build_separator

    cfg = _cfg(train__method="proposed")
    emb = load_embedding(cfg.embedding)
    sep = build_separator(cfg, emb).eval()
    batch = _fixed_batch(cfg, load_manifest(cfg.data))
    plain, logged = Objective(cfg, sep, emb)(batch)
    floored = Objective(cfg, sep, emb)
    floored.cnt_floor = 0.5 * logged["cnt"]
    below, logged_below = floored(batch)
    assert logged_below["cnt"] == pytest.approx(logged["cnt"], rel=1e-6)
    assert float((plain - below).detach()) == pytest.approx(cfg.train.alpha * 0.5 * logged["cnt"], rel=1e-4)
    floored.cnt_floor = 2.0 * logged["cnt"]
    above, _ = floored(batch)
    no_cnt = cfg.train.beta * logged["crl"] + cfg.train.gamma * logged["url"]
    assert float(above.detach()) == pytest.approx(no_cnt, rel=1e-4)
    with pytest.raises(ConfigError, match="train.cnt_floor"):
        _cfg(train__method="mix_and_separate", train__cnt_floor="clean")


def test_a_floored_run_measures_its_floor_on_its_own_batches(env):
    from bimodal.cnt_reference import cnt_reference
    from bimodal.train import train_run

    cfg = _cfg(train__method="proposed", train__cnt_floor="clean", train__epochs=1)
    summary = train_run(cfg, progress=False)
    assert summary["cnt_floor_nats"] == pytest.approx(cnt_reference(cfg)["clean"], rel=1e-6)
