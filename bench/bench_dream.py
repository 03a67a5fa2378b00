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
    python -m course_lib bench --backbone dog_breeds --rounds 5 \
        --variants tutorial,course_lib,course_lib_neither,course_lib_fold_only,course_lib_gradients_only,course_lib_both

The ``course_lib_*`` lever variants (see ``VARIANTS``) pass ``course_lib.dream_graph.fast_loss_function``'s
keyword arguments and run the tutorial's own loop, so they differ from "tutorial" only in the graph
that computes the loss and its gradient. Set ``TF_ENABLE_ONEDNN_OPTS=0`` to time TensorFlow's Eigen
kernels (what an AVX2-only CPU such as an AMD EPYC runs) instead of oneDNN's. The last lines say
which form of strided convolutions' input gradient ``strided_gradients`` chose on this machine.

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


#: course_lib's engine with one lever or another changed, to measure what each one brings. The
#: ``LeverDeepDream`` ones run the tutorial's own octave loop and step with dream_graph's loss
#: function, so against "tutorial" they differ in nothing but the graph computing loss and gradient.
VARIANTS = {
    "course_lib_float32": {"precision": "float32"},
    "course_lib_unoptimized": {"optimize": False},
    "course_lib_neither": {"fold_batch_norm": False, "forward_conv_gradients": False},
    "course_lib_fold_only": {"fold_batch_norm": True, "forward_conv_gradients": False},
    "course_lib_gradients_only": {"fold_batch_norm": False, "forward_conv_gradients": True},
    "course_lib_both": {"fold_batch_norm": True, "forward_conv_gradients": True},
    "course_lib_xla": {"fold_batch_norm": True, "forward_conv_gradients": True, "jit_compile": True},
}


class LeverDeepDream(tf.Module):
    """The tutorial's ``DeepDream`` module with the loss and gradient of ``dream_graph.fast_loss_function``.

    The levers are ``dream_graph.fast_loss_function``'s arguments; float32 unless ``precision`` says
    otherwise. ``jit_compile=True`` compiles the whole step loop with XLA.
    """

    def __init__(self, model, *, precision="float32", jit_compile=False, **levers):
        from course_lib import dream_graph

        fast = dream_graph.fast_loss_function(model, precision=precision, **levers)
        if fast is None:
            raise ValueError(f"dream_graph does not rebuild {model.name}")
        self.loss_fn, self.precision = fast
        self.gradient_forms = self.loss_fn.gradient_forms
        signature = (tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([], tf.int32),
                     tf.TensorSpec([], tf.float32))
        self.run = tf.function(self._steps, input_signature=signature, jit_compile=jit_compile)

    def _steps(self, img, steps, step_size):
        loss = tf.constant(0.0)
        for _ in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(img)
                loss = self.loss_fn(img)
            gradients = tape.gradient(loss, img)
            gradients /= tf.math.reduce_std(gradients) + 1e-8
            img = tf.clip_by_value(img + gradients * step_size, -1, 1)
        return loss, img

    def __call__(self, img, steps, step_size):
        return self.run(img, steps, step_size)


def _engine(dream_model, variant: str):
    from course_lib import dream

    flags = VARIANTS[variant]
    if "optimize" in flags or set(flags) == {"precision"}:
        return dream.DeepDream(dream_model, **flags)  # course_lib's own engine, public arguments
    return LeverDeepDream(dream_model, **flags)


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


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
        "course_lib": lambda engine: dream.run_deep_dream(
            original_img, engine, args.steps_per_octave, 0.01, octaves=octaves, show_progress=False),
    }
    for variant in VARIANTS:  # the levers' variants run the tutorial's loop: only the graph differs
        lever = variant not in ("course_lib_float32", "course_lib_unoptimized")
        implementations[variant] = implementations["tutorial" if lever else "course_lib"]
    engines = {
        "tutorial": lambda: DeepDream(dream_model),
        "course_lib": lambda: dream.DeepDream(dream_model),
        **{variant: (lambda variant=variant: _engine(dream_model, variant)) for variant in VARIANTS},
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
    print("steps/s: per second of wall-clock time over all rounds; steps/cpu-s: per second of this process's")
    print("CPU time (steadier when other programs share the CPU); dream s: median and range over the rounds.")
    print(f"{'implementation':26s} {'steps/s':>8s} {'ms/step':>8s} {'steps/cpu-s':>12s} {'dream s':>8s} {'range':>11s}")
    for name in chosen:
        print(f"{name:26s} {rates[name]:8.2f} {1000 / rates[name]:8.1f} {cpu_rates[name]:12.2f} "
              f"{statistics.median(seconds[name]):8.2f} {_spread(seconds[name]):>11s}")
    if "tutorial" in rates:
        print()
        for name in chosen:
            if name != "tutorial":
                per_round = [t / c for t, c in zip(seconds["tutorial"], seconds[name])]
                print(f"ratio {name} / tutorial: {rates[name] / rates['tutorial']:.2f}x "
                      f"(by CPU time {cpu_rates[name] / cpu_rates['tutorial']:.2f}x; per round median "
                      f"{statistics.median(per_round):.2f}x, range {_spread(per_round)})")
    from course_lib import conv_units, strided_gradients

    for name, engine in built.items():
        # The forms the engine's strided convolutions ran in (chosen by timing, or pinned).
        strided = {layer: form.value for layer, form in getattr(engine, "gradient_forms", {}).items()
                   if form is not conv_units.GradientForm.FORWARD}
        if strided:
            print(f"\n{name}: strided convolutions' input gradients on this machine ({strided_gradients.machine()}), "
                  f"choices cached in {strided_gradients.choices_path()}:")
            for layer, form in strided.items():
                print(f"  {form:10s} {layer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
