"""Training `LGBMForecaster`'s quantile models on a Dask cluster.

`LGBMForecaster(backend="dask")` (or `BCLAKE_TRAIN_BACKEND=dask`) builds its training
matrix on this machine as the local backend does, sends one block of rows to each Dask
worker (`scatter_rows`) and trains every quantile's model with LightGBM's data-parallel
learner (`fit_booster`): each worker bins and histograms its own rows, LightGBM sums the
histograms over its own network between the workers, so the trees are grown from every
row without one process holding them all while it trains. The model comes back as an
ordinary `lightgbm.Booster`, so `predict`, the conformal band and everything downstream
are the same as after a local fit.

The cluster is the scheduler at `dask_address` (`BCLAKE_DASK_ADDRESS`, e.g.
"tcp://scheduler:8786"), or else a `distributed.LocalCluster` started for one `fit` and
closed after it (`dask_client`): one worker process per thread a model fit may use
(`bclake.core.cpus.threads_for`), one thread each, so the workers never ask for more
CPUs than the process may use. Workers of a cluster elsewhere need the same bclake and
LightGBM as the client (the function each worker runs is `_train_block`).

Why not `lightgbm.dask` (`DaskLGBMRegressor`): it ranks the workers in the order of a
Python set (`Client.who_has`), and a LightGBM worker's rank decides which features it
finds bin boundaries for from its own rows, so the same table gave one of two different
models from run to run; it also has no early stopping (lightgbm-org/LightGBM#3712;
#6351: a worker that stops while the others go on hangs the fit). Here the workers are
ranked in the order of their blocks, so the same table on the same number of workers gives
the same model, and every worker holds all the validation rows, so each computes the
same loss after each round (the trees are the same on every worker) and all stop at the
same round: early stopping works as in a local fit.

What differs from a local fit (tests/test_forecast_dask.py states the tolerance): bin
boundaries come from the blocks (each worker bins a share of the features from its
own rows); bagging draws rows per worker; and a quantile model's leaf values, which
LightGBM sets to the quantile of the leaf's residuals, are the mean of the workers'
quantiles rather than the quantile over all rows.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import urlparse

import lightgbm as lgb
import numpy as np

if TYPE_CHECKING:
    from distributed import Client, Future

Backend = Literal["local", "dask"]
"""Where the quantile models are trained: "local" in this process, "dask" on a Dask
cluster (`bclake.ml.dask_backend`)."""

BACKENDS: tuple[str, ...] = get_args(Backend)

WORKER_WAIT_SECONDS = 120  # a cluster at an address may still be starting its workers
NETWORK_TIMEOUT_MINUTES = 30  # LightGBM's `time_out`: a worker waits this long for the others


def check_backend(backend: str) -> Backend:
    """`backend` as a `Backend` (case and surrounding spaces ignored); ValueError naming
    the allowed values and the environment variable otherwise."""
    value = backend.strip().lower() if isinstance(backend, str) else backend
    if value not in BACKENDS:
        raise ValueError(
            f"backend must be one of {list(BACKENDS)} (the `backend` argument, default "
            f"BCLAKE_TRAIN_BACKEND), not {backend!r}"
        )
    return value  # type: ignore[return-value]


def _stdout_to_devnull() -> None:
    """Run in each worker process of a LocalCluster started here: its standard output goes
    nowhere. LightGBM's network set-up prints a few lines per fit to it from C, past
    Python's logging (LightGBM's log level and log callback are per thread); the workers'
    logs and warnings still go to standard error."""
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


@contextmanager
def dask_client(address: str | None, threads: int) -> Iterator[Client]:
    """A client of the Dask scheduler at `address`, or of a `LocalCluster` of `threads`
    single-threaded worker processes started here; both are closed on exit (a cluster
    at `address` keeps running)."""
    from distributed import Client, LocalCluster

    if address:
        with Client(address) as client:
            yield client
        return
    with _plain_main():  # the worker processes start here
        cluster = LocalCluster(
            n_workers=max(1, threads),
            threads_per_worker=1,
            processes=True,  # LightGBM's network is one per process
            dashboard_address=None,
            silence_logs=logging.WARNING,
        )
    with cluster, Client(cluster) as client:
        client.run(_stdout_to_devnull)  # the worker processes are ours
        yield client


@contextmanager
def _plain_main() -> Iterator[None]:
    """`__main__` as an empty module while worker processes start. A spawned process imports
    its parent's `__main__` again: the caller's script (a Streamlit page, a notebook's
    kernel script, a script without an `if __name__ == "__main__":` guard) would run once
    more in every worker, and a worker it fails in never starts."""
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


@dataclass
class Blocks:
    """Training rows on a cluster: one block per worker, held by it (`workers[i]` holds
    `rows[i]`; i is its LightGBM rank), and the validation rows held by every worker."""

    client: Client
    workers: list[str]
    rows: list[list[Future]]  # [features, label] per worker
    valid: Future | None  # (features, label)


def scatter_rows(
    client: Client,
    matrix: np.ndarray,
    label: np.ndarray,
    valid: tuple[np.ndarray, np.ndarray] | None = None,
) -> Blocks:
    """Sends the training rows to the workers, one contiguous block each (in the order of
    their addresses; never more workers than rows), and `valid` to every worker."""
    client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    workers = workers[: max(1, min(len(workers), len(label)))]
    bounds = np.linspace(0, len(label), len(workers) + 1).astype(int)
    rows = [
        client.scatter([matrix[lo:hi], label[lo:hi]], workers=[worker], hash=False)
        for worker, lo, hi in zip(workers, bounds[:-1], bounds[1:], strict=True)
    ]
    held_valid = None
    if valid is not None:
        held_valid = client.scatter([valid], broadcast=True, hash=False)[0]
    return Blocks(client, workers, rows, held_valid)


class _HeldPort:
    """A TCP port bound on a worker until its LightGBM network takes it over (kept in the
    worker's memory as a task result; only the number travels), so that no other process
    takes it in between."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("", 0))
        self.port: int = self.socket.getsockname()[1]

    def release(self) -> int:
        self.socket.close()
        return self.port


def _hold_port() -> _HeldPort:
    return _HeldPort()


def _port_of(held: _HeldPort) -> int:
    return held.port


@dataclass(frozen=True)
class BlockFit:
    """What every worker's part of one fit needs besides its rows."""

    params: dict[str, Any]
    n_rounds: int
    patience: int | None  # early stopping on the validation rows; None: `n_rounds` rounds
    names: list[str]
    categorical: list[str]
    machines: str | None  # "host:port,..." in rank order; None: a single worker


def _train_block(
    x: np.ndarray,
    y: np.ndarray,
    valid: tuple[np.ndarray, np.ndarray] | None,
    held: _HeldPort | None,
    fit: BlockFit,
    keep: bool,
) -> tuple[str, int] | None:
    """One worker's part of a data-parallel LightGBM fit, on as many threads as the worker
    has. Returns (the model as text, its best round or 0) when `keep`, else None."""
    from distributed import get_worker

    threads = get_worker().state.nthreads
    binning = {"verbose": -1, "max_bin": fit.params.get("max_bin", 255), "num_threads": threads}
    data = lgb.Dataset(
        x, label=y, feature_name=fit.names, categorical_feature=fit.categorical, params=binning
    )
    valid_sets, callbacks = [], []
    if valid is not None and fit.patience is not None:
        valid_sets = [data.create_valid(valid[0], label=valid[1], params=binning)]
        callbacks = [lgb.early_stopping(fit.patience, verbose=False)]
    params = {**fit.params, "num_threads": threads}
    if fit.machines is not None and held is not None:
        params |= {
            "tree_learner": "data",
            "machines": fit.machines,
            "num_machines": len(fit.machines.split(",")),
            "local_listen_port": held.release(),
            "time_out": NETWORK_TIMEOUT_MINUTES,
        }
    booster = lgb.train(
        params, data, num_boost_round=fit.n_rounds, valid_sets=valid_sets, callbacks=callbacks
    )
    if fit.machines is not None:
        booster.free_network()
    # the text holds the trees up to the best round (all of them without early stopping)
    return (booster.model_to_string(), booster.best_iteration) if keep else None


def fit_booster(blocks: Blocks, fit: BlockFit) -> tuple[lgb.Booster, int]:
    """One model trained on the cluster from `blocks` (`fit.machines` is filled in here),
    as a plain Booster of its best rounds, and the round early stopping chose (0 without
    early stopping)."""
    client, workers = blocks.client, blocks.workers
    held: list[Future | None] = [None] * len(workers)
    if len(workers) > 1:
        held = [client.submit(_hold_port, workers=[w], pure=False) for w in workers]
        ports = [
            client.submit(_port_of, h, workers=[w], pure=False)
            for h, w in zip(held, workers, strict=True)
        ]
        hosts = [urlparse(w).hostname for w in workers]
        machines = ",".join(f"{h}:{p}" for h, p in zip(hosts, client.gather(ports), strict=True))
        fit = dataclasses.replace(fit, machines=machines)
    parts = [
        client.submit(
            _train_block,
            x,
            y,
            blocks.valid,
            port,
            fit,
            rank == 0,
            workers=[worker],
            allow_other_workers=False,
            pure=False,
        )
        for rank, (worker, (x, y), port) in enumerate(zip(workers, blocks.rows, held, strict=True))
    ]
    results = client.gather(parts)
    text, best = results[0]
    return lgb.Booster(model_str=text), best
