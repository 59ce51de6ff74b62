"""Inception FID of trained checkpoints (and the seeds' saved samples) next to the literature. Not a test.

The standard FID network (evaluation.inception: the TF Inception-v3 of the original code) runs at a few
images/s on a 2-core CPU, so the sample count is a flag: every set is scored at the same N against N real
test images, next to the real-data floor at that N (N training images against the same test images);
FID is biased upwards at small N (by more the closer N is to the 2,048 features), KID is not.

    python benchmarks/inception_fid.py --n 2000 --out reports/inception \\
        "dcgan=models/dcgan/fashion_mnist/model.ckpt" "seed dcgan=/tmp/fx/dcgan_s2/seed/dcgan.npz" \\
        "vae=models/vae/fashion_mnist/model.ckpt" "vae two_stage=models/vae/fashion_mnist/model.ckpt:two_stage"

A set is `label=path[:sampler]`: a checkpoint (samples from its prior, or from an ex-post sampler of
evaluation.samplers fitted to the training codes) or an .npz of NHWC samples in [-1, 1] (the fidelity
harness's seed output). Features are cached per set in --out (keyed by the files' paths, sizes and
modification times, N and the seed), so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
# Lucic et al. 2018 ("Are GANs created equal?"), Fashion-MNIST, 10,000 samples, the best FID of their
# large hyper-parameter search; the 2-stage VAE is Dai & Wipf 2019's number on the same protocol.
LITERATURE = {"ns-gan": 26.5, "wgan-gp": 24.5, "wgan": 21.5, "vae": 43.6, "2-stage vae": 29.3}


def set_images(spec: str, n: int, train: torch.Tensor, evaluation, seed: int) -> torch.Tensor:
    from aegan.models.inference import decode, encode, sample
    from aegan.models.registry import load_module
    from aegan.models.samplers import build_sampler

    path, _, sampler = spec.partition(":")
    if path.endswith(".npz"):
        samples = np.load(path)["samples"][:n]
        return torch.from_numpy(samples).permute(0, 3, 1, 2).contiguous().float()
    module = load_module(Path(path)).eval()
    torch.manual_seed(seed)
    if not sampler:
        return sample(module, n)
    codes = encode(module, train, int(evaluation.batch_size))
    fitted = build_sampler(sampler, evaluation.samplers[sampler]).fit(codes, seed)
    return decode(module, fitted.sample(n, seed), int(evaluation.batch_size))


def file_version(path: Path) -> str:
    """Part of a cache key: a retrained checkpoint or re-prepared split at the same path is another set."""
    stat = path.stat()
    return f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns}"


def cached_features(out: Path, key: str, make_images, backbone, batch_size: int) -> torch.Tensor:
    from aegan.metrics.features import extract_features

    path = out / f"features-{hashlib.sha1(key.encode()).hexdigest()[:12]}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    images = make_images()
    start = time.perf_counter()
    features = extract_features(backbone, images, batch_size, "cpu", key[:40])
    seconds = time.perf_counter() - start
    print(f"{key}: {len(images)} images, {len(images) / seconds:.2f} images/s", flush=True)
    torch.save(features, path)
    return features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", help="label=path[:sampler]")
    parser.add_argument("--n", type=int, default=10000, help="images per set (Lucic et al.: 10,000)")
    parser.add_argument("--data", type=Path, default=ROOT / "data/prepared/fashion_mnist")
    parser.add_argument("--out", type=Path, default=ROOT / "reports/inception")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from aegan.config import compose
    from aegan.metrics.distribution import fid, kid
    from aegan.metrics.features import InceptionBackbone

    evaluation = compose(ROOT, "config").evaluation
    backbone = InceptionBackbone(evaluation.inception.weights, evaluation.inception.sha1)
    batch = int(evaluation.inception.batch_size)
    args.out.mkdir(parents=True, exist_ok=True)
    test = torch.load(args.data / "test.pt", weights_only=True)["images"].float()
    train = torch.load(args.data / "train.pt", weights_only=True)["images"].float()
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))[: args.n]
    test_key, train_key = (f"{file_version(args.data / f'{split}.pt')} {args.n}" for split in ("test", "train"))
    real = cached_features(args.out, f"real {test_key}", lambda: test[: args.n], backbone, batch)
    sets = {"real training images (the floor)": (f"real {train_key} {args.seed}", lambda: train[pick])}
    for item in args.sets:
        label, _, spec = item.partition("=")
        sets[label] = (
            f"{spec} {file_version(Path(spec.partition(':')[0]))} {train_key} {args.seed}",
            lambda s=spec: set_images(s, args.n, train, evaluation, args.seed),
        )
    rows = []
    for label, (key, make_images) in sets.items():
        fake = cached_features(args.out, key, make_images, backbone, batch)
        kid_mean, kid_std = kid(backbone, real, fake, 100, min(1000, len(fake)))
        row = {"set": label, "n": len(fake), "inception_fid": fid(backbone, real, fake)}
        rows.append({**row, "kid": kid_mean, "kid_std": kid_std})
        print(json.dumps(rows[-1]), flush=True)
    (args.out / "inception_fid.json").write_text(json.dumps({"rows": rows, "literature": LITERATURE}, indent=2))
    print("\n| set | N | Inception FID | KID |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['set']} | {row['n']} | {row['inception_fid']:.1f} | {row['kid']:.4f} ± {row['kid_std']:.4f} |")
    print("\nLiterature (10,000 samples): " + ", ".join(f"{k} {v}" for k, v in LITERATURE.items()))


if __name__ == "__main__":
    main()
