"""Documents as page images with a tiny random ColPali (built here, nothing downloaded).

Random weights rank at random, so these tests check *mechanics*: the stored patch
embeddings give the model's own scores, a generated PDF goes through every stage, both
backends and both faces, and bad input is refused with nothing changed.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("pypdfium2", reason="pip install 'colrank[images]'")

from colrank import ColrankConfig, ColrankIndex
from colrank.errors import InvalidImageError, InvalidInputError
from colrank.models.visual import VisualEncoder
from colrank.pages import page_image, pdf_pages
from colrank.samples import PATCHES, tiny_colpali, write_pdf

PAGES = [
    "Quarterly revenue grew by twelve percent in the third quarter.",
    "The cat sat on the mat beside the window.",
    "",  # a scan: no text
    "Mitochondria produce most of the energy of the cell.",
]
QUERY = "revenue growth in the third quarter"


@pytest.fixture(scope="session")
def colpali_dir(tmp_path_factory) -> str:
    return tiny_colpali(tmp_path_factory.mktemp("tiny-colpali") / "model")


@pytest.fixture(scope="session")
def visual_config(colpali_dir):
    return ColrankConfig.offline(
        models={"colbert_model": colpali_dir},
        runtime={
            "device": "cpu",
            "show_progress": False,
            "maxsim_precision": "float32",
            "dtype": "float32",
        },
        token_store={"codec": "float32"},
    )


@pytest.fixture(scope="session")
def pdf_path(tmp_path_factory):
    return write_pdf(tmp_path_factory.mktemp("pdf") / "report.pdf", PAGES)


@pytest.fixture
def page_index(visual_config, pdf_path):
    index = ColrankIndex(visual_config)
    index.add_pdf(pdf_path, {"collection": "reports"})
    return index


def _model_scores(encoder: VisualEncoder, query: str, images: list) -> np.ndarray:
    """The model's own retrieval scoring: its forward pass and ``score_retrieval``."""
    processor, model = encoder.processor, encoder.model
    docs = {k: v for k, v in processor.process_images(images=images).items() if k != "labels"}
    queries = processor.process_queries(text=[query])
    with torch.no_grad():
        doc_embeddings = model(**docs).embeddings
        query_embeddings = model(**queries).embeddings
    return processor.score_retrieval(list(query_embeddings), list(doc_embeddings))[0].numpy()


def test_pdf_pages_carry_text_image_and_place(pdf_path):
    pages = pdf_pages(pdf_path)
    assert [p.text for p in pages] == [t.strip() for t in PAGES]
    assert [p.metadata["page"] for p in pages] == [1, 2, 3, 4]
    assert [p.metadata["has_text"] for p in pages] == [True, True, False, True]
    assert {p.metadata["source"] for p in pages} == {str(pdf_path)}
    assert len({p.image.tobytes() for p in pages}) == 4  # each page renders differently
    assert page_image(pages[2].metadata).tobytes() == pages[2].image.tobytes()


def test_stored_patches_give_the_models_own_scores(page_index, pdf_path):
    encoder = page_index.colbert_encoder
    assert isinstance(encoder, VisualEncoder)
    images = [p.image for p in pdf_pages(pdf_path)]
    expected = _model_scores(encoder, QUERY, images)
    hits = page_index.search(QUERY, k=4, first_stage="visual", rerank_fusion="none")
    by_page = {h.metadata["page"]: h.colbert_score for h in hits}
    ours = np.array([by_page[n] for n in (1, 2, 3, 4)])
    assert np.abs(ours - expected).max() <= 1e-4
    with page_index.backend.read() as view:  # one row per patch and prompt token
        stored = view.token_embeddings(sorted(view.iids_for(page_index.ids()).values()))
    assert all(len(t) >= PATCHES for t in stored)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_three_stages_over_a_pdf(page_index, tiny_cross_encoder):
    hits = page_index.search(QUERY, k=3, candidates=4)
    first = hits[0]
    assert first.metadata["page"] == 1  # the only page sharing words with the query
    assert first.dense_score is not None and first.bm25_score is not None
    assert all(h.colbert_score is not None for h in hits)
    assert first.metadata["collection"] == "reports"
    page_index.config.search.cross_encoder_model = tiny_cross_encoder
    try:
        crossed = page_index.search(QUERY, k=2, candidates=4)
    finally:
        page_index.config.search.cross_encoder_model = None
    assert all(h.cross_encoder_score is not None for h in crossed)
    assert [h.score for h in crossed] == [h.cross_encoder_score for h in crossed]


def test_a_page_without_text_is_found_by_the_visual_first_stage(page_index):
    textless = {h.id for h in page_index.search("anything at all", k=4, first_stage="visual")}
    assert any(i.endswith("#3") for i in textless)
    hits = page_index.search("anything", k=4, first_stage="visual", filter={"has_text": False})
    assert [h.metadata["page"] for h in hits] == [3]
    assert hits[0].score == pytest.approx(hits[0].colbert_score / len(_query_tokens(page_index)))


def _query_tokens(index) -> np.ndarray:
    return index.colbert_encoder.encode_queries(["anything"])[0]


def test_save_load_gives_the_same_hits(page_index, tmp_path):
    before = page_index.search(QUERY, k=4)
    page_index.save(tmp_path / "pages")
    loaded = ColrankIndex.load(tmp_path / "pages", page_index.config)
    assert isinstance(loaded.colbert_encoder, VisualEncoder)
    assert isinstance(
        ColrankIndex.load(tmp_path / "pages", trust_models=True).colbert_encoder, VisualEncoder
    )
    after = loaded.search(QUERY, k=4)
    assert [(h.id, h.score) for h in after] == [(h.id, h.score) for h in before]


def test_postgres_backend_ranks_pages_as_the_local_one(
    visual_config, pdf_path, page_index, postgres_url
):
    remote = ColrankIndex.open(postgres_url, "visual_pages", visual_config)
    try:
        remote.add_pdf(pdf_path, {"collection": "reports"})
        for stage in ("hybrid", "visual"):
            local = page_index.search(QUERY, k=4, first_stage=stage)
            there = remote.search(QUERY, k=4, first_stage=stage)
            assert [h.id for h in there] == [h.id for h in local]
            assert np.allclose([h.score for h in there], [h.score for h in local], atol=1e-5)
    finally:
        remote.delete(remote.ids(), missing="ignore")
        remote.close()


def test_images_from_paths_bytes_and_pil(visual_config, tmp_path):
    index = ColrankIndex(visual_config)
    path = tmp_path / "chart.png"
    Image.new("RGB", (64, 48), "red").save(path)
    buffer = io.BytesIO()
    Image.new("RGB", (48, 64), "blue").save(buffer, format="PNG")
    ids = index.add_images(
        [str(path), buffer.getvalue(), Image.new("RGB", (50, 50), "green")],
        texts=["a red chart", None, "green"],
        ids=["path", "bytes", "pil"],
    )
    assert ids == ["path", "bytes", "pil"]
    docs = {d.id: d for d in index.get(ids)}
    assert docs["path"].metadata["source"] == str(path)
    assert docs["bytes"].text == "" and docs["bytes"].metadata["has_text"] is False
    assert index.stats()["tokens"] >= 3 * PATCHES


def test_pages_are_batched_by_patches_and_back_off_on_oom(visual_config, colpali_dir):
    """A batch holds at most token_budget patches; an out-of-memory error halves it."""
    base = VisualEncoder.load(colpali_dir, visual_config.runtime)
    images = [Image.new("RGB", (40, 40), (i * 30, 0, 0)) for i in range(6)]
    whole = base.encode_images(images)
    budget = visual_config.runtime.model_copy(update={"token_budget": 4 * PATCHES})

    class Counting:
        def __init__(self) -> None:
            self.sizes: list[int] = []
            self.failed = False

        def __getattr__(self, name):
            return getattr(base.processor, name)

        def process_images(self, images, **kwargs):
            self.sizes.append(len(images))
            if len(images) > 2 and not self.failed:
                self.failed = True
                raise RuntimeError("CUDA out of memory (simulated)")
            return base.processor.process_images(images=images, **kwargs)

    counting = Counting()
    encoder = VisualEncoder(base.model, counting, budget, base.name)
    tokens = encoder.encode_images(images)
    assert counting.sizes[0] == 4  # 4 pages of 16 patches fill the budget of 64
    assert counting.failed and max(counting.sizes[1:]) <= 2  # halved, and capped after
    assert sum(counting.sizes[1:]) == len(images)
    for mine, reference in zip(tokens, whole, strict=True):
        assert np.allclose(mine, reference, atol=1e-5)


def test_pooling_keeps_fewer_patches(visual_config, pdf_path):
    config = ColrankConfig.model_validate(
        {**visual_config.model_dump(), "token_store": {"codec": "float32", "pool_factor": 2}}
    )
    index = ColrankIndex(config)
    index.add_pdf(pdf_path)
    full = ColrankIndex(visual_config)
    full.add_pdf(pdf_path)
    assert index.stats()["tokens"] < full.stats()["tokens"]
    assert len(index.search(QUERY, k=2, first_stage="visual")) == 2


# ------------------------------------------------------------------ bad input
def test_corrupt_image_or_pdf_changes_nothing(page_index, tmp_path):
    before = page_index.ids()
    with pytest.raises(InvalidImageError, match="not a readable image"):
        page_index.add_images([Image.new("RGB", (9, 9)), b"\x89PNG not really"])
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not a pdf")
    with pytest.raises(InvalidImageError, match="as a PDF"):
        page_index.add_pdf(broken)
    with pytest.raises(InvalidImageError, match="cannot read image"):
        page_index.add_images([tmp_path / "missing.png"])
    assert page_index.ids() == before


def test_an_image_given_to_a_text_index_is_refused(tiny_index, pdf_path):
    before = tiny_index.ids()
    with pytest.raises(InvalidImageError, match="text model"):
        tiny_index.add_images([Image.new("RGB", (20, 20))])
    with pytest.raises(InvalidImageError, match="text model"):
        tiny_index.add_pdf(pdf_path)
    assert tiny_index.ids() == before


def test_text_given_to_a_visual_index_is_refused(page_index):
    before = page_index.ids()
    with pytest.raises(InvalidImageError, match="visual model"):
        page_index.add(["just some text"])
    assert page_index.ids() == before


def test_a_text_query_over_pages_without_text_says_what_to_do(visual_config, tmp_path):
    scans = write_pdf(tmp_path / "scans.pdf", ["", ""])
    index = ColrankIndex(visual_config)
    index.add_pdf(scans)
    with pytest.raises(InvalidInputError, match="first_stage='visual'"):
        index.search("where is the invoice total?")
    assert len(index.search("where is the invoice total?", k=2, first_stage="visual")) == 2
    assert len(index) == 2


def test_rerank_scores_stored_pages_and_refuses_outside_ones(page_index):
    from colrank import Document

    hits = page_index.search(QUERY, k=4, candidates=4)
    docs = [Document(h.text, h.id, h.metadata) for h in hits]
    again = {h.id: h.score for h in page_index.rerank(QUERY, docs)}
    assert again == pytest.approx({h.id: h.score for h in hits}, abs=1e-6)
    with pytest.raises(InvalidImageError, match="visual model"):
        page_index.rerank(QUERY, [Document("a page that is not stored", "elsewhere")])
