"""Frames to files: tile batches of frames, draw small overlays, write mp4 (imageio-ffmpeg) or gif.

Shared by `dreamgym record` and the play front end's recorder. imageio is imported only when a file
is written, so the runtime keeps its numpy/gymnasium/onnxruntime footprint; without it the error names
``pip install "dreamgym[video]"``.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from .errors import DependencyNotInstalled

# a 3x5 bitmap font for the overlays: digits, capitals, a few small letters and signs, so no font library
# is needed (a small letter without its own glyph is drawn as its capital)
_GLYPHS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001010010010",
    "8": "111101111101111",
    "9": "111101111001111",
    "-": "000000111000000",
    ".": "000000000000010",
    " ": "000000000000000",
    ":": "000010000010000",
    "r": "000110100100100",
    "t": "010111010010011",
    "s": "000011110001110",
    "e": "000111111100011",
    "p": "000111101111100",
    "R": "110101110101101",
    "S": "011100010001110",
    "T": "111010010010010",
    "E": "111100110100111",
    "A": "010101111101101",
    "L": "100100100100111",
    "D": "110101101101110",
    "M": "101111101101101",
    "=": "000111000111000",
    "|": "010010010010010",
    "/": "001001010100100",
    "x": "000101010101000",
    "+": "000010111010000",
    "_": "000000000000111",
    "B": "110101110101110",
    "C": "011100100100011",
    "F": "111100110100100",
    "G": "011100101101011",
    "H": "101101111101101",
    "I": "111010010010111",
    "J": "001001001101010",
    "K": "101101110101101",
    "N": "110101101101101",
    "O": "010101101101010",
    "P": "110101110100100",
    "Q": "010101101110011",
    "U": "101101101101111",
    "V": "101101101101010",
    "W": "101101101111101",
    "X": "101101010101101",
    "Y": "101101010010010",
    "Z": "111001010100111",
}


def draw_text(img: np.ndarray, text: str, x: int, y: int, color=(255, 255, 255), scale: int = 1) -> None:
    """Draw `text` into `img` (H, W, 3) in place with the built-in 3x5 font, over a dark box."""
    w = (4 * len(text) + 1) * scale
    h = 7 * scale
    y0, x0 = max(y - scale, 0), max(x - scale, 0)
    img[y0 : y0 + h, x0 : x0 + w] = (img[y0 : y0 + h, x0 : x0 + w] * 0.35).astype(img.dtype)
    for i, ch in enumerate(text):
        bits = _GLYPHS.get(ch) or _GLYPHS.get(ch.upper()) or _GLYPHS.get(ch.lower()) or _GLYPHS[" "]
        glyph = np.array([int(b) for b in bits], bool).reshape(5, 3)
        glyph = np.kron(glyph, np.ones((scale, scale), bool))
        gx, gy = x + i * 4 * scale, y
        region = img[gy : gy + glyph.shape[0], gx : gx + glyph.shape[1]]
        region[glyph[: region.shape[0], : region.shape[1]]] = color


def tile_origins(n: int, h: int, w: int, cols: int | None = None, pad: int = 2) -> list[tuple[int, int]]:
    """The top-left pixel (y, x) of each of `n` frames of h x w in `tile`'s grid."""
    cols = cols or int(np.ceil(np.sqrt(n)))
    return [((i // cols) * (h + pad), (i % cols) * (w + pad)) for i in range(n)]


def tile(frames: np.ndarray, cols: int | None = None, pad: int = 2, bg: int = 0) -> np.ndarray:
    """(N, H, W, 3) -> one image of a near-square grid (or `cols` columns) with `pad` pixels between."""
    frames = np.asarray(frames)
    n, h, w, c = frames.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), bg, np.uint8)
    for frame, (y, x) in zip(frames, tile_origins(n, h, w, cols, pad)):
        out[y : y + h, x : x + w] = frame
    return out


def upscale(img: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor (crisp pixels)."""
    return img if k == 1 else img.repeat(k, 0).repeat(k, 1)


def _imageio():
    try:
        import imageio.v2 as imageio
    except ImportError as e:
        raise DependencyNotInstalled('writing videos needs imageio; run `pip install "dreamgym[video]"`') from e
    return imageio


def _even(img: np.ndarray) -> np.ndarray:
    """Pad odd sides by one pixel: H.264 in yuv420p needs even frame sizes."""
    h, w = img.shape[:2]
    H, W = h + h % 2, w + w % 2
    if (H, W) == (h, w):
        return img
    out = np.zeros((H, W, img.shape[2]), img.dtype)
    out[:h, :w] = img
    return out


class VideoWriter:
    """Write frames to .mp4 or .gif. With ``background=True`` a thread does the encoding, so a caller
    (the play loop) never blocks on disk.

    Nothing lost, nothing half-written: frames go to a hidden `.NAME.part.mp4` beside the target, and
    `close()` (also on an exception or Ctrl-C, as a context manager) finishes the file and renames it to the
    target; a writer closed with no frame leaves no file. A process killed outright leaves only the `.part`
    file, never a broken file under the target's name. `close()` twice is a no-op."""

    def __init__(self, path: str | Path, fps: int = 30, background: bool = False):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".mp4", ".gif"):
            raise ValueError(f"video path {str(self.path)!r} must end in .mp4 or .gif")
        if not self.path.parent.exists():
            raise FileNotFoundError(
                f"folder {str(self.path.parent)!r} does not exist; create it or choose another path"
            )
        imageio = _imageio()
        self._part = self.path.with_name(f".{self.path.stem}.part{self.path.suffix}")
        self._closed = False
        self._error: Exception | None = None
        if suffix == ".mp4":
            try:
                import imageio_ffmpeg  # noqa: F401  (imageio's ffmpeg plugin needs it)
            except ImportError as e:
                raise DependencyNotInstalled(
                    'writing mp4 needs imageio-ffmpeg; run `pip install "dreamgym[video]"`'
                ) from e
            self._w = imageio.get_writer(
                self._part, fps=fps, codec="libx264", quality=8, macro_block_size=1, ffmpeg_log_level="error"
            )
        else:
            self._w = imageio.get_writer(self._part, mode="I", duration=1000.0 / fps, loop=0)
        self.mp4 = suffix == ".mp4"
        self.frames = 0
        self._q: queue.Queue | None = None
        if background:
            self._q = queue.Queue(maxsize=256)
            self._t = threading.Thread(target=self._drain, daemon=True)
            self._t.start()

    def _drain(self) -> None:
        # the encoder lives in this thread, where Ctrl-C (delivered to the main thread) never interrupts it
        while True:
            img = self._q.get()
            if img is None:
                return
            try:
                self._w.append_data(img)
            except Exception as e:  # noqa: BLE001 — kept for close(), which then names no file
                self._error = e
                return

    def write(self, img: np.ndarray) -> None:
        img = np.ascontiguousarray(img[..., :3], dtype=np.uint8)
        if self.mp4:
            img = _even(img)
        else:  # gif: 4 bits per channel, so flat regions stay flat and the file stays small
            img = (img & 0xF0) | 0x08
        self.frames += 1
        if self._q is not None:
            self._q.put(img.copy())
        else:
            self._w.append_data(img)

    def close(self) -> Path | None:
        """Finish the file and give it its name; returns the path, or None when no frame was written."""
        if self._closed:
            return self.path if self.path.exists() else None
        self._closed = True
        try:
            if self._q is not None:
                self._q.put(None)
                self._t.join()
        finally:
            self._w.close()
        if self._error is not None:  # the encoder failed: the .part file stays, the target is not written
            raise RuntimeError(f"encoding {self.path.name} failed: {self._error}") from self._error
        if self.frames == 0:
            self._part.unlink(missing_ok=True)
            return None
        os.replace(self._part, self.path)
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_video(path: str | Path, frames, fps: int = 30) -> Path:
    """Write an iterable of (H, W, 3) uint8 frames to .mp4 or .gif."""
    with VideoWriter(path, fps) as w:
        for f in frames:
            w.write(f)
    return Path(path)


def read_video(path: str | Path) -> np.ndarray:
    """All frames of an .mp4 or .gif as (T, H, W, 3) uint8."""
    imageio = _imageio()
    path = Path(path)
    if path.suffix.lower() == ".gif":
        frames = [np.asarray(f)[..., :3] for f in imageio.mimread(path, memtest=False)]
    else:
        with imageio.get_reader(path, format="FFMPEG") as r:
            frames = [np.asarray(f) for f in r.iter_data()]  # iter_data: the reader's length is unknown (inf)
    return np.stack(frames)
