"""Train one texture network.

    python -m models.train --texture water --data /work/musicdata [--steps 3000] [--resume]

Seeded; a tqdm progress bar; losses logged to ``OUT/log.jsonl``; a checkpoint every
``--checkpoint-every`` steps in ``OUT/ckpt`` (``--resume`` continues from the latest,
with the optimiser and the data sampler's random state); at the end the weights and
their metadata go to ``--weights-dir`` (default ``models/weights``).

Loss = content (spectrum shape below 4 kHz with per-frame gain free, onset-envelope
correlation) + texture (McDermott-Simoncelli band statistics and Gram matrices of
random convolution banks, each family normalised by its initial music-to-exemplar
distance) against crops of the texture exemplar + total variation over time of the
gain the network applies to the music (a gain that jumps from frame to frame makes the
magnitude inconsistent, and Griffin-Lim then smears the music's partials).
"""
from __future__ import annotations

import argparse
import datetime
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from musicoder import audio, spectral

from . import TEXTURES, data, network

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
FORMAT_VERSION = 1

# Per-texture defaults of the loss weights (found with the judge on held-out clips).
LOSS_WEIGHTS = {
    "laser": {"shape": 20.0, "onset": 4.0, "stats": 1.0, "gram": 0.5, "gain_tv": 1.0},
    "water": {"shape": 20.0, "onset": 4.0, "stats": 1.0, "gram": 0.5, "gain_tv": 1.0},
    "future": {"shape": 20.0, "onset": 4.0, "stats": 1.0, "gram": 0.5, "gain_tv": 1.0},
}


def exemplar_log_mag(name: str) -> np.ndarray:
    """The texture exemplar as (frames, N_BINS) float32 log-magnitude (nats)."""
    path = TEXTURES[name].exemplar_path
    y = audio.load(path, start=0.0, duration=None).samples
    return data.log_spectrogram(y)


def exemplar_targets(ex: np.ndarray, frames: int, crops: int = 12):
    """Mean band statistics {family: (n,)} and Gram matrices [(128, 128)] of ``crops``
    evenly spaced crops of ``frames`` frames of the exemplar log-magnitude."""
    import tensorflow as tf

    from . import features

    starts = np.linspace(0, ex.shape[0] - frames, crops).astype(int)
    batch = tf.constant(np.stack([ex[s:s + frames] for s in starts]))
    stats = {k: tf.reduce_mean(v, 0) for k, v in features.band_statistics(batch).items()}
    grams = [tf.reduce_mean(g, 0) for g in features.grams(batch)]
    return stats, grams


def parse_args(argv):
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texture", required=True, choices=list(TEXTURES))
    ap.add_argument("--data", required=True, help="folder with train/ (and val/) or audio files")
    ap.add_argument("--out", type=Path, help="run folder (default runs/<texture>)")
    ap.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--cache", type=Path, default=data.DEFAULT_CACHE)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--frames", type=int, default=344, help="clip length (344 frames = 4 s)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint-every", type=int, default=200)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for TensorFlow")
    ap.add_argument("--resume", action="store_true")
    for k in LOSS_WEIGHTS["water"]:
        ap.add_argument(f"--w-{k}", type=float, help=f"weight of the {k} loss term")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import tensorflow as tf
    from tqdm import tqdm

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from . import features
    tf.keras.utils.set_random_seed(args.seed)
    weights = {k: (getattr(args, f"w_{k}") if getattr(args, f"w_{k}") is not None else v)
               for k, v in LOSS_WEIGHTS[args.texture].items()}
    out = args.out or Path("runs") / args.texture
    out.mkdir(parents=True, exist_ok=True)

    train_files, _ = data.split_dirs(args.data)
    sampler = data.ClipSampler(train_files, args.frames, args.seed, args.cache,
                               progress=lambda f: tqdm(f, desc="caching spectrograms", leave=False))
    stats_t, grams_t = exemplar_targets(exemplar_log_mag(args.texture), args.frames)

    # Normalise each texture family by the music's initial distance to the exemplar, so
    # every family starts near 1 whatever its unit.
    probe = tf.constant(np.concatenate([sampler.batch(8) for _ in range(2)]))
    s0, g0 = features.band_statistics(probe), features.grams(probe)
    stat_scale = {k: float(tf.reduce_mean((s0[k] - stats_t[k]) ** 2)) + 1e-6 for k in stats_t}
    gram_scale = [float(tf.reduce_mean((g - t) ** 2)) + 1e-9 for g, t in zip(g0, grams_t)]
    sampler.rng = np.random.default_rng(args.seed)  # the probe does not shift the data stream

    params = dict(network.DEFAULT_PARAMS)
    model = network.build(params, with_gain=True)
    opt = tf.keras.optimizers.Adam(args.lr)
    step_var = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt, step=step_var)
    manager = tf.train.CheckpointManager(ckpt, str(out / "ckpt"), max_to_keep=2)
    rng_file = out / "ckpt" / "sampler_rng.pkl"
    noise_rng = np.random.default_rng(args.seed + 1)
    if args.resume and manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        if rng_file.exists():
            sampler.rng, noise_rng = pickle.loads(rng_file.read_bytes())
        print(f"resumed from {manager.latest_checkpoint} at step {int(step_var.numpy())}", file=sys.stderr)
    elif not args.resume and (out / "log.jsonl").exists():
        (out / "log.jsonl").unlink()

    def losses(x, z):
        y, g = model([x, z], training=True)
        terms = features.content_terms(y, x)
        s = features.band_statistics(y)
        fam = {k: tf.reduce_mean((s[k] - stats_t[k]) ** 2) / stat_scale[k] for k in s}
        terms["stats"] = tf.add_n(list(fam.values())) / len(fam)
        gs = features.grams(y)
        terms["gram"] = tf.add_n([tf.reduce_mean((g - t) ** 2) / sc
                                  for g, t, sc in zip(gs, grams_t, gram_scale)]) / len(gs)
        terms["gain_tv"] = tf.reduce_mean(tf.abs(g[:, 1:] - g[:, :-1]))
        total = tf.add_n([weights[k] * terms[k] for k in weights])
        return total, terms, fam

    @tf.function(reduce_retracing=True)
    def train_step(x, z):
        with tf.GradientTape() as tape:
            total, terms, fam = losses(x, z)
        grads = tape.gradient(total, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, 5.0)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return total, terms, fam

    start = int(step_var.numpy())
    t0 = time.time()
    with open(out / "log.jsonl", "a") as log, tqdm(total=args.steps, initial=start, desc=args.texture) as bar:
        for step in range(start, args.steps):
            x = sampler.batch(args.batch)
            z = noise_rng.standard_normal((args.batch, args.frames, params["noise_channels"])).astype(np.float32)
            total, terms, fam = train_step(tf.constant(x), tf.constant(z))
            step_var.assign(step + 1)
            bar.update(1)
            if (step + 1) % args.log_every == 0 or step == start:
                row = {"step": step + 1, "time_s": round(time.time() - t0, 1), "total": float(total)}
                row |= {k: float(v) for k, v in terms.items()} | {f"stat_{k}": float(v) for k, v in fam.items()}
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.set_postfix(total=f"{float(total):.3f}", stats=f"{float(terms['stats']):.3f}",
                                gram=f"{float(terms['gram']):.3f}", shape=f"{float(terms['shape']):.3f}",
                                onset=f"{float(terms['onset']):.3f}")
            if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps:
                manager.save(checkpoint_number=step + 1)
                rng_file.write_bytes(pickle.dumps((sampler.rng, noise_rng)))

    run = {"command": "python -m models.train " + " ".join(argv if argv is not None else sys.argv[1:]),
           "data": str(args.data), "train_files": len(train_files),
           "wall_s_this_session": round(time.time() - t0, 1)}
    save_checkpoint(model, args.texture, params, args.steps, args.seed, weights, args.weights_dir, run)
    from . import export

    diff = export.export(args.texture, args.weights_dir)  # what conversions load
    print(f"exported {args.texture}.npz for the numpy runtime (max |numpy - keras| {diff:.1e} nats)")
    return 0


def save_checkpoint(model, texture: str, params: dict, steps: int, seed: int, loss_weights: dict,
                    weights_dir: Path, run: dict | None = None) -> Path:
    """Write ``{texture}.weights.h5`` and ``{texture}.json`` (metadata) into ``weights_dir``."""
    weights_dir.mkdir(parents=True, exist_ok=True)
    path = weights_dir / f"{texture}.weights.h5"
    model.save_weights(str(path))
    meta_path = weights_dir / f"{texture}.json"
    old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta = {
        "format_version": FORMAT_VERSION,
        "texture": texture,
        "sample_rate": spectral.SAMPLE_RATE,
        "n_fft": spectral.N_FFT,
        "hop": spectral.HOP,
        "n_bins": spectral.N_BINS,
        "architecture": {"name": network.ARCHITECTURE, "version": network.ARCH_VERSION, "params": params},
        "weight_count": network.weight_count(model),
        "training": {"steps": steps, "seed": seed, "loss_weights": loss_weights, **(run or {}),
                     "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
        "validation": old.get("validation"),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
