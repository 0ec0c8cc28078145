"""Storage benchmarks (issue 5): image import vs GNU tar, and start time vs image size.

    import    `ImageStore.import_archive(debian.tar)` (the safe extractor, storage/unpack.py)
              vs `tar -xpf debian.tar --numeric-owner -C DIR` of the same archive, into the
              same filesystem; target: import <= 1.5 x tar.
    start     `Container(image, ["true"], remove=True, net="none").run()` through the library
              in one process, alternating busybox and debian container by container (a busy
              machine slows both alike); target: debian within 10 % of busybox.

Each timed run starts after `sync`, so one run's write-back is not charged to the next.
Medians are reported; nothing here is a test (bench/README.md).

    bench/storage.py --tar build/debian-bookworm.tar --busybox build/busybox-latest.tar \\
                     --work /var/tmp/mc-bench-storage [-n 5] [--starts 30]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # this checkout's minicontainer


def timed(fn) -> float:
    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_import(tar: Path, work: Path, n: int) -> dict:
    """tar -x, `image import` of the rootfs tar, and of the same image as an OCI archive."""
    from minicontainer.storage.images import ImageStore
    from minicontainer.storage.oci import export_image, import_image
    work.mkdir(parents=True, exist_ok=True)
    oci = work / "debian-oci.tar"
    scratch = ImageStore(work / "scratch" / "images")
    scratch.import_archive(tar, "debian:bench")
    export_image(scratch, "debian:bench", oci, "oci")
    shutil.rmtree(work / "scratch")
    results = {"tar": [], "import": [], "oci": []}
    for i in range(n):
        kinds = list(results) if i % 2 == 0 else list(reversed(results))
        for kind in kinds:
            target = work / f"{kind}-{i}"
            target.mkdir(parents=True)
            store = ImageStore(target / "images")
            if kind == "tar":
                results[kind].append(timed(lambda: subprocess.run(
                    ["tar", "-xpf", str(tar), "--numeric-owner", "-C", str(target)], check=True)))
            elif kind == "import":
                results[kind].append(timed(lambda: store.import_archive(tar, "debian:bench")))
            else:
                results[kind].append(timed(lambda: import_image(store, oci)))
            shutil.rmtree(target)
    med = {k: statistics.median(v) for k, v in results.items()}
    return {"runs": n, "tar_s": med["tar"], "import_s": med["import"], "oci_s": med["oci"],
            "ratio": med["import"] / med["tar"], "oci_ratio": med["oci"] / med["tar"], "all": results}


def bench_start(root: Path, busybox: Path, tar: Path, n: int) -> dict:
    from minicontainer import Container
    from minicontainer.api import image_store
    store = image_store(root)
    store.import_archive(busybox, "busybox:bench")
    store.import_archive(tar, "debian:bench")
    times = {"busybox:bench": [], "debian:bench": []}
    for i in range(n + 2):
        for image in times:
            t0 = time.perf_counter()
            status = Container(image, ["true"], root=root, remove=True, net="none").run()
            elapsed = time.perf_counter() - t0
            if status != 0:
                raise SystemExit(f"bench: `true` in {image} exited {status}")
            if i >= 2:                                   # two warm-up rounds
                times[image].append(elapsed)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"runs": n, "busybox_ms": 1000 * med["busybox:bench"], "debian_ms": 1000 * med["debian:bench"],
            "ratio": med["debian:bench"] / med["busybox:bench"]}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tar", required=True, type=Path, help="the Debian base tarball")
    p.add_argument("--busybox", required=True, type=Path, help="the busybox tarball")
    p.add_argument("--work", required=True, type=Path, help="scratch directory (removed after)")
    p.add_argument("-n", type=int, default=5, help="import runs of each (default 5)")
    p.add_argument("--starts", type=int, default=30, help="containers per image (default 30)")
    p.add_argument("--json", type=Path, help="write the results here too")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        imp = bench_import(args.tar, args.work / "import", args.n)
        print(f"import {args.tar.name}: tar -x median {imp['tar_s']:.2f} s, minicontainer import "
              f"median {imp['import_s']:.2f} s, ratio {imp['ratio']:.2f} (target <= 1.5): "
              f"{'PASS' if imp['ratio'] <= 1.5 else 'MISS'}")
        print(f"import of the same image as an OCI archive: median {imp['oci_s']:.2f} s, ratio "
              f"{imp['oci_ratio']:.2f} to tar -x")
        start = bench_start(args.work / "root", args.busybox, args.tar, args.starts)
        print(f"start (library, net none): busybox median {start['busybox_ms']:.1f} ms, debian "
              f"median {start['debian_ms']:.1f} ms, ratio {start['ratio']:.3f} (target <= 1.10): "
              f"{'PASS' if start['ratio'] <= 1.10 else 'MISS'}")
        if args.json:
            args.json.write_text(json.dumps({"import": {k: v for k, v in imp.items() if k != "all"},
                                             "start": start}, indent=1) + "\n")
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
