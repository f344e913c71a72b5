#!/usr/bin/env bash
# Runs the published rayon crate's own test suite (unit, integration and doc
# tests) with pilfer standing in for rayon-core, through the package in
# rayon-core/ and a [patch.crates-io] entry, as a rayon user would switch;
# then rayon-core's own tests that use only its public API, unchanged, on
# the package: its integration tests, and the unit tests of its scope,
# spawn, join and broadcast modules (the FIFO and LIFO orders among them).
#
#   scripts/rayon-suite.sh                     # both, release builds
#   scripts/rayon-suite.sh --test iter_panic   # arguments go to rayon's `cargo test`
#
# The sources are fetched by cargo from the registry (the versions that
# Cargo.lock locks for pilfer's dev-dependency on rayon), copied under
# target/rayon-suite/ and patched or wrapped there; nothing of them is kept
# in the repository. The builds have their own target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# The manifest of registry package $1 in the locked dependency graph.
registry_manifest() {
    cargo metadata --format-version 1 --locked 2>/dev/null | python3 -c '
import json, sys
meta = json.load(sys.stdin)
paths = [p["manifest_path"] for p in meta["packages"]
         if p["name"] == sys.argv[1] and (p.get("source") or "").startswith("registry+")]
print(paths[0] if paths else "")
' "$1"
}

cargo fetch --quiet
rayon_manifest=$(registry_manifest rayon)
core_manifest=$(registry_manifest rayon-core)
if [ -z "$rayon_manifest" ] || [ -z "$core_manifest" ]; then
    echo "rayon-suite.sh: cargo metadata names no registry package 'rayon' or 'rayon-core'; is rayon still a dev-dependency?" >&2
    exit 1
fi
rayon_source=$(dirname "$rayon_manifest")
rayon_version=$(basename "$rayon_source")
core_source=$(dirname "$core_manifest")
core_version=$(basename "$core_source")
work="$root/target/rayon-suite"
mkdir -p "$work"
export CARGO_TARGET_DIR="$work/target"

# 1. rayon's suite, rayon-core patched to pilfer's package.
echo "rayon-suite.sh: $rayon_version from $rayon_source, with rayon-core = pilfer ($root/rayon-core)"
rayon_copy="$work/$rayon_version"
rm -rf "$rayon_copy"
cp -r "$rayon_source" "$rayon_copy"
chmod -R u+w "$rayon_copy"
cat >>"$rayon_copy/Cargo.toml" <<PATCH

# Added by pilfer's scripts/rayon-suite.sh: a workspace of its own, and
# rayon-core replaced by pilfer.
[workspace]

[patch.crates-io]
rayon-core = { path = "$root/rayon-core" }
PATCH
(
    cd "$rayon_copy"
    cargo test --release "$@"
    # The patch must have taken: the build's only rayon-core is pilfer's.
    if ! cargo tree --quiet -i rayon-core --edges normal | grep -q "$root/rayon-core"; then
        echo "rayon-suite.sh: the suite did not run on pilfer's rayon-core" >&2
        exit 1
    fi
)
echo "rayon-suite.sh: $rayon_version's suite passed on pilfer"

# 2. rayon-core's tests, unchanged, in a crate made here around them: its
# integration tests as they are, and the unit tests of four modules, each
# included by path into a module of the same name. Those reach into the
# crate for its public items (re-exported from the package) and for two
# helpers, defined below as what they are: `unwind::halt_unwinding`, a
# `catch_unwind`, and `registry::in_worker`, running a closure on a worker
# of the current pool. rayon-core's other unit tests use its internals or
# its deprecated `Configuration`, which pilfer does not provide.
suite="$work/$core_version-tests"
rm -rf "$suite"
mkdir -p "$suite/src"
cp -r "$core_source/tests" "$suite/tests"
cat >"$suite/Cargo.toml" <<MANIFEST
[package]
name = "rayon-core-tests"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
rayon-core = { path = "$root/rayon-core" }

[dev-dependencies]
crossbeam-utils = "0.8"
rand = "0.9"
rand_xorshift = "0.4"
scoped-tls = "1.0"
libc = "0.2"
MANIFEST
cat >"$suite/src/lib.rs" <<LIB
//! $core_version's tests on pilfer's rayon-core package (scripts/rayon-suite.sh).
#![cfg(test)]
#![allow(unused_imports)]

pub use rayon_core::*;

mod unwind {
    pub(crate) fn halt_unwinding<F: FnOnce() -> R, R>(func: F) -> std::thread::Result<R> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(func))
    }
}

/// rayon-core's way to run a closure on a worker of the current pool
/// (one of its tests uses it): a scope, whose body runs on a worker.
mod registry {
    pub(crate) fn in_worker<OP: FnOnce(&(), bool) -> R + Send, R: Send>(op: OP) -> R {
        rayon_core::scope(|_| op(&(), false))
    }
}

mod scope {
    #[path = "$core_source/src/scope/test.rs"]
    mod test;
}

mod spawn {
    pub(crate) use rayon_core::{spawn, spawn_fifo};
    #[path = "$core_source/src/spawn/test.rs"]
    mod test;
}

mod join {
    pub(crate) use crate::unwind;
    pub(crate) use rayon_core::{join, join_context, FnContext};
    #[path = "$core_source/src/join/test.rs"]
    mod test;
}

mod broadcast {
    #[path = "$core_source/src/broadcast/test.rs"]
    mod test;
}
LIB
(
    cd "$suite"
    cargo test --release
)
echo "rayon-suite.sh: $core_version's tests (integration; scope, spawn, join, broadcast) passed on pilfer"
