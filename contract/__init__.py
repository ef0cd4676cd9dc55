"""The train↔serve contract: what a model sees and what its manifest promises.

`preprocessing` (raw image → model canvas), `manifest` and `writer_manifest` (the pydantic records an
export writes and the service validates at start-up), `graphemes` (Bengali grapheme labels and
composition), `postprocessing` (softmax, top-k, composed answers). numpy, OpenCV and pydantic only:
both `app` (serving) and `training` import this package, neither imports the other.
"""
