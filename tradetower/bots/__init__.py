"""What every built-in bot shares: the lifecycle inside kernels, the state header, the adapter."""
