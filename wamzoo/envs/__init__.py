"""Simulated environments of the embedded benchmark (``wamzoo.envs.metaworld``), imported on use."""
