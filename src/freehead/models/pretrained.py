"""Pretrained networks fetched from package registries, checked by sha256 and cached.

- MobileNetV2 (224, ImageNet filters up to ``block_10``) comes from npm ``nsfwjs@4.4.0``,
  ``dist/models/mobilenet_v2/``: a TF.js Keras layers model with 8-bit weights, both files
  JavaScript modules.
- HSE FaceRes (a MobileNet trained for face identity on VGGFace2) comes from npm
  ``@vladmandic/human@3.3.6``, ``models/faceres.json`` + ``faceres.bin``: a TF.js graph
  model with float16 weights.

They are cached in ``$FREEHEAD_CACHE`` (default ``~/.cache/freehead``) under
``pretrained/<package>/``; once there, nothing is fetched again. See ``docs/models.md``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from freehead.errors import FreeheadError
from freehead.io_utils import atomic_path, cache_root, sha256_file

FETCH_HINT = "run: freehead data fetch-models"


@dataclass(frozen=True)
class NpmFiles:
    """Files taken from one npm package: ``files`` maps a path inside the package to its
    sha256."""

    spec: str
    folder: str
    files: tuple[tuple[str, str], ...]

    def local(self, root: Path) -> dict[str, Path]:
        """Where each file lies in the cache, by its path inside the package."""
        return {name: root / self.folder / Path(name).name for name, _ in self.files}


MOBILENET_V2 = NpmFiles(
    spec="nsfwjs@4.4.0",
    folder="pretrained/nsfwjs-4.4.0/mobilenet_v2",
    files=(
        ("dist/models/mobilenet_v2/model.min.js",
         "c32f104fd562b08cdff5ed69dfe1209643afa47e792fb12751d2949aa61a397a"),
        ("dist/models/mobilenet_v2/group1-shard1of1.min.js",
         "ef2e0a63f7d2c4960b37b024b669313f65d3c45cd59e9042636c55b39de53517"),
    ),
)  # fmt: skip


FACERES = NpmFiles(
    spec="@vladmandic/human@3.3.6",
    folder="pretrained/human-3.3.6/faceres",
    files=(
        ("models/faceres.json",
         "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df"),
        ("models/faceres.bin",
         "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b"),
    ),
)  # fmt: skip

PACKAGES = {"mobilenet_v2": MOBILENET_V2, "faceres": FACERES}
"""Every pretrained network freehead can fetch, by name."""


def check_files(package: NpmFiles, root: Path | None = None) -> Path:
    """The cache folder of ``package`` after checking every file's sha256; a FreeheadError
    naming the fix if one is missing or altered."""
    root = cache_root() if root is None else Path(root)
    local = package.local(root)
    for name, expected in package.files:
        path = local[name]
        if not path.is_file():
            raise FreeheadError(f"{path} is missing; {FETCH_HINT}")
        if sha256_file(path) != expected:
            raise FreeheadError(f"{path} is corrupt (sha256 differs); {FETCH_HINT}")
    return root / package.folder


def fetch(package: NpmFiles, root: Path | None = None) -> Path:
    """Fetch ``package`` with ``npm pack`` unless its files are cached and intact; returns
    the folder holding them."""
    root = cache_root() if root is None else Path(root)
    try:
        return check_files(package, root)
    except FreeheadError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        tarball = _npm_pack(package.spec, Path(tmp))
        _extract(package, tarball, root)
    return check_files(package, root)


def _npm_pack(spec: str, dest: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise FreeheadError(f"npm is not installed; {spec} comes from the npm registry "
                            "(install Node.js and npm, e.g. apt-get install npm)")  # fmt: skip
    cmd = [npm, "pack", spec, "--pack-destination", str(dest), "--silent"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        detail = (getattr(e, "stderr", "") or str(e)).strip().splitlines()
        raise FreeheadError(f"npm pack {spec} failed: {detail[-1] if detail else e}") from None
    tarballs = sorted(dest.glob("*.tgz"))
    if not tarballs:
        raise FreeheadError(f"npm pack {spec} made no tarball")
    return tarballs[0]


def _extract(package: NpmFiles, tarball: Path, root: Path) -> None:
    local = package.local(root)
    with tarfile.open(tarball, "r:gz") as tar:
        for name, expected in package.files:
            try:
                member = tar.extractfile(f"package/{name}")
            except KeyError:
                member = None
            if member is None:
                raise FreeheadError(f"{package.spec} lacks {name}; the package has changed")
            data = member.read()
            if hashlib.sha256(data).hexdigest() != expected:
                raise FreeheadError(f"{package.spec}: {name} differs from the recorded sha256")
            with atomic_path(local[name]) as tmp:
                tmp.write_bytes(data)


def package_folder(name: str, download: bool = False) -> Path:
    """The checked folder of the pretrained network ``name`` (a key of :data:`PACKAGES`);
    fetched first when ``download``."""
    return fetch(PACKAGES[name]) if download else check_files(PACKAGES[name])


def available(name: str) -> bool:
    """Whether the pretrained network ``name``'s files are cached and intact."""
    try:
        check_files(PACKAGES[name])
    except FreeheadError:
        return False
    return True


def mobilenet_v2_folder(download: bool = False) -> Path:
    """The checked folder of nsfwjs' MobileNetV2 files; fetched first when ``download``."""
    return package_folder("mobilenet_v2", download)
