// The official `ollama` JavaScript client against Slipway: list, show, chat (streamed and not), generate.
// Usage: node ollama_client.mjs <host> <model> [<embedding model>]; prints one JSON object with what it saw.
import { Ollama } from "ollama";

const [host, model, embedder] = process.argv.slice(2);
const client = new Ollama({ host });
const out = {};
out.list = (await client.list()).models.map((m) => m.model);
out.capabilities = (await client.show({ model })).capabilities;
const question = [{ role: "user", content: "What is the capital of France? One word." }];
const whole = await client.chat({ model, messages: question, options: { temperature: 0, num_predict: 16 } });
out.chat = { content: whole.message.content, done: whole.done, eval_count: whole.eval_count };
let streamed = "";
let last = null;
for await (const part of await client.chat({ model, messages: question, stream: true, options: { temperature: 0, num_predict: 16 } })) {
  streamed += part.message.content;
  last = part;
}
out.stream = { content: streamed, done: last.done, done_reason: last.done_reason };
const generated = await client.generate({ model, prompt: "Say hello.", options: { num_predict: 8 } });
out.generate = { response: generated.response, done: generated.done };
if (embedder) {
  const embedded = await client.embed({ model: embedder, input: ["jumps", "over the lazy dog"] });
  out.embed = { embeddings: embedded.embeddings, prompt_eval_count: embedded.prompt_eval_count };
}
console.log(JSON.stringify(out));
