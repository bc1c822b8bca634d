"""freeml-tx: ONNX -> intermittent-safe fixed-point C for batteryless MSP430 microcontrollers."""

from __future__ import annotations

__version__ = "0.1.0"
