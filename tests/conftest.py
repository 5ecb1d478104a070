from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def samples() -> Path:
    """The real sample data, fetched once (``freehead data fetch-samples``; idempotent)."""
    from freehead.data.samples import fetch_samples

    folder = ROOT / "data" / "samples"
    fetch_samples(folder)
    return folder


def read_video_frames(path: Path, indices: list[int]):
    """The frames of ``path`` at ``indices`` (RGB uint8), decoding from the start."""
    from freehead.media import open_frames

    wanted = set(indices)
    out = {}
    for i, frame in enumerate(open_frames(path).frames(max(indices) + 1)):
        if i in wanted:
            out[i] = frame
    return [out[i] for i in indices]
