// The Vercel AI SDK's default OpenAI provider (Responses API) against poe2openai.
// Usage: node vercel_ai.mjs BASE_URL  — prints one JSON object with every result.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const openai = createOpenAI({ baseURL: process.argv[2], apiKey: "test-key" });
const weather = tool({
  description: "Weather for a location.",
  inputSchema: z.object({ location: z.string() }),
  execute: async ({ location }) => `18C in ${location}`,
});
const out = {};

const text = await generateText({ model: openai("GPT-4o"), prompt: "Hi", maxRetries: 0 });
out.text = { text: text.text, finish: text.finishReason, tokens: text.usage.outputTokens };

const stream = streamText({ model: openai("GPT-4o"), prompt: "Hi", maxRetries: 0 });
let streamed = "";
for await (const piece of stream.textStream) streamed += piece;
out.stream = { text: streamed, finish: await stream.finishReason };

const thinking = await generateText({ model: openai("scenario-thinking"), prompt: "Why?",
                                      maxRetries: 0 });
out.reasoning = { text: thinking.text, reasoning: thinking.reasoningText };

const loop = await generateText({ model: openai("scenario-tools-native"), maxRetries: 0,
                                  prompt: "Weather in Paris?", tools: { get_weather: weather },
                                  stopWhen: stepCountIs(3) });
out.tools = { text: loop.text, steps: loop.steps.length,
              calls: loop.steps.flatMap((s) => s.toolCalls.map((c) => [c.toolName, c.input])) };

const streamLoop = streamText({ model: openai("scenario-tools-native"), maxRetries: 0,
                                prompt: "Weather in Paris?", tools: { get_weather: weather },
                                stopWhen: stepCountIs(3) });
let loopText = "";
for await (const piece of streamLoop.textStream) loopText += piece;
out.streamTools = { text: loopText, steps: (await streamLoop.steps).length };

console.log(JSON.stringify(out));
