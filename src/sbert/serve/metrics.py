"""Prometheus metrics of one server process (``GET /metrics``).

With ``--workers N`` each worker process counts its own requests; a scrape reaches one
worker. Scrape each worker on its own port (one server per port) when the sums matter.
"""

from __future__ import annotations

from typing import Any

from sbert.runtime import require

# request latency buckets (seconds): 1 ms .. 30 s
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TOKEN_BUCKETS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
# the paths a request's labels may name; others are "other" (no label per unknown path)
ENDPOINTS = ("/v1/embeddings", "/v1/similarity", "/v1/search", "/v1/index/add",
             "/v1/index/delete", "/v1/index", "/v1/models", "/health", "/metrics", "/")


class Metrics:
    """The counters and histograms, in a registry of their own."""

    def __init__(self) -> None:
        prom = require("prometheus_client", "serve")
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = prom.Counter("sbert_requests_total", "HTTP requests answered",
                                     ("endpoint", "status"), registry=r)
        self.latency = prom.Histogram("sbert_request_seconds", "HTTP request latency",
                                      ("endpoint",), buckets=LATENCY_BUCKETS, registry=r)
        self.queue = prom.Gauge("sbert_queue_sentences", "sentences waiting for the model",
                                registry=r)
        self.batch_size = prom.Histogram("sbert_batch_sentences", "sentences per forward pass",
                                         buckets=SIZE_BUCKETS, registry=r)
        self.batch_tokens = prom.Histogram("sbert_batch_tokens",
                                           "padded tokens per forward pass",
                                           buckets=TOKEN_BUCKETS, registry=r)
        self.batch_seconds = prom.Histogram("sbert_batch_seconds", "forward pass time",
                                            buckets=LATENCY_BUCKETS, registry=r)
        self.inputs = prom.Counter("sbert_inputs_total", "sentences embedded", registry=r)
        self.tokens = prom.Counter("sbert_tokens_total", "tokens embedded", registry=r)
        self.truncated = prom.Counter("sbert_truncated_inputs_total",
                                      "inputs cut at the model's maximum length", registry=r)
        self.rejected = prom.Counter("sbert_rejected_total", "requests refused before the model",
                                     ("reason",), registry=r)
        self.cancelled = prom.Counter("sbert_cancelled_requests_total",
                                      "requests whose client went away before the answer",
                                      registry=r)

    def observe_batch(self, sentences: int, tokens: int, seconds: float) -> None:
        self.batch_size.observe(sentences)
        self.batch_tokens.observe(tokens)
        self.batch_seconds.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        prom: Any = require("prometheus_client", "serve")
        return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST


def endpoint_label(path: str) -> str:
    if path.startswith("/v1/models/"):
        return "/v1/models/{model}"
    return path if path in ENDPOINTS else "other"
