import os
import pytest

from bimodal.config import ConfigError, get_config, from_dict, PROFILES


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_are_valid_and_hash_stably(profile):
    cfg = get_config(profile)
    assert cfg.profile == profile
    assert cfg.hash() == get_config(profile).hash()
    assert from_dict(cfg.to_dict()).hash() == cfg.hash()


def test_override_changes_hash_and_types_values():
    base = get_config("smoke")
    cfg = base.override({"train.method": "supervised", "data.k_sources": "3", "train.gather_negatives": "false"})
    assert cfg.train.method == "supervised" and cfg.data.k_sources == 3 and cfg.train.gather_negatives is False
    assert cfg.hash() != base.hash()
    assert base.train.method == "proposed"  # the original is untouched


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"train.lerning_rate": 1}, "train.lerning_rate"),
        ({"dataa.k_sources": 2}, "dataa"),
        ({"data.k_sources": 7}, "data.k_sources"),
        ({"data.k_sources": "two"}, "data.k_sources"),
        ({"model.n_fft": 1024}, "model.n_fft"),
        ({"data.segment_samples": 9000}, "data.segment_samples"),
        ({"train.losses": "url+foo"}, "train.losses"),
        ({"train.method": "semi_supervised"}, "data.single_source_fraction"),
        ({"embedding.soundfonts": "timgm6mb,fluidr3"}, "embedding.soundfonts"),
        ({"embedding.soundfonts": "csound,csound"}, "embedding.soundfonts"),
        ({"embedding.soundfonts": ""}, "embedding.soundfonts"),
        ({"embedding.objective": "triplet"}, "embedding.objective"),
    ],
)
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        get_config("smoke", overrides)


def test_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile"):
        get_config("huge")


def test_available_cpus_reads_the_cgroup_quota(tmp_path):
    from bimodal.utils import available_cpus

    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path) == affinity  # no cgroup files: the affinity mask
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == affinity  # v2, no quota
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert available_cpus(tmp_path) == 1  # half a CPU still gets one thread
    (tmp_path / "cpu.max").write_text(f"{100000 * (affinity + 8)} 100000\n")
    assert available_cpus(tmp_path) == affinity  # a quota above the mask does not add CPUs
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path) == 1  # v1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(tmp_path) == affinity  # v1, no quota


def test_hang_dump_writes_the_stacks_of_a_stuck_process(tmp_path):
    # the notebook tests rely on this to show where a hung kernel was
    import subprocess
    import sys

    dump = tmp_path / "stacks.txt"
    env = {**os.environ, "BIMODAL_HANG_DUMP": f"0.3:{dump}"}
    subprocess.run(
        [sys.executable, "-c", "import bimodal, time\ndef stuck_here():\n    time.sleep(1.2)\nstuck_here()"],
        env=env,
        check=True,
        timeout=60,
    )
    assert "stuck_here" in dump.read_text()


def test_surrogate_training_fields_leave_the_run_hash_alone():
    # a run depends on the embedding's weights (fingerprinted by bimodal.train), not on how they were trained
    base = get_config("quick")
    other = base.override({"embedding.soundfonts": "timgm6mb,csound", "embedding.steps": 2000})
    assert other.embedding.soundfont_list == ["timgm6mb", "csound"] and other.hash() == base.hash()
