import numpy as np
import pytest
import soundfile as sf

from bimodal.audio import AudioError, load_audio, save_audio, resample


def test_stereo_44k_becomes_mono_at_target_rate(tmp_path):
    t = np.arange(44100) / 44100
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "st.wav", np.stack([left, left], axis=1), 44100)
    wave = load_audio(tmp_path / "st.wav", 11025)
    assert wave.dtype == np.float32 and wave.ndim == 1 and len(wave) == 11025
    # a 440 Hz tone survives resampling: its energy is at 440 Hz
    spec = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spec) * 11025 / len(wave) - 440) < 2


def test_bad_files_are_named(tmp_path):
    with pytest.raises(AudioError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav", 11025)
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="junk.wav: unreadable"):
        load_audio(tmp_path / "junk.wav", 11025)
    save_audio(tmp_path / "quiet.wav", np.zeros(1000), 11025)
    with pytest.raises(AudioError, match="quiet.wav: silent"):
        load_audio(tmp_path / "quiet.wav", 11025, allow_silent=False)
    with pytest.raises(AudioError, match="quiet.wav: too short"):
        load_audio(tmp_path / "quiet.wav", 11025, min_samples=5000)


def test_resample_round_trip_keeps_a_low_tone():
    t = np.arange(11025) / 11025
    x = np.sin(2 * np.pi * 220 * t).astype(np.float32)
    y = resample(resample(x, 11025, 48000), 48000, 11025)
    assert len(y) == len(x)
    assert np.max(np.abs(y[200:-200] - x[200:-200])) < 1e-2
