"""A small OpenAI-compatible completions server around a local causal LM (stdlib HTTP), for tests and benchmarks.

    python tests/llm_server.py --model DIR [--port 0] [--api-key KEY] [--fail-after N]

prints ``listening on http://127.0.0.1:PORT`` once it serves, then answers

- ``POST /v1/completions`` ``{"model", "prompt": str | [str], "echo": true, "logprobs": k, "max_tokens": m}`` like
  vLLM: each prompt is tokenized with the BOS token first (as Llama tokenizers do), the echoed tokens carry their
  log-probabilities (``null`` for the first), their ``text_offset`` in the prompt and, for ``k`` > 0, the ``k``
  most likely tokens at each position; ``m`` tokens are then generated greedily;
- ``POST /score`` ``{"texts": [...]}`` → ``{"results": [{"logprobs": [...]}]}``: a non-OpenAI server that returns
  only the scored text tokens' log-probabilities.

``--api-key KEY`` answers 401 without ``Authorization: Bearer KEY``; ``--fail-after N`` answers 500 to every
request after the first ``N``; a prompt longer than the model's context is answered 400, as vLLM does. Prompts are
scored together, right-padded, like memberscope's local scorer.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def load(model_dir: str):
    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).eval()
    return torch, tokenizer, model.to(torch.float32)


def score(torch, tokenizer, model, prompts: list[str], *, top: int, max_tokens: int) -> list[dict]:
    """The OpenAI ``choices`` for ``prompts`` (echo with log-probabilities, then ``max_tokens`` greedy tokens)."""
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    rows = []
    for text in prompts:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        rows.append(([bos, *enc["input_ids"]], [0, *(span[0] for span in enc["offset_mapping"])]))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (ids, _) in enumerate(rows):
        input_ids[r, : len(ids)] = torch.tensor(ids)
        mask[r, : len(ids)] = 1
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=input_ids, attention_mask=mask).logits.float(), dim=-1)
    choices = []
    for r, (ids, spans) in enumerate(rows):
        token_lp = [None] + [float(logp[r, t - 1, ids[t]]) for t in range(1, len(ids))]
        tops = [None] + [_top(tokenizer, logp[r, t - 1], top) for t in range(1, len(ids))] if top else None
        tokens, generated = list(ids), ""
        for _ in range(max_tokens):  # greedy continuation, one full pass per token (small models only)
            with torch.inference_mode():
                nxt = torch.log_softmax(model(input_ids=torch.tensor([tokens])).logits[0, -1].float(), dim=-1)
            token = int(nxt.argmax())
            token_lp.append(float(nxt[token]))
            spans.append(len(prompts[r]) + len(generated))
            if tops is not None:
                tops.append(_top(tokenizer, nxt, top))
            tokens.append(token)
            generated += tokenizer.decode([token])
        choices.append(
            {
                "index": r,
                "text": prompts[r] + generated,
                "logprobs": {
                    "tokens": [tokenizer.decode([t]) for t in tokens],
                    "token_logprobs": token_lp,
                    "text_offset": spans,
                    "top_logprobs": tops,
                },
                "finish_reason": "length",
            }
        )
    return choices


def _top(tokenizer, logp, k: int) -> dict[str, float]:
    values, ids = logp.topk(k)
    return {tokenizer.decode([int(i)]): float(v) for v, i in zip(values, ids, strict=True)}


def serve(model_dir: str, *, port: int, api_key: str | None, fail_after: int | None) -> None:
    torch, tokenizer, model = load(model_dir)
    lock = threading.Lock()
    counter = {"requests": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep the output clean
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                counter["requests"] += 1
                count = counter["requests"]
            if api_key is not None and self.headers.get("Authorization") != f"Bearer {api_key}":
                return self._send(401, {"error": {"message": "invalid API key"}})
            if fail_after is not None and count > fail_after:
                return self._send(500, {"error": {"message": "scripted failure"}})
            try:
                return self._answer(body, count)
            except Exception as exc:  # a server error, as JSON, never a dropped connection
                return self._send(500, {"error": {"message": f"{type(exc).__name__}: {exc}"}})

        def _answer(self, body: dict, count: int):
            if self.path == "/v1/completions":
                prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
                if not body.get("echo"):
                    return self._send(400, {"error": {"message": "this test server only echoes"}})
                limit = model.config.n_positions
                for prompt in prompts:  # vLLM's answer to a prompt longer than the model's context
                    n = 1 + len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
                    if n + int(body.get("max_tokens") or 0) > limit:
                        message = f"This model's maximum context length is {limit} tokens; the prompt has {n}."
                        return self._send(400, {"error": {"message": message}})
                with lock:
                    choices = score(
                        torch,
                        tokenizer,
                        model,
                        prompts,
                        top=int(body.get("logprobs") or 0),
                        max_tokens=int(body.get("max_tokens") or 0),
                    )
                n_prompt = sum(
                    sum(1 for s in c["logprobs"]["text_offset"] if s < len(p))
                    for c, p in zip(choices, prompts, strict=True)
                )
                return self._send(
                    200,
                    {
                        "id": f"cmpl-{count}",
                        "object": "text_completion",
                        "created": int(time.time()),
                        "model": body.get("model") or "tiny-local",
                        "choices": choices,
                        "usage": {"prompt_tokens": n_prompt},
                    },
                )
            if self.path == "/score":
                with lock:
                    choices = score(torch, tokenizer, model, list(body["texts"]), top=0, max_tokens=0)
                return self._send(
                    200, {"results": [{"logprobs": c["logprobs"]["token_logprobs"][1:]} for c in choices]}
                )
            return self._send(404, {"error": {"message": f"no route {self.path}"}})

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key")
    parser.add_argument("--fail-after", type=int)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    serve(args.model, port=args.port, api_key=args.api_key, fail_after=args.fail_after)


if __name__ == "__main__":
    sys.exit(main())
