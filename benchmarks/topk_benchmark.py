"""Time recsys.topk against implicit's recommend / similar_items and check they agree.

Factors come from ``--model`` (an .npz with float32 ``user_factors`` / ``item_factors``,
as saved at models/als.npz) or are synthetic.  Synthetic items get Gaussian directions
and either lognormal norms (popularity-skewed, like ALS, where norm pruning helps)
or plain Gaussian factors (nearly equal norms: no pruning, the exhaustive worst case).

Our function runs on a sample of queries and is extrapolated to the full population;
implicit runs on a smaller sub-sample (it is ~100x slower) where the results are compared.

    python benchmarks/topk_benchmark.py                      # synthetic 1.37M x 0.93M, both norm cases
    python benchmarks/topk_benchmark.py --model models/als.npz
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.recsys.topk import similar_items, top_k_scores  # noqa: E402


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def synthetic_factors(n_users: int, n_items: int, f: int, norms: str, sigma: float, seed: int):
    rng = np.random.default_rng(seed)
    users = rng.standard_normal((n_users, f), dtype=np.float32)
    items = rng.standard_normal((n_items, f), dtype=np.float32)
    if norms == "lognormal":
        items /= np.linalg.norm(items, axis=1, keepdims=True)
        items *= rng.lognormal(0.0, sigma, (n_items, 1)).astype(np.float32)
    return users, items


def seen_matrix(n_rows: int, item_factors: np.ndarray, per_row: int, seed: int) -> scipy.sparse.csr_matrix:
    """~per_row distinct items per user, drawn proportionally to item norm (popular items are seen more)."""
    rng = np.random.default_rng(seed)
    weights = np.linalg.norm(item_factors, axis=1).astype(np.float64)
    cdf = np.cumsum(weights / weights.sum())
    cols = np.searchsorted(cdf, rng.random(n_rows * per_row), side="right").clip(0, len(cdf) - 1)
    rows = np.repeat(np.arange(n_rows), per_row)
    seen = scipy.sparse.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(n_rows, len(cdf)))
    seen.sum_duplicates()
    seen.data[:] = 1.0
    return seen


def compare(ours_i, ours_s, ref_i, ref_s) -> str:
    """Rows with identical index lists, and rows whose score lists agree (differences are near-ties)."""
    same_ids = (ours_i == ref_i).all(axis=1).mean()
    finite = np.isfinite(ref_s) & np.isfinite(ours_s)
    close = np.isclose(ours_s, ref_s, rtol=1e-5, atol=1e-6) | (~np.isfinite(ref_s) & ~np.isfinite(ours_s))
    max_diff = float(np.abs(ours_s[finite] - ref_s[finite]).max()) if finite.any() else 0.0
    return (f"identical index rows {same_ids:.4%}, score rows equal within 1e-5 {close.all(axis=1).mean():.4%}, "
            f"max |score diff| {max_diff:.2e}")


def implicit_model(users: np.ndarray, items: np.ndarray):
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=users.shape[1], num_threads=0, random_state=0)
    model.user_factors = users
    model.item_factors = items
    return model


def run_case(name: str, users: np.ndarray, items: np.ndarray, args) -> None:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(args.seed + 1)
    n_users, n_items = len(users), len(items)
    user_ids = np.sort(rng.choice(n_users, min(args.sample_users, n_users), replace=False))
    item_ids = np.sort(rng.choice(n_items, min(args.sample_items, n_items), replace=False))
    seen = seen_matrix(len(user_ids), items, args.seen_per_user, args.seed + 2)
    print(f"\n== {name}: {n_users} users x {n_items} items, f={users.shape[1]}; "
          f"sample {len(user_ids)} users (~{seen.nnz / len(user_ids):.0f} seen each), {len(item_ids)} items")

    tuning = dict(n_threads=args.threads, prune=not args.no_prune)
    if args.tile_queries:
        tuning["tile_queries"] = args.tile_queries
    if args.tile_items:
        tuning["tile_items"] = args.tile_items
    # CPU seconds as well as wall time: on a shared box the wall time includes other load.
    start, cpu = time.perf_counter(), time.process_time()
    rec_i, rec_s = top_k_scores(users[user_ids], items, args.k, exclude=seen, **tuning)
    t_rec, c_rec = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    sim_i, sim_s = similar_items(items, args.k_similar, item_ids=item_ids, **tuning)
    t_sim, c_sim = time.perf_counter() - start, time.process_time() - cpu
    print(f"ours     recommend k={args.k}: {1e3 * t_rec / len(user_ids):.3f} ms/user "
          f"-> all {n_users} users {t_rec / len(user_ids) * n_users / 60:.1f} min "
          f"(CPU {c_rec / len(user_ids) * n_users / 60:.1f} core-min)")
    print(f"ours     similar   k={args.k_similar}: {1e3 * t_sim / len(item_ids):.3f} ms/item "
          f"-> all {n_items} items {t_sim / len(item_ids) * n_items / 60:.1f} min "
          f"(CPU {c_sim / len(item_ids) * n_items / 60:.1f} core-min)")
    print(f"peak RSS so far {peak_rss_gib():.2f} GiB")
    if args.implicit_users <= 0 and args.implicit_items <= 0:
        return

    model = implicit_model(users, items)
    with threadpool_limits(1):  # implicit's own advice: it parallelises itself
        if args.implicit_users > 0:
            n = min(args.implicit_users, len(user_ids))
            start = time.perf_counter()
            imp_i, imp_s = model.recommend(user_ids[:n], seen[:n], N=args.k, filter_already_liked_items=True)
            t = time.perf_counter() - start
            print(f"implicit recommend k={args.k}: {1e3 * t / n:.3f} ms/user "
                  f"-> all users {t / n * n_users / 60:.1f} min   (on {n} users)")
            print(f"  agreement: {compare(rec_i[:n], rec_s[:n], imp_i.astype(np.int32), imp_s.astype(np.float32))}")
        if args.implicit_items > 0:
            n = min(args.implicit_items, len(item_ids))
            start = time.perf_counter()
            imp_i, imp_s = model.similar_items(item_ids[:n], N=args.k_similar + 1)
            t = time.perf_counter() - start
            print(f"implicit similar_items N={args.k_similar + 1}: {1e3 * t / n:.3f} ms/item "
                  f"-> all items {t / n * n_items / 60:.1f} min   (on {n} items)")
            # implicit returns the item itself (usually first): drop it, keep k.
            keep = imp_i != item_ids[:n, None]
            order = np.argsort(~keep, axis=1, kind="stable")[:, : args.k_similar]
            imp_i = np.take_along_axis(imp_i, order, axis=1).astype(np.int32)
            imp_s = np.take_along_axis(imp_s, order, axis=1).astype(np.float32)
            print(f"  agreement: {compare(sim_i[:n], sim_s[:n], imp_i, imp_s)}")
    print(f"peak RSS {peak_rss_gib():.2f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help=".npz with user_factors and item_factors")
    parser.add_argument("--users", type=int, default=1_370_000)
    parser.add_argument("--items", type=int, default=930_000)
    parser.add_argument("--factors", type=int, default=30)
    parser.add_argument("--norms", choices=["lognormal", "gaussian", "both"], default="both")
    parser.add_argument("--sigma", type=float, default=1.0, help="lognormal sigma of synthetic item norms")
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--k-similar", type=int, default=10)
    parser.add_argument("--sample-users", type=int, default=20_000)
    parser.add_argument("--sample-items", type=int, default=10_000)
    parser.add_argument("--implicit-users", type=int, default=3_000, help="0 skips implicit recommend")
    parser.add_argument("--implicit-items", type=int, default=2_000, help="0 skips implicit similar_items")
    parser.add_argument("--seen-per-user", type=int, default=150)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tile-queries", type=int, default=None)
    parser.add_argument("--tile-items", type=int, default=None)
    parser.add_argument("--no-prune", action="store_true", help="disable norm pruning (same results)")
    args = parser.parse_args()

    if args.model:
        with np.load(args.model) as npz:
            users = np.ascontiguousarray(npz["user_factors"], dtype=np.float32)
            items = np.ascontiguousarray(npz["item_factors"], dtype=np.float32)
        cases = [(str(args.model), users, items)]
    else:
        kinds = ["lognormal", "gaussian"] if args.norms == "both" else [args.norms]
        cases = [(f"synthetic {kind}" + (f" sigma={args.sigma}" if kind == "lognormal" else ""),
                  *synthetic_factors(args.users, args.items, args.factors, kind, args.sigma, args.seed))
                 for kind in kinds]
    for name, users, items in cases:
        run_case(name, users, items, args)


if __name__ == "__main__":
    main()
