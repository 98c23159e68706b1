#!/usr/bin/env python3
"""Personalized search against plain BM25 on the shared recommendation split, in one run.

  cargo build --release -p tailor-cli
  python3 bench/search/eval.py [--shared ../shared] [--tailor target/release/tailor] [--cases 20000]

Each distinct test purchase (user, item) of shared/bench/recs/completejourney/test.csv.gz whose
product has a sub-commodity becomes a query: the sub-commodity name, as the shopper would type
"that kind of thing" (e.g. "FLUID MILK WHITE ONLY"). `tailor search-eval` indexes the whole
Complete Journey catalog (92k products) with tantivy, builds each customer's tastes from their
TRAIN purchases only, and ranks with four variants: plain BM25, BM25 + popularity (a
non-personal peer), personalized (what GET /v1/search serves with consent), personalized +
popularity. The purchased product is the one relevant answer: NDCG@10 = 1/log2(rank+1).

This script re-computes NDCG@10 and HR@10 from the ranks the CLI wrote (so the metric does not
rest on the CLI's own arithmetic), checks they agree, and prints both headline figures with their
ratio: personalized / BM25 (acceptance: >= 1.5). Also reported: the same on novel purchases only
(products the customer never bought in train), where "bought before" cannot help.
"""
import argparse, csv, json, math, os, subprocess, sys, tempfile, time
from collections import defaultdict

VARIANTS = ["bm25", "bm25_popularity", "personalized", "personalized_popularity"]


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "..", "shared"))
    ap.add_argument("--tailor", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "tailor"))
    ap.add_argument("--cases", type=int, default=20000, help="seeded sample of test purchases; 0 = all")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--query-field", default="subcategory", choices=["subcategory", "category"])
    ap.add_argument("--weight-bought", help="override the server's weight of 'bought before'")
    ap.add_argument("--weight-popularity", help="override the server's weight of popularity")
    a = ap.parse_args()
    split = os.path.join(a.shared, "bench", "recs", "completejourney")
    products = os.path.join(a.shared, "data", "completejourney", "products.parquet")
    with tempfile.TemporaryDirectory() as tmp:
        ranks = os.path.join(tmp, "ranks.csv")
        cmd = [a.tailor, "search-eval", "--products", products, "--train", os.path.join(split, "train.csv.gz"),
               "--test", os.path.join(split, "test.csv.gz"), "--cases", str(a.cases), "--seed", str(a.seed),
               "--query-field", a.query_field, "--ranks", ranks, "--json"]
        for flag, value in (("--weight-bought", a.weight_bought), ("--weight-popularity", a.weight_popularity)):
            if value is not None:
                cmd += [flag, value]
        print("$ " + " ".join(cmd), file=sys.stderr)
        started = time.time()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        cli = json.loads(out.stdout)
        elapsed = time.time() - started
        gains = {k: defaultdict(list) for k in ("all", "novel")}
        with open(ranks) as f:
            for row in csv.DictReader(f):
                r = int(row["rank"])
                g = 1.0 / math.log2(r + 1) if 0 < r <= 10 else 0.0
                for k in ("all", "novel") if row["novel"] == "1" else ("all",):
                    gains[k][row["variant"]].append((g, r > 0))
    ok = True
    fig = {}
    for subset in ("all", "novel"):
        fig[subset] = {}
        for v in VARIANTS:
            xs = gains[subset][v]
            ndcg = sum(g for g, _ in xs) / max(len(xs), 1)
            hr = sum(1 for _, h in xs if h) / max(len(xs), 1)
            fig[subset][v] = (ndcg, hr, len(xs))
            if abs(ndcg - cli[subset][v]["ndcg10"]) > 1e-9:
                ok = False
                print(f"mismatch: {subset}/{v}: script {ndcg} vs CLI {cli[subset][v]['ndcg10']}", file=sys.stderr)
    print(f"query = the test product's {a.query_field}; catalog = products.parquet; tastes = train purchases")
    for subset, label in (("all", "all test purchases"), ("novel", "novel purchases only")):
        n = fig[subset]["bm25"][2]
        print(f"{label} ({n} cases):")
        for v in VARIANTS:
            ndcg, hr, _ = fig[subset][v]
            print(f"  {v:<24} NDCG@10 {ndcg:.4f}  HR@10 {hr:.4f}")
        base = fig[subset]["bm25"][0]
        ratio = fig[subset]["personalized"][0] / base if base > 0 else float("inf")
        print(f"  personalized / bm25      {ratio:.2f}x")
    headline = fig["all"]["personalized"][0] / fig["all"]["bm25"][0] if fig["all"]["bm25"][0] > 0 else float("inf")
    print(f"search {cli['msPerSearch']:.2f} ms per query (CLI, parallel); whole run {elapsed:.0f} s")
    print(f"acceptance (personalized NDCG@10 >= 1.5 x BM25 on all test purchases): "
          f"{'PASS' if headline >= 1.5 else 'FAIL'} ({headline:.2f}x)")
    if not ok:
        print("the CLI's figures and this script's disagree", file=sys.stderr)
        return 2
    return 0 if headline >= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
