"""bclake: a batch analytics lakehouse for FMCG brands that sell B2B2C."""

from bclake.core.cpus import quiet_openmp

# before any module loads an OpenMP runtime (LightGBM): idle threads sleep almost at once
quiet_openmp()
