import hashlib
import io
import struct

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageCms

from deepexpose.cicp import HDR_TRANSFERS, Cicp, _build, icc_profile, rgb_to_xyz


def srgb_decode(v):
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_encode(v):
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.clip(v, 0, None) ** (1 / 2.4) - 0.055)


def bt709_decode(v):
    """The inverse of the BT.709 OETF."""
    return np.where(v < 0.081, v / 4.5, ((v + 0.099) / 1.099) ** (1 / 0.45))


def to_srgb(profile, codes):
    """``codes`` (uint8, H x W x 3 or H x W for gray) through ``profile`` to sRGB by LittleCMS."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    out = ImageCms.profileToProfile(PILImage.fromarray(codes), source, ImageCms.createProfile("sRGB"),
                                    renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB")
    return np.asarray(out).astype(np.float64)


def inside(seed, shape=(16, 16, 3)):
    """8-bit codes well inside the gamut, so that conversions to sRGB need no clipping."""
    return np.round((np.random.default_rng(seed).random(shape) * 0.4 + 0.3) * 255).astype(np.uint8)


def test_rgb_to_xyz_gives_the_published_srgb_matrix():
    published = [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]  # IEC 61966-2-1
    np.testing.assert_allclose(rgb_to_xyz(1), published, atol=2e-4)


def test_bt709_primaries_with_the_srgb_transfer_are_srgb_to_littlecms():
    codes = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(to_srgb(_build(1, 13), codes), codes)


def test_display_p3_matches_the_published_p3_to_srgb_matrix():
    p3_to_srgb = np.array([[1.2249, -0.2247, 0.0], [-0.0420, 1.0419, 0.0], [-0.0197, -0.0786, 1.0979]])
    codes = inside(1)
    expected = srgb_encode(srgb_decode(codes / 255) @ p3_to_srgb.T) * 255
    got = to_srgb(icc_profile(Cicp(12, 13, 6, True)), codes)
    assert np.abs(got - expected).max() <= 1.0
    assert np.abs(got - codes).max() > 10  # not taken for sRGB


def test_bt2020_with_the_bt709_transfer_matches_the_published_matrix():
    bt2020_to_709 = np.array([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]])
    codes = np.round((np.random.default_rng(2).random((16, 16, 3)) * 0.15 + 0.45) * 255).astype(np.uint8)
    linear = bt709_decode(codes / 255) @ bt2020_to_709.T  # ITU-R BT.2087
    assert linear.min() > 0 and linear.max() < 1
    got = to_srgb(icc_profile(Cicp(9, 1, 9, False)), codes)
    assert np.abs(got - srgb_encode(linear) * 255).max() <= 1.0


def test_a_grey_profile_carries_the_transfer():
    codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
    got = to_srgb(icc_profile(Cicp(1, 1, 1, True), grey=True), codes)[..., 0]
    error = np.abs(got - srgb_encode(bt709_decode(codes / 255)) * 255)
    assert error.max() <= 2.0 and error[codes >= 16].max() <= 1.0  # LittleCMS's 8-bit tables, steep near black
    assert icc_profile(Cicp(12, 13, 6, True), grey=True) is None  # a gray sRGB transfer needs no profile


@pytest.mark.parametrize("cicp", [Cicp(1, 13, 6, True), Cicp(2, 2, 2, True), Cicp(1, 2, 6, False),
                                  Cicp(9, 16, 9, False), Cicp(9, 18, 9, False), Cicp(3, 13, 6, True),
                                  Cicp(12, 17, 0, True), None])
def test_no_profile_for_srgb_unspecified_hdr_or_unknown_code_points(cicp):
    assert icc_profile(cicp) is None


def test_the_profile_is_a_valid_icc_v4_display_profile():
    profile = icc_profile(Cicp(12, 13, 6, True))
    assert struct.unpack(">I", profile[:4])[0] == len(profile) and len(profile) % 4 == 0
    assert profile[8:12] == bytes([4, 0x30, 0, 0]) and profile[12:24] == b"mntrRGB XYZ " and profile[36:40] == b"acsp"
    assert hashlib.md5(profile[:84] + bytes(16) + profile[100:]).digest() == profile[84:100]  # ICC.1 7.2.18
    count = struct.unpack(">I", profile[128:132])[0]
    tags = {profile[132 + 12 * i:136 + 12 * i] for i in range(count)}
    assert tags == {b"desc", b"cprt", b"wtpt", b"chad", b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC"}
    described = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    assert "Display P3 primaries, sRGB transfer" in described
    assert icc_profile(Cicp(12, 13, 6, True)) == profile  # the same bytes every time


def test_describe_and_hdr():
    assert Cicp(12, 13, 6, True).describe() == "Display P3 primaries, sRGB transfer"
    assert Cicp(9, 16, 9, False).describe() == "BT.2020 primaries, PQ transfer" and Cicp(9, 16, 9, False).hdr == "PQ"
    assert Cicp(9, 18, 9, False).hdr == "HLG" and Cicp(1, 13, 6, True).hdr is None
    assert Cicp(99, 98, 0, True).describe() == "primaries 99, transfer 98"
    assert set(HDR_TRANSFERS) == {16, 18}


def test_rgb_profile_from_gray_gives_neutral_rgb_the_colour_the_gray_profile_gives(tmp_path):
    import io

    from PIL import Image, ImageCms

    from deepexpose.cicp import _build, rgb_profile_from_gray

    gray = _build(None, 8)  # a linear gray profile (H.273 transfer 8): far from sRGB's curve
    rgb = rgb_profile_from_gray(gray)
    assert rgb is not None and rgb[16:20] == b"RGB " and rgb_profile_from_gray(rgb) is None
    assert rgb_profile_from_gray(b"not a profile") is None
    srgb = ImageCms.createProfile("sRGB")
    levels = np.arange(0, 256, 15, dtype=np.uint8)
    via_gray = ImageCms.profileToProfile(Image.fromarray(levels[None, :]), ImageCms.ImageCmsProfile(io.BytesIO(gray)),
                                         srgb, outputMode="RGB")
    via_rgb = ImageCms.profileToProfile(Image.fromarray(np.repeat(levels[None, :, None], 3, axis=2)),
                                        ImageCms.ImageCmsProfile(io.BytesIO(rgb)), srgb, outputMode="RGB")
    a, b = np.asarray(via_gray).astype(int), np.asarray(via_rgb).astype(int)
    assert np.abs(a - b).max() <= 1
    assert np.abs(a[0, :, 0] - levels).max() > 30  # the curve matters: dropping the profile would show other tones


def test_rgb_profile_from_gray_refuses_a_gray_profile_in_lab():
    from deepexpose.cicp import rgb_profile_from_gray

    lab = bytearray(_build(None, 8))
    lab[20:24] = b"Lab "  # its curve would give L*, which an RGB profile's TRC cannot mean
    assert rgb_profile_from_gray(bytes(lab)) is None


def test_gamma_profile_is_refused_outside_any_display():
    from deepexpose.cicp import gamma_profile

    assert gamma_profile(1.8)[16:20] == b"RGB " and gamma_profile(1.8, grey=True)[16:20] == b"GRAY"
    for bad in (0.01, 50.0):
        with pytest.raises(ValueError, match="describes no display"):
            gamma_profile(bad)


ADOBE_RGB = ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), (0.3127, 0.3290)


def test_plausible_chromaticities():
    from deepexpose.cicp import plausible

    assert plausible(ADOBE_RGB)
    assert plausible((((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), (0.3127, 0.3290)))  # sRGB
    assert not plausible((ADOBE_RGB[0], (0.70, 0.25)))  # the white outside the primaries' triangle
    assert not plausible((((0.64, 0.33), (0.64, 0.33), (0.15, 0.06)), (0.3127, 0.3290)))  # two primaries alike
    assert not plausible((((0.64, 0.33), (0.21, 0.71), (0.15, 0.0)), (0.3127, 0.3290)))  # y = 0
    assert not plausible((((0.64, 0.33), (0.50, 0.71), (0.15, 0.06)), (0.3127, 0.3290)))  # x + y over 1


def test_gamma_profile_with_chromaticities_maps_colours_as_their_matrices_say():
    from deepexpose.cicp import gamma_profile, rgb_to_xyz

    profile = gamma_profile(2.2, chromaticities=ADOBE_RGB)
    assert profile != gamma_profile(2.2) and profile[16:20] == b"RGB "
    with pytest.raises(ValueError, match="describe no display"):
        gamma_profile(2.2, chromaticities=(ADOBE_RGB[0], (0.70, 0.25)))
    assert gamma_profile(2.2, grey=True, chromaticities=ADOBE_RGB) == gamma_profile(2.2, grey=True)
    codes = np.array([120, 100, 80])
    linear_srgb = np.linalg.solve(rgb_to_xyz(1), rgb_to_xyz(ADOBE_RGB) @ (codes / 255) ** 2.2)  # both white D65
    expected = 255 * np.where(linear_srgb <= 0.0031308, 12.92 * linear_srgb,
                              1.055 * np.clip(linear_srgb, 0, None) ** (1 / 2.4) - 0.055)
    shown = ImageCms.profileToProfile(PILImage.new("RGB", (1, 1), tuple(int(c) for c in codes)),
                                      ImageCms.ImageCmsProfile(io.BytesIO(profile)), ImageCms.createProfile("sRGB"))
    assert np.abs(np.array(shown.getpixel((0, 0))) - expected).max() <= 1.5
    assert np.abs(rgb_to_xyz(ADOBE_RGB) - rgb_to_xyz(1)).max() > 0.05  # a different colour space indeed
