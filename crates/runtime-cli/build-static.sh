#!/bin/sh
# Builds the wharf-runtime release binary as a static-pie executable (glibc
# and libseccomp linked in; ADR 0008) into <repo>/target/runtime-static and
# prints its path. This is the binary to install and to benchmark
# (bench/runtime); `cargo build -p wharf-runtime-cli` still makes a
# dynamically linked one, which the tests use.
#
# --target keeps the static flag off build scripts and proc-macros (they are
# built for the host without RUSTFLAGS); libseccomp-sys links libseccomp.a
# (libseccomp-dev) when asked for a static link.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
host=$(rustc -vV | sed -n 's/^host: //p')
libdir=$(pkg-config --variable=libdir libseccomp 2>/dev/null || echo /usr/lib/"$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)")
[ -f "$libdir/libseccomp.a" ] || { echo "build-static: $libdir/libseccomp.a missing (install libseccomp-dev)" >&2; exit 1; }
# A `release-runtime` profile in the workspace manifest (fat LTO, one codegen
# unit, panic=abort: ~0.5 ms less CPU per container) is used when present.
profile=release
if grep -q '^\[profile\.release-runtime\]' "$root/Cargo.toml"; then
    profile=release-runtime
fi
RUSTFLAGS="-C target-feature=+crt-static" LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="$libdir" \
    cargo build -q --profile "$profile" --manifest-path "$root/Cargo.toml" -p wharf-runtime-cli \
    --target "$host" --target-dir "$root/target/runtime-static" >&2
bin="$root/target/runtime-static/$host/$profile/wharf-runtime"
# A static-pie has no program interpreter and needs no shared library.
if readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
    echo "build-static: $bin still needs shared libraries" >&2
    exit 1
fi
echo "$bin"
