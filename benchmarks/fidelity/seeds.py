"""The seed notebooks' own models, in Keras, written the way the sources write them (run in the Keras venv).

    python seeds.py <model> --data <dir with train.npy/test.npy> --epochs N --out <dir> [--samples 10000]

Data: aegan's prepared splits exported as float32 NHWC arrays in [-1, 1] (run.py does it), so both sides
train on the same images. Each model is scaled the way its seed scales its input ([0, 1] for the
autoencoders with a sigmoid output, [-1, 1] for the tanh GANs). Writes out/<model>.npz with `samples`
(generators, [-1, 1], NHWC) and/or `reconstructions` (of the test split, [-1, 1]) and out/<model>.json
with the training time. Nothing here is imported by aegan; aegan's configs name these seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from keras import layers


def unit(x):
    return (x + 1.0) / 2.0


# ---------------------------------------------------------------- autoencoders (seed 000: Keras blog; 002/003: Géron)
def dense_ae():
    """Keras blog: 784 -> Dense(32, relu) -> Dense(784, sigmoid); adam, binary cross-entropy, batch 256."""
    model = keras.Sequential(
        [
            layers.Input((28, 28, 1)),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(784, activation="sigmoid"),
            layers.Reshape((28, 28, 1)),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model, 256


def _stacked(activation: str, noise: float = 0.0):
    """Géron's 784-100-30 encoder (optionally GaussianNoise on the input) and its mirrored decoder; MSE, Nadam."""
    encoder = keras.Sequential(
        [
            layers.Input((28, 28, 1)),
            layers.Flatten(),
            *([layers.GaussianNoise(noise)] if noise else []),
            layers.Dense(100, activation=activation),
            layers.Dense(30, activation=activation),
        ]
    )
    decoder = keras.Sequential(
        [
            layers.Input((30,)),
            layers.Dense(100, activation=activation),
            layers.Dense(784, activation="sigmoid"),
            layers.Reshape((28, 28, 1)),
        ]
    )
    model = keras.Sequential([encoder, decoder])
    model.compile(loss="mse", optimizer="nadam")
    return model, 32  # Keras' default batch size


def stacked_ae():
    """Géron: 784-100-30 SELU, decoder 100 SELU -> 784 sigmoid; MSE, Nadam, batch 32."""
    return _stacked("selu")


def denoising_ae():
    """Géron: GaussianNoise(0.2) on the input (std on [0, 1] pixels), 100-30 ReLU, mirrored decoder; MSE, Nadam."""
    return _stacked("relu", noise=0.2)


def train_autoencoder(name, train, test, epochs):
    model, batch = AUTOENCODERS[name]()
    x = unit(train)
    start = time.perf_counter()
    model.fit(x, x, epochs=epochs, batch_size=batch, shuffle=True, verbose=2)
    seconds = time.perf_counter() - start
    recon = model.predict(unit(test), batch_size=500, verbose=0) * 2.0 - 1.0
    return {"reconstructions": np.clip(recon, -1.0, 1.0)}, seconds, batch  # a linear output may overshoot


def conv_ae():
    """Géron, handson-ml3 chapter 17: Conv 16-32-64 3x3 ReLU + MaxPool 2, Conv 30 + global average pool (the
    30-d code); Dense 3x3x16 -> ConvT 32 (valid) -> 16 -> 1, stride 2, 3x3; linear output; MSE, Nadam, batch 32."""
    encoder = keras.Sequential(
        [
            layers.Input((28, 28, 1)),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPool2D(pool_size=2),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPool2D(pool_size=2),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPool2D(pool_size=2),
            layers.Conv2D(30, 3, padding="same", activation="relu"),
            layers.GlobalAvgPool2D(),
        ]
    )
    decoder = keras.Sequential(
        [
            layers.Input((30,)),
            layers.Dense(3 * 3 * 16),
            layers.Reshape((3, 3, 16)),
            layers.Conv2DTranspose(32, 3, strides=2, activation="relu"),
            layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(1, 3, strides=2, padding="same"),
        ]
    )
    model = keras.Sequential([encoder, decoder])
    model.compile(loss="mse", optimizer="nadam")
    return model, 32


AUTOENCODERS = {"dense_ae": dense_ae, "stacked_ae": stacked_ae, "denoising_ae": denoising_ae, "conv_ae": conv_ae}


# ---------------------------------------------------------------- VAEs (002/003: Géron; 004: Foster's faces VAE)
def _gaussian_head(x, codings: int):
    return layers.Dense(codings)(x), layers.Dense(codings)(x)


def vae():
    """Géron, handson-ml2 chapter 17: Dense 150-100 SELU -> 10-d mean and log-variance; decoder 100-150 SELU ->
    784 sigmoid; BCE (mean over pixels) + KL / 784 (the notebook's add_loss), batch 128. Nadam, as the 3rd
    edition's VAE and aegan's config (the 2nd edition compiles this one with RMSprop)."""
    codings = 10
    inputs = layers.Input((28, 28, 1))
    x = layers.Flatten()(inputs)
    x = layers.Dense(150, activation="selu")(x)
    x = layers.Dense(100, activation="selu")(x)
    encoder = keras.Model(inputs, _gaussian_head(x, codings))
    decoder = keras.Sequential(
        [
            layers.Input((codings,)),
            layers.Dense(100, activation="selu"),
            layers.Dense(150, activation="selu"),
            layers.Dense(784, activation="sigmoid"),
            layers.Reshape((28, 28, 1)),
        ]
    )

    def loss(x, out, kl):
        return tf.reduce_mean(keras.losses.binary_crossentropy(x, out, axis=[1, 2, 3])) + tf.reduce_mean(kl) / 784.0

    return encoder, decoder, codings, 128, keras.optimizers.Nadam(), loss


def conv_vae():
    """Foster, Generative Deep Learning chapter 3's faces VAE at 28x28 (aegan's conv_vae): Conv 32-64 3x3 stride 2
    + batch norm + LeakyReLU -> 200-d mean and log-variance; Dense 7x7x64 -> ConvT 32 -> 1, 3x3 stride 2, batch
    norm + LeakyReLU, sigmoid; 2000 * mean MSE + KL, Adam(5e-4), batch 128."""
    codings = 200
    inputs = layers.Input((28, 28, 1))
    x = inputs
    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, strides=2, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU()(x)
    encoder = keras.Model(inputs, _gaussian_head(layers.Flatten()(x), codings))
    decoder = keras.Sequential(
        [
            layers.Input((codings,)),
            layers.Dense(7 * 7 * 64),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Reshape((7, 7, 64)),
            layers.Conv2DTranspose(32, 3, strides=2, padding="same"),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid"),
        ]
    )

    def loss(x, out, kl):
        return 2000.0 * tf.reduce_mean(tf.square(x - out)) + tf.reduce_mean(kl)

    return encoder, decoder, codings, 128, keras.optimizers.Adam(5e-4), loss


def train_vae(name, train, test, epochs, n_samples):
    """The seeds' VAE (a Sampling layer, the KL added to the reconstruction loss) as one GradientTape step."""
    encoder, decoder, codings, batch, optimizer, loss_fn = VAES[name]()
    weights = encoder.trainable_variables + decoder.trainable_variables

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            mean, log_var = encoder(x, training=True)
            z = mean + tf.exp(log_var / 2) * tf.random.normal(tf.shape(mean))
            out = decoder(z, training=True)
            kl = -0.5 * tf.reduce_sum(1 + log_var - tf.exp(log_var) - tf.square(mean), axis=-1)
            loss = loss_fn(x, out, kl)
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
        return loss

    dataset = tf.data.Dataset.from_tensor_slices(unit(train)).shuffle(10000).batch(batch).prefetch(1)
    start = time.perf_counter()
    for epoch in range(epochs):
        for x in dataset:
            loss = step(x)
        print(f"epoch {epoch + 1}/{epochs}: {time.perf_counter() - start:.0f} s, loss {float(loss):.3f}", flush=True)
    seconds = time.perf_counter() - start
    mean, _ = encoder.predict(unit(test), batch_size=500, verbose=0)
    recon = decoder.predict(mean, batch_size=500, verbose=0) * 2.0 - 1.0
    z = np.random.normal(size=(n_samples, codings)).astype("float32")
    samples = decoder.predict(z, batch_size=500, verbose=0) * 2.0 - 1.0
    return {"reconstructions": recon, "samples": samples}, seconds, batch


VAES = {"vae": vae, "conv_vae": conv_vae}


# ---------------------------------------------------------------- GANs (002: Géron's DCGAN; 003: the MLP GAN)
def dcgan():
    """Géron, handson-ml3 chapter 17: codings 30, 5x5 kernels, SELU generator, dropout 0.4, RMSprop, batch 32."""
    codings = 30
    generator = keras.Sequential(
        [
            layers.Input((codings,)),
            layers.Dense(7 * 7 * 128),
            layers.Reshape([7, 7, 128]),
            layers.BatchNormalization(),
            layers.Conv2DTranspose(64, kernel_size=5, strides=2, padding="same", activation="selu"),
            layers.BatchNormalization(),
            layers.Conv2DTranspose(1, kernel_size=5, strides=2, padding="same", activation="tanh"),
        ]
    )
    discriminator = keras.Sequential(
        [
            layers.Input((28, 28, 1)),
            layers.Conv2D(64, kernel_size=5, strides=2, padding="same", activation=layers.LeakyReLU(0.2)),
            layers.Dropout(0.4),
            layers.Conv2D(128, kernel_size=5, strides=2, padding="same", activation=layers.LeakyReLU(0.2)),
            layers.Dropout(0.4),
            layers.Flatten(),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    return generator, discriminator, codings, 32, "rmsprop", "rmsprop"


def mlp_gan():
    """The fully connected GAN: G 100 -> 256-512-1024 -> 784 tanh, D 1024-512-256 dropout 0.3, LeakyReLU 0.2,
    Adam(2e-4, beta1 0.5) for both, batch 128."""
    codings = 100
    generator = keras.Sequential(
        [
            layers.Input((codings,)),
            layers.Dense(256, activation=layers.LeakyReLU(0.2)),
            layers.Dense(512, activation=layers.LeakyReLU(0.2)),
            layers.Dense(1024, activation=layers.LeakyReLU(0.2)),
            layers.Dense(784, activation="tanh"),
            layers.Reshape((28, 28, 1)),
        ]
    )
    discriminator = keras.Sequential(
        [
            layers.Input((28, 28, 1)),
            layers.Flatten(),
            layers.Dense(1024, activation=layers.LeakyReLU(0.2)),
            layers.Dropout(0.3),
            layers.Dense(512, activation=layers.LeakyReLU(0.2)),
            layers.Dropout(0.3),
            layers.Dense(256, activation=layers.LeakyReLU(0.2)),
            layers.Dropout(0.3),
            layers.Dense(1, activation="sigmoid"),
        ]
    )

    def adam():
        return keras.optimizers.Adam(2e-4, beta_1=0.5)

    return generator, discriminator, codings, 128, adam(), adam()


def train_gan(name, train, epochs, n_samples):
    """Géron's loop: D on [fake; real] with labels [0; 1], then G through D with labels 1 (D not updated).

    The notebook freezes D inside the combined model with `discriminator.trainable = False`, which Keras 3
    reads at every train_on_batch (D would then never learn); the same two steps written with GradientTape.
    """
    generator, discriminator, codings, batch, d_opt, g_opt = GANS[name]()
    d_opt = keras.optimizers.get(d_opt)
    g_opt = keras.optimizers.get(g_opt)
    bce = keras.losses.BinaryCrossentropy()
    y1 = tf.constant([[0.0]] * batch + [[1.0]] * batch)
    y2 = tf.constant([[1.0]] * batch)

    @tf.function
    def step(real):
        noise = tf.random.normal(shape=[batch, codings])
        fake = generator(noise)  # as the notebook calls it: inference mode (batch norm's moving averages)
        with tf.GradientTape() as tape:
            d_loss = bce(y1, discriminator(tf.concat([fake, real], axis=0), training=True))
        weights = discriminator.trainable_variables
        d_opt.apply_gradients(zip(tape.gradient(d_loss, weights), weights, strict=True))
        noise = tf.random.normal(shape=[batch, codings])
        with tf.GradientTape() as tape:
            g_loss = bce(y2, discriminator(generator(noise, training=True), training=True))
        weights = generator.trainable_variables
        g_opt.apply_gradients(zip(tape.gradient(g_loss, weights), weights, strict=True))
        return d_loss, g_loss

    dataset = tf.data.Dataset.from_tensor_slices(train).shuffle(1000).batch(batch, drop_remainder=True).prefetch(1)
    return *_fit_and_sample(step, dataset, epochs, generator, codings, n_samples), batch


def _fit_and_sample(step, dataset, epochs, generator, codings, n_samples):
    """The GAN seeds' epochs of `step` over `dataset`, timed; then n_samples images from the prior."""
    start = time.perf_counter()
    for epoch in range(epochs):
        for real in dataset:
            d_loss, g_loss = step(real)
        took = time.perf_counter() - start
        print(f"epoch {epoch + 1}/{epochs}: {took:.0f} s, d {float(d_loss):.3f} g {float(g_loss):.3f}", flush=True)
    seconds = time.perf_counter() - start
    z = np.random.normal(size=(n_samples, codings)).astype("float32")
    return {"samples": generator.predict(z, batch_size=500, verbose=0)}, seconds


# ---------------------------------------------------------------- GANs at 64x64 (004: Foster, chapter 4)
def _foster_generator(z_dim: int, channels: int):
    """Foster's generator: z -> ConvT 512 4x4 valid -> 256 -> 128 -> 64 -> C, 4x4 stride 2, no biases, batch norm
    (momentum 0.9) + LeakyReLU(0.2), tanh."""
    x = inputs = layers.Input((z_dim,))
    x = layers.Reshape((1, 1, z_dim))(x)
    x = layers.Conv2DTranspose(512, kernel_size=4, strides=1, padding="valid", use_bias=False)(x)
    for filters in (256, 128, 64, None):
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.LeakyReLU(0.2)(x)
        if filters is None:
            break
        x = layers.Conv2DTranspose(filters, kernel_size=4, strides=2, padding="same", use_bias=False)(x)
    x = layers.Conv2DTranspose(channels, kernel_size=4, strides=2, padding="same", use_bias=False)(x)
    return keras.Model(inputs, layers.Activation("tanh")(x))


def dcgan_64(channels: int):
    """Foster, Generative Deep Learning 2nd ed., 04_gan/01_dcgan (LEGO bricks): D Conv 64-128-256-512 4x4 stride 2,
    no biases, batch norm (momentum 0.9) from the second, LeakyReLU(0.2), dropout 0.3, Conv 1 4x4 valid sigmoid;
    z 100, Adam(2e-4, 0.5, 0.999) for both, batch 128."""
    x = inputs = layers.Input((64, 64, channels))
    for filters in (64, 128, 256, 512):
        x = layers.Conv2D(filters, kernel_size=4, strides=2, padding="same", use_bias=False)(x)
        if filters > 64:
            x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.Dropout(0.3)(x)
    x = layers.Conv2D(1, kernel_size=4, strides=1, padding="valid", use_bias=False, activation="sigmoid")(x)
    discriminator = keras.Model(inputs, layers.Flatten()(x))
    return _foster_generator(100, channels), discriminator, 100, 128


def wgan_gp_64(channels: int):
    """Foster, 04_gan/02_wgan_gp (CelebA faces): the DCGAN generator, critic Conv 64-128-256-512 4x4 stride 2 with
    LeakyReLU(0.2), dropout 0.3 after the second to fourth, Conv 1 4x4 valid, linear; z 128, batch 512."""
    x = inputs = layers.Input((64, 64, channels))
    for filters in (64, 128, 256, 512):
        x = layers.Conv2D(filters, kernel_size=4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
        if filters > 64:
            x = layers.Dropout(0.3)(x)
    x = layers.Conv2D(1, kernel_size=4, strides=1, padding="valid")(x)
    critic = keras.Model(inputs, layers.Flatten()(x))
    return _foster_generator(128, channels), critic, 128, 512


def train_foster(name, train, epochs, n_samples):
    """Foster's train_step, as his two Keras models write it.

    DCGAN: one forward pass, both networks stepped from it; the BCE targets noisy (real 1 + 0.1 U, fake
    -0.1 U; the generator's target 1). WGAN-GP: 3 critic steps on the same real batch (Wasserstein loss +
    10 x the gradient penalty on random interpolates), then one generator step. Adam(2e-4, 0.5, 0.999).
    """
    generator, critic, z_dim, batch = GANS_64[name](train.shape[-1])
    g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999)
    d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999)
    bce = keras.losses.BinaryCrossentropy()

    def apply(optimizer, gradients, network):
        optimizer.apply_gradients(zip(gradients, network.trainable_variables, strict=True))

    @tf.function
    def dcgan_step(real):
        z = tf.random.normal(shape=(tf.shape(real)[0], z_dim))
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(z, training=True)
            real_pred, fake_pred = critic(real, training=True), critic(fake, training=True)
            real_noisy = tf.ones_like(real_pred) + 0.1 * tf.random.uniform(tf.shape(real_pred))
            fake_noisy = tf.zeros_like(fake_pred) - 0.1 * tf.random.uniform(tf.shape(fake_pred))
            d_loss = (bce(real_noisy, real_pred) + bce(fake_noisy, fake_pred)) / 2.0
            g_loss = bce(tf.ones_like(real_pred), fake_pred)
        apply(d_opt, d_tape.gradient(d_loss, critic.trainable_variables), critic)
        apply(g_opt, g_tape.gradient(g_loss, generator.trainable_variables), generator)
        return d_loss, g_loss

    def penalty(real, fake):
        alpha = tf.random.normal([tf.shape(real)[0], 1, 1, 1], 0.0, 1.0)  # as Foster writes it: normal, not U(0, 1)
        interpolated = real + alpha * (fake - real)
        with tf.GradientTape() as tape:
            tape.watch(interpolated)
            pred = critic(interpolated, training=True)
        grads = tape.gradient(pred, [interpolated])[0]
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
        return tf.reduce_mean((norm - 1.0) ** 2)

    @tf.function
    def wgan_gp_step(real):
        n = tf.shape(real)[0]
        for _ in range(3):
            z = tf.random.normal(shape=(n, z_dim))
            with tf.GradientTape() as tape:
                fake = generator(z, training=True)
                fake_pred, real_pred = critic(fake, training=True), critic(real, training=True)
                d_loss = tf.reduce_mean(fake_pred) - tf.reduce_mean(real_pred) + 10.0 * penalty(real, fake)
            apply(d_opt, tape.gradient(d_loss, critic.trainable_variables), critic)
        z = tf.random.normal(shape=(n, z_dim))
        with tf.GradientTape() as tape:
            g_loss = -tf.reduce_mean(critic(generator(z, training=True), training=True))
        apply(g_opt, tape.gradient(g_loss, generator.trainable_variables), generator)
        return d_loss, g_loss

    step = dcgan_step if name == "dcgan_64" else wgan_gp_step
    dataset = tf.data.Dataset.from_tensor_slices(train).shuffle(1000).batch(batch).prefetch(1)
    return *_fit_and_sample(step, dataset, epochs, generator, z_dim, n_samples), batch


GANS = {"dcgan": dcgan, "mlp_gan": mlp_gan}
GANS_64 = {"dcgan_64": dcgan_64, "wgan_gp_64": wgan_gp_64}
MODELS = sorted([*AUTOENCODERS, *VAES, *GANS, *GANS_64])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=MODELS)
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    data = Path(args.data)
    train = np.load(data / "train.npy")
    if args.model in GANS_64:
        arrays, seconds, batch = train_foster(args.model, train, args.epochs, args.samples)
    elif args.model in GANS:
        arrays, seconds, batch = train_gan(args.model, train, args.epochs, args.samples)
    elif args.model in VAES:
        arrays, seconds, batch = train_vae(args.model, train, np.load(data / "test.npy"), args.epochs, args.samples)
    else:
        arrays, seconds, batch = train_autoencoder(args.model, train, np.load(data / "test.npy"), args.epochs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / f"{args.model}.npz", **{k: v.astype("float32") for k, v in arrays.items()})
    record = {
        "model": args.model,
        "epochs": args.epochs,
        "batch_size": batch,
        "train_seconds": seconds,
        "images_per_second": args.epochs * len(train) / seconds,
        "framework": f"keras {keras.__version__} / tensorflow {tf.__version__}",
    }
    (out / f"{args.model}.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record))


if __name__ == "__main__":
    main()
