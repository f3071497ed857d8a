// /eddy.js, the engine for code on the same origin (issue: structured output, tools, an API):
// OpenAI's chat completions (streamed, schema-constrained, a required tool call and its answer)
// and the Prompt API's shape, on the tiny reference model, checked against its reference tokens.
import { test, expect, Page } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { paths } from './paths';

const reference = JSON.parse(fs.readFileSync(path.join(paths.fixtures, 'models/tiny-lfm2/reference.json'), 'utf8'));
const chat = reference.prompts.find((p: any) => p.name === 'chat');

// Loading and decoding on SwiftShader take a while.
test.setTimeout(300_000);

async function openExample(page: Page) {
  await page.goto('/examples/?model=tiny-lfm2');
  await expect(page.getByTestId('example-status')).toHaveText('ready: tiny-lfm2', { timeout: 240_000 });
}

test('chat completions: streamed greedy reply with the reference tokens, a schema-constrained one, a tool call answered', async ({ page }) => {
  await openExample(page);
  const results = await page.evaluate(async (messages) => {
    const eddy = (window as any).eddy;
    // Streamed, greedy: the reference's 20 tokens, in chunks that add up to the whole reply.
    // repetition_penalty (Eddy's addition): the reference is plain greedy; the model's recommended sampling would penalize.
    const stream = await eddy.chat.completions.create({ messages, stream: true, temperature: 0, repetition_penalty: 1, max_tokens: 20 });
    let streamed = '';
    const chunks: any[] = [];
    for await (const c of stream) {
      chunks.push(c);
      streamed += c.choices[0].delta.content ?? '';
    }
    const whole = await eddy.chat.completions.create({ messages, temperature: 0, repetition_penalty: 1, max_tokens: 20 });
    // Held to a JSON Schema.
    const schema = {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 12 }, confidence: { enum: ['low', 'high'] }, rank: { type: 'integer', minimum: 1, maximum: 9 } },
      required: ['city', 'confidence', 'rank'],
      additionalProperties: false,
    };
    const json = await eddy.chat.completions.create({ messages, temperature: 0.8, seed: 3, max_tokens: 80, response_format: { type: 'json_schema', json_schema: { name: 'city', schema } } });
    const object = await eddy.chat.completions.create({ messages, temperature: 0, max_tokens: 60, response_format: { type: 'json_object' } });
    // A required call, then its result back: the answer extends the state that made the call.
    const tools = [{ type: 'function', function: { name: 'calculator', description: 'Evaluates arithmetic', parameters: { type: 'object', properties: { expression: { type: 'string', pattern: '^[1-9] [+*] [1-9]$' } }, required: ['expression'] } } }];
    const ask = [{ role: 'user', content: 'What is 3 times 4?' }];
    const call = await eddy.chat.completions.create({ messages: ask, tools, tool_choice: 'required', temperature: 0, max_tokens: 100 });
    const msg = call.choices[0].message;
    const followUp = [...ask, msg, { role: 'tool', tool_call_id: msg.tool_calls?.[0]?.id, content: '12' }];
    const answer = await eddy.chat.completions.create({ messages: followUp, tools, temperature: 0, max_tokens: 8 });
    const free = await eddy.chat.completions.create({ messages: ask, tools, temperature: 0, max_tokens: 8 });
    return { streamed, chunks, whole, json, object, call, answer, free };
  }, chat.messages);

  const { streamed, chunks, whole, json, object, call, answer, free } = results;
  expect(whole.eddy.tokens).toEqual(chat.greedy_ids);
  expect(whole.object).toBe('chat.completion');
  expect(whole.choices[0].finish_reason).toBe('length');
  expect(whole.usage).toEqual({ prompt_tokens: chat.input_ids.length, completion_tokens: 20, total_tokens: chat.input_ids.length + 20 });
  expect(streamed).toBe(whole.choices[0].message.content);
  expect(chunks[0].choices[0].delta.role).toBe('assistant');
  expect(chunks.every((c: any) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id)).toBe(true);
  const last = chunks[chunks.length - 1];
  expect(last.choices[0].finish_reason).toBe('length');
  expect(last.eddy.tokens).toEqual(chat.greedy_ids);
  // The same conversation again: its whole prompt is held, only the reply runs.
  expect(whole.eddy.stats.reused_tokens).toBeGreaterThan(0);

  const value = JSON.parse(json.choices[0].message.content);
  expect(Object.keys(value).sort()).toEqual(['city', 'confidence', 'rank']);
  expect(typeof value.city).toBe('string');
  expect(value.city.length).toBeLessThanOrEqual(12);
  expect(['low', 'high']).toContain(value.confidence);
  expect(Number.isInteger(value.rank) && value.rank >= 1 && value.rank <= 9).toBe(true);
  expect(json.choices[0].finish_reason).toBe('stop');
  const obj = object.choices[0].message.content;
  if (object.choices[0].finish_reason === 'stop') expect(typeof JSON.parse(obj)).toBe('object');
  else expect(obj.startsWith('{')).toBe(true);

  expect(call.choices[0].finish_reason).toBe('tool_calls');
  expect(call.choices[0].message.content).toBeNull();
  const calls = call.choices[0].message.tool_calls;
  expect(calls).toHaveLength(1);
  expect(calls[0].type).toBe('function');
  expect(calls[0].function.name).toBe('calculator');
  expect(JSON.parse(calls[0].function.arguments).expression).toMatch(/^[1-9] [+*] [1-9]$/);
  // The call went back as the model wrote it: the answer's prompt extends what the engine held.
  expect(answer.eddy.stats.reused_tokens).toBe(call.usage.prompt_tokens + call.usage.completion_tokens);
  expect(answer.usage.prompt_tokens).toBeGreaterThan(answer.eddy.stats.reused_tokens);
  expect(answer.usage.completion_tokens).toBeGreaterThan(0);
  // With tools offered but no call required, a reply that writes no call is text.
  expect(free.choices[0].message.tool_calls ?? []).toHaveLength(0);
  expect(typeof free.choices[0].message.content).toBe('string');
});

test('the Prompt API shape: a session keeps its conversation; prompt, promptStreaming and responseConstraint', async ({ page }) => {
  await openExample(page);
  const r = await page.evaluate(async (messages) => {
    const { LanguageModel } = (window as any).eddyApi;
    const eddy = (window as any).eddy;
    // Without a model: the one this site loaded last (the example page's).
    const availability = await LanguageModel.availability();
    const session = await LanguageModel.create({ eddy, initialPrompts: [messages[0]], temperature: 0, maxTokens: 24 });
    const first = await session.prompt(messages[1].content);
    const reference = await eddy.chat.completions.create({ messages, temperature: 0, max_tokens: 24 });
    let streamed = '';
    for await (const piece of session.promptStreaming('And of Spain?')) streamed += piece;
    const constrained = await session.prompt('Yes or no?', { responseConstraint: { type: 'object', properties: { yes: { type: 'boolean' } }, required: ['yes'], additionalProperties: false } });
    return { availability, first, reference: reference.choices[0].message.content, streamed, constrained, turns: session.messages.length, last: JSON.parse(localStorage.getItem('eddy.model') ?? 'null') };
  }, chat.messages);
  expect(r.availability).toBe('available');
  expect(r.last).toBe('tiny-lfm2');
  expect(r.first).toBe(r.reference);
  expect(r.streamed.length).toBeGreaterThan(0);
  expect(typeof JSON.parse(r.constrained).yes).toBe('boolean');
  // system, then three prompts with their replies
  expect(r.turns).toBe(7);
});

test('the example page streams a reply through its own buttons', async ({ page }) => {
  await openExample(page);
  await page.getByRole('button', { name: 'Ask (streamed)' }).click();
  await expect(page.getByTestId('example-output')).not.toBeEmpty({ timeout: 120_000 });
  await page.getByRole('button', { name: 'Use the calculator' }).click();
  await expect(page.getByTestId('example-output')).toHaveText(/^calculator\(\{"expression":".*"\}\)$/, { timeout: 120_000 });
});
