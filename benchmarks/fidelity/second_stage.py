"""Second-stage VAE settings (Dai & Wipf 2019) on a trained VAE's training codes, each scored as `evaluate`
scores its samplers (10,000 decoded samples, domain FID against the test split). Not part of the tests.

    python benchmarks/fidelity/second_stage.py models/vae/fashion_mnist/model.ckpt . [--only prior gmm ...]

The project directory gives the prepared Fashion-MNIST split and the domain classifier of `make run`.
Prints one JSON line per variant: the fit's seconds and the scores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from run import score

from aegan.models.inference import batched, decode
from aegan.models.registry import load_module
from aegan.models.samplers import GaussianMixtureSampler, PriorSampler, TwoStageVAESampler

# name: (sampler, codes: "mu" (the posterior means, what evaluate fits) or "sampled" (z ~ q(z|x)), seed)
VARIANTS = {
    "prior": (lambda d: PriorSampler(d), "mu", 0),
    "gmm": (lambda d: GaussianMixtureSampler(), "mu", 0),
    "256x2_30ep_b512": (lambda d: TwoStageVAESampler([256, 256], 30, 512), "mu", 0),
    "256x2_30ep_b512_sampled": (lambda d: TwoStageVAESampler([256, 256], 30, 512), "sampled", 0),
    "256x2_50ep_b128": (lambda d: TwoStageVAESampler([256, 256], 50, 128), "mu", 0),
    "256x2_100ep_b256": (lambda d: TwoStageVAESampler([256, 256], 100, 256), "mu", 0),
    "256x2_200ep_b512": (lambda d: TwoStageVAESampler([256, 256], 200, 512), "mu", 0),
    "256x2_200ep_b512_seed1": (lambda d: TwoStageVAESampler([256, 256], 200, 512), "mu", 1),
    "1024x3_100ep_b128": (lambda d: TwoStageVAESampler([1024] * 3, 100, 128), "mu", 0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", type=Path)
    parser.add_argument("project", type=Path)
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    module = load_module(args.ckpt).eval()
    prepared = args.project / "data" / "prepared" / "fashion_mnist"
    train = torch.load(prepared / "train.pt", weights_only=True)["images"].float()
    test = torch.load(prepared / "test.pt", weights_only=True)
    classifier = args.project / "models" / "domain_classifier" / "fashion_mnist" / "classifier.pt"
    with torch.no_grad():
        posterior = batched(lambda x: torch.cat(module.posterior(x), 1), train, module, 500)
    mu, logvar = posterior.chunk(2, 1)
    codes = {
        "mu": mu,
        "sampled": mu + torch.randn(mu.shape, generator=torch.Generator().manual_seed(0)) * (0.5 * logvar).exp(),
    }
    for name in args.only:
        make, which, seed = VARIANTS[name]
        start = time.perf_counter()
        sampler = make(mu.shape[1]).fit(codes[which], seed)
        seconds = time.perf_counter() - start
        row = score(
            {"samples": decode(module, sampler.sample(10000, seed))}, test["images"].float(), test["labels"], classifier
        )
        print(
            json.dumps({"variant": name, "fit_s": round(seconds, 1), **{k: round(v, 4) for k, v in row.items()}}),
            flush=True,
        )


if __name__ == "__main__":
    main()
