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
    lexicon: float | None = Field(
        default=None, description="Every written word read again through the lexicon (when one is given)."
    )
    total: float


class WordAlternative(BaseModel):
    word: str
    probability: float = Field(ge=0.0, le=1.0)


class LexiconWord(BaseModel):
    read: str = Field(
        description="This written word's free reading, as in `text` (`?` for a rejected character)."
    )
    line: int = Field(ge=0, description="The text line, 0 = the top one.")
    word: str | None = Field(
        default=None,
        description="The lexicon's word (as the lexicon spells it) that explains this ink best: its "
        "cuts between characters and its labels chosen together. None when no word of the lexicon "
        "has a length this ink can be cut into.",
    )
    probability: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="`word`'s probability among the lexicon's words that fit this ink (how sure the "
        "choice is, not whether the writer meant a word of the lexicon at all).",
    )
    alternatives: list[WordAlternative] = Field(default=[], description="The next best words, best first.")


class LexiconReading(BaseModel):
    source: str = Field(description="`english` (the built-in English words) or `words` (the request's own).")
    text: str = Field(
        description="The lexicon's word for every written word (its free reading where none fits), "
        "spaced and lined as `text`."
    )
    words: list[LexiconWord] = Field(description="The written words in reading order.")


class ReadResponse(BaseModel):
    task: str
    model: ModelRef
    text: str = Field(
        description="The first answer of every character in reading order (left to right, lines top "
        "to bottom joined by `\\n`, word gaps as spaces), `?` for a rejected character."
    )
    characters: list[ReadCharacter] = Field(description="The characters in reading order.")
    lexicon: LexiconReading | None = Field(
        default=None, description="The words read through a lexicon, when the request names one."
    )
    timing_ms: ReadTiming
