"""Checkpoints in and out of GGUF: bf16 safetensors (+ a merged PEFT LoRA adapter) -> GGUF ->
quantized with llama.cpp, parity proofs against transformers, and GGUF -> HF.

    from converter.gguf_export import OutType, export_gguf
    from converter.quantize import QuantType, quantize
    from converter.verify import verify

torch/transformers/peft are imported only inside ``verify`` (the [train] extra).
"""
