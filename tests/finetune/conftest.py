"""The module-scoped engine and fake vendor of the fine-tuning tests (tests/finetune/helpers.py)."""

from tests.finetune.helpers import fake, thome, vendor  # noqa: F401  (fixtures)
