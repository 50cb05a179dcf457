"""The floor for benchmarks/serve.py: the embedding server a user writes in ten minutes.

    .venv/bin/python benchmarks/_naive_server.py --model-folder DIR [--host 127.0.0.1]
        [--port 8000] [--model-name all-MiniLM-L6-v2]

FastAPI + uvicorn, one worker. ``POST /v1/embeddings`` takes the OpenAI body
``{"input": [str, ...] | str, "model": ...}`` and answers the OpenAI schema; ``GET /health``
answers 200 (the model is loaded before the server listens). Each request is encoded on its
own with sentence-transformers' ``SentenceTransformer.encode``: no batching across requests.

The route is ``async def`` and calls ``encode`` directly, so requests are served one at a
time on the event loop: the usual naive server. A plain ``def`` route would run in FastAPI's
threadpool and call torch from up to 40 threads at once, each asking for every core: that
is a pathological server, not a naive one, so it is not what this floor measures.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# at module level: FastAPI reads the route's annotations from the module's globals
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402


def build_app(model_folder: str, model_name: str) -> Any:
    """The FastAPI app with its model loaded."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_folder, device="cpu")
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        body = await request.json()
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs):
            return JSONResponse({"error": {"message": "input must be a string or a list of "
                                                      "strings"}}, status_code=400)
        vectors = model.encode(inputs)
        n_tokens = sum(len(s.split()) for s in inputs)  # a word count: naive, as the rest
        return {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                     for i, v in enumerate(vectors)],
            "model": body.get("model") or model_name,
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-folder", required=True)
    parser.add_argument("--model-name", default="all-MiniLM-L6-v2")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()

    import uvicorn

    app = build_app(args.model_folder, args.model_name)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
