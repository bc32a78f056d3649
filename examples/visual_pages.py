"""Offline demo: PDF pages as images, searched in three stages with a ColPali-family model.

Runs with no network and nothing downloaded. The late-interaction model is a *tiny
ColPali with random weights* built on the spot (colrank.samples.tiny_colpali), so its
visual scores rank pages AT RANDOM: this run shows the mechanics, not retrieval quality.
What it demonstrates:

1. a generated PDF becomes one document per page: the page text (for dense + BM25
   recall), the rendered image (encoded into patch embeddings kept in the token
   store) and the file/page in metadata;
2. a search runs the three stages: dense + BM25 recall over page text, MaxSim over the
   candidates' stored patch embeddings, the calibrated final score (a cross-encoder can
   follow, ``SearchConfig.cross_encoder_model``);
3. a page with no text (a scan) is still found, by the visual first stage
   (``first_stage="visual"``: MaxSim over every page's stored patches);
4. the index is saved and loaded, and the encoding speed of the tiny model is printed.

For real retrieval use a real checkpoint in the transformers format, e.g.
``vidore/colpali-v1.3-hf`` or ``vidore/colqwen2-v1.0-hf`` (ColQwen2.5 after conversion:
docs/visual.md): ``--model vidore/colpali-v1.3-hf``.

    python examples/visual_pages.py [--model HUB_ID_OR_PATH] [--pages 12]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from colrank import ColrankConfig, ColrankIndex
from colrank.cli import _quiet_third_party
from colrank.samples import tiny_colpali, write_pdf

TOPICS = [
    "Quarterly revenue grew by twelve percent.",
    "Operating costs fell after the move to the cloud.",
    "",  # a scanned page: no text layer
    "The board approved a new dividend policy.",
    "Customer churn rose in the northern region.",
    "",  # another scan
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a ColPali-family checkpoint (default: tiny, random)")
    parser.add_argument("--pages", type=int, default=12, help="pages in the generated PDF")
    args = parser.parse_args()
    _quiet_third_party()
    work = Path(tempfile.mkdtemp(prefix="colrank-visual-"))
    model = args.model or tiny_colpali(work / "tiny-colpali")
    if not args.model:
        print("Late interaction: a TINY ColPali with RANDOM weights -> its visual scores rank")
        print("pages at random. This run shows the mechanics, not retrieval quality.\n")
    texts = [TOPICS[i % len(TOPICS)] for i in range(args.pages)]
    pdf = write_pdf(work / "report.pdf", texts)
    config = ColrankConfig.offline(
        models={"colbert_model": model}, runtime={"device": "cpu", "show_progress": False}
    )
    index = ColrankIndex(config)
    index.add_pdf(pdf)  # loads the models
    index.delete(index.ids())
    started = time.perf_counter()
    index.add_pdf(pdf)
    seconds = time.perf_counter() - started
    stats = index.stats()
    per_page = 1000 * seconds / len(index)
    print(f"{len(index)} pages indexed in {seconds:.2f} s: {per_page:.1f} ms per page (render,")
    print(f"text, dense + visual encoding); {stats['tokens'] // len(index)} vectors and")
    print(f"{stats['token_bytes'] // len(index)} bytes stored per page ({stats['codec']}).\n")

    query = "How much did revenue grow?"
    timings: dict[str, float] = {}
    print(f"Q: {query}  (three stages: dense + BM25 recall, MaxSim, calibrated score)")
    for hit in index.search(query, k=3, timings=timings):
        print(
            f"  page {hit.metadata['page']:>2}  score {hit.score:.3f}  dense {hit.dense_score:.3f}"
            f"  MaxSim {hit.colbert_score:.2f}  {hit.text[:50]!r}"
        )
    print(f"  stage seconds: { {k: round(v, 4) for k, v in timings.items()} }\n")

    print("Pages without text, found by the visual first stage (MaxSim over every page):")
    for hit in index.search(query, k=2, first_stage="visual", filter={"has_text": False}):
        print(f"  page {hit.metadata['page']:>2}  score {hit.score:.3f}  text {hit.text!r}")

    saved = index.save(work / "index")
    again = ColrankIndex.load(saved, config)
    same = [h.id for h in again.search(query, k=3)] == [h.id for h in index.search(query, k=3)]
    print(f"\nSaved to {saved} and loaded again: same hits: {same}")


if __name__ == "__main__":
    main()
