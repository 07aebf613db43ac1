// The browser harness's stand-in for VS Code's webview API: messages go to the harness host over
// HTTP, answers and notifications come back as window 'message' events, as in a real webview.
(() => {
  document.body.classList.add(`vscode-${new URLSearchParams(location.search).get('theme') || 'dark'}`);
  const deliver = (list) => list.forEach((m) => window.postMessage(m, '*'));
  const post = (m) => fetch('/message', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(m) }).then((r) => r.json()).then(deliver);
  const poll = () => fetch('/poll').then((r) => r.json()).then((list) => { deliver(list); setTimeout(poll, 50); }, () => setTimeout(poll, 500));
  const key = `state:${location.pathname}`;
  window.acquireVsCodeApi = () => ({
    postMessage: post,
    getState: () => JSON.parse(sessionStorage.getItem(key) || 'null') ?? undefined,
    setState: (s) => sessionStorage.setItem(key, JSON.stringify(s)),
  });
  poll();
})();
