#!/bin/bash
# Packages spade for EMR and uploads it next to bootstrap.sh:
#
#   scripts/emr/package.sh s3://bucket/prefix/ [--node-tarball node-v20.x-linux-x64.tar.xz] [--geoip DIR]
#
# Uploads to the prefix:
#   bootstrap.sh          the bootstrap action (pass s3://bucket/prefix/bootstrap.sh as --emr-bootstrap)
#   spade-replay.tgz      the npm package with dist/ and its production node_modules
#                         (dependencies are pure JavaScript/WebAssembly, so the bundle
#                         built here runs on the nodes without a registry)
#   node.tar.xz           only with --node-tarball: a Node 20 Linux build for the nodes'
#                         architecture (x64 for m5/c5/r5, arm64 for Graviton types),
#                         used instead of the distribution's nodejs20 package
#   geoip/*.mmdb          only with --geoip: copied to /opt/spade/geoip/ on every node
#
# Needs: npm, the aws CLI with s3:PutObject on the prefix. Run from anywhere.
set -euo pipefail

DEST="${1:?usage: package.sh s3://bucket/prefix/ [--node-tarball FILE] [--geoip DIR]}"
DEST="${DEST%/}"
shift
NODE_TARBALL=""
GEOIP_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --node-tarball) NODE_TARBALL="${2:?--node-tarball needs a file}"; shift 2 ;;
    --geoip) GEOIP_DIR="${2:?--geoip needs a directory}"; shift 2 ;;
    *) echo "package.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$DEST" in s3://*) ;; *) echo "package.sh: destination must be s3://bucket/prefix/" >&2; exit 2 ;; esac

REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cd "$REPO"
npm run build
# npm pack honours package.json; .gitignore keeps dist/ out of it, so the
# compiled code and the lockfile are added to the unpacked package below.
TARBALL=$(npm pack --ignore-scripts --silent --pack-destination "$WORK" | tail -n 1)
mkdir -p "$WORK/stage"
tar -xzf "$WORK/$TARBALL" -C "$WORK/stage"
cp -R dist "$WORK/stage/package/dist"
rm -rf "$WORK/stage/package/dist/test"
cp package-lock.json "$WORK/stage/package/"
(cd "$WORK/stage/package" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --silent)
tar -czf "$WORK/spade-replay.tgz" -C "$WORK/stage" package

aws s3 cp --only-show-errors "$REPO/scripts/emr/bootstrap.sh" "$DEST/bootstrap.sh"
aws s3 cp --only-show-errors "$WORK/spade-replay.tgz" "$DEST/spade-replay.tgz"
if [ -n "$NODE_TARBALL" ]; then aws s3 cp --only-show-errors "$NODE_TARBALL" "$DEST/node.tar.xz"; fi
if [ -n "$GEOIP_DIR" ]; then aws s3 cp --only-show-errors --recursive --exclude '*' --include '*.mmdb' "$GEOIP_DIR" "$DEST/geoip/"; fi
echo "uploaded to $DEST/: use --emr-bootstrap $DEST/bootstrap.sh"
