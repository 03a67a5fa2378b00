"""Is it a picture? Two numbers that tell noise from structure (lesson 09, bench/classviz_quality.py)."""
from __future__ import annotations

import numpy as np

#: ITU-R BT.601 luma weights, the usual RGB -> grey conversion.
_LUMA = np.array([0.299, 0.587, 0.114])


def high_frequency_share(image: np.ndarray) -> float:
    """Share of the grey image's spectral power (mean removed) above half the Nyquist frequency.

    Half Nyquist is 0.25 cycles per pixel (radial). Photos of dogs put 0.5-8 % of their power
    there; coloured noise from naive activation maximisation about 20 %.

    Args:
        image: (H, W, 3) floats in [0, 1].
    """
    grey = np.asarray(image, np.float64) @ _LUMA
    grey = grey - grey.mean()
    power = np.abs(np.fft.fft2(grey)) ** 2
    frequency = np.hypot(np.fft.fftfreq(grey.shape[0])[:, None], np.fft.fftfreq(grey.shape[1])[None, :])
    return float(power[frequency > 0.25].sum() / max(power.sum(), 1e-20))


def rms_contrast(image: np.ndarray) -> float:
    """Standard deviation of the grey image, (H, W, 3) floats in [0, 1]: a washed-out blur is near 0."""
    return float((np.asarray(image, np.float64) @ _LUMA).std())
