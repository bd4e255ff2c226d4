"""Frame sequences and clips: parameter smoothing, the flicker figure, and enhance on a synthetic clip."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepexpose import DeepExposeWarning
from deepexpose.enhance import EnhanceConfig, enhance_paths
from deepexpose.io import read_image
from deepexpose.video import (DEFAULT_WINDOW, clip_damage, encoder_options, ffmpeg_reason, flicker, flicker_test_clip,
                              frame_outputs, frame_statistics, hold_repeats, read_clip, sequence_frames, smooth_edits,
                              temporal_window, write_clip)


@pytest.fixture
def encode_always(monkeypatch):
    """Clips are encoded even when the edit changes nothing (the identity method), which would copy them: for tests
    of the writing itself."""
    import deepexpose.video as video

    monkeypatch.setattr(video, "_changes_nothing", lambda *args: False)


def test_smooth_edits_moving_average():
    edits = [{"exposure": {"ev": float(v)}, "local_exposure": {"ev": [float(v), 0.0]}} for v in (0, 3, 0, 3, 0)]
    out = smooth_edits(edits, 3)
    assert [e["exposure"]["ev"] for e in out] == [1.5, 1.0, 2.0, 1.0, 1.5]
    assert out[1]["local_exposure"]["ev"] == [1.0, 0.0]
    assert smooth_edits(edits, 1) == edits
    with pytest.raises(ValueError, match="odd"):
        smooth_edits(edits, 2)  # a centred window has an odd number of frames
    # a parameter only some frames have is averaged over those that have it
    partial = [{"exposure": {"ev": 1.0}}, {}, {"exposure": {"ev": 3.0}}]
    assert smooth_edits(partial, 3) == partial  # each frame's window holds only itself of those that have it
    assert smooth_edits(partial, 5) == [{"exposure": {"ev": 2.0}}, {}, {"exposure": {"ev": 2.0}}]
    with pytest.raises(ValueError):
        smooth_edits(edits, 0)


def test_hold_repeats_gives_a_repeated_frame_its_runs_first_edit():
    edits = [{"exposure": {"ev": float(v)}} for v in range(5)]
    held = hold_repeats(edits, [False, True, True, False, True])
    assert [e["exposure"]["ev"] for e in held] == [0.0, 0.0, 0.0, 3.0, 3.0]
    assert hold_repeats(edits, [False] * 5) == edits
    with pytest.raises(ValueError):
        hold_repeats(edits, [False] * 4)
    with pytest.raises(ValueError):
        hold_repeats(edits, [True] + [False] * 4)


def test_repeated_frames_stay_identical_after_smoothing_and_are_planned_once(tmp_path, monkeypatch):
    import deepexpose.methods as methods

    seq = tmp_path / "rep"
    seq.mkdir()
    clip = flicker_test_clip(n=4)
    order = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]  # each picture repeated, as a converted frame rate does
    for i, k in enumerate(order):
        Image.fromarray((clip[k] * 255).round().astype(np.uint8)).save(seq / f"f{i:02d}.png")
    planned = []
    plan = methods.ClassicMethod.plan
    monkeypatch.setattr(methods.ClassicMethod, "plan", lambda self, px: planned.append(1) or plan(self, px))
    out = tmp_path / "o"
    cfg = EnhanceConfig(out=str(out), method="classic", frames=True, temporal_window=5, sidecar=True, progress=False)
    assert enhance_paths([seq], cfg).exit_code == 0
    assert len(planned) == 4  # one plan per distinct picture
    written = [read_image(p, dtype="native").pixels for p in sorted((out / "rep").glob("f*.png"))]
    for i in range(1, len(order)):
        assert np.array_equal(written[i], written[i - 1]) == (order[i] == order[i - 1]), i
    report = json.loads((out / "rep.json").read_text())
    assert report["frames"] == 10 and report["repeated_frames"] == 6
    edits = report["edits"]
    assert edits[1] == edits[0] and edits[2] == edits[0] and edits[4] == edits[3]


def test_flicker_figure():
    steady = [frame_statistics(np.full((4, 4, 3), 0.5, np.float32)) for _ in range(5)]
    assert flicker(steady) == {"luminance": 0.0, "rgb": 0.0}
    alternating = [frame_statistics(np.full((4, 4, 3), v, np.float32)) for v in (0.2, 0.4, 0.2)]
    f = flicker(alternating)
    assert f["luminance"] == pytest.approx(0.2) and f["rgb"] == pytest.approx(0.2)
    u8 = frame_statistics(np.full((2, 2, 3), 255, np.uint8))
    assert np.allclose(u8, 1.0)
    with pytest.raises(ValueError):
        flicker(steady[:1])


def test_sequence_natural_order(tmp_path):
    for name in ("f10.png", "f2.png", "f1.png", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in sequence_frames(tmp_path)] == ["f1.png", "f2.png", "f10.png"]


def test_frames_smoothing_reduces_flicker(tmp_path):
    seq = tmp_path / "clip"
    seq.mkdir()
    for i, f in enumerate(flicker_test_clip()):
        Image.fromarray((f * 255).round().astype(np.uint8)).save(seq / f"frame{i}.png")
    reports = {}
    for window in (1, 9):
        out = tmp_path / f"w{window}"
        cfg = EnhanceConfig(out=str(out), method="classic", frames=True, temporal_window=window, sidecar=True,
                            progress=False)
        assert enhance_paths([seq], cfg).exit_code == 0
        reports[window] = json.loads((out / "clip.json").read_text())
        assert len(list((out / "clip").glob("frame*.png"))) == 24
        assert len(reports[window]["edits"]) == 24 and reports[window]["strength"] == 1.0
    raw, smooth = reports[1]["flicker_output"]["luminance"], reports[9]["flicker_output"]["luminance"]
    assert raw > reports[1]["flicker_input"]["luminance"]  # per-frame correction adds flicker ...
    assert smooth < 0.5 * raw  # ... which smoothing the parameters removes


def test_gray_frames_are_written_gray_and_their_flicker_is_of_what_is_written(tmp_path, monkeypatch):
    import deepexpose.video as video

    class Tinted:  # a plan whose render tints each frame by its index: RGB means flicker, the written luma less
        def __init__(self, plan, i):
            self.plan, self.i = plan, i

        def __getattr__(self, name):  # everything else (edit, params, side files) is the plan's
            return getattr(self.plan, name)

        def render(self, pixels, strength):
            out = self.plan.render(pixels, strength)  # codes, as the frames are read
            tinted = out.astype(np.float32)
            tinted[..., 0] *= 1.0 + 0.3 * (self.i % 2)
            return tinted.clip(0, np.iinfo(out.dtype).max).round().astype(out.dtype)

    plans = video._plans
    monkeypatch.setattr(video, "_plans", lambda *a: [Tinted(p, i) for i, p in enumerate(plans(*a))])
    seq = tmp_path / "bw"
    seq.mkdir()
    for i, f in enumerate(flicker_test_clip(n=6)):
        Image.fromarray((f[..., 0] * 255).round().astype(np.uint8), "L").save(seq / f"frame{i}.png")
    out = tmp_path / "o"
    cfg = EnhanceConfig(out=str(out), method="classic", frames=True, temporal_window=1, sidecar=True, progress=False)
    assert enhance_paths([seq], cfg).exit_code == 0
    written = [read_image(p) for p in sorted((out / "bw").glob("frame*.png"))]
    assert len(written) == 6 and all(img.grey for img in written)
    report = json.loads((out / "bw.json").read_text())["flicker_output"]
    expected = flicker([frame_statistics(img.pixels) for img in written])  # measured on the files themselves
    assert report["luminance"] == pytest.approx(expected["luminance"], abs=0.5 / 255)
    assert report["rgb"] == pytest.approx(expected["rgb"], abs=0.5 / 255)


def test_a_clip_the_edit_leaves_unchanged_is_copied_byte_for_byte(tmp_path, monkeypatch):
    """--strength 0 and --method identity used to re-encode the clip (about 32 dB of loss for nothing)."""
    import deepexpose.video as video

    clip = tmp_path / "in" / "c.mkv"
    clip.parent.mkdir()
    write_clip(clip, ((f * 255).round().astype(np.uint8) for f in flicker_test_clip(n=6)), fps=6, size=(64, 48))
    encoded = []
    monkeypatch.setattr(video, "write_clip", lambda *a, **kw: encoded.append(1) or write_clip(*a, **kw))
    for n, options in enumerate(({"method": "identity"}, {"method": "classic", "strength": 0.0},
                                 {"method": "cgan", "strength": 0.0}, {"method": "classic"})):
        out = tmp_path / f"o{n}"
        cfg = EnhanceConfig(out=str(out), sidecar=True, progress=False, **options)
        assert enhance_paths([clip], cfg).exit_code == 0
        doc = json.loads((out / "c.mkv.json").read_text())
        copied = (out / "c.mkv").read_bytes() == clip.read_bytes()
        assert copied == doc.get("copied", False) == (n < 3) and len(encoded) == max(0, n - 2)
        assert doc["frames"] == 6 and (doc["edits"] is None if options["method"] == "cgan" else len(doc["edits"]) == 6)
    whole = tmp_path / "whole.mkv"  # damaged, and left as it is: copied, damage and all, and said so
    write_clip(whole, ((f * 255).round().astype(np.uint8) for f in flicker_test_clip(n=24)), fps=8, size=(64, 48))
    cut = tmp_path / "in" / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) * 6 // 10])
    with pytest.warns(DeepExposeWarning, match="cut.mkv: ffmpeg finds the clip damaged .* copied as it is, damage"):
        assert enhance_paths([cut], EnhanceConfig(out=str(tmp_path / "o9"), method="identity", sidecar=True,
                                                  progress=False)).exit_code == 0
    assert json.loads((tmp_path / "o9" / "cut.mkv.json").read_text())["damaged"] == "File ended prematurely"


def test_a_clip_named_as_another_container_is_said_to_be(tmp_path):
    """An FFV1 MKV renamed .mp4 came back as H.264 without a word; a WebM renamed .mov failed with ffmpeg's words."""
    from deepexpose.video import misnamed_container

    (tmp_path / "in").mkdir()
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=64x48:rate=8:duration=0.5", "-c:v", "ffv1", tmp_path / "ffv1.mkv")
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=64x48:rate=8:duration=0.5", "-f", "lavfi", "-i",
                "sine=duration=0.5", "-c:v", "libvpx-vp9", "-c:a", "libopus", tmp_path / "vp9.webm")
    (tmp_path / "in" / "archive.mp4").write_bytes((tmp_path / "ffv1.mkv").read_bytes())
    (tmp_path / "in" / "web.mov").write_bytes((tmp_path / "vp9.webm").read_bytes())
    assert misnamed_container(tmp_path / "ffv1.mkv") == misnamed_container(tmp_path / "vp9.webm") == ""
    assert misnamed_container(tmp_path / "in" / "archive.mp4") == "a Matroska/WebM file named .mp4"
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, progress=False)
    with pytest.warns(DeepExposeWarning, match="archive.mp4 is a Matroska/WebM file named .mp4: it is written as its "
                                               "name says"):
        summary = enhance_paths([tmp_path / "in"], cfg)
    assert json.loads((tmp_path / "out" / "archive.mp4.json").read_text())["misnamed"] == (
        "a Matroska/WebM file named .mp4")
    failed, = summary.failed
    assert failed.reason.startswith("cannot copy the clip's sound (") and " @ 0x" not in failed.reason
    assert failed.reason.endswith("; the clip is a Matroska/WebM file named .mov: name it as what it is")


def test_numbering_gaps_names_the_missing_frame_numbers():
    from deepexpose.video import numbering_gaps

    assert numbering_gaps([Path(f"f{i:03d}.png") for i in (1, 2, 5, 6, 7, 9)]) == (1, [(3, 4), (8, 8)])
    assert numbering_gaps([Path(f"shot_{i}.PNG") for i in (10, 11, 12)]) == (1, [])
    assert numbering_gaps([Path(f"r{i:04d}.exr.png") for i in (0, 5, 10, 25, 30)]) == (5, [(15, 20)])  # every 5th
    assert numbering_gaps([Path(f"t{i}.png") for i in (1000, 1033, 1067, 1100)]) == (1, [])  # times: no claim
    assert numbering_gaps([Path("a1.png"), Path("b3.png")]) == (1, [])  # not one numbered sequence
    assert numbering_gaps([Path("intro.png"), Path("f3.png")]) == (1, [])


def test_a_gap_in_the_frame_numbers_is_named(tmp_path):
    seq = tmp_path / "seq"
    seq.mkdir()
    for i, f in zip((1, 2, 5, 6), flicker_test_clip(n=4), strict=True):
        Image.fromarray((f * 255).round().astype(np.uint8)).save(seq / f"f{i:04d}.png")
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="classic", frames=True, sidecar=True, progress=False)
    with pytest.warns(DeepExposeWarning, match=r"seq: 2 frame number\(s\) missing \(3-4\): the frames either side"):
        assert enhance_paths([seq], cfg).exit_code == 0
    assert json.loads((tmp_path / "o" / "seq.json").read_text())["missing_numbers"] == [[3, 4]]


def test_the_summary_counts_what_a_frame_folder_holds_besides_its_frames(tmp_path):
    seq = tmp_path / "seq"
    (seq / "takes").mkdir(parents=True)
    for i, f in enumerate(flicker_test_clip(n=3)):
        Image.fromarray((f * 255).round().astype(np.uint8)).save(seq / f"f{i}.png")
    for name in ("notes.txt", "b-roll.mp4", "README", ".DS_Store"):
        (seq / name).write_bytes(b"x")
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="classic", frames=True, progress=False)
    summary = enhance_paths([seq], cfg)
    assert summary.exit_code == 0 and summary.beside_frames == {".txt": 1, ".mp4": 1, "(no extension)": 1,
                                                                "subfolders": 1}
    assert str(summary).splitlines()[1] == ("  left out of the frame folders (--frames reads the images directly in "
                                            "each): 4 ((no extension) 1, .mp4 1, .txt 1, subfolders 1)")
    assert len(list((tmp_path / "o" / "seq").glob("f*.png"))) == 3
    plain = EnhanceConfig(out=str(tmp_path / "p"), method="classic", progress=False)
    assert enhance_paths([seq / "f0.png"], plain).beside_frames == {}
    inside = EnhanceConfig(out=str(seq / "out"), method="classic", frames=True, progress=False, overwrite=True)
    (seq / "out").mkdir()  # the output folder is not the frame folder's content, and a folder named twice counts once
    assert enhance_paths([seq, seq], inside).beside_frames == {".txt": 1, ".mp4": 1, "(no extension)": 1,
                                                              "subfolders": 1}


def test_clip_enhance_keeps_frames_and_reports_flicker(tmp_path):
    frames = flicker_test_clip(n=12)
    clip = tmp_path / "in" / "clip.mp4"
    clip.parent.mkdir()
    write_clip(clip, ((f * 255).round().astype(np.uint8) for f in frames), fps=12, size=(64, 48))
    meta, it = read_clip(clip)
    assert meta["size"] == (64, 48) and len(list(it)) == 12
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", temporal_window=5, sidecar=True,
                        progress=False, format="png", lut=True)
    with pytest.warns(DeepExposeWarning, match="--format and --lut do not apply to the 1 clip"):
        s = enhance_paths([clip.parent], cfg)
    assert s.exit_code == 0, str(s)
    out = tmp_path / "out" / "clip.mp4"
    assert not (tmp_path / "out" / "clip.mp4.cube").exists()
    meta_out, frames_out = read_clip(out)
    frames_out = list(frames_out)
    assert len(frames_out) == 12 and meta_out["fps"] == pytest.approx(12)
    doc = json.loads((tmp_path / "out" / "clip.mp4.json").read_text())
    assert doc["frames"] == 12 and doc["repeated_frames"] == 0 and doc["flicker_output"]["luminance"] >= 0
    assert doc["source"] == "clip.mp4"  # how a rerun tells its own sidecar from another file of that name
    assert doc["strength"] == 1.0  # with the edits, what the clip's correction was
    assert not any(p.name.startswith(".") for p in (tmp_path / "out").iterdir())  # no temporary file left
    # the classic correction brightened the flat grey frame toward middle grey (0.18 linear, 118 in sRGB)
    assert np.mean(frames_out[0]) > np.mean(frames[0] * 255) + 5


def test_a_clips_sidecar_name_taken_by_another_file_is_not_replaced(tmp_path):
    clip = tmp_path / "in" / "clip.mp4"
    clip.parent.mkdir()
    write_clip(clip, ((f * 255).round().astype(np.uint8) for f in flicker_test_clip(n=4)), fps=4, size=(32, 24))
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.mp4.json").write_text('{"mine": 1}')
    cfg = EnhanceConfig(out=str(out), method="classic", sidecar=True, progress=False)
    s = enhance_paths([clip], cfg)
    assert s.count("failed") == 1 and "clip.mp4.json already exists and is not deepexpose's" in s.failed[0].reason
    assert (out / "clip.mp4.json").read_text() == '{"mine": 1}' and not (out / "clip.mp4").exists()
    (out / "clip.mp4.json").write_text('{"source": "clip.mp4"}')  # ours, left by a run killed before the clip
    assert enhance_paths([clip], cfg).count("done") == 1


def test_a_killed_runs_partial_clip_is_removed_when_the_clip_is_written(tmp_path):
    import subprocess
    import sys

    from deepexpose.io import temp_path

    clip = tmp_path / "in" / "clip.mp4"
    clip.parent.mkdir()
    write_clip(clip, ((f * 255).round().astype(np.uint8) for f in flicker_test_clip(n=4)), fps=4, size=(32, 24))
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    host = temp_path(out / "clip.mp4").name.rsplit("-", 3)[2]
    partial = out / f".clip.mp4.tmp-{dead}-{host}-0badc0de.mp4"  # as large as the clip, in real footage
    partial.write_bytes(b"\0" * 1000)
    cfg = EnhanceConfig(out=str(out), method="classic", progress=False)
    assert enhance_paths([clip], cfg).count("done") == 1
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4"]


def test_a_frames_side_file_name_taken_by_another_file_is_not_replaced(tmp_path):
    seq = tmp_path / "s"
    seq.mkdir()
    for i, f in enumerate(flicker_test_clip(n=3)):
        Image.fromarray((f * 255).round().astype(np.uint8)).save(seq / f"{i}.png")
    out = tmp_path / "o" / "s"
    out.mkdir(parents=True)
    (out / "1.png.cube").write_text("my grade\n")
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="classic", frames=True, sidecar=True, lut=True,
                        progress=False)
    s = enhance_paths([seq], cfg)
    assert s.count("failed") == 1 and "1 frame side file(s) exist already" in s.failed[0].reason
    assert "1.png.cube" in s.failed[0].reason
    assert (out / "1.png.cube").read_text() == "my grade\n" and not (out / "0.png").exists()
    (out / "1.png.cube").unlink()
    (out / "2.png.json").write_text('{"source": "2.png"}')  # ours, left by a run killed before the frame
    assert enhance_paths([seq], cfg).count("done") == 1
    assert json.loads((out / "2.png.json").read_text())["frame"] == 2
    (out / "0.png.json").write_text('{"mine": 1}')  # beside a finished frame: skipped with it, so left alone
    cfg.skip_existing = True
    assert enhance_paths([seq], cfg).count("skipped") == 1
    (out / "2.png").unlink()  # a frame to redo beside a foreign sidecar of a finished one: still left alone
    assert enhance_paths([seq], cfg).count("done") == 1 and (out / "0.png.json").read_text() == '{"mine": 1}'
    cfg.skip_existing, cfg.overwrite = False, True
    (out / "1.png.json").write_text('{"mine": 1}')
    assert enhance_paths([seq], cfg).count("done") == 1
    assert json.loads((out / "1.png.json").read_text())["source"] == "1.png"


def test_a_sequence_written_again_without_side_files_loses_the_earlier_ones(tmp_path):
    """With --overwrite and no --sidecar or --lut, each frame's sidecar and LUT, and the sequence's sidecar, from an
    earlier run stayed beside the new frames, describing the earlier edit."""
    seq = tmp_path / "s"
    seq.mkdir()
    for i, f in enumerate(flicker_test_clip(n=3)):
        Image.fromarray((f * 255).round().astype(np.uint8)).save(seq / f"{i}.png")
    out = tmp_path / "o" / "s"
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="classic", frames=True, sidecar=True, lut=True,
                        strength=0.5, progress=False)
    assert enhance_paths([seq], cfg).count("done") == 1
    assert len(list(out.iterdir())) == 9 and (tmp_path / "o" / "s.json").exists()
    again = EnhanceConfig(out=str(tmp_path / "o"), method="classic", frames=True, overwrite=True, progress=False)
    assert enhance_paths([seq], again).count("done") == 1
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png", "2.png"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["s"]
    again.sidecar = cfg.overwrite = True  # the LUTs alone go
    assert enhance_paths([seq], cfg).count("done") == 1 and enhance_paths([seq], again).count("done") == 1
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "0.png.json", "1.png", "1.png.json", "2.png",
                                                     "2.png.json"]


def test_foreign_side_files(tmp_path):
    from deepexpose.enhance import foreign_side_files

    src, out = tmp_path / "a.png", tmp_path / "o" / "a.png"
    out.parent.mkdir()
    cfg = EnhanceConfig(sidecar=True, lut=True)
    assert foreign_side_files(src, out, cfg) == []
    (out.parent / "a.png.json").write_text('{"source": "b.png"}')  # written for another source
    (out.parent / "a.png.cube").write_text('TITLE "deepexpose a.png"\n')
    assert foreign_side_files(src, out, cfg) == [out.parent / "a.png.json"]
    (out.parent / "a.png.cube").write_text("LUT_3D_SIZE 2\n")
    assert foreign_side_files(src, out, cfg) == [out.parent / "a.png.json", out.parent / "a.png.cube"]
    assert foreign_side_files(src, out, cfg, lut=False) == [out.parent / "a.png.json"]
    assert foreign_side_files(src, out, EnhanceConfig(lut=True)) == [out.parent / "a.png.cube"]
    cfg.overwrite = True
    assert foreign_side_files(src, out, cfg) == []


def test_non_parametric_method_needs_window_one(tmp_path):
    from deepexpose.video import _need_parametric

    class Painter:
        name, parametric = "painter", False

    with pytest.raises(ValueError, match="temporal-window 1"):
        _need_parametric(Painter(), EnhanceConfig(temporal_window=3))
    _need_parametric(Painter(), EnhanceConfig(temporal_window=1))


def test_frames_output_exists_refused_then_skipped(tmp_path):
    seq = tmp_path / "s"
    seq.mkdir()
    for i, f in enumerate(flicker_test_clip(n=3)):
        Image.fromarray((f * 255).round().astype(np.uint8)).save(seq / f"{i}.png")
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="classic", frames=True, temporal_window=3, progress=False)
    assert enhance_paths([seq], cfg).exit_code == 0
    first = read_image(tmp_path / "o" / "s" / "0.png").pixels
    again = enhance_paths([seq], cfg)
    assert again.exit_code == 1 and "exist already" in again.failed[0].reason
    cfg.skip_existing = True
    assert enhance_paths([seq], cfg).exit_code == 0
    assert np.array_equal(read_image(tmp_path / "o" / "s" / "0.png").pixels, first)


def test_clip_audio_is_copied_and_a_painting_method_runs_frame_by_frame(tmp_path):
    import subprocess

    import imageio_ffmpeg

    clip = tmp_path / "in" / "talk.mp4"
    clip.parent.mkdir()
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=48x32:rate=8:duration=1", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(clip)], check=True)
    meta_in, frames_in = read_clip(clip)
    count = len(list(frames_in))
    assert meta_in.get("audio_codec") == "aac" and count >= 4
    before = clip.read_bytes()
    # the cGAN paints pixels: no parameters to smooth, so each frame on its own (the default window is 1 for it;
    # asking for more is refused before any work)
    with pytest.raises(ValueError, match="no parameters to smooth"):
        enhance_paths([clip], EnhanceConfig(out=str(tmp_path / "out"), method="cgan", temporal_window=3))
    assert not (tmp_path / "out").exists()
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="cgan", progress=False)
    s = enhance_paths([clip], cfg)
    assert s.exit_code == 0, str(s)
    meta, frames = read_clip(tmp_path / "out" / "talk.mp4")
    frames = list(frames)
    assert meta.get("audio_codec") == "aac" and len(frames) == count and frames[0].shape == (32, 48, 3)
    assert clip.read_bytes() == before


def _ffmpeg_run(*args):
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *map(str, args)],
                   check=True)


def _clip_with_tracks(path, subtitle_codec, audio_codec="aac"):
    """A 1-second clip with two audio tracks (the second in French), a subtitle track, a title and a chapter."""
    srt = path.with_suffix(".srt")
    srt.write_text("1\n00:00:00,000 --> 00:00:00,900\nhello\n")
    meta = path.with_suffix(".txt")
    meta.write_text(";FFMETADATA1\ntitle=Our holiday\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\ntitle=One\n")
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=48x32:rate=8:duration=1", "-f", "lavfi", "-i",
                "sine=frequency=440:duration=1", "-f", "lavfi", "-i", "sine=frequency=880:duration=1", "-i", srt,
                "-i", meta, "-map", "0", "-map", "1", "-map", "2", "-map", "3", "-map_metadata", "4",
                "-map_chapters", "4", "-metadata:s:a:1", "language=fra", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                "-c:a", audio_codec, "-c:s", subtitle_codec, path)
    return path


def test_every_audio_and_subtitle_track_and_the_metadata_are_copied(tmp_path):
    from deepexpose.video import clip_streams

    (tmp_path / "in").mkdir()
    clip = _clip_with_tracks(tmp_path / "in" / "trip.mp4", "mov_text")
    assert clip_streams(clip) == {"audio": 2, "subtitle": 1, "attachment": 0, "data": 0, "dvd_nav": 0,
                                  "pictures": 0, "other_video": 0}
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, progress=False)
    assert enhance_paths([clip], cfg).exit_code == 0
    out = tmp_path / "out" / "trip.mp4"
    assert clip_streams(out) == clip_streams(clip)
    listing = _ffmpeg_listing(out)
    assert "Our holiday" in listing and "fra" in listing and "Chapter #0:0" in listing
    assert "left_out" not in json.loads((tmp_path / "out" / "trip.mp4.json").read_text())
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())


def test_the_tracks_keep_their_language_title_and_default_flags(tmp_path):
    """An MKV whose video track has a language and a title, whose audio tracks are neither the default one (the
    player follows the viewer's language) and whose subtitles are forced: all of it comes back as it was; before,
    the video track lost both tags and ffmpeg made the first audio track the default."""
    from deepexpose.video import clip_tracks

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,900\nhello\n")
    clip = tmp_path / "in" / "film.mkv"
    clip.parent.mkdir()
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=64x48:rate=8:duration=1", "-f", "lavfi", "-i",
                "sine=frequency=440:duration=1", "-f", "lavfi", "-i", "sine=frequency=880:duration=1", "-i", srt,
                "-map", "0", "-map", "1", "-map", "2", "-map", "3", "-c:v", "libx264", "-c:a", "aac", "-c:s", "srt",
                "-metadata:s:v:0", "language=jpn", "-metadata:s:v:0", "title=Main camera", "-metadata:s:a:0",
                "language=eng", "-metadata:s:a:1", "language=fra", "-disposition:v:0", "default",
                "-disposition:a:0", "0", "-disposition:a:1", "comment", "-disposition:s:0", "forced", clip)
    before = clip_tracks(_ffmpeg_listing(clip))
    assert [(t["kind"], t["language"], t["disposition"], t["title"]) for t in before] == [
        ("Video", "jpn", ["default"], "Main camera"), ("Audio", "eng", [], ""), ("Audio", "fra", ["comment"], ""),
        ("Subtitle", "", ["forced"], "")]
    assert enhance_paths([clip], EnhanceConfig(out=str(tmp_path / "out"), method="classic", progress=False)
                         ).exit_code == 0
    assert clip_tracks(_ffmpeg_listing(tmp_path / "out" / "film.mkv")) == before


def test_an_mkv_without_any_default_track_keeps_none(tmp_path):
    """No track flagged at all: Matroska still records that (ffmpeg made the first audio track the default)."""
    from deepexpose.video import clip_tracks

    clip = tmp_path / "in" / "none.mkv"
    clip.parent.mkdir()
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=64x48:rate=8:duration=1", "-f", "lavfi", "-i",
                "sine=frequency=440:duration=1", "-f", "lavfi", "-i", "sine=frequency=880:duration=1", "-map", "0",
                "-map", "1", "-map", "2", "-c:v", "libx264", "-c:a", "aac", "-disposition:v:0", "0",
                "-disposition:a:0", "0", "-disposition:a:1", "0", clip)
    before = clip_tracks(_ffmpeg_listing(clip))
    assert [(t["kind"], t["disposition"]) for t in before] == [("Video", []), ("Audio", []), ("Audio", [])]
    assert enhance_paths([clip], EnhanceConfig(out=str(tmp_path / "out"), method="classic", progress=False)
                         ).exit_code == 0
    assert clip_tracks(_ffmpeg_listing(tmp_path / "out" / "none.mkv")) == before


def test_clip_tracks_reads_dispositions_apart_from_codec_names():
    from deepexpose.video import clip_tracks

    listing = """  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive),
 1920x1080 [SAR 1:1 DAR 16:9], 10 fps (default)
      Metadata:
        creation_time   : 2024-05-01T10:00:00.000000Z
        handler_name    : Core Media Video
  Stream #0:1[0x2](deu): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp (default) (hearing impaired)
  Stream #0:2[0x3]: Video: mjpeg (Baseline), yuvj420p(pc), 320x240, 90k tbn (attached pic)
"""
    assert clip_tracks(listing.replace(",\n 1920", ", 1920")) == [
        {"kind": "Video", "language": "", "disposition": ["default"], "title": "",
         "creation_time": "2024-05-01T10:00:00.000000Z"},
        {"kind": "Audio", "language": "deu", "disposition": ["default", "hearing_impaired"], "title": "",
         "creation_time": ""},
        {"kind": "Video", "language": "", "disposition": ["attached_pic"], "title": "", "creation_time": ""}]


def _ffmpeg_listing(path):
    import subprocess

    import imageio_ffmpeg

    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                          text=True).stderr


def test_what_the_container_cannot_hold_is_left_out_but_never_the_sound(tmp_path):
    from deepexpose.video import clip_streams, write_clip

    mkv = _clip_with_tracks(tmp_path / "trip.mkv", "srt")  # SubRip has no tag in MP4
    frames = [np.full((32, 48, 3), 128, np.uint8)] * 8
    told = []
    left_out = write_clip(tmp_path / "o" / "trip.mp4", iter(frames), fps=8, size=(48, 32), streams_from=mkv,
                          before_replace=told.append)
    assert len(left_out) == 1 and left_out[0].startswith("subtitles (") and told == [left_out]
    assert clip_streams(tmp_path / "o" / "trip.mp4") == {"audio": 2, "subtitle": 0, "attachment": 0, "data": 0,
                                                         "dvd_nav": 0, "pictures": 0, "other_video": 0}
    assert "Our holiday" in _ffmpeg_listing(tmp_path / "o" / "trip.mp4")
    with pytest.raises(ValueError, match="cannot copy the clip's sound"):  # AAC has no place in WebM
        write_clip(tmp_path / "o" / "trip.webm", iter(frames), fps=8, size=(48, 32), streams_from=mkv)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["trip.mp4"]  # no temporary file left


def test_enhance_warns_of_and_records_what_a_clip_left_out(tmp_path, monkeypatch):
    import deepexpose.video as video
    from deepexpose import DeepExposeWarning

    clip = tmp_path / "in" / "a.mp4"
    clip.parent.mkdir()
    write_clip(clip, ((f * 255).round().astype(np.uint8) for f in flicker_test_clip(n=4)), fps=4, size=(32, 24))
    real = video.write_clip

    def dropping(path, frames, before_replace, **kw):  # as if the container had no tag for the subtitles
        return real(path, frames, before_replace=lambda lo: before_replace([*lo, "subtitles (no tag)"]), **kw) + [
            "subtitles (no tag)"]

    monkeypatch.setattr(video, "write_clip", dropping)
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, progress=False)
    with pytest.warns(DeepExposeWarning, match="left out of the output: subtitles"):
        assert enhance_paths([clip], cfg).exit_code == 0
    assert json.loads((tmp_path / "out" / "a.mp4.json").read_text())["left_out"] == ["subtitles (no tag)"]


def test_a_clip_cut_short_is_reported_damaged(tmp_path):
    import subprocess

    import imageio_ffmpeg

    frames = [(f * 255).round().astype(np.uint8) for f in flicker_test_clip(n=24)]
    write_clip(tmp_path / "whole.mkv", iter(frames), fps=8, size=(64, 48))
    fast = tmp_path / "whole.mp4"  # the index first, as phones and web exports write it: a cut file still opens
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "whole.mkv"), "-c", "copy",
                    "-movflags", "+faststart", str(fast)], check=True)
    for name in ("whole.mkv", "whole.mp4"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / name.replace("whole", "cut")).write_bytes(data[:len(data) * 6 // 10])
    assert clip_damage(tmp_path / "whole.mkv") == "" and clip_damage(fast) == ""
    assert clip_damage(tmp_path / "cut.mkv") == "File ended prematurely"
    assert "partial file" in clip_damage(tmp_path / "cut.mp4")
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, progress=False)
    with pytest.warns(DeepExposeWarning, match=r"cut.mkv: ffmpeg finds the clip damaged \(File ended prematurely\); "
                      r"\d+ frames could be read"):
        assert enhance_paths([tmp_path / "cut.mkv", tmp_path / "whole.mkv"], cfg).exit_code == 0
    cut = json.loads((tmp_path / "out" / "cut.mkv.json").read_text())
    assert cut["damaged"] == "File ended prematurely" and 0 < cut["frames"] < 24
    whole = json.loads((tmp_path / "out" / "whole.mkv.json").read_text())
    assert "damaged" not in whole and whole["frames"] == 24


def test_temporal_window_default_depends_on_the_method():
    class Painter:
        parametric = False

    class Editor:
        parametric = True

    assert temporal_window(Editor(), EnhanceConfig()) == DEFAULT_WINDOW == 9
    assert temporal_window(Painter(), EnhanceConfig()) == 1
    assert temporal_window(Editor(), EnhanceConfig(temporal_window=5)) == 5


def test_encoder_options_map_quality_and_keep_odd_sizes():
    assert encoder_options(".mp4", 95, (64, 48)) == ("libx264", "yuv420p", ["-crf", "18"])
    assert encoder_options(".MOV", 100, (64, 48))[2] == ["-crf", "16"]
    assert encoder_options(".mkv", 1, (64, 48))[2] == ["-crf", "51"]
    assert encoder_options(".mp4", 95, (159, 105))[1] == "yuv444p"  # H.264 4:2:0 needs even sizes
    assert encoder_options(".webm", 95, (159, 105)) == ("libvpx-vp9", "yuv420p", ["-crf", "22", "-b:v", "0"])
    assert encoder_options(".avi", 95, (64, 48)) == ("mpeg4", "yuv420p", ["-qscale:v", "5"])
    lows = [int(encoder_options(".mp4", q, (64, 48))[2][1]) for q in (1, 5, 50, 75, 95)]
    assert lows == sorted(lows, reverse=True) and len(set(lows)) == 5  # every quality is valid, higher is better
    with pytest.raises(ValueError, match="quality"):
        encoder_options(".mp4", 0, (64, 48))


def test_a_rotated_clip_is_read_upright_without_imageio_ffmpegs_size_warning(tmp_path, caplog):
    clip = tmp_path / "flat.mp4"
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=48x32:rate=8:duration=0.25", "-c:v", "libx264", clip)
    _ffmpeg_run("-display_rotation", "90", "-i", clip, "-c", "copy", tmp_path / "turned.mp4")
    with caplog.at_level("WARNING", logger="imageio_ffmpeg"):
        meta, frames = read_clip(tmp_path / "turned.mp4")
        assert meta["size"] == (32, 48) and next(iter(frames)).shape == (48, 32, 3)
    assert not [r for r in caplog.records if r.name == "imageio_ffmpeg"]


def test_clip_colour_reads_the_depth_and_the_tags_of_ffmpegs_pixel_format():
    from deepexpose.video import clip_colour

    assert clip_colour("yuv420p(tv, bt709, progressive)") == (8, {"range": "tv", "space": "bt709",
                                                                   "primaries": "bt709", "trc": "bt709"})
    assert clip_colour("yuv420p10le(tv, bt2020nc/bt2020/smpte2084, progressive)") == (
        16, {"range": "tv", "space": "bt2020nc", "primaries": "bt2020", "trc": "smpte2084"})
    assert clip_colour("yuv444p(tv, bt709/unknown/unknown, progressive)") == (8, {"range": "tv", "space": "bt709"})
    assert clip_colour("yuvj420p(pc, progressive)") == (8, {"range": "pc"})
    assert clip_colour("p010le(tv, top first)") == (16, {"range": "tv"})
    assert clip_colour("rgb48le") == (16, {}) and clip_colour("yuv420p") == (8, {}) and clip_colour("") == (8, {})
    assert clip_colour("yuv422p12le(progressive)")[0] == 16 and clip_colour("nv12(tv, progressive)")[0] == 8


def test_encoder_options_keep_the_depth_and_the_colour_of_the_source():
    bt709 = {"range": "tv", "space": "bt709", "primaries": "bt709", "trc": "bt709"}
    codec, pix_fmt, options = encoder_options(".mp4", 95, (64, 48), 16, bt709)
    assert (codec, pix_fmt) == ("libx264", "yuv420p10le")
    assert options == ["-crf", "18", "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p10le,"
                       "setparams=colorspace=bt709:range=tv:color_primaries=bt709:color_trc=bt709"]
    assert encoder_options(".webm", 95, (64, 48), 16)[1] == "yuv420p10le"
    assert encoder_options(".avi", 95, (64, 48), 16)[1] == "yuv420p"  # MPEG-4 has 8 bits only
    assert encoder_options(".mp4", 95, (65, 48), 16)[1] == "yuv444p10le"
    rgb = encoder_options(".mp4", 95, (64, 48), 8, {"range": "pc", "space": "gbr", "trc": "bt709"})[2]
    assert rgb == ["-crf", "18", "-vf", "scale=out_range=pc,format=yuv420p,setparams=range=pc:color_trc=bt709"]
    # written as YUV: not tagged as RGB; a name setparams does not take is left out rather than failing the clip
    assert encoder_options(".mp4", 95, (64, 48), 8, {"primaries": "reserved"})[2] == ["-crf", "18"]


def test_a_10_bit_clip_stays_10_bit_and_keeps_its_colour_tags(tmp_path, encode_always):
    from deepexpose.video import clip_colour

    clip = tmp_path / "in" / "ten.mp4"
    clip.parent.mkdir()
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=48x32:rate=8:duration=0.5", "-vf",
                "scale=out_color_matrix=bt709:out_range=pc,format=yuv420p10le", "-colorspace", "bt709",
                "-color_range", "pc", "-c:v", "libx264", "-qp", "0", clip)
    meta, frames = read_clip(clip)
    frames = list(frames)
    assert meta["bit_depth"] == 16 and meta["colour"] == {"range": "pc", "space": "bt709"}
    assert frames[0].dtype == np.uint16 and frames[0].shape == (32, 48, 3)
    assert len(np.unique(frames[0] % 257)) > 1  # more than 8 bits: not just 8-bit codes times 257
    s = enhance_paths([clip], EnhanceConfig(out=str(tmp_path / "out"), method="identity", progress=False))
    assert s.exit_code == 0, str(s)
    out = tmp_path / "out" / "ten.mp4"
    listing = _ffmpeg_listing(out)
    assert "yuv420p10le(pc, bt709" in listing
    meta_out, got = read_clip(out)
    got = list(got)
    assert meta_out["bit_depth"] == 16 and len(got) == len(frames) and got[0].dtype == np.uint16
    error = np.abs(got[0].astype(float) - frames[0].astype(float)).mean() / 257  # in 8-bit levels
    assert error < 3, error  # CRF 18, 4:2:0 colour on a test pattern of hard edges
    assert clip_colour("yuv420p10le(pc, bt709, progressive)")[0] == 16


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".avi"])
def test_a_clip_of_odd_size_and_low_quality_comes_back_the_same_size(tmp_path, suffix):
    frames = [(f * 255).round().astype(np.uint8) for f in flicker_test_clip(n=4, h=35, w=53)]
    clip = tmp_path / "in" / f"odd{suffix}"
    clip.parent.mkdir()
    write_clip(clip, iter(frames), fps=8, size=(53, 35))
    s = enhance_paths([clip], EnhanceConfig(out=str(tmp_path / "out"), method="classic", quality=5, progress=False))
    assert s.exit_code == 0, str(s)
    meta, got = read_clip(tmp_path / "out" / clip.name)
    assert meta["size"] == (53, 35) and len(list(got)) == 4


def test_ffmpeg_failures_are_short(tmp_path):
    import subprocess

    import imageio_ffmpeg

    sound = tmp_path / "in" / "sound.mp4"
    sound.parent.mkdir()
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=0.2", "-c:a", "aac", str(sound)], check=True)
    (tmp_path / "in" / "text.mp4").write_text("not a video")
    s = enhance_paths([tmp_path / "in"], EnhanceConfig(out=str(tmp_path / "out"), method="classic", progress=False))
    reasons = {Path(o.source).name: o.reason for o in s.failed}
    assert "no video stream" in reasons["sound.mp4"]
    assert "cannot read the clip" in reasons["text.mp4"] and "configuration:" not in reasons["text.mp4"]
    assert "\n" not in reasons["text.mp4"] and len(reasons["text.mp4"]) < 400
    banner = "Could not load meta information\n=== stderr ===\nffmpeg version n9\n  built with gcc\n" \
             "  configuration: --enable-gpl\n  libavutil 61\n[in#0] moov atom not found\nError opening input file x."
    assert ffmpeg_reason(banner) == "Could not load meta information; moov atom not found; Error opening input file x"
    progress = "Could not load meta information\n=== stderr ===\nInput #0, matroska\n[mkv] Cannot determine " \
               "format of input 0:0 after EOF\nStream mapping:\nframe=    0 fps=0.0 q=0.0 Lsize= 0KiB\n" \
               "Conversion failed!"
    assert ffmpeg_reason(progress) == "Could not load meta information; Cannot determine format of input 0:0 after " \
                                      "EOF; Conversion failed!"


def write_frames(folder, names):
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((8, 12, 3), 40 * i + 20, np.uint8)).save(folder / name)


def test_frames_that_would_share_an_output_name_are_refused(tmp_path):
    write_frames(tmp_path / "seq", ["f1.png", "f1.jpg", "f2.png"])
    with pytest.raises(ValueError, match="frames f1.jpg and f1.png would both be written as f1.png|"
                                         "frames f1.png and f1.jpg would both be written as f1.png"):
        frame_outputs(tmp_path / "seq", tmp_path / "out" / "seq", "png")
    assert len(frame_outputs(tmp_path / "seq", tmp_path / "o", "")[1]) == 3  # kept formats: three names
    s = enhance_paths([tmp_path / "seq"], EnhanceConfig(out=str(tmp_path / "out"), method="classic", frames=True,
                                                        format="png", progress=False))
    assert s.exit_code == 1 and "would both be written" in s.failed[0].reason
    assert not (tmp_path / "out" / "seq").exists()


def test_a_bad_frame_is_named_and_a_finished_sequence_is_skipped(tmp_path):
    write_frames(tmp_path / "seq", ["1.png", "2.png", "3.png"])
    good = EnhanceConfig(out=str(tmp_path / "out"), method="classic", frames=True, sidecar=True, progress=False)
    assert enhance_paths([tmp_path / "seq"], good).count("done") == 1
    stamp = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "seq").iterdir()}
    good.skip_existing = True
    again = enhance_paths([tmp_path / "seq"], good)
    assert again.count("skipped") == 1 and again.exit_code == 0
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "seq").iterdir()} == stamp
    (tmp_path / "out" / "seq" / "2.png").unlink()  # one frame missing: the sequence is done again
    assert enhance_paths([tmp_path / "seq"], good).count("done") == 1 and (tmp_path / "out" / "seq" / "2.png").exists()
    (tmp_path / "seq" / "2.png").write_bytes(b"broken")
    bad = enhance_paths([tmp_path / "seq"], EnhanceConfig(out=str(tmp_path / "o2"), method="classic", frames=True,
                                                          progress=False))
    assert bad.exit_code == 1 and bad.failed[0].reason.startswith("frame 2.png: ")


def test_a_clip_ffmpeg_cannot_write_is_one_short_failure_and_leaves_nothing(tmp_path, monkeypatch):
    import deepexpose.video as video

    class Stops:
        def write_frames(self, *args, **kwargs):
            def writer():
                yield
                raise BrokenPipeError(32, "Broken pipe\n\nFFMPEG COMMAND:\nffmpeg -y ...\n\nFFMPEG STDERR OUTPUT:\n")
            return writer()

    monkeypatch.setattr(video, "_ffmpeg", lambda: Stops())
    frames = [np.zeros((8, 8, 3), np.uint8)] * 2
    with pytest.raises(ValueError, match=r"^cannot write the clip \(\[Errno 32\] Broken pipe; ffmpeg's reason"):
        write_clip(tmp_path / "x.mp4", iter(frames), fps=8, size=(8, 8))
    assert list(tmp_path.iterdir()) == []


def test_lossless_webp_frames_stay_lossless(tmp_path):
    seq = tmp_path / "s"
    seq.mkdir()
    for i, f in enumerate(flicker_test_clip(n=3)):
        Image.fromarray((f * 255).round().astype(np.uint8)).save(seq / f"{i}.webp", lossless=True)
    assert read_image(seq / "0.webp").lossless
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="classic", frames=True, progress=False)
    assert enhance_paths([seq], cfg).exit_code == 0
    assert all(read_image(tmp_path / "o" / "s" / f"{i}.webp").lossless for i in range(3))
    cfg.quality, cfg.overwrite = 90, True
    assert enhance_paths([seq], cfg).exit_code == 0
    assert not read_image(tmp_path / "o" / "s" / "0.webp").lossless


def test_an_hdr_clip_is_edited_with_a_warning(tmp_path, encode_always):
    from deepexpose import DeepExposeWarning

    clip = tmp_path / "in" / "hdr.mp4"
    clip.parent.mkdir()
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=48x32:rate=8:duration=0.25", "-vf",
                "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc,format=yuv420p10le",
                "-c:v", "libx264", clip)
    assert read_clip(clip)[0]["colour"].get("trc") == "smpte2084"
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="identity", progress=False)
    with pytest.warns(DeepExposeWarning, match="HDR \\(PQ\\)"):
        assert enhance_paths([clip], cfg).exit_code == 0
    assert "yuv420p10le(tv, bt2020nc/bt2020/smpte2084" in _ffmpeg_listing(tmp_path / "out" / "hdr.mp4")


def test_an_hdr10_clips_mastering_display_and_light_levels_are_kept_in_hevc_and_named_where_not(tmp_path,
                                                                                              encode_always):
    from deepexpose import DeepExposeWarning
    from deepexpose.video import hdr10_metadata

    clip = tmp_path / "in" / "hdr10.mp4"
    clip.parent.mkdir()
    display = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"  # BT.2020, 1000 cd/m2
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=64x48:rate=8:duration=0.25", "-vf",
                "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc,format=yuv420p10le",
                "-c:v", "libx265", "-x265-params", f"log-level=error:hdr10=1:master-display={display}:max-cll=1000,400",
                "-tag:v", "hvc1", clip)
    assert hdr10_metadata(clip) == {"master-display": display, "max-cll": "1000,400"}
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="identity", sidecar=True, progress=False)
    with pytest.warns(DeepExposeWarning, match="HDR \\(PQ\\)"):
        assert enhance_paths([clip], cfg).exit_code == 0
    assert hdr10_metadata(tmp_path / "out" / "hdr10.mp4") == hdr10_metadata(clip)
    assert "left_out" not in json.loads((tmp_path / "out" / "hdr10.mp4.json").read_text())
    plain = tmp_path / "in" / "plain.mp4"
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=64x48:rate=8:duration=0.25", "-c:v", "libx264", plain)
    assert hdr10_metadata(plain) == {}
    frames = read_clip(clip)[1]
    left_out = write_clip(tmp_path / "vp9.webm", frames, fps=8, size=(64, 48), bit_depth=16,
                          hdr10=hdr10_metadata(clip))  # VP9: no HDR10 metadata written here
    assert left_out == ["its HDR10 mastering display and light levels (only HEVC output here carries them)"]
    assert hdr10_metadata(tmp_path / "vp9.webm") == {}
    options = encoder_options(".mkv", 95, (64, 48), source={"codec": "hevc"}, hdr10={"max-cll": "1000,400"})[2]
    assert options[options.index("-x265-params") + 1] == "log-level=error:hdr10=1:max-cll=1000,400"


def test_hdr_frames_are_edited_with_one_warning_and_keep_their_code_points(tmp_path):
    import warnings

    from conftest import make_nclx_heic
    from deepexpose import DeepExposeWarning
    from deepexpose.cicp import Cicp

    pq = Cicp(9, 16, 9, False)
    for i in range(3):
        make_nclx_heic(tmp_path / "seq" / f"f{i}.heic", np.full((16, 24, 3), 300 + 100 * i, np.uint16), pq)
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="classic", frames=True, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert enhance_paths([tmp_path / "seq"], cfg).exit_code == 0
    hdr = [w for w in caught if issubclass(w.category, DeepExposeWarning) and "HDR (PQ)" in str(w.message)]
    assert len(hdr) == 1 and "its HDR colour description is kept" in str(hdr[0].message)
    assert all(read_image(tmp_path / "o" / "seq" / f"f{i}.heic").cicp == pq for i in range(3))

def test_a_timecode_track_is_reported_left_out(tmp_path):
    from deepexpose.video import clip_streams, write_clip

    clip = tmp_path / "tc.mov"
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=48x32:rate=8:duration=0.25", "-timecode", "01:02:03:04",
                "-c:v", "libx264", clip)
    assert clip_streams(clip)["data"] == 1
    frames = [np.full((32, 48, 3), 128, np.uint8)] * 2
    left_out = write_clip(tmp_path / "o" / "tc.mov", iter(frames), fps=8, size=(48, 32), streams_from=clip)
    assert left_out == ["1 data track(s) (timecode, telemetry: not copied)"]


def test_a_dvds_navigation_packets_are_named_as_such_not_as_a_data_track(tmp_path):
    from deepexpose.video import clip_streams, write_clip

    vob = tmp_path / "VTS_01_1.VOB"
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc=size=720x576:rate=25:duration=0.2", "-f", "lavfi", "-i",
                "sine=duration=0.2", "-c:v", "mpeg2video", "-c:a", "mp2", "-f", "dvd", "-muxrate", "10080000",
                "-packetsize", "2048", vob)
    assert "Data: dvd_nav_packet" in _ffmpeg_listing(vob)
    assert (clip_streams(vob)["data"], clip_streams(vob)["dvd_nav"], clip_streams(vob)["audio"]) == (0, 1, 1)
    frames = [np.full((576, 720, 3), 128, np.uint8)] * 5
    left_out = write_clip(tmp_path / "o" / vob.name, iter(frames), fps=25, size=(720, 576), streams_from=vob)
    assert left_out == ["the DVD navigation packets (they point into the disc the clip was authored for: not copied)"]
    assert clip_streams(tmp_path / "o" / vob.name)["audio"] == 1


def _video_and_audio_starts(path):
    """The start times, in seconds, ffmpeg lists for a clip's first video and first audio stream (0 where none)."""
    import re

    listing = _ffmpeg_listing(path)
    file_start = float(re.search(r"start: (-?[0-9.]+)", listing).group(1))
    starts = [float(s.group(1)) if (s := re.search(r", start (-?[0-9.]+)", line)) else file_start
              for kind in ("Video", "Audio") for line in listing.splitlines() if f": {kind}:" in line][:2]
    return starts


def test_a_video_that_starts_after_its_sound_starts_as_late_and_is_not_padded(tmp_path, encode_always):
    import subprocess

    import imageio_ffmpeg

    from deepexpose.video import video_delay

    (tmp_path / "in").mkdir()
    clip, late = tmp_path / "clip.mp4", tmp_path / "in" / "late.mp4"
    blocks = np.random.default_rng(0).integers(0, 256, (10, 6, 8, 3), np.uint8)  # each frame tells itself apart
    pictures = [np.kron(b, np.ones((8, 8, 1), np.uint8)) for b in blocks]
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                    "64x48", "-r", "10", "-i", "-", "-f", "lavfi", "-i", "sine=duration=1.5", "-c:v", "libx264",
                    "-crf", "5", "-pix_fmt", "yuv444p", "-c:a", "aac", str(clip)],
                   input=np.stack(pictures).tobytes(), check=True)
    _ffmpeg_run("-itsoffset", "0.5", "-i", clip, "-i", clip, "-map", "0:v", "-map", "1:a", "-c", "copy", late)
    assert video_delay(clip) == 0 and video_delay(late) == pytest.approx(0.5, abs=1e-3)
    meta, read = read_clip(late)
    assert len(list(read)) == 10  # the frames themselves, not five copies of the first before them
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="identity", sidecar=True, progress=False)
    assert enhance_paths([late], cfg).exit_code == 0
    out = tmp_path / "out" / "late.mp4"
    assert video_delay(out) == pytest.approx(0.5, abs=1e-3)
    assert _video_and_audio_starts(out) == pytest.approx(_video_and_audio_starts(late), abs=1e-3)
    assert json.loads(out.with_name("late.mp4.json").read_text())["frames"] == 10
    shown = [f.astype(float) for f in read_clip(out)[1]]
    assert [int(np.argmin([np.mean((s - p) ** 2) for p in pictures])) for s in shown] == list(range(10))


def test_an_mpeg_ts_keeps_the_few_milliseconds_between_its_sound_and_its_picture(tmp_path):
    (tmp_path / "in").mkdir()
    ts = tmp_path / "in" / "broadcast.ts"
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=1", "-f", "lavfi", "-i",
                "sine=duration=1", "-c:v", "libx264", "-c:a", "aac", ts)
    video, audio = _video_and_audio_starts(ts)
    assert video - audio == pytest.approx(1024 / 44100, abs=2e-3)  # the sound's priming samples come first
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", progress=False)
    assert enhance_paths([ts], cfg).exit_code == 0
    out_video, out_audio = _video_and_audio_starts(tmp_path / "out" / "broadcast.ts")
    assert out_video - out_audio == pytest.approx(video - audio, abs=1e-3)  # before: 0, the sound 23 ms late


def test_an_avi_keeps_the_colours_of_a_bt709_source(tmp_path, encode_always):
    """MPEG-4 holds no colour tags and is read back as BT.601: converting with the source's BT.709 would shift it."""
    clip = tmp_path / "in" / "f.avi"
    clip.parent.mkdir()
    _ffmpeg_run("-f", "lavfi", "-i", "color=c=0xC03060:s=64x48:r=10:d=0.5", "-vf",
                "scale=out_color_matrix=bt709,setparams=colorspace=bt709:range=tv,format=yuv420p", "-c:v", "libx264",
                clip)
    assert read_clip(clip)[0]["colour"].get("space") == "bt709"
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="identity", quality=100, progress=False)
    assert enhance_paths([clip], cfg).exit_code == 0
    source = next(iter(read_clip(clip)[1])).astype(float)
    written = next(iter(read_clip(tmp_path / "out" / "f.avi")[1])).astype(float)
    assert np.abs(written.mean((0, 1)) - source.mean((0, 1))).max() < 2.5


def _animation(path, frames, **options):
    pictures = [Image.fromarray(f if f.dtype == np.uint8 else (f * 255).round().astype(np.uint8)) for f in frames]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], **options)
    return path


def _frames_of(path):
    from deepexpose.animation import read_animation, read_frames

    info = read_animation(path)
    return info, list(read_frames(path, info))


@pytest.mark.parametrize("suffix, options", [(".webp", {"lossless": True}), (".png", {}), (".avif", {"quality": 95})])
def test_an_animation_is_enhanced_as_a_clip_and_written_back_whole(tmp_path, suffix, options):
    from deepexpose.enhance import collect_jobs

    src = tmp_path / "in" / f"loop{suffix}"
    src.parent.mkdir()
    frames = flicker_test_clip(n=12)
    durations = [40 + 10 * i for i in range(12)]
    _animation(src, frames, duration=durations, loop=2, **options)
    before = src.read_bytes()
    assert [j.kind for j in collect_jobs([src.parent], tmp_path / "out")[0]] == ["animation"]
    reports = {}
    for window in (1, 9):
        out = tmp_path / f"w{window}"
        cfg = EnhanceConfig(out=str(out), method="classic", temporal_window=window, sidecar=True, progress=False)
        summary = enhance_paths([src.parent], cfg)
        assert summary.exit_code == 0, str(summary)
        info, got = _frames_of(out / src.name)
        assert info.frames == 12 and info.size == (64, 48) and info.loop == (None if suffix == ".avif" else 2)
        assert [d for _, _, d in got] == durations
        assert all(alpha is None for _, alpha, _ in got) or suffix == ".webp" and all(a.min() == 255 for _, a, _ in got)
        # the classic correction brightens the frames toward middle grey (118 in sRGB), every one of them
        assert all(rgb.mean() > f.mean() * 255 + 1 for (rgb, _, _), f in zip(got, frames, strict=True))
        assert got[0][0].mean() > frames[0].mean() * 255 + 3
        reports[window] = json.loads((out / f"{src.name}.json").read_text())
        assert reports[window]["source"] == src.name and reports[window]["durations_ms"] == durations
        assert len(reports[window]["edits"]) == 12 and reports[window]["temporal_window"] == window
        assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary file left
    raw, smooth = reports[1]["flicker_output"]["luminance"], reports[9]["flicker_output"]["luminance"]
    assert smooth < 0.5 * raw  # smoothing the parameters removes the flicker per-frame correction adds
    assert src.read_bytes() == before


def test_an_animations_alpha_and_lossless_webp_are_kept_and_an_opaque_alpha_is_not_written(tmp_path):
    frames = [(f * 255).round().astype(np.uint8) for f in flicker_test_clip(n=4)]
    alpha = [np.dstack([f, np.full(f.shape[:2], 50 * i + 10, np.uint8)]) for i, f in enumerate(frames)]
    (tmp_path / "in").mkdir()
    _animation(tmp_path / "in" / "see-through.webp", alpha, duration=50, lossless=True)
    _animation(tmp_path / "in" / "opaque.webp", [np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]) for f in frames],
               duration=50, lossless=True)
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", progress=False)
    assert enhance_paths([tmp_path / "in"], cfg).exit_code == 0
    info, got = _frames_of(tmp_path / "out" / "see-through.webp")
    assert info.lossless and [int(a.mean()) for _, a, _ in got] == [10, 60, 110, 160]
    info, got = _frames_of(tmp_path / "out" / "opaque.webp")
    assert info.lossless and all(a is None or a.min() == 255 for _, a, _ in got)
    from deepexpose.animation import read_animation

    cfg.quality, cfg.overwrite = 80, True
    assert enhance_paths([tmp_path / "in"], cfg).exit_code == 0
    assert not read_animation(tmp_path / "out" / "see-through.webp").lossless


def test_an_animation_refuses_formats_and_depths_that_cannot_hold_it_and_has_no_lut(tmp_path):
    src = _animation(tmp_path / "a.png", flicker_test_clip(n=3), duration=50)
    s = enhance_paths([src], EnhanceConfig(out=str(tmp_path / "jpg"), method="classic", format="jpg", progress=False))
    assert s.exit_code == 1 and "cannot be written as .jpg" in s.failed[0].reason
    webp = _animation(tmp_path / "a.webp", flicker_test_clip(n=3), duration=50)
    s = enhance_paths([webp], EnhanceConfig(out=str(tmp_path / "16"), method="classic", bit_depth=16, progress=False))
    assert s.exit_code == 1 and "16-bit animation is written as PNG (APNG), not .webp" in s.failed[0].reason
    assert not (tmp_path / "jpg").exists() or not any((tmp_path / "jpg").iterdir())
    cfg = EnhanceConfig(out=str(tmp_path / "webp"), method="classic", format="webp", lut=True, progress=False)
    assert enhance_paths([src], cfg).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "webp").iterdir()) == ["a.webp"]  # like a clip, no LUT
    assert _frames_of(tmp_path / "webp" / "a.webp")[0].frames == 3
    cfg.skip_existing = True
    again = enhance_paths([src], cfg)
    assert again.outcomes[0].status == "skipped" and again.outcomes[0].reason == "output exists"


def test_a_16_bit_apng_keeps_16_bits_unless_asked_or_its_format_cannot(tmp_path):
    import imagecodecs

    from deepexpose.io import to_codes

    clip = flicker_test_clip(n=4)
    src = tmp_path / "in" / "deep.png"
    src.parent.mkdir()
    src.write_bytes(imagecodecs.apng_encode(np.stack([(f * 65535).round().astype(np.uint16) for f in clip]) + 77))
    before = src.read_bytes()
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", progress=False)
    assert enhance_paths([src.parent], cfg).exit_code == 0
    info, deep = _frames_of(tmp_path / "out" / "deep.png")
    assert info.bit_depth == 16 and info.frames == 4 and all(rgb.dtype == np.uint16 for rgb, _, _ in deep)
    assert any((rgb % 257).any() for rgb, _, _ in deep)  # not 8-bit codes widened
    assert all(rgb.mean() > f.mean() * 65535 + 100 for (rgb, _, _), f in zip(deep, clip, strict=True))
    for options, name in (({"bit_depth": 8}, "deep.png"), ({"format": "avif"}, "deep.avif"),
                          ({"format": "webp", "quality": 100}, "deep.webp")):
        out = tmp_path / name.replace(".", "-")
        assert enhance_paths([src], EnhanceConfig(out=str(out), method="classic", progress=False, **options)
                             ).exit_code == 0
        info, got = _frames_of(out / name)
        assert info.bit_depth == 8 and all(rgb.dtype == np.uint8 for rgb, _, _ in got)
        if name != "deep.avif":  # the same frames, rounded to 8 bits (AVIF is lossy)
            assert all(np.array_equal(rgb, to_codes(d, 8)) for (rgb, _, _), (d, _, _) in zip(got, deep, strict=True))
    eight = _animation(tmp_path / "eight.png", clip, duration=50)
    cfg = EnhanceConfig(out=str(tmp_path / "widened"), method="classic", bit_depth=16, progress=False)
    assert enhance_paths([eight], cfg).exit_code == 0
    assert _frames_of(tmp_path / "widened" / "eight.png")[0].bit_depth == 16
    cfg = EnhanceConfig(out=str(tmp_path / "same"), method="classic", strength=0.0, progress=False)
    assert enhance_paths([src], cfg).exit_code == 0
    assert (tmp_path / "same" / "deep.png").read_bytes() == before  # unchanged, 16 bits as it was: copied
    assert src.read_bytes() == before


def test_an_animation_the_edit_leaves_as_it_was_is_copied_byte_for_byte(tmp_path):
    src = _animation(tmp_path / "a.webp", flicker_test_clip(n=3), duration=50, quality=70)
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", strength=0.0, sidecar=True, progress=False)
    assert enhance_paths([src], cfg).exit_code == 0
    assert (tmp_path / "out" / "a.webp").read_bytes() == src.read_bytes()
    assert json.loads((tmp_path / "out" / "a.webp.json").read_text())["copied"] is True
    cfg.format, cfg.out = "png", str(tmp_path / "png")  # another format: written, not copied
    assert enhance_paths([src], cfg).exit_code == 0
    info, got = _frames_of(tmp_path / "png" / "a.png")
    assert info.format == "PNG" and sum(d for _, _, d in got) == 150  # Pillow joins repeated frames into one
    assert "copied" not in json.loads((tmp_path / "png" / "a.png.json").read_text())


def test_constant_rate_reads_a_variable_rate_clip_at_its_recording_rate():
    from deepexpose.video import MAX_CONSTANT_RATE, constant_rate

    assert constant_rate(29.97, 29.97) is None and constant_rate(30, 30.2) is None  # constant: read as it is
    assert constant_rate(0, 30) is None and constant_rate(25, 0) is None  # unknown: as it is
    assert constant_rate(17.24, 30) == 30  # a phone clip that slowed down in dim light
    assert constant_rate(24, 1000) == 24  # a millisecond grid is no frame rate: the average
    assert constant_rate(100, 240) == 240 if 240 <= MAX_CONSTANT_RATE else constant_rate(100, 240) == 100
    assert constant_rate(29.97, 59.94) == 59.94  # a progressive clip that slowed down to half its rate
    assert constant_rate(29.97, 59.94, interlaced=True) == 29.97  # an interlaced one's grid is its field rate
    assert constant_rate(30, 25) == 30  # never below the average, which would leave frames out


def test_a_variable_frame_rate_clip_keeps_its_length_and_stays_in_step_with_its_sound(tmp_path):
    clip = tmp_path / "in" / "phone.mp4"
    clip.parent.mkdir()
    # 2 s at 30 frames a second, then 4 s at 10: 100 frames over 6 s, with 6 s of sound
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30:duration=6", "-f", "lavfi", "-i",
                "sine=frequency=440:duration=6", "-vf", r"select=lt(t\,2)+not(mod(n\,3))", "-fps_mode", "vfr",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", clip)
    meta, frames = read_clip(clip)
    assert (meta["fps"], meta["average_fps"]) == (30, pytest.approx(100 / 6, rel=0.05))
    assert len(list(frames)) == 180  # every frame repeated for as long as it is shown, at 30 a second
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", sidecar=True, progress=False)
    assert enhance_paths([clip], cfg).exit_code == 0
    out_meta, out_frames = read_clip(tmp_path / "out" / "phone.mp4")
    assert len(list(out_frames)) / out_meta["fps"] == pytest.approx(6.0, abs=0.05)  # as long as the sound
    assert "average_fps" not in out_meta  # written at a constant rate
    doc = json.loads((tmp_path / "out" / "phone.mp4.json").read_text())
    assert (doc["fps"], doc["frames"]) == (30, 180) and doc["repeated_frames"] >= 80  # the 80 added: held
    assert doc["average_fps"] == pytest.approx(100 / 6, rel=0.05)


def test_a_variable_frame_rate_clip_shows_each_frame_at_its_time(tmp_path):
    import subprocess

    import imageio_ffmpeg

    clip = tmp_path / "vfr.mp4"
    # 30 frames a second, 15 for a third of a second from 0.333 s: 25 frames over 1 s, the last at 0.967 s
    _ffmpeg_run("-f", "lavfi", "-i", r"color=size=64x48:rate=30:duration=1,format=rgb24,geq=r=N*8:g=255-N*8:b=128,"
                r"select=not(between(n\,10\,19))+not(mod(n\,2))", "-fps_mode", "vfr", "-c:v", "libx264", "-crf", "10",
                clip)  # each frame a colour of its own, coded lossily (the old reading went wrong so)
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(clip), "-fps_mode", "passthrough",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    stored = np.frombuffer(raw, np.uint8).reshape(-1, 48, 64, 3).astype(float)
    assert len(stored) == 25
    meta, frames = read_clip(clip)
    read = [f.astype(float) for f in frames]
    assert meta["fps"] == 30 and len(read) == 30
    shown = [int(np.argmin([np.mean((f - s) ** 2) for s in stored])) for f in read]  # which stored frame each is
    assert shown == [*range(10), 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, *range(15, 25)]


def test_exact_rate_reads_the_ntsc_rates_ffmpeg_prints_rounded(tmp_path, encode_always):
    from fractions import Fraction

    from deepexpose.video import exact_rate

    assert exact_rate(23.98) == exact_rate(23.976) == Fraction(24000, 1001)
    assert exact_rate(29.97) == Fraction(30000, 1001) and exact_rate(59.94) == Fraction(60000, 1001)
    assert exact_rate(119.88) == Fraction(120000, 1001) and exact_rate(47.95) == Fraction(48000, 1001)
    assert exact_rate(24) == 24 and exact_rate(25) == 25 and exact_rate(12.5) == Fraction(25, 2)
    assert exact_rate(30) == 30 and exact_rate(17.24) == Fraction(431, 25)
    film = tmp_path / "in" / "film.mp4"
    film.parent.mkdir()
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24000/1001:duration=0.5", "-c:v", "libx264", film)
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="identity", sidecar=True, progress=False)
    assert enhance_paths([film], cfg).exit_code == 0
    assert "23.98 fps" in _ffmpeg_listing(tmp_path / "out" / "film.mp4")
    stamps = _packet_times(tmp_path / "out" / "film.mp4")
    assert np.allclose(np.diff(stamps), 1001 / 24000, atol=1e-6)  # 23.98 would give frames of 0.041701 s
    assert json.loads((tmp_path / "out" / "film.mp4.json").read_text())["fps"] == 23.976024


def _packet_times(path):
    """The presentation times, in seconds, of a clip's first video stream's packets, in order."""
    import subprocess

    import imageio_ffmpeg

    done = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c",
                           "copy", "-f", "framecrc", "-"], capture_output=True, text=True, check=True).stdout
    num, den = next(line for line in done.splitlines() if line.startswith("#tb 0:")).split(":")[1].split("/")
    pts = sorted(int(line.split(",")[2]) for line in done.splitlines() if line and not line.startswith("#"))
    return np.array(pts) * int(num) / int(den)


def test_video_stream_reads_the_rates_and_the_pixel_shape_ffmpeg_lists():
    from deepexpose.video import video_stream

    head = "  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), "
    listing = "Input #0, mov\n  Stream #0:1: Audio: aac, 44100 Hz, 30 fps\n" + head + \
        "720x480 [SAR 32:27 DAR 16:9], 1105 kb/s, 17.24 fps, 29.97 tbr, 30k tbn (default)\n"
    h264 = {"codec": "h264", "profile": "High", "pix_fmt": "yuv420p(progressive)"}
    assert video_stream(listing) == {"fps": 17.24, "tbr": 29.97, "sar": (32, 27), **h264}
    assert video_stream(head + "64x48 [SAR 1:1 DAR 4:3], 25 fps, 90k tbr") == {"fps": 25, "tbr": 90000, "sar": None,
                                                                               **h264}
    assert video_stream(head + "64x48 [SAR 0:1 DAR 0:1], 25 fps") == {"fps": 25, "tbr": 0, "sar": None, **h264}
    mkv = "  Stream #0:0: Video: ffv1, gbrp10le(pc, gbr/unknown/unknown, progressive), 720x576, SAR 16:15 DAR 4:3, " \
        "25 fps"
    assert video_stream(mkv) == {"fps": 25, "tbr": 0, "sar": (16, 15), "codec": "ffv1", "profile": "",
                                 "pix_fmt": "gbrp10le(pc, gbr/unknown/unknown, progressive)"}
    swapped = "  Stream #0:0: Video: h264 (High), yuv420p(tv, top coded first (swapped)), 1920x1080, 29.97 fps"
    assert video_stream(swapped)["pix_fmt"] == "yuv420p(tv, top coded first (swapped))"
    assert video_stream("no video here") == {"fps": 0, "tbr": 0, "sar": None, "codec": "", "profile": "",
                                             "pix_fmt": ""}


def test_encoder_options_set_the_pixel_shape_with_or_without_a_colour_filter():
    plain = encoder_options(".mp4", 95, (720, 480), sar=(32, 27))[2]
    assert plain[plain.index("-vf") + 1] == "setsar=32/27"
    tagged = encoder_options(".mp4", 95, (720, 480), colour={"space": "bt709", "range": "tv"}, sar=(8, 9))[2]
    assert tagged.count("-vf") == 1 and tagged[tagged.index("-vf") + 1].endswith(",setsar=8/9")
    assert "-vf" not in encoder_options(".avi", 95, (720, 480))[2]
    assert encoder_options(".avi", 95, (720, 480), sar=(8, 9))[2][-2:] == ["-vf", "setsar=8/9"]


@pytest.mark.parametrize("turned", [False, True])
def test_an_anamorphic_clip_keeps_the_shape_of_its_pixels(tmp_path, turned):
    clip = tmp_path / "dv.mp4"
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=72x48:rate=10:duration=0.5", "-vf", "setsar=32/27", "-c:v",
                "libx264", "-pix_fmt", "yuv420p", clip)
    if turned:  # a phone held upright: the frames are read turned, and so are their pixels
        _ffmpeg_run("-display_rotation", "90", "-i", clip, "-c", "copy", tmp_path / "up.mp4")
        clip = tmp_path / "up.mp4"
    assert read_clip(clip)[0]["sar"] == ((27, 32) if turned else (32, 27))
    assert enhance_paths([clip], EnhanceConfig(out=str(tmp_path / "o"), method="classic",
                                               progress=False)).exit_code == 0
    shown = "[SAR 27:32 DAR 9:16]" if turned else "[SAR 32:27 DAR 16:9]"
    assert shown in _ffmpeg_listing(tmp_path / "o" / clip.name)


def test_cover_art_is_copied_and_a_second_video_track_is_reported_left_out(tmp_path):
    from deepexpose import DeepExposeWarning
    from deepexpose.video import clip_streams

    covered, two = tmp_path / "in" / "covered.mp4", tmp_path / "in" / "two.mp4"
    covered.parent.mkdir()
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=48x32:rate=10:duration=0.5", "-f", "lavfi", "-i",
                "testsrc=size=16x16:rate=1:duration=1", "-map", "0", "-map", "1", "-c:v", "libx264", "-pix_fmt",
                "yuv420p", "-c:v:1", "mjpeg", "-disposition:v:1", "attached_pic", covered)
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=48x32:rate=10:duration=0.5", "-f", "lavfi", "-i",
                "testsrc=size=48x32:rate=10:duration=0.5", "-map", "0", "-map", "1", "-c:v", "libx264", "-pix_fmt",
                "yuv420p", two)
    assert clip_streams(covered)["pictures"] == 1 and clip_streams(two)["other_video"] == 1
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="classic", sidecar=True, progress=False)
    with pytest.warns(DeepExposeWarning, match=r"two.mp4: left out of the output: 1 other video track") as seen:
        assert enhance_paths([covered.parent], cfg).exit_code == 0
    assert len([w for w in seen if w.category is DeepExposeWarning]) == 1  # the cover art is not left out
    assert clip_streams(tmp_path / "o" / "covered.mp4")["pictures"] == 1
    assert "(attached pic)" in _ffmpeg_listing(tmp_path / "o" / "covered.mp4")
    assert clip_streams(tmp_path / "o" / "two.mp4")["other_video"] == 0
    assert "other video track" in json.loads((tmp_path / "o" / "two.mp4.json").read_text())["left_out"][0]


def test_encoder_options_keep_hevc_prores_and_ffv1_where_the_container_holds_them():
    hevc = {"codec": "hevc", "profile": "Main 10", "pix_fmt": "yuv420p10le(tv, bt709, progressive)"}
    assert encoder_options(".mp4", 95, (64, 48), 16, source=hevc) == (
        "libx265", "yuv420p10le", ["-crf", "18", "-x265-params", "log-level=error", "-tag:v", "hvc1"])
    assert encoder_options(".mkv", 95, (63, 48), 8, source=hevc)[:2] == ("libx265", "yuv444p")  # odd: 4:4:4
    assert encoder_options(".webm", 95, (64, 48), 16, source=hevc)[0] == "libvpx-vp9"  # WebM holds no HEVC
    assert encoder_options(".mp4", 95, (64, 48), source={"codec": "h264"})[:2] == ("libx264", "yuv420p")
    xavc = {"codec": "h264", "profile": "High 4:2:2", "pix_fmt": "yuv422p10le(tv, bt709, progressive)"}
    assert encoder_options(".mp4", 95, (64, 48), 16, source=xavc)[:2] == ("libx264", "yuv422p10le")  # kept
    assert encoder_options(".mp4", 95, (64, 48), 16, source={**xavc, "codec": "mpeg2video"})[1] == "yuv420p10le"
    prores = {"codec": "prores", "profile": "LT", "pix_fmt": "yuv422p10le(tv, progressive)"}
    assert encoder_options(".mov", 95, (64, 48), 16, source=prores) == (
        "prores_ks", "yuv422p10le", ["-profile:v", "1", "-vendor", "apl0"])
    assert encoder_options(".mov", 95, (63, 48), 16, source=prores)[2][1] == "4"  # odd: 4444
    assert encoder_options(".mov", 95, (64, 48), 16, source={**prores, "profile": "XQ"})[1:] == (
        "yuv444p10le", ["-profile:v", "5", "-vendor", "apl0"])
    assert encoder_options(".mp4", 95, (64, 48), 16, source=prores)[0] == "libx264"  # ProRes lives in MOV
    rgb = {"codec": "ffv1", "pix_fmt": "gbrp10le(pc, gbr/unknown/unknown, progressive)"}
    tags = {"range": "pc", "space": "gbr", "primaries": "bt709", "trc": "bt709"}
    assert encoder_options(".mkv", 95, (64, 48), 16, tags, source=rgb) == (
        "ffv1", "gbrp10le", ["-level", "3", "-g", "1", "-slicecrc", "1", "-vf",
                             "format=gbrp10le,setparams=color_primaries=bt709:color_trc=bt709"])
    assert encoder_options(".mkv", 95, (64, 48), 8, source={"codec": "ffv1", "pix_fmt": "bgr0"})[1] == "gbrp"
    assert encoder_options(".mkv", 95, (64, 48), 16, source={"codec": "ffv1", "pix_fmt": "yuv422p10le"})[1] == \
        "yuv422p10le"


@pytest.mark.parametrize("name, encode, listed", [
    ("phone.mp4", ["-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error", "-tag:v",
                   "hvc1"], "hevc (Main 10) (hvc1"),
    ("master.mov", ["-c:v", "prores_ks", "-profile:v", "1", "-pix_fmt", "yuv422p10le"], "prores (LT)"),
])
def test_hevc_and_prores_clips_come_back_in_their_own_codec(tmp_path, capfd, name, encode, listed):
    clip = tmp_path / name
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.5", *encode, clip)
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="classic", progress=False)
    capfd.readouterr()
    assert enhance_paths([clip], cfg).exit_code == 0
    assert "x265 [" not in capfd.readouterr().err  # x265's own log stays quiet
    assert listed in _ffmpeg_listing(tmp_path / "o" / name)
    assert len(list(read_clip(tmp_path / "o" / name)[1])) == 5


def test_an_ffv1_rgb_archive_stays_lossless(tmp_path):
    clip = tmp_path / "scan.mkv"
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.5", "-c:v", "ffv1", "-pix_fmt",
                "gbrp10le", clip)
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="classic", strength=0.0, progress=False)
    assert enhance_paths([clip], cfg).exit_code == 0
    assert "ffv1, gbrp10le" in _ffmpeg_listing(tmp_path / "o" / "scan.mkv")
    before, after = list(read_clip(clip)[1]), list(read_clip(tmp_path / "o" / "scan.mkv")[1])
    assert before[0].dtype == np.uint16 and all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.parametrize("pix_fmt", ["gray", "gray10le"])
def test_an_ffv1_gray_archive_stays_gray_and_lossless(tmp_path, pix_fmt, encode_always):
    clip = tmp_path / "film.mkv"
    _ffmpeg_run("-f", "lavfi", "-i", "color=black:size=256x16:rate=10:duration=0.3,format=gray,geq=lum=X", "-c:v",
                "ffv1", "-pix_fmt", pix_fmt, clip)  # every 8-bit level
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="identity", progress=False)
    assert enhance_paths([clip], cfg).exit_code == 0
    kept = "gray" if pix_fmt == "gray" else "gray16le"  # 10 bits in 16: what was read, bit for bit
    assert f"ffv1, {kept}(pc" in _ffmpeg_listing(tmp_path / "o" / "film.mkv")  # not yuv420p(tv)
    before, after = list(read_clip(clip)[1]), list(read_clip(tmp_path / "o" / "film.mkv")[1])
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_a_clips_alpha_channel_is_named_as_left_out(tmp_path, encode_always):
    from deepexpose import DeepExposeWarning

    clip = tmp_path / "in" / "key.mov"
    clip.parent.mkdir()
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=8:duration=0.25,format=yuva444p,geq=lum=lum(X\\,Y):"
                "cb=cb(X\\,Y):cr=cr(X\\,Y):a=X", "-c:v", "prores_ks", "-profile:v", "4", "-pix_fmt", "yuva444p10le",
                clip)  # ProRes 4444 with a key
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="identity", sidecar=True, progress=False)
    with pytest.warns(DeepExposeWarning, match="left out of the output: its alpha channel"):
        assert enhance_paths([clip], cfg).exit_code == 0
    doc = json.loads((tmp_path / "out" / "key.mov.json").read_text())
    assert doc["left_out"] == ["its alpha channel (transparency): clips are written without one"]
    assert "prores (4444)" in _ffmpeg_listing(tmp_path / "out" / "key.mov")


def test_field_order_reads_which_field_an_interlaced_clip_shows_first():
    from deepexpose.video import field_order

    assert field_order("yuv420p(top first)") == "tff"
    assert field_order("yuv420p(tv, bt709, bottom first)") == "bff"
    assert field_order("yuv420p(tv, top coded first (swapped))") == "bff"  # coded top first, shown bottom first
    assert field_order("yuv420p(tv, bottom coded first (swapped))") == "tff"
    assert field_order("yuv420p(tv, progressive)") is None and field_order("") is None


def test_encoder_options_code_an_interlaced_clip_as_fields_where_the_encoder_can():
    source = {"codec": "h264", "pix_fmt": "yuv420p(tv, bottom first)"}
    assert encoder_options(".mts", 95, (192, 108), source=source) == (
        "libx264", "yuv420p", ["-crf", "18", "-field_order", "bb", "-flags", "+ildct+ilme", "-x264-params", "bff=1",
                               "-vf", "setfield=bff"])
    hevc = encoder_options(".mp4", 95, (192, 108), source={"codec": "hevc", "pix_fmt": "yuv420p(top first)"})[2]
    assert "-flags" not in hevc and hevc[-2:] == ["-vf", "setfield=tff"]  # x265 codes frames: only flagged
    dvd = encoder_options(".vob", 95, (720, 576), colour={"range": "tv"}, sar=(16, 15),
                          source={"codec": "mpeg2video", "pix_fmt": "yuv420p(tv, top first)"})
    assert dvd[0] == "mpeg2video" and dvd[2][-1] == "scale=out_range=tv,format=yuv420p,setparams=range=tv," \
        "setsar=16/15,setfield=tff"


@pytest.mark.parametrize("name, video, audio, shown", [
    ("camcorder.mts", ["-c:v", "libx264", "-flags", "+ildct+ilme", "-x264-params", "tff=1", "-vf", "setfield=tff"],
     ["-c:a", "ac3"], "yuv420p(top first)"),
    ("dvd.mpg", ["-c:v", "mpeg2video", "-flags", "+ildct+ilme", "-vf", "setfield=bff,setsar=16/15"], ["-c:a", "mp2"],
     "bottom first), 720x576 [SAR 16:15 DAR 4:3]"),
])
def test_camcorder_and_dvd_clips_keep_their_container_fields_and_sound(tmp_path, name, video, audio, shown):
    from deepexpose.enhance import collect_jobs
    from deepexpose.video import clip_streams

    clip = tmp_path / "in" / name
    clip.parent.mkdir()
    size = "720x576" if name.endswith(".mpg") else "192x108"
    _ffmpeg_run("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration=0.4", "-f", "lavfi", "-i",
                "sine=duration=0.4", *video, *audio, clip)
    assert [j.kind for j in collect_jobs([clip.parent], tmp_path / "o")[0]] == ["video"]
    assert enhance_paths([clip.parent], EnhanceConfig(out=str(tmp_path / "o"), method="classic",
                                                      progress=False)).exit_code == 0
    listing = _ffmpeg_listing(tmp_path / "o" / name)
    assert shown in listing and audio[1] in listing and clip_streams(tmp_path / "o" / name)["audio"] == 1
    assert ("Video: h264" if video[1] == "libx264" else "Video: mpeg2video") in listing  # each stays what it was


def test_a_phone_clips_place_camera_and_time_are_kept(tmp_path):
    clip = tmp_path / "IMG_0001.MOV"
    place = "+48.8584+002.2945+035.000/"
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.5", "-f", "lavfi", "-i",
                "sine=duration=0.5", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-metadata",
                f"com.apple.quicktime.location.ISO6709={place}", "-metadata", "com.apple.quicktime.make=Apple",
                "-metadata", "com.apple.quicktime.model=iPhone 15", "-metadata", "creation_time=2026-05-01T10:00:00Z",
                "-movflags", "use_metadata_tags", clip)
    assert enhance_paths([clip], EnhanceConfig(out=str(tmp_path / "o"), method="classic",
                                               progress=False)).exit_code == 0
    listing = _ffmpeg_listing(tmp_path / "o" / clip.name)
    for line in (f"com.apple.quicktime.location.ISO6709: {place}", "com.apple.quicktime.make: Apple",
                 "com.apple.quicktime.model: iPhone 15", "creation_time   : 2026-05-01T10:00:00"):
        assert line in listing
    assert listing.count("major_brand") == 1  # the container's, not copied again as a tag


def test_matroska_cover_art_is_reported_left_out_not_written_as_a_video_track(tmp_path):
    from deepexpose.video import clip_streams

    clip = tmp_path / "in" / "film.mkv"
    clip.parent.mkdir()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "cover.jpg")
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=48x32:rate=10:duration=0.5", "-c:v", "libx264", "-pix_fmt",
                "yuv420p", "-attach", tmp_path / "cover.jpg", "-metadata:s:t", "mimetype=image/jpeg", clip)
    assert clip_streams(clip)["pictures"] == 1
    cfg = EnhanceConfig(out=str(tmp_path / "o"), method="classic", sidecar=True, progress=False)
    assert enhance_paths([clip], cfg).exit_code == 0
    assert clip_streams(tmp_path / "o" / "film.mkv")["other_video"] == 0
    assert "cover art" in json.loads((tmp_path / "o" / "film.mkv.json").read_text())["left_out"][0]


def test_a_variable_frame_rate_matroska_clip_is_told_by_its_timestamps(tmp_path):
    from deepexpose.video import packet_rate

    mp4, mkv, steady = tmp_path / "a.mp4", tmp_path / "a.mkv", tmp_path / "steady.mkv"
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30:duration=3", "-vf",
                r"select=lt(t\,1)+not(mod(n\,3))", "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", mp4)
    _ffmpeg_run("-i", mp4, "-c", "copy", mkv)  # 1 s at 30 frames a second, 2 s at 10: 50 frames over 3 s
    _ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=1", "-c:v", "libx264", steady)
    assert "tbr" in _ffmpeg_listing(mkv) and packet_rate(mkv) == 30 and packet_rate(steady) is None
    meta, frames = read_clip(mkv)
    assert meta["fps"] == 30 and len(list(frames)) == 90  # as long as the clip, not 50 frames at its average
    assert read_clip(steady)[0]["fps"] == 25 and "average_fps" not in read_clip(steady)[0]


def test_frames_keep_what_follows_each_photo_as_photos_do(tmp_path):
    from conftest import GAIN_MAP_XMP, MP_PREVIEW, MP_UNDEFINED, jpeg_bytes, multi_picture

    from deepexpose.mpf import GAIN_MAP, PREVIEW

    frames = tmp_path / "shot"
    frames.mkdir()
    gain = jpeg_bytes(np.full((6, 8), 90, np.uint8), xmp=GAIN_MAP_XMP)
    for i in range(3):
        dark = np.full((24, 32, 3), 30 + i, np.uint8)
        dark[:, ::2] += 10
        (frames / f"f{i}.jpg").write_bytes(multi_picture(jpeg_bytes(dark), [(MP_PREVIEW, jpeg_bytes(dark[::4, ::4])),
                                                                           (MP_UNDEFINED, gain)]))
    cfg = EnhanceConfig(out=str(tmp_path / "out"), method="classic", frames=True, progress=False)
    assert enhance_paths([frames], cfg).exit_code == 0
    for i in range(3):
        out = read_image(tmp_path / "out" / "shot" / f"f{i}.jpg", dtype="native")
        assert [p.kind for p in out.trailer.parts] == [PREVIEW, GAIN_MAP] and out.trailer.parts[1].data == gain
        preview = np.asarray(Image.open(io.BytesIO(out.trailer.parts[0].data)))
        assert abs(preview.mean() - out.pixels.mean()) < 3  # made again from the edited frame
