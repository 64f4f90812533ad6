"""faster-whisper as benches/compare.rs measures it: one process, the model loaded once.

    python faster_whisper_driver.py MODEL_DIR THREADS

Loads the CTranslate2 model with compute_type="int8" on the CPU with THREADS threads (one
worker), prints `ready <load seconds>`, then reads one WAV path per line from stdin and
answers each with one JSON line:

    {"wall": seconds, "peak_rss_kb": kB, "text": "..."}

`wall` runs from the call to transcribe() until the last segment is read (faster-whisper
decodes lazily), so it includes reading the file, as the other sides' times do. Settings
are those of ../shared/audio/SOURCES.md's reference column: beam_size=5, language="en",
everything else at faster-whisper's defaults. `peak_rss_kb` is the process's VmHWM after
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
    started = time.perf_counter()
    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1)
    print(f"ready {time.perf_counter() - started:.3f}", flush=True)
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        started = time.perf_counter()
        segments, _info = model.transcribe(path, beam_size=5, language="en")
        text = " ".join(segment.text.strip() for segment in segments)
        wall = time.perf_counter() - started
        print(json.dumps({"wall": wall, "peak_rss_kb": vm_hwm_kb(), "text": text}), flush=True)


if __name__ == "__main__":
    main()
