"""Writing page images into a visual index: ``add_images``, ``add_pdf``, ``add_files``.

Each page is one document: its text (extracted from the PDF, or given; may be empty)
goes to the dense and BM25 first stage and is returned in hits, its image is encoded
by the index's ColPali-family model into patch embeddings stored in the token store,
and its metadata says where the image came from (``source``, ``page``, ``has_text``),
so a hit can be shown as the page (:func:`colrank.pages.page_image`). Images
themselves are not stored. Like :meth:`~colrank.index.ColrankIndex.add`, a write is all
or nothing: a bad image anywhere refuses the whole call before anything is written.

Example:
    >>> index.add_pdf("report.pdf")                    # doctest: +SKIP
    ['report.pdf#1', 'report.pdf#2']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colrank.errors import EmptyCorpusError, InvalidImageError, InvalidInputError
from colrank.pages import ImageSource, Page, as_page, pages_from_files, pdf_pages
from colrank.store.base import DocumentRows, OnConflict, WriteBatch, WriteResult
from colrank.validation import check_ids, check_metadatas

if TYPE_CHECKING:
    from colrank.config import ColrankConfig
    from colrank.models.pair import EncoderPair
    from colrank.store.base import StorageBackend


class PageWrites:
    """The page-image writes of :class:`~colrank.index.ColrankIndex` (a mixin)."""

    config: ColrankConfig
    encoders: EncoderPair
    backend: StorageBackend

    def _write(self, batch: WriteBatch) -> WriteResult:  # provided by ColrankIndex
        raise NotImplementedError

    def add_images(
        self,
        images: Sequence[ImageSource | Page],
        texts: Sequence[str | None] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str] | None = None,
        *,
        on_conflict: OnConflict = "error",
        progress: bool | None = None,
    ) -> list[str]:
        """Index page images (paths, bytes, PIL images or :class:`~colrank.pages.Page`).

        Args:
            images: one page each.
            texts: each page's text for the first stage (None or "": no text).
            metadatas: one JSON-serialisable dict per page (a path adds ``source``).
            ids: unique string ids (default: the source path, ``#page`` for a PDF page,
                or a random UUID).
            on_conflict: ``"error"`` or ``"replace"``, as in ``add``.
            progress: show progress bars (default: the config's ``show_progress``).

        Raises:
            InvalidImageError: an unreadable image, or an index whose reranker is a
                text model (nothing is written).
        """
        if isinstance(images, (str, bytes, Path)) or not isinstance(images, Sequence):
            raise InvalidInputError("images must be a list (wrap a single image in a list)")
        if not images:
            raise EmptyCorpusError("no images given; pass at least one page")
        self._check_visual()
        if texts is not None and len(texts) != len(images):
            raise InvalidInputError("texts must have one entry per image")
        metas = metadatas if metadatas is not None else [None] * len(images)
        if isinstance(metas, Mapping) or len(metas) != len(images):
            raise InvalidInputError(f"metadatas must be a list of {len(images)} dicts")
        pages = [
            as_page(image, None if texts is None else texts[i], metas[i])
            for i, image in enumerate(images)
        ]
        return self.add_pages(pages, ids, on_conflict=on_conflict, progress=progress)

    def add_pages(
        self,
        pages: Sequence[Page],
        ids: Sequence[str] | None = None,
        *,
        on_conflict: OnConflict = "error",
        progress: bool | None = None,
    ) -> list[str]:
        """Index :class:`~colrank.pages.Page` objects (e.g. from ``pdf_pages``)."""
        if not pages:
            raise EmptyCorpusError("no pages given")
        self._check_visual()
        for i, page in enumerate(pages):
            if not isinstance(page, Page):
                raise InvalidImageError(f"pages[{i}] is a {type(page).__name__}, not a Page")
        metas = check_metadatas([dict(p.metadata) for p in pages], len(pages))
        doc_ids = check_ids(ids, len(pages)) if ids is not None else _page_ids(pages)
        texts = [p.text for p in pages]
        vectors, tokens = self.encoders.encode_pages(
            texts,
            [p.image for p in pages],
            pool_factor=self.backend.info.pool_factor,
            progress=progress,
        )
        rows = DocumentRows(doc_ids, texts, metas, vectors, tokens)
        self._write(WriteBatch(upserts=rows, on_conflict=on_conflict))
        return doc_ids

    def add_pdf(
        self,
        source: str | Path | bytes,
        metadata: Mapping[str, Any] | None = None,
        *,
        on_conflict: OnConflict = "error",
        progress: bool | None = None,
    ) -> list[str]:
        """Index every page of a PDF (one document per page); returns the page ids."""
        self._check_visual()
        pages = [_with(p, metadata) for p in pdf_pages(source)]
        return self.add_pages(pages, on_conflict=on_conflict, progress=progress)

    def add_files(
        self,
        paths: Sequence[str | Path],
        *,
        on_conflict: OnConflict = "error",
        progress: bool | None = None,
    ) -> list[str]:
        """Index PDFs (a document per page) and image files (one each); all or nothing."""
        self._check_visual()
        return self.add_pages(pages_from_files(paths), on_conflict=on_conflict, progress=progress)

    def _check_visual(self) -> None:
        if not self.encoders.is_visual:
            raise InvalidImageError(
                f"this index reranks with the text model {self.encoders.names[1]!r}: it "
                "cannot store page images (make an index whose colbert_model is a "
                "ColPali-family model, see docs/visual.md)"
            )


def _with(page: Page, metadata: Mapping[str, Any] | None) -> Page:
    return Page(page.image, page.text, {**dict(metadata or {}), **page.metadata})


def _page_ids(pages: Sequence[Page]) -> list[str]:
    import uuid

    out = []
    for page in pages:
        source = page.metadata.get("source")
        if source is None:
            out.append(uuid.uuid4().hex)
        elif "page" in page.metadata:
            out.append(f"{source}#{page.metadata['page']}")
        else:
            out.append(str(source))
    if len(set(out)) != len(out):  # the same file twice: ids would collide
        raise InvalidInputError("the same file is given twice; pass ids to tell them apart")
    return out


__all__ = ["PageWrites"]
