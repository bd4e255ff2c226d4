"""``deepexpose enhance``: correct files, folders, frame sequences, animations and videos, safely and resumably.

Every input file gets one outcome: ``done``, ``skipped`` (its output exists and ``skip_existing`` is set) or
``failed`` with the reason; one bad file never stops the batch. Outputs go to ``out`` under the input's path
relative to the folder it was found in (a file named directly keeps just its name). Inputs are never written:
an output that would land on an input is refused. Each output is written atomically, side files first (the
``.json`` sidecar, the ``.cube`` LUT) and the image last, so a run killed halfway leaves only complete
images, and ``skip_existing`` on the rerun finishes the rest without redoing them. Folders are searched
recursively, leaving out hidden files and folders and the output folder when it lies inside an input folder;
the summary counts the files that are neither images nor videos.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .animation import ANIMATION_SUFFIXES, Animation, is_animation
from .device import resolve_device
from .io import (RAW_EXTENSIONS, SUPPORTED_EXTENSIONS, Image, ImageIOError, atomic_copy, atomic_write_bytes,
                 decode_picture, encode_image, encode_picture, extension_format, holds_alpha, max_pixels_limit,
                 output_folder, read_image, read_preview, register_heif, shown_name, side_path, to_codes, write_image)
from .methods import Method, Plan, load_method, view_options
from .mpf import DATA, GAIN_MAP, PICTURE, PREVIEW, VIEW, Part, Trailer, xmp_with_lengths

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mts", ".m2ts", ".ts", ".mpg",
                              ".mpeg", ".vob", ".3gp"})
"""clips: phones' and cameras' (MP4, MOV, 3GP), camcorders' AVCHD (MTS, M2TS), broadcast (TS), DVD (VOB, MPEG-2)..."""
_TRANSPORT_STREAMS = frozenset({".ts", ".mts", ".m2ts"})  # names TypeScript sources share

OUTPUT_FORMATS = {"jpg": ".jpg", "jpeg": ".jpg", "png": ".png", "tiff": ".tif", "tif": ".tif", "webp": ".webp",
                  "heic": ".heic", "heif": ".heic", "avif": ".avif"}
SIXTEEN_BIT = frozenset({".png", ".tif", ".tiff", ".heic", ".heif", ".hif"})  # HEIF: 16-bit codes stored as 10 bits


def is_transport_stream(path: Path) -> bool:
    """Whether ``path`` starts as an MPEG transport stream does: the sync byte 0x47 at the start of its first two
    188-byte packets, or (M2TS, AVCHD) after the 4-byte timestamp of its first two 192-byte packets. A TypeScript
    source named ``.ts`` or ``.mts`` does not."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4 + 192 + 1)
    except OSError:
        return True  # reading it as a clip reports why it cannot be read
    return (len(head) > 188 and head[0] == head[188] == 0x47) or (len(head) > 196 and head[4] == head[196] == 0x47)


def _is_clip(path: Path) -> bool:
    """A file named as a clip, and for the transport-stream names, one that is one (:func:`is_transport_stream`)."""
    suffix = path.suffix.lower()
    return suffix in VIDEO_EXTENSIONS and (suffix not in _TRANSPORT_STREAMS or is_transport_stream(path))


@dataclass
class EnhanceConfig:
    out: str = "enhanced"
    """output folder; each result keeps its relative path, name and format (a camera RAW file becomes NAME.tif)"""
    method: str = "agent"
    """agent (the DeepExposure agent), classic (grey world + auto exposure), identity; the baselines add
    theirs"""
    model: str = ""
    """model file of the method (default: the bundled model)"""
    format: str = ""
    """output format: jpg, png, tiff, webp, heic or avif (default: the input's; a camera RAW file, which cannot be
    written, as a 16-bit TIFF NAME.tif)"""
    quality: int | None = None
    """JPEG/WebP/HEIC/AVIF quality, 1..100 (default: 95, and lossless for a lossless WebP written as WebP; 100 is
    lossless WebP); for clips it sets the codec's constant quality (95: x264 CRF 18)"""
    bit_depth: int = 0
    """8 or 16 (16 only for png, tiff and heic, which stores 10 bits); 0 keeps the input's"""
    strength: float = 1.0
    """0..1: blend the correction toward the input (0 changes nothing)"""
    sidecar: bool = False
    """write NAME.EXT.json beside each output (photo.jpg.json) with every parameter chosen"""
    lut: bool = False
    """write NAME.EXT.cube beside each output: the per-pixel part of its edit, at --strength, as a 3D LUT
    (Resolve, etc.)"""
    lut_size: int = 33
    """points per side of the .cube LUT"""
    skip_existing: bool = False
    """leave outputs that already exist alone (finish an interrupted run)"""
    overwrite: bool = False
    """replace outputs that already exist (otherwise they are reported as failed)"""
    frames: bool = False
    """treat each input folder as one sequence of numbered frames, the images directly in it (parameters smoothed
    over time); the summary counts what else it holds"""
    temporal_window: int = 0
    """clips, animations and frames: average every parameter over this many neighbouring frames, an odd number (1: no
    smoothing; 0: 9 for methods with parameters, 1 for the cGAN, which paints pixels, and the histogram method,
    whose colour transfer has none)"""
    jobs: int = 1
    """worker processes for photos (videos, animations and frame sequences run in order)"""
    single_view: bool = False
    """agent only: choose each edit on the whole-photo view alone (default: one edit agreed on the whole photo
    and five crops of it, parameters the views disagree on shrunk toward no change)"""
    untouched_within: float = 0.0
    """agent only: leave a photo untouched when the edit would keep its whole-photo view within this many dB PSNR of
    itself (0: never)"""
    device: str = "cpu"
    """cpu, cuda or auto"""
    progress: bool = True
    """show a progress bar (on a terminal: none is drawn into a log or a pipe)"""

    def quality_for(self, img: Image | Animation | None, output: Path) -> int:
        """The quality to write ``output`` at: ``quality`` when given, else :data:`DEFAULT_QUALITY`, or 100
        (lossless) for a lossless WebP photo or animation ``img`` written as WebP."""
        if self.quality is not None:
            return self.quality
        lossless = img is not None and img.lossless and output.suffix.lower() == ".webp"
        return 100 if lossless else DEFAULT_QUALITY


DEFAULT_QUALITY = 95
"""``--quality`` when none is given (but a lossless WebP stays lossless): JPEG, WebP, HEIC and AVIF quality, x264's
CRF 18"""


WITHOUT_SIDE_FILES = ", without "
"""in the reason of an output skipped without the side files asked for"""


@dataclass
class Outcome:
    """What happened to one input: ``status`` is done, skipped or failed."""

    source: str
    output: str
    status: str
    reason: str = ""


@dataclass
class EnhanceSummary:
    outcomes: list[Outcome] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    """files in the input folders that are neither images nor videos deepexpose reads: count per extension"""
    beside_frames: dict[str, int] = field(default_factory=dict)
    """what frame folders (``--frames``) hold besides their frames: count per extension, ``subfolders``"""

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or not self.outcomes else 0

    def __str__(self) -> str:
        lines = [f"{self.count('done')} done, {self.count('skipped')} skipped, {self.count('failed')} failed"]
        lines += [f"  failed: {shown_name(o.source)}: {o.reason}" for o in self.failed]
        if lacking := [o for o in self.outcomes if o.status == "skipped" and WITHOUT_SIDE_FILES in o.reason]:
            many = len(lacking) > 1
            lines.append(f"  skipped {len(lacking)} existing output{'s that lack' if many else ' that lacks'} the side "
                         f"files asked for, e.g. {shown_name(lacking[0].output)}: "
                         f"--overwrite redoes {'them' if many else 'it'}")
        if self.ignored:
            kinds = ", ".join(f"{ext} {n}" for ext, n in sorted(self.ignored.items()))
            lines.append(f"  ignored in the folders, not an image or video deepexpose reads: "
                         f"{sum(self.ignored.values())} files ({kinds})")
        if self.beside_frames:
            kinds = ", ".join(f"{ext} {n}" for ext, n in sorted(self.beside_frames.items()))
            lines.append(f"  left out of the frame folders (--frames reads the images directly in each): "
                         f"{sum(self.beside_frames.values())} ({kinds})")
        return "\n".join(lines)


@dataclass
class Job:
    """One unit of work: an image, an animation, a video, or a folder of frames, and where its output goes."""

    source: Path
    output: Path
    kind: str = "image"


def output_suffix(source: Path, fmt: str) -> str:
    """The output extension for ``source`` under ``--format fmt``: without one, the source's own, or ``.tif`` for a
    camera RAW file."""
    if not fmt:
        return ".tif" if source.suffix.lower() in RAW_EXTENSIONS else source.suffix
    try:
        return OUTPUT_FORMATS[fmt.lower().lstrip(".")]
    except KeyError:
        raise ValueError(f"unknown --format {fmt!r}; choose from jpg, png, tiff, webp, heic, avif") from None


def _entry(path: Path) -> str:
    """What ``path`` is, links followed: ``"folder"``, ``"file"`` (a regular one), or why it can be neither read
    nor walked: a FIFO, device or socket (opening one could wait forever), a link loop or to nothing, no
    permission."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "a symbolic link to nothing" if os.path.islink(path) else "no such file or folder"
    except PermissionError:
        return "permission denied"
    except OSError as e:
        return "a symbolic link loop" if e.errno == errno.ELOOP else f"cannot be read ({e.strerror or e})"
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    return "file" if stat.S_ISREG(st.st_mode) else "not a regular file (a FIFO, device or socket)"


def _walk_images(folder: Path, ignored: Counter[str], out: Path, bad: list[Outcome] | None = None) -> list[Path]:
    """The images and videos under ``folder``, leaving out hidden files and folders and the output folder ``out``
    (resolved) when it lies inside (a rerun must not enhance the first run's outputs); counts the other files'
    extensions into ``ignored``. Symbolic links to folders outside ``folder`` are followed, each real folder once
    (no loops), folders before links, in name order, so the output paths do not depend on the disk. A folder that
    cannot be read, and a file of an image's or video's name that is not a regular file (a FIFO...) or a link loop,
    is added to ``bad`` as a failure."""
    found = []
    top = folder.resolve()
    visited = {top}
    bad = [] if bad is None else bad

    def unreadable(e: OSError) -> None:
        reason = "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
        bad.append(Outcome(str(e.filename or folder), "", "failed", f"cannot read this folder ({reason})"))

    def keep(dirpath: str, d: str) -> bool:
        path = Path(dirpath) / d
        real = path.resolve()
        if d.startswith(".") or real == out or real in visited or (path.is_symlink() and real.is_relative_to(top)):
            return False  # a link into the folder itself: that folder is walked anyway
        visited.add(real)
        return True

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable, followlinks=True):
        order = sorted(dirnames, key=lambda d: ((Path(dirpath) / d).is_symlink(), d))
        dirnames[:] = sorted(d for d in order if keep(dirpath, d))
        for name in filenames:
            p = Path(dirpath) / name
            if name.startswith("."):
                continue
            named = p.suffix.lower() in _STILL_OR_ANIMATION or p.suffix.lower() in VIDEO_EXTENSIONS
            if named and (what := _entry(p)) not in ("file", "no such file or folder"):
                bad.append(Outcome(str(p), "", "failed", what))  # never opened: a FIFO would wait forever
            elif p.suffix.lower() in _STILL_OR_ANIMATION or _is_clip(p):
                found.append(p)
            else:
                ignored[p.suffix.lower() or "(no extension)"] += 1
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


_STILL_OR_ANIMATION = SUPPORTED_EXTENSIONS | ANIMATION_SUFFIXES  # GIF: always an animation


def _kind(path: Path) -> str:
    """A file's job kind: ``video`` (by extension), ``animation`` (an animated WebP, APNG or AVIF, by its first
    bytes: :func:`deepexpose.animation.is_animation`, or any file named ``.gif``) or ``image``."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix == ".gif":  # whatever it holds: written as the GIF its name says, as other names are kept
        return "animation"
    return "animation" if suffix in ANIMATION_SUFFIXES and is_animation(path) else "image"


def collect_jobs(inputs: Sequence[str | Path], out: str | Path, *, fmt: str = "", frames: bool = False,
                 beside_frames: Counter[str] | None = None) -> tuple[list[Job], list[Outcome], dict[str, int]]:
    """The jobs for ``inputs`` (files and folders, folders recursively), the inputs that cannot be done, and the
    files in the folders that are neither images nor videos (count per extension). With ``frames`` each folder is
    a frame sequence of the images directly in it, and ``beside_frames`` counts what else it holds (per extension,
    and ``subfolders``)."""
    out = Path(out)
    jobs: list[Job] = []
    bad: list[Outcome] = []
    ignored: Counter[str] = Counter()
    counted: set[Path] = set()
    for raw in inputs:
        src = Path(raw)
        what = _entry(src)
        if what == "folder":
            if frames:
                jobs.append(Job(src, out / src.resolve().name, "frames"))
                if beside_frames is not None and src.resolve() not in counted:  # a folder named twice: once
                    counted.add(src.resolve())
                    beside_frames.update(_beside_frames(src, out.resolve()))
                continue
            unreadable: list[Outcome] = []
            files = _walk_images(src, ignored, out.resolve(), unreadable)
            bad += unreadable
            if not files and not unreadable:
                bad.append(Outcome(str(src), "", "failed", "the folder holds no images or videos"))
            for f in files:
                kind = _kind(f)
                suffix = f.suffix if kind == "video" else output_suffix(f, fmt)
                jobs.append(Job(f, out / f.relative_to(src).with_suffix(suffix), kind))
        elif what == "file":
            ext = src.suffix.lower()
            if _is_clip(src):
                jobs.append(Job(src, out / src.name, "video"))
            elif ext in _STILL_OR_ANIMATION:
                jobs.append(Job(src, out / Path(src.name).with_suffix(output_suffix(src, fmt)), _kind(src)))
            else:
                what = " that is not an MPEG transport stream" if ext in _TRANSPORT_STREAMS else ""
                bad.append(Outcome(str(src), "", "failed",
                                   f"not a supported image or video ({ext or 'no extension'}{what})"))
        else:
            bad.append(Outcome(str(src), "", "failed", what))
    seen: dict[Path, Path] = {}
    unique = []
    inputs_resolved = {j.source.resolve() for j in jobs}
    for job in _earlier_owner_first(jobs):
        target = _output_key(job.output)
        if target in seen and seen[target].resolve() == job.source.resolve():
            continue  # the same input named twice, to the same output: done once
        if target in seen:
            bad.append(Outcome(str(job.source), str(job.output), "failed",
                               f"its output name collides with that of {seen[target]}"))
        elif job.output.resolve() in inputs_resolved or target in inputs_resolved:
            bad.append(Outcome(str(job.source), str(job.output), "failed", "the output would overwrite an input"))
        else:
            seen[target] = job.source
            unique.append(job)
    listed = set()  # a file that fails, named itself and reached in a named folder, is listed once
    bad = [b for b in bad if (key := (os.path.abspath(b.source), b.reason)) not in listed and not listed.add(key)]
    return unique, bad, dict(ignored)


def _beside_frames(folder: Path, out: Path) -> Counter[str]:
    """What a frame folder holds besides the frames :func:`~deepexpose.video.sequence_frames` reads (hidden entries
    and the output folder ``out``, resolved, aside): its subfolders, and its other files per extension (clips,
    text...)."""
    found: Counter[str] = Counter()
    try:
        entries = list(folder.iterdir())
    except OSError:
        return found  # the frame job reports it
    for p in entries:
        if p.name.startswith("."):
            continue
        if p.is_dir():
            found["subfolders"] += p.resolve() != out
        elif not (p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS):
            found[p.suffix.lower() or "(no extension)"] += 1
    return found


def _output_key(output: Path) -> Path:
    """Where ``output`` is written: its folder with links followed, and its own name, not followed (an atomic write
    replaces a link there; it never writes through it)."""
    return output.parent.resolve() / output.name


def _earlier_owner_first(jobs: list[Job]) -> list[Job]:
    """``jobs``, where several inputs give one output that an earlier run wrote, the input whose output it is (its
    sidecar names it, :func:`_ours`) put first, so that it keeps its output and the others collide with it. Name
    order alone let a case twin added later (``a.JPG`` beside ``a.jpg``, ``--format png``; upper case sorts first)
    take over ``a.jpg``'s output: skipped as done by ``--skip-existing``, replaced by ``--overwrite``. Without an
    earlier sidecar, name order decides."""
    groups: dict[Path, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(_output_key(job.output), []).append(i)
    jobs = list(jobs)
    for places in groups.values():
        first = jobs[places[0]]
        if len(places) < 2 or not _present(first.output):
            continue
        side = side_path(first.output, ".json")
        owner = next((i for i in places if _ours(side, jobs[i].source)), places[0])
        jobs[places[0]], jobs[owner] = jobs[owner], first
    return jobs


@contextlib.contextmanager
def side_files_kept_on_failure(output: Path, *, sidecar: bool, lut: bool) -> Iterator[None]:
    """Around writing ``output``'s side files (:func:`write_side_files`: the sidecar with ``sidecar``, the LUT
    with ``lut``) and then ``output`` itself: when that fails, put back the side files as they were before (an
    earlier run's, beside its output, which stays), or remove them where there were none, so that no sidecar or
    LUT describes an output that is not there. (An interrupted run leaves them, as before: a rerun writes the output
    and its side files again.)"""
    paths = [side_path(output, suffix) for suffix, wanted in ((".json", sidecar), (".cube", lut)) if wanted]
    before = {p: p.read_bytes() if _present(p) else None for p in paths}
    try:
        yield
    except Exception:
        for p, old in before.items():
            if old is None:
                p.unlink(missing_ok=True)
            else:
                atomic_write_bytes(p, old, overwrite=True)
        raise


def write_side_files(plan, output: Path, cfg: EnhanceConfig, extra: dict) -> None:
    """The sidecar JSON and the ``.cube`` LUT of a plan, atomically, before the image itself."""
    if cfg.sidecar:
        doc = {**plan.params, "strength": cfg.strength, **extra}
        atomic_write_bytes(side_path(output, ".json"), (json.dumps(doc, indent=2) + "\n").encode(), overwrite=True)
    if cfg.lut:
        from .lut import toward_identity, write_cube

        if plan.lut is None:
            raise ValueError("this method's correction is not a per-pixel colour mapping; it has no LUT")
        table = toward_identity(plan.lut(cfg.lut_size).sample(cfg.lut_size), cfg.strength)
        write_cube(side_path(output, ".cube"), table, title=f"deepexpose {output.name}")


def _bit_depth(cfg: EnhanceConfig, source_depth: int, output: Path) -> int:
    """The depth ``output`` is written at: ``--bit-depth``, else the source's where the format holds it, else 8."""
    depth = cfg.bit_depth or source_depth
    if depth == 16 and output.suffix.lower() not in SIXTEEN_BIT:
        if cfg.bit_depth == 16:
            raise ValueError(f"--bit-depth 16: {output.suffix.lstrip('.').upper() or output.name} output holds 8 "
                             "bits; pass --format png, tiff or heic")
        depth = 8  # a 16-bit input written as JPEG/WebP/AVIF: 8 bits is all the format holds here
    return depth


def unasked(cfg: EnhanceConfig, depth: int) -> int:
    """``depth``, or 0 where ``--bit-depth`` asked for it (rounding to 8 bits is then no loss to warn of)."""
    return 0 if cfg.bit_depth == depth else depth


def output_samples(cfg: EnhanceConfig, img: Image, output: Path, depth: int) -> str:
    """The sample type a TIFF of floating-point or 32-bit samples (``Image.samples``) is written back with: its
    own, where the output is a TIFF of the source's depth not changed by ``--bit-depth``; else ``""`` (integers
    of ``depth`` bits)."""
    keep = img.samples and depth == 16 and not cfg.bit_depth and extension_format(output) == "TIFF"
    return img.samples if keep else ""


def read_and_plan(method: Method, source: Path) -> tuple[Image, Plan, list[int] | None]:
    """Read a photo (native depth) and choose its correction; also the ``[width, height]`` of the preview the
    choice was made on, if any.

    A method whose plans render onto pixels of any size (``preview_side``: the filter-edit methods) chooses on
    :func:`deepexpose.io.read_preview` of a large JPEG, and prepares the render (:attr:`Plan.prepare`), on a
    second thread while the whole photo is decoded, so the two overlap; the sub-image masks are then those of
    the view the edit was chosen on. Otherwise, and when there is no preview, the method chooses on the
    decoded photo.
    """
    side = getattr(method, "preview_side", None)
    if side and _starts_like_jpeg(source):
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(_plan_preview, method, source, side)
            img = read_image(source, dtype="native")
            planned = pending.result()
        if planned is not None:
            return img, *planned
    else:
        img = read_image(source, dtype="native")
    return img, method.plan(img.pixels), None


def _starts_like_jpeg(source: Path) -> bool:
    try:
        with open(source, "rb") as fh:
            return fh.read(3) == b"\xff\xd8\xff"
    except OSError:
        return False  # read_image reports it


def _plan_preview(method: Method, source: Path, side: int) -> tuple[Plan, list[int]] | None:
    """The plan chosen on a preview, its render prepared for the whole 8-bit photo; ``None`` without one."""
    found = read_preview(source, side)
    if found is None:
        return None
    preview, shape = found
    plan = method.plan(preview)
    if plan.prepare is not None:
        plan.prepare(shape, np.dtype(np.uint8))
    return plan, [preview.shape[1], preview.shape[0]]


def enhance_image(method: Method, source: Path, output: Path, cfg: EnhanceConfig) -> None:
    """Correct one photo: read and plan (:func:`read_and_plan`), render at full resolution, write (side files
    first). A photo the edit leaves unchanged, pixel for pixel (``--strength 0``, ``--untouched-within``, an
    identity edit), written in its own format and depth, is copied byte for byte where the copy is what writing
    would give (:func:`_copyable`): re-encoding a JPEG would change it, and a copy keeps every piece of
    metadata. A multi-page TIFF written as a TIFF is copied when every page is unchanged too. A camera RAW file is
    developed, never copied."""
    img, plan, preview = read_and_plan(method, source)
    warn_if_hdr(img, source, output)
    pixels = plan.render(img.pixels, cfg.strength)
    depth = _bit_depth(cfg, img.bit_depth, output)
    samples = output_samples(cfg, img, output, depth)
    copy = (img.format != "RAW" and depth == img.bit_depth and samples == img.samples
            and _unchanged(pixels, img.pixels) and _copyable(source, output))
    pages, described = [], []
    if _keeps_pages(img, output):  # a copy needs every page unchanged as well
        maybe = copy
        pages, described, same = tiff_pages(method, source, output, cfg, img.pictures, warn=not maybe)
        copy = maybe and same
        if copy:
            pages, described = [], []
        elif maybe:  # the warnings held back while a copy might have stood for the pages
            for page in described:
                if "left_out" in page:
                    _warn_left_out(source.with_name(f"{source.name} (page {page['page']})"), page["left_out"])
    left_out = None if copy else warn_of_left_out(img, source, output, depth=unasked(cfg, depth))  # a copy keeps all
    trailer, xmp = (Trailer(()), img.xmp) if copy else trailer_for(method, plan, img, output, cfg.strength, source)
    extra = {"source": source_name(source), "size": [img.width, img.height],
             **({"chosen_on": preview} if preview else {}), **({"copied": True} if copy else {}),
             **({"left_out": left_out} if left_out else {}),
             **({"after_photo": after_photo(trailer)} if trailer.parts else {}),
             **({"pages": described} if described else {})}
    with side_files_kept_on_failure(output, sidecar=cfg.sidecar, lut=cfg.lut):
        write_side_files(plan, output, cfg, extra)
        if copy:
            atomic_copy(source, output, overwrite=True)
            return
        write_image(output, pixels, bit_depth=depth, quality=cfg.quality_for(img, output),
                    icc_profile=img.icc_profile, exif=img.exif, xmp=xmp, dpi=img.dpi, alpha=img.alpha, overwrite=True,
                    threads=encode_threads(), grey=img.grey, cicp=img.cicp, notes=img.notes, trailer=trailer,
                    thumbnails=img.thumbnails, samples=samples, pages=pages)


def _keeps_pages(img: Image, output: Path) -> bool:
    """Whether ``output`` holds every page of ``img``: a multi-page TIFF written as a TIFF."""
    return img.format == "TIFF" and img.pictures > 1 and extension_format(output) == "TIFF"


def tiff_pages(method: Method, source: Path, output: Path, cfg: EnhanceConfig, pictures: int, warn: bool = True
               ) -> tuple[list[bytes], list[dict], bool]:
    """Pages 2 to ``pictures`` of a multi-page TIFF, each corrected as a photo of its own (its own edit, chosen on
    it) and encoded as a page of ``output`` with its own depth, samples, alpha, ICC profile, EXIF, XMP and dpi
    (:func:`deepexpose.io.encode_image`); for the sidecar, each page's number, size and parameters; and whether
    every page comes back unchanged, in its own depth and samples (then a copy of the file can stand for it). What
    a page's output leaves out of it is in its entry and, with ``warn``, warned of as for a photo. Pages are read
    one at a time; their encoded bytes are kept until the file is written."""
    pages, described, same = [], [], True
    for index in range(1, pictures):
        page = read_image(source, dtype="native", page=index)
        plan = method.plan(page.pixels)
        depth = _bit_depth(cfg, page.bit_depth, output)
        samples = output_samples(cfg, page, output, depth)
        named = source.with_name(f"{source.name} (page {index + 1})")
        left_out = warn_of_left_out(page, named, output, warn=warn, depth=unasked(cfg, depth))
        rendered = plan.render(page.pixels, cfg.strength)
        same = same and depth == page.bit_depth and samples == page.samples and _unchanged(rendered, page.pixels)
        pages.append(encode_image(output, rendered, bit_depth=depth, icc_profile=page.icc_profile, exif=page.exif,
                                  xmp=page.xmp, dpi=page.dpi, alpha=page.alpha, grey=page.grey, notes=page.notes,
                                  samples=samples))
        described.append({"page": index + 1, "size": [page.width, page.height], **plan.params,
                          **({"left_out": left_out} if left_out else {})})
    return pages, described, same


def trailer_for(method: Method, plan: Plan, img: Image, output: Path, strength: float,
                source: Path | None = None) -> tuple[Trailer, bytes | None]:
    """What follows the photo in ``output`` (none unless it is a JPEG), its views edited as the photo
    (:func:`edit_views`), and the photo's XMP with GContainer's lengths made to fit them."""
    if img.trailer is None or extension_format(output) != "JPEG":
        return Trailer(()), img.xmp
    trailer = edit_views(method, plan, img.trailer, strength, source)
    changes = [(len(a.data), len(b.data)) for a, b in zip(img.trailer.parts, trailer.parts)]
    return trailer, xmp_with_lengths(img.xmp, changes)


def edit_views(method: Method, plan: Plan, trailer: Trailer, strength: float, source: Path | None = None) -> Trailer:
    """``trailer`` with every other view of the scene (a stereo camera's second view, the frames of a panorama:
    :data:`deepexpose.mpf.VIEW`) edited as the photo was: the same filter edit, its sub-image masks segmented on
    that view, or, for a method without filter edits, one chosen on it. A view that cannot be decoded is kept as it
    was (a :data:`deepexpose.mpf.PICTURE`), with a warning naming ``source``."""
    for part in trailer.parts:
        if part.kind == VIEW:
            try:
                pixels = decode_picture(part)
                rgb = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
                view = method.plan_from_edit(plan.edit) if plan.edit is not None else method.plan(rgb)
                out = to_codes(np.asarray(view.render(rgb, strength)), 8)
                new = encode_picture(part, out)
            except Exception as e:  # a damaged view: never the reason to lose the photo
                from . import DeepExposeWarning

                warnings.warn(f"{source}: the view after the photo cannot be read ({type(e).__name__}: {e}); it is "
                              "kept as it was, unedited", DeepExposeWarning, stacklevel=2)
                new = Part(PICTURE, part.data, part.entry)
            trailer = trailer.replace(part, new)
    return trailer


_AFTER_PHOTO = {GAIN_MAP: "kept (an HDR display applies it to the edited photo)",
                PREVIEW: "made again from the edited photo", VIEW: "edited as the photo was",
                PICTURE: "kept", DATA: "kept as it was"}


def after_photo(trailer: Trailer) -> list[str]:
    """What follows the photo in its JPEG output, a line per part of ``trailer`` (as read, or with its views
    edited: :func:`edit_views`), and what becomes of it, for the sidecar; the size of what is kept as it was."""
    lines = []
    for p, line in zip(trailer.parts, trailer.describe()):
        turned = p.kind in (GAIN_MAP, PICTURE) and p.orientation != 1
        kept = p.kind in (GAIN_MAP, PICTURE, DATA) and not turned
        lines.append(f"{line if kept else p.kind}: {_AFTER_PHOTO[p.kind]}"
                     + (", turned upright with the photo" if turned else ""))
    return lines


_PICTURES = {"TIFF": "pages", "JPEG": "images (a multi-picture JPEG whose index cannot be read)",
             "HEIF": "top-level images"}


def warn_of_left_out(img: Image, source: Path, output: Path, warn: bool = True, depth: int = 0) -> str | None:
    """Warn (:class:`deepexpose.DeepExposeWarning`) of what ``output`` leaves out of ``img``, and return it, for the
    sidecar; ``None`` when it leaves nothing out:
    a file holding more than one picture (``Image.pictures``: a multi-page TIFF written as another format, a HEIF
    burst) is enhanced as its first (or primary) picture alone (a TIFF written as a TIFF keeps every page,
    :func:`tiff_pages`); what follows a JPEG's photo (``Image.trailer``: a preview, a second view, a
    gain map, a motion photo's video) has no place in an output that is not a JPEG; a HEIF image's depth maps and
    auxiliary images (``Image.auxiliary``: an iPhone's HDR gain map, portrait mattes) are not written; transparency
    has no place in JPEG output; a JPEG's extended XMP (what did not fit its one XMP marker) is not read;
    a TIFF's floating-point or 32-bit samples (``Image.samples``) are written as integers by formats other than
    TIFF; a TIFF's channel of unspecified meaning (``Image.unspecified``) is not written; samples of more than 8
    bits are rounded to ``depth`` 8 by a format that holds no more (pass ``depth`` 0 where ``--bit-depth 8`` asked
    for it). (Animations are enhanced whole, :func:`deepexpose.video.enhance_animation`.) ``warn=False`` only
    returns it."""
    lost = []
    if img.trailer is not None and extension_format(output) != "JPEG":
        lost.append(f"what follows the photo in the JPEG, {', '.join(img.trailer.describe())}: only JPEG output "
                    "keeps it")
    if (img.trailer is None or img.trailer.mpf is None) and img.pictures > 1 and not _keeps_pages(img, output):
        what = _PICTURES.get(img.format or "", "pictures")
        first = "primary one" if img.format == "HEIF" else "first"
        lost.append(f"{img.pictures - 1} of the file's {img.pictures} {what}: only the {first} is enhanced")
    if img.auxiliary:
        lost.append(f"the image's {', '.join(img.auxiliary)}: no output written here holds them")
    if img.alpha is not None and not holds_alpha(extension_format(output)) and not _opaque(img.alpha):
        lost.append(f"its transparency: {output.suffix.lstrip('.').upper()} has none (the colours under it are "
                    "written as they are)")
    if img.samples and extension_format(output) != "TIFF":
        kind = "floating-point" if img.samples.startswith("float") else "32-bit integer"
        bits = 16 if output.suffix.lower() in SIXTEEN_BIT else 8
        lost.append(f"its {kind} samples ({img.samples}): {output.suffix.lstrip('.').upper()} output holds "
                    f"integers of {bits} bits at most (only TIFF output keeps them)")
    if img.bit_depth == 16 and depth == 8 and not img.samples:
        lost.append(f"its samples of more than 8 bits: {output.suffix.lstrip('.').upper()} output holds 8 (PNG or "
                    "TIFF output keeps 16, HEIC 10; --bit-depth 8 says 8 are meant)")
    if img.unspecified:
        lost.append("its extra channel of unspecified meaning (TIFF ExtraSamples 0, not transparency): nothing "
                    "here knows what it holds, so no output keeps it")
    if img.xmp and b"HasExtendedXMP" in img.xmp:
        lost.append("its extended XMP (what did not fit the JPEG's one XMP marker), which is not read")
    if not lost:
        return None
    left_out = "; ".join(lost)
    if warn:
        _warn_left_out(source, left_out)
    return left_out


def _warn_left_out(source: Path, left_out: str) -> None:
    from . import DeepExposeWarning

    warnings.warn(f"{source}: left out of the output: {left_out}", DeepExposeWarning, stacklevel=3)


def _opaque(alpha: np.ndarray) -> bool:
    top = 1.0 if alpha.dtype.kind == "f" else np.iinfo(alpha.dtype).max
    return bool((alpha >= top).all())


def warn_if_hdr(img: Image, source: Path, output: Path) -> None:
    """Warn (:class:`deepexpose.DeepExposeWarning`) that an HDR photo (a PQ or HLG transfer in its colour code
    points) is edited as if it were SDR, and whether ``output`` keeps its HDR description (only HEIC and PNG do)."""
    if img.cicp is None or img.cicp.hdr is None:
        return
    from . import DeepExposeWarning

    kept = ("its HDR colour description is kept" if output.suffix.lower() in (".heic", ".heif", ".hif", ".png") else
            f"{output.suffix or output.name} output cannot describe it, so viewers will show it as SDR (write HEIC or "
            "PNG to keep it)")
    warnings.warn(f"{source} is HDR ({img.cicp.hdr}): it is edited on its code values as if they were SDR ones, which "
                  f"no model here has seen; {kept}", DeepExposeWarning, stacklevel=2)


def _unchanged(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` equals ``b``, compared in bands of rows (a 100 MP photo needs no 300 MB mask; a real edit stops at its
    first band)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    step = max(1, (1 << 22) // max(1, a[0].size))
    return all(np.array_equal(a[i:i + step], b[i:i + step]) for i in range(0, a.shape[0], step))


_PILLOW_SUFFIX = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp",
                  "HEIF": ".heic", "AVIF": ".avif"}
_SAME_SUFFIX = {".jpeg": ".jpg", ".jpe": ".jpg", ".jfif": ".jpg", ".tiff": ".tif", ".heif": ".heic", ".hif": ".heic"}


def _copyable(source: Path, output: Path) -> bool:
    """Whether a copy of ``source`` is what writing its unchanged pixels to ``output`` would give: the file is
    the format the output's name says, one picture (not animated, not multi-page, but for a TIFF written as a TIFF,
    which keeps its pages; a JPEG's pictures after its photo are written back), upright (no EXIF orientation to
    apply) and not CMYK (converted to RGB when read). Reads the header only. A HEIC or AVIF file's rotation
    (``irot``, ``imir``) is part of the picture, which every reader applies: pillow-heif reports none, Pillow
    reports an AVIF's as its EXIF orientation."""
    from PIL import Image as PILImage

    suffix = output.suffix.lower()
    if _tiff_head(source):
        return _SAME_SUFFIX.get(suffix, suffix) == ".tif" and _tiff_copyable(source)
    register_heif()
    try:
        with PILImage.open(source) as im:
            kind, mode, frames = _PILLOW_SUFFIX.get(im.format or ""), im.mode, getattr(im, "n_frames", 1)
            orientation = 1 if im.format == "AVIF" else im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - whatever Pillow cannot open is written, not copied
        return False
    return (kind == _SAME_SUFFIX.get(suffix, suffix) and (frames == 1 or kind == ".jpg") and orientation == 1
            and mode not in ("CMYK", "YCbCr", "LAB"))


def _tiff_head(source: Path) -> bool:
    """Whether ``source`` starts as a TIFF (classic or BigTIFF, either byte order)."""
    from .io import _TIFF_SIGNATURES

    try:
        with open(source, "rb") as fh:
            return fh.read(4) in _TIFF_SIGNATURES
    except OSError:
        return False


def _tiff_copyable(source: Path) -> bool:
    """:func:`_copyable` for a TIFF, read by tifffile (which also reads the floating-point, 32-bit, 10- to 14-bit and
    BigTIFF files Pillow cannot): every picture (thumbnails aside; a multi-page TIFF written as a TIFF keeps its
    pages) upright (no Orientation tag, or XMP orientation where it has none, to apply), not CMYK or CIELab, and
    YCbCr only as JPEG-compressed (which every reader gives as RGB)."""
    import tifffile

    from .io import _tiff_picture_pages, _xmp_orientation

    def copyable(page) -> bool:
        tags = page.tags
        orientation = tags[274].value if 274 in tags else _xmp_orientation(tags[700].value if 700 in tags else None)
        photometric = int(page.photometric)
        return orientation == 1 and photometric not in (5, 8) and (photometric != 6 or int(page.compression) == 7)

    try:
        with tifffile.TiffFile(source) as tif:
            return all(copyable(tif.pages[i]) for i in _tiff_picture_pages(tif))
    except Exception:  # noqa: BLE001 - whatever tifffile cannot open is written, not copied
        return False


def encode_threads() -> int:
    """Threads for encoding a large JPEG: torch's thread count, as the render uses (1 in ``--jobs``
    workers)."""
    import torch

    return max(1, torch.get_num_threads())


def _side_files(output: Path, cfg: EnhanceConfig, lut: bool = True) -> list[Path]:
    """The side files ``cfg`` asks for beside ``output``: the sidecar, and unless ``lut`` is false the LUT (a clip
    and a frame sequence as a whole have no LUT; each of its frames has)."""
    return [side_path(output, ext) for ext, wanted in ((".json", cfg.sidecar), (".cube", cfg.lut and lut)) if wanted]


def source_name(source: Path) -> str:
    """``source``'s name as a sidecar's ``source`` holds it: a byte that is not UTF-8 (kept by the file system's
    surrogateescape, PEP 383) as ``\\xNN``, as the summary shows it, since JSON with a lone surrogate in it is
    refused by strict parsers; any other name as it is (:func:`~deepexpose.io.undecodable_escaped`)."""
    from .io import undecodable_escaped

    return undecodable_escaped(source.name)


def _ours(side: Path, source: Path) -> bool:
    """Whether ``side`` is a side file this command wrote for ``source`` (left by a run killed before the image):
    a sidecar naming ``source``, or a LUT titled by deepexpose. Anything else at that name is another file."""
    try:
        if side.suffix == ".json":
            doc = json.loads(side.read_bytes())
            return isinstance(doc, dict) and doc.get("source") in (source_name(source), source.name)  # or older
        with open(side, "rb") as fh:
            return fh.readline().startswith(b'TITLE "deepexpose ')
    except (OSError, ValueError):
        return False


def foreign_side_files(source: Path, output: Path, cfg: EnhanceConfig, lut: bool = True) -> list[Path]:
    """The side files asked for beside ``output`` (:func:`_side_files`) that exist and were not written by this
    command for ``source``; none with ``--overwrite``, which replaces them."""
    if cfg.overwrite:
        return []
    return [p for p in _side_files(output, cfg, lut) if _present(p) and not _ours(p, source)]


def _foreign_side_files(job: Job, cfg: EnhanceConfig) -> Outcome | None:
    """A failure when a side file asked for would replace a file deepexpose did not write for this input."""
    taken = [p.name for p in foreign_side_files(job.source, job.output, cfg, lut=job.kind == "image")]
    if not taken:
        return None
    return Outcome(str(job.source), str(job.output), "failed",
                   f"{' and '.join(taken)} already exist{'s' if len(taken) == 1 else ''} and "
                   f"{'is' if len(taken) == 1 else 'are'} not deepexpose's for this input (pass --overwrite to "
                   "replace, or choose another output folder)")


def _existing(job: Job, cfg: EnhanceConfig) -> Outcome | None:
    if job.kind == "frames":  # checked frame by frame, but a finished sequence is skipped whole
        return _finished_frames(job, cfg) or _foreign_side_files(job, cfg)
    sides = _side_files(job.output, cfg, lut=job.kind == "image")
    if job.output.is_dir():  # neither done (--skip-existing) nor replaceable (--overwrite)
        return Outcome(str(job.source), str(job.output), "failed",
                       "its output is a folder, not a file: move it away or choose another -o")
    if not os.path.lexists(job.output):  # a link there, even to nothing, is replaced only with --overwrite
        return _foreign_side_files(job, cfg)
    if cfg.skip_existing:
        missing = [p.name for p in sides if not _present(p)]
        reason = "output exists" + (f"{WITHOUT_SIDE_FILES}{' and '.join(missing)} (pass --overwrite to redo it with "
                                    "them)" if missing else "")
        return Outcome(str(job.source), str(job.output), "skipped", reason)
    if not cfg.overwrite:
        return Outcome(str(job.source), str(job.output), "failed",
                       "the output exists (pass --skip-existing or --overwrite)")
    return None


def _finished_frames(job: Job, cfg: EnhanceConfig) -> Outcome | None:
    """Skipped when every output frame exists (side files are not checked, as for photos)."""
    if not cfg.skip_existing:
        return None
    from .video import frame_outputs

    try:
        outputs = frame_outputs(job.source, job.output, cfg.format)[1]
    except ValueError:
        return None  # run_job reports it
    if all(o.exists() for o in outputs):
        return Outcome(str(job.source), str(job.output), "skipped", "every output frame exists")
    return None


def _present(side: Path) -> bool:
    """Whether a side file is there; ``False`` where its name cannot be (longer than the file system allows, for
    a photo of a name near that length)."""
    try:
        return side.exists()
    except OSError:
        return False


def run_job(method: Method, job: Job, cfg: EnhanceConfig) -> Outcome:
    """One job, its failure caught and explained."""
    try:
        done = _existing(job, cfg)
        if done is not None:
            return done
        if job.kind == "image":
            enhance_image(method, job.source, job.output, cfg)
        else:
            from .video import enhance_animation, enhance_frames, enhance_video

            run = {"video": enhance_video, "frames": enhance_frames, "animation": enhance_animation}[job.kind]
            run(method, job.source, job.output, cfg)
        remove_earlier_side_files(job.source, job.output, cfg, lut=job.kind == "image")  # a sequence's: each frame's
    except ImageIOError as e:
        return Outcome(str(job.source), str(job.output), "failed", e.reason)
    except ValueError as e:  # the input or an option is wrong: the message says how
        return Outcome(str(job.source), str(job.output), "failed", str(e))
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG and e.filename:
            return Outcome(str(job.source), str(job.output), "failed", f"cannot write {Path(e.filename).name}: the "
                           "name is longer than the file system allows (shorten the input's name)")
        if isinstance(e, PermissionError) and e.filename:  # e.g. an earlier sidecar that cannot be read
            return Outcome(str(job.source), str(job.output), "failed", f"permission denied: {e.filename}")
        return Outcome(str(job.source), str(job.output), "failed", f"{type(e).__name__}: {e}")
    except MemoryError:  # a photo too large for the memory left; its arrays are gone by now, the batch goes on
        return Outcome(str(job.source), str(job.output), "failed", "not enough memory for this file (MemoryError); "
                       "with --jobs, fewer jobs leave each one more")
    except Exception as e:  # anything one file throws is that file's failure, never the batch's
        return Outcome(str(job.source), str(job.output), "failed", f"{type(e).__name__}: {e}")
    return Outcome(str(job.source), str(job.output), "done")


def remove_earlier_side_files(source: Path, output: Path, cfg: EnhanceConfig, lut: bool = True) -> list[Path]:
    """Remove, once ``output`` is written, the side files beside it that this run did not ask for (a sidecar
    without ``--sidecar``, a LUT without ``--lut``) where an earlier run wrote them for ``source`` (:func:`_ours`):
    they describe an edit that is no longer the output's. Another file at such a name is left alone. Returns the
    files removed."""
    asked = set(_side_files(output, cfg, lut))
    stale = [p for p in (side_path(output, ".json"), side_path(output, ".cube"))
             if p not in asked and _present(p) and _ours(p, source)]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _load(cfg: EnhanceConfig) -> Method:
    if (cfg.single_view or cfg.untouched_within) and cfg.method != "agent":
        raise ValueError(f"--single-view and --untouched-within apply to the agent only, not to --method {cfg.method}")
    return load_method(cfg.method, cfg.model or None, str(resolve_device(cfg.device)),
                       **view_options(cfg.method, cfg.single_view, cfg.untouched_within))


_WORKER: tuple[Method, EnhanceConfig] | None = None


def _init_worker(cfg: EnhanceConfig, command: str | None = None) -> None:
    """A ``--jobs`` worker process: one torch thread, the method loaded once, and, when the parent prints
    deepexpose's warnings as one line (the ``deepexpose COMMAND`` command line), the same printer."""
    import torch

    global _WORKER
    torch.set_num_threads(1)
    if command:
        from .cli import _warning_printer

        warnings.showwarning = _warning_printer(command, warnings.showwarning)
    _WORKER = (_load(cfg), cfg)


def _work(job: Job) -> Outcome:
    assert _WORKER is not None
    return run_job(_WORKER[0], job, _WORKER[1])


WORKER_DIED = "the worker process enhancing it died (killed, or out of memory); the other files went on"


POOL_STRIKES = 3
"""pools in a row whose workers cannot start, after which :func:`pooled` stops starting them"""


def pooled(jobs: Sequence[Job], work: Callable[[Job], Outcome], workers: int,
           initializer: Callable[..., None] | None = None, initargs: tuple = (),
           fallback: Callable[[Job], Outcome] | None = None) -> Iterator[Outcome]:
    """``work(job)`` for every job in ``workers`` spawned processes, the outcomes in the jobs' order, where a
    worker that dies (killed, out of memory) fails only the file that killed it, never the batch: at most
    ``workers`` jobs are in flight at once, so when one dies those few are run again one at a time in a pool of
    their own, and the one that kills that worker is failed (:data:`WORKER_DIED`); the rest go on in a fresh pool.
    Each pool first runs a trivial call, so that workers that cannot start (their ``initializer`` fails) blame no
    file; when :data:`POOL_STRIKES` pools in a row cannot start, the rest is done by ``fallback`` in this process,
    with a warning (:class:`deepexpose.DeepExposeWarning`), or without one a ``RuntimeError`` ends it."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    queue, suspects, results, shown, strikes = list(range(len(jobs))), [], {}, 0, 0
    while queue or suspects:
        if strikes >= POOL_STRIKES:
            from . import DeepExposeWarning

            if fallback is None:
                raise RuntimeError(f"--jobs: {strikes} pools of worker processes in a row could not start; run without "
                                   "--jobs")
            warnings.warn(f"--jobs: {strikes} pools of worker processes in a row could not start; the "
                          f"{len(suspects) + len(queue)} files left are done in this process",
                          DeepExposeWarning, stacklevel=2)
            for i in sorted(suspects + queue):
                results[i] = fallback(jobs[i])
                while shown in results:
                    yield results[shown]
                    shown += 1
            return
        alone = bool(suspects)  # one worker, one job at a time: the job in flight when it dies is the one
        todo = suspects if alone else queue
        pool = ProcessPoolExecutor(1 if alone else workers, mp.get_context("spawn"), initializer, initargs)
        try:
            pool.submit(os.getpid).result()  # workers that cannot start break the pool here, blaming no file
        except BrokenProcessPool:
            pool.shutdown(wait=False, cancel_futures=True)
            strikes += 1
            continue
        strikes = 0
        flight: dict = {}
        try:
            while todo or flight:
                while todo and len(flight) < (1 if alone else workers):
                    i = todo.pop(0)
                    flight[pool.submit(work, jobs[i])] = i
                finished, _ = wait(flight, return_when=FIRST_COMPLETED)
                broken = False
                for future in finished:
                    try:
                        results[flight[future]] = future.result()
                        del flight[future]
                    except BrokenProcessPool:
                        broken = True
                while shown in results:
                    yield results[shown]
                    shown += 1
                if broken:
                    break
        finally:
            pool.shutdown(wait=not flight, cancel_futures=True)
        for future in [f for f in flight if f.done() and f.exception() is None]:  # finished before the break
            results[flight.pop(future)] = future.result()
        lost = sorted(flight.values())
        if alone and lost:
            job = jobs[lost[0]]
            results[lost[0]] = Outcome(str(job.source), str(job.output), "failed", WORKER_DIED)
            suspects = lost[1:] + suspects
        else:
            suspects = lost
        while shown in results:
            yield results[shown]
            shown += 1


def _outcomes(method: Method | None, jobs: list[Job], cfg: EnhanceConfig) -> Iterator[Outcome]:
    photos = [j for j in jobs if j.kind == "image"]
    others = [j for j in jobs if j.kind != "image"]
    if cfg.jobs > 1 and len(photos) > 1:
        command = getattr(warnings.showwarning, "command", None)
        yield from pooled(photos, _work, cfg.jobs, _init_worker, (cfg, command),
                          fallback=lambda job: run_job(method, job, cfg))
    else:
        for job in photos:
            yield run_job(method, job, cfg)
    for job in others:
        yield run_job(method, job, cfg)


def warn_of_photo_options(jobs: Sequence[Job], cfg: EnhanceConfig) -> list[str]:
    """Warn once (and return the lines) of the options given that do not apply to some of ``jobs``: clips keep
    their container and codec and get no LUT, whatever ``--format``, ``--bit-depth`` and ``--lut`` say; an
    animation gets no LUT either."""
    from . import DeepExposeWarning

    clips = sum(j.kind == "video" for j in jobs)
    animations = sum(j.kind == "animation" for j in jobs)
    lines = []
    if clips:
        given = [o for o, on in (("--format", cfg.format), ("--bit-depth", cfg.bit_depth), ("--lut", cfg.lut)) if on]
        if given:
            lines.append(f"{' and '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to the {clips} "
                         "clip(s), which keep their container and codec (8 or 10 bits, as the source) and get no LUT")
    if animations and cfg.lut:
        lines.append(f"--lut does not apply to the {animations} animation(s), which get no LUT")
    for line in lines:
        warnings.warn(line, DeepExposeWarning, stacklevel=2)
    return lines


def enhance_paths(inputs: Sequence[str | Path], cfg: EnhanceConfig) -> EnhanceSummary:
    """Enhance every input (see the module docstring); returns the summary of outcomes."""
    if not 0.0 <= cfg.strength <= 1.0:
        raise ValueError(f"--strength must be in [0, 1], got {cfg.strength}")
    if cfg.bit_depth not in (0, 8, 16):
        raise ValueError(f"--bit-depth must be 8 or 16, got {cfg.bit_depth}")
    if cfg.quality is not None and not 1 <= cfg.quality <= 100:
        raise ValueError(f"--quality must be in 1..100, got {cfg.quality}")
    if cfg.bit_depth == 16 and cfg.format and output_suffix(Path("x"), cfg.format) not in SIXTEEN_BIT:
        raise ValueError(f"--bit-depth 16 needs --format png, tiff or heic, not {cfg.format}")
    if cfg.skip_existing and cfg.overwrite:
        raise ValueError("--skip-existing and --overwrite contradict each other; pass one")
    if cfg.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {cfg.jobs}")
    if cfg.temporal_window < 0 or (cfg.temporal_window and cfg.temporal_window % 2 == 0):
        raise ValueError(f"--temporal-window must be an odd number (centred on the frame), or 0 for the method's "
                         f"default; got {cfg.temporal_window}")
    if not 2 <= cfg.lut_size <= 256:
        raise ValueError(f"--lut-size must be in 2..256, got {cfg.lut_size}")
    if cfg.format:
        output_suffix(Path("x"), cfg.format)
    max_pixels_limit()  # a malformed $DEEPEXPOSE_MAX_PIXELS fails the command once, not every file
    output_folder(cfg.out, "-o")  # a file there would fail every output
    beside_frames: Counter[str] = Counter()
    jobs, bad, ignored = collect_jobs(inputs, cfg.out, fmt=cfg.format, frames=cfg.frames, beside_frames=beside_frames)
    method = _load(cfg)
    if any(j.kind != "image" for j in jobs):
        from .video import _need_parametric

        _need_parametric(method, cfg)  # before any work, not once per clip
    if cfg.lut and not method.has_lut:
        raise ValueError(f"--lut needs a method whose correction is a per-pixel colour mapping; {cfg.method} "
                         "paints pixels")
    warn_of_photo_options(jobs, cfg)
    summary = EnhanceSummary(list(bad), ignored, dict(beside_frames))
    bar = None
    if cfg.progress and jobs:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="file", desc="enhance", disable=None)  # None: not in a log
    from .cli import raise_if_stopped

    try:
        for outcome in _outcomes(method, jobs, cfg):
            summary.outcomes.append(outcome)
            if bar is not None:
                bar.update()
                bar.set_postfix(done=summary.count("done"), failed=summary.count("failed"))
            raise_if_stopped()  # a Ctrl-C or SIGTERM that came while ffmpeg was being started
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM: what was done before it, failures included, is not lost
        e.add_note(f"before it: {summary}\n  the finished outputs are whole; --skip-existing finishes the rest")
        raise
    finally:
        if bar is not None:
            bar.close()
    return summary


__all__ = ["EnhanceConfig", "EnhanceSummary", "Outcome", "collect_jobs", "enhance_image", "enhance_paths"]
