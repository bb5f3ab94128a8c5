"""Neural-network building blocks: the Wan-style DiT block (diffusers parameter names), RoPE, attention
mask rules, the Mixture-of-Transformers attention with its KV cache, and flow matching. Torch only:
nothing here imports the rest of wamzoo."""
