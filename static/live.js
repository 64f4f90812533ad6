// whisper-appliance: live transcription from the microphone, over /v1/realtime.
//
// The page's "Start microphone" asks for the microphone, captures it with an AudioWorklet
// (static/live-worklet.js, which converts it to 16 kHz), and streams it to the server's
// realtime WebSocket (OpenAI's Realtime protocol, transcription mode; the page's session
// cookie authenticates it). Tentative text appears lighter as the server sends deltas and
// is replaced by each utterance's final text. Stop ends the capture and waits for the
// last utterance; Save keeps the transcript as a job (it then appears in the history);
// Copy and Download work on the final text. A lost connection is retried, and what was
// final stays on the page. No inline code: the page's CSP allows only our own files.
'use strict';

(() => {
  const root = document.getElementById('live');
  if (!root || !window.AudioWorkletNode || !window.WebSocket || !navigator.mediaDevices?.getUserMedia) return;

  const RATE = 16000;
  const RECONNECT_TRIES = 5;
  const CLOSE_BUSY = 1013;

  const startButton = document.getElementById('live-start');
  const stopButton = document.getElementById('live-stop');
  const meter = document.getElementById('live-level');
  const status = document.getElementById('live-status');
  const transcript = document.getElementById('live-transcript');
  const actions = document.getElementById('live-actions');
  const saveButton = document.getElementById('live-save');
  const saved = document.getElementById('live-saved');

  let capture = null; // { stream, context, node } while the microphone is on
  let socket = null;
  let listening = false;
  let tries = 0;
  let sessionOpen = false;
  const items = new Map(); // item_id -> element

  function say(message, isError = false) {
    status.textContent = message;
    status.classList.toggle('error', isError);
  }

  function base64(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  function send(event) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(event));
  }

  function item(id) {
    let element = items.get(id);
    if (!element) {
      element = document.createElement('p');
      element.className = 'live-item tentative';
      element.dataset.itemId = id;
      items.set(id, element);
      transcript.append(element);
      transcript.hidden = false;
    }
    return element;
  }

  function finalText() {
    return [...transcript.querySelectorAll('.live-item.final')].map((p) => p.textContent.trim()).filter(Boolean).join(' ');
  }

  function language() {
    const select = document.getElementById('language');
    return select && select.value !== 'auto' ? select.value : null;
  }

  function onEvent(event) {
    switch (event.type) {
      case 'session.created':
        tries = 0;
        sessionOpen = true;
        send({
          type: 'session.update',
          session: {
            type: 'transcription',
            audio: {
              input: {
                format: { type: 'audio/pcm', rate: RATE },
                transcription: { model: 'whisper-1', language: language() },
                turn_detection: { type: 'server_vad', silence_duration_ms: 500 },
              },
            },
          },
        });
        if (listening) say('Listening…');
        break;
      case 'input_audio_buffer.speech_started':
        item(event.item_id);
        break;
      case 'conversation.item.input_audio_transcription.delta':
        item(event.item_id).textContent += event.delta;
        break;
      case 'conversation.item.input_audio_transcription.completed': {
        const element = item(event.item_id);
        element.textContent = event.transcript;
        element.classList.replace('tentative', 'final');
        if (!event.transcript.trim()) element.remove();
        if (!listening) say('Stopped.');
        actions.hidden = false;
        break;
      }
      case 'conversation.item.input_audio_transcription.failed':
        item(event.item_id).remove();
        say(`A part could not be transcribed: ${event.error.message}`, true);
        break;
      case 'transcript.saved':
        saved.href = event.url;
        saved.hidden = false;
        say('Saved.');
        closeSocket();
        break;
      case 'error':
        if (event.error.code === 'input_audio_buffer_commit_empty') {
          if (!listening) say('Stopped.');
        } else {
          say(event.error.message, true);
        }
        break;
      default:
        break;
    }
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/v1/realtime?intent=transcription`);
    socket = ws;
    sessionOpen = false;
    ws.addEventListener('message', (message) => {
      try {
        onEvent(JSON.parse(message.data));
      } catch (error) {
        say(`The server sent something unexpected: ${error.message}`, true);
      }
    });
    ws.addEventListener('close', (close) => {
      if (socket !== ws) return;
      socket = null;
      sessionOpen = false;
      saveButton.disabled = true;
      if (close.code === CLOSE_BUSY) {
        stopCapture();
        say('The server is busy: another live transcription is running. Try again later.', true);
      } else if (listening && tries < RECONNECT_TRIES) {
        tries += 1;
        say('Connection lost; reconnecting… (the text so far is kept)', true);
        setTimeout(() => listening && connect(), 1000 * tries);
      } else if (listening) {
        stopCapture();
        say('Connection lost. The text so far is kept; start again to continue.', true);
      }
    });
    ws.addEventListener('open', () => {
      saveButton.disabled = false;
    });
  }

  function closeSocket() {
    const ws = socket;
    socket = null;
    if (ws) ws.close(1000, 'done');
    saveButton.disabled = true;
  }

  function stopCapture() {
    listening = false;
    if (capture) {
      capture.stream.getTracks().forEach((track) => track.stop());
      capture.context.close();
      capture = null;
    }
    meter.value = 0;
    meter.hidden = true;
    stopButton.hidden = true;
    startButton.hidden = false;
    startButton.disabled = false;
  }

  async function start() {
    startButton.disabled = true;
    saved.hidden = true;
    say('Asking for the microphone…');
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (error) {
      startButton.disabled = false;
      if (error.name === 'NotAllowedError' || error.name === 'SecurityError') {
        say('Microphone permission was denied. Allow the microphone for this site in the browser and try again.', true);
      } else if (error.name === 'NotFoundError' || error.name === 'OverconstrainedError') {
        say('No microphone was found. Connect one and try again.', true);
      } else {
        say(`The microphone could not be started: ${error.message}`, true);
      }
      return;
    }
    try {
      const context = new AudioContext();
      // A context made outside a user gesture's reach (after the permission prompt) starts
      // suspended in some browsers, and a suspended one delivers no audio.
      if (context.state === 'suspended') await context.resume();
      await context.audioWorklet.addModule(root.dataset.worklet);
      const node = new AudioWorkletNode(context, 'live-capture', { processorOptions: { targetRate: RATE } });
      node.port.onmessage = ({ data }) => {
        meter.value = data.level;
        if (sessionOpen) send({ type: 'input_audio_buffer.append', audio: base64(data.pcm) });
      };
      context.createMediaStreamSource(stream).connect(node);
      // The node writes silence; connected, the browser keeps pulling audio through it.
      node.connect(context.destination);
      capture = { stream, context, node };
    } catch (error) {
      stream.getTracks().forEach((track) => track.stop());
      startButton.disabled = false;
      say(`Audio capture is not available in this browser: ${error.message}`, true);
      return;
    }
    listening = true;
    tries = 0;
    startButton.hidden = true;
    stopButton.hidden = false;
    meter.hidden = false;
    say('Connecting…');
    if (!socket) connect();
  }

  function stop() {
    stopCapture();
    if (socket) {
      send({ type: 'input_audio_buffer.commit' });
      say('Finishing the last words…');
    } else {
      say('Stopped.');
    }
  }

  function save() {
    if (!socket) {
      say('This session has ended, so it can no longer be saved; copy or download the text instead.', true);
      return;
    }
    say('Saving…');
    send({ type: 'transcript.save' });
  }

  function download() {
    const blob = new Blob([`${finalText()}\n`], { type: 'text/plain' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = 'live-transcript.txt';
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  startButton.addEventListener('click', start);
  stopButton.addEventListener('click', stop);
  saveButton.addEventListener('click', save);
  document.getElementById('live-copy').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(finalText());
      say('Copied.');
    } catch {
      say('The browser did not allow copying; select the text instead.', true);
    }
  });
  document.getElementById('live-download').addEventListener('click', download);
  root.hidden = false;
})();
