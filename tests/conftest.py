"""Shared fixtures: tiny images made by the tests themselves, the devices to run on, a tiny trained agent, a small
exported agent, and running (or importing) a script of ``scripts/``."""

import importlib.util
import json
import runpy
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _devices():
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


DEVICES = _devices()


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(autouse=True, scope="session")
def no_photo_library(tmp_path_factory):
    """Tests never see the user's photo library: ``--data auto`` means the demo set unless a test makes one.
    Session-wide, so that module-scoped fixtures (built before any function-scoped one) do not see it either."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPEXPOSE_PHOTOS", str(tmp_path_factory.getbasetemp() / "no-photo-library"))
        yield


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


def random_image(b=2, h=8, w=10, *, seed=0, dtype=torch.float32, device="cpu", low=0.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    x = low + (high - low) * torch.rand(b, 3, h, w, generator=g, dtype=torch.float64)
    return x.to(dtype=dtype, device=device)


def cached_package(root: Path, name: str, count: int) -> None:
    """A package of the photo library as ``scripts/get_photos.py`` caches it: ``count`` 8 x 8 PNGs, each its own
    scene group, and the manifest."""
    import hashlib
    import io

    from PIL import Image

    from deepexpose.data.packages import MANIFEST

    entries = []
    (root / name).mkdir(parents=True)
    for i in range(count):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (i % 256, 7 * i % 256, 9)).save(buf, "PNG")
        (root / name / f"p{i}.png").write_bytes(buf.getvalue())
        entries.append({"file": f"p{i}.png", "name": f"p{i}", "licence": "CC0-1.0", "credit": "me",
                        "group": f"{name}:p{i}", "sha256": hashlib.sha256(buf.getvalue()).hexdigest()})
    (root / name / MANIFEST).write_text(json.dumps({"package": name, "photos": entries}))


@pytest.fixture(scope="session")
def tiny_agent(tmp_path_factory) -> Path:
    """The checkpoint of a 64-step agent on the demo photos (coffee held out, one scene group validating)."""
    import warnings

    from deepexpose.agents.train import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny-agent")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the six demo photos are too few, as train warns
        train(TrainConfig(data="demo", holdout="coffee", steps=64, batch=8, workers=1, pool_size=16, eval_size=4,
                          view=16, k=2, eval_every=0, checkpoint_every=0, validation=0.2, out=str(out),
                          progress=False))
    return out / "checkpoint.safetensors"


@pytest.fixture
def run_script(monkeypatch, capsys):
    """``run_script(NAME, ARGS)`` runs ``scripts/NAME`` with the command line ``ARGS``; it must exit 0 after
    printing a JSON report, which is returned."""
    def run(name: str, args: list[str]) -> dict:
        monkeypatch.setattr(sys, "argv", [name, *args])
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(SCRIPTS / name), run_name="__main__")
        assert done.value.code == 0
        text = capsys.readouterr().out
        return json.loads(text[text.index("{"):])
    return run


@pytest.fixture
def agent_model(tmp_path):
    """A small agent with non-zero actor weights, exported like the bundled model."""
    from deepexpose.agents.checkpoint import save_checkpoint
    from deepexpose.agents.networks import ActorCritic
    from deepexpose.agents.policy import KIND
    from deepexpose.filters import DEFAULT_GLOBAL_FILTERS

    torch.manual_seed(0)
    model = ActorCritic(steps=4, action_dim=16, hidden=32)
    torch.nn.init.normal_(model.actor.weight, std=0.3)
    meta = {"kind": KIND, "model": model.config(), "k": 3, "view": 64, "segmentation": "luminosity",
            "refine_radius": 0, "filters": list(DEFAULT_GLOBAL_FILTERS)}
    return save_checkpoint(tmp_path / "model" / "agent.safetensors", modules={"policy": model}, meta=meta)


def load_script(name: str):
    """``scripts/NAME`` imported as a module (its functions, without running its ``main``)."""
    spec = importlib.util.spec_from_file_location(Path(name).stem, SCRIPTS / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_dng(path, level=0.3, neutral=(0.5, 1.0, 0.7), orientation=1, h=32, w=48, exif=None, crop=None):
    """A minimal DNG laid out as cameras write it: an RGB thumbnail in IFD0 (with the DNG tags) and, in its SubIFD,
    16-bit RGGB Bayer data of a scene reflecting ``level`` (a number or an ``h x w`` array) of the white level, each
    channel seen through the camera's ``neutral`` (also its AsShotNeutral: camera white balance makes it grey).
    ``exif`` (tag -> value) is written as the EXIF directory; ``crop`` ``(left, top, width, height)`` as the
    DefaultCropOrigin and DefaultCropSize of the picture the camera means."""
    black, white = 512, 16383
    gain = np.asarray(neutral)[np.tile([[0, 1], [1, 2]], (h // 2, w // 2))]
    cfa = np.round(black + np.broadcast_to(level, (h, w)) * gain * (white - black)).astype(np.uint16)
    identity = (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1)
    ifd0 = [(50706, "B", 4, (1, 4, 0, 0)), (50708, "s", 0, "Test Camera"), (50721, "2i", 9, identity),
            (50728, "2I", 3, tuple(x for n in neutral for x in (round(n * 10000), 10000))),
            (274, "H", 1, orientation), (271, "s", 0, "TestMake"), *([(34666, "I", 1, 0)] if exif else [])]
    raw = [(33421, "H", 2, (2, 2)), (33422, "B", 4, (0, 1, 1, 2)), (50714, "H", 1, black), (50717, "H", 1, white),
           *([(50719, "I", 2, crop[:2]), (50720, "I", 2, crop[2:])] if crop else [])]
    with tifffile.TiffWriter(path) as tif:
        tif.write(np.zeros((h // 8, w // 8, 3), np.uint8), photometric="rgb", subfiletype=1, subifds=1,
                  extratags=ifd0, metadata=None)
        tif.write(cfa, photometric=32803, extratags=raw, metadata=None)
    if exif:  # appended, and tag 34666 (tifffile does not write 34665) made the ExifIFD pointer to it
        from PIL import TiffImagePlugin

        with tifffile.TiffFile(path) as tif:
            pointer = tif.pages[0].tags[34666].valueoffset
        directory = TiffImagePlugin.ImageFileDirectory_v2(group=34665)
        for tag, value in exif.items():
            directory[tag] = value
        data = bytearray(path.read_bytes())
        data += b"\0" * (len(data) % 2)
        data[pointer - 8:pointer - 6] = struct.pack("<H", 34665)
        data[pointer:pointer + 4] = struct.pack("<I", len(data))
        path.write_bytes(bytes(data + directory.tobytes(len(data))))
    return path


def make_nclx_heic(path, pixels, cicp):
    """A HEIC whose colour is given only by an nclx box with the code points ``cicp`` (primaries, transfer, matrix,
    full range), as phones and cameras write them; ``uint16`` pixels (10-bit codes) make a 10-bit file."""
    import pillow_heif

    mode = "RGB" if pixels.dtype == np.uint8 else "RGB;16"
    h, w = pixels.shape[:2]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pillow_heif.encode(mode, (w, h), np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes(),
                       path, quality=95, bit_depth=10, color_primaries=cicp[0], transfer_characteristics=cicp[1],
                       matrix_coefficients=cicp[2], full_range_flag=int(cicp[3]))
    return Path(path)


def exif_with_thumbnail(thumbnail: np.ndarray | bytes, *, orientation: int = 1, big_endian: bool = False) -> bytes:
    """Raw EXIF (``Exif\\0\\0`` + TIFF) as cameras write it: IFD0 (Make, Orientation) linked to an IFD1 that holds
    a JPEG ``thumbnail`` (``h x w x 3`` uint8, or the bytes themselves) after it, the thumbnail last in the block."""
    import io
    import struct

    from PIL import Image

    buffer = io.BytesIO()
    if isinstance(thumbnail, bytes):
        buffer.write(thumbnail)
    else:
        Image.fromarray(thumbnail).save(buffer, format="JPEG", quality=75)
    jpeg = buffer.getvalue()
    bo = ">" if big_endian else "<"
    make = b"Camera\x00\x00"  # 8 bytes, stored after IFD0
    ifd0 = 8
    ifd0_size = 2 + 2 * 12 + 4
    make_at = ifd0 + ifd0_size
    ifd1 = make_at + len(make)
    ifd1_size = 2 + 3 * 12 + 4
    thumb_at = ifd1 + ifd1_size
    out = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(bo + "I", ifd0)
    out += struct.pack(bo + "H", 2) + struct.pack(bo + "HHII", 0x010F, 2, len(make), make_at)
    out += struct.pack(bo + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(bo + "I", ifd1) + make
    out += struct.pack(bo + "H", 3) + struct.pack(bo + "HHIHH", 0x0103, 3, 1, 6, 0)
    out += struct.pack(bo + "HHII", 0x0201, 4, 1, thumb_at) + struct.pack(bo + "HHII", 0x0202, 4, 1, len(jpeg))
    out += struct.pack(bo + "I", 0) + jpeg
    return b"Exif\x00\x00" + out


def exif_thumbnail(exif: bytes) -> np.ndarray | None:
    """The IFD1 JPEG thumbnail of raw EXIF, decoded as Pillow reads it; ``None`` when it has none."""
    import io
    import struct

    from PIL import Image

    data = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
    bo = "<" if data[:2] == b"II" else ">"
    ifd0 = struct.unpack_from(bo + "I", data, 4)[0]
    link = ifd0 + 2 + 12 * struct.unpack_from(bo + "H", data, ifd0)[0]
    ifd1 = struct.unpack_from(bo + "I", data, link)[0]
    if not ifd1:
        return None
    tags = {}
    for i in range(struct.unpack_from(bo + "H", data, ifd1)[0]):
        tag, kind, count, value = struct.unpack_from(bo + "HHII", data, ifd1 + 2 + 12 * i)
        tags[tag] = value
    start, length = tags[0x0201], tags[0x0202]
    return np.asarray(Image.open(io.BytesIO(data[start:start + length])).convert("RGB"))


def jpeg_bytes(pixels: np.ndarray, *, quality: int = 90, xmp: bytes | None = None, exif: bytes | None = None) -> bytes:
    """``pixels`` (``h x w`` or ``h x w x 3`` uint8) as a JPEG from Pillow, with an XMP packet and EXIF if given."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, **({"xmp": xmp} if xmp else {}),
                                 **({"exif": exif} if exif else {}))
    return buffer.getvalue()


MP_PREVIEW, MP_DISPARITY, MP_UNDEFINED = 0x010001, 0x020002, 0x000000


def multi_picture(photo: bytes, pictures: list[tuple[int, bytes]], *, big_endian: bool = True, between: bytes = b"",
                  after: bytes = b"") -> bytes:
    """A multi-picture JPEG (CIPA DC-007), built here from the spec: ``photo``'s own JPEG with an MPF APP2 segment
    after its first APPn, then each ``(MP type, JPEG)`` of ``pictures`` (``between`` before each), then ``after``.
    Fujifilm's stereo cameras write big-endian indexes; Pillow's MPO writer, which gets sizes wrong from the third
    picture on, little-endian ones."""
    bo = ">" if big_endian else "<"
    n = 1 + len(pictures)
    entries_at = 8 + 2 + 3 * 12 + 4
    body_size = 4 + entries_at + 16 * n
    at = 4 + int.from_bytes(photo[4:6], "big")  # after the first APPn (Pillow's JFIF APP0)
    size = len(photo) + 4 + body_size
    base = at + 8
    entries = struct.pack(bo + "IIIHH", 0x20000000 | 0x030000, size, 0, 0, 0)
    pos = size
    for kind, data in pictures:
        pos += len(between)
        entries += struct.pack(bo + "IIIHH", kind, len(data), pos - base, 0, 0)
        pos += len(data)
    tiff = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(bo + "I", 8) + struct.pack(bo + "H", 3)
    tiff += struct.pack(bo + "HHI", 0xB000, 7, 4) + b"0100"
    tiff += struct.pack(bo + "HHII", 0xB001, 4, 1, n) + struct.pack(bo + "HHII", 0xB002, 7, 16 * n, entries_at)
    tiff += struct.pack(bo + "I", 0) + entries
    segment = b"\xff\xe2" + struct.pack(">H", 2 + body_size) + b"MPF\x00" + tiff
    return photo[:at] + segment + photo[at:] + b"".join(between + data for _, data in pictures) + after


GAIN_MAP_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                b'<rdf:Description xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" hdrgm:Version="1.0" '
                b'hdrgm:GainMapMax="2.0"/></rdf:RDF></x:xmpmeta>')


def container_xmp(*items: tuple[str, str, int]) -> bytes:
    """A photo's XMP listing Google's GContainer items ``(semantic, mime, length)`` after the primary."""
    listed = "".join(f'<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="{s}" Item:Mime="{m}" '
                     f'Item:Length="{n}"/></rdf:li>' for s, m, n in items)
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description xmlns:Container="http://ns.google.com/photos/1.0/container/" '
            'xmlns:Item="http://ns.google.com/photos/1.0/container/item/" xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map'
            '/1.0/" hdrgm:Version="1.0"><Container:Directory><rdf:Seq><rdf:li rdf:parseType="Resource">'
            '<Container:Item Item:Semantic="Primary" Item:Mime="image/jpeg"/></rdf:li>'
            f'{listed}</rdf:Seq></Container:Directory></rdf:Description></rdf:RDF></x:xmpmeta>').encode()
