"""Tests for deepexpose.evaluate: every dataset layout on tiny temporary copies, the reports, the contact sheet
and heat maps, and bad layouts."""

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepexpose.cli import main
from deepexpose.data.folders import DatasetLayoutError
from deepexpose.evaluate import (
    HEAT_MAX,
    PSNR_CAP,
    EvaluateConfig,
    colour_bar,
    heat_map,
    markdown_table,
    run_evaluation,
    summarise,
)
from deepexpose.methods import METHODS, IdentityMethod
from deepexpose.io import write_image
from deepexpose.metrics import DO_NO_HARM_PSNR, evaluate_pair
from deepexpose.score import score_paths

H, W = 24, 32


def texture(seed: int, offset: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 180, (1, 1, 3))
    ramp = np.linspace(0, 40, W)[None, :, None]
    px = base + ramp + rng.integers(-20, 21, (H, W, 3)) + offset
    return np.clip(px, 0, 255).astype(np.uint8)


def write(path: Path, px: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(px).save(path)


def make_pairs(root: Path, n: int = 3, offset: int = 25) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """input/ + target/: the input is the target made brighter by ``offset`` levels."""
    pairs = {}
    for i in range(n):
        target = texture(i)
        inp = np.clip(target.astype(int) + offset, 0, 255).astype(np.uint8)
        write(root / "input" / f"im{i}.png", inp)
        write(root / "target" / f"im{i}.png", target)
        pairs[f"im{i}"] = (inp, target)
    return pairs


def cfg(tmp_path, **kw) -> EvaluateConfig:
    kw.setdefault("methods", "identity,classic")
    kw.setdefault("progress", False)
    kw.setdefault("out", str(tmp_path / "out"))
    return EvaluateConfig(**kw)


def per_method(result, method):
    return {r["name"]: r for r in result["per_image"] if r["method"] == method}


# --------------------------------------------------------------------------------------------- layouts


def test_pairs_identity_scores_are_the_metrics_of_input_and_target(tmp_path):
    pairs = make_pairs(tmp_path / "ds")
    result = run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds")))
    ident = per_method(result, "identity")
    assert set(ident) == set(pairs)
    for name, (inp, target) in pairs.items():
        expected = evaluate_pair(inp, target)
        for k, v in expected.items():
            assert ident[name][k] == pytest.approx(v, abs=1e-9)
    # a +25 level offset everywhere but where clipped: PSNR close to 20 log10(255 / 25)
    assert 19.0 < ident["im0"]["psnr"] <= 20 * math.log10(255 / 25) + 0.5
    mean = result["summary"]["identity"]["all"]
    assert mean["images"] == 3
    assert mean["psnr"] == pytest.approx(np.mean([r["psnr"] for r in ident.values()]))
    assert result["parameters"] == {"identity": 0, "classic": 0}
    assert result["summary"]["classic"]["seconds_per_image"] > 0
    # classic undoes part of a global brightening
    assert result["summary"]["classic"]["all"]["psnr"] != mean["psnr"]


def test_reports_json_csv_markdown_and_sheet(tmp_path):
    make_pairs(tmp_path / "ds", n=4)
    result = run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), sheet=2))
    out = tmp_path / "out"
    saved = json.loads((out / "results.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(result["summary"]))
    assert saved["settings"]["dataset"] == "pairs"
    with open(out / "per_image.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and {r["method"] for r in rows} == {"identity", "classic"}
    assert float(rows[0]["psnr"]) == pytest.approx(result["per_image"][0]["psnr"])
    md = (out / "results.md").read_text()
    header = "| method | PSNR (dB) ↑ | SSIM ↑ | ΔEab ↓ | ΔE00 ↓ | s / image | parameters | images |"
    assert md.startswith(header)
    assert f"| identity | {result['summary']['identity']['all']['psnr']:.2f} |" in md
    assert "published" not in md                                   # only on FiveK test / expert C
    sheet = np.asarray(Image.open(out / "contact_sheet.png"))
    # 2 images x (image row + heat-map row) of 192-pixel cells; input, 2 methods, target columns
    assert sheet.shape[0] == 16 + 4 * (192 + 4) + 4
    assert sheet.shape[1] >= 4 * 192 * W // H


def test_fivek_layout_missing_target_is_skipped_and_published_rows_only_for_the_whole_split(tmp_path):
    root = tmp_path / "fivek"
    for i, ident in enumerate(["a0001", "a0002", "a0003"]):
        write(root / "input" / "JPG" / "480p" / f"{ident}.png", texture(i, 20))
        if ident != "a0002":
            write(root / "expertC" / "JPG" / "480p" / f"{ident}.png", texture(i))
    (root / "test.txt").write_text("a0001\na0002\na0003\n")
    (root / "train_input.txt").write_text("")
    (root / "train_label.txt").write_text("")
    result = run_evaluation(cfg(tmp_path, dataset="fivek", root=str(root), methods="identity"))
    assert set(per_method(result, "identity")) == {"a0001", "a0003"}
    assert [s["name"].split()[0] for s in result["skipped"]] == ["a0002"]
    assert result["images"] == 2 and result["unpaired"] == 1
    assert "published" not in result["table"] and any("published FiveK figures are left out" in n
                                                       for n in result["notes"])
    write(root / "expertC" / "JPG" / "480p" / "a0002.png", texture(1))  # now the whole test split is scored
    result = run_evaluation(cfg(tmp_path, dataset="fivek", root=str(root), methods="identity", overwrite=True))
    assert result["images"] == 3 and not result["skipped"] and not result["notes"]
    assert "AdaInt" in result["table"] and "*published*" in result["table"]
    assert "25.49" in (tmp_path / "out" / "results.md").read_text()
    result = run_evaluation(cfg(tmp_path, dataset="fivek", root=str(root), methods="identity", overwrite=True,
                                limit=2))
    assert result["images"] == 2 and "published" not in result["table"]


def test_exposure_split_layout(tmp_path):
    root = tmp_path / "fivek"
    for i in (1, 2):
        write(root / "input" / "JPG" / "480p" / f"a{i:04d}.png", texture(i, -30))
        write(root / "expertC" / "JPG" / "480p" / f"a{i:04d}.png", texture(i))
    (root / "FiveK_test.txt").write_text("1\n2\n")
    result = run_evaluation(cfg(tmp_path, dataset="exposure-split", root=str(root), methods="identity"))
    assert set(per_method(result, "identity")) == {"a0001", "a0002"}
    assert "published" not in result["table"]


def test_afifi_layout_groups_by_exposure(tmp_path):
    root = tmp_path / "afifi"
    for i, scene in enumerate(["a0001-x_1", "a0002-y_2"]):
        write(root / "testing" / "expert_c_testing_set" / f"{scene}.jpg", texture(i))
        for suf, off in (("P1", 40), ("N1.5", -50), ("N1", -40), ("X", 10)):  # X: no exposure it names
            write(root / "testing" / "INPUT_IMAGES" / f"{scene}_{suf}.JPG", texture(i, off))
    result = run_evaluation(cfg(tmp_path, dataset="afifi", root=str(root), methods="identity"))
    groups = result["summary"]["identity"]["groups"]
    assert list(groups) == ["-1.5 EV", "-1 EV", "+1 EV", "unknown EV"]  # in order; none left out of every table
    assert groups["-1 EV"]["images"] == 2 and sum(g["images"] for g in groups.values()) == 8
    table = result["table"]
    assert table.index("**-1.5 EV**") < table.index("**-1 EV**") < table.index("**+1 EV**") < table.index(
        "**unknown EV**")


def test_synthetic_untouched_and_saved_outputs_rescore(tmp_path):
    photos = tmp_path / "photos"
    for i in range(2):
        write(photos / f"p{i}.png", texture(i))
    result = run_evaluation(cfg(tmp_path, dataset="synthetic", root=str(photos), cases="basic,untouched",
                                save_outputs=True))
    ident = per_method(result, "identity")
    assert ident["p0@untouched"]["psnr"] == PSNR_CAP                  # an exact copy, capped
    assert ident["p0@untouched"]["exact"] and not ident["p0@basic"]["exact"]
    kept = json.loads((tmp_path / "out" / "results.json").read_text())["summary"]["identity"]["groups"]["untouched"]
    assert (kept["within_do_no_harm"], kept["exact"], kept["images"]) == (2, 2, 2)
    assert "- identity: 2 of 2 within 38 dB of themselves (2 exactly), median 100.00 dB" in result["table"]
    assert "exact" in (tmp_path / "out" / "per_image.csv").read_text().splitlines()[0]
    assert ident["p0@basic"]["psnr"] < 40
    out = tmp_path / "out" / "outputs"
    assert (out / "classic" / "p1@basic.png").is_file() and (out / "target" / "p1@basic.png").is_file()
    assert len(run_evaluation(cfg(tmp_path, dataset="synthetic", root=str(photos), cases="basic,untouched",
                                  limit=1, overwrite=True, out=str(tmp_path / "one")))["per_image"]) == 2 * 2
    drawn = per_method(run_evaluation(cfg(tmp_path, dataset="synthetic", root=str(photos), methods="identity",
                                          cases="basic,untouched", draws=3, out=str(tmp_path / "drawn"))), "identity")
    assert sorted(drawn) == ["p0@basic", "p0@basic#1", "p0@basic#2", "p0@untouched",
                             "p1@basic", "p1@basic#1", "p1@basic#2", "p1@untouched"]
    assert drawn["p0@basic"]["psnr"] == ident["p0@basic"]["psnr"] != drawn["p0@basic#1"]["psnr"]
    rows, mean = score_paths(out / "classic", out / "target")
    assert mean["psnr"] == pytest.approx(result["summary"]["classic"]["all"]["psnr"], abs=1e-9)
    assert mean["delta_e2000"] == pytest.approx(result["summary"]["classic"]["all"]["delta_e2000"], abs=1e-9)


def test_every_bundled_method_runs_and_counts_its_parameters(tmp_path):
    photos = tmp_path / "photos"
    write(photos / "p0.png", texture(0))
    result = run_evaluation(cfg(tmp_path, dataset="synthetic", root=str(photos),
                                methods="agent,cgan,classifier,histogram,identity,classic", sheet=1))
    assert set(result["summary"]) == {"agent", "cgan", "classifier", "histogram", "identity", "classic"}
    assert not result["failures"]
    for m in ("agent", "cgan", "classifier", "histogram"):
        assert result["parameters"][m] > 1000
    assert result["parameters"]["identity"] == result["parameters"]["classic"] == 0
    assert (tmp_path / "out" / "contact_sheet.png").is_file()
    assert result["methods"]["agent"]["views"] == "consensus"
    single = run_evaluation(cfg(tmp_path, dataset="synthetic", root=str(photos), methods="agent",
                                single_view=True, out=str(tmp_path / "single")))
    assert single["methods"]["agent"]["views"] == "whole photo"
    with pytest.raises(ValueError, match="single-view"):
        run_evaluation(cfg(tmp_path, dataset="synthetic", root=str(photos), methods="identity", single_view=True,
                           out=str(tmp_path / "none")))
    with pytest.raises(ValueError, match="untouched-within"):
        run_evaluation(cfg(tmp_path, dataset="synthetic", root=str(photos), methods="identity", untouched_within=37,
                           out=str(tmp_path / "none")))
    gated = run_evaluation(cfg(tmp_path, dataset="synthetic", root=str(photos), methods="agent",
                               untouched_within=37.0, out=str(tmp_path / "gated")))
    assert gated["methods"]["agent"]["untouched_within"] == 37.0


# --------------------------------------------------------------------------------------------- bad input


def test_unreadable_or_mismatched_targets_are_skipped(tmp_path):
    root = tmp_path / "ds"
    make_pairs(root, n=3)
    (root / "target" / "im1.png").write_bytes(b"not a png at all")
    write(root / "target" / "im2.png", texture(2)[:20])
    result = run_evaluation(cfg(tmp_path, dataset="pairs", root=str(root), methods="identity"))
    assert set(per_method(result, "identity")) == {"im0"}
    reasons = {s["name"]: s["reason"] for s in result["skipped"]}
    assert set(reasons) == {"im1", "im2"} and "differ in size" in reasons["im2"]
    for sub in ("input", "target"):  # a pair too small for SSIM is skipped, not fatal to the run
        write(root / sub / "tiny.png", texture(3)[:5, :5])
    result = run_evaluation(cfg(tmp_path, dataset="pairs", root=str(root), methods="identity", overwrite=True))
    assert "too small to score" in {s["name"]: s["reason"] for s in result["skipped"]}["tiny"]


def test_a_method_failing_on_one_image_is_reported(tmp_path, monkeypatch, capsys):
    class Fails(IdentityMethod):
        name = "fails"

        def plan(self, pixels):
            if pixels.shape[0] == H and int(pixels[0, 0, 0]) == int(texture(1, 25)[0, 0, 0]):
                raise RuntimeError("boom")
            return super().plan(pixels)

    monkeypatch.setitem(METHODS, "fails", Fails)
    make_pairs(tmp_path / "ds")
    code = main(["evaluate", "--dataset", "pairs", "--root", str(tmp_path / "ds"), "--methods", "fails,identity",
                 "-o", str(tmp_path / "out"), "--no-progress", "--sheet", "0"])
    assert code == 1
    text = capsys.readouterr().out
    assert "failed fails on im1: RuntimeError: boom" in text
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["summary"]["fails"]["all"]["images"] == 2
    assert result["summary"]["identity"]["all"]["images"] == 3


def test_wrong_layouts_name_what_is_missing(tmp_path):
    (tmp_path / "fivek" / "input" / "JPG" / "480p").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="test.txt"):
        run_evaluation(cfg(tmp_path, dataset="fivek", root=str(tmp_path / "fivek")))
    with pytest.raises(ValueError, match="needs --root"):
        run_evaluation(cfg(tmp_path, dataset="afifi"))
    with pytest.raises(DatasetLayoutError, match="does not exist|not found|no such"):
        run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "nowhere")))
    make_pairs(tmp_path / "ds")
    with pytest.raises(ValueError, match="no splits"):
        run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), split="train"))
    with pytest.raises(ValueError, match="unknown --dataset"):
        run_evaluation(cfg(tmp_path, dataset="kodak", root=str(tmp_path / "ds")))
    with pytest.raises(ValueError, match="no experts' retouches; drop --expert B"):
        run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), expert="B"))
    with pytest.raises(ValueError, match="no experts' retouches"):
        run_evaluation(cfg(tmp_path, dataset="synthetic", expert="A"))
    for option in ({"cases": "untouched"}, {"draws": 3}):
        with pytest.raises(ValueError, match="--cases and --draws choose the errors of --dataset synthetic"):
            run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), **option))
    with pytest.raises(ValueError, match="unknown --methods"):
        run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), methods="identity,magic"))
    with pytest.raises(ValueError, match="METHOD=PATH"):
        run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), models="agent.safetensors"))
    with pytest.raises(ValueError, match="--sheet-images"):
        run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), sheet_images="im9"))


def test_results_are_not_overwritten_without_asking(tmp_path):
    make_pairs(tmp_path / "ds", n=1)
    c = cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), methods="identity")
    run_evaluation(c)
    before = (tmp_path / "out" / "results.json").read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_evaluation(c)
    assert (tmp_path / "out" / "results.json").read_bytes() == before
    c.overwrite = True
    run_evaluation(c)


def test_inputs_are_never_modified(tmp_path):
    make_pairs(tmp_path / "ds", n=2)
    files = sorted((tmp_path / "ds").rglob("*.png"))
    before = {p: p.read_bytes() for p in files}
    run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), save_outputs=True))
    assert {p: p.read_bytes() for p in files} == before
    assert sorted((tmp_path / "ds").rglob("*.png")) == files


def test_overwrite_replaces_the_earlier_runs_images_and_nothing_else(tmp_path):
    make_pairs(tmp_path / "ds", n=2)
    run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), save_outputs=True))
    out = tmp_path / "out"
    assert (out / "outputs" / "classic").is_dir() and (out / "contact_sheet.png").is_file()
    (out / "notes.txt").write_text("mine")
    run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), methods="identity", sheet=0,
                       overwrite=True))
    assert not (out / "outputs").exists() and not (out / "contact_sheet.png").exists()  # no stale images
    assert (out / "notes.txt").read_text() == "mine" and (out / "results.json").is_file()


def test_an_interrupted_runs_outputs_are_refused_up_front_and_replaced_with_overwrite(tmp_path):
    """A Ctrl-C'd --save-outputs run leaves outputs/ but no results.json: a new run refuses before scoring anything
    (it used to fail on the first image it saved), and --overwrite clears the old images first."""
    make_pairs(tmp_path / "ds", n=2)
    out = tmp_path / "out"
    write_image(out / "outputs" / "gone" / "x.png", texture(1))  # a method the new run does not list
    c = cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), methods="identity", sheet=0, save_outputs=True)
    with pytest.raises(FileExistsError, match="unfinished evaluation"):
        run_evaluation(c)
    assert (out / "outputs" / "gone" / "x.png").is_file() and not (out / "outputs" / "identity").exists()
    c.overwrite = True
    run_evaluation(c)
    assert sorted(p.name for p in (out / "outputs").iterdir()) == ["identity", "input", "target"]


# --------------------------------------------------------------------------------------------- heat maps


def test_heat_map_is_dark_where_equal_and_bright_where_wrong():
    target = texture(0)
    pred = target.copy()
    pred[:, W // 2 :] = np.clip(pred[:, W // 2 :].astype(int) + 60, 0, 255)
    heat = heat_map(pred, target)
    assert heat.shape == (H, W, 3) and heat.dtype == np.uint8
    assert (heat[:, : W // 2] == (0, 0, 4)).all()                     # ΔE 0: the darkest colour
    assert heat[:, W // 2 :].astype(int).sum(-1).min() > 150         # a 60-level error: far brighter
    far = np.zeros_like(target)
    far[..., 1] = 255
    assert (heat_map(far, np.full_like(target, 255) * 0) == (252, 255, 164)).all()  # saturates at HEAT_MAX
    with pytest.raises(ValueError):
        heat_map(pred[:10], target)


def test_colour_bar_runs_from_the_maximum_at_the_top_to_zero_at_the_bottom():
    bar = colour_bar(192, 90)
    assert bar.shape == (192, 90, 3)
    assert tuple(bar[0, 2]) == (252, 255, 164) and tuple(bar[-1, 2]) == (0, 0, 4)
    lum = bar[:, 2].astype(int).sum(-1)
    assert (np.diff(lum) <= 1).all()                                   # darker all the way down
    assert (bar[:, 40:] < 128).any()                                   # the labels are drawn
    with pytest.raises(ValueError):
        colour_bar(1, 10)
    assert HEAT_MAX == 20.0


def test_summarise_counts_good_photos_kept_within_the_do_no_harm_threshold():
    def rows(group, psnrs):
        return [{"name": f"{group}{i}", "group": group, "method": "agent", "psnr": p, "ssim": 1.0, "delta_e76": 0.0,
                 "delta_e2000": 0.0, "seconds": 0.1, "exact": i == 0} for i, p in enumerate(psnrs)]

    # the first untouched image is a copy; the second reaches the cap without being one (a near copy)
    summary = summarise(rows("untouched", [PSNR_CAP, PSNR_CAP, 38.0, 37.9, 20.0]) + rows("basic", [20.0, 30.0, 22.0]),
                        ["agent"])["agent"]
    kept = summary["groups"]["untouched"]
    assert DO_NO_HARM_PSNR == 38.0
    assert (kept["within_do_no_harm"], kept["exact"], kept["images"]) == (3, 1, 5)
    assert kept["median_psnr"] == 38.0 and kept["psnr"] == pytest.approx((100 + 100 + 38 + 37.9 + 20) / 5)
    assert summary["groups"]["basic"]["median_psnr"] == 22.0 and "within_do_no_harm" not in summary["groups"]["basic"]
    assert summary["all"]["median_psnr"] == pytest.approx((30.0 + 37.9) / 2)  # of all eight
    md = markdown_table({"agent": summary}, {"agent": 1})
    assert "- agent: 3 of 5 within 38 dB of themselves (1 exactly), median 38.00 dB" in md


def test_markdown_table_groups_and_published_rows():
    row = {"psnr": 20.0, "ssim": 0.9, "delta_e76": 8.0, "delta_e2000": 6.0, "images": 2}
    summary = {"agent": {"all": row, "groups": {"a": row, "b": row}, "seconds_per_image": 0.5}}
    md = markdown_table(summary, {"agent": 1234}, {"X (published)": (25.0, 0.92, 7.5)})
    assert "| agent | 20.00 | 0.900 | 8.00 | 6.00 | 0.500 | 1,234 | 2 |" in md
    assert "| X (published), *published* | 25.00 | 0.920 | 7.50 | – |" in md
    assert "**a**" in md and "**b**" in md
    single = markdown_table({"agent": {**summary["agent"], "groups": {"a": row}}}, {"agent": 1})
    assert "**a**" not in single


def test_a_name_that_is_not_utf8_is_scored_and_printed_escaped(tmp_path, capsys):
    """Found by an audit: such a name stopped evaluate after all the scoring (per_image.csv could not be encoded),
    the synthetic dataset skipped its photo (its seed could not be made), and names were printed raw."""
    make_pairs(tmp_path / "ds", n=2)
    for side in ("input", "target"):
        (tmp_path / "ds" / side / "im0.png").rename(tmp_path / "ds" / side / "caf\udce9.png")
    write(tmp_path / "ds" / "input" / "new\nline.png", texture(5))  # no target
    assert main(["evaluate", "--dataset", "pairs", "--root", str(tmp_path / "ds"), "--methods", "identity",
                 "--sheet", "0", "--no-progress", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "skipped new\\nline: " in out and "2 of 2 images scored, 1 more that could not be paired" in out
    rows = (tmp_path / "out" / "per_image.csv").read_text(encoding="utf-8").splitlines()  # UTF-8, as JSON is
    assert sum(row.startswith("caf\\xe9,") for row in rows) == 1  # the odd byte as \xNN, as the summary shows it
    assert [r["name"] for r in json.loads((tmp_path / "out" / "results.json").read_text())["per_image"]] == [
        "caf\\xe9", "im1"]
    assert "\\udc" not in (tmp_path / "out" / "results.json").read_text()  # no lone surrogate, which jq refuses
    photos = tmp_path / "photos"
    write(photos / "caf\udce9.png", texture(1))
    write(photos / "b.png", texture(2))
    result = run_evaluation(cfg(tmp_path, root=str(photos), methods="identity", sheet=0, out=str(tmp_path / "syn"),
                                cases="basic"))
    assert result["skipped"] == [] and result["scored_images"] == 2


def test_targets_without_an_input_are_reported(tmp_path, capsys):
    """Found by an audit: they were left out silently, the benchmark incomplete without a word."""
    make_pairs(tmp_path / "ds", n=2)
    write(tmp_path / "ds" / "target" / "lonely.png", texture(7))
    write(tmp_path / "ds" / "input" / "alone.png", texture(8))
    assert main(["evaluate", "--dataset", "pairs", "--root", str(tmp_path / "ds"), "--methods", "identity",
                 "--sheet", "0", "--no-progress", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 images scored, 1 more that could not be paired, 1 target without an input" in out
    assert "skipped lonely: a target without an input" in out and "skipped alone: no target" in out
    record = json.loads((tmp_path / "out" / "results.json").read_text())
    assert (record["unpaired"], record["without_input"]) == (1, 1)
    write(tmp_path / "ds" / "target" / "im0.jpg", texture(9))  # im0.png and im0.jpg: that pair is ambiguous
    assert main(["evaluate", "--dataset", "pairs", "--root", str(tmp_path / "ds"), "--methods", "identity",
                 "--sheet", "0", "--no-progress", "-o", str(tmp_path / "out2")]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 images scored, 2 more that could not be paired, 1 target without an input" in out
    assert f"skipped im0: several files in {tmp_path / 'ds' / 'target'}, so it is ambiguous: im0.jpg / im0.png" in out


def test_reports_of_another_run_or_a_user_are_never_left_to_look_current(tmp_path, monkeypatch):
    """Found by an audit: a user's own results.md, per_image.csv or contact_sheet.png in -o were replaced without
    --overwrite; an --overwrite run that failed left the earlier run's per_image.csv and results.md, looking
    current; -o inside the dataset folder overwrote a photo called contact_sheet.png (and a later run scored the
    reports as photos)."""
    import deepexpose.evaluate as ev

    make_pairs(tmp_path / "ds", n=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.md").write_text("mine")
    c = cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), methods="identity")
    with pytest.raises(FileExistsError, match=r"already holds results.md: pass --overwrite to replace it"):
        run_evaluation(c)
    assert (out / "results.md").read_text() == "mine"
    c.overwrite = True
    run_evaluation(c)
    assert sorted(p.name for p in out.iterdir()) == sorted(ev.REPORTS)

    def broken(*args, **kwargs):
        raise RuntimeError("failed late")

    monkeypatch.setattr(ev, "markdown_table", broken)
    with pytest.raises(RuntimeError, match="failed late"):
        run_evaluation(c)
    assert list(out.iterdir()) == []  # nothing of the earlier run is left to be taken for this one's
    monkeypatch.undo()
    for inside in (tmp_path / "ds", tmp_path / "ds" / "input" / "ev"):
        with pytest.raises(ValueError, match="the dataset folder"):
            run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), methods="identity",
                               out=str(inside)))
    assert not (tmp_path / "ds" / "input" / "ev").exists()


def test_a_model_trained_on_photos_measured_here_is_named_in_a_warning_and_the_notes(tmp_path, agent_model):
    """Synthetic errors on the default held-out photos: a model whose training config took some of them (another
    --holdout, or --library-holdout) is measured on photos it saw, and the report says so."""
    from deepexpose import DeepExposeWarning
    from deepexpose.agents.checkpoint import read_meta, save_checkpoint
    from deepexpose.agents.networks import ActorCritic

    meta = read_meta(agent_model)
    model = ActorCritic.from_config(meta["model"])
    run = dict(dataset="synthetic", methods="agent", cases="basic", size=48, sheet=0)
    for name, holdout in (("kept", "coffee,chelsea,motorcycle"), ("saw", "coffee")):
        path = save_checkpoint(tmp_path / name / "agent.safetensors", modules={"policy": model},
                               meta={**meta, "trained": {"config": {"data": "demo", "holdout": holdout}}})
        if name == "kept":
            result = run_evaluation(cfg(tmp_path, models=f"agent={path}", out=str(tmp_path / name), **run))
            assert not any("trained or validated on" in n for n in result["notes"])
    seen = r"3 of the photos measured here \(demo/chelsea, demo/motorcycle_left, demo/motorcycle_right\)"
    with pytest.warns(DeepExposeWarning, match=rf"agent \(.*saw.*\) was trained or validated on {seen}: its figures "
                      r"are not those of photos it never saw"):
        result = run_evaluation(cfg(tmp_path, models=f"agent={path}", out=str(tmp_path / "out"), **run))
    assert any("trained or validated on 3 of the photos" in n for n in result["notes"])
    # the bundled models were trained on none of them
    bundled = run_evaluation(cfg(tmp_path, out=str(tmp_path / "bundled"), **{**run, "methods": "agent,histogram"}))
    assert not any("trained or validated on" in n for n in bundled["notes"])


def test_the_contact_sheet_shows_scored_images_and_says_what_it_leaves_out(tmp_path, capsys):
    """An image drawn for the sheet that cannot be scored is replaced by a later one; one asked for by name is named
    in a note; a run whose sheet would be empty writes none and does not say it did (found by review)."""
    from deepexpose.cli import main

    make_pairs(tmp_path / "ds", n=6)
    (tmp_path / "ds" / "input" / "im1.png").write_bytes(b"not a png")
    (tmp_path / "ds" / "input" / "im3.png").write_bytes(b"not a png")
    names = [f"im{i}" for i in range(6)]
    for seed in range(6):  # whichever images the draw takes, the sheet shows three scored ones
        result = run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), sheet=3, seed=seed,
                                    overwrite=True))
        assert len(result["contact_sheet"]) == 3 and not {"im1", "im3"} & set(result["contact_sheet"])
        assert set(result["contact_sheet"]) <= set(names)
    named = run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), sheet_images="im1,im2",
                               overwrite=True))
    assert named["contact_sheet"] == ["im2"]
    assert "the contact sheet shows 1 of the 2 images asked for; im1 could not be scored" in named["notes"]
    assert main(["evaluate", "--dataset", "pairs", "--root", str(tmp_path / "ds"), "--methods", "identity",
                 "--sheet-images", "im1,im3", "--no-progress", "-o", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "note: the contact sheet shows 0 of the 2 images asked for; im1, im3 could not be scored" in out
    assert "wrote " in out and "contact_sheet.png" not in out.split("wrote ")[1]
    assert not (tmp_path / "none" / "contact_sheet.png").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs a folder nobody can write in: /proc")
def test_an_unwritable_output_folder_is_refused_before_the_evaluation_runs(tmp_path, monkeypatch):
    import deepexpose.evaluate as evaluate

    monkeypatch.setattr(evaluate, "open_dataset", lambda cfg: pytest.fail("the evaluation ran"))
    with pytest.raises(OSError, match="-o /proc/deepexpose-test/out: cannot write there"):
        run_evaluation(cfg(tmp_path, dataset="synthetic", out="/proc/deepexpose-test/out"))


def test_an_output_folder_inside_a_linked_dataset_folder_is_refused(tmp_path):
    """The dataset's input/ and target/ links lead elsewhere: -o inside where they lead is inside the dataset."""
    make_pairs(tmp_path / "pairs")
    (tmp_path / "linked").mkdir()
    for part in ("input", "target"):
        (tmp_path / "linked" / part).symlink_to(tmp_path / "pairs" / part, target_is_directory=True)
    with pytest.raises(ValueError, match="lies inside the dataset folder"):
        run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "linked"), save_outputs=True,
                           out=str(tmp_path / "pairs" / "input" / "res")))
    assert not (tmp_path / "pairs" / "input" / "res").exists()
    run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "linked"), out=str(tmp_path / "elsewhere")))


def test_nothing_scored_names_the_images_tried_first(tmp_path):
    """With --limit 1 and that image unreadable, the error gave the reasons of pairs never tried (found by review)."""
    make_pairs(tmp_path / "ds", n=2)
    (tmp_path / "ds" / "input" / "im0.png").write_bytes(b"not a png")
    write(tmp_path / "ds" / "input" / "lonely.png", texture(4))  # no target: could not be paired
    with pytest.raises(RuntimeError, match=r"nothing could be scored \(im0: .*cannot read.*; lonely: no target"):
        run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), limit=1, sheet=0))


def test_a_broken_link_in_a_dataset_is_named_as_one(tmp_path):
    """It was left out, and its target reported as 'a target without an input' (found by review)."""
    make_pairs(tmp_path / "ds", n=2)
    (tmp_path / "ds" / "input" / "im1.png").unlink()
    (tmp_path / "ds" / "input" / "im1.png").symlink_to(tmp_path / "gone.png")
    result = run_evaluation(cfg(tmp_path, dataset="pairs", root=str(tmp_path / "ds"), methods="identity", sheet=0))
    assert result["scored_images"] == 1 and result["without_input"] == 0
    reason, = [s["reason"] for s in result["skipped"] if s["name"] == "im1"]
    assert "a symbolic link to nothing (or a link loop)" in reason
