"""The model zoo. Importing this package registers every model."""

from training.models import cnn, mlp, resnets, seed_cnns  # noqa: F401  (registers models)
from training.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
