"""Settings of the index's own structures: FAISS recall, token store, MUVERA encodings.

They are sections of :class:`~colrank.config.ColrankConfig`.

Example:
    >>> TokenStoreConfig().codec
    'bfloat16'
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ConfigSection(BaseModel):
    """A configuration section: unknown fields are refused, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DenseIndexConfig(ConfigSection):
    """The FAISS index used for recall."""

    kind: Literal["flat", "hnsw", "ivf"] = Field(
        "flat", description="'flat' is exact inner product; 'hnsw' and 'ivf' are approximate."
    )
    hnsw_m: int = Field(32, gt=1, description="HNSW graph degree.")
    hnsw_ef_construction: int = Field(200, gt=0)
    hnsw_ef_search: int = Field(256, gt=0)
    ivf_nlist: int | None = Field(
        None, gt=0, description="IVF lists (None: about 4*sqrt(n) at training time)."
    )
    ivf_nprobe: int = Field(32, gt=0)


DEFAULT_STORAGE_CODEC = "bfloat16"
CODEC_NAMES_PATTERN = r"float32|float16|bfloat16|int8|o?pq\d+"  # the token codecs known


class TokenStoreConfig(ConfigSection):
    """How precomputed document token embeddings are stored (see docs/benchmarks.md).

    The default, ``bfloat16``, is as small as float16 and needs no cast before MaxSim on
    CPUs with bfloat16 products; on SciFact and MS MARCO it ranked within 0.1 nDCG@10
    point of float16 (docs/benchmarks.md).
    """

    codec: str = Field(
        DEFAULT_STORAGE_CODEC,
        pattern=f"^({CODEC_NAMES_PATTERN})$",
        description=(
            "float32, float16, bfloat16, int8 (dim+4 bytes/token), pq<M> or opq<M> (M bytes)."
        ),
    )
    pool_factor: int = Field(
        1, ge=1, description="PyLate token pooling at indexing (2 or 3 keeps 1/2 or 1/3)."
    )


class MuveraConfig(ConfigSection):
    """The ColBERT-only first stage, ``first_stage="muvera"`` (docs/search.md).

    Each document's stored token embeddings become one MUVERA fixed dimensional
    encoding (:mod:`colrank.store.fde`) of ``r_reps * 2**k_sim * d_proj`` dimensions
    (10,240 by default), or ``final_dim``; FAISS searches them by inner product with the
    query's encoding. Built from the stored tokens on the first such search, then kept in
    step by every write and saved with the index; other settings rebuild it.
    """

    k_sim: int = Field(
        5, ge=0, le=10, description="SimHash bits per repetition (2**k_sim buckets)."
    )
    d_proj: int | None = Field(
        16, gt=0, description="Dimension each token is projected to (None: not projected)."
    )
    r_reps: int = Field(20, gt=0, le=256, description="Independent repetitions, concatenated.")
    final_dim: int | None = Field(
        None, gt=0, description="Count-sketch projection of the whole encoding (None: none)."
    )
    seed: int = Field(42, ge=0, description="Seed of the random hyperplanes and projections.")
    index: Literal["flat", "hnsw"] = Field(
        "flat", description="FAISS index of the encodings: exact inner product, or HNSW."
    )


__all__ = [
    "CODEC_NAMES_PATTERN",
    "DEFAULT_STORAGE_CODEC",
    "ConfigSection",
    "DenseIndexConfig",
    "MuveraConfig",
    "TokenStoreConfig",
]
