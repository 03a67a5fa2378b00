"""Choosing strided convolutions' input-gradient forms on this machine, by timing once.

Which form of a strided convolution's input gradient is fastest (TensorFlow's backward kernel,
its VALID kernel on the padded shape, or one forward convolution per output phase; see
:func:`course_lib.conv_units.input_gradient`) depends on the kernel family TensorFlow runs
(oneDNN on recent Intel CPUs, Eigen on AVX2-only ones such as AMD EPYC) and on the layer. So each
strided layer's forms are timed once per machine (:func:`machine`), the choice reported on stderr
and cached in a JSON file (:func:`choices_path`); later processes read it and time nothing.

:func:`choose_forms` returns the choice and :class:`course_lib.dream_graph.DreamGraph` builds its
units with it. It can be pinned instead of timed (``forms=`` or ``DEEPDREAM_GRADIENT_FORMS``), and
a pinned form that does not apply to a layer is an error, never replaced by another.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Union

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

from course_lib import config, files  # noqa: E402
from course_lib.conv_units import (  # noqa: E402
    ConvSpec,
    ConvUnit,
    GradientForm,
    PaddingCase,
    applicable_forms,
    input_gradient,
    padding_case,
    why_not,
)

if TYPE_CHECKING:
    from course_lib.dream_graph import DreamGraph, Key

#: The image size each strided layer's forms are timed at: a middle octave of a 500 px dream.
PROBE_SIZE = (384, 480)
CHOICES_FILE = "dream_graph_choices.json"
#: What pins the forms (``forms=`` or ``DEEPDREAM_GRADIENT_FORMS``): ``None`` or ``"auto"`` (timed),
#: one form for every strided layer, or a form per layer name.
Forms = Union[None, str, GradientForm, Mapping[str, "str | GradientForm"]]


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
    return config.settings.cache_dir / CHOICES_FILE  # read now, not at import: the settings may have been changed


def cached_choices() -> dict[str, str]:
    """The forms timed on this machine so far (layer signature -> form), from the cache file."""
    try:
        stored = json.loads(choices_path().read_text())
        return dict(stored.get(machine(), {})) if isinstance(stored, dict) else {}
    except (OSError, ValueError):
        return {}


def candidate_forms(spec: ConvSpec) -> list[GradientForm]:
    """The input-gradient forms worth timing for a strided convolution, TensorFlow's kernel first."""
    return [GradientForm.TENSORFLOW] + [form for form in applicable_forms(spec)
                                        if form in (GradientForm.PADDED, GradientForm.POLYPHASE)]


def parse_forms(text: str) -> Forms:
    """``DEEPDREAM_GRADIENT_FORMS`` as :func:`choose_forms` takes it: ``""``/``"auto"`` (time them),
    a form (``"polyphase"``), or ``"layer=form,layer=form"``.

    Raises:
        ValueError: for a form that is not one, or a malformed entry.
    """
    text = text.strip()
    if text.lower() in ("", "auto"):
        return None
    if "=" not in text:
        return GradientForm.of(text.lower())
    pinned = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        layer, equals, form = entry.partition("=")
        if not equals or not layer.strip():
            raise ValueError(f"DEEPDREAM_GRADIENT_FORMS entry {entry!r} is not layer=form, "
                             f"e.g. DEEPDREAM_GRADIENT_FORMS=Conv1=polyphase,block_1_depthwise=padded.")
        pinned[layer.strip()] = GradientForm.of(form.strip().lower())
    return pinned


def choose_forms(graph: DreamGraph, forms: Forms = None) -> dict[Key, GradientForm]:
    """The input-gradient form of each strided convolution of ``graph`` (output key -> form).

    ``forms`` pins them: ``None`` follows ``DEEPDREAM_GRADIENT_FORMS`` (``course_lib.config``),
    and where neither pins, ``"auto"``: the fastest form on this machine, timed once per layer
    signature and cached (:func:`choices_path`); TensorFlow's kernel unless another is at least
    10 % faster. One form (``"tensorflow"``, ``"polyphase"``, ``"padded"``) pins every strided
    layer; a mapping pins the layers it names (the others are timed).

    Raises:
        ValueError: a pinned form that does not apply to a layer (e.g. ``"polyphase"`` for a
            depthwise one), an unknown form, or a name that is no strided convolution of the graph.
    """
    if forms is not None and not isinstance(forms, (str, GradientForm, Mapping)):
        raise ValueError(f"forms must be 'auto', a form such as 'tensorflow', or {{layer name: form}}, not {forms!r}.")
    if forms is None:
        forms = parse_forms(config.settings.gradient_forms)
    elif isinstance(forms, str) and forms.strip().lower() == "auto":
        forms = None
    strided = {key: (name, unit) for name, unit, _, key in graph.steps
               if isinstance(unit, ConvUnit) and unit.spec.stride > 1}
    if isinstance(forms, (str, GradientForm)):
        pinned = {key: GradientForm.of(forms) for key in strided}
    else:
        names = {name for name, _ in strided.values()}
        unknown = sorted(set(forms or {}) - names)
        if unknown:
            raise ValueError(f"forms names {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} no "
                             f"strided convolution of {graph.name}; its strided convolutions: {', '.join(sorted(names))}.")
        pinned = {key: GradientForm.of(forms[name]) for key, (name, _) in strided.items() if name in (forms or {})}
    for key, form in pinned.items():
        name, unit = strided[key]
        reason = why_not(unit.spec, form)
        if reason is not None:
            allowed = ", ".join(repr(f.value) for f in applicable_forms(unit.spec))
            raise ValueError(f"forms pins {form.value!r} for {name}, but {reason}. Forms that apply to {name}: "
                             f"{allowed}; or leave it to the timing with forms='auto'.")
    timed = [key for key, (_, unit) in strided.items() if key not in pinned and len(candidate_forms(unit.spec)) > 1]
    chosen = dict(pinned)
    chosen.update({key: GradientForm.TENSORFLOW for key, (_, unit) in strided.items()
                   if key not in pinned and key not in timed})
    if timed:
        chosen.update(_timed_choice(graph, {key: strided[key] for key in timed}))
    return chosen


def _signature(unit: ConvUnit, shape: tuple[int, ...]) -> str:
    spec = unit.spec
    return (f"{unit.compute_dtype.name} {'depthwise ' if spec.depthwise else ''}{spec.kernel.shape} "
            f"stride {spec.stride} {spec.padding}{spec.pads if spec.padding == 'EXPLICIT' else ''} input {shape}")


def _timed_choice(graph: DreamGraph, layers: dict[Key, tuple[str, ConvUnit]]) -> dict[Key, GradientForm]:
    """The fastest form of each layer: from the cache file, or timed now (reported on stderr, then cached)."""
    cached = cached_choices()
    shapes = _probe_shapes(graph, set(layers))
    chosen, timed, new = {}, [], {}
    for key, (name, unit) in layers.items():
        signature = _signature(unit, _timing_shape(unit.spec, shapes[key]))
        if signature in cached:
            chosen[key] = GradientForm.of(cached[signature])
            continue
        shape = _timing_shape(unit.spec, shapes[key])
        times = _time_forms(unit.spec, unit.compute_dtype, shape)
        best = min(times, key=times.get)  # TensorFlow's kernel unless another is clearly faster
        chosen[key] = best if times[best] < 0.9 * times[GradientForm.TENSORFLOW] else GradientForm.TENSORFLOW
        new[signature] = cached[signature] = chosen[key].value
        timed.append(f"{name}: {chosen[key].value} (median ms "
                     + ", ".join(f"{form.value} {ms:.2f}" for form, ms in times.items()) + ")")
    if timed:
        print(f"strided_gradients: timed strided convolutions' input gradients on this machine ({machine()}), "
              f"chose {'; '.join(timed)}; cached in {choices_path()}", file=sys.stderr)
        try:
            path = choices_path()
            stored = json.loads(path.read_text()) if path.exists() else {}
            stored[machine()] = {**stored.get(machine(), {}), **new}
            with files.atomic_path(path) as temporary:  # two processes never leave a half-written cache
                temporary.write_text(json.dumps(stored, indent=1, sort_keys=True))
        except (OSError, ValueError):
            pass  # a read-only cache: the choices hold for this graph, and a later one times again
    return chosen


def _probe_shapes(graph: DreamGraph, wanted: set[Key]) -> dict[Key, tuple[int, ...]]:
    """The input shapes of the wanted steps when the graph runs (eagerly) on a :data:`PROBE_SIZE` image."""
    values, shapes = {graph.input_key: tf.zeros((1, *PROBE_SIZE, 3), graph.dtype)}, {}
    for _, function, inputs, key in graph.steps:
        if key in wanted:
            shapes[key] = tuple(int(n) for n in values[inputs[0]].shape)
            if len(shapes) == len(wanted):
                break
        values[key] = function(*[values[source] for source in inputs])
    return shapes


def _timing_shape(spec: ConvSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape to time at: for an explicit padding, a row or column less where needed so that it is
    neither SAME nor VALID there (at SAME- or VALID-like sizes, all of TensorFlow's forms are one)."""
    for rows, cols in ((0, 0), (0, 1), (1, 0), (1, 1)) if spec.padding == "EXPLICIT" else ():
        candidate = (shape[0], shape[1] - rows, shape[2] - cols, shape[3])
        if int(padding_case(spec, tf.constant(candidate))) >= int(PaddingCase.EXPLICIT):
            return candidate
    return shape


def _time_forms(spec: ConvSpec, dtype: tf.DType, shape: tuple[int, ...], rounds: int = 7) -> dict[GradientForm, float]:
    """Median ms of each candidate input gradient of one layer, over interleaved rounds."""
    x, kernel = tf.zeros(shape, dtype), tf.constant(spec.kernel, dtype)
    y = tf.nn.depthwise_conv2d(x, kernel, (1, spec.stride, spec.stride, 1), spec.padding_arg()) if spec.depthwise \
        else tf.nn.conv2d(x, kernel, spec.stride, spec.padding_arg())
    dy = tf.cast(tf.random.stateless_normal(tf.shape(y), seed=(1, 2)), dtype)
    candidates = {form: tf.function(input_gradient(spec, dtype, form)) for form in candidate_forms(spec)}
    for function in candidates.values():
        function(dy, tf.shape(x)).numpy()  # trace and warm up
    times: dict[GradientForm, list[float]] = {form: [] for form in candidates}
    for round_number in range(rounds):
        for form in list(candidates)[::1 if round_number % 2 else -1]:
            started = time.perf_counter()
            candidates[form](dy, tf.shape(x))
            candidates[form](dy, tf.shape(x)).numpy()
            times[form].append((time.perf_counter() - started) / 2 * 1000)
    return {form: statistics.median(values) for form, values in times.items()}
