"""``scripts/paired_difference.py``: paired differences of two evaluate runs, with standard errors."""

import csv
import json
import math
import statistics

import pytest

from conftest import load_script

FIELDS = ["name", "group", "method", "psnr", "ssim", "delta_e76", "delta_e2000", "seconds", "exact"]


def write_run(folder, rows):
    folder.mkdir()
    with open(folder / "per_image.csv", "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for name, group, method, psnr, de in rows:
            w.writerow({"name": name, "group": group, "method": method, "psnr": psnr, "ssim": 1, "delta_e76": 0,
                        "delta_e2000": de, "seconds": 0.1, "exact": False})
    return folder


@pytest.mark.parametrize("cell, words", [("nan", "image 'p1@basic' has no finite psnr"),
                                         ("inf", "image 'p1@basic' has no finite psnr"),
                                         ("", "image 'p1@basic' has no finite psnr")])
def test_a_cell_that_is_not_a_finite_number_or_an_image_listed_twice_is_refused(tmp_path, cell, words):
    """A hand-edited per_image.csv gave a traceback (nan, inf) or an error naming no file (an empty cell), and an
    image listed twice was taken from its last row (found by a review of the scripts)."""
    paired = load_script("paired_difference.py")
    a = write_run(tmp_path / "a", [("p1@basic", "basic", "agent", 20, 8)])
    b = write_run(tmp_path / "b", [("p1@basic", "basic", "agent", cell, 8)])
    with pytest.raises(SystemExit, match=f"b.per_image.csv: {words} \\(line 2\\)"):
        paired.main([str(a), str(b)])
    c = write_run(tmp_path / "c", [("p1@basic", "basic", "agent", 20, 8), ("p1@basic", "basic", "agent", 30, 8)])
    with pytest.raises(SystemExit, match="c.per_image.csv lists image 'p1@basic' of method 'agent' twice"):
        paired.main([str(a), str(c)])


def test_paired_differences_per_group_and_metric(tmp_path, run_script):
    a = write_run(tmp_path / "a", [("p1@basic", "basic", "agent", 20, 8), ("p2@basic", "basic", "agent", 22, 6),
                                   ("p3@basic", "basic", "agent", 24, 5), ("p1@untouched", "untouched", "agent", 40, 1),
                                   ("p1@basic", "basic", "identity", 0, 0)])
    b = write_run(tmp_path / "b", [("p3@basic", "basic", "agent", 25, 4), ("p1@basic", "basic", "agent", 21, 8),
                                   ("p2@basic", "basic", "agent", 24, 5),
                                   ("p1@untouched", "untouched", "agent", 42, 1)])
    report = run_script("paired_difference.py", [str(a), str(b / "per_image.csv")])
    assert report["left_out"] == {"only_a": 0, "only_b": 0}
    rows = {(r["group"], r["metric"]): r for r in report["rows"]}
    psnr = rows["basic", "psnr"]
    d = [1, 2, 1]  # paired by image, not by order; the identity row is another method
    assert (psnr["n"], psnr["photos"]) == (3, 3) and psnr["a"] == 22 and psnr["b"] == pytest.approx(70 / 3)
    assert psnr["difference"] == pytest.approx(4 / 3) and psnr["sd"] == pytest.approx(statistics.stdev(d))
    assert psnr["se"] == pytest.approx(statistics.stdev(d) / math.sqrt(3))
    assert psnr["t"] == pytest.approx(psnr["difference"] / psnr["se"])
    assert rows["basic", "delta_e2000"]["difference"] == pytest.approx(-2 / 3)
    one = rows["untouched", "psnr"]
    assert one["n"] == 1 and one["difference"] == 2 and one["sd"] is one["se"] is one["t"] is None


def test_pairs_only_common_images_and_refuses_none_or_a_missing_method(tmp_path, run_script):
    paired = load_script("paired_difference.py")
    a = write_run(tmp_path / "a", [("p1@basic", "basic", "agent", 20, 8), ("p2@basic", "basic", "agent", 20, 8)])
    b = write_run(tmp_path / "b", [("p1@basic", "basic", "agent", 23, 8), ("p9@basic", "basic", "agent", 0, 9),
                                   ("p9@falloff", "falloff", "agent", 0, 9)])
    report = run_script("paired_difference.py", [str(a), str(b)])
    assert report["left_out"] == {"only_a": 1, "only_b": 2}
    assert [(r["group"], r["metric"], r["n"], r["difference"]) for r in report["rows"]] == [
        ("basic", "psnr", 1, 3.0), ("basic", "delta_e2000", 1, 0.0)]
    c = write_run(tmp_path / "c", [("p7@basic", "basic", "agent", 20, 8)])
    with pytest.raises(SystemExit, match="no image in common"):
        paired.main([str(a), str(c)])
    with pytest.raises(SystemExit, match="no rows of method 'classic'"):
        paired.main([str(a), str(a), "--method-b", "classic"])
    with pytest.raises(SystemExit, match="No such file"):
        paired.main([str(a), str(tmp_path / "missing")])
    (tmp_path / "results.json").write_text("{}\n")  # not a per_image.csv: it said KeyError: 'method'
    with pytest.raises(SystemExit, match="results.json is not the per_image.csv of deepexpose evaluate"):
        paired.main([str(a), str(tmp_path / "results.json")])


def test_draws_of_one_photo_count_once_in_the_standard_error(tmp_path, run_script):
    a = write_run(tmp_path / "a", [("p1@basic", "basic", "agent", 20, 8), ("p1@basic#1", "basic", "agent", 20, 8),
                                   ("p2@basic", "basic", "agent", 20, 8), ("p2@basic#1", "basic", "agent", 20, 8),
                                   ("p3@basic", "basic", "agent", 20, 8), ("p3@basic#1", "basic", "agent", 20, 8)])
    b = write_run(tmp_path / "b", [("p1@basic", "basic", "agent", 21, 8), ("p1@basic#1", "basic", "agent", 23, 8),
                                   ("p2@basic", "basic", "agent", 20, 8), ("p2@basic#1", "basic", "agent", 20, 8),
                                   ("p3@basic", "basic", "agent", 24, 8), ("p3@basic#1", "basic", "agent", 20, 8)])
    psnr = run_script("paired_difference.py", [str(a), str(b)])["rows"][0]
    photo_means = [2, 0, 2]
    assert (psnr["n"], psnr["photos"]) == (6, 3) and psnr["difference"] == pytest.approx(8 / 6)
    assert psnr["sd"] == pytest.approx(statistics.stdev([1, 3, 0, 0, 4, 0]))
    assert psnr["se"] == pytest.approx(statistics.stdev(photo_means) / math.sqrt(3))
    paired = load_script("paired_difference.py")
    assert [paired.photo_of(n) for n in ("lib/x@basic#2", "lib/x@untouched", "p0", "p0#1")] == ["lib/x", "lib/x",
                                                                                              "p0", "p0"]


def settings(folder, **kw):
    base = {"dataset": "synthetic", "root": "", "split": "test", "expert": "C", "size": 512, "seed": 0,
            "cases": "basic", "methods": "agent"}
    (folder / "results.json").write_text(json.dumps({"settings": {**base, **kw}}))


def test_runs_of_other_images_under_the_same_names_are_refused(tmp_path, capsys):
    paired = load_script("paired_difference.py")
    rows = [("p1@basic", "basic", "agent", 20, 8), ("p2@basic", "basic", "agent", 22, 6)]
    a, b = write_run(tmp_path / "a", rows), write_run(tmp_path / "b", rows)
    settings(a)
    settings(b, seed=1)  # the same names, other drawn errors
    with pytest.raises(SystemExit, match="other images under the same names: seed 0 against 1$"):
        paired.main([str(a), str(b / "per_image.csv")])
    settings(b, size=256, dataset="Synthetic")
    with pytest.raises(SystemExit, match="size 512 against 256$"):
        paired.main([str(a), str(b)])
    settings(b, cases="basic,untouched", methods="classic", split="val", expert="A")  # none changes the images
    assert paired.main([str(a), str(b)]) == 0
    assert "was not checked" not in capsys.readouterr().out
    settings(a, dataset="fivek", root="/fivek", seed=0)
    settings(b, dataset="fivek", root="/fivek/", seed=3, expert="A")  # the seed does not matter there, the expert does
    with pytest.raises(SystemExit, match="expert 'C' against 'A'$"):
        paired.main([str(a), str(b)])
    settings(b, dataset="fivek", root="/copy/of/fivek")  # perhaps the same photos elsewhere: said, not refused
    assert paired.main([str(a), str(b)]) == 0
    assert "note: the runs read their photos from other folders ('/fivek', '/copy/of/fivek')" in capsys.readouterr().out
    (b / "results.json").unlink()
    paired.main([str(a), str(b)])
    assert "without the results.json of B, whether the runs scored the same images" in capsys.readouterr().out


def test_an_image_in_another_group_is_another_image(tmp_path):
    """A run of one case names its images without it: --cases basic and --cases mixed both name demo/coffee."""
    paired = load_script("paired_difference.py")
    a = write_run(tmp_path / "a", [("coffee", "basic", "agent", 20, 8), ("rocket", "basic", "agent", 22, 6)])
    b = write_run(tmp_path / "b", [("coffee", "mixed", "agent", 18, 9), ("rocket", "mixed", "agent", 21, 7)])
    with pytest.raises(SystemExit, match=r"2 image\(s\) are in other groups .* e.g. coffee \(basic against mixed\)"):
        paired.main([str(a), str(b)])
