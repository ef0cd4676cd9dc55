"""Response bodies of the writer endpoints (app/api/writers.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.schemas.predict import ModelRef


class WriterOut(BaseModel):
    id: int
    name: str
    samples: int = Field(description="Characters enrolled (their embeddings are stored).")
    model_version: str = Field(description="The embedding model they were enrolled with.")
    created: str


class WriterList(BaseModel):
    writers: list[WriterOut] = Field(description="One page of the enrolled writers, by id.")
    total: int = Field(description="Writers enrolled, on every page together.")
    next_after: int | None = Field(description="Pass it as `after` for the next page; null on the last page.")


class Candidate(BaseModel):
    id: int
    name: str
    score: float = Field(
        description="Cosine similarity of the query's mean embedding to the writer's, in [-1, 1]."
    )


class IdentifyResponse(BaseModel):
    model: ModelRef
    characters: int = Field(description="Images the query's embedding was averaged over.")
    threshold: float = Field(
        description="The score the best candidate needed: the model's calibrated threshold for "
        "this many characters and the best candidate's enrolled samples (or `HWR_WRITER_THRESHOLD`)."
    )
    unknown: bool = Field(description="True when no enrolled writer scores at least `threshold`.")
    writer: Candidate | None = Field(description="The best candidate, or null when `unknown`.")
    candidates: list[Candidate] = Field(description="The top-k enrolled writers, best first.")
