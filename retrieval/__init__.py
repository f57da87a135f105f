"""voicegraph retrieval: embedders and Chroma collections (knowledge bases)."""
