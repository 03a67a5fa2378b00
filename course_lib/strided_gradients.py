"""Choosing strided convolutions' input-gradient forms on this machine, by timing once.

Which form of a strided convolution's input gradient is fastest (TensorFlow's backward kernel,
its VALID kernel on the padded shape, or one forward convolution per output phase; see
:func:`course_lib.conv_units.input_gradient`) depends on the kernel family TensorFlow runs
(oneDNN on recent Intel CPUs, Eigen on AVX2-only ones such as AMD EPYC) and on the layer. So each
strided layer's forms are timed once per machine (:func:`machine`), the choice reported on stderr
and cached in a JSON file (:func:`choices_path`); later processes read it and time nothing.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

from course_lib import files  # noqa: E402
from course_lib.conv_units import ConvSpec, ConvUnit, input_gradient, padding_case  # noqa: E402

if TYPE_CHECKING:
    from course_lib.dream_graph import DreamGraph

#: Forms chosen for this machine (timed in this process or read from the cache): layer signature -> form.
_CHOICES: dict[str, str] = {}
#: Those the graphs built in this process use.
_USED: dict[str, str] = {}
#: The image size each strided layer's forms are timed at: a middle octave of a 500 px dream.
PROBE_SIZE = (384, 480)
CHOICES_FILE = "dream_graph_choices.json"


def cpuinfo(field: str) -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith(field)), "")
    except OSError:
        return ""


def machine() -> str:
    """What the fastest form depends on: CPU model, core count, TensorFlow version, kernel family setting."""
    return (f"{cpuinfo('model name') or 'unknown CPU'} | {os.cpu_count()} CPUs | TF {tf.__version__} | "
            f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}")


def choices_path() -> Path:
    """The JSON file caching the choices: ``course_lib.config.settings.cache_dir / CHOICES_FILE``."""
    from course_lib import (
        config,  # read now, not at import: the settings may have been changed
    )

    return config.settings.cache_dir / CHOICES_FILE


def strided_gradient_choices() -> dict[str, str]:
    """The input-gradient forms of the strided layers of the graphs built in this process (signature -> form)."""
    return dict(_USED)


def candidate_forms(spec: ConvSpec) -> list[str]:
    """The input-gradient forms worth timing for a strided convolution, TensorFlow's kernel first."""
    return ["tensorflow"] + ["padded"] * (spec.padding == "EXPLICIT") + ["polyphase"] * (not spec.depthwise)


def choose_forms(graph: DreamGraph) -> None:
    """Give each strided convolution its fastest input-gradient form, timed once per machine."""
    strided = [index for index, (_, unit, _, _) in enumerate(graph.steps)
               if isinstance(unit, ConvUnit) and unit.spec.stride > 1 and len(candidate_forms(unit.spec)) > 1]
    if not strided:
        return
    if not _CHOICES:
        try:
            _CHOICES.update(json.loads(choices_path().read_text()).get(machine(), {}))
        except (OSError, ValueError, AttributeError):
            pass
    shapes = _probe_shapes(graph, strided)
    timed = []
    for index in strided:
        name, unit, inputs, key = graph.steps[index]
        spec, shape = unit.spec, _timing_shape(unit.spec, shapes[index])
        signature = (f"{unit.compute_dtype.name} {'depthwise ' if spec.depthwise else ''}{spec.kernel.shape} "
                     f"stride {spec.stride} {spec.padding}{spec.pads if spec.padding == 'EXPLICIT' else ''} "
                     f"input {shape}")
        if signature not in _CHOICES:
            times = _time_forms(spec, unit.compute_dtype, shape)
            best = min(times, key=times.get)  # TensorFlow's kernel unless another is clearly faster
            _CHOICES[signature] = best if times[best] < 0.9 * times["tensorflow"] else "tensorflow"
            timed.append(f"{name}: {_CHOICES[signature]} (median ms "
                         + ", ".join(f"{form} {ms:.2f}" for form, ms in times.items()) + ")")
        graph.steps[index] = (name, ConvUnit(spec, unit.dtype, _CHOICES[signature]), inputs, key)
        _USED[signature] = _CHOICES[signature]
    if timed:
        print(f"strided_gradients: timed strided convolutions' input gradients on this machine ({machine()}), "
              f"chose {'; '.join(timed)}; cached in {choices_path()}", file=sys.stderr)
        try:
            path = choices_path()
            stored = json.loads(path.read_text()) if path.exists() else {}
            stored[machine()] = {**stored.get(machine(), {}), **_CHOICES}
            with files.atomic_path(path) as temporary:  # two processes never leave a half-written cache
                temporary.write_text(json.dumps(stored, indent=1, sort_keys=True))
        except (OSError, ValueError, AttributeError):
            pass  # a read-only cache: the choices hold for this process


def _probe_shapes(graph: DreamGraph, wanted: list[int]) -> dict[int, tuple[int, ...]]:
    """The input shapes of the wanted steps when the graph runs (eagerly) on a :data:`PROBE_SIZE` image."""
    values, shapes = {graph.input_key: tf.zeros((1, *PROBE_SIZE, 3), graph.dtype)}, {}
    for index, (_, function, inputs, key) in enumerate(graph.steps[:max(wanted) + 1]):
        shapes[index] = tuple(int(n) for n in values[inputs[0]].shape)
        values[key] = function(*[values[source] for source in inputs])
    return {index: shapes[index] for index in wanted}


def _timing_shape(spec: ConvSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape to time at: for an explicit padding, a row or column less where needed so that it is
    neither SAME nor VALID there (at SAME- or VALID-like sizes, all of TensorFlow's forms are one)."""
    for rows, cols in ((0, 0), (0, 1), (1, 0), (1, 1)) if spec.padding == "EXPLICIT" else ():
        candidate = (shape[0], shape[1] - rows, shape[2] - cols, shape[3])
        if int(padding_case(spec, tf.constant(candidate))) >= 2:
            return candidate
    return shape


def _time_forms(spec: ConvSpec, dtype: tf.DType, shape: tuple[int, ...], rounds: int = 7) -> dict[str, float]:
    """Median ms of each candidate input gradient of one layer, over interleaved rounds."""
    x, kernel = tf.zeros(shape, dtype), tf.constant(spec.kernel, dtype)
    y = tf.nn.depthwise_conv2d(x, kernel, (1, spec.stride, spec.stride, 1), spec.padding_arg()) if spec.depthwise \
        else tf.nn.conv2d(x, kernel, spec.stride, spec.padding_arg())
    dy = tf.cast(tf.random.stateless_normal(tf.shape(y), seed=(1, 2)), dtype)
    candidates = {form: tf.function(input_gradient(spec, dtype, form)) for form in candidate_forms(spec)}
    for function in candidates.values():
        function(dy, tf.shape(x)).numpy()  # trace and warm up
    times: dict[str, list[float]] = {form: [] for form in candidates}
    for round_number in range(rounds):
        for form in list(candidates)[::1 if round_number % 2 else -1]:
            started = time.perf_counter()
            candidates[form](dy, tf.shape(x))
            candidates[form](dy, tf.shape(x)).numpy()
            times[form].append((time.perf_counter() - started) / 2 * 1000)
    return {form: statistics.median(values) for form, values in times.items()}
