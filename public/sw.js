// Eddy's service worker: the app shell, precached per release, so the app opens offline.
// scripts/pwa-assets.sh rewrites the VERSION and ASSETS lines from the built site.
// As committed (e.g. served by `cargo leptos watch`) it precaches nothing: the app
// then works online only.
//
// What it never does: touch /models/. Model shards and manifests go straight to the
// network; the downloader keeps the verified chunks once, in IndexedDB.
const VERSION = 'unbuilt';
const ASSETS = [];
const PREFIX = 'eddy-shell-';
const CACHE = PREFIX + VERSION;

self.addEventListener('install', (event) => {
  // `reload`: skip the HTTP cache, so the cache holds exactly this release's files.
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(ASSETS.map((url) => new Request(url, { cache: 'reload' })))));
  // No skipWaiting here: a new release waits until the page agrees to reload
  // (a tab running the old wasm must not get the new release's files).
});

self.addEventListener('message', (event) => {
  if (event.data === 'skip-waiting') self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith('/models/')) return;
  if (request.mode === 'navigate' && url.pathname === '/') {
    // The page is the same for every query (?model=...): the client reads the URL.
    event.respondWith(fromCache('/', request));
  } else if (ASSETS.includes(url.pathname)) {
    event.respondWith(fromCache(url.pathname, request));
  }
});

async function fromCache(key, request) {
  const cache = await caches.open(CACHE);
  return (await cache.match(key)) || fetch(request);
}
