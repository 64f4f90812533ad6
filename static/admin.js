// whisper-appliance: keeps the admin page's figures current. Every 15 s (while the tab is
// visible) it fetches /admin again and swaps in the new #admin-figures; the key forms are
// left alone so nothing typed is lost. Without JavaScript the page shows its figures as of
// its load.
'use strict';

(() => {
  if (!document.getElementById('admin-figures')) return;
  const REFRESH_MS = 15000;
  async function refresh() {
    if (document.hidden) return;
    try {
      const response = await fetch('/admin', { headers: { Accept: 'text/html' } });
      if (!response.ok) return;
      const next = new DOMParser().parseFromString(await response.text(), 'text/html').getElementById('admin-figures');
      if (next) document.getElementById('admin-figures').replaceWith(next);
    } catch {
      // Offline for a moment: the next tick tries again.
    }
  }
  setInterval(refresh, REFRESH_MS);
})();
