"""How finely ``sbert serve`` cuts an ONNX batch into passes of similar lengths.

    .venv/bin/python benchmarks/split_cost.py [--seconds 5] [--rounds 4] [--batch 20]

An ONNX graph runs padded: a batch of sentences in arrival order, as a server meets them,
pads every sentence to the longest. The server's batcher cuts each batch into passes of
similar lengths (:func:`sbert.tokenization.length_chunks`), one more pass costing
``split_cost`` tokens' time (``sbert.serve.state.SPLIT_COST``). This script times that
choice the way the server runs it: all-MiniLM-L6-v2, ONNX int8, one stream per core (the
server's backend streams), each stream a thread embedding random batches of ``--batch`` STSb
test sentences (arrival order: unsorted) cut at each split cost, for ``--seconds`` per case.
The cases alternate over ``--rounds`` rounds; beside them, offline ``encode`` of every
sentence at batch 32 (sorted by length, so nearly unpadded) before each round and after the
last: the rate a server at its best would approach. "none" runs each batch as one pass.

Smoke run: ``--seconds 0.5 --rounds 1 --out /tmp/bench``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    add_output_options,
    is_full,
    median,
    print_tables,
    sts_test_sentences,
    table,
    write_result,
)

from serve import MODEL, Offline  # noqa: E402

COSTS: tuple[int | None, ...] = (None, 1, 4, 8, 16, 32)


def _label(cost: int | None) -> str:
    return "none" if cost is None else str(cost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per case and round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=20,
                        help="sentences per batch (about what a server at 64 x 1 runs)")
    add_output_options(parser)
    args = parser.parse_args()

    from sbert.serve.state import SPLIT_COST
    from sbert.tokenization import length_chunks

    sentences = sts_test_sentences()
    probe = Offline("onnx-int8", sentences)  # serve.py's offline limit, warmed up
    enc = probe.enc
    streams = int(getattr(enc.backend, "streams", 1))
    tok = enc.tokenizer.encode(sentences)
    ids, types = tok.ids, tok.type_ids

    def offline() -> float:
        return probe.rates(1)[0]

    def served(cost: int | None, seed: int) -> tuple[float, float]:
        """(sentences/s, padded tokens per real token) of ``streams`` threads."""
        done = [0] * streams
        padded = [0] * streams
        real = [0] * streams
        stop = time.perf_counter() + args.seconds

        def work(k: int) -> None:
            rng = random.Random(seed * 100 + k)
            while time.perf_counter() < stop:
                batch = rng.sample(range(len(ids)), args.batch)
                lengths = [len(ids[i]) for i in batch]
                runs = ([list(range(len(batch)))] if cost is None
                        else length_chunks(lengths, cost))
                for run in runs:
                    enc.embed_tokens([ids[batch[i]] for i in run],
                                     [types[batch[i]] for i in run], alone=False)
                    padded[k] += len(run) * max(lengths[i] for i in run)
                real[k] += sum(lengths)
                done[k] += len(batch)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(streams)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(done) / (time.perf_counter() - start), sum(padded) / max(1, sum(real))

    rates: dict[str, list[float]] = {_label(c): [] for c in COSTS}
    padding: dict[str, float] = {}
    offline_rates = []
    for r in range(args.rounds):
        offline_rates.append(offline())
        print(f"round {r + 1}: offline {offline_rates[-1]:.0f} sentences/s", flush=True)
        order = COSTS[r % len(COSTS):] + COSTS[: r % len(COSTS)]
        for cost in order:
            rate, pad = served(cost, r)
            rates[_label(cost)].append(rate)
            padding[_label(cost)] = pad
            print(f"  split cost {_label(cost)}: {rate:.0f} sentences/s", flush=True)
    offline_rates.append(offline())
    base = median(offline_rates)
    best = max(median(v) for v in rates.values())
    rows = [{"cost": _label(c), "rate": median(rates[_label(c)]),
             "per_round": rates[_label(c)], "vs_offline": median(rates[_label(c)]) / base,
             "vs_best": median(rates[_label(c)]) / best, "padding": padding[_label(c)],
             "server": "yes" if c == SPLIT_COST else ""} for c in COSTS]
    tab = table("costs", f"{streams} streams of random batches of {args.batch} STSb sentences, "
                "by split cost (median sentences/s)",
                [("cost", "split cost, tokens", ""), ("rate", "sentences/s", "{:.0f}"),
                 ("per_round", "per round", "{:.0f}"),
                 ("vs_offline", "of offline encode", "{:.0%}"),
                 ("vs_best", "of the best cost", "{:.0%}"),
                 ("padding", "padded / real tokens", "{:.2f}"),
                 ("server", "sbert serve's", "")], rows)
    notes = [f"{MODEL}, ONNX int8, {streams} streams (threads) of "
             f"{enc.backend.threads // streams} intra-op thread(s); random batches of "
             f"{args.batch} of the {len(sentences)} STSb test sentences, {args.seconds:g} s per "
             f"case and round, {args.rounds} rounds, cases alternating",
             f"offline encode of every sentence at batch 32 (sorted by length), before each "
             f"round and after the last: median {base:.0f} sentences/s "
             f"({', '.join(f'{x:.0f}' for x in offline_rates)})"]
    print_tables([tab])
    for line in notes:
        print(line)
    write_result("split_cost", [tab], args,
                 full=is_full(args, parser, ("seconds", "rounds", "batch")), notes=notes,
                 raw={"rates": rates, "offline": offline_rates})


if __name__ == "__main__":
    main()
