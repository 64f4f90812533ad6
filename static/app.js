// whisper-appliance: upgrades the server-rendered page to live uploads and transcripts.
//
// Without this script the page still works: the form posts to /jobs, the job page
// refreshes itself, the history pages and searches with links and a GET form, and delete
// buttons post forms. With it:
// - files are chosen, dropped anywhere on the page, checked (type and size, in the
//   server's own words, which the page carries in data- attributes) and listed before they
//   are sent; each upload can be cancelled, and leaving the page mid-upload asks first;
// - each upload gets a card (cloned from the page's <template>, so the markup lives in one
//   place) that follows its job's event stream: status, elapsed and remaining time, queue
//   position, the text as it arrives, then the final transcript with actions kept in
//   reach, two views, search, and playback of the local file (an object URL: nothing is
//   uploaded again) that lights up the line, and with word timings the word, being played;
// - running and queued jobs come back as cards after a reload, and the history keeps
//   itself current by polling the job list with If-None-Match (a 304 costs a header);
// - deleting from the history can be undone for a few seconds.
// Errors are the server's own sentences, shown in the page's role="alert" region. No
// inline code: the page runs under a CSP that allows only this file.
'use strict';

(() => {
  // Over HTTP/1.1 a browser keeps at most six connections to one host, and each event
  // stream holds one; past this many, cards poll instead so uploads are never starved.
  const MAX_STREAMS = 3;
  const POLL_MS = 2000;
  // The history asks "anything new?" this often while the page is visible; unchanged
  // answers are bodiless 304s.
  const HISTORY_POLL_MS = 4000;
  const HISTORY_PAGE = 20;
  const MAX_PAGE = 100;
  // How long a deleted history row can be brought back before the job is deleted.
  const UNDO_MS = 8000;
  // A pause this long (seconds) between lines starts a new paragraph.
  const PARAGRAPH_GAP = 1.5;
  const FINISHED = new Set(['done', 'failed', 'cancelled']);
  const STATUS_LABELS = { queued: 'Queued', running: 'Running', done: 'Done', failed: 'Failed', cancelled: 'Cancelled' };

  const alerts = document.getElementById('alerts');
  const baseTitle = document.title;

  // ----- small helpers ---------------------------------------------------------------

  // mm:ss under an hour, h:mm:ss from then on; the server's pages use the same format.
  function clock(seconds) {
    const total = Math.max(0, Math.floor(seconds));
    const h = Math.floor(total / 3600);
    const m = Math.floor(total / 60) % 60;
    const s = total % 60;
    const mm = String(m).padStart(2, '0');
    const ss = String(s).padStart(2, '0');
    return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  function megabytes(bytes) {
    return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} kB`;
  }

  function languageName(code) {
    try {
      return new Intl.DisplayNames(['en'], { type: 'language' }).of(code) || code;
    } catch {
      return code;
    }
  }

  // The server's messages are clauses in lower case; the page shows sentences.
  function sentence(text) {
    return text ? text[0].toUpperCase() + text.slice(1) : text;
  }

  function seconds(rfc3339) {
    const ms = Date.parse(rfc3339);
    return Number.isNaN(ms) ? null : ms / 1000;
  }

  // The card's one-line status, worded as the server words it on the job page.
  function statusText(job) {
    switch (job.status) {
      case 'queued':
        if (job.queue_position === 1) return 'Queued: next in line';
        return job.queue_position ? `Queued: number ${job.queue_position} in line` : 'Queued';
      case 'running':
        return 'Transcribing';
      case 'done':
        if (job.no_speech && job.duration_seconds != null) {
          return `No speech found in ${clock(job.duration_seconds)} of audio`;
        }
        if (!job.language || job.duration_seconds == null) return 'Done';
        return `Done: ${job.speech_seconds != null ? `${clock(job.speech_seconds)} of speech in ` : ''}`
          + `${clock(job.duration_seconds)} of audio, ${languageName(job.language)}`;
      case 'failed':
        return 'Failed';
      case 'cancelled':
        return 'Cancelled';
      default:
        return job.status;
    }
  }

  // The server's sentence from a JSON error body, or a plain one when there is none.
  function serverMessage(body, status) {
    if (body && body.error && typeof body.error.message === 'string') return sentence(body.error.message);
    return `The server answered ${status} without an explanation.`;
  }

  async function failure(response) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON: a proxy's page, say; fall back to the status.
    }
    return serverMessage(body, response.status);
  }

  function showAlert(message) {
    if (!alerts) return;
    const line = document.createElement('p');
    line.textContent = message;
    alerts.append(line);
  }

  function clearAlerts() {
    if (alerts) alerts.replaceChildren();
  }

  function localTimes(root) {
    for (const time of root.querySelectorAll('time[datetime]')) {
      const date = new Date(time.dateTime);
      if (!Number.isNaN(date.getTime())) {
        time.textContent = date.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
      }
    }
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  const motion = window.matchMedia('(prefers-reduced-motion: no-preference)');

  // ----- the tab title and notifications ---------------------------------------------

  const cards = new Set();
  let endedUnseen = 0;

  // Progress in the tab title, so a background tab shows how far the jobs are.
  function updateTitle() {
    const active = [...cards].filter((card) => card.active());
    const running = active.find((card) => card.job && card.job.status === 'running');
    let prefix = '';
    if (running) prefix = `(${running.job.progress || 0}%) `;
    else if (active.length > 0) prefix = `(${active[0].root.dataset.status === 'uploading' ? 'uploading' : 'queued'}) `;
    else if (endedUnseen > 0) prefix = `(${endedUnseen} done) `;
    document.title = prefix + baseTitle;
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) {
      endedUnseen = 0;
      updateTitle();
    }
  });

  const notify = document.getElementById('notify');

  function enhanceNotifications() {
    if (!notify || !('Notification' in window)) return;
    document.getElementById('notify-field').hidden = false;
    notify.checked = Notification.permission === 'granted' && localStorage.getItem('notify') === 'yes';
    notify.addEventListener('change', async () => {
      if (notify.checked && Notification.permission !== 'granted') {
        const answer = await Notification.requestPermission();
        if (answer !== 'granted') {
          notify.checked = false;
          showAlert('The browser does not allow notifications from this page; its site settings can allow them.');
        }
      }
      localStorage.setItem('notify', notify.checked ? 'yes' : 'no');
    });
  }

  function announceEnd(card) {
    if (!document.hidden) return;
    endedUnseen += 1;
    updateTitle();
    if (notify && notify.checked && Notification.permission === 'granted') {
      new Notification(`${card.job.file_name}: ${statusText(card.job)}`, { tag: card.job.id });
    }
  }

  // ----- job cards -------------------------------------------------------------------

  class Card {
    constructor(root) {
      this.root = root;
      this.job = null;
      this.streaming = false;
      this.polling = false;
      this.transcriptLoaded = false;
      this.request = null;
      this.player = null;
      this.matches = [];
      this.matchAt = -1;
      const find = (selector) => root.querySelector(selector);
      this.link = find('.card-link');
      this.status = find('.card-status');
      this.model = find('.card-model');
      this.time = find('.card-time');
      this.uploadMeter = find('.upload-meter');
      this.jobMeter = find('.job-meter');
      this.error = find('.card-error');
      this.transcript = find('.transcript');
      this.segments = find('.segments');
      this.copyButton = find('.copy');
      this.copyTimesButton = find('.copy-times');
      this.copyStatus = find('.copy-status');
      this.cancelButton = find('.cancel');
      this.downloads = find('.downloads');
      this.partial = find('.partial-download');
      this.tools = find('.card-tools');
      this.findInput = find('.find-input');
      this.findCount = find('.find-count');
      this.playerBox = find('.player-box');
      this.copyButton.addEventListener('click', () => this.copy(false));
      this.copyTimesButton.addEventListener('click', () => this.copy(true));
      this.cancelButton.addEventListener('click', () => this.cancel());
      for (const button of root.querySelectorAll('.view')) {
        button.addEventListener('click', () => this.setView(button.dataset.view));
      }
      this.findInput.addEventListener('input', () => this.search(this.findInput.value));
      this.findInput.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') {
          event.preventDefault();
          this.nextMatch(event.shiftKey ? -1 : 1);
        }
      });
      this.segments.addEventListener('click', (event) => {
        const at = event.target.closest('.word, li');
        if (at && this.player && (event.target.closest('.ts') || !window.getSelection().toString())) {
          this.seek(Number(at.dataset.start));
        }
      });
      this.showTools();
      cards.add(this);
    }

    // A new card for a file about to be uploaded; the file itself plays in the card.
    static create(file) {
      const card = Card.blank(file.name);
      card.attachPlayer(file);
      card.setStatus('Waiting to upload', 'new');
      card.cancelButton.hidden = false;
      return card;
    }

    // A card for a job this tab did not upload (restored after a reload).
    static restore(job) {
      const card = Card.blank(job.file_name);
      card.noPlayer('The recording was chosen before this page was reloaded; the server keeps no copy to play, so only the text is shown.');
      card.update(job);
      return card;
    }

    static blank(fileName) {
      const template = document.getElementById('card-template');
      const root = template.content.firstElementChild.cloneNode(true);
      const card = new Card(root);
      card.link.textContent = fileName;
      card.link.removeAttribute('href');
      card.transcript.setAttribute('aria-label', `Transcript of ${fileName}`);
      document.getElementById('cards').prepend(root);
      document.getElementById('uploads').hidden = false;
      return card;
    }

    active() {
      const status = this.root.dataset.status;
      return status === 'uploading' || status === 'queued' || status === 'running';
    }

    attachPlayer(file) {
      this.player = this.root.querySelector('.player');
      this.player.src = URL.createObjectURL(file);
      this.player.setAttribute('aria-label', `Play ${file.name}`);
      this.root.querySelector('.player-note').textContent =
        'Playing your own copy of the file, in this tab. Select a time to listen from there.';
      this.playerBox.hidden = false;
      this.player.addEventListener('timeupdate', () => this.follow(this.player.currentTime));
    }

    noPlayer(note) {
      this.root.querySelector('.player').remove();
      this.root.querySelector('.player-note').textContent = note;
      this.playerBox.hidden = false;
    }

    seek(at) {
      if (!this.player || Number.isNaN(at)) return;
      this.player.currentTime = at;
      this.follow(at);
      this.player.play().catch(() => {
        // Autoplay refused or no audio device: the position has moved, which is what was asked.
      });
    }

    // Highlights the line being played and, where words are timed, the word.
    follow(at) {
      let current = null;
      for (const line of this.segments.children) {
        if (Number(line.dataset.start) <= at + 0.05) current = line;
        else break;
      }
      const word = current && [...current.querySelectorAll('.word')]
        .find((node) => Number(node.dataset.start) <= at && at < Number(node.dataset.end));
      for (const old of this.segments.querySelectorAll('.current')) {
        if (old !== current && old !== word) old.classList.remove('current');
      }
      if (word) word.classList.add('current');
      if (current && !current.classList.contains('current')) {
        current.classList.add('current');
        if (!this.player.paused) current.scrollIntoView({ block: 'nearest', behavior: motion.matches ? 'smooth' : 'auto' });
      }
    }

    setStatus(text, state) {
      this.status.textContent = text;
      this.status.className = `card-status status-${state}`;
      this.root.dataset.status = state;
      updateTitle();
    }

    uploading(fraction) {
      this.uploadMeter.hidden = false;
      setMeter(this.uploadMeter, Math.round(fraction * 100));
      // The status is a live region: it says "Uploading" once, not at every percent.
      if (this.root.dataset.status !== 'uploading') this.setStatus('Uploading', 'uploading');
    }

    refused(message, state = 'failed', text = 'Not uploaded') {
      this.request = null;
      this.uploadMeter.hidden = true;
      this.cancelButton.hidden = true;
      this.setStatus(text, state);
      if (message) this.showError(message);
    }

    showError(message) {
      this.error.textContent = message;
      this.error.hidden = false;
    }

    update(job) {
      const was = this.job && this.job.status;
      this.job = job;
      this.root.dataset.jobId = job.id;
      this.link.href = job.links.page;
      if (job.model) {
        this.model.querySelector('.card-model-name').textContent = job.model;
        this.model.hidden = false;
      }
      this.uploadMeter.hidden = true;
      this.setStatus(statusText(job), job.status);
      this.jobMeter.hidden = job.status !== 'running';
      this.setProgress(job.progress);
      this.cancelButton.hidden = FINISHED.has(job.status);
      if (job.status === 'failed' && job.error) this.showError(sentence(job.error));
      if (job.status === 'done') this.finish(job);
      if (job.status === 'cancelled') this.offerPartial();
      if (job.status === 'running' && was !== 'running') this.runningSince = seconds(job.started_at) ?? Date.now() / 1000;
      if (job.status === 'queued' && !this.queuedSince) this.queuedSince = seconds(job.created_at) ?? Date.now() / 1000;
      if (was && !FINISHED.has(was) && FINISHED.has(job.status)) announceEnd(this);
      this.tick();
    }

    setProgress(percent) {
      setMeter(this.jobMeter, percent);
      if (this.job) this.job.progress = percent;
      updateTitle();
      this.tick();
    }

    // The line under the status: how long, how much longer, how fast. Redrawn every
    // second while the job is active; not a live region, which would talk every second.
    tick() {
      const job = this.job;
      const now = Date.now() / 1000;
      let text = '';
      if (job && job.status === 'queued') {
        text = `Waiting for ${clock(now - (this.queuedSince || now))}`;
        const typical = recent.typicalRun();
        if (typical && job.queue_position) {
          text += ` · about ${clock(typical * job.queue_position)} until it starts (judged from recent jobs)`;
        }
      } else if (job && job.status === 'running') {
        const elapsed = now - (this.runningSince || now);
        text = `Running for ${clock(elapsed)}`;
        const done = (job.progress || 0) / 100;
        if (done >= 0.03 && elapsed >= 2) {
          text += ` · about ${clock((elapsed * (1 - done)) / done)} left`;
          if (job.duration_seconds) text += ` · ${((job.duration_seconds * done) / elapsed).toFixed(1)}× real time`;
        } else {
          text += ' · estimating the time left';
        }
      } else if (job && job.status === 'done' && job.started_at && job.finished_at) {
        const took = Math.max(1, seconds(job.finished_at) - seconds(job.started_at));
        text = `Took ${clock(took)}`;
        if (job.duration_seconds) text += ` for ${clock(job.duration_seconds)} of audio (${(job.duration_seconds / took).toFixed(1)}× real time)`;
      }
      this.time.textContent = text;
      this.time.hidden = text === '';
    }

    // A segment from the event stream; after a reconnect the stream repeats the ones
    // already shown, so they are told apart by id.
    addSegment(segment) {
      const text = (segment.text || '').trim();
      if (!text || this.segments.querySelector(`[data-segment="${segment.id}"]`)) return;
      this.segments.append(this.segmentItem(segment.id, segment.start, segment.end, text));
      this.transcript.hidden = false;
      this.showTools();
    }

    segmentItem(id, start, end, text, words = []) {
      const item = document.createElement('li');
      item.dataset.segment = String(id);
      item.dataset.start = String(start);
      item.dataset.end = String(end ?? start);
      const stamp = element(this.player ? 'button' : 'span', 'ts', `[${clock(start)}]`);
      if (this.player) {
        stamp.type = 'button';
        stamp.title = 'Play from here';
      }
      const body = element('span', 'text', text);
      if (words.length) timeWords(body, words);
      item.append(stamp, ' ', body);
      const previous = this.segments.lastElementChild;
      if (previous && start - Number(previous.dataset.end) >= PARAGRAPH_GAP) item.classList.add('para-start');
      return item;
    }

    showTools() {
      const lines = this.segments.children.length;
      this.tools.hidden = lines === 0;
      this.copyButton.hidden = lines === 0;
      this.copyTimesButton.hidden = lines === 0;
      if (lines > 0 && this.player) {
        // Server-rendered or earlier lines get their play buttons now.
        for (const stamp of this.segments.querySelectorAll('span.ts')) {
          const button = element('button', 'ts', stamp.textContent);
          button.type = 'button';
          button.title = 'Play from here';
          stamp.replaceWith(button);
        }
      }
    }

    async finish(job) {
      for (const link of this.downloads.querySelectorAll('a[data-format]')) {
        const url = job.links.results[link.dataset.format];
        if (url) link.href = url;
      }
      this.downloads.hidden = false;
      if (this.transcriptLoaded) return;
      this.transcriptLoaded = true;
      // The live segments were trimmed as they came; the stored transcript is the truth.
      const response = await fetch(job.links.results.json);
      if (!response.ok) {
        showAlert(`${job.file_name}: ${await failure(response)}`);
        return;
      }
      const result = await response.json();
      const shown = [...this.segments.querySelectorAll('.text')];
      const final = result.segments.filter((segment) => segment.text.trim());
      // Usually the live lines are the final ones; swapping them would make screen readers
      // read the whole transcript again, so they are swapped only when they differ. Word
      // timings come only with the final transcript; they split a line's text into words
      // without changing it.
      this.segments.setAttribute('aria-live', 'off');
      if (shown.map((node) => node.textContent).join('\n') !== final.map((segment) => segment.text.trim()).join('\n')) {
        this.segments.replaceChildren();
        for (const segment of final) {
          this.segments.append(this.segmentItem(segment.id, segment.start, segment.end, segment.text.trim(), segment.words));
        }
      } else {
        final.forEach((segment, index) => {
          if (segment.words && segment.words.length) timeWords(shown[index], segment.words);
        });
      }
      this.segments.setAttribute('aria-live', 'polite');
      this.transcript.hidden = this.segments.children.length === 0;
      this.showTools();
      if (this.findInput.value) this.search(this.findInput.value);
      this.root.dataset.final = 'true';
    }

    // A cancelled job keeps no transcript on the server; what arrived can still be saved.
    offerPartial() {
      const lines = this.lines(false);
      if (!lines) return;
      if (this.partial.href) URL.revokeObjectURL(this.partial.href);
      this.partial.href = URL.createObjectURL(new Blob([`${lines}\n`], { type: 'text/plain' }));
      this.partial.download = `${this.job.file_name.replace(/\.[^.]*$/, '')} (partial).txt`;
      this.partial.hidden = false;
    }

    lines(withTimes) {
      return [...this.segments.children]
        .map((line) => {
          const text = line.querySelector('.text').textContent;
          return withTimes ? `${line.querySelector('.ts').textContent} ${text}` : text;
        })
        .join('\n');
    }

    async copy(withTimes) {
      try {
        if (!navigator.clipboard) throw new Error('no clipboard');
        await navigator.clipboard.writeText(this.lines(withTimes));
        this.copyStatus.textContent = withTimes ? 'Copied, with times.' : 'Copied.';
      } catch {
        // Plain http:// on another host has no clipboard API: select the text instead.
        const range = document.createRange();
        range.selectNodeContents(this.segments);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        this.copyStatus.textContent = 'Copying is blocked here; the text is selected, press Ctrl+C (⌘C on a Mac).';
      }
    }

    setView(view) {
      for (const button of this.root.querySelectorAll('.view')) {
        button.setAttribute('aria-pressed', String(button.dataset.view === view));
      }
      this.segments.classList.toggle('paragraphs', view === 'paragraphs');
    }

    // Marks every match of `query` in the transcript and says how many there are. A match
    // is a list of <mark>s: one per word it spans, where words are timed.
    search(query) {
      const needle = query.trim().toLowerCase();
      for (const mark of this.segments.querySelectorAll('mark')) mark.replaceWith(...mark.childNodes);
      this.segments.normalize();
      this.matches = [];
      this.matchAt = -1;
      for (const text of needle ? this.segments.querySelectorAll('.text') : []) {
        const lower = text.textContent.toLowerCase();
        for (let at = lower.indexOf(needle); at !== -1; at = lower.indexOf(needle, at + needle.length)) {
          this.matches.push(markText(text, at, at + needle.length));
        }
      }
      const count = this.matches.length;
      this.findCount.textContent = needle ? (count === 1 ? '1 match' : `${count} matches`) : '';
      if (count) this.nextMatch(1);
    }

    nextMatch(step) {
      if (this.matches.length === 0) return;
      if (this.matchAt >= 0) for (const mark of this.matches[this.matchAt]) mark.classList.remove('here');
      this.matchAt = (this.matchAt + step + this.matches.length) % this.matches.length;
      const marks = this.matches[this.matchAt];
      for (const mark of marks) mark.classList.add('here');
      marks[0].scrollIntoView({ block: 'center', behavior: motion.matches ? 'smooth' : 'auto' });
      if (this.matches.length > 1) this.findCount.textContent = `${this.matchAt + 1} of ${this.matches.length} matches`;
    }

    async cancel() {
      // Still uploading, or waiting for its turn to upload: stop here; nothing reached a job.
      if (!this.job) {
        this.cancelled = true;
        if (this.request) this.request.abort();
        else this.refused(null, 'cancelled', 'Upload cancelled');
        return;
      }
      this.cancelButton.disabled = true;
      try {
        const response = await fetch(this.job.links.cancel, { method: 'POST' });
        if (response.ok) {
          this.update(await response.json());
          recent.refresh();
        } else {
          showAlert(`${this.job.file_name}: ${await failure(response)}`);
        }
      } finally {
        this.cancelButton.disabled = false;
      }
    }
  }

  // Splits a line's text into one <span class="word"> per timed word (times in seconds, as
  // the json result gives them), keeping the text between them as it is, so the line reads,
  // selects and copies exactly as before. A word the text lacks ends the splitting there.
  function timeWords(node, words) {
    const text = node.textContent;
    const pieces = [];
    let from = 0;
    for (const { word, start, end } of words) {
      const at = word ? text.indexOf(word, from) : -1;
      if (at === -1) break;
      const span = element('span', 'word', word);
      span.dataset.start = String(start);
      span.dataset.end = String(end);
      pieces.push(text.slice(from, at), span);
      from = at + word.length;
    }
    node.replaceChildren(...pieces.filter((piece) => piece !== ''), text.slice(from));
  }

  // Wraps characters from..to of `root`'s text in <mark>s, one per text node the range
  // crosses, and returns them.
  function markText(root, from, to) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const nodes = [];
    while (walker.nextNode()) nodes.push(walker.currentNode);
    const marks = [];
    let offset = 0;
    for (let node of nodes) {
      const start = offset;
      offset += node.length;
      if (offset <= from || start >= to) continue;
      if (to < offset) node.splitText(to - start);
      if (from > start) node = node.splitText(from - start);
      const mark = element('mark');
      node.replaceWith(mark);
      mark.append(node);
      marks.push(mark);
    }
    return marks;
  }

  function setMeter(meter, percent) {
    const bar = meter.querySelector('progress');
    bar.value = percent;
    bar.textContent = `${percent}%`;
    meter.querySelector('.percent').textContent = `${percent}%`;
  }

  // Elapsed times move every second while something is active.
  setInterval(() => {
    for (const card of cards) if (card.job && !FINISHED.has(card.job.status)) card.tick();
  }, 1000);

  // ----- following jobs --------------------------------------------------------------

  let openStreams = 0;
  const waiting = [];

  function follow(card) {
    if (FINISHED.has(card.job.status)) return;
    if (openStreams < MAX_STREAMS) {
      stream(card);
    } else {
      waiting.push(card);
      poll(card);
    }
  }

  function nextWaiting() {
    while (openStreams < MAX_STREAMS && waiting.length > 0) {
      const card = waiting.shift();
      if (!FINISHED.has(card.job.status)) stream(card);
    }
  }

  function finished(card) {
    recent.refresh();
    if (card.job.status === 'failed' && card.job.error) showAlert(`${card.job.file_name}: ${sentence(card.job.error)}`);
  }

  function stream(card) {
    openStreams += 1;
    card.streaming = true;
    const source = new EventSource(card.job.links.events);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      source.close();
      card.streaming = false;
      openStreams -= 1;
      nextWaiting();
    };
    source.addEventListener('job', (event) => {
      const job = JSON.parse(event.data);
      card.update(job);
      // The server ends the stream after this; EventSource would reconnect by itself.
      if (FINISHED.has(job.status)) {
        close();
        finished(card);
      }
    });
    source.addEventListener('progress', (event) => card.setProgress(JSON.parse(event.data).percent));
    source.addEventListener('segment', (event) => card.addSegment(JSON.parse(event.data)));
    source.addEventListener('error', () => {
      // A refused stream (the job was deleted, say) is not retried: ask the API why.
      if (source.readyState === EventSource.CLOSED) {
        close();
        poll(card);
      }
    });
  }

  async function poll(card) {
    if (card.polling) return;
    card.polling = true;
    while (!card.streaming && !FINISHED.has(card.job.status)) {
      const response = await fetch(card.job.links.job).catch(() => null);
      if (response && response.ok) {
        card.update(await response.json());
        if (FINISHED.has(card.job.status)) finished(card);
      } else if (response) {
        const message = await failure(response);
        card.setStatus('Gone', 'cancelled');
        card.cancelButton.hidden = true;
        card.showError(message);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    card.polling = false;
  }

  // ----- uploading -------------------------------------------------------------------

  // One upload at a time: they share the line, and each finishes sooner.
  let uploads = Promise.resolve();
  let inFlight = 0;

  // Leaving the page would drop an upload half sent; once sent, the job runs on without it.
  window.addEventListener('beforeunload', (event) => {
    if (inFlight > 0) {
      event.preventDefault();
      event.returnValue = '';
    }
  });

  function upload(card, file, options) {
    if (card.cancelled) return Promise.resolve();
    return new Promise((resolve) => {
      const body = new FormData();
      for (const [name, value] of Object.entries(options)) body.append(name, value);
      body.append('file', file, file.name);
      const request = new XMLHttpRequest();
      card.request = request;
      const done = () => {
        inFlight -= 1;
        card.request = null;
        resolve();
      };
      request.open('POST', '/api/jobs');
      request.responseType = 'json';
      request.upload.addEventListener('progress', (event) => {
        if (event.lengthComputable) card.uploading(event.loaded / event.total);
      });
      request.addEventListener('load', () => {
        if (request.status === 202 && request.response) {
          card.update(request.response);
          follow(card);
          recent.refresh();
        } else {
          const message = serverMessage(request.response, request.status);
          card.refused(message);
          showAlert(`${file.name}: ${message}`);
        }
        done();
      });
      request.addEventListener('abort', () => {
        card.refused(null, 'cancelled', 'Upload cancelled');
        done();
      });
      request.addEventListener('error', () => {
        const message = 'The upload broke off before the server answered; check the connection and the file size limit.';
        card.refused(message);
        showAlert(`${file.name}: ${message}`);
        done();
      });
      inFlight += 1;
      card.uploading(0);
      request.send(body);
    });
  }

  // ----- choosing a model ------------------------------------------------------------

  // The language menu and Translate are for multilingual models: shown while one is
  // chosen, hidden (and not sent) while an English-only one is. Without the script both
  // stay visible and the server refuses what the chosen model cannot do. Returns the
  // fields' wrapper, or null when no installed model is multilingual.
  function enhanceModelMenu(form) {
    const languageOptions = form.querySelector('#language-options');
    const englishOnly = form.querySelector('#english-only');
    if (!languageOptions) return null;
    const menu = form.elements.model;
    const show = () => {
      const option = menu ? menu.selectedOptions[0] : null;
      const multilingual = option ? option.dataset.multilingual === 'true' : languageOptions.dataset.englishOnly !== 'true';
      languageOptions.hidden = !multilingual;
      if (englishOnly) englishOnly.hidden = multilingual;
    };
    if (menu) menu.addEventListener('change', show);
    show();
    return languageOptions;
  }

  // ----- choosing files --------------------------------------------------------------

  function enhanceForm(form) {
    const input = form.querySelector('#file');
    const dropzone = form.querySelector('#dropzone');
    const chosenBox = form.querySelector('#chosen');
    const list = form.querySelector('#chosen-list');
    const notes = form.querySelector('#file-notes');
    const checks = form.dataset;
    const notMedia = checks.notMedia.split(' ');
    const chosen = [];
    const languageOptions = enhanceModelMenu(form);
    // The no-JS form sends one file per post; with the script, any number.
    input.multiple = true;
    input.required = false;
    input.classList.add('visually-hidden');
    input.tabIndex = -1;
    dropzone.hidden = false;

    const note = (text, refused) => {
      const line = element('p', refused ? 'refused' : null, text);
      notes.append(line);
    };

    // The same checks the server makes first, in its words: size, then a declared type
    // that is plainly not a recording. What passes may still be refused once decoded.
    const problem = (file) => {
      if (file.size > Number(checks.maxBytes)) return checks.tooLarge;
      const type = (file.type || '').toLowerCase();
      if (type && notMedia.some((prefix) => type.startsWith(prefix))) return checks.notAudio.replace('{type}', describe(type));
      return null;
    };

    // A type named as the server names what it finds in a file's first bytes.
    const describe = (type) => {
      const [kind, sub] = type.split('/');
      const name = (sub === 'jpeg' ? 'jpg' : sub.split(/[+.-]/).pop()).toUpperCase();
      if (type === 'text/plain') return 'plain text';
      if (kind === 'image') return `an image (${name})`;
      if (kind === 'font') return `a font (${name})`;
      if (type === 'application/pdf') return 'a document (PDF)';
      if (type === 'application/zip') return 'an archive (ZIP)';
      return type;
    };

    const render = () => {
      list.replaceChildren(
        ...chosen.map((file, index) => {
          const item = element('li');
          const remove = element('button', 'link-button', 'Remove');
          remove.type = 'button';
          remove.setAttribute('aria-label', `Remove ${file.name}`);
          remove.addEventListener('click', () => {
            chosen.splice(index, 1);
            render();
            (list.querySelector('button') || dropzone).focus();
          });
          item.append(element('span', 'chosen-name', file.name), element('span', 'chosen-size', megabytes(file.size)), remove);
          return item;
        }),
      );
      chosenBox.hidden = chosen.length === 0;
    };

    const add = (files) => {
      notes.replaceChildren();
      for (const file of files) {
        const same = (other) => other.name === file.name && other.size === file.size && other.lastModified === file.lastModified;
        const why = problem(file);
        if (chosen.some(same)) note(`Skipped ${file.name}: it is already in the list.`, false);
        else if (why) note(`${file.name}: ${why}`, true);
        else chosen.push(file);
      }
      render();
    };

    const pick = () => input.click();
    dropzone.addEventListener('click', pick);
    dropzone.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        pick();
      }
    });
    input.addEventListener('change', () => {
      add([...input.files]);
      // Choosing again adds to the list instead of replacing it.
      input.value = '';
    });
    form.querySelector('#clear-files').addEventListener('click', () => {
      chosen.length = 0;
      notes.replaceChildren();
      render();
      dropzone.focus();
    });

    // The whole page takes dropped files; without this a file dropped beside the zone
    // would replace the page with the file.
    const carriesFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes('Files');
    let depth = 0;
    window.addEventListener('dragenter', (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      depth += 1;
      document.body.classList.add('dragging');
    });
    window.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) document.body.classList.remove('dragging');
    });
    window.addEventListener('dragover', (event) => {
      if (carriesFiles(event)) event.preventDefault();
    });
    window.addEventListener('drop', (event) => {
      depth = 0;
      document.body.classList.remove('dragging');
      if (!carriesFiles(event)) return;
      event.preventDefault();
      add([...event.dataTransfer.files]);
    });

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      clearAlerts();
      if (chosen.length === 0) {
        showAlert('Choose or drop at least one recording first.');
        dropzone.focus();
        return;
      }
      const options = { prompt: form.elements.prompt.value };
      if (form.elements.model) options.model = form.elements.model.value;
      // An English-only model is chosen: its hidden language fields are not sent.
      if (!languageOptions || !languageOptions.hidden) {
        if (form.elements.language) options.language = form.elements.language.value;
        if (form.elements.translate) options.translate = form.elements.translate.checked ? 'true' : 'false';
      }
      options.words = form.elements.words.checked ? 'true' : 'false';
      const sending = chosen.splice(0);
      notes.replaceChildren();
      render();
      for (const file of sending) {
        const card = Card.create(file);
        uploads = uploads.then(() => upload(card, file, options));
      }
      // The newest card is first in the list; bring it into view.
      const newest = document.getElementById('cards').firstElementChild;
      newest.scrollIntoView({ block: 'nearest', behavior: motion.matches ? 'smooth' : 'auto' });
    });
  }

  // ----- history ---------------------------------------------------------------------

  const recent = {
    list: document.getElementById('history'),
    etag: null,
    query: '',
    shown: HISTORY_PAGE,
    next: null,
    jobs: [],
    request: null,
    // Rows deleted but still undoable: id -> { row, timer }.
    pending: new Map(),

    row(job) {
      const row = document.getElementById('history-template').content.firstElementChild.cloneNode(true);
      row.dataset.jobId = job.id;
      row.dataset.status = job.status;
      const link = row.querySelector('.history-link');
      link.href = job.links.page;
      link.textContent = job.file_name;
      const badge = row.querySelector('.badge');
      badge.className = `badge status-${job.status}`;
      badge.textContent = STATUS_LABELS[job.status] || job.status;
      const time = row.querySelector('time');
      time.dateTime = job.created_at;
      time.textContent = job.created_at;
      const model = row.querySelector('.row-model');
      model.textContent = job.model || '';
      model.hidden = !job.model;
      const text = row.querySelector('.row-download');
      if (job.links.results.txt) {
        text.href = job.links.results.txt;
        text.hidden = false;
      }
      text.setAttribute('aria-label', `Download text of ${job.file_name}`);
      const finished = FINISHED.has(job.status);
      row.querySelector('.delete-form').action = `${job.links.page}/delete`;
      row.querySelector('.delete-form').hidden = !finished;
      row.querySelector('.delete').setAttribute('aria-label', `Delete ${job.file_name}`);
      const cancel = row.querySelector('.row-cancel');
      cancel.setAttribute('aria-label', `Cancel ${job.file_name}`);
      cancel.hidden = finished;
      localTimes(row);
      return row;
    },

    url(limit, before) {
      const query = this.query ? `&q=${encodeURIComponent(this.query)}` : '';
      return `/api/jobs?limit=${limit}${before ? `&before=${before}` : ''}${query}`;
    },

    // Several changes together need one redraw, not one each.
    refresh() {
      if (!this.list) return;
      this.request ??= this.redraw().finally(() => {
        this.request = null;
      });
    },

    async redraw() {
      const headers = this.etag ? { 'If-None-Match': this.etag } : {};
      const response = await fetch(this.url(Math.min(this.shown, MAX_PAGE)), { headers }).catch(() => null);
      if (!response || response.status === 304) return;
      if (!response.ok) {
        showAlert(await failure(response));
        return;
      }
      this.etag = response.headers.get('ETag');
      const { jobs, next } = await response.json();
      this.jobs = jobs;
      this.next = next;
      this.draw(jobs, false);
    },

    draw(jobs, append) {
      // Keep keyboard focus on the same control of the same job across the redraw.
      const focused = document.activeElement;
      const focusedRow = this.list.contains(focused) ? focused.closest('.history-row') : null;
      const focusedClass = focusedRow && ['delete', 'row-cancel', 'row-download', 'undo'].find((c) => focused.classList.contains(c));
      const rows = jobs.map((job) => (this.pending.has(job.id) ? this.pending.get(job.id).row : this.row(job)));
      if (append) this.list.append(...rows);
      else this.list.replaceChildren(...rows);
      this.empty();
      // The link stays a page address (the no-JS history's), for opening in a new tab.
      const older = document.getElementById('history-older');
      const last = this.list.lastElementChild;
      older.hidden = !this.next || !last;
      if (last) older.href = `/?before=${last.dataset.jobId}&q=${encodeURIComponent(this.query)}#history-title`;
      if (focusedRow) {
        const again = this.list.querySelector(`.history-row[data-job-id="${focusedRow.dataset.jobId}"] .${focusedClass || 'history-link'}`);
        if (again) again.focus();
      }
    },

    empty() {
      const empty = document.getElementById('history-empty');
      empty.hidden = this.list.children.length > 0;
      empty.textContent = this.query ? `No job matches “${this.query}”.` : 'No jobs yet.';
    },

    async older() {
      // The first look at the list may still be on its way; it says where the next page is.
      if (this.request) await this.request;
      if (!this.next) return;
      const response = await fetch(this.next).catch(() => null);
      if (!response || !response.ok) {
        if (response) showAlert(await failure(response));
        return;
      }
      const { jobs, next } = await response.json();
      const first = this.list.children.length;
      this.next = next;
      this.shown = this.list.children.length + jobs.length;
      this.etag = null;
      this.draw(jobs, true);
      document.getElementById('history-status').textContent = `${jobs.length} older jobs shown.`;
      const link = this.list.children[first] && this.list.children[first].querySelector('.history-link');
      if (link) link.focus();
    },

    async search(query) {
      this.query = query.trim();
      this.shown = HISTORY_PAGE;
      this.etag = null;
      await this.redraw();
      document.getElementById('history-status').textContent = this.query
        ? `${this.list.children.length}${this.next ? '+' : ''} jobs match.`
        : '';
    },

    // Deleting hides the row at once and offers Undo; the job goes when the time is up,
    // or when the page is left.
    remove(row) {
      const id = row.dataset.jobId;
      const name = row.querySelector('.history-link').textContent;
      const saved = [...row.childNodes];
      const undo = element('button', 'undo', 'Undo');
      undo.type = 'button';
      undo.setAttribute('aria-label', `Undo deleting ${name}`);
      const message = element('span', 'history-link', `Deleted ${name}.`);
      row.classList.add('deleted');
      row.replaceChildren(message, undo);
      const timer = setTimeout(() => this.commit(id), UNDO_MS);
      this.pending.set(id, { row, timer });
      undo.addEventListener('click', () => {
        clearTimeout(timer);
        this.pending.delete(id);
        row.classList.remove('deleted');
        row.replaceChildren(...saved);
        row.querySelector('.delete').focus();
        document.getElementById('history-status').textContent = `${name} is back.`;
      });
      undo.focus();
      document.getElementById('history-status').textContent = `Deleted ${name}. Undo is available for a few seconds.`;
    },

    async commit(id, leaving = false) {
      const pending = this.pending.get(id);
      if (!pending) return;
      this.pending.delete(id);
      clearTimeout(pending.timer);
      const response = await fetch(`/api/jobs/${id}`, { method: 'DELETE', keepalive: leaving }).catch(() => null);
      if (leaving) return;
      if (response && response.status !== 204 && response.status !== 404) {
        showAlert(await failure(response));
        this.etag = null;
        this.refresh();
        return;
      }
      const focusHere = pending.row.contains(document.activeElement);
      const next = pending.row.nextElementSibling || pending.row.previousElementSibling;
      pending.row.remove();
      this.empty();
      if (focusHere) {
        const control = next && ['.delete-form:not([hidden]) .delete', '.row-cancel:not([hidden])', '.history-link']
          .map((selector) => next.querySelector(selector))
          .find(Boolean);
        (control || document.getElementById('history-title')).focus();
      }
    },

    async cancelJob(row) {
      const response = await fetch(`/api/jobs/${row.dataset.jobId}/cancel`, { method: 'POST' });
      if (!response.ok) showAlert(await failure(response));
      this.refresh();
    },

    // Seconds a recent job took to run, for the queue's expected wait; null if unknown.
    typicalRun() {
      const runs = this.jobs
        .filter((job) => job.status === 'done' && job.started_at && job.finished_at)
        .slice(0, 10)
        .map((job) => seconds(job.finished_at) - seconds(job.started_at));
      return runs.length ? runs.reduce((a, b) => a + b, 0) / runs.length : null;
    },

    enhance() {
      localTimes(this.list);
      for (const row of this.list.querySelectorAll('.history-row')) {
        row.querySelector('.row-cancel').hidden = FINISHED.has(row.dataset.status);
      }
      this.list.addEventListener('submit', (event) => {
        const form = event.target.closest('.delete-form');
        if (!form) return;
        event.preventDefault();
        this.remove(form.closest('.history-row'));
      });
      this.list.addEventListener('click', (event) => {
        const cancel = event.target.closest('.row-cancel');
        if (cancel) this.cancelJob(cancel.closest('.history-row'));
      });
      const search = document.getElementById('history-search');
      const input = document.getElementById('history-q');
      this.query = input.value.trim();
      let typing = null;
      search.addEventListener('submit', (event) => {
        event.preventDefault();
        clearTimeout(typing);
        this.search(input.value);
      });
      input.addEventListener('input', () => {
        clearTimeout(typing);
        typing = setTimeout(() => this.search(input.value), 300);
      });
      document.getElementById('history-older').addEventListener('click', (event) => {
        event.preventDefault();
        this.older();
      });
      window.addEventListener('pagehide', () => {
        for (const id of [...this.pending.keys()]) this.commit(id, true);
      });
      // The history follows jobs started elsewhere (another tab, the API) without a reload.
      setInterval(() => {
        if (!document.hidden) this.refresh();
      }, HISTORY_POLL_MS);
      document.addEventListener('visibilitychange', () => {
        if (!document.hidden) this.refresh();
      });
      this.refresh();
    },
  };

  // After a reload, running and queued jobs come back as cards that follow them live.
  async function restoreCards() {
    const active = [...recent.list.querySelectorAll('.history-row')].filter(
      (row) => row.dataset.status === 'queued' || row.dataset.status === 'running',
    );
    for (const row of active.reverse()) {
      const response = await fetch(`/api/jobs/${row.dataset.jobId}`).catch(() => null);
      if (!response || !response.ok) continue;
      const job = await response.json();
      if (FINISHED.has(job.status)) continue;
      const card = Card.restore(job);
      follow(card);
    }
  }

  // ----- start -----------------------------------------------------------------------

  const form = document.getElementById('upload-form');
  if (form) {
    enhanceForm(form);
    enhanceNotifications();
  }
  if (recent.list) {
    recent.enhance();
    restoreCards();
  }

  // The job page: the server rendered the card; follow it live if it has not ended.
  const page = document.querySelector('main > .card');
  if (page && page.dataset.jobId) {
    const card = new Card(page);
    const id = page.dataset.jobId;
    card.job = {
      id,
      status: page.dataset.status,
      file_name: card.link.textContent,
      links: { job: `/api/jobs/${id}`, events: page.dataset.events, cancel: page.dataset.cancel, page: `/jobs/${id}` },
    };
    card.noPlayer('Playback is for files chosen on the upload page, in the same tab; the server keeps no copy of the audio.');
    card.cancelButton.hidden = FINISHED.has(card.job.status);
    // Finished jobs: fetch the full record for the time line; running ones get it from the stream.
    fetch(card.job.links.job)
      .then((response) => (response.ok ? response.json() : null))
      .then((job) => {
        if (job && FINISHED.has(job.status)) card.update(job);
      })
      .catch(() => {});
    follow(card);
  }
})();
