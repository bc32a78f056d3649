"""Documents as page images: an image file, image bytes, a PIL image, or each page of a PDF.

A :class:`Page` is what a visual index stores per document: the image (encoded into
patch embeddings by a ColPali-family model), the page's text (for the dense and BM25
first stage; empty for a scan) and metadata that says where the image came from
(``source``: the file, ``page``: the 1-based PDF page), so a hit can show it again
(:func:`page_image`). PDFs are read with ``pypdfium2`` (``pip install 'colrank[images]'``).
Nothing here keeps a file open, and bad input raises :class:`InvalidImageError`.

Example:
    >>> from PIL import Image
    >>> page = as_page(Image.new("RGB", (40, 30), "white"), text="A blank page.")
    >>> page.image.size, page.text, page.metadata
    ((40, 30), 'A blank page.', {'has_text': True})
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from PIL import Image, UnidentifiedImageError

from colrank.errors import InvalidImageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"})
PDF_DPI = 100  # a US letter page renders at 850 x 1100 pixels; the processors resize it anyway
ImageSource = Union[str, Path, bytes, Image.Image]  # noqa: UP007 - a runtime alias on 3.10


@dataclass(frozen=True)
class Page:
    """One page: its image, its text (may be empty) and where it came from."""

    image: Image.Image
    text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def load_image(source: ImageSource) -> Image.Image:
    """An RGB PIL image from a path, encoded bytes or a PIL image (decoded fully now).

    Raises:
        InvalidImageError: the file is missing or is not an image PIL can read.
    """
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    if isinstance(source, (str, Path)):
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise InvalidImageError(f"cannot read image {str(source)!r}: {exc}") from None
        name = str(source)
    elif isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "the image bytes"
    else:
        raise InvalidImageError(
            f"an image is a path, bytes or a PIL image, not {type(source).__name__}"
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidImageError(f"{name} is not a readable image: {exc}") from None


def as_page(
    source: ImageSource | Page, text: str | None = None, metadata: Mapping[str, Any] | None = None
) -> Page:
    """A :class:`Page` from an image source (a path is kept as ``metadata['source']``)."""
    if isinstance(source, Page):
        return source
    meta = dict(metadata or {})
    if isinstance(source, (str, Path)):
        meta.setdefault("source", str(source))
    if text is not None and not isinstance(text, str):
        raise InvalidImageError(f"a page's text must be a string, not {type(text).__name__}")
    body = (text or "").strip()
    meta.setdefault("has_text", bool(body))
    return Page(load_image(source), body, meta)


def pdf_pages(source: str | Path | bytes, *, dpi: int = PDF_DPI) -> list[Page]:
    """One :class:`Page` per page of a PDF: the rendered image and the extracted text.

    Raises:
        InvalidImageError: the file is missing or is not a PDF pdfium can open.
    """
    pdfium = _pdfium()
    name = "the PDF bytes" if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
        document = pdfium.PdfDocument(bytes(data))
    except (OSError, pdfium.PdfiumError) as exc:
        raise InvalidImageError(f"cannot open {name} as a PDF: {exc}") from None
    try:
        pages = [_page(pdfium, document, i, source, dpi) for i in range(len(document))]
    except pdfium.PdfiumError as exc:
        raise InvalidImageError(f"cannot render {name}: {exc}") from None
    finally:
        document.close()
    if not pages:
        raise InvalidImageError(f"{name} has no pages")
    return pages


def _page(pdfium: Any, document: Any, index: int, source: object, dpi: int = PDF_DPI) -> Page:
    page = document[index]
    try:
        text = page.get_textpage().get_text_range().strip()
        image = page.render(scale=dpi / 72).to_pil().convert("RGB")
    finally:
        page.close()
    meta: dict[str, Any] = {"page": index + 1, "has_text": bool(text)}
    if isinstance(source, (str, Path)):
        meta["source"] = str(source)
    return Page(image, text, meta)


def pages_from_files(paths: Iterable[str | Path], *, dpi: int = PDF_DPI) -> list[Page]:
    """Pages of PDFs (one per page) and image files (one each), in the given order."""
    pages: list[Page] = []
    for path in paths:
        suffix = Path(path).suffix.lower()
        if suffix == ".pdf":
            pages.extend(pdf_pages(path, dpi=dpi))
        elif suffix in IMAGE_SUFFIXES:
            pages.append(as_page(path))
        else:
            raise InvalidImageError(f"{str(path)!r} is neither a PDF nor an image")
    return pages


def page_files(folder: str | Path) -> list[Path]:
    """The PDFs and images under ``folder`` (recursively), sorted."""
    root = Path(folder)
    wanted = IMAGE_SUFFIXES | {".pdf"}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def page_image(metadata: Mapping[str, Any], *, dpi: int = PDF_DPI) -> Image.Image:
    """The image a hit's metadata points at (``source``, and ``page`` for a PDF)."""
    source = metadata.get("source")
    if not source:
        raise InvalidImageError("this document has no image source in its metadata")
    if "page" in metadata and str(source).lower().endswith(".pdf"):
        pdfium = _pdfium()
        try:
            document = pdfium.PdfDocument(str(source))
        except pdfium.PdfiumError as exc:
            raise InvalidImageError(f"cannot open {source!r} as a PDF: {exc}") from None
        try:
            return _page(pdfium, document, int(metadata["page"]) - 1, source, dpi).image
        finally:
            document.close()
    return load_image(source)


def _pdfium() -> Any:
    try:
        import pypdfium2
    except ImportError as exc:
        raise InvalidImageError(
            "reading PDFs needs pypdfium2: pip install 'colrank[images]'"
        ) from exc
    return pypdfium2


__all__ = [
    "IMAGE_SUFFIXES",
    "ImageSource",
    "Page",
    "as_page",
    "load_image",
    "page_files",
    "page_image",
    "pages_from_files",
    "pdf_pages",
]
