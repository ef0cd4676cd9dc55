"""Response bodies of `POST /read/{task}` (kept apart from app.schemas.predict: one endpoint, one file)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.schemas.predict import ModelRef, Prediction


class ReadCharacter(BaseModel):
    box: list[int] = Field(
        min_length=4,
        max_length=4,
        description="`[x, y, width, height]` of the character's ink in the uploaded image's pixels "
        "(after EXIF rotation).",
    )
    line: int = Field(ge=0, description="The text line, 0 = the top one.")
    predictions: list[Prediction] = Field(description="Top-k answers for this character, best first.")
    rejected: bool = Field(
        description="The first answer's probability is below `min_confidence`: `text` shows `?` here."
    )


class ReadTiming(BaseModel):
    decode: float
    segment: float = Field(description="Ink map, connected parts, merging, lines and reading order.")
    preprocess: float = Field(description="Every character candidate through the shared preprocessing.")
    inference: float = Field(description="One model call for all the image's character candidates.")
    total: float


class ReadResponse(BaseModel):
    task: str
    model: ModelRef
    text: str = Field(
        description="The first answer of every character in reading order (left to right, lines top "
        "to bottom joined by `\\n`, word gaps as spaces), `?` for a rejected character."
    )
    characters: list[ReadCharacter] = Field(description="The characters in reading order.")
    timing_ms: ReadTiming
