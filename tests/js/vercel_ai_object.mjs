// The Vercel AI SDK's structured output against poe2openai: generateObject, streamObject, and
// generateText / streamText with `output: Output.object(...)`, through the default provider
// (Responses API) and `openai.chat(...)` (Chat Completions).
// Usage: node vercel_ai_object.mjs BASE_URL — prints one JSON object: the objects each call
// got from each bot, and for every request the SDK sent: [path, model, stream, format type,
// strict].
import { createOpenAI } from "@ai-sdk/openai";
import { generateObject, generateText, Output, streamObject, streamText } from "ai";
import { z } from "zod";

const sent = [];
const recording = async (url, init) => {
  const body = JSON.parse(init.body);
  const format = body.response_format ?? body.text?.format;
  sent.push([new URL(url).pathname, body.model, body.stream ?? false, format?.type ?? null,
             format?.json_schema?.strict ?? format?.strict ?? null]);
  return fetch(url, init);
};
const openai = createOpenAI({ baseURL: process.argv[2], apiKey: "test-key", fetch: recording });
const city = z.object({ name: z.string(), population: z.number().int() });
const prompt = "Largest city of France?";
const faces = { responses: (bot) => openai(bot), chat: (bot) => openai.chat(bot) };
const out = { embedded: {}, repair: {}, noSchema: {} };

for (const [face, model] of Object.entries(faces)) {
  // Bots whose JSON is in a fence, in prose, or after a thinking block.
  for (const bot of ["json-fenced", "json-prose", "json-thinking"]) {
    const common = { model: model(bot), prompt, maxRetries: 0 };
    const generated = await generateObject({ ...common, schema: city });
    const streamed = streamObject({ ...common, schema: city });
    let partials = 0;
    for await (const _ of streamed.partialObjectStream) partials += 1;
    const text = await generateText({ ...common, output: Output.object({ schema: city }) });
    const textStream = streamText({ ...common, output: Output.object({ schema: city }) });
    for await (const _ of textStream.partialOutputStream) { /* drained */ }
    out.embedded[`${face} ${bot}`] = {
      generateObject: generated.object,
      streamObject: await streamed.object,
      partials: partials > 0,
      generateText: text.output,
      streamText: await textStream.output,
    };
  }
  // Invalid first: the proxy's repair round makes it valid before the SDK sees it.
  const repaired = await generateObject({ model: model("json-repair"), prompt, schema: city,
                                          maxRetries: 0 });
  out.repair[face] = repaired.object;
  // No schema: JSON mode.
  const free = await generateObject({ model: model("json-prose"), prompt, output: "no-schema",
                                      maxRetries: 0 });
  out.noSchema[face] = free.object;
}
out.sent = sent;
console.log(JSON.stringify(out));
