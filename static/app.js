// whisper-appliance: upgrades the server-rendered page to live uploads and transcripts.
//
// Without this script the page still works: the form posts to /jobs, the job page
// refreshes itself, and delete buttons post forms. With it, the same form uploads each
// chosen or dropped file to /api/jobs with upload progress, each upload gets a card
// (cloned from the page's <template>, so the markup lives in one place) that follows the
// job's event stream, and the history is redrawn from /api/jobs. Errors are the server's
// own sentences, shown in the page's role="alert" region. No inline code: the page runs
// under a CSP that allows only this file.
'use strict';

(() => {
  // Over HTTP/1.1 a browser keeps at most six connections to one host, and each event
  // stream holds one; past this many, cards poll instead so uploads are never starved.
  const MAX_STREAMS = 3;
  const POLL_MS = 2000;
  const HISTORY_LENGTH = 20;
  const FINISHED = new Set(['done', 'failed', 'cancelled']);
  const STATUS_LABELS = { queued: 'Queued', running: 'Running', done: 'Done', failed: 'Failed', cancelled: 'Cancelled' };

  const alerts = document.getElementById('alerts');

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

  function languageName(code) {
    try {
      return new Intl.DisplayNames(['en'], { type: 'language' }).of(code) || code;
    } catch {
      return code;
    }
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
          + `${clock(job.duration_seconds)}, ${languageName(job.language)}`;
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
    if (body && body.error && typeof body.error.message === 'string') return body.error.message;
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

  // ----- job cards -------------------------------------------------------------------

  class Card {
    constructor(root) {
      this.root = root;
      this.job = null;
      this.streaming = false;
      this.polling = false;
      this.transcriptLoaded = false;
      const find = (selector) => root.querySelector(selector);
      this.link = find('.card-link');
      this.status = find('.card-status');
      this.uploadMeter = find('.upload-meter');
      this.jobMeter = find('.job-meter');
      this.error = find('.card-error');
      this.transcript = find('.transcript');
      this.segments = find('.segments');
      this.copyButton = find('.copy');
      this.copyStatus = find('.copy-status');
      this.cancelButton = find('.cancel');
      this.downloads = find('.downloads');
      this.copyButton.addEventListener('click', () => this.copy());
      this.cancelButton.addEventListener('click', () => this.cancel());
      this.copyButton.hidden = this.segments.children.length === 0;
    }

    // A new card for a file about to be uploaded.
    static create(fileName) {
      const template = document.getElementById('card-template');
      const root = template.content.firstElementChild.cloneNode(true);
      const card = new Card(root);
      card.link.textContent = fileName;
      card.link.removeAttribute('href');
      card.downloads.setAttribute('aria-label', `Downloads for ${fileName}`);
      document.getElementById('cards').prepend(root);
      document.getElementById('uploads').hidden = false;
      return card;
    }

    setStatus(text, state) {
      this.status.textContent = text;
      this.status.className = `card-status status-${state}`;
      this.root.dataset.status = state;
    }

    uploading(fraction) {
      this.uploadMeter.hidden = false;
      setMeter(this.uploadMeter, Math.round(fraction * 100));
      // The status is a live region: it says "Uploading" once, not at every percent.
      if (this.root.dataset.status !== 'uploading') this.setStatus('Uploading', 'uploading');
    }

    refused(message) {
      this.uploadMeter.hidden = true;
      this.setStatus('Not uploaded', 'failed');
      this.showError(message);
    }

    showError(message) {
      this.error.textContent = message;
      this.error.hidden = false;
    }

    update(job) {
      this.job = job;
      this.root.dataset.jobId = job.id;
      this.link.href = job.links.page;
      this.uploadMeter.hidden = true;
      this.setStatus(statusText(job), job.status);
      this.jobMeter.hidden = job.status !== 'running';
      this.setProgress(job.progress);
      this.cancelButton.hidden = FINISHED.has(job.status);
      if (job.status === 'failed' && job.error) this.showError(job.error);
      if (job.status === 'done') this.finish(job);
    }

    setProgress(percent) {
      setMeter(this.jobMeter, percent);
      if (this.job) this.job.progress = percent;
    }

    // A segment from the event stream; after a reconnect the stream repeats the ones
    // already shown, so they are told apart by id.
    addSegment(segment) {
      const text = (segment.text || '').trim();
      if (!text || this.segments.querySelector(`[data-segment="${segment.id}"]`)) return;
      this.segments.append(segmentItem(segment.id, segment.start, text));
      this.transcript.hidden = false;
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
      const items = result.segments.map((segment) => segmentItem(segment.id, segment.start, segment.text.trim()));
      const shown = [...this.segments.querySelectorAll('.text')].map((node) => node.textContent);
      const final = items.map((item) => item.querySelector('.text').textContent);
      // Usually the live lines are the final ones; swapping them would make screen readers
      // read the whole transcript again, so they are swapped only when they differ.
      if (shown.join('\n') !== final.join('\n')) {
        this.segments.setAttribute('aria-live', 'off');
        this.segments.replaceChildren(...items);
        this.segments.setAttribute('aria-live', 'polite');
      }
      this.transcript.hidden = items.length === 0;
      this.copyButton.hidden = items.length === 0;
      this.root.dataset.final = 'true';
    }

    async copy() {
      const text = [...this.segments.querySelectorAll('.text')].map((node) => node.textContent).join('\n');
      try {
        if (!navigator.clipboard) throw new Error('no clipboard');
        await navigator.clipboard.writeText(text);
        this.copyStatus.textContent = 'Copied.';
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

    async cancel() {
      if (!this.job) return;
      this.cancelButton.disabled = true;
      try {
        const response = await fetch(this.job.links.cancel, { method: 'POST' });
        if (response.ok) {
          this.update(await response.json());
          refreshHistory();
        } else {
          showAlert(`${this.job.file_name}: ${await failure(response)}`);
        }
      } finally {
        this.cancelButton.disabled = false;
      }
    }
  }

  function setMeter(meter, percent) {
    const bar = meter.querySelector('progress');
    bar.value = percent;
    bar.textContent = `${percent}%`;
    meter.querySelector('.percent').textContent = `${percent}%`;
  }

  function segmentItem(id, start, text) {
    const item = document.createElement('li');
    item.dataset.segment = String(id);
    const stamp = document.createElement('span');
    stamp.className = 'ts';
    stamp.textContent = `[${clock(start)}]`;
    const words = document.createElement('span');
    words.className = 'text';
    words.textContent = text;
    item.append(stamp, ' ', words);
    return item;
  }

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
    refreshHistory();
    if (card.job.status === 'failed' && card.job.error) showAlert(`${card.job.file_name}: ${card.job.error}`);
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

  function upload(card, file, options) {
    return new Promise((resolve) => {
      const body = new FormData();
      body.append('language', options.language);
      body.append('translate', options.translate ? 'true' : 'false');
      body.append('file', file, file.name);
      const request = new XMLHttpRequest();
      request.open('POST', '/api/jobs');
      request.responseType = 'json';
      request.upload.addEventListener('progress', (event) => {
        if (event.lengthComputable) card.uploading(event.loaded / event.total);
      });
      request.addEventListener('load', () => {
        if (request.status === 202 && request.response) {
          card.update(request.response);
          follow(card);
          refreshHistory();
        } else {
          const message = serverMessage(request.response, request.status);
          card.refused(message);
          showAlert(`${file.name}: ${message}`);
        }
        resolve();
      });
      request.addEventListener('error', () => {
        const message = 'The upload broke off before the server answered; check the connection and the file size limit.';
        card.refused(message);
        showAlert(`${file.name}: ${message}`);
        resolve();
      });
      card.uploading(0);
      request.send(body);
    });
  }

  function enhanceForm(form) {
    const input = form.querySelector('#file');
    const dropzone = form.querySelector('#dropzone');
    const chosen = form.querySelector('#chosen');
    // The no-JS form sends one file per post; with the script, any number.
    input.multiple = true;
    input.required = false;
    input.classList.add('visually-hidden');
    input.tabIndex = -1;
    dropzone.hidden = false;

    const showChosen = () => {
      const names = [...input.files].map((file) => file.name);
      chosen.hidden = names.length === 0;
      chosen.textContent = names.length === 1 ? `Chosen: ${names[0]}` : `${names.length} files chosen: ${names.join(', ')}`;
    };
    const pick = () => input.click();

    dropzone.addEventListener('click', pick);
    dropzone.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        pick();
      }
    });
    for (const type of ['dragenter', 'dragover']) {
      dropzone.addEventListener(type, (event) => {
        event.preventDefault();
        dropzone.classList.add('over');
      });
    }
    for (const type of ['dragleave', 'drop']) {
      dropzone.addEventListener(type, () => dropzone.classList.remove('over'));
    }
    dropzone.addEventListener('drop', (event) => {
      event.preventDefault();
      const merged = new DataTransfer();
      for (const file of [...input.files, ...event.dataTransfer.files]) merged.items.add(file);
      input.files = merged.files;
      showChosen();
    });
    // A file dropped beside the zone would otherwise replace the page with the file.
    for (const type of ['dragover', 'drop']) {
      window.addEventListener(type, (event) => {
        if (!dropzone.contains(event.target)) event.preventDefault();
      });
    }
    input.addEventListener('change', showChosen);

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const files = [...input.files];
      if (files.length === 0) {
        clearAlerts();
        showAlert('Choose or drop at least one recording first.');
        dropzone.focus();
        return;
      }
      clearAlerts();
      const options = { language: form.elements.language.value, translate: form.elements.translate.checked };
      input.value = '';
      showChosen();
      for (const file of files) {
        const card = Card.create(file.name);
        uploads = uploads.then(() => upload(card, file, options));
      }
    });
  }

  // ----- history ---------------------------------------------------------------------

  const history = document.getElementById('history');

  function historyRow(job) {
    const row = document.getElementById('history-template').content.firstElementChild.cloneNode(true);
    row.dataset.jobId = job.id;
    const link = row.querySelector('.history-link');
    link.href = job.links.page;
    link.textContent = job.file_name;
    const badge = row.querySelector('.badge');
    badge.className = `badge status-${job.status}`;
    badge.textContent = STATUS_LABELS[job.status] || job.status;
    const time = row.querySelector('time');
    time.dateTime = job.created_at;
    time.textContent = job.created_at;
    row.querySelector('.delete-form').action = `${job.links.page}/delete`;
    row.querySelector('.delete').setAttribute('aria-label', `Delete ${job.file_name}`);
    localTimes(row);
    return row;
  }

  let historyRequest = null;

  function refreshHistory() {
    if (!history) return;
    // Several jobs ending together need one redraw, not one each.
    historyRequest ??= redrawHistory().finally(() => {
      historyRequest = null;
    });
  }

  async function redrawHistory() {
    const response = await fetch(`/api/jobs?limit=${HISTORY_LENGTH}`).catch(() => null);
    if (!response) return;
    if (!response.ok) {
      showAlert(await failure(response));
      return;
    }
    const { jobs } = await response.json();
    // Keep keyboard focus on the same control of the same job across the redraw.
    const focused = document.activeElement;
    const focusedRow = history.contains(focused) ? focused.closest('.history-row') : null;
    const focusedClass = focusedRow && (focused.classList.contains('delete') ? '.delete' : '.history-link');
    history.replaceChildren(...jobs.map(historyRow));
    document.getElementById('history-empty').hidden = jobs.length > 0;
    if (focusedRow) {
      const again = history.querySelector(`.history-row[data-job-id="${focusedRow.dataset.jobId}"] ${focusedClass}`);
      if (again) again.focus();
    }
  }

  function enhanceHistory() {
    localTimes(history);
    history.addEventListener('submit', async (event) => {
      const form = event.target.closest('.delete-form');
      if (!form) return;
      event.preventDefault();
      const row = form.closest('.history-row');
      const response = await fetch(`/api/jobs/${row.dataset.jobId}`, { method: 'DELETE' });
      if (response.status !== 204 && response.status !== 404) {
        showAlert(await failure(response));
        return;
      }
      // Focus goes to the next row's delete button, else to the list's heading.
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      document.getElementById('history-empty').hidden = history.children.length > 0;
      (next ? next.querySelector('.delete') : document.getElementById('history-title')).focus();
    });
  }

  // ----- start -----------------------------------------------------------------------

  const form = document.getElementById('upload-form');
  if (form) enhanceForm(form);
  if (history) enhanceHistory();

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
    card.cancelButton.hidden = FINISHED.has(card.job.status);
    follow(card);
  }
})();
