"""CPU/GPU parity of the whole search: the same tracks from NumPy and CuPy.

Skipped without a CUDA device (``gpu_available()`` is False).
"""

from __future__ import annotations

import numpy as np
import pytest

from detectors import io
from detectors.backend import gpu_available
from detectors.config import SearchConfig
from detectors.search import find_moving_objects
from detectors.simulate import simulate_field

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The same 384x384, 6-frame field searched on the CPU and on the GPU."""
    if not gpu_available():
        pytest.skip("no CUDA device")
    field = simulate_field(
        seed=3,
        shape=(384, 384),
        n_frames=6,
        n_objects=4,
        snr_range=(8.0, 15.0),
        rate_range=(10.0, 80.0),
    )
    return _on_both_devices(field, tmp_path_factory.mktemp("gpu"), rate_max=40.0)


def _on_both_devices(field, folder, **config):
    """The field written as FITS to ``folder``, read back, and searched on the CPU and the GPU."""
    frames_dir, _ = io.write_simulated_field(field, folder)
    frames = io.load_frames(io.expand_paths([frames_dir])).frames
    return tuple(
        find_moving_objects(frames, config=SearchConfig(device=device, **config))
        for device in ("cpu", "gpu")
    )


def _paired(cpu_tracks, gpu_tracks):
    """Each CPU track with the GPU track nearest to it (mean position)."""
    centres = np.array([[t.x.mean(), t.y.mean()] for t in gpu_tracks])
    for track in cpu_tracks:
        d = np.hypot(*(centres - [track.x.mean(), track.y.mean()]).T)
        yield track, gpu_tracks[int(np.argmin(d))]


def test_gpu_run_block_names_the_gpu(results):
    cpu, gpu = results
    assert cpu.run["device"] == "cpu" and set(cpu.run["devices"].values()) == {"cpu"}
    assert gpu.run["device"].startswith("gpu")
    assert (
        gpu.run["devices"]["faint_search"].startswith("gpu") and gpu.run["devices"]["fit"] == "cpu"
    )


def test_gpu_finds_the_same_tracks_as_cpu(results):
    cpu, gpu = results
    assert len(cpu.tracks) > 0
    assert len(gpu.tracks) == len(cpu.tracks)
    pairs = list(_paired(cpu.tracks, gpu.tracks))
    assert len({id(g) for _, g in pairs}) == len(pairs), "two CPU tracks share one GPU track"
    for c, g in pairs:
        np.testing.assert_array_equal(g.frames, c.frames)
        np.testing.assert_allclose(g.x, c.x, atol=0.05)
        np.testing.assert_allclose(g.y, c.y, atol=0.05)
        assert g.stacked_snr == pytest.approx(c.stacked_snr, rel=0.02)


def test_gpu_faint_search_finds_the_same_movers_as_cpu(tmp_path):
    """Objects at per-frame SNR 3, found only by the faint search, on both devices."""
    if not gpu_available():
        pytest.skip("no CUDA device")
    field = simulate_field(
        seed=21,
        shape=(384, 384),
        n_frames=10,
        n_objects=4,
        snr_range=(3.0, 3.2),
        rate_range=(10.0, 40.0),
        satellite_prob=0.0,
    )
    cpu, gpu = _on_both_devices(field, tmp_path, rate_min=5.0, rate_max=48.0)
    faint_cpu = [t for t in cpu.tracks if t.origin == "faint"]
    faint_gpu = [t for t in gpu.tracks if t.origin == "faint"]
    assert len(faint_cpu) >= 3
    assert len(faint_gpu) == len(faint_cpu)
    assert gpu.run["faint_threshold"] == pytest.approx(cpu.run["faint_threshold"], abs=0.02)
    for c, g in _paired(faint_cpu, faint_gpu):
        np.testing.assert_allclose(g.x, c.x, atol=0.1)
        np.testing.assert_allclose(g.y, c.y, atol=0.1)
        assert g.stacked_snr == pytest.approx(c.stacked_snr, rel=0.02)


def test_fast_detector_on_the_gpu_hands_over_what_numpy_does(tmp_path):
    """The fast detector end to end (faint scan included) on CuPy and on NumPy; the work file
    from the GPU gives the detailed detector (CPU) the same tracks."""
    if not gpu_available():
        pytest.skip("no CUDA device")
    from detectors.search import detailed_detect, fast_detect

    field = simulate_field(
        seed=6, shape=(512, 512), n_frames=10, n_objects=14, snr_range=(2.5, 8.0),
        rate_range=(1.0, 60.0),
    )  # fmt: skip
    frames_dir, _ = io.write_simulated_field(field, tmp_path)
    frames = io.load_frames(io.expand_paths([frames_dir])).frames
    fast, tracks = {}, {}
    for device in ("cpu", "gpu"):
        config = SearchConfig(device=device, rate_min=1.0, rate_max=60.0, faint=True)
        fast[device] = fast_detect(frames, config=config)
        path = io.save_fast_result(tmp_path / f"{device}.npz", fast[device])
        tracks[device] = detailed_detect(io.load_fast_result(path), config=config)
    cpu, gpu = fast["cpu"], fast["gpu"]
    assert gpu.devices["faint_search"].startswith("gpu") and gpu.devices["difference"] != "cpu"
    assert set(cpu.devices.values()) == {"cpu"}
    assert len(gpu.tracklets) == len(cpu.tracklets) > 0
    assert len(gpu.slow) == len(cpu.slow)
    assert cpu.faint is not None and gpu.faint is not None
    assert len(gpu.faint) == len(cpu.faint) > 0
    assert gpu.faint.threshold == pytest.approx(cpu.faint.threshold, abs=0.02)
    np.testing.assert_allclose(np.sort(gpu.faint.x), np.sort(cpu.faint.x), atol=1.0)
    assert {t.origin for t in tracks["cpu"]} == {"fast", "slow", "faint"}
    assert len(tracks["gpu"]) == len(tracks["cpu"])
    for c, g in _paired(tracks["cpu"], tracks["gpu"]):
        assert g.origin == c.origin
        np.testing.assert_allclose(g.x, c.x, atol=0.1)
        np.testing.assert_allclose(g.y, c.y, atol=0.1)
