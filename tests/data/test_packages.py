"""Tests for deepexpose.data.packages (photos from Debian packages). Offline: apt is never called."""

import hashlib
import io
import json
import shutil
import struct
import subprocess
import zlib
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepexpose.data import packages as pk
from deepexpose.data.packages import (EXCLUDED, MANIFEST, PHOTO_PACKAGES, RESERVED_PACKAGES, AptUnpacker,
                                      PhotoFetchError, PhotoRecord, edj_largest_jpeg, fetch_photos, find_webp,
                                      jpeg_end, kphotoalbum_angles, load_library, parse_copyright, pzl_photo,
                                      rcc_files, split_records)


# --------------------------------------------------------------------------------------------- helpers


def encode(fmt, w, h, color=(200, 60, 30), **kw):
    im = Image.new("RGB", (w, h), color)
    im.paste((20, 200, 90), (0, 0, w // 4, h // 4))  # a marked top-left corner
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def make_rcc(files):
    """A Qt resource file (format 2) holding ``files`` {"/a/b.webp": bytes}; README files zlib-compressed."""
    root = {}
    for path, blob in files.items():
        node = root
        *dirs, name = path.strip("/").split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = blob
    nodes, queue = [("", root)], [root]  # breadth first: a folder's children are consecutive
    children = {}
    while queue:
        d = queue.pop(0)
        children[id(d)] = len(nodes)
        for name, v in d.items():
            nodes.append((name, v))
            if isinstance(v, dict):
                queue.append(v)
    names, name_off, payload, tree = b"", {}, b"", b""
    for name, _ in nodes[1:]:
        name_off[name] = len(names)
        names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
    for i, (name, v) in enumerate(nodes):
        noff = name_off.get(name, 0) if i else 0
        if isinstance(v, dict):
            tree += struct.pack(">IHII", noff, 2, len(v), children[id(v)]) + bytes(8)
        else:
            flags, blob = (1, struct.pack(">I", len(v)) + zlib.compress(v)) if name == "README" else (0, v)
            tree += struct.pack(">IHHHI", noff, flags, 0, 0, len(payload)) + bytes(8)
            payload += struct.pack(">I", len(blob)) + blob
    header = 20
    return (b"qres" + struct.pack(">IIII", 2, header + len(payload), header, header + len(payload) + len(tree))
            + payload + tree + names)


def pzl(entries):
    out = b"PzlF\n0.1\npuzzle\nhttp://example.org/\n"
    for name, blob in entries:
        out += f"{name}\n{len(blob)}\n".encode() + blob
    return out


DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: test

Files: *
Copyright: 2020 Main Author
License: GPL-2+

Files: {pattern}
Copyright: 2018, Photo Grapher
           2019 Second Person
License: {licence}

License: GPL-2+
 text
"""


def write_tree(root, files):
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)


def fake_unpack(trees, calls=None):
    """Pretend apt: ``trees`` maps package -> {relative path: bytes}, or an exception to raise."""
    def unpack(name, workdir):
        if calls is not None:
            calls.append(name)
        tree = trees[name]
        if isinstance(tree, Exception):
            raise tree
        write_tree(workdir / "root", tree)
        return workdir / "root", "9.9-test"
    return unpack


def sddm_tree():
    return {"usr/share/sddm/themes/maldives/background.jpg": encode("JPEG", 64, 48),
            "usr/share/sddm/themes/maldives/maldives.jpg": encode("JPEG", 64, 48),
            "usr/share/doc/sddm-theme-maldives/copyright":
                DEP5.format(pattern="data/themes/maldives/background.jpg", licence="CC-BY-3.0")}


def lomiri_tree():
    return {"usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg": encode("JPEG", 80, 40),
            "usr/share/doc/lomiri-wallpapers-20.04/copyright":
                DEP5.format(pattern="20.04/Kleiber_by_Lukas_Baubkus.jpg", licence="CC-BY-SA-3.0")}


@pytest.fixture
def no_subprocess(monkeypatch):
    def boom(*a, **k):
        raise AssertionError(f"subprocess called: {a}")
    monkeypatch.setattr(subprocess, "run", boom)


# --------------------------------------------------------------------------------------------- registry


def test_registry_is_consistent_and_never_names_reserved_packages():
    assert {p.name for p in PHOTO_PACKAGES.values()} == set(PHOTO_PACKAGES)
    assert set(PHOTO_PACKAGES).isdisjoint(RESERVED_PACKAGES | {"opencv-doc"})
    for pkg in PHOTO_PACKAGES.values():
        text = " ".join(str(getattr(pkg, f.name)) for f in fields(pkg))
        for reserved in RESERVED_PACKAGES | {"opencv"}:
            assert reserved not in text, pkg.name
        assert pkg.version and pkg.contents and pkg.licence and pkg.expected > 0
        assert pkg.paths and all(not p.startswith("/") for p in pkg.paths)  # extraction rule
        assert pkg.extractor is None or callable(pkg.extractor)
        if pkg.licence_evidence:  # free-text copyright file: the registry states licence and credit
            assert pkg.credit
    assert [p.name for p in PHOTO_PACKAGES.values() if p.large] == ["enlightenment-data"]
    everything = " ".join(" ".join(p.paths + p.exclude) for p in PHOTO_PACKAGES.values())
    for left_out in ("Butterfly-Kenneth-Wimer", "Valendas", "umang", "penguin"):
        assert left_out not in " ".join(" ".join(p.paths) for p in PHOTO_PACKAGES.values())
    assert "penguin-3x2.pzl" in PHOTO_PACKAGES["jigzo-data"].exclude
    assert "umang_by_Abhishek_Mudgal.jpg" in PHOTO_PACKAGES["lomiri-wallpapers-16.04"].exclude
    assert {"canyon01.jpg", "nasa9.jpg", "earthrise.jpg"} <= set(PHOTO_PACKAGES["endless-sky-data"].exclude)
    assert {"chalkboard.jpg", "moon.jpg"} <= set(PHOTO_PACKAGES["scratch"].exclude)
    assert "Paper-Flower" not in everything and "Gogh" not in str(pk.GCOMPRIS_PHOTOS)
    assert all(reason for reason in EXCLUDED.values()) and RESERVED_PACKAGES <= set(EXCLUDED)


def test_reserved_and_unknown_packages_are_refused(tmp_path, no_subprocess):
    for name in RESERVED_PACKAGES:
        with pytest.raises(ValueError, match="reserved"):
            fetch_photos(tmp_path, [name], unpack=fake_unpack({}))
    with pytest.raises(ValueError, match="unknown photo package"):
        fetch_photos(tmp_path, ["no-such-package"], unpack=fake_unpack({}))


def test_parse_copyright_takes_the_last_matching_paragraph():
    paras = parse_copyright(DEP5.format(pattern="16.04/a_*.jpg", licence="CC0-1.0"))
    assert [p.licence for p in paras] == ["GPL-2+", "CC0-1.0"]
    assert paras[1].copyright == "2018, Photo Grapher; 2019 Second Person"
    assert pk._match_copyright(paras, "16.04/a_x.jpg").licence == "CC0-1.0"
    assert pk._match_copyright(paras, "16.04/b.jpg").patterns == ("*",)
    assert parse_copyright("free text\nGPL") is None


# --------------------------------------------------------------------------------------------- containers


def test_find_webp_in_a_fake_rcc_blob():
    a, b = encode("WEBP", 64, 48, quality=80), encode("WEBP", 30, 90, lossless=True)
    wav = b"RIFF" + struct.pack("<I", 12) + b"WAVEfmt data"
    blob = b"qres\x00\x00\x00\x03junk" + a + bytes(7) + wav + b"RIFF\xff\xff\xff\x7fWEBP" + b + b"tail"
    found = find_webp(blob)
    assert len(found) == 2  # the WAVE and the over-long RIFF header are skipped
    assert [blob[o:o + len(d)] == d for o, d in found] == [True, True]
    assert [Image.open(io.BytesIO(d)).size for _, d in found] == [(64, 48), (30, 90)]
    with pytest.raises(ValueError, match="cannot read the rcc tree"):
        rcc_files(blob)  # a qres header, but no readable tree
    with pytest.raises(ValueError, match="not a Qt resource"):
        rcc_files(a + b)


def test_rcc_tree_names_webp_and_decompresses_readme():
    webp = encode("WEBP", 40, 30)
    data = make_rcc({"/gcompris/src/activities/erase/resource/fox.webp": webp,
                     "/gcompris/src/activities/erase/resource/README": b"Copyright: X\nFiles: fox.webp\n"})
    files = rcc_files(data)
    by_path = {path: (off, blob) for off, (path, blob) in files.items()}
    off, blob = by_path["/gcompris/src/activities/erase/resource/fox.webp"]
    assert blob == webp and find_webp(data) == [(off, webp)]
    assert by_path["/gcompris/src/activities/erase/resource/README"][1].startswith(b"Copyright: X")


def test_edj_largest_jpeg_returns_the_exact_bytes_of_the_biggest_image():
    small, big = encode("JPEG", 64, 48), encode("JPEG", 200, 100, progressive=True)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, 500, dtype=np.uint8).tobytes().replace(b"\xff", b"\x00")
    blob = noise + small + noise + b"\xff\xd8\xff\xe0 broken" + noise + big + noise
    assert jpeg_end(blob, blob.index(small)) == blob.index(small) + len(small)
    assert edj_largest_jpeg(blob) == big
    assert edj_largest_jpeg(noise + big + small) == big
    with pytest.raises(ValueError, match="no JPEG"):
        edj_largest_jpeg(noise)


def test_pzl_photo_crops_the_second_jpeg_to_the_image_line():
    texture = Image.new("RGB", (256, 256), (0, 0, 255))
    texture.paste((0, 0, 0), (0, 0, 160, 120))  # the 1 px frame ...
    texture.paste((250, 10, 10), (1, 1, 159, 119))  # ... around the picture
    buf = io.BytesIO()
    texture.save(buf, format="JPEG", quality=98, subsampling=0)
    header = b"#texture map data\ncrop000 1 2 3 4 5 6 0 0 0 0\nimage 0 0 160 120 1 1    \n"
    data = pzl([("p.map", header), ("p-t.jpg", encode("JPEG", 20, 15)), ("p.png", encode("PNG", 8, 8)),
                ("p.jpg", buf.getvalue())])
    im = pzl_photo(data)
    assert im.size == (158, 118)
    a = np.asarray(im, dtype=int)
    assert np.abs(a[2:-2, 2:-2] - [250, 10, 10]).max() < 30  # the red picture, no blue
    assert min(a[0, :, 0].mean(), a[-1, :, 0].mean(), a[:, 0, 0].mean(), a[:, -1, 0].mean()) > 150  # no frame
    with pytest.raises(ValueError, match="2 JPEGs"):
        pzl_photo(pzl([("p.map", header), ("p.jpg", buf.getvalue())]))
    with pytest.raises(ValueError, match="PzlF"):
        pzl_photo(b"not a puzzle\n\n\n\n")


def test_kphotoalbum_angles_from_index_xml():
    xml = """<?xml version="1.0" encoding="UTF-8"?><KPhotoAlbum version="8"><images>
      <image file="a.jpg" label="a" angle="90"/><image file="b.jpg"/><image file="c.jpg" angle="270"/>
    </images></KPhotoAlbum>"""
    assert kphotoalbum_angles(xml) == {"a.jpg": 90, "b.jpg": 0, "c.jpg": 270}
    with pytest.raises(ValueError, match="angle"):
        kphotoalbum_angles('<a><images><image file="x.jpg" angle="45"/></images></a>')


def test_kphotoalbum_rotation_thumbnails_and_free_text_licence(tmp_path):
    evidence = PHOTO_PACKAGES["kphotoalbum"].licence_evidence
    demo = "usr/share/kphotoalbum/demo"
    tree = {f"{demo}/up.jpg": encode("JPEG", 200, 150), f"{demo}/turned.jpg": encode("JPEG", 200, 150),
            f"{demo}/thumb.jpg": encode("JPEG", 128, 96),
            f"{demo}/index.xml": '<KPhotoAlbum><images><image file="turned.jpg" angle="90"/></images>'
                                 '</KPhotoAlbum>',
            "usr/share/doc/kphotoalbum/copyright": f"Copyright: someone\nThis package is free; {evidence}.\n"}
    recs = fetch_photos(tmp_path, ["kphotoalbum"], unpack=fake_unpack({"kphotoalbum": tree}))
    by_name = {r.name: r for r in recs}
    assert sorted(by_name) == ["turned", "up"]
    assert by_name["up"].path.read_bytes() == tree[f"{demo}/up.jpg"]  # original bytes kept
    turned = np.asarray(Image.open(by_name["turned"].path))
    assert by_name["turned"].path.suffix == ".png" and turned.shape == (200, 150, 3)
    assert turned[2, -3, 1] > 150 and turned[2, 2, 1] < 100  # marked corner moved top-left -> top-right
    assert by_name["up"].licence.startswith("GPL-2+") and "Pedersen" in by_name["up"].credit

    tree["usr/share/doc/kphotoalbum/copyright"] = "Some other licence entirely\n"
    with pytest.raises(PhotoFetchError, match="kphotoalbum.*does not state"):
        fetch_photos(tmp_path / "b", ["kphotoalbum"], unpack=fake_unpack({"kphotoalbum": tree}))


def test_endless_sky_leaves_out_morguefile_photos_and_credits_authors(tmp_path):
    land = "usr/share/games/endless-sky/images/land"
    copyright_text = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: Michael Zahniser
License: GPL-3+

Files: images/land/*
Copyright: Various
License: public-domain
 Taken from morgue-file.com, a collection of photographs that have been donated

Files: images/land/*-sfiera*
Copyright: Chris Pickel (sfiera.net)
License: CC-BY-SA-4.0

Files:
 images/land/fields1*
 images/land/beach0*
Copyright: Various
License: public-domain
 Taken from unsplash.com

Files: images/land/nasa*
Copyright: NASA
License: public-domain
"""
    names = ["morgue3", "fields1", "fields10-sfiera", "beach7-sfiera", "beach0", "nasa2", "nasa8"]
    tree = {f"{land}/{n}.jpg": encode("JPEG", 72, 36, color=(10 * i, 90, 200)) for i, n in enumerate(names)}
    tree["usr/share/doc/endless-sky-data/copyright"] = copyright_text
    recs = fetch_photos(tmp_path, ["endless-sky-data"], unpack=fake_unpack({"endless-sky-data": tree}))
    by_name = {r.name: r for r in recs}
    assert sorted(by_name) == ["beach0", "beach7-sfiera", "fields1", "fields10-sfiera", "nasa2"]  # no morgue3, nasa8
    assert "nasa8" in pk.ENDLESS_SKY_LEFT_OUT
    assert by_name["fields1"].licence == "public-domain" and by_name["nasa2"].credit == "NASA"
    assert by_name["beach7-sfiera"].licence == "CC-BY-SA-4.0" and "Pickel" in by_name["beach7-sfiera"].credit
    # fields1* (unsplash) comes later and also matches fields10-sfiera: the author's paragraph is kept beside it
    tricky = by_name["fields10-sfiera"]
    assert tricky.licence == "CC-BY-SA-4.0 (debian/copyright's last matching paragraph says public-domain)"
    assert "Pickel" in tricky.credit
    assert by_name["fields1"].path.read_bytes() == tree[f"{land}/fields1.jpg"]


def test_gcompris_photos_credits_filters_and_landmark_groups(tmp_path):
    big = lambda c: encode("WEBP", 480, 320, color=c)  # noqa: E731
    act = "/gcompris/src/activities"
    rccs = {name: make_rcc({}) for name in pk.GCOMPRIS_PHOTOS}
    rccs["erase.rcc"] = make_rcc({
        f"{act}/erase/resource/fox.webp": big((1, 2, 3)),
        f"{act}/erase/resource/tiny.webp": encode("WEBP", 120, 90),  # under 400x300
        f"{act}/erase/resource/README": b"Copyright: Jo Photo\nSource: https://example.org/fox\n"
                                        b"License: CC0-1.0\nFiles: fox.webp\n\n"
                                        b"Copyright: T\nLicense: X\nFiles:\nb.svg\n",
    })
    rccs["details.rcc"] = make_rcc({
        f"{act}/details/resource/image/TourEiffel_background.webp": big((4, 5, 6)),
        f"{act}/details/resource/image/TourEiffel_0.webp": encode("WEBP", 40, 40),
        f"{act}/details/resource/image/Gogh4_background.webp": big((7, 8, 9)),  # a painting
    })
    rccs["explore_monuments.rcc"] = make_rcc({f"{act}/explore_monuments/resource/france/eiffelTower.webp":
                                              big((9, 9, 9))})
    tree = {f"usr/share/gcompris-qt/rcc/{n}": blob for n, blob in rccs.items()}
    tree["usr/share/doc/gcompris-qt-data/copyright"] = DEP5.format(
        pattern="src/activities/details/resource/image/*", licence="GPL-3")
    recs = fetch_photos(tmp_path, ["gcompris-qt-data"], unpack=fake_unpack({"gcompris-qt-data": tree}))
    by_name = {r.name: r for r in recs}
    assert sorted(by_name) == ["details-TourEiffel", "erase-fox", "explore_monuments-eiffelTower"]
    fox = by_name["erase-fox"]
    assert fox.path.suffix == ".webp" and Image.open(fox.path).size == (480, 320)
    assert fox.licence == "GPL-2+ (debian/copyright: only 'Files: *' applies; upstream: CC0-1.0 (resource README))"
    assert fox.credit == "Jo Photo; https://example.org/fox"
    assert by_name["details-TourEiffel"].licence == "GPL-3"
    assert by_name["details-TourEiffel"].group == by_name["explore_monuments-eiffelTower"].group \
        == "gcompris-qt-data:landmark-eiffelTower"


# --------------------------------------------------------------------------------------------- library


def fake_cache(root):
    """Two packages, six photos in four groups."""
    for package, photos in {"pkg-a": [("a1", "g1"), ("a2", "g1"), ("a3", "g2")],
                            "pkg-b": [("b1", "g3"), ("b2", "g4"), ("b3", "g4")]}.items():
        entries = []
        for name, group in photos:
            data = encode("PNG", 8, 8, color=(len(name), 0, 0)) + name.encode()
            (root / package).mkdir(parents=True, exist_ok=True)
            (root / package / f"{name}.png").write_bytes(data)
            entries.append({"file": f"{name}.png", "name": name, "licence": "CC0-1.0", "credit": "me",
                            "group": f"{package}:{group}", "sha256": hashlib.sha256(data).hexdigest()})
        (root / package / MANIFEST).write_text(json.dumps({"package": package, "photos": entries}))


def test_load_library_reads_manifests(tmp_path, monkeypatch):
    fake_cache(tmp_path)
    (tmp_path / ".tmp-pkg-c-x").mkdir()  # unfinished fetch: ignored
    recs = load_library(tmp_path, verify=True)
    assert [(r.package, r.name) for r in recs] == [("pkg-a", "a1"), ("pkg-a", "a2"), ("pkg-a", "a3"),
                                                  ("pkg-b", "b1"), ("pkg-b", "b2"), ("pkg-b", "b3")]
    assert all(isinstance(r, PhotoRecord) and r.path.is_file() and r.licence == "CC0-1.0" for r in recs)
    assert [r.name for r in load_library(tmp_path, packages=["pkg-b"])] == ["b1", "b2", "b3"]
    monkeypatch.setenv("DEEPEXPOSE_PHOTOS", str(tmp_path))
    assert pk.default_cache_dir() == tmp_path and len(load_library()) == 6

    (tmp_path / "pkg-a" / "a1.png").write_bytes(b"changed")
    with pytest.raises(ValueError, match="sha256"):
        load_library(tmp_path, verify=True)
    (tmp_path / "pkg-a" / "a1.png").unlink()
    with pytest.raises(FileNotFoundError, match="a1.png"):
        load_library(tmp_path)


def test_split_records_is_group_disjoint_and_deterministic(tmp_path):
    fake_cache(tmp_path)
    recs = load_library(tmp_path)
    many = [PhotoRecord(Path(f"/x/{i}.jpg"), "p", f"n{i}", "CC0", "c", f"p:g{i // 3}") for i in range(300)]
    for records in (recs, many):
        train, held = split_records(records, 0.2, seed=0)
        assert len(train) + len(held) == len(records) and held and train
        assert {r.group for r in train}.isdisjoint({r.group for r in held})
        assert split_records(list(reversed(records)), 0.2, seed=0) == (train, held)  # order does not matter
    train, held = split_records(many, 0.2, seed=0)
    assert 60 <= len(held) <= 63
    assert split_records(many, 0.2, seed=1)[1] != held
    assert split_records(recs, 0.0)[1] == [] and split_records(recs, 1.0)[0]  # never every group held out
    with pytest.raises(ValueError):
        split_records(recs, 1.5)


# --------------------------------------------------------------------------------------------- fetching


def test_fetch_is_idempotent_atomic_and_reports_each_failing_package(tmp_path, no_subprocess):
    broken = lomiri_tree()
    broken["usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"] = encode("JPEG", 80, 40)[:200]  # truncated
    trees = {"sddm-theme-maldives": sddm_tree(), "lomiri-wallpapers-20.04": broken,
             "jigzo-data": RuntimeError("apt-get download jigzo-data failed: E: Unable to locate package")}
    names = list(trees)
    with pytest.raises(PhotoFetchError) as err:
        fetch_photos(tmp_path, names, unpack=fake_unpack(trees))
    assert set(err.value.failures) == {"lomiri-wallpapers-20.04", "jigzo-data"}
    assert "jigzo-data" in str(err.value) and "Unable to locate package" in str(err.value)
    assert [r.name for r in err.value.records] == ["background"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sddm-theme-maldives"]  # nothing partial, no temp

    manifest = json.loads((tmp_path / "sddm-theme-maldives" / MANIFEST).read_text())
    assert manifest["version"] == "9.9-test" and len(manifest["photos"]) == 1
    photo = manifest["photos"][0]
    data = (tmp_path / "sddm-theme-maldives" / photo["file"]).read_bytes()
    assert data == sddm_tree()["usr/share/sddm/themes/maldives/background.jpg"]
    assert photo["sha256"] == hashlib.sha256(data).hexdigest() and (photo["width"], photo["height"]) == (64, 48)
    assert photo["licence"] == "CC-BY-3.0" and photo["credit"] == "2018, Photo Grapher; 2019 Second Person"
    assert (tmp_path / "sddm-theme-maldives" / "copyright").read_text().startswith("Format:")

    calls = []
    trees.update({"lomiri-wallpapers-20.04": lomiri_tree(), "jigzo-data": RuntimeError("still failing")})
    before = (tmp_path / "sddm-theme-maldives" / MANIFEST).read_bytes()
    with pytest.raises(PhotoFetchError, match="jigzo-data: RuntimeError: still failing"):
        fetch_photos(tmp_path, names, unpack=fake_unpack(trees, calls))
    assert calls == ["lomiri-wallpapers-20.04", "jigzo-data"]  # the cached package is not fetched again
    assert (tmp_path / "sddm-theme-maldives" / MANIFEST).read_bytes() == before
    del trees["jigzo-data"]
    recs = fetch_photos(tmp_path, names[:2], unpack=fake_unpack(trees, calls))
    assert calls[2:] == [] and [r.licence for r in recs] == ["CC-BY-SA-3.0", "CC-BY-3.0"]
    assert recs[0].group == "lomiri-wallpapers-20.04:Kleiber_by_Lukas_Baubkus"


def test_missing_glob_fails_the_package(tmp_path, no_subprocess):
    tree = sddm_tree()
    del tree["usr/share/sddm/themes/maldives/background.jpg"]
    with pytest.raises(PhotoFetchError, match="sddm-theme-maldives.*matches nothing"):
        fetch_photos(tmp_path, ["sddm-theme-maldives"], unpack=fake_unpack({"sddm-theme-maldives": tree}))
    assert list(tmp_path.iterdir()) == []


def test_missing_apt_get_is_a_clear_error_per_package(tmp_path, monkeypatch, no_subprocess):
    monkeypatch.setattr(pk.shutil, "which", lambda tool: None)
    with pytest.raises(PhotoFetchError) as err:
        fetch_photos(tmp_path, ["sddm-theme-maldives", "kphotoalbum"])
    assert set(err.value.failures) == {"sddm-theme-maldives", "kphotoalbum"}
    assert "apt-get not found: fetching kphotoalbum needs" in err.value.failures["kphotoalbum"]
    assert err.value.records == []


def test_apt_update_runs_once_only_when_apt_does_not_know_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(pk.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    commands = []

    def run(cmd, cwd, check=False):
        commands.append(cmd[:2])
        out = "E: Unable to locate package x" if cmd[1] == "download" else ""
        return subprocess.CompletedProcess(cmd, 100 if out else 0, "", out)

    monkeypatch.setattr(pk, "_run", run)
    unpack = AptUnpacker()
    for name in ("a", "b"):
        with pytest.raises(RuntimeError, match=f"apt-get download {name} failed: E: Unable to locate"):
            unpack(name, tmp_path)
    assert commands == [["apt-get", "download"], ["apt-get", "update"], ["apt-get", "download"],
                        ["apt-get", "download"]]


@pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None, reason="needs dpkg-deb")
def test_apt_unpacker_unpacks_the_downloaded_deb_and_deletes_it(tmp_path, monkeypatch):
    build = tmp_path / "build"
    (build / "DEBIAN").mkdir(parents=True)
    (build / "DEBIAN" / "control").write_text("Package: photos-x\nVersion: 1:2.3-4\nArchitecture: all\n"
                                              "Maintainer: nobody <nobody@example.org>\nDescription: test\n")
    (build / "usr" / "share" / "x").mkdir(parents=True)
    (build / "usr" / "share" / "x" / "a.jpg").write_bytes(b"\xff\xd8 not really")

    def download(package, workdir):  # apt-get download leaves one .deb in the working folder
        subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(build), str(workdir / f"{package}.deb")],
                       check=True, capture_output=True)
        return subprocess.CompletedProcess(["apt-get", "download", package], 0, "", "")

    monkeypatch.setattr(AptUnpacker, "_download", staticmethod(download))
    work = tmp_path / "work"
    work.mkdir()
    root, version = AptUnpacker()("photos-x", work)
    assert version == "1:2.3-4" and root == work / "root"
    assert (root / "usr" / "share" / "x" / "a.jpg").read_bytes() == b"\xff\xd8 not really"
    assert not list(work.glob("*.deb"))
    (work / "stray.deb").write_bytes(b"")  # a second .deb beside the download: which one is meant is unclear
    with pytest.raises(RuntimeError, match="left 2 .deb files"):
        AptUnpacker()("photos-y", work)
