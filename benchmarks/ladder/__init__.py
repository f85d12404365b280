"""The quantization ladder: one model re-quantized to every rung, measured side by side.

``python -m benchmarks.ladder --model NAME`` (``make ladder``): the named model's GGUF is
dequantized to a bf16 HF checkpoint, exported to F16 by our converter, and quantized from that
F16 to each rung; ``foggen bench`` measures every rung on the same questions (with calib-chosen
taus and calibrators); then per rung: size, load, RSS, speed, accuracy, calibration, routing
shift and answer agreement against F16, and whether a calibrator fitted on F16 transfers.

Every ladder starts from a dequantized quantized file (the original bf16 weights are not
reachable offline): differences between rungs measure re-quantization noise relative to that
F16, not distance from the original model.
"""
