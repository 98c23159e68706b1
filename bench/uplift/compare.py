#!/usr/bin/env python3
"""Tailor's uplift targeting against the two-model logistic-regression peer, in one run.

  compare.py [--tailor 'PATH/tailor'] [--seeds 10] [--json]

On the shared Hillstrom split (../shared/bench/uplift: treatment = any e-mail, outcome = visit) and on
`--seeds` seeded re-splits of its train file (2/3 train, 1/3 test), runs
`tailor campaigns uplift --train … --test … --out …` and scikit-uplift's TwoModels with logistic
regression (the peer of ../shared/bench/uplift/README.md, same features), and scores both with the
reference definitions (normalized Qini AUC, uplift@30% by group). Needs
`pip install scikit-uplift==0.5.1 pandas scikit-learn`."""
import argparse, json, os, subprocess, sys, tempfile, warnings
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklift.metrics import qini_auc_score, uplift_at_k
from sklift.models import TwoModels

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "bench", "uplift"))
FEATURES = ["recency", "history", "mens", "womens", "newbie", "zip_code", "channel", "history_segment"]

def score(test, s):
    y, t = test.visit.values, (test.segment != "No E-Mail").astype(int).values
    return float(qini_auc_score(y, s, t)), float(uplift_at_k(y, s, t, strategy="by_group", k=0.3))

def peer(train, test):
    both = pd.get_dummies(pd.concat([train, test])[FEATURES], columns=["zip_code", "channel", "history_segment"]).astype(float)
    x_train, x_test = both.iloc[:len(train)].values, both.iloc[len(train):].values
    model = TwoModels(estimator_trmnt=LogisticRegression(max_iter=1000), estimator_ctrl=LogisticRegression(max_iter=1000), method="vanilla")
    model.fit(x_train, train.visit.values, (train.segment != "No E-Mail").astype(int).values)
    return model.predict(x_test)

def tailor(command, train, test, work):
    paths = [os.path.join(work, n) for n in ("train.csv", "test.csv", "scores.csv")]
    train.to_csv(paths[0], index=False)
    test.to_csv(paths[1], index=False)
    subprocess.run(command + ["--train", paths[0], "--test", paths[1], "--out", paths[2],
                              "--treatment", "segment", "--control", "No E-Mail", "--outcome", "visit",
                              "--exclude", "conversion,spend"], check=True, stdout=subprocess.DEVNULL)
    return pd.read_csv(paths[2]).uplift.values

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tailor", default="tailor")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    command = args.tailor.split() + ["campaigns", "uplift"]
    train = pd.read_csv(os.path.join(SHARED, "train.csv"))
    test = pd.read_csv(os.path.join(SHARED, "test.csv"))
    splits = [("shared split", train, test)]
    for seed in range(1, args.seeds + 1):
        order = np.random.default_rng(seed).permutation(len(train))
        cut = len(train) * 2 // 3
        splits.append((f"re-split {seed}", train.iloc[order[:cut]].reset_index(drop=True), train.iloc[order[cut:]].reset_index(drop=True)))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, a, b in splits:
            rows.append({"split": name, "peer": score(b, peer(a, b)), "tailor": score(b, tailor(command, a, b, work))})
    resplits = rows[1:]
    mean = {who: [float(np.mean([r[who][i] for r in resplits])) for i in (0, 1)] for who in ("peer", "tailor")}
    if args.json:
        print(json.dumps({"splits": rows, "resplitMean": mean}))
        return
    print(f"{'split':14s} {'peer Qini':>10s} {'peer u@30':>10s} {'Tailor Qini':>12s} {'Tailor u@30':>12s}")
    for r in rows:
        print(f"{r['split']:14s} {r['peer'][0]:10.4f} {r['peer'][1]:10.4f} {r['tailor'][0]:12.4f} {r['tailor'][1]:12.4f}")
    print(f"{'re-split mean':14s} {mean['peer'][0]:10.4f} {mean['peer'][1]:10.4f} {mean['tailor'][0]:12.4f} {mean['tailor'][1]:12.4f}")
    shared, ok = rows[0], all(mean["tailor"][i] >= mean["peer"][i] for i in (0, 1))
    ok = ok and all(shared["tailor"][i] >= shared["peer"][i] for i in (0, 1))
    print("Tailor ≥ peer on the shared split and on the re-split mean:", "yes" if ok else "NO")

if __name__ == "__main__":
    sys.exit(main())
