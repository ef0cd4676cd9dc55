"""Label sets, data-set loaders and the tasks. Importing this package registers every task."""

from training.data import digits, letters  # noqa: F401  (register the "digit" and "letter" tasks)
