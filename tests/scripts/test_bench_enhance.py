"""``scripts/bench_enhance.py``: the enhance path timed part by part, and peak memory of a fresh process."""

import pytest
from PIL import Image

from conftest import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_enhance.py")


def test_photo_like_jpeg(bench, tmp_path):
    path = bench.make_jpeg(tmp_path / "p.jpg", 0.05)
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert abs(im.size[0] * im.size[1] - 0.05e6) < 0.02e6 and im.size[0] % 16 == 0


def test_speed_rows_time_every_part(bench, tmp_path):
    path = bench.make_jpeg(tmp_path / "p.jpg", 0.05)
    rows = bench.bench_speed(path, tmp_path, repeat=1)
    assert [r["edit"] for r in rows] == ["agent (default)", "agent --single-view", "agent, local + global edit",
                                         "the same, no preview", "agent, global-only edit"]
    for r in rows:
        parts = r["read_plan_s"] + r["render_s"] + r["write_s"]
        assert r["total_s"] == pytest.approx(parts, rel=1e-6) and r["ratio"] == pytest.approx(
            r["total_s"] / r["pillow_s"])
        assert r["preview"] is False  # 0.05 MP: too small for a reduced-scale preview
    big = bench.make_jpeg(tmp_path / "big.jpg", 0.5)
    timed = bench.enhance_once(big, tmp_path / "o.jpg", bench.fixed_edit_agent(bench.TYPICAL_EDIT))
    assert timed["preview"] is True and timed["read_plan"] > 0
    assert bench.enhance_once(big, tmp_path / "o.jpg", bench.fixed_edit_agent(bench.TYPICAL_EDIT),
                              preview=False)["preview"] is False
    with Image.open(tmp_path / "out.jpg") as out, Image.open(path) as src:
        assert out.size == src.size


def test_memory_children(bench, tmp_path):
    path = bench.make_jpeg(tmp_path / "p.jpg", 0.05)
    rows = {r["mode"]: r for r in bench.bench_memory(path, tmp_path)}
    assert set(rows) == {"imports", "pillow", "enhance"}
    assert rows["enhance"]["peak_mb"] >= rows["enhance"]["base_mb"] > 0
    assert (tmp_path / "mem_enhance.jpg").is_file() and (tmp_path / "mem_pillow.jpg").is_file()


def test_fixed_edit_agent_renders_the_fixed_edit(bench):
    import numpy as np

    from deepexpose.render import render_edit

    px = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    plan = bench.fixed_edit_agent(bench.TYPICAL_EDIT).plan(px)
    assert plan.edit == bench.TYPICAL_EDIT
    assert np.array_equal(plan.render(px, 1.0), render_edit(px, bench.TYPICAL_EDIT))


def test_repeat_below_one_is_refused(bench, tmp_path):
    with pytest.raises(SystemExit) as e:  # it made a 15 MP photo, then failed on min() of nothing
        bench.main(["--repeat", "0", "--keep", str(tmp_path)])
    assert e.value.code == 2 and not any(tmp_path.iterdir())


def test_an_empty_keep_is_refused_and_a_kept_photo_is_checked_before_reuse(bench, tmp_path, capsys):
    """--keep '' wrote a 3.6 MB photo into the current folder; a damaged photo15.jpg in --keep failed after the
    table's header (found by a review of the scripts)."""
    with pytest.raises(SystemExit) as e:
        bench.main(["--keep", ""])
    assert e.value.code == 2 and "--keep is empty" in capsys.readouterr().err
    made = bench.kept_jpeg(tmp_path / "p.jpg", 0.05, seed=0)
    before = made.stat().st_mtime_ns
    assert bench.kept_jpeg(made, 0.05, seed=0) == made and made.stat().st_mtime_ns == before  # reused as it is
    made.write_bytes(made.read_bytes()[:200])  # cut short
    bench.kept_jpeg(made, 0.05, seed=0)
    assert "is not the generated 0.05 MP photo: made again" in capsys.readouterr().out
    with Image.open(made) as im:
        im.load()
        assert im.size == bench.jpeg_size(0.05)
