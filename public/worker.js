// Eddy's engine host runs here, off the page's thread (WebGPU works in dedicated
// workers). Messages that arrive while the wasm module loads are queued.
const queued = [];
self.onmessage = (event) => queued.push(event.data);
import init, { worker_main } from './pkg/eddy.js';
await init({ module_or_path: './pkg/eddy.wasm' });
worker_main(queued);
