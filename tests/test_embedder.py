"""The knowledge embedder (retrieval/bert.py) against sentence-transformers, the reference
implementation of all-MiniLM-L6-v2: the same vectors, for texts short, long, empty and
far from English."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.embedder import MiniLMEmbedder, minilm_model_path

pytestmark = pytest.mark.real

TEXTS = [
    "What time is it in Tokyo?",
    "The head chef at the Copper Kettle restaurant is Marta Lindqvist. She has cooked there since 2019.",
    "",
    "naïve café — ünïcode ✓ 日本語",
    "word " * 600,  # past the 256 tokens the model reads: cut as sentence-transformers cuts it
]


def test_vectors_are_those_of_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    mine = np.array(MiniLMEmbedder(batch_size=2).embed(TEXTS))
    reference = SentenceTransformer(str(minilm_model_path()), device="cpu", local_files_only=True)
    expected = reference.encode(TEXTS, normalize_embeddings=True)
    assert mine.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(mine, expected, atol=1e-5)
    assert MiniLMEmbedder().embed([]) == []


def test_a_text_gets_the_same_vector_in_any_batch() -> None:
    embedder = MiniLMEmbedder(batch_size=3)
    alone = [embedder.embed([text])[0] for text in TEXTS]
    np.testing.assert_allclose(np.array(embedder.embed(TEXTS)), np.array(alone), atol=1e-5)
