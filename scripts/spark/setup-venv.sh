#!/usr/bin/env bash
# Creates .venv-spark/ (git-ignored) with the pinned PySpark the Spark tests run
# their local standalone cluster from. Idempotent: does nothing when the venv
# already holds exactly the pinned requirements. Called by .ci/run; run it by
# hand before `npm test` to include the Spark tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-spark
req=scripts/spark/requirements.txt
if [ -x "$venv/bin/spark-submit" ] && cmp -s "$req" "$venv/requirements.txt"; then
  exit 0
fi
python="${PYTHON:-python3}"
"$python" -m venv --clear "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$venv/requirements.txt"
echo "PySpark installed in $venv: $("$venv/bin/python" -c 'import pyspark; print(pyspark.__version__)')"
