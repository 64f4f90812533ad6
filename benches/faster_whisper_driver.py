"""faster-whisper as benches/compare.rs measures it: one process, the model loaded once.

    python faster_whisper_driver.py MODEL_DIR THREADS [COMPUTE_TYPE]

Loads the CTranslate2 model with COMPUTE_TYPE (default "int8"; the speech section also runs
"float32") on the CPU with THREADS threads (one worker), prints `ready <load seconds>`, then
reads one request per line from stdin, a WAV path or a JSON object
`{"path": ..., "beam_size": 5, "vad_filter": false}` (either key may be left out: these are
the defaults), and answers each with one JSON line:

    {"wall": seconds, "peak_rss_kb": kB, "text": "..."}

`wall` runs from the call to transcribe() until the last segment is read (faster-whisper
decodes lazily), so it includes reading the file, as the other sides' times do. Settings
are those of ../shared/audio/SOURCES.md's reference column: beam_size=5, language="en",
everything else at faster-whisper's defaults (vad_filter=False among them) unless the
request names beam_size or vad_filter. `peak_rss_kb` is the process's VmHWM after
the run, reset to the current RSS before it by writing 5 to /proc/self/clear_refs, the
same method the bench uses for the appliance's server process.
"""

import json
import sys
import time

from faster_whisper import WhisperModel


def vm_hwm_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    model_dir, threads = sys.argv[1], int(sys.argv[2])
    compute_type = sys.argv[3] if len(sys.argv) > 3 else "int8"
    started = time.perf_counter()
    model = WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=threads, num_workers=1)
    print(f"ready {time.perf_counter() - started:.3f}", flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        request = json.loads(line) if line.startswith("{") else {"path": line}
        path = request["path"]
        beam_size = int(request.get("beam_size", 5))
        vad_filter = bool(request.get("vad_filter", False))
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        started = time.perf_counter()
        segments, _info = model.transcribe(path, beam_size=beam_size, language="en", vad_filter=vad_filter)
        text = " ".join(segment.text.strip() for segment in segments)
        wall = time.perf_counter() - started
        print(json.dumps({"wall": wall, "peak_rss_kb": vm_hwm_kb(), "text": text}), flush=True)


if __name__ == "__main__":
    main()
