"""The work behind every endpoint, free of any web framework: an upload decoded and checked once
(`images.decode_upload`), then prepared, inferred and answered (`pipeline`), timed per stage."""
