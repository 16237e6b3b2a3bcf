// Creates and destroys boxes one after another with the official SDK client until a stop file
// appears, so that a test can change the cluster while creates run:
//   node create_loop.mjs <url> <api key or ""> <stop file>
// Each create prints one line `CREATE <json>` with its start and end (ms since the epoch),
// whether it succeeded, and the spoke it went to or the error text. Every box it made is
// destroyed at once. Exits 0 after the stop file appears (a failed create does not stop it).
import { existsSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, key, stopFile] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: key ? { headers: { Authorization: `Bearer ${key}` } } : undefined,
});
const client = new Client({ name: 'llmbox-e2e-create-loop', version: '0.0.1' });
await client.connect(transport);
const options = { timeout: 300_000, resetTimeoutOnProgress: true };
while (!existsSync(stopFile)) {
  const start = Date.now();
  let line;
  try {
    const made = await client.callTool({ name: 'create_llmbox', arguments: {} }, undefined, options);
    if (made.isError) {
      line = { start, end: Date.now(), ok: false, error: JSON.stringify(made.content) };
    } else {
      const box = made.structuredContent;
      line = { start, end: Date.now(), ok: true, spoke: box.spoke, box_id: box.box_id };
      const gone = await client.callTool({ name: 'destroy_llmbox', arguments: { box_id: box.box_id } },
        undefined, options);
      if (gone.isError) line.destroy_error = JSON.stringify(gone.content);
    }
  } catch (err) {
    line = { start, end: Date.now(), ok: false, error: `${err.name}: ${err.message}` };
  }
  console.log(`CREATE ${JSON.stringify(line)}`);
}
await client.close();
