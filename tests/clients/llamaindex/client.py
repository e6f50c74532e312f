"""LlamaIndex's `OpenAILike` with its defaults against Slipway: `complete()` posts to the legacy
`/v1/completions`, `chat()` and `stream_chat()` to `/v1/chat/completions`. Run by
tests/integration/test_llamaindex_client.py in LlamaIndex's own virtualenv; prints one JSON object.

    python client.py <base url> <model>
"""

import json
import sys

from llama_index.core.llms import ChatMessage
from llama_index.llms.openai_like import OpenAILike

base, model = sys.argv[1], sys.argv[2]
llm = OpenAILike(model=model, api_base=f"{base}/v1", api_key="any", max_tokens=24, temperature=0, timeout=120)
chat_llm = OpenAILike(
    model=model, api_base=f"{base}/v1", api_key="any", max_tokens=24, temperature=0, timeout=120, is_chat_model=True
)
question = [ChatMessage(role="user", content="What is the capital of France?")]
out = {
    "is_chat_model": llm.metadata.is_chat_model,
    "complete": llm.complete("The capital of France is").text,
    "stream_complete": "".join(r.delta or "" for r in llm.stream_complete("The capital of France is")),
    "chat": chat_llm.chat(question).message.content,
    "stream_chat": "".join(r.delta or "" for r in chat_llm.stream_chat(question)),
}
print(json.dumps(out))
