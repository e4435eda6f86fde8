"""Bring your own language model: Llama-family and Qwen2 models run by integer-exact engines.

The data flow, one module each::

    Hugging Face folder / GGUF file
        -> import_hf / import_gguf   (float weights, tokenizer)    -> source.SourceModel
        -> quantize                  (int8 rows, Q12 biases, tables)
        -> modelfile                 (the .nzm file, digest-checked) -> store (by name)
    frame bytes
        -> tokens                    (bytes <-> token ids, never lossy)
        -> engine (+ engine_torch)   (integer forward pass: Q10 logits)
        -> coding                    (integer frequencies, binary arithmetic coder)
        -> model.LanguageModel       (lanes, sliding window, fallback; nzip's Model interface)

Importing needs only numpy for Hugging Face folders (the ``gguf`` package
for GGUF); running needs numpy and numba, or PyTorch for ``engine="torch"``
and CUDA.  See ``docs/LLM.md``.
"""
