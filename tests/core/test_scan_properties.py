"""Property tests: whatever bytes a file holds, the image functions answer with a plain reason.

Random bytes, image signatures followed by random bytes, real images cut at random points or
with random bytes overwritten, random EXIF blocks: `inspect_image` and `load_rgb` either work
or raise `ImageReadError` with a reason from the known set, and `scan_folder` never raises.
"""

from __future__ import annotations

import io
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from finetune_gui.core.data.images import (
    CORRUPT,
    EMPTY_FILE,
    NOT_AN_IMAGE,
    UNREADABLE,
    ImageInfo,
    ImageReadError,
    inspect_image,
    load_rgb,
)
from finetune_gui.core.data.scan import scan_folder
from finetune_gui.core.data.walk import is_hidden

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for corpus.py
from corpus import (
    animated_gif,
    cmyk_jpeg,
    encode,
    exif_rotated_jpeg,
    noise_image,
    palette_png_with_transparency,
    png_16bit_grey,
)

# Pillow warns (and carries on) about damaged EXIF blocks; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
FUZZ = settings(
    max_examples=100,
    deadline=None,
    # The example database (or, in CI, derandomising) comes from the profile in tests/conftest.py.
    suppress_health_check=[HealthCheck.too_slow],
)
EXACT_REASONS = {EMPTY_FILE, NOT_AN_IMAGE, CORRUPT, UNREADABLE}
PATTERN_REASONS = re.compile(
    r"unsupported format \([A-Za-z0-9 ._-]+\)"
    r"|too large to open safely \([a-z0-9 ]+\)"
    r"|not an image file type \(\.?[^()\n]+\)"
    r"|not inside a class folder \(ignored\)"
)
EXTENSIONS = [".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif"]
SIGNATURES = {
    "png": b"\x89PNG\r\n\x1a\n",
    "jpeg": b"\xff\xd8\xff",
    "gif87": b"GIF87a",
    "gif89": b"GIF89a",
    "webp": b"RIFF\x10\x00\x00\x00WEBP",
    "tiff_le": b"II*\x00",
    "tiff_be": b"MM\x00*",
}


def _real_images() -> dict[str, bytes]:
    small = noise_image(16, 12, seed=5)
    return {
        "png": encode(small, "PNG"),
        "png_16bit": png_16bit_grey(),
        "png_palette_transparent": palette_png_with_transparency(),
        "png_rgba": encode(small.convert("RGBA"), "PNG"),
        "jpeg": encode(small, "JPEG", quality=80),
        "jpeg_progressive": encode(small, "JPEG", quality=80, progressive=True),
        "jpeg_exif": exif_rotated_jpeg(),
        "jpeg_cmyk": cmyk_jpeg(),
        "gif_animated": animated_gif(),
        "webp": encode(small, "WEBP", quality=70),
        "webp_lossless": encode(small, "WEBP", lossless=True),
        "tiff": encode(small, "TIFF"),
        "bmp": encode(small, "BMP"),
    }


REAL = _real_images()
# Formats whose files begin with a signature the reader recognises (BMP's "BM" is too short).
SIGNED = {name: data for name, data in REAL.items() if not name.startswith("bmp")}


def assert_known_reason(reason: str) -> None:
    assert isinstance(reason, str)
    assert reason in EXACT_REASONS or PATTERN_REASONS.fullmatch(reason), repr(reason)


def read_outcome(function):
    """The function's result, or the plain reason of its ImageReadError (any other error fails)."""
    try:
        return function()
    except ImageReadError as exc:
        assert_known_reason(exc.reason)
        return exc.reason


def check_image_functions(path: Path) -> ImageInfo | str:
    """inspect_image and load_rgb agree: both read it, or both refuse with the same reason."""
    info = read_outcome(lambda: inspect_image(path))
    full = read_outcome(lambda: load_rgb(path))
    small = read_outcome(lambda: load_rgb(path, 24))
    if isinstance(info, ImageInfo):
        assert info.width >= 1 and info.height >= 1
        assert isinstance(full, np.ndarray), f"scan accepted it, training load says {full!r}"
        assert full.shape == (info.height, info.width, 3) and full.dtype == np.uint8
        assert isinstance(small, np.ndarray), f"scan accepted it, training load says {small!r}"
        assert small.shape == (24, 24, 3) and small.dtype == np.uint8
    else:
        assert full == info
    return info


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def write(workdir: Path, data: bytes, extension: str = ".png") -> Path:
    path = workdir / f"file{extension}"
    path.write_bytes(data)
    return path


@FUZZ
@given(data=st.binary(max_size=4096), extension=st.sampled_from(EXTENSIONS))
def test_random_bytes_get_a_plain_reason(workdir, data, extension):
    check_image_functions(write(workdir, data, extension))


@FUZZ
@given(signature=st.sampled_from(sorted(SIGNATURES)), tail=st.binary(max_size=2048))
def test_an_image_signature_then_garbage_is_called_corrupt(workdir, signature, tail):
    outcome = check_image_functions(write(workdir, SIGNATURES[signature] + tail))
    if isinstance(outcome, str):
        assert outcome not in (NOT_AN_IMAGE, EMPTY_FILE), (
            "it starts like an image: say it is damaged"
        )


@FUZZ
@given(name=st.sampled_from(sorted(REAL)), fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_a_real_image_cut_anywhere_is_read_or_called_damaged(workdir, name, fraction):
    data = REAL[name]
    cut = int(len(data) * fraction)
    outcome = check_image_functions(write(workdir, data[:cut], ".jpg"))
    if cut == 0:
        assert outcome == EMPTY_FILE
    elif name in SIGNED and cut >= 12 and isinstance(outcome, str):
        assert outcome == CORRUPT
    if cut < len(data) // 2 and name != "bmp":
        assert outcome == CORRUPT or cut < 12, f"half of a {name} was accepted"


@FUZZ
@given(
    name=st.sampled_from(sorted(REAL)),
    changes=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)),
        min_size=1,
        max_size=12,
    ),
)
def test_a_real_image_with_overwritten_bytes_never_crashes(workdir, name, changes):
    data = bytearray(REAL[name])
    for where, value in changes:
        data[int(where * len(data))] = value
    check_image_functions(write(workdir, bytes(data), ".webp"))


def _jpeg_with_app1(payload: bytes) -> bytes:
    jpeg = REAL["jpeg"]
    segment = b"Exif\x00\x00" + payload
    return jpeg[:2] + b"\xff\xe1" + (len(segment) + 2).to_bytes(2, "big") + segment + jpeg[2:]


@FUZZ
@given(payload=st.binary(max_size=600))
def test_random_exif_blocks_never_crash(workdir, payload):
    outcome = check_image_functions(write(workdir, _jpeg_with_app1(b"MM\x00*" + payload), ".jpg"))
    assert outcome == CORRUPT or isinstance(outcome, ImageInfo)


@FUZZ
@given(orientation=st.integers(0, 65535), tag_type=st.sampled_from([3, 4, 9]))
def test_any_orientation_value_is_survived(workdir, orientation, tag_type):
    """EXIF orientation outside 1-8, or stored as another type: the image is still read."""
    count_and_value = (1).to_bytes(4, "big")
    if tag_type == 3:
        count_and_value += orientation.to_bytes(2, "big") + b"\x00\x00"
    else:
        count_and_value += orientation.to_bytes(4, "big")
    ifd = b"\x00\x01" + b"\x01\x12" + tag_type.to_bytes(2, "big") + count_and_value + b"\x00" * 4
    data = _jpeg_with_app1(b"MM\x00*\x00\x00\x00\x08" + ifd)
    info = check_image_functions(write(workdir, data, ".jpg"))
    assert isinstance(info, ImageInfo)
    rotated = orientation in (5, 6, 7, 8)
    assert (info.width, info.height) == ((12, 16) if rotated else (16, 12))


file_contents = st.one_of(
    st.binary(max_size=512),
    st.sampled_from(sorted(SIGNATURES.values())).flatmap(
        lambda sig: st.binary(max_size=256).map(lambda tail: sig + tail)
    ),
    st.tuples(st.sampled_from(sorted(REAL)), st.floats(0.0, 1.0)).map(
        lambda nf: REAL[nf[0]][: int(len(REAL[nf[0]]) * nf[1])]
    ),
)
file_names = st.tuples(
    st.text(
        alphabet=st.characters(
            codec="utf-8", exclude_characters="/\\\x00", exclude_categories=["Cs"]
        ),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from([*EXTENSIONS, ".txt", ""]),
).map(lambda pair: pair[0] + pair[1])


@settings(FUZZ, max_examples=60)
@given(
    files=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c c", "д"]), file_names, file_contents),
        min_size=1,
        max_size=10,
    )
)
def test_scan_folder_never_raises_whatever_the_files_hold(workdir, files):
    root = Path(tempfile.mkdtemp(dir=workdir))
    try:
        written: dict[Path, str] = {}
        for label, name, data in files:
            if name in (".", "..") or len(name.encode()) > 200:
                continue
            path = root / label / name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            written[path] = label
        scan = scan_folder(root)
        recorded = {r.path: r for r in scan.records}
        reported = {p.path: p.reason for p in scan.problems}
        assert not recorded.keys() & reported.keys()
        for reason in reported.values():
            assert_known_reason(reason)
        visible = {p: lab for p, lab in written.items() if not is_hidden(p.name)}
        for path, label in visible.items():
            if path in reported:
                continue
            if label in scan.excluded_classes:
                assert path not in recorded
                continue
            assert path in recorded, f"{path.name!r} neither used nor reported"
            assert recorded[path].label == label
            assert load_rgb(path, 24).shape == (24, 24, 3)
        assert set(recorded) <= set(visible) and set(reported) <= set(visible)
    finally:
        shutil.rmtree(root)


def test_the_image_pool_is_all_readable(workdir):
    """The fuzzers start from images that really are fine (or cutting them proves nothing)."""
    for name, data in REAL.items():
        assert isinstance(check_image_functions(write(workdir, data, ".img.png")), ImageInfo), name
    assert Image.open(io.BytesIO(REAL["gif_animated"])).n_frames == 2
