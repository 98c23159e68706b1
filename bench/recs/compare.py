#!/usr/bin/env python3
"""Tailor's ALS against the Python library implicit 0.7.3, in one run, on the same train matrix.

  pip install implicit==0.7.3 pandas scipy
  cargo build --release -p tailor-cli
  python3 bench/recs/compare.py [--shared ../shared] [--tailor target/release/tailor]

Both fit ALS with 64 factors, 15 iterations, regularization 0.01, alpha 1 and 2 threads on the
user x item matrix of basket-line counts of shared/bench/recs/completejourney/train.csv.gz, write
20 recommendations per test user with already-bought items filtered, and are scored by the
reference scorer shared/bench/recs/score.py. Prints both quality rows and the fit-time ratio.
"""
import argparse, json, os, re, subprocess, sys, tempfile, time

FACTORS, ITERATIONS, REG, ALPHA, THREADS = 64, 15, 0.01, 1.0, 2


def score(scorer, train, test, recs):
    out = subprocess.run([sys.executable, scorer, train, test, recs, "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def run_implicit(train, test, out):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy as np, pandas as pd, scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    s = {"user": str, "item": str}
    tr = pd.read_csv(train, dtype=s, usecols=["user", "item"])
    te = pd.read_csv(test, dtype=s, usecols=["user"])
    users = {u: i for i, u in enumerate(sorted(tr.user.unique()))}
    items = sorted(tr.item.unique())
    index = {x: i for i, x in enumerate(items)}
    m = sp.csr_matrix((np.ones(len(tr), dtype=np.float32), (tr.user.map(users), tr.item.map(index))),
                      shape=(len(users), len(items)))
    m.sum_duplicates()
    model = AlternatingLeastSquares(factors=FACTORS, iterations=ITERATIONS, regularization=REG, alpha=ALPHA,
                                    num_threads=THREADS, random_state=0, calculate_training_loss=False)
    started = time.perf_counter()
    model.fit(m, show_progress=False)
    fit = time.perf_counter() - started
    wanted = [u for u in te.user.unique() if u in users]
    rows = np.array([users[u] for u in wanted])
    ids, _ = model.recommend(rows, m[rows], N=20, filter_already_liked_items=True)
    with open(out, "w") as f:
        f.write("user,item,rank\n")
        for u, rec in zip(wanted, ids):
            for r, i in enumerate(rec):
                f.write(f"{u},{items[i]},{r + 1}\n")
    return fit


def run_tailor(binary, train, test, out):
    env = dict(os.environ, RAYON_NUM_THREADS=str(THREADS))
    cmd = [binary, "recommend-batch", "--train", train, "--test", test, "--k", "20", "--protocol", "novel",
           "--out", out, "--model", "als", "--factors", str(FACTORS), "--iterations", str(ITERATIONS),
           "--reg", str(REG), "--alpha", str(ALPHA)]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    found = re.search(r"als trained in ([0-9.]+) s", text)
    if not found:
        sys.exit(f"cannot read the fit time from tailor's output:\n{text}")
    return float(found.group(1))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.join(repo, "..", "shared"))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(repo, "target"))
    ap.add_argument("--tailor", default=os.path.join(target, "release", "tailor"))
    a = ap.parse_args()
    split = os.path.join(a.shared, "bench", "recs", "completejourney")
    train, test = os.path.join(split, "train.csv.gz"), os.path.join(split, "test.csv.gz")
    scorer = os.path.join(a.shared, "bench", "recs", "score.py")
    if not os.path.exists(train):
        sys.exit(f"no split at {split}: pass --shared PATH (the directory holding bench/recs)")
    if not os.path.exists(a.tailor):
        sys.exit(f"no tailor binary at {a.tailor}: run `cargo build --release -p tailor-cli` or pass --tailor")
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name, run in [("implicit 0.7.3 ALS", lambda o: run_implicit(train, test, o)),
                          ("tailor ALS", lambda o: run_tailor(a.tailor, train, test, o))]:
            out = os.path.join(tmp, name.split()[0] + ".csv")
            fit = run(out)
            rows.append((name, fit, score(scorer, train, test, out)))
    print(f"ALS {FACTORS} factors, {ITERATIONS} iterations, reg {REG}, alpha {ALPHA}, {THREADS} threads; "
          "novel protocol, scored by score.py")
    print("| method | HR@10 | NDCG@10 | Recall@20 | Coverage@10 | fit s |")
    print("|---|---|---|---|---|---|")
    for name, fit, m in rows:
        print(f"| {name} | {m['HR@10']:.4f} | {m['NDCG@10']:.4f} | {m['Recall@20']:.4f} | "
              f"{m['Coverage@10']:.4f} | {fit:.2f} |")
    (_, base_fit, base), (_, fit, ours) = rows
    print(f"fit time ratio tailor/implicit: {fit / base_fit:.2f}; "
          f"NDCG@10 ratio: {ours['NDCG@10'] / base['NDCG@10']:.3f}")


if __name__ == "__main__":
    main()
