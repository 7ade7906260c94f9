"""Code search: chunking, local embeddings, FAISS and BM25 indexes, hybrid retrieval (docs/search.md).

Light: importing ``core.rag`` loads no numpy, torch, sentence_transformers, faiss, bm25s or tree_sitter.
"""
