// whisper-appliance: the microphone's capture, run in the audio thread as an AudioWorklet.
//
// Input: the microphone's first channel at the audio context's rate (often 48 kHz).
// Output: messages of { pcm: ArrayBuffer of 16-bit samples at targetRate, level: 0..1 },
// one per CHUNK_MS of audio, posted to live.js. The rate is converted here, in the
// browser, so the server receives what it transcribes: a low-pass windowed-sinc filter
// below the new Nyquist frequency, then linear interpolation at the target rate.
'use strict';

const CHUNK_MS = 100;
const TAPS = 63;

class LiveCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.target = options.processorOptions.targetRate;
    this.step = sampleRate / this.target;
    this.taps = this.step > 1 ? lowPass(0.45 / this.step) : null;
    this.history = new Float32Array(TAPS);
    this.head = 0;
    this.previous = 0;
    this.position = 1;
    this.chunkLength = Math.round((this.target * CHUNK_MS) / 1000);
    this.chunk = new Int16Array(this.chunkLength);
    this.filled = 0;
    this.energy = 0;
  }

  filter(sample) {
    if (!this.taps) return sample;
    this.history[this.head] = sample;
    let sum = 0;
    for (let i = 0; i < TAPS; i += 1) {
      sum += this.taps[i] * this.history[(this.head + TAPS - i) % TAPS];
    }
    this.head = (this.head + 1) % TAPS;
    return sum;
  }

  emit(sample) {
    const clamped = Math.max(-1, Math.min(1, sample));
    this.chunk[this.filled] = clamped < 0 ? clamped * 32768 : clamped * 32767;
    this.energy += clamped * clamped;
    this.filled += 1;
    if (this.filled === this.chunkLength) {
      const rms = Math.sqrt(this.energy / this.filled);
      // -60 dBFS reads as empty, full scale as full.
      const level = Math.max(0, Math.min(1, (20 * Math.log10(rms + 1e-9) + 60) / 60));
      const pcm = this.chunk.buffer;
      // Transferred, the buffer is detached from this side and `this.chunk` reads as empty.
      this.port.postMessage({ pcm, level }, [pcm]);
      this.chunk = new Int16Array(this.chunkLength);
      this.filled = 0;
      this.energy = 0;
    }
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i += 1) {
      const current = this.filter(channel[i]);
      // Output samples fall between the previous input sample (0) and this one (1).
      while (this.position <= 1) {
        this.emit(this.previous + (current - this.previous) * this.position);
        this.position += this.step;
      }
      this.position -= 1;
      this.previous = current;
    }
    return true;
  }
}

// A Hamming-windowed sinc low-pass with its cutoff at `cutoff` times the input rate.
function lowPass(cutoff) {
  const taps = new Float32Array(TAPS);
  const middle = (TAPS - 1) / 2;
  let sum = 0;
  for (let i = 0; i < TAPS; i += 1) {
    const x = i - middle;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    taps[i] = sinc * (0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (TAPS - 1)));
    sum += taps[i];
  }
  return taps.map((tap) => tap / sum);
}

registerProcessor('live-capture', LiveCapture);
