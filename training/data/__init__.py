"""Label sets, data-set loaders and the tasks. Importing this package registers every task."""

from training.data import digits, graphemes, letters  # noqa: F401  (each registers its task)
