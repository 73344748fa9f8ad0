"""Reconstruction: each quality level matches the original's Griffin-Lim SC, without
seams; progress, cancellation and seeding work."""
from __future__ import annotations

import librosa
import numpy as np
import pytest

from musicoder import reconstruct, spectral
from musicoder.errors import InputError


def test_stft_matches_librosa_and_inverts(demo_samples):
    ours = spectral.stft(demo_samples)
    ref = librosa.stft(demo_samples, n_fft=spectral.N_FFT, hop_length=spectral.HOP, window="hann", center=True)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-4 * np.abs(ref).max()
    back = spectral.istft(ours, len(demo_samples))
    assert np.abs(back - demo_samples).max() < 1e-4


def test_log_transform_round_trips():
    mag = np.array([[0.0, 1e-6, 0.5, 3.0]], np.float32)
    back = spectral.from_log(spectral.to_log(mag))
    assert np.allclose(back[0, 2:], mag[0, 2:], rtol=1e-5)
    assert np.allclose(back[0, :2], spectral.LOG_FLOOR, rtol=1e-5)


@pytest.fixture(scope="module")
def demo_magnitude(demo_samples):
    return spectral.magnitude(demo_samples)


@pytest.mark.parametrize("level", list(reconstruct.QUALITIES))
def test_each_level_reaches_the_original_griffin_lim(level, demo_samples, demo_magnitude):
    q = reconstruct.QUALITIES[level]
    n = len(demo_samples)
    ours = reconstruct.reconstruct(demo_magnitude, q, length=n)
    plain = librosa.griffinlim(demo_magnitude, n_iter=q.reference_iterations, hop_length=spectral.HOP,
                               n_fft=spectral.N_FFT, momentum=0.0, init="random", random_state=0, length=n)
    assert len(ours) == n
    assert spectral.spectral_convergence_db(ours, demo_magnitude) <= spectral.spectral_convergence_db(plain, demo_magnitude)


def test_levels_improve_in_order(demo_samples, demo_magnitude):
    sc = [spectral.spectral_convergence_db(reconstruct.reconstruct(demo_magnitude, q, length=len(demo_samples)),
                                           demo_magnitude) for q in reconstruct.QUALITIES]
    assert sc[0] > sc[1] > sc[2]


def test_phase_gradient_start_beats_random_phase(demo_samples, demo_magnitude):
    n = len(demo_samples)
    pghi = reconstruct.griffin_lim(demo_magnitude, 0, length=n, init="pghi")
    rand = reconstruct.griffin_lim(demo_magnitude, 0, length=n, init="random")
    assert spectral.spectral_convergence_db(pghi, demo_magnitude) < spectral.spectral_convergence_db(rand, demo_magnitude) - 3


def test_no_seams_in_a_long_clip():
    # A steady tone reconstructed in one pass has no clicks: the sample-to-sample
    # difference never jumps far above that of the tone itself.
    y = np.sin(2 * np.pi * 330 * np.arange(44100 * 12) / 44100).astype(np.float32) * 0.5
    out = reconstruct.reconstruct(spectral.magnitude(y), "lofi", length=len(y))
    core = out[4096:-4096]
    assert np.abs(np.diff(core)).max() < 1.5 * np.abs(np.diff(y)).max()


def test_same_seed_same_audio(demo_magnitude):
    a = reconstruct.reconstruct(demo_magnitude, "lofi", seed=3)
    b = reconstruct.reconstruct(demo_magnitude, "lofi", seed=3)
    assert np.array_equal(a, b)


def test_progress_is_reported_and_cancellation_stops(demo_magnitude):
    seen = []
    reconstruct.reconstruct(demo_magnitude, "lofi", on_progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == reconstruct.QUALITIES["lofi"].iterations
    calls = []

    def cancel_after_three():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(reconstruct.Cancelled):
        reconstruct.reconstruct(demo_magnitude, "hifi", should_cancel=cancel_after_three)
    assert len(calls) == 4


def test_unknown_quality_is_refused(demo_magnitude):
    with pytest.raises(InputError, match="lofi, standard, hifi") as err:
        reconstruct.reconstruct(demo_magnitude, "ultra")
    assert err.value.code == "unknown_quality"


def test_a_starting_phase_is_used_and_checked(demo_samples, demo_magnitude):
    # Started from the true phase, there is nothing left to retrieve: the music comes back
    # (the engine starts a texture transfer from the music's own phase for this reason).
    n = len(demo_samples)
    phase = np.angle(spectral.stft(demo_samples))
    back = reconstruct.reconstruct(demo_magnitude, "lofi", length=n, phase=phase)
    assert spectral.spectral_convergence_db(back, demo_magnitude) < -40
    assert np.corrcoef(back, demo_samples)[0, 1] > 0.99
    with pytest.raises(ValueError, match="does not match"):
        reconstruct.reconstruct(demo_magnitude, "lofi", length=n, phase=phase[:, :-1])


@pytest.mark.parametrize("length", [spectral.HOP * 40, spectral.HOP * 40 + 77])
def test_the_fused_projection_is_istft_then_stft(length):
    # project_frames does overlap-add, cut, pad and framing in one in-place pass: it must
    # give what the two transforms give, at any length, and leave its input alone.
    rng = np.random.default_rng(1)
    shape = (spectral.n_frames(length), spectral.N_BINS)
    spec = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    before = spec.copy()
    fused = spectral.project_frames(spec, length)
    plain = spectral.stft_frames(spectral.istft_frames(spec, length))
    assert fused.shape == plain.shape and fused.dtype == np.complex64
    assert np.abs(fused - plain).max() < 1e-5 * np.abs(plain).max()
    assert np.array_equal(spec, before)
    with pytest.raises(ValueError, match="frames do not"):
        spectral.project_frames(spec, length + spectral.HOP)


def test_a_complex_start_is_its_phase(demo_samples, demo_magnitude):
    # The engine hands over the music's spectrum itself (no angles); any layout of it
    # must start from the same phase as its angle in radians.
    n = len(demo_samples)
    frames = spectral.stft_frames(demo_samples)
    by_angle = reconstruct.reconstruct(demo_magnitude, "lofi", length=n, phase=np.angle(frames.T))
    for start in (frames.T, np.ascontiguousarray(frames.T)):
        by_spectrum = reconstruct.reconstruct(demo_magnitude, "lofi", length=n, phase=start)
        assert np.abs(by_spectrum - by_angle).max() < 1e-4 * np.abs(by_angle).max()
    with pytest.raises(ValueError, match="frames do not make"):
        reconstruct.reconstruct(demo_magnitude, "lofi", length=n + spectral.HOP, phase=frames.T)


@pytest.fixture(scope="module")
def textured_magnitude(demo_samples):
    """A stand-in for a texture transfer's output: the music's magnitude blended in the log
    domain with a noise bed's, so that no signal has exactly this magnitude."""
    noise = np.random.default_rng(2).standard_normal(len(demo_samples)).astype(np.float32)
    music = spectral.to_log(spectral.magnitude(demo_samples))
    bed = spectral.to_log(spectral.magnitude(noise * 0.05))
    return spectral.from_log(0.7 * music + 0.3 * bed)


@pytest.mark.parametrize("level", list(reconstruct.QUALITIES))
def test_each_level_from_the_musics_phase_reaches_the_original_griffin_lim(level, demo_samples,
                                                                           textured_magnitude):
    # A conversion: phase retrieval on the new magnitude, started from the music's phase
    # (as engine.render does), against the original's plain Griffin-Lim on that magnitude.
    q = reconstruct.QUALITIES[level]
    n = len(demo_samples)
    ours = reconstruct.reconstruct(textured_magnitude, q, length=n, phase=spectral.stft_frames(demo_samples).T)
    plain = librosa.griffinlim(textured_magnitude, n_iter=q.reference_iterations, hop_length=spectral.HOP,
                               n_fft=spectral.N_FFT, momentum=0.0, init="random", random_state=0, length=n)
    assert (spectral.spectral_convergence_db(ours, textured_magnitude)
            <= spectral.spectral_convergence_db(plain, textured_magnitude))
