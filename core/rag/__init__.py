"""Code knowledge: which files are indexed, how they are cut into chunks, embedded and searched.

Importing this package (and its light modules) loads no numpy, torch, faiss, bm25s or
tree_sitter; the modules that need them say so and import them inside functions.
"""
