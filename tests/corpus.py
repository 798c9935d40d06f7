"""A messy image folder, built at test time: good images plus every bad file users really have.

`build_messy_folder(root)` writes the folder and returns an `ExpectedCorpus` saying, for every
entry, what the scan must make of it: a plain reason, usable (with size and pixel facts), or
silently skipped. `snapshot_folder` / `folder_unchanged` prove the scan only reads the folder.
Nothing here is large on disk except one 6000x4000 JPEG of two flat colours (~400 KB).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import stat
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from finetune_gui.core.data.images import CORRUPT, EMPTY_FILE, NOT_AN_IMAGE, UNREADABLE
from finetune_gui.demo import make_shapes_dataset

T = TypeVar("T")

STRAY = "not inside a class folder (ignored)"
TOO_LARGE = "too large to open safely (over 179 megapixels)"
RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)

# Good classes in three scripts, one with a space: the paths must survive all the way through.
CYRILLIC = "круги"
CHINESE = "正方形"
ARABIC = "مثلثات ملونة"
SHAPE_CLASSES = {
    CYRILLIC: ("ellipse", (200, 40, 40)),
    CHINESE: ("rectangle", (40, 90, 200)),
    ARABIC: ("triangle", (40, 160, 60)),
}
SHAPES_PER_CLASS = 6
SHAPE_SIZE = 40

# Case names: the builder creates exactly these, the tests are parametrized over them.
PROBLEM_CASES = (
    "zero_byte_jpg",
    "truncated_png",
    "truncated_jpeg",
    "jpeg_cut_inside_header",
    "truncated_webp",
    "text_named_png",
    "png_with_text_chunk_bomb",
    "png_over_179_megapixels",
    "named_pipe_png",
    "text_file",
    "no_extension",
    "file_link_loop",
    "dangling_link",
    "stray_top_level_image",
    "stray_top_level_text",
    "only_file_of_broken_class",
)
USABLE_CASES = (
    "cmyk_jpeg",
    "png_16bit_grey",
    "palette_png_transparent",
    "grey_png_colour_key",
    "rgb_png_colour_key",
    "animated_gif",
    "jpeg_exif_orientation_6",
    "jpeg_6000x4000",
    "one_pixel_png",
    "webp_lossless",
    "png_named_jpg",
    "upper_case_extension",
    "nested_two_deep",
    "cyrillic_name_with_space",
    "chinese_name_with_space",
    "arabic_name_with_space",
)
SILENT_CASES = (
    "ds_store_top",
    "ds_store_in_class",
    "thumbs_db",
    "desktop_ini",
    "appledouble_jpg",
    "image_in_dot_folder",
    "dot_folder_top_level",
)
LINK_CASES = ("dir_link_to_itself", "dir_link_to_parent", "top_level_link_to_root")
# "unreadable_png" (chmod 000) is usable for root and a problem for everyone else.
ALL_CASES = (
    *PROBLEM_CASES,
    *USABLE_CASES,
    *SILENT_CASES,
    *LINK_CASES,
    "unreadable_png",
    "single_image",
)

EXCLUDED_CLASSES = {
    "empty class": "the folder has no images",
    "only hidden files": "the folder has no images",
    "single": "only 1 readable image; a class needs at least 2",
    "broken": "none of its files could be read as an image",
}


@dataclass(frozen=True)
class PixelFact:
    """`load_rgb(path, load_size)[y, x]` is `rgb`, give or take `tolerance` per channel."""

    x: int
    y: int
    rgb: tuple[int, int, int]
    tolerance: int = 0


@dataclass(frozen=True)
class ExpectedImage:
    """A file the scan must accept: its class, its size after EXIF rotation, some pixels."""

    label: str
    size: tuple[int, int]  # (width, height)
    pixels: tuple[PixelFact, ...] = ()
    load_size: int | None = None  # pixel facts are read at this size (None: full size)


@dataclass
class ExpectedCorpus:
    """What `scan_folder(root)` must report for every entry that `build_messy_folder` wrote."""

    root: Path
    cases: dict[str, Path] = field(default_factory=dict)
    reasons: dict[Path, str] = field(default_factory=dict)
    usable: dict[Path, ExpectedImage] = field(default_factory=dict)
    silent: set[Path] = field(default_factory=set)
    excluded_classes: dict[str, str] = field(default_factory=dict)
    in_excluded_classes: set[Path] = field(default_factory=set)
    not_built: set[str] = field(default_factory=set)  # cases this platform cannot make

    def release_blocked_readers(self) -> None:
        """Open every named pipe for writing and close it: a reader stuck on it gets EOF.

        Only matters when the scan regressed and hangs; it lets the test run end.
        """
        for path in self.cases.values():
            if stat.S_ISFIFO(path.lstat().st_mode):
                with contextlib.suppress(OSError):  # ENXIO: nobody is waiting, fine
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    @property
    def classes(self) -> list[str]:
        return sorted({e.label for e in self.usable.values()})


# --- image bytes -------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise_image(width: int = 40, height: int = 40, seed: int = 0) -> Image.Image:
    """Random RGB pixels: they compress badly, so a cut always lands inside the pixel data."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def two_halves(width: int, height: int, left=RED, right=BLUE) -> Image.Image:
    """Left half one colour, right half another: shows flips, rotations and squashing."""
    image = Image.new("RGB", (width, height), right)
    image.paste(left, (0, 0, width // 2, height))
    return image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_chunk_after_header(png: bytes, chunk: bytes) -> bytes:
    """Insert `chunk` right after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    return png[:33] + chunk + png[33:]


def text_chunk_bomb_png() -> bytes:
    """A valid small PNG whose zTXt comment inflates past Pillow's 1 MB text limit."""
    payload = b"Comment\x00\x00" + zlib.compress(b"\x00" * 4_000_000, 9)
    return png_with_chunk_after_header(
        encode(Image.new("RGB", (8, 8), RED), "PNG"), png_chunk(b"zTXt", payload)
    )


def huge_png(width: int = 20_000, height: int = 10_000) -> bytes:
    """A well-formed 1-bit PNG of width x height (200 megapixels) that is ~25 KB on disk."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", body)
        + png_chunk(b"IEND", b"")
    )


def png_16bit_grey(width: int = 64, height: int = 4) -> bytes:
    """A 16-bit greyscale gradient from 0 (left) to 65535 (right)."""
    row = np.round(np.linspace(0, 65535, width)).astype(np.uint16)
    data = encode(Image.fromarray(np.tile(row, (height, 1))), "PNG")
    assert data[24] == 16, "Pillow did not write a 16-bit PNG"  # IHDR bit depth
    return data


def grey16_expected(x: int, width: int = 64) -> int:
    return round(round(x / (width - 1) * 65535) / 65535 * 255)


def palette_png_with_transparency() -> bytes:
    """8x8 palette PNG: left half red, right half palette index 0 = black, marked transparent."""
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    image.paste(1, (0, 0, 4, 8))
    return encode(image, "PNG", transparency=0)


def colour_key_png(mode: str) -> bytes:
    """Grey ("L") or RGB PNG whose right half is the tRNS key colour black."""
    if mode == "L":
        image = Image.new("L", (8, 8), 0)
        image.paste(200, (0, 0, 4, 8))
        return encode(image, "PNG", transparency=0)
    image = Image.new("RGB", (8, 8), (0, 0, 0))
    image.paste((10, 200, 10), (0, 0, 4, 8))
    return encode(image, "PNG", transparency=(0, 0, 0))


def animated_gif() -> bytes:
    """Two 10x6 frames: red, then blue. Only the first may be used."""
    frames = [Image.new("RGB", (10, 6), RED), Image.new("RGB", (10, 6), BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def exif_rotated_jpeg() -> bytes:
    """Stored 64 wide x 32 high with a red top-left quadrant, EXIF orientation 6.

    Orientation 6 means "rotate 90 degrees clockwise to display": shown upright the image is
    32 wide x 64 high and the red quadrant is at the top *right* (x >= 16, y < 32). A counter-
    clockwise turn would put it bottom left, a transpose top left, no rotation keeps it 64x32.
    """
    image = Image.new("RGB", (64, 32), WHITE)
    image.paste(RED, (0, 0, 32, 16))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "JPEG", exif=exif.tobytes(), quality=95)


def cmyk_jpeg() -> bytes:
    """24x16 CMYK JPEG: left half red ink (0, 255, 255, 0), right half blue (255, 255, 0, 0)."""
    image = Image.new("CMYK", (24, 16), (255, 255, 0, 0))
    image.paste((0, 255, 255, 0), (0, 0, 12, 16))
    return encode(image, "JPEG", quality=95)


def apple_double() -> bytes:
    """What macOS writes as `._name` on non-Mac disks: resource fork, not the image."""
    return b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 64


# --- building the folder -----------------------------------------------------------------------


def chmod_locks_files() -> bool:
    """True where chmod 000 keeps us out (POSIX, not root)."""
    return hasattr(os, "geteuid") and os.geteuid() != 0


def _symlink(link: Path, target: str, directory: bool = False) -> bool:
    """Make a symbolic link; False where the platform refuses (Windows without privilege)."""
    try:
        link.symlink_to(target, target_is_directory=directory)
    except (OSError, NotImplementedError):
        return False
    return True


def build_messy_folder(root: Path) -> ExpectedCorpus:
    """Write the messy dataset under `root` (created) and return what a scan must find."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    make_shapes_dataset(root, per_class=SHAPES_PER_CLASS, size=SHAPE_SIZE, classes=SHAPE_CLASSES)
    expected = ExpectedCorpus(root=root)
    for label in SHAPE_CLASSES:
        for path in sorted((root / label).iterdir()):
            expected.usable[path] = ExpectedImage(label, (SHAPE_SIZE, SHAPE_SIZE))

    def write(case: str, relative: str, data: bytes) -> Path:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expected.cases[case] = path
        return path

    def problem(case: str, relative: str, data: bytes, reason: str) -> None:
        expected.reasons[write(case, relative, data)] = reason

    def usable(case: str, relative: str, data: bytes, image: ExpectedImage) -> None:
        expected.usable[write(case, relative, data)] = image

    def silent(case: str, relative: str, data: bytes) -> None:
        expected.silent.add(write(case, relative, data))

    cyr, chi, ara = (root / name for name in SHAPE_CLASSES)
    png = encode(noise_image(seed=1), "PNG")
    jpeg = encode(noise_image(seed=2), "JPEG", quality=90)
    webp = encode(noise_image(seed=3), "WEBP", quality=80)
    small_png = encode(two_halves(12, 8), "PNG")

    # Files the scan must skip, each with its reason.
    problem("zero_byte_jpg", f"{CYRILLIC}/empty.jpg", b"", EMPTY_FILE)
    problem("truncated_png", f"{CYRILLIC}/cut in half.png", png[: len(png) // 2], CORRUPT)
    problem("truncated_jpeg", f"{CHINESE}/cut in half.jpg", jpeg[: len(jpeg) // 2], CORRUPT)
    problem("jpeg_cut_inside_header", f"{CHINESE}/header only.jpg", jpeg[:100], CORRUPT)
    problem("truncated_webp", f"{ARABIC}/cut.webp", webp[: len(webp) // 2], CORRUPT)
    problem("text_named_png", f"{ARABIC}/notes.png", b"my shopping list\n" * 20, NOT_AN_IMAGE)
    problem(
        "png_with_text_chunk_bomb", f"{CYRILLIC}/comment bomb.png", text_chunk_bomb_png(), CORRUPT
    )
    problem("png_over_179_megapixels", f"{CHINESE}/huge.png", huge_png(), TOO_LARGE)
    problem("text_file", f"{CYRILLIC}/labels.txt", b"cat\ndog\n", "not an image file type (.txt)")
    problem(
        "no_extension", f"{CHINESE}/README", b"read me", "not an image file type (no extension)"
    )
    problem("stray_top_level_image", "stray photo.jpg", jpeg, STRAY)
    problem("stray_top_level_text", "notes.txt", b"hello", STRAY)
    problem("only_file_of_broken_class", "broken/photo.jpg", b"<html>404</html>", NOT_AN_IMAGE)

    pipe = cyr / "pipe.png"
    if hasattr(os, "mkfifo"):
        os.mkfifo(pipe)  # opening it for reading blocks until someone writes
        expected.cases["named_pipe_png"] = pipe
        expected.reasons[pipe] = NOT_AN_IMAGE
    else:
        expected.not_built.add("named_pipe_png")

    loop_a, loop_b = ara / "loop a.jpg", ara / "loop b.jpg"
    dangling = ara / "moved away.png"
    if _symlink(loop_a, loop_b.name) and _symlink(loop_b, loop_a.name):
        expected.cases["file_link_loop"] = loop_a
        for path in (loop_a, loop_b):
            expected.reasons[path] = f"cannot be read ({os.strerror(errno.ELOOP)})"
    else:
        expected.not_built.add("file_link_loop")
    if _symlink(dangling, "no such file.png"):
        expected.cases["dangling_link"] = dangling
        expected.reasons[dangling] = f"cannot be read ({os.strerror(errno.ENOENT)})"
    else:
        expected.not_built.add("dangling_link")

    # Files the scan must accept, converted the way a person would expect to see them.
    usable(
        "cmyk_jpeg",
        f"{CYRILLIC}/cmyk.jpg",
        cmyk_jpeg(),
        ExpectedImage(CYRILLIC, (24, 16), (PixelFact(4, 8, RED, 16), PixelFact(20, 8, BLUE, 16))),
    )
    usable(
        "png_16bit_grey",
        f"{CYRILLIC}/depth 16 bit.png",
        png_16bit_grey(),
        ExpectedImage(
            CYRILLIC,
            (64, 4),
            tuple(PixelFact(x, 1, (grey16_expected(x),) * 3, 1) for x in (0, 16, 32, 48, 63)),
        ),
    )
    usable(
        "palette_png_transparent",
        f"{CYRILLIC}/palette transparent.png",
        palette_png_with_transparency(),
        ExpectedImage(CYRILLIC, (8, 8), (PixelFact(1, 4, RED), PixelFact(6, 4, WHITE))),
    )
    usable(
        "grey_png_colour_key",
        f"{CYRILLIC}/grey keyed.png",
        colour_key_png("L"),
        ExpectedImage(CYRILLIC, (8, 8), (PixelFact(1, 1, (200, 200, 200)), PixelFact(6, 1, WHITE))),
    )
    usable(
        "rgb_png_colour_key",
        f"{CYRILLIC}/rgb keyed.png",
        colour_key_png("RGB"),
        ExpectedImage(CYRILLIC, (8, 8), (PixelFact(1, 1, (10, 200, 10)), PixelFact(6, 1, WHITE))),
    )
    usable(
        "animated_gif",
        f"{CHINESE}/animated.gif",
        animated_gif(),
        ExpectedImage(CHINESE, (10, 6), (PixelFact(5, 3, RED),)),
    )
    usable(
        "jpeg_exif_orientation_6",
        f"{CHINESE}/phone photo.jpg",
        exif_rotated_jpeg(),
        ExpectedImage(
            CHINESE,
            (32, 64),
            (
                PixelFact(24, 16, RED, 24),
                PixelFact(8, 16, WHITE, 24),
                PixelFact(8, 48, WHITE, 24),
                PixelFact(24, 48, WHITE, 24),
            ),
        ),
    )
    usable(
        "jpeg_6000x4000",
        f"{CHINESE}/camera 6000x4000.jpg",
        encode(two_halves(6000, 4000), "JPEG", quality=85),
        ExpectedImage(
            CHINESE,
            (6000, 4000),
            (PixelFact(4, 32, RED, 8), PixelFact(59, 32, BLUE, 8)),
            load_size=64,
        ),
    )
    usable(
        "one_pixel_png",
        f"{CHINESE}/one pixel.png",
        encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"),
        ExpectedImage(CHINESE, (1, 1), (PixelFact(0, 0, (10, 20, 30)),)),
    )
    usable(
        "webp_lossless",
        f"{ARABIC}/lossless.webp",
        encode(two_halves(12, 8), "WEBP", lossless=True),
        ExpectedImage(ARABIC, (12, 8), (PixelFact(1, 1, RED), PixelFact(10, 6, BLUE))),
    )
    usable(
        "png_named_jpg",
        f"{ARABIC}/really a png.jpg",
        small_png,
        ExpectedImage(ARABIC, (12, 8), (PixelFact(1, 1, RED), PixelFact(10, 6, BLUE))),
    )
    usable(
        "upper_case_extension",
        f"{ARABIC}/IMG_0001.JPEG",
        encode(two_halves(16, 16), "JPEG", quality=95),
        ExpectedImage(ARABIC, (16, 16), (PixelFact(2, 8, RED, 16), PixelFact(13, 8, BLUE, 16))),
    )
    usable(
        "nested_two_deep",
        f"{ARABIC}/2019/summer/nested.png",
        small_png,
        ExpectedImage(ARABIC, (12, 8), (PixelFact(1, 1, RED),)),
    )
    usable(
        "cyrillic_name_with_space",
        f"{CYRILLIC}/фото кота.png",
        small_png,
        ExpectedImage(CYRILLIC, (12, 8)),
    )
    usable(
        "chinese_name_with_space",
        f"{CHINESE}/猫 图片.png",
        small_png,
        ExpectedImage(CHINESE, (12, 8)),
    )
    usable(
        "arabic_name_with_space",
        f"{ARABIC}/صورة قطة.png",
        small_png,
        ExpectedImage(ARABIC, (12, 8)),
    )

    # A file nobody but its owner (and root) may read.
    locked = write("unreadable_png", f"{ARABIC}/locked.png", small_png)
    locked.chmod(0)
    if chmod_locks_files():
        expected.reasons[locked] = UNREADABLE
    else:
        expected.usable[locked] = ExpectedImage(ARABIC, (12, 8), (PixelFact(1, 1, RED),))

    # What operating systems leave behind: never an image, never worth a word.
    silent("ds_store_top", ".DS_Store", b"\x00\x00\x00\x01Bud1" + b"\x00" * 40)
    silent("ds_store_in_class", f"{CYRILLIC}/.DS_Store", b"\x00\x00\x00\x01Bud1" + b"\x00" * 40)
    silent("thumbs_db", f"{CHINESE}/Thumbs.db", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40)
    silent("desktop_ini", f"{ARABIC}/desktop.ini", b"[.ShellClassInfo]\r\n")
    silent("appledouble_jpg", f"{CHINESE}/._phone photo.jpg", apple_double())
    silent("image_in_dot_folder", f"{CYRILLIC}/.thumbnails/small.png", small_png)
    silent("dot_folder_top_level", ".cache/class/hidden.png", small_png)

    # Folder links that lead back up: following them would never end (or file every image twice).
    for case, link, target in (
        ("dir_link_to_itself", cyr / "again", "."),
        ("dir_link_to_parent", chi / "up", ".."),
        ("top_level_link_to_root", root / "everything", "."),
    ):
        if _symlink(link, target, directory=True):
            expected.cases[case] = link
        else:
            expected.not_built.add(case)

    # Classes that cannot take part.
    (root / "empty class").mkdir()
    (root / "only hidden files").mkdir()
    (root / "only hidden files" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    expected.silent.add(root / "only hidden files" / ".DS_Store")
    single = write("single_image", "single/only one.png", small_png)
    expected.in_excluded_classes.add(single)
    expected.excluded_classes = dict(EXCLUDED_CLASSES)
    return expected


# --- proving the folder is only read -----------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot_folder(root: Path) -> dict[str, tuple]:
    """Every entry below `root` (links not followed): kind, mode, size, mtime and content hash."""
    root = Path(root)
    entries: dict[str, tuple] = {}
    info = root.lstat()
    entries["."] = ("dir", info.st_mode, info.st_mtime_ns)
    for current, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(current) / name
            info = path.lstat()
            key = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                entries[key] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                entries[key] = ("dir", info.st_mode, info.st_mtime_ns)
            elif stat.S_ISREG(info.st_mode):
                content = _sha256(path) if os.access(path, os.R_OK) else "unreadable"
                entries[key] = ("file", info.st_mode, info.st_size, info.st_mtime_ns, content)
            else:  # a named pipe: never opened here either
                entries[key] = ("other", info.st_mode, info.st_mtime_ns)
    return entries


def describe_changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """Plain lines naming every entry that appeared, disappeared or changed."""
    lines = [f"appeared: {k}" for k in sorted(after.keys() - before.keys())]
    lines += [f"disappeared: {k}" for k in sorted(before.keys() - after.keys())]
    lines += [
        f"changed: {k}: {before[k]} -> {after[k]}"
        for k in sorted(before.keys() & after.keys())
        if before[k] != after[k]
    ]
    return lines


@contextlib.contextmanager
def folder_unchanged(root: Path) -> Iterator[None]:
    """Fail if anything below `root` is created, deleted, renamed, rewritten or re-permissioned."""
    before = snapshot_folder(root)
    yield
    changes = describe_changes(before, snapshot_folder(root))
    if changes:
        raise AssertionError("the folder was changed:\n" + "\n".join(changes))


# --- guards ------------------------------------------------------------------------------------


def call_with_timeout(function: Callable[[], T], seconds: float) -> T:
    """Run `function` in a thread; raise TimeoutError if it has not returned in `seconds`."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(f"still running after {seconds} s (a loop or a blocking read?)")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


@contextlib.contextmanager
def world_traversable_dir() -> Iterator[Path]:
    """A fresh folder that any user can enter (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="finetune-gui-perm-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for current, dirs, _files in os.walk(path):
            for name in dirs:
                os.chmod(os.path.join(current, name), 0o755)
        shutil.rmtree(path)


@contextlib.contextmanager
def without_root_privileges() -> Iterator[None]:
    """As root, act as user 'nobody' for the block (so chmod 000 bites); otherwise do nothing."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        yield
        return
    try:
        import pwd

        nobody = pwd.getpwnam("nobody").pw_uid
    except (ImportError, KeyError):
        nobody = 65534
    os.seteuid(nobody)
    try:
        yield
    finally:
        os.seteuid(0)
