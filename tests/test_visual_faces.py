"""The framework faces over a visual index: page images in, hits carrying the image out."""

from __future__ import annotations

import pytest
from PIL import Image

pytest.importorskip("pypdfium2", reason="pip install 'colrank[images]'")

from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery

from colrank import ColrankIndex
from colrank.errors import InvalidImageError
from colrank.integrations.langchain_store import ColrankVectorStore as LangChainStore
from colrank.integrations.llama_index import ColrankRerank, ColrankRetriever
from colrank.integrations.llama_index_store import ColrankVectorStore as LlamaStore
from colrank.samples import tiny_colpali, write_pdf

QUERY = "quarterly revenue"


@pytest.fixture(scope="module")
def visual_config(tmp_path_factory):
    from colrank import ColrankConfig

    model = tiny_colpali(tmp_path_factory.mktemp("colpali-faces") / "model")
    return ColrankConfig.offline(
        models={"colbert_model": model}, runtime={"device": "cpu", "show_progress": False}
    )


@pytest.fixture(scope="module")
def page_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("page-files")
    pdf = write_pdf(folder / "report.pdf", ["Quarterly revenue grew.", "", "Cats sleep a lot."])
    chart = folder / "chart.png"
    Image.new("RGB", (64, 40), "orange").save(chart)
    return pdf, chart


def test_llama_index_image_nodes_round_trip(visual_config, page_files):
    _, chart = page_files
    store = LlamaStore(ColrankIndex(visual_config))
    nodes = [
        ImageNode(id_="chart", image_path=str(chart), text="revenue chart", metadata={"k": 1}),
        ImageNode(id_="blank", image_path=str(chart), text=""),
    ]
    assert store.add(nodes) == ["chart", "blank"]
    found = store.query(VectorStoreQuery(query_str=QUERY, similarity_top_k=2))
    assert {n.node_id for n in found.nodes} == {"chart", "blank"}
    assert all(isinstance(n, ImageNode) and n.image_path == str(chart) for n in found.nodes)
    with pytest.raises(InvalidImageError, match="carries no image"):
        store.add([TextNode(id_="text-only", text="no image here")])
    assert len(store.client) == 2


def test_llama_index_image_node_refused_by_a_text_index(tiny_config, page_files):
    _, chart = page_files
    store = LlamaStore(config=tiny_config)
    with pytest.raises(InvalidImageError, match="text model"):
        store.add([ImageNode(id_="chart", image_path=str(chart), text="a chart")])
    assert len(store.client) == 0


def test_llama_index_retriever_and_postprocessor_over_pdf_pages(visual_config, page_files):
    pdf, chart = page_files
    index = ColrankIndex(visual_config)
    index.add_files([pdf, chart])
    retrieved = ColrankRetriever(index, similarity_top_k=4).retrieve(QUERY)
    assert len(retrieved) == 4
    assert all(isinstance(r.node, ImageNode) for r in retrieved)
    served = LlamaStore(index).get_nodes([r.node.node_id for r in retrieved])
    assert all(isinstance(n, ImageNode) for n in served)  # the store serves them as pages
    pages = {r.node.metadata.get("page"): r.node for r in retrieved}
    assert pages[1].metadata["source"] == str(pdf) and pages[1].image_path is None
    assert pages[None].image_path == str(chart)  # the image file itself
    reranked = ColrankRerank(index=index, top_n=2).postprocess_nodes(retrieved, QueryBundle(QUERY))
    assert len(reranked) == 2
    hits = {h.id: h.score for h in index.search(QUERY, k=4)}
    for r in reranked:  # stored pages: the postprocessor's score is the search's
        assert r.score == pytest.approx(hits[r.node.node_id], abs=1e-6)


def test_langchain_documents_referencing_images(visual_config, page_files):
    from langchain_core.documents import Document

    pdf, chart = page_files
    store = LangChainStore(ColrankIndex(visual_config))
    ids = store.add_documents(
        [
            Document(page_content="an orange revenue chart", metadata={"image_path": str(chart)}),
            Document(page_content="", metadata={"image_path": str(chart), "note": "scan"}),
        ],
        ids=["chart", "scan"],
    )
    assert ids == ["chart", "scan"]
    found = store.similarity_search(QUERY, k=2)
    assert {d.id for d in found} == {"chart", "scan"}
    assert all(d.metadata["image_path"] == str(chart) for d in found)
    with pytest.raises(InvalidImageError):
        store.add_documents([Document(page_content="text only")])
    assert len(store.index) == 2


def test_langchain_image_document_refused_by_a_text_index(tiny_config, page_files):
    from langchain_core.documents import Document

    _, chart = page_files
    store = LangChainStore(config=tiny_config)
    with pytest.raises(InvalidImageError, match="text model"):
        store.add_documents([Document(page_content="x", metadata={"image_path": str(chart)})])
    assert len(store.index) == 0


def test_retrieved_nodes_keep_scores_hidden_from_the_llm(visual_config, page_files):
    pdf, _ = page_files
    index = ColrankIndex(visual_config)
    index.add_pdf(pdf)
    result: list[NodeWithScore] = ColrankRetriever(index, similarity_top_k=1).retrieve(QUERY)
    node = result[0].node
    assert "colbert_score" in node.metadata
    assert "colbert_score" in node.excluded_llm_metadata_keys


def test_cli_indexes_a_folder_of_pdfs_and_images(visual_config, page_files, tmp_path, capsys):
    import json

    from colrank.cli import main

    pdf, _ = page_files
    folder = pdf.parent
    model = [
        "--dense-model",
        visual_config.models.dense_model,
        "--colbert-model",
        visual_config.models.colbert_model,
        "--device",
        "cpu",
        "--quiet",
    ]
    target = tmp_path / "pages-index"
    assert main(["index", str(folder), str(target), *model]) == 0
    assert "indexed 4 documents" in capsys.readouterr().out  # 3 PDF pages + 1 image
    args = ["search", "--trust-models", str(target), "anything", "-k", "4", "--json"]
    assert main([*args, "--first-stage", "visual"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert {(h["metadata"].get("page")) for h in hits} == {1, 2, 3, None}
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.pdf").write_bytes(b"%PDF-1.4 no")
    assert main(["index", str(broken), str(tmp_path / "never"), *model]) == 2
    assert not (tmp_path / "never").exists()
