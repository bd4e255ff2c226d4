"""Video clips and frame sequences: parameters chosen per frame, smoothed over time, applied per frame.

Seed 001 found that correcting frames independently makes the picture flicker, and tried to hide it by
blending output frames. Here the flicker is removed where it starts, in parameter space: each frame's edit
(exposures, white balance, ...) is chosen on its own view, every numeric parameter is averaged over a centred
window of ``temporal_window`` frames (:func:`smooth_edits`), and each frame is rendered with its smoothed
edit, so nothing is blurred and a cut still changes the look within half a window. A frame that repeats the
frame before it keeps that frame's edit (:func:`hold_repeats`), so it stays identical.

Flicker is measured as the project's design notes define it: the mean absolute frame-to-frame change of a global
statistic (mean luminance and per-channel means) of a sequence (:func:`flicker`).

Clips are read and written with the ffmpeg binary that ships inside ``imageio-ffmpeg``; every audio and subtitle
track, attachment, chapter and the metadata of the source are copied into the output unchanged, and the output is
written to a temporary file and moved into place. A clip of more than 8 bits a sample is read as 16-bit codes and
written with 10; the output is converted with the source's colour matrix and range and carries its colour tags.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from .filters.base import LUMA_709
from .io import (SUPPORTED_EXTENSIONS, Image, ImageIOError, atomic_copy, atomic_write_bytes, read_image,
                 remove_stale_temps, side_path, temp_path, to_codes, write_image)


def _numeric_leaves(edit: dict, prefix: tuple = ()) -> Iterable[tuple[tuple, float | list]]:
    for key, value in edit.items():
        if isinstance(value, dict):
            yield from _numeric_leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def _set(edit: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        edit = edit.setdefault(key, {})
    edit[path[-1]] = value


def smooth_edits(edits: Sequence[dict], window: int) -> list[dict]:
    """Centred moving average of every numeric parameter over ``window`` frames (fewer at the ends).

    Edits are dicts of dicts of numbers or lists of numbers (an episode's ``describe()``); a parameter missing
    from some frames counts as absent there, and lists are averaged element-wise.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd number >= 1 (centred on the frame), got {window}")
    n = len(edits)
    paths: dict[tuple, None] = {}
    for e in edits:
        for path, _ in _numeric_leaves(e):
            paths.setdefault(path)
    out: list[dict] = [{} for _ in range(n)]
    half = window // 2
    for path in paths:
        series = []
        for e in edits:
            node = e
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            series.append(None if node is None else np.asarray(node, dtype=np.float64))
        for i in range(n):
            near = [s for s in series[max(0, i - half):i + half + 1] if s is not None]
            if series[i] is None or not near:
                continue
            mean = np.mean(near, axis=0)
            _set(out[i], path, [round(float(v), 6) for v in mean] if mean.ndim else round(float(mean), 6))
    return out


def frame_statistics(pixels: np.ndarray) -> np.ndarray:
    """Mean luminance (Rec. 709 weights on the stored values) and mean R, G, B of ``H x W x 3`` pixels in
    [0, 1] (integers are scaled by their maximum)."""
    x = pixels.astype(np.float64)
    if np.issubdtype(pixels.dtype, np.integer):
        x /= np.iinfo(pixels.dtype).max
    rgb = x.reshape(-1, 3).mean(0)
    return np.array([float(np.dot(LUMA_709, rgb)), *rgb])


def flicker(stats: Sequence[np.ndarray] | np.ndarray) -> dict[str, float]:
    """Mean absolute frame-to-frame change of the mean luminance and of the per-channel means (averaged),
    from the :func:`frame_statistics` of consecutive frames (the flicker figure of the project's design notes)."""
    s = np.asarray(stats, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 4 or len(s) < 2:
        raise ValueError("flicker needs the statistics of at least two frames (N x 4)")
    d = np.abs(np.diff(s, axis=0)).mean(0)
    return {"luminance": float(d[0]), "rgb": float(d[1:].mean())}


def flicker_test_clip(n: int = 24, h: int = 48, w: int = 64, seed: int = 0) -> list[np.ndarray]:
    """A synthetic clip for flicker checks: ``n`` float frames of equal mean that alternate irregularly between
    flat grey 0.4 and a 0.2 / 0.6 split. Steady by the flicker figure, but a per-frame auto exposure (which
    looks at the mean *linear* light) picks a different exposure for each kind, so correcting frames one by
    one makes the output flicker."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), 0.4)
        if (i * 7) % 3:
            f[:, : w // 2], f[:, w // 2:] = 0.2, 0.6
        frames.append(np.clip(f + rng.normal(0, 0.003, f.shape), 0, 1))
    return frames


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def sequence_frames(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, in natural order (frame 2 before frame 10)."""
    frames = [p for p in Path(folder).iterdir()
              if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_EXTENSIONS]
    if not frames:
        raise ValueError(f"the frame folder {folder} holds no images")
    return sorted(frames, key=_natural_key)


def numbering_gaps(frames: Sequence[Path]) -> tuple[int, list[tuple[int, int]]]:
    """The step of a sequence's frame numbers and the runs of numbers missing from it, for names
    ``<prefix><number><suffix>`` (``f0001.png``): ``(step, [(first missing, last missing), ...])``. The step is the
    most common difference between neighbours (5 for a render of every fifth frame); ``(1, [])`` when the names do
    not all share a prefix and suffix around a number or the differences are not all multiples of the step (numbers
    that are times, say), which claims no gap."""
    parts = [re.fullmatch(r"(.*?)(\d+)(\D*)", Path(f).name) for f in frames]
    if len(parts) < 2 or not all(parts) or len({(m.group(1), m.group(3).lower()) for m in parts if m}) != 1:
        return 1, []
    numbers = sorted(int(m.group(2)) for m in parts if m)
    diffs = [b - a for a, b in zip(numbers, numbers[1:])]
    counts = Counter(diffs)
    step = min(d for d in counts if counts[d] == max(counts.values()))
    if step <= 0 or any(d % step for d in diffs):
        return 1, []
    return step, [(a + step, b - step) for a, b in zip(numbers, numbers[1:]) if b - a > step]


def hold_repeats(edits: Sequence[dict], repeats: Sequence[bool]) -> list[dict]:
    """``edits`` with each frame that repeats the frame before it (``repeats[i]``: frame ``i`` has the same pixels as
    frame ``i - 1``) given the edit of the first frame of its run, so that repeated frames stay identical after
    smoothing. Real footage often repeats frames (frame-rate conversion, a camera's duplicated frames): a moving
    average would change each of them a little, where the picture does not change at all."""
    if len(edits) != len(repeats) or (repeats and repeats[0]):
        raise ValueError("repeats must have one flag per edit, and the first frame repeats nothing")
    held: list[dict] = []
    for edit, repeat in zip(edits, repeats, strict=True):
        held.append(held[-1] if repeat else edit)
    return held


DEFAULT_WINDOW = 9
"""frames a parameter is averaged over when ``--temporal-window`` is left at 0 (methods with parameters)"""


def temporal_window(method, cfg) -> int:
    """``cfg.temporal_window``, or for 0 (the default) :data:`DEFAULT_WINDOW` for a method with parameters and 1
    for one that paints pixels (the cGAN)."""
    return cfg.temporal_window or (DEFAULT_WINDOW if method.parametric else 1)


def _plans(method, edits: list[dict], repeats: list[bool], cfg) -> list:
    window = temporal_window(method, cfg)
    smoothed = smooth_edits(edits, window) if window > 1 else edits
    return [method.plan_from_edit(e) for e in hold_repeats(smoothed, repeats)]


def _plan_frames(method, frames: Iterable[np.ndarray]) -> tuple[list, list[bool], list[np.ndarray]]:
    """Pass 1 over a sequence: each frame's edit (``None`` for a method without parameters), whether it repeats the
    frame before it (whose edit it then shares, unplanned), and its :func:`frame_statistics`."""
    edits: list = []
    repeats: list[bool] = []
    stats_in: list[np.ndarray] = []
    previous = None
    for frame in frames:
        stats_in.append(frame_statistics(frame))
        repeat = previous is not None and np.array_equal(frame, previous)
        if repeat:
            edits.append(edits[-1])
        else:
            edits.append(method.plan(frame).edit if method.parametric else None)
        repeats.append(repeat)
        previous = frame
    return edits, repeats, stats_in


def _need_parametric(method, cfg) -> None:
    if temporal_window(method, cfg) > 1 and not method.parametric:
        raise ValueError(f"the {method.name} method has no parameters to smooth over time; pass "
                         "--temporal-window 1 (or leave it at 0)")


def frame_outputs(folder: Path, out_folder: Path, fmt: str = "") -> tuple[list[Path], list[Path]]:
    """The frames of ``folder`` (:func:`sequence_frames`) and the file each is written to in ``out_folder``, as
    ``--format fmt`` names it; raises ``ValueError`` when two frames would be written to one file (``f1.png`` and
    ``f1.jpg`` with ``--format png``)."""
    from .enhance import output_suffix

    frames = sequence_frames(folder)
    outputs = [out_folder / f.with_suffix(output_suffix(f, fmt)).name for f in frames]
    first: dict[str, Path] = {}
    for f, o in zip(frames, outputs, strict=True):
        other = first.setdefault(o.name, f)
        if other is not f:
            raise ValueError(f"frames {other.name} and {f.name} would both be written as {o.name}")
    return frames, outputs


def _read_frame(path: Path) -> Image:
    try:
        return read_image(path, dtype="native")
    except ImageIOError as e:
        raise ValueError(f"frame {path.name}: {e.reason}") from None


def enhance_frames(method, folder: Path, out_folder: Path, cfg) -> dict:
    """Correct a folder of numbered frames into ``out_folder`` (same names); returns the flicker figures."""
    _need_parametric(method, cfg)
    from . import DeepExposeWarning
    from .enhance import (_bit_depth, encode_threads, foreign_side_files, output_samples, remove_earlier_side_files,
                          side_files_kept_on_failure, source_name, trailer_for, unasked, warn_if_hdr, warn_of_left_out,
                          write_side_files)

    frames, outputs = frame_outputs(folder, out_folder, cfg.format)
    step, gaps = numbering_gaps(frames)
    if gaps:
        missing = sum((b - a) // step + 1 for a, b in gaps)
        shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in gaps[:3]) + (", ..." if len(gaps) > 3 else "")
        warnings.warn(f"{folder}: {missing} frame number(s) missing ({shown}): the frames either side are smoothed "
                      "over as neighbours", DeepExposeWarning, stacklevel=2)
    clash = [o for o in outputs if o.exists() and not (cfg.skip_existing or cfg.overwrite)]
    if clash:
        raise ValueError(f"{len(clash)} output frame(s) exist already, e.g. {clash[0]} "
                         "(pass --skip-existing or --overwrite)")
    to_write = [(f, o) for f, o in zip(frames, outputs, strict=True) if cfg.overwrite or not o.exists()]
    if taken := [s for f, o in to_write for s in foreign_side_files(f, o, cfg)]:
        raise ValueError(f"{len(taken)} frame side file(s) exist already and are not deepexpose's for these frames, "
                         f"e.g. {taken[0]} (pass --overwrite to replace them, or choose another output folder)")
    # pass 1: a plan per frame, on its own view
    edits, repeats, stats_in = _plan_frames(method, (_read_frame(f).pixels for f in frames))
    plans = _plans(method, edits, repeats, cfg) if method.parametric else None
    stats_out = []
    losing = 0  # frames whose output leaves something out: a warning for the first, a count at the end
    for i, (f, o) in enumerate(zip(frames, outputs, strict=True)):  # pass 2: render the smoothed plans
        img = _read_frame(f)
        if i == 0:
            warn_if_hdr(img, folder, o)
        plan = plans[i] if plans is not None else method.plan(img.pixels)
        pixels = plan.render(img.pixels, cfg.strength)
        stats = frame_statistics(pixels)
        stats_out.append(np.full(4, stats[0]) if img.grey else stats)  # a gray frame is written as its luma
        if o.exists() and cfg.skip_existing:
            continue
        depth = _bit_depth(cfg, img.bit_depth, o)
        trailer, xmp = trailer_for(method, plan, img, o, cfg.strength, f)  # a frame's preview, gain map... as a photo's
        left_out = warn_of_left_out(img, f, o, warn=not losing, depth=unasked(cfg, depth))
        losing += left_out is not None
        with side_files_kept_on_failure(o, sidecar=cfg.sidecar, lut=cfg.lut):
            extra = {"source": source_name(f), "frame": i, **({"left_out": left_out} if left_out else {})}
            write_side_files(plan, o, cfg, extra)
            write_image(o, pixels, bit_depth=depth, quality=cfg.quality_for(img, o),
                        icc_profile=img.icc_profile, exif=img.exif, xmp=xmp, dpi=img.dpi, alpha=img.alpha,
                        overwrite=True, threads=encode_threads(), grey=img.grey, cicp=img.cicp, notes=img.notes,
                        trailer=trailer, thumbnails=img.thumbnails, samples=output_samples(cfg, img, o, depth))
        remove_earlier_side_files(f, o, cfg)
    if losing > 1:
        warnings.warn(f"{folder}: {losing} frames in all leave something out, as the first did (their sidecars' "
                      "left_out say what)", DeepExposeWarning, stacklevel=2)
    report = {"frames": len(frames), "repeated_frames": sum(repeats), **_flicker_report(stats_in, stats_out),
              **({"missing_numbers": [list(g) for g in gaps]} if gaps else {})}
    if cfg.sidecar:
        doc = {"source": source_name(folder), **method.describe(), "temporal_window": temporal_window(method, cfg),
               "strength": cfg.strength, **report, "edits": [p.edit for p in plans] if plans is not None else None}
        _write_json(side_path(out_folder, ".json"), doc)
    return report


def _flicker_report(stats_in: list, stats_out: list) -> dict:
    if len(stats_in) < 2:
        return {}
    return {"flicker_input": flicker(stats_in), "flicker_output": flicker(stats_out)}


def enhance_animation(method, source: Path, output: Path, cfg) -> dict:
    """Correct an animated WebP, APNG or animated AVIF, or a GIF (:mod:`deepexpose.animation`) as a clip: an edit
    per frame (pass 1), smoothed over time, rendered (pass 2) and written as an animation in the output's format
    (WebP, PNG, AVIF or GIF; a lossless WebP stays lossless without ``--quality``), with its frame durations, loop
    count, background, ICC profile, EXIF, XMP and a GIF's comment, with 8 bits a sample, or 16 where the source is a
    16-bit APNG written as PNG or ``--bit-depth 16`` asks for it (PNG only). Alpha is carried through; an alpha
    channel that is opaque in every frame is not written. An animation every frame of which the edit leaves as it was
    (``--strength 0``, an identity edit), written in its own format, is copied byte for byte, as such a photo is.
    The sidecar (``--sidecar``) is written first, as a photo's is; like a clip, an animation has no LUT. Returns the
    flicker figures."""
    from .animation import ANIMATED_FORMATS, read_animation, read_frames, write_animation
    from .enhance import _bit_depth, source_name
    from .io import to_codes

    _need_parametric(method, cfg)
    info = read_animation(source)
    if output.suffix.lower() not in ANIMATED_FORMATS.values():
        raise ValueError(f"an animation ({info.frames} frames) cannot be written as {output.suffix or output.name}: "
                         "choose --format webp, png or avif, or leave --format out")
    if cfg.bit_depth == 16 and output.suffix.lower() != ".png":
        raise ValueError(f"a 16-bit animation is written as PNG (APNG), not {output.suffix}")
    depth = _bit_depth(cfg, info.bit_depth, output)
    durations: list[float] = []
    opaque = [True]

    def first_pass() -> Iterable[np.ndarray]:
        for rgb, alpha, duration in read_frames(source, info):
            durations.append(duration)
            opaque[0] = opaque[0] and (alpha is None or bool((alpha == np.iinfo(alpha.dtype).max).all()))
            yield rgb

    edits, repeats, stats_in = _plan_frames(method, first_pass())
    plans = _plans(method, edits, repeats, cfg) if method.parametric else None
    frames: list[tuple[np.ndarray, np.ndarray | None]] = []
    stats_out: list[np.ndarray] = []
    unchanged = (info.orientation == 1 and output.suffix.lower() == ANIMATED_FORMATS[info.format]
                 and depth == info.bit_depth)
    for i, (rgb, alpha, _) in enumerate(read_frames(source, info)):
        plan = plans[i] if plans is not None else method.plan(rgb)
        out = plan.render(rgb, cfg.strength)
        unchanged = unchanged and np.array_equal(out, rgb)
        stats_out.append(frame_statistics(out))
        frames.append((to_codes(out, depth), None if opaque[0] or alpha is None else to_codes(alpha, depth)))
    report = {"frames": len(frames), "repeated_frames": sum(repeats), **_flicker_report(stats_in, stats_out)}
    from .enhance import side_files_kept_on_failure

    with side_files_kept_on_failure(output, sidecar=cfg.sidecar, lut=False):  # an animation has no LUT
        if cfg.sidecar:
            doc = {"source": source_name(source), **method.describe(), "temporal_window": temporal_window(method, cfg),
                   "strength": cfg.strength, **report, "durations_ms": durations,
                   "edits": [p.edit for p in plans] if plans is not None else None,
                   **({"copied": True} if unchanged else {})}
            _write_json(side_path(output, ".json"), doc)
        if unchanged:  # every frame as it was, in its own format: a copy loses nothing, re-encoding a lossy one would
            atomic_copy(source, output, overwrite=True)
        else:
            write_animation(output, frames, durations, info, quality=cfg.quality_for(info, output), overwrite=True)
    return report


# ----------------------------------------------------------------------------------------------- clips


def _ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError as e:  # a dependency of deepexpose; only a broken install lacks it
        raise RuntimeError("video needs the imageio-ffmpeg package (pip install imageio-ffmpeg)") from e
    log = logging.getLogger("imageio_ffmpeg")
    if _quiet_rotation not in log.filters:
        log.addFilter(_quiet_rotation)
    return imageio_ffmpeg


def _quiet_rotation(record: logging.LogRecord) -> bool:
    """Leave out imageio-ffmpeg's warning that a rotated clip's frames (upright, as ffmpeg turns them) have
    another size than its stored ones: that is expected, not a problem."""
    return "different from the source frame size" not in record.getMessage()


def read_clip(path: Path) -> tuple[dict, Iterable[np.ndarray]]:
    """The clip's metadata (``fps``, ``size``, ``audio_codec``..., plus ``bit_depth`` and ``colour``, see
    :func:`clip_colour`) and an iterator over its upright RGB frames: ``uint8`` codes, or ``uint16`` for a clip
    stored with more than 8 bits (10-bit H.264, HEVC, VP9, ProRes...), which keeps their precision.

    A clip of variable frame rate (phones lower the rate in dim light) is read at the constant rate
    :func:`constant_rate` chooses, each frame repeated for as long as it is shown, and ``fps`` is that rate
    (``average_fps``, the clip's own average, is added): its frames written at ``fps`` last as long as the clip,
    in step with its sound. (ffmpeg would otherwise repeat frames to its own guess of the rate, and the frames
    written at the average rate would run longer than the sound.)"""
    ff = _ffmpeg()
    listing = _listing(path)
    stream = video_stream(listing)
    rate = constant_rate(stream["fps"], stream["tbr"], field_order(stream["pix_fmt"]) is not None)
    if rate is None and re.search(r"^Input #0, matroska", listing, re.MULTILINE):
        rate = packet_rate(path)  # Matroska lists tbr as the average: its timestamps tell a variable rate
    # the fps filter shows at each tick the frame shown then; the muxer's own -fps_mode cfr goes by the frames'
    # durations and, after a slower stretch, repeated a frame too many and showed every later one a tick late.
    # The frames are read from the first one on: a video that starts after the sound would otherwise be padded with
    # copies of its first frame back to the start of the file (write_clip puts it back where it started)
    params = {"output_params": ["-vf", "setpts=PTS-STARTPTS" + (f",fps={exact_rate(rate)}" if rate else "")]}
    reader = ff.read_frames(str(path), **params)
    try:
        meta = reader.__next__()
    except OSError as e:
        raise ValueError(f"cannot read the clip ({ffmpeg_reason(str(e))})") from None
    if rate:
        meta["average_fps"], meta["fps"] = meta["fps"], rate
    meta["fps"] = round(float(exact_rate(meta["fps"])), 6) if meta["fps"] > 0 else meta["fps"]
    meta["codec"], meta["profile"] = stream["codec"] or meta.get("codec", ""), stream["profile"]
    if stream["sar"]:  # of the stored frames: a frame read turned by 90 degrees has its pixels turned too
        turned = tuple(meta["size"]) != tuple(meta.get("source_size", meta["size"]))
        meta["sar"] = stream["sar"][::-1] if turned else stream["sar"]
    meta["bit_depth"], meta["colour"] = clip_colour(str(meta.get("pix_fmt", "")))
    if meta["bit_depth"] == 16:
        reader.close()
        reader = ff.read_frames(str(path), pix_fmt="rgb48le", bpp=6, **params)
        reader.__next__()
    w, h = meta["size"]
    dtype = np.dtype("<u2") if meta["bit_depth"] == 16 else np.dtype(np.uint8)

    def frames():
        for raw in reader:
            yield np.frombuffer(raw, dtype=dtype).reshape(h, w, 3).astype(dtype.newbyteorder("="), copy=False)

    return meta, frames()


_HIGH_DEPTH = re.compile(r"^(?:\w*?(?:9|1[0-6])(?:le|be)|p01[026]|[rb]gba?(?:48|64)|y21[026]|x2[rb]gb10|ayuv64)")
_SPACES = {"gbr", "bt709", "unknown", "fcc", "bt470bg", "smpte170m", "smpte240m", "ycgco", "bt2020nc", "bt2020c",
           "smpte2085", "chroma-derived-nc", "chroma-derived-c", "ictcp"}  # ffmpeg's names of colour matrices
_SCALE_MATRIX = {"bt709": "bt709", "bt470bg": "bt470", "smpte170m": "smpte170m", "smpte240m": "smpte240m",
                 "fcc": "fcc", "bt2020nc": "bt2020", "bt2020c": "bt2020"}  # ffmpeg colour spaces -> scale's names


def _version(path: Path) -> tuple[int, int] | None:
    """What tells one version of a file from another: its modification time and size (``None`` if it is missing)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _listing(path: Path) -> str:
    """ffmpeg's description of the file (its streams, one a line), asked once per version of the file: a clip is
    read twice and its streams are looked up when it is written."""
    return _cached_listing(str(path), _version(path))


@functools.lru_cache(maxsize=32)
def _cached_listing(path: str, version: tuple[int, int] | None) -> str:
    import subprocess

    return subprocess.run([_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-i", path], capture_output=True,
                          text=True, errors="replace").stderr


def video_stream(listing: str) -> dict:
    """What ffmpeg's ``listing`` of a clip says of its first video stream: the average frame rate ``fps`` and the
    rate its timestamps are on, ``tbr`` (0 for what it does not list), its pixels' shape ``sar`` as
    ``(width, height)`` (``None`` for square ones or none given), its ``codec``, the codec's ``profile`` and the
    ``pix_fmt`` with its description (``yuv420p(tv, top first)``) (``""`` for what it does not list)."""
    line = re.search(r"^\s*Stream #0:\d+\S*: Video: (.*)$", listing, re.MULTILINE)
    text = line.group(1) if line else ""

    def rate(unit: str) -> float:
        found = re.search(rf"([0-9.]+)(k?) {unit}\b", text)
        return float(found.group(1)) * (1000 if found.group(2) else 1) if found else 0.0

    sar = re.search(r"SAR (\d+):(\d+) DAR", text)
    shape = (int(sar.group(1)), int(sar.group(2))) if sar else None
    codec = re.match(r"(\w+)(?: \(([^)]*)\))?", text)
    pix_fmt = re.search(r", ([a-z0-9]+(?:\((?:[^()]|\([^()]*\))*\))?), \d+x\d+", text)
    return {"fps": rate("fps"), "tbr": rate("tbr"),
            "sar": shape if shape and shape[0] > 0 and shape[1] > 0 and shape[0] != shape[1] else None,
            "codec": codec.group(1) if codec else "", "profile": (codec.group(2) or "") if codec else "",
            "pix_fmt": pix_fmt.group(1) if pix_fmt else ""}


def exact_rate(fps: float) -> Fraction:
    """The frame rate that ``fps``, as ffmpeg prints it (two decimals), stands for: the NTSC rates ``n * 1000 /
    1001`` (23.98, 29.97, 47.95, 59.94, 119.88) exactly, where 23.98 itself would put a clip's picture 0.6 s an hour
    ahead of its sound, else the nearest fraction with a denominator up to 1001 (25, 12.5 = 25/2...)."""
    for n in (24, 30, 48, 60, 120, 240):
        if abs(fps - n * 1000 / 1001) < 0.006:
            return Fraction(n * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


MAX_CONSTANT_RATE = 120.0
"""the highest rate a clip of variable frame rate is read at (:func:`constant_rate`)"""


def constant_rate(fps: float, tbr: float, interlaced: bool = False) -> float | None:
    """The constant rate to read a clip at whose average frame rate is ``fps`` and whose timestamps ffmpeg puts on a
    ``tbr`` grid: ``None`` (its own) when the two agree within 1 % (a clip of constant frame rate) or either is
    unknown; ``fps`` for an ``interlaced`` clip whose grid is its field rate (twice ``fps``: each frame holds two
    fields); else ``tbr``, the rate the camera recorded at, so that no frame is left out, unless that is above
    :data:`MAX_CONSTANT_RATE` or four times ``fps`` (a grid finer than any frame rate), or below ``fps``, where
    ``fps`` is used and frames closer together than ``1 / fps`` may be left out. (Matroska lists ``tbr`` as the
    average: :func:`read_clip` asks :func:`packet_rate` there.)"""
    if fps <= 0 or tbr <= 0 or abs(fps - tbr) <= 0.01 * tbr:
        return None
    if interlaced and abs(2 * fps - tbr) <= 0.01 * tbr:
        return fps
    return tbr if fps < tbr <= min(MAX_CONSTANT_RATE, 4 * fps) else fps


_COMMON_RATES = (23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0, 90.0, 100.0, 119.88, 120.0)


def packet_rate(path: Path) -> float | None:
    """The rate a clip of variable frame rate was recorded at, from the presentation times of its first video
    stream's packets (read without decoding): one over the shortest gap between them (their 5th percentile, so that
    one odd timestamp does not count), snapped to the common rate within 2 % of it; ``None`` for a clip whose gaps
    are all alike (the longest, their 95th percentile, at most 1.5 times the shortest), one with too few timestamped
    packets, or a rate above :data:`MAX_CONSTANT_RATE`. Asked once per version of the file (a clip is read twice)."""
    return _cached_packet_rate(str(path), _version(path))


@functools.lru_cache(maxsize=32)
def _cached_packet_rate(path: str, version: tuple[int, int] | None) -> float | None:
    import subprocess

    done = subprocess.run([_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", path, "-map",
                           "0:v:0", "-c", "copy", "-f", "framecrc", "-"], capture_output=True, text=True,
                          errors="replace")
    base = re.search(r"^#tb 0: (\d+)/(\d+)", done.stdout, re.MULTILINE)
    times = sorted({int(cols[2]) for line in done.stdout.splitlines() if not line.startswith("#")
                    and len(cols := [c.strip() for c in line.split(",")]) > 3 and cols[2].lstrip("-").isdigit()})
    gaps = np.diff(times) if base and len(times) > 3 else np.array([])
    gaps = gaps[gaps > 0]
    if len(gaps) < 3:
        return None
    short, long = np.percentile(gaps, 5), np.percentile(gaps, 95)
    if long <= 1.5 * short:
        return None
    rate = int(base.group(2)) / (int(base.group(1)) * short)
    near = min(_COMMON_RATES, key=lambda r: abs(r - rate))
    rate = near if abs(near - rate) <= 0.02 * near else round(rate, 2)
    return rate if rate <= MAX_CONSTANT_RATE else None


def clip_colour(pix_fmt: str) -> tuple[int, dict[str, str]]:
    """From ffmpeg's description of a video stream's pixel format (``yuv420p10le(tv, bt709/unknown/unknown,
    progressive)``): 16 for a format of more than 8 bits a sample (else 8), and its colour tags: ``range``
    (``tv``, or ``pc`` for full range) and the ``space`` (matrix), ``primaries`` and ``trc`` that are known."""
    name, _, rest = pix_fmt.partition("(")
    depth = 16 if _HIGH_DEPTH.match(name.strip()) else 8
    colour: dict[str, str] = {}
    for token in (t.strip() for t in rest.rstrip(")").split(",")):
        if token in ("tv", "pc"):
            colour["range"] = token
        elif (parts := token.split("/")) and len(parts) in (1, 3) and parts[0] in _SPACES:
            parts = parts * (3 // len(parts))  # one name: the space, the primaries and the transfer are all it
            colour.update({k: v for k, v in zip(("space", "primaries", "trc"), parts) if v != "unknown"})
    if name.strip().startswith("yuvj"):
        colour["range"] = "pc"
    return depth, colour


def _plain(line: str) -> str:
    """One line of ffmpeg's log without the ``[component @ address]`` prefixes it starts with, or a final full stop."""
    return re.sub(r"^(?:\[[^\]]*\]\s*)+", "", line.strip()).strip().rstrip(".")


def ffmpeg_reason(message: str) -> str:
    """The lines of an ffmpeg failure that say what went wrong: the first line, then the last two of ffmpeg's own
    lines that report an error (or its last two lines), without its version and build banner or progress lines and
    without the ``[component @ address]`` they start with; for a file without pictures, that it has no video
    stream."""
    if "Output file does not contain any stream" in message:
        return "it has no video stream"
    lines = [_plain(ln) for ln in message.splitlines() if _plain(ln)]
    noise = ("ffmpeg version", "built with", "configuration:", "lib", "=== stderr ===", "frame=", "size=",
             "Press [q]", "Stream mapping", "Metadata", "Input #", "Output #", "Duration:", "Stream #")
    said = [ln for ln in lines[1:] if not ln.startswith(noise)]
    errors = [ln for ln in said if any(k in ln.lower() for k in ("error", "invalid", "cannot", "could not",
                                                                  "not found", "no such", "failed"))]
    return "; ".join(lines[:1] + (errors or said)[-2:])


_CODECS = {".webm": "libvpx-vp9", ".avi": "mpeg4", ".mpg": "mpeg2video", ".mpeg": "mpeg2video", ".vob": "mpeg2video"}
"""the encoder a container gets; the others: H.264 (libx264)"""


_KEPT_CODECS = {"hevc": "libx265", "prores": "prores_ks", "ffv1": "ffv1"}
"""source codecs written again with their own kind of encoder where the container holds it: phones' HEVC (which
plays where the source played, as 10-bit H.264 often does not), ProRes masters, lossless FFV1 archives"""
_CONTAINERS = {"libx265": {".mp4", ".m4v", ".mov", ".mkv", ".mts", ".m2ts", ".ts"}, "prores_ks": {".mov", ".mkv"},
               "ffv1": {".mkv", ".avi"}}
_PRORES_PROFILES = {"proxy": 0, "lt": 1, "standard": 2, "hq": 3, "4444": 4, "xq": 5}  # ffmpeg's names: prores_ks'


def _chroma(pix_fmt: str) -> str:
    """The chroma subsampling of an ffmpeg pixel format: ``"444"`` (or RGB), ``"422"`` or ``"420"``."""
    name = pix_fmt.partition("(")[0]
    return "444" if "444" in name or name.startswith(("gbr", "rgb", "bgr")) else "422" if "422" in name else "420"


def encoder_options(suffix: str, quality: int, size: tuple[int, int], bit_depth: int = 8,
                    colour: dict[str, str] | None = None, sar: tuple[int, int] | None = None,
                    source: dict[str, str] | None = None, hdr10: dict[str, str] | None = None
                    ) -> tuple[str, str, list[str]]:
    """``(codec, pixel format, ffmpeg options)`` for a clip written as ``suffix`` at ``--quality`` 1..100.

    The encoder is the container's (H.264; VP9 for ``.webm``, MPEG-4 for ``.avi``, MPEG-2 for ``.mpg``, ``.mpeg``
    and ``.vob``), unless ``source`` (the source
    clip's ``codec``, its ``profile`` and ``pix_fmt``, as :func:`read_clip` gives them) is HEVC, ProRes or FFV1 and
    the container holds it (:data:`_KEPT_CODECS`): then HEVC is written with x265 (tagged ``hvc1``, as Apple players
    want), ProRes with the source's profile (Proxy to XQ), FFV1 losslessly, each keeping the source's chroma
    subsampling (4:2:0, 4:2:2 or 4:4:4; FFV1 RGB as planar RGB, gray as gray, in 16 bits where it had more than
    8), as an H.264 source's H.264 output does. FFV1 is lossless, so an RGB or gray FFV1 clip the edit leaves
    unchanged comes back bit for bit; a YUV one passes through RGB (the frames are read as RGB) and is written with
    10 bits at most, and an alpha channel is not kept.

    Quality maps to x264's constant rate factor, CRF = 51 - 33 q / 95 rounded: the default 95 gives CRF 18
    (visually lossless, about x264's own advice), 100 gives 16 and 1 gives 51; x265 gets the same CRF. VP9
    (``.webm``) gets that CRF scaled to its 0..63 range; MPEG-4 and MPEG-2 the quantiser 1 + 30 (CRF / 51)^2.
    ProRes and FFV1 have no quality setting. H.264 and HEVC store 4:2:0 colour only at even sizes, so a clip of odd
    width or height is written 4:4:4 (same size, no pixel added or cut; ProRes then as 4444).
    ``bit_depth`` 16 (a source of more than 8 bits) writes 10-bit H.264, HEVC, VP9 and FFV1 (MPEG-4 and MPEG-2 have
    only 8, ProRes is always 10). An interlaced source (:func:`field_order` of its pixel format) keeps its field
    order: the frames and the container are flagged with it, and H.264, MPEG-2, MPEG-4 and ProRes code them as
    fields (:data:`_INTERLACED`), so that players deinterlace them as they did the source. ``colour``
    (:func:`clip_colour` of the source) is written with the source's matrix and range and tagged as the source
    is, so players show unchanged pixels as they showed the source's; without tags, ffmpeg's defaults, which
    are also what it reads an untagged source with. MPEG-4 (``.avi``) holds no tags, so it is always written
    with those defaults (BT.601), which is how it is read back. ``sar`` (pixels of that width to height, not square)
    is set on the frames (``setsar``), so that players show the picture at the source's shape. ``hdr10`` (the
    source's mastering display and light levels, :func:`hdr10_metadata`) is written into HEVC; no other encoder here
    writes it."""
    if not 1 <= quality <= 100:
        raise ValueError(f"--quality must be in 1..100, got {quality}")
    crf = min(51, max(0, round(51 - 33 * quality / 95)))
    suffix = suffix.lower()
    source = source or {}
    codec = _CODECS.get(suffix, "libx264")
    if (kept := _KEPT_CODECS.get(source.get("codec", ""))) and suffix in _CONTAINERS[kept]:
        codec = kept
    ten = "10le" if bit_depth == 16 and codec not in ("mpeg4", "mpeg2video") else ""
    odd = bool(size[0] % 2 or size[1] % 2)
    chroma = _chroma(source.get("pix_fmt", ""))
    rgb, first = False, []
    if codec == "libvpx-vp9":
        pix_fmt, options = f"yuv420p{ten}", ["-crf", str(round(crf * 63 / 51)), "-b:v", "0"]
    elif codec in ("mpeg4", "mpeg2video"):
        pix_fmt, options = "yuv420p", ["-qscale:v", str(1 + round(30 * (crf / 51) ** 2))]
    elif codec == "libx265":
        pix_fmt = f"yuv{'444' if odd else chroma}p{ten}"
        hdr = "".join(f":{key}={value}" for key, value in (hdr10 or {}).items())
        options = ["-crf", str(crf), "-x265-params", f"log-level=error{':hdr10=1' if hdr else ''}{hdr}"] + (
            ["-tag:v", "hvc1"] if suffix in (".mp4", ".m4v", ".mov") else [])
    elif codec == "prores_ks":
        profile = _PRORES_PROFILES.get(source.get("profile", "").lower(), 3)  # unknown: HQ
        profile = max(profile, 4) if odd or chroma == "444" else profile
        pix_fmt, options = ("yuv444p10le" if profile >= 4 else "yuv422p10le"), ["-profile:v", str(profile),
                                                                                  "-vendor", "apl0"]
    elif codec == "ffv1":
        rgb = source.get("pix_fmt", "").startswith(("gbr", "rgb", "bgr"))
        bits = re.search(r"(?:p|rgb|bgr)(1[0-6])(?:le|be)", source.get("pix_fmt", ""))  # a deep RGB source's depth
        grey = source.get("pix_fmt", "").startswith("gray")  # a monochrome archive stays one, losslessly
        pix_fmt = f"gbrp{(bits.group(1) if bits else '16') + 'le' if ten else ''}" if rgb else \
            ("gray16le" if ten else "gray") if grey else f"yuv{'444' if odd else chroma}p{ten}"
        if grey and ten:  # R = G = B: the green plane as it is (swscale's RGB -> gray is off by a level or more)
            first = ["format=gbrp16le", "extractplanes=g"]
        options = ["-level", "3", "-g", "1", "-slicecrc", "1"]
    else:  # H.264: 4:2:0, or a 4:2:2 or 4:4:4 H.264 source's own (cameras' 10-bit 4:2:2), which who plays it plays
        own = chroma if source.get("codec") == "h264" else "420"
        pix_fmt, options = f"yuv{'444' if odd else own}p{ten}", ["-crf", str(crf)]
    filters = first
    if codec != "mpeg4":  # no colour tags in MPEG-4 Part 2: written with the BT.601 that readers then assume
        # planar RGB has no matrix or range to convert to: only its primaries and transfer are tagged
        filters += _colour_filters({k: v for k, v in (colour or {}).items() if not rgb or k in ("primaries", "trc")},
                                   pix_fmt)
    if sar:
        filters.append(f"setsar={sar[0]}/{sar[1]}")
    if field := field_order(source.get("pix_fmt", "")):
        filters.append(f"setfield={field}")  # the frames' field order, which the encoders below code
        options += ["-field_order", "tt" if field == "tff" else "bb"]  # and the container's, where it has one
        if codec in _INTERLACED:
            options += ["-flags", _INTERLACED[codec]]
        if codec == "libx264":  # x264 takes its field order from its own setting, not from the frames
            options += ["-x264-params", f"{field}=1"]
    return codec, pix_fmt, options + (["-vf", ",".join(filters)] if filters else [])


def hdr10_metadata(path: Path) -> dict[str, str]:
    """An HDR10 clip's static metadata, as its first frame carries it (SMPTE ST 2086 mastering display, CTA-861.3
    content light levels), in x265's terms: ``master-display`` (``G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)``, x and y in
    units of 0.00002, luminance of 0.0001 cd/m2) and ``max-cll`` (``MaxCLL,MaxFALL`` in cd/m2); those it lacks are
    left out (an empty dictionary for a clip without any)."""
    import subprocess

    done = subprocess.run([_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0",
                           "-frames:v", "1", "-vf", "showinfo", "-f", "null", "-"], capture_output=True, text=True,
                          errors="replace")
    found: dict[str, str] = {}
    number = r"(\d+(?:\.\d+)?)"
    display = re.search(r"Mastering display metadata: has_primaries:1 has_luminance:1 (.*)", done.stderr)
    if display:
        points = dict((name, (float(x), float(y))) for name, x, y in re.findall(
            rf"\b(r|g|b|wp)\({number},?\s*{number}\)", display.group(1)))
        light = re.search(rf"min_luminance={number}, max_luminance={number}", display.group(1))
        if len(points) == 4 and light:
            xy = "".join(f"{tag}({round(points[k][0] * 50000)},{round(points[k][1] * 50000)})"
                         for tag, k in (("G", "g"), ("B", "b"), ("R", "r"), ("WP", "wp")))
            low, high = (round(float(light.group(k)) * 10000) for k in (1, 2))
            found["master-display"] = f"{xy}L({high},{low})"
    levels = re.search(r"Content light level metadata: MaxCLL=(\d+), MaxFALL=(\d+)", done.stderr)
    if levels:
        found["max-cll"] = f"{levels.group(1)},{levels.group(2)}"
    return found


_INTERLACED = {"libx264": "+ildct+ilme", "mpeg2video": "+ildct+ilme", "mpeg4": "+ildct+ilme", "prores_ks": "+ildct"}
"""the encoders that code interlaced frames as fields (x265 and VP9 do not; their frames are only flagged)"""


def field_order(pix_fmt: str) -> str | None:
    """``"tff"`` or ``"bff"``: which field of an interlaced clip is shown first, from ffmpeg's description of its
    pixel format (``yuv420p(tv, top first)``; ``top coded first (swapped)`` shows the bottom field first); ``None``
    for a progressive clip."""
    found = re.search(r"\b(top|bottom) (coded )?first", pix_fmt)
    if not found:
        return None
    top = (found.group(1) == "top") != bool(found.group(2))
    return "tff" if top else "bff"


def _colour_filters(colour: dict[str, str], pix_fmt: str) -> list[str]:
    """Filters converting to ``pix_fmt`` with the matrix and range of ``colour`` and marking the frames with its
    tags (``setparams``: the encoder writes the frames' own; ``-color_primaries`` and the like are not applied)."""
    space = colour.get("space") if colour.get("space") in _SCALE_MATRIX else None  # tagged only as converted
    scale = [f"out_color_matrix={_SCALE_MATRIX[space]}"] if space else []
    tags = [f"colorspace={space}"] if space else []
    if "range" in colour:
        scale.append(f"out_range={colour['range']}")
        tags.append(f"range={colour['range']}")
    tags += [f"color_{key}={colour[key]}" for key in ("primaries", "trc") if colour.get(key) in _TAGS[key]]
    if not scale and not tags:
        return []
    chain = ([f"scale={':'.join(scale)}"] if scale else []) + [f"format={pix_fmt}"]
    return chain + ([f"setparams={':'.join(tags)}"] if tags else [])


_TAGS = {"primaries": {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020", "smpte428",
                       "smpte431", "smpte432", "jedec-p22", "ebu3213"},
         "trc": {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "linear", "log100", "log316", "iec61966-2-4",
                 "bt1361e", "iec61966-2-1", "bt2020-10", "bt2020-12", "smpte2084", "smpte428", "arib-std-b67"}}
"""the primaries and transfers that ffmpeg's setparams takes by the name it prints them with"""


def clip_streams(path: Path) -> dict[str, int]:
    """How many audio, subtitle, attachment (a Matroska file's fonts) and data (timecode, a camera's telemetry)
    streams the clip has, as ffmpeg lists them, and of its video streams after the first (the one enhanced), how many
    are ``pictures`` (cover art: attached pictures) and how many ``other_video`` (a second camera angle...).
    ``dvd_nav``: a DVD video object's navigation packets, counted apart from the data streams."""
    found = re.findall(r"^\s*Stream #0:\d+\S*: (Audio|Subtitle|Attachment|Data|Video)(.*)$", _listing(path),
                       re.MULTILINE)
    kinds = [k for k, rest in found if not (k == "Data" and "(text /" in rest)]  # MP4 chapters: copied as such
    nav = sum(k == "Data" and rest.startswith(": dvd_nav_packet") for k, rest in found)
    counts = {name.lower(): kinds.count(name) for name in ("Audio", "Subtitle", "Attachment", "Data")}
    counts["data"] -= nav
    counts["dvd_nav"] = nav
    video = [rest for k, rest in found if k == "Video"]
    counts["pictures"] = sum("(attached pic)" in rest for rest in video)
    counts["other_video"] = max(0, len(video) - counts["pictures"] - 1)
    return counts


def video_delay(path: Path) -> float:
    """How long after the start of the file (its earliest stream) the clip's first video frame is shown, in seconds:
    0 for most clips; the few milliseconds by which an MPEG-TS's sound, priming samples and all, starts before its
    picture; the gap before the picture of a clip whose video starts late. Asked once per version of the file."""
    return _cached_video_delay(str(path), _version(path))


@functools.lru_cache(maxsize=32)
def _cached_video_delay(path: str, version: tuple[int, int] | None) -> float:
    import subprocess

    done = subprocess.run([_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-copyts", "-i", path, "-map", "0:v:0",
                           "-frames:v", "1", "-vf", "showinfo", "-f", "null", "-"], capture_output=True, text=True,
                           errors="replace")
    start = re.search(r"^\s*Duration: .*?, start: (-?[0-9.]+)", done.stderr, re.MULTILINE)
    shown = re.search(r"\bpts_time:\s*(-?[0-9.]+)", done.stderr)  # the first frame's time, as stored (-copyts)
    return max(0.0, round(float(shown.group(1)) - float(start.group(1)), 6)) if start and shown else 0.0


_DEMUXERS = {"mov": (".mp4", ".mov", ".m4v", ".3gp"), "matroska": (".mkv", ".webm"), "avi": (".avi",),
               "mpegts": (".ts", ".mts", ".m2ts"), "mpeg": (".mpg", ".mpeg", ".vob")}
"""ffmpeg's demuxers and the file names of the clips they read"""
_CONTAINER_NAMES = {"mov": "an MP4/QuickTime", "matroska": "a Matroska/WebM", "avi": "an AVI", "mpegts": "an MPEG-TS",
                    "mpeg": "an MPEG program stream"}


def misnamed_container(path: Path) -> str:
    """``""``, or what the clip ``path`` is when its name gives another container than the one ffmpeg finds in it
    (a Matroska file named ``.mp4``: ``"a Matroska/WebM file named .mp4"``). Its output is written as its name
    says, so such a clip changes container and often codec (an FFV1 archive renamed ``.mp4`` comes back as H.264)."""
    found = re.search(r"^Input #0, ([\w,]+), from", _listing(path), re.MULTILINE)
    if not found:
        return ""
    demuxers = found.group(1).split(",")
    suffix = path.suffix.lower()
    for demuxer, suffixes in _DEMUXERS.items():
        if demuxer in demuxers:
            return "" if suffix in suffixes else f"{_CONTAINER_NAMES[demuxer]} file named {suffix}"
    return ""


def clip_damage(path: Path) -> str:
    """What ffmpeg reports wrong while it reads every stream of the clip without decoding it (``""``: nothing): a
    file cut short says so ("partial file" in MP4, "File ended prematurely" in Matroska) where its frames are simply
    missing, and would otherwise be enhanced as a shorter clip without a word. Up to three distinct messages, the
    demuxer's first, without ffmpeg's ``[component @ address]`` prefixes. Asked once per version of the file. (A cut
    MPEG-TS, which has no index, reads as a shorter clip and reports nothing.)"""
    return _cached_clip_damage(str(path), _version(path))


@functools.lru_cache(maxsize=32)
def _cached_clip_damage(path: str, version: tuple[int, int] | None) -> str:
    import subprocess

    done = subprocess.run([_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-map",
                           "0", "-c", "copy", "-f", "null", "-"], capture_output=True, text=True, errors="replace")
    lines = [(line.startswith("[in#"), _plain(line)) for line in done.stderr.splitlines()]
    found = list(dict.fromkeys(text for _, text in sorted(lines, key=lambda d: not d[0]) if text))
    return "; ".join(found[:3])


def _copy_streams(video: Path, source: Path, out: Path, kinds: Sequence[str]) -> str | None:
    """Write ``out``: the picture of ``video``, started as long after the start of the file as the source's
    (:func:`video_delay`), with the streams of ``kinds`` (``"a"``, ``"s"``, ``"t"``, ``"p"``: audio, subtitles,
    attachments, attached pictures) and the metadata and chapters of ``source``, copied as they are; ffmpeg's reason
    when it cannot."""
    import subprocess

    maps = [a for k in kinds for a in (("-map", "1:v?", "-map", "-1:V?") if k == "p" else ("-map", f"1:{k}?"))]
    delay = video_delay(source)
    offset = ["-itsoffset", f"{delay:.6f}"] if delay >= 0.0005 else []
    done = subprocess.run([_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *offset, "-i",
                           str(video), "-i", str(source), "-map", "0:v:0", *maps, "-c", "copy", "-map_metadata", "1",
                           "-map_chapters", "1", *_metadata_options(source, out), *_track_options(source, kinds),
                           str(out)], capture_output=True, text=True, errors="replace")
    return ffmpeg_reason(done.stderr or "ffmpeg failed") if done.returncode else None


def clip_tracks(listing: str) -> list[dict]:
    """Per stream of ffmpeg's ``listing``, in order: its ``kind`` (``Video``, ``Audio``, ``Subtitle``...), its
    ``language`` (``""`` for none or ``und``), its ``disposition`` flags as ffmpeg's ``-disposition`` names them
    (``default``, ``forced``, ``hearing_impaired``...) and its ``title`` and ``creation_time`` tags (``""``: none)."""
    tracks: list[dict] = []
    head = re.compile(r"^\s*Stream #0:\d+(?:\[\w+\])?(?:\((\w+)\))?: (\w+): (.*)$")
    flags = re.compile(r"\s*\((" + "|".join(_DISPOSITIONS) + r")\)$")
    lines = listing.splitlines()
    for i, line in enumerate(lines):
        if not (m := head.match(line)):
            continue
        rest, found = m.group(3), []
        while f := flags.search(rest):
            found.insert(0, f.group(1).replace(" ", "_").replace("-", "_"))
            rest = rest[:f.start()]
        tags = {}
        if i + 1 < len(lines) and lines[i + 1].strip() == "Metadata:":
            indent = len(lines[i + 1]) - len(lines[i + 1].lstrip())
            for tag in lines[i + 2:]:
                if len(tag) - len(tag.lstrip()) <= indent:
                    break
                key, _, value = tag.strip().partition(":")
                tags.setdefault(key.strip(), value.strip())
        language = m.group(1) if m.group(1) not in (None, "und") else ""
        tracks.append({"kind": m.group(2), "language": language, "disposition": found,
                       "title": tags.get("title", ""), "creation_time": tags.get("creation_time", "")})
    return tracks


_DISPOSITIONS = ("default", "dub", "original", "comment", "lyrics", "karaoke", "forced", "hearing impaired",
                 "visual impaired", "clean effects", "attached pic", "timed thumbnails", "non-diegetic", "captions",
                 "descriptions", "metadata", "dependent", "still image", "multilayer")
"""the dispositions as ffmpeg's listing prints them (in parentheses at the end of a stream's line)"""


def _track_options(source: Path, kinds: Sequence[str]) -> list[str]:
    """The options that give the enhanced video track the language, title and creation time of the source's (the
    copied tracks keep theirs), and every video, audio and subtitle track its source's dispositions: without them
    ffmpeg marks the first track of each kind as the default one (an audio track the player then picks over the
    viewer's language) and the enhanced track's own tags are lost. A source whose container records no
    dispositions (AVI, MPEG-TS) leaves them to ffmpeg; a Matroska or WebM source records them even when no track has
    any (no default track), which is kept."""
    listing = _listing(source)
    tracks = clip_tracks(listing)
    first = next((t for t in tracks if t["kind"] == "Video" and "attached_pic" not in t["disposition"]), None)
    recorded = any(t["disposition"] for t in tracks) or bool(re.search(r"^Input #0, matroska", listing, re.MULTILINE))
    options = []
    if first is not None:
        options += [a for key in ("language", "title", "creation_time") if first[key]
                    for a in ("-metadata:s:v:0", f"{key}={first[key]}")]
        if recorded:
            options += ["-disposition:v:0", "+".join(first["disposition"]) or "0"]
    for kind, letter in (("Audio", "a"), ("Subtitle", "s")):
        if letter in kinds and recorded:
            for n, track in enumerate(t for t in tracks if t["kind"] == kind):
                options += [f"-disposition:{letter}:{n}", "+".join(track["disposition"]) or "0"]
    return options


_QUICKTIME = (".mov", ".mp4", ".m4v", ".3gp")
_BRANDS = ("major_brand", "minor_version", "compatible_brands")  # the container's own, not the clip's


def _metadata_options(source: Path, out: Path) -> list[str]:
    """For a QuickTime-family output of a clip whose metadata has keys of its own (a phone's
    ``com.apple.quicktime.location.ISO6709``, ``...make``, ``...model``, ``...creationdate``: reverse-DNS names),
    ``use_metadata_tags``, without which ffmpeg writes only the keys it knows (title, date...) and drops the place,
    the camera and even a creation time given twice; the brands of the source's container are not copied as tags."""
    if out.suffix.lower() not in _QUICKTIME:
        return []
    listing = _listing(source)
    block = listing[listing.find("Metadata:"):listing.find("Duration:")] if "Metadata:" in listing else ""
    if not re.search(r"^\s+[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+\s*:", block, re.MULTILINE):
        return []
    return ["-movflags", "use_metadata_tags", *(a for key in _BRANDS for a in ("-metadata", f"{key}="))]


def write_clip(path: Path, frames: Iterable[np.ndarray], *, fps: float, size: tuple[int, int],
               streams_from: Path | None = None, quality: int = 95, bit_depth: int = 8,
               colour: dict[str, str] | None = None, sar: tuple[int, int] | None = None,
               source: dict[str, str] | None = None, hdr10: dict[str, str] | None = None,
               before_replace: Callable[[list[str]], None] | None = None) -> list[str]:
    """Encode ``frames`` to ``path`` atomically (hidden temporary files moved into place); ``before_replace`` runs
    after encoding, before the move, given what was left out (below). ``fps`` is taken as :func:`exact_rate` reads
    it (29.97 as 30000/1001). Codec, quality, ``bit_depth`` and ``colour``: :func:`encoder_options`. Frames are
    ``uint8`` codes, or ``uint16`` with ``bit_depth`` 16.

    ``sar``: the shape ``(width, height)`` of the pixels, for a clip whose pixels are not square (anamorphic DV,
    DVD, HDV: 720 x 480 shown at 16:9); ``None`` for square pixels. ``source``: the source clip's codec, profile and
    pixel format, which choose the encoder (:func:`encoder_options`). ``hdr10``: the source's HDR10 metadata
    (:func:`hdr10_metadata`), written where the encoder is HEVC and else left out (and named). A source's alpha
    channel (its ``pix_fmt``) is never written, and named as left out.

    With ``streams_from``, every audio track, subtitle track, attachment and attached picture (cover art) of that
    clip, its metadata (title, creation time...) and its chapters are copied into the output unchanged. What the
    output's container cannot hold (say, a subtitle format it has no tag for) is left out, cover art, attachments
    and subtitles first; returns what was left out, each with ffmpeg's reason (the metadata and chapters too, when
    even they cannot be copied), the data tracks (timecode, a camera's telemetry) and any video tracks after the
    first, which are never copied, and cover art in Matroska output (which ffmpeg would write as a video track)."""
    ff = _ffmpeg()
    tmp, both = temp_path(path, path.suffix), temp_path(path, path.suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)  # a killed run's, as large as the clip
    left_out: list[str] = []
    try:
        codec, pix_fmt, options = encoder_options(path.suffix, quality, size, bit_depth, colour, sar, source, hdr10)
        if _ALPHA.match((source or {}).get("pix_fmt", "")):
            left_out.append("its alpha channel (transparency): clips are written without one")
        if hdr10 and codec != "libx265":
            left_out.append("its HDR10 mastering display and light levels (only HEVC output here carries them)")
        deep = bit_depth == 16 and re.search(r"1[0-6](le|be)$", pix_fmt) is not None  # 10 to 16 bits a sample
        writer = ff.write_frames(str(tmp), size, fps=exact_rate(fps), codec=codec,
                                 pix_fmt_in="rgb48le" if deep else "rgb24", pix_fmt_out=pix_fmt, quality=None,
                                 output_params=options, macro_block_size=1,
                                 ffmpeg_log_level="error")  # not a muxer's advice (MPEG-PS: "set the buffer size")
        try:
            writer.send(None)
            for frame in frames:
                frame = to_codes(frame, 16 if deep else 8)
                writer.send(np.ascontiguousarray(frame, dtype="<u2" if deep else np.uint8))
            writer.close()
        except OSError as e:  # ffmpeg stopped; it printed its reason itself (imageio-ffmpeg does not capture it)
            raise ValueError(f"cannot write the clip ({str(e).splitlines()[0]}; ffmpeg's reason is printed above "
                             "the summary)") from None
        if streams_from is not None:
            streams = clip_streams(streams_from)
            kinds = [k for k, name in (("a", "audio"), ("s", "subtitle"), ("t", "attachment"), ("p", "pictures"))
                     if streams[name]]
            if "p" in kinds and path.suffix.lower() in (".mkv", ".webm"):  # ffmpeg would write it as a video track
                kinds.remove("p")
                left_out.append(f"{streams['pictures']} cover art picture(s) (not kept in Matroska output here)")
            if streams["data"]:
                left_out.append(f"{streams['data']} data track(s) (timecode, telemetry: not copied)")
            if streams["dvd_nav"]:
                left_out.append("the DVD navigation packets (they point into the disc the clip was authored for: "
                                "not copied)")
            if streams["other_video"]:
                left_out.append(f"{streams['other_video']} other video track(s) (only the first is enhanced; the "
                                "others are not copied)")
            while (reason := _copy_streams(tmp, streams_from, both, kinds)) is not None:
                if kinds == ["a"]:  # the sound is never left out
                    misnamed = misnamed_container(streams_from)
                    raise ValueError(f"cannot copy the clip's sound ({reason})"
                                     + (f"; the clip is {misnamed}: name it as what it is" if misnamed else ""))
                if not kinds:  # not even the metadata: the picture as encoded
                    left_out.append(f"metadata and chapters ({reason})")
                    break
                left_out.append(f"{_STREAM_NAMES[kinds.pop()]} ({reason})")
            else:
                os.replace(both, tmp)
        if before_replace is not None:
            before_replace(left_out)
        os.replace(tmp, path)
    finally:
        for t in (tmp, both):
            if t.exists():
                t.unlink()
    return left_out


_ALPHA = re.compile(r"(?:yuva|gbrap|rgba|bgra|argb|abgr|ya8|ya16)")
"""ffmpeg's pixel formats with an alpha channel (ProRes 4444, FFV1, PNG and QuickTime Animation clips can hold one)"""
_STREAM_NAMES = {"s": "subtitles", "t": "attachments", "p": "cover art"}  # left out last first: cover art, ...


_HDR_TRANSFERS = {"smpte2084": "PQ", "arib-std-b67": "HLG"}


def enhance_video(method, source: Path, output: Path, cfg) -> dict:
    """Correct a clip: plans per frame on views (pass 1), smoothed, rendered and encoded (pass 2)."""
    _need_parametric(method, cfg)
    from . import DeepExposeWarning

    meta, frames = read_clip(source)
    edits, repeats, stats_in = _plan_frames(method, frames)
    if not edits:
        raise ValueError("the clip has no frames")
    plans = _plans(method, edits, repeats, cfg) if method.parametric else None
    stats_out: list[np.ndarray] = []
    report: dict = {"frames": len(edits), "repeated_frames": sum(repeats), "fps": meta["fps"],
                    **({"average_fps": meta["average_fps"]} if "average_fps" in meta else {})}
    damage = clip_damage(source)
    if damage:
        report["damaged"] = damage
    if _changes_nothing(source, plans, method, cfg.strength, len(edits)):
        from .enhance import side_files_kept_on_failure

        if damage:
            warnings.warn(f"{source}: ffmpeg finds the clip damaged ({damage}); the edit changes none of its "
                          f"{len(edits)} readable frames, so it is copied as it is, damage and all",
                          DeepExposeWarning, stacklevel=2)
        with side_files_kept_on_failure(output, sidecar=cfg.sidecar, lut=False):
            report.update({**_flicker_report(stats_in, stats_in), "copied": True})
            if cfg.sidecar:
                from .enhance import source_name

                _write_json(side_path(output, ".json"), {
                    "source": source_name(source), **method.describe(), "temporal_window": temporal_window(method, cfg),
                    "strength": cfg.strength, **report,
                    "edits": [p.edit for p in plans] if plans is not None else None})
            atomic_copy(source, output, overwrite=True)  # every track as it was: re-encoding would only lose
        return report
    if (trc := meta["colour"].get("trc")) in _HDR_TRANSFERS:
        warnings.warn(f"{source} is HDR ({_HDR_TRANSFERS[trc]}): it is edited on its code values as if they were SDR "
                      "ones, which no model here has seen", DeepExposeWarning, stacklevel=2)
    hdr10 = hdr10_metadata(source) if trc in _HDR_TRANSFERS else None

    def rendered():
        _, again = read_clip(source)
        for i, frame in enumerate(again):
            if i >= len(edits):
                break
            plan = plans[i] if plans is not None else method.plan(frame)
            out = plan.render(frame, cfg.strength)
            stats_out.append(frame_statistics(out))
            yield out

    if misnamed := misnamed_container(source):
        report["misnamed"] = misnamed
        warnings.warn(f"{source} is {misnamed}: it is written as its name says, container and codec, not as it was "
                      "(name it as what it is to keep that)", DeepExposeWarning, stacklevel=2)
    if damage:
        warnings.warn(f"{source}: ffmpeg finds the clip damaged ({damage}); {len(edits)} frames could be read, and "
                      "frames or sound past the damage may be missing from the output", DeepExposeWarning,
                      stacklevel=2)

    def sidecar(left_out: list[str]) -> None:
        report.update(_flicker_report(stats_in, stats_out))
        if left_out:
            report["left_out"] = left_out
        if cfg.sidecar:
            from .enhance import source_name

            doc = {"source": source_name(source), **method.describe(), "temporal_window": temporal_window(method, cfg),
                   "strength": cfg.strength, **report, "edits": [p.edit for p in plans] if plans is not None else None}
            _write_json(side_path(output, ".json"), doc)

    left_out = write_clip(output, rendered(), fps=float(meta["fps"]), size=tuple(meta["size"]), streams_from=source,
                          quality=cfg.quality_for(None, output), bit_depth=meta["bit_depth"], sar=meta.get("sar"),
                          colour=meta["colour"], hdr10=hdr10, before_replace=sidecar,
                          source={k: str(meta.get(k, "")) for k in ("codec", "profile", "pix_fmt")})
    if left_out:
        warnings.warn(f"{source}: left out of the output: {'; '.join(left_out)}", DeepExposeWarning, stacklevel=2)
    return report


def _changes_nothing(source: Path, plans: list | None, method, strength: float, count: int) -> bool:
    """Whether the edit leaves each of the ``count`` frames of the clip ``source`` as it is, pixel for pixel: asked
    only when it may (``strength`` 0, or every parameter of every one of ``plans`` 0, as the identity method's and a
    gated agent's; a method without plans, such as the cGAN, only at ``strength`` 0, planning each frame again), by
    rendering every frame without encoding it, up to the first one that changes."""
    if strength != 0 and (plans is None or any(np.any(np.asarray(value, dtype=np.float64) != 0)
                                               for plan in plans for _, value in _numeric_leaves(plan.edit or {}))):
        return False
    _, frames = read_clip(source)
    seen = 0
    try:
        for i, frame in enumerate(frames):
            if i >= count:
                break
            plan = plans[i] if plans is not None else method.plan(frame)
            if not np.array_equal(plan.render(frame, strength), frame):
                return False
            seen += 1
    finally:
        frames.close()
    return seen == count


def _write_json(path: Path, doc: dict) -> None:
    atomic_write_bytes(path, (json.dumps(doc, indent=2) + "\n").encode(), overwrite=True)
