#!/usr/bin/env bash
# Builds the Debian package with cargo-deb: the release binary, the hardened unit
# (/lib/systemd/system), the example config as a conffile (/etc/modelarts-image-exporter/
# config.toml, mode 644: the DynamicUser must read it; secrets go in credentials, not here),
# and docs. Installs cargo-deb first if it is missing. Prints the .deb path.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
  cargo install --locked cargo-deb
fi
cargo deb
deb=$(ls -t target/debian/*.deb | head -1)
echo "built $deb"
dpkg-deb --info "$deb" | sed -n '1,20p'
contents=$(dpkg-deb --contents "$deb")
echo "$contents"
# The package must carry the binary, the unit and the config.
for f in ./usr/bin/modelarts-image-exporter ./lib/systemd/system/modelarts-image-exporter.service ./etc/modelarts-image-exporter/config.toml; do
  grep -q " $f\$" <<<"$contents" || { echo "missing $f in $deb" >&2; exit 1; }
done
echo "package OK: $deb"
