import io

import numpy as np
import pytest
from conftest import (GAIN_MAP_XMP, MP_DISPARITY, MP_PREVIEW, MP_UNDEFINED, container_xmp, jpeg_bytes,
                      multi_picture)
from PIL import Image as PILImage

from deepexpose.io import jpeg_end
from deepexpose.mpf import DATA, GAIN_MAP, PICTURE, PREVIEW, VIEW, Part, Trailer, is_gain_map, join, read_trailer
from deepexpose.mpf import xmp_with_lengths as lengths


def _ramp(h=24, w=32, flip=False):
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 7, y * 9, 255 - x * 5], axis=2).clip(0, 255).astype(np.uint8)
    return a[:, ::-1].copy() if flip else a


def _frames(data: bytes) -> list[np.ndarray]:
    """Every picture of a multi-picture JPEG as Pillow, which reads the index itself, finds it."""
    out = []
    with PILImage.open(io.BytesIO(data)) as im:
        for k in range(getattr(im, "n_frames", 1)):
            im.seek(k)
            out.append(np.asarray(im.convert("RGB")))
    return out


@pytest.mark.parametrize("big_endian", [True, False])
def test_read_trailer_splits_what_follows_the_photo_into_indexed_pictures_and_data(big_endian):
    photo = jpeg_bytes(_ramp())
    preview, view, gain = jpeg_bytes(_ramp(12, 16)), jpeg_bytes(_ramp(flip=True)), jpeg_bytes(
        _ramp(12, 16)[:, :, 0], xmp=GAIN_MAP_XMP)
    other = jpeg_bytes(_ramp(6, 8))
    data = multi_picture(photo, [(MP_PREVIEW, preview), (MP_UNDEFINED, gain), (MP_DISPARITY, view),
                                 (MP_UNDEFINED, other)], big_endian=big_endian, between=b"\0\0", after=b"ftypmp42")
    trailer = read_trailer(data, jpeg_end(data, 0), orientation=6)
    kinds = [(p.kind, p.entry, p.orientation) for p in trailer.parts]
    assert kinds == [(DATA, None, 1), (PREVIEW, 1, 6), (DATA, None, 1), (GAIN_MAP, 2, 6), (DATA, None, 1),
                     (VIEW, 3, 6), (DATA, None, 1), (PICTURE, 4, 6), (DATA, None, 1)]
    assert [p.data for p in trailer.pictures] == [preview, gain, view, other]
    assert b"".join(p.data for p in trailer.parts) == data[jpeg_end(data, 0):]  # nothing lost, nothing added
    assert trailer.mpf is not None and trailer.mpf.startswith(b"MPF\x00")
    assert trailer.describe()[1] == f"preview ({len(preview)} bytes)"


def test_read_trailer_of_a_photo_with_nothing_after_it_or_a_broken_index():
    photo = jpeg_bytes(_ramp())
    assert read_trailer(photo, jpeg_end(photo, 0)) is None
    motion = photo + b"\0\0\0\x18ftypmp42video"  # a motion photo's video: no index, data
    assert read_trailer(motion, jpeg_end(motion, 0)) == Trailer((Part(DATA, b"\0\0\0\x18ftypmp42video"),))
    data = multi_picture(photo, [(MP_PREVIEW, jpeg_bytes(_ramp(12, 16)))])
    cut = data[:-10]  # the picture the index names runs past the end of the file: the index is dropped
    trailer = read_trailer(cut, jpeg_end(cut, 0))
    assert trailer.mpf is None and [p.kind for p in trailer.parts] == [DATA]
    assert trailer.parts[0].data == cut[jpeg_end(cut, 0):]


@pytest.mark.parametrize("big_endian", [True, False])
def test_join_writes_the_index_so_that_readers_find_every_picture_after_a_new_photo(big_endian):
    pictures = [(MP_PREVIEW, jpeg_bytes(_ramp(12, 16))), (MP_DISPARITY, jpeg_bytes(_ramp(flip=True)))]
    data = multi_picture(jpeg_bytes(_ramp()), pictures, big_endian=big_endian, between=b"pad", after=b"end")
    trailer = read_trailer(data, jpeg_end(data, 0))
    new_photo = jpeg_bytes(_ramp(40, 50), quality=70, xmp=b"<x:xmpmeta/>")  # another size: every offset moves
    out = join(new_photo, trailer)
    frames = _frames(out)
    assert len(frames) == 3 and frames[0].shape == (40, 50, 3)
    assert np.array_equal(frames[0], _frames(new_photo)[0])
    for frame, (_, picture) in zip(frames[1:], pictures):
        assert np.array_equal(frame, _frames(picture)[0])
    again = read_trailer(out, jpeg_end(out, 0))
    assert again.parts == trailer.parts  # the pictures and the data between them, byte for byte
    assert out.endswith(b"end") and PILImage.open(io.BytesIO(out)).info["xmp"] == b"<x:xmpmeta/>"
    # a replaced picture of another size moves the ones after it
    bigger = trailer.replace(trailer.pictures[0], Part(PREVIEW, jpeg_bytes(_ramp(20, 30)), 1))
    frames = _frames(join(new_photo, bigger))
    assert frames[1].shape == (20, 30, 3) and np.array_equal(frames[2], _frames(pictures[1][1])[0])


def test_join_without_an_index_appends_the_data():
    photo = jpeg_bytes(_ramp())
    assert join(photo, Trailer((Part(DATA, b"video"),))) == photo + b"video"


def test_is_gain_map_knows_ultra_hdr_apple_and_iso_gain_maps():
    grey = _ramp(12, 16)[:, :, 0]
    assert is_gain_map(jpeg_bytes(grey, xmp=GAIN_MAP_XMP))
    assert is_gain_map(jpeg_bytes(grey, xmp=b'<x:xmpmeta><rdf:Description HDRGainMap:HDRGainMapVersion="65536"/>'
                                            b'</x:xmpmeta>'))
    plain = jpeg_bytes(grey)
    iso = plain[:2] + b"\xff\xe2" + (4 + 27).to_bytes(2, "big") + b"urn:iso:std:iso:ts:21496:-1\0\0" + plain[2:]
    assert is_gain_map(iso)
    assert not is_gain_map(plain) and not is_gain_map(jpeg_bytes(grey, xmp=b"<x:xmpmeta>hdr</x:xmpmeta>"))


def test_xmp_with_lengths_updates_the_container_item_whose_length_changed():
    xmp = container_xmp(("GainMap", "image/jpeg", 1234), ("MotionPhoto", "video/mp4", 98765))
    out = lengths(xmp, [(1234, 1300), (98765, 98765)])
    assert b'Item:Length="1300"' in out and b'Item:Length="98765"' in out and b"1234" not in out
    assert lengths(b"<Item:Length>1234</Item:Length>", [(1234, 99)]) == b"<Item:Length>99</Item:Length>"
    assert lengths(b'Item:Length="12345"', [(1234, 99)]) == b'Item:Length="12345"'  # another number
    twice = container_xmp(("GainMap", "image/jpeg", 500), ("Depth", "image/jpeg", 500))
    assert lengths(twice, [(500, 600)]) == twice  # which one is meant cannot be told: left as it was
    assert lengths(None, [(1, 2)]) is None


def test_pillows_mpo_whose_sizes_are_wrong_from_the_third_picture_is_measured_by_its_markers():
    pictures = [PILImage.fromarray(_ramp(12, 16)), PILImage.fromarray(_ramp(flip=True))]
    buffer = io.BytesIO()
    PILImage.fromarray(_ramp()).save(buffer, "MPO", save_all=True, append_images=pictures)
    data = buffer.getvalue()
    trailer = read_trailer(data, jpeg_end(data, 0))
    assert trailer.mpf is not None and [p.kind for p in trailer.parts] == [PICTURE, PICTURE]
    assert b"".join(p.data for p in trailer.parts) == data[jpeg_end(data, 0):]
    frames = _frames(join(jpeg_bytes(_ramp(30, 40)), trailer))  # written back with the sizes right
    assert [f.shape for f in frames] == [(30, 40, 3), (12, 16, 3), (24, 32, 3)]


def test_padding_after_a_photo_is_no_trailer_and_iso_gain_map_segments_stay_with_the_photo():
    photo = jpeg_bytes(_ramp())
    assert read_trailer(photo + bytes(4), jpeg_end(photo, 0)) is None
    iso = b"\xff\xe2" + (2 + 27 + 4).to_bytes(2, "big") + b"urn:iso:std:iso:ts:21496:-1" + b"\0\0\0\0"
    tagged = photo[:2] + iso + photo[2:]
    data = multi_picture(tagged, [(MP_UNDEFINED, jpeg_bytes(_ramp(12, 16)[:, :, 0], xmp=GAIN_MAP_XMP))])
    trailer = read_trailer(data, jpeg_end(data, 0))
    assert trailer.photo_segments == iso and trailer.parts[0].kind == GAIN_MAP
    out = join(jpeg_bytes(_ramp(30, 40)), trailer)
    assert out.count(b"urn:iso:std:iso:ts:21496:-1") == 1  # the photo's (this gain map is marked by its XMP)
    assert out.index(iso) < out.index(b"MPF\x00") < jpeg_end(out, 0) and len(_frames(out)) == 2
