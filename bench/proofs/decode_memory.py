"""Peak memory and time of one maximal upload: a ~40 Mpx phone-like JPEG through decode + preprocess.

    .venv/bin/python -m bench.proofs.decode_memory            # 7300 x 5475 (39.97 Mpx, under the 40 M cap)

The figure behind the default HWR_MAX_CONCURRENCY (docs/reliability.md): concurrent predictions x
this peak must fit the container's memory. The JPEG is made first, then measured in a fresh child
process by its own peak resident set (`VmHWM`; `ru_maxrss` would carry the parent's peak over).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench import cli

CHILD = """
import json, re, sys, time
from pathlib import Path
from app.config import Settings
from contract.preprocessing import NoInkError, PreprocessConfig, preprocess
from app.service.images import decode_image
def peak_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
data = open(sys.argv[1], "rb").read()
settings = Settings()
before = peak_kb()
start = time.perf_counter()
image = decode_image(data, max_pixels=settings.max_pixels, max_side=settings.max_side)
decoded = time.perf_counter()
try:
    preprocess(image, PreprocessConfig())
except NoInkError:
    pass
done = time.perf_counter()
after = peak_kb()
print(json.dumps({"upload_kb": len(data) // 1000, "shape": list(image.shape),
    "decode_s": round(decoded - start, 2), "preprocess_s": round(done - decoded, 2),
    "peak_rss_mb_before": round(before / 1024), "peak_rss_mb_after": round(after / 1024),
    "peak_rise_mb": round((after - before) / 1024)}))
"""


def photo_like_jpeg(path: Path, width: int, height: int) -> None:
    """Paper with sensor-like noise and a dark stroke, upscaled to full size, JPEG q85."""
    rng = np.random.default_rng(0)
    small = rng.normal(200, 20, size=(height // 8, width // 8, 3)).clip(0, 255).astype(np.uint8)
    small[height // 16 - 20 : height // 16 + 20, 100:-100] = 20
    Image.fromarray(small).resize((width, height)).save(path, "JPEG", quality=85)


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(__doc__)
    parser.add_argument("--width", type=int, default=7300)
    parser.add_argument("--height", type=int, default=5475)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jpg"
        photo_like_jpeg(path, args.width, args.height)
        result = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True)
    if result.returncode:
        print(result.stderr, file=sys.stderr)
        return result.returncode
    print(json.dumps(json.loads(result.stdout), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
