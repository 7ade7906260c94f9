"""Embedder tuning (docs/finetune.md): pair mining, training in a worker process, evaluation, activation."""
