// A link's parameters (?system=..., ?model=...) move into the URL fragment at
// once: the fragment is never sent in a request, and this runs before the
// page's other scripts ask for anything (the server's Referrer-Policy keeps the
// query out of the requests the HTML itself makes). The app reads both forms.
if (location.search.length > 1) {
  const params = new URLSearchParams(location.search);
  const hash = new URLSearchParams(location.hash.slice(1));
  for (const [k, v] of params) if (!hash.has(k)) hash.set(k, v);
  history.replaceState(history.state, '', location.pathname + '#' + hash.toString());
}

// Installs Eddy's service worker and follows it and the browser's install offer.
// This runs before the wasm app hydrates (the browser's `beforeinstallprompt`
// can fire early), keeps what it learned on `window.eddyPwa`, and announces
// changes with an `eddy-pwa` event; the app reads both and calls
// `eddyPwa.update()` / `eddyPwa.install()`.
const pwa = (window.eddyPwa = {
  updateReady: false,
  installable: false,
  installed: false,
  error: null,
  _waiting: null,
  _prompt: null,
  update() {
    if (!this._waiting) return;
    navigator.serviceWorker.addEventListener('controllerchange', () => location.reload(), { once: true });
    this._waiting.postMessage('skip-waiting');
  },
  async install() {
    if (!this._prompt) return;
    const prompt = this._prompt;
    this._prompt = null;
    this.installable = false; // an offer can be shown once
    changed();
    try {
      await prompt.prompt();
      const choice = await prompt.userChoice;
      this.installed = choice.outcome === 'accepted';
    } catch (error) {
      this.error = String(error);
    }
    changed();
  },
});

function changed() {
  window.dispatchEvent(new Event('eddy-pwa'));
}

function waiting(worker) {
  // A new release installed while this page runs the old one.
  pwa._waiting = worker;
  pwa.updateReady = true;
  changed();
}

window.addEventListener('beforeinstallprompt', (event) => {
  event.preventDefault();
  pwa._prompt = event;
  pwa.installable = true;
  changed();
});
window.addEventListener('appinstalled', () => {
  pwa.installable = false;
  pwa.installed = true;
  changed();
});

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js').then((registration) => {
    if (registration.waiting && navigator.serviceWorker.controller) waiting(registration.waiting);
    registration.addEventListener('updatefound', () => {
      const worker = registration.installing;
      worker?.addEventListener('statechange', () => {
        if (worker.state === 'installed' && navigator.serviceWorker.controller) waiting(worker);
      });
    });
  }, (error) => {
    pwa.error = String(error);
    changed();
  });
}
