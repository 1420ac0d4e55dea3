#!/bin/bash
# EMR bootstrap action of `spade replay --executor emr`: runs on every node
# before Hadoop starts; installs Node 20 and the spade package, and puts spade,
# the command the Spark job runs on each node, at /usr/local/bin/spade.
#
#   bootstrap.sh s3://bucket/prefix/      (the directory package.sh uploaded to)
#
# Nothing is fetched from the internet: the package (with its node_modules) and,
# when package.sh was given one, a Node tarball come from that S3 directory;
# otherwise Node 20 comes from the distribution's own repositories (Amazon
# Linux 2023, EMR 7.x: the `nodejs20` package), which EMR nodes reach without
# internet access.
set -euo pipefail

PREFIX="${1:?usage: bootstrap.sh s3://bucket/prefix/}"
PREFIX="${PREFIX%/}"
INSTALL=/opt/spade
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

sudo mkdir -p "$INSTALL"

# ---- Node 20 ----
if aws s3 ls "$PREFIX/node.tar.xz" >/dev/null 2>&1; then
  aws s3 cp --only-show-errors "$PREFIX/node.tar.xz" "$WORK/node.tar.xz"
  sudo rm -rf "$INSTALL/node"
  sudo mkdir -p "$INSTALL/node"
  sudo tar -xJf "$WORK/node.tar.xz" -C "$INSTALL/node" --strip-components=1
  NODE="$INSTALL/node/bin/node"
else
  sudo dnf install -y -q nodejs20
  NODE=$(command -v node-20 || command -v node || true)
fi
if [ -z "${NODE:-}" ] || [ ! -x "$NODE" ]; then
  echo "bootstrap: no node binary after installing Node 20" >&2
  exit 1
fi
MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]')
if [ "$MAJOR" -lt 20 ]; then
  echo "bootstrap: $NODE is Node $MAJOR; spade needs Node 20 or later" >&2
  exit 1
fi

# ---- the package (built, with production node_modules, by package.sh) ----
aws s3 cp --only-show-errors "$PREFIX/spade-replay.tgz" "$WORK/spade-replay.tgz"
sudo rm -rf "$INSTALL/app"
sudo mkdir -p "$INSTALL/app"
sudo tar -xzf "$WORK/spade-replay.tgz" -C "$INSTALL/app" --strip-components=1

# GeoIP databases staged next to the package (optional): --geoip-city/--geoip-asn
# of the replay then name /opt/spade/geoip/<file>.
if aws s3 ls "$PREFIX/geoip/" >/dev/null 2>&1; then
  sudo mkdir -p "$INSTALL/geoip"
  sudo aws s3 cp --only-show-errors --recursive "$PREFIX/geoip/" "$INSTALL/geoip/"
fi

# The AWS SDK for JavaScript does not read the region from instance metadata:
# record this node's region for the mapper.
TOKEN=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' || true)
REGION=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/placement/region || true)

sudo tee /usr/local/bin/spade >/dev/null <<WRAPPER
#!/bin/bash
export AWS_REGION="\${AWS_REGION:-$REGION}"
exec "$NODE" "$INSTALL/app/dist/driver/cli/spade.js" "\$@"
WRAPPER
sudo chmod 755 /usr/local/bin/spade
/usr/local/bin/spade --help >/dev/null
echo "bootstrap: spade installed ($("$NODE" --version), region ${REGION:-unknown})"
