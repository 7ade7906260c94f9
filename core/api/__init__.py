"""The engine's wire contract: typed request and response models (``core.api.models``)."""
