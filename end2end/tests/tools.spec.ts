// Tool calls in the chat (issue: structured output, tools, an API): tools come from the settings,
// each call shows as a card, nothing runs before the user says so, and the result goes back to the
// model, which answers from the state that made the call. "Must call a tool" makes the tiny random
// model's reply a call (constrained decoding), so the flow is the same on every run.
import { test, expect } from '@playwright/test';
import { send, waitReady } from './app';

test.setTimeout(400_000);

async function openTools(page: any, maxTokens: number) {
  await page.goto(`/?model=tiny-lfm2&temperature=0&max_tokens=${maxTokens}`);
  await waitReady(page);
  await page.getByTestId('settings-toggle').click();
}

test('a call of the user\'s own tool waits for its result; the answer after it reuses the call\'s turn', async ({ page }) => {
  await openTools(page, 120);
  const tools = [{ name: 'pick', description: 'Picks a colour', parameters: { type: 'object', properties: { color: { enum: ['red', 'blue'] } }, required: ['color'] } }];
  await page.getByTestId('custom-tools').fill('[{"name": "pick", oops');
  await page.getByTestId('custom-tools').blur();
  await expect(page.getByTestId('tools-error')).toContainText('not JSON');
  await page.getByTestId('custom-tools').fill(JSON.stringify(tools));
  await page.getByTestId('custom-tools').blur();
  await expect(page.getByTestId('tools-error')).toHaveCount(0);
  await page.getByTestId('tools-required').check();
  await page.getByTestId('settings-close').click();

  await send(page, 'Pick a colour.');
  const card = page.getByTestId('tool-call');
  await expect(card).toHaveAttribute('data-state', 'waiting', { timeout: 240_000 });
  await expect(card).toHaveAttribute('data-tool', 'pick');
  const args = JSON.parse((await page.getByTestId('tool-args').textContent()) ?? '');
  expect(['red', 'blue']).toContain(args.color);
  // Nothing has run: no result, no second reply; a tool of the user's own has no Run button.
  await expect(page.getByTestId('message-tool')).toHaveCount(0);
  await expect(page.getByTestId('message-assistant')).toHaveCount(1);
  await expect(page.getByTestId('tool-run')).toHaveCount(0);

  await page.getByTestId('tool-result-input').fill(`picked ${args.color}`);
  await page.getByTestId('tool-send-result').click();
  await expect(page.getByTestId('tool-result')).toHaveText(`picked ${args.color}`);
  const answer = page.getByTestId('message-assistant').nth(1);
  await expect(answer).toHaveAttribute('aria-busy', 'false', { timeout: 240_000 });
  await expect(card).toHaveAttribute('data-state', 'answered');
  // The call went back as the model wrote it: the whole first turn is reused, only the result runs.
  const first = page.getByTestId('message-assistant').first();
  const firstPrompt = Number(await first.getAttribute('data-reused-tokens')) + Number(await first.getAttribute('data-prefill-tokens'));
  const reused = Number(await answer.getAttribute('data-reused-tokens'));
  expect(reused).toBeGreaterThan(firstPrompt);
  // The answer after the results is free: no card on it.
  await expect(page.getByTestId('tool-call')).toHaveCount(1);
});

test('the file tool reads only what was attached, after Run', async ({ page }) => {
  await openTools(page, 220);
  await page.getByTestId('tool-read-file').check();
  await page.getByTestId('tools-required').check();
  await page.getByTestId('settings-close').click();
  await page.getByTestId('attach').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('buy milk') });
  await expect(page.getByTestId('attachment')).toHaveText(/notes\.txt/);

  await send(page, 'What is in my notes?');
  const card = page.getByTestId('tool-call');
  await expect(card).toHaveAttribute('data-state', 'waiting', { timeout: 240_000 });
  await expect(card).toHaveAttribute('data-tool', 'read_attached_file');
  const { name } = JSON.parse((await page.getByTestId('tool-args').textContent()) ?? '');
  await page.getByTestId('tool-run').click();
  // The random model names some file; the tool answers from the attachments alone.
  const result = page.getByTestId('tool-result');
  if (name === 'notes.txt') await expect(result).toHaveText('buy milk');
  else {
    await expect(result).toContainText('error: no attached file is named');
    await expect(result).toContainText('(attached: notes.txt)');
  }
  await expect(page.getByTestId('message-assistant').nth(1)).toHaveAttribute('aria-busy', 'false', { timeout: 240_000 });
});
