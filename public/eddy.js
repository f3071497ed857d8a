// Eddy's engine for code on the same origin: the models this site has
// downloaded (same IndexedDB, same resumable, verified download), run on this
// device's GPU in a Web Worker, behind two familiar shapes:
//
//   import { Eddy, LanguageModel } from '/eddy.js';
//   const eddy = await Eddy.create({ model: 'lfm2-350m-q4_0', onProgress: console.log });
//   const r = await eddy.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] });
//   console.log(r.choices[0].message.content);
//
// `eddy.chat.completions.create` takes OpenAI's request and answers with its
// response (or, with `stream: true`, an async iterator of its chunks);
// `LanguageModel` is the Prompt API's shape on the same engine. Nothing leaves
// the device. The worker speaks the app's own protocol (app/src/protocol.rs):
// JSON requests in, JSON events out, one generation at a time, so requests
// here wait their turn.

// The app's own key (JSON, as gloo-storage writes it): a page that uses this
// module and the chat app both know which model was loaded last.
const LAST_MODEL_KEY = 'eddy.model';

function lastModel() {
  try {
    return JSON.parse(localStorage.getItem(LAST_MODEL_KEY) ?? 'null');
  } catch {
    return null;
  }
}

/** An error from the engine, with the event that carried it. */
export class EddyError extends Error {
  constructor(message, event) {
    super(message);
    this.name = 'EddyError';
    this.event = event;
  }
}

/** One engine worker and the order of the requests made to it. */
class Engine {
  constructor(workerUrl) {
    this.worker = new Worker(workerUrl, { type: 'module' });
    this.listeners = new Set();
    this.queue = Promise.resolve();
    this.worker.onmessage = (e) => {
      let event;
      try {
        event = JSON.parse(e.data);
      } catch {
        return;
      }
      for (const listener of [...this.listeners]) listener(event);
    };
    this.worker.onerror = (e) => {
      const event = { type: 'error', message: `the engine's worker failed: ${e.message || 'unknown error'}` };
      for (const listener of [...this.listeners]) listener(event);
    };
  }

  send(request) {
    this.worker.postMessage(JSON.stringify(request));
  }

  /**
   * Sends `request` after the requests before it have finished, and calls
   * `onEvent` with each event until it returns a value other than
   * undefined (the result) or throws (the failure).
   */
  exchange(request, onEvent) {
    const run = () =>
      new Promise((resolve, reject) => {
        const listener = (event) => {
          let result;
          try {
            result = onEvent(event);
          } catch (err) {
            this.listeners.delete(listener);
            reject(err);
            return;
          }
          if (result !== undefined) {
            this.listeners.delete(listener);
            resolve(result);
          }
        };
        this.listeners.add(listener);
        this.send(request);
      });
    const done = this.queue.then(run, run);
    this.queue = done.catch(() => {});
    return done;
  }

  terminate() {
    this.worker.terminate();
  }
}

function failOn(event, ...types) {
  if (types.includes(event.type)) throw new EddyError(event.message || event.error || event.type, event);
  if (event.type === 'error') throw new EddyError(event.message, event);
}

/** OpenAI message content (a string or text parts) as text. */
function contentText(content) {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === 'string' ? p : p.text ?? '')).join('');
  return String(content);
}

function toTurn(message) {
  const turn = { role: message.role, content: contentText(message.content) };
  if (Array.isArray(message.tool_calls) && message.tool_calls.length) {
    turn.tool_calls = message.tool_calls.map((c) => {
      const f = c.function ?? c;
      let args = f.arguments ?? {};
      if (typeof args === 'string') args = args.trim() ? JSON.parse(args) : {};
      return { name: f.name, arguments: args };
    });
  }
  return turn;
}

function toFormat(responseFormat) {
  if (!responseFormat || responseFormat.type === 'text') return null;
  if (responseFormat.type === 'json_object') return { type: 'json_object' };
  if (responseFormat.type === 'json_schema') {
    const schema = responseFormat.json_schema?.schema ?? responseFormat.schema;
    if (!schema) throw new EddyError('response_format json_schema needs json_schema.schema');
    return { type: 'json_schema', schema };
  }
  if (responseFormat.type === 'grammar' || responseFormat.type === 'lark') return { type: 'grammar', lark: responseFormat.grammar ?? responseFormat.lark };
  throw new EddyError(`response_format type ${JSON.stringify(responseFormat.type)} is not supported`);
}

function toToolChoice(choice) {
  if (choice == null || choice === 'auto') return { type: 'auto' };
  if (choice === 'none') return { type: 'none' };
  if (choice === 'required') return { type: 'required' };
  const name = choice.function?.name ?? choice.name;
  if (name) return { type: 'function', name };
  throw new EddyError(`tool_choice ${JSON.stringify(choice)} is not supported`);
}

let callSerial = 0;
function openAiCalls(calls) {
  return calls.map((c) => ({ id: `call_${Date.now().toString(36)}_${callSerial++}`, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } }));
}

function finishReason(stats, calls) {
  if (calls.length) return 'tool_calls';
  if (stats.stop_reason === 'max_tokens' || stats.stop_reason === 'context_full') return 'length';
  return 'stop';
}

function usage(stats) {
  return { prompt_tokens: stats.prompt_tokens, completion_tokens: stats.generated_tokens, total_tokens: stats.prompt_tokens + stats.generated_tokens };
}

/** Where the first of `stops` begins in `text`, or -1. */
function stopAt(text, stops) {
  let at = -1;
  for (const s of stops) {
    const i = s ? text.indexOf(s) : -1;
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** A queue of values handed from event callbacks to an async iterator. */
function channel() {
  const items = [];
  let wake = null;
  let ended = false;
  let failure = null;
  return {
    push(v) {
      items.push(v);
      wake?.();
    },
    end(err) {
      ended = true;
      failure = err ?? null;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (items.length) {
          yield items.shift();
          continue;
        }
        if (ended) {
          if (failure) throw failure;
          return;
        }
        await new Promise((r) => (wake = r));
        wake = null;
      }
    },
  };
}

export class Eddy {
  /**
   * Starts the engine, downloads `model` if this site has not (resuming a
   * partial download), loads it on the GPU and resolves when it is ready.
   * `onProgress({ phase: 'download' | 'load', loaded, total })`.
   */
  static async create({ model, onProgress, baseUrl, workerUrl } = {}) {
    const engine = new Engine(workerUrl ?? new URL('./worker.js', import.meta.url));
    try {
      const base = baseUrl ?? new URL('./', import.meta.url).href.replace(/\/$/, '');
      const catalog = await engine.exchange({ type: 'catalog', base_url: base }, (e) => {
        failOn(e);
        if (e.type === 'catalog') return e;
      });
      const id = model ?? lastModel();
      if (!id) throw new EddyError('no model given, and this site has loaded none yet');
      const listed = catalog.models.find((m) => m.entry.id === id);
      const cached = catalog.cached.find((m) => m.id === id);
      const complete = cached && cached.chunks > 0 && cached.complete_chunks === cached.chunks;
      if (!listed && !complete) {
        throw new EddyError(catalog.error ? `the catalog is unavailable (${catalog.error}) and ${id} is not downloaded` : `no model ${id} on this site (it has: ${catalog.models.map((m) => m.entry.id).join(', ') || 'none'})`);
      }
      if (listed && listed.fits && listed.fits.Err) throw new EddyError(`${id} does not fit this device: ${listed.fits.Err}`);
      if (!complete) {
        await engine.exchange({ type: 'download', base_url: base, id }, (e) => {
          if (e.id !== undefined && e.id !== id) return undefined;
          failOn(e, 'download_failed');
          if (e.type === 'download_progress') onProgress?.({ phase: 'download', loaded: e.done_bytes, total: e.total_bytes });
          if (e.type === 'downloaded') return true;
        });
      }
      const loaded = await engine.exchange({ type: 'load', id, options: {} }, (e) => {
        if (e.id !== undefined && e.id !== id) return undefined;
        failOn(e, 'load_failed');
        if (e.type === 'load_progress') onProgress?.({ phase: 'load', loaded: e.done_bytes, total: e.total_bytes });
        if (e.type === 'loaded') return e;
      });
      try {
        localStorage.setItem(LAST_MODEL_KEY, JSON.stringify(id));
      } catch {
        // Storage may be off (a private window): the model still runs.
      }
      return new Eddy(engine, id, loaded, listed?.sampling ?? null);
    } catch (err) {
      engine.terminate();
      throw err;
    }
  }

  constructor(engine, id, loaded, sampling) {
    this.engine = engine;
    this.model = id;
    this.contextLength = loaded.context_length;
    this.sampling = sampling ?? { temperature: 0.3, top_k: 0, top_p: 1, min_p: 0.15, repetition_penalty: 1.05 };
    this.conversation = `eddy-js-${Math.random().toString(36).slice(2)}`;
    this.chat = { completions: { create: (request) => this.#create(request) } };
  }

  /** Stops the engine and frees the GPU. */
  close() {
    this.engine.terminate();
  }

  #params(r) {
    const s = this.sampling;
    return {
      temperature: r.temperature ?? s.temperature,
      top_k: r.top_k ?? s.top_k ?? 0,
      top_p: r.top_p ?? s.top_p ?? 1,
      min_p: r.min_p ?? s.min_p ?? 0,
      repetition_penalty: r.repetition_penalty ?? s.repetition_penalty ?? 1,
      max_tokens: r.max_completion_tokens ?? r.max_tokens ?? 512,
      seed: (r.seed ?? Math.floor(Math.random() * 2 ** 31)) >>> 0,
    };
  }

  #create(request) {
    if (!Array.isArray(request?.messages) || !request.messages.length) throw new EddyError('messages must be a non-empty array');
    const stops = request.stop == null ? [] : [].concat(request.stop);
    const chat = {
      type: 'chat',
      conversation: this.conversation,
      messages: request.messages.map(toTurn),
      params: this.#params(request),
      format: toFormat(request.response_format),
      tools: request.tools ?? [],
      tool_choice: toToolChoice(request.tool_choice),
    };
    const id = `chatcmpl-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const created = Math.floor(Date.now() / 1000);
    const chunkOf = (delta, finish, extra = {}) => ({ id, object: 'chat.completion.chunk', created, model: this.model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra });
    let text = '';
    let sent = 0;
    let stopped = false;
    const out = request.stream ? channel() : null;
    const tools = chat.tools.length > 0 && chat.tool_choice.type !== 'none';
    const result = this.engine.exchange(chat, (e) => {
      failOn(e, 'generation_failed');
      if (e.type === 'token' && !stopped) {
        text += e.text;
        const at = stopAt(text, stops);
        if (at >= 0) {
          text = text.slice(0, at);
          stopped = true;
          this.engine.send({ type: 'stop' });
        }
        // With tools the reply may turn out to be a call: its text comes at the end.
        // Held back: a possible start of a stop string.
        const hold = stopped ? 0 : Math.max(0, ...stops.map((s) => s.length - 1));
        if (out && !tools && text.length - hold > sent) {
          out.push(chunkOf({ content: text.slice(sent, text.length - hold) }, null));
          sent = text.length - hold;
        }
      }
      if (e.type === 'generated') return e;
    });
    const finish = (e) => {
      const calls = openAiCalls(e.calls ?? []);
      const content = stopped ? text : e.text;
      // Beyond OpenAI's shape: the reply's token ids and the engine's figures
      // (prefill and decode speed, tokens reused from the previous turn).
      const eddy = { tokens: e.tokens, stats: e.stats };
      return { calls, content, reason: stopped ? 'stop' : finishReason(e.stats, calls), usage: usage(e.stats), eddy };
    };
    if (!out) {
      return result.then((e) => {
        const f = finish(e);
        const message = { role: 'assistant', content: f.calls.length && !f.content ? null : f.content };
        if (f.calls.length) message.tool_calls = f.calls;
        return { id, object: 'chat.completion', created, model: this.model, choices: [{ index: 0, message, finish_reason: f.reason }], usage: f.usage, eddy: f.eddy };
      });
    }
    out.push(chunkOf({ role: 'assistant', content: '' }, null));
    result.then(
      (e) => {
        const f = finish(e);
        if (f.content.length > sent) out.push(chunkOf({ content: f.content.slice(sent) }, null));
        if (f.calls.length) out.push(chunkOf({ tool_calls: f.calls.map((c, index) => ({ index, ...c })) }, null));
        out.push(chunkOf({}, f.reason, { usage: f.usage, eddy: f.eddy }));
        out.end();
      },
      (err) => out.end(err),
    );
    return Promise.resolve(out);
  }
}

/**
 * The Prompt API's shape (`LanguageModel.create`, `session.prompt`,
 * `session.promptStreaming`) on Eddy's engine. Without `model`, the one this
 * site loaded last.
 */
export class LanguageModel {
  static async availability({ model } = {}) {
    if (!('gpu' in navigator)) return 'unavailable';
    return model || lastModel() ? 'available' : 'downloadable';
  }

  /** `maxTokens` and `eddy` (an Eddy to share) are Eddy's additions to the Prompt API. */
  static async create({ model, initialPrompts = [], temperature, topK, maxTokens, monitor, signal, eddy } = {}) {
    const onProgress = monitor ? (p) => monitor.dispatchEvent?.(Object.assign(new Event('downloadprogress'), { loaded: p.loaded / (p.total || 1) })) : undefined;
    const engine = eddy ?? (await Eddy.create({ model, onProgress }));
    if (signal?.aborted) throw signal.reason ?? new DOMException('aborted', 'AbortError');
    return new LanguageModelSession(engine, initialPrompts, { temperature, top_k: topK, max_tokens: maxTokens });
  }
}

class LanguageModelSession {
  constructor(eddy, initialPrompts, sampling) {
    this.eddy = eddy;
    this.messages = initialPrompts.map((p) => ({ role: p.role, content: contentText(p.content) }));
    this.sampling = sampling;
  }

  #request(input, options, stream) {
    const user = typeof input === 'string' ? [{ role: 'user', content: input }] : input.map((p) => ({ role: p.role ?? 'user', content: contentText(p.content) }));
    const request = { messages: [...this.messages, ...user], stream, temperature: this.sampling.temperature, top_k: this.sampling.top_k, max_tokens: this.sampling.max_tokens };
    if (options?.responseConstraint) request.response_format = { type: 'json_schema', json_schema: { schema: options.responseConstraint } };
    return { user, request };
  }

  /** The reply to `input` (a string, or messages), as text. */
  async prompt(input, options = {}) {
    const { user, request } = this.#request(input, options, false);
    const r = await this.eddy.chat.completions.create(request);
    const text = r.choices[0].message.content ?? '';
    this.messages.push(...user, { role: 'assistant', content: text });
    return text;
  }

  /** The reply to `input` as a ReadableStream of text pieces (async-iterable). */
  promptStreaming(input, options = {}) {
    const { user, request } = this.#request(input, options, true);
    let reply = '';
    let iterator;
    const session = this;
    return new ReadableStream({
      // Each pull enqueues a piece or closes: a pull that did neither would
      // never be called again, and the reader would wait forever.
      async pull(controller) {
        iterator ??= (await session.eddy.chat.completions.create(request))[Symbol.asyncIterator]();
        for (;;) {
          const { value, done } = await iterator.next();
          if (done) {
            session.messages.push(...user, { role: 'assistant', content: reply });
            controller.close();
            return;
          }
          const piece = value.choices[0].delta.content;
          if (piece) {
            reply += piece;
            controller.enqueue(piece);
            return;
          }
        }
      },
    });
  }

  destroy() {}
}
