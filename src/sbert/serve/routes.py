"""The endpoints: OpenAI's embeddings and models, similarity, search, index, health, metrics.

No ``from __future__ import annotations`` here: FastAPI reads the request models of the
handlers from their annotations, and those models are built per server.
"""

import asyncio
import base64
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, Response

from sbert.errors import IndexFailure
from sbert.serve.batcher import Closed, Embedded, QueueFull, TooLong
from sbert.serve.errors import ApiError
from sbert.serve.page import render_page
from sbert.serve.respond import json_response
from sbert.serve.schemas import (
    AddResponse,
    DeleteResponse,
    EmbeddingResponse,
    ErrorResponse,
    Health,
    IndexInfo,
    ModelCard,
    ModelList,
    SearchResponse,
    SimilarityResponse,
    request_models,
)
from sbert.serve.state import ServerState
from sbert.similarity import normalize

# the refusals every model-backed route may answer
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in (
        (400, "malformed JSON"), (401, "missing or wrong API key"),
        (413, "input or body too large"), (422, "invalid body"),
        (429, "queue full: retry after Retry-After seconds"),
        (503, "the model is loading, or the server is shutting down"))
}


async def _disconnect(receive: Any) -> None:
    """Returns when the client closes its connection (``receive``: the ASGI callable)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _nth_input(i: int) -> str:
    return f"input {i}"


async def embed_texts(state: ServerState, request: Request | Any, texts: list[str],
                      param: str = "input", name: Any = _nth_input) -> Embedded:
    """Embed ``texts`` through the batcher, as HTTP errors where they cannot be.

    ``request``: the Starlette request, or the ASGI ``receive`` callable once the body is read
    (the client's disconnect takes the request's sentences out of the queue).
    ``param`` and ``name``: the body's field the texts come from, and text ``i``'s name in
    it, for the errors.
    """
    if not state.ready or state.batcher is None:
        raise ApiError(503, f"the model is {state.status}; retry when /health says ok",
                       "model_not_ready", headers={"Retry-After": "1"})
    limit = state.config.max_input_chars
    for i, text in enumerate(texts):
        if len(text) > limit:
            state.metrics.rejected.labels("input_too_long").inc()
            raise ApiError(413, f"{name(i)} has {len(text)} characters; the limit is {limit} "
                           "(--max-input-chars)", "input_too_long", param)
    receive = request.receive if isinstance(request, Request) else request
    watcher: asyncio.Future[None] | None = None  # made only if the request waits in the queue

    def watch() -> asyncio.Future[None]:
        nonlocal watcher
        watcher = asyncio.ensure_future(_disconnect(receive))
        return watcher

    try:
        done = await state.batcher.embed(texts, watch)
    except QueueFull as err:
        state.metrics.rejected.labels("queue_full").inc()
        raise ApiError(429, str(err), "queue_full",
                       headers={"Retry-After": str(err.retry_after)}) from err
    except TooLong as err:
        state.metrics.rejected.labels("input_too_long").inc()
        raise ApiError(413, str(err), "input_too_long", "input") from err
    except Closed as err:
        raise ApiError(503, str(err), "shutting_down") from err
    except asyncio.CancelledError:
        if watcher is None or not watcher.done():
            raise  # the server cancelled this request, not the client
        state.metrics.cancelled.inc()
        raise ApiError(499, "the client closed the connection", "client_closed") from None
    finally:
        if watcher is not None:
            watcher.cancel()
    state.metrics.inputs.inc(len(texts))
    state.metrics.tokens.inc(done.tokens)
    if done.truncated:
        state.metrics.truncated.inc(done.truncated)
    return done


def _usage(tokens: int) -> dict[str, int]:
    return {"prompt_tokens": tokens, "total_tokens": tokens}


async def answer_embeddings(state: ServerState, request: Request | Any, texts: list[str],
                            encoding_format: str, dimensions: int | None) -> Response:
    """Embed ``texts`` and answer with OpenAI's embeddings list (valid arguments only)."""
    done = await embed_texts(state, request, texts)
    emb = done.embeddings
    if dimensions is not None and dimensions < emb.shape[1]:
        emb = normalize(np.ascontiguousarray(emb[:, :dimensions]))
    if encoding_format == "base64":
        rows: list[Any] = [base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
                           for row in emb]
    else:
        rows = list(emb)
    data = [{"object": "embedding", "index": i, "embedding": row}
            for i, row in enumerate(rows)]
    return json_response({"object": "list", "data": data, "model": state.config.served_name,
                          "usage": _usage(done.tokens)})


def plain_embeddings_request(body: bytes, state: ServerState
                             ) -> tuple[list[str], str, int | None] | None:
    """``(texts, encoding_format, dimensions)`` of an ordinary, valid embeddings body.

    The common request (a JSON object whose ``input`` is a string or a short list of strings)
    is read here with orjson, without FastAPI's routing and pydantic validation: on a small
    machine those cost about as much as embedding the sentence. Anything else (invalid,
    unusual or out of limits) gives ``None``, and the request takes the FastAPI route, whose
    schema and error answers stay the reference; this reader accepts a subset of what that
    route accepts and reads it the same way (tests send the same bodies both ways).
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict:
        return None
    texts = doc.get("input")
    if type(texts) is str:
        texts = [texts]
    elif (type(texts) is not list or not texts or len(texts) > state.config.max_inputs
          or any(type(t) is not str for t in texts)):
        return None
    fmt = doc.get("encoding_format", "float")
    dims = doc.get("dimensions")
    if (fmt not in ("float", "base64")
            or not (dims is None or (type(dims) is int
                                     and 1 <= dims <= state.encoder.dimension))
            or any(doc.get(key) is not None and type(doc[key]) is not str
                   for key in ("model", "user"))):
        return None
    return texts, fmt, dims


def add_routes(app: FastAPI, state: ServerState) -> None:
    """Register every endpoint of the server on ``app``."""
    config = state.config
    models = request_models(config)
    name = config.served_name

    @app.post("/v1/embeddings", response_model=EmbeddingResponse, responses=_ERRORS,
              tags=["openai"])
    async def embeddings(body: models.embeddings, request: Request) -> Response:  # type: ignore[name-defined]
        """Embed a string or a list of strings (OpenAI's ``embeddings.create``)."""
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if body.dimensions is not None and body.dimensions > state.encoder.dimension:
            raise ApiError(422, f"dimensions={body.dimensions} is more than the model's "
                           f"{state.encoder.dimension}", "invalid_value", "dimensions")
        return await answer_embeddings(state, request, texts, body.encoding_format,
                                       body.dimensions)

    @app.post("/v1/similarity", response_model=SimilarityResponse, responses=_ERRORS,
              tags=["sbert"])
    async def similarity(body: models.similarity, request: Request) -> Response:  # type: ignore[name-defined]
        """Scores by the model's similarity function: of each pair, or of ``source`` against
        each of ``targets``. Give either ``pairs`` or ``source`` with ``targets``."""
        if (body.pairs is None) == (body.source is None):
            raise ApiError(422, "give either 'pairs' or 'source' with 'targets'",
                           "invalid_value", "pairs")
        if body.pairs is not None:
            texts = [text for pair in body.pairs for text in pair]
            done = await embed_texts(state, request, texts, "pairs",
                                     lambda i: f"pairs[{i // 2}][{i % 2}]")
            scores = state.encoder.similarity_pairwise(done.embeddings[0::2],
                                                       done.embeddings[1::2])
        else:
            if not body.targets:
                raise ApiError(422, "'targets' is missing: the texts to score 'source' against",
                               "invalid_value", "targets")
            done = await embed_texts(state, request, [body.source, *body.targets], "targets",
                                     lambda i: f"targets[{i - 1}]" if i else "source")
            scores = state.encoder.similarity(done.embeddings[:1], done.embeddings[1:])[0]
        return json_response({"object": "similarity",
                              "similarity_fn": state.encoder.similarity_fn_name,
                              "scores": [float(s) for s in scores], "model": name,
                              "usage": _usage(done.tokens)})

    def model_card() -> dict[str, Any]:
        enc = state.encoder
        if not state.ready or enc is None:
            raise ApiError(503, f"the model is {state.status}; retry when /health says ok",
                           "model_not_ready", headers={"Retry-After": "1"})
        return {"id": name, "object": "model", "created": state.created, "owned_by": "sbert",
                "dimension": enc.dimension, "max_seq_length": enc.max_seq_length,
                "similarity_fn": enc.similarity_fn_name}

    @app.get("/v1/models", response_model=ModelList, tags=["openai"],
             responses={503: _ERRORS[503]})
    async def list_models() -> Response:
        """The served model (OpenAI's ``models.list``)."""
        return json_response({"object": "list", "data": [model_card()]})

    @app.get("/v1/models/{model}", response_model=ModelCard, tags=["openai"],
             responses={404: {"model": ErrorResponse, "description": "not the served model"},
                        503: _ERRORS[503]})
    async def retrieve_model(model: str) -> Response:
        """The served model by its name (OpenAI's ``models.retrieve``)."""
        if model != name:
            raise ApiError(404, f"no model {model!r} here; this server runs {name!r}",
                           "model_not_found", "model")
        return json_response(model_card())

    @app.get("/health", response_model=Health, responses={503: {"model": Health}},
             tags=["operations"])
    async def health() -> Response:
        """200 once the model is loaded and warmed; 503 while loading or after a failure."""
        body = {"status": state.status, "model": name, "backend": config.backend,
                "message": state.message}
        return json_response(body, 200 if state.ready else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        state.metrics.queue.set(state.batcher.depth if state.batcher else 0)
        payload, content_type = state.metrics.render()
        return Response(payload, media_type=content_type)

    @app.get("/", response_class=HTMLResponse, tags=["page"])
    async def page() -> HTMLResponse:
        """A search page (with ``--index``): query box, results with scores and metadata."""
        size = await state.in_index_thread(len, state.index) if state.index is not None else None
        return HTMLResponse(render_page(name, config.backend, size, config.api_key is not None))

    if config.index is not None:
        _add_index_routes(app, state, models)


def _index(state: ServerState) -> Any:
    if not state.ready or state.index is None:
        raise ApiError(503, f"the model is {state.status}; retry when /health says ok",
                       "model_not_ready", headers={"Retry-After": "1"})
    return state.index


def _add_index_routes(app: FastAPI, state: ServerState, models: Any) -> None:
    config = state.config
    name = config.served_name
    writes = {**_ERRORS, 403: {"model": ErrorResponse, "description": "no --api-key set"},
              409: {"model": ErrorResponse, "description": "an id is already in the index"}}

    @app.post("/v1/search", response_model=SearchResponse, responses=_ERRORS, tags=["sbert"])
    async def search(body: models.search, request: Request) -> Response:  # type: ignore[name-defined]
        """The ``k`` nearest sentences of the index to ``query``."""
        index = _index(state)
        done = await embed_texts(state, request, [body.query], "query", lambda i: "the query")
        hits = await state.in_index_thread(
            lambda: index.search(done.embeddings, k=body.k, model=state.identity)[0])
        size = await state.in_index_thread(len, index)
        results = [{"id": h.id, "score": float(h.score), "text": h.text, "metadata": h.metadata}
                   for h in hits]
        return json_response({"object": "search", "results": results, "model": name,
                              "index_size": size, "usage": _usage(done.tokens)})

    @app.get("/v1/index", response_model=IndexInfo, responses=_ERRORS, tags=["sbert"])
    async def index_info() -> Response:
        """The index's model, dimension, metric and size."""
        index = _index(state)
        size = await state.in_index_thread(len, index)
        return json_response({"object": "index", "model": index.model,
                              "dimension": index.dimension, "metric": index.metric,
                              "count": size})

    def _writable() -> Any:
        if config.api_key is None:
            raise ApiError(403, "the index cannot be changed over HTTP without a key; start "
                           "the server with --api-key KEY (or SBERT_API_KEY)", "no_api_key")
        return _index(state)

    @app.post("/v1/index/add", response_model=AddResponse, responses=writes, tags=["sbert"])
    async def index_add(body: models.add, request: Request) -> Response:  # type: ignore[name-defined]
        """Embed and add sentences (with optional ids and metadata), all or nothing."""
        index = _writable()
        items = body.items
        texts = [item.text for item in items]
        ids = [item.id for item in items]
        given = [i for i in ids if i is not None]
        if given and len(given) != len(ids):
            raise ApiError(422, "give an id for every item or for none", "invalid_value", "items")
        if len(set(given)) != len(given):
            raise ApiError(422, "the ids repeat; each must be unique", "invalid_value", "items")
        done = await embed_texts(state, request, texts, "items",
                                 lambda i: f"items[{i}].text")
        try:
            new_ids = await state.in_index_thread(
                lambda: index.add(texts, done.embeddings, ids=given or None,
                                  metadata=[item.metadata for item in items],
                                  model=state.identity))
        except IndexFailure as err:
            raise ApiError(409, str(err), "index_conflict", "items") from err
        size = await state.in_index_thread(len, index)
        return json_response({"ids": new_ids, "count": size})

    @app.post("/v1/index/delete", response_model=DeleteResponse, responses=writes,
              tags=["sbert"])
    async def index_delete(body: models.delete) -> Response:  # type: ignore[name-defined]
        """Remove sentences by id (unknown ids are ignored)."""
        index = _writable()
        deleted = await state.in_index_thread(index.delete, list(body.ids))
        size = await state.in_index_thread(len, index)
        return json_response({"deleted": deleted, "count": size})
