"""Checkpoints in and out of GGUF: bf16 safetensors (+ a merged PEFT LoRA adapter) -> GGUF ->
quantized with llama.cpp, parity proofs against transformers, and GGUF -> HF.

    from converter.gguf_export import OutType, export_gguf
    from converter.quantize import QuantType, quantize
    from converter.verify import verify

torch, transformers and peft (the [train] extra) are imported only inside functions, never at
module level: ``verify.verify`` (the parity check; peft for an adapter), ``train`` (LoRA SFT,
which the chain's training step calls) and ``to_hf_transformers`` (GGUF -> HF for Qwen2 and
Llama through transformers' GGUF loader). Conversion to GGUF, LoRA merging, quantization and
Gemma's GGUF -> HF need none of them.
"""
