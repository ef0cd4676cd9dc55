"""Evaluations of the committed models through the service's own path: the photo test set, synthetic
words and numbers read by POST /read, grapheme roots with and without real handwriting."""
