"""Pascal VOC XML (labelImg, CVAT, Roboflow): ``Annotations/*.xml`` + ``JPEGImages/`` with splits from
``ImageSets/Main/SPLIT.txt``, or an ``.xml`` beside each picture; corners as labelme's continuous pixels."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from training.core.inputs import (
    MAX_ANNOTATION_BYTES,
    MAX_SMALL_FILE_BYTES,
    is_regular_file,
    read_bytes,
    read_text,
)
from training.data.errors import DataError
from training.data.formats.common import (
    SPLIT_ALIASES,
    LabelledPicture,
    _checked_box,
    _face_class,
    _files,
    _fmt,
    _Names,
    _number,
    _picture_size,
    _pictures,
    _place,
    _Reading,
    _split_folders,
    _write_text,
)
from training.data.pictures import IMAGE_EXTENSIONS


def _voc_xml(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return b"<annotation" in head


def _voc_files(root: Path) -> list[Path]:
    folders = [root / "Annotations", root, root / "images", *(folder for _split, folder in _split_folders(root))]
    return [path for folder in folders for path in _files(folder, (".xml",)) if _voc_xml(path)]


def _voc_evidence(root: Path) -> str | None:
    files = _voc_files(root)
    return f"Pascal VOC XML such as {files[0].relative_to(root)}" if files else None


def _voc_document(path: Path) -> ET.Element:
    data = read_bytes(path, max_bytes=MAX_SMALL_FILE_BYTES, error=DataError, what="annotation file")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DataError(path, f"not valid XML: {exc}") from None
    if root.tag != "annotation":
        raise DataError(path, f"not a Pascal VOC file: the root element is <{root.tag}>, not <annotation>")
    return root


def _voc_text(element: ET.Element, tag: str) -> str:
    child = element.find(tag)
    return (child.text or "").strip() if child is not None else ""


def _voc_picture(xml: Path, document: ET.Element, picture_folders: list[Path], reading: _Reading) -> Path:
    """The picture a VOC file labels: its <filename> (or the file's own name) in the folders given; one
    that is a link out of the source folder is refused (see :meth:`_Reading.picture`)."""
    file_name = Path(_voc_text(document, "filename")).name
    for folder in picture_folders:
        names = [file_name] if file_name else []
        names += [f"{xml.stem}{suffix}" for ext in IMAGE_EXTENSIONS for suffix in (ext, ext.upper())]
        for name in names:
            if is_regular_file(folder / name):
                return reading.picture(name, where=xml, base=folder)
    where = ", ".join(str(f) for f in picture_folders)
    raise DataError(xml, f"no picture for this label: {file_name or xml.stem + '.jpg'} is not in {where}")


def read_voc(root: Path, reading: _Reading | None = None) -> list[LabelledPicture]:
    """A Pascal VOC dataset: ``Annotations/`` + ``JPEGImages/`` (splits from ``ImageSets/Main``), or XML
    files beside the pictures (in the folder, ``images/`` or split folders)."""
    reading = reading or _Reading(root)
    groups: list[tuple[str | None, list[Path], list[Path]]] = []  # (split, XML files, picture folders)
    split_of: dict[str, str] = {}  # file stem -> split, from ImageSets/Main
    if (root / "Annotations").is_dir():
        pictures_dir = root / "JPEGImages" if (root / "JPEGImages").is_dir() else root / "images"
        xmls = _files(root / "Annotations", (".xml",))
        lists = root / "ImageSets" / "Main"
        for path in _files(lists, (".txt",)):
            split = SPLIT_ALIASES.get(path.stem.lower())
            if split is None:
                continue  # trainval.txt, class lists (face_train.txt): the plain split lists say it all
            text = read_text(path, max_bytes=MAX_ANNOTATION_BYTES, error=DataError, what="split list")
            for line in text.split("\n"):
                if line.strip():
                    split_of.setdefault(line.split()[0], split)
        groups.append((None, xmls, [pictures_dir]))
    else:
        for split, folder in _split_folders(root):
            groups.append((split, _files(folder, (".xml",)), [folder, folder / "images"]))
        if not groups:
            folder = root / "images" if (root / "images").is_dir() else root
            groups.append((None, _files(folder, (".xml",)) + (_files(root, (".xml",)) if folder != root else []),
                           [folder, root]))
    parsed: list[tuple[str | None, Path, ET.Element, Path]] = []
    unlabelled: dict[Path, str | None] = {}  # pictures without an XML: no face, as in labelme
    names: set[str] = set()
    for split, xmls, folders in groups:
        for folder in folders:
            unlabelled.update(dict.fromkeys(_pictures(folder), split))
        for xml in xmls:
            document = _voc_document(xml)
            picture = _voc_picture(xml, document, folders, reading)
            names.update(_voc_text(obj, "name") for obj in document.findall("object"))
            parsed.append((split, xml, document, picture))
    if not parsed:
        raise DataError(root, "no Pascal VOC XML files (Annotations/*.xml, or .xml beside the pictures)")
    for _split, _xml, _document, picture in parsed:
        unlabelled.pop(picture, None)
    faces = _face_class(root, [(name, name) for name in sorted(names)], names) or set()
    pictures = []
    for split, xml, document, picture in parsed:
        width, height = _picture_size(picture)
        size = document.find("size")
        if size is not None:
            try:
                claimed = (int(_number(_voc_text(size, "width") or 0)), int(_number(_voc_text(size, "height") or 0)))
            except (ValueError, OverflowError):
                raise DataError(xml, "<size> must hold finite numbers") from None
            if 0 not in claimed and claimed != (width, height):
                raise DataError(xml, f"labelled as {claimed[0]}x{claimed[1]} but {picture.name} is {width}x{height} "
                                     "(was it resized after labelling?)")
        boxes = []
        for number, obj in enumerate(document.findall("object"), 1):
            if _voc_text(obj, "name") not in faces:
                continue
            bndbox = obj.find("bndbox")
            try:
                corners = tuple(_number(_voc_text(bndbox, tag)) for tag in ("xmin", "ymin", "xmax", "ymax"))
            except (AttributeError, ValueError):
                raise DataError(xml, f"object {number}: <bndbox> needs numeric xmin, ymin, xmax, ymax") from None
            boxes.append(_checked_box(xml, f"object {number}", corners, width, height))
        pictures.append(LabelledPicture(picture, width, height, tuple(boxes),
                                        split if split is not None else split_of.get(xml.stem)))
    for picture, split in unlabelled.items():
        width, height = _picture_size(picture)
        pictures.append(LabelledPicture(picture, width, height, (),
                                        split if split is not None else split_of.get(picture.stem)))
    if split_of:
        unlisted = [p for p in pictures if p.split is None]
        if unlisted:
            raise DataError(unlisted[0].image, "not listed in any of ImageSets/Main/{train,val,test}.txt: "
                                               "add it to one, or remove it")
    return pictures


def _voc_xml_text(picture: LabelledPicture, name: str) -> str:
    annotation = ET.Element("annotation")
    ET.SubElement(annotation, "folder").text = "JPEGImages"
    ET.SubElement(annotation, "filename").text = name
    source = ET.SubElement(annotation, "source")
    ET.SubElement(source, "database").text = "FaceTracker"
    size = ET.SubElement(annotation, "size")
    ET.SubElement(size, "width").text = str(picture.width)
    ET.SubElement(size, "height").text = str(picture.height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(annotation, "segmented").text = "0"
    for box in picture.boxes:
        obj = ET.SubElement(annotation, "object")
        ET.SubElement(obj, "name").text = "face"
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
            ET.SubElement(bndbox, tag).text = _fmt(value)
    ET.indent(annotation)
    return ET.tostring(annotation, encoding="unicode") + "\n"


def write_voc_dataset(pictures: list[LabelledPicture], out: Path, link: bool = False) -> None:
    """``JPEGImages/`` + ``Annotations/*.xml`` (a no-face picture: no <object>) + ``ImageSets/Main/SPLIT.txt``."""
    names = _Names()  # one pictures folder for every split: names must not clash across splits
    listed: dict[str, list[str]] = {}
    for picture in pictures:
        name = names.take(picture.image)
        _place(picture.image, out / "JPEGImages" / name, link)
        _write_text(out / "Annotations" / f"{Path(name).stem}.xml", _voc_xml_text(picture, name))
        if picture.split:
            listed.setdefault(picture.split, []).append(Path(name).stem)
    for split, stems in listed.items():
        _write_text(out / "ImageSets" / "Main" / f"{split}.txt", "\n".join(stems) + "\n")
