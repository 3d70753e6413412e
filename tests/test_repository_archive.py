"""Upload checking: every rejection the repository promises, one line each, before storing."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from repository_support import make_dataset

from synthmed.repository.archive import (
    Limits,
    UploadRejected,
    check_card,
    inspect_upload,
    pack_folder,
    slug,
)

CARD = {"title": "Tiny fundus", "license": "CC-BY-4.0", "domain": "retina"}


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def members_of(folder: Path) -> dict[str, bytes]:
    """The members of a packed dataset, as a dict to tamper with."""
    out = folder.parent / "packed.zip"
    pack_folder(folder, CARD, out)
    with zipfile.ZipFile(out) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def write_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def good(tmp_path: Path) -> dict[str, bytes]:
    return members_of(make_dataset(tmp_path / "ds", n=3, size=32))


def rejected(tmp_path: Path, members: dict[str, bytes], limits: Limits | None = None) -> str:
    with pytest.raises(UploadRejected) as e:
        inspect_upload(write_zip(tmp_path / "up.zip", members), limits)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_a_generated_dataset_passes(tmp_path: Path, good: dict[str, bytes]) -> None:
    up = inspect_upload(write_zip(tmp_path / "up.zip", good))
    assert up.stems == ["0000", "0001", "0002"]
    assert (up.width, up.height, up.channels) == (32, 32, 3)
    assert up.card["name"] == "tiny-fundus" and up.card["license"] == "CC-BY-4.0"
    assert up.manifest["count"] == 3 and up.metrics is None


def test_one_wrapping_folder_is_accepted(tmp_path: Path, good: dict[str, bytes]) -> None:
    wrapped = {f"tiny-fundus-v1/{k}": v for k, v in good.items()}
    assert inspect_upload(write_zip(tmp_path / "up.zip", wrapped)).stems == ["0000", "0001", "0002"]


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "up.zip"
    path.write_bytes(b"GIF89a not an archive")
    with pytest.raises(UploadRejected, match="not a zip") as e:
        inspect_upload(path)
    assert e.value.status == 415


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../escape.png",
        "images/../../x.png",
        "images\\0000.png",
        "C:/x.png",
        "images/./0000.png",
    ],
)
def test_unsafe_member_names(tmp_path: Path, good: dict[str, bytes], name: str) -> None:
    assert "unsafe member name" in rejected(tmp_path, good | {name: b"x"})


def test_links_are_refused(tmp_path: Path, good: dict[str, bytes]) -> None:
    path = write_zip(tmp_path / "up.zip", good)
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo("images/0003.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UploadRejected, match="links are not allowed"):
        inspect_upload(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("run.sh", "unexpected member"),
        ("images/sub/0000.png", "unexpected member"),
        ("images/0003.gif", "only PNG, JPEG and TIFF"),
        ("images/bad name.png", "file name must be"),
        ("images/.hidden.png", "file name must be"),
    ],
)
def test_unexpected_or_badly_named_members(
    tmp_path: Path, good: dict[str, bytes], name: str, expected: str
) -> None:
    assert expected in rejected(tmp_path, good | {name: b"x"})


def test_a_file_that_is_not_an_image(tmp_path: Path, good: dict[str, bytes]) -> None:
    message = rejected(tmp_path, good | {"images/0001.png": b"\x89PNG garbage"})
    assert message.startswith("images/0001.png: not a readable PNG, JPEG or TIFF")


def test_a_gif_dressed_as_png(tmp_path: Path, good: dict[str, bytes]) -> None:
    gif = png(np.zeros((32, 32, 3), np.uint8), "GIF")
    assert "not a readable PNG, JPEG or TIFF" in rejected(tmp_path, good | {"images/0001.png": gif})


def test_decompression_bomb(tmp_path: Path, good: dict[str, bytes]) -> None:
    big = png(np.zeros((64, 64, 3), np.uint8))  # more pixels than this server allows
    with pytest.raises(UploadRejected, match="over the limit") as e:
        inspect_upload(
            write_zip(tmp_path / "up.zip", good | {"images/0000.png": big}),
            Limits(max_image_pixels=32 * 32),
        )
    assert e.value.status == 413


def test_zip_bomb(tmp_path: Path, good: dict[str, bytes]) -> None:
    path = write_zip(tmp_path / "up.zip", good)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images/0003.png", b"\0" * (4 << 20))  # 4 MB of zeros: ratio ~1000
    with pytest.raises(UploadRejected, match="compression ratio") as e:
        inspect_upload(path)
    assert e.value.status == 413


def test_size_limits(tmp_path: Path, good: dict[str, bytes]) -> None:
    assert "larger than" in rejected(tmp_path, good, Limits(max_member_bytes=100))
    assert "larger than" in rejected(tmp_path, good, Limits(max_upload_bytes=1000))
    assert "members, the limit" in rejected(tmp_path, good, Limits(max_members=3))


def test_pairing(tmp_path: Path, good: dict[str, bytes]) -> None:
    no_mask = {k: v for k, v in good.items() if k != "masks/0001.png"}
    assert rejected(tmp_path, no_mask).startswith("images/0001.png: no mask")
    no_image = {k: v for k, v in good.items() if k != "images/0002.png"}
    assert rejected(tmp_path, no_image).startswith("masks/0002.png: no image")
    no_fov = {k: v for k, v in good.items() if k != "fov/0000.png"}
    assert "fov/" in rejected(tmp_path, no_fov)


def test_masks_must_be_binary_and_sized_like_their_image(
    tmp_path: Path, good: dict[str, bytes]
) -> None:
    grey = png(np.full((32, 32), 128, np.uint8))
    assert "not binary" in rejected(tmp_path, good | {"masks/0001.png": grey})
    small = png(np.zeros((16, 16), np.uint8))
    assert "is 16x16, its image 32x32" in rejected(tmp_path, good | {"masks/0001.png": small})
    other = png(np.zeros((16, 16, 3), np.uint8))
    assert "other images are 32x32" in rejected(tmp_path, good | {"images/0002.png": other})


def test_manifest_and_card(tmp_path: Path, good: dict[str, bytes]) -> None:
    assert "manifest.json is missing" in rejected(
        tmp_path, {k: v for k, v in good.items() if k != "manifest.json"}
    )
    wrong = json.dumps({"count": 5}).encode()
    assert "count is 5 but the archive has 3" in rejected(tmp_path, good | {"manifest.json": wrong})
    assert "not valid JSON" in rejected(tmp_path, good | {"card.json": b"{"})
    untitled = json.dumps({"license": "MIT"}).encode()
    assert "title is required" in rejected(tmp_path, good | {"card.json": untitled})
    bad_name = json.dumps(CARD | {"name": "../Up"}).encode()
    assert "name" in rejected(tmp_path, good | {"card.json": bad_name})


def test_datalist_and_dataset_card_travel_with_the_pairs(
    tmp_path: Path, good: dict[str, bytes]
) -> None:
    assert {"datalist.json", "README.md"} <= good.keys()  # pack_folder takes them along
    up = inspect_upload(write_zip(tmp_path / "up.zip", good))
    assert {"datalist.json", "README.md"} <= up.members.keys()
    wrapped = {f"tiny-fundus-v1/{k}": v for k, v in good.items()}
    assert "datalist.json" in inspect_upload(write_zip(tmp_path / "w.zip", wrapped)).members


def test_datalist_and_readme_are_checked(tmp_path: Path, good: dict[str, bytes]) -> None:
    entries = json.loads(good["datalist.json"])["training"]
    missing = json.dumps({"training": [*entries, {"image": "images/0009.png"}]}).encode()
    assert "training[3].image 'images/0009.png' is not in the archive" in rejected(
        tmp_path, good | {"datalist.json": missing}
    )
    assert "a list under 'training'" in rejected(tmp_path, good | {"datalist.json": b"{}"})
    assert "not valid JSON" in rejected(tmp_path, good | {"datalist.json": b"["})
    assert "README.md: not UTF-8 text" in rejected(tmp_path, good | {"README.md": b"\xff\xfe"})


def test_card_fields_and_slugs() -> None:
    assert slug("DRIVE-like fundus, 512 px!") == "drive-like-fundus-512-px"
    assert check_card({"title": " T ", "license": "MIT"})["title"] == "T"
    with pytest.raises(UploadRejected, match="longer than"):
        check_card({"title": "x" * 201, "license": "MIT"})
