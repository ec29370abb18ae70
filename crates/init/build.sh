#!/bin/sh
# Builds wharf-init as a static executable into <repo>/target/init/release/wharf-init
# and prints its path. Used by the daemon tests and bench/run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release \
    --manifest-path "$here/Cargo.toml" --target-dir "$root/target/init" >&2
echo "$root/target/init/release/wharf-init"
