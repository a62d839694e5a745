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


@pytest.mark.parametrize("overrides, field", [
    ({"train.lerning_rate": 1}, "train.lerning_rate"),
    ({"dataa.k_sources": 2}, "dataa"),
    ({"data.k_sources": 7}, "data.k_sources"),
    ({"data.k_sources": "two"}, "data.k_sources"),
    ({"model.n_fft": 1024}, "model.n_fft"),
    ({"data.segment_samples": 9000}, "data.segment_samples"),
    ({"train.losses": "url+foo"}, "train.losses"),
    ({"train.method": "semi_supervised"}, "data.single_source_fraction"),
])
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        get_config("smoke", overrides)


def test_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile"):
        get_config("huge")
