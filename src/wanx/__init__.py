"""wanx: ComfyUI with the Wan2.1 workflows, pinned, verified and behind a token-auth gateway."""

__version__ = "0.1.0"
