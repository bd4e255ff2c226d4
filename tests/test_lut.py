"""ColorLUT: shaper curves + 3D stage baked from the filter code, equal to direct application; .cube files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepexpose.filters import FilterPipeline
from deepexpose.io import quantize
from deepexpose.lut import (
    ColorLUT,
    CubeError,
    bake_function,
    bake_pipeline,
    identity_grid,
    read_cube,
    torch_single_threaded,
    toward_identity,
    write_cube,
)

PIPE = FilterPipeline()
TOL = 1 / 255


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small tensors: one thread (on a busy 2-core machine OpenMP workers can stall each other)."""
    with torch_single_threaded():
        yield


def random_actions(n, seed=0):
    """Moderate, strong and extreme (every parameter at an end of its range) actions."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        a = torch.rand(1, PIPE.num_params, generator=g) * 2 - 1
        out.append(a * 0.4 if i % 3 == 0 else a.sign() if i % 3 == 1 else a)
    return out


def all_codes(top, n, seed=0):
    """``n`` random RGB codes plus the whole gray ramp and the cube corners, as an ``m x 1 x 3`` array."""
    rng = np.random.default_rng(seed)
    dtype = np.uint8 if top == 255 else np.uint16
    ramp = np.linspace(0, top, min(top + 1, 4096)).round().astype(dtype)
    corners = np.array([[r, g, b] for r in (0, top) for g in (0, top) for b in (0, top)], dtype)
    x = np.concatenate([rng.integers(0, top + 1, (n, 3)).astype(dtype), np.stack([ramp] * 3, 1), corners])
    return x[:, None, :]


def direct(codes_or_x, action, top=None):
    x = torch.from_numpy(codes_or_x.astype(np.float32) / np.float32(top)) if top else codes_or_x
    t = x.permute(2, 0, 1)[None] if top else x
    with torch.no_grad():
        return PIPE(t, action)


def test_per_channel_flags_split_the_default_pipeline():
    assert [f.per_channel for f in PIPE.filters] == [True] * 6 + [False]
    lut = bake_pipeline(PIPE, random_actions(2)[1])
    assert lut.shaper is not None and lut.cross is not None and lut.table.shape == (33, 33, 33, 3)
    assert lut.affine is not None  # saturation is clip(Y + f (x - Y)): recognised, applied exactly


@pytest.mark.parametrize("top", [255, 65535])
def test_codes_equal_direct_application(top):
    codes = all_codes(top, 4000)
    worst = 0.0
    for action in random_actions(24 if top == 255 else 9):
        lut = bake_pipeline(PIPE, action)
        got = lut.apply(codes)
        assert got.dtype == codes.dtype and got.shape == codes.shape
        ref = direct(codes, action, top)[0].permute(1, 2, 0).numpy()
        worst = max(worst, float(np.abs(got / np.float64(top) - ref).max()))
        if top == 255:  # rounded the same way up to ties: at most one code apart
            assert np.abs(got.astype(int) - quantize(ref, 8).astype(int)).max() <= 1
    assert worst <= TOL


def test_floats_equal_direct_application():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 40, 50, generator=g)
    x[:, :, :5] *= 1e-3  # near black, where gamma curves are steep
    x[0, :, 5, :4] = torch.tensor([0.0, 1.0, 0.5, 1e-6])[None]
    for action in random_actions(12, seed=1):
        lut = bake_pipeline(PIPE, action)
        err = (lut.apply(x) - direct(x, action.expand(2, -1))).abs().max().item()
        assert err <= TOL, err
        arr = x[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(lut.apply(arr), lut.apply(x)[0].permute(1, 2, 0).numpy(), atol=1e-6)


def test_identity_edits_are_exact():
    lut = bake_pipeline(PIPE, torch.zeros(1, PIPE.num_params))
    assert lut.is_identity
    for top, dtype in ((255, np.uint8), (65535, np.uint16)):
        codes = all_codes(top, 500)
        np.testing.assert_array_equal(lut.apply(codes), codes)
    x = torch.rand(1, 3, 8, 9)
    assert torch.equal(lut.apply(x), x)
    sat_only = bake_pipeline(PIPE, {"saturation": {"factor": 1.0}, "exposure": {"ev": 0.0}})
    assert sat_only.is_identity
    np.testing.assert_allclose(lut.sample(5), identity_grid(5)[0, :, 0].T.reshape(5, 5, 5, 3).numpy(), atol=0)


def test_description_dicts_and_bad_arguments():
    desc = PIPE.describe(random_actions(3)[2])[0]
    a = bake_pipeline(PIPE, desc)
    b = bake_pipeline(PIPE.names, PIPE.action_from_description(desc))
    codes = all_codes(255, 300)
    np.testing.assert_array_equal(a.apply(codes), b.apply(codes))
    with pytest.raises(ValueError, match="size"):
        bake_pipeline(PIPE, desc, size=1)
    with pytest.raises(ValueError, match="one action"):
        bake_pipeline(PIPE, torch.zeros(2, PIPE.num_params))
    with pytest.raises(TypeError):
        a.apply(np.zeros((2, 3), np.int32))


def test_bake_function_plain_and_affine():
    swap = bake_function(lambda x: x.flip(1) ** 2, size=17)
    assert swap.shaper is None and swap.affine is None and swap.table.shape == (17, 17, 17, 3)
    np.testing.assert_allclose(swap.table[0, 0, 16], [0, 0, 1])  # r = 1 -> blue = 1 (table is [b, g, r])
    x = torch.rand(1, 3, 20, 20)
    err = (swap.apply(x) - x.flip(1) ** 2).abs().max().item()
    assert 0 < err < 1.2e-3  # trilinear: second-order error of x^2 on a 1/16 grid, at most h^2 / 4
    mean = torch.tensor([0.1, -0.05, 0.02]).view(1, 3, 1, 1)

    def transfer(x):
        return ((x - 0.5) * 1.3 + 0.5 + mean).clamp(0, 1)

    lut = bake_function(transfer, size=9)
    assert lut.affine is not None
    assert (lut.apply(x) - transfer(x)).abs().max().item() < 1e-5


def test_cube_round_trip_and_header(tmp_path):
    action = random_actions(3)[2]
    lut = bake_pipeline(PIPE, action, size=9, title='my "look"')
    path = write_cube(tmp_path / "a.cube", lut)
    text = path.read_text().splitlines()
    assert text[:4] == ['TITLE "my  look"', "LUT_3D_SIZE 9", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    assert len(text) == 4 + 9 ** 3
    back = read_cube(path)
    assert back.size == 9 and back.title == "my  look" and back.shaper is None
    np.testing.assert_allclose(back.table, lut.sample(9), atol=5e-7)
    np.testing.assert_allclose(back.sample(), lut.sample(9), atol=5e-7)
    # the file holds the WHOLE function sampled directly: equal to direct application at the lattice
    ref = direct(identity_grid(9), action)[0, :, 0].T.numpy().reshape(9, 9, 9, 3)
    np.testing.assert_allclose(back.table, ref, atol=1e-6)
    # an N^3 x 3 table works too, and an existing file is replaced (or kept on request)
    write_cube(path, back.table.reshape(-1, 3), title="flat")
    assert read_cube(path).title == "flat"
    with pytest.raises(FileExistsError):
        write_cube(path, back.table, overwrite=False)


def test_a_cube_title_that_is_not_ascii_is_written_in_ascii(tmp_path):
    """A photo named café.jpg (or with bytes that are not UTF-8 in its name) failed with --lut: the title was
    encoded as ASCII and raised."""
    table = np.zeros((2, 2, 2, 3))
    for title, written in (("deepexpose café.jpg", "deepexpose cafe.jpg"), ("ﬁlm 日本\udce9.png", "film ???.png"),
                           ("tab\there\x7f", "tab here")):
        path = write_cube(tmp_path / "t.cube", table, title=title)
        assert path.read_bytes().decode("ascii").splitlines()[0] == f'TITLE "{written}"'
        assert read_cube(path).title == written


def test_cube_applied_trilinearly_approximates_direct(tmp_path):
    """A plain grader interpolates the .cube trilinearly: close to, but not as exact as, the shaper LUT.

    Measured over 30 edits on 8-bit colours (max abs error in 1/255): moderate edits 2.4 median / 6.6 max at
    33^3 and 1.3 / 4.5 at 65^3; edits at the ends of the ranges up to 23 (33^3) and 13 (65^3), at the clipping
    kinks of the curves. The shaper LUT: 0.5 (the rounding to codes) for all of them.
    """
    codes = all_codes(255, 20000)
    errors = []
    for i, action in enumerate(random_actions(3, seed=5)):  # moderate, extreme, random
        lut = bake_pipeline(PIPE, action)
        ref = direct(codes, action, 255)[0].permute(1, 2, 0).numpy()
        row = {}
        for size in (33, 65):
            plain = read_cube(write_cube(tmp_path / "a.cube", lut, size=size)) if i == 0 and size == 33 \
                else ColorLUT(size=size, table=lut.sample(size))  # what a grader does with the file
            row[size] = float(np.abs(plain.apply(codes) / 255.0 - ref).max()) * 255
        errors.append(row)
    assert errors[0][33] < 8 and errors[0][65] < 5  # the moderate edit
    assert all(e[65] < e[33] < 30 for e in errors)


def test_red_varies_fastest(tmp_path):
    # a hand-made 2^3 LUT whose line i holds (i, 0, 0) / 10: line order is r + 2 g + 4 b
    lines = ["LUT_3D_SIZE 2"] + [f"{i / 10} 0 0" for i in range(8)]
    (tmp_path / "h.cube").write_text("# hand made\n\n" + "\n".join(lines) + "\n")
    lut = read_cube(tmp_path / "h.cube")
    for (r, g, b), line in {(1, 0, 0): 1, (0, 1, 0): 2, (0, 0, 1): 4, (1, 1, 1): 7, (1, 0, 1): 5}.items():
        got = lut.apply(np.array([[r, g, b]], np.float32))
        assert got[0, 0] == pytest.approx(line / 10), (r, g, b)
        assert lut.table[b, g, r, 0] == pytest.approx(line / 10)
    table = np.zeros((2, 2, 2, 3), np.float32)
    table[0, 0, 1] = [0.25, 0.5, 0.75]  # [b, g, r]: red = 1 only -> the second line
    text = write_cube(tmp_path / "w.cube", table).read_text().splitlines()
    assert text[:3] == ["LUT_3D_SIZE 2", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    assert text[3] == "0.000000 0.000000 0.000000" and text[4] == "0.250000 0.500000 0.750000"


def test_cube_domain_is_honoured(tmp_path):
    lines = ["LUT_3D_SIZE 2", "DOMAIN_MIN 0 0 0", "DOMAIN_MAX 2 2 2"]
    lines += [f"{r} {g} {b}" for b in (0, 1) for g in (0, 1) for r in (0, 1)]
    lut = read_cube(_write(tmp_path / "d.cube", lines))
    np.testing.assert_allclose(lut.apply(np.array([[1.0, 0.5, 2.0]], np.float32)), [[0.5, 0.25, 1.0]], atol=1e-6)


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("lines, words", [
    (["0 0 0"], "no LUT_3D_SIZE"),
    (["LUT_3D_SIZE 2", "0 0 0"], "needs 8 table lines, found 1"),
    (["LUT_3D_SIZE 1"], "2..256"),
    (["LUT_3D_SIZE 300"], "2..256"),
    (["LUT_3D_SIZE two"], "cannot parse"),
    (["LUT_1D_SIZE 4"], "1D LUTs"),
    (["LUT_3D_SIZE 2"] + ["0 0 0"] * 7 + ["0 0 x"], "not a number"),
    (["LUT_3D_SIZE 2"] + ["0 0 0"] * 7 + ["0 0"], "three numbers"),
    (["LUT_3D_SIZE 2"] + ["0 0 0"] * 7 + ["0 nan 0"], "non-finite"),
    (["LUT_3D_SIZE 2", "0 0 0", "DOMAIN_MIN 0 0 0"] + ["0 0 0"] * 7, "after the table data"),
    (["LUT_3D_SIZE 2", "DOMAIN_MIN 0 0"] + ["0 0 0"] * 8, "cannot parse"),
    (["LUT_3D_SIZE 2", "DOMAIN_MIN 1 0 0", "DOMAIN_MAX 1 1 1"] + ["0 0 0"] * 8, "below DOMAIN_MAX"),
    (["LUT_3D_SIZE 2", "DOMAIN_MAX inf inf inf"] + ["0 0 0"] * 8, "must be finite"),
    (["LUT_3D_SIZE 2", "LUT_3D_SIZE 3"] + ["0 0 0"] * 8, "a second LUT_3D_SIZE"),
    (["LUT_3D_SIZE 2"] + ["0 0 0"] * 7 + ["0 1e300 0"], "too large"),
])
def test_malformed_cube_files_raise(tmp_path, lines, words):
    path = _write(tmp_path / "bad.cube", lines)
    with pytest.raises(CubeError, match=words) as info:
        read_cube(path)
    assert "bad.cube" in str(info.value)


def test_a_byte_order_mark_and_tabs_are_read(tmp_path):
    body = "\n".join(f"{i % 2} {i // 2 % 2} {i // 4}" for i in range(8))
    (tmp_path / "bom.cube").write_bytes(b"\xef\xbb\xbf" + f"TITLE\t\"t\"\nLUT_3D_SIZE\t2\n{body}\n".encode())
    lut = read_cube(tmp_path / "bom.cube")
    assert lut.size == 2 and lut.title == "t"
    np.testing.assert_allclose(lut.apply(np.array([[0.25, 0.5, 1.0]], np.float32)), [[0.25, 0.5, 1.0]], atol=1e-6)


def test_unreadable_cube_files_and_bad_tables(tmp_path):
    with pytest.raises(CubeError, match="not found"):
        read_cube(tmp_path / "missing.cube")
    (tmp_path / "bin.cube").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(CubeError, match="not a text file"):
        read_cube(tmp_path / "bin.cube")
    with pytest.raises(CubeError, match="N\\^3"):
        write_cube(tmp_path / "x.cube", np.zeros((10, 3)))
    with pytest.raises(CubeError, match="NaN"):
        write_cube(tmp_path / "x.cube", np.full((2, 2, 2, 3), np.nan))
    with pytest.raises(CubeError, match="N x N x N x 3"):
        write_cube(tmp_path / "x.cube", np.zeros((2, 3, 2, 3)))
    assert not (tmp_path / "x.cube").exists()
    assert isinstance(read_cube(_write(tmp_path / "ok.cube", ["LUT_3D_SIZE 2", "LUT_IN_VIDEO_RANGE"]
                                       + ["0 0 0"] * 8)), ColorLUT)


def test_non_affine_3d_stage_interpolates_or_is_exact():
    pipe = FilterPipeline(("saturation", "gamma"))  # no leading per-channel filter: all in the 3D stage
    action = pipe.action_from_description({"saturation": {"factor": 1.6}, "gamma": {"gamma": 1.5}})
    lut = bake_pipeline(pipe, action, size=33)
    assert lut.shaper is None and lut.affine is None
    codes = all_codes(255, 5000)
    with torch.no_grad():
        ref = pipe(torch.from_numpy(codes.astype(np.float32) / 255).permute(2, 0, 1)[None], action)
    ref = ref[0].permute(1, 2, 0).numpy()
    plain = np.abs(lut.apply(codes) / 255.0 - ref).max()
    exact = np.abs(lut.apply(codes, exact=True) / 255.0 - ref).max()
    assert exact <= 0.5 / 255 + 1e-6 < plain


def test_per_channel_functions_become_the_shaper():
    def curves(x):  # three different monotone curves, with kinks
        return torch.stack([x[:, 0] ** 0.5, (x[:, 1] * 1.4 - 0.2).clamp(0, 1), 1 - (1 - x[:, 2]) ** 2], dim=1)

    lut = bake_function(curves, size=17, per_channel=True)
    assert lut.table is None and lut.shaper is curves
    for top in (255, 65535):
        codes = all_codes(top, 3000)
        ref = curves(torch.from_numpy(codes.astype(np.float32) / np.float32(top)).permute(2, 0, 1)[None])
        expected = quantize(ref[0].permute(1, 2, 0).numpy(), 8 if top == 255 else 16)
        np.testing.assert_array_equal(lut.apply(codes), expected)
    assert lut.sample().shape == (17, 17, 17, 3)


def test_toward_identity_blends_each_lattice_point_toward_itself():
    n = 5
    grid = toward_identity(np.zeros((n, n, n, 3), np.float32), 0.0)  # strength 0: the identity lattice
    assert grid[1, 2, 3].tolist() == [0.75, 0.5, 0.25]  # [b, g, r] indexing, values R, G, B
    invert = 1.0 - grid
    assert np.allclose(toward_identity(invert, 0.5), 0.5)  # halfway between x and 1 - x
    assert np.array_equal(toward_identity(invert, 1.0), invert) and toward_identity(invert, 1.0).dtype == np.float32
    with pytest.raises(ValueError, match="strength"):
        toward_identity(invert, 1.5)


def test_a_nan_pixel_comes_back_nan_and_leaves_the_others_alone():
    action = random_actions(3, seed=4)[2]
    for lut in (bake_pipeline(PIPE, action), bake_pipeline(FilterPipeline(("saturation", "gamma")), torch.zeros(1, 2))):
        x = torch.rand(1, 3, 4, 5, generator=torch.Generator().manual_seed(0))
        clean = lut.apply(x)
        x[0, 1, 2, 3] = float("nan")
        out = lut.apply(x)
        assert torch.isnan(out[0, :, 2, 3]).all() and torch.isnan(out).sum() == 3
        keep = ~torch.isnan(out)
        assert torch.equal(out[keep], clean[keep])
        arr = x[0].permute(1, 2, 0).numpy().astype(np.float64)
        assert np.isnan(lut.apply(arr)[2, 3]).all() and np.isnan(lut.apply(arr)).sum() == 3
