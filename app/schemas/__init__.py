"""Request and response bodies, per resource (pydantic; the v2 protocol's own codec)."""
