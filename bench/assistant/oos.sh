#!/usr/bin/env bash
# Out-of-scope detection on BANKING77 plus our held-out out-of-scope questions.
#   baseline: trained on BANKING77 train, scored on BANKING77 test (no out-of-scope detection asked)
#   with OOS: trained on BANKING77 train + the shipped out-of-scope examples
#             (crates/assistant/data/out_of_scope.csv), scored on BANKING77 test + the held-out
#             bench/assistant/oos_test.csv (other topics, other phrasing; never trained on)
# Prints in-scope accuracy, its loss against the baseline, and OOS recall.
# Usage: bench/assistant/oos.sh /tmp/tailor-nlu [../shared/data/banking77]
# (TAILOR_ASSISTANT_ENCODING_CACHE=/tmp/x keeps encoder features between the two trainings.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tailor="${1:?the tailor binary}"
data="${2:-$here/../../../shared/data/banking77}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$data/train.csv" "$tmp/train.csv"
tail -n +2 "$here/../../crates/assistant/data/out_of_scope.csv" >> "$tmp/train.csv"
cp "$data/test.csv" "$tmp/test.csv"
tail -n +2 "$here/oos_test.csv" >> "$tmp/test.csv"
base="$("$tailor" assistant nlu-eval --train "$data/train.csv" --test "$data/test.csv" --json)"
oos="$("$tailor" assistant nlu-eval --train "$tmp/train.csv" --test "$tmp/test.csv" --oos out_of_scope --json)"
python3 - "$base" "$oos" <<'PY'
import json, sys
b, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"baseline accuracy (no OOS detection): {b['accuracy']*100:.2f}% on {b['n']} BANKING77 test messages")
print(f"with OOS detection: in-scope accuracy {o['inScopeAccuracy']*100:.2f}% ({o['inScopeN']}), "
      f"loss {(b['accuracy']-o['inScopeAccuracy'])*100:.2f} points against the baseline, "
      f"{(o['inScopeAccuracyWithoutDetection']-o['inScopeAccuracy'])*100:.2f} against the same model with detection off; "
      f"OOS recall {o['oosRecall']*100:.2f}% ({o['oosN']} held-out questions)")
PY
