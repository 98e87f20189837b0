"""Types of the compiled AVX-512 MaxSim kernel (`_cpu_maxsim.cpp`, built by setup.py)."""

def supported() -> bool:
    """Whether this CPU runs the AVX-512 kernel."""

def token_maxima(q: int, n_tokens: int, dim: int, page_ptrs: int, page_lens: int, n_pages: int, f16: bool,
                 panels: bool, out: int, out_stride: int, threads: int) -> None:
    """Addresses of C-contiguous arrays; out[t, p] = max over page p's vectors of q[t] . v."""
