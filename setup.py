"""Builds the one compiled part, the AVX-512 MaxSim kernel; everything else is in pyproject.toml.

The kernel's functions carry their own target attributes, so the module builds with a plain
C++17 compiler and imports on any x86-64 CPU; it reports at run time whether it can run there.
"""

import platform

from setuptools import Extension, setup

x86 = platform.machine().lower() in {"x86_64", "amd64"}
setup(ext_modules=[
    Extension("colretrieve.scoring._cpu_maxsim", ["colretrieve/scoring/_cpu_maxsim.cpp"],
              extra_compile_args=["-O3", "-std=c++17", "-pthread"], extra_link_args=["-pthread"], language="c++"),
] if x86 else [])
