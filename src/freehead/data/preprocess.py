"""Real video -> labelled face crops (``freehead preprocess``).

Each source (a video, a folder of frames, or an image) is decoded twice: once to track
the face in every frame, once to cut the crops after the crop boxes have been smoothed
over the whole clip. Long sources can be cut into clips of ``clip_frames`` frames; each
clip gets its own crop track, eyeball centres and labels. ``heldout_from`` splits a source
by time: its frames from a given one on make their own clips, held out.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from freehead.data.dataset import ClipInfo, Dataset, DatasetSettings
from freehead.errors import FreeheadError
from freehead.io_utils import atomic_write_json
from freehead.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FrameSource, open_frames
from freehead.perception.crop import CropConfig, crop_image
from freehead.perception.labels import FLAG_NO_FACE, LabelSummary, label_clip, track_frames
from freehead.perception.shape import MeanShape

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputSource:
    """One input to preprocess (a video, a folder of frames or an image): where it is and
    what its clips are called."""

    path: Path
    name: str  # clip name, or the prefix of its chunks' names
    identity: str


@dataclass(frozen=True)
class PreprocessOptions:
    size: int = 256
    crop: CropConfig = field(default_factory=CropConfig)
    clip_frames: int = 0  # 0: one clip per source
    max_frames: int | None = None
    heldout: tuple[str, ...] = ()
    jpeg_quality: int = 95
    heldout_from: tuple[tuple[str, int], ...] = ()
    """(source-name glob, frame): the matching sources' frames from ``frame`` on are cut
    into clips of their own (named by their first frame) and held out."""
    stills: bool = False
    """Images in a folder are separate photos, each its own one-frame clip, rather than
    the frames of one sequence (which share crop smoothing and eyeball centres)."""


@dataclass
class SourceResult:
    source: str
    frames_processed: int = 0
    seconds: float = 0.0
    clips: list[str] = field(default_factory=list)
    skipped_clips: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class FailedSource:
    """An input that could not be preprocessed, and why."""

    source: str
    error: str


@dataclass(frozen=True)
class ClipSummary:
    """A clip's entry in the run's summary: its identity, split and labels' figures."""

    identity: str
    split: str
    labels: LabelSummary

    def to_json(self) -> dict[str, object]:
        """One flat object: identity, split, then the label figures."""
        return {"identity": self.identity, "split": self.split} | asdict(self.labels)


@dataclass(frozen=True)
class PreprocessSummary:
    """What a ``freehead preprocess`` run did (its ``--json`` file; docs/data.md).

    ``clips`` counts the clips of this run's inputs (written now or already done),
    ``dataset_clips`` every clip in the dataset folder; ``frames_processed`` the frames
    decoded and tracked now, and ``frames_per_second`` those per second of wall time
    (``None`` when nothing was processed).
    """

    dataset: str
    clips: int
    clips_skipped: int
    frames: int
    frames_with_face: int
    frames_processed: int
    seconds: float
    frames_per_second: float | None
    workers: int
    failed: tuple[FailedSource, ...]
    dataset_clips: int
    per_clip: dict[str, ClipSummary]

    def to_json(self) -> dict[str, object]:
        per_clip = {name: clip.to_json() for name, clip in self.per_clip.items()}
        return asdict(self) | {"per_clip": per_clip}


def discover_sources(
    inputs: Iterable[str | Path], identity: str | None = None, stills: bool = False
) -> list[InputSource]:
    """Find the videos, frame folders and images under ``inputs``.

    Under a directory given as input, a source's identity is its top folder below that
    directory (VoxCeleb's ``id/video/clip`` layout) and its name is its path below it
    without the extension; a source given directly is named after its file stem and is
    its own identity. ``identity`` overrides the identity of every source. With
    ``stills`` each image in a folder is a source of its own (``folder/stem``) instead of
    a frame of the folder's sequence.
    """
    found: list[InputSource] = []
    for raw in inputs:
        root = Path(raw)
        if not root.exists():
            raise FreeheadError(f"no such file or folder: {root}")
        if root.is_file():
            found.append(InputSource(root, root.stem, identity or root.stem))
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            here = Path(dirpath)
            rel = here.relative_to(root)
            files = sorted(f for f in filenames if not f.startswith("."))
            images = [f for f in files if Path(f).suffix.lower() in IMAGE_EXTENSIONS]
            parts = rel.parts or (root.name,)
            if images and stills:
                found += [InputSource(here / f, "/".join((*parts, Path(f).stem)),
                                      identity or parts[0]) for f in images]  # fmt: skip
            elif images:
                found.append(InputSource(here, "/".join(parts), identity or parts[0]))
            for f in files:
                if Path(f).suffix.lower() in VIDEO_EXTENSIONS:
                    parts = (*rel.parts, Path(f).stem)
                    ident = identity or (parts[0] if len(parts) > 1 else parts[-1])
                    found.append(InputSource(here / f, "/".join(parts), ident))
    names = [s.name for s in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise FreeheadError(f"two inputs would make clips with the same name: {dupes[0]}")
    return sorted(found, key=lambda s: s.name)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise FreeheadError(f"--shard takes i/n, e.g. 0/4, not {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise FreeheadError(f"--shard {text}: need 0 <= i < n")
    return i, n


def chunk_ranges(
    num_frames: int, clip_frames: int, cut: int | None = None
) -> list[tuple[int, int]]:
    """Frame ranges [start, end) of the clips of a source; with ``cut``, the frames before
    it and those from it on are chunked apart (no clip spans the cut)."""
    if cut is not None and 0 < cut < num_frames:
        tail = chunk_ranges(num_frames - cut, clip_frames)
        return chunk_ranges(cut, clip_frames) + [(s + cut, e + cut) for s, e in tail]
    if clip_frames <= 0 or num_frames <= clip_frames:
        return [(0, num_frames)]
    return [(s, min(s + clip_frames, num_frames)) for s in range(0, num_frames, clip_frames)]


def heldout_cut(source_name: str, options: PreprocessOptions) -> int | None:
    """The frame from which ``source_name`` is held out (``heldout_from``), if any."""
    for pattern, frame in options.heldout_from:
        if fnmatch.fnmatchcase(source_name, pattern):
            return frame
    return None


def clip_name(source: InputSource, start: int, options: PreprocessOptions) -> str:
    cut = options.clip_frames > 0 or heldout_cut(source.name, options) is not None
    return f"{source.name}/{start:06d}" if cut else source.name


def split_of(
    name: str, heldout: tuple[str, ...], heldout_from: tuple[tuple[str, int], ...] = ()
) -> str:
    """``heldout`` for a clip name matching a ``heldout`` glob, or cut from a source at or
    after its ``heldout_from`` frame; else ``train``."""
    if any(fnmatch.fnmatchcase(name, p) for p in heldout):
        return "heldout"
    source, _, start = name.rpartition("/")
    for pattern, frame in heldout_from:
        if start.isdigit() and int(start) >= frame and fnmatch.fnmatchcase(source, pattern):
            return "heldout"
    return "train"


def parse_heldout_from(text: str) -> tuple[str, int]:
    """``"GLOB@FRAME"`` -> (glob, frame), e.g. ``feat_man/single_face@54``."""
    pattern, _, frame = text.rpartition("@")
    if not pattern or not frame.isdigit():
        raise FreeheadError(
            f"--heldout-from takes SOURCE@FRAME, e.g. person/video@300, not {text!r}"
        )
    return pattern, int(frame)


def process_source(
    source: InputSource,
    dataset: Dataset,
    mean_shape: MeanShape,
    options: PreprocessOptions,
    progress: Callable[[int], None] = lambda n: None,
) -> SourceResult:
    """Track, label and crop one source into ``dataset``; finished clips are skipped."""
    result = SourceResult(source=str(source.path))
    started = time.perf_counter()
    try:
        frames = open_frames(source.path)
        total = frames.num_frames
        if options.max_frames is not None:
            total = min(total, options.max_frames)
        cut = heldout_cut(source.name, options)
        ranges = chunk_ranges(total, options.clip_frames, cut)
        todo = [r for r in ranges if not dataset.is_done(clip_name(source, r[0], options))]
        result.skipped_clips = [clip_name(source, r[0], options) for r in ranges if r not in todo]
        if not todo:
            return result
        landmarks, flags, shape = track_frames(
            frames.frames(options.max_frames), frames.kind != "image", str(source.path), progress
        )
        n = len(flags)
        result.frames_processed = n
        if not (flags != FLAG_NO_FACE).any():
            raise FreeheadError(f"no face found in {source.path}")
        # The container's count may be off by a frame or two: cut by what was decoded.
        ranges = chunk_ranges(n, options.clip_frames, cut)
        todo = [r for r in ranges if not dataset.is_done(clip_name(source, r[0], options))]
        labelled = {}
        for start, end in todo:
            name = clip_name(source, start, options)
            if (flags[start:end] == FLAG_NO_FACE).all():
                log.warning("%s: no face in frames %d-%d; clip %s left out", source.path, start,
                            end - 1, name)  # fmt: skip
                continue
            labelled[(start, end)] = label_clip(
                landmarks[start:end],
                flags[start:end],
                shape,
                frames.fps,
                mean_shape,
                options.crop,
                frame_index=np.arange(start, end),
            )
        _write_clips(source, frames, labelled, dataset, options, n)
        result.clips = [clip_name(source, s, options) for s, _ in labelled]
    except FreeheadError as e:
        result.error = str(e)
    except (cv2.error, OSError) as e:
        result.error = f"{source.path}: {e}"
    result.seconds = time.perf_counter() - started
    return result


def _write_clips(
    source: InputSource,
    frames: FrameSource,
    labelled: dict,
    dataset: Dataset,
    options: PreprocessOptions,
    limit: int,
) -> None:
    """Second decoding pass: crops of every labelled clip, then each clip's files."""
    pending = sorted(labelled.items())
    if not pending:
        return
    tmp_dirs = {}
    for (start, _), _labels in pending:
        final = dataset.clip_dir(clip_name(source, start, options))
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
        if final.parent.is_dir():  # this clip's unfinished folders of killed runs, and ours
            for stale in final.parent.glob(f".{final.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
        (tmp / "frames").mkdir(parents=True)
        tmp_dirs[start] = tmp
    encode = [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality]
    bounds = [(s, e, labels, tmp_dirs[s]) for (s, e), labels in pending]
    k = 0
    for index, rgb in enumerate(frames.frames(limit)):
        while k < len(bounds) and index >= bounds[k][1]:
            k += 1
        if k == len(bounds):
            break
        start, _, labels, tmp = bounds[k]
        if index < start:
            continue
        crop = crop_image(rgb, labels.box[index - start], options.size)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), encode)
        if not ok:
            raise FreeheadError(f"could not encode a crop of {source.path}")
        (tmp / "frames" / f"{index - start:06d}.jpg").write_bytes(buf.tobytes())
    for start, end, labels, tmp in bounds:
        name = clip_name(source, start, options)
        labels.save(tmp / "labels.npz")
        info = ClipInfo(
            name=name,
            identity=source.identity,
            split=split_of(name, options.heldout, options.heldout_from),
            source=str(source.path),
            first_frame=start,
            frames=end - start,
            frames_with_face=int(labels.valid.sum()),
            fps=frames.fps,
        )
        atomic_write_json(tmp / "clip.json", asdict(info))
        final = dataset.clip_dir(name)
        if final.exists():  # a clip folder without clip.json: an older, broken attempt
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)


def preprocess(
    inputs: list[str],
    out: str | Path,
    options: PreprocessOptions,
    mean_shape_path: str | None = None,
    shard: tuple[int, int] = (0, 1),
    identity: str | None = None,
    workers: int = 1,
    show_progress: bool = True,
) -> PreprocessSummary:
    """Preprocess ``inputs`` into the dataset folder ``out``; returns the run's summary.

    Sources that fail are reported and skipped; the summary's ``failed`` lists them.
    """
    if not 32 <= options.size <= 2048:
        raise FreeheadError(f"crop size {options.size} is out of range (32-2048)")
    dataset = Dataset(out)
    mean_shape = _mean_shape(dataset, mean_shape_path)
    settings = DatasetSettings(
        size=options.size,
        crop=options.crop,
        mean_shape_digest=mean_shape.digest,
        jpeg_quality=options.jpeg_quality,
    )
    sources = discover_sources(inputs, identity, options.stills)
    if not sources:
        raise FreeheadError("no videos, frame folders or images found in the inputs")
    i, n = shard
    sources = sources[i::n]
    created = not dataset.root.exists()
    dataset.create_or_check(settings, mean_shape)
    results, wall = _process_sources(sources, dataset, mean_shape, options, workers, show_progress)
    summary = _summarise(dataset, results, options, wall, workers)
    if created and not summary.clips:  # nothing made: no empty dataset left behind
        shutil.rmtree(dataset.root, ignore_errors=True)
    return summary


def _mean_shape(dataset: Dataset, path: str | None) -> MeanShape:
    """The head model to label with: the one given, else the dataset's, else the shipped."""
    if path is not None:
        return MeanShape.load(path)
    if dataset.exists():
        return dataset.mean_shape()
    return MeanShape.default()


def _process_sources(
    sources: list[InputSource],
    dataset: Dataset,
    mean_shape: MeanShape,
    options: PreprocessOptions,
    workers: int,
    show_progress: bool,
) -> tuple[list[SourceResult], float]:
    """Process every source, in this process or in ``workers`` spawned ones, with a
    progress bar over the frames; returns their results and the seconds they took."""
    from tqdm import tqdm

    expected = sum(_frame_estimate(s.path, options.max_frames) for s in sources)
    bar = tqdm(total=expected, unit="frame", disable=not show_progress, desc="preprocess")
    results: list[SourceResult] = []
    started = time.perf_counter()
    if workers <= 1:
        for src in sources:
            results.append(process_source(src, dataset, mean_shape, options, bar.update))
            _report(results[-1])
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Pool(workers) as pool:
            jobs = [(s, dataset.root, mean_shape, options) for s in sources]
            for res in pool.imap_unordered(_process_in_worker, jobs):
                bar.update(res.frames_processed)
                results.append(res)
                _report(res)
    bar.close()
    return results, time.perf_counter() - started


def _summarise(
    dataset: Dataset,
    results: list[SourceResult],
    options: PreprocessOptions,
    wall: float,
    workers: int,
) -> PreprocessSummary:
    """Set the splits of the clips the run touched, rebuild the manifest and sum up."""
    touched = [c for r in results for c in r.clips + r.skipped_clips]
    if options.heldout or options.heldout_from:
        for name in touched:
            dataset.set_split(name, split_of(name, options.heldout, options.heldout_from))
    dataset_clips = dataset.write_manifest()
    clip_summaries = {}
    for name in touched:
        info = dataset.clip(name)
        clip_summaries[name] = ClipSummary(
            identity=info.identity, split=info.split, labels=dataset.labels(name).summary()
        )
    processed = sum(r.frames_processed for r in results)
    return PreprocessSummary(
        dataset=str(dataset.root),
        clips=len(touched),
        clips_skipped=sum(len(r.skipped_clips) for r in results),
        frames=sum(s.labels.frames for s in clip_summaries.values()),
        frames_with_face=sum(s.labels.frames_with_face for s in clip_summaries.values()),
        frames_processed=processed,
        seconds=round(wall, 2),
        frames_per_second=round(processed / wall, 1) if processed else None,
        workers=workers,
        failed=tuple(FailedSource(r.source, r.error) for r in results if r.error),
        dataset_clips=len(dataset_clips),
        per_clip=clip_summaries,
    )


def _frame_estimate(path: Path, max_frames: int | None) -> int:
    try:
        n = open_frames(path).num_frames
    except FreeheadError:
        return 0
    return min(n, max_frames) if max_frames is not None else n


def _process_in_worker(job: tuple[InputSource, Path, MeanShape, PreprocessOptions]) -> SourceResult:
    source, root, mean_shape, options = job
    return process_source(source, Dataset(root), mean_shape, options)


def _report(result: SourceResult) -> None:
    """Log a finished source (failures are left to the caller, which lists them once)."""
    if result.error:
        log.debug("skipped %s: %s", result.source, result.error)
    elif result.clips:
        log.info("%s: %d clip(s), %d frames in %.1f s", result.source, len(result.clips),
                 result.frames_processed, result.seconds)  # fmt: skip
    else:
        log.info("%s: already done", result.source)
