"""Benchmark: render N synthetic-world images in memory (the writer's own code) and compare with
same-run baselines: PNG-encoding the same label maps, JPEG-encoding the same images, and a trivial
numpy fill of the same arrays. Prints one JSON object.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_synthetic_render.py --n 2000
"""

from __future__ import annotations

import argparse
import io
import json
import time

import numpy as np
from PIL import Image

from seg_pipelines.datasets.synthetic.world import render_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="images to render")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    images, labels = [], []
    for index in range(args.n):
        image, label, _, _ = render_sample(args.seed, "train", index, args.image_size)
        images.append(image)
        labels.append(label)
    render_seconds = time.perf_counter() - start

    start = time.perf_counter()
    for label in labels:
        Image.fromarray((label + 1).astype(np.uint8)).save(io.BytesIO(), format="PNG")
    png_seconds = time.perf_counter() - start

    start = time.perf_counter()
    for image in images:
        Image.fromarray(image).save(io.BytesIO(), format="JPEG", quality=95, subsampling=0)
    jpeg_seconds = time.perf_counter() - start

    start = time.perf_counter()
    for index in range(args.n):
        filled_image = np.full((args.image_size, args.image_size, 3), index % 256, dtype=np.uint8)
        filled_label = np.full((args.image_size, args.image_size), index % 60, dtype=np.int64)
        del filled_image, filled_label
    fill_seconds = time.perf_counter() - start

    print(
        json.dumps(
            {
                "images": args.n,
                "image_size": args.image_size,
                "seconds": round(render_seconds, 3),
                "images_per_s": round(args.n / render_seconds, 1),
                "projected_s_for_2000": round(render_seconds / args.n * 2000, 2),
                "baseline_png_encode_labels_s": round(png_seconds, 3),
                "baseline_jpeg_encode_images_s": round(jpeg_seconds, 3),
                "baseline_numpy_fill_s": round(fill_seconds, 4),
                "render_over_png_encode": round(render_seconds / png_seconds, 2),
                "render_over_jpeg_encode": round(render_seconds / jpeg_seconds, 2),
                "render_over_numpy_fill": round(render_seconds / fill_seconds, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
