"""Checkpoint conversion (bf16 safetensors + PEFT LoRA -> GGUF -> quantized): not built yet.

Tracked in issue 4; nothing here pretends to work until then.
"""
