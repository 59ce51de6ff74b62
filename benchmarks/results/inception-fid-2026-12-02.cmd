# the command that made inception-fid-2026-12-02.json (2-core AMD EPYC; checkpoints from the fidelity
# harness runs of benchmarks/fidelity/results/ and the project `make run` left)
python benchmarks/inception_fid.py --n 2000 --out /tmp/incep \
 "seed's Keras DCGAN (seed 2)=/tmp/fx/dcgan_s2/seed/dcgan.npz" \
 "aegan dcgan (seed 2)=/tmp/fx/dcgan_s2/aegan/dcgan/model.ckpt" \
 "aegan wgan_gp=/tmp/fx/wgan_gp_b0/aegan/wgan_gp/model.ckpt" \
 "aegan vae, prior=models/vae/fashion_mnist/model.ckpt" \
 "aegan vae, 2-stage=models/vae/fashion_mnist/model.ckpt:two_stage" \
 "aegan wgan (clip 0.05)=/tmp/fx/wgan_clip05bn/aegan/wgan/model.ckpt"
