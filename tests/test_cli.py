"""The ``deepexpose`` command line: every sub-command, run in-process on tiny data made here."""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from deepexpose.cli import build_parser, main
from deepexpose.data.folders import DatasetLayoutError
from deepexpose.filters import FILTERS
from deepexpose.score import score_paths


def write_photo(path, seed=0, size=(24, 32)):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    img = np.stack([xx / size[1], yy / size[0], 0.5 + 0.2 * rng.random(size)], axis=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((img * 255).astype(np.uint8)).save(path)
    return path


def test_ctrl_c_is_a_short_message_and_exit_130(monkeypatch, capsys):
    import deepexpose.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_filters", interrupted)
    assert main(["filters"]) == 130
    err = capsys.readouterr().err
    assert "deepexpose filters: interrupted" in err and "Traceback" not in err


def test_deepexpose_warnings_are_one_line_and_others_keep_their_form(monkeypatch, capsys):
    import warnings

    import deepexpose.cli as cli
    from deepexpose.agents import train

    from deepexpose import DeepExposeWarning

    def warn(args):
        warnings.warn_explicit("too few photos", DeepExposeWarning, "/elsewhere/caller.py", 3)
        warnings.warn_explicit("from elsewhere", UserWarning, "/elsewhere/mod.py", 7)
        warnings.warn_explicit("torch's own", UserWarning, train.__file__, 10)  # pointing at a deepexpose line
        return 0

    def shown_by_python(message, category, filename, lineno, file=None, line=None):
        others.append((str(message), filename, lineno))

    others = []
    monkeypatch.setattr(cli, "_cmd_filters", warn)
    monkeypatch.setattr(warnings, "showwarning", shown_by_python)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["filters"]) == 0 and warnings.showwarning is shown_by_python  # put back afterwards
    assert capsys.readouterr().err.splitlines() == ["deepexpose filters: warning: too few photos"]
    assert others == [("from elsewhere", "/elsewhere/mod.py", 7), ("torch's own", train.__file__, 10)]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "showcase", "filters", "detune", "enhance", "train", "evaluate", "score"):
        assert cmd in out
    parser = build_parser()
    for cmd in ("demo", "showcase", "detune", "enhance", "evaluate", "score"):
        with pytest.raises(SystemExit):
            parser.parse_args([cmd, "--help"])
        assert "usage: deepexpose " + cmd in capsys.readouterr().out


def test_each_command_gets_its_own_options_and_help_needs_no_torch(tmp_path, capsys):
    """``main`` builds only the command it runs: its options are all there, and ``deepexpose --help`` (no command)
    starts without importing torch (about 0.4 s instead of 2.4 s)."""
    with pytest.raises(SystemExit):
        main(["enhance", "--help"])
    assert "--strength" in capsys.readouterr().out
    photo = write_photo(tmp_path / "a.png")
    assert main(["enhance", str(photo), "-o", str(tmp_path / "out"), "--no-progress", "--strength", "0"]) == 0
    assert (tmp_path / "out" / "a.png").is_file()
    lean = build_parser(command="score")
    assert "enhance" in lean.format_help() and "train" in lean.format_help()  # every command is still listed
    commands = next(a for a in lean._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert "--strength" not in commands["enhance"].format_help()  # but only the one that runs has its options
    code = ("import sys\nfrom deepexpose.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_train_help_describes_the_method_and_unknown_options_get_the_commands_usage(capsys):
    from deepexpose.cli import TRAIN_DESCRIPTIONS

    for method in ("agent", "cgan", "classifier", "histogram"):
        with pytest.raises(SystemExit):
            main(["train", "--method", method, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert TRAIN_DESCRIPTIONS[method] in out  # its own description, not the agent's
        others = [d for m, d in TRAIN_DESCRIPTIONS.items() if m != method]
        assert not any(d in out for d in others)
    for argv, usage in ((["train", "--method", "cgan", "--bogus"], "--pixel-weight"),
                        (["enhance", "x.png", "--bogus"], "--strength")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and f"deepexpose {argv[0]}: error: unrecognized arguments: --bogus" in err
        assert usage in err  # the usage of the command, with its options
    with pytest.raises(SystemExit):  # an option before the command is the top level's, not the command's
        main(["--bogus", "enhance", "x.png", "--strength", "0.5"])
    assert "usage: deepexpose [-h] COMMAND" in capsys.readouterr().err


def test_filters_lists_every_parameter(capsys):
    assert main(["filters"]) == 0
    out = capsys.readouterr().out
    for f in FILTERS.values():
        assert f.name in out
        for p in f.params:
            assert p.name in out


def test_showcase_writes_sheet_and_parameters(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["showcase", "-o", str(out), "--size", "48"]) == 0
    sheet = Image.open(out / "showcase.jpg")
    record = json.loads((out / "showcase.json").read_text())
    assert sheet.size[0] > 6 * 48 and len(record) >= 4
    for name, params in record.items():
        assert (out / f"{name}_local.png").is_file() and params["too_dark"]["class"] == "too_dark_100"
    # a second run refuses to overwrite unless asked
    assert main(["showcase", "-o", str(out), "--size", "48"]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert main(["showcase", "-o", str(out), "--size", "48", "--overwrite"]) == 0
    capsys.readouterr()
    assert main(["showcase", "-o", str(tmp_path / "small"), "--size", "0"]) == 2
    assert "--size must be at least 16" in capsys.readouterr().err and not (tmp_path / "small").exists()


def test_detune_and_score_round_trip(tmp_path, capsys):
    photos = tmp_path / "photos"
    write_photo(photos / "a.png", 0)
    write_photo(photos / "sub" / "b.jpg", 1)
    (photos / "broken.png").write_bytes(b"not an image")
    before = {p: p.read_bytes() for p in photos.rglob("*") if p.is_file()}
    out = tmp_path / "pairs"
    assert main(["detune", str(photos), "-o", str(out), "--scheme", "single", "--copies", "2"]) == 1
    text = capsys.readouterr().out
    assert "broken.png" in text and "1 failed" in text
    assert before == {p: p.read_bytes() for p in photos.rglob("*") if p.is_file()}  # inputs untouched
    names = sorted(p.relative_to(out / "input").as_posix() for p in (out / "input").rglob("*.png"))
    assert names == ["a_0.png", "a_1.png", "sub/b_0.png", "sub/b_1.png"]
    records = [json.loads(line) for line in (out / "detuning.jsonl").read_text().splitlines()]
    assert [r["name"] for r in records] == names and all(r["scheme"] == "single" for r in records)
    # the same seed gives the same pairs
    again = tmp_path / "again"
    main(["detune", str(photos), "-o", str(again), "--scheme", "single", "--copies", "2"])
    assert (again / "detuning.jsonl").read_text() == (out / "detuning.jsonl").read_text()
    # scoring: targets against themselves are perfect, detuned inputs are not
    capsys.readouterr()
    assert main(["score", str(out / "target"), str(out / "target")]) == 0
    assert "mean: psnr 100" in capsys.readouterr().out  # capped as deepexpose evaluate caps it
    assert main(["score", str(out / "input"), str(out / "target")]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("mean: psnr ") and float(last.split()[2]) < 60


@pytest.mark.parametrize("argv", [
    ["enhance", "PHOTOS", "-o", "OUT"], ["evaluate", "--dataset", "synthetic", "--methods", "identity", "-o", "OUT"],
    ["detune", "PHOTOS", "-o", "OUT"], ["demo", "-o", "OUT"], ["showcase", "-o", "OUT"],
    ["train", "--steps", "8", "--out", "OUT"], ["train", "--algo", "ppo", "--steps", "8", "--out", "OUT"],
    ["train", "--method", "histogram", "--out", "OUT"], ["train", "--method", "classifier", "--out", "OUT"],
    ["train", "--method", "cgan", "--out", "OUT"],
])
@pytest.mark.parametrize("where", ["file", "under a file"])
def test_an_output_folder_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch, argv, where):
    """Every command that writes a folder names the option when it is a file (or lies under one), before loading a
    model or reading a photo; before, enhance failed every photo and evaluate scored them all first."""
    import deepexpose.methods

    def no_work(*args, **kwargs):
        raise AssertionError("work was started")

    monkeypatch.setattr(deepexpose.methods, "load_method", no_work)
    write_photo(tmp_path / "photos" / "a.png", 0)
    (tmp_path / "taken").write_text("mine")
    out = tmp_path / "taken" if where == "file" else tmp_path / "taken" / "run"
    option = argv[argv.index("OUT") - 1]
    argv = [str(tmp_path / "photos") if a == "PHOTOS" else str(out) if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{option} {out} " in err and "not a folder" in err, err
    assert ("is a file" if where == "file" else f"lies under {tmp_path / 'taken'}, which is a file") in err
    assert (tmp_path / "taken").read_text() == "mine"


def test_score_errors(tmp_path, capsys):
    a = write_photo(tmp_path / "p" / "x.png")
    write_photo(tmp_path / "t" / "y.png")
    assert main(["score", str(tmp_path / "p"), str(tmp_path / "t")]) == 2
    assert "no target" in capsys.readouterr().err
    assert main(["score", str(a), str(tmp_path / "t")]) == 2
    b = write_photo(tmp_path / "small.png", size=(8, 8))
    assert main(["score", str(a), str(b)]) == 2
    assert "target is" in capsys.readouterr().err
    write_photo(tmp_path / "p" / "y.png")
    write_photo(tmp_path / "t" / "x.png")
    write_photo(tmp_path / "t" / "z.png")
    with pytest.raises(DatasetLayoutError, match="no prediction in .* for 1 target"):
        score_paths(tmp_path / "p", tmp_path / "t")  # z.png has no prediction: without a list of failures it raises
    assert main(["score", str(tmp_path / "p"), str(tmp_path / "t")]) == 1  # the others scored, z listed
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].endswith("(2 scored, 1 failed)") and lines[3] == f"failed z: no prediction in {tmp_path / 'p'}"
    write_photo(tmp_path / "p" / "w.png")
    with pytest.raises(DatasetLayoutError, match="no target in .* for 1 prediction"):
        score_paths(tmp_path / "p", tmp_path / "t")
    assert main(["score", str(tmp_path / "p"), str(tmp_path / "t")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].endswith("(2 scored, 2 failed)")
    assert lines[3:] == [f"failed w: no target in {tmp_path / 't'}", f"failed z: no prediction in {tmp_path / 'p'}"]
    assert main(["score", str(tmp_path / "nope"), str(tmp_path / "t")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    tiny = write_photo(tmp_path / "tiny.png", size=(5, 5))
    assert main(["score", str(tiny), str(tiny)]) == 2
    assert "tiny.png: " in capsys.readouterr().err  # the too-small image is named


def test_score_of_folders_scores_the_others_when_one_pair_cannot_be(tmp_path, capsys):
    """Found by an audit: one unreadable file or one pair of two sizes stopped the whole run, nothing scored."""
    for name in ("a", "b", "c"):
        write_photo(tmp_path / "p" / f"{name}.png", seed=1)
        write_photo(tmp_path / "t" / f"{name}.png", seed=1, size=(24, 30) if name == "c" else (24, 32))
    (tmp_path / "p" / "b.png").write_bytes(b"not a png")
    assert main(["score", str(tmp_path / "p"), str(tmp_path / "t")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("a: psnr 100.0000") and lines[1].endswith("(1 scored, 2 failed)")
    assert lines[2].startswith("failed b: cannot read image")
    assert lines[3] == "failed c: prediction is 32x24 but target is 30x24 (width x height)"
    (tmp_path / "p" / "a.png").write_bytes(b"")
    assert main(["score", str(tmp_path / "p"), str(tmp_path / "t")]) == 2
    assert "nothing could be scored: a: " in capsys.readouterr().err
    (tmp_path / "loop.png").symlink_to("loop.png")
    assert main(["score", str(tmp_path / "loop.png"), str(tmp_path / "t" / "a.png")]) == 2
    assert "a symbolic link to nothing (or a link loop)" in capsys.readouterr().err


def test_score_of_folders_leaves_out_a_name_two_files_share(tmp_path, capsys):
    """x.png and x.jpg in one folder: that pair is ambiguous and listed as failed, the others scored (the whole
    folder was refused)."""
    for name in ("a", "x"):
        write_photo(tmp_path / "p" / f"{name}.png", seed=1)
        write_photo(tmp_path / "t" / f"{name}.png", seed=1)
    write_photo(tmp_path / "t" / "x.jpg", seed=1)
    assert main(["score", str(tmp_path / "p"), str(tmp_path / "t")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("a: psnr 100.0000") and lines[1].endswith("(1 scored, 1 failed)")
    assert lines[2] == f"failed x: several files in {tmp_path / 't'}, so it is ambiguous: x.jpg / x.png"
    with pytest.raises(DatasetLayoutError, match="x: several files in .*x.jpg / x.png"):
        score_paths(tmp_path / "p", tmp_path / "t")  # without a list of failures it raises


def test_evaluate_says_when_limit_left_images_out(tmp_path, capsys):
    for i in range(3):
        write_photo(tmp_path / "ds" / "input" / f"{i}.png", seed=i)
        write_photo(tmp_path / "ds" / "target" / f"{i}.png", seed=i + 5)
    assert main(["evaluate", "--dataset", "pairs", "--root", str(tmp_path / "ds"), "--methods", "identity",
                 "--limit", "2", "--sheet", "0", "--no-progress", "-o", str(tmp_path / "o")]) == 0
    assert "2 of 2 images scored; --limit 2 of 3 (--dataset pairs)" in capsys.readouterr().out


def test_train_method_picks_the_baseline_options(tmp_path, capsys):
    parser_help = build_parser("cgan").format_help()
    assert "train" in parser_help
    with pytest.raises(SystemExit):
        main(["train", "--method", "cgan", "--help"])
    assert "--pixel-weight" in capsys.readouterr().out  # a cGAN option
    with pytest.raises(SystemExit):
        main(["train", "--method", "agent", "--pixel-weight", "3"])  # not an agent option
    capsys.readouterr()
    out = tmp_path / "clf"
    assert main(["train", "--method", "classifier", "--steps", "2", "--batch", "4", "--size", "32", "--eval-size", "4",
                 "--out", str(out), "--no-progress"]) == 0
    assert (out / "classifier.safetensors").is_file() and "final: steps=2" in capsys.readouterr().out


def test_evaluate_help_names_every_dataset_and_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--help"])
    out = capsys.readouterr().out
    for word in ("fivek", "exposure-split", "afifi", "pairs", "synthetic", "--root", "--split", "--expert",
                 "--methods", "--save-outputs", "--sheet", "-o"):
        assert word in out


def test_evaluate_bad_layout_is_a_clear_error(tmp_path, capsys):
    code = main(["evaluate", "--dataset", "fivek", "--root", str(tmp_path / "missing"), "-o", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "deepexpose evaluate: error:" in err and "missing" in err


def test_evaluate_says_how_many_were_scored_and_how_many_had_no_target(tmp_path, capsys):
    for i, name in enumerate("abc"):
        write_photo(tmp_path / "ds" / "input" / f"{name}.png", seed=i)
        if name != "c":
            write_photo(tmp_path / "ds" / "target" / f"{name}.png", seed=i + 5)
    code = main(["evaluate", "--dataset", "pairs", "--root", str(tmp_path / "ds"), "--methods", "identity",
                 "--no-progress", "-o", str(tmp_path / "o")])
    assert code == 0
    out = capsys.readouterr().out
    assert "2 of 2 images scored, 1 more that could not be paired (--dataset pairs)" in out
    assert "PairedFolder" not in out


def test_run_script_reports_expected_errors_in_one_line(capsys):
    from deepexpose.cli import run_script
    from deepexpose.io import ImageReadError

    assert run_script(lambda: None, "/x/scripts/ok.py") == 0 and run_script(lambda: 3, "ok.py") == 3
    for error in (FileNotFoundError("no photo library in /cache"), ValueError("--count must be >= 1"),
                  ImageReadError("a.jpg", "truncated")):
        def fails(error=error):
            raise error
        assert run_script(fails, "/x/scripts/tool.py") == 2
        err = capsys.readouterr().err
        assert err == f"tool.py: error: {error}\n" and "Traceback" not in err

    def interrupted():
        raise KeyboardInterrupt
    assert run_script(interrupted, "tool.py") == 130 and "tool.py: interrupted" in capsys.readouterr().err

    def bug():
        raise KeyError("method")
    with pytest.raises(KeyError):  # a bug keeps its traceback
        run_script(bug, "tool.py")


def test_every_script_runs_its_main_through_run_script():
    from pathlib import Path

    scripts = sorted((Path(__file__).resolve().parents[1] / "scripts").glob("*.py"))
    assert len(scripts) >= 16
    for script in scripts:
        assert script.read_text().endswith('    raise SystemExit(run_script(main, __file__))\n'), script.name


def test_enhance_jobs_workers_print_warnings_as_the_command_does(tmp_path):
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    dark = np.full((32, 48, 3), 40, np.uint8)
    Image.fromarray(dark).save(src / "a.jpg")
    data = (src / "a.jpg").read_bytes()
    (src / "b.jpg").write_bytes(data[:2] + b"\xff\xe1\x00\x08Exif\x00\x00" + data[2:])  # an EXIF block of nothing
    code = ("import sys\nfrom deepexpose.cli import main\n"
            f"sys.exit(main(['enhance', {str(src)!r}, '-o', {str(tmp_path / 'out')!r}, '--method', 'classic', "
            "'--jobs', '2', '--no-progress']))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert any(line.startswith("deepexpose enhance: warning: ") and "b.jpg: its EXIF cannot be read" in line
               for line in run.stderr.splitlines()), run.stderr
    assert "DeepExposeWarning" not in run.stderr  # not Python's file:line form from the worker process


def test_names_that_are_not_utf8_print_under_a_strict_locale(tmp_path):
    """A terminal whose locale is en_US.UTF-8 makes standard output strict: a name that is not UTF-8 lost the
    summary ("'utf-8' codec can't encode character '\\udce9'", exit status 2) after all the work was done."""
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    (src / "caf\udce9.jpg").write_bytes(b"")  # fails: empty
    (src / "bad\nname.jpg").write_bytes(b"")
    Image.fromarray(np.full((32, 48, 3), 40, np.uint8)).save(src / "a.jpg")
    data = (src / "a.jpg").read_bytes()
    (src / "w\udce9.jpg").write_bytes(data[:2] + b"\xff\xe1\x00\x08Exif\x00\x00" + data[2:])  # warned about
    code = ("import sys\nfrom deepexpose.cli import main\n"
            f"sys.exit(main(['enhance', {str(src)!r}, '-o', {str(tmp_path / 'out')!r}, '--method', 'classic', "
            "'--no-progress']))\n")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300, env=env)
    out, err = run.stdout.decode(), run.stderr.decode()
    assert run.returncode == 1, err
    assert out.splitlines() == ["2 done, 0 skipped, 2 failed",
                                f"  failed: {src}/bad\\nname.jpg: file is empty (0 bytes)",
                                f"  failed: {src}/caf\\xe9.jpg: file is empty (0 bytes)"], out + err
    assert "w\\xe9.jpg: its EXIF cannot be read" in err and "codec" not in err, err
    assert (tmp_path / "out" / "w\udce9.jpg").is_file()


def test_shown_characters_escapes_what_a_stream_cannot_encode():
    from deepexpose.cli import shown_characters

    assert "caf\udce9 \u2603 é".encode("ascii", "deepexpose.shown") == b"caf\\xe9 \\u2603 \\xe9"
    assert "caf\udce9 é".encode("utf-8", "deepexpose.shown") == "caf\\xe9 é".encode()
    with pytest.raises(UnicodeDecodeError):  # decoding keeps its own errors
        shown_characters(UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid"))


def test_score_prints_each_name_on_one_line(tmp_path, capsys):
    for side in ("p", "t"):
        write_photo(tmp_path / side / "new\nline.png")
        write_photo(tmp_path / side / "caf\udce9.png", seed=1)
    assert main(["score", str(tmp_path / "p"), str(tmp_path / "t")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["caf\\xe9", "new\\nline", "mean"]


def test_output_piped_into_a_reader_that_stops_ends_quietly():
    """`deepexpose filters | head -1` printed 'error: [Errno 32] Broken pipe' and exited 2 (found by review)."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "deepexpose.cli", "filters"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""
