"""The HTTP API's bodies: OpenAI's embeddings schema plus sbert's similarity, search and index.

Request models are built per server (:func:`request_models`) so that the OpenAPI schema
states the server's own limits (inputs per request, results per search).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from sbert.serve.config import ServeConfig
from sbert.unicode import lone_surrogate

MAX_K = 1000  # results per search


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorBody


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(
        description="floats, or base64 of little-endian float32 with encoding_format=base64")


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "sbert"
    dimension: int
    max_seq_length: int
    similarity_fn: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok", "loading", "failed"]
    model: str
    backend: str
    message: str | None = None


class SimilarityResponse(BaseModel):
    object: Literal["similarity"] = "similarity"
    similarity_fn: str
    scores: list[float]
    model: str
    usage: Usage


class SearchHit(BaseModel):
    id: str
    score: float
    text: str
    metadata: Any = None


class SearchResponse(BaseModel):
    object: Literal["search"] = "search"
    results: list[SearchHit]
    model: str
    index_size: int
    usage: Usage


class IndexInfo(BaseModel):
    object: Literal["index"] = "index"
    model: str
    dimension: int
    metric: str
    count: int


class AddResponse(BaseModel):
    ids: list[str]
    count: int


class DeleteResponse(BaseModel):
    deleted: int
    count: int


def _unicode(value: Any) -> Any:
    """``value`` (a text, a list of texts or of pairs of texts) if every text is valid Unicode.

    JSON's ``\\ud800`` escapes can spell a lone UTF-16 surrogate, which no tokenizer, database
    or JSON writer accepts: such a text is refused here, as the bad input it is.
    """
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        for j, text in enumerate(item if isinstance(item, list) else [item]):
            at = lone_surrogate(text)
            if at is not None:
                where = ("the text" if not isinstance(value, list) else
                         f"pair {i}, text {j}," if isinstance(item, list) else f"text {i}")
                raise ValueError(f"{where} holds a lone UTF-16 surrogate "
                                 f"(\\u{ord(text[at]):04x} at character {at}); "
                                 "send valid Unicode")
    return value


def _json_value(value: Any) -> Any:
    """``value`` if it can be stored and sent back as JSON unchanged: no lone surrogate, no
    infinite or NaN number (``1e400`` reads as infinity, which JSON cannot write)."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except ValueError as err:  # UnicodeEncodeError is one
        what, fix = (("a lone UTF-16 surrogate", "valid Unicode")
                     if isinstance(err, UnicodeEncodeError)
                     else ("an infinite or NaN number", "finite numbers"))
        raise ValueError(f"the value holds {what}, which JSON cannot carry back; send {fix}"
                         ) from None
    return value


Texts = AfterValidator(_unicode)  # on a field of texts: str, list[str] or list[list[str]]
JsonValue = Annotated[Any, AfterValidator(_json_value)]
def _number(value: Any) -> Any:
    """Refuses ``true``/``false`` and strings where a count is due (pydantic would read them
    as 1/0 and 3); a whole float such as ``4.0`` stays accepted as the integer it is."""
    if isinstance(value, (bool, str)):
        raise ValueError(f"must be an integer, not {json.dumps(value)}")
    return value


Count = Annotated[int, BeforeValidator(_number)]


@dataclass(frozen=True)
class RequestModels:
    embeddings: type[BaseModel]
    similarity: type[BaseModel]
    search: type[BaseModel]
    add: type[BaseModel]
    delete: type[BaseModel]


def _model(name: str, **fields: Any) -> type[BaseModel]:
    """A pydantic model built at run time (its limits come from the server's settings)."""
    build: Any = create_model
    model: type[BaseModel] = build(name, __config__=ConfigDict(extra="ignore"), **fields)
    return model


def request_models(config: ServeConfig) -> RequestModels:
    """The request bodies, with this server's limits in their schema."""
    n = config.max_inputs
    texts = Annotated[list[str], Field(min_length=1, max_length=n)]
    embeddings = _model(
        "EmbeddingRequest",
        input=(Annotated[str | texts, Texts],
               Field(description=f"a string or a list of 1 to {n} strings; token-id arrays "
                     "are not accepted")),
        model=(str | None, Field(None, description="ignored: the server runs one model")),
        encoding_format=(Literal["float", "base64"], "float"),
        dimensions=(Count | None, Field(None, ge=1, description="keep the first N dimensions "
                                      "and renormalise (at most the model's dimension)")),
        user=(str | None, Field(None, description="ignored")),
    )
    pair = Annotated[list[str], Field(min_length=2, max_length=2)]
    similarity = _model(
        "SimilarityRequest",
        pairs=(Annotated[list[pair], Field(min_length=1, max_length=n // 2 or 1), Texts] | None,
               Field(None, description="[[a, b], ...]: a score per pair")),
        source=(Annotated[str, Texts] | None,
                Field(None, description="one text, scored against each target")),
        targets=(Annotated[list[str], Field(min_length=1, max_length=n - 1 or 1), Texts] | None,
                 None),
    )
    search = _model(
        "SearchRequest",
        query=(Annotated[str, Texts], ...),
        k=(Count, Field(10, ge=1, le=MAX_K)),
    )
    item = _model(
        "IndexItem",
        text=(Annotated[str, Texts], ...),
        id=(Annotated[str, Field(min_length=1), Texts] | None, None),
        metadata=(JsonValue, None),
    )
    add = _model(
        "AddRequest",
        items=(Annotated[list[item], Field(min_length=1, max_length=n)], ...),  # type: ignore[valid-type]
    )
    delete = _model(
        "DeleteRequest",
        ids=(Annotated[list[str], Field(min_length=1, max_length=n), Texts], ...),
    )
    return RequestModels(embeddings, similarity, search, add, delete)
