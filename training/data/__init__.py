"""Label sets, data-set loaders and the tasks. Importing this package registers every task."""

from training.data import letters  # noqa: F401  (registers the "letter" task)
