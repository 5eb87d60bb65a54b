"""Frame sources on real files: videos written with cv2.VideoWriter, folders of real pictures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop.sources import (
    CameraSource,
    ImageFolderSource,
    SourceError,
    VideoFileSource,
    list_cameras,
    open_source,
)


def write_video(path: Path, frames: int = 12, fps: float = 15.0, size: tuple[int, int] = (160, 120)) -> Path:
    """A video whose frame i is filled with grey level 10*i (so frames can be told apart)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 10 * i, dtype=np.uint8))
    writer.release()
    return path


def grey_level(frame: np.ndarray) -> int:
    return int(round(float(frame.mean()) / 10.0))


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.avi")


def test_video_file_plays_every_frame_then_ends(video: Path) -> None:
    with VideoFileSource(video) as source:
        assert source.fps == pytest.approx(15.0)
        assert source.frame_size == (160, 120)
        assert source.frame_count == 12
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
    assert [grey_level(f) for f in frames] == list(range(12))
    assert frames[0].shape == (120, 160, 3)


def test_video_file_loops_back_to_the_first_frame(video: Path) -> None:
    with VideoFileSource(video, loop=True) as source:
        levels = [grey_level(source.read()) for _ in range(30)]
    assert levels == [i % 12 for i in range(30)]


def test_video_file_that_is_not_a_video_names_the_file(tmp_path: Path) -> None:
    fake = tmp_path / "notes.avi"
    fake.write_text("this is text, not a video")
    with pytest.raises(SourceError, match=r"notes\.avi: not a video"):
        VideoFileSource(fake).open()


def test_missing_video_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"gone\.mp4: no such video file"):
        VideoFileSource(tmp_path / "gone.mp4").open()


def test_image_folder_shows_pictures_in_name_order_and_skips_broken_ones(tmp_path: Path) -> None:
    for name, level in (("b.png", 2), ("a.jpg", 1), ("c.bmp", 3)):
        cv2.imwrite(str(tmp_path / name), np.full((40, 50, 3), 10 * level, dtype=np.uint8))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "readme.txt").write_text("not a picture")
    with ImageFolderSource(tmp_path) as source:
        levels = []
        while (frame := source.read()) is not None:
            levels.append(grey_level(frame))
    assert levels == [1, 2, 3]
    assert [p.name for p in source.skipped] == ["broken.png"]


def test_image_folder_loops(tmp_path: Path) -> None:
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), 10 * i, dtype=np.uint8))
    with ImageFolderSource(tmp_path, loop=True) as source:
        assert [grey_level(source.read()) for _ in range(5)] == [0, 1, 0, 1, 0]


def test_empty_image_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no pictures in this folder"):
        ImageFolderSource(tmp_path).open()


@pytest.mark.parametrize(
    ("spec", "kind"),
    [("0", CameraSource), ("3", CameraSource), ("clip.avi", VideoFileSource), (".", ImageFolderSource)],
)
def test_open_source_understands_cameras_files_and_folders(video: Path, spec: str, kind: type) -> None:
    resolved = spec if spec.isdigit() else str(video.parent / spec)
    source = open_source(resolved, loop=True)
    assert isinstance(source, kind)
    if kind is CameraSource:
        assert source.index == int(spec)
    else:
        assert source.loop is True


def test_open_source_names_a_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nothing-here\.mp4: no such file or folder"):
        open_source(str(tmp_path / "nothing-here.mp4"))


def test_a_camera_that_is_not_there_says_so() -> None:
    index = 63
    assert index not in list_cameras(max_index=64)
    with pytest.raises(SourceError, match=f"No camera found at index {index}"):
        CameraSource(index).open()
