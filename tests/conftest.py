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


def video_tree(samples: Path, root: Path, identities: tuple[str, ...]) -> Path:
    """A ``videos/`` folder under ``root`` with only ``identities`` (their files linked from
    the sample data), so the clip names and identities are those of the whole folder."""
    for identity in identities:
        folder = root / "videos" / identity
        folder.mkdir(parents=True)
        for video in sorted((samples / "videos" / identity).iterdir()):
            (folder / video.name).symlink_to(video)
    return root / "videos"


def read_video_frames(path: Path, indices: list[int]):
    """The frames of ``path`` at ``indices`` (RGB uint8), decoding from the start."""
    from freehead.media import open_frames

    wanted = set(indices)
    out = {}
    for i, frame in enumerate(open_frames(path).frames(max(indices) + 1)):
        if i in wanted:
            out[i] = frame
    return [out[i] for i in indices]


@pytest.fixture(scope="session")
def tiny_dataset(samples, tmp_path_factory) -> Path:
    """A small real dataset: 40 frames of franck's and cap's videos at 128², cut in clips of
    20; train = franck's first clip and cap12, held out = franck's second clip and cap13."""
    from freehead.data.preprocess import PreprocessOptions, preprocess

    tmp = tmp_path_factory.mktemp("tiny")
    videos = video_tree(samples, tmp, ("franck", "cap"))
    out = tmp / "dataset"
    options = PreprocessOptions(
        size=128,
        clip_frames=20,
        max_frames=40,
        heldout=("franck/franck/000020", "cap/cap13_edit2/*"),
    )
    summary = preprocess([str(videos)], out, options, show_progress=False)
    assert not summary.failed, summary.failed
    return out
