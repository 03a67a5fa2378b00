"""Benchmark: the TensorFlow tutorial's DeepDream against course_lib's engine, side by side.

Both implementations dream the same image with the same model and settings (octaves -2..2,
scale 1.30, step size 0.01, the same steps per octave), in ONE process. Rounds alternate between
them (tutorial, course_lib, tutorial, course_lib, ...) so that whatever else loads the CPU hits
both alike. Each implementation is warmed up first (its one trace) and not timed for that.

The tutorial's code is copied below as the tutorial writes it (tensorflow.org/tutorials/generative/
deepdream, the version in ../shared/reference/deepdream_blog_ko.md): the ``DeepDream`` module with its
``tf.function`` and input signature, ``run_deep_dream_simple`` with its 100-step chunks, and the octave
loop with ``tf.image.resize``. Only the display calls are left out (they would time the screen).

Usage:
    python bench/bench_dream.py                     # InceptionV3 mixed3+mixed5 (random weights), 500 px
    python bench/bench_dream.py --backbone dog_breeds
    python -m course_lib bench                      # the same, through the course's command line

InceptionV3's ImageNet weights are not needed to time it: the work per step does not depend on the
weight values, so ``weights=None`` is used when the ImageNet file is not in the Keras cache.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# =================================================================================================
# (a) The tutorial's algorithm, as the tutorial writes it.
# =================================================================================================


def calc_loss(img, model):
    # Pass forward the image through the model to retrieve the activations.
    # Converts the image into a batch of size 1.
    img_batch = tf.expand_dims(img, axis=0)
    layer_activations = model(img_batch)
    if len(layer_activations) == 1:
        layer_activations = [layer_activations]

    losses = []
    for act in layer_activations:
        loss = tf.math.reduce_mean(act)
        losses.append(loss)

    return tf.reduce_sum(losses)


class DeepDream(tf.Module):
    def __init__(self, model):
        self.model = model

    @tf.function(
        input_signature=(
            tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),
            tf.TensorSpec(shape=[], dtype=tf.int32),
            tf.TensorSpec(shape=[], dtype=tf.float32),
        )
    )
    def __call__(self, img, steps, step_size):
        print("Tracing")
        loss = tf.constant(0.0)
        for n in tf.range(steps):
            with tf.GradientTape() as tape:
                # This needs gradients relative to `img`
                # `GradientTape` only watches `tf.Variable`s by default
                tape.watch(img)
                loss = calc_loss(img, self.model)

            # Calculate the gradient of the loss with respect to the pixels of the input image.
            gradients = tape.gradient(loss, img)

            # Normalize the gradients.
            gradients /= tf.math.reduce_std(gradients) + 1e-8

            # In gradient ascent, the "loss" is maximized so that the input image increasingly "excites" the layers.
            # You can update the image by directly adding the gradients (because they're the same shape!)
            img = img + gradients * step_size
            img = tf.clip_by_value(img, -1, 1)

        return loss, img


def deprocess(img):
    img = 255 * (img + 1.0) / 2.0
    return tf.cast(img, tf.uint8)


def run_deep_dream_simple(deepdream, img, steps=100, step_size=0.01):
    # The tutorial reads ``deepdream`` from a global; here it is the first argument.
    # Convert from uint8 to the range expected by the model.
    img = tf.keras.applications.inception_v3.preprocess_input(img)
    img = tf.convert_to_tensor(img)
    step_size = tf.convert_to_tensor(step_size)
    steps_remaining = steps
    step = 0
    while steps_remaining:
        if steps_remaining > 100:
            run_steps = tf.constant(100)
        else:
            run_steps = tf.constant(steps_remaining)
        steps_remaining -= run_steps
        step += run_steps

        loss, img = deepdream(img, run_steps, tf.constant(step_size))

    result = deprocess(img)
    return result


def tutorial_octaves(deepdream, original_img, steps_per_octave, octaves=range(-2, 3)):
    OCTAVE_SCALE = 1.30

    img = tf.constant(np.array(original_img))
    base_shape = tf.shape(img)[:-1]
    float_base_shape = tf.cast(base_shape, tf.float32)

    for n in octaves:
        new_shape = tf.cast(float_base_shape * (OCTAVE_SCALE**n), tf.int32)

        img = tf.image.resize(img, new_shape).numpy()

        img = run_deep_dream_simple(deepdream, img=img, steps=steps_per_octave, step_size=0.01)

    img = tf.image.resize(img, base_shape)
    img = tf.image.convert_image_dtype(img / 255.0, dtype=tf.uint8)
    return img


# =================================================================================================
# The benchmark
# =================================================================================================


def build_dream_model(backbone_name: str):
    """(feature extractor, description) for the benchmark's backbone."""
    from course_lib import models

    if backbone_name == "inception_v3":
        import keras

        if models.keras_weights_path("inception_v3").exists():
            base_model = keras.applications.InceptionV3(include_top=False, weights="imagenet")
            weights = "ImageNet weights"
        else:
            # Timing only: the work per step does not depend on the weight values.
            base_model = keras.applications.InceptionV3(include_top=False, weights=None)
            weights = "random weights (ImageNet file not cached; timing only)"
        names = ["mixed3", "mixed5"]  # the tutorial's layers
        layers = [base_model.get_layer(name).output for name in names]
        return keras.Model(inputs=base_model.input, outputs=layers), f"InceptionV3 {'+'.join(names)}, {weights}"
    bb = models.backbone(backbone_name, verbose=False)
    return models.feature_extractor(bb), f"{bb.name} {'+'.join(bb.dream_layers)}"


def bench_image(size: int) -> np.ndarray:
    """The tutorial's Labrador (293x236 px as stored), resized so its longer side is ``size`` px."""
    from course_lib import data

    photo = data.sample_image("labrador")
    scale = size / max(photo.shape[:2])
    new_shape = [round(photo.shape[0] * scale), round(photo.shape[1] * scale)]
    return tf.cast(tf.clip_by_value(tf.image.resize(photo, new_shape, "bicubic"), 0, 255), tf.uint8).numpy()


def main(argv: list[str] | None = None) -> int:
    from course_lib.commands.bench import add_arguments  # the options, defined once for both entry points

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


#: course_lib's engine with one lever or another switched off, to measure what each one brings.
VARIANTS = {
    "course_lib_float32": {"precision": "float32"},
    "course_lib_unoptimized": {"optimize": False},
    "course_lib_fold_only": {"fold_batch_norm": True, "forward_conv_gradients": False, "precision": "float32"},
    "course_lib_gradients_only": {"fold_batch_norm": False, "forward_conv_gradients": True, "precision": "float32"},
    "course_lib_xla": {"jit_compile": True},
}


def _engine_with(dream_model, optimize=True, fold_batch_norm=True, forward_conv_gradients=True, jit_compile=False,
                 precision="auto"):
    from course_lib import dream, dream_graph

    saved = dream_graph.FOLD_BATCH_NORM, dream_graph.FORWARD_CONV_GRADIENTS
    dream_graph.FOLD_BATCH_NORM, dream_graph.FORWARD_CONV_GRADIENTS = fold_batch_norm, forward_conv_gradients
    try:
        engine_class = _xla_engine_class() if jit_compile else dream.DeepDream
        engine = engine_class(dream_model, optimize=optimize, precision=precision)
    finally:
        dream_graph.FOLD_BATCH_NORM, dream_graph.FORWARD_CONV_GRADIENTS = saved
    return engine


def _xla_engine_class():
    """course_lib's engine with its whole step loop compiled by XLA (``jit_compile=True``)."""
    from course_lib import dream

    class XlaDeepDream(dream.DeepDream):
        @tf.function(
            input_signature=(tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([], tf.int32),
                             tf.TensorSpec([], tf.float32)),
            jit_compile=True,
        )
        def __call__(self, img, steps, step_size):
            return dream.DeepDream.__call__.python_function(self, img, steps, step_size)

    return XlaDeepDream


def run(args: argparse.Namespace) -> int:
    from course_lib import dream

    chosen = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in ("tutorial", "course_lib", *VARIANTS)]
    if unknown:
        raise ValueError(f"Unknown variant(s) {unknown}; choose from tutorial, course_lib, {', '.join(VARIANTS)}.")
    if args.steps_per_octave < 1 or args.rounds < 1 or args.size < 100:
        raise ValueError("--steps-per-octave and --rounds must be >= 1 and --size >= 100.")
    if args.threads:
        intra, inter = (int(n) for n in args.threads.split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    octaves = range(-2, 3)  # the tutorial's
    dream_model, description = build_dream_model(args.backbone)
    original_img = bench_image(args.size)
    steps = args.steps_per_octave * len(octaves)

    implementations = {
        "tutorial": lambda engine: tutorial_octaves(engine, original_img, args.steps_per_octave, octaves),
        "course_lib": lambda engine: dream.run_deep_dream_with_octaves(
            original_img, engine, args.steps_per_octave, 0.01, octaves, show_progress=False),
    }
    for variant in VARIANTS:
        implementations[variant] = implementations["course_lib"]
    engines = {
        "tutorial": lambda: DeepDream(dream_model),
        "course_lib": lambda: dream.DeepDream(dream_model),
        **{variant: (lambda flags=flags: _engine_with(dream_model, **flags)) for variant, flags in VARIANTS.items()},
    }

    print(f"model: {description}")
    print(f"image: {original_img.shape[1]}x{original_img.shape[0]} px, octaves -2..2 (scale 1.30), "
          f"{args.steps_per_octave} steps per octave = {steps} steps per dream, {args.rounds} rounds each, interleaved")
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, intra/inter-op threads "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}/"
          f"{tf.config.threading.get_inter_op_parallelism_threads() or 'default'}")
    built = {}
    for name in chosen:
        started = time.perf_counter()
        built[name] = engines[name]()
        implementations[name](built[name])  # warm-up: the one trace, not timed
        print(f"  warm-up {name}: {time.perf_counter() - started:.1f} s (trace + one dream)")

    seconds: dict[str, list[float]] = {name: [] for name in chosen}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in chosen}
    for round_number in range(args.rounds):
        for name in chosen if round_number % 2 == 0 else reversed(chosen):
            started, cpu_started = time.perf_counter(), time.process_time()
            implementations[name](built[name])
            seconds[name].append(time.perf_counter() - started)
            cpu_seconds[name].append(time.process_time() - cpu_started)
        print("  round " + str(round_number + 1) + ": "
              + ", ".join(f"{name} {seconds[name][-1]:.2f} s" for name in chosen))

    rates = {name: steps * len(times) / sum(times) for name, times in seconds.items()}
    cpu_rates = {name: steps * len(times) / sum(times) for name, times in cpu_seconds.items()}
    print()
    print("steps/s: per second of wall-clock time; steps/cpu-s: per second of this process's CPU time")
    print("(the second is steadier when other programs share the CPU)")
    for name in chosen:
        median = statistics.median(seconds[name])
        print(f"{name:26s} {rates[name]:6.2f} steps/s ({1000 / rates[name]:6.1f} ms/step, median dream "
              f"{median:6.2f} s)   {cpu_rates[name]:6.2f} steps/cpu-s")
    if "tutorial" in rates:
        for name in chosen:
            if name != "tutorial":
                print(f"ratio {name} / tutorial: {rates[name] / rates['tutorial']:.2f}x "
                      f"(by CPU time {cpu_rates[name] / cpu_rates['tutorial']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
